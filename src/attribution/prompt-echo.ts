/**
 * Prompt echo (ATTRIBUTION.md §2): output tokens covered by any MIN_SPAN-token window
 * that also occurs in the prompt earn nothing, so a user who pastes text and has the
 * model repeat it pays no one for it.
 *
 * Windows are compared by a 64-bit hash, so an event can carry the sorted hashes of its
 * prompt's windows instead of the prompt: windowHash = the first 8 bytes of sha256 of
 * the window's cl100k ids as u32 little-endian, as 16 hex digits. When the prompt itself
 * is at hand, its token set also rules out, without hashing, every output window holding
 * a token the prompt lacks (same answer, a fraction of the sha256 calls).
 */
import { hash } from 'node:crypto'

/** What is known of a prompt. */
export interface PromptWindows {
  /** Hashes of the prompt's MIN_SPAN-token windows. */
  hashes: ReadonlySet<string>
  /** The prompt's token ids, when the prompt itself is known. */
  tokens?: ReadonlySet<number>
}

function windowHashAt (tokens: ArrayLike<number>, start: number, scratch: Uint32Array): string {
  for (let i = 0; i < scratch.length; i++) scratch[i] = tokens[start + i] as number
  return hash('sha256', new Uint8Array(scratch.buffer), 'hex').slice(0, 16)
}

/** The hash of tokens[start, start + length). */
export function windowHash (tokens: ArrayLike<number>, start: number, length: number): string {
  return windowHashAt(tokens, start, new Uint32Array(length))
}

/** The sorted, distinct hashes of every `minSpan`-token window of a prompt (cl100k ids). */
export function promptWindowHashes (prompt: ArrayLike<number>, minSpan: number): string[] {
  const scratch = new Uint32Array(minSpan)
  const seen = new Set<string>()
  for (let i = 0; i + minSpan <= prompt.length; i++) seen.add(windowHashAt(prompt, i, scratch))
  return [...seen].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
}

/** PromptWindows of a prompt's tokens: its window hashes and its token set. */
export function promptWindows (prompt: ArrayLike<number>, minSpan: number): PromptWindows {
  return { hashes: new Set(promptWindowHashes(prompt, minSpan)), tokens: new Set(Array.from(prompt)) }
}

/**
 * 1 for each output token inside a `minSpan` window whose hash is one of the prompt's.
 * Only windows touching a token flagged in `relevant` are looked at (the others cannot
 * change any credit); pass undefined to look at them all.
 */
export function echoedTokens (output: ArrayLike<number>, prompt: PromptWindows, minSpan: number, relevant?: Uint8Array): Uint8Array {
  const L = output.length
  const echoed = new Uint8Array(L)
  if (prompt.hashes.size === 0 || L < minSpan) return echoed
  // Prefix counts answer "does the window [i, i + minSpan) touch a relevant token / hold a
  // token the prompt lacks?" in O(1).
  const relevantBefore = new Uint32Array(L + 1)
  const foreignBefore = new Uint32Array(L + 1)
  const tokens = prompt.tokens
  for (let i = 0; i < L; i++) {
    relevantBefore[i + 1] = (relevantBefore[i] as number) + (relevant === undefined ? 1 : relevant[i] as number)
    foreignBefore[i + 1] = (foreignBefore[i] as number) + (tokens === undefined || tokens.has(output[i] as number) ? 0 : 1)
  }
  const scratch = new Uint32Array(minSpan)
  let echoedUpTo = 0
  for (let i = 0; i + minSpan <= L; i++) {
    const end = i + minSpan
    if (relevantBefore[end] === relevantBefore[i] || foreignBefore[end] !== foreignBefore[i]) continue
    if (!prompt.hashes.has(windowHashAt(output, i, scratch))) continue
    for (let t = Math.max(i, echoedUpTo); t < end; t++) echoed[t] = 1
    echoedUpTo = end
  }
  return echoed
}
