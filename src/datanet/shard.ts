import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { create as createDigest } from 'multiformats/hashes/digest'
import { sha256 } from '../codec/hash.ts'
import { canonicalJson } from '../codec/jcs.ts'

/**
 * A shard is a raw block of records: each record's canonical JSON (RFC 8785) followed by
 * a newline. Canonical JSON never holds a raw newline, so a shard splits back into its
 * records unambiguously, and a record's hash is the sha256 of its line.
 */

const NEWLINE = 0x0a
const SHA2_256 = 0x12

export function shardCid (bytes: Uint8Array): CID {
  return CID.createV1(raw.code, createDigest(SHA2_256, sha256(bytes)))
}

/**
 * Packs canonical record bytes into shards of at most `shardSize` bytes, in order. Records
 * are copied in as they come: holding a view of each until its shard closed kept
 * thousands of small objects alive per shard, which the garbage collector copied again
 * and again on the ingest path.
 */
export class ShardPacker {
  private readonly shardSize: number
  private buf: Uint8Array | undefined
  private bytes = 0

  constructor (shardSize: number) {
    this.shardSize = shardSize
  }

  /** Adds a record; returns the shard it closed, if adding it would have overflowed the current one. */
  add (record: Uint8Array): Uint8Array | undefined {
    const size = record.length + 1
    if (size > this.shardSize) throw new RangeError(`a record of ${record.length} bytes does not fit a shard of ${this.shardSize}`)
    let closed: Uint8Array | undefined
    if (this.bytes + size > this.shardSize) closed = this.flush()
    const buf = (this.buf ??= new Uint8Array(this.shardSize))
    buf.set(record, this.bytes)
    buf[this.bytes + record.length] = NEWLINE
    this.bytes += size
    return closed
  }

  /** The last, partial shard (undefined when empty). */
  flush (): Uint8Array | undefined {
    const buf = this.buf
    if (buf === undefined || this.bytes === 0) return undefined
    // a nearly full shard keeps its buffer; a small one is copied out of it
    const out = this.bytes * 2 > buf.length ? buf.subarray(0, this.bytes) : buf.slice(0, this.bytes)
    this.buf = undefined
    this.bytes = 0
    return out
  }
}

export interface ShardRecord {
  /** The canonical bytes of the record (its line without the newline). */
  bytes: Uint8Array
  hash: Uint8Array
}

export const ShardErrorCode = {
  MALFORMED: 'SHARD_ERROR_MALFORMED',
  NOT_CANONICAL: 'SHARD_ERROR_NOT_CANONICAL'
} as const

/** Splits a shard into its records. Throws on a shard that is not newline-terminated canonical JSON lines. */
export function splitShard (shard: Uint8Array, hashes?: readonly Uint8Array[]): ShardRecord[] {
  const lines = shardLines(shard)
  // hashes kept from an earlier split of the same bytes (a shard's CID names them): not hashed again
  if (hashes !== undefined && hashes.length === lines.length) return lines.map((bytes, i) => ({ bytes, hash: hashes[i] as Uint8Array }))
  return lines.map(bytes => ({ bytes, hash: sha256(bytes) }))
}

/** A shard's record lines (views of it, without their newlines). Throws on a shard that is not newline-terminated non-empty lines. */
function shardLines (shard: Uint8Array): Uint8Array[] {
  if (shard.length === 0 || shard[shard.length - 1] !== NEWLINE) throw new Error(ShardErrorCode.MALFORMED)
  const out: Uint8Array[] = []
  let start = 0
  while (start < shard.length) {
    const end = shard.indexOf(NEWLINE, start)
    const bytes = shard.subarray(start, end)
    if (bytes.length === 0) throw new Error(ShardErrorCode.MALFORMED)
    out.push(bytes)
    start = end + 1
  }
  return out
}

// ignoreBOM: a BOM is kept (and then fails the canonical check) rather than silently dropped.
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/** Parses a record line and checks that it is in canonical form (so its hash is the one everyone computes). */
export function decodeRecord (bytes: Uint8Array): Record<string, unknown> {
  let text: string
  let value: unknown
  try {
    text = decoder.decode(bytes)
    value = JSON.parse(text)
  } catch {
    throw new Error(ShardErrorCode.MALFORMED)
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(ShardErrorCode.MALFORMED)
  if (canonicalJson(value) !== text) throw new Error(ShardErrorCode.NOT_CANONICAL)
  return value as Record<string, unknown>
}
