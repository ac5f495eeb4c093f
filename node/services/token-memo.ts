/**
 * Records' tokens between the near-duplicate check at receipt and the index extension at
 * finality, so each record is tokenized once on a validator, not twice (tokenization was
 * the largest cost of a validator under load: scripts/bench/finality.ts profile in
 * README). Keyed by the normalised text (what T is a function of); bounded by the tokens it
 * holds, oldest out first; an entry is dropped once taken (a record is indexed once).
 */
export class TokenMemo {
  private readonly entries = new Map<string, Uint32Array>()
  private held = 0
  private readonly maxTokens: number

  // 16 M tokens (64 MB at most, held only while a burst waits for its versions): 4 M
  // held a third of scripts/bench/finality.ts's 32,000 records, and the index build
  // tokenized the rest again (9–13 s of samples in each validator's build worker)
  constructor (maxTokens = 16_000_000) {
    this.maxTokens = maxTokens
  }

  /** Tokens held now (for tests and metrics). */
  get size (): number {
    return this.held
  }

  put (normalized: string, tokens: Uint32Array): void {
    if (tokens.length > this.maxTokens || this.entries.has(normalized)) return
    this.entries.set(normalized, tokens)
    this.held += tokens.length
    for (const [key, value] of this.entries) {
      if (this.held <= this.maxTokens) break
      this.entries.delete(key)
      this.held -= value.length
    }
  }

  /** The tokens of `normalized` if held, dropping them. */
  take (normalized: string): Uint32Array | undefined {
    const tokens = this.entries.get(normalized)
    if (tokens === undefined) return undefined
    this.entries.delete(normalized)
    this.held -= tokens.length
    return tokens
  }
}
