/**
 * The datastore libp2p is given: its peer store's records written behind, in one batch
 * every few seconds, rather than one LevelDB put each. libp2p merges the negotiated
 * protocol into the remote peer's record at every stream it opens or accepts
 * (libp2p/src/connection.ts), stamping it with the time, so each bitswap want list, each
 * catch-up request and each identify cost a read, a decode, an encode and a put: ~0.5 s of
 * a validator's main thread in a 17 s finality run (scripts/bench/finality.ts, profiled).
 *
 * Peer records are soft state (addresses, protocols, tags; rebuilt by identify at each
 * connection), so a crash that loses the last seconds of them loses nothing a node needs.
 * Only keys under /peers/ wait; any other write goes through at once. Reads see the
 * writes that wait; a query writes them first.
 */
import type { AbortOptions } from '@libp2p/interface'
import type { Batch, Datastore, Key, KeyQuery, Pair, Query } from 'interface-datastore'
import { NotFoundError } from 'interface-store'

/** libp2p's peer store keys (@libp2p/peer-store: `/peers/<peer id>`). */
const PEERS_PREFIX = '/peers/'

/** How long a peer record's write may wait. */
export const PEER_RECORDS_FLUSH_MS = 5_000

export class PeerRecordsDatastore implements Datastore {
  private readonly inner: Datastore
  private readonly flushMs: number
  /** Writes waiting (undefined: a delete), by key. */
  private pending = new Map<string, { key: Key, value: Uint8Array | undefined }>()
  /** Writes being committed: still read from here until the batch is written. */
  private committing = new Map<string, { key: Key, value: Uint8Array | undefined }>()
  private timer: NodeJS.Timeout | undefined
  private flushing: Promise<void> = Promise.resolve()
  /** Batches written to the store (tests). */
  flushes = 0

  constructor (inner: Datastore, flushMs = PEER_RECORDS_FLUSH_MS) {
    this.inner = inner
    this.flushMs = flushMs
  }

  private waiting (key: Key): { value: Uint8Array | undefined } | undefined {
    const id = key.toString()
    return this.pending.get(id) ?? this.committing.get(id)
  }

  private later (key: Key, value: Uint8Array | undefined): boolean {
    const id = key.toString()
    if (!id.startsWith(PEERS_PREFIX)) return false
    this.pending.set(id, { key, value })
    if (this.timer === undefined) {
      this.timer = setTimeout(() => { void this.flush().catch(() => {}) }, this.flushMs)
      this.timer.unref()
    }
    return true
  }

  async put (key: Key, value: Uint8Array, options?: AbortOptions): Promise<Key> {
    if (this.later(key, value)) return key
    return await this.inner.put(key, value, options)
  }

  async get (key: Key, options?: AbortOptions): Promise<Uint8Array> {
    const w = this.waiting(key)
    if (w === undefined) return await this.inner.get(key, options)
    if (w.value === undefined) throw new NotFoundError()
    return w.value
  }

  async has (key: Key, options?: AbortOptions): Promise<boolean> {
    const w = this.waiting(key)
    return w === undefined ? await this.inner.has(key, options) : w.value !== undefined
  }

  async delete (key: Key, options?: AbortOptions): Promise<void> {
    if (!this.later(key, undefined)) await this.inner.delete(key, options)
  }

  async * putMany (source: Iterable<Pair> | AsyncIterable<Pair>, options?: AbortOptions): AsyncGenerator<Key> {
    for await (const { key, value } of source) yield await this.put(key, value, options)
  }

  async * getMany (source: Iterable<Key> | AsyncIterable<Key>, options?: AbortOptions): AsyncGenerator<Pair> {
    for await (const key of source) yield { key, value: await this.get(key, options) }
  }

  async * deleteMany (source: Iterable<Key> | AsyncIterable<Key>, options?: AbortOptions): AsyncGenerator<Key> {
    for await (const key of source) {
      await this.delete(key, options)
      yield key
    }
  }

  batch (): Batch {
    const ops: Array<{ key: Key, value: Uint8Array | undefined }> = []
    return {
      put: (key, value) => { ops.push({ key, value }) },
      delete: key => { ops.push({ key, value: undefined }) },
      commit: async options => {
        for (const { key, value } of ops) {
          if (value === undefined) await this.delete(key, options)
          else await this.put(key, value, options)
        }
      }
    }
  }

  async * query (q: Query, options?: AbortOptions): AsyncGenerator<Pair> {
    await this.flush()
    yield * this.inner.query(q, options)
  }

  async * queryKeys (q: KeyQuery, options?: AbortOptions): AsyncGenerator<Key> {
    await this.flush()
    yield * this.inner.queryKeys(q, options)
  }

  /** Writes what waits, in one batch (after the batch being written, if any). */
  async flush (): Promise<void> {
    clearTimeout(this.timer)
    this.timer = undefined
    const previous = this.flushing
    const next = previous.then(async () => {
      if (this.pending.size === 0) return
      this.committing = this.pending
      this.pending = new Map()
      const batch = this.inner.batch()
      for (const { key, value } of this.committing.values()) {
        if (value === undefined) batch.delete(key)
        else batch.put(key, value)
      }
      try {
        await batch.commit()
        this.flushes++
      } catch (err) {
        // kept for the next flush, under anything written since
        for (const [id, w] of this.committing) if (!this.pending.has(id)) this.pending.set(id, w)
        throw err
      } finally {
        this.committing = new Map()
      }
    })
    this.flushing = next.catch(() => {})
    await next
  }
}
