/**
 * Near-duplicate records (issue 12 item 2): a record whose text is another's up to case,
 * whitespace and fields other than the text earns nothing new, so validators count it as
 * a duplicate. Its text key sits in the datanet's record index beside the record hashes
 * (one lookup answers both); the domain tag keeps a key from ever equalling a record hash
 * (a record is a canonical JSON line, which never starts with a NUL byte).
 */
import { sha256 } from '../codec/hash.ts'
import { recordText, recordTextOf } from '../datanet/record-text.ts'
import { normalizeText } from '../attribution/normalize.ts'

const TAG = new TextEncoder().encode('\u0000datanet-text-key-v1\u0000')
const encoder = new TextEncoder()

const WHITESPACE_RUN = /\s+/gu
/** Whitespace other than single spaces: what the collapse would change. */
const NOT_SINGLE_SPACES = /[^\S ]| {2}/u
const SPACE = 0x20

/**
 * The text as near-duplicate detection compares it: attribution's N, NFKC, lower case,
 * whitespace runs as one space, trimmed. The collapse runs only when it changes something:
 * `replace` built a new string of every record (with the u flag, a match per space), a fifth
 * of the bytes a validator allocated at receipt (scripts/bench/finality.ts, heap sampling).
 */
export function foldText (text: string): string {
  let folded = normalizeText(text).normalize('NFKC').toLowerCase()
  if (NOT_SINGLE_SPACES.test(folded)) folded = folded.replace(WHITESPACE_RUN, ' ')
  // whitespace is single spaces now: only a space can be at either end
  const last = folded.length - 1
  return last >= 0 && (folded.charCodeAt(0) === SPACE || folded.charCodeAt(last) === SPACE) ? folded.trim() : folded
}

let scratch = new Uint8Array(4096)
scratch.set(TAG)

/** sha256(TAG ‖ UTF-8 of the folded text), encoded after the tag in place: one allocation, one hash call. */
function keyOfText (text: string): Uint8Array {
  const folded = foldText(text)
  if (TAG.length + folded.length * 3 > scratch.length) {
    scratch = new Uint8Array(TAG.length + folded.length * 3)
    scratch.set(TAG)
  }
  const { written } = encoder.encodeInto(folded, scratch.subarray(TAG.length))
  return sha256(scratch.subarray(0, TAG.length + written))
}

/** The key two records share when one is a near-duplicate of the other. */
export function textKey (recordBytes: Uint8Array): Uint8Array {
  return keyOfText(recordText(recordBytes))
}

/** `textKey` of a record at ingest, which has its parsed value as well as its canonical bytes (no second parse). */
export function textKeyOf (value: unknown, recordBytes: Uint8Array): Uint8Array {
  return keyOfText(recordTextOf(value, recordBytes))
}

/** Every key a shard's records hold in the record index: their hashes, then their text keys. */
export function recordKeys (records: ReadonlyArray<{ hash: Uint8Array, bytes: Uint8Array }>): Uint8Array[] {
  return [...records.map(r => r.hash), ...records.map(r => textKey(r.bytes))]
}
