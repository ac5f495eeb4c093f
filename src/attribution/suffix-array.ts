/**
 * Suffix arrays by SA-IS (Nong, Zhang & Chan 2009), on typed arrays, written here.
 *
 * The text is an Int32Array whose last symbol is a unique sentinel 0 and whose other
 * symbols lie in [1, alphabetSize). The index (corpus-index.ts) feeds it token ids + 2,
 * SEP = 1 after each record and the sentinel 0 at the end. The result is the canonical
 * suffix array in numeric symbol order: sa[0] = n − 1 (the sentinel's suffix).
 *
 * Linear time: each level induces the order of all suffixes from the sorted LMS
 * suffixes, and sorts the LMS substrings by recursing on a string of at most n/2 names.
 * The recursion works in the upper part of the caller's suffix array (as in Nong's
 * reference code), so the extra memory is one byte per symbol for the L/S types plus two
 * bucket tables of the alphabet's size per level.
 *
 * The range searches at the end need no LCP array: a pattern's occurrences are narrowed
 * one symbol at a time by two binary searches inside the current range.
 */

/**
 * While a level runs, each symbol carries its L/S type in its low bit (text[i] = c·2 +
 * type, S = 1): one memory access reads both, and comparing two packed values compares
 * (symbol, type) as the LMS-substring naming needs. The top level restores the caller's
 * text before returning; deeper levels work on scratch space inside the suffix array.
 */
const S_TYPE = 1
const MAX_ALPHABET = 1 << 29

/** Suffix array of `text` (see above). Throws RangeError if the text breaks the contract. */
export function buildSuffixArray (text: Int32Array, alphabetSize: number): Int32Array {
  const n = text.length
  if (n === 0 || text[n - 1] !== 0) throw new RangeError('suffix array: the text must end with the sentinel 0')
  if (!Number.isSafeInteger(alphabetSize) || alphabetSize < 1 || alphabetSize > MAX_ALPHABET) throw new RangeError(`suffix array: alphabet size ${alphabetSize} outside [1, 2^29]`)
  for (let i = 0; i < n - 1; i++) {
    const c = text[i] as number
    if (c < 1 || c >= alphabetSize) throw new RangeError(`suffix array: symbol ${c} at ${i} outside [1, ${alphabetSize})`)
  }
  const sa = new Int32Array(n)
  if (alphabetSize > 2 * n) {
    // A short text over a large alphabet (a small segment of token ids): rename the
    // symbols it uses to their ranks, which keeps the order and spares the O(alphabet)
    // bucket passes; the text itself is not touched.
    sais(denseRanks(text), sa, n, n)
    return sa
  }
  sais(text, sa, n, alphabetSize)
  for (let i = 0; i < n; i++) text[i] = (text[i] as number) >> 1
  return sa
}

/** The text with each symbol replaced by its rank among the distinct symbols present. */
function denseRanks (text: Int32Array): Int32Array {
  const distinct = Int32Array.from(new Set(text)).sort()
  const rank = new Map<number, number>()
  distinct.forEach((c, i) => rank.set(c, i))
  return text.map(c => rank.get(c) as number)
}

function bucketStarts (counts: Int32Array, bucket: Int32Array, k: number): void {
  let sum = 0
  for (let c = 0; c < k; c++) {
    bucket[c] = sum
    sum += counts[c] as number
  }
}

function bucketEnds (counts: Int32Array, bucket: Int32Array, k: number): void {
  let sum = 0
  for (let c = 0; c < k; c++) {
    sum += counts[c] as number
    bucket[c] = sum
  }
}

/**
 * How far ahead the scans touch the text they will read: the induced-sorting loops are
 * bound by cache misses on text[sa[i] − 1], and a load issued AHEAD iterations early
 * (its value only folded into `warmth`) lets the CPU overlap those misses. The entry
 * read ahead may still change before the loop gets there; then the touch was merely
 * wasted. ~30% faster on 10M tokens; no effect on the result.
 */
const AHEAD = 24
let warmth = 0

/**
 * Induces L-type suffixes left to right, then S-type right to left, from what sa holds.
 * With `markLms`, the S pass also flags each LMS suffix it passes (stores ~p): it reads
 * text[p − 1] anyway, and text[p] sits next to it, so finding the LMS suffixes afterwards
 * needs no second round of random reads.
 */
function induce (text: Int32Array, sa: Int32Array, counts: Int32Array, bucket: Int32Array, n: number, k: number, markLms: boolean): void {
  let warm = 0
  bucketStarts(counts, bucket, k)
  for (let i = 0; i < n; i++) {
    const ahead = i + AHEAD < n ? (sa[i + AHEAD] as number) : 0
    warm ^= text[ahead > 0 ? ahead - 1 : 0] as number
    const j = (sa[i] as number) - 1
    if (j >= 0) {
      const v = text[j] as number
      if ((v & 1) !== S_TYPE) {
        const at = bucket[v >> 1] as number
        bucket[v >> 1] = at + 1
        sa[at] = j
      }
    }
  }
  bucketEnds(counts, bucket, k)
  for (let i = n - 1; i >= 0; i--) {
    const ahead = i >= AHEAD ? (sa[i - AHEAD] as number) : 0
    warm ^= text[ahead > 0 ? ahead - 1 : 0] as number
    const p = sa[i] as number
    const j = p - 1
    if (j >= 0) {
      const v = text[j] as number
      if ((v & 1) === S_TYPE) {
        const at = (bucket[v >> 1] as number) - 1
        bucket[v >> 1] = at
        sa[at] = j
      } else if (markLms && ((text[p] as number) & 1) === S_TYPE) {
        // Entries below i are all that is still written or read: flagging sa[i] is safe.
        sa[i] = ~p
      }
    }
  }
  warmth ^= warm
}

/**
 * SA-IS on text[0, n) into sa[0, n); text[n − 1] is the unique smallest symbol. Leaves
 * text packed (symbol·2 + type).
 */
function sais (text: Int32Array, sa: Int32Array, n: number, k: number): void {
  if (n === 1) {
    sa[0] = 0
    text[0] = ((text[0] as number) << 1) | S_TYPE
    return
  }
  // Types (S if text[i..] < text[i+1..]; the sentinel is S) packed into the low bit, and counts.
  const counts = new Int32Array(k)
  let next = text[n - 1] as number
  let nextType = S_TYPE
  counts[next] = 1
  text[n - 1] = (next << 1) | S_TYPE
  for (let i = n - 2; i >= 0; i--) {
    const c = text[i] as number
    const type = c < next || (c === next && nextType === S_TYPE) ? S_TYPE : 0
    counts[c] = (counts[c] as number) + 1
    text[i] = (c << 1) | type
    next = c
    nextType = type
  }
  const bucket = new Int32Array(k)

  // Stage 1: LMS positions at their bucket ends, induce, which sorts the LMS substrings.
  sa.fill(-1, 0, n)
  bucketEnds(counts, bucket, k)
  let prevType = (text[0] as number) & 1
  for (let i = 1; i < n; i++) {
    const v = text[i] as number
    if ((v & 1) === S_TYPE && prevType !== S_TYPE) {
      const at = (bucket[v >> 1] as number) - 1
      bucket[v >> 1] = at
      sa[at] = i
    }
    prevType = v & 1
  }
  induce(text, sa, counts, bucket, n, k, true)

  // Compact the sorted LMS positions (flagged by the S pass) into sa[0, n1).
  let n1 = 0
  for (let i = 0; i < n; i++) {
    const v = sa[i] as number
    if (v < 0) sa[n1++] = ~v
  }

  // Name the LMS substrings: equal substrings get equal names, in sorted order.
  // LMS positions are ≥ 2 apart, so p >> 1 gives each its own slot in sa[n1, n1 + n/2).
  sa.fill(-1, n1, n)
  let names = 0
  let prev = -1
  let warm = 0
  for (let i = 0; i < n1; i++) {
    if (i + AHEAD < n1) warm ^= text[sa[i + AHEAD] as number] as number
    const p = sa[i] as number
    let differs = prev < 0
    if (!differs) {
      for (let d = 0; ; d++) {
        const v = text[p + d] as number
        if (v !== text[prev + d]) {
          differs = true
          break
        }
        // Both reached the next LMS position at the same offset (types agree so far): equal.
        if (d > 0 && (v & 1) === S_TYPE && ((text[p + d - 1] as number) & 1) !== S_TYPE) break
      }
    }
    if (differs) {
      names++
      prev = p
    }
    sa[n1 + (p >> 1)] = names - 1
  }
  // Gather the names, in text order, into the top n1 slots: the reduced string.
  let j = n - 1
  for (let i = n - 1; i >= n1; i--) {
    const v = sa[i] as number
    if (v >= 0) sa[j--] = v
  }
  const reduced = sa.subarray(n - n1, n)
  const reducedSa = sa.subarray(0, n1)

  // Stage 2: sort the LMS suffixes, recursing while names repeat (unless few repeat).
  if (names === n1) {
    for (let i = 0; i < n1; i++) reducedSa[reduced[i] as number] = i
  } else if (!sortFewRepeats(reduced, reducedSa, n1, names)) {
    sais(reduced, reducedSa, n1, names)
  }

  // Stage 3: map back to positions, place the sorted LMS suffixes at bucket ends, induce.
  j = 0
  prevType = (text[0] as number) & 1
  for (let i = 1; i < n; i++) {
    const t = (text[i] as number) & 1
    if (t === S_TYPE && prevType !== S_TYPE) reduced[j++] = i
    prevType = t
  }
  for (let i = 0; i < n1; i++) {
    if (i + AHEAD < n1) warm ^= reduced[reducedSa[i + AHEAD] as number] as number
    reducedSa[i] = reduced[reducedSa[i] as number] as number
  }
  sa.fill(-1, n1, n)
  bucketEnds(counts, bucket, k)
  for (let i = n1 - 1; i >= 0; i--) {
    if (i >= AHEAD) warm ^= text[sa[i - AHEAD] as number] as number
    const p = sa[i] as number
    sa[i] = -1
    const c = (text[p] as number) >> 1
    const at = (bucket[c] as number) - 1
    bucket[c] = at
    sa[at] = p
  }
  induce(text, sa, counts, bucket, n, k, false)
  warmth ^= warm
}

/**
 * The reduced string of natural text is mostly distinct names: most LMS substrings occur
 * once. Then one counting sort by first symbol orders nearly every suffix, and the few
 * runs of equal first symbols are sorted by comparing their suffixes directly, far
 * cheaper than a level of SA-IS. The direct comparisons get a budget of 2 symbols per
 * suffix; repetitive text exhausts it, and the caller recurses instead (the result is
 * the same either way: the suffix array is unique). `reduced` is only read.
 */
const OVER_BUDGET = new Error('over budget')

function sortFewRepeats (reduced: Int32Array, out: Int32Array, n: number, k: number): boolean {
  const start = new Int32Array(k + 1)
  for (let i = 0; i < n; i++) {
    const c = (reduced[i] as number) + 1
    start[c] = (start[c] as number) + 1
  }
  for (let c = 1; c <= k; c++) start[c] = (start[c] as number) + (start[c - 1] as number)
  // Only equal-name runs need more work; give up early if they hold most suffixes.
  let repeated = 0
  for (let c = 0; c < k; c++) {
    const size = (start[c + 1] as number) - (start[c] as number)
    if (size > 1) repeated += size
  }
  if (repeated * 4 > n) return false
  for (let i = 0; i < n; i++) {
    const c = reduced[i] as number
    const at = start[c] as number
    start[c] = at + 1
    out[at] = i
  }
  let budget = 2 * n
  const compare = (p: number, q: number): number => {
    // Equal first symbols; the unique final symbol ends every comparison.
    for (let d = 1; ; d++) {
      if (--budget < 0) throw OVER_BUDGET
      const a = reduced[p + d] as number
      const b = reduced[q + d] as number
      if (a !== b) return a - b
    }
  }
  // After the placement, start[c] is the end of c's run.
  let runStart = 0
  try {
    for (let c = 0; c < k; c++) {
      const runEnd = start[c] as number
      if (runEnd - runStart > 1) out.subarray(runStart, runEnd).sort(compare)
      runStart = runEnd
    }
  } catch (err) {
    if (err === OVER_BUDGET) return false
    throw err
  }
  return true
}

/**
 * Narrows range = [lo, hi) of sa, whose suffixes all share their first `depth` symbols,
 * in place to the sub-range whose symbol at `depth` equals `symbol`; false when empty.
 */
export function narrowRange (text: Int32Array, sa: Int32Array, range: Int32Array, depth: number, symbol: number): boolean {
  const lo = range[0] as number
  const hi = range[1] as number
  const start = firstAtLeast(text, sa, lo, hi, depth, symbol)
  const end = firstAtLeast(text, sa, start, hi, depth, symbol + 1)
  range[0] = start
  range[1] = end
  return start < end
}

/** In sa[lo, hi) (sorted at `depth`), the first index whose symbol at `depth` is ≥ symbol; hi if none. */
export function firstAtLeast (text: Int32Array, sa: Int32Array, lo: number, hi: number, depth: number, symbol: number): number {
  let a = lo
  let b = hi
  while (a < b) {
    const mid = (a + b) >>> 1
    if ((text[(sa[mid] as number) + depth] as number) < symbol) a = mid + 1
    else b = mid
  }
  return a
}

/**
 * The range [lo, hi) of sa whose suffixes begin with `pattern` (symbols ≥ 1); empty
 * (lo === hi) when it does not occur.
 */
export function patternRange (text: Int32Array, sa: Int32Array, pattern: ArrayLike<number>): { lo: number, hi: number } {
  const range = Int32Array.of(0, sa.length)
  for (let d = 0; d < pattern.length; d++) {
    if (!narrowRange(text, sa, range, d, pattern[d] as number)) break
  }
  return { lo: range[0] as number, hi: range[1] as number }
}
