/**
 * How much of a new record the index already holds (issue 12 item 2, near-duplicates a
 * text key cannot see: a victim's record with a word changed or a sentence added). The
 * record's text is matched as an output would be (N, T, maximal spans, ATTRIBUTION.md §2);
 * its coverage by an indexed record r is the share of its tokens inside spans r holds,
 * common spans counting for every record (a passage in many records is held all the same).
 * The answer is the largest coverage over r, in basis points.
 */
import type { CorpusIndex } from './corpus-index.ts'
import { normalizeText } from './normalize.ts'
import type { AttributionParams } from './params.ts'
import { findSpans, occursIn, occursScratch, toSymbols } from './spans.ts'
import { tokenize, wordStartFlags } from './tokenizer.ts'

/** `tokenized`: T(N(text)) when the caller has it already. */
export function recordCoverageBps (index: CorpusIndex, text: string, params: AttributionParams, tokenized?: Uint32Array): number {
  if (index.segments.length === 0) return 0
  const tokens = tokenized ?? tokenize(normalizeText(text))
  if (tokens.length === 0) return 0
  const spans = findSpans(index, tokens, wordStartFlags(tokens), params)
  if (spans.length === 0) return 0
  // per record: tokens covered so far and the furthest end reached (spans come in start order)
  const covered = new Map<number, { tokens: number, end: number }>()
  const common = { tokens: 0, end: 0 }
  const add = (c: { tokens: number, end: number }, start: number, end: number): void => {
    const from = Math.max(start, c.end)
    if (end > from) { c.tokens += end - from; c.end = end }
  }
  for (const s of spans) {
    if (s.common) {
      add(common, s.start, s.end)
      for (const c of covered.values()) add(c, s.start, s.end)
      continue
    }
    for (const r of s.records) {
      let c = covered.get(r)
      // a record first met here also holds the common spans before it
      if (c === undefined) { c = { ...common }; covered.set(r, c) }
      add(c, s.start, s.end)
    }
  }
  let best = common.tokens
  for (const c of covered.values()) best = Math.max(best, c.tokens)
  return Math.floor((best * 10_000) / tokens.length)
}

/**
 * recordCoverageBps(…) ≥ thresholdBps, answered without the span search for nearly every
 * record that is not a near-duplicate. A bound first: with w = ⌊minSpan / 2⌋, every span
 * (≥ minSpan tokens, occurring whole in the index) contains a window [p, p + w) at a
 * multiple p of w, which then occurs too, and each of its tokens lies in [p − w, p + 2w)
 * of such a window. So the tokens any span covers lie in the union U of those ranges over
 * the windows that occur; when U cannot reach the threshold, neither can the coverage.
 * Windows are probed left to right and the walk stops as soon as the tokens left outside
 * U rule the threshold out (a fresh record: after a few windows). Otherwise the exact
 * answer, which this always equals (test/unit/record-coverage-bound.test.ts).
 */
export function recordCoverageAtLeast (index: CorpusIndex, text: string, params: AttributionParams, thresholdBps: number, tokenized?: Uint32Array): boolean {
  if (thresholdBps <= 0) return true
  if (index.segments.length === 0) return false
  const tokens = tokenized ?? tokenize(normalizeText(text))
  if (tokens.length === 0) return false
  const w = Math.floor(params.minSpan / 2)
  if (w >= 1 && !mayReach(index, tokens, w, thresholdBps)) return false
  return recordCoverageBps(index, text, params, tokens) >= thresholdBps
}

/** Can the union U (above) hold thresholdBps of the tokens? False as soon as it cannot. */
function mayReach (index: CorpusIndex, tokens: Uint32Array, w: number, thresholdBps: number): boolean {
  const L = tokens.length
  const q = toSymbols(tokens)
  const scratch = occursScratch(w)
  // U can reach the threshold while (L − outside) · 10⁴ ≥ threshold · L
  const maxOutside = L - Math.ceil((thresholdBps * L) / 10_000)
  let inside = 0 // |U| so far
  let coveredTo = 0 // U's end so far
  for (let p = 0; p + w <= L; p += w) {
    if (occursIn(index, q, p, w, scratch)) {
      const from = Math.max(p - w, coveredTo)
      const to = Math.min(L, p + 2 * w)
      if (to > from) { inside += to - from; coveredTo = to }
    }
    // later windows' ranges start at p or after: U ∩ [0, p) is final. The last range
    // reaching past p began before it, so U holds all of [p, coveredTo).
    const outside = p - (inside - Math.max(0, coveredTo - p))
    if (outside > maxOutside) return false
  }
  return L - inside <= maxOutside
}
