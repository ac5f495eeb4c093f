/**
 * A seeded 32-bit integer PRNG (splitmix32: a Weyl sequence through the murmur3
 * finaliser) and unbiased integer draws from it. Integer operations only (`Math.imul`,
 * shifts, exact integer arithmetic below 2^53), so every engine on every machine gives
 * the same sequence for the same seed. Not for cryptography.
 */

const TWO_32 = 2 ** 32
const TWO_53 = 2 ** 53

export class SplitMix32 {
  private state: number

  /** `seed`: any safe integer (negative too); seeds that differ in any bit give different streams. */
  constructor (seed: number) {
    if (!Number.isSafeInteger(seed)) throw new RangeError(`seed must be a safe integer, got ${String(seed)}`)
    const lo = seed >>> 0
    const hi = Math.floor(seed / TWO_32) >>> 0
    this.state = lo
    // fold the high bits in through one output step, so seeds 2^32 apart differ
    this.state = (this.next() ^ hi) | 0
  }

  /** The next value, uniform in [0, 2^32). */
  next (): number {
    this.state = (this.state + 0x9e3779b9) | 0
    let z = this.state
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b)
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35)
    return (z ^ (z >>> 16)) >>> 0
  }

  /**
   * Uniform in [0, bound) for a safe integer bound ≥ 1, by rejection (no modulo bias, no
   * floating point): 32-bit draws for bounds up to 2^32, 53-bit draws (two values) above.
   */
  below (bound: number): number {
    if (!Number.isSafeInteger(bound) || bound < 1) throw new RangeError(`bound must be a positive safe integer, got ${String(bound)}`)
    if (bound === 1) return 0
    if (bound <= TWO_32) {
      const limit = TWO_32 - (TWO_32 % bound)
      for (;;) {
        const x = this.next()
        if (x < limit) return x % bound
      }
    }
    const limit = TWO_53 - (TWO_53 % bound)
    for (;;) {
      const x = (this.next() >>> 11) * TWO_32 + this.next()
      if (x < limit) return x % bound
    }
  }
}
