/**
 * Canonical secp256k1 signatures. ECDSA lets anyone turn one valid signature into others
 * over the same digest (v as 0/1 or any EIP-155 value, s as n − s); ethers recovers the
 * same address from most of them. An event or record is named by its CID, which covers its
 * signature, so each such variant would be a new name for the same signed content. Only the
 * form ethers itself produces is accepted: v 27 or 28, 0 < r < n, 0 < s ≤ n/2 (EIP-2).
 */

const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n
const HALF_N = N >> 1n

const word = (b: Uint8Array, at: number): bigint => BigInt('0x' + Buffer.from(b.subarray(at, at + 32)).toString('hex'))

/** Why a 65-byte `r ‖ s ‖ v` signature is not in canonical form, or undefined when it is. */
export function nonCanonicalSignature (sig: Uint8Array): string | undefined {
  if (sig.length !== 65) return 'expected 65 bytes'
  const v = sig[64]
  if (v !== 27 && v !== 28) return `v must be 27 or 28, not ${String(v)}`
  const r = word(sig, 0)
  const s = word(sig, 32)
  if (r === 0n || r >= N) return 'r out of range'
  if (s === 0n || s > HALF_N) return 's must be at most n/2 (low-s form)'
  return undefined
}
