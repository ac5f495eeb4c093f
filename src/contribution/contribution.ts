import { recoverSigner } from '../codec/signer.ts'
import { isChecksummedAddress } from '../codec/address.ts'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { cidOf, decodeCbor, encodeCbor } from '../codec/cbor.ts'
import { signingDomain, type DomainBinding, type TypedDataSigner } from '../codec/eip712.ts'
import { sha256, toHex } from '../codec/hash.ts'
import { datanetDigest } from '../datanet/manifest.ts'
import { typedHasher } from '../codec/typed-hash.ts'

/** A signed contribution (DESIGN §3): what a contributor adds to a datanet. */
export interface Contribution {
  datanet: string
  contributor: string
  /** Raw shard blocks, in record order. */
  shards: CID[]
  recordCount: number
  byteSize: number
  /** Merkle root (src/merkle) of the records' hashes, in order. */
  recordsRoot: Uint8Array
  nonce: number
  /** ms since the epoch, as the contributor's clock says. */
  timestamp: number
  signature: Uint8Array
}

export type UnsignedContribution = Omit<Contribution, 'signature'>

export const CONTRIBUTION_TYPES = {
  Contribution: [
    { name: 'datanet', type: 'bytes32' },
    { name: 'contributor', type: 'address' },
    { name: 'shards', type: 'bytes32' },
    { name: 'recordCount', type: 'uint64' },
    { name: 'byteSize', type: 'uint64' },
    { name: 'recordsRoot', type: 'bytes32' },
    { name: 'nonce', type: 'uint64' },
    { name: 'timestamp', type: 'uint64' }
  ]
}

/** Its EIP-712 digest, compiled once (src/codec/typed-hash.ts). */
const contributionHash = typedHasher(CONTRIBUTION_TYPES)


/** One digest over the shard list, so the signed struct stays fixed-size whatever the contribution's size. */
export function shardsDigest (shards: readonly CID[]): Uint8Array {
  return sha256(...shards.map(s => s.multihash.digest))
}

function typedValue (c: UnsignedContribution): Record<string, unknown> {
  return {
    datanet: datanetDigest(c.datanet),
    contributor: c.contributor,
    shards: toHex(shardsDigest(c.shards)),
    recordCount: c.recordCount,
    byteSize: c.byteSize,
    recordsRoot: toHex(c.recordsRoot),
    nonce: c.nonce,
    timestamp: c.timestamp
  }
}

/** The EIP-712 typed data a contributor signs (JSON-safe: numbers and hex strings). */
export function contributionTypedData (binding: Omit<DomainBinding, 'datanet'>, c: UnsignedContribution): { domain: Record<string, unknown>, types: typeof CONTRIBUTION_TYPES, value: Record<string, unknown> } {
  const domain = signingDomain(binding, c.datanet)
  return { domain: { ...domain, chainId: Number(domain.chainId) }, types: CONTRIBUTION_TYPES, value: typedValue(c) }
}

export async function signContribution (signer: TypedDataSigner, binding: Omit<DomainBinding, 'datanet'>, c: UnsignedContribution): Promise<Contribution> {
  const signature = await signer.signTypedData(signingDomain(binding, c.datanet), CONTRIBUTION_TYPES, typedValue(c))
  return { ...c, signature: new Uint8Array(Buffer.from(signature.slice(2), 'hex')) }
}

/** The address that signed the contribution, under the given domain; undefined for an unusable signature. */
export function contributionSigner (c: Contribution, binding: Omit<DomainBinding, 'datanet'>): string | undefined {
  try {
    return recoverSigner(contributionHash(signingDomain(binding, c.datanet), typedValue(c)), toHex(c.signature))
  } catch {
    return undefined
  }
}

export function encodeContribution (c: Contribution): Uint8Array {
  return encodeCbor({ ...c })
}

export async function contributionCid (bytes: Uint8Array): Promise<CID> {
  return await cidOf(bytes)
}

/** A 0x address in its EIP-55 checksummed form. */
const isUint = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0

/** Decodes and checks the shape of a contribution; throws an Error whose message says which field is wrong. */
export function decodeContribution (bytes: Uint8Array, maxShards: number): Contribution {
  let c: Record<string, unknown>
  try {
    c = decodeCbor<Record<string, unknown>>(bytes)
  } catch {
    throw new Error('not dag-cbor')
  }
  if (typeof c !== 'object' || c === null) throw new Error('not an object')
  const keys = Object.keys(c).sort().join(',')
  if (keys !== 'byteSize,contributor,datanet,nonce,recordCount,recordsRoot,shards,signature,timestamp') throw new Error(`unexpected fields ${keys}`)
  if (typeof c.datanet !== 'string') throw new Error('datanet')
  try { CID.parse(c.datanet) } catch { throw new Error('datanet is not a CID') }
  if (!isChecksummedAddress(c.contributor)) throw new Error('contributor is not a checksummed address')
  if (!Array.isArray(c.shards) || c.shards.length === 0 || c.shards.length > maxShards) throw new Error('shards')
  for (const s of c.shards) {
    const cid = CID.asCID(s)
    if (cid === null || cid.code !== raw.code || cid.multihash.code !== 0x12) throw new Error('a shard is not a raw sha2-256 CID')
  }
  if (!isUint(c.recordCount) || c.recordCount === 0 || !isUint(c.byteSize) || !isUint(c.nonce) || !isUint(c.timestamp)) throw new Error('counts, nonce or timestamp')
  if (!(c.recordsRoot instanceof Uint8Array) || c.recordsRoot.length !== 32) throw new Error('recordsRoot')
  if (!(c.signature instanceof Uint8Array) || c.signature.length !== 65) throw new Error('signature')
  return c as unknown as Contribution
}

/** The JSON form the API shows. */
export function contributionJson (c: Contribution): Record<string, unknown> {
  return {
    datanet: c.datanet,
    contributor: c.contributor,
    shards: c.shards.map(s => s.toString()),
    recordCount: c.recordCount,
    byteSize: c.byteSize,
    recordsRoot: toHex(c.recordsRoot),
    nonce: c.nonce,
    timestamp: c.timestamp,
    signature: toHex(c.signature)
  }
}
