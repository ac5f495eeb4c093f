/**
 * Who signed a digest (secp256k1 ECDSA, Ethereum's recovery): the answer ethers'
 * recoverAddress gives, computed by libsecp256k1 compiled to WebAssembly (tiny-secp256k1,
 * bitcoinjs) rather than in JavaScript bigints. A recovery there costs ~0.2 ms and
 * allocates two small buffers; noble's took ~2.4 ms and allocated thousands of bigints,
 * and even its batch check of a range's certificates (one multi-scalar multiplication)
 * cost ~0.4 ms a signature (scripts/bench/signatures.ts). Recovery, not verification with
 * a known key: the answer must name the key the recovery bit selects, as the contract's
 * ecrecover does, so a signature with its bit flipped never passes as its signer's.
 */
import * as secp from 'tiny-secp256k1'
import { Signature, SigningKey, computeAddress, getBytes, hexlify, type BytesLike, type SignatureLike } from 'ethers'

/** Addresses of the public keys recovered, by key (hex); bounded (a validator set, the peers, recent contributors). */
const MAX_KEYS = 4096
const addresses = new Map<string, string>()

/**
 * Signers already found, by digest and signature: a verdict checked when gossiped is
 * checked again in each certificate that carries it, a vote in each commit certificate.
 * A memo of the recovery itself, so it cannot answer otherwise.
 */
const MAX_FOUND = 16_384
const found = new Map<string, string>()

/**
 * The address that signed a 32-byte `digest`: what ethers' recoverAddress returns, and
 * it throws on the same malformed signatures (ethers parses them: its refusals of a bad
 * length, v or high s are kept); free for a signature seen before.
 */
export function recoverSigner (digest: string, signature: SignatureLike): string {
  const memo = typeof signature === 'string' ? digest + signature : undefined
  const known = memo === undefined ? undefined : found.get(memo)
  if (known !== undefined) return known
  const address = recover(digest, Signature.from(signature))
  if (memo !== undefined) {
    found.set(memo, address)
    if (found.size > MAX_FOUND) found.delete(found.keys().next().value as string)
  }
  return address
}

function recover (digest: string, sig: Signature): string {
  const hash = getBytes(digest)
  if (hash.length !== 32) throw new Error(`a digest of ${hash.length} bytes, not 32`)
  const rs = Buffer.from(sig.r.slice(2) + sig.s.slice(2), 'hex')
  // throws on r or s out of range, as ethers does; null when r is no point's x
  const key = secp.recover(hash, rs, sig.yParity, false)
  if (key === null) throw new Error('the signature recovers no public key')
  const id = Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('hex')
  let address = addresses.get(id)
  if (address === undefined) {
    address = computeAddress('0x' + id)
    addresses.set(id, address)
    if (addresses.size > MAX_KEYS) addresses.delete(addresses.keys().next().value as string)
  } else {
    // kept as recently used
    addresses.delete(id)
    addresses.set(id, address)
  }
  return address
}

/** One signature to check: over `digest`, by `signer` (an address). */
export interface SignedDigest { digest: string, signature: string, signer: string }

/**
 * Whether every signature is its signer's: `recoverSigner(digest, signature)` is `signer`
 * for each (case aside), and none throws. Stops at the first that is not.
 */
export function verifyAll (items: readonly SignedDigest[]): boolean {
  for (const { digest, signature, signer } of items) {
    let address: string
    try { address = recoverSigner(digest, signature) } catch { return false }
    if (address !== signer && address.toLowerCase() !== signer.toLowerCase()) return false
  }
  return true
}

/**
 * A signing key that signs in WebAssembly (libsecp256k1): the same signatures as ethers'
 * (RFC 6979 nonces, low s), for ~1/10 of its CPU and without its thousands of bigints — an
 * idle node signing its announcements allocated more for them than for anything else,
 * which kept V8's memory reducer from ever returning its pooled pages.
 * An ethers `Wallet` made with it (`new Wallet(key)`) signs everything through it.
 */
class WasmSigningKey extends SigningKey {
  readonly #secret: Uint8Array

  constructor (privateKey: BytesLike) {
    super(privateKey)
    this.#secret = getBytes(privateKey)
    if (!secp.isPrivate(this.#secret)) throw new Error('invalid private key')
  }

  override sign (digest: BytesLike): Signature {
    const hash = getBytes(digest)
    if (hash.length !== 32) throw new Error(`a digest of ${hash.length} bytes, not 32`)
    const { signature, recoveryId } = secp.signRecoverable(hash, this.#secret)
    return Signature.from({ r: hexlify(signature.subarray(0, 32)), s: hexlify(signature.subarray(32)), v: 27 + recoveryId })
  }
}

/** The signing key of `privateKey` (32 bytes): signs in WebAssembly, as ethers' SigningKey otherwise. */
export function signingKey (privateKey: BytesLike): SigningKey {
  return new WasmSigningKey(privateKey)
}

/** Forgets every key and signer found (tests and benchmarks measure the cold path with it). */
export function forgetSigners (): void {
  addresses.clear()
  found.clear()
}
