import type { TypedDataDomain } from 'ethers'
import { recoverSigner } from '../codec/signer.ts'
import { CID } from 'multiformats/cid'
import { cidOf, decodeCbor, encodeCbor } from '../codec/cbor.ts'
import { sha256, toHex } from '../codec/hash.ts'
import type { VoteType, Vote } from './types.ts'
import { typedHasher } from '../codec/typed-hash.ts'

/**
 * A dataset version (DESIGN §3): what one height of consensus decides. Linked to its
 * parent by CID, so the history is a chain in Helia.
 */
export interface Version {
  datanet: string
  height: number
  parent: CID | null
  /** Included contributions, sorted by CID, each with the verdicts that accepted it (signed dag-cbor). */
  contributions: Array<{ cid: CID, verdicts: Uint8Array[] }>
  rejected: CID[]
  /** Inference events credited in this version (sorted by CID): their shares are in the attribution root. */
  inferences: CID[]
  /** Root of the record tree over every record included so far (src/merkle). */
  datasetRoot: Uint8Array
  recordCount: number
  attributionRoot: Uint8Array
  /** Decimal wei. */
  totalAttributed: string
  validatorSetHash: Uint8Array
  proposer: string
  timestamp: number
}

export const ZERO32 = new Uint8Array(32)

export function encodeVersion (v: Version): Uint8Array {
  return encodeCbor({ ...v })
}

export function decodeVersion (bytes: Uint8Array): Version {
  const v = decodeCbor<Record<string, unknown>>(bytes)
  const keys = Object.keys(v ?? {}).sort().join(',')
  if (keys !== 'attributionRoot,contributions,datanet,datasetRoot,height,inferences,parent,proposer,recordCount,rejected,timestamp,totalAttributed,validatorSetHash') throw new Error(`unexpected version fields ${keys}`)
  const bytes32 = (x: unknown): boolean => x instanceof Uint8Array && x.length === 32
  if (typeof v.datanet !== 'string' || !Number.isSafeInteger(v.height) || (v.height as number) < 1) throw new Error('datanet or height')
  if (v.parent !== null && CID.asCID(v.parent) === null) throw new Error('parent')
  if (!Array.isArray(v.contributions) || !v.contributions.every(c => CID.asCID((c as { cid?: unknown })?.cid) !== null && Array.isArray((c as { verdicts?: unknown }).verdicts) && ((c as { verdicts: unknown[] }).verdicts).every(b => b instanceof Uint8Array))) throw new Error('contributions')
  if (!Array.isArray(v.rejected) || !v.rejected.every(c => CID.asCID(c) !== null)) throw new Error('rejected')
  if (!Array.isArray(v.inferences) || !v.inferences.every(c => CID.asCID(c) !== null)) throw new Error('inferences')
  if (!bytes32(v.datasetRoot) || !bytes32(v.attributionRoot) || !bytes32(v.validatorSetHash)) throw new Error('roots')
  if (!Number.isSafeInteger(v.recordCount) || (v.recordCount as number) < 0 || typeof v.totalAttributed !== 'string' || !/^(0|[1-9][0-9]*)$/.test(v.totalAttributed)) throw new Error('counts')
  if (typeof v.proposer !== 'string' || !Number.isSafeInteger(v.timestamp)) throw new Error('proposer or timestamp')
  return v as unknown as Version
}

export async function versionCid (bytes: Uint8Array): Promise<CID> {
  return await cidOf(bytes)
}

/** A value for consensus: the version, its bytes and its id (the CID's sha256 digest, hex). */
export interface VersionValue {
  version: Version
  bytes: Uint8Array
  cid: CID
  id: string
}

export async function versionValue (version: Version): Promise<VersionValue> {
  const bytes = encodeVersion(version)
  const cid = await versionCid(bytes)
  return { version, bytes, cid, id: toHex(cid.multihash.digest) }
}

/** The hash of a validator set: sha256 over (address, stake) sorted by address. */
export function validatorSetHash (validators: ReadonlyArray<{ address: string, stake: bigint }>): Uint8Array {
  const sorted = [...validators].sort((a, b) => (a.address.toLowerCase() < b.address.toLowerCase() ? -1 : 1))
  return sha256(new TextEncoder().encode(sorted.map(v => `${v.address.toLowerCase()}:${v.stake.toString()}`).join('\n')))
}

/** The EIP-712 header a vote signs: what the contract needs to recompute the digest (DESIGN §3 Vote). */
export const VOTE_TYPES = {
  Vote: [
    { name: 'voteType', type: 'uint8' },
    { name: 'round', type: 'uint32' },
    { name: 'header', type: 'VersionHeader' }
  ],
  VersionHeader: [
    { name: 'height', type: 'uint64' },
    { name: 'parent', type: 'bytes32' },
    { name: 'datasetRoot', type: 'bytes32' },
    { name: 'recordCount', type: 'uint64' },
    { name: 'attributionRoot', type: 'bytes32' },
    { name: 'totalAttributed', type: 'uint256' },
    { name: 'validatorSetHash', type: 'bytes32' },
    { name: 'version', type: 'bytes32' }
  ]
}

/** Its EIP-712 digest, compiled once (src/codec/typed-hash.ts). */
const voteHash = typedHasher(VOTE_TYPES)

export interface VersionHeader {
  height: number
  parent: string
  datasetRoot: string
  recordCount: number
  attributionRoot: string
  totalAttributed: string
  validatorSetHash: string
  version: string
}

export function headerOf (value: VersionValue): VersionHeader {
  const v = value.version
  return {
    height: v.height,
    parent: v.parent === null ? toHex(ZERO32) : toHex(v.parent.multihash.digest),
    datasetRoot: toHex(v.datasetRoot),
    recordCount: v.recordCount,
    attributionRoot: toHex(v.attributionRoot),
    totalAttributed: v.totalAttributed,
    validatorSetHash: toHex(v.validatorSetHash),
    version: value.id
  }
}

/** The header of a nil vote: all zero but the height. */
export function nilHeader (height: number): VersionHeader {
  const z = toHex(ZERO32)
  return { height, parent: z, datasetRoot: z, recordCount: 0, attributionRoot: z, totalAttributed: '0', validatorSetHash: z, version: z }
}

const VOTE_TYPE_CODE: Record<VoteType, number> = { prevote: 1, precommit: 2 }

export function voteDigest (domain: TypedDataDomain, type: VoteType, round: number, header: VersionHeader): string {
  return voteHash(domain, { voteType: VOTE_TYPE_CODE[type], round, header })
}

/** A vote as it travels: the machine's vote, its header and the validator's signature. */
export interface SignedVote {
  vote: Vote
  header: VersionHeader
  signature: string
}

export function voteSigner (domain: TypedDataDomain, sv: SignedVote): string | undefined {
  try {
    return recoverSigner(voteDigest(domain, sv.vote.type, sv.vote.round, sv.header), sv.signature)
  } catch {
    return undefined
  }
}

export const PROPOSAL_TYPES = {
  Proposal: [
    { name: 'height', type: 'uint64' },
    { name: 'round', type: 'uint32' },
    { name: 'validRound', type: 'int32' },
    { name: 'version', type: 'bytes32' }
  ]
}

/** Its EIP-712 digest, compiled once (src/codec/typed-hash.ts). */
const proposalHash = typedHasher(PROPOSAL_TYPES)

export function proposalDigest (domain: TypedDataDomain, height: number, round: number, validRound: number, versionId: string): string {
  return proposalHash(domain, { height, round, validRound, version: versionId })
}

/** The header a stored final version was signed over (what the contract recomputes). */
export function headerOfStored (v: { height: number, cid: string, parent: string | null, datasetRoot: string, recordCount: number, attributionRoot: string, totalAttributed: string, validatorSetHash: string }): VersionHeader {
  return {
    height: v.height,
    parent: v.parent === null ? toHex(ZERO32) : toHex(CID.parse(v.parent).multihash.digest),
    datasetRoot: v.datasetRoot,
    recordCount: v.recordCount,
    attributionRoot: v.attributionRoot,
    totalAttributed: v.totalAttributed,
    validatorSetHash: v.validatorSetHash,
    version: toHex(CID.parse(v.cid).multihash.digest)
  }
}
