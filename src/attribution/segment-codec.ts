/**
 * Segment bytes: how a node persists an index segment and loads it back instead of
 * rebuilding it from the dataset. All integers little-endian; every section starts on a
 * 4-byte boundary, so a loaded segment's arrays are views into the bytes, not copies
 * (when the bytes themselves are 4-byte aligned).
 *
 *     0    "DNSX"                      magic
 *     4    u32 format                  1
 *     8    u32 n                       stream length (symbols, sentinel included)
 *     12   u32 r                       records
 *     16   u32 c                       distinct contributors
 *     20   u32 0                       reserved
 *     24   32 bytes                    tokenization id (spec.ts): normaliser + tokenizer
 *     56   32 bytes                    record hash chain head before the segment
 *     88   32 bytes                    … and after it
 *     120  u32 × n                     symbols (id + 2, SEP = 1, sentinel 0)
 *          i32 × n                     suffix array
 *          u32 × r                     record start positions
 *          u32 × r                     recordIndex
 *          u32 × r                     contributor slot
 *          20 bytes × c                contributor addresses
 *
 * About 8 bytes per token plus 12 per record. `segmentDigest` (sha256 of the bytes) names
 * a persisted segment; `decodeSegment` checks the structure, recomputes the record hash
 * chain from the symbols and checks the suffix array in linear time, so bytes that
 * decode are a correct segment for the records they claim.
 */
import { sha256, toHex } from '../codec/hash.ts'
import { ALPHABET_SIZE, IndexSegment, SENTINEL, SEP, recomputeHead } from './corpus-index.ts'
import { AttributionError, AttributionErrorCode } from './errors.ts'
import { TOKENIZATION_ID } from './spec.ts'

const MAGIC = 0x58534e44 // "DNSX" read as u32le
const FORMAT = 1
const HEADER_BYTES = 120

if (new Uint8Array(Uint32Array.of(1).buffer)[0] !== 1) throw new Error('segment-codec: a little-endian platform is required')

function bad (message: string): AttributionError {
  return new AttributionError(AttributionErrorCode.BAD_SEGMENT, `index segment: ${message}`)
}

function bytesOf (a: Uint32Array | Int32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength)
}

export function encodeSegment (segment: IndexSegment): Uint8Array {
  const n = segment.tokens.length
  const r = segment.recordCount
  const c = segment.contributors.length
  const size = HEADER_BYTES + 8 * n + 12 * r + 20 * c
  const out = new Uint8Array(size)
  const view = new DataView(out.buffer)
  view.setUint32(0, MAGIC, true)
  view.setUint32(4, FORMAT, true)
  view.setUint32(8, n, true)
  view.setUint32(12, r, true)
  view.setUint32(16, c, true)
  view.setUint32(20, 0, true)
  out.set(TOKENIZATION_ID, 24)
  out.set(segment.headBefore, 56)
  out.set(segment.headAfter, 88)
  let at = HEADER_BYTES
  for (const part of [segment.tokens, segment.sa, segment.docStart, segment.recordIndexes, segment.recordContributor]) {
    out.set(bytesOf(part), at)
    at += part.byteLength
  }
  for (const address of segment.contributors) {
    out.set(Buffer.from(address.slice(2), 'hex'), at)
    at += 20
  }
  return out
}

/** sha256 of segment bytes, `0x` hex: the name a node stores a segment under. */
export function segmentDigest (bytes: Uint8Array): string {
  return toHex(sha256(bytes))
}

export interface DecodeSegmentOptions {
  /**
   * 'full' (default): also recompute the hash chain and check the suffix array (linear
   * time, ~4 bytes per token of scratch). 'structure': sizes, ranges and order only, for
   * bytes whose digest the caller has already checked.
   */
  verify?: 'full' | 'structure'
}

/** Bytes from encodeSegment back to a segment; throws ATTRIBUTION_ERROR_BAD_SEGMENT on anything inconsistent. */
export function decodeSegment (bytes: Uint8Array, options: DecodeSegmentOptions = {}): IndexSegment {
  if (bytes.byteLength < HEADER_BYTES) throw bad('shorter than its header')
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  if (view.getUint32(0, true) !== MAGIC) throw bad('bad magic')
  if (view.getUint32(4, true) !== FORMAT) throw bad(`unknown format ${view.getUint32(4, true)}`)
  const n = view.getUint32(8, true)
  const r = view.getUint32(12, true)
  const c = view.getUint32(16, true)
  if (n < 2 || r < 1 || c < 1 || c > r || n < r + 1 || n > 0x7fff_ffff) throw bad(`impossible sizes (n=${n}, r=${r}, c=${c})`)
  if (bytes.byteLength !== HEADER_BYTES + 8 * n + 12 * r + 20 * c) throw bad(`length ${bytes.byteLength} does not match its sizes`)
  if (Buffer.compare(bytes.subarray(24, 56), TOKENIZATION_ID) !== 0) throw bad('built under another normaliser or tokenizer')
  // Views when aligned, copies otherwise.
  const aligned = bytes.byteOffset % 4 === 0
  const source = aligned ? bytes : bytes.slice()
  const base = source.byteOffset
  let at = HEADER_BYTES
  const u32 = (count: number): Uint32Array => {
    const a = new Uint32Array(source.buffer, base + at, count)
    at += 4 * count
    return a
  }
  const tokens = u32(n)
  const sa = new Int32Array(source.buffer, base + at, n)
  at += 4 * n
  const docStart = u32(r)
  const recordIndexes = u32(r)
  const recordContributor = u32(r)
  const contributors: string[] = []
  for (let i = 0; i < c; i++) {
    contributors.push('0x' + Buffer.from(source.buffer, base + at, 20).toString('hex'))
    at += 20
  }
  if (new Set(contributors).size !== c) throw bad('repeated contributor')

  // The stream: symbols in range, SEP exactly at each record's end, the sentinel last.
  if (tokens[n - 1] !== SENTINEL) throw bad('stream does not end with the sentinel')
  let record = 0
  let expectedStart = 0
  for (let i = 0; i < n - 1; i++) {
    const s = tokens[i] as number
    if (i === expectedStart) {
      if (record >= r || docStart[record] !== i) throw bad(`record ${record} does not start at ${i}`)
      record++
      expectedStart = -1
    }
    if (s === SEP) expectedStart = i + 1
    else if (s === SENTINEL || s >= ALPHABET_SIZE) throw bad(`symbol ${s} at ${i}`)
  }
  if (record !== r || expectedStart !== n - 1) throw bad('record starts do not match the separators')
  for (let i = 0; i < r; i++) {
    if (i > 0 && (recordIndexes[i] as number) <= (recordIndexes[i - 1] as number)) throw bad('recordIndex not ascending')
    if ((recordContributor[i] as number) >= c) throw bad('contributor slot out of range')
  }
  const segment = new IndexSegment({
    tokens,
    sa,
    docStart,
    recordIndexes,
    recordContributor,
    contributors,
    headBefore: Uint8Array.from(bytes.subarray(56, 88)),
    headAfter: Uint8Array.from(bytes.subarray(88, 120))
  })
  if ((options.verify ?? 'full') === 'full') {
    if (Buffer.compare(recomputeHead(segment), segment.headAfter) !== 0) throw bad('records do not hash to the stored chain head')
    if (!isSuffixArray(segment.text, sa)) throw bad('not the suffix array of its stream')
  }
  return segment
}

/**
 * Is `sa` the suffix array of `text` (sentinel-terminated)? Linear time (Burkhardt &
 * Kärkkäinen): sa is a permutation, and for neighbours i, i+1 either their first symbols
 * increase, or they are equal and the suffixes one position later are in order.
 */
export function isSuffixArray (text: Int32Array, sa: Int32Array): boolean {
  const n = text.length
  if (sa.length !== n) return false
  const rank = new Int32Array(n).fill(-1)
  for (let i = 0; i < n; i++) {
    const p = sa[i] as number
    if (p < 0 || p >= n || rank[p] !== -1) return false
    rank[p] = i
  }
  for (let i = 0; i + 1 < n; i++) {
    const a = sa[i] as number
    const b = sa[i + 1] as number
    const ca = text[a] as number
    const cb = text[b] as number
    if (ca > cb) return false
    // Equal first symbols: neither is the (unique) sentinel, so a + 1 and b + 1 exist.
    if (ca === cb && (a + 1 >= n || b + 1 >= n || (rank[a + 1] as number) > (rank[b + 1] as number))) return false
  }
  return true
}
