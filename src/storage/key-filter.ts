/**
 * A Bloom filter over 32-byte keys that are uniform already (sha256 outputs: record hashes
 * and text keys), so its probes are taken from the key's own bytes with no hashing. It
 * grows by adding parts of doubling capacity (a scalable Bloom filter), so it needs no
 * count up front. A key added is always "maybe": no false negatives, which is all the
 * record index relies on (a "no" skips a LevelDB read; a false "maybe" only costs one).
 */

const BITS_PER_KEY = 8
const PROBES = 5
const FIRST_CAPACITY = 1 << 16

interface Part {
  bits: Uint32Array
  size: number
  capacity: number
  count: number
}

const word = (k: Uint8Array, at: number): number => ((k[at] as number) | (k[at + 1] as number) << 8 | (k[at + 2] as number) << 16 | (k[at + 3] as number) << 24) >>> 0

function has (p: Part, h1: number, h2: number): boolean {
  for (let i = 0; i < PROBES; i++) {
    const bit = (h1 + i * h2) % p.size
    if (((p.bits[bit >>> 5] as number) & (1 << (bit & 31))) === 0) return false
  }
  return true
}

export class KeyFilter {
  private readonly parts: Part[] = []
  private keys = 0

  get size (): number {
    return this.keys
  }

  /** Bytes the filter holds. */
  get bytes (): number {
    return this.parts.reduce((n, p) => n + p.bits.byteLength, 0)
  }

  add (key: Uint8Array): void {
    let p = this.parts[this.parts.length - 1]
    if (p === undefined || p.count >= p.capacity) {
      const capacity = p === undefined ? FIRST_CAPACITY : p.capacity * 2
      const size = capacity * BITS_PER_KEY
      p = { bits: new Uint32Array(Math.ceil(size / 32)), size, capacity, count: 0 }
      this.parts.push(p)
    }
    const h1 = word(key, 0)
    const h2 = (word(key, 4) | 1) >>> 0
    for (let i = 0; i < PROBES; i++) {
      const bit = (h1 + i * h2) % p.size
      p.bits[bit >>> 5] = (p.bits[bit >>> 5] as number) | (1 << (bit & 31))
    }
    p.count++
    this.keys++
  }

  /** False only for a key never added. */
  mayHave (key: Uint8Array): boolean {
    const h1 = word(key, 0)
    const h2 = (word(key, 4) | 1) >>> 0
    for (const p of this.parts) if (has(p, h1, h2)) return true
    return false
  }
}
