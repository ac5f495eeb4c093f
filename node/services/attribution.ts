import { join } from 'node:path'
import { CID } from 'multiformats/cid'
import { attributionParamsFromManifest, type AttributionParams } from '../../src/attribution/params.ts'
import type { AttributionResult, CorpusIndex, IndexRecord, IndexSegment } from '../../src/attribution/index.ts'
import { fromHex } from '../../src/codec/hash.ts'
import { recordText } from '../../src/datanet/record-text.ts'
import { NEAR_DUPLICATE_COVERAGE_BPS } from '../../src/datanet/manifest.ts'
import { splitShard } from '../../src/datanet/shard.ts'
import { type StateDatabase, type VersionEntry } from '../../src/storage/state-db.ts'
import { getBlock } from './blocks.ts'
import type { FollowedDatanet } from './datanets.ts'
import type { Helia } from '@helia/interface'
import type { Logger } from '../logger.ts'
import { IndexSegments, type IndexSegmentsOptions } from './index-segments.ts'
import { TokenMemo } from './token-memo.ts'
import type { ShardHashes } from './shard-hashes.ts'
import { IndexBuilder, type IndexBuilderOptions } from './index-builder.ts'
import type { BuildRecord } from './index-build-worker.ts'

export interface AttributionServiceOptions {
  db: StateDatabase
  helia: Helia
  /** Where index segments are kept (one file per version, and merged ones); rebuilt from the dataset when missing. */
  dir: string
  logger: Logger
  /** Record hashes of the shards split lately (their receipt, their version's build or check): not hashed again. */
  shardHashes?: ShardHashes
  /** Merge fanout, cache budget, merges off (index-segments.ts). */
  segments?: Pick<IndexSegmentsOptions, 'fanout' | 'cacheBytes' | 'merge'>
  /** Which builds go to the worker thread (index-builder.ts). */
  builder?: IndexBuilderOptions
  /** An extension of the index that failed is tried again after this long (default RETRY_MS). */
  retryMs?: number
  /** The near-duplicate check waits this long at most for the newest final version's index (default COVERED_WAIT_MS). */
  coveredWaitMs?: number
  /** The most final versions the near-duplicate check may judge without (default COVERED_LAG). */
  coveredLag?: number
  /** How long a turn of waiting for a lagging index lasts, and the pause after it (default LAG_WAIT_MS). */
  lagWaitMs?: number
}

/** A failed extension of the index is tried again after this long (or at the next final version). */
const RETRY_MS = 30_000
/** How long the near-duplicate check waits for the newest final version's index before it takes the newest built. */
export const COVERED_WAIT_MS = 1_000
/** The most final versions the near-duplicate check judges without: beyond, it waits for the index (in turns of LAG_WAIT_MS). */
export const COVERED_LAG = 4
const LAG_WAIT_MS = 30_000

/** Why the index could not be extended to a version: what a preview of it says. */
export interface IndexFailure { height: number, message: string, at: number }

/** A record of a final version as the index takes it, with its hash and bytes. */
export type VersionRecord = IndexRecord & { hash: Uint8Array, bytes: Uint8Array }

/**
 * The records a final version added, in dataset order (recordIndex = position in the
 * dataset), a shard's at a time: a version may hold millions. Its contributions' shards are
 * read in the order finalization appended them, so each new record's position is above
 * the last one's; a record seen again (twice in one version) or already in the dataset
 * before it (below `previousCount`) is skipped.
 */
export async function * versionRecordChunks (db: StateDatabase, helia: Helia, d: FollowedDatanet, entry: VersionEntry, previousCount: number, held?: ShardHashes): AsyncGenerator<VersionRecord[]> {
  const digest = fromHex(d.digest, 32)
  let last = previousCount - 1
  for (const cid of entry.contributions) {
    const c = await db.contributions.get(cid)
    if (c === undefined) throw new Error(`contribution ${cid} of version ${entry.height} is not stored`)
    const contributor = (c.contribution as { contributor: string }).contributor
    for (const s of c.contribution.shards as string[]) {
      const records = splitShard(await getBlock(helia, CID.parse(s), { signal: AbortSignal.timeout(30_000) }), held?.get(s))
      const positions = await db.dataset.positionsOf(digest, records.map(r => r.hash))
      const out: VersionRecord[] = []
      records.forEach((r, i) => {
        const at = positions[i]
        if (at === undefined || at <= last || at >= entry.recordCount) return
        out.push({ recordIndex: at, contributor, text: recordText(r.bytes), hash: r.hash, bytes: r.bytes })
        last = at
      })
      if (out.length > 0) yield out
    }
  }
}

/** The records a final version added, in dataset order, all at once (versionRecordChunks). */
export async function versionRecords (db: StateDatabase, helia: Helia, d: FollowedDatanet, entry: VersionEntry, previousCount: number): Promise<VersionRecord[]> {
  const out: VersionRecord[] = []
  for await (const chunk of versionRecordChunks(db, helia, d, entry, previousCount)) for (const r of chunk) out.push(r)
  return out
}

type AttributionLib = typeof import('../../src/attribution/index.ts')

let lib: Promise<AttributionLib> | undefined
/**
 * The attribution library, loaded on first use: its tokenizer's vocabulary costs ~1.4 s
 * and ~100 MB to load, which a node that never attributes should not pay at start.
 * The vocabulary's hash is checked once, as it loads: every validator must tokenize alike.
 */
export async function attributionLib (): Promise<AttributionLib> {
  lib ??= import('../../src/attribution/index.ts').then(m => { m.verifyTokenizer(); return m })
  return await lib
}

interface DatanetIndexes {
  params: AttributionParams
  /** Segments of every final version and the merged ones (undefined until the library is loaded). */
  segments: IndexSegments | undefined
  building: Promise<void>
  /** The record count of the last version indexed. */
  recordCount?: { height: number, count: number }
  /** The newest version this service was told is final (indexed, or being indexed). */
  final: number
  /** The last extension's failure, until an extension succeeds. */
  failure?: IndexFailure
  retry?: NodeJS.Timeout
  /** The end of the near-duplicate check's current wait for a lagging index (shared by every check). */
  lagWaitEnds?: number
}

/**
 * The attribution index of every followed datanet (DESIGN §4 flow 5): one delta segment
 * per final version, kept on disk, merged in the background into aligned ranges
 * (index-segments.ts), so the index of any version is a few segments however many
 * versions there are. Results do not depend on the segmentation (src/attribution), so a
 * node that merged its segments differently attributes identically.
 */
export class AttributionService {
  private readonly opts: AttributionServiceOptions
  private readonly datanets = new Map<string, DatanetIndexes>()
  private readonly tokenized = new TokenMemo()
  private readonly builder: IndexBuilder
  private stopped = false

  constructor (opts: AttributionServiceOptions) {
    this.opts = opts
    this.builder = new IndexBuilder(opts.builder)
  }

  /**
   * Which records the dataset already mostly holds: coverage by one indexed record at or
   * above the manifest's threshold (src/attribution/record-coverage.ts), against the index
   * of the newest final version, waiting at most COVERED_WAIT_MS for it, else against the
   * newest one indexed. None before the first version (the library stays unloaded).
   *
   * Bounded because under load a version takes seconds to index (6,000 records of 1 KB:
   * 11 s beside the receipt of the next ones), and every contribution received meanwhile
   * waited for it: no verdict, no version, for 16 s of a 46 s run (scripts/bench/finality.ts).
   * A record mostly covered by one of a version still being indexed then goes uncounted,
   * as one mostly covered by a contribution no version includes yet always has; exact
   * copies and copies up to the text key are still counted (the record index, at once).
   * The staleness is bounded: while the index is more than COVERED_LAG versions behind the
   * newest final one (index builds run below the threads that judge, and a node that is
   * overloaded for long could leave them far behind), checks wait for it, which slows
   * verdicts until it is back — not for an extension that failed, and in turns: every check
   * waits until the same end, LAG_WAIT_MS after the turn began, then none waits for as long
   * (a restarted node rebuilding a long history would otherwise hold each shard's check).
   */
  async covered (d: FollowedDatanet, records: readonly Uint8Array[]): Promise<boolean[]> {
    const state = this.datanets.get(d.id)
    if (state === undefined) return records.map(() => false)
    await this.waitForLaggingIndex(state)
    await this.builtWithin(state.building, this.opts.coveredWaitMs ?? COVERED_WAIT_MS)
    const segments = state.segments
    if (segments === undefined || segments.height === 0) return records.map(() => false)
    const index = await segments.indexAt(segments.height)
    if (index.segments.length === 0) return records.map(() => false)
    const { recordCoverageAtLeast, normalizeText, tokenize } = await attributionLib()
    const threshold = d.manifest.limits.nearDuplicateCoverageBps ?? NEAR_DUPLICATE_COVERAGE_BPS
    return records.map(bytes => {
      const text = recordText(bytes)
      const normalized = normalizeText(text)
      const tokens = tokenize(normalized)
      // kept for the index extension when a version makes the record final
      this.tokenized.put(normalized, tokens)
      return recordCoverageAtLeast(index, text, state.params, threshold, tokens)
    })
  }

  private dirOf (d: FollowedDatanet): string {
    return join(this.opts.dir, d.digest.slice(2))
  }

  async follow (d: FollowedDatanet): Promise<void> {
    const params = attributionParamsFromManifest(d.manifest)
    const state: DatanetIndexes = { params, segments: undefined, building: Promise.resolve(), final: 0 }
    this.datanets.set(d.id, state)
    await this.advance(d, state)
  }

  /**
   * Extends the index with every final version it lacks (after a restart, or a version just
   * final: `known`, which needs no read when it is the next).
   */
  private async catchUp (d: FollowedDatanet, state: DatanetIndexes, known?: VersionEntry): Promise<void> {
    // from the next height on: reading every version at each one made a catch-up of n versions O(n²)
    for (;;) {
      const height = (state.segments?.height ?? 0) + 1
      // a version already indexed (a range made final at once: the first call did them all)
      if (known !== undefined && known.height < height) return
      const entry = known?.height === height ? known : await this.opts.db.versions.at(d.id, height)
      if (entry === undefined) break
      await this.extend(d, state, entry)
      state.recordCount = { height: entry.height, count: entry.recordCount }
    }
  }

  private async extend (d: FollowedDatanet, state: DatanetIndexes, entry: VersionEntry): Promise<void> {
    const lib = await attributionLib()
    state.segments ??= new IndexSegments({ dir: this.dirOf(d), logger: this.opts.logger, ...this.opts.segments }, lib)
    const segments = state.segments
    let segment: IndexSegment | undefined
    try {
      segment = segments.readVersion(entry.height)
      if (segment !== undefined) {
        segments.add(segment, false)
        return
      }
    } catch (err) {
      this.opts.logger.warn({ datanet: d.id, height: entry.height, err: (err as Error).message }, 'index segment unusable: rebuilding it from the dataset')
    }
    const prevCount = state.recordCount?.height === entry.height - 1 ? state.recordCount.count : (await this.opts.db.versions.at(d.id, entry.height - 1))?.recordCount ?? 0
    const t0 = performance.now()
    // the version's records a shard at a time, with the near-duplicate check's tokens where
    // it kept them (the rest is tokenized with the build)
    const tokenized = this.tokenized
    const { db, helia, shardHashes: held } = this.opts
    const stopped = (): boolean => this.stopped
    async function * chunks (): AsyncGenerator<BuildRecord[]> {
      for await (const records of versionRecordChunks(db, helia, d, entry, prevCount, held)) {
        // the node is stopping (its store closes next): the next start extends the index
        if (stopped()) throw new Error('the attribution service is stopped')
        yield records.map(r => {
          const tokens = tokenized.size > 0 ? tokenized.take(lib.normalizeText(r.text)) : undefined
          return tokens === undefined ? { recordIndex: r.recordIndex, contributor: r.contributor, text: r.text } : { recordIndex: r.recordIndex, contributor: r.contributor, tokens }
        })
      }
    }
    const file = segments.versionFile(entry.height)
    let built
    try {
      // off the main thread when large: votes and gossip go on meanwhile
      built = await this.builder.build(chunks(), segments.base, file)
    } catch (err) {
      if (this.stopped) throw err
      this.opts.logger.warn({ datanet: d.id, height: entry.height, err: (err as Error).message }, 'index segment build failed in the worker: building it here')
      built = await this.builder.build(chunks(), segments.base, file, { here: true })
    }
    if (built === undefined) {
      segments.add(undefined, false)
      return
    }
    segment = lib.decodeSegment(built.bytes, { verify: 'structure' })
    segments.adopt(segment, built.bytes, built.written, built.digest)
    this.opts.logger.debug({ datanet: d.id, height: entry.height, records: built.records, tokens: segment.tokenCount, ms: Math.round(performance.now() - t0) }, 'index segment built')
  }

  /** Called for each final version, in height order (`entry`: that version). */
  async onFinal (d: FollowedDatanet, entry?: VersionEntry): Promise<void> {
    const state = this.datanets.get(d.id)
    if (state === undefined) return
    if (entry !== undefined) state.final = Math.max(state.final, entry.height)
    await this.advance(d, state, entry)
  }

  /** Extends the index after what it is extending now (to `entry`, or every final version it lacks); a failure is kept and tried again. */
  private async advance (d: FollowedDatanet, state: DatanetIndexes, entry?: VersionEntry): Promise<void> {
    state.building = state.building.then(async () => {
      await this.catchUp(d, state, entry)
      state.failure = undefined
    }).catch(err => {
      // cut short by the node's stop (its store closes): the next start extends it
      if (this.stopped) return
      const height = (state.segments?.height ?? 0) + 1
      this.opts.logger.error({ datanet: d.id, height, err }, 'cannot extend the attribution index')
      // previews of it say why (they said "being built" for ever), and it is tried again
      state.failure = { height, message: (err as Error).message, at: Date.now() }
      clearTimeout(state.retry)
      state.retry = setTimeout(() => { void this.advance(d, state) }, this.opts.retryMs ?? RETRY_MS)
      state.retry.unref()
    })
    await state.building
  }

  /** Why version `height`'s index could not be built here (its extension failed and is tried again), if it could not. */
  indexFailure (d: FollowedDatanet, height: number): IndexFailure | undefined {
    const failure = this.datanets.get(d.id)?.failure
    return failure !== undefined && failure.height <= height ? failure : undefined
  }

  params (d: FollowedDatanet): AttributionParams {
    const state = this.datanets.get(d.id)
    if (state === undefined) throw new Error(`datanet ${d.id} is not followed`)
    return state.params
  }

  /** The index of version `height` (undefined while that version is not final here yet). */
  async indexAt (d: FollowedDatanet, height: number): Promise<CorpusIndex | undefined> {
    const state = this.datanets.get(d.id)
    if (state === undefined) return undefined
    await state.building
    const segments = state.segments
    if (height === 0 && segments === undefined) return (await attributionLib()).CorpusIndex.empty()
    if (segments === undefined || !Number.isSafeInteger(height) || height < 0 || height > segments.height) return undefined
    return await segments.indexAt(height)
  }

  /** The newest version indexed. */
  latestHeight (d: FollowedDatanet): number {
    return this.datanets.get(d.id)?.segments?.height ?? 0
  }

  /**
   * The newest final version, indexed or being indexed: what a preview that names no
   * version attributes against (`indexAt` waits for its index). A large version takes
   * seconds to index: "no final version yet" meanwhile told a user their final version
   * did not exist.
   */
  finalHeight (d: FollowedDatanet): number {
    const state = this.datanets.get(d.id)
    return state === undefined ? 0 : Math.max(state.final, state.segments?.height ?? 0)
  }

  /** Waits while the index is more than `coveredLag` final versions behind, in turns of LAG_WAIT_MS (see `covered`). */
  private async waitForLaggingIndex (state: DatanetIndexes): Promise<void> {
    const lag = this.opts.coveredLag ?? COVERED_LAG
    const turn = this.opts.lagWaitMs ?? LAG_WAIT_MS
    const lagging = (): boolean => state.final - (state.segments?.height ?? 0) > lag && state.failure === undefined && !this.stopped
    if (!lagging()) return
    const now = Date.now()
    // a turn of waiting, then as long without
    if (state.lagWaitEnds === undefined || now >= state.lagWaitEnds + turn) state.lagWaitEnds = now + turn
    while (lagging() && Date.now() < state.lagWaitEnds) {
      await this.builtWithin(state.building, Math.min(1_000, state.lagWaitEnds - Date.now()))
    }
  }

  /** Whether what `building` extends was built within `ms`. */
  private async builtWithin (building: Promise<void>, ms: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined
    const built = await Promise.race([building.then(() => true), new Promise<boolean>(resolve => { timer = setTimeout(() => { resolve(false) }, ms) })])
    clearTimeout(timer)
    return built
  }

  /**
   * Whether version `height`'s index is built, waiting at most `ms` for it (a version of a
   * million records takes minutes to index on a busy node: a preview waited for it for ever).
   */
  async indexedWithin (d: FollowedDatanet, height: number, ms: number): Promise<boolean> {
    const state = this.datanets.get(d.id)
    if (state === undefined) return false
    const indexed = (): number => state.segments?.height ?? 0
    const deadline = Date.now() + ms
    while (indexed() < height) {
      const left = deadline - Date.now()
      if (left <= 0) return false
      const building = state.building
      const built = await this.builtWithin(building, left)
      // built all it was told of, and not that version: it is not final here
      if (built && building === state.building && indexed() < height) return false
    }
    return true
  }

  /** Resolves once no segment merge is running or due for `d` (tests, benchmarks). */
  async mergesIdle (d: FollowedDatanet): Promise<void> {
    await this.datanets.get(d.id)?.segments?.mergesIdle()
  }

  /** Stops background merges (a merge cut short leaves only a .tmp file, removed at the next start). */
  async stop (): Promise<void> {
    this.stopped = true
    for (const state of this.datanets.values()) clearTimeout(state.retry)
    await this.builder.stop()
    for (const state of this.datanets.values()) await state.segments?.stop()
  }

  /** Attributes `output` against version `height` as if it were an event paying `fee`. */
  async attribute (d: FollowedDatanet, height: number, output: string, prompt: string | null, fee: bigint, eventId?: string): Promise<AttributionResult | undefined> {
    const index = await this.indexAt(d, height)
    if (index === undefined) return undefined
    const { attribute } = await attributionLib()
    return attribute(index, output, prompt, fee, this.params(d), eventId === undefined ? {} : { eventId })
  }

  /** Each contributor's content weight in version `height`: what the base pool is shared by. */
  async weightsByContributor (d: FollowedDatanet, height: number): Promise<Map<string, bigint>> {
    const index = await this.indexAt(d, height)
    if (index === undefined) return new Map()
    // a version's index never changes: count its tokens once per version, not once per inference event
    const cacheKey = `${d.id} ${height}`
    let weights = this.weights.get(cacheKey)
    if (weights === undefined) {
      weights = (await attributionLib()).contentWeights(index.segments, this.params(d).maxRecordTokens)
      this.weights.set(cacheKey, weights)
      if (this.weights.size > WEIGHTS_CACHE) this.weights.delete(this.weights.keys().next().value as string)
    }
    return weights
  }

  private readonly weights = new Map<string, Map<string, bigint>>()
}

/** Versions whose content weights are kept (a map of contributors each). */
const WEIGHTS_CACHE = 64
