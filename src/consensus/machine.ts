import type {
  ConsensusEffect, ConsensusEvent, HeightConfig, HeightState, Proposal, TimeoutConfig, Validator, Vote, VoteType
} from './types.ts'
import { hasOneThird, hasTwoThirds } from './quorum.ts'

/** Stake thresholds: quorum is at least 2/3 of the power (DESIGN §3); round skipping needs more than 1/3. */
export function quorum (validators: readonly Validator[]): { total: bigint, hasTwoThirds: (power: bigint) => boolean, hasOneThird: (power: bigint) => boolean } {
  const total = validators.reduce((sum, v) => sum + v.power, 0n)
  return {
    total,
    hasTwoThirds: power => hasTwoThirds(power, total),
    hasOneThird: power => hasOneThird(power, total)
  }
}

/**
 * Stake-weighted round robin (smooth weighted round robin, as Tendermint's proposer
 * priority): over a cycle each validator proposes in proportion to its stake, spread
 * out. Stakes are scaled to at most ~1000 slots per cycle so the cycle stays small; the
 * proposer of (height, round) is slot (height + round) of the cycle.
 */
export function proposerSchedule (validators: readonly Validator[]): (height: number, round: number) => string {
  const sorted = [...validators].filter(v => v.power > 0n).sort((a, b) => (a.address.toLowerCase() < b.address.toLowerCase() ? -1 : 1))
  if (sorted.length === 0) throw new Error('no validator with power')
  const total = sorted.reduce((sum, v) => sum + v.power, 0n)
  const weights = sorted.map(v => {
    const w = Number((v.power * 1000n) / total)
    return w < 1 ? 1 : w
  })
  const cycleLength = weights.reduce((a, b) => a + b, 0)
  const sum = cycleLength
  const current = weights.map(() => 0)
  const cycle: string[] = []
  for (let k = 0; k < cycleLength; k++) {
    let best = 0
    for (let i = 0; i < weights.length; i++) {
      current[i] = (current[i] as number) + (weights[i] as number)
      if ((current[i] as number) > (current[best] as number)) best = i
    }
    current[best] = (current[best] as number) - sum
    cycle.push((sorted[best] as Validator).address)
  }
  return (height, round) => cycle[(height + round) % cycle.length] as string
}

/** Timeouts grow linearly with the round, so a slow network eventually fits in one. */
export function timeoutMs (t: TimeoutConfig, step: 'propose' | 'prevote' | 'precommit', round: number): number {
  const base = step === 'propose' ? t.proposeMs : step === 'prevote' ? t.prevoteMs : t.precommitMs
  return base + t.deltaMs * round
}

/**
 * Records a proposer is given a second to append to the dataset (read, hash, tree) before
 * its round's proposal is late: a proposer builds at ~60,000 records/s on a busy 2-core
 * machine (`scripts/bench/big.ts`), so this leaves it room.
 */
export const WORK_RECORDS_PER_S = 25_000
/** The most a height's pending work adds to its propose timeout. */
export const MAX_WORK_ALLOWANCE_MS = 15 * 60_000

/**
 * A height's timeouts with the propose step given time for the records its version will
 * append (the accepted contributions waiting: every validator knows them from the verdicts).
 * One contribution of 300,000 records took 5 s to build, longer than a 3 s propose timeout:
 * every validator prevoted nil in round 0, the next proposer (building it meanwhile) was late
 * too, and the height took 3 rounds (`big.ts 300000 120 300000 1`). Only liveness depends on
 * it: a validator that counts differently waits more or less, and the rounds still grow.
 */
export function timeoutsForWork (t: TimeoutConfig, records: number): TimeoutConfig {
  const extra = Number.isFinite(records) && records > 0 ? Math.min(MAX_WORK_ALLOWANCE_MS, Math.ceil(records * 1000 / WORK_RECORDS_PER_S)) : 0
  return extra === 0 ? t : { ...t, proposeMs: t.proposeMs + extra }
}

const voteKey = (round: number, type: VoteType): string => `${round}/${type}`

export interface Decision<V> {
  round: number
  value: V
  certificate: Vote[]
}

/**
 * One height of Tendermint ("The latest gossip on BFT consensus", Buchman, Kwon,
 * Milosevic 2018). Line numbers in comments refer to Algorithm 1 of that paper.
 */
export class HeightMachine<V> {
  private readonly cfg: HeightConfig<V>
  private readonly q: ReturnType<typeof quorum>
  private readonly power: Map<string, bigint>
  private st: HeightState<V>
  private readonly proposals = new Map<number, Proposal<V>>()
  /** Further proposals of an equivocating proposer: a value may still be decided by precommits for it. */
  private readonly otherProposals: Array<Proposal<V>> = []
  private readonly votes = new Map<string, Map<string, Vote>>()
  /** An equivocator's votes beyond its first, per (round, type): each counts for its own value (not for "any"). */
  private readonly extraVotes = new Map<string, Vote[]>()
  /** Everyone heard from in a round (any message), for the f+1 round skip. */
  private readonly senders = new Map<number, Set<string>>()
  private readonly timeoutsScheduled = new Set<string>()
  private readonly line36Done = new Set<number>()
  private readonly evidenceSeen = new Set<string>()
  private readonly validity = new Map<string, boolean>()
  private decided: Decision<V> | undefined
  private started = false

  constructor (config: HeightConfig<V>, persisted?: HeightState<V>) {
    this.cfg = config
    this.q = quorum(config.validators)
    this.power = new Map(config.validators.map(v => [v.address.toLowerCase(), v.power]))
    if (persisted !== undefined && persisted.height !== config.height) throw new Error(`persisted state is for height ${persisted.height}, not ${config.height}`)
    this.st = persisted !== undefined
      ? structuredClone(persisted)
      : { height: config.height, round: 0, step: 'propose', lockedValue: null, lockedRound: -1, validValue: null, validRound: -1, signed: {}, proposed: {} }
    // the justification of the valid value survives a restart
    for (const v of this.st.polka ?? []) this.onVote(v, [])
  }

  get state (): HeightState<V> {
    return structuredClone(this.st)
  }

  /** The round in progress (cheap: `state` copies everything). */
  get round (): number {
    return this.st.round
  }

  get decision (): Decision<V> | undefined {
    return this.decided
  }

  handle (event: ConsensusEvent<V> | { kind: 'tick' }): Array<ConsensusEffect<V>> {
    const out: Array<ConsensusEffect<V>> = []
    if (this.decided !== undefined && event.kind !== 'proposal' && event.kind !== 'vote') return out
    switch (event.kind) {
      case 'start':
        if (this.started) return out
        this.started = true
        this.resume(out)
        break
      case 'proposal':
        this.onProposal(event.proposal)
        break
      case 'vote':
        this.onVote(event.vote, out)
        break
      case 'timeout':
        this.onTimeout(event.step, event.round, out)
        break
      case 'value':
        this.onValue(event.round, event.value, out)
        break
      case 'tick':
        this.rebroadcast(out)
        return out
    }
    if (this.started && this.decided === undefined) this.progress(out)
    return out
  }

  // ---- inputs --------------------------------------------------------------------------

  private powerOf (address: string): bigint {
    return this.power.get(address.toLowerCase()) ?? 0n
  }

  private heard (round: number, address: string): void {
    let set = this.senders.get(round)
    if (set === undefined) this.senders.set(round, set = new Set())
    set.add(address.toLowerCase())
  }

  private onProposal (p: Proposal<V>): void {
    if (p.height !== this.cfg.height || !Number.isInteger(p.round) || p.round < 0 || p.validRound < -1 || p.validRound >= p.round) return
    // only the round's proposer proposes; its first proposal is the round's, others are kept for decisions
    if (p.proposer.toLowerCase() !== this.cfg.proposer(p.round).toLowerCase()) return
    const first = this.proposals.get(p.round)
    if (first !== undefined) {
      const id = this.cfg.idOf(p.value)
      if (this.cfg.idOf(first.value) !== id && !this.otherProposals.some(q => q.round === p.round && this.cfg.idOf(q.value) === id)) this.otherProposals.push(p)
      return
    }
    this.proposals.set(p.round, p)
    this.heard(p.round, p.proposer)
  }

  private onVote (v: Vote, out: Array<ConsensusEffect<V>>): void {
    if (v.height !== this.cfg.height || !Number.isInteger(v.round) || v.round < 0 || this.powerOf(v.validator) === 0n) return
    const key = voteKey(v.round, v.type)
    let byValidator = this.votes.get(key)
    if (byValidator === undefined) this.votes.set(key, byValidator = new Map())
    const who = v.validator.toLowerCase()
    const prior = byValidator.get(who)
    if (prior !== undefined) {
      const extra = this.extraVotes.get(key) ?? []
      if (prior.valueId !== v.valueId && !extra.some(x => x.validator.toLowerCase() === who && x.valueId === v.valueId)) {
        extra.push(v)
        this.extraVotes.set(key, extra)
      }
      if (prior.valueId !== v.valueId && !this.evidenceSeen.has(`${key}/${who}`)) {
        this.evidenceSeen.add(`${key}/${who}`)
        out.push({ kind: 'evidence', first: prior, second: v })
      }
      return
    }
    byValidator.set(who, v)
    this.heard(v.round, v.validator)
  }

  private onTimeout (step: 'propose' | 'prevote' | 'precommit', round: number, out: Array<ConsensusEffect<V>>): void {
    if (round !== this.st.round) return
    if (step === 'propose' && this.st.step === 'propose') {
      // line 57
      this.castVote('prevote', null, out)
      this.st.step = 'prevote'
    } else if (step === 'prevote' && this.st.step === 'prevote') {
      // line 61
      this.castVote('precommit', null, out)
      this.st.step = 'precommit'
    } else if (step === 'precommit') {
      // line 65
      this.startRound(this.st.round + 1, out)
    }
  }

  private onValue (round: number, value: V, out: Array<ConsensusEffect<V>>): void {
    if (round !== this.st.round || this.st.step !== 'propose' || !this.isProposer(round) || this.st.proposed[String(round)] === true) return
    this.propose(round, value, -1, out)
  }

  // ---- rounds --------------------------------------------------------------------------

  private isProposer (round: number): boolean {
    return this.cfg.self !== undefined && this.cfg.proposer(round).toLowerCase() === this.cfg.self.toLowerCase()
  }

  private propose (round: number, value: V, validRound: number, out: Array<ConsensusEffect<V>>): void {
    this.st.proposed[String(round)] = true
    const proposal: Proposal<V> = { height: this.cfg.height, round, value, validRound, proposer: this.cfg.self as string }
    this.onProposal(proposal)
    out.push({ kind: 'broadcast-proposal', proposal })
  }

  /** line 11 */
  private startRound (round: number, out: Array<ConsensusEffect<V>>): void {
    this.st.round = round
    this.st.step = 'propose'
    if (this.isProposer(round)) {
      if (this.st.proposed[String(round)] === true) return
      if (this.st.validValue !== null) this.propose(round, this.st.validValue, this.st.validRound, out)
      else out.push({ kind: 'request-value', round })
      // a proposer that never gets its value still moves on
      this.schedule('propose', round, out)
    } else {
      this.schedule('propose', round, out)
    }
  }

  /** Starts, or resumes after a restart from the persisted step. */
  private resume (out: Array<ConsensusEffect<V>>): void {
    const { round, step } = this.st
    if (step === 'decided') return
    if (step === 'propose' && round === 0 && Object.keys(this.st.signed).length === 0 && this.st.proposed['0'] !== true) {
      this.startRound(0, out)
      return
    }
    this.rebroadcast(out)
    if (step === 'propose') {
      if (this.isProposer(round) && this.st.proposed[String(round)] !== true) {
        if (this.st.validValue !== null) this.propose(round, this.st.validValue, this.st.validRound, out)
        else out.push({ kind: 'request-value', round })
      }
      this.schedule('propose', round, out)
    } else {
      this.schedule(step, round, out)
    }
  }

  private schedule (step: 'propose' | 'prevote' | 'precommit', round: number, out: Array<ConsensusEffect<V>>): void {
    const key = `${step}/${round}`
    if (this.timeoutsScheduled.has(key)) return
    this.timeoutsScheduled.add(key)
    out.push({ kind: 'schedule-timeout', step, round, ms: timeoutMs(this.cfg.timeouts, step, round) })
  }

  /** Signs at most one vote per (round, type), whatever happens: a second call re-sends the first. */
  private castVote (type: VoteType, valueId: string | null, out: Array<ConsensusEffect<V>>): void {
    if (this.cfg.self === undefined || this.powerOf(this.cfg.self) === 0n) return
    const key = voteKey(this.st.round, type)
    const already = this.st.signed[key]
    const id = already !== undefined ? already : valueId
    this.st.signed[key] = id
    const vote: Vote = { type, height: this.cfg.height, round: this.st.round, valueId: id, validator: this.cfg.self }
    this.onVote(vote, out)
    out.push({ kind: 'broadcast-vote', vote })
  }

  /**
   * Liveness under loss and restarts (gossip does not replay): re-sends this node's
   * proposal and votes of the current and previous round, its prevotes of the rounds that
   * justify its lock and valid value, and the others' prevotes behind its valid value, so
   * a peer that lost them can still re-justify a re-proposed value.
   */
  private rebroadcast (out: Array<ConsensusEffect<V>>): void {
    if (this.cfg.self === undefined) return
    const self = this.cfg.self
    const round = this.st.round
    const own = this.proposals.get(round)
    if (own !== undefined && this.isProposer(round)) out.push({ kind: 'broadcast-proposal', proposal: own })
    const ownVote = (r: number, type: VoteType): void => {
      const id = this.st.signed[voteKey(r, type)]
      if (id !== undefined) out.push({ kind: 'broadcast-vote', vote: { type, height: this.cfg.height, round: r, valueId: id, validator: self } })
    }
    for (const r of round > 0 ? [round - 1, round] : [round]) {
      ownVote(r, 'prevote')
      ownVote(r, 'precommit')
    }
    const justifying = new Set([this.st.validRound, this.st.lockedRound, own?.validRound ?? -1, this.proposals.get(round)?.validRound ?? -1])
    for (const r of justifying) if (r >= 0 && r < round - 1) ownVote(r, 'prevote')
    for (const v of this.st.polka ?? []) {
      if (v.validator.toLowerCase() !== self.toLowerCase()) out.push({ kind: 'broadcast-vote', vote: v })
    }
  }

  // ---- tallies -------------------------------------------------------------------------

  private tally (round: number, type: VoteType, valueId?: string | null): bigint {
    const byValidator = this.votes.get(voteKey(round, type))
    if (byValidator === undefined) return 0n
    let sum = 0n
    for (const [who, v] of byValidator) if (valueId === undefined || v.valueId === valueId) sum += this.power.get(who) ?? 0n
    // for one value, an equivocator's vote for it counts too; "any value" counts each validator once
    if (valueId !== undefined) for (const v of this.extraVotes.get(voteKey(round, type)) ?? []) if (v.valueId === valueId) sum += this.power.get(v.validator.toLowerCase()) ?? 0n
    return sum
  }

  /** Drops a cached verdict on a value: it is asked of `isValid` again (a refusal that was for now only). */
  forget (valueId: string): void {
    this.validity.delete(valueId)
  }

  private valid (value: V): boolean {
    const id = this.cfg.idOf(value)
    let ok = this.validity.get(id)
    if (ok === undefined) {
      ok = this.cfg.isValid(value)
      this.validity.set(id, ok)
    }
    return ok
  }

  // ---- the rules -----------------------------------------------------------------------

  private progress (out: Array<ConsensusEffect<V>>): void {
    for (let changed = true; changed && this.decided === undefined;) {
      changed = false
      // line 49: a proposal with 2/3 precommits for it, in any round: decide
      for (const p of [...this.proposals.values(), ...this.otherProposals]) {
        const r = p.round
        const id = this.cfg.idOf(p.value)
        if (this.q.hasTwoThirds(this.tally(r, 'precommit', id)) && this.valid(p.value)) {
          const key = voteKey(r, 'precommit')
          const certificate = [...(this.votes.get(key)?.values() ?? []), ...(this.extraVotes.get(key) ?? [])].filter(v => v.valueId === id)
          this.decided = { round: r, value: p.value, certificate }
          this.st.step = 'decided'
          out.push({ kind: 'decide', round: r, value: p.value, certificate })
          return
        }
      }
      const round = this.st.round
      // line 55: f+1 of the power is already in a later round: join it
      let skipTo = -1
      for (const [r, set] of this.senders) {
        if (r <= round || r <= skipTo) continue
        let sum = 0n
        for (const who of set) sum += this.power.get(who) ?? 0n
        if (this.q.hasOneThird(sum)) skipTo = r
      }
      if (skipTo > round) {
        this.startRound(skipTo, out)
        changed = true
        continue
      }
      const proposal = this.proposals.get(round)
      if (this.st.step === 'propose' && proposal !== undefined) {
        const v = proposal.value
        const id = this.cfg.idOf(v)
        if (proposal.validRound === -1) {
          // line 22
          const ok = this.valid(v) && (this.st.lockedRound === -1 || (this.st.lockedValue !== null && this.cfg.idOf(this.st.lockedValue) === id))
          this.castVote('prevote', ok ? id : null, out)
          this.st.step = 'prevote'
          changed = true
        } else if (this.q.hasTwoThirds(this.tally(proposal.validRound, 'prevote', id))) {
          // line 28
          const ok = this.valid(v) && (this.st.lockedRound <= proposal.validRound || (this.st.lockedValue !== null && this.cfg.idOf(this.st.lockedValue) === id))
          this.castVote('prevote', ok ? id : null, out)
          this.st.step = 'prevote'
          changed = true
        }
      }
      // line 34
      if (this.st.step === 'prevote' && this.q.hasTwoThirds(this.tally(round, 'prevote'))) this.schedule('prevote', round, out)
      // line 36
      if (proposal !== undefined && (this.st.step === 'prevote' || this.st.step === 'precommit') && !this.line36Done.has(round)) {
        const id = this.cfg.idOf(proposal.value)
        if (this.q.hasTwoThirds(this.tally(round, 'prevote', id)) && this.valid(proposal.value)) {
          this.line36Done.add(round)
          if (this.st.step === 'prevote') {
            this.st.lockedValue = proposal.value
            this.st.lockedRound = round
            this.castVote('precommit', id, out)
            this.st.step = 'precommit'
          }
          this.st.validValue = proposal.value
          this.st.validRound = round
          const key = voteKey(round, 'prevote')
          this.st.polka = [...(this.votes.get(key)?.values() ?? []), ...(this.extraVotes.get(key) ?? [])].filter(v => v.valueId === id)
          changed = true
        }
      }
      // line 44
      if (this.st.step === 'prevote' && this.q.hasTwoThirds(this.tally(round, 'prevote', null))) {
        this.castVote('precommit', null, out)
        this.st.step = 'precommit'
        changed = true
      }
      // line 47
      if (this.q.hasTwoThirds(this.tally(round, 'precommit'))) this.schedule('precommit', round, out)
    }
  }
}
