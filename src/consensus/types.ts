/**
 * Tendermint consensus for one height (DESIGN §4 flow 3), as a pure state machine: it
 * takes events and returns effects, and owns no timer, socket or disk. Signatures are
 * checked before messages are fed in; the caller performs the effects in order, and
 * persists `state` before it sends any vote the same step produced.
 */

export type VoteType = 'prevote' | 'precommit'
export type Step = 'propose' | 'prevote' | 'precommit' | 'decided'

export interface Validator {
  address: string
  power: bigint
}

/** A proposal for (height, round): a value, and the round it was last valid in (-1 if never). */
export interface Proposal<V> {
  height: number
  round: number
  value: V
  validRound: number
  proposer: string
}

/** A prevote or precommit; valueId null is a vote for nil. */
export interface Vote {
  type: VoteType
  height: number
  round: number
  valueId: string | null
  validator: string
}

export type ConsensusEvent<V> =
  | { kind: 'start' }
  | { kind: 'proposal', proposal: Proposal<V> }
  | { kind: 'vote', vote: Vote }
  | { kind: 'timeout', step: 'propose' | 'prevote' | 'precommit', round: number }
  /** The value this node proposes, answering a `request-value` effect. */
  | { kind: 'value', round: number, value: V }

export type ConsensusEffect<V> =
  | { kind: 'broadcast-proposal', proposal: Proposal<V> }
  | { kind: 'broadcast-vote', vote: Vote }
  | { kind: 'schedule-timeout', step: 'propose' | 'prevote' | 'precommit', round: number, ms: number }
  /** This node proposes in `round`: build a value and feed it back as a `value` event. */
  | { kind: 'request-value', round: number }
  /** Final: the value, the round, and the certificate (precommits for it, at least 2/3 of the power). */
  | { kind: 'decide', round: number, value: V, certificate: Vote[] }
  /** Two different votes of one validator for one (round, type): evidence. */
  | { kind: 'evidence', first: Vote, second: Vote }

export interface TimeoutConfig {
  proposeMs: number
  prevoteMs: number
  precommitMs: number
  /** Added per round, so rounds grow until the network's delays fit. */
  deltaMs: number
}

/** What one height's machine needs to know; all pure functions. */
export interface HeightConfig<V> {
  height: number
  validators: readonly Validator[]
  /** This node's address; undefined for a non-validating observer. */
  self: string | undefined
  timeouts: TimeoutConfig
  /** The proposer of a round of this height. */
  proposer: (round: number) => string
  /** A value's identity (e.g. the version CID's digest). */
  idOf: (value: V) => string
  /** Whether a value may be decided: certificates verify, roots recompute. Deterministic. */
  isValid: (value: V) => boolean
}

/** The persistent part of a height's state: enough to resume after a crash without ever signing two different votes. */
export interface HeightState<V> {
  height: number
  round: number
  step: Step
  lockedValue: V | null
  lockedRound: number
  validValue: V | null
  validRound: number
  /** Votes this node signed, by `${round}/${type}`: never a different one for the same key. */
  signed: Record<string, string | null>
  /** Whether this node already proposed in a round (by round). */
  proposed: Record<string, boolean>
  /**
   * The prevotes (2/3 of the power) that made `validValue` valid in `validRound`: kept so
   * that after a restart this node can still show why the value it re-proposes or
   * prevotes is justified, when nobody else holds those votes any more.
   */
  polka?: Vote[]
}
