/**
 * The repositories whose entity has a second party: a version's anchor (the chain
 * service's) beside the version (finalization's), evidence's outcome on chain beside the
 * evidence (the consensus's). Each party writes its own repository; reads join them, and
 * databases written before the split (anchor and outcome inline) read the same.
 */
import { join } from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Repository, jsonCodec } from '../../src/storage/repository.ts'
import { StateDatabase, type VersionEntry } from '../../src/storage/state-db.ts'
import { tempDir } from '../helpers/tmp.ts'

const D = 'bafyreidatanet'

function version (height: number, anchor: VersionEntry['anchor'] = null): VersionEntry {
  return {
    datanet: D, height, cid: `v${height}`, parent: null, round: 0, datasetRoot: '0x', recordCount: height, attributionRoot: '0x', totalAttributed: '0',
    validatorSetHash: '0x', contributions: [], certificate: [], frontier: { size: 0, nodes: [] }, decidedAt: height, anchor
  }
}

async function withDb (fn: (db: StateDatabase) => Promise<void>): Promise<void> {
  const tmp = tempDir()
  const db = new StateDatabase(join(tmp.dir, 'state'))
  await db.open()
  try {
    await fn(db)
  } finally {
    await db.close()
    tmp.remove()
  }
}

test('a version reads with the anchor the chain service recorded; finalization never writes one', () => withDb(async db => {
  // finalization stores what it decided, whatever the entry it is handed says
  await db.batch([db.versions.putOp(version(1)), db.versions.putOp(version(2, { txHash: '0xstale', block: 1 })), db.versions.putOp(version(16))])
  assert.is((await db.versions.at(D, 2))?.anchor, null)
  await db.anchors.put(D, 16, { txHash: '0xa', block: 7 })
  assert.equal((await db.versions.at(D, 16))?.anchor, { txHash: '0xa', block: 7 })
  assert.equal((await db.versions.of(D)).map(v => [v.height, v.anchor?.txHash ?? null]), [[1, null], [2, null], [16, '0xa']])
  assert.equal((await db.versions.of(D, { reverse: true, limit: 1 })).map(v => v.height), [16])
  assert.is((await db.versions.latest(D))?.anchor?.block, 7)
  // a reorg moved the anchor: the newer record wins
  await db.anchors.put(D, 16, { txHash: '0xb', block: 9 })
  assert.is((await db.versions.at(D, 16))?.anchor?.txHash, '0xb')
  assert.is(await db.versions.at(D, 3), undefined)
  assert.is(await db.versions.at('bafyreiother', 16), undefined)
}))

test('versions stored with their anchor inline (before anchors had a repository) keep it', () => withDb(async db => {
  const raw = new Repository(db.db, 'versions', jsonCodec<VersionEntry>())
  await raw.put(`${D}/${(16).toString(16).padStart(16, '0')}`, version(16, { txHash: '0xold', block: 3 }))
  assert.is((await db.versions.at(D, 16))?.anchor?.txHash, '0xold')
  assert.is((await db.versions.of(D))[0]?.anchor?.txHash, '0xold')
}))

test('evidence: kept by the consensus, its outcome by the chain service; an older inline outcome still counts', () => withDb(async db => {
  const base = { datanet: D, height: 4, round: 1, type: 'precommit', first: { a: 1 }, second: { a: 2 } }
  await db.evidence.keep({ ...base, validator: '0xv1' })
  await db.evidence.keep({ ...base, validator: '0xv2' })
  await db.evidence.keep({ ...base, datanet: 'bafyreiother', validator: '0xv1' })
  assert.equal((await db.evidence.of(D)).map(e => [e.validator, e.submitted]), [['0xv1', undefined], ['0xv2', undefined]])
  await db.evidence.markSubmitted({ ...base, validator: '0xv2' }, '0xtx')
  const got = await db.evidence.of(D)
  assert.equal(got.map(e => [e.validator, e.height, e.round, e.type, e.submitted]), [['0xv1', 4, 1, 'precommit', undefined], ['0xv2', 4, 1, 'precommit', '0xtx']])
  assert.equal(got[1]?.first, { a: 1 })
  const raw = new Repository(db.db, 'evidence', jsonCodec<Record<string, unknown>>())
  await raw.put(`${D}/5/0/prevote/0xv3`, { first: {}, second: {}, submitted: 'AlreadySlashed' })
  assert.is((await db.evidence.of(D)).find(e => e.validator === '0xv3')?.submitted, 'AlreadySlashed')
}))

test.run()
