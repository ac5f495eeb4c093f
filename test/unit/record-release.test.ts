/**
 * Records of a rejected contribution are given back (node/services/contributions.ts
 * `release`): the claims it made on the datanet's record index, as received by gossip or
 * as uploaded here, are dropped, so the records can be contributed again; claims of other
 * contributions stay. On 72aec6d nothing released them: the records stayed claimed by the
 * rejected contribution for ever, and every later upload of them was refused as duplicates.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { join } from 'node:path'
import { pino } from 'pino'
import type { CID } from 'multiformats/cid'
import { fromHex } from '../../src/codec/hash.ts'
import { datanetDigest, encodeManifest, parseManifest } from '../../src/datanet/manifest.ts'
import { shardCid, splitShard } from '../../src/datanet/shard.ts'
import { textKey } from '../../src/contribution/near-duplicates.ts'
import { StateDatabase, type ContributionEntry } from '../../src/storage/state-db.ts'
import { ContributionService, type ContributionServiceOptions } from '../../node/services/contributions.ts'
import { tempDir } from '../helpers/tmp.ts'
import type { Helia } from '@helia/interface'

function memoryHelia (blocks: Map<string, Uint8Array>): Helia {
  return {
    blockstore: {
      get: async function * (cid: CID) {
        const b = blocks.get(cid.toString())
        if (b === undefined) throw new Error(`no block ${cid.toString()}`)
        yield b
      }
    }
  } as unknown as Helia
}

test('a rejected contribution releases its own claims (gossiped and uploaded here), never another\'s', async () => {
  const tmp = tempDir()
  const db = new StateDatabase(join(tmp.dir, 'state'))
  await db.open()
  try {
    const manifest = parseManifest({ name: 'release', license: 'CC0-1.0', recordSchema: { type: 'object' }, validators: [{ address: '0x' + '11'.repeat(20), stake: '1' }] })
    const id = (await encodeManifest(manifest)).id
    const digest = fromHex(datanetDigest(id), 32)
    const blocks = new Map<string, Uint8Array>()
    const shardOf = (lines: string[]): { cid: string, hashes: Uint8Array[] } => {
      const bytes = new TextEncoder().encode(lines.map(l => JSON.stringify({ text: l }) + '\n').join(''))
      const cid = shardCid(bytes)
      blocks.set(cid.toString(), bytes)
      return { cid: cid.toString(), hashes: splitShard(bytes).map(r => r.hash) }
    }
    const gossiped = shardOf(['kept by another', 'fresh one', 'fresh two'])
    const uploaded = shardOf(['uploaded here'])
    const [other, ...fresh] = gossiped.hashes as [Uint8Array, Uint8Array, Uint8Array]
    await db.records.claim(digest, [other], 'bafyaccepted')
    await db.records.claim(digest, fresh, 'bafyrejected')
    const freshTexts = ['fresh one', 'fresh two'].map(t => textKey(new TextEncoder().encode(JSON.stringify({ text: t }))))
    await db.records.claim(digest, freshTexts, 'bafyrejected')
    await db.records.claim(digest, uploaded.hashes, 'u:0011')
    const service = new ContributionService({ db, helia: memoryHelia(blocks), rules: [], logger: pino({ level: 'silent' }) } as unknown as ContributionServiceOptions)
    const entry = (cid: string, shards: string[], claims?: string): ContributionEntry => ({
      cid, datanet: id, contribution: { shards }, status: 'rejected', score: 0, receivedAt: 1, decidedAt: 2, origin: 'gossip', version: null, facts: null, ...(claims === undefined ? {} : { claims })
    })
    await service.release(entry('bafyrejected', [gossiped.cid]))
    assert.equal(await db.records.owners(digest, gossiped.hashes), ['bafyaccepted', undefined, undefined], 'its fresh records are free again; another contribution\'s claim stays')
    assert.equal(await db.records.owners(digest, freshTexts), [undefined, undefined], 'and their text keys: near-copies may come again')
    await service.release(entry('bafyuploaded', [uploaded.cid], 'u:0011'))
    assert.equal(await db.records.owners(digest, uploaded.hashes), [undefined], 'an upload\'s claims are released with it')
    // accepted contributions keep their claims
    await db.records.claim(digest, fresh, 'bafykept')
    await service.release({ ...entry('bafykept', [gossiped.cid]), status: 'accepted' })
    assert.equal(await db.records.owners(digest, fresh), ['bafykept', 'bafykept'])
  } finally {
    await db.close()
    tmp.remove()
  }
})

test.run()
