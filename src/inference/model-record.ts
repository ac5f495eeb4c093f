import { CID } from 'multiformats/cid'
import { isChecksummedAddress } from '../codec/address.ts'
import { cidOf, decodeCbor, encodeCbor } from '../codec/cbor.ts'
import { toHex } from '../codec/hash.ts'
import { recoverSigner } from '../codec/signer.ts'
import { signingDomain, type DomainBinding, type TypedDataSigner } from '../codec/eip712.ts'
import { nonCanonicalSignature } from './signature.ts'
import { typedHasher } from '../codec/typed-hash.ts'

/**
 * A model record (DESIGN §6 `model train|register`): which dataset version a model was
 * trained on, where its artifact is, and who operates it; signed by the operator. The
 * model's id is the record's CID.
 */
export interface ModelRecord {
  datanet: string
  /** The dataset version (height) it was trained on. */
  version: number
  /** What the artifact is, e.g. `ngram-v1` (src/model/ngram.ts). */
  kind: string
  /** The artifact's root CID in Helia. */
  artifact: string
  operator: string
  createdAt: number
  signature: Uint8Array
}

export type UnsignedModelRecord = Omit<ModelRecord, 'signature'>

/** The reference n-gram model (src/model/ngram.ts): the artifact is its encoding. */
export const NGRAM_MODEL_KIND = 'ngram-v1'
/**
 * A model run by an OpenAI-compatible server elsewhere: the artifact is the JSON of
 * `ExternalModelRef`. Nobody can re-run it, and nobody needs to: validators never
 * regenerate an output, they attribute the posted output text against the record's version.
 */
export const EXTERNAL_MODEL_KIND = 'external'

/** What an external model's artifact says: the server's base URL (…/v1) and its model name. */
export interface ExternalModelRef { endpoint: string, model: string }

/** The artifact bytes of an external model: canonical (sorted keys), so one server's model is one CID. */
export function encodeExternalModelRef (ref: ExternalModelRef): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({ endpoint: ref.endpoint, model: ref.model }))
}

export const MODEL_TYPES = {
  Model: [
    { name: 'datanet', type: 'bytes32' },
    { name: 'version', type: 'uint64' },
    { name: 'kind', type: 'string' },
    { name: 'artifact', type: 'bytes32' },
    { name: 'operator', type: 'address' },
    { name: 'createdAt', type: 'uint64' }
  ]
}

/** Its EIP-712 digest, compiled once (src/codec/typed-hash.ts). */
const modelHash = typedHasher(MODEL_TYPES)

function typedValue (m: UnsignedModelRecord): Record<string, unknown> {
  return {
    datanet: toHex(CID.parse(m.datanet).multihash.digest),
    version: m.version,
    kind: m.kind,
    artifact: toHex(CID.parse(m.artifact).multihash.digest),
    operator: m.operator,
    createdAt: m.createdAt
  }
}

export async function signModelRecord (signer: TypedDataSigner, binding: Omit<DomainBinding, 'datanet'>, m: UnsignedModelRecord): Promise<ModelRecord> {
  const signature = await signer.signTypedData(signingDomain(binding, m.datanet), MODEL_TYPES, typedValue(m))
  return { ...m, signature: new Uint8Array(Buffer.from(signature.slice(2), 'hex')) }
}

export function modelSigner (m: ModelRecord, binding: Omit<DomainBinding, 'datanet'>): string | undefined {
  try {
    return recoverSigner(modelHash(signingDomain(binding, m.datanet), typedValue(m)), toHex(m.signature))
  } catch {
    return undefined
  }
}

export function encodeModelRecord (m: ModelRecord): Uint8Array {
  return encodeCbor({ ...m })
}

const KEYS = 'artifact,createdAt,datanet,kind,operator,signature,version'

export function decodeModelRecord (bytes: Uint8Array): ModelRecord {
  const m = decodeCbor<Record<string, unknown>>(bytes)
  if (typeof m !== 'object' || m === null) throw new Error('not an object')
  const keys = Object.keys(m).sort().join(',')
  if (keys !== KEYS) throw new Error(`fields: expected ${KEYS}, got ${keys}`)
  for (const k of ['datanet', 'artifact'] as const) {
    try { CID.parse(m[k] as string) } catch { throw new Error(`${k}: not a CID`) }
  }
  if (!Number.isSafeInteger(m.version) || (m.version as number) < 1) throw new Error('version: expected a height >= 1')
  if (typeof m.kind !== 'string' || !/^[a-z0-9-]{1,32}$/.test(m.kind)) throw new Error('kind: expected a short lowercase name')
  if (!isChecksummedAddress(m.operator)) throw new Error('operator: expected an EIP-55 checksummed address')
  if (!Number.isSafeInteger(m.createdAt)) throw new Error('createdAt: expected ms since the epoch')
  if (!(m.signature instanceof Uint8Array) || m.signature.length !== 65) throw new Error('signature: expected 65 bytes')
  // the model's id is the record's CID: one signed record, one id
  const odd = nonCanonicalSignature(m.signature)
  if (odd !== undefined) throw new Error(`signature: not canonical: ${odd}`)
  return m as unknown as ModelRecord
}

export async function modelRecordCid (bytes: Uint8Array): Promise<CID> {
  return await cidOf(bytes)
}

