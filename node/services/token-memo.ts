import { createHash } from 'node:crypto'

/**
 * Records' tokens between the near-duplicate check at receipt and the index extension at
 * finality, so each record is tokenized once on a validator, not twice (tokenization was
 * the largest cost of a validator under load: scripts/bench/finality.ts profile in
 * README). Keyed by the normalised text (what T is a function of); bounded by what its
 * entries cost, oldest out first; an entry is dropped once taken (a record is indexed once).
 *
 * The bound counts an entry's heap objects, not only its tokens: a small record's entry is
 * its key (the text), a typed array, its buffer and a map slot, ~250 bytes beside 4 per
 * token. Bounded by 16 M tokens alone, the memo of a stream of small records grew to
 * 363,000 entries (~130 MB of a 256 MB heap) and took validators over the edge
 * (scripts/bench/big.ts 500000: heap snapshots at the limit).
 *
 * Keyed by the SHA-256 of the text, not the text: a 1 KB record's key cost more than its
 * tokens, and the memo held a fifth of a burst of such records (scripts/bench/finality.ts:
 * each validator's index build tokenized the rest again). Hashing is ~1.7 GB/s, ~30× the
 * tokenizer.
 */
export class TokenMemo {
  private readonly entries = new Map<string, Uint32Array>()
  private held = 0
  private cost = 0
  private readonly maxBytes: number

  // 24 MB: about one version of small records (50,000 of ~120 B); records beyond it are
  // tokenized again by the index build, off the main thread
  constructor (maxBytes = 24 * 1024 * 1024) {
    this.maxBytes = maxBytes
  }

  /** Tokens held now (for tests and metrics). */
  get size (): number {
    return this.held
  }

  /** What the held entries cost, in bytes (estimated: see ENTRY_BYTES). */
  get bytes (): number {
    return this.cost
  }

  put (normalized: string, tokens: Uint32Array): void {
    const cost = entryBytes(tokens)
    const key = keyOf(normalized)
    if (cost > this.maxBytes || this.entries.has(key)) return
    this.entries.set(key, tokens)
    this.held += tokens.length
    this.cost += cost
    for (const [key, value] of this.entries) {
      if (this.cost <= this.maxBytes) break
      this.drop(key, value)
    }
  }

  /** The tokens of `normalized` if held, dropping them. */
  take (normalized: string): Uint32Array | undefined {
    if (this.entries.size === 0) return undefined
    const key = keyOf(normalized)
    const tokens = this.entries.get(key)
    if (tokens !== undefined) this.drop(key, tokens)
    return tokens
  }

  private drop (key: string, tokens: Uint32Array): void {
    this.entries.delete(key)
    this.held -= tokens.length
    this.cost -= entryBytes(tokens)
  }
}

/** An entry's objects beside its tokens: typed array, buffer, map slot, its key (44 characters) (V8, 64-bit). */
const ENTRY_BYTES = 320

/** What an entry costs: its objects and key, its tokens. */
function entryBytes (tokens: Uint32Array): number {
  return ENTRY_BYTES + tokens.byteLength
}

/** The key of a text: its SHA-256 in base64. */
function keyOf (normalized: string): string {
  return createHash('sha256').update(normalized).digest('base64')
}
