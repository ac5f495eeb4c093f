/**
 * A burst of honest contributions from one uploader (scripts/bench/finality.ts: 16 of
 * 2 MB at once): every one asked for its shards at once, each got a sliver of the link,
 * and the per-contribution stall clock ran while it waited behind the others, so honest
 * contributions were timed out, retried seconds later and their publisher penalised
 * (CONTRIBUTION_ERROR_SHARDS_UNAVAILABLE, ~10 per validator per run). The link here is
 * simulated: one block at a time, in request order, at a fixed pace. A publisher whose
 * shards nobody has is still penalised after the stall time.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { join } from 'node:path'
import { Wallet } from 'ethers'
import type { CID } from 'multiformats/cid'
import type { Helia } from '@helia/interface'
import { ContributionReceiver, type ShardFetchOptions } from '../../node/services/contribution-receiver.ts'
import { ShardHashes } from '../../node/services/shard-hashes.ts'
import type { FollowedDatanet } from '../../node/services/datanets.ts'
import { createLogger } from '../../node/logger.ts'
import { canonicalJson } from '../../src/codec/jcs.ts'
import { contributionCid, decodeContribution, encodeContribution, signContribution } from '../../src/contribution/contribution.ts'
import { builtinRules } from '../../src/contribution/rules/index.ts'
import { compileRecordSchema } from '../../src/datanet/record-schema.ts'
import { encodeManifest, genesisValidatorSet, parseManifest } from '../../src/datanet/manifest.ts'
import { ShardPacker, shardCid, splitShard } from '../../src/datanet/shard.ts'
import { merkleRoot } from '../../src/merkle/tree.ts'
import type { GossipContext, GossipRouter, TopicHandler } from '../../src/network/gossip.ts'
import type { ContributionEntry } from '../../src/storage/state-db.ts'
import { StateDatabase } from '../../src/storage/state-db.ts'
import { peerIdFromString } from '@libp2p/peer-id'
import { tempDir } from '../helpers/tmp.ts'
import { waitFor } from '../helpers/wait.ts'
import { memoryPins } from '../helpers/memory-pins.ts'

const binding = { chainId: 31337, registry: null }
const logger = createLogger({ level: 'silent', format: 'json' })
const SCHEMA = { type: 'object', required: ['text'], properties: { text: { type: 'string', minLength: 1 } } }
const PUBLISHER = '12D3KooWKRyV141rBuqHCBHsvV17BnYt7w7jHbZygxC5wKfgtzs5'

/**
 * Blocks held by "the network": served one at a time, oldest request first, `paceMs`
 * each; a request whose signal aborts leaves the line (a cancelled want).
 */
function slowLink (paceMs: number): { helia: Helia, remote: Map<string, Uint8Array>, wants: () => number } {
  let wants = 0
  const local = new Map<string, Uint8Array>()
  const remote = new Map<string, Uint8Array>()
  const line: Array<{ cid: string, done: (b: Uint8Array) => void }> = []
  let busy = false
  const serve = (): void => {
    if (busy) return
    const head = line.shift()
    if (head === undefined) return
    busy = true
    setTimeout(() => {
      busy = false
      head.done(remote.get(head.cid) as Uint8Array)
      serve()
    }, paceMs)
  }
  const fetchRemote = async (cid: string, signal?: AbortSignal): Promise<Uint8Array> => await new Promise((resolve, reject) => {
    if (!remote.has(cid)) {
      // nobody has it: only the caller's signal ends the wait
      signal?.addEventListener('abort', () => { reject(signal.reason) }, { once: true })
      return
    }
    const entry = { cid, done: (b: Uint8Array) => { signal?.removeEventListener('abort', onAbort); resolve(b) } }
    const onAbort = (): void => {
      const at = line.indexOf(entry)
      if (at >= 0) line.splice(at, 1)
      reject(signal?.reason)
    }
    signal?.addEventListener('abort', onAbort, { once: true })
    line.push(entry)
    serve()
  })
  const helia = {
    blockstore: {
      put: async (cid: CID, bytes: Uint8Array) => { local.set(cid.toString(), bytes); return cid },
      has: async (cid: CID) => local.has(cid.toString()),
      get: async function * (cid: CID, options: { signal?: AbortSignal, offline?: boolean } = {}) {
        const key = cid.toString()
        let bytes = local.get(key)
        if (bytes === undefined) {
          if (options.offline === true) throw new Error(`not here: ${key}`)
          wants++
          bytes = await fetchRemote(key, options.signal)
          local.set(key, bytes)
        }
        yield bytes
      }
    },
    ...memoryPins()
  } as unknown as Helia
  return { helia, remote, wants: () => wants }
}

/** How the publisher answers a direct request for a shard (src/network/block-request.ts). */
type Publisher = 'serves' | 'forges' | 'old' | 'silent' | 'unreachable'

interface World {
  receiver: ContributionReceiver
  handler: TopicHandler<unknown>
  stored: Set<string>
  penalties: string[]
  remote: Map<string, Uint8Array>
  /** Shards asked of the network (bitswap), and of the publisher directly. */
  wants: () => number
  asked: () => number
  datanet: FollowedDatanet
  close: () => Promise<void>
}

async function world (paceMs: number, fetch: Partial<ShardFetchOptions>, shardHashes?: ShardHashes, publisher?: Publisher): Promise<World> {
  const tmp = tempDir()
  const db = new StateDatabase(join(tmp.dir, 'state'))
  await db.open()
  const manifest = parseManifest({ name: 'burst', license: 'CC0-1.0', recordSchema: SCHEMA, shardSize: 65536, validators: [{ address: Wallet.createRandom().address, stake: '1' }] })
  const e = await encodeManifest(manifest)
  const datanet: FollowedDatanet = { id: e.id, digest: e.digest, manifest, validators: genesisValidatorSet(manifest), validateRecord: compileRecordSchema(SCHEMA) }
  const { helia, remote, wants } = slowLink(paceMs)
  let asked = 0
  const blocks = publisher === undefined
    ? undefined
    : {
        request: async (_peer: unknown, cids: readonly CID[], options: { signal?: AbortSignal } = {}) => {
          asked++
          if (publisher === 'old') throw Object.assign(new Error('protocol not supported'), { name: 'UnsupportedProtocolError' })
          if (publisher === 'unreachable') throw new Error('the dial failed')
          if (publisher === 'silent') {
            return await new Promise<never>((_resolve, reject) => { options.signal?.addEventListener('abort', () => { reject(options.signal?.reason) }, { once: true }) })
          }
          if (publisher === 'forges') return { blocks: cids.map(() => undefined), forged: cids.length }
          return { blocks: cids.map(c => remote.get(c.toString())), forged: 0 }
        }
      }
  const stored = new Set<string>()
  const penalties: string[] = []
  let handler: TopicHandler<unknown> | undefined
  const router = {
    register: (h: TopicHandler<unknown>) => { handler = h },
    penalise: (_peer: string, _kind: string, code: string) => { penalties.push(code) },
    forgive: () => {}
  } as unknown as GossipRouter
  const receiver = new ContributionReceiver({
    db, helia, router, binding, logger, rules: builtinRules, shardFetch: fetch, shardHashes, blocks,
    verdicts: { onContribution: async () => {} } as never,
    store: async (_d, _c, cid) => {
      stored.add(cid.toString())
      return { entry: {} as ContributionEntry, created: true }
    }
  })
  receiver.follow(datanet)
  return {
    receiver, handler: handler as TopicHandler<unknown>, stored, penalties, remote, datanet, wants, asked: () => asked,
    close: async () => { receiver.stop(); await db.close(); tmp.remove() }
  }
}

/** A signed contribution of `shards` full shards of ~1 KB records; its shards held by the link. */
async function contribution (w: World, tag: string, shards: number, held = true, forgedRoot = false): Promise<Uint8Array> {
  const packer = new ShardPacker(w.datanet.manifest.shardSize)
  const packed: Uint8Array[] = []
  for (let i = 0; packed.length < shards; i++) {
    const closed = packer.add(new TextEncoder().encode(canonicalJson({ text: `${tag} record ${i} ` + 'word '.repeat(200) })))
    if (closed !== undefined) packed.push(closed.slice())
  }
  const records = packed.flatMap(s => splitShard(s))
  if (held) for (const s of packed) w.remote.set(shardCid(s).toString(), s)
  const key = Wallet.createRandom()
  const c = await signContribution(key, binding, {
    datanet: w.datanet.id, contributor: key.address, nonce: 1, timestamp: Date.now(),
    shards: packed.map(s => shardCid(s)), recordCount: records.length, byteSize: packed.reduce((a, s) => a + s.length, 0),
    recordsRoot: merkleRoot((forgedRoot ? records.slice(1) : records).map(r => r.hash))
  })
  return encodeContribution(c)
}

async function gossip (w: World, bytes: Uint8Array): Promise<string> {
  const ctx: GossipContext = { publisher: peerIdFromString(PUBLISHER), propagationSource: peerIdFromString(PUBLISHER), msgId: Math.random().toString() }
  const g = w.handler.decode(bytes)
  await w.handler.validate(g, ctx)
  w.handler.handle(g, ctx)
  return (await contributionCid(bytes)).toString()
}

// stall 2 s; the link serves one 64 KB shard per 50 ms: 16 contributions of 4 shards
// take 3.2 s to arrive in all, so the last ones wait ~3 s behind the others (with 8
// requests out per publisher, a block arrives within 400 ms: 5× below the stall)
const FETCH = { stallMs: 2000, retryMs: 100, attempts: 2 }

test('a burst of 16 honest contributions over a slow link: all stored, none timed out, the publisher not penalised', async () => {
  const w = await world(50, FETCH)
  try {
    const cids: string[] = []
    const messages = []
    for (let i = 0; i < 16; i++) messages.push(await contribution(w, `c${i}`, 4))
    // all at once, as a burst arrives
    for (const m of messages) cids.push(await gossip(w, m))
    await waitFor(() => cids.every(c => w.stored.has(c)) || w.receiver.pendingFetches === 0, { timeoutMs: 30_000, what: 'the burst to be fetched or given up' })
    assert.equal(w.penalties, [], 'no honest contribution of the burst is timed out')
    assert.is(cids.filter(c => w.stored.has(c)).length, 16)
  } finally {
    await w.close()
  }
})

test('a contribution whose shards nobody has still costs its publisher after the stall time, beside honest ones', async () => {
  const w = await world(50, FETCH)
  try {
    const missing = await gossip(w, await contribution(w, 'nobody', 2, false))
    const honest = await gossip(w, await contribution(w, 'honest', 2))
    await waitFor(() => w.stored.has(honest) && w.penalties.length >= 2, { timeoutMs: 10_000, what: 'the honest one stored and the missing one penalised on each attempt' })
    assert.ok(w.penalties.every(p => p === 'CONTRIBUTION_ERROR_SHARDS_UNAVAILABLE'))
    assert.not.ok(w.stored.has(missing))
  } finally {
    await w.close()
  }
})

test('the record hashes of a contribution whose shards pass the check are kept for the versions that append them; a contribution whose shards fail it leaves none', async () => {
  const memo = new ShardHashes()
  const w = await world(0, FETCH, memo)
  try {
    const kept = await contribution(w, 'kept', 3)
    const honest = await gossip(w, kept)
    const forgedBytes = await contribution(w, 'forged', 2, true, true)
    await gossip(w, forgedBytes)
    await waitFor(() => w.stored.has(honest) && w.penalties.length > 0, { timeoutMs: 10_000, what: 'the honest one stored and the forged one refused' })
    assert.equal(w.penalties, ['CONTRIBUTION_ERROR_RECORDS_ROOT_MISMATCH'])
    for (const shard of decodeContribution(kept, 16).shards) {
      const expected = splitShard(w.remote.get(shard.toString())!).map(r => Buffer.from(r.hash).toString('hex'))
      assert.equal(memo.get(shard)?.map(h => Buffer.from(h).toString('hex')), expected)
    }
    for (const shard of decodeContribution(forgedBytes, 16).shards) assert.is(memo.get(shard), undefined)
  } finally {
    await w.close()
  }
})

// Bitswap sends a want to every peer and each holder answers: a validator received each
// gossiped shard 2.4–3.4 times (scripts/bench/finality.ts, BENCH_METRICS). The publisher
// holds its contribution's shards, so they are asked of it alone.
test('a gossiped contribution\'s shards are asked of its publisher alone: no want goes to every peer', async () => {
  const w = await world(0, FETCH, undefined, 'serves')
  try {
    const cids = [await gossip(w, await contribution(w, 'direct-a', 3)), await gossip(w, await contribution(w, 'direct-b', 2))]
    await waitFor(() => cids.every(c => w.stored.has(c)), { timeoutMs: 10_000, what: 'both contributions stored' })
    assert.is(w.wants(), 0, 'no shard asked of the network')
    assert.is(w.asked(), 5, 'each shard asked of the publisher once')
    assert.equal(w.penalties, [])
  } finally {
    await w.close()
  }
})

test('a publisher that sends forged shards is penalised for it, and the shards come from the network', async () => {
  const w = await world(0, FETCH, undefined, 'forges')
  try {
    const cid = await gossip(w, await contribution(w, 'forged-direct', 2))
    await waitFor(() => w.stored.has(cid), { timeoutMs: 10_000, what: 'the contribution stored from the network\'s copies' })
    assert.equal(w.penalties, ['CONTRIBUTION_ERROR_FORGED_SHARD', 'CONTRIBUTION_ERROR_FORGED_SHARD'])
    assert.is(w.wants(), 2)
  } finally {
    await w.close()
  }
})

for (const [publisher, who] of [['old', 'without the block protocol (an older node)'], ['unreachable', 'that cannot be reached']] as const) {
  test(`a publisher ${who}: its shards come by bitswap, and it is not asked again for a while`, async () => {
    const w = await world(0, FETCH, undefined, publisher)
    try {
      const first = await gossip(w, await contribution(w, `${publisher}-a`, 1))
      await waitFor(() => w.stored.has(first), { timeoutMs: 10_000, what: 'the first contribution stored' })
      const second = await gossip(w, await contribution(w, `${publisher}-b`, 3))
      await waitFor(() => w.stored.has(second), { timeoutMs: 10_000, what: 'the second contribution stored' })
      assert.is(w.asked(), 1, 'asked once, then remembered')
      assert.is(w.wants(), 4)
      assert.equal(w.penalties, [])
    } finally {
      await w.close()
    }
  })
}

test('a publisher that does not answer: after directMs the shards are asked of the network, and nothing is penalised', async () => {
  const w = await world(0, { ...FETCH, directMs: 200 }, undefined, 'silent')
  try {
    const cid = await gossip(w, await contribution(w, 'silent', 2))
    await waitFor(() => w.stored.has(cid), { timeoutMs: 10_000, what: 'the contribution stored from the network' })
    assert.is(w.wants(), 2)
    assert.is(w.asked(), 2, 'slow is not unreachable: each shard was asked of it')
    assert.equal(w.penalties, [])
  } finally {
    await w.close()
  }
})

test.run()
