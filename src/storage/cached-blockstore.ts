/**
 * The flat-file block store with the blocks last written or read kept in memory. A block
 * is read several times soon after it arrives — checked, pinned (Helia's walk reads every
 * block), its records hashed into the version, then indexed for attribution — and each
 * read of a file costs a stat, an open, a read stream and a close. Blocks are immutable
 * and named by their hash, so a cached copy is never stale; a delete drops it.
 */
import { FsBlockstore, type FsBlockstoreInit } from 'blockstore-fs'
import type { CID } from 'multiformats/cid'
import type { AbortOptions } from '@libp2p/interface'

/** Bytes of blocks kept (16 MiB: a few versions' shards), and the largest block kept. */
export const BLOCK_CACHE_BYTES = 16 * 1024 * 1024
const LARGEST_CACHED = 2 * 1024 * 1024

export interface CachedBlockstoreInit extends FsBlockstoreInit {
  /** Bytes of blocks kept in memory; 0 turns the cache off. */
  cacheBytes?: number
}

export class CachedBlockstore extends FsBlockstore {
  /** By multihash (what the file is named by), least recently used first. */
  private readonly cache = new Map<string, Uint8Array>()
  private cached = 0
  private readonly limit: number
  /** Deletes so far: a read that a delete overtook must not put the block back. */
  private deletes = 0

  constructor (location: string, init: CachedBlockstoreInit = {}) {
    super(location, init)
    this.limit = init.cacheBytes ?? BLOCK_CACHE_BYTES
  }

  /** Bytes held now (tests, metrics). */
  get cachedBytes (): number {
    return this.cached
  }

  private remember (key: string, bytes: Uint8Array): void {
    if (bytes.byteLength > Math.min(LARGEST_CACHED, this.limit)) return
    // a view into a larger buffer (a network message, Node's buffer pool) would keep all of
    // it alive: the cache holds its own copy, so what it counts is what it holds
    if (bytes.byteOffset !== 0 || bytes.byteLength !== bytes.buffer.byteLength) bytes = new Uint8Array(bytes)
    this.forget(key)
    this.cache.set(key, bytes)
    this.cached += bytes.byteLength
    for (const [k, b] of this.cache) {
      if (this.cached <= this.limit) break
      this.cache.delete(k)
      this.cached -= b.byteLength
    }
  }

  private forget (key: string): void {
    const old = this.cache.get(key)
    if (old === undefined) return
    this.cache.delete(key)
    this.cached -= old.byteLength
  }

  override async put (key: CID, val: Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array>, options?: AbortOptions): Promise<CID> {
    const cid = await super.put(key, val, options)
    if (val instanceof Uint8Array) this.remember(keyOf(key), val)
    return cid
  }

  override async * get (key: CID, options?: AbortOptions): AsyncGenerator<Uint8Array> {
    const k = keyOf(key)
    const hit = this.cache.get(k)
    if (hit !== undefined) {
      options?.signal?.throwIfAborted()
      // most recently used last
      this.cache.delete(k)
      this.cache.set(k, hit)
      yield hit
      return
    }
    const deletes = this.deletes
    const parts: Uint8Array[] = []
    for await (const part of super.get(key, options)) parts.push(part)
    const bytes = parts.length === 1 ? parts[0] as Uint8Array : Buffer.concat(parts)
    if (deletes === this.deletes) this.remember(k, bytes)
    yield bytes
  }

  override async has (key: CID, options?: AbortOptions): Promise<boolean> {
    if (this.cache.has(keyOf(key))) return true
    return await super.has(key, options)
  }

  override async delete (key: CID, options?: AbortOptions): Promise<void> {
    this.deletes++
    this.forget(keyOf(key))
    await super.delete(key, options)
  }
}

const keyOf = (cid: CID): string => Buffer.from(cid.multihash.bytes).toString('latin1')
