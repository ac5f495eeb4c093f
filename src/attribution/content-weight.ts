import type { IndexSegment } from './corpus-index.ts'
import { isContentToken, isWordStartToken } from './tokenizer.ts'

/**
 * Each contributor's content weight in a dataset version (ATTRIBUTION.md §2, "Money"): the
 * words of its accepted records, read off the normalized tokens — a token that carries
 * content and begins a word (a leading space or newline, or the first after whitespace) —
 * each record counted at most `maxRecordTokens`. Record count never matters: a text
 * uploaded as one record or as a hundred weighs the same. Words, not raw tokens: a word
 * alone often tokenizes into more pieces than the same word after a space ("farmers" →
 * "far" "mers"), which let splitting earn ~16% more; whitespace tokens never count, so
 * padding earns nothing. No minimum record length: a minimum would make a split text weigh
 * less, never more, but would also cut honest short records.
 */
export function contentWeights (segments: readonly IndexSegment[], maxRecordTokens: number): Map<string, bigint> {
  const weights = new Map<string, bigint>()
  for (const segment of segments) {
    const starts = segment.docStart
    // stream: each record's symbols (token id + 2) then one separator; the sentinel last
    const streamEnd = segment.tokens.length - 1
    for (let r = 0; r < starts.length; r++) {
      const end = r + 1 < starts.length ? (starts[r + 1] as number) - 1 : streamEnd - 1
      let tokens = 0
      let afterSpace = true
      for (let i = starts[r] as number; i < end; i++) {
        const id = (segment.tokens[i] as number) - 2
        const content = isContentToken(id)
        if (content && (afterSpace || isWordStartToken(id))) tokens++
        afterSpace = !content
      }
      const address = segment.contributorOfLocal(r)
      weights.set(address, (weights.get(address) ?? 0n) + BigInt(Math.min(tokens, maxRecordTokens)))
    }
  }
  return weights
}
