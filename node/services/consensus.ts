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
import { stakeOf } from '../../src/datanet/manifest.ts'
import { MerkleFrontier } from '../../src/merkle/tree.ts'
import { ignore, reject, type GossipRouter, type TopicHandler } from '../../src/network/gossip.ts'
import { datanetTopicScoreParams } from '../../src/network/topics.ts'
import { heightKey } from '../../src/storage/repository.ts'
import { contributionCid, contributionJson, decodeContribution } from '../../src/contribution/contribution.ts'
import { peerIdFromString } from '@libp2p/peer-id'
import type { SyncRequest, SyncedVersion, VersionSync } from '../../src/network/version-sync.ts'
import { getBlock, pin } from './blocks.ts'
import type { TypedDataDomain } from 'ethers'
import type { DomainBinding } from '../../src/codec/eip712.ts'
import type { ConsensusEffect, HeightState, Proposal, Validator, Vote } from '../../src/consensus/types.ts'
import type { ContributionEntry, StateDatabase, VersionEntry } from '../../src/storage/state-db.ts'
import type { FollowedDatanet } from './datanets.ts'
import type { Helia } from '@helia/interface'
import type { Logger } from '../logger.ts'

export const consensusTopic = (datanet: string): string => `/datanet/1/${datanet}/consensus`

/** Contributions per version, at most: keeps a proposal well inside one gossip message. */
const MAX_CONTRIBUTIONS = 64
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
  private readonly validators: Validator[]
  private readonly schedule: (height: number, round: number) => string
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
    this.validators = d.validators.validators.map(v => ({ address: v.address, power: v.stake }))
    this.schedule = proposerSchedule(this.validators)
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

  private get isValidator (): boolean {
    return stakeOf(this.d.validators, this.opts.wallet.address) !== undefined
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

  /** Starts the next height when there is something to include (at most every versionInterval), or when others already have. */
  private async maybeStart (): Promise<void> {
    if (this.machine !== undefined) return
    const othersStarted = this.future.has(this.height)
    if (!othersStarted && (Date.now() < this.nextAt || (await this.pending()).length === 0)) return
    await this.open(undefined)
  }

  private async open (state: HeightState<VersionValue> | undefined): Promise<void> {
    const height = this.height
    this.machine = new HeightMachine<VersionValue>({
      height,
      validators: this.validators,
      self: this.isValidator ? this.opts.wallet.address : undefined,
      timeouts: {
        proposeMs: this.d.manifest.consensus.proposeTimeoutMs,
        prevoteMs: this.d.manifest.consensus.prevoteTimeoutMs,
        precommitMs: this.d.manifest.consensus.precommitTimeoutMs,
        deltaMs: this.d.manifest.consensus.timeoutDeltaMs
      },
      proposer: round => this.schedule(height, round),
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
  }

  // ---- values --------------------------------------------------------------------------

  /** The next version: accepted contributions not yet included, their records appended to the tree. */
  private async buildValue (round: number): Promise<void> {
    const pending = await this.pending()
    if (pending.length === 0) {
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
    const version: Version = {
      datanet: this.d.id,
      height: this.height,
      parent: this.last === undefined ? null : CID.parse(this.last.cid),
      contributions,
      rejected: [],
      datasetRoot: built.tree.root(),
      recordCount: built.tree.size,
      attributionRoot: ZERO32,
      totalAttributed: '0',
      validatorSetHash: validatorSetHash(this.d.validators.validators),
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
    if (!bytesEqual(v.validatorSetHash, validatorSetHash(this.d.validators.validators))) return fail('validator set')
    if (!bytesEqual(v.attributionRoot, ZERO32) || v.totalAttributed !== '0' || v.rejected.length !== 0) return fail('attribution')
    if (v.contributions.length === 0 || v.contributions.length > MAX_CONTRIBUTIONS) return fail('contribution count')
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
        const s = stakeOf(this.d.validators, signer)
        if (s === undefined || signers.has(signer)) return fail('verdict signer')
        signers.add(signer)
        stake += s
      }
      if (stake * 3n < this.d.validators.total * 2n) return fail(`contribution ${cid} lacks an accept quorum`)
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
    await db.versions.put(`${this.d.id}/${v.height.toString(16).padStart(16, '0')}`, entry)
    for (const cid of entry.contributions) {
      const c = await db.contributions.get(cid)
      if (c !== undefined) await db.contributions.put(cid, { ...c, version: v.height })
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
    let stake = 0n
    const signers = new Set<string>()
    for (const c of synced.certificate) {
      let signer: string
      try { signer = recoverAddress(digest, c.signature) } catch { return false }
      const s = stakeOf(this.d.validators, signer)
      if (s === undefined || signers.has(signer) || signer !== c.validator) return false
      signers.add(signer)
      stake += s
    }
    if (stake * 3n < this.d.validators.total * 2n) { this.log.warn({ height: v.height }, 'synced version lacks a precommit quorum'); return false }
    for (const c of v.contributions) if (!await this.ensureContribution(c.cid)) return false
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
      await this.opts.db.contributions.put(key, {
        cid: key, datanet: this.d.id, contribution: contributionJson(contribution), status: 'accepted', score: null,
        receivedAt: Date.now(), decidedAt: Date.now(), origin: 'sync', version: null, facts: null
      })
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
          const proposer = this.schedule(wire.height, wire.round)
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
          if (signer === undefined || stakeOf(this.d.validators, signer) === undefined) throw reject('CONSENSUS_ERROR_NOT_VALIDATOR', 'vote not signed by a validator')
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

