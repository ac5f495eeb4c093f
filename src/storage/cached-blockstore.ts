/**
 * The block store: small blocks in one LevelDB, larger ones (shards up to a few MiB) a
 * flat file each, and the blocks last written or read kept in memory.
 *
 * - A file per block costs a directory check, a temporary file, its write, close and
 *   rename, and for a miss an error from `access`: a node catching up on small versions
 *   wrote three such files a version, and those calls were the largest part of its main
 *   thread (`catch-up.ts`, profiled). Small blocks are written many in one batch instead.
 * - Large blocks stay files: LevelDB would rewrite them in every compaction and keep its
 *   table files memory-mapped, which a large upload would pay in RSS.
 * - A block is read several times soon after it arrives — checked, pinned (Helia's walk
 *   reads every block), its records hashed into the version, then indexed for attribution.
 *   Blocks are immutable and named by their hash, so a cached copy is never stale; a
 *   delete drops it.
 *
 * In a store made since, every block has an entry in the database — its bytes, or a marker
 * for a file — so `has` of a block not here (every new block, as Helia asks before each
 * write) is one database lookup, not a failed `access` on a file. A file's marker says
 * "being written" until the file is whole, and then "in a file": a crash between leaves a
 * marker that sends `has` to the file, so a block is neither lost nor claimed. A store
 * written before small blocks moved keeps its files without entries: there a lookup that
 * misses the database tries the file.
 */
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { ClassicLevel } from 'classic-level'
import { FsBlockstore, type FsBlockstoreInit } from 'blockstore-fs'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import * as Digest from 'multiformats/hashes/digest'
import type { AbortOptions } from '@libp2p/interface'
import { readOne } from './level-reads.ts'

/** What putMany takes and getAll yields (interface-blockstore's shapes). */
interface InputPair { cid: CID, bytes: Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array> }
interface Pair { cid: CID, bytes: Generator<Uint8Array> | AsyncGenerator<Uint8Array> }

/** Bytes of blocks kept (16 MiB: a few versions' shards), and the largest block kept. */
export const BLOCK_CACHE_BYTES = 16 * 1024 * 1024
const LARGEST_CACHED = 2 * 1024 * 1024
/** Blocks up to this size go to the database (a version, a contribution, a small shard). */
export const SMALL_BLOCK_BYTES = 64 * 1024
/** Small blocks written in one batch by putMany. */
const BATCH_BLOCKS = 256
/** LevelDB memory-maps the tables it keeps open (counted as RSS): 32 tables of 1 MiB at most. */
const SMALL_LEVEL_OPTIONS = { cacheSize: 2 * 1024 * 1024, writeBufferSize: 2 * 1024 * 1024, maxOpenFiles: 32, maxFileSize: 1024 * 1024 }

/** The database's entries for a block kept as a file: whole, and being written. Blocks of fewer than 2 bytes are files, so an entry of 2 bytes or more is a block. */
const IN_FILE = new Uint8Array(0)
const WRITING = Uint8Array.of(0)
/** Set when every block has an entry (not a multihash: its varint never ends). */
const COMPLETE = Uint8Array.of(0xff, 0xff)

export interface CachedBlockstoreInit extends FsBlockstoreInit {
  /** Bytes of blocks kept in memory; 0 turns the cache off. */
  cacheBytes?: number
  /** Blocks up to this size go to the database; 0 keeps every block a file. */
  smallBlockBytes?: number
}

export class CachedBlockstore extends FsBlockstore {
  /** By multihash (what the file is named by), least recently used first. */
  private readonly cache = new Map<string, Uint8Array>()
  private cached = 0
  private readonly limit: number
  /** Deletes so far: a read that a delete overtook must not put the block back. */
  private deletes = 0

  /** Small blocks by multihash; undefined when every block is a file. */
  private readonly small: ClassicLevel<Uint8Array, Uint8Array> | undefined
  private readonly smallBytes: number
  /** Every block has an entry in the database: a miss there is a miss. */
  private complete = false

  constructor (location: string, init: CachedBlockstoreInit = {}) {
    super(location, init)
    this.limit = init.cacheBytes ?? BLOCK_CACHE_BYTES
    this.smallBytes = init.smallBlockBytes ?? SMALL_BLOCK_BYTES
    this.small = this.smallBytes > 0
      ? new ClassicLevel<Uint8Array, Uint8Array>(join(location, 'small'), { keyEncoding: 'view', valueEncoding: 'view', ...SMALL_LEVEL_OPTIONS })
      : undefined
  }

  override async open (): Promise<void> {
    await super.open()
    if (this.small === undefined) return
    await this.small.open()
    if (await this.small.get(COMPLETE) !== undefined) {
      this.complete = true
    } else if ((await readdir(this.path)).every(name => name === 'small')) {
      // a new store: no file without its entry
      await this.small.put(COMPLETE, Uint8Array.of(1))
      this.complete = true
    }
  }

  /** A file's marker: WRITING before its file is written, IN_FILE once it is whole. */
  private async mark (cid: CID, value: Uint8Array): Promise<void> {
    await this.small?.put(cid.multihash.bytes, value)
  }

  override async close (): Promise<void> {
    await this.small?.close()
    await super.close()
  }

  /** Kept in the database (values under 2 bytes are files' markers: such blocks are files). */
  private isSmall (bytes: Uint8Array): boolean {
    return this.small !== undefined && bytes.byteLength >= 2 && bytes.byteLength <= this.smallBytes
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
    if (val instanceof Uint8Array && this.small !== undefined && this.isSmall(val)) {
      options?.signal?.throwIfAborted()
      await this.small.put(key.multihash.bytes, val)
      this.remember(keyOf(key), val)
      return key
    }
    await this.mark(key, WRITING)
    const cid = await super.put(key, val, options)
    await this.mark(key, IN_FILE)
    if (val instanceof Uint8Array) this.remember(keyOf(key), val)
    return cid
  }

  /** Small blocks in batches of BATCH_BLOCKS, the rest as files (many at once). */
  override async * putMany (source: Iterable<InputPair> | AsyncIterable<InputPair>, options?: AbortOptions): AsyncGenerator<CID> {
    const small: Array<{ cid: CID, bytes: Uint8Array }> = []
    const large: InputPair[] = []
    const writeSmall = async (): Promise<CID[]> => {
      options?.signal?.throwIfAborted()
      await this.small?.batch(small.map(b => ({ type: 'put' as const, key: b.cid.multihash.bytes, value: b.bytes })))
      for (const b of small) this.remember(keyOf(b.cid), b.bytes)
      const done = small.map(b => b.cid)
      small.length = 0
      return done
    }
    const writeLarge = async (): Promise<CID[]> => {
      const done: CID[] = []
      // many files at once (FsBlockstore.putMany calls this.put: each with its markers)
      for await (const cid of super.putMany(large.splice(0) as unknown as Pair[], options)) done.push(cid)
      return done
    }
    for await (const pair of source) {
      if (pair.bytes instanceof Uint8Array && this.isSmall(pair.bytes)) {
        small.push({ cid: pair.cid, bytes: pair.bytes })
        if (small.length >= BATCH_BLOCKS) yield * await writeSmall()
      } else {
        large.push(pair)
        if (large.length >= BATCH_BLOCKS) yield * await writeLarge()
      }
    }
    if (small.length > 0) yield * await writeSmall()
    if (large.length > 0) yield * await writeLarge()
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
    const stored = this.small === undefined ? undefined : await readOne(this.small, key.multihash.bytes)
    if (stored !== undefined && stored.byteLength >= 2) {
      if (deletes === this.deletes) this.remember(k, stored)
      yield stored
      return
    }
    const parts: Uint8Array[] = []
    for await (const part of super.get(key, options)) parts.push(part)
    const bytes = parts.length === 1 ? parts[0] as Uint8Array : Buffer.concat(parts)
    if (deletes === this.deletes) this.remember(k, bytes)
    yield bytes
  }

  override async has (key: CID, options?: AbortOptions): Promise<boolean> {
    const k = keyOf(key)
    if (this.cache.has(k)) return true
    const deletes = this.deletes
    const entry = this.small === undefined ? undefined : await readOne(this.small, key.multihash.bytes)
    // a small block, read whole: kept, as Helia's get asks `has` and then reads it
    if (entry !== undefined && entry.byteLength >= 2 && deletes === this.deletes) this.remember(k, entry)
    // a block, or a whole file's marker; a file being written (or cut short by a crash) is as its file says
    if (entry !== undefined && entry.byteLength !== WRITING.byteLength) return true
    if (entry === undefined && this.complete) return false
    return await super.has(key, options)
  }

  override async delete (key: CID, options?: AbortOptions): Promise<void> {
    this.deletes++
    this.forget(keyOf(key))
    await this.small?.del(key.multihash.bytes)
    await super.delete(key, options)
  }

  /** Every block: the database's, then the files' (named as the files are: raw CIDs). */
  override async * getAll (options?: AbortOptions): AsyncGenerator<Pair> {
    if (this.small !== undefined) {
      for await (const [key, value] of this.small.iterator()) {
        options?.signal?.throwIfAborted()
        // files' markers (the files follow) and the store's own flag
        if (value.byteLength < 2 || Buffer.compare(key, COMPLETE) === 0) continue
        yield { cid: CID.createV1(raw.code, Digest.decode(key)), bytes: (function * () { yield value })() }
      }
    }
    yield * super.getAll(options)
  }
}

const keyOf = (cid: CID): string => Buffer.from(cid.multihash.bytes).toString('latin1')
