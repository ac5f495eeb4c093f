import { CID } from 'multiformats/cid'
import { isChecksummedAddress } from '../codec/address.ts'
import { cidOf, decodeCbor, encodeCbor } from '../codec/cbor.ts'
import { sha256, toHex } from '../codec/hash.ts'
import { recoverSigner } from '../codec/signer.ts'
import { signingDomain, type DomainBinding, type TypedDataSigner } from '../codec/eip712.ts'
import { nonCanonicalSignature } from './signature.ts'
import { typedHasher } from '../codec/typed-hash.ts'

/**
 * An inference event (DESIGN §3): a model's output for a prompt, with the fee its operator
 * escrowed on chain for it. Validators recompute its attribution and include it in a
 * version only where their own computation matches.
 *
 * `id` is the EIP-712 digest of the unsigned event: the operator pays the escrow for that
 * id first (`payInference(datanet, id)`), then signs; the fee can only ever count once.
 */
export interface InferenceEvent {
  datanet: string
  /** The model record's CID. */
  model: string
  /** The dataset version (height) the model was trained on, whose records are credited. */
  version: number
  prompt: string
  output: string
  /** Wei, decimal. */
  fee: string
  /** 32 random bytes, hex: one use per operator. */
  nonce: string
  operator: string
  timestamp: number
  signature: Uint8Array
}

export type UnsignedInferenceEvent = Omit<InferenceEvent, 'signature'>

export const INFERENCE_TYPES = {
  Inference: [
    { name: 'datanet', type: 'bytes32' },
    { name: 'model', type: 'bytes32' },
    { name: 'version', type: 'uint64' },
    { name: 'prompt', type: 'bytes32' },
    { name: 'output', type: 'bytes32' },
    { name: 'fee', type: 'uint256' },
    { name: 'nonce', type: 'bytes32' },
    { name: 'operator', type: 'address' },
    { name: 'timestamp', type: 'uint64' }
  ]
}

/** Its EIP-712 digest, compiled once (src/codec/typed-hash.ts). */
const inferenceHash = typedHasher(INFERENCE_TYPES)

export const InferenceErrorCode = {
  MALFORMED: 'INFERENCE_ERROR_MALFORMED'
} as const

const textDigest = (s: string): string => toHex(sha256(new TextEncoder().encode(s)))

function typedValue (e: UnsignedInferenceEvent): Record<string, unknown> {
  return {
    datanet: toHex(CID.parse(e.datanet).multihash.digest),
    model: toHex(CID.parse(e.model).multihash.digest),
    version: e.version,
    prompt: textDigest(e.prompt),
    output: textDigest(e.output),
    fee: BigInt(e.fee),
    nonce: e.nonce,
    operator: e.operator,
    timestamp: e.timestamp
  }
}

/** The event's id: the digest its operator signs and escrows the fee for. */
export function inferenceEventId (binding: Omit<DomainBinding, 'datanet'>, e: UnsignedInferenceEvent): string {
  return inferenceHash(signingDomain(binding, e.datanet), typedValue(e))
}

export async function signInferenceEvent (signer: TypedDataSigner, binding: Omit<DomainBinding, 'datanet'>, e: UnsignedInferenceEvent): Promise<InferenceEvent> {
  const signature = await signer.signTypedData(signingDomain(binding, e.datanet), INFERENCE_TYPES, typedValue(e))
  return { ...e, signature: new Uint8Array(Buffer.from(signature.slice(2), 'hex')) }
}

/** The address that signed the event under this domain; undefined for an unusable signature. */
export function inferenceSigner (e: InferenceEvent, binding: Omit<DomainBinding, 'datanet'>): string | undefined {
  try {
    return recoverSigner(inferenceEventId(binding, e), toHex(e.signature))
  } catch {
    return undefined
  }
}

const KEYS = 'datanet,fee,model,nonce,operator,output,prompt,signature,timestamp,version'

/** Decodes and checks the shape of a gossiped or posted event; throws a message naming the bad field. */
export function decodeInferenceEvent (bytes: Uint8Array, maxTextBytes: number): InferenceEvent {
  const e = decodeCbor<Record<string, unknown>>(bytes)
  if (typeof e !== 'object' || e === null) throw new Error('not an object')
  const keys = Object.keys(e).sort().join(',')
  if (keys !== KEYS) throw new Error(`fields: expected ${KEYS}, got ${keys}`)
  return checkInferenceEvent(e, maxTextBytes)
}

export function checkInferenceEvent (e: Record<string, unknown>, maxTextBytes: number): InferenceEvent {
  const cid = (x: unknown, what: string): string => {
    if (typeof x !== 'string') throw new Error(`${what}: expected a CID`)
    try { return CID.parse(x).toString() } catch { throw new Error(`${what}: not a CID`) }
  }
  cid(e.datanet, 'datanet')
  cid(e.model, 'model')
  if (!Number.isSafeInteger(e.version) || (e.version as number) < 1) throw new Error('version: expected a height >= 1')
  for (const k of ['prompt', 'output'] as const) {
    if (typeof e[k] !== 'string') throw new Error(`${k}: expected text`)
    if (Buffer.byteLength(e[k] as string) > maxTextBytes) throw new Error(`${k}: longer than ${maxTextBytes} bytes`)
  }
  // the registry refuses a zero escrow, so a zero fee can never be paid
  if (typeof e.fee !== 'string' || !/^[1-9][0-9]{0,76}$/.test(e.fee)) throw new Error('fee: expected wei as a decimal string, more than zero')
  if (typeof e.nonce !== 'string' || !/^0x[0-9a-f]{64}$/.test(e.nonce)) throw new Error('nonce: expected 32 bytes of lowercase hex')
  if (typeof e.operator !== 'string') throw new Error('operator: expected an address')
  if (!isChecksummedAddress(e.operator)) throw new Error('operator: expected an EIP-55 checksummed address')
  if (!Number.isSafeInteger(e.timestamp) || (e.timestamp as number) < 0) throw new Error('timestamp: expected ms since the epoch')
  if (!(e.signature instanceof Uint8Array) || e.signature.length !== 65) throw new Error('signature: expected 65 bytes')
  // another encoding of the same signature would give the same event a second CID
  const odd = nonCanonicalSignature(e.signature)
  if (odd !== undefined) throw new Error(`signature: not canonical: ${odd}`)
  return e as unknown as InferenceEvent
}

export function encodeInferenceEvent (e: InferenceEvent): Uint8Array {
  return encodeCbor({ ...e })
}

export async function inferenceEventCid (bytes: Uint8Array): Promise<CID> {
  return await cidOf(bytes)
}

/** JSON form for the API (signature as hex). */
export function inferenceEventJson (e: InferenceEvent): Record<string, unknown> {
  return { ...e, signature: toHex(e.signature) }
}
