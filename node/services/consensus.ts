import { recoverAddress, type SigningKey, type Wallet } from 'ethers'
import { CID } from 'multiformats/cid'
import { decodeCbor, encodeCbor } from '../../src/codec/cbor.ts'
import { contributionDomain } from '../../src/contribution/contribution.ts'
import { bytesEqual, concatBytes, fromHex, toHex } from '../../src/codec/hash.ts'
import { HeightMachine, proposerSchedule } from '../../src/consensus/machine.ts'
import {
  ZERO32, decodeVersion, headerOf, nilHeader, proposalDigest, validatorSetHash, versionValue, voteDigest, voteSigner,
  type SignedVote, type Version, type VersionHeader, type VersionValue
} from '../../src/consensus/version.ts'
import { decodeVerdict, verdictSigner } from '../../src/contribution/verdict.ts'
import { splitShard } from '../../src/datanet/shard.ts'
import { stakeOf, type ValidatorSet } from '../../src/datanet/manifest.ts'
import { MerkleFrontier } from '../../src/merkle/tree.ts'
import { ignore, reject, type GossipRouter, type TopicHandler } from '../../src/network/gossip.ts'
import { datanetTopicScoreParams } from '../../src/network/topics.ts'
import { heightKey } from '../../src/storage/repository.ts'
import { contributionCid, contributionJson, decodeContribution } from '../../src/contribution/contribution.ts'
import { peerIdFromString } from '@libp2p/peer-id'
import type { SyncRequest, SyncedVersion, VersionSync } from '../../src/network/version-sync.ts'
import { getBlock, pin } from './blocks.ts'
import type { KeyedMutex } from './locks.ts'
import type { TypedDataDomain } from 'ethers'
import type { DomainBinding } from '../../src/codec/eip712.ts'
import type { ConsensusEffect, HeightState, Proposal, Validator, Vote } from '../../src/consensus/types.ts'
import type { ContributionEntry, InferenceEntry, StateDatabase, VersionEntry } from '../../src/storage/state-db.ts'
import { addShares, tallyRoot, talliesFromJSON, talliesToJSON, totalOf, type Tallies } from '../../src/attribution/tallies.ts'
import type { FollowedDatanet } from './datanets.ts'
import type { Helia } from '@helia/interface'
import type { Logger } from '../logger.ts'

export const consensusTopic = (datanet: string): string => `/datanet/1/${datanet}/consensus`

/** Contributions per version, at most: keeps a proposal well inside one gossip message. */
const MAX_CONTRIBUTIONS = 64
/** Inference events per version, at most. */
const MAX_INFERENCES = 256
const TICK_MS = 2000
/** Messages for heights this far ahead are kept until the node gets there. */
const MAX_AHEAD = 2

type Machine = HeightMachine<VersionValue>
type WireProposal = { kind: 'proposal', height: number, round: number, validRound: number, version: Uint8Array, signature: Uint8Array, sentAt: number }
type WireVote = { kind: 'vote', type: 'prevote' | 'precommit', round: number, header: VersionHeader, signature: Uint8Array, sentAt: number }
type Wire = WireProposal | WireVote
type Inbound = { kind: 'proposal', proposal: Proposal<VersionValue> } | { kind: 'vote', vote: SignedVote }

export interface ConsensusServiceOptions {
  db: StateDatabase
  helia: Helia
  router: GossipRouter
  sync: VersionSync
  wallet: Wallet
  binding: Omit<DomainBinding, 'datanet'>
  logger: Logger
  onFinal?: (entry: VersionEntry) => void
  /**
   * The set that decides a height (from the chain: fixed at each anchor); undefined while
   * it is not known yet, and the height waits. Default: the manifest's genesis set.
   */
  validatorSet?: (d: FollowedDatanet, height: number) => ValidatorSet | undefined
  /** Per-contribution lock shared with the verdict service (both rewrite contribution entries). */
  locks?: KeyedMutex
  /** Equivocation evidence was kept for a datanet (the chain service submits it). */
  onEvidence?: (datanet: string) => void
  /**
   * Fault injection for tests of the protocol's defences (DATANET_FAULT): `equivocate`
   * makes this validator also sign a nil prevote wherever it prevotes a value.
   */
  fault?: 'equivocate'
  /** Verified inference events (absent: versions carry none). */
  inferences?: InferenceSource
}

/** What consensus needs of the inference service. */
export interface InferenceSource {
  pending: (d: FollowedDatanet, limit: number) => Promise<InferenceEntry[]>
  /** Known, or fetched and verified; undefined when it does not verify here. */
  ensure: (d: FollowedDatanet, cid: string) => Promise<InferenceEntry | undefined>
  markIncluded: (cids: readonly string[], height: number) => Promise<void>
}

export interface ConsensusStatus {
  height: number
  round: number | null
  step: string | null
  lastFinal: number
}

/** One datanet's consensus: the machine of the height in progress and everything around it. */
class DatanetConsensus {
  private readonly opts: ConsensusServiceOptions
  private readonly d: FollowedDatanet
  private readonly domain: TypedDataDomain
  /** The set of the height in progress (and its proposer schedule), per height. */
  private set: { height: number, set: ValidatorSet, validators: Validator[], schedule: (height: number, round: number) => string } | undefined
  private readonly log: Logger
  private machine: Machine | undefined
  private height = 1
  private last: VersionEntry | undefined
  /** Values by id: proposals seen, and our own. */
  private readonly values = new Map<string, VersionValue>()
  private readonly valid = new Map<string, boolean>()
  private readonly signedVotes = new Map<string, SignedVote>()
  private readonly future = new Map<number, Inbound[]>()
  private readonly timers = new Set<NodeJS.Timeout>()
  private queue: Promise<void> = Promise.resolve()
  private running = false
  private nextAt = 0

  constructor (opts: ConsensusServiceOptions, d: FollowedDatanet) {
    this.opts = opts
    this.d = d
    this.domain = contributionDomain(opts.binding, d.id)
    this.log = opts.logger.child({ datanet: d.id })
  }

  get currentHeight (): number {
    return this.height
  }

  /** The height in progress, its round and step (null round when no height is open). */
  status (): ConsensusStatus {
    const s = this.machine?.state
    return { height: this.height, round: s?.round ?? null, step: s?.step ?? null, lastFinal: this.last?.height ?? 0 }
  }

  /** The validator set that decides `height`, or undefined while the chain has not fixed it yet. */
  setFor (height: number): ValidatorSet | undefined {
    return this.opts.validatorSet === undefined ? this.d.validators : this.opts.validatorSet(this.d, height)
  }

  private setOf (height: number): NonNullable<DatanetConsensus['set']> | undefined {
    if (this.set?.height === height) return this.set
    const set = this.setFor(height)
    if (set === undefined || set.validators.length === 0) return undefined
    const validators = set.validators.map(v => ({ address: v.address, power: v.stake }))
    const entry = { height, set, validators, schedule: proposerSchedule(validators) }
    if (height === this.height) this.set = entry
    return entry
  }

  private isValidatorAt (height: number): boolean {
    const set = this.setOf(height)
    return set !== undefined && stakeOf(set.set, this.opts.wallet.address) !== undefined
  }

  async start (): Promise<void> {
    this.running = true
    const versions = await this.opts.db.versionsOf(this.d.id, { reverse: true, limit: 1 })
    this.last = versions[0]
    this.height = (this.last?.height ?? 0) + 1
    this.opts.router.register(this.topicHandler())
    const saved = await this.opts.db.consensus.get(this.d.id)
    if (saved !== undefined && saved.height === this.height) {
      // resume the height in progress exactly where it was: never a different vote for a (round, type)
      await this.enqueue(async () => { await this.open(await this.loadState(saved.state)) })
    } else {
      this.nextAt = Date.now() + this.d.manifest.consensus.versionIntervalMs
    }
    let ticks = 0
    const tick = setInterval(() => {
      ticks++
      void this.enqueue(async () => {
        if (this.machine !== undefined) await this.run(this.machine.handle({ kind: 'tick' }))
        else await this.maybeStart()
      })
      // nodes learn of versions made without them (after a partition or a restart), idle or mid-height
      if (ticks % 5 === 0) this.catchUp()
    }, TICK_MS)
    tick.unref()
    this.timers.add(tick as unknown as NodeJS.Timeout)
    // a node that starts late or restarts asks its peers for what it missed
    const first = setTimeout(() => { this.timers.delete(first); this.catchUp() }, 1000)
    first.unref()
    this.timers.add(first)
  }

  stop (): void {
    this.running = false
    for (const t of this.timers) clearTimeout(t)
    this.timers.clear()
  }

  /** Something may now be worth a new version (a contribution was decided). */
  poke (): void {
    void this.enqueue(async () => { await this.maybeStart() })
  }

  private async enqueue (task: () => Promise<void>): Promise<void> {
    const next = this.queue.then(async () => { if (this.running) await task() })
    this.queue = next.catch(err => { this.log.error({ err }, 'consensus step failed') })
    await this.queue
  }

  private async pending (): Promise<ContributionEntry[]> {
    const out: ContributionEntry[] = []
    for await (const [, entry] of this.opts.db.contributions.entries()) {
      if (entry.datanet === this.d.id && entry.status === 'accepted' && entry.version === null) out.push(entry)
    }
    return out.sort((a, b) => (a.cid < b.cid ? -1 : a.cid > b.cid ? 1 : 0)).slice(0, MAX_CONTRIBUTIONS)
  }

  private async pendingInferences (): Promise<InferenceEntry[]> {
    return (await this.opts.inferences?.pending(this.d, MAX_INFERENCES)) ?? []
  }

  /** The cumulative tallies after a final version (empty before the first). */
  private async talliesAt (height: number): Promise<Tallies> {
    if (height === 0) return new Map()
    const json = await this.opts.db.tallies.get(`${this.d.id}/${height.toString(16).padStart(16, '0')}`)
    return json === undefined ? new Map() : talliesFromJSON(json)
  }

  /** The tallies after adding these events' shares to the last version's. */
  private async talliesWith (events: readonly InferenceEntry[]): Promise<Tallies> {
    let tallies = await this.talliesAt(this.last?.height ?? 0)
    for (const e of events) tallies = addShares(tallies, e.shares.map(s => ({ address: s.address, amount: BigInt(s.amount) })))
    return tallies
  }

  /** Starts the next height when there is something to include (at most every versionInterval), or when others already have. */
  private async maybeStart (): Promise<void> {
    if (this.machine !== undefined) return
    // the chain has not fixed this height's validator set yet (its anchor is not in)
    if (this.setOf(this.height) === undefined) return
    const othersStarted = this.future.has(this.height)
    if (!othersStarted && (Date.now() < this.nextAt || ((await this.pending()).length === 0 && (await this.pendingInferences()).length === 0))) return
    await this.open(undefined)
  }

  private async open (state: HeightState<VersionValue> | undefined): Promise<void> {
    const height = this.height
    const set = this.setOf(height)
    if (set === undefined) return
    this.machine = new HeightMachine<VersionValue>({
      height,
      validators: set.validators,
      self: this.isValidatorAt(height) ? this.opts.wallet.address : undefined,
      timeouts: {
        proposeMs: this.d.manifest.consensus.proposeTimeoutMs,
        prevoteMs: this.d.manifest.consensus.prevoteTimeoutMs,
        precommitMs: this.d.manifest.consensus.precommitTimeoutMs,
        deltaMs: this.d.manifest.consensus.timeoutDeltaMs
      },
      proposer: round => set.schedule(height, round),
      idOf: v => v.id,
      isValid: v => this.valid.get(v.id) === true
    }, state)
    this.log.debug({ height, resumed: state !== undefined }, 'height started')
    await this.run(this.machine.handle({ kind: 'start' }))
    for (const msg of this.future.get(height) ?? []) await this.deliver(msg)
    this.future.delete(height)
  }

  // ---- effects -------------------------------------------------------------------------

  private async run (effects: Array<ConsensusEffect<VersionValue>>): Promise<void> {
    if (effects.length === 0) return
    // Safety on disk: the state (step, lock, valid value, every vote signed) is written before anything it produced is sent.
    if (effects.some(e => e.kind === 'broadcast-vote' || e.kind === 'broadcast-proposal') && this.machine !== undefined) {
      await this.opts.db.consensus.put(this.d.id, { height: this.height, state: this.saveState(this.machine.state) })
    }
    for (const effect of effects) {
      switch (effect.kind) {
        case 'broadcast-proposal': await this.sendProposal(effect.proposal); break
        case 'broadcast-vote': await this.sendVote(effect.vote); break
        case 'schedule-timeout': this.setTimer(effect.step, effect.round, effect.ms); break
        case 'request-value': await this.buildValue(effect.round); break
        case 'decide': await this.decide(effect.round, effect.value, effect.certificate); return
        case 'evidence':
          await this.opts.db.evidence.put(`${this.d.id}/${this.height}/${effect.first.round}/${effect.first.type}/${effect.first.validator}`, { first: this.signedVotes.get(this.voteKey(effect.first)), second: this.signedVotes.get(this.voteKey(effect.second)) } as Record<string, unknown>)
          this.log.warn({ validator: effect.first.validator, height: this.height, round: effect.first.round }, 'equivocation evidence kept')
          this.opts.onEvidence?.(this.d.id)
          break
      }
    }
  }

  private voteKey (v: Vote): string {
    return `${v.height}/${v.round}/${v.type}/${v.validator.toLowerCase()}/${v.valueId ?? 'nil'}`
  }

  private setTimer (step: 'propose' | 'prevote' | 'precommit', round: number, ms: number): void {
    const height = this.height
    const t = setTimeout(() => {
      this.timers.delete(t)
      void this.enqueue(async () => {
        if (this.machine !== undefined && this.height === height) await this.run(this.machine.handle({ kind: 'timeout', step, round }))
      })
    }, ms)
    t.unref()
    this.timers.add(t)
  }

  private sign (digest: string): Uint8Array {
    return fromHex((this.opts.wallet.signingKey as SigningKey).sign(digest).serialized, 65)
  }

  private async publish (msg: Wire): Promise<void> {
    try {
      await this.opts.router.publish(consensusTopic(this.d.id), encodeCbor(msg))
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, 'consensus publish failed')
    }
  }

  private async sendProposal (p: Proposal<VersionValue>): Promise<void> {
    const signature = this.sign(proposalDigest(this.domain, p.height, p.round, p.validRound, p.value.id))
    await this.publish({ kind: 'proposal', height: p.height, round: p.round, validRound: p.validRound, version: p.value.bytes, signature, sentAt: Date.now() })
  }

  private async sendVote (v: Vote): Promise<void> {
    if (v.validator.toLowerCase() !== this.opts.wallet.address.toLowerCase()) {
      // relaying another validator's vote (the prevotes behind our valid value): its own signed bytes, never ours
      const original = this.signedVotes.get(this.voteKey(v))
      if (original !== undefined) await this.publish({ kind: 'vote', type: v.type, round: v.round, header: original.header, signature: fromHex(original.signature, 65), sentAt: Date.now() })
      return
    }
    const value = v.valueId === null ? undefined : this.values.get(v.valueId)
    // A vote for a value whose header we no longer hold (after a restart) is not re-sent:
    // signing any other header for it would be a second, conflicting vote.
    if (v.valueId !== null && value === undefined) return
    const header = value === undefined ? nilHeader(v.height) : headerOf(value)
    const signature = this.sign(voteDigest(this.domain, v.type, v.round, header))
    this.signedVotes.set(this.voteKey(v), { vote: v, header, signature: toHex(signature) })
    await this.publish({ kind: 'vote', type: v.type, round: v.round, header, signature, sentAt: Date.now() })
    if (this.opts.fault === 'equivocate' && v.type === 'prevote' && v.valueId !== null) {
      const nil = nilHeader(v.height)
      this.log.warn({ height: v.height, round: v.round }, 'fault injection: signing a conflicting nil prevote')
      await this.publish({ kind: 'vote', type: v.type, round: v.round, header: nil, signature: this.sign(voteDigest(this.domain, v.type, v.round, nil)), sentAt: Date.now() })
    }
  }

  // ---- values --------------------------------------------------------------------------

  /** The next version: accepted contributions not yet included, their records appended to the tree. */
  private async buildValue (round: number): Promise<void> {
    const pending = await this.pending()
    const events = await this.pendingInferences()
    if (pending.length === 0 && events.length === 0) {
      // Others started this height because they accepted a contribution our verdicts have
      // not caught up with yet: try again shortly rather than let the round time out.
      const height = this.height
      const retry = setTimeout(() => {
        this.timers.delete(retry)
        void this.enqueue(async () => {
          const s = this.machine?.state
          if (this.height === height && s !== undefined && s.round === round && s.step === 'propose') await this.buildValue(round)
        })
      }, 100)
      retry.unref()
      this.timers.add(retry)
      return
    }
    const contributions: Version['contributions'] = []
    for (const entry of pending) {
      const verdicts = (await this.opts.db.verdictsOf(entry.cid)).filter(v => v.accept).map(v => fromHex(v.bytes))
      contributions.push({ cid: CID.parse(entry.cid), verdicts })
    }
    const built = await this.appendRecords(contributions.map(c => c.cid))
    const tallies = await this.talliesWith(events)
    const version: Version = {
      datanet: this.d.id,
      height: this.height,
      parent: this.last === undefined ? null : CID.parse(this.last.cid),
      contributions,
      rejected: [],
      inferences: events.map(e => CID.parse(e.cid)),
      datasetRoot: built.tree.root(),
      recordCount: built.tree.size,
      attributionRoot: tallyRoot(tallies),
      totalAttributed: totalOf(tallies).toString(),
      validatorSetHash: validatorSetHash((this.setOf(this.height)?.set ?? this.d.validators).validators),
      proposer: this.opts.wallet.address,
      timestamp: Date.now()
    }
    const value = await versionValue(version)
    this.values.set(value.id, value)
    this.valid.set(value.id, true)
    if (this.machine !== undefined) await this.run(this.machine.handle({ kind: 'value', round, value }))
  }

  /** Appends the contributions' records (skipping any already in the dataset) to the last version's tree. */
  private async appendRecords (cids: CID[]): Promise<{ tree: MerkleFrontier, added: Uint8Array[] }> {
    const tree = this.last === undefined ? new MerkleFrontier() : MerkleFrontier.fromJSON(this.last.frontier)
    const digest = fromHex(this.d.digest, 32)
    const seen = new Set<string>()
    const added: Uint8Array[] = []
    for (const cid of cids) {
      const entry = await this.opts.db.contributions.get(cid.toString())
      if (entry === undefined) throw new Error(`contribution ${cid.toString()} unknown`)
      for (const s of entry.contribution.shards as string[]) {
        const records = splitShard(await getBlock(this.opts.helia, CID.parse(s), { signal: AbortSignal.timeout(30_000) }))
        const known = await this.opts.db.dataset.getMany(records.map(r => concatBytes(digest, r.hash)))
        records.forEach((r, i) => {
          const key = Buffer.from(r.hash).toString('latin1')
          if (known[i] !== undefined || seen.has(key)) return
          seen.add(key)
          tree.append(r.hash)
          added.push(r.hash)
        })
      }
    }
    return { tree, added }
  }

  /** A proposal is valid only if every certificate verifies against the set and every root recomputes exactly. */
  private async validate (value: VersionValue): Promise<boolean> {
    const v = value.version
    const fail = (why: string): boolean => { this.log.warn({ height: v.height, version: value.cid.toString(), why }, 'invalid proposal'); return false }
    if (v.datanet !== this.d.id || v.height !== this.height) return fail('datanet or height')
    const parent = this.last === undefined ? null : this.last.cid
    if ((v.parent?.toString() ?? null) !== parent) return fail('parent')
    const set = this.setOf(v.height)?.set
    if (set === undefined) return fail('validator set not known yet')
    if (!bytesEqual(v.validatorSetHash, validatorSetHash(set.validators))) return fail('validator set')
    if (v.rejected.length !== 0) return fail('rejected')
    if ((v.contributions.length === 0 && v.inferences.length === 0) || v.contributions.length > MAX_CONTRIBUTIONS || v.inferences.length > MAX_INFERENCES) return fail('contribution or inference count')
    const events = await this.includedEvents(v)
    if (typeof events === 'string') return fail(events)
    const tallies = await this.talliesWith(events)
    if (!bytesEqual(v.attributionRoot, tallyRoot(tallies)) || v.totalAttributed !== totalOf(tallies).toString()) return fail('attribution root does not recompute')
    let previous = ''
    for (const c of v.contributions) {
      const cid = c.cid.toString()
      if (cid <= previous) return fail('contributions not sorted')
      previous = cid
      const entry = await this.opts.db.contributions.get(cid)
      if (entry !== undefined && entry.datanet !== this.d.id) return fail(`contribution ${cid} is another datanet's`)
      if (entry !== undefined && entry.version !== null) return fail(`contribution ${cid} already included`)
      let stake = 0n
      const signers = new Set<string>()
      for (const bytes of c.verdicts) {
        let verdict
        try { verdict = decodeVerdict(bytes) } catch { return fail('malformed verdict') }
        const signer = verdictSigner(verdict, this.opts.binding)
        if (signer === undefined || signer !== verdict.validator || !verdict.accept || verdict.contribution.toString() !== cid || verdict.datanet !== this.d.id) return fail('bad verdict')
        const s = stakeOf(set, signer)
        if (s === undefined || signers.has(signer)) return fail('verdict signer')
        signers.add(signer)
        stake += s
      }
      if (stake * 3n < set.total * 2n) return fail(`contribution ${cid} lacks an accept quorum`)
      // vouched for by the quorum: a node that missed its gossip fetches it now
      if (entry === undefined && !await this.ensureContribution(c.cid)) return fail(`contribution ${cid} cannot be fetched`)
    }
    let built
    try {
      built = await this.appendRecords(v.contributions.map(c => c.cid))
    } catch (err) {
      return fail(`records: ${(err as Error).message}`)
    }
    if (!bytesEqual(built.tree.root(), v.datasetRoot) || built.tree.size !== v.recordCount) return fail('dataset root')
    return true
  }

  /** The events a version includes, each verified here and not in an earlier version; or why not. */
  private async includedEvents (v: Version): Promise<InferenceEntry[] | string> {
    if (v.inferences.length === 0) return []
    if (this.opts.inferences === undefined) return 'inference events, but this node has no inference service'
    const out: InferenceEntry[] = []
    let previous = ''
    for (const c of v.inferences) {
      const cid = c.toString()
      if (cid <= previous) return 'inference events not sorted'
      previous = cid
      const e = await this.opts.inferences.ensure(this.d, cid)
      if (e === undefined) return `inference event ${cid} does not verify`
      if (e.included !== null && e.included !== v.height) return `inference event ${cid} already included`
      if (e.version >= v.height) return `inference event ${cid} credits version ${e.version}, not before ${v.height}`
      out.push(e)
    }
    return out
  }

  // ---- decisions -----------------------------------------------------------------------

  private async decide (round: number, value: VersionValue, certificate: Vote[]): Promise<void> {
    const entries = certificate.map(c => ({ validator: c.validator, signature: this.signedVotes.get(this.voteKey(c))?.signature ?? '' }))
    await this.applyFinal(round, value, entries)
  }

  /** Makes a version final: stores it, extends the dataset, marks its contributions, moves to the next height. */
  private async applyFinal (round: number, value: VersionValue, certificate: VersionEntry['certificate']): Promise<void> {
    const { db, helia } = this.opts
    const v = value.version
    const built = await this.appendRecords(v.contributions.map(c => c.cid))
    await helia.blockstore.put(value.cid, value.bytes)
    await pin(helia, value.cid)
    const digest = fromHex(this.d.digest, 32)
    const start = (this.last?.recordCount ?? 0)
    await db.dataset.putMany(built.added.map((h, i) => [concatBytes(digest, h), start + i]))
    await db.leaves.putMany(built.added.map((h, i) => [concatBytes(digest, heightKey(start + i)), h]))
    const entry: VersionEntry = {
      datanet: this.d.id,
      height: v.height,
      cid: value.cid.toString(),
      parent: v.parent?.toString() ?? null,
      round,
      datasetRoot: toHex(v.datasetRoot),
      recordCount: v.recordCount,
      attributionRoot: toHex(v.attributionRoot),
      totalAttributed: v.totalAttributed,
      validatorSetHash: toHex(v.validatorSetHash),
      contributions: v.contributions.map(c => c.cid.toString()),
      certificate,
      frontier: built.tree.toJSON(),
      decidedAt: Date.now(),
      anchor: null
    }
    const events = await this.includedEvents(v)
    if (typeof events === 'string') throw new Error(`final version ${v.height}: ${events}`)
    await db.tallies.put(`${this.d.id}/${v.height.toString(16).padStart(16, '0')}`, talliesToJSON(await this.talliesWith(events)))
    await db.versions.put(`${this.d.id}/${v.height.toString(16).padStart(16, '0')}`, entry)
    await this.opts.inferences?.markIncluded(v.inferences.map(c => c.toString()), v.height)
    for (const cid of entry.contributions) {
      const mark = async (): Promise<void> => {
        const c = await db.contributions.get(cid)
        if (c !== undefined) await db.contributions.put(cid, { ...c, version: v.height })
      }
      await (this.opts.locks?.run(cid, mark) ?? mark())
    }
    this.log.info({ height: v.height, round, version: entry.cid, records: v.recordCount, contributions: entry.contributions.length, datasetRoot: entry.datasetRoot }, 'version final')
    this.last = entry
    this.height = v.height + 1
    this.machine = undefined
    this.values.clear()
    this.valid.clear()
    this.signedVotes.clear()
    await db.consensus.delete(this.d.id)
    this.nextAt = Date.now() + this.d.manifest.consensus.versionIntervalMs
    this.opts.onFinal?.(entry)
    const wait = setTimeout(() => { this.timers.delete(wait); this.poke() }, this.d.manifest.consensus.versionIntervalMs)
    wait.unref()
    this.timers.add(wait)
  }

  // ---- catch-up (DESIGN §4 flow 8) ------------------------------------------------------

  private syncing = false
  private lastSyncAt = 0

  /** Asks peers for final versions from the current height on; verifies and applies them in order. */
  catchUp (): void {
    if (this.syncing || Date.now() - this.lastSyncAt < 2000) return
    this.syncing = true
    this.lastSyncAt = Date.now()
    void this.syncFromPeers().finally(() => { this.syncing = false })
  }

  private async syncFromPeers (): Promise<void> {
    const peers = this.opts.router.subscribers(consensusTopic(this.d.id))
    for (const peer of peers) {
      for (;;) {
        let versions: SyncedVersion[]
        const from = this.height
        try {
          versions = await this.opts.sync.request(peerIdFromString(peer), { datanet: this.d.id, from, to: from + 31 })
        } catch (err) {
          this.log.debug({ peer, err: (err as Error).message }, 'version sync request failed')
          break
        }
        if (versions.length === 0) break
        let applied = 0
        for (const synced of versions) {
          const ok = await this.enqueueResult(async () => await this.applySynced(synced))
          if (!ok) break
          applied++
        }
        if (applied === 0) break
        this.log.info({ peer, from, applied, height: this.height - 1 }, 'caught up')
      }
    }
  }

  private async enqueueResult (task: () => Promise<boolean>): Promise<boolean> {
    let result = false
    await this.enqueue(async () => { result = await task() })
    return result
  }

  /** Verifies a served version (height, parent, certificate against the set, every root) and applies it. */
  private async applySynced (synced: SyncedVersion): Promise<boolean> {
    let value: VersionValue
    try {
      value = await versionValue(decodeVersion(synced.version))
    } catch {
      return false
    }
    const v = value.version
    if (v.height !== this.height || v.datanet !== this.d.id) return false
    if ((v.parent?.toString() ?? null) !== (this.last?.cid ?? null)) { this.log.warn({ height: v.height }, 'synced version does not link to our last'); return false }
    if (!Number.isSafeInteger(synced.round) || !Array.isArray(synced.certificate)) return false
    const header = headerOf(value)
    const digest = voteDigest(this.domain, 'precommit', synced.round, header)
    const set = this.setOf(v.height)?.set
    if (set === undefined) return false
    let stake = 0n
    const signers = new Set<string>()
    for (const c of synced.certificate) {
      let signer: string
      try { signer = recoverAddress(digest, c.signature) } catch { return false }
      const s = stakeOf(set, signer)
      if (s === undefined || signers.has(signer) || signer !== c.validator) return false
      signers.add(signer)
      stake += s
    }
    if (stake * 3n < set.total * 2n) { this.log.warn({ height: v.height }, 'synced version lacks a precommit quorum'); return false }
    for (const c of v.contributions) if (!await this.ensureContribution(c.cid)) return false
    const events = await this.includedEvents(v)
    if (typeof events === 'string') { this.log.warn({ height: v.height, why: events }, 'synced version\'s inference events do not verify'); return false }
    const tallies = await this.talliesWith(events)
    if (!bytesEqual(v.attributionRoot, tallyRoot(tallies)) || v.totalAttributed !== totalOf(tallies).toString()) { this.log.error({ height: v.height }, 'synced version\'s attribution root does not recompute'); return false }
    const built = await this.appendRecords(v.contributions.map(c => c.cid))
    if (!bytesEqual(built.tree.root(), v.datasetRoot) || built.tree.size !== v.recordCount) { this.log.error({ height: v.height }, 'synced version\'s dataset root does not recompute'); return false }
    await this.applyFinal(synced.round, value, synced.certificate)
    return true
  }

  /**
   * Makes sure a contribution that a certificate vouches for is here: fetched from peers,
   * pinned with its shards, recorded as accepted. For nodes that missed its gossip.
   */
  private async ensureContribution (cid: CID): Promise<boolean> {
    const key = cid.toString()
    if (await this.opts.db.contributions.has(key)) return true
    try {
      const bytes = await getBlock(this.opts.helia, cid, { signal: AbortSignal.timeout(10_000) })
      const contribution = decodeContribution(bytes, 100_000)
      if ((await contributionCid(bytes)).toString() !== key || contribution.datanet !== this.d.id) return false
      await pin(this.opts.helia, cid, AbortSignal.timeout(120_000))
      const put = async (): Promise<void> => {
        // gossip may have brought it meanwhile: a quorum vouched for it, so it is accepted either way
        const existing = await this.opts.db.contributions.get(key)
        await this.opts.db.contributions.put(key, existing !== undefined
          ? { ...existing, status: 'accepted', decidedAt: existing.decidedAt ?? Date.now() }
          : {
              cid: key, datanet: this.d.id, contribution: contributionJson(contribution), status: 'accepted', score: null,
              receivedAt: Date.now(), decidedAt: Date.now(), origin: 'sync', version: null, facts: null
            })
      }
      await (this.opts.locks?.run(key, put) ?? put())
      return true
    } catch (err) {
      this.log.warn({ contribution: key, err: (err as Error).message }, 'cannot fetch a contribution a certificate vouches for')
      return false
    }
  }

  /** Serves final versions for catch-up. */
  async serve (request: SyncRequest): Promise<SyncedVersion[]> {
    const out: SyncedVersion[] = []
    for (let h = request.from; h <= request.to; h++) {
      const entry = await this.opts.db.versions.get(`${this.d.id}/${h.toString(16).padStart(16, '0')}`)
      if (entry === undefined) break
      out.push({ version: await getBlock(this.opts.helia, CID.parse(entry.cid), { offline: true }), round: entry.round, certificate: entry.certificate })
    }
    return out
  }

  // ---- inbound -------------------------------------------------------------------------

  private async deliver (msg: Inbound): Promise<void> {
    const height = msg.kind === 'proposal' ? msg.proposal.height : msg.vote.vote.height
    if (height < this.height) return
    // others are past our height: some version is final that we lack
    if (height > this.height) this.catchUp()
    if (height > this.height || this.machine === undefined) {
      const list = this.future.get(height) ?? []
      if (list.length < 10_000) list.push(msg)
      this.future.set(height, list)
      if (height === this.height) await this.maybeStart()
      return
    }
    if (msg.kind === 'proposal') {
      const value = msg.proposal.value
      if (!this.valid.has(value.id)) {
        this.values.set(value.id, value)
        this.valid.set(value.id, await this.validate(value))
      }
      if (this.machine !== undefined && this.height === height) await this.run(this.machine.handle({ kind: 'proposal', proposal: msg.proposal }))
    } else {
      this.signedVotes.set(this.voteKey(msg.vote.vote), msg.vote)
      if (this.machine !== undefined) await this.run(this.machine.handle({ kind: 'vote', vote: msg.vote.vote }))
    }
  }

  private topicHandler (): TopicHandler<{ wire: Wire, inbound?: Inbound }> {
    return {
      topic: consensusTopic(this.d.id),
      kind: 'consensus',
      scoreParams: datanetTopicScoreParams(),
      decode: (data: Uint8Array) => {
        let wire: Wire
        try {
          wire = decodeCbor<Wire>(data)
        } catch {
          throw reject('CONSENSUS_ERROR_MALFORMED', 'not dag-cbor')
        }
        if (typeof wire !== 'object' || wire === null || (wire.kind !== 'proposal' && wire.kind !== 'vote') || !(wire.signature instanceof Uint8Array) || wire.signature.length !== 65) {
          throw reject('CONSENSUS_ERROR_MALFORMED', 'not a proposal or vote')
        }
        return { wire }
      },
      validate: async (msg) => {
        const { wire } = msg
        if (wire.kind === 'proposal') {
          let version: Version
          try { version = decodeVersion(wire.version) } catch (err) { throw reject('CONSENSUS_ERROR_MALFORMED', `proposal: ${(err as Error).message}`) }
          // [REJECT] for this datanet, and about the version it carries
          if (version.datanet !== this.d.id || version.height !== wire.height) throw reject('CONSENSUS_ERROR_WRONG_DATANET', 'proposal for another datanet or height')
          // [IGNORE] not for a height already final or far ahead
          if (wire.height < this.height) throw ignore('CONSENSUS_ERROR_STALE', 'proposal for a final height')
          if (wire.height > this.height + MAX_AHEAD) { this.catchUp(); throw ignore('CONSENSUS_ERROR_AHEAD', 'proposal far ahead') }
          const value = await versionValue(version)
          if (!bytesEqual(value.bytes, wire.version)) throw reject('CONSENSUS_ERROR_MALFORMED', 'version not canonical')
          // [REJECT] signed by the proposer of (height, round)
          const set = this.setOf(wire.height)
          // [IGNORE] a height whose validator set the chain has not fixed for us yet
          if (set === undefined) throw ignore('CONSENSUS_ERROR_SET_UNKNOWN', 'validator set of that height not known yet')
          const proposer = set.schedule(wire.height, wire.round)
          let signer: string | undefined
          try { signer = recoverAddress(proposalDigest(this.domain, wire.height, wire.round, wire.validRound, value.id), toHex(wire.signature)) } catch { signer = undefined }
          if (signer !== proposer) throw reject('CONSENSUS_ERROR_BAD_SIGNATURE', 'proposal not signed by the round\'s proposer')
          msg.inbound = { kind: 'proposal', proposal: { height: wire.height, round: wire.round, validRound: wire.validRound, value, proposer } }
        } else {
          const h = wire.header
          if (typeof h !== 'object' || h === null || !Number.isSafeInteger(h.height) || !Number.isSafeInteger(wire.round) || (wire.type !== 'prevote' && wire.type !== 'precommit')) throw reject('CONSENSUS_ERROR_MALFORMED', 'vote')
          if (h.height < this.height) throw ignore('CONSENSUS_ERROR_STALE', 'vote for a final height')
          if (h.height > this.height + MAX_AHEAD) { this.catchUp(); throw ignore('CONSENSUS_ERROR_AHEAD', 'vote far ahead') }
          const isNil = h.version === toHex(ZERO32)
          const vote: Vote = { type: wire.type, height: h.height, round: wire.round, valueId: isNil ? null : h.version, validator: '' }
          const sv: SignedVote = { vote, header: h, signature: toHex(wire.signature) }
          const signer = voteSigner(this.domain, sv)
          // [REJECT] signed by a validator of the datanet
          const set = this.setOf(h.height)
          if (set === undefined) throw ignore('CONSENSUS_ERROR_SET_UNKNOWN', 'validator set of that height not known yet')
          if (signer === undefined || stakeOf(set.set, signer) === undefined) throw reject('CONSENSUS_ERROR_NOT_VALIDATOR', 'vote not signed by a validator')
          vote.validator = signer
          msg.inbound = { kind: 'vote', vote: sv }
        }
      },
      handle: async (msg) => {
        const inbound = msg.inbound
        if (inbound !== undefined) await this.enqueue(async () => { await this.deliver(inbound) })
      }
    }
  }

  // ---- persistence of the machine state (values as their bytes) -------------------------

  private saveState (s: HeightState<VersionValue>): Record<string, unknown> {
    return { ...s, lockedValue: s.lockedValue === null ? null : toHex(s.lockedValue.bytes), validValue: s.validValue === null ? null : toHex(s.validValue.bytes) }
  }

  private async loadState (json: Record<string, unknown>): Promise<HeightState<VersionValue>> {
    const load = async (hex: unknown): Promise<VersionValue | null> => {
      if (typeof hex !== 'string') return null
      const value = await versionValue(decodeVersion(fromHex(hex)))
      this.values.set(value.id, value)
      this.valid.set(value.id, true)
      return value
    }
    return { ...(json as unknown as HeightState<VersionValue>), lockedValue: await load(json.lockedValue), validValue: await load(json.validValue) }
  }
}


/** Consensus for every followed datanet. */
export class ConsensusService {
  private readonly opts: ConsensusServiceOptions
  private readonly byDatanet = new Map<string, DatanetConsensus>()

  constructor (opts: ConsensusServiceOptions) {
    this.opts = opts
  }

  async follow (d: FollowedDatanet): Promise<void> {
    const c = new DatanetConsensus(this.opts, d)
    this.byDatanet.set(d.id, c)
    await c.start()
  }

  poke (datanet: string): void {
    this.byDatanet.get(datanet)?.poke()
  }

  async serve (request: SyncRequest): Promise<SyncedVersion[]> {
    return (await this.byDatanet.get(request.datanet)?.serve(request)) ?? []
  }

  height (datanet: string): number | undefined {
    return this.byDatanet.get(datanet)?.currentHeight
  }

  status (datanet: string): ConsensusStatus | undefined {
    return this.byDatanet.get(datanet)?.status()
  }

  stop (): void {
    for (const c of this.byDatanet.values()) c.stop()
  }
}

