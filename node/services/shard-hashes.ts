import type { CID } from 'multiformats/cid'

/**
 * Each shard's record hashes, from its receipt to the version that appends it: a
 * proposer's build and every validator's check append a contribution's records by hash,
 * and read each shard back from the block store and hashed it again to get them. On a
 * loaded machine that read was most of a build (`scripts/bench/finality.ts`, phase timers:
 * 9.1 of a 10.8 s build of 6,000 records waiting on block reads, beside the receipt of the
 * next contributions), longer than the propose timeout: heights were decided in round 2.
 *
 * Keyed by shard CID: a shard's hashes are a function of its bytes, which its CID names, so
 * an entry is never stale and may come from any path that split the shard. Packed (32
 * bytes a record, one buffer a shard), bounded by bytes, least recently used out first; a
 * shard not held is read and hashed as before.
 */
export class ShardHashes {
  private readonly entries = new Map<string, Uint8Array>()
  private held = 0
  private readonly maxBytes: number

  // 8 MiB: 262,144 records, several versions of a burst of 1 KB records
  constructor (maxBytes = 8 * 1024 * 1024) {
    this.maxBytes = maxBytes
  }

  /** Bytes held now (tests, metrics). */
  get bytes (): number {
    return this.held
  }

  /** The most bytes held (what a caller may gather before `put`). */
  get capacity (): number {
    return this.maxBytes
  }

  /** `records`' hashes in shard order, packed (what `put` keeps: not the records, whose bytes would keep their shard). */
  static pack (records: ReadonlyArray<{ hash: Uint8Array }>): Uint8Array {
    const packed = new Uint8Array(records.length * 32)
    records.forEach((r, i) => { packed.set(r.hash, i * 32) })
    return packed
  }

  /** Keeps `records`' hashes (in shard order, or packed) as shard `cid`'s. */
  put (cid: CID | string, records: ReadonlyArray<{ hash: Uint8Array }> | Uint8Array): void {
    const packed = records instanceof Uint8Array ? records : ShardHashes.pack(records)
    const key = cid.toString()
    if (packed.length > this.maxBytes) return
    this.drop(key)
    this.entries.set(key, packed)
    this.held += packed.length
    for (const [k] of this.entries) {
      if (this.held <= this.maxBytes) break
      this.drop(k)
    }
  }

  /** Shard `cid`'s record hashes (views of one buffer), if held. */
  get (cid: CID | string): Uint8Array[] | undefined {
    const key = cid.toString()
    const packed = this.entries.get(key)
    if (packed === undefined) return undefined
    // most recently used last
    this.entries.delete(key)
    this.entries.set(key, packed)
    return Array.from({ length: packed.length / 32 }, (_, i) => packed.subarray(i * 32, i * 32 + 32))
  }

  private drop (key: string): void {
    const old = this.entries.get(key)
    if (old === undefined) return
    this.entries.delete(key)
    this.held -= old.length
  }
}
