/**
 * Repositories with a secondary index (src/storage/repositories/): contributions and
 * inference events no version includes yet, what proposal building and re-gossip read
 * instead of every entry the node ever held.
 */
import { join } from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Repository, jsonCodec } from '../../src/storage/repository.ts'
import { StateDatabase, type ContributionEntry, type InferenceEntry } from '../../src/storage/state-db.ts'
import { tempDir } from '../helpers/tmp.ts'

function entry (cid: string, datanet: string, over: Partial<ContributionEntry> = {}): ContributionEntry {
  return { cid, datanet, contribution: {}, status: 'pending', score: null, receivedAt: 1, decidedAt: null, origin: 'gossip', version: null, facts: null, ...over }
}

function event (cid: string, datanet: string, included: number | null): InferenceEntry {
  return { cid, datanet, eventId: `e-${cid}`, model: 'm', version: 1, operator: '0x' + '11'.repeat(20), nonce: cid, fee: '1', shares: [], resultHash: '0x', receivedAt: 1, included }
}

async function unincluded (db: StateDatabase, datanet: string): Promise<string[]> {
  const out: string[] = []
  for await (const e of db.contributions.unincluded(datanet)) out.push(e.cid)
  return out
}

async function withDb (fn: (db: StateDatabase, path: string) => Promise<void>): Promise<void> {
  const tmp = tempDir()
  const path = join(tmp.dir, 'state')
  const db = new StateDatabase(path)
  await db.open()
  try {
    await fn(db, path)
  } finally {
    await db.close().catch(() => {})
    tmp.remove()
  }
}

test('the index holds exactly the contributions of a datanet that no version includes', async () => {
  await withDb(async db => {
    await db.contributions.put('c1', entry('c1', 'dA'))
    await db.contributions.put('c2', entry('c2', 'dA', { status: 'accepted' }))
    await db.contributions.put('c3', entry('c3', 'dA', { status: 'rejected' }))
    await db.contributions.put('c4', entry('c4', 'dB'))
    // a datanet id that extends another is another datanet
    await db.contributions.put('c5', entry('c5', 'dA2'))
    assert.equal(await unincluded(db, 'dA'), ['c1', 'c2', 'c3'])
    assert.equal(await unincluded(db, 'dB'), ['c4'])
    // included: out of the index, in one batch with the entry
    await db.batch(db.contributions.putOps('c2', entry('c2', 'dA', { status: 'accepted', version: 4 })))
    assert.equal(await unincluded(db, 'dA'), ['c1', 'c3'])
    assert.is((await db.contributions.get('c2'))?.version, 4)
    // rewriting an included entry (a late verdict) does not bring it back
    await db.contributions.put('c2', entry('c2', 'dA', { status: 'accepted', score: 90, version: 4 }))
    assert.equal(await unincluded(db, 'dA'), ['c1', 'c3'])
    await db.contributions.delete('c1')
    assert.equal(await unincluded(db, 'dA'), ['c3'])
    assert.is(await db.contributions.get('c1'), undefined)
  })
})

test('inference events leave the index when a version includes them', async () => {
  await withDb(async db => {
    await db.inferences.put('i1', event('i1', 'dA', null))
    await db.inferences.put('i2', event('i2', 'dA', null))
    await db.inferences.put('i3', event('i3', 'dB', null))
    await db.inferences.put('i2', event('i2', 'dA', 5))
    const open: string[] = []
    for await (const e of db.inferences.unincluded('dA')) open.push(e.cid)
    assert.equal(open, ['i1'])
  })
})

test('updates of one contribution never interleave: none is lost, an inclusion waits for them', async () => {
  await withDb(async db => {
    await db.contributions.put('c1', entry('c1', 'dA', { score: 0 }))
    const bump = async (): Promise<unknown> => await db.contributions.update('c1', async e => {
      if (e === undefined) return undefined
      // a read of verdicts or blocks between read and write, as the tally does
      await new Promise(resolve => setImmediate(resolve))
      return { ...e, score: (e.score ?? 0) + 1 }
    })
    await Promise.all([...Array.from({ length: 20 }, bump), db.contributions.include(['c1'], 3, []), ...Array.from({ length: 20 }, bump)])
    const after = await db.contributions.get('c1')
    assert.is(after?.score, 40, 'every update counted')
    assert.is(after?.version, 3, 'the inclusion kept')
    assert.equal(await unincluded(db, 'dA'), [])
    // update returns what it found and what it left
    const { before, after: kept } = await db.contributions.update('c1', e => e)
    assert.is(before?.score, 40)
    assert.is(kept?.score, 40)
  })
})

test('single-operation writes that would skip the index are refused', async () => {
  await withDb(async db => {
    assert.throws(() => (db.contributions.putOp as unknown as (k: string, v: ContributionEntry) => unknown)('c1', entry('c1', 'dA')), /putOps/)
    assert.throws(() => (db.contributions.delOp as unknown as (k: string) => unknown)('c1'), /deleteOps/)
  })
})

test('a database written before the index had it built at open', async () => {
  const tmp = tempDir()
  const path = join(tmp.dir, 'state')
  try {
    // the entries as an older node wrote them: the plain sublevel, no index
    const old = new StateDatabase(path)
    await old.db.open()
    const plain = new Repository(old.db, 'contributions', jsonCodec<ContributionEntry>())
    await plain.put('old1', entry('old1', 'dA'))
    await plain.put('old2', entry('old2', 'dA', { version: 2 }))
    await new Repository(old.db, 'inferences', jsonCodec<InferenceEntry>()).put('i1', event('i1', 'dA', null))
    await old.db.close()
    const reopened = new StateDatabase(path)
    await reopened.open()
    try {
      assert.equal(await unincluded(reopened, 'dA'), ['old1'])
      const events: string[] = []
      for await (const e of reopened.inferences.unincluded('dA')) events.push(e.cid)
      assert.equal(events, ['i1'])
    } finally {
      await reopened.close()
    }
  } finally {
    tmp.remove()
  }
})

test.run()
