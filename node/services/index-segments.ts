/**
 * The index segments of one datanet on disk and in memory (issue 14 item 5): one delta
 * segment per final version (`<height>.seg`, the source of truth), and merged segments
 * (`m-<from>-<to>.seg`) built in the background as the aligned-tier policy asks
 * (src/attribution/merge-policy.ts). Segments written on the main thread (small versions,
 * small merges) are appended to the datanet's pack (segment-pack.ts) under those names;
 * those the worker threads write are files. The index of version h is its cover:
 * a few merged segments, then single versions — so lookups stay flat as versions pile up.
 * Answers never depend on the segmentation, so a merged file that is missing or corrupt
 * only costs speed: it is ignored and rebuilt from the per-version files.
 *
 * Memory: the segments of the newest version's cover stay loaded; any other segment
 * (older versions' covers, single versions already merged) is loaded on demand into a
 * cache bounded by bytes, least recently used out first.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { Worker } from 'node:worker_threads'
import type { CorpusIndex, IndexSegment } from '../../src/attribution/corpus-index.ts'
import { DEFAULT_MERGE_FANOUT, type HeightRange, coverOf, dueMerges, mergeEndingAt, mergeParts } from '../../src/attribution/merge-policy.ts'
import { bytesEqual, sha256 } from '../../src/codec/hash.ts'
import type { Logger } from '../logger.ts'
import type { MergeJob, MergeReply } from './index-merge-worker.ts'
import { SegmentPack } from './segment-pack.ts'
import { writeSegmentFileSync } from './segment-files.ts'

type Lib = Pick<typeof import('../../src/attribution/index.ts'), 'CorpusIndex' | 'EMPTY_HEAD' | 'decodeSegment' | 'encodeSegment'>

export interface IndexSegmentsOptions {
  /** This datanet's directory. */
  dir: string
  logger: Logger
  fanout?: number
  /** Bytes of segments kept loaded beyond the newest version's cover (default 128 MB). */
  cacheBytes?: number
  /** false: no background merges (the per-version layout of before). */
  merge?: boolean
  /** Merges of at most this many bytes of parts run on the main thread (default INLINE_MERGE_BYTES; 0: all in the worker). */
  inlineMergeBytes?: number
}

interface VersionMeta {
  /** Chain head and last recordIndex after this version. */
  head: Uint8Array
  lastRecordIndex: number
  /** Versions ≤ this one that added records. */
  withRecords: number
}

/** The datanet directory's pack of small segments. */
const PACK_FILE = 'segments.pack'
/** A file's sha256, kept in the pack under its name with this suffix. */
const DIGEST_SUFFIX = '.sha256'

/** The names of the segments stored in a datanet's directory, files and packed (tests, tools). */
export function storedSegmentNames (dir: string): string[] {
  const files = existsSync(dir) ? readdirSync(dir).filter(f => f.endsWith('.seg')) : []
  return [...new Set([...files, ...SegmentPack.names(join(dir, PACK_FILE)).filter(f => f.endsWith('.seg'))])].sort()
}

const key = (r: HeightRange): string => `${r.from}-${r.to}`
const MERGED_FILE = /^m-(\d{10})-(\d{10})\.seg$/
const sizeOf = (s: IndexSegment): number => s.tokens.byteLength + s.sa.byteLength + 12 * s.recordCount
/** Old indexes kept built (their unigram counts are a pass over every token). */
const INDEX_CACHE = 8
/**
 * Merges whose parts take at most this many bytes on disk (~100 K tokens, a few ms of
 * SA-IS) run on the main thread: cheaper than a worker's start (~130 MB and its modules),
 * which a datanet of small versions would otherwise pay every other version.
 */
const INLINE_MERGE_BYTES = 1 << 20
/** Segments written on the main thread up to this size go to the pack; larger ones (rare: a here-build of a large version after its worker failed) to a file. */
const PACK_MAX_BYTES = 4 << 20

export class IndexSegments {
  private readonly opts: IndexSegmentsOptions
  private readonly lib: Lib
  private readonly fanout: number
  private readonly cacheBytes: number
  /** By height; [0] is the empty index. */
  private readonly versions: VersionMeta[]
  /** Merged ranges with a file, not yet found unusable. */
  private readonly merged = new Set<string>()
  /** Files read and fully verified (or written) by this process: later loads check structure only. */
  private readonly verified = new Set<string>()
  /** Merges that failed in this process: not retried until restart. */
  private readonly failed = new Set<string>()
  /**
   * Merges that may be due, in the order they are tried, and the height they are known up
   * to: scanned once (`dueMerges`, O(h)), then extended by the ranges each new height ends.
   * Scanning every height's ranges at each final version made a long history cost O(h) a
   * version (a catching-up node applies thousands).
   */
  private due: HeightRange[] | undefined
  private dueHeight = 0
  /** Loaded segments by range, least recently used first. */
  private readonly cache = new Map<string, IndexSegment>()
  private cachedBytes = 0
  private pinned = new Set<string>()
  private readonly indexes = new Map<number, { index: CorpusIndex, keys: string[] }>()
  private worker: Worker | undefined
  private running: { id: number, range: HeightRange } | undefined
  private nextJob = 1
  private idleWaiters: Array<() => void> = []
  private stopped = false
  /**
   * The bytes of small segment files this process wrote, until merged: an inline merge
   * reads its parts from here rather than back from their files (an open, a stat, a read
   * and a close each, through the thread pool: a catching-up node merges about once a version).
   */
  private readonly written = new Map<string, Uint8Array>()
  private writtenBytes = 0
  /** The small segments this thread writes. */
  private readonly pack: SegmentPack
  /** The directory exists (made once: a call a segment showed in a catch-up's profile). */
  private dirMade = false

  constructor (opts: IndexSegmentsOptions, lib: Lib) {
    this.opts = opts
    this.lib = lib
    this.fanout = opts.fanout ?? DEFAULT_MERGE_FANOUT
    this.cacheBytes = opts.cacheBytes ?? 128 * 1024 * 1024
    this.versions = [{ head: lib.EMPTY_HEAD, lastRecordIndex: -1, withRecords: 0 }]
    this.pack = new SegmentPack(join(opts.dir, PACK_FILE))
    const names = [...this.pack.names()]
    if (existsSync(opts.dir)) {
      for (const name of readdirSync(opts.dir)) {
        if (name.endsWith('.tmp')) rmSync(join(opts.dir, name), { force: true })
        else names.push(name)
      }
    }
    for (const name of names) {
      const m = MERGED_FILE.exec(name)
      if (m !== null) this.merged.add(key({ from: Number(m[1]), to: Number(m[2]) }))
    }
  }

  /** The newest version held. */
  get height (): number {
    return this.versions.length - 1
  }

  /** Where the next version's segment continues from. */
  get base (): { head: Uint8Array, lastRecordIndex: number } {
    const v = this.versions[this.height] as VersionMeta
    return { head: v.head, lastRecordIndex: v.lastRecordIndex }
  }

  versionFile (height: number): string {
    return join(this.opts.dir, `${height.toString().padStart(10, '0')}.seg`)
  }

  private mergedFile (r: HeightRange): string {
    return join(this.opts.dir, `m-${r.from.toString().padStart(10, '0')}-${r.to.toString().padStart(10, '0')}.seg`)
  }

  private fileOf (r: HeightRange): string {
    return r.from === r.to ? this.versionFile(r.from) : this.mergedFile(r)
  }

  /** Ranges whose versions added no records have no segment. */
  private hasRecords (r: HeightRange): boolean {
    return (this.versions[r.to] as VersionMeta).withRecords > (this.versions[r.from - 1] as VersionMeta).withRecords
  }

  private readonly has = (r: HeightRange): boolean => this.merged.has(key(r)) || !this.hasRecords(r)

  /**
   * The per-version segment of `height` as stored, or undefined when it is absent. A packed
   * one is read against its sha256, which vouches that it is what this node built and
   * wrote, so its structure is checked alone; so is a file a worker wrote whose sha256 the
   * pack keeps and its bytes still match. Any other file is fully verified (hash chain,
   * suffix array): a restart read every version's segment so, ~55 ns a token.
   */
  readVersion (height: number): IndexSegment | undefined {
    const file = this.versionFile(height)
    const packed = this.pack.read(basename(file))
    const bytes = packed ?? (existsSync(file) ? readFileSync(file) : undefined)
    if (bytes === undefined) return undefined
    const segment = this.lib.decodeSegment(bytes, { verify: packed !== undefined || this.vouched(file, bytes) ? 'structure' : 'full' })
    this.verified.add(file)
    return segment
  }

  /** Is `bytes` what a worker of this node wrote to `file` (the sha256 it kept of it)? */
  private vouched (file: string, bytes: Uint8Array): boolean {
    let digest: Uint8Array | undefined
    try {
      digest = this.pack.read(basename(file) + DIGEST_SUFFIX)
    } catch {
      return false
    }
    return digest !== undefined && bytesEqual(sha256(bytes), digest)
  }

  /** Keeps the sha256 of a file a worker wrote (its bytes: what the worker handed back). */
  private keepDigest (file: string, digest: Uint8Array | undefined): void {
    if (digest === undefined || this.stopped) return
    this.append(basename(file) + DIGEST_SUFFIX, digest)
  }

  /**
   * A segment built for the next version elsewhere (index-builder.ts): added and counted as
   * verified; `bytes`: its encoding, already in its file when `written`, else stored here.
   */
  adopt (segment: IndexSegment, bytes: Uint8Array, written: boolean, digest?: Uint8Array): void {
    this.add(segment, false)
    const file = this.versionFile(this.height)
    if (!written) this.store(file, bytes)
    else this.keepDigest(file, digest)
    this.verified.add(file)
    this.hold(file, bytes)
  }

  /** Stores a segment written on this thread: packed when small, else a file. */
  private store (file: string, bytes: Uint8Array): void {
    // a build or merge that ends after the stop: the pack is closed (the next start rebuilds it)
    if (this.stopped) throw new Error('the index segments are stopped')
    if (bytes.byteLength > PACK_MAX_BYTES) {
      writeSegmentFileSync(file, bytes)
      return
    }
    this.append(basename(file), bytes)
  }

  /** Appends to the pack, its directory made first (once). */
  private append (name: string, bytes: Uint8Array): void {
    if (!this.dirMade) mkdirSync(this.opts.dir, { recursive: true })
    this.dirMade = true
    this.pack.append(name, bytes)
  }

  /** A stored segment's bytes: packed (read against its sha256), else its file (which may be absent: ENOENT). */
  private async readStored (file: string): Promise<{ bytes: Uint8Array, packed: boolean }> {
    const packed = this.pack.read(basename(file))
    return packed === undefined ? { bytes: await readFile(file), packed: false } : { bytes: packed, packed: true }
  }

  /** A stored segment's size in bytes (0 when absent). */
  private storedSize (file: string): number {
    return this.pack.size(basename(file)) ?? (existsSync(file) ? statSync(file).size : 0)
  }

  /** Forgets a merged segment found unusable, packed or a file. */
  private unstore (file: string): void {
    this.pack.forget(basename(file))
    rmSync(file, { force: true })
  }

  /** Keeps a small file's bytes for the merge that will read it (bounded: a miss reads the file). */
  private hold (file: string, bytes: Uint8Array): void {
    const limit = this.opts.inlineMergeBytes ?? INLINE_MERGE_BYTES
    if (bytes.byteLength > limit) return
    this.written.set(file, bytes)
    this.writtenBytes += bytes.byteLength
    for (const [f, b] of this.written) {
      if (this.writtenBytes <= 4 * limit) break
      this.written.delete(f)
      this.writtenBytes -= b.byteLength
    }
  }

  /** A part's bytes for a merge here: held, else read; each part is merged once, so it is let go. */
  private async partBytes (file: string): Promise<Uint8Array> {
    const held = this.written.get(file)
    if (held === undefined) return (await this.readStored(file)).bytes
    this.written.delete(file)
    this.writtenBytes -= held.byteLength
    return held
  }

  /**
   * Adds version height + 1: its segment (undefined when it added no records), which must
   * continue the index; `write` persists it (tmp + rename) when it was built, not read.
   */
  add (segment: IndexSegment | undefined, write: boolean): void {
    const previous = this.versions[this.height] as VersionMeta
    const height = this.height + 1
    if (segment === undefined) {
      this.versions.push({ ...previous })
    } else {
      if (Buffer.compare(segment.headBefore, previous.head) !== 0 || segment.firstRecordIndex <= previous.lastRecordIndex) {
        throw new Error(`segment of version ${height} does not continue version ${height - 1}`)
      }
      if (write) {
        const file = this.versionFile(height)
        const bytes = this.lib.encodeSegment(segment)
        this.store(file, bytes)
        this.verified.add(file)
        this.hold(file, bytes)
      }
      this.versions.push({ head: segment.headAfter, lastRecordIndex: segment.lastRecordIndex, withRecords: previous.withRecords + 1 })
      this.remember(key({ from: height, to: height }), segment)
    }
    this.repin()
    this.scheduleMerges()
  }

  /** The index of version `height` (0 ≤ height ≤ this.height): its cover's segments, loaded as needed. */
  async indexAt (height: number): Promise<CorpusIndex> {
    if (height < 0 || height > this.height) throw new RangeError(`no version ${height} here (newest ${this.height})`)
    const cached = this.indexes.get(height)
    if (cached !== undefined) {
      this.indexes.delete(height)
      this.indexes.set(height, cached)
      return cached.index
    }
    for (;;) {
      const cover = coverOf(height, this.has, this.fanout).filter(r => this.hasRecords(r))
      const segments: IndexSegment[] = []
      for (const r of cover) {
        const segment = await this.load(r)
        if (segment === undefined) break
        segments.push(segment)
      }
      // a merged file was unusable: it is out of `merged` now, so the next cover goes around it
      if (segments.length < cover.length) continue
      const index = this.lib.CorpusIndex.fromSegments(segments)
      const keys = cover.map(key)
      // kept built only while its segments are loaded: it must not hold evicted ones
      if (keys.some(k => !this.cache.has(k))) return index
      this.indexes.set(height, { index, keys })
      while (this.indexes.size > INDEX_CACHE) {
        const oldest = this.indexes.keys().next().value as number
        this.indexes.delete(oldest)
      }
      return index
    }
  }

  /** A range's segment: from memory, else from its file (undefined when a merged file is unusable). */
  private async load (r: HeightRange): Promise<IndexSegment | undefined> {
    const k = key(r)
    const hit = this.cache.get(k)
    if (hit !== undefined) {
      this.cache.delete(k)
      this.cache.set(k, hit)
      return hit
    }
    const file = this.fileOf(r)
    try {
      const { bytes, packed } = await this.readStored(file)
      // packed, or a file whose sha256 the pack keeps: what this node built (readVersion)
      const segment = this.lib.decodeSegment(bytes, { verify: packed || this.verified.has(file) || this.vouched(file, bytes) ? 'structure' : 'full' })
      this.checkEnds(r, segment)
      this.verified.add(file)
      this.remember(k, segment)
      return segment
    } catch (err) {
      // the per-version files are the source: without one the index cannot be answered
      if (r.from === r.to) throw err
      this.opts.logger.warn({ file, err: (err as Error).message }, 'merged index segment unusable: ignored, rebuilt from the versions')
      this.merged.delete(k)
      this.unstore(file)
      this.due?.unshift(r)
      this.scheduleMerges()
      return undefined
    }
  }

  /** A segment for range r starts at the chain head before r's first version and ends at the head after its last. */
  private checkEnds (r: HeightRange, segment: IndexSegment): void {
    const before = this.versions[r.from - 1] as VersionMeta
    const after = this.versions[r.to] as VersionMeta
    if (Buffer.compare(segment.headBefore, before.head) !== 0 || Buffer.compare(segment.headAfter, after.head) !== 0) {
      throw new Error(`segment does not hold versions ${r.from}–${r.to}`)
    }
  }

  private remember (k: string, segment: IndexSegment): void {
    const old = this.cache.get(k)
    if (old !== undefined) this.cachedBytes -= sizeOf(old)
    this.cache.delete(k)
    this.cache.set(k, segment)
    this.cachedBytes += sizeOf(segment)
    this.evict()
  }

  /** Drops least recently used segments outside the newest cover while over the budget (and built indexes that use them). */
  private evict (): void {
    // within the budget whatever is pinned: nothing to scan (the cache holds a segment a version)
    if (this.cachedBytes <= this.cacheBytes) return
    let unpinned = 0
    for (const [k, s] of this.cache) if (!this.pinned.has(k)) unpinned += sizeOf(s)
    for (const [k, s] of this.cache) {
      if (unpinned <= this.cacheBytes) break
      if (this.pinned.has(k)) continue
      this.drop(k)
      unpinned -= sizeOf(s)
    }
  }

  /** Lets a loaded segment go (and built indexes that use it). */
  private drop (k: string): void {
    const s = this.cache.get(k)
    if (s === undefined) return
    this.cache.delete(k)
    this.cachedBytes -= sizeOf(s)
    for (const [h, entry] of this.indexes) if (entry.keys.includes(k)) this.indexes.delete(h)
  }

  /**
   * The newest version's cover is what most queries and the near-duplicate check use: kept
   * loaded. Segments a merge just took out of it go at once: only an older version's index
   * uses them, which loads them again. Kept in the cache, they held the index in memory
   * about twice (a validator at 100,000 records: 65 MB of segments for a 37 MB index).
   */
  private repin (): void {
    const before = this.pinned
    this.pinned = new Set(coverOf(this.height, this.has, this.fanout).map(key))
    for (const k of before) if (!this.pinned.has(k)) this.drop(k)
    this.evict()
  }

  /** Bytes of segments in memory (tests, metrics). */
  get loadedBytes (): number {
    return this.cachedBytes
  }

  /** The ranges making up version `height`'s index now. */
  coverAt (height: number): HeightRange[] {
    return coverOf(height, this.has, this.fanout).filter(r => this.hasRecords(r))
  }

  /** The next merge due (left in the queue until it is at hand or failed). */
  private nextDue (): HeightRange | undefined {
    const done = (r: HeightRange): boolean => this.has(r) || this.failed.has(key(r))
    if (this.due === undefined) {
      this.due = dueMerges(this.height, done, this.fanout)
    } else {
      for (let h = this.dueHeight + 1; h <= this.height; h++) {
        const range = mergeEndingAt(h, this.fanout)
        if (range !== undefined) this.due.push(range)
      }
    }
    this.dueHeight = this.height
    while (this.due.length > 0 && done(this.due[0] as HeightRange)) this.due.shift()
    return this.due[0]
  }

  /** Starts the next due merge (here when small, else in the worker), unless one runs; one at a time, in height order. */
  private scheduleMerges (): void {
    if (this.running !== undefined || this.stopped || this.opts.merge === false) return
    const range = this.nextDue()
    if (range === undefined) {
      // nothing due: the worker (~130 MB with the tokenizer tables it imports) goes until the next merge
      void this.worker?.terminate()
      this.worker = undefined
      for (const wake of this.idleWaiters.splice(0)) wake()
      return
    }
    const files = mergeParts(range, this.has, this.fanout).filter(r => this.hasRecords(r)).map(r => this.fileOf(r))
    const id = this.nextJob++
    const out = this.mergedFile(range)
    this.running = { id, range }
    if (files.reduce((n, f) => n + this.storedSize(f), 0) <= (this.opts.inlineMergeBytes ?? INLINE_MERGE_BYTES)) {
      void this.mergeHere(id, files, out)
      return
    }
    let job: MergeJob
    try {
      // the worker reads files; packed parts go with the job
      job = { id, parts: files.map(f => this.pack.read(basename(f)) ?? f), out }
    } catch (err) {
      this.onMerged({ id, error: (err as Error).message })
      return
    }
    const worker = this.worker ?? this.startWorker()
    worker.postMessage(job)
  }

  private async mergeHere (id: number, files: readonly string[], out: string): Promise<void> {
    const { mergeSegmentBytes } = await import('./index-merge-worker.ts')
    let reply: MergeReply
    try {
      const bytes = mergeSegmentBytes(await Promise.all(files.map(async file => await this.partBytes(file))))
      this.store(out, bytes)
      reply = { id, bytes }
    } catch (err) {
      reply = { id, error: (err as Error).message }
    }
    if (!this.stopped) this.onMerged(reply)
  }

  private startWorker (): Worker {
    const worker = new Worker(new URL('./index-merge-worker.ts', import.meta.url))
    worker.unref()
    worker.on('message', (reply: MergeReply) => { this.onMerged(reply) })
    worker.on('error', err => { this.opts.logger.error({ err }, 'index merge worker failed') })
    // died with a merge in hand (an error, out of memory): that merge waits for the next start
    worker.on('exit', () => {
      if (this.worker !== worker) return
      this.worker = undefined
      if (this.running === undefined) return
      this.failed.add(key(this.running.range))
      this.running = undefined
      this.scheduleMerges()
    })
    this.worker = worker
    return worker
  }

  private onMerged (reply: MergeReply): void {
    const running = this.running
    if (running === undefined || running.id !== reply.id) return
    this.running = undefined
    const k = key(running.range)
    if ('error' in reply) {
      this.opts.logger.warn({ range: k, err: reply.error }, 'index segment merge failed')
      this.failed.add(k)
    } else {
      try {
        // built here from parts whose chain it checked: the structure is enough
        const segment = this.lib.decodeSegment(reply.bytes, { verify: 'structure' })
        this.checkEnds(running.range, segment)
        this.merged.add(k)
        // written by the worker as a file (a merge here is packed)
        if ('digest' in reply) this.keepDigest(this.mergedFile(running.range), reply.digest)
        this.verified.add(this.mergedFile(running.range))
        this.hold(this.mergedFile(running.range), reply.bytes)
        this.remember(k, segment)
        // covers change: indexes built before drop their smaller segments as they go
        this.indexes.clear()
        this.repin()
        this.opts.logger.debug({ range: k, tokens: segment.tokenCount }, 'index segments merged')
      } catch (err) {
        this.opts.logger.warn({ range: k, err: (err as Error).message }, 'merged index segment rejected')
        this.failed.add(k)
        this.unstore(this.mergedFile(running.range))
      }
    }
    this.scheduleMerges()
  }

  /** Resolves once no merge is running or due (tests, benchmarks). */
  async mergesIdle (): Promise<void> {
    if (this.running === undefined) return
    await new Promise<void>(resolve => { this.idleWaiters.push(resolve) })
  }

  async stop (): Promise<void> {
    this.stopped = true
    const worker = this.worker
    this.worker = undefined
    this.running = undefined
    if (worker !== undefined) await worker.terminate()
    this.pack.close()
    for (const wake of this.idleWaiters.splice(0)) wake()
  }
}
