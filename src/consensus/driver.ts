/**
 * The consensus driver: everything around the height machine that decides safety and
 * bounds, pure and synchronous, so the node and the simulator run this same code. It
 * owns the machine of the height in progress, the values seen, the book of signed votes
 * (for certificates, relaying and evidence), the buffer of messages for later heights, and
 * the signing of this node's votes and proposals. It returns effects; the caller performs
 * them in order:
 *
 *  - `persist` must be durable (synced) before any later effect of the same batch runs:
 *    it holds every vote and proposal this node signed at the height, so a restart from
 *    it never signs a different one for the same (height, round, type) — whatever the
 *    crash, since nothing signed leaves before the record of it;
 *  - `send-*` publish; `schedule-timeout` arms a timer that calls `timeout`;
 *    `request-value` asks for a value (answer with `value`); `validate` asks whether a
 *    proposed value is valid (answer with `validated`); `decide` hands over a final
 *    value with its signed certificate; `evidence` two conflicting signed votes.
 *
 * Bounds (a Byzantine validator cannot grow this state without limit): at most two
 * proposals per (height, round) are kept (the proposer's first, and one conflicting
 * other, which is evidence); per (round, type) at most two different votes of a
 * validator; a validator may have votes in at most `futureRounds` rounds above ours (as
 * CometBFT's catch-up rounds); messages for later heights are kept only up to
 * `maxAhead` heights, a number per sender and a byte budget per height.
 */
import { HeightMachine } from './machine.ts'
import { headerOf, nilHeader, type SignedVote, type VersionHeader, type VersionValue } from './version.ts'
import { valueIdOf } from './wire.ts'
import type { ConsensusEffect, HeightState, Proposal, TimeoutConfig, Validator, Vote, VoteType } from './types.ts'

/** Signs this validator's messages (ECDSA in the node; anything deterministic in the simulator). */
export interface ConsensusSigner {
  address: string
  signVote: (type: VoteType, round: number, header: VersionHeader) => string
  signProposal: (height: number, round: number, validRound: number, value: VersionValue) => string
}

export interface DriverLimits {
  /** Messages for heights up to this far ahead are buffered; later ones dropped. */
  maxAhead: number
  /** Buffered messages per sender and later height. */
  futureMessagesPerSender: number
  /** Buffered bytes per later height. */
  futureBytesPerHeight: number
  /** Rounds above ours in which one validator's votes are kept. */
  futureRounds: number
}

export const defaultDriverLimits: DriverLimits = {
  maxAhead: 2,
  futureMessagesPerSender: 16,
  futureBytesPerHeight: 16 * 1024 * 1024,
  futureRounds: 2
}

/** A proposal or vote whose signature the caller has checked (the validator is its signer). */
export type DriverInbound =
  | { kind: 'proposal', proposal: Proposal<VersionValue>, signature: string, bytes: number }
  | { kind: 'vote', vote: SignedVote, bytes: number }

export interface CertificateEntry { validator: string, signature: string }

/**
 * What the driver persists for a height: the machine's state, this node's own signed
 * votes (their headers: after a restart it sends again a vote whose value it no longer
 * holds, or a peer that missed it would wait for ever), and the signed prevotes behind its
 * valid value (relayed so peers can re-justify a re-proposed value).
 */
export type DriverState = HeightState<VersionValue> & { votes?: SignedVote[] }

export type DriverEffect =
  | { kind: 'persist', height: number, state: DriverState }
  | { kind: 'send-proposal', proposal: Proposal<VersionValue>, signature: string }
  | { kind: 'send-vote', vote: SignedVote }
  | { kind: 'schedule-timeout', height: number, step: 'propose' | 'prevote' | 'precommit', round: number, ms: number }
  | { kind: 'request-value', height: number, round: number }
  | { kind: 'validate', height: number, value: VersionValue }
  | { kind: 'decide', height: number, round: number, value: VersionValue, certificate: CertificateEntry[] }
  | { kind: 'evidence', height: number, first: SignedVote, second: SignedVote }
  | { kind: 'proposal-evidence', height: number, round: number, proposer: string, first: string, second: string }
  /** Someone is at a later height: versions were decided that this node lacks. */
  | { kind: 'behind', height: number }

/** What one height needs: its validator set and proposer schedule. */
export interface HeightSetup {
  height: number
  validators: readonly Validator[]
  proposer: (round: number) => string
  timeouts: TimeoutConfig
}

export interface DriverOptions {
  /** This node's signer; undefined for an observer (plain node). */
  signer: ConsensusSigner | undefined
  limits?: Partial<DriverLimits>
}

export interface DriverStats {
  values: number
  validity: number
  awaiting: number
  proposals: number
  book: number
  aheadRounds: number
  futureHeights: number
  futureMessages: number
  futureBytes: number
  ownSignatures: number
}

interface Buffered { msg: DriverInbound, sender: string }

const voteKey = (v: Vote): string => `${v.round}/${v.type}/${v.validator.toLowerCase()}`
const slotKey = (v: Vote): string => `${voteKey(v)}/${v.valueId ?? 'nil'}`
const senderOf = (m: DriverInbound): string => (m.kind === 'proposal' ? m.proposal.proposer : m.vote.vote.validator).toLowerCase()
const heightOf = (m: DriverInbound): number => m.kind === 'proposal' ? m.proposal.height : m.vote.vote.height

export class ConsensusDriver {
  readonly limits: DriverLimits
  private readonly signer: ConsensusSigner | undefined
  private setup: HeightSetup | undefined
  private machine: HeightMachine<VersionValue> | undefined
  private h = 1
  /** Values by machine id (header id): proposed ones, our own, and those restored from disk. */
  private readonly values = new Map<string, VersionValue>()
  private readonly validity = new Map<string, boolean>()
  /** Proposals waiting for their value's validity. */
  private readonly awaiting = new Map<string, Array<Proposal<VersionValue>>>()
  /** Proposals kept per round (at most two: the first, and one conflicting). */
  private readonly proposalsByRound = new Map<number, string[]>()
  /** Signed votes by (round, type, validator, value): at most two values per (round, type, validator). */
  private readonly book = new Map<string, SignedVote>()
  private readonly perSlot = new Map<string, string[]>()
  /** Rounds above ours in which each validator has votes. */
  private readonly aheadRounds = new Map<string, Set<number>>()
  private readonly future = new Map<number, { list: Buffered[], bytes: number, perSender: Map<string, number> }>()
  private readonly ownSignatures = new Map<string, string>()

  constructor (opts: DriverOptions) {
    this.signer = opts.signer
    this.limits = { ...defaultDriverLimits, ...opts.limits }
  }

  get height (): number { return this.h }
  get isOpen (): boolean { return this.machine !== undefined }
  get state (): HeightState<VersionValue> | undefined { return this.machine?.state }
  /** The round in progress, if a height is open. */
  get round (): number | undefined { return this.machine?.round }

  /** Sizes of the state this driver holds (read-only): what the bounds above keep finite. */
  stats (): DriverStats {
    let awaiting = 0
    for (const l of this.awaiting.values()) awaiting += l.length
    let proposals = 0
    for (const l of this.proposalsByRound.values()) proposals += l.length
    let aheadRounds = 0
    for (const s of this.aheadRounds.values()) aheadRounds += s.size
    let futureMessages = 0
    let futureBytes = 0
    for (const f of this.future.values()) { futureMessages += f.list.length; futureBytes += f.bytes }
    return { values: this.values.size, validity: this.validity.size, awaiting, proposals, book: this.book.size, aheadRounds, futureHeights: this.future.size, futureMessages, futureBytes, ownSignatures: this.ownSignatures.size }
  }

  /** Whether others have sent messages for `height` (they started it). */
  othersStarted (height: number): boolean {
    return (this.future.get(height)?.list.length ?? 0) > 0
  }

  /** Moves to `height` with nothing open (after a final version, or at start). */
  moveTo (height: number): void {
    this.h = height
    this.machine = undefined
    this.setup = undefined
    this.values.clear()
    this.validity.clear()
    this.awaiting.clear()
    this.proposalsByRound.clear()
    this.book.clear()
    this.perSlot.clear()
    this.aheadRounds.clear()
    this.ownSignatures.clear()
    for (const k of this.future.keys()) if (k < height) this.future.delete(k)
  }

  /**
   * Opens the current height, from the persisted state when there is one (the caller must
   * pass it whenever it exists: it is the record of every vote signed at this height).
   */
  open (setup: HeightSetup, persisted?: DriverState): DriverEffect[] {
    if (setup.height !== this.h) throw new Error(`open(${setup.height}) while at height ${this.h}`)
    if (this.machine !== undefined) throw new Error(`height ${this.h} is already open`)
    this.setup = setup
    for (const sv of persisted?.votes ?? []) if (sv.vote.height === this.h) this.book.set(slotKey(sv.vote), sv)
    for (const v of [persisted?.lockedValue, persisted?.validValue]) {
      if (v !== null && v !== undefined) this.remember(v, true)
    }
    const self = this.signer !== undefined && setup.validators.some(v => v.address.toLowerCase() === this.signer?.address.toLowerCase() && v.power > 0n)
      ? this.signer.address
      : undefined
    this.machine = new HeightMachine<VersionValue>({
      height: setup.height,
      validators: setup.validators,
      self,
      timeouts: setup.timeouts,
      proposer: setup.proposer,
      idOf: valueIdOf,
      isValid: v => this.validity.get(valueIdOf(v)) === true
    }, persisted)
    const out = this.run(this.machine.handle({ kind: 'start' }))
    const buffered = this.future.get(this.h)
    this.future.delete(this.h)
    for (const b of buffered?.list ?? []) out.push(...this.receive(b.msg))
    return out
  }

  /** A checked proposal or vote. */
  receive (msg: DriverInbound): DriverEffect[] {
    const height = heightOf(msg)
    if (height < this.h) return []
    if (height > this.h || this.machine === undefined) {
      const out: DriverEffect[] = height > this.h ? [{ kind: 'behind', height }] : []
      this.buffer(height, msg)
      return out
    }
    const round = msg.kind === 'proposal' ? msg.proposal.round : msg.vote.vote.round
    const sender = senderOf(msg)
    if (!this.roundAllowed(sender, round)) return []
    if (msg.kind === 'vote') return this.onVote(msg.vote)
    return this.onProposal(msg.proposal)
  }

  /**
   * The answer to a `validate` effect. `lasting: false` (not valid *yet*: what the value
   * vouches for is not here) refuses it in the rounds waiting for it but keeps no verdict,
   * so a later proposal of it is judged again: a fetch that failed once must not make this
   * node refuse, for the rest of the height, the value the others are locked on.
   */
  validated (value: VersionValue, ok: boolean, lasting = true): DriverEffect[] {
    const id = valueIdOf(value)
    if (ok || lasting) this.validity.set(id, ok)
    const waiting = this.awaiting.get(id) ?? []
    this.awaiting.delete(id)
    const out: DriverEffect[] = []
    if (this.machine === undefined) return out
    // the machine caches its verdicts too: one it made while the value was refused for now is dropped
    this.machine.forget(id)
    for (const p of waiting) if (p.height === this.h) out.push(...this.run(this.machine.handle({ kind: 'proposal', proposal: p })))
    if (!ok && !lasting) this.machine.forget(id)
    return out
  }

  /** This node's value for `round` (the answer to `request-value`); valid by construction. */
  value (round: number, value: VersionValue): DriverEffect[] {
    if (this.machine === undefined || value.version.height !== this.h) return []
    this.remember(value, true)
    return this.run(this.machine.handle({ kind: 'value', round, value }))
  }

  timeout (height: number, step: 'propose' | 'prevote' | 'precommit', round: number): DriverEffect[] {
    if (this.machine === undefined || height !== this.h) return []
    return this.run(this.machine.handle({ kind: 'timeout', step, round }))
  }

  /** Re-sends this node's messages of the current rounds (gossip does not replay). */
  tick (): DriverEffect[] {
    if (this.machine === undefined) return []
    return this.run(this.machine.handle({ kind: 'tick' }))
  }

  // ---- inbound -------------------------------------------------------------------------

  private roundAllowed (sender: string, round: number): boolean {
    const current = this.machine?.round ?? 0
    if (round <= current) return true
    let rounds = this.aheadRounds.get(sender)
    if (rounds === undefined) this.aheadRounds.set(sender, rounds = new Set())
    for (const r of rounds) if (r <= current) rounds.delete(r)
    if (rounds.has(round)) return true
    if (rounds.size >= this.limits.futureRounds) return false
    rounds.add(round)
    return true
  }

  private onProposal (p: Proposal<VersionValue>): DriverEffect[] {
    const machine = this.machine as HeightMachine<VersionValue>
    if (p.proposer.toLowerCase() !== this.setup?.proposer(p.round).toLowerCase()) return []
    const id = valueIdOf(p.value)
    const kept = this.proposalsByRound.get(p.round) ?? []
    const out: DriverEffect[] = []
    if (!kept.includes(id)) {
      if (kept.length >= 2) return []
      if (kept.length === 1) out.push({ kind: 'proposal-evidence', height: p.height, round: p.round, proposer: p.proposer, first: kept[0] as string, second: id })
      kept.push(id)
      this.proposalsByRound.set(p.round, kept)
    }
    this.remember(p.value, undefined)
    const known = this.validity.get(id)
    if (known === undefined) {
      const list = this.awaiting.get(id)
      if (list === undefined) {
        this.awaiting.set(id, [p])
        out.push({ kind: 'validate', height: p.height, value: p.value })
      } else if (list.length < 4) {
        list.push(p)
      }
      return out
    }
    out.push(...this.run(machine.handle({ kind: 'proposal', proposal: p })))
    return out
  }

  private onVote (sv: SignedVote): DriverEffect[] {
    const machine = this.machine as HeightMachine<VersionValue>
    const v = sv.vote
    const slot = voteKey(v)
    const ids = this.perSlot.get(slot) ?? []
    const id = v.valueId ?? 'nil'
    if (!ids.includes(id)) {
      if (ids.length >= 2) return []
      ids.push(id)
      this.perSlot.set(slot, ids)
      this.book.set(slotKey(v), sv)
    }
    return this.run(machine.handle({ kind: 'vote', vote: v }))
  }

  private buffer (height: number, msg: DriverInbound): void {
    if (height > this.h + this.limits.maxAhead) return
    let entry = this.future.get(height)
    if (entry === undefined) this.future.set(height, entry = { list: [], bytes: 0, perSender: new Map() })
    const sender = senderOf(msg)
    const count = entry.perSender.get(sender) ?? 0
    if (count >= this.limits.futureMessagesPerSender || entry.bytes + msg.bytes > this.limits.futureBytesPerHeight) return
    entry.perSender.set(sender, count + 1)
    entry.bytes += msg.bytes
    entry.list.push({ msg, sender })
  }

  private remember (value: VersionValue, valid: boolean | undefined): void {
    const id = valueIdOf(value)
    if (!this.values.has(id)) this.values.set(id, value)
    if (valid !== undefined) this.validity.set(id, valid)
  }

  // ---- effects -------------------------------------------------------------------------

  /** Turns the machine's effects into the driver's: persist first whenever anything signed leaves. */
  private run (effects: Array<ConsensusEffect<VersionValue>>): DriverEffect[] {
    const machine = this.machine
    if (effects.length === 0 || machine === undefined) return []
    const out: DriverEffect[] = []
    const persistAt = effects.some(e => e.kind === 'broadcast-vote' || e.kind === 'broadcast-proposal') ? out.push({ kind: 'persist', height: this.h, state: machine.state }) - 1 : -1
    for (const e of effects) {
      switch (e.kind) {
        case 'broadcast-proposal': {
          const proposal = { ...e.proposal, value: this.canonical(e.proposal.value) }
          const signature = this.signProposal(proposal)
          if (signature !== undefined) out.push({ kind: 'send-proposal', proposal, signature })
          break
        }
        case 'broadcast-vote': {
          const sv = this.signedVote(e.vote)
          if (sv !== undefined) out.push({ kind: 'send-vote', vote: sv })
          break
        }
        case 'schedule-timeout': out.push({ kind: 'schedule-timeout', height: this.h, step: e.step, round: e.round, ms: e.ms }); break
        case 'request-value': out.push({ kind: 'request-value', height: this.h, round: e.round }); break
        case 'decide': {
          const certificate: CertificateEntry[] = []
          for (const c of e.certificate) {
            const sv = this.book.get(slotKey(c))
            if (sv !== undefined) certificate.push({ validator: c.validator, signature: sv.signature })
          }
          out.push({ kind: 'decide', height: this.h, round: e.round, value: this.canonical(e.value), certificate })
          break
        }
        case 'evidence': {
          const first = this.book.get(slotKey(e.first))
          const second = this.book.get(slotKey(e.second))
          if (first !== undefined && second !== undefined) out.push({ kind: 'evidence', height: this.h, first, second })
          break
        }
      }
    }
    // the votes signed in this batch are in the book now: they go to disk with the state, before any is sent
    const p = out[persistAt]
    if (p !== undefined && p.kind === 'persist') p.state = { ...p.state, votes: this.keptVotes(p.state) }
    return out
  }

  /**
   * The signed votes a restart needs: this node's own, and the others' prevotes that
   * justify its valid value (the polka), which it relays so peers can re-justify it.
   */
  private keptVotes (state: HeightState<VersionValue>): SignedVote[] {
    const self = this.signer?.address.toLowerCase()
    const out: SignedVote[] = []
    for (const sv of this.book.values()) if (sv.vote.validator.toLowerCase() === self) out.push(sv)
    for (const v of state.polka ?? []) {
      const sv = this.book.get(slotKey(v))
      if (sv !== undefined && v.validator.toLowerCase() !== self) out.push(sv)
    }
    return out
  }

  /** The value object this driver holds for a value (a persisted state's copy is plain data). */
  private canonical (value: VersionValue): VersionValue {
    return this.values.get(valueIdOf(value)) ?? value
  }

  private signProposal (p: Proposal<VersionValue>): string | undefined {
    if (this.signer === undefined || p.proposer.toLowerCase() !== this.signer.address.toLowerCase()) return undefined
    const key = `proposal/${p.round}/${p.validRound}/${valueIdOf(p.value)}`
    let sig = this.ownSignatures.get(key)
    if (sig === undefined) this.ownSignatures.set(key, sig = this.signer.signProposal(p.height, p.round, p.validRound, p.value))
    return sig
  }

  /**
   * The signed form of a vote the machine broadcasts: this node's own (signed here, once),
   * or another validator's being relayed (its own signature, from the book).
   */
  private signedVote (v: Vote): SignedVote | undefined {
    if (this.signer === undefined || v.validator.toLowerCase() !== this.signer.address.toLowerCase()) return this.book.get(slotKey(v))
    // signed before (maybe before a restart): the same bytes again
    const signed = this.book.get(slotKey(v))
    if (signed !== undefined) return signed
    let header: VersionHeader
    if (v.valueId === null) header = nilHeader(v.height)
    else {
      const value = this.values.get(v.valueId)
      // after a restart the header of a value voted for may be gone: never sign another one for it
      if (value === undefined) return undefined
      header = headerOf(value)
    }
    const key = slotKey(v)
    let signature = this.ownSignatures.get(key)
    if (signature === undefined) this.ownSignatures.set(key, signature = this.signer.signVote(v.type, v.round, header))
    const sv: SignedVote = { vote: v, header, signature }
    this.book.set(key, sv)
    return sv
  }
}
