/**
 * The index of a dataset version (ATTRIBUTION.md §2 "Index"), as a list of segments.
 *
 * A segment holds the records one dataset version added, in recordIndex order, as one
 * token stream: for each record T(N(text)) with ids shifted by two, then SEP = 1; the
 * stream ends with the sentinel 0. Beside it: its suffix array (SA-IS, numeric order),
 * the start of each record in the stream, each record's recordIndex and contributor.
 *
 * Queries are defined over the logical union of the segments — the longest match is the
 * maximum over segments, an occurrence count is the sum, a record set the union (record
 * indexes never repeat across segments) and unigram counts add up — so no answer depends
 * on how the records were split into segments, and segments can be merged (compacted)
 * at any time without changing one.
 *
 * indexHash, the index's identity in every result hash, is a hash chain over the records
 * (not over segment bytes, which depend on the split):
 *
 *     head₀ = 32 zero bytes
 *     headᵢ = sha256(headᵢ₋₁ ‖ u64be(recordIndex) ‖ contributor (20 bytes) ‖
 *                    u32be(token count) ‖ each stored symbol (id + 2) as u32le)
 *
 * so an index built in one piece and one grown by delta segments have the same hash.
 * The suffix array is canonical (a function of the tokens), so it needs no hash of its own
 * here; the persisted bytes carry one (segment-codec.ts).
 */
import { hash } from 'node:crypto'
import { toHex } from '../codec/hash.ts'
import { AttributionError, AttributionErrorCode } from './errors.ts'
import { normalizeText } from './normalize.ts'
import { buildSuffixArray, firstAtLeast, narrowRange } from './suffix-array.ts'
import { VOCAB_SIZE, tokenize } from './tokenizer.ts'

/** Stored symbol of token id t is t + SYMBOL_OFFSET; 1 separates records, 0 ends the stream. */
export const SYMBOL_OFFSET = 2
export const SEP = 1
export const SENTINEL = 0
/** Symbols lie in [0, ALPHABET_SIZE). */
export const ALPHABET_SIZE = VOCAB_SIZE + SYMBOL_OFFSET
/** Largest recordIndex the index stores (u32). */
export const MAX_RECORD_INDEX = 0xffff_ffff
/**
 * Segments at least this long get two lookup aids on their first query: a table of
 * first-symbol ranges (ALPHABET_SIZE + 1 u32s) and every SAMPLE_STRIDE-th suffix's
 * second symbol (0.125 bytes per token), which together replace the two widest binary
 * searches of a match with a table lookup and a search in a small, cache-resident array.
 * Both are derived from the suffix array; answers are the same with or without them.
 * From 64 K tokens on: a merged index (node/services/index-segments.ts) has segments of
 * every size, and one whose segments were under 1 M tokens was ~2× slower to query without them.
 */
const QUERY_AIDS_MIN_TOKENS = 1 << 16
const SAMPLE_SHIFT = 5
const SAMPLE_STRIDE = 1 << SAMPLE_SHIFT

/** A record as the index takes it. */
export interface IndexRecord {
  /** Assigned at ingestion; ascending, never reused. */
  recordIndex: number
  /** `0x` + 40 hex digits; stored lowercase. */
  contributor: string
  /** The record's text (normalised here). */
  text: string
}

/** A record already tokenized: cl100k ids of T(N(text)). */
export interface TokenizedRecord {
  recordIndex: number
  contributor: string
  tokens: ArrayLike<number>
}

export const EMPTY_HEAD: Uint8Array = new Uint8Array(32)

const ADDRESS = /^0x[0-9a-fA-F]{40}$/

function badRecord (message: string): AttributionError {
  return new AttributionError(AttributionErrorCode.BAD_RECORD, message)
}

export interface SegmentParts {
  tokens: Uint32Array
  sa: Int32Array
  docStart: Uint32Array
  recordIndexes: Uint32Array
  recordContributor: Uint32Array
  contributors: readonly string[]
  headBefore: Uint8Array
  headAfter: Uint8Array
}

/** One segment of an index; immutable once built. */
export class IndexSegment {
  /** Symbols: id + 2 per token, SEP after each record, the sentinel last. */
  readonly tokens: Uint32Array
  /** The same memory as Int32Array, which the suffix-array routines read. */
  readonly text: Int32Array
  readonly sa: Int32Array
  /** Stream position of each record's first token. */
  readonly docStart: Uint32Array
  readonly recordIndexes: Uint32Array
  /** Per record, its contributor's slot in `contributors`. */
  readonly recordContributor: Uint32Array
  /** Lowercase addresses, in order of first appearance. */
  readonly contributors: readonly string[]
  /** The record hash chain before and after this segment's records. */
  readonly headBefore: Uint8Array
  readonly headAfter: Uint8Array
  private firstSymbols: Uint32Array | undefined
  private secondSymbols: Int32Array | undefined

  constructor (parts: SegmentParts) {
    this.tokens = parts.tokens
    this.text = new Int32Array(parts.tokens.buffer, parts.tokens.byteOffset, parts.tokens.length)
    this.sa = parts.sa
    this.docStart = parts.docStart
    this.recordIndexes = parts.recordIndexes
    this.recordContributor = parts.recordContributor
    this.contributors = Object.freeze([...parts.contributors])
    this.headBefore = parts.headBefore
    this.headAfter = parts.headAfter
  }

  get recordCount (): number {
    return this.docStart.length
  }

  /** Record tokens (the stream without separators and sentinel). */
  get tokenCount (): number {
    return this.tokens.length - 1 - this.docStart.length
  }

  get firstRecordIndex (): number {
    return this.recordIndexes[0] as number
  }

  get lastRecordIndex (): number {
    return this.recordIndexes[this.recordIndexes.length - 1] as number
  }

  /** The local number of the record that holds stream position `pos`. */
  recordAt (pos: number): number {
    const starts = this.docStart
    let lo = 0
    let hi = starts.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if ((starts[mid] as number) <= pos) lo = mid + 1
      else hi = mid
    }
    return lo - 1
  }

  contributorOfLocal (local: number): string {
    return this.contributors[this.recordContributor[local] as number] as string
  }

  /** Sets range to the suffix-array range of suffixes that begin with `symbol`; false when empty. */
  narrowFirst (symbol: number, range: Int32Array): boolean {
    if (this.tokens.length >= QUERY_AIDS_MIN_TOKENS) {
      const table = this.firstSymbols ?? this.buildQueryAids()
      range[0] = table[symbol] as number
      range[1] = table[symbol + 1] as number
      return (range[0] as number) < (range[1] as number)
    }
    range[0] = 0
    range[1] = this.sa.length
    return narrowRange(this.text, this.sa, range, 0, symbol)
  }

  /**
   * Narrows a first-symbol range to the suffixes whose second symbol is `symbol`: a
   * search over the samples inside the range, then within one stride at each end.
   */
  narrowSecond (symbol: number, range: Int32Array): boolean {
    const samples = this.secondSymbols
    const lo = range[0] as number
    const hi = range[1] as number
    if (samples === undefined || hi - lo < 4 * SAMPLE_STRIDE) return narrowRange(this.text, this.sa, range, 1, symbol)
    const start = this.sampledFirstAtLeast(samples, lo, hi, symbol)
    const end = this.sampledFirstAtLeast(samples, start, hi, symbol + 1)
    range[0] = start
    range[1] = end
    return start < end
  }

  /** firstAtLeast at depth 1, narrowed by the samples s·STRIDE ∈ [lo, hi) first. */
  private sampledFirstAtLeast (samples: Int32Array, lo: number, hi: number, symbol: number): number {
    const first = (lo + SAMPLE_STRIDE - 1) >>> SAMPLE_SHIFT
    const last = ((hi - 1) >>> SAMPLE_SHIFT) + 1
    let a = first
    let b = last
    while (a < b) {
      const mid = (a + b) >>> 1
      if ((samples[mid] as number) < symbol) a = mid + 1
      else b = mid
    }
    // The answer lies after the last sample below `symbol` and at or before the first one not below it.
    const windowLo = a > first ? ((a - 1) << SAMPLE_SHIFT) + 1 : lo
    const windowHi = a < last ? a << SAMPLE_SHIFT : hi
    return firstAtLeast(this.text, this.sa, windowLo, windowHi, 1, symbol)
  }

  private buildQueryAids (): Uint32Array {
    const table = new Uint32Array(ALPHABET_SIZE + 1)
    const tokens = this.tokens
    for (let i = 0; i < tokens.length; i++) {
      const c = (tokens[i] as number) + 1
      table[c] = (table[c] as number) + 1
    }
    for (let c = 1; c <= ALPHABET_SIZE; c++) table[c] = (table[c] as number) + (table[c - 1] as number)
    const sa = this.sa
    const text = this.text
    const samples = new Int32Array(((sa.length - 1) >>> SAMPLE_SHIFT) + 1)
    for (let s = 0; s < samples.length; s++) {
      const p = sa[s << SAMPLE_SHIFT] as number
      // The sentinel's suffix has no second symbol; it is never in a queried range.
      samples[s] = p + 1 < text.length ? text[p + 1] as number : 0
    }
    this.secondSymbols = samples
    this.firstSymbols = table
    return table
  }
}

/** Scratch for chainRecord: head ‖ meta ‖ symbols, grown as records need. */
let chainScratch = new Uint8Array(64 + 4 * 1024)

/** Appends one record's hash-chain link (one sha256 call over a scratch copy: ~3× faster than streaming). */
function chainRecord (head: Uint8Array, recordIndex: number, contributor: Uint8Array, symbols: Uint32Array): Uint8Array {
  const size = 64 + symbols.byteLength
  if (chainScratch.byteLength < size) chainScratch = new Uint8Array(2 * size)
  const buf = chainScratch
  const view = new DataView(buf.buffer)
  buf.set(head, 0)
  view.setUint32(32, 0) // u64be: the high word is zero, recordIndex < 2^32
  view.setUint32(36, recordIndex >>> 0)
  buf.set(contributor, 40)
  view.setUint32(60, symbols.length)
  buf.set(new Uint8Array(symbols.buffer, symbols.byteOffset, symbols.byteLength), 64)
  return hash('sha256', buf.subarray(0, size), 'buffer')
}

function addressBytes (address: string): Uint8Array {
  return Uint8Array.from(Buffer.from(address.slice(2), 'hex'))
}

/** Where a new segment continues from: the chain head and the last recordIndex so far (−1 if none). */
export interface SegmentBase {
  head: Uint8Array
  lastRecordIndex: number
}

const GENESIS: SegmentBase = { head: EMPTY_HEAD, lastRecordIndex: -1 }

/** A copy of `a` with room for at least `need` elements (grown by half again, at least). */
function grown (a: Uint32Array<ArrayBuffer>, need: number): Uint32Array<ArrayBuffer> {
  if (need <= a.length) return a
  const next = new Uint32Array(Math.max(need, Math.ceil(a.length * 1.5)))
  next.set(a)
  return next
}

/**
 * A segment's records taken one at a time and held packed (4 bytes a token, 12 a record),
 * each checked as it comes: a version of a million records is never a million objects
 * (the node streams a version's records into it, shard by shard). Records must come in
 * strictly ascending recordIndex, all above `base.lastRecordIndex`.
 */
export class SegmentBuilder {
  private tokens = new Uint32Array(1 << 12)
  private docStart = new Uint32Array(1 << 8)
  private recordIndexes = new Uint32Array(1 << 8)
  private recordContributor = new Uint32Array(1 << 8)
  private at = 0
  private count = 0
  private readonly contributors: string[] = []
  private readonly contributorSlot = new Map<string, number>()
  private readonly contributorBytes: Uint8Array[] = []
  private readonly headBefore: Uint8Array
  private head: Uint8Array
  private last: number

  /** `capacity`: the records and symbols (tokens, a separator each, the sentinel) when known, so nothing is grown or left spare. */
  constructor (base: SegmentBase = GENESIS, capacity?: { records: number, symbols: number }) {
    if (capacity !== undefined) {
      this.tokens = new Uint32Array(capacity.symbols)
      this.docStart = new Uint32Array(capacity.records)
      this.recordIndexes = new Uint32Array(capacity.records)
      this.recordContributor = new Uint32Array(capacity.records)
    }
    this.headBefore = base.head
    this.head = base.head
    this.last = base.lastRecordIndex
  }

  /** Records taken so far. */
  get recordCount (): number {
    return this.count
  }

  add (record: TokenizedRecord): void {
    const { recordIndex, contributor } = record
    if (!Number.isSafeInteger(recordIndex) || recordIndex < 0 || recordIndex > MAX_RECORD_INDEX) {
      throw badRecord(`recordIndex must be an integer in [0, 2^32), got ${String(recordIndex)}`)
    }
    if (recordIndex <= this.last) {
      throw new AttributionError(AttributionErrorCode.OUT_OF_ORDER, `recordIndex ${recordIndex} does not follow ${this.last}: records must come in strictly ascending recordIndex`)
    }
    if (typeof contributor !== 'string' || !ADDRESS.test(contributor)) throw badRecord(`record ${recordIndex}: contributor must be 0x and 40 hex digits`)
    const address = contributor.toLowerCase()
    let slot = this.contributorSlot.get(address)
    if (slot === undefined) {
      slot = this.contributors.length
      this.contributorSlot.set(address, slot)
      this.contributors.push(address)
      this.contributorBytes.push(addressBytes(address))
    }
    const ids = record.tokens
    // this record's symbols, its separator, and the sentinel after the last
    const need = this.at + ids.length + 2
    if (need > 0x7fff_ffff) throw badRecord(`a segment holds at most 2^31 − 1 symbols, these records need more (${need} by record ${recordIndex})`)
    this.tokens = grown(this.tokens, need)
    const r = this.count
    this.docStart = grown(this.docStart, r + 1)
    this.recordIndexes = grown(this.recordIndexes, r + 1)
    this.recordContributor = grown(this.recordContributor, r + 1)
    const tokens = this.tokens
    const start = this.at
    let at = start
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i] as number
      // (id >>> 0) === id: an integer in [0, 2^32).
      if ((id >>> 0) !== id || id >= VOCAB_SIZE) throw badRecord(`record ${recordIndex}: token id ${String(id)} outside the vocabulary`)
      tokens[at++] = id + SYMBOL_OFFSET
    }
    this.docStart[r] = start
    this.recordIndexes[r] = recordIndex
    this.recordContributor[r] = slot
    this.head = chainRecord(this.head, recordIndex, this.contributorBytes[slot] as Uint8Array, tokens.subarray(start, at))
    tokens[at++] = SEP
    this.at = at
    this.count = r + 1
    this.last = recordIndex
  }

  /**
   * The segment of the records taken (its suffix array built: seconds for millions of
   * tokens). Its arrays are views of the builder's (room was kept for the sentinel): a copy
   * of 44 M tokens was 176 MB more at the build's peak.
   */
  build (): IndexSegment {
    if (this.count === 0) throw badRecord('a segment needs at least one record')
    const tokens = this.tokens.subarray(0, this.at + 1)
    tokens[this.at] = SENTINEL
    const text = new Int32Array(tokens.buffer, tokens.byteOffset, tokens.length)
    const sa = buildSuffixArray(text, ALPHABET_SIZE)
    return new IndexSegment({
      tokens,
      sa,
      docStart: this.docStart.subarray(0, this.count),
      recordIndexes: this.recordIndexes.subarray(0, this.count),
      recordContributor: this.recordContributor.subarray(0, this.count),
      contributors: this.contributors,
      headBefore: this.headBefore,
      headAfter: this.head
    })
  }
}

/**
 * Builds a segment from records already tokenized (cl100k ids). Records must come in
 * strictly ascending recordIndex, all above `base.lastRecordIndex`.
 */
export function buildSegmentFromTokens (records: readonly TokenizedRecord[], base: SegmentBase = GENESIS): IndexSegment {
  if (records.length === 0) throw badRecord('a segment needs at least one record')
  let symbols = 1
  for (const r of records) symbols += r.tokens.length + 1
  const builder = new SegmentBuilder(base, { records: records.length, symbols: Math.min(symbols, 0x7fff_ffff) })
  for (const r of records) builder.add(r)
  return builder.build()
}

/** T of normalised texts already tokenized elsewhere (the node's near-duplicate check), or undefined. */
export type KnownTokens = (normalizedText: string) => ArrayLike<number> | undefined

/** N, then T, of each record: the tokenized records buildSegmentFromTokens takes (T taken from `known` where it has it). */
export function tokenizeRecords (records: readonly IndexRecord[], known?: KnownTokens): TokenizedRecord[] {
  return records.map(r => {
    if (typeof r.text !== 'string') throw badRecord(`record ${String(r.recordIndex)}: text must be a string`)
    const normalized = normalizeText(r.text)
    return { recordIndex: r.recordIndex, contributor: r.contributor, tokens: known?.(normalized) ?? tokenize(normalized) }
  })
}

/** Builds a segment from records (normalising and tokenizing their text). */
export function buildSegment (records: readonly IndexRecord[], base: SegmentBase = GENESIS, known?: KnownTokens): IndexSegment {
  return buildSegmentFromTokens(tokenizeRecords(records, known), base)
}

/**
 * The index of one dataset version: its segments, oldest first, with the unigram counts
 * and totals over all of them. Immutable: `extend` returns a new index that shares the
 * segments, so an event keeps being attributed against exactly its version's index.
 */
export class CorpusIndex {
  readonly segments: readonly IndexSegment[]
  /** Head of the record hash chain (32 zero bytes when empty). */
  readonly head: Uint8Array
  /** Record tokens over all segments (no separators): T_total of the weights. */
  readonly totalTokens: number
  readonly recordCount: number
  readonly lastRecordIndex: number
  /**
   * Occurrences of each symbol (id + 2) over all segments (400 KB), counted on the first
   * weight asked for: a node keeps an index per version and queries few of the old ones.
   */
  private counts: Uint32Array | undefined

  private constructor (segments: readonly IndexSegment[], head: Uint8Array, totalTokens: number, recordCount: number, lastRecordIndex: number) {
    this.segments = Object.freeze([...segments])
    this.head = head
    this.totalTokens = totalTokens
    this.recordCount = recordCount
    this.lastRecordIndex = lastRecordIndex
  }

  static empty (): CorpusIndex {
    return new CorpusIndex([], EMPTY_HEAD, 0, 0, -1)
  }

  /** An index over `records` (ascending recordIndex) in one segment. */
  static fromRecords (records: readonly IndexRecord[]): CorpusIndex {
    return records.length === 0 ? CorpusIndex.empty() : CorpusIndex.empty().extend(buildSegment(records))
  }

  /** An index made of these segments, each continuing the one before. */
  static fromSegments (segments: readonly IndexSegment[]): CorpusIndex {
    let index = CorpusIndex.empty()
    for (const segment of segments) index = index.extend(segment)
    return index
  }

  /** `0x` hex of the record hash chain head: the index's identity in result hashes. */
  get indexHash (): string {
    return toHex(this.head)
  }

  /** Where the next segment continues from. */
  get base (): SegmentBase {
    return { head: this.head, lastRecordIndex: this.lastRecordIndex }
  }

  /**
   * This index with one more segment. Throws ATTRIBUTION_ERROR_OUT_OF_ORDER unless the
   * segment continues this index (its chain starts at this head, its records come after).
   */
  extend (segment: IndexSegment): CorpusIndex {
    if (Buffer.compare(segment.headBefore, this.head) !== 0) {
      throw new AttributionError(AttributionErrorCode.OUT_OF_ORDER, `segment continues index ${toHex(segment.headBefore)}, not ${this.indexHash}`)
    }
    if (segment.firstRecordIndex <= this.lastRecordIndex) {
      throw new AttributionError(AttributionErrorCode.OUT_OF_ORDER, `segment starts at recordIndex ${segment.firstRecordIndex}, not after ${this.lastRecordIndex}`)
    }
    return new CorpusIndex([...this.segments, segment], segment.headAfter, this.totalTokens + segment.tokenCount, this.recordCount + segment.recordCount, segment.lastRecordIndex)
  }

  /** Builds the segment for `records` after this index, and the index extended by it. */
  appendRecords (records: readonly IndexRecord[], known?: KnownTokens): { index: CorpusIndex, segment: IndexSegment } {
    const segment = buildSegment(records, this.base, known)
    return { index: this.extend(segment), segment }
  }

  /** Occurrences of cl100k token `id` in the records. */
  unigramCount (id: number): number {
    const counts = this.counts ?? this.countSymbols()
    return counts[id + SYMBOL_OFFSET] ?? 0
  }

  private countSymbols (): Uint32Array {
    const counts = new Uint32Array(ALPHABET_SIZE)
    for (const segment of this.segments) {
      const tokens = segment.tokens
      for (let i = 0; i < tokens.length; i++) {
        const c = tokens[i] as number
        counts[c] = (counts[c] as number) + 1
      }
    }
    this.counts = counts
    return counts
  }

  /** The contributor of a record, or undefined if the index has no such record. */
  contributorOf (recordIndex: number): string | undefined {
    for (const segment of this.segments) {
      if (recordIndex < segment.firstRecordIndex || recordIndex > segment.lastRecordIndex) continue
      const ids = segment.recordIndexes
      let lo = 0
      let hi = ids.length
      while (lo < hi) {
        const mid = (lo + hi) >>> 1
        if ((ids[mid] as number) < recordIndex) lo = mid + 1
        else hi = mid
      }
      return ids[lo] === recordIndex ? segment.contributorOfLocal(lo) : undefined
    }
    return undefined
  }

  /** The same index in one segment (background compaction); every answer stays the same. */
  compact (): CorpusIndex {
    return this.segments.length <= 1 ? this : CorpusIndex.empty().extend(mergeSegments(this.segments))
  }

  /**
   * The same index with its newest segments merged while the newest holds at least half
   * as many tokens as the one before it (log-structured): segment sizes then at least
   * double going back, so an index keeps O(log n) segments — a query searches each — and
   * each token is re-sorted O(log n) times over the index's life. `merged` is the new
   * last segment, to persist in place of the ones it replaces (undefined: nothing to do).
   */
  compactTail (): { index: CorpusIndex, merged: IndexSegment | undefined, replaced: number } {
    let keep = this.segments.length
    let tokens = keep > 0 ? (this.segments[keep - 1] as IndexSegment).tokens.length : 0
    while (keep >= 2 && 2 * tokens >= (this.segments[keep - 2] as IndexSegment).tokens.length) {
      tokens += (this.segments[keep - 2] as IndexSegment).tokens.length
      keep--
    }
    const replaced = this.segments.length - keep + 1
    if (replaced < 2) return { index: this, merged: undefined, replaced: 0 }
    const merged = mergeSegments(this.segments.slice(keep - 1))
    return { index: CorpusIndex.fromSegments([...this.segments.slice(0, keep - 1), merged]), merged, replaced }
  }
}

/** One segment holding the records of consecutive segments; its suffix array is rebuilt. */
export function mergeSegments (segments: readonly IndexSegment[]): IndexSegment {
  if (segments.length === 0) throw badRecord('nothing to merge')
  for (let s = 1; s < segments.length; s++) {
    if (Buffer.compare((segments[s] as IndexSegment).headBefore, (segments[s - 1] as IndexSegment).headAfter) !== 0) {
      throw new AttributionError(AttributionErrorCode.OUT_OF_ORDER, 'segments to merge do not continue each other')
    }
  }
  let total = 1
  let records = 0
  for (const s of segments) {
    total += s.tokens.length - 1
    records += s.recordCount
  }
  const tokens = new Uint32Array(total)
  const docStart = new Uint32Array(records)
  const recordIndexes = new Uint32Array(records)
  const recordContributor = new Uint32Array(records)
  const contributors: string[] = []
  const slots = new Map<string, number>()
  let at = 0
  let r = 0
  for (const s of segments) {
    tokens.set(s.tokens.subarray(0, s.tokens.length - 1), at)
    for (let i = 0; i < s.recordCount; i++) {
      const address = s.contributorOfLocal(i)
      let slot = slots.get(address)
      if (slot === undefined) {
        slot = contributors.length
        slots.set(address, slot)
        contributors.push(address)
      }
      docStart[r] = (s.docStart[i] as number) + at
      recordIndexes[r] = s.recordIndexes[i] as number
      recordContributor[r] = slot
      r++
    }
    at += s.tokens.length - 1
  }
  tokens[at] = SENTINEL
  const sa = buildSuffixArray(new Int32Array(tokens.buffer, tokens.byteOffset, tokens.length), ALPHABET_SIZE)
  return new IndexSegment({
    tokens,
    sa,
    docStart,
    recordIndexes,
    recordContributor,
    contributors,
    headBefore: (segments[0] as IndexSegment).headBefore,
    headAfter: (segments[segments.length - 1] as IndexSegment).headAfter
  })
}

/** Recomputes a segment's hash chain from its tokens; the head after its records. */
export function recomputeHead (segment: IndexSegment): Uint8Array {
  let head = segment.headBefore
  const contributorBytes = segment.contributors.map(addressBytes)
  for (let r = 0; r < segment.recordCount; r++) {
    const start = segment.docStart[r] as number
    const end = r + 1 < segment.recordCount ? (segment.docStart[r + 1] as number) - 1 : segment.tokens.length - 2
    head = chainRecord(head, segment.recordIndexes[r] as number, contributorBytes[segment.recordContributor[r] as number] as Uint8Array, segment.tokens.subarray(start, end))
  }
  return head
}
