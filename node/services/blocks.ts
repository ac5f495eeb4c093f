import { createUnsafe } from 'multiformats/block'
import type { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import type { GraphNode, GraphWalkerFactory, Helia, WalkOptions } from '@helia/interface'
import * as cborg from 'cborg'
import { Key } from 'interface-datastore'
import { base36 } from 'multiformats/bases/base36'
import { KeyedMutex } from '../../src/storage/keyed-mutex.ts'

/**
 * The limit of each attempt of a fetch, growing: a want bitswap lost is sent again. Helia
 * sends a want to each peer once, so a want sent over a connection being replaced (a
 * restarted peer), or dropped under a concurrent want of the same block (a want cancelled
 * on the block's arrival is reused by a want added before the cancel is flushed), waits
 * for the whole deadline though the block is a round trip away; the soak's restarted
 * validators waited 30 s for one contribution in catch-up.
 */
// not shorter: a 1 MiB shard under load can take seconds, and a cancelled want wastes what was in flight
const ATTEMPT_MS = [5_000, 10_000, 20_000]
/** Longer than Helia's debounce of wantlist changes (10 ms), so a cancelled want is gone before it is sent again. */
const WANT_FLUSH_MS = 50

/** A whole block's bytes (Helia 7's blockstore yields chunks). */
async function readBlock (helia: Helia, cid: CID, options: { signal?: AbortSignal, offline?: boolean }): Promise<Uint8Array> {
  const chunks: Uint8Array[] = []
  for await (const chunk of helia.blockstore.get(cid, options)) chunks.push(chunk)
  return chunks.length === 1 ? chunks[0] as Uint8Array : Buffer.concat(chunks)
}

/**
 * A whole block's bytes, from here or from peers until `signal` ends; a fetch from peers
 * is tried again when an attempt exceeds its limit (`attemptMs`, default 5 s, then doubling to 20 s).
 */
export async function getBlock (helia: Helia, cid: CID, options: { signal?: AbortSignal, offline?: boolean, attemptMs?: number } = {}): Promise<Uint8Array> {
  const { signal, offline } = options
  if (offline === true) return await readBlock(helia, cid, { signal, offline })
  const limits = options.attemptMs === undefined ? ATTEMPT_MS : ATTEMPT_MS.map((_, i) => (options.attemptMs as number) * 2 ** i)
  for (let attempt = 0; ; attempt++) {
    const limit = AbortSignal.timeout(limits[Math.min(attempt, limits.length - 1)] as number)
    try {
      return await readBlock(helia, cid, { signal: signal === undefined ? limit : AbortSignal.any([signal, limit]) })
    } catch (err) {
      if (signal?.aborted === true || !limit.aborted) throw err
    }
    await new Promise(resolve => setTimeout(resolve, WANT_FLUSH_MS))
  }
}

/**
 * Pins a DAG (and fetches what is missing of it). `depth` 0 pins the block alone: a block
 * whose links are pinned on their own (a version's parent and contributions) must not
 * walk them again.
 */
export async function pin (helia: Helia, cid: CID, signal?: AbortSignal, depth?: number): Promise<void> {
  await pinMany(helia, [cid], { signal, depth })
}

/**
 * Fetches blocks ahead of the reader: up to `concurrency` in flight, read back in order.
 * Bitswap asks every connected peer, so a contribution's shards come from whoever has them.
 * `fetch` gets one block (default: getBlock; the receiver's goes through its publisher's permits).
 */
export function prefetcher (helia: Helia, cids: readonly CID[], concurrency: number, signal: AbortSignal, fetch: (cid: CID) => Promise<Uint8Array> = async cid => await getBlock(helia, cid, { signal })): (cid: CID) => Promise<Uint8Array> {
  const inflight = new Map<string, Promise<Uint8Array>>()
  let next = 0
  const fill = (): void => {
    while (next < cids.length && inflight.size < concurrency) {
      const cid = cids[next++] as CID
      const p = fetch(cid)
      p.catch(() => {})
      inflight.set(cid.toString(), p)
    }
  }
  return async (cid: CID): Promise<Uint8Array> => {
    fill()
    const key = cid.toString()
    const p = inflight.get(key) ?? fetch(cid)
    try {
      return await p
    } finally {
      inflight.delete(key)
      fill()
    }
  }
}

/**
 * The pin walker: it does not read back the raw blocks (shards) the node already holds.
 * Helia's default walker reads every block of the DAG into an unbounded queue that runs
 * ahead of the pin writes, so pinning a 1 GB contribution read its 1,024 shards again
 * and buffered them: the largest RSS peak of an upload (+80 MB anonymous, for ~45 s).
 * A raw block has no links, so a pin needs only to know that it is here; one that is not
 * is still fetched, as before. The pin records written are the same.
 */
const localShardsUnread: GraphWalkerFactory = ({ blockstore, getCodec }) => ({
  async * walk<T> (root: CID, options: WalkOptions<T> = {}): AsyncGenerator<GraphNode<T>> {
    const maxDepth = options.depth ?? Infinity
    const stack = [{ cid: root, depth: 0, path: [root] }]
    for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
      const { cid, depth, path } = next
      if (cid.code === raw.code && await blockstore.has(cid, options)) {
        // Helia's pins use only node.block.cid
        yield { block: { cid }, depth, path } as unknown as GraphNode<T>
        continue
      }
      const chunks: Uint8Array[] = []
      for await (const chunk of blockstore.get(cid, options)) chunks.push(chunk)
      const block = createUnsafe({ cid, bytes: chunks.length === 1 ? chunks[0] as Uint8Array : Buffer.concat(chunks), codec: await getCodec(cid.code) })
      if (depth < maxDepth) {
        const links = [...block.links()].map(([, link]) => link)
        for (const link of links.reverse()) stack.push({ cid: link, depth: depth + 1, path: [...path, link] })
      }
      yield { block, depth, path } as GraphNode<T>
    }
  }
})

/*
 * Pins written in Helia's own records (helia/dist/src/pins.js: a `/pin/<cid>` record per
 * root, a `/pinned-block/<multihash>` record per block naming the roots that pin it), so
 * Helia's isPinned, ls, rm and gc read them as their own; test/unit/pins.test.ts fails if
 * a Helia upgrade changes them. Helia's `pins.add` reads and rewrites each block's record
 * one by one (~7 datastore operations for a contribution of one shard: 45 % of a caught-up
 * range's time); here the roots' walks come first, then every record is read at once and
 * written in one batch. The read-modify-write holds a lock per Helia, the one writer of
 * pin records in the node.
 */
const PIN_PREFIX = '/pin/'
const PINNED_BLOCK_PREFIX = '/pinned-block/'
const pinKey = (cid: CID): Key => new Key(`${PIN_PREFIX}${(cid.version === 0 ? cid.toV1() : cid).toString(base36)}`)
const pinnedBlockKey = (cid: CID): Key => new Key(`${PINNED_BLOCK_PREFIX}${base36.encode(cid.multihash.bytes)}`)
interface PinnedBlock { pinCount: number, pinnedBy: Uint8Array[] }
const pinWriters = new WeakMap<Helia, KeyedMutex>()
const WALK_CONCURRENCY = 16

/** Pins each of `roots` not pinned yet, walking it to `depth` (default: all of it; fetching what is missing), in one datastore batch. */
export async function pinMany (helia: Helia, roots: readonly CID[], opts: { signal?: AbortSignal, depth?: number } = {}): Promise<void> {
  const { signal } = opts
  const depth = Math.round(opts.depth ?? Infinity)
  const walker = localShardsUnread({ blockstore: helia.blockstore, getCodec: async code => await helia.getCodec(code) })
  const unique = [...new Map(roots.map(r => [r.toString(), r])).values()]
  // walked several at once (each walk is a few small reads that wait on the thread pool), kept in the roots' order
  const walked: Array<{ root: CID, blocks: CID[] } | undefined> = []
  let next = 0
  const walk = async (): Promise<void> => {
    for (let i = next++; i < unique.length; i = next++) {
      const root = unique[i] as CID
      if (await helia.pins.isPinned(root, { signal })) continue
      const blocks: CID[] = []
      for await (const node of walker.walk(root, { signal, depth })) blocks.push(node.block.cid)
      walked[i] = { root, blocks }
    }
  }
  await Promise.all(Array.from({ length: Math.min(WALK_CONCURRENCY, unique.length) }, walk))
  const todo = walked.filter(w => w !== undefined)
  if (todo.length === 0) return
  let writer = pinWriters.get(helia)
  if (writer === undefined) pinWriters.set(helia, writer = new KeyedMutex())
  await writer.run('pins', async () => {
    const { datastore } = helia
    const records = new Map<string, { key: Key, block: PinnedBlock }>()
    for (const { blocks } of todo) {
      for (const cid of blocks) {
        const key = pinnedBlockKey(cid)
        if (!records.has(key.toString())) records.set(key.toString(), { key, block: { pinCount: 0, pinnedBy: [] } })
      }
    }
    await Promise.all([...records.values()].map(async r => {
      try {
        r.block = cborg.decode(await datastore.get(r.key, { signal })) as PinnedBlock
      } catch (err) {
        if ((err as Error).name !== 'NotFoundError') throw err
      }
    }))
    // pinned meanwhile by another call: its records are written
    const pinned = await Promise.all(todo.map(async ({ root }) => await datastore.has(pinKey(root), { signal })))
    const batch = datastore.batch()
    for (const [i, { root, blocks }] of todo.entries()) {
      if (pinned[i] === true) continue
      for (const cid of blocks) {
        const record = records.get(pinnedBlockKey(cid).toString()) as { key: Key, block: PinnedBlock }
        if (record.block.pinnedBy.some(c => equalBytes(c, root.bytes))) continue
        record.block.pinCount++
        record.block.pinnedBy.push(root.bytes)
      }
      batch.put(pinKey(root), cborg.encode({ depth, metadata: {} }))
    }
    for (const { key, block } of records.values()) if (block.pinCount > 0) batch.put(key, cborg.encode(block))
    await batch.commit({ signal })
  })
}

const equalBytes = (a: Uint8Array, b: Uint8Array): boolean => a.byteLength === b.byteLength && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b)
