/**
 * EIP-712 digests of our fixed struct types, compiled once per type set. ethers'
 * `TypedDataEncoder.hash` rebuilds its encoders, re-hashes the type strings and the domain
 * at every call: ~600 µs a digest, more than the signature check it precedes (every vote,
 * verdict and certificate signature a node sees). Compiled, a digest is a few keccaks over
 * the fields' 32-byte words.
 *
 * A value that is not in the plain form we sign (numbers as safe integers, bigints or
 * decimal strings; bytes32 as 0x + 64 hex digits; addresses ethers accepts; booleans;
 * strings) is handed to ethers as before, which digests it the same way or throws: this
 * module only ever returns what ethers returns (test/unit/typed-hash.test.ts).
 */
import { TypedDataEncoder, getBytes, hexlify, toUtf8Bytes, type TypedDataDomain, type TypedDataField } from 'ethers'
import { checksumAddress } from './address.ts'
import { keccak, toHex } from './hash.ts'

type Types = Record<string, TypedDataField[]>
/** Writes one field's 32-byte word at `at`; false when the value is not in the plain form. */
type WordEncoder = (value: unknown, out: Uint8Array, at: number) => boolean

const DECIMAL = /^(0|[1-9][0-9]*)$/
const BYTES32 = /^0x[0-9a-fA-F]{64}$/
const TWO_256 = 1n << 256n


function writeBig (n: bigint, out: Uint8Array, at: number): void {
  for (let i = 31; i >= 0 && n > 0n; i--) {
    out[at + i] = Number(n & 0xffn)
    n >>= 8n
  }
}

function integer (value: unknown): bigint | undefined {
  if (typeof value === 'bigint') return value
  if (typeof value === 'number') return Number.isSafeInteger(value) ? BigInt(value) : undefined
  if (typeof value === 'string') return DECIMAL.test(value) ? BigInt(value) : undefined
  return undefined
}

function wordEncoder (type: string, types: Types, structs: Map<string, (value: unknown) => Uint8Array | undefined>): WordEncoder | undefined {
  let m = /^uint(\d+)$/.exec(type)
  if (m !== null) {
    const limit = 1n << BigInt(m[1] as string)
    return (value, out, at) => {
      const n = integer(value)
      if (n === undefined || n < 0n || n >= limit) return false
      writeBig(n, out, at)
      return true
    }
  }
  m = /^int(\d+)$/.exec(type)
  if (m !== null) {
    const half = 1n << BigInt(Number(m[1]) - 1)
    return (value, out, at) => {
      const n = integer(value)
      if (n === undefined || n < -half || n >= half) return false
      writeBig(n < 0n ? TWO_256 + n : n, out, at)
      return true
    }
  }
  if (type === 'bytes32') {
    return (value, out, at) => {
      if (typeof value !== 'string' || !BYTES32.test(value)) return false
      out.set(Buffer.from(value.slice(2), 'hex'), at)
      return true
    }
  }
  if (type === 'address') {
    return (value, out, at) => {
      if (typeof value !== 'string') return false
      let address: string
      try { address = checksumAddress(value) } catch { return false }
      out.set(Buffer.from(address.slice(2), 'hex'), at + 12)
      return true
    }
  }
  if (type === 'bool') {
    return (value, out, at) => {
      if (typeof value !== 'boolean') return false
      out[at + 31] = value ? 1 : 0
      return true
    }
  }
  if (type === 'string') {
    return (value, out, at) => {
      if (typeof value !== 'string') return false
      out.set(keccak(toUtf8Bytes(value)), at)
      return true
    }
  }
  if (type === 'string[]') {
    return (value, out, at) => {
      if (!Array.isArray(value) || !value.every(s => typeof s === 'string')) return false
      out.set(keccak(Buffer.concat((value as string[]).map(s => keccak(toUtf8Bytes(s))))), at)
      return true
    }
  }
  if (types[type] !== undefined) {
    return (value, out, at) => {
      const hash = (structs.get(type) as (value: unknown) => Uint8Array | undefined)(value)
      if (hash === undefined) return false
      out.set(hash, at)
      return true
    }
  }
  return undefined
}

/**
 * A digest function for `types` (its primary type is the one no other type refers to, as
 * in ethers): `(domain, value) => 0x…` equal to `TypedDataEncoder.hash(domain, types, value)`.
 */
export function typedHasher (types: Types): (domain: TypedDataDomain, value: Record<string, unknown>) => string {
  const encoder = TypedDataEncoder.from(types)
  const structs = new Map<string, (value: unknown) => Uint8Array | undefined>()
  let compiled = true
  for (const [name, fields] of Object.entries(types)) {
    const typeHash = keccak(toUtf8Bytes(encoder.encodeType(name)))
    const words = fields.map(f => ({ name: f.name, encode: wordEncoder(f.type, types, structs) }))
    if (words.some(w => w.encode === undefined)) compiled = false
    structs.set(name, value => {
      if (typeof value !== 'object' || value === null) return undefined
      const out = new Uint8Array(32 * (words.length + 1))
      out.set(typeHash, 0)
      for (let i = 0; i < words.length; i++) {
        const w = words[i] as { name: string, encode: WordEncoder }
        if (!w.encode((value as Record<string, unknown>)[w.name], out, 32 * (i + 1))) return undefined
      }
      return keccak(out)
    })
  }
  const primary = structs.get(encoder.primaryType) as (value: unknown) => Uint8Array | undefined
  const domains = new Map<string, Uint8Array>()
  const domainHash = (domain: TypedDataDomain): Uint8Array => {
    const salt = domain.salt
    const key = JSON.stringify([domain.name, domain.version, domain.chainId?.toString(), domain.verifyingContract, salt == null || typeof salt === 'string' ? salt : hexlify(salt)])
    let hash = domains.get(key)
    if (hash === undefined) {
      hash = getBytes(TypedDataEncoder.hashDomain(domain))
      // a node signs for a handful of datanets: a small memo, emptied if something floods it
      if (domains.size >= 256) domains.clear()
      domains.set(key, hash)
    }
    return hash
  }
  return (domain, value) => {
    const struct = compiled ? primary(value) : undefined
    if (struct === undefined) return TypedDataEncoder.hash(domain, types, value)
    const out = new Uint8Array(66)
    out[0] = 0x19
    out[1] = 0x01
    out.set(domainHash(domain), 2)
    out.set(struct, 34)
    return toHex(keccak(out))
  }
}
