import { createHash, hash } from 'node:crypto'
import { keccak_256 } from '@noble/hashes/sha3.js'

/**
 * sha256, the hash of records, shards and the Merkle trees: node:crypto runs it at
 * ~1.7 GB/s against ~27 MB/s for keccak in JS, and the EVM has it as a precompile.
 */
export function sha256 (...parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return hash('sha256', parts[0] as Uint8Array, 'buffer')
  const h = createHash('sha256')
  for (const part of parts) h.update(part)
  return h.digest()
}

const pairScratch = Buffer.alloc(64)

/** sha256(a ‖ b) of two 32-byte values with one allocation: the Merkle trees' inner loop. */
export function sha256Pair (a: Uint8Array, b: Uint8Array): Uint8Array {
  pairScratch.set(a, 0)
  pairScratch.set(b, 32)
  return hash('sha256', pairScratch, 'buffer')
}

const leafScratch = Buffer.alloc(33)

/** sha256(prefix ‖ h) of a one-byte prefix and a 32-byte value. */
export function sha256Prefixed (prefix: number, value: Uint8Array): Uint8Array {
  leafScratch[0] = prefix
  leafScratch.set(value, 1)
  return hash('sha256', leafScratch, 'buffer')
}

export function toHex (bytes: Uint8Array): string {
  return '0x' + Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex')
}

export function fromHex (hex: string, bytes?: number): Uint8Array {
  const body = hex.startsWith('0x') ? hex.slice(2) : hex
  if (!/^[0-9a-fA-F]*$/.test(body) || body.length % 2 !== 0 || (bytes !== undefined && body.length !== bytes * 2)) {
    throw new TypeError(`expected ${bytes ?? 'some'} bytes of hex, got "${hex.slice(0, 80)}"`)
  }
  return new Uint8Array(Buffer.from(body, 'hex'))
}

/** Bytes as a Set or Map key (one char a byte), read in place: no copy of the bytes. */
export function bytesKey (bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1')
}

export function bytesEqual (a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0
}

export function concatBytes (...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.length
  }
  return out
}

/**
 * keccak256, the EVM's hash (typed-data digests, the tally tree the contract checks claims
 * against): @noble/hashes' on bytes, ~2.6× ethers' `getBytes(keccak256(…))`, which goes
 * through hex both ways. node:crypto has SHA3-256 only (another padding).
 */
export function keccak (bytes: Uint8Array): Uint8Array {
  return keccak_256(bytes)
}
