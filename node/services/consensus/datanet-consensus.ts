/**
 * One datanet's consensus in the node: the pure driver (src/consensus/driver.ts) wired to
 * gossip, timers, level and the version rules. Effects run in order on one queue; the
 * driver's `persist` is written (synced) before anything after it is sent.
 */
import type { SigningKey, TypedDataDomain, Wallet } from 'ethers'
import { encodeCbor } from '../../../src/codec/cbor.ts'
import { fromHex, toHex } from '../../../src/codec/hash.ts'
import { proposerSchedule, timeoutsForWork } from '../../../src/consensus/machine.ts'
import { ConsensusDriver, type ConsensusSigner, type DriverEffect, type DriverInbound, type HeightSetup } from '../../../src/consensus/driver.ts'
import { decodeVersion, headerOfStored, proposalDigest, versionValue, voteDigest, type VersionValue } from '../../../src/consensus/version.ts'
import { headerId, type Wire, type WireShare } from '../../../src/consensus/wire.ts'
import type { AnchorShare } from '../../../src/chain/anchor-shares.ts'
import type { ValidatorSet } from '../../../src/datanet/manifest.ts'
import type { GossipRouter } from '../../../src/network/gossip.ts'
import { topics } from '../../../src/network/topics.ts'
import type { HeightState } from '../../../src/consensus/types.ts'
import type { StateDatabase } from '../../../src/storage/state-db.ts'
import { NOT_HERE_YET, type DatanetVersions } from './versions.ts'
import { flood, misbehave, type FaultContext } from './faults.ts'
import { consensusTopicHandlers } from './inbound.ts'
import type { FollowedDatanet } from '../datanets.ts'
import type { Logger } from '../../logger.ts'
import type { Fault } from '../faults.ts'

const TICK_MS = 2000
/** How long a propose timeout waits at most for proposals whose contributions are being fetched. */
const FETCH_GRACE_MS = 10_000

/** Consensus ignores the faults of other services (`twin-inference`). */
export type ConsensusFault = Fault

export interface DatanetConsensusOptions {
  db: StateDatabase
  router: GossipRouter
  wallet: Wallet
  logger: Logger
  versions: DatanetVersions
  domain: TypedDataDomain
  setFor: (height: number) => ValidatorSet | undefined
  onFinal: (round: number, value: VersionValue, certificate: Array<{ validator: string, signature: string }>) => Promise<void>
  onEvidence?: () => void
  /** Versions may be final elsewhere that this node lacks (catch-up; throttled by the caller). */
  onBehind: () => void
  /** A checked anchor share from gossip (src/chain/anchor-shares.ts). */
  onShare?: (height: number, share: AnchorShare) => void
  fault?: ConsensusFault
  /** Junk proposals per proposal under `proposal-flood` (default 200). */
  floodCount?: number
  /** Padding of each junk version, in bytes (default 0). */
  floodBytes?: number
}

export interface ConsensusStatus {
  height: number
  round: number | null
  step: string | null
  lastFinal: number
}

export function walletSigner (wallet: Wallet, domain: TypedDataDomain): ConsensusSigner {
  const sign = (digest: string): string => (wallet.signingKey as SigningKey).sign(digest).serialized
  return {
    address: wallet.address,
    signVote: (type, round, header) => sign(voteDigest(domain, type, round, header)),
    signProposal: (height, round, validRound, value) => sign(proposalDigest(domain, height, round, validRound, value.id))
  }
}

/** The persisted machine state, values as their bytes. */
export function saveState (s: HeightState<VersionValue>): Record<string, unknown> {
  return { ...s, lockedValue: s.lockedValue === null ? null : toHex(s.lockedValue.bytes), validValue: s.validValue === null ? null : toHex(s.validValue.bytes) }
}

export async function loadState (json: Record<string, unknown>): Promise<HeightState<VersionValue>> {
  const load = async (hex: unknown): Promise<VersionValue | null> => typeof hex === 'string' ? await versionValue(decodeVersion(fromHex(hex))) : null
  return { ...(json as unknown as HeightState<VersionValue>), lockedValue: await load(json.lockedValue), validValue: await load(json.validValue) }
}

export class DatanetConsensus {
  private readonly o: DatanetConsensusOptions
  private readonly d: FollowedDatanet
  private readonly log: Logger
  readonly driver: ConsensusDriver
  private readonly timers = new Set<NodeJS.Timeout>()
  private queue: Promise<void> = Promise.resolve()
  private running = false
  private nextAt = 0
  /** Proposals being fetched and judged (off the queue). */
  private readonly judging = new Set<Promise<void>>()

  constructor (o: DatanetConsensusOptions, d: FollowedDatanet) {
    this.o = o
    this.d = d
    this.log = o.logger
    this.driver = new ConsensusDriver({ signer: walletSigner(o.wallet, o.domain) })
  }

  get height (): number { return this.driver.height }

  status (): ConsensusStatus {
    const s = this.driver.state
    return { height: this.driver.height, round: s?.round ?? null, step: s?.step ?? null, lastFinal: this.o.versions.last?.height ?? 0 }
  }

  /** Resumes the height in progress from disk before any message can arrive, then listens. */
  async start (): Promise<void> {
    this.running = true
    this.driver.moveTo(this.o.versions.nextHeight)
    const saved = await this.o.db.consensus.get(this.d.id)
    if (saved !== undefined && saved.height === this.driver.height) {
      // resume exactly where it was: never a different vote for a (round, type)
      await this.enqueue(async () => { await this.open(await loadState(saved.state)) })
    } else {
      this.nextAt = Date.now() + this.d.manifest.consensus.versionIntervalMs
    }
    for (const handler of consensusTopicHandlers({
      datanet: this.d.id,
      domain: this.o.domain,
      driver: this.driver,
      setup: h => this.setup(h),
      setFor: this.o.setFor,
      onBehind: this.o.onBehind,
      onShare: this.o.onShare,
      finalAt: async h => {
        const entry = await this.o.versions.versionAt(h)
        return entry === undefined ? undefined : { round: entry.round, headerId: headerId(headerOfStored(entry)) }
      },
      deliver: async inbound => { await this.enqueue(async () => { await this.deliver(inbound) }) }
    })) this.o.router.register(handler)
    const tick = setInterval(() => {
      void this.enqueue(async () => {
        if (this.driver.isOpen) await this.exec(this.driver.tick())
        else await this.maybeStart()
      })
    }, TICK_MS)
    tick.unref()
    this.timers.add(tick as unknown as NodeJS.Timeout)
  }

  stop (): void {
    this.running = false
    for (const t of this.timers) clearTimeout(t)
    this.timers.clear()
  }

  /** Gossips this validator's anchor share of a final version. */
  async publishShare (share: WireShare): Promise<void> {
    await this.publish(share, topics.shares(this.d.id))
  }

  /** Something may now be worth a new version (a contribution was decided). */
  poke (): void {
    void this.enqueue(async () => { await this.maybeStart() })
  }

  /** Runs `task` on the consensus queue (one step at a time). */
  async enqueue (task: () => Promise<void>): Promise<void> {
    const next = this.queue.then(async () => { if (this.running) await task() })
    this.queue = next.catch(err => { this.log.error({ err }, 'consensus step failed') })
    await this.queue
  }

  /** After a version became final here (decided or synced): the next height, nothing open. */
  advanced (): void {
    this.driver.moveTo(this.o.versions.nextHeight)
    this.nextAt = Date.now() + this.d.manifest.consensus.versionIntervalMs
    const wait = setTimeout(() => { this.timers.delete(wait); this.poke() }, this.d.manifest.consensus.versionIntervalMs)
    wait.unref()
    this.timers.add(wait)
  }

  /** Height `height`'s setup; `records`: what its version will append (the propose timeout's allowance). */
  private setup (height: number, records = 0): HeightSetup | undefined {
    const set = this.o.setFor(height)
    if (set === undefined || set.validators.length === 0) return undefined
    const validators = set.validators.map(v => ({ address: v.address, power: v.stake }))
    const schedule = proposerSchedule(validators)
    const c = this.d.manifest.consensus
    return {
      height,
      validators,
      proposer: round => schedule(height, round),
      timeouts: timeoutsForWork({ proposeMs: c.proposeTimeoutMs, prevoteMs: c.prevoteTimeoutMs, precommitMs: c.precommitTimeoutMs, deltaMs: c.timeoutDeltaMs }, records)
    }
  }

  /** Starts the next height when there is something to include (at most every versionInterval), or when others already have. */
  private async maybeStart (): Promise<void> {
    if (this.driver.isOpen) return
    const set = this.o.setFor(this.driver.height)
    if (set === undefined) return
    if (!this.driver.othersStarted(this.driver.height) && (Date.now() < this.nextAt || !await this.o.versions.hasWork(set))) return
    // a saved state for this height is the record of the votes signed: always resume from it
    const saved = await this.o.db.consensus.get(this.d.id)
    await this.open(saved !== undefined && saved.height === this.driver.height ? await loadState(saved.state) : undefined)
  }

  private async open (state: HeightState<VersionValue> | undefined): Promise<void> {
    const set = this.o.setFor(this.driver.height)
    const records = set === undefined ? 0 : await this.o.versions.pendingRecords(set)
    const setup = this.setup(this.driver.height, records)
    if (setup === undefined || this.driver.isOpen) return
    this.log.debug({ height: setup.height, resumed: state !== undefined, records, proposeMs: setup.timeouts.proposeMs }, 'height started')
    await this.exec(this.driver.open(setup, state))
  }

  // ---- effects -------------------------------------------------------------------------

  private async exec (effects: DriverEffect[]): Promise<void> {
    for (const e of effects) {
      switch (e.kind) {
        case 'persist':
          // synced: a vote that left must survive any crash of this machine
          await this.o.db.batch([this.o.db.consensus.putOp(this.d.id, { height: e.height, state: saveState(e.state) })], { sync: true })
          break
        case 'send-proposal':
          await this.publish({ kind: 'proposal', height: e.proposal.height, round: e.proposal.round, validRound: e.proposal.validRound, version: e.proposal.value.bytes, signature: fromHex(e.signature, 65), sentAt: Date.now() })
          if (this.o.fault === 'proposal-flood') await flood(this.faultContext(), e.proposal.height, e.proposal.round)
          break
        case 'send-vote':
          await this.publish({ kind: 'vote', type: e.vote.vote.type, round: e.vote.vote.round, header: e.vote.header, signature: fromHex(e.vote.signature, 65), sentAt: Date.now() })
          if (this.o.fault !== undefined) await misbehave(this.faultContext(), e.vote)
          break
        case 'schedule-timeout':
          this.setTimer(e.height, e.step, e.round, e.ms)
          // a height not decided in its first round may be final elsewhere already (this node
          // missed its precommits, restarting): ask peers now rather than at the next periodic sync
          if (e.step === 'propose' && e.round > 0) this.o.onBehind()
          break
        case 'request-value': await this.buildValue(e.height, e.round); break
        case 'validate': {
          // judged once what it vouches for is here, fetched off the queue: a slow fetch (a
          // restarted node's missed contributions) must not hold votes, timeouts and catch-up
          const judging = this.validate(e.height, e.value)
          this.judging.add(judging)
          void judging.finally(() => this.judging.delete(judging))
          break
        }
        case 'decide':
          await this.o.onFinal(e.round, e.value, e.certificate)
          return
        case 'evidence':
          await this.o.db.evidence.keep({ datanet: this.d.id, height: e.height, round: e.first.vote.round, type: e.first.vote.type, validator: e.first.vote.validator, first: e.first, second: e.second })
          this.log.warn({ validator: e.first.vote.validator, height: e.height, round: e.first.vote.round }, 'equivocation evidence kept')
          this.o.onEvidence?.()
          break
        case 'proposal-evidence':
          this.log.warn({ proposer: e.proposer, height: e.height, round: e.round }, 'two proposals for one round: the second is kept, later ones dropped')
          break
        case 'behind':
          this.o.onBehind()
          break
      }
    }
  }

  /** Fetches what a proposed value vouches for and this node lacks, then judges it on the queue. */
  private async validate (height: number, value: VersionValue): Promise<void> {
    const set = this.o.setFor(height)
    const t0 = performance.now()
    if (set !== undefined) await this.o.versions.fetchVouched(value, set).catch(() => {})
    await this.enqueue(async () => {
      // final meanwhile (decided, or caught up): nothing to judge (moving on cleared what waited)
      if (this.driver.height !== height) return
      const why = set === undefined ? 'validator set not known yet' : await this.o.versions.problem(value, set, { fetch: false })
      // what it vouches for not fetched (yet): refused in this round only, judged again if proposed again
      const lasting = why === undefined || !why.startsWith(NOT_HERE_YET)
      if (why !== undefined) this.log[lasting ? 'warn' : 'info']({ height, version: value.cid.toString(), why }, lasting ? 'invalid proposal' : 'proposal not judged: what it vouches for is not here yet')
      else this.log.debug({ height, contributions: value.version.contributions.length, ms: Math.round(performance.now() - t0) }, 'proposal valid')
      await this.exec(this.driver.validated(value, why === undefined, lasting))
    })
  }

  private setTimer (height: number, step: 'propose' | 'prevote' | 'precommit', round: number, ms: number): void {
    const t = setTimeout(() => {
      this.timers.delete(t)
      // a propose timeout waits (a while) for proposals whose contributions are being fetched,
      // as it did when the fetch held the queue: a validator that lacked a contribution for a
      // moment prevotes the value rather than nil, and the round is not lost
      const fetching = step === 'propose' && this.judging.size > 0
        ? Promise.race([Promise.all([...this.judging]), new Promise(resolve => { const g = setTimeout(resolve, FETCH_GRACE_MS); g.unref() })])
        : Promise.resolve()
      void fetching.then(async () => { await this.enqueue(async () => { await this.exec(this.driver.timeout(height, step, round)) }) })
    }, ms)
    t.unref()
    this.timers.add(t)
  }

  private faultContext (): FaultContext {
    return { fault: this.o.fault, datanet: this.d.id, wallet: this.o.wallet, domain: this.o.domain, log: this.log, setup: h => this.setup(h), publish: async m => { await this.publish(m) }, floodCount: this.o.floodCount, floodBytes: this.o.floodBytes }
  }

  private async publish (msg: Wire, topic = topics.consensus(this.d.id)): Promise<void> {
    try {
      await this.o.router.publish(topic, encodeCbor(msg))
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, 'consensus publish failed')
    }
  }

  /** This node proposes: builds its value, or retries shortly when it has nothing yet. */
  private async buildValue (height: number, round: number): Promise<void> {
    const set = this.o.setFor(height)
    const t0 = performance.now()
    const value = set === undefined ? undefined : await this.o.versions.build(height, set, this.o.wallet.address, Date.now())
    this.log.debug({ height, round, contributions: value?.version.contributions.length ?? 0, ms: Math.round(performance.now() - t0) }, 'proposal built')
    if (value === undefined) {
      // others started this height for a contribution our verdicts have not caught up with yet
      const retry = setTimeout(() => {
        this.timers.delete(retry)
        void this.enqueue(async () => {
          const s = this.driver.state
          if (this.driver.height === height && s !== undefined && s.round === round && s.step === 'propose') await this.buildValue(height, round)
        })
      }, 100)
      retry.unref()
      this.timers.add(retry)
      return
    }
    await this.exec(this.driver.value(round, value))
  }

  // ---- inbound -------------------------------------------------------------------------

  private async deliver (msg: DriverInbound): Promise<void> {
    const effects = this.driver.receive(msg)
    await this.exec(effects)
    // a message for this height while nothing is open: others started it
    if (!this.driver.isOpen && this.driver.othersStarted(this.driver.height)) await this.maybeStart()
  }
}
