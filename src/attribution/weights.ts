/**
 * Token weights (ATTRIBUTION.md §2), integers only — no Math.log:
 *
 *     w(t) = min(W_CAP, ilog2q8(floor(T_total / (cnt(t) + 1))))
 *
 * with T_total the record tokens of the index and cnt(t) the unigram count of t. Rare
 * tokens weigh more; W_CAP keeps one garbage token from dominating.
 */
import type { CorpusIndex } from './corpus-index.ts'

/** Exact floor(a / b) for non-negative safe integers (a % b is exact, so is the division that follows). */
export function idiv (a: number, b: number): number {
  return (a - (a % b)) / b
}

const TWO_32 = 0x1_0000_0000

/** Number of bits of a non-negative safe integer (0 → 0). */
export function bitLength (x: number): number {
  if (x < TWO_32) return 32 - Math.clz32(x)
  return 64 - Math.clz32(idiv(x, TWO_32))
}

/**
 * log2(x) in q8 fixed point, truncated: 256·(bitLength(x) − 1) plus the 8 bits after the
 * leading one. ilog2q8(1) = 0, ilog2q8(256) = 2048, ilog2q8(192) = 1920; ilog2q8(0) = 0.
 */
export function ilog2q8 (x: number): number {
  if (!Number.isSafeInteger(x) || x < 0) throw new RangeError(`ilog2q8 takes a non-negative safe integer, got ${x}`)
  if (x === 0) return 0
  const bits = bitLength(x)
  let mantissa: number
  if (bits >= 9) {
    const shifted = x < TWO_32 ? x >>> (bits - 9) : Number(BigInt(x) >> BigInt(bits - 9))
    mantissa = shifted & 0xff
  } else {
    mantissa = (x << (9 - bits)) & 0xff
  }
  return 256 * (bits - 1) + mantissa
}

/** w(t) for a token seen `count` times among `total` tokens. */
export function tokenWeight (count: number, total: number, wCap: number): number {
  const w = ilog2q8(idiv(total, count + 1))
  return w < wCap ? w : wCap
}

/** The weight of each token of an output (cl100k ids) against an index. */
export function outputWeights (index: CorpusIndex, tokens: ArrayLike<number>, wCap: number): Uint32Array {
  const weights = new Uint32Array(tokens.length)
  const total = index.totalTokens
  for (let i = 0; i < tokens.length; i++) weights[i] = tokenWeight(index.unigramCount(tokens[i] as number), total, wCap)
  return weights
}
