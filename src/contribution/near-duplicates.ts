/**
 * Near-duplicate records (issue 12 item 2): a record whose text is another's up to case,
 * whitespace and fields other than the text earns nothing new, so validators count it as
 * a duplicate. Its text key sits in the datanet's record index beside the record hashes
 * (one lookup answers both); the domain tag keeps a key from ever equalling a record hash
 * (a record is a canonical JSON line, which never starts with a NUL byte).
 */
import { sha256 } from '../codec/hash.ts'
import { recordText } from '../datanet/record-text.ts'
import { normalizeText } from '../attribution/normalize.ts'

const TAG = new TextEncoder().encode('\u0000datanet-text-key-v1\u0000')
const encoder = new TextEncoder()

/** The text as near-duplicate detection compares it: attribution's N, NFKC, lower case, whitespace runs as one space, trimmed. */
export function foldText (text: string): string {
  return normalizeText(text).normalize('NFKC').toLowerCase().replace(/\s+/gu, ' ').trim()
}

/** The key two records share when one is a near-duplicate of the other. */
export function textKey (recordBytes: Uint8Array): Uint8Array {
  return sha256(TAG, encoder.encode(foldText(recordText(recordBytes))))
}

/** Every key a shard's records hold in the record index: their hashes, then their text keys. */
export function recordKeys (records: ReadonlyArray<{ hash: Uint8Array, bytes: Uint8Array }>): Uint8Array[] {
  return [...records.map(r => r.hash), ...records.map(r => textKey(r.bytes))]
}
