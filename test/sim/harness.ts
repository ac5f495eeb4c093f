/**
 * Deterministic simulation of Tendermint consensus (src/consensus/machine.ts): N validators
 * in one process, a discrete-event scheduler over simulated time, a network that loses,
 * duplicates, delays (so reorders) and partitions messages, nodes that crash and restart
 * from their persisted state, and Byzantine validators that are not machines but an
 * omniscient adversary constructing messages directly. Honest nodes do what the real node
 * around the machine does: persist `machine.state` before sending what a step produced,
 * relay gossip (once per message, like gossipsub), re-run each step's 'tick' for
 * rebroadcast, and answer a laggard's message for a height they decided with that
 * decision's proposal and certificate (catch-up). Everything is derived from a seed: the
 * same seed gives the same run, event for event, and the same trace.
 *
 * Invariants, checked as the run goes (the first violation ends it):
 *  - agreement: no two honest nodes decide different value ids at one height;
 *  - validity: a decided value is valid, and its certificate holds precommits for its id,
 *    of its round and height, from distinct validators with > 2/3 of the power (or >= 2/3,
 *    see RunOptions.certificate), each one actually signed by that validator;
 *  - no double vote: an honest validator never broadcasts two different votes for one
 *    (height, round, type), nor two different proposals for one (height, round), across
 *    crashes and restarts; it never votes for an invalid value, never forges another's vote
 *    or proposal (relaying them is fine), and reports evidence only of real double votes;
 *  - liveness (when the scenario expects it): once the last partition healed and the last
 *    crashed node restarted (the good period), every honest node decides every height
 *    within a bounded simulated time.
 *
 * Runs return a result object ({ ok, violation?, trace }) rather than throwing.
 */
import type { ConsensusEffect, ConsensusEvent, HeightConfig, HeightState, Proposal, TimeoutConfig, Validator, Vote, VoteType } from '../../src/consensus/types.ts'
import { HeightMachine, proposerSchedule } from '../../src/consensus/machine.ts'

// -- values ----------------------------------------------------------------------------

/** What the simulated validators agree on. A Byzantine proposer may build invalid ones. */
export interface SimValue {
  height: number
  proposer: string
  n: number
  invalid?: true
}

export function idOf (v: SimValue): string {
  return `${v.height}:${v.proposer}:${v.n}`
}

export function isValid (v: SimValue): boolean {
  return v.invalid !== true
}

// -- machines --------------------------------------------------------------------------

/** The surface of HeightMachine the simulator drives. */
export interface Machine<V> {
  readonly state: HeightState<V>
  handle: (event: ConsensusEvent<V> | { kind: 'tick' }) => Array<ConsensusEffect<V>>
  readonly decision: { round: number, value: V, certificate: Vote[] } | undefined
}

export type MachineFactory<V> = (config: HeightConfig<V>, persisted?: HeightState<V>) => Machine<V>

export const realMachine: MachineFactory<SimValue> = (config, persisted) => new HeightMachine<SimValue>(config, persisted)

/**
 * A deliberately broken machine: when a proposal arrives while it is locked, it first
 * forgets its lock (lockedRound -1, lockedValue null). The machine has no setter, so the wrapper rebuilds it from its own
 * persisted state with the lock cleared, starts it, and feeds it again every proposal and
 * vote it had received (which a rebuilt machine would otherwise have forgotten), then the
 * proposal. Everything else (signed votes, valid value, round, step) is kept, so it never
 * double-signs: it only prevotes for values a correct, locked node must refuse.
 */
export function lockForgetting (base: MachineFactory<SimValue> = realMachine): MachineFactory<SimValue> {
  return (config, persisted) => new LockForgetting(base, config, persisted)
}

class LockForgetting implements Machine<SimValue> {
  private machine: Machine<SimValue>
  private readonly base: MachineFactory<SimValue>
  private readonly config: HeightConfig<SimValue>
  private readonly received: Array<ConsensusEvent<SimValue>> = []

  constructor (base: MachineFactory<SimValue>, config: HeightConfig<SimValue>, persisted?: HeightState<SimValue>) {
    this.base = base
    this.config = config
    this.machine = base(config, persisted)
  }

  get state (): HeightState<SimValue> { return this.machine.state }
  get decision (): { round: number, value: SimValue, certificate: Vote[] } | undefined { return this.machine.decision }

  handle (event: ConsensusEvent<SimValue> | { kind: 'tick' }): Array<ConsensusEffect<SimValue>> {
    const effects: Array<ConsensusEffect<SimValue>> = []
    if (event.kind === 'proposal') {
      const state = this.machine.state
      if (state.lockedRound !== -1 && state.step !== 'decided') {
        this.machine = this.base(this.config, { ...state, lockedRound: -1, lockedValue: null })
        effects.push(...this.machine.handle({ kind: 'start' }))
        for (const e of this.received) effects.push(...this.machine.handle(e))
      }
    }
    if (event.kind === 'proposal' || event.kind === 'vote') this.received.push(event)
    effects.push(...this.machine.handle(event))
    return effects
  }
}

// -- seeded randomness -----------------------------------------------------------------

/** sfc32, its state filled by a splitmix-style mixer of the seed: small, fast, well mixed; never Math.random. */
export class Rng {
  private a: number
  private b: number
  private c: number
  private d: number

  constructor (seed: number) {
    let s = seed >>> 0
    const next = (): number => {
      s = (s + 0x9e3779b9) >>> 0
      let z = s
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b)
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35)
      return (z ^ (z >>> 16)) >>> 0
    }
    this.a = next(); this.b = next(); this.c = next(); this.d = next()
    for (let i = 0; i < 12; i++) this.u32()
  }

  u32 (): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0
    this.d = (this.d + 1) >>> 0
    this.a = this.b ^ (this.b >>> 9)
    this.b = (this.c + (this.c << 3)) >>> 0
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0
    this.c = (this.c + t) >>> 0
    return t
  }

  /** Uniform in [0, 1). */
  float (): number { return this.u32() / 4294967296 }
  /** Uniform integer in [lo, hi]. */
  int (lo: number, hi: number): number { return lo + Math.floor(this.float() * (hi - lo + 1)) }
  chance (p: number): boolean { return this.float() < p }
  pick<T> (items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from nothing')
    return items[Math.floor(this.float() * items.length)] as T
  }

  shuffle<T> (items: readonly T[]): T[] {
    const out = [...items]
    for (let i = out.length - 1; i > 0; i--) {
      const j = Math.floor(this.float() * (i + 1))
      const t = out[i] as T
      out[i] = out[j] as T
      out[j] = t
    }
    return out
  }
}

// -- scenarios -------------------------------------------------------------------------

export type Behaviour = 'silent' | 'equivocate' | 'invalid'

export interface NetworkFaults {
  /** Probability that a message is lost. */
  loss: number
  /** Probability that a message is delivered twice (each copy with its own delay). */
  duplicate: number
  minDelayMs: number
  maxDelayMs: number
  /** Probability of an extra long delay (reordering well past the others). */
  spike: number
  spikeMs: number
  /**
   * Gossip relay, as gossipsub does: an honest node forwards each message the first time it
   * receives it (per life) to every other validator, each copy again subject to the faults.
   * So a Byzantine validator cannot show a vote to some honest nodes only, unless every
   * relay of it is lost. Off: only point-to-point sends (the adversary schedules delivery).
   */
  relay: boolean
}

export interface Partition {
  fromMs: number
  toMs: number
  /** Validator indices on one side; everybody else is on the other. */
  side: number[]
}

export interface Crash {
  node: number
  atMs: number
  downMs: number
  /** Torn: the node dies inside its next step that has effects, before persisting or sending any of them. */
  torn: boolean
}

export interface Scenario {
  name: string
  seed: number
  powers: bigint[]
  /** Heights 1..heights are decided. */
  heights: number
  byzantine: Record<number, Behaviour>
  network: NetworkFaults
  partitions: Partition[]
  crashes: Crash[]
  timeouts: TimeoutConfig
  /** Every live node gets a `tick` this often (rebroadcast for liveness under loss). */
  tickMs: number
  /** Whether every honest node must decide every height within `livenessMs` of the good period's start. */
  expectLiveness: boolean
  livenessMs: number
  /** The run stops here at the latest (when liveness is not expected, this is how long it is watched). */
  maxTimeMs: number
  /** The good period cannot start before this (e.g. a custom adversary's attack window). */
  quietFromMs: number
}

export const DEFAULT_TIMEOUTS: TimeoutConfig = { proposeMs: 1000, prevoteMs: 1000, precommitMs: 1000, deltaMs: 500 }

const NO_FAULTS: NetworkFaults = { loss: 0, duplicate: 0, minDelayMs: 5, maxDelayMs: 50, spike: 0, spikeMs: 0, relay: true }

/** A fault-free scenario; override what you need. */
export function calmScenario (seed: number, powers: Array<number | bigint>, heights: number, extra: Partial<Scenario> = {}): Scenario {
  return {
    name: 'calm',
    seed,
    powers: powers.map(p => BigInt(p)),
    heights,
    byzantine: {},
    network: NO_FAULTS,
    partitions: [],
    crashes: [],
    timeouts: DEFAULT_TIMEOUTS,
    tickMs: 1000,
    expectLiveness: true,
    livenessMs: 10 * 60_000,
    maxTimeMs: 60 * 60_000,
    quietFromMs: 0,
    ...extra
  }
}

export interface RandomScenarioOptions {
  validators?: number
  heights?: number
  /** Upper bound of the loss probability (0.3 by default). */
  maxLoss?: number
  /** Bias towards the equivocation attack: every Byzantine validator equivocates, always at least one, partitions always. */
  attack?: boolean
}

/**
 * A scenario drawn from the seed: equal or skewed powers; Byzantine validators (total power
 * < 1/3) silent, equivocating or proposing invalid values; loss up to 30%, duplication,
 * random delays with spikes; up to two partitions that heal; crashes (some torn) that
 * restart; all faults within a window of 2 to 20 s from the start (about as long as the
 * heights take, so they hit them; the good period starts when the last one ends).
 */
export function randomScenario (seed: number, opts: RandomScenarioOptions = {}): Scenario {
  const rng = new Rng(seed ^ 0x5eed5eed)
  const n = opts.validators ?? rng.int(4, 7)
  const skewed = rng.chance(0.4)
  const powers = Array.from({ length: n }, () => BigInt(skewed ? rng.int(1, 10) : 10))
  const total = powers.reduce((s, p) => s + p, 0n)

  const byzantine: Record<number, Behaviour> = {}
  const wantByz = opts.attack === true ? n : rng.int(0, n)
  let byzPower = 0n
  for (const i of rng.shuffle(Array.from({ length: n }, (_, i) => i))) {
    if (Object.keys(byzantine).length >= wantByz) break
    const p = powers[i] as bigint
    if (3n * (byzPower + p) >= total) continue
    byzPower += p
    byzantine[i] = opts.attack === true ? 'equivocate' : rng.pick(['silent', 'equivocate', 'invalid'] as const)
  }
  const honest = Array.from({ length: n }, (_, i) => i).filter(i => byzantine[i] === undefined)

  const maxLoss = opts.maxLoss ?? 0.3
  const minDelayMs = rng.int(1, 20)
  const network: NetworkFaults = {
    loss: rng.float() * maxLoss,
    duplicate: rng.float() * 0.15,
    minDelayMs,
    maxDelayMs: minDelayMs + rng.int(10, 800),
    spike: rng.float() * 0.05,
    spikeMs: rng.int(500, 4000),
    relay: true
  }

  // Faults fall in a window about as long as the heights take, so that they hit them.
  const windowMs = rng.int(2000, 20_000)
  const partitions: Partition[] = []
  let cursor = rng.int(0, 2000)
  const partitionCount = opts.attack === true ? rng.int(1, 3) : rng.int(0, 2)
  for (let k = 0; k < partitionCount && cursor < windowMs; k++) {
    const len = rng.int(500, Math.max(1000, windowMs / 2))
    const sideSize = rng.int(1, n - 1)
    const side = rng.shuffle(Array.from({ length: n }, (_, i) => i)).slice(0, sideSize).sort((a, b) => a - b)
    partitions.push({ fromMs: cursor, toMs: cursor + len, side })
    cursor += len + rng.int(200, 5000)
  }

  const crashes: Crash[] = []
  for (const node of honest) {
    if (!rng.chance(0.4)) continue
    let at = rng.int(0, windowMs / 2)
    for (let k = rng.int(1, 3); k > 0; k--) {
      const downMs = rng.int(200, Math.max(500, windowMs / 2))
      crashes.push({ node, atMs: at, downMs, torn: rng.chance(0.5) })
      at += downMs + rng.int(200, 5000)
    }
  }
  crashes.sort((a, b) => a.atMs - b.atMs || a.node - b.node)

  return {
    ...calmScenario(seed, powers, opts.heights ?? 3),
    name: opts.attack === true ? 'random-attack' : 'random',
    byzantine,
    network,
    partitions,
    crashes
  }
}

export function describeScenario (s: Scenario): string[] {
  const lines = [
    `scenario ${s.name} seed=${s.seed} validators=${s.powers.length} powers=[${s.powers.join(',')}] heights=${s.heights}`,
    `byzantine ${JSON.stringify(s.byzantine)}`,
    `network loss=${s.network.loss.toFixed(3)} dup=${s.network.duplicate.toFixed(3)} delay=${s.network.minDelayMs}..${s.network.maxDelayMs}ms spike=${s.network.spike.toFixed(3)}x${s.network.spikeMs}ms relay=${s.network.relay ? 'on' : 'off'}`,
    `timeouts ${JSON.stringify(s.timeouts)} tick=${s.tickMs}ms liveness=${s.expectLiveness ? `${s.livenessMs}ms` : 'not expected'}`
  ]
  for (const p of s.partitions) lines.push(`partition ${p.fromMs}..${p.toMs}ms side=[${p.side.join(',')}]`)
  for (const c of s.crashes) lines.push(`crash n${c.node} at=${c.atMs}ms down=${c.downMs}ms${c.torn ? ' torn' : ''}`)
  return lines
}

// -- messages --------------------------------------------------------------------------

export type Msg =
  | { t: 'proposal', proposal: Proposal<SimValue> }
  | { t: 'vote', vote: Vote }

export interface Envelope {
  from: number
  to: number
  msg: Msg
  /** A decided node's catch-up answer (certificate and proposal) to a laggard. */
  help: boolean
}

function heightOf (m: Msg): number {
  return m.t === 'proposal' ? m.proposal.height : m.vote.height
}

function msgKey (m: Msg): string {
  return m.t === 'proposal'
    ? `P/${m.proposal.height}/${m.proposal.round}/${m.proposal.proposer}/${idOf(m.proposal.value)}/${m.proposal.validRound}`
    : `V/${m.vote.height}/${m.vote.round}/${m.vote.type}/${m.vote.validator}/${m.vote.valueId ?? 'nil'}`
}

export function showMsg (m: Msg): string {
  if (m.t === 'proposal') {
    const p = m.proposal
    return `proposal h${p.height} r${p.round} ${idOf(p.value)}${p.value.invalid === true ? '(invalid)' : ''} vr${p.validRound} by ${p.proposer}`
  }
  const v = m.vote
  return `${v.type} h${v.height} r${v.round} ${v.valueId ?? 'nil'} by ${v.validator}`
}

function showEffect (e: ConsensusEffect<SimValue>): string {
  switch (e.kind) {
    case 'broadcast-proposal': return `broadcast ${showMsg({ t: 'proposal', proposal: e.proposal })}`
    case 'broadcast-vote': return `broadcast ${showMsg({ t: 'vote', vote: e.vote })}`
    case 'schedule-timeout': return `schedule-timeout ${e.step} r${e.round} +${e.ms}ms`
    case 'request-value': return `request-value r${e.round}`
    case 'decide': return `DECIDE r${e.round} ${idOf(e.value)} cert=[${e.certificate.map(v => v.validator).join(',')}]`
    case 'evidence': return `evidence ${e.first.validator} ${e.first.type} h${e.first.height} r${e.first.round} ${e.first.valueId ?? 'nil'} vs ${e.second.valueId ?? 'nil'}`
  }
}

function showEvent (e: ConsensusEvent<SimValue> | { kind: 'tick' }): string {
  switch (e.kind) {
    case 'start': return 'start'
    case 'tick': return 'tick'
    case 'proposal': return showMsg({ t: 'proposal', proposal: e.proposal })
    case 'vote': return showMsg({ t: 'vote', vote: e.vote })
    case 'timeout': return `timeout ${e.step} r${e.round}`
    case 'value': return `value r${e.round} ${idOf(e.value)}`
  }
}

function deepFreeze<T> (x: T): T {
  if (typeof x === 'object' && x !== null && !Object.isFrozen(x)) {
    Object.freeze(x)
    for (const v of Object.values(x)) deepFreeze(v)
  }
  return x
}

// -- the adversary ---------------------------------------------------------------------

/** What a Byzantine agent sees and can do: everything, except sign for honest validators. */
export interface AdversaryContext {
  readonly now: number
  readonly self: number
  readonly addresses: readonly string[]
  readonly honest: readonly number[]
  readonly heights: number
  proposer: (height: number, round: number) => string
  /** The (height, round) each live honest node is in, if it still has a height to decide. */
  positions: () => Array<{ node: number, height: number, round: number }>
  send: (to: readonly number[], msg: Msg) => void
  /** A fresh value proposed by this validator. */
  freshValue: (height: number, invalid?: boolean) => SimValue
  rng: Rng
  log: (line: string) => void
}

export interface ByzantineAgent {
  onMessage: (ctx: AdversaryContext, from: number, msg: Msg) => void
  onTick: (ctx: AdversaryContext) => void
}

function vote (type: VoteType, height: number, round: number, valueId: string | null, validator: string): Msg {
  return { t: 'vote', vote: { type, height, round, valueId, validator } }
}

/** Active (height, round) pairs of the honest nodes, deduplicated, in order. */
function activeRounds (ctx: AdversaryContext): Array<{ height: number, round: number }> {
  const seen = new Set<string>()
  const out: Array<{ height: number, round: number }> = []
  for (const p of ctx.positions()) {
    const k = `${p.height}/${p.round}`
    if (!seen.has(k)) { seen.add(k); out.push({ height: p.height, round: p.round }) }
  }
  return out
}

class SilentAgent implements ByzantineAgent {
  onMessage (): void {}
  onTick (): void {}
}

/**
 * Equivocates: as proposer, sends one value to a random half of the network and another to
 * the rest; as voter, once it knows a proposal, prevotes and precommits it to a random half
 * and nil (or a second proposal) to the rest. The split is fixed per (height, round) and
 * resent on each tick, like an honest node's rebroadcast.
 */
class EquivocatingAgent implements ByzantineAgent {
  private readonly proposals = new Map<string, string[]>()
  private readonly plans = new Map<string, { split: Set<number>, a: Msg[], b: Msg[] }>()

  onMessage (ctx: AdversaryContext, _from: number, msg: Msg): void {
    if (msg.t !== 'proposal') return
    const p = msg.proposal
    const k = `${p.height}/${p.round}`
    const ids = this.proposals.get(k) ?? []
    const id = idOf(p.value)
    if (!ids.includes(id) && p.proposer === ctx.proposer(p.height, p.round)) {
      ids.push(id)
      this.proposals.set(k, ids)
      this.act(ctx, p.height, p.round)
    }
  }

  onTick (ctx: AdversaryContext): void {
    for (const { height, round } of activeRounds(ctx)) this.act(ctx, height, round)
  }

  private act (ctx: AdversaryContext, height: number, round: number): void {
    const k = `${height}/${round}`
    let plan = this.plans.get(k)
    const me = ctx.addresses[ctx.self] as string
    if (plan === undefined) {
      const split = new Set(ctx.rng.shuffle(ctx.honest).slice(0, Math.max(1, Math.floor(ctx.honest.length / 2) + ctx.rng.int(-1, 1))))
      if (ctx.proposer(height, round) === me) {
        const x = ctx.freshValue(height)
        const y = ctx.freshValue(height)
        this.proposals.set(k, [idOf(x), idOf(y)])
        plan = {
          split,
          a: [{ t: 'proposal', proposal: { height, round, value: x, validRound: -1, proposer: me } }],
          b: [{ t: 'proposal', proposal: { height, round, value: y, validRound: -1, proposer: me } }]
        }
      } else {
        const ids = this.proposals.get(k)
        if (ids === undefined || ids.length === 0) return
        plan = { split, a: [], b: [] }
      }
      this.plans.set(k, plan)
    }
    const ids = this.proposals.get(k) ?? []
    const first = ids[0]
    if (plan.a.filter(m => m.t === 'vote').length === 0 && first !== undefined) {
      const second = ids[1] ?? null
      for (const type of ['prevote', 'precommit'] as const) {
        plan.a.push(vote(type, height, round, first, me))
        plan.b.push(vote(type, height, round, second, me))
      }
    }
    const a = ctx.honest.filter(i => plan.split.has(i))
    const b = ctx.honest.filter(i => !plan.split.has(i))
    for (const m of plan.a) ctx.send(a, m)
    for (const m of plan.b) ctx.send(b, m)
  }
}

/** Proposes invalid values when it is the proposer (and votes for them); otherwise votes nil. */
class InvalidProposerAgent implements ByzantineAgent {
  private readonly made = new Map<string, SimValue>()

  onMessage (): void {}

  onTick (ctx: AdversaryContext): void {
    const me = ctx.addresses[ctx.self] as string
    for (const { height, round } of activeRounds(ctx)) {
      if (ctx.proposer(height, round) === me) {
        const k = `${height}/${round}`
        let v = this.made.get(k)
        if (v === undefined) { v = ctx.freshValue(height, true); this.made.set(k, v) }
        ctx.send(ctx.honest, { t: 'proposal', proposal: { height, round, value: v, validRound: -1, proposer: me } })
        ctx.send(ctx.honest, vote('prevote', height, round, idOf(v), me))
        ctx.send(ctx.honest, vote('precommit', height, round, idOf(v), me))
      } else {
        ctx.send(ctx.honest, vote('prevote', height, round, null, me))
        ctx.send(ctx.honest, vote('precommit', height, round, null, me))
      }
    }
  }
}

export function builtinAgent (b: Behaviour): ByzantineAgent {
  switch (b) {
    case 'silent': return new SilentAgent()
    case 'equivocate': return new EquivocatingAgent()
    case 'invalid': return new InvalidProposerAgent()
  }
}

// -- the simulator ---------------------------------------------------------------------

export type Invariant = 'agreement' | 'validity' | 'double-vote' | 'liveness' | 'integrity'

export interface Violation {
  invariant: Invariant
  message: string
  timeMs: number
}

export interface Decision {
  node: number
  height: number
  round: number
  valueId: string
  timeMs: number
}

export interface SimResult {
  ok: boolean
  seed: number
  scenario: string
  violation?: Violation
  trace: string[]
  decisions: Decision[]
  /** Heights decided by each validator (Byzantine ones: 0). */
  decided: number[]
  stats: {
    events: number
    handled: number
    sent: number
    dropped: number
    simulatedMs: number
    goodFromMs: number
    maxRound: number
    evidence: number
    crashes: number
  }
}

export interface RunOptions {
  machine?: MachineFactory<SimValue>
  /** 'full' keeps every line; 'tail' the last `tailLines`; 'off' only the scenario header. */
  trace?: 'full' | 'tail' | 'off'
  tailLines?: number
  /** Drops messages the adversary wants dropped (true = let through); applied after the network's own faults. */
  filter?: (env: Envelope, now: number) => boolean
  /** Agents replacing the scenario's built-in Byzantine behaviours, by validator index. */
  agents?: Record<number, ByzantineAgent>
  maxEvents?: number
  /**
   * The certificate threshold the validity invariant demands: '>2/3' (types.ts: "precommits
   * for it, > 2/3 of the power"; the default) or '>=2/3' (DESIGN §3: "final with precommits
   * from >= 2/3 of the stake"), for telling that disagreement apart from other findings.
   */
  certificate?: '>2/3' | '>=2/3'
}

type SimEvent =
  | { k: 'deliver', env: Envelope }
  | { k: 'timeout', node: number, life: number, height: number, step: 'propose' | 'prevote' | 'precommit', round: number }
  | { k: 'value', node: number, life: number, height: number, round: number }
  | { k: 'tick', node: number }
  | { k: 'crash', crash: Crash }
  | { k: 'restart', node: number }

interface Queued { at: number, seq: number, ev: SimEvent }

/** A binary min-heap by (time, sequence number): ties go in the order they were scheduled. */
class EventQueue {
  private readonly heap: Queued[] = []
  private seq = 0

  get size (): number { return this.heap.length }

  push (at: number, ev: SimEvent): void {
    const h = this.heap
    h.push({ at, seq: this.seq++, ev })
    let i = h.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (!this.less(h[i] as Queued, h[parent] as Queued)) break
      this.swap(i, parent)
      i = parent
    }
  }

  pop (): Queued | undefined {
    const h = this.heap
    const top = h[0]
    const last = h.pop()
    if (top === undefined || last === undefined || h.length === 0) return top
    h[0] = last
    let i = 0
    for (;;) {
      const l = 2 * i + 1
      const r = l + 1
      let m = i
      if (l < h.length && this.less(h[l] as Queued, h[m] as Queued)) m = l
      if (r < h.length && this.less(h[r] as Queued, h[m] as Queued)) m = r
      if (m === i) break
      this.swap(i, m)
      i = m
    }
    return top
  }

  private less (a: Queued, b: Queued): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq)
  }

  private swap (i: number, j: number): void {
    const t = this.heap[i] as Queued
    this.heap[i] = this.heap[j] as Queued
    this.heap[j] = t
  }
}

interface DecidedRecord {
  round: number
  value: SimValue
  certificate: Vote[]
  proposal: Proposal<SimValue> | undefined
}

interface HonestNode {
  index: number
  address: string
  alive: boolean
  /** Incremented at each crash: timeouts and values of an earlier life are ignored. */
  life: number
  machine: Machine<SimValue> | undefined
  /** Messages for later heights, deduplicated. */
  buffer: Map<number, Map<string, Envelope>>
  /** Proposals handed to the current machine, by `${round}/${id}`: what the catch-up answer resends. */
  proposalsSeen: Map<string, Proposal<SimValue>>
  lastHelp: Map<string, number>
  /** Messages already relayed (this life). */
  relayed: Set<string>
  tornPending: boolean
  /** The disk: survives crashes. */
  disk: { height: number, state: HeightState<SimValue> | undefined, decided: Map<number, DecidedRecord> }
}

class Stop extends Error {}

export class Simulation {
  readonly scenario: Scenario
  private readonly factory: MachineFactory<SimValue>
  private readonly traceMode: 'full' | 'tail' | 'off'
  private readonly tailLines: number
  private readonly filter: ((env: Envelope, now: number) => boolean) | undefined
  private readonly maxEvents: number
  private readonly certificate: '>2/3' | '>=2/3'

  private readonly rng: Rng
  private readonly queue = new EventQueue()
  private readonly validators: Validator[]
  private readonly addresses: string[]
  private readonly indexOf = new Map<string, number>()
  private readonly total: bigint
  private readonly schedule: (height: number, round: number) => string
  private readonly honest: number[]
  private readonly nodes = new Map<number, HonestNode>()
  private readonly agents = new Map<number, ByzantineAgent>()

  private now = 0
  private valueCounter = 0
  private readonly header: string[]
  private trace: string[] = []
  private traceStart = 0

  /** Every vote an honest validator ever broadcast: `${validator}/${h}/${r}/${type}` -> valueId. */
  private readonly honestVotes = new Map<string, string | null>()
  private readonly honestProposals = new Map<string, string>()
  /** Every vote a Byzantine validator sent: `${validator}/${h}/${r}/${type}/${valueId}`. */
  private readonly byzantineVotes = new Set<string>()
  private readonly byzantineProposals = new Set<string>()
  private readonly invalidIds = new Set<string>()
  private readonly agreed = new Map<number, { valueId: string, node: number }>()
  private readonly decisions: Decision[] = []
  private violation: Violation | undefined
  private readonly stats: SimResult['stats'] = { events: 0, handled: 0, sent: 0, dropped: 0, simulatedMs: 0, goodFromMs: 0, maxRound: 0, evidence: 0, crashes: 0 }
  private pendingRestarts = 0
  /** Torn crashes waiting for the node's next step with effects. */
  private readonly torn = new Map<number, { downMs: number, since: number }>()
  private crashesToCome: number
  private lastRecoveryMs = 0

  constructor (scenario: Scenario, opts: RunOptions = {}) {
    this.scenario = scenario
    this.factory = opts.machine ?? realMachine
    this.traceMode = opts.trace ?? 'tail'
    this.tailLines = opts.tailLines ?? 300
    this.filter = opts.filter
    this.maxEvents = opts.maxEvents ?? 3_000_000
    this.certificate = opts.certificate ?? '>2/3'
    this.rng = new Rng(scenario.seed)
    this.addresses = scenario.powers.map((_, i) => `val${i}`)
    this.validators = scenario.powers.map((power, i) => ({ address: this.addresses[i] as string, power }))
    this.addresses.forEach((a, i) => this.indexOf.set(a, i))
    this.total = scenario.powers.reduce((s, p) => s + p, 0n)
    this.schedule = proposerSchedule(this.validators)
    this.honest = this.addresses.map((_, i) => i).filter(i => scenario.byzantine[i] === undefined && opts.agents?.[i] === undefined)
    for (const [i, b] of Object.entries(scenario.byzantine)) this.agents.set(Number(i), builtinAgent(b))
    for (const [i, a] of Object.entries(opts.agents ?? {})) this.agents.set(Number(i), a)
    this.crashesToCome = scenario.crashes.filter(c => this.honest.includes(c.node)).length
    this.header = describeScenario(scenario)
    if (opts.agents !== undefined) this.header.push(`custom agents at [${Object.keys(opts.agents).join(',')}]`)
    if (opts.filter !== undefined) this.header.push('custom network filter')
  }

  // -- running

  run (): SimResult {
    const s = this.scenario
    for (const i of this.honest) {
      this.nodes.set(i, {
        index: i,
        address: this.addresses[i] as string,
        alive: true,
        life: 0,
        machine: undefined,
        buffer: new Map(),
        proposalsSeen: new Map(),
        lastHelp: new Map(),
        relayed: new Set(),
        tornPending: false,
        disk: { height: 1, state: undefined, decided: new Map() }
      })
    }
    try {
      for (const c of s.crashes) if (this.nodes.has(c.node)) this.queue.push(c.atMs, { k: 'crash', crash: c })
      for (let i = 0; i < this.addresses.length; i++) this.queue.push(this.rng.int(1, s.tickMs), { k: 'tick', node: i })
      for (const i of this.honest) this.enterHeight(this.nodes.get(i) as HonestNode, 1)
      this.loop()
    } catch (err) {
      if (!(err instanceof Stop)) {
        this.record('integrity', `simulation error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`)
      }
    }
    this.stats.simulatedMs = this.now
    const trace = this.traceMode === 'tail' && this.traceStart > 0
      ? [...this.header, `... (${this.traceStart} earlier lines omitted)`, ...this.trace]
      : [...this.header, ...this.trace]
    const result: SimResult = {
      ok: this.violation === undefined,
      seed: s.seed,
      scenario: s.name,
      trace,
      decisions: this.decisions,
      decided: this.addresses.map((_, i) => { const n = this.nodes.get(i); return n === undefined ? 0 : n.disk.height - 1 }),
      stats: this.stats
    }
    if (this.violation !== undefined) result.violation = this.violation
    return result
  }

  private loop (): void {
    const s = this.scenario
    const lastHeal = s.partitions.reduce((m, p) => Math.max(m, p.toMs), 0)
    for (;;) {
      if (this.allDone()) {
        this.log('all honest nodes decided every height')
        return
      }
      const recovered = this.crashesToCome === 0 && this.pendingRestarts === 0
      const goodFrom = Math.max(lastHeal, this.lastRecoveryMs, s.quietFromMs)
      this.stats.goodFromMs = goodFrom
      const deadline = recovered && s.expectLiveness ? Math.min(goodFrom + s.livenessMs, s.maxTimeMs) : s.maxTimeMs
      const next = this.queue.pop()
      if (next === undefined) {
        this.endWithoutProgress(`no event left at ${this.now}ms`)
        return
      }
      if (next.at > deadline) {
        this.now = deadline
        this.endWithoutProgress(`deadline ${deadline}ms reached (good period from ${goodFrom}ms)`)
        return
      }
      this.now = next.at
      if (++this.stats.events > this.maxEvents) {
        this.fail('liveness', `event budget of ${this.maxEvents} exhausted at ${this.now}ms`)
      }
      this.dispatch(next.ev)
    }
  }

  private endWithoutProgress (why: string): void {
    if (!this.scenario.expectLiveness) {
      this.log(`stop: ${why}`)
      return
    }
    const behind = this.honest.filter(i => (this.nodes.get(i) as HonestNode).disk.height <= this.scenario.heights)
      .map(i => { const n = this.nodes.get(i) as HonestNode; return `n${i}@h${n.disk.height}${n.machine !== undefined ? `r${n.machine.state.round}/${n.machine.state.step}` : ''}${n.alive ? '' : '(down)'}` })
    this.fail('liveness', `${why}; not done: ${behind.join(' ')}`)
  }

  private allDone (): boolean {
    for (const i of this.honest) if ((this.nodes.get(i) as HonestNode).disk.height <= this.scenario.heights) return false
    return true
  }

  private dispatch (ev: SimEvent): void {
    switch (ev.k) {
      case 'deliver': this.deliver(ev.env); break
      case 'tick': {
        this.queue.push(this.now + this.scenario.tickMs, ev)
        const agent = this.agents.get(ev.node)
        if (agent !== undefined) { agent.onTick(this.context(ev.node)); break }
        const n = this.nodes.get(ev.node)
        if (n === undefined || !n.alive) break
        const torn = this.torn.get(n.index)
        if (n.tornPending && torn !== undefined && (n.machine === undefined || this.now - torn.since > 3 * this.scenario.tickMs)) {
          // no step with effects came along: crash plainly
          this.crash(n, torn.downMs)
          break
        }
        if (n.machine !== undefined) this.feed(n, { kind: 'tick' })
        break
      }
      case 'timeout': {
        const n = this.nodes.get(ev.node)
        if (n === undefined || !n.alive || n.life !== ev.life || n.machine === undefined || n.disk.height !== ev.height) break
        this.feed(n, { kind: 'timeout', step: ev.step, round: ev.round })
        break
      }
      case 'value': {
        const n = this.nodes.get(ev.node)
        if (n === undefined || !n.alive || n.life !== ev.life || n.machine === undefined || n.disk.height !== ev.height) break
        const value: SimValue = deepFreeze({ height: ev.height, proposer: n.address, n: this.valueCounter++ })
        this.feed(n, { kind: 'value', round: ev.round, value })
        break
      }
      case 'crash': {
        const n = this.nodes.get(ev.crash.node)
        this.crashesToCome--
        if (n === undefined || !n.alive) break
        if (n.tornPending) {
          // a torn crash still waiting for its step: this one comes first
          n.tornPending = false
          this.pendingRestarts--
        }
        if (ev.crash.torn && n.machine !== undefined) {
          n.tornPending = true
          this.pendingRestarts++
          this.log(`n${n.index} will crash inside its next step (torn)`)
          this.torn.set(n.index, { downMs: ev.crash.downMs, since: this.now })
        } else {
          this.pendingRestarts++
          this.crash(n, ev.crash.downMs)
        }
        break
      }
      case 'restart': {
        const n = this.nodes.get(ev.node) as HonestNode
        this.pendingRestarts--
        this.lastRecoveryMs = this.now
        n.alive = true
        n.life++
        const h = n.disk.height
        this.log(`n${n.index} RESTART at h${h}${n.disk.state !== undefined ? ` from r${n.disk.state.round}/${n.disk.state.step} locked r${n.disk.state.lockedRound}` : ' (no state on disk)'}`)
        if (h <= this.scenario.heights) this.startMachine(n, h, n.disk.state)
        break
      }
    }
  }

  private crash (n: HonestNode, downMs: number): void {
    this.stats.crashes++
    n.alive = false
    n.life++
    n.machine = undefined
    n.buffer.clear()
    n.proposalsSeen.clear()
    n.lastHelp.clear()
    n.relayed.clear()
    n.tornPending = false
    this.log(`n${n.index} CRASH for ${downMs}ms (disk: h${n.disk.height}${n.disk.state !== undefined ? ` r${n.disk.state.round}/${n.disk.state.step}` : ''})`)
    this.queue.push(this.now + downMs, { k: 'restart', node: n.index })
  }

  // -- honest nodes

  private config (n: HonestNode, height: number): HeightConfig<SimValue> {
    return {
      height,
      validators: this.validators,
      self: n.address,
      timeouts: this.scenario.timeouts,
      proposer: round => this.schedule(height, round),
      idOf,
      isValid
    }
  }

  private enterHeight (n: HonestNode, height: number): void {
    n.disk.height = height
    n.disk.state = undefined
    if (height > this.scenario.heights) {
      n.machine = undefined
      n.buffer.clear()
      return
    }
    this.startMachine(n, height, undefined)
  }

  private startMachine (n: HonestNode, height: number, persisted: HeightState<SimValue> | undefined): void {
    n.proposalsSeen.clear()
    n.machine = this.factory(this.config(n, height), persisted === undefined ? undefined : structuredClone(persisted))
    this.feed(n, { kind: 'start' })
    // Messages that arrived early for this height, delivered now, in arrival order.
    const early = n.buffer.get(height)
    n.buffer.delete(height)
    for (const h of [...n.buffer.keys()]) if (h < height) n.buffer.delete(h)
    if (early !== undefined) {
      for (const env of early.values()) this.queue.push(this.now, { k: 'deliver', env })
    }
  }

  private deliver (env: Envelope): void {
    const agent = this.agents.get(env.to)
    if (agent !== undefined) {
      agent.onMessage(this.context(env.to), env.from, env.msg)
      return
    }
    const n = this.nodes.get(env.to)
    if (n === undefined || !n.alive) return
    const h = heightOf(env.msg)
    if (h < n.disk.height) {
      this.help(n, env.from, h)
      return
    }
    if (this.scenario.network.relay && env.from !== n.index && !env.help) {
      const key = msgKey(env.msg)
      if (!n.relayed.has(key)) {
        n.relayed.add(key)
        this.send(n.index, this.addresses.map((_, i) => i).filter(i => i !== n.index && i !== env.from), env.msg, false)
      }
    }
    if (h > n.disk.height) {
      if (h <= this.scenario.heights) {
        let m = n.buffer.get(h)
        if (m === undefined) { m = new Map(); n.buffer.set(h, m) }
        m.set(msgKey(env.msg), env)
      }
      return
    }
    if (n.machine === undefined) return
    if (env.msg.t === 'proposal') {
      const p = env.msg.proposal
      n.proposalsSeen.set(`${p.round}/${idOf(p.value)}`, p)
      this.feed(n, { kind: 'proposal', proposal: p }, env.from)
    } else {
      this.feed(n, { kind: 'vote', vote: env.msg.vote }, env.from)
    }
  }

  /** A decided node's catch-up answer: the decision's proposal and certificate, to the laggard only. */
  private help (n: HonestNode, to: number, height: number): void {
    if (to === n.index || !this.nodes.has(to)) return
    const rec = n.disk.decided.get(height)
    if (rec === undefined) return
    const k = `${to}/${height}`
    const last = n.lastHelp.get(k)
    if (last !== undefined && this.now - last < this.scenario.tickMs / 2) return
    n.lastHelp.set(k, this.now)
    this.log(`n${n.index} helps n${to} with h${height} (r${rec.round}, ${rec.certificate.length} precommits${rec.proposal === undefined ? ', no proposal known' : ''})`)
    if (rec.proposal !== undefined) this.send(n.index, [to], { t: 'proposal', proposal: rec.proposal }, true)
    for (const v of rec.certificate) this.send(n.index, [to], { t: 'vote', vote: v }, true)
  }

  private feed (n: HonestNode, event: ConsensusEvent<SimValue> | { kind: 'tick' }, from?: number): void {
    const machine = n.machine
    if (machine === undefined) return
    const height = n.disk.height
    this.stats.handled++
    let effects: Array<ConsensusEffect<SimValue>>
    try {
      effects = machine.handle(event)
    } catch (err) {
      this.fail('integrity', `n${n.index} h${height}: handle(${showEvent(event)}) threw: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`)
    }
    if (this.traceMode !== 'off' && (effects.length > 0 || event.kind !== 'tick')) {
      this.log(`n${n.index} h${height} <- ${from !== undefined ? `n${from} ` : ''}${showEvent(event)}${effects.length === 0 ? '' : ` => ${effects.length} effect(s)`}`)
    }
    if (effects.length === 0) return
    if (n.tornPending) {
      this.log(`n${n.index} dies inside the step (torn): ${effects.length} effect(s) neither persisted nor performed`)
      this.crash(n, this.torn.get(n.index)?.downMs ?? 1000)
      return
    }
    // The disk, before anything leaves the node.
    n.disk.state = machine.state
    if (n.disk.state.height !== height) this.fail('integrity', `n${n.index}: state.height ${n.disk.state.height} in the machine of height ${height}`)
    this.stats.maxRound = Math.max(this.stats.maxRound, n.disk.state.round)
    let decided: DecidedRecord | undefined
    for (const e of effects) {
      if (this.traceMode !== 'off') this.log(`  n${n.index} ${showEffect(e)}`)
      switch (e.kind) {
        case 'broadcast-proposal': {
          // a frozen copy goes on the wire; the machine keeps its own object as it likes
          const p = deepFreeze(structuredClone(e.proposal))
          this.checkOwnProposal(n, height, p)
          n.proposalsSeen.set(`${p.round}/${idOf(p.value)}`, p)
          this.broadcast(n.index, { t: 'proposal', proposal: p })
          break
        }
        case 'broadcast-vote': {
          const v = deepFreeze(structuredClone(e.vote))
          this.checkOwnVote(n, height, v)
          this.broadcast(n.index, { t: 'vote', vote: v })
          break
        }
        case 'schedule-timeout':
          if (!(e.ms >= 0) || !Number.isFinite(e.ms)) this.fail('integrity', `n${n.index}: timeout of ${e.ms}ms`)
          this.queue.push(this.now + e.ms, { k: 'timeout', node: n.index, life: n.life, height, step: e.step, round: e.round })
          break
        case 'request-value':
          this.queue.push(this.now, { k: 'value', node: n.index, life: n.life, height, round: e.round })
          break
        case 'evidence':
          this.checkEvidence(n, height, e.first, e.second)
          break
        case 'decide':
          if (decided !== undefined) this.fail('integrity', `n${n.index} h${height}: two decide effects in one step`)
          decided = this.checkDecision(n, height, e.round, e.value, e.certificate)
          break
      }
    }
    if (decided !== undefined) {
      n.disk.decided.set(height, decided)
      this.enterHeight(n, height + 1)
    }
  }

  // -- invariants

  private record (invariant: Invariant, message: string): void {
    this.violation = { invariant, message, timeMs: this.now }
    this.log(`VIOLATION ${invariant}: ${message}`)
  }

  /** Records the violation and ends the run. */
  private fail (invariant: Invariant, message: string): never {
    this.record(invariant, message)
    throw new Stop(message)
  }

  private checkOwnVote (n: HonestNode, height: number, v: Vote): void {
    if (v.validator !== n.address) {
      // Relaying another validator's vote is fine, forging one is not.
      if (!this.wasSigned(v)) this.fail('integrity', `n${n.index} broadcast a vote ${v.validator} never signed: ${showMsg({ t: 'vote', vote: v })}`)
      return
    }
    if (v.height !== height) this.fail('integrity', `n${n.index} at h${height} broadcast a vote for h${v.height}`)
    if (v.valueId !== null && this.invalidIds.has(v.valueId)) this.fail('validity', `honest n${n.index} ${v.type}s the invalid value ${v.valueId} in r${v.round}`)
    const k = `${v.validator}/${v.height}/${v.round}/${v.type}`
    const before = this.honestVotes.get(k)
    if (before === undefined) this.honestVotes.set(k, v.valueId)
    else if (before !== v.valueId) this.fail('double-vote', `honest n${n.index} signed two ${v.type}s for h${v.height} r${v.round}: ${before ?? 'nil'} then ${v.valueId ?? 'nil'}`)
  }

  private wasSigned (v: Vote): boolean {
    const i = this.indexOf.get(v.validator)
    if (i === undefined) return false
    return this.nodes.has(i)
      ? this.honestVotes.get(`${v.validator}/${v.height}/${v.round}/${v.type}`) === v.valueId
      : this.byzantineVotes.has(`${v.validator}/${v.height}/${v.round}/${v.type}/${v.valueId ?? 'nil'}`)
  }

  private checkOwnProposal (n: HonestNode, height: number, p: Proposal<SimValue>): void {
    if (p.proposer !== n.address) {
      const k = `${p.proposer}/${p.height}/${p.round}`
      if (this.honestProposals.get(k) !== idOf(p.value) && !this.byzantineProposals.has(`${k}/${idOf(p.value)}`)) {
        this.fail('integrity', `n${n.index} broadcast a proposal ${p.proposer} never made: ${showMsg({ t: 'proposal', proposal: p })}`)
      }
      return
    }
    if (p.height !== height) this.fail('integrity', `n${n.index} at h${height} broadcast a proposal for h${p.height}`)
    if (this.schedule(p.height, p.round) !== n.address) this.fail('integrity', `n${n.index} proposed in h${p.height} r${p.round}, whose proposer is ${this.schedule(p.height, p.round)}`)
    if (!isValid(p.value)) this.fail('validity', `honest n${n.index} proposed an invalid value`)
    const k = `${p.proposer}/${p.height}/${p.round}`
    const id = idOf(p.value)
    const before = this.honestProposals.get(k)
    if (before === undefined) this.honestProposals.set(k, id)
    else if (before !== id) this.fail('double-vote', `honest n${n.index} proposed two values for h${p.height} r${p.round}: ${before} then ${id}`)
  }

  private checkEvidence (n: HonestNode, height: number, a: Vote, b: Vote): void {
    this.stats.evidence++
    const same = a.validator === b.validator && a.type === b.type && a.height === b.height && a.round === b.round && a.height === height
    if (!same || a.valueId === b.valueId) this.fail('integrity', `n${n.index}: malformed evidence ${JSON.stringify(a)} / ${JSON.stringify(b)}`)
    const who = this.indexOf.get(a.validator)
    if (who !== undefined && this.nodes.has(who)) this.fail('integrity', `n${n.index}: evidence against honest ${a.validator} (it never double-signed)`)
  }

  private checkDecision (n: HonestNode, height: number, round: number, value: SimValue, certificate: Vote[]): DecidedRecord {
    const id = idOf(value)
    const where = `n${n.index} decided h${height} r${round} ${id}`
    if (value.height !== height) this.fail('validity', `${where}: a value built for h${value.height}`)
    if (!isValid(value)) this.fail('validity', `${where}: the value is invalid`)
    const seen = new Set<string>()
    let power = 0n
    for (const v of certificate) {
      if (v.type !== 'precommit' || v.height !== height || v.round !== round || v.valueId !== id) {
        this.fail('validity', `${where}: certificate holds ${showMsg({ t: 'vote', vote: v })}`)
      }
      const i = this.indexOf.get(v.validator)
      if (i === undefined) this.fail('validity', `${where}: certificate vote from unknown ${v.validator}`)
      if (seen.has(v.validator)) this.fail('validity', `${where}: certificate counts ${v.validator} twice`)
      seen.add(v.validator)
      if (!this.wasSigned(v)) this.fail('validity', `${where}: certificate holds a precommit ${v.validator} never signed`)
      power += this.scenario.powers[i] as bigint
    }
    const enough = this.certificate === '>2/3' ? 3n * power > 2n * this.total : 3n * power >= 2n * this.total
    if (!enough) this.fail('validity', `${where}: certificate power ${power} of ${this.total} is not ${this.certificate}`)
    const d = n.machine?.decision
    if (d === undefined || d.round !== round || idOf(d.value) !== id) this.fail('integrity', `${where}: machine.decision is ${d === undefined ? 'undefined' : `r${d.round} ${idOf(d.value)}`}`)
    const prior = this.agreed.get(height)
    if (prior === undefined) this.agreed.set(height, { valueId: id, node: n.index })
    else if (prior.valueId !== id) this.fail('agreement', `${where}, but n${prior.node} decided ${prior.valueId}`)
    this.decisions.push({ node: n.index, height, round, valueId: id, timeMs: this.now })
    const proposal = n.proposalsSeen.get(`${round}/${id}`) ?? [...n.proposalsSeen.values()].find(p => idOf(p.value) === id)
    return { round, value, certificate: certificate.map(v => deepFreeze({ ...v })), proposal }
  }

  // -- the network

  private broadcast (from: number, msg: Msg): void {
    this.send(from, this.addresses.map((_, i) => i), msg, false)
  }

  private separated (a: number, b: number): boolean {
    for (const p of this.scenario.partitions) {
      if (this.now >= p.fromMs && this.now < p.toMs && p.side.includes(a) !== p.side.includes(b)) return true
    }
    return false
  }

  private send (from: number, to: readonly number[], msg: Msg, help: boolean): void {
    const net = this.scenario.network
    for (const t of to) {
      this.stats.sent++
      const env: Envelope = { from, to: t, msg, help }
      if (t === from) {
        this.queue.push(this.now, { k: 'deliver', env })
        continue
      }
      if (this.separated(from, t) || this.rng.chance(net.loss) || (this.filter !== undefined && !this.filter(env, this.now))) {
        this.stats.dropped++
        continue
      }
      const copies = this.rng.chance(net.duplicate) ? 2 : 1
      for (let c = 0; c < copies; c++) {
        let delay = net.minDelayMs + this.rng.float() * (net.maxDelayMs - net.minDelayMs)
        if (this.rng.chance(net.spike)) delay += this.rng.float() * net.spikeMs
        this.queue.push(this.now + Math.round(delay), { k: 'deliver', env })
      }
    }
  }

  // -- the adversary's view

  private context (self: number): AdversaryContext {
    const me = this.addresses[self] as string
    return {
      now: this.now,
      self,
      addresses: this.addresses,
      honest: this.honest,
      heights: this.scenario.heights,
      proposer: (h, r) => this.schedule(h, r),
      positions: () => {
        const out: Array<{ node: number, height: number, round: number }> = []
        for (const i of this.honest) {
          const n = this.nodes.get(i) as HonestNode
          if (n.alive && n.machine !== undefined) out.push({ node: i, height: n.disk.height, round: n.machine.state.round })
        }
        return out
      },
      send: (to, msg) => {
        const frozen = deepFreeze(msg)
        if (frozen.t === 'vote') {
          const v = frozen.vote
          this.byzantineVotes.add(`${v.validator}/${v.height}/${v.round}/${v.type}/${v.valueId ?? 'nil'}`)
        } else {
          const p = frozen.proposal
          this.byzantineProposals.add(`${p.proposer}/${p.height}/${p.round}/${idOf(p.value)}`)
        }
        if (this.traceMode !== 'off') this.log(`  b${self} sends ${showMsg(frozen)} to [${to.join(',')}]`)
        this.send(self, to, frozen, false)
      },
      freshValue: (height, invalid) => {
        const v: SimValue = { height, proposer: me, n: this.valueCounter++ }
        if (invalid === true) { v.invalid = true; this.invalidIds.add(idOf(v)) }
        return deepFreeze(v)
      },
      rng: this.rng,
      log: line => this.log(`  b${self} ${line}`)
    }
  }

  private log (line: string): void {
    if (this.traceMode === 'off') return
    this.trace.push(`${String(this.now).padStart(7)} ${line}`)
    if (this.traceMode === 'tail' && this.trace.length > 2 * this.tailLines) {
      this.traceStart += this.trace.length - this.tailLines
      this.trace = this.trace.slice(-this.tailLines)
    }
  }
}

export function runScenario (scenario: Scenario, opts: RunOptions = {}): SimResult {
  return new Simulation(scenario, opts).run()
}

// -- the lock attack -------------------------------------------------------------------

/**
 * The classic attack on Tendermint's locking, staged precisely. Four equal validators, one
 * Byzantine (D); honest A, B, C. Height 1:
 *  - round 0: the proposal reaches A and B but never C. D prevotes it to A and B only, so A
 *    and B see > 2/3 prevotes, lock it and precommit it; D precommits it to A only, so A
 *    decides it and B does not (2 of 4 precommits). C prevotes and precommits nil.
 *  - after deciding, A is cut off (its later messages and its catch-up answers are dropped)
 *    until `healMs`.
 *  - rounds >= 1: when C (unlocked, no valid value) or D proposes a new value, D prevotes and
 *    precommits it. A correct B, locked, prevotes nil: only 2 of 4 prevote the new value,
 *    nothing is decided until the heal, when A's catch-up answer makes B and C decide A's
 *    value. A B that forgets its lock prevotes the new value: 3 of 4, and B and C decide a
 *    value different from A's.
 * The seed picks the roles (among those that fit the proposer schedule) and the delays.
 */
export function lockAttack (seed: number, healMs = 60_000): { scenario: Scenario, options: RunOptions, roles: { a: number, b: number, c: number, d: number } } {
  const rng = new Rng(seed ^ 0x10c4a77a)
  const d = 3
  const scenario: Scenario = {
    ...calmScenario(seed, [10, 10, 10, 10], 1),
    name: 'lock-attack',
    // No relay: before the heal, the adversary decides who gets what.
    network: { loss: 0, duplicate: rng.float() * 0.2, minDelayMs: rng.int(1, 10), maxDelayMs: rng.int(20, 120), spike: 0, spikeMs: 0, relay: false },
    quietFromMs: healMs
  }
  const addresses = [0, 1, 2, 3].map(i => `val${i}`)
  const schedule = proposerSchedule(addresses.map(address => ({ address, power: 10n })))
  const p0 = addresses.indexOf(schedule(1, 0))
  const cs = [0, 1, 2].filter(i => i !== p0)
  const c = rng.pick(cs)
  const [a, b] = rng.shuffle([0, 1, 2].filter(i => i !== c)) as [number, number]
  const roles = { a, b, c, d }
  scenario.name = `lock-attack (A=n${a} B=n${b} C=n${c} D=n${d})`
  const agent = new LockAttacker(roles)
  const filter = (env: Envelope, now: number): boolean => {
    if (now >= healMs) return true
    const h = heightOf(env.msg)
    // C never learns round 0's proposal.
    if (env.to === c && env.msg.t === 'proposal' && h === 1 && env.msg.proposal.round === 0) return false
    // No catch-up answers, and nothing from A once it moved past height 1.
    if (env.help) return false
    if (env.from === a && h > 1) return false
    return true
  }
  return { scenario, options: { agents: { [d]: agent }, filter }, roles }
}

class LockAttacker implements ByzantineAgent {
  private readonly roles: { a: number, b: number, c: number, d: number }
  private first: SimValue | undefined
  private readonly voted = new Map<number, string | null>()
  private readonly mine = new Map<number, SimValue>()

  constructor (roles: { a: number, b: number, c: number, d: number }) {
    this.roles = roles
  }

  onMessage (ctx: AdversaryContext, _from: number, msg: Msg): void {
    if (msg.t !== 'proposal' || msg.proposal.height !== 1) return
    const p = msg.proposal
    if (p.proposer !== ctx.proposer(1, p.round)) return
    if (p.round === 0) this.roundZero(ctx, p.value)
    else if (this.first === undefined || idOf(p.value) !== idOf(this.first)) this.support(ctx, p.round, idOf(p.value))
  }

  onTick (ctx: AdversaryContext): void {
    const me = ctx.addresses[ctx.self] as string
    const { a, b } = this.roles
    if (ctx.proposer(1, 0) === me && this.first === undefined) {
      const v = ctx.freshValue(1)
      ctx.send([a, b], { t: 'proposal', proposal: { height: 1, round: 0, value: v, validRound: -1, proposer: me } })
      this.roundZero(ctx, v)
    } else if (this.first !== undefined) {
      this.roundZero(ctx, this.first)
    }
    for (const { height, round } of activeRounds(ctx)) {
      if (height !== 1 || round === 0) continue
      const proposer = ctx.proposer(1, round)
      if (proposer === me) {
        let v = this.mine.get(round)
        if (v === undefined) { v = ctx.freshValue(1); this.mine.set(round, v) }
        ctx.send(ctx.honest, { t: 'proposal', proposal: { height: 1, round, value: v, validRound: -1, proposer: me } })
        this.support(ctx, round, idOf(v))
      } else if (proposer === ctx.addresses[this.roles.c]) {
        const id = this.voted.get(round)
        if (id !== undefined) this.support(ctx, round, id)
      } else {
        // A's rounds (A is gone) and B's (B re-proposes its locked value): nil, so the rounds move on.
        this.support(ctx, round, null)
      }
    }
  }

  private roundZero (ctx: AdversaryContext, v: SimValue): void {
    const me = ctx.addresses[ctx.self] as string
    const { a, b } = this.roles
    if (this.first === undefined) ctx.log(`round 0 value is ${idOf(v)}: prevote to A,B, precommit to A`)
    this.first = v
    ctx.send([a, b], vote('prevote', 1, 0, idOf(v), me))
    ctx.send([a], vote('precommit', 1, 0, idOf(v), me))
  }

  private support (ctx: AdversaryContext, round: number, id: string | null): void {
    const before = this.voted.get(round)
    if (before !== undefined && before !== id) return
    this.voted.set(round, id)
    const me = ctx.addresses[ctx.self] as string
    ctx.send(ctx.honest, vote('prevote', 1, round, id, me))
    ctx.send(ctx.honest, vote('precommit', 1, round, id, me))
  }
}
