/**
 * Shards' record hashes kept from receipt to the version that appends them
 * (node/services/shard-hashes.ts). On a loaded validator a proposer's build read every shard
 * of its contributions back from the block store and hashed it again, each read waiting
 * behind the receipt of the next contributions: 9.1 s of a 10.8 s build of 6,000 records
 * (scripts/bench/finality.ts, phase timers), past the propose timeout, and heights were
 * decided in round 2. With the hashes kept, a build and a check read no shard, and ask the
 * dataset which records it holds once for the version, not once a shard.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { join } from 'node:path'
import { CID } from 'multiformats/cid'
import { sha256 } from '../../src/codec/hash.ts'
import { splitShard } from '../../src/datanet/shard.ts'
import { StateDatabase } from '../../src/storage/state-db.ts'
import { ShardHashes } from '../../node/services/shard-hashes.ts'
import { DatanetVersions } from '../../node/services/consensus/versions.ts'
import { createLogger } from '../../node/logger.ts'
import { tempDir } from '../helpers/tmp.ts'
import type { Helia } from '@helia/interface'
import { binding, contribution, datanet, memoryHelia, wallets } from '../helpers/versions-world.ts'

const logger = createLogger({ level: 'silent', format: 'json' })

const records = (n: number, tag: string): Array<{ hash: Uint8Array }> => Array.from({ length: n }, (_, i) => ({ hash: sha256(new TextEncoder().encode(`${tag} ${i}`)) }))

test('ShardHashes: a shard\'s hashes come back in order; bounded by bytes, least recently used out first; an entry over the bound is not kept', () => {
  const memo = new ShardHashes(3 * 32 * 10)
  const a = records(10, 'a')
  memo.put('a', a)
  assert.equal(memo.get('a')?.map(h => Buffer.from(h).toString('hex')), a.map(r => Buffer.from(r.hash).toString('hex')))
  memo.put('b', records(10, 'b'))
  memo.put('c', records(10, 'c'))
  assert.is(memo.bytes, 960)
  // 'a' used last: 'b' is the oldest
  assert.ok(memo.get('a') !== undefined)
  memo.put('d', records(10, 'd'))
  assert.is(memo.get('b'), undefined)
  assert.ok(memo.get('a') !== undefined && memo.get('c') !== undefined && memo.get('d') !== undefined)
  assert.is(memo.bytes, 960)
  // the same shard again replaces its entry, counted once
  memo.put('d', records(10, 'd'))
  assert.is(memo.bytes, 960)
  memo.put('huge', records(31, 'huge'))
  assert.is(memo.get('huge'), undefined)
  assert.is(memo.bytes, 960)
})

/** An in-memory block store counting its reads (`reads()`, reset by `reset()`), and its own reads uncounted (`get`). */
function countedHelia (): { helia: Helia, get: Helia['blockstore']['get'], reads: () => number, reset: () => void } {
  const helia = memoryHelia()
  let reads = 0
  const get = helia.blockstore.get.bind(helia.blockstore)
  helia.blockstore.get = ((c: CID, ...rest: unknown[]) => { reads++; return (get as (...a: unknown[]) => unknown)(c, ...rest) }) as typeof helia.blockstore.get
  return { helia, get, reads: () => reads, reset: () => { reads = 0 } }
}

test('a proposer\'s build and a validator\'s check take the hashes kept at receipt and read no shard; the version is the one built from the shards', async () => {
  const tmp = tempDir()
  const d = await datanet()
  const { helia, get, reads, reset } = countedHelia()
  const stores = await Promise.all(['kept', 'read'].map(async name => { const db = new StateDatabase(join(tmp.dir, name)); await db.open(); return db }))
  try {
    const memo = new ShardHashes()
    const lines = Array.from({ length: 12 }, (_, i) => `record ${i}`)
    for (const db of stores) await contribution(db, helia, d, lines, wallets.slice(0, 3), 'accepted', undefined, 4)
    // what the receiver keeps once a contribution's shards pass its check
    const entry = await stores[0]!.contributions.unincluded(d.id).next()
    const shards = (entry.value!.contribution.shards as string[])
    assert.is(shards.length, 3)
    for (const s of shards) {
      const bytes: Uint8Array[] = []
      for await (const chunk of get(CID.parse(s))) bytes.push(chunk)
      memo.put(s, splitShard(Buffer.concat(bytes)))
    }
    const kept = new DatanetVersions({ db: stores[0]!, helia, binding, logger, shardHashes: memo }, d, logger)
    const anew = new DatanetVersions({ db: stores[1]!, helia, binding, logger }, d, logger)
    await kept.load()
    await anew.load()
    let asked = 0
    const positionsOf = stores[0]!.dataset.positionsOf.bind(stores[0]!.dataset)
    stores[0]!.dataset.positionsOf = async (...args) => { asked++; return await positionsOf(...args) }
    reset()
    const built = await kept.build(1, d.validators, wallets[0]!.address, 1)
    assert.ok(built !== undefined)
    assert.is(reads(), 0, 'the build read no shard')
    assert.is(asked, 1, 'the dataset was asked once for the version\'s records, not once a shard')
    const fromShards = await anew.build(1, d.validators, wallets[0]!.address, 1)
    assert.ok(reads() > 0)
    assert.is(fromShards?.cid.toString(), built.cid.toString(), 'the same version')
    assert.is(built.version.recordCount, 12)
    // a check of another's proposal: no read either
    const checker = new DatanetVersions({ db: stores[0]!, helia, binding, logger, shardHashes: memo }, d, logger)
    await checker.load()
    reset()
    assert.is(await checker.problem(fromShards!, d.validators), undefined)
    assert.is(reads(), 0, 'the check read no shard')
  } finally {
    for (const db of stores) await db.close()
    tmp.remove()
  }
})

test('a shard whose hashes are not kept is read and hashed, then kept: the next round\'s proposal and the finalization read it no more', async () => {
  const tmp = tempDir()
  const d = await datanet()
  const { helia, reads, reset } = countedHelia()
  const db = new StateDatabase(join(tmp.dir, 'state'))
  await db.open()
  try {
    const memo = new ShardHashes()
    await contribution(db, helia, d, ['a', 'b', 'c', 'd', 'e'], wallets.slice(0, 3), 'accepted', undefined, 2)
    const versions = new DatanetVersions({ db, helia, binding, logger, shardHashes: memo }, d, logger)
    await versions.load()
    const first = await versions.build(1, d.validators, wallets[0]!.address, 1)
    assert.ok(first !== undefined)
    assert.is(reads(), 3)
    assert.is(memo.bytes, 5 * 32)
    // another node's store: no append cache, the memo alone
    const other = new DatanetVersions({ db, helia, binding, logger, shardHashes: memo }, d, logger)
    await other.load()
    reset()
    assert.is(await other.problem(first, d.validators), undefined)
    assert.is(reads(), 0)
  } finally {
    await db.close()
    tmp.remove()
  }
})

test.run()
