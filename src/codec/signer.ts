import { secp256k1 } from '@noble/curves/secp256k1.js'
import { Signature, SigningKey, computeAddress, getAddress, type SignatureLike } from 'ethers'

const Point = secp256k1.Point
type Key = InstanceType<typeof Point>

/** Public keys of signers seen, by lower-case address; bounded (a validator set, the peers, recent contributors). */
const MAX_KEYS = 4096
const keys = new Map<string, Key>()

/**
 * Whether `sig` over `digest` is `key`'s, with the same recovery bit: ECDSA verification's
 * R = u1·G + u2·Q must have x = r and the signature's y parity. Then recovery from `sig`
 * (R from r and the parity, Q = r⁻¹(s·R − e·G)) yields exactly `key`, so the answer is
 * the one recoverAddress would give, at the cost of one double multiplication instead
 * of a square root and one.
 */
function signedBy (digest: string, sig: Signature, key: Key): boolean {
  const { Fn } = Point
  const r = BigInt(sig.r)
  const s = BigInt(sig.s)
  if (r === 0n || r >= Fn.ORDER || s === 0n || s >= Fn.ORDER) return false
  const e = Fn.create(BigInt(digest))
  const w = Fn.inv(s)
  const R = Point.BASE.mulAddUnsafe(Fn.mul(e, w), key, Fn.mul(r, w))
  if (R.is0()) return false
  const { x, y } = R.toAffine()
  return x === r && Number(y & 1n) === sig.yParity
}

/**
 * Signers already found, by digest and signature: a verdict checked when gossiped is
 * checked again in each certificate that carries it, a vote in each commit certificate.
 * A memo of recoverAddress itself, so it cannot answer otherwise.
 */
const MAX_FOUND = 16_384
const found = new Map<string, string>()

function remember (address: string, key: Key): void {
  const id = address.toLowerCase()
  keys.delete(id)
  keys.set(id, key)
  if (keys.size > MAX_KEYS) keys.delete(keys.keys().next().value as string)
}

/**
 * The address that signed a 32-byte `digest`: what ethers' recoverAddress returns (and
 * throws on the same malformed signatures), but free for a signature seen before and
 * ~1.4× cheaper when the message names its signer (`claimed`) and that signer was seen
 * before: its key is checked instead of recovered (scripts/bench/signatures.ts). Votes,
 * verdicts and announcements come from a few known keys over and over.
 */
export function recoverSigner (digest: string, signature: SignatureLike, claimed?: string): string {
  const memo = typeof signature === 'string' ? digest + signature : undefined
  const known = memo === undefined ? undefined : found.get(memo)
  if (known !== undefined) return known
  const address = recover(digest, Signature.from(signature), claimed)
  if (memo !== undefined) {
    found.set(memo, address)
    if (found.size > MAX_FOUND) found.delete(found.keys().next().value as string)
  }
  return address
}

function recover (digest: string, sig: Signature, claimed: string | undefined): string {
  if (claimed !== undefined) {
    const key = keys.get(claimed.toLowerCase())
    if (key !== undefined && signedBy(digest, sig, key)) return getAddress(claimed)
  }
  const publicKey = SigningKey.recoverPublicKey(digest, sig)
  const address = computeAddress(publicKey)
  remember(address, Point.fromHex(publicKey.slice(2)))
  return address
}

/** One signature to check: over `digest`, by `signer` (an address). */
export interface SignedDigest { digest: string, signature: string, signer: string }

/** Signatures checked in one multi-scalar multiplication, at most (bounds the work a bad batch wastes). */
const MAX_BATCH = 1024

/** Bits of a batch weight: the R points' scalars are this short, the G and key terms full size. */
const WEIGHT_BITS = 128

/** The window (bits per bucket index) with the fewest point additions for n points and b-bit scalars. */
function windowFor (n: number, bits: number): number {
  let best = 2
  let bestCost = Infinity
  for (let c = 2; c <= 12; c++) {
    const cost = Math.ceil(bits / c) * (n + 2 * (1 << c))
    if (cost < bestCost) { best = c; bestCost = cost }
  }
  return best
}

/**
 * Σ scalars[i]·points[i] for scalars below 2^bits: Pippenger's buckets over `bits` only
 * (noble's runs every window of a full-size scalar, half of them empty for 128-bit
 * weights), zero digits skipped. Variable time: the inputs are public.
 */
export function shortMsm (points: readonly Key[], scalars: readonly bigint[], bits: number): Key {
  const n = points.length
  let sum = Point.ZERO
  if (n === 0) return sum
  const c = windowFor(n, bits)
  const windows = Math.ceil(bits / c)
  const mask = (1n << BigInt(c)) - 1n
  const shift = BigInt(c)
  const digits = new Uint16Array(n * windows)
  for (let i = 0; i < n; i++) {
    let k = scalars[i] as bigint
    if (k < 0n || k >> BigInt(bits) !== 0n) throw new RangeError(`scalar ${i} is not below 2^${bits}`)
    for (let w = 0; w < windows; w++) { digits[i * windows + w] = Number(k & mask); k >>= shift }
  }
  const buckets = new Array<Key>(1 << c)
  for (let w = windows - 1; w >= 0; w--) {
    if (w !== windows - 1) for (let d = 0; d < c; d++) sum = sum.double()
    buckets.fill(Point.ZERO)
    for (let i = 0; i < n; i++) {
      const d = digits[i * windows + w] as number
      if (d !== 0) buckets[d] = (buckets[d] as Key).add(points[i] as Key)
    }
    // Σ d·bucket[d] as running sums, highest d first
    let running = Point.ZERO
    let windowSum = Point.ZERO
    for (let d = buckets.length - 1; d > 0; d--) {
      running = running.add(buckets[d] as Key)
      windowSum = windowSum.add(running)
    }
    sum = sum.add(windowSum)
  }
  return sum
}

/**
 * Whether every signature is its signer's, with the answer `recoverSigner(digest,
 * signature, signer) === getAddress(signer)` would give for each — true only if all are.
 *
 * Batch ECDSA verification, sound because each signature carries its R (x = r and the
 * recovery bit's y parity) and secp256k1's group has prime order: signature i holds iff
 * s_i·R_i = e_i·G + r_i·Q_i. With secret random weights z_i (`weight`: the caller's
 * randomness, drawn after the signatures are fixed; this pure core draws none),
 * Σ z_i·R_i − (Σ z_i·e_i/s_i)·G − Σ_Q (Σ z_i·r_i/s_i)·Q is the point at infinity when
 * every signature holds, and otherwise with probability about 2⁻¹²⁸. One Pippenger
 * multiplication over the n R points with their 128-bit weights (`shortMsm`), plus one
 * full multiplication of G and of each distinct key, costs a fraction of n verifications. A signer whose key is not known yet is
 * recovered once, one by one (which learns its key).
 */
export function verifyBatch (items: readonly SignedDigest[], weight: () => bigint): boolean {
  const { Fn } = Point
  const points: Key[] = []
  const scalars: bigint[] = []
  let g = 0n
  const perKey = new Map<string, { key: Key, scalar: bigint }>()
  const flush = (): boolean => {
    if (points.length === 0) return true
    // Σ z_i·R_i (short weights) against g·G + Σ_Q k_Q·Q (full-size scalars, a few keys)
    let rest = Point.BASE.multiplyUnsafe(g)
    for (const { key, scalar } of perKey.values()) rest = rest.add(key.multiplyUnsafe(scalar))
    const ok = shortMsm(points, scalars, WEIGHT_BITS).equals(rest)
    points.length = 0
    scalars.length = 0
    g = 0n
    perKey.clear()
    return ok
  }
  for (const item of items) {
    let sig: Signature
    let id: string
    let e: bigint
    let r: bigint
    let s: bigint
    try {
      sig = Signature.from(item.signature)
      id = getAddress(item.signer).toLowerCase()
      e = Fn.create(BigInt(item.digest))
      // ethers refuses a high s here, as recoverSigner does
      r = BigInt(sig.r)
      s = BigInt(sig.s)
    } catch {
      return false
    }
    const memo = found.get(item.digest + item.signature)
    if (memo !== undefined) { if (memo.toLowerCase() !== id) return false; continue }
    const key = keys.get(id)
    if (key === undefined) {
      try { if (recoverSigner(item.digest, item.signature, item.signer).toLowerCase() !== id) return false } catch { return false }
      continue
    }
    if (r === 0n || r >= Fn.ORDER || s === 0n || s >= Fn.ORDER) return false
    let R: Key
    try { R = Point.fromHex((sig.yParity === 1 ? '03' : '02') + sig.r.slice(2)) } catch { return false }
    // never 0 (odd): a zero weight would drop its signature from the check
    const z = (weight() & ((1n << BigInt(WEIGHT_BITS)) - 1n)) | 1n
    const w = Fn.inv(s)
    points.push(R)
    scalars.push(z)
    g = Fn.add(g, Fn.mul(z, Fn.mul(e, w)))
    const k = perKey.get(id) ?? { key, scalar: 0n }
    k.scalar = Fn.add(k.scalar, Fn.mul(z, Fn.mul(r, w)))
    perKey.set(id, k)
    if (points.length >= MAX_BATCH && !flush()) return false
  }
  return flush()
}

/** Forgets every key and signer found (tests and benchmarks measure the cold path with it). */
export function forgetSigners (): void {
  keys.clear()
  found.clear()
}
