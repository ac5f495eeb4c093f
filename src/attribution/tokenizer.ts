/**
 * Tokenization T(text) of span-sa-v1 (ATTRIBUTION.md §2): gpt-tokenizer's cl100k_base,
 * pinned by exact package version and by the SHA-256 of its vocabulary, with special
 * tokens *disabled*: "<|endoftext|>" in a record or an output is plain text, never the
 * special token (gpt-tokenizer 4 throws on it by default; an empty `disallowedSpecial`
 * with no `allowedSpecial` makes it encode the characters as ordinary text).
 *
 * Word starts: a token starts a word when its bytes begin with a space (0x20) or a
 * newline (0x0A), or when it is the first token of a record or an output. The flag of
 * every vocabulary entry is computed once, at load, from the rank table the encoder
 * itself uses (one byte per token id), so the hot path is a table lookup, never a decode.
 */
import { createHash } from 'node:crypto'
import { decode, encode } from 'gpt-tokenizer/encoding/cl100k_base'
import ranks from 'gpt-tokenizer/bpeRanks/cl100k_base'
import { CL100K_TOKEN_SPLIT_REGEX } from 'gpt-tokenizer/esm/encodingParams/constants'
import { AttributionError, AttributionErrorCode } from './errors.ts'

/**
 * The pinned tokenizer, as the spec id names it. `ranksSha256` is the SHA-256 of the
 * cl100k_base vocabulary in tiktoken's file format (the value tiktoken itself pins for
 * `cl100k_base.tiktoken`); `verifyTokenizer` recomputes it from the table in memory.
 */
export const TOKENIZER = Object.freeze({
  pkg: 'gpt-tokenizer',
  version: '4.0.0',
  encoding: 'cl100k_base',
  ranksSha256: '223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7'
})

/** Token ids the encoder can produce lie in [0, VOCAB_SIZE): the mergeable ranks (special tokens are text). */
export const VOCAB_SIZE: number = ranks.length

/** Special tokens are never recognised: they encode as the text they are. */
const SPECIAL_AS_TEXT = { disallowedSpecial: new Set<string>() }

const SPACE = 0x20
const NEWLINE = 0x0a

/** wordStartTable[id] = 1 when the token's bytes begin with a space or a newline. */
const wordStartTable: Uint8Array = (() => {
  const table = new Uint8Array(VOCAB_SIZE)
  for (let id = 0; id < VOCAB_SIZE; id++) {
    const entry = ranks[id]
    const first = typeof entry === 'string' ? entry.charCodeAt(0) : entry?.[0]
    table[id] = first === SPACE || first === NEWLINE ? 1 : 0
  }
  return table
})()

/**
 * cl100k's pre-tokenizer: the encoder's own pattern. Byte-pair merges never cross its
 * pieces, so T(text) is the concatenation of each piece's ids, and a piece tokenized
 * alone splits into itself (its pattern's lookarounds only lengthen a match at the end).
 * Matched sticky with `test`, which builds no match array: `exec` made an array, its
 * index and input for each of a 1 KB record's ~400 pieces (1.33× faster without them,
 * scripts/bench/near-duplicates.ts).
 */
const SPLIT = new RegExp(CL100K_TOKEN_SPLIT_REGEX.source, CL100K_TOKEN_SPLIT_REGEX.flags)
const SPLIT_AT = new RegExp(CL100K_TOKEN_SPLIT_REGEX.source, CL100K_TOKEN_SPLIT_REGEX.flags.replace('g', '') + 'y')

/**
 * Ids of pieces seen before (a word's ids, most often one): gpt-tokenizer's own path
 * looks each piece up twice and keeps an LRU; this is 1.5× faster on word salad
 * (test/unit/tokenizer.test.ts checks it against the encoder). Bounded, emptied when full.
 */
const pieces = new Map<string, number | number[]>()
const MAX_PIECES = 50_000

/** Where encodeInto writes (grown as needed): a record's ids are copied out once, not pushed to an array. */
let scratch = new Uint32Array(4096)

function put (k: number, id: number): number {
  if (k === scratch.length) {
    const grown = new Uint32Array(scratch.length * 2)
    grown.set(scratch)
    scratch = grown
  }
  scratch[k] = id
  return k + 1
}

/** Writes T(text) to `scratch`; returns how many ids. */
function encodeInto (text: string): number {
  const n = text.length
  let k = 0
  let at = 0
  while (at < n) {
    let start = at
    SPLIT_AT.lastIndex = at
    if (!SPLIT_AT.test(text)) {
      // no piece starts here: the encoder's own search skips to the next one
      SPLIT.lastIndex = at
      const m = SPLIT.exec(text)
      if (m === null) return k
      start = m.index
      SPLIT_AT.lastIndex = start + m[0].length
    }
    const end = SPLIT_AT.lastIndex
    // a pattern that matched nothing would not move on (none of cl100k's alternatives can)
    at = end > start ? end : start + 1
    if (end === start) continue
    const piece = text.slice(start, end)
    let ids = pieces.get(piece)
    if (ids === undefined) {
      const encoded = encode(piece, SPECIAL_AS_TEXT)
      ids = encoded.length === 1 ? encoded[0] as number : encoded
      if (pieces.size >= MAX_PIECES) pieces.clear()
      pieces.set(piece, ids)
    }
    if (typeof ids === 'number') k = put(k, ids)
    else for (const id of ids) k = put(k, id)
  }
  return k
}

/** T(text): the cl100k token ids of already-normalised text (see normalizeText). */
export function tokenize (normalizedText: string): Uint32Array {
  if (normalizedText.length === 0) return new Uint32Array(0)
  const n = encodeInto(normalizedText) // before reading `scratch`: it may grow
  const ids = scratch.slice(0, n)
  // a long text (an output, a prompt) leaves no large buffer behind
  if (scratch.length > 1 << 20) scratch = new Uint32Array(4096)
  return ids
}

/** T(text) by gpt-tokenizer's encoder alone: what `tokenize` must equal (tests). */
export function tokenizeReference (normalizedText: string): number[] {
  return normalizedText.length === 0 ? [] : encode(normalizedText, SPECIAL_AS_TEXT)
}

/** contentTable[id] = 1 when the token's bytes hold anything but whitespace. */
const contentTable: Uint8Array = (() => {
  const table = new Uint8Array(VOCAB_SIZE)
  for (let id = 0; id < VOCAB_SIZE; id++) {
    const entry = ranks[id]
    const bytes = typeof entry === 'string' ? Buffer.from(entry, 'utf8') : (entry ?? [])
    for (const b of bytes) if (b !== 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0b && b !== 0x0c && b !== 0x0d) { table[id] = 1; break }
  }
  return table
})()

/** Does this token carry content (not only whitespace)? What a record's content weight counts. */
export function isContentToken (id: number): boolean {
  return contentTable[id] === 1
}

/** Does this token id, in the middle of a text, start a word? */
export function isWordStartToken (id: number): boolean {
  return wordStartTable[id] === 1
}

/** Word-start flags of a token sequence: its first token always starts a word. */
export function wordStartFlags (ids: ArrayLike<number>): Uint8Array {
  const n = ids.length
  const flags = new Uint8Array(n)
  for (let i = 0; i < n; i++) flags[i] = wordStartTable[ids[i] as number] as number
  if (n > 0) flags[0] = 1
  return flags
}

/** The text of a token sequence (a span's display text; not used for money). */
export function decodeTokens (ids: ArrayLike<number>): string {
  return decode(Array.from(ids))
}

/**
 * The SHA-256 (hex, no 0x) of the vocabulary in memory, serialised as tiktoken's
 * `cl100k_base.tiktoken` (one "base64(bytes) rank\n" line per rank). ~100 ms: a start-up
 * self-test, not a per-event check.
 */
export function ranksSha256 (): string {
  const h = createHash('sha256')
  const lines: string[] = []
  for (let id = 0; id < VOCAB_SIZE; id++) {
    const entry = ranks[id]
    const bytes = typeof entry === 'string' ? Buffer.from(entry, 'utf8') : Buffer.from(entry ?? [])
    lines.push(`${bytes.toString('base64')} ${id}\n`)
    if (lines.length === 4096) {
      h.update(lines.join(''))
      lines.length = 0
    }
  }
  h.update(lines.join(''))
  return h.digest('hex')
}

/** Throws ATTRIBUTION_ERROR_TOKENIZER_MISMATCH unless the loaded vocabulary is the pinned one. */
export function verifyTokenizer (): void {
  const actual = ranksSha256()
  if (actual !== TOKENIZER.ranksSha256) {
    throw new AttributionError(AttributionErrorCode.TOKENIZER_MISMATCH, `cl100k_base vocabulary hashes to ${actual}, expected ${TOKENIZER.ranksSha256}`)
  }
}
