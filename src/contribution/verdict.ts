import { recoverSigner } from '../codec/signer.ts'
import { CID } from 'multiformats/cid'
import { cidOf, decodeCbor, encodeCbor } from '../codec/cbor.ts'
import { signingDomain, type DomainBinding, type TypedDataSigner } from '../codec/eip712.ts'
import { toHex } from '../codec/hash.ts'
import { isChecksummedAddress } from '../codec/address.ts'
import { typedHasher } from '../codec/typed-hash.ts'

/** A validator's signed judgement of one contribution (DESIGN §3). */
export interface Verdict {
  datanet: string
  contribution: CID
  validator: string
  accept: boolean
  /** 0–100. */
  score: number
  /** Reason codes, sorted; empty for a clean accept. */
  reasons: string[]
  timestamp: number
  signature: Uint8Array
}

export type UnsignedVerdict = Omit<Verdict, 'signature'>

export const VERDICT_TYPES = {
  Verdict: [
    { name: 'contribution', type: 'bytes32' },
    { name: 'validator', type: 'address' },
    { name: 'accept', type: 'bool' },
    { name: 'score', type: 'uint8' },
    { name: 'reasons', type: 'string[]' },
    { name: 'timestamp', type: 'uint64' }
  ]
}

/** Its EIP-712 digest, compiled once (src/codec/typed-hash.ts). */
const verdictHash = typedHasher(VERDICT_TYPES)

function typedValue (v: UnsignedVerdict): Record<string, unknown> {
  return {
    contribution: toHex(v.contribution.multihash.digest),
    validator: v.validator,
    accept: v.accept,
    score: v.score,
    reasons: v.reasons,
    timestamp: v.timestamp
  }
}

export async function signVerdict (signer: TypedDataSigner, binding: Omit<DomainBinding, 'datanet'>, v: UnsignedVerdict): Promise<Verdict> {
  const signature = await signer.signTypedData(signingDomain(binding, v.datanet), VERDICT_TYPES, typedValue(v))
  return { ...v, signature: new Uint8Array(Buffer.from(signature.slice(2), 'hex')) }
}

export function verdictSigner (v: Verdict, binding: Omit<DomainBinding, 'datanet'>): string | undefined {
  try {
    return recoverSigner(verdictHash(signingDomain(binding, v.datanet), typedValue(v)), toHex(v.signature))
  } catch {
    return undefined
  }
}

export function encodeVerdict (v: Verdict): Uint8Array {
  return encodeCbor({ ...v })
}

export async function verdictCid (bytes: Uint8Array): Promise<CID> {
  return await cidOf(bytes)
}

const MAX_REASONS = 16
const REASON = /^[A-Z][A-Z0-9_]{0,63}$/

export function decodeVerdict (bytes: Uint8Array): Verdict {
  let v: Record<string, unknown>
  try {
    v = decodeCbor<Record<string, unknown>>(bytes)
  } catch {
    throw new Error('not dag-cbor')
  }
  if (typeof v !== 'object' || v === null) throw new Error('not an object')
  const keys = Object.keys(v).sort().join(',')
  if (keys !== 'accept,contribution,datanet,reasons,score,signature,timestamp,validator') throw new Error(`unexpected fields ${keys}`)
  if (typeof v.datanet !== 'string') throw new Error('datanet')
  if (CID.asCID(v.contribution) === null) throw new Error('contribution is not a CID')
  if (!isChecksummedAddress(v.validator)) throw new Error('validator is not a checksummed address')
  if (typeof v.accept !== 'boolean') throw new Error('accept')
  if (!Number.isInteger(v.score) || (v.score as number) < 0 || (v.score as number) > 100) throw new Error('score')
  if (!Array.isArray(v.reasons) || v.reasons.length > MAX_REASONS || !v.reasons.every(r => typeof r === 'string' && REASON.test(r))) throw new Error('reasons')
  if (!Number.isSafeInteger(v.timestamp) || (v.timestamp as number) < 0) throw new Error('timestamp')
  if (!(v.signature instanceof Uint8Array) || v.signature.length !== 65) throw new Error('signature')
  return v as unknown as Verdict
}

