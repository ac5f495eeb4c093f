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

/** Forgets every key and signer found (tests and benchmarks measure the cold path with it). */
export function forgetSigners (): void {
  keys.clear()
  found.clear()
}
