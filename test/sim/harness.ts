/**
 * Deterministic simulation of the node's consensus: N validators in one process, a
 * discrete-event scheduler over simulated time, a network that loses, duplicates, delays
 * (so reorders) and partitions messages, nodes that crash (some torn in the middle of a
 * batch of effects) and restart from their disk, and Byzantine validators that are not
 * drivers but an adversary constructing signed messages directly.
 *
 * Honest nodes run the node's own `ConsensusDriver` (src/consensus/driver.ts) on real
 * versions (test/sim/world.ts), and this file executes its effects as
 * node/services/consensus/datanet-consensus.ts does: in order, `persist` written to the
 * node's disk before the next effect, `validate` answered from the value's real validity
 * (the node's rules), `request-value` answered with a value built on the agreed parent,
 * `decide` finalizing atomically (the decision kept, the height advanced, the consensus
 * record dropped). Messages are checked before they reach the driver as the node's gossip
 * validator checks them (the proposer's signature, `voteOfWire` and the voter's), relayed
 * once per message (gossipsub), and a node that receives a message for a height it has
 * decided answers the laggard with the final value and its certificate (version sync),
 * which the laggard checks before adopting it. Everything is derived from a seed: the
 * same seed gives the same run, event for event.
 *
 * Invariants, checked as the run goes (the first violation ends it):
 *  - agreement: no two honest nodes decide (or adopt) different versions at one height;
 *  - validity: a decided version passes the node's rules against the agreed parent
 *    (shape, every contribution's accept certificate under the height's set, roots), and
 *    its certificate is the contract's: precommit signatures over exactly its header,
 *    from distinct members holding >= 2/3 of the stake; an honest node never votes for or
 *    proposes an invalid value;
 *  - double-vote: an honest validator never sends two different votes (headers) for one
 *    (height, round, type), nor two proposals for one (height, round), across any crash;
 *  - integrity: relayed votes are really signed by their validator, evidence is only of
 *    real double votes by Byzantine validators, effects are well-formed;
 *  - bounded: the driver's state (stats()) stays under a bound set by the default limits
 *    and the round it is in, whatever a Byzantine validator sends;
 *  - liveness (when the scenario expects it): once the last partition healed and the last
 *    crashed node restarted, every honest node decides every height in bounded time.
 */
import { ConsensusDriver, defaultDriverLimits, type CertificateEntry, type DriverEffect, type DriverInbound, type DriverLimits, type DriverOptions, type DriverStats, type HeightSetup } from '../../src/consensus/driver.ts'
import { proposerSchedule, timeoutsForWork } from '../../src/consensus/machine.ts'
import { certificateProblem } from '../../src/consensus/certificate.ts'
import { headerOf, nilHeader, type SignedVote, type VersionHeader, type VersionValue } from '../../src/consensus/version.ts'
import { valueIdOf, voteOfWire } from '../../src/consensus/wire.ts'
import { fromHex } from '../../src/codec/hash.ts'
import type { HeightState, TimeoutConfig, Validator, VoteType } from '../../src/consensus/types.ts'
import { World, headerKey, proposalMessage, simAddress, valueOfBytes, voteMessage, type Spoil } from './world.ts'

// -- drivers ---------------------------------------------------------------------------

/** The surface of ConsensusDriver the simulator drives (so a test can wrap it with a broken one). */
export interface DriverLike {
  readonly height: number
  readonly isOpen: boolean
  readonly state: HeightState<VersionValue> | undefined
  moveTo: (height: number) => void
  open: (setup: HeightSetup, persisted?: HeightState<VersionValue>) => DriverEffect[]
  receive: (msg: DriverInbound) => DriverEffect[]
  validated: (value: VersionValue, ok: boolean, lasting?: boolean) => DriverEffect[]
  value: (round: number, value: VersionValue) => DriverEffect[]
  timeout: (height: number, step: 'propose' | 'prevote' | 'precommit', round: number) => DriverEffect[]
  tick: () => DriverEffect[]
  stats: () => DriverStats
}

export type DriverFactory = (opts: DriverOptions) => DriverLike

export const realDriver: DriverFactory = opts => new ConsensusDriver(opts)

/** Delegates everything; broken variants override what they break. */
class Delegate implements DriverLike {
  protected d: DriverLike
  constructor (d: DriverLike) { this.d = d }
  get height (): number { return this.d.height }
  get isOpen (): boolean { return this.d.isOpen }
  get state (): HeightState<VersionValue> | undefined { return this.d.state }
  moveTo (height: number): void { this.d.moveTo(height) }
  open (setup: HeightSetup, persisted?: HeightState<VersionValue>): DriverEffect[] { return this.d.open(setup, persisted) }
  receive (msg: DriverInbound): DriverEffect[] { return this.d.receive(msg) }
  validated (value: VersionValue, ok: boolean, lasting = true): DriverEffect[] { return this.d.validated(value, ok, lasting) }
  value (round: number, value: VersionValue): DriverEffect[] { return this.d.value(round, value) }
  timeout (height: number, step: 'propose' | 'prevote' | 'precommit', round: number): DriverEffect[] { return this.d.timeout(height, step, round) }
  tick (): DriverEffect[] { return this.d.tick() }
  stats (): DriverStats { return this.d.stats() }
}

/**
 * Broken: when a proposal arrives while locked, it forgets its lock. The driver has no
 * setter, so the wrapper rebuilds it from its own state with the lock cleared and feeds
 * it again every validity answer and message of the height, then the proposal. It keeps
 * its signed votes (it never double-signs): it only prevotes what a locked node must not.
 */
export function lockForgetting (base: DriverFactory = realDriver): DriverFactory {
  return opts => new LockForgetting(base, opts)
}

class LockForgetting extends Delegate {
  private readonly base: DriverFactory
  private readonly opts: DriverOptions
  private setup: HeightSetup | undefined
  private received: DriverInbound[] = []
  private answers: Array<[VersionValue, boolean, boolean]> = []

  constructor (base: DriverFactory, opts: DriverOptions) {
    super(base(opts))
    this.base = base
    this.opts = opts
  }

  override moveTo (height: number): void { this.received = []; this.answers = []; this.setup = undefined; super.moveTo(height) }
  override open (setup: HeightSetup, persisted?: HeightState<VersionValue>): DriverEffect[] { this.setup = setup; return super.open(setup, persisted) }
  override validated (value: VersionValue, ok: boolean, lasting = true): DriverEffect[] { this.answers.push([value, ok, lasting]); return super.validated(value, ok, lasting) }

  override receive (msg: DriverInbound): DriverEffect[] {
    const out: DriverEffect[] = []
    const s = this.d.state
    const height = msg.kind === 'proposal' ? msg.proposal.height : msg.vote.vote.height
    if (msg.kind === 'proposal' && this.setup !== undefined && s !== undefined && s.lockedRound !== -1 && s.step !== 'decided' && height === this.d.height) {
      const d = this.base(this.opts)
      d.moveTo(this.d.height)
      out.push(...d.open(this.setup, { ...s, lockedRound: -1, lockedValue: null }))
      for (const [v, ok, lasting] of this.answers) out.push(...d.validated(v, ok, lasting))
      for (const m of this.received) out.push(...d.receive(m))
      this.d = d
    }
    if (height === this.d.height) this.received.push(msg)
    out.push(...this.d.receive(msg))
    return out
  }
}

/**
 * Broken as main was before votes named whole headers: a vote counts for the value whose
 * version id its header carries, whatever its other fields say.
 */
export const byVersionId: DriverFactory = opts => new ByVersionId(realDriver(opts))

class ByVersionId extends Delegate {
  private readonly known = new Map<string, VersionValue>()
  override value (round: number, value: VersionValue): DriverEffect[] { this.known.set(value.id, value); return super.value(round, value) }
  override receive (msg: DriverInbound): DriverEffect[] {
    if (msg.kind === 'proposal') this.known.set(msg.proposal.value.id, msg.proposal.value)
    if (msg.kind === 'vote' && msg.vote.vote.valueId !== null) {
      const v = this.known.get(msg.vote.header.version)
      if (v !== undefined) return super.receive({ ...msg, vote: { ...msg.vote, vote: { ...msg.vote.vote, valueId: valueIdOf(v) } } })
    }
    return super.receive(msg)
  }
}

/** Broken: the driver's bounds lifted (every limit infinite). */
export const unbounded: DriverFactory = opts => new ConsensusDriver({ ...opts, limits: { maxAhead: Infinity, futureMessagesPerSender: Infinity, futureBytesPerHeight: Infinity, futureRounds: Infinity } })

/**
 * Broken: takes a proposal's validRound at its word, as if the prevotes it claims had
 * been seen (it feeds the driver a prevote for the value in that round from every
 * validator, and keeps those made-up votes to itself: never sent, never evidence).
 */
export const trustValidRound: DriverFactory = opts => new Rewriting(new TrustValidRound(realDriver(opts)), effects => effects.filter(e =>
  !(e.kind === 'send-vote' && e.vote.signature === MADE_UP) && !(e.kind === 'evidence' && (e.first.signature === MADE_UP || e.second.signature === MADE_UP))))

const MADE_UP = '0x'

class TrustValidRound extends Delegate {
  private validators: readonly Validator[] = []
  private readonly claimed = new Set<string>()
  override moveTo (height: number): void { this.claimed.clear(); super.moveTo(height) }
  override open (setup: HeightSetup, persisted?: HeightState<VersionValue>): DriverEffect[] { this.validators = setup.validators; return super.open(setup, persisted) }
  override receive (msg: DriverInbound): DriverEffect[] {
    const out: DriverEffect[] = []
    if (msg.kind === 'proposal' && msg.proposal.validRound >= 0 && msg.proposal.height === this.d.height) {
      const p = msg.proposal
      const header = headerOf(p.value)
      for (const v of this.validators) {
        const k = `${p.validRound}/${v.address.toLowerCase()}/${p.value.id}`
        if (this.claimed.has(k)) continue
        this.claimed.add(k)
        const vote = { type: 'prevote' as const, height: p.height, round: p.validRound, valueId: valueIdOf(p.value), validator: v.address }
        out.push(...super.receive({ kind: 'vote', vote: { vote, header, signature: MADE_UP }, bytes: 600 }))
      }
    }
    out.push(...super.receive(msg))
    return out
  }
}

/** Wraps a driver, rewriting the effects it returns (for tests of the invariants). */
export function rewriting (base: DriverFactory, rewrite: (effects: DriverEffect[], height: number) => DriverEffect[]): DriverFactory {
  return opts => new Rewriting(base(opts), rewrite)
}

class Rewriting extends Delegate {
  private readonly rewrite: (effects: DriverEffect[], height: number) => DriverEffect[]
  constructor (d: DriverLike, rewrite: (effects: DriverEffect[], height: number) => DriverEffect[]) { super(d); this.rewrite = rewrite }
  private r (effects: DriverEffect[]): DriverEffect[] { return this.rewrite(effects, this.d.height) }
  override open (setup: HeightSetup, persisted?: HeightState<VersionValue>): DriverEffect[] { return this.r(super.open(setup, persisted)) }
  override receive (msg: DriverInbound): DriverEffect[] { return this.r(super.receive(msg)) }
  override validated (value: VersionValue, ok: boolean, lasting = true): DriverEffect[] { return this.r(super.validated(value, ok, lasting)) }
  override value (round: number, value: VersionValue): DriverEffect[] { return this.r(super.value(round, value)) }
  override timeout (height: number, step: 'propose' | 'prevote' | 'precommit', round: number): DriverEffect[] { return this.r(super.timeout(height, step, round)) }
  override tick (): DriverEffect[] { return this.r(super.tick()) }
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

export type Behaviour = 'silent' | 'equivocate' | 'invalid' | 'bogus-header' | 'flood'

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
  /** Torn: the node dies inside its next batch of effects, before one of them drawn at random (the persist, a send, ...). */
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
  /**
   * The records each height's version appends (as the node counts its accepted contributions
   * waiting); a proposer takes `buildMsPerRecord` ms a record to build its value.
   */
  work?: { records: number, buildMsPerRecord: number }
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
    tickMs: 2000,
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
 * < 1/3) silent, equivocating, proposing invalid values or voting with bogus headers; loss up to 30%, duplication,
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
    byzantine[i] = opts.attack === true ? 'equivocate' : rng.pick(['silent', 'equivocate', 'invalid', 'bogus-header'] as const)
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
  if (s.work !== undefined) lines.push(`work ${s.work.records} records a height, built at ${s.work.buildMsPerRecord} ms a record`)
  return lines
}

// -- messages --------------------------------------------------------------------------

/** What travels: signed proposals and votes as on the wire, and a version sync answer. */
export type Msg =
  | { t: 'proposal', height: number, round: number, validRound: number, value: VersionValue, signature: string }
  | { t: 'vote', type: VoteType, round: number, header: VersionHeader, signature: string }
  | { t: 'final', height: number, round: number, value: VersionValue, certificate: CertificateEntry[] }

export interface Envelope {
  from: number
  to: number
  msg: Msg
  /** A decided node's catch-up answer to a laggard. */
  help: boolean
}

export function heightOf (m: Msg): number {
  return m.t === 'vote' ? m.header.height : m.height
}

const short = (id: string): string => id.slice(2, 10)

export function showMsg (m: Msg): string {
  switch (m.t) {
    case 'proposal': return `proposal h${m.height} r${m.round} ${short(m.value.id)} vr${m.validRound}`
    case 'vote': return `${m.type} h${m.header.height} r${m.round} ${m.header.version === nilHeader(0).version ? 'nil' : short(m.header.version)}${m.header.version !== nilHeader(0).version ? `#${m.header.recordCount}` : ''}`
    case 'final': return `final h${m.height} r${m.round} ${short(m.value.id)} (${m.certificate.length} precommits)`
  }
}

function showEffect (e: DriverEffect): string {
  switch (e.kind) {
    case 'persist': return `persist r${e.state.round}/${e.state.step} locked r${e.state.lockedRound}`
    case 'send-proposal': return `send proposal r${e.proposal.round} ${short(e.proposal.value.id)} vr${e.proposal.validRound}`
    case 'send-vote': return `send ${e.vote.vote.type} r${e.vote.vote.round} ${e.vote.vote.valueId === null ? 'nil' : short(e.vote.header.version)} by ${short(e.vote.vote.validator)}`
    case 'schedule-timeout': return `timeout ${e.step} r${e.round} +${e.ms}ms`
    case 'request-value': return `request-value r${e.round}`
    case 'validate': return `validate ${short(e.value.id)}`
    case 'decide': return `DECIDE r${e.round} ${short(e.value.id)} (${e.certificate.length} precommits)`
    case 'evidence': return `evidence ${short(e.first.vote.validator)} ${e.first.vote.type} r${e.first.vote.round}`
    case 'proposal-evidence': return `proposal-evidence ${short(e.proposer)} r${e.round}`
    case 'behind': return `behind (h${e.height} seen)`
  }
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
  /** The (height, round) each live honest node is in, if it has a height open. */
  positions: () => Array<{ node: number, height: number, round: number }>
  send: (to: readonly number[], msg: Msg) => void
  /** A value by this validator on the agreed parent (spoiled if asked); undefined while the parent is undecided. */
  build: (height: number, spoil?: Spoil) => VersionValue | undefined
  junk: (height: number) => VersionValue
  /** This validator's signed proposal. */
  proposal: (height: number, round: number, validRound: number, value: VersionValue) => Msg
  /** This validator's signed vote for a value (its header, unless another is given) or nil. */
  vote: (type: VoteType, height: number, round: number, value: VersionValue | null, header?: VersionHeader) => Msg
  rng: Rng
  log: (line: string) => void
}

export interface ByzantineAgent {
  onMessage: (ctx: AdversaryContext, from: number, msg: Msg) => void
  onTick: (ctx: AdversaryContext) => void
  /** An honest node opened `height` (the adversary sees everything). */
  onOpen?: (ctx: AdversaryContext, height: number) => void
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

/** The proposals an agent heard from the scheduled proposers, by (height, round). */
class Heard {
  readonly byRound = new Map<string, VersionValue[]>()
  add (ctx: AdversaryContext, msg: Msg): { height: number, round: number } | undefined {
    if (msg.t !== 'proposal') return undefined
    const k = `${msg.height}/${msg.round}`
    const list = this.byRound.get(k) ?? []
    if (list.some(v => v.id === msg.value.id)) return undefined
    list.push(msg.value)
    this.byRound.set(k, list)
    return { height: msg.height, round: msg.round }
  }

  get (height: number, round: number): VersionValue[] { return this.byRound.get(`${height}/${round}`) ?? [] }
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
  private readonly heard = new Heard()
  private readonly plans = new Map<string, { split: Set<number>, a: Msg[], b: Msg[], voted: boolean }>()

  onMessage (ctx: AdversaryContext, _from: number, msg: Msg): void {
    const at = this.heard.add(ctx, msg)
    if (at !== undefined) this.act(ctx, at.height, at.round)
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
        const x = ctx.build(height)
        const y = ctx.build(height)
        if (x === undefined || y === undefined) return
        this.heard.byRound.set(k, [x, y])
        plan = { split, a: [ctx.proposal(height, round, -1, x)], b: [ctx.proposal(height, round, -1, y)], voted: false }
      } else {
        if (this.heard.get(height, round).length === 0) return
        plan = { split, a: [], b: [], voted: false }
      }
      this.plans.set(k, plan)
    }
    const values = this.heard.get(height, round)
    const first = values[0]
    if (!plan.voted && first !== undefined) {
      plan.voted = true
      for (const type of ['prevote', 'precommit'] as const) {
        plan.a.push(ctx.vote(type, height, round, first))
        plan.b.push(ctx.vote(type, height, round, values[1] ?? null))
      }
    }
    const a = ctx.honest.filter(i => plan.split.has(i))
    const b = ctx.honest.filter(i => !plan.split.has(i))
    for (const m of plan.a) ctx.send(a, m)
    for (const m of plan.b) ctx.send(b, m)
  }
}

/**
 * Proposes invalid values when it is the proposer (invalid roots, an accept certificate
 * under 2/3, or one counting a departed validator's verdict, in turn) and votes for them;
 * otherwise votes nil.
 */
class InvalidProposerAgent implements ByzantineAgent {
  private readonly made = new Map<string, VersionValue>()
  private count = 0

  onOpen (ctx: AdversaryContext, height: number): void {
    if (ctx.proposer(height, 0) === ctx.addresses[ctx.self] && !this.made.has(`${height}/0`)) this.propose(ctx, height, 0)
  }

  /** Proposes as soon as it hears of a round it is the proposer of (before the honest nodes' propose timeout). */
  onMessage (ctx: AdversaryContext, _from: number, msg: Msg): void {
    if (msg.t === 'final') return
    const height = heightOf(msg)
    const round = msg.round
    if (ctx.proposer(height, round) === ctx.addresses[ctx.self] && !this.made.has(`${height}/${round}`)) this.propose(ctx, height, round)
  }

  private propose (ctx: AdversaryContext, height: number, round: number): void {
    const k = `${height}/${round}`
    let v = this.made.get(k)
    if (v === undefined) {
      if (this.count === 0) this.count = ctx.rng.int(1, 3)
      const spoil = (['bad-roots', 'below-quorum', 'departed'] as const)[this.count++ % 3] as Spoil
      v = ctx.build(height, spoil)
      if (v === undefined) return
      ctx.log(`proposes a value with ${spoil}`)
      this.made.set(k, v)
    }
    ctx.send(ctx.honest, ctx.proposal(height, round, -1, v))
    ctx.send(ctx.honest, ctx.vote('prevote', height, round, v))
    ctx.send(ctx.honest, ctx.vote('precommit', height, round, v))
  }

  onTick (ctx: AdversaryContext): void {
    const me = ctx.addresses[ctx.self] as string
    for (const { height, round } of activeRounds(ctx)) {
      if (ctx.proposer(height, round) === me) {
        this.propose(ctx, height, round)
      } else {
        ctx.send(ctx.honest, ctx.vote('prevote', height, round, null))
        ctx.send(ctx.honest, ctx.vote('precommit', height, round, null))
      }
    }
  }
}

/**
 * Votes for every proposal it hears, but signs headers with the right version id and the
 * record count one off: what the contract would refuse in a certificate. As proposer it
 * proposes a valid value (and votes for it the same way).
 */
class BogusHeaderAgent implements ByzantineAgent {
  private readonly heard = new Heard()
  private readonly mine = new Map<string, VersionValue>()

  onMessage (ctx: AdversaryContext, _from: number, msg: Msg): void {
    const at = this.heard.add(ctx, msg)
    if (at !== undefined) this.act(ctx, at.height, at.round)
  }

  onTick (ctx: AdversaryContext): void {
    const me = ctx.addresses[ctx.self] as string
    for (const { height, round } of activeRounds(ctx)) {
      if (ctx.proposer(height, round) === me) {
        const k = `${height}/${round}`
        let v = this.mine.get(k)
        if (v === undefined) {
          v = ctx.build(height)
          if (v === undefined) continue
          this.mine.set(k, v)
          this.heard.add(ctx, ctx.proposal(height, round, -1, v))
        }
        ctx.send(ctx.honest, ctx.proposal(height, round, -1, v))
      }
      this.act(ctx, height, round)
    }
  }

  private act (ctx: AdversaryContext, height: number, round: number): void {
    for (const v of this.heard.get(height, round)) {
      const bogus = { ...headerOf(v), recordCount: headerOf(v).recordCount + 1 }
      ctx.send(ctx.honest, ctx.vote('prevote', height, round, v, bogus))
      ctx.send(ctx.honest, ctx.vote('precommit', height, round, v, bogus))
    }
  }
}

/** Rounds ahead and heights ahead a flooding validator fills, per height. */
export const FLOOD_ROUNDS = 150
export const FLOOD_HEIGHT_MESSAGES = 60

/**
 * Floods: once per height it sees, signed nil votes for the next FLOOD_ROUNDS rounds,
 * FLOOD_HEIGHT_MESSAGES votes for each of the next four heights, and, in every round of
 * those it is the proposer of, a proposal of a junk value.
 */
class FloodAgent implements ByzantineAgent {
  private readonly flooded = new Set<number>()

  onMessage (): void {}

  onTick (ctx: AdversaryContext): void {
    const me = ctx.addresses[ctx.self] as string
    for (const { height, round } of activeRounds(ctx)) {
      if (this.flooded.has(height)) continue
      this.flooded.add(height)
      ctx.log(`floods h${height} from r${round}`)
      for (let r = round + 1; r <= round + FLOOD_ROUNDS; r++) {
        ctx.send(ctx.honest, ctx.vote('prevote', height, r, null))
        ctx.send(ctx.honest, ctx.vote('precommit', height, r, null))
        if (ctx.proposer(height, r) === me) ctx.send(ctx.honest, ctx.proposal(height, r, -1, ctx.junk(height)))
      }
      for (let h = height + 1; h <= height + 4; h++) {
        for (let r = 0; r < FLOOD_HEIGHT_MESSAGES / 2; r++) {
          ctx.send(ctx.honest, ctx.vote('prevote', h, r, null))
          ctx.send(ctx.honest, ctx.vote('precommit', h, r, null))
        }
      }
    }
  }
}

export function builtinAgent (b: Behaviour): ByzantineAgent {
  switch (b) {
    case 'silent': return new SilentAgent()
    case 'equivocate': return new EquivocatingAgent()
    case 'invalid': return new InvalidProposerAgent()
    case 'bogus-header': return new BogusHeaderAgent()
    case 'flood': return new FloodAgent()
  }
}

// -- the simulator ---------------------------------------------------------------------

export type Invariant = 'agreement' | 'validity' | 'double-vote' | 'liveness' | 'integrity' | 'bounded'

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
  /** Decided by the node's own consensus, or adopted from a peer's final version (catch-up). */
  via: 'decided' | 'synced'
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
    /** Messages an honest node refused before its driver (bad signature, malformed, not the proposer). */
    refused: number
    simulatedMs: number
    goodFromMs: number
    /** Valid values a node found not here yet (the `notHereYet` fault). */
    notHereYet: number
    maxRound: number
    evidence: number
    crashes: number
    /** Torn crashes by where in the batch they hit: before its persist, right after it, later. */
    torn: { beforePersist: number, afterPersist: number, later: number }
    synced: number
    /** The largest vote book any honest driver held. */
    maxBook: number
  }
}

/** How the harness runs honest nodes' effects; each flag breaks one defence (tests only). */
export interface ExecutorFaults {
  /** Performs a batch's sends before its persist. */
  sendBeforePersist?: boolean
  /** Answers every `validate` with true. */
  acceptAll?: boolean
  /** Restarts without what the disk holds. */
  amnesia?: boolean
  /**
   * Before the good period, this share of a valid value's first judgements by a node find
   * what it vouches for not here yet (a failed fetch): refused for its round only, as the
   * node answers (`validated(…, lasting: false)`).
   */
  notHereYet?: number
  /** With `notHereYet`: the refusal kept for the height, as before 2026-12-06 (broken). */
  notHereYetLasting?: boolean
  /** Opens heights with the base timeouts, whatever the work pending (broken, as before 2026-12-06). */
  noWorkAllowance?: boolean
}

export interface RunOptions {
  driver?: DriverFactory
  executor?: ExecutorFaults
  /** 'full' keeps every line; 'tail' the last `tailLines`; 'off' only the scenario header. */
  trace?: 'full' | 'tail' | 'off'
  tailLines?: number
  /** Drops messages the adversary wants dropped (true = let through); applied after the network's own faults. */
  filter?: (env: Envelope, now: number) => boolean
  /** Which node finds a valid value "not here yet" when (a fetch failing; before the good period only). */
  notHereYetFor?: (node: number, now: number) => boolean
  /** Agents replacing the scenario's built-in Byzantine behaviours, by validator index. */
  agents?: Record<number, ByzantineAgent>
  maxEvents?: number
}

type SimEvent =
  | { k: 'deliver', env: Envelope }
  | { k: 'timeout', node: number, life: number, height: number, step: 'propose' | 'prevote' | 'precommit', round: number }
  | { k: 'open', node: number, life: number }
  | { k: 'tick', node: number }
  | { k: 'crash', crash: Crash }
  | { k: 'restart', node: number }
  | { k: 'value', node: number, life: number, round: number, value: VersionValue }

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
  value: VersionValue
  certificate: CertificateEntry[]
}

/** A height's consensus record as the node stores it: values as their bytes. */
type SavedState = Omit<HeightState<VersionValue>, 'lockedValue' | 'validValue'> & { lockedValue: Uint8Array | null, validValue: Uint8Array | null }

// (the persist effect's state is the machine's own copy, and the machine copies what it is opened with)
function save (s: HeightState<VersionValue>): SavedState {
  return { ...s, lockedValue: s.lockedValue?.bytes ?? null, validValue: s.validValue?.bytes ?? null }
}

function load (s: SavedState): HeightState<VersionValue> {
  return { ...s, lockedValue: s.lockedValue === null ? null : valueOfBytes(s.lockedValue), validValue: s.validValue === null ? null : valueOfBytes(s.validValue) }
}

interface HonestNode {
  index: number
  address: string
  alive: boolean
  /** Incremented at each crash: timeouts of an earlier life are ignored. */
  life: number
  driver: DriverLike | undefined
  /** The highest round of the open height its effects named (driver.state is a deep copy: too dear to read per message). */
  round: number
  lastHelp: Map<string, number>
  /**
   * Messages already seen this life (gossipsub's seen cache: each message, a broadcast
   * or a relay of it, reaches the driver once; a rebroadcast is a new message).
   */
  seen: WeakSet<Msg>
  tornPending: boolean
  /** The disk: survives crashes. */
  disk: { height: number, state: SavedState | undefined, decided: Map<number, DecidedRecord> }
}

class Stop extends Error {}

const NIL_VERSION = nilHeader(0).version

/** How a liveness violation names the driver's known gap (see Simulation.lostOwnVotes). */
export const LOST_OWN_VOTES = 'signed votes the driver can no longer re-send'

export class Simulation {
  readonly scenario: Scenario
  private readonly factory: DriverFactory
  private readonly faults: ExecutorFaults
  private readonly notHere: Rng
  private readonly notHereYetFor: ((node: number, now: number) => boolean) | undefined
  private readonly traceMode: 'full' | 'tail' | 'off'
  private readonly tailLines: number
  private readonly filter: ((env: Envelope, now: number) => boolean) | undefined
  private readonly maxEvents: number

  private readonly rng: Rng
  private readonly world: World
  private readonly queue = new EventQueue()
  private readonly addresses: string[]
  private readonly schedule: (height: number, round: number) => string
  private readonly honest: number[]
  private readonly nodes = new Map<number, HonestNode>()
  private readonly agents = new Map<number, ByzantineAgent>()
  private readonly parsed = new WeakMap<Msg, DriverInbound | null>()

  private now = 0
  private salt = 0
  private readonly header: string[]
  private trace: string[] = []
  private traceStart = 0

  /** Every vote an honest validator ever sent: `${validator}/${h}/${r}/${type}` -> header key. */
  private readonly honestVotes = new Map<string, string>()
  private readonly honestProposals = new Map<string, string>()
  /** Every value built in this run, by version id. */
  private readonly values = new Map<string, VersionValue>()
  private readonly agreed = new Map<number, { valueId: string, node: number }>()
  private readonly decisions: Decision[] = []
  private violation: Violation | undefined
  private readonly stats: SimResult['stats'] = {
    events: 0, handled: 0, sent: 0, dropped: 0, refused: 0, simulatedMs: 0, goodFromMs: 0, notHereYet: 0, maxRound: 0, evidence: 0, crashes: 0,
    torn: { beforePersist: 0, afterPersist: 0, later: 0 }, synced: 0, maxBook: 0
  }

  private pendingRestarts = 0
  /** Torn crashes waiting for the node's next batch of effects. */
  private readonly torn = new Map<number, { downMs: number, since: number }>()
  private crashesToCome: number
  private lastRecoveryMs = 0

  constructor (scenario: Scenario, opts: RunOptions = {}) {
    this.scenario = scenario
    this.factory = opts.driver ?? realDriver
    this.faults = opts.executor ?? {}
    this.traceMode = opts.trace ?? 'tail'
    this.tailLines = opts.tailLines ?? 300
    this.filter = opts.filter
    this.notHereYetFor = opts.notHereYetFor
    this.maxEvents = opts.maxEvents ?? 3_000_000
    this.rng = new Rng(scenario.seed)
    // its own stream: the scenario's events are the same with the fault off
    this.notHere = new Rng(scenario.seed ^ 0x6e6f7448)
    this.world = new World(scenario.powers)
    this.addresses = this.world.addresses
    this.schedule = proposerSchedule(this.world.validators)
    this.honest = this.addresses.map((_, i) => i).filter(i => scenario.byzantine[i] === undefined && opts.agents?.[i] === undefined)
    for (const [i, b] of Object.entries(scenario.byzantine)) this.agents.set(Number(i), builtinAgent(b))
    for (const [i, a] of Object.entries(opts.agents ?? {})) this.agents.set(Number(i), a)
    this.crashesToCome = scenario.crashes.filter(c => this.honest.includes(c.node)).length
    this.header = describeScenario(scenario)
    if (opts.agents !== undefined) this.header.push(`custom agents at [${Object.keys(opts.agents).join(',')}]`)
    if (opts.filter !== undefined) this.header.push('custom network filter')
    const broken = Object.entries(this.faults).filter(([, on]) => on === true).map(([k]) => k)
    if (broken.length > 0) this.header.push(`executor faults: ${broken.join(', ')}`)
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
        driver: undefined,
        round: 0,
        lastHelp: new Map(),
        seen: new WeakSet(),
        tornPending: false,
        disk: { height: 1, state: undefined, decided: new Map() }
      })
    }
    try {
      for (const c of s.crashes) if (this.nodes.has(c.node)) this.queue.push(c.atMs, { k: 'crash', crash: c })
      for (let i = 0; i < this.addresses.length; i++) this.queue.push(this.rng.int(1, s.tickMs), { k: 'tick', node: i })
      for (const i of this.honest) this.boot(this.nodes.get(i) as HonestNode)
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
      .map(i => { const n = this.nodes.get(i) as HonestNode; const st = n.driver?.state; return `n${i}@h${n.disk.height}${st !== undefined ? `r${st.round}/${st.step}` : ''}${n.alive ? '' : '(down)'}` })
    const lost = this.lostOwnVotes()
    this.fail('liveness', `${why}; not done: ${behind.join(' ')}${lost.length > 0 ? `; ${LOST_OWN_VOTES}: ${lost.join(', ')}` : ''}`)
  }

  /**
   * Votes a live honest node signed in its current or previous round that its driver no
   * longer re-sends: after a restart the driver holds no header for a value it voted for
   * (only locked and valid values are persisted), so it never signs that vote again, and
   * peers that missed it wait for it forever.
   */
  private lostOwnVotes (): string[] {
    const out: string[] = []
    for (const i of this.honest) {
      const n = this.nodes.get(i) as HonestNode
      const st = n.driver?.state
      if (!n.alive || n.driver === undefined || st === undefined) continue
      const sent = new Set(n.driver.tick().flatMap(e => e.kind === 'send-vote' && e.vote.vote.validator === n.address ? [`${e.vote.vote.round}/${e.vote.vote.type}`] : []))
      for (const r of st.round > 0 ? [st.round - 1, st.round] : [st.round]) {
        for (const type of ['prevote', 'precommit'] as const) {
          const id = st.signed[`${r}/${type}`]
          if (id !== undefined && id !== null && !sent.has(`${r}/${type}`)) out.push(`n${i} ${type} r${r}`)
        }
      }
    }
    return out
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
        if (n === undefined || !n.alive || n.driver === undefined) break
        const torn = this.torn.get(n.index)
        if (n.tornPending && torn !== undefined && (!n.driver.isOpen || this.now - torn.since > 3 * this.scenario.tickMs)) {
          // no batch of effects came along: crash plainly
          this.crash(n, torn.downMs)
          break
        }
        if (n.driver.isOpen) this.exec(n, this.call(n, d => d.tick()))
        else this.openHeight(n)
        if (n.alive) this.checkBounds(n)
        break
      }
      case 'timeout': {
        const n = this.nodes.get(ev.node)
        if (n === undefined || !n.alive || n.life !== ev.life || n.driver === undefined) break
        this.exec(n, this.call(n, d => d.timeout(ev.height, ev.step, ev.round)))
        break
      }
      case 'value': {
        const n = this.nodes.get(ev.node)
        if (n === undefined || !n.alive || n.life !== ev.life || n.driver === undefined) break
        this.exec(n, this.call(n, d => d.value(ev.round, ev.value)))
        break
      }
      case 'open': {
        const n = this.nodes.get(ev.node)
        if (n === undefined || !n.alive || n.life !== ev.life) break
        this.openHeight(n)
        for (const [i, agent] of this.agents) agent.onOpen?.(this.context(i), n.disk.height)
        break
      }
      case 'crash': {
        const n = this.nodes.get(ev.crash.node)
        this.crashesToCome--
        if (n === undefined || !n.alive) break
        if (n.tornPending) {
          // a torn crash still waiting for its batch: this one comes first
          n.tornPending = false
          this.pendingRestarts--
        }
        this.pendingRestarts++
        if (ev.crash.torn && n.driver?.isOpen === true) {
          n.tornPending = true
          this.log(`n${n.index} will crash inside its next batch of effects (torn)`)
          this.torn.set(n.index, { downMs: ev.crash.downMs, since: this.now })
        } else {
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
        const st = n.disk.state
        this.log(`n${n.index} RESTART at h${n.disk.height}${st !== undefined ? ` from r${st.round}/${st.step} locked r${st.lockedRound}` : ' (no consensus record on disk)'}`)
        this.boot(n)
        break
      }
    }
  }

  private crash (n: HonestNode, downMs: number): void {
    this.stats.crashes++
    n.alive = false
    n.life++
    n.driver = undefined
    n.lastHelp.clear()
    n.seen = new WeakSet()
    n.tornPending = false
    this.log(`n${n.index} CRASH for ${downMs}ms (disk: h${n.disk.height}${n.disk.state !== undefined ? ` r${n.disk.state.round}/${n.disk.state.step}` : ''})`)
    this.queue.push(this.now + downMs, { k: 'restart', node: n.index })
  }

  // -- honest nodes

  private setup (height: number): HeightSetup {
    // as DatanetConsensus opens a height: the propose timeout allows for the work pending
    const records = this.faults.noWorkAllowance === true ? 0 : this.scenario.work?.records ?? 0
    return { height, validators: this.world.validators, proposer: round => this.schedule(height, round), timeouts: timeoutsForWork(this.scenario.timeouts, records) }
  }

  /** Starts (or restarts) a node: a new driver at the disk's height, that height resumed from the disk's record. */
  private boot (n: HonestNode): void {
    n.driver = this.factory({ signer: this.world.signer(n.index) })
    n.round = 0
    n.driver.moveTo(n.disk.height)
    this.openHeight(n)
  }

  private openHeight (n: HonestNode): void {
    const d = n.driver
    if (d === undefined || d.isOpen || n.disk.height > this.scenario.heights) return
    const saved = n.disk.state
    // the record of the votes signed at this height: always resume from it
    const state = saved !== undefined && saved.height === n.disk.height && this.faults.amnesia !== true ? load(saved) : undefined
    this.exec(n, this.call(n, x => x.open(this.setup(n.disk.height), state)))
  }

  private call (n: HonestNode, f: (d: DriverLike) => DriverEffect[]): DriverEffect[] {
    const d = n.driver
    if (d === undefined) return []
    this.stats.handled++
    try {
      return f(d)
    } catch (err) {
      this.fail('integrity', `n${n.index} h${n.disk.height}: the driver threw: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`)
    }
  }

  /** Performs a batch of effects in order, as DatanetConsensus.exec does; a torn crash stops it before one of them. */
  private exec (n: HonestNode, effects: DriverEffect[]): void {
    if (effects.length === 0 || !n.alive) return
    const life = n.life
    const list = this.faults.sendBeforePersist === true
      ? [...effects.filter(e => e.kind !== 'persist'), ...effects.filter(e => e.kind === 'persist')]
      : effects
    let cut = -1
    if (n.tornPending) {
      n.tornPending = false
      cut = this.rng.int(0, list.length - 1)
      const persistAt = list.findIndex(e => e.kind === 'persist')
      if (persistAt >= 0 && cut <= persistAt) this.stats.torn.beforePersist++
      else if (persistAt >= 0 && cut === persistAt + 1) this.stats.torn.afterPersist++
      else this.stats.torn.later++
    }
    for (let i = 0; i < list.length; i++) {
      if (n.life !== life) return
      const e = list[i] as DriverEffect
      if (i === cut) {
        this.log(`n${n.index} dies inside its batch (torn) before effect ${i} of ${list.length}: ${showEffect(e)}`)
        this.crash(n, this.torn.get(n.index)?.downMs ?? 1000)
        return
      }
      if (this.traceMode !== 'off') this.log(`  n${n.index} ${showEffect(e)}`)
      const height = n.disk.height
      if ((e.kind === 'schedule-timeout' || e.kind === 'request-value') && e.height === height) n.round = Math.max(n.round, e.round)
      switch (e.kind) {
        case 'persist':
          if (e.height !== height || e.state.height !== height) this.fail('integrity', `n${n.index} at h${height} persists a state of h${e.state.height}`)
          // synced: survives any later crash
          n.disk.state = save(e.state)
          n.round = Math.max(n.round, e.state.round)
          this.stats.maxRound = Math.max(this.stats.maxRound, e.state.round)
          break
        case 'send-proposal': {
          const msg: Msg = { t: 'proposal', height: e.proposal.height, round: e.proposal.round, validRound: e.proposal.validRound, value: e.proposal.value, signature: e.signature }
          this.checkOwnProposal(n, height, msg)
          this.broadcast(n.index, msg)
          break
        }
        case 'send-vote': {
          const msg: Msg = { t: 'vote', type: e.vote.vote.type, round: e.vote.vote.round, header: e.vote.header, signature: e.vote.signature }
          this.checkSentVote(n, height, e.vote)
          this.broadcast(n.index, msg)
          break
        }
        case 'schedule-timeout':
          if (!(e.ms >= 0) || !Number.isFinite(e.ms)) this.fail('integrity', `n${n.index}: timeout of ${e.ms}ms`)
          this.queue.push(this.now + e.ms, { k: 'timeout', node: n.index, life: n.life, height: e.height, step: e.step, round: e.round })
          break
        case 'request-value': {
          const value = this.world.build(e.height, n.index, this.salt++)
          if (value === undefined) this.fail('integrity', `n${n.index} asked for a value of h${e.height} before its parent was decided`)
          this.values.set(value.id, value)
          const work = this.scenario.work
          if (work === undefined || work.records === 0) {
            this.exec(n, this.call(n, d => d.value(e.round, value)))
          } else {
            // built off the queue, as the node does: votes and timeouts go on meanwhile
            this.queue.push(this.now + Math.round(work.records * work.buildMsPerRecord), { k: 'value', node: n.index, life: n.life, round: e.round, value })
          }
          break
        }
        case 'validate': {
          const ok = this.faults.acceptAll === true || this.world.problem(e.value, e.height) === undefined
          const notHere = this.notHereYetFor?.(n.index, this.now) ?? this.notHere.chance(this.faults.notHereYet ?? 0)
          if (ok && notHere && this.now < this.stats.goodFromMs) {
            this.stats.notHereYet++
            this.exec(n, this.call(n, d => d.validated(e.value, false, this.faults.notHereYetLasting === true)))
            break
          }
          this.exec(n, this.call(n, d => d.validated(e.value, ok)))
          break
        }
        case 'decide':
          if (e.height !== height) this.fail('integrity', `n${n.index} at h${height} decides h${e.height}`)
          this.finalize(n, e.height, { round: e.round, value: e.value, certificate: e.certificate }, 'decided')
          return
        case 'evidence':
          this.checkEvidence(n, e.first, e.second)
          break
        case 'proposal-evidence': {
          const who = this.world.indexOf(e.proposer)
          if (who !== undefined && this.nodes.has(who)) this.fail('integrity', `n${n.index}: proposal evidence against honest n${who}`)
          break
        }
        case 'behind':
          break
      }
    }
  }

  /** A final version, decided here or adopted: checked, then stored with the height advanced, in one step (atomic). */
  private finalize (n: HonestNode, height: number, rec: DecidedRecord, via: 'decided' | 'synced'): void {
    this.checkDecision(n, height, rec, via)
    n.disk.decided.set(height, rec)
    n.disk.height = height + 1
    n.disk.state = undefined
    n.round = 0
    n.driver?.moveTo(height + 1)
    this.queue.push(this.now, { k: 'open', node: n.index, life: n.life })
  }

  /** The node's gossip validation of a proposal or vote; null when refused. Shared by every receiver of one message. */
  private inbound (msg: Msg): DriverInbound | null {
    let r = this.parsed.get(msg)
    if (r !== undefined) return r
    r = null
    if (msg.t === 'proposal') {
      const proposer = this.schedule(msg.height, msg.round)
      const signer = this.world.recover(proposalMessage(msg.height, msg.round, msg.validRound, msg.value.id), msg.signature)
      const v = msg.value.version
      if (signer === proposer && v.height === msg.height && v.datanet === 'sim' && msg.validRound >= -1 && msg.validRound < msg.round) {
        r = { kind: 'proposal', proposal: { height: msg.height, round: msg.round, validRound: msg.validRound, value: msg.value, proposer }, signature: msg.signature, bytes: msg.value.bytes.length + 200 }
      }
    } else if (msg.t === 'vote') {
      const parsed = voteOfWire({ kind: 'vote', type: msg.type, round: msg.round, header: msg.header, signature: fromHex(msg.signature, 65), sentAt: 0 })
      if (!('code' in parsed)) {
        const signer = this.world.recover(voteMessage(msg.type, msg.round, msg.header), msg.signature)
        if (signer !== undefined && this.world.validators.some(v => v.address === signer)) {
          parsed.vote.validator = signer
          r = { kind: 'vote', vote: parsed.signed, bytes: 600 }
        }
      }
    }
    this.parsed.set(msg, r)
    return r
  }

  private deliver (env: Envelope): void {
    const agent = this.agents.get(env.to)
    if (agent !== undefined) {
      agent.onMessage(this.context(env.to), env.from, env.msg)
      return
    }
    const n = this.nodes.get(env.to)
    if (n === undefined || !n.alive || n.driver === undefined) return
    const msg = env.msg
    if (msg.t === 'final') {
      this.adopt(n, msg)
      return
    }
    const h = heightOf(msg)
    if (h < n.disk.height) {
      this.help(n, env.from, h)
      return
    }
    if (n.seen.has(msg)) return
    n.seen.add(msg)
    const inbound = this.inbound(msg)
    if (inbound === null) {
      this.stats.refused++
      return
    }
    if (this.scenario.network.relay && env.from !== n.index && !env.help) {
      this.send(n.index, this.addresses.map((_, i) => i).filter(i => i !== n.index && i !== env.from), msg, false)
    }
    if (this.traceMode !== 'off') this.log(`n${n.index} h${n.disk.height} <- n${env.from} ${showMsg(msg)}`)
    this.exec(n, this.call(n, d => d.receive(inbound)))
    if (n.alive) this.checkBounds(n)
  }

  /** A laggard adopts a final version it is handed when its certificate and the version check out (version sync). */
  private adopt (n: HonestNode, msg: Extract<Msg, { t: 'final' }>): void {
    if (msg.height !== n.disk.height || msg.height > this.scenario.heights) return
    const cert = certificateProblem(this.world.set, voteMessage('precommit', msg.round, headerOf(msg.value)), msg.certificate, this.world.recover)
    const why = cert ?? this.world.problem(msg.value, msg.height)
    if (why !== undefined) {
      this.log(`n${n.index} refuses final h${msg.height}: ${why}`)
      return
    }
    this.stats.synced++
    this.log(`n${n.index} adopts ${showMsg(msg)}`)
    this.finalize(n, msg.height, { round: msg.round, value: msg.value, certificate: msg.certificate }, 'synced')
  }

  /** A decided node's catch-up answer: the final version and its certificate, to the laggard only. */
  private help (n: HonestNode, to: number, height: number): void {
    if (to === n.index || !this.nodes.has(to)) return
    const rec = n.disk.decided.get(height)
    if (rec === undefined) return
    const k = `${to}/${height}`
    const last = n.lastHelp.get(k)
    if (last !== undefined && this.now - last < this.scenario.tickMs / 2) return
    n.lastHelp.set(k, this.now)
    this.send(n.index, [to], { t: 'final', height, round: rec.round, value: rec.value, certificate: rec.certificate }, true)
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

  /** The driver's state stays within what the default limits allow at its round. */
  private checkBounds (n: HonestNode): void {
    const d = n.driver
    if (d === undefined) return
    const s = d.stats()
    this.stats.maxBook = Math.max(this.stats.maxBook, s.book)
    const L: DriverLimits = defaultDriverLimits
    const N = this.addresses.length
    const rounds = n.round + 1 + L.futureRounds
    const bounds: Array<[string, number, number]> = [
      ['votes in the book', s.book, 4 * N * rounds],
      ['values', s.values, 3 * rounds + 2],
      ['proposals kept', s.proposals, 2 * rounds],
      ['proposals awaiting validity', s.awaiting, 4 * 2 * rounds],
      ['rounds ahead kept', s.aheadRounds, N * L.futureRounds],
      // later heights, and this one while it is not open yet (between a decision and the next open)
      ['heights buffered', s.futureHeights, L.maxAhead + 1],
      ['messages buffered for later heights', s.futureMessages, (L.maxAhead + 1) * N * L.futureMessagesPerSender],
      ['signatures of its own', s.ownSignatures, 3 * rounds]
    ]
    for (const [what, size, bound] of bounds) {
      if (size > bound) this.fail('bounded', `n${n.index} h${n.disk.height} r${n.round}: ${size} ${what}, over the bound of ${bound}`)
    }
  }

  /** A vote an honest node sends: its own (never two different for one slot, never for an invalid value) or a relayed one (really signed). */
  private checkSentVote (n: HonestNode, height: number, sv: SignedVote): void {
    const v = sv.vote
    const signer = this.world.recover(voteMessage(v.type, v.round, sv.header), sv.signature)
    if (signer === undefined || signer.toLowerCase() !== v.validator.toLowerCase()) {
      this.fail('integrity', `n${n.index} sends a ${v.type} of ${v.validator} that it did not sign over that header`)
    }
    if (v.validator.toLowerCase() !== n.address.toLowerCase()) return
    if (v.height !== height || sv.header.height !== height) this.fail('integrity', `n${n.index} at h${height} votes for h${v.height}`)
    if (sv.header.version !== NIL_VERSION) {
      const value = this.values.get(sv.header.version)
      if (value === undefined || headerKey(headerOf(value)) !== headerKey(sv.header)) this.fail('integrity', `honest n${n.index} signs a ${v.type} over a header of no value`)
      const why = this.world.problem(value, height)
      if (why !== undefined) this.fail('validity', `honest n${n.index} ${v.type}s the invalid value ${short(value.id)} in r${v.round}: ${why}`)
    }
    const k = `${n.address}/${v.height}/${v.round}/${v.type}`
    const key = headerKey(sv.header)
    const before = this.honestVotes.get(k)
    if (before === undefined) this.honestVotes.set(k, key)
    else if (before !== key) this.fail('double-vote', `honest n${n.index} signed two ${v.type}s for h${v.height} r${v.round}: ${before.split('/').pop() ?? ''} then ${key.split('/').pop() ?? ''}`)
  }

  private checkOwnProposal (n: HonestNode, height: number, p: Extract<Msg, { t: 'proposal' }>): void {
    if (p.height !== height) this.fail('integrity', `n${n.index} at h${height} proposes for h${p.height}`)
    if (this.schedule(p.height, p.round) !== n.address) this.fail('integrity', `n${n.index} proposes in h${p.height} r${p.round}, whose proposer is ${this.schedule(p.height, p.round)}`)
    if (this.world.recover(proposalMessage(p.height, p.round, p.validRound, p.value.id), p.signature) !== n.address) this.fail('integrity', `n${n.index}'s proposal signature does not verify`)
    this.values.set(p.value.id, p.value)
    const why = this.world.problem(p.value, height)
    if (why !== undefined) this.fail('validity', `honest n${n.index} proposed an invalid value: ${why}`)
    const k = `${n.address}/${p.height}/${p.round}`
    const before = this.honestProposals.get(k)
    if (before === undefined) this.honestProposals.set(k, p.value.id)
    else if (before !== p.value.id) this.fail('double-vote', `honest n${n.index} proposed two values for h${p.height} r${p.round}: ${short(before)} then ${short(p.value.id)}`)
  }

  private checkEvidence (n: HonestNode, a: SignedVote, b: SignedVote): void {
    this.stats.evidence++
    const x = a.vote
    const y = b.vote
    const same = x.validator === y.validator && x.type === y.type && x.height === y.height && x.round === y.round
    const signed = [a, b].every(sv => this.world.recover(voteMessage(sv.vote.type, sv.vote.round, sv.header), sv.signature) === x.validator)
    if (!same || !signed || x.valueId === y.valueId) this.fail('integrity', `n${n.index}: evidence that is not two signed conflicting votes (${showMsg({ t: 'vote', type: x.type, round: x.round, header: a.header, signature: a.signature })} / ${showMsg({ t: 'vote', type: y.type, round: y.round, header: b.header, signature: b.signature })})`)
    const who = this.world.indexOf(x.validator)
    if (who !== undefined && this.nodes.has(who)) this.fail('integrity', `n${n.index}: evidence against honest n${who} (it never double-signed)`)
  }

  private checkDecision (n: HonestNode, height: number, rec: DecidedRecord, via: 'decided' | 'synced'): void {
    const { round, value, certificate } = rec
    const where = `n${n.index} ${via} h${height} r${round} ${short(value.id)}`
    if (value.version.height !== height) this.fail('validity', `${where}: a version of h${value.version.height}`)
    const why = this.world.problem(value, height)
    if (why !== undefined) this.fail('validity', `${where}: the version is invalid: ${why}`)
    // what the contract's commitVersion checks: signatures over exactly this header, distinct members, >= 2/3 of the stake
    const cert = certificateProblem(this.world.set, voteMessage('precommit', round, headerOf(value)), certificate, this.world.recover)
    if (cert !== undefined) this.fail('validity', `${where}: certificate: ${cert}`)
    const prior = this.agreed.get(height)
    if (prior === undefined) this.agreed.set(height, { valueId: value.id, node: n.index })
    else if (prior.valueId !== value.id) this.fail('agreement', `${where}, but n${prior.node} decided ${short(prior.valueId)}`)
    this.world.extend(height, value)
    this.decisions.push({ node: n.index, height, round, valueId: value.id, timeMs: this.now, via })
    this.log(`n${n.index} FINAL h${height} r${round} ${short(value.id)} (${via})`)
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
          if (n.alive && n.driver?.isOpen === true) out.push({ node: i, height: n.disk.height, round: n.round })
        }
        return out
      },
      send: (to, msg) => {
        if (this.traceMode !== 'off') this.log(`  b${self} sends ${showMsg(msg)} to [${to.join(',')}]`)
        this.send(self, to, msg, false)
      },
      build: (height, spoil) => {
        const v = this.world.build(height, self, this.salt++, spoil)
        if (v !== undefined) this.values.set(v.id, v)
        return v
      },
      junk: height => this.world.junk(height, self, this.salt++),
      proposal: (height, round, validRound, value) => ({ t: 'proposal', height, round, validRound, value, signature: this.world.sign(self, proposalMessage(height, round, validRound, value.id)) }),
      vote: (type, height, round, value, header) => {
        const h = header ?? (value === null ? nilHeader(height) : headerOf(value))
        return { t: 'vote', type, round, header: h, signature: this.world.sign(self, voteMessage(type, round, h)) }
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
 *    and B see 2/3 prevotes, lock it and precommit it; D precommits it to A only, so A
 *    decides it and B does not (2 of 4 precommits). C prevotes and precommits nil.
 *  - after deciding, A is cut off (its later messages and its catch-up answers are dropped)
 *    until `healMs`.
 *  - rounds >= 1: when C (unlocked, no valid value) or D proposes a new value, D prevotes and
 *    precommits it. A correct B, locked, prevotes nil: only 2 of 4 prevote the new value,
 *    nothing is decided until the heal, when A's catch-up answer makes B and C adopt A's
 *    value. A B that forgets its lock prevotes the new value: 3 of 4, and B and C decide a
 *    value different from A's.
 * With `forge`, D's own proposals in rounds >= 1 claim validRound 0 (a polka for them in
 * round 0 that never happened): a correct node finds no such prevotes and does not move;
 * one that takes validRound at its word unlocks and decides D's value.
 * The seed picks the roles (among those that fit the proposer schedule) and the delays.
 */
/**
 * A value one validator cannot fetch in time (a restarted node's missed contribution) while
 * the others lock on it: A proposes V at (1, 0); A, B and D prevote it and A, B lock; C finds
 * V "not here yet" until the heal and prevotes nil; D is gone after its round-0 prevote
 * (f = 1). A, B and C decide only if C judges V again once it is here: a refusal kept for
 * the height (`not-here-lasting`, as before 2026-12-06) leaves them with no quorum for good.
 */
export function notHereYet (seed: number, healMs = 20_000): { scenario: Scenario, options: RunOptions } {
  const rng = new Rng(seed ^ 0x6e68791a)
  const addresses = [0, 1, 2, 3].map(i => simAddress(i))
  const schedule = proposerSchedule(addresses.map(address => ({ address, power: 10n })))
  const a = addresses.indexOf(schedule(1, 0))
  const [b, c, d] = rng.shuffle([0, 1, 2, 3].filter(i => i !== a)) as [number, number, number]
  const scenario: Scenario = {
    ...calmScenario(seed, [10, 10, 10, 10], 1),
    name: `not-here-yet (A=n${a} B=n${b} C=n${c} D=n${d})`,
    network: { loss: 0, duplicate: 0, minDelayMs: rng.int(1, 10), maxDelayMs: rng.int(20, 120), spike: 0, spikeMs: 0, relay: false },
    quietFromMs: healMs
  }
  // D's round-0 prevote reaches the others, then nothing of D ever does
  const filter = (env: Envelope): boolean => env.from !== d || (!env.help && env.msg.t === 'vote' && env.msg.type === 'prevote' && env.msg.round === 0)
  return { scenario, options: { filter, notHereYetFor: (node, now) => node === c && now < healMs } }
}

export function lockAttack (seed: number, healMs = 60_000, forge = false): { scenario: Scenario, options: RunOptions, roles: { a: number, b: number, c: number, d: number } } {
  const rng = new Rng(seed ^ 0x10c4a77a)
  const d = 3
  const scenario: Scenario = {
    ...calmScenario(seed, [10, 10, 10, 10], 1),
    name: 'lock-attack',
    // No relay: before the heal, the adversary decides who gets what.
    network: { loss: 0, duplicate: rng.float() * 0.2, minDelayMs: rng.int(1, 10), maxDelayMs: rng.int(20, 120), spike: 0, spikeMs: 0, relay: false },
    quietFromMs: healMs
  }
  const addresses = [0, 1, 2, 3].map(i => simAddress(i))
  const schedule = proposerSchedule(addresses.map(address => ({ address, power: 10n })))
  const p0 = addresses.indexOf(schedule(1, 0))
  const cs = [0, 1, 2].filter(i => i !== p0)
  const c = rng.pick(cs)
  const [a, b] = rng.shuffle([0, 1, 2].filter(i => i !== c)) as [number, number]
  const roles = { a, b, c, d }
  scenario.name = `${forge ? 'forged-valid-round' : 'lock-attack'} (A=n${a} B=n${b} C=n${c} D=n${d})`
  const agent = new LockAttacker(roles, forge)
  const filter = (env: Envelope, now: number): boolean => {
    if (now >= healMs) return true
    const h = heightOf(env.msg)
    // C never learns round 0's proposal.
    if (env.to === c && env.msg.t === 'proposal' && h === 1 && env.msg.round === 0) return false
    // No catch-up answers, and nothing from A once it moved past height 1.
    if (env.help) return false
    if (env.from === a && h > 1) return false
    return true
  }
  return { scenario, options: { agents: { [d]: agent }, filter }, roles }
}

class LockAttacker implements ByzantineAgent {
  private readonly roles: { a: number, b: number, c: number, d: number }
  private readonly forge: boolean
  private first: VersionValue | undefined
  private readonly voted = new Map<number, VersionValue | null>()
  private readonly mine = new Map<number, VersionValue>()

  constructor (roles: { a: number, b: number, c: number, d: number }, forge: boolean) {
    this.roles = roles
    this.forge = forge
  }

  onMessage (ctx: AdversaryContext, _from: number, msg: Msg): void {
    if (msg.t !== 'proposal' || msg.height !== 1) return
    if (msg.round === 0) this.roundZero(ctx, msg.value)
    else if (this.first === undefined || msg.value.id !== this.first.id) this.support(ctx, msg.round, msg.value)
  }

  onTick (ctx: AdversaryContext): void {
    const me = ctx.addresses[ctx.self] as string
    const { a, b } = this.roles
    if (ctx.proposer(1, 0) === me && this.first === undefined) {
      const v = ctx.build(1)
      if (v === undefined) return
      ctx.send([a, b], ctx.proposal(1, 0, -1, v))
      this.roundZero(ctx, v)
    } else if (this.first !== undefined) {
      this.roundZero(ctx, this.first)
    }
    for (const { height, round } of activeRounds(ctx)) {
      if (height !== 1 || round === 0) continue
      const proposer = ctx.proposer(1, round)
      if (proposer === me) {
        let v = this.mine.get(round)
        if (v === undefined) {
          v = ctx.build(1)
          if (v === undefined) continue
          this.mine.set(round, v)
        }
        ctx.send(ctx.honest, ctx.proposal(1, round, this.forge ? 0 : -1, v))
        this.support(ctx, round, v)
      } else if (proposer === ctx.addresses[this.roles.c]) {
        const v = this.voted.get(round)
        if (v !== undefined) this.support(ctx, round, v)
      } else {
        // A's rounds (A is gone) and B's (B re-proposes its locked value): nil, so the rounds move on.
        this.support(ctx, round, null)
      }
    }
  }

  private roundZero (ctx: AdversaryContext, v: VersionValue): void {
    const { a, b } = this.roles
    if (this.first === undefined) ctx.log(`round 0 value is ${short(v.id)}: prevote to A,B, precommit to A`)
    this.first = v
    ctx.send([a, b], ctx.vote('prevote', 1, 0, v))
    ctx.send([a], ctx.vote('precommit', 1, 0, v))
  }

  private support (ctx: AdversaryContext, round: number, v: VersionValue | null): void {
    const before = this.voted.get(round)
    if (before !== undefined && (before?.id ?? null) !== (v?.id ?? null)) return
    this.voted.set(round, v)
    ctx.send(ctx.honest, ctx.vote('prevote', 1, round, v))
    ctx.send(ctx.honest, ctx.vote('precommit', 1, round, v))
  }
}

// -- targeted scenarios and the broken variants they catch ------------------------------

export type TargetedName = 'lock-attack' | 'forged-valid-round' | 'bogus-header' | 'invalid' | 'flood' | 'torn' | 'not-here-yet'
export const TARGETED: readonly TargetedName[] = ['lock-attack', 'forged-valid-round', 'bogus-header', 'invalid', 'flood', 'torn', 'not-here-yet']

export type BrokenName = 'lock-forgetting' | 'trust-valid-round' | 'by-version-id' | 'accept-all' | 'unbounded' | 'send-before-persist' | 'amnesia' | 'not-here-lasting'

/** Each broken variant: the one defence it takes away. */
export const BROKEN: Record<BrokenName, RunOptions> = {
  'lock-forgetting': { driver: lockForgetting(realDriver) },
  'trust-valid-round': { driver: trustValidRound },
  'by-version-id': { driver: byVersionId },
  'accept-all': { executor: { acceptAll: true } },
  unbounded: { driver: unbounded },
  'send-before-persist': { executor: { sendBeforePersist: true } },
  amnesia: { executor: { amnesia: true } },
  'not-here-lasting': { executor: { notHereYetLasting: true } }
}

/** The broken variant each targeted scenario is built to catch. */
export const CATCHES: Record<TargetedName, BrokenName> = {
  'lock-attack': 'lock-forgetting',
  'forged-valid-round': 'trust-valid-round',
  'bogus-header': 'by-version-id',
  invalid: 'accept-all',
  flood: 'unbounded',
  torn: 'send-before-persist',
  'not-here-yet': 'not-here-lasting'
}

/** A scenario built for one attack, from a seed. */
export function targetedScenario (name: TargetedName, seed: number): { scenario: Scenario, options: RunOptions } {
  const rng = new Rng(seed ^ 0x7a46e7ed)
  const lossy = (maxLoss: number): NetworkFaults => {
    const minDelayMs = rng.int(1, 20)
    return { loss: rng.float() * maxLoss, duplicate: rng.float() * 0.1, minDelayMs, maxDelayMs: minDelayMs + rng.int(10, 300), spike: rng.float() * 0.02, spikeMs: 1000, relay: true }
  }
  switch (name) {
    case 'not-here-yet': return notHereYet(seed)
    case 'lock-attack': return lockAttack(seed)
    case 'forged-valid-round': return lockAttack(seed, 60_000, true)
    case 'bogus-header':
      // one honest validator down at first: the others need the bogus voter's precommits to reach 2/3
      return { scenario: { ...calmScenario(seed, [10, 10, 10, 10], 2), name, byzantine: { 3: 'bogus-header' }, network: lossy(0.1), crashes: [{ node: rng.int(0, 2), atMs: 0, downMs: rng.int(10_000, 20_000), torn: false }] }, options: {} }
    case 'invalid':
      return { scenario: { ...calmScenario(seed, [10, 10, 10, 10], 4), name, byzantine: { 3: 'invalid' }, network: lossy(0.1) }, options: {} }
    case 'flood':
      return { scenario: { ...calmScenario(seed, [10, 10, 10, 10], 3), name, byzantine: { 3: 'flood' }, network: lossy(0.05) }, options: {} }
    case 'torn': {
      const n = rng.int(4, 5)
      const crashes: Crash[] = []
      for (let node = 0; node < n; node++) {
        let at = rng.int(0, 1500)
        for (let k = 0; k < 4; k++) {
          const downMs = rng.int(200, 3000)
          crashes.push({ node, atMs: at, downMs, torn: true })
          at += downMs + rng.int(100, 3000)
        }
      }
      crashes.sort((a, b) => a.atMs - b.atMs || a.node - b.node)
      return { scenario: { ...calmScenario(seed, Array.from({ length: n }, () => 10), 3), name, network: lossy(0.1), crashes }, options: {} }
    }
  }
}
