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
import { findSpans } from './spans.ts'
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
