/**
 * The consensus wire format (proposals and votes on `/datanet/1/<id>/consensus`) and its
 * checks, pure: the node's gossip validator and the simulator both run these.
 *
 * A vote's identity for the machine is the hash of the whole header it signs, not just
 * the version id inside it: a vote whose header differs in any field from the header of
 * the value it names is a vote for another value, so it is never counted for that value
 * and never enters its certificate (the contract would refuse it), and two such votes of
 * one validator for one (height, round, type) are evidence.
 */
import { TypedDataEncoder } from 'ethers'
import { ZERO32, VOTE_TYPES, headerOf, nilHeader, type SignedVote, type VersionHeader, type VersionValue } from './version.ts'
import { toHex } from '../codec/hash.ts'
import type { Vote, VoteType } from './types.ts'

export type WireProposal = { kind: 'proposal', height: number, round: number, validRound: number, version: Uint8Array, signature: Uint8Array, sentAt: number }
export type WireVote = { kind: 'vote', type: VoteType, round: number, header: VersionHeader, signature: Uint8Array, sentAt: number }
/**
 * An anchor share (src/chain/anchor-shares.ts): a validator's BLS signature over its precommit
 * of a final version at an anchor height, and its ECDSA signature over that.
 */
export type WireShare = { kind: 'share', round: number, header: VersionHeader, bls: Uint8Array, signature: Uint8Array, sentAt: number }
export type Wire = WireProposal | WireVote | WireShare

const headerEncoder = TypedDataEncoder.from({ VersionHeader: VOTE_TYPES.VersionHeader })
const NIL = toHex(ZERO32)

/** The machine's id of a non-nil header: its EIP-712 struct hash (hex). */
export function headerId (header: VersionHeader): string {
  return headerEncoder.hashStruct('VersionHeader', header)
}

/** The machine's id of a value: the id of its header. */
export function valueIdOf (value: VersionValue): string {
  return headerId(headerOf(value))
}

export type WireProblem = { code: 'CONSENSUS_ERROR_MALFORMED', message: string }

const BYTES32 = /^0x[0-9a-f]{64}$/
const UINT = /^(0|[1-9][0-9]{0,77})$/

/** A header as the contract reads it: every field present, in range, lower-case hex. */
export function headerProblem (h: unknown): string | undefined {
  if (typeof h !== 'object' || h === null) return 'header is not an object'
  const x = h as Record<string, unknown>
  const keys = Object.keys(x).sort().join(',')
  if (keys !== 'attributionRoot,datasetRoot,height,parent,recordCount,totalAttributed,validatorSetHash,version') return `header fields ${keys}`
  if (!Number.isSafeInteger(x.height) || (x.height as number) < 1) return 'header height'
  if (!Number.isSafeInteger(x.recordCount) || (x.recordCount as number) < 0) return 'header record count'
  for (const k of ['parent', 'datasetRoot', 'attributionRoot', 'validatorSetHash', 'version'] as const) {
    if (typeof x[k] !== 'string' || !BYTES32.test(x[k])) return `header ${k}`
  }
  if (typeof x.totalAttributed !== 'string' || !UINT.test(x.totalAttributed)) return 'header totalAttributed'
  return undefined
}

/**
 * The machine's vote for a well-formed wire vote (validator still to be filled in by the
 * caller once the signature recovers), or why it is malformed. A nil vote must carry
 * exactly the nil header of its height.
 */
export function voteOfWire (wire: WireVote): { vote: Vote, signed: SignedVote } | WireProblem {
  const bad = (message: string): WireProblem => ({ code: 'CONSENSUS_ERROR_MALFORMED', message })
  if (wire.type !== 'prevote' && wire.type !== 'precommit') return bad('vote type')
  if (!Number.isSafeInteger(wire.round) || wire.round < 0 || wire.round > 0xffffffff) return bad('vote round')
  const problem = headerProblem(wire.header)
  if (problem !== undefined) return bad(problem)
  const h = wire.header
  let valueId: string | null
  if (h.version === NIL) {
    const nil = nilHeader(h.height)
    if (headerId(h) !== headerId(nil)) return bad('nil vote with a non-nil header')
    valueId = null
  } else {
    valueId = headerId(h)
  }
  const vote: Vote = { type: wire.type, height: h.height, round: wire.round, valueId, validator: '' }
  return { vote, signed: { vote, header: h, signature: toHex(wire.signature) } }
}

/** The kinds of message this version knows. */
const KINDS: ReadonlySet<unknown> = new Set(['proposal', 'vote', 'share'])

/**
 * Whether `wire` names a kind of message this version does not know: a later version's
 * (as shares were to the nodes before them). Ignored, not rejected: a rolling upgrade
 * must not cost honest upgraded peers their score and the datanet its mesh.
 */
export function unknownKind (wire: unknown): boolean {
  if (typeof wire !== 'object' || wire === null) return false
  const kind = (wire as Record<string, unknown>).kind
  return typeof kind === 'string' && kind.length > 0 && kind.length <= 32 && !KINDS.has(kind)
}

/** Shape checks of a wire message (before any signature is recovered). */
export function wireProblem (wire: unknown): string | undefined {
  if (typeof wire !== 'object' || wire === null) return 'not an object'
  const w = wire as Record<string, unknown>
  if (!KINDS.has(w.kind)) return 'not a proposal, vote or share'
  if (!(w.signature instanceof Uint8Array) || w.signature.length !== 65) return 'signature'
  if (w.kind === 'proposal') {
    if (!Number.isSafeInteger(w.height) || (w.height as number) < 1) return 'proposal height'
    if (!Number.isSafeInteger(w.round) || (w.round as number) < 0 || (w.round as number) > 0xffffffff) return 'proposal round'
    if (!Number.isSafeInteger(w.validRound) || (w.validRound as number) < -1 || (w.validRound as number) >= (w.round as number)) return 'proposal validRound'
    if (!(w.version instanceof Uint8Array)) return 'proposal version'
  }
  if (w.kind === 'share') {
    if (!(w.bls instanceof Uint8Array) || w.bls.length !== 48) return 'share bls'
    if (!Number.isSafeInteger(w.round) || (w.round as number) < 0 || (w.round as number) > 0xffffffff) return 'share round'
    const problem = headerProblem(w.header)
    if (problem !== undefined) return `share ${problem}`
    if ((w.header as VersionHeader).version === NIL) return 'share of a nil header'
  }
  return undefined
}
