/**
 * Maximal span matching (ATTRIBUTION.md §2 "Span finding"), against every segment of an
 * index, defined over their union.
 *
 * For each output position l that starts a word: m(l) is the longest length such that
 * q[l, l + m) occurs in the records (inside one record: the stream's SEP and sentinel
 * never equal an output symbol), capped at MAX_SPAN and at the output's end — the
 * maximum over segments; then trimmed back until l + m is a word boundary of the
 * output (a word-start token or the end). l gives a candidate when m ≥ MIN_SPAN and
 * l + m > lastR, the furthest end any earlier start reached (a span ending inside an
 * earlier one is contained in it: not maximal). A candidate occurring more than C_SCAN
 * times (summed over segments) is common without looking at its records; otherwise its
 * distinct records (the union over segments, ascending recordIndex) are collected, and
 * more than D_MAX of them make it common.
 *
 * lastR also moves for starts whose match is shorter than MIN_SPAN: a later span ending
 * inside such a match is shorter still, so it was never a candidate — the same spans as
 * counting only kept ones, and it lets positions inside a long match skip the search.
 *
 * The longest match is found by narrowing a suffix-array range one token at a time
 * (two binary searches per token, no LCP array; large segments answer the first two
 * tokens from lookup tables, corpus-index.ts); the range at each depth is kept, so the
 * occurrence count of the trimmed span is read off without another search.
 */
import { type CorpusIndex, type IndexSegment, SYMBOL_OFFSET } from './corpus-index.ts'
import type { AttributionParams } from './params.ts'
import { narrowRange } from './suffix-array.ts'

export interface Span {
  /** Output token positions [start, end). */
  start: number
  end: number
  /** Occurrences in the index (sum over segments). */
  count: number
  /** Distinct records that hold it, ascending recordIndex; empty when common. */
  records: number[]
  /** Occurs more than C_SCAN times or in more than D_MAX records: earns nothing. */
  common: boolean
}

/**
 * Longest prefix of q[l, l + cap) that occurs in the segment; the suffix-array range of
 * the first d symbols is left at los[base + d], his[base + d] for d = 1..result.
 */
function longestMatch (segment: IndexSegment, q: Int32Array, l: number, cap: number, los: Int32Array, his: Int32Array, base: number, range: Int32Array): number {
  if (!segment.narrowFirst(q[l] as number, range)) return 0
  const text = segment.text
  const sa = segment.sa
  let d = 1
  los[base + 1] = range[0] as number
  his[base + 1] = range[1] as number
  while (d < cap) {
    const lo = range[0] as number
    if ((range[1] as number) - lo === 1) {
      // One suffix left: extend by direct comparison.
      const p = sa[lo] as number
      while (d < cap && text[p + d] === q[l + d]) {
        d++
        los[base + d] = lo
        his[base + d] = lo + 1
      }
      return d
    }
    const found = d === 1 ? segment.narrowSecond(q[l + 1] as number, range) : narrowRange(text, sa, range, d, q[l + d] as number)
    if (!found) return d
    d++
    los[base + d] = range[0] as number
    his[base + d] = range[1] as number
  }
  return d
}

/**
 * Does q[start, start + length) occur in some segment of the index (inside one record)?
 * What a span-free bound needs (record-coverage.ts): every window of a span occurs.
 */
export function occursIn (index: CorpusIndex, q: Int32Array, start: number, length: number, scratch: OccursScratch): boolean {
  for (const segment of index.segments) {
    if (longestMatch(segment, q, start, length, scratch.los, scratch.his, 0, scratch.range) >= length) return true
  }
  return false
}

/** Working arrays of occursIn for windows up to `maxLength` tokens, reused across calls. */
export interface OccursScratch { los: Int32Array, his: Int32Array, range: Int32Array }

export function occursScratch (maxLength: number): OccursScratch {
  return { los: new Int32Array(maxLength + 1), his: new Int32Array(maxLength + 1), range: new Int32Array(2) }
}

/** Output ids as the symbols of the index's text (what longestMatch compares). */
export function toSymbols (output: ArrayLike<number>): Int32Array {
  const q = new Int32Array(output.length)
  for (let i = 0; i < q.length; i++) q[i] = (output[i] as number) + SYMBOL_OFFSET
  return q
}

/**
 * The maximal spans of an output (cl100k ids, with its word-start flags) in the index,
 * in ascending start order.
 */
export function findSpans (index: CorpusIndex, output: ArrayLike<number>, wordStart: Uint8Array, params: AttributionParams): Span[] {
  const L = output.length
  const segments = index.segments
  const spans: Span[] = []
  if (L === 0 || segments.length === 0) return spans
  const q = toSymbols(output)
  const { minSpan, maxSpan, cScan, dMax } = params
  const stride = maxSpan + 1
  const los = new Int32Array(segments.length * stride)
  const his = new Int32Array(segments.length * stride)
  const reach = new Int32Array(segments.length)
  const range = new Int32Array(2)
  let lastR = 0
  for (let l = 0; l < L; l++) {
    if (wordStart[l] !== 1) continue
    const cap = Math.min(maxSpan, L - l)
    // Whatever it matches ends by l + cap: contained in an earlier span when that is ≤ lastR.
    if (l + cap <= lastR) continue
    let m = 0
    for (let s = 0; s < segments.length; s++) {
      const k = longestMatch(segments[s] as IndexSegment, q, l, cap, los, his, s * stride, range)
      reach[s] = k
      if (k > m) m = k
    }
    while (m > 0 && l + m < L && wordStart[l + m] !== 1) m--
    if (l + m <= lastR) continue
    lastR = l + m
    if (m < minSpan) continue
    let count = 0
    for (let s = 0; s < segments.length; s++) {
      if ((reach[s] as number) >= m) count += (his[s * stride + m] as number) - (los[s * stride + m] as number)
    }
    if (count > cScan) {
      spans.push({ start: l, end: l + m, count, records: [], common: true })
      continue
    }
    const found: number[] = []
    for (let s = 0; s < segments.length; s++) {
      if ((reach[s] as number) < m) continue
      const segment = segments[s] as IndexSegment
      const end = his[s * stride + m] as number
      for (let i = los[s * stride + m] as number; i < end; i++) {
        found.push(segment.recordIndexes[segment.recordAt(segment.sa[i] as number)] as number)
      }
    }
    found.sort((a, b) => a - b)
    const records: number[] = []
    for (const r of found) if (records.length === 0 || records[records.length - 1] !== r) records.push(r)
    const common = records.length > dMax
    spans.push({ start: l, end: l + m, count, records: common ? [] : records, common })
  }
  return spans
}
