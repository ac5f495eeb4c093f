import { CID } from 'multiformats/cid'
import { bytesEqual, fromHex, toHex } from '../../src/codec/hash.ts'
import { tallyVerdicts } from '../../src/contribution/quorum.ts'
import { builtinRules, judge, type ContributionFacts, type ContributionRule } from '../../src/contribution/rules/index.ts'
import { decodeVerdict, encodeVerdict, signVerdict, verdictSigner, type Verdict } from '../../src/contribution/verdict.ts'
import { stakeOf } from '../../src/datanet/manifest.ts'
import { ignore, reject, type GossipRouter, type TopicHandler } from '../../src/network/gossip.ts'
import { datanetTopicScoreParams, topics } from '../../src/network/topics.ts'
import { ValidatorSets } from './validator-sets.ts'
import type { DomainBinding } from '../../src/codec/eip712.ts'
import type { TypedDataSigner } from '../../src/codec/eip712.ts'
import type { ContributionEntry, StateDatabase, VerdictEntry } from '../../src/storage/state-db.ts'
import type { FollowedDatanet } from './datanets.ts'
import type { Logger } from '../logger.ts'

export interface VerdictServiceOptions {
  db: StateDatabase
  router: GossipRouter
  signer: TypedDataSigner
  binding: Omit<DomainBinding, 'datanet'>
  rules: readonly ContributionRule[]
  logger: Logger
  onDecided?: (entry: ContributionEntry) => void
  /** A verdict stored here (received or this node's own), with its datanet. */
  onVerdict?: (datanet: string, verdict: VerdictEntry) => void
  /** Per-contribution lock shared with consensus, which marks entries with their version. */
  /** How often own verdicts on contributions no version includes yet are gossiped again. */
  regossipMs?: number
  /** Which set decides the next version (default: the manifest's genesis set). */
  sets?: ValidatorSets
}

interface GossipedVerdict { verdict: Verdict, bytes: Uint8Array }

const MAX_FUTURE_MS = 5 * 60_000
/** How often own verdicts on contributions not yet in a version are sent again, and how many per pass. */
const REGOSSIP_MS = 20_000
const REGOSSIP_MAX = 256
const REJECTED_REGOSSIP_MS = 10 * 60_000

/**
 * Verdicts: a validator judges every contribution it stores and gossips its signed
 * verdict; every node collects the verdicts of the datanet's validators and applies the
 * stake quorum rule to decide each contribution.
 */
export class VerdictService {
  private readonly opts: VerdictServiceOptions
  private readonly rules: readonly ContributionRule[]

  constructor (opts: VerdictServiceOptions) {
    this.opts = opts
    this.rules = [...builtinRules, ...opts.rules]
    this.sets = opts.sets ?? new ValidatorSets()
  }

  private readonly sets: ValidatorSets

  follow (datanet: FollowedDatanet): void {
    this.opts.router.register(this.topicHandler(datanet))
    this.followed.push(datanet)
  }

  private readonly followed: FollowedDatanet[] = []
  private timer: NodeJS.Timeout | undefined

  /** Re-gossips own verdicts on contributions no version includes yet, every `regossipMs`. */
  start (): void {
    const every = this.opts.regossipMs ?? REGOSSIP_MS
    this.timer = setInterval(() => { void this.regossip().catch(err => { this.opts.logger.warn({ err }, 'verdict re-gossip failed') }) }, every)
    this.timer.unref()
  }

  stop (): void {
    clearInterval(this.timer)
  }

  /**
   * Gossip is sent once: a node that was down or partitioned when a verdict went out
   * never gets it, and its view of a contribution stays pending (or short of a quorum the
   * others reached). Validators therefore send their verdicts again while the
   * contribution waits for a version; receivers that have one ignore it.
   */
  async regossip (): Promise<number> {
    const self = this.opts.signer.address
    let sent = 0
    for (const d of this.followed) {
      if (!this.isValidator(d)) continue
      for await (const entry of this.opts.db.contributions.unincluded(d.id)) {
        if (sent >= REGOSSIP_MAX) break
        // a rejection is never included: its verdicts go out again for a while, not for ever
        if (entry.status === 'rejected' && (entry.decidedAt ?? 0) < Date.now() - REJECTED_REGOSSIP_MS) continue
        const mine = await this.opts.db.verdicts.get(entry.cid, self)
        if (mine === undefined) {
          // a validator that joined after the contribution arrived judges it now: acceptance is
          // re-judged against the set of the height that includes it
          if (entry.status !== 'rejected' && await this.judgeStored(d, entry)) sent++
          continue
        }
        try {
          await this.opts.router.publish(topics.verdicts(d.id), fromHex(mine.bytes))
          sent++
        } catch (err) {
          this.opts.logger.debug({ contribution: entry.cid, err: (err as Error).message }, 'verdict not re-sent')
        }
      }
    }
    return sent
  }

  /** Verdicts a proposal's or a synced version's certificate carried (already checked): stored as if gossiped. */
  async adopt (datanet: FollowedDatanet, verdicts: ReadonlyArray<{ verdict: Verdict, bytes: Uint8Array }>): Promise<void> {
    // a caught-up range's verdicts in one read and one batch (they were a read and a write each)
    const held = await this.opts.db.verdicts.hasMany(verdicts.map(({ verdict }) => [verdict.contribution.toString(), verdict.validator] as const))
    const fresh = new Map<string, { verdict: Verdict, entry: VerdictEntry }>()
    verdicts.forEach(({ verdict, bytes }, i) => {
      const key = `${verdict.contribution.toString()}/${verdict.validator}`
      // the first of two for one (contribution, validator) is kept, as one after the other did
      if (held[i] !== true && !fresh.has(key)) fresh.set(key, { verdict, entry: verdictEntry(verdict, bytes) })
    })
    await this.opts.db.verdicts.putMany([...fresh.values()].map(f => f.entry))
    const touched = new Set<string>()
    for (const { verdict, entry } of fresh.values()) {
      this.opts.onVerdict?.(verdict.datanet, entry)
      touched.add(entry.contribution)
    }
    for (const cid of touched) await this.tally(datanet, cid)
  }

  isValidator (datanet: FollowedDatanet): boolean {
    const set = this.sets.deciding(datanet)
    return set !== undefined && stakeOf(set, this.opts.signer.address) !== undefined
  }

  /** Judges a stored contribution from its stored facts; false when it has none. */
  private async judgeStored (d: FollowedDatanet, entry: ContributionEntry): Promise<boolean> {
    if (entry.facts === null) return false
    const f = entry.facts
    await this.onContribution(d, entry, { ...f, flagged: new Map(Object.entries(f.flagged)) })
    return true
  }

  /**
   * Contributions stored while the set deciding the next version was not fixed yet (with a
   * chain: between a version's finality and its anchor), by datanet. Without this they
   * waited for the next re-gossip pass, up to 20 s, on every version: finality took ~20 s
   * in the hosts test. Judged when the chain's view changes (`onSetsChanged`).
   */
  private readonly unjudged = new Map<string, Set<string>>()

  /** The chain's view of a datanet changed: judge what arrived while its deciding set was unknown. */
  async onSetsChanged (d: FollowedDatanet): Promise<void> {
    const waiting = this.unjudged.get(d.id)
    if (waiting === undefined || this.sets.deciding(d) === undefined) return
    this.unjudged.delete(d.id)
    for (const cid of waiting) {
      const entry = await this.opts.db.contributions.get(cid)
      if (entry === undefined || entry.version !== null || entry.status === 'rejected') continue
      if (await this.opts.db.verdicts.has(cid, this.opts.signer.address)) continue
      await this.judgeStored(d, entry)
    }
  }

  /** A contribution was stored: judge it if we validate this datanet, then tally what has arrived. */
  async onContribution (datanet: FollowedDatanet, entry: ContributionEntry, facts: ContributionFacts): Promise<void> {
    if (this.sets.deciding(datanet) === undefined) {
      const waiting = this.unjudged.get(datanet.id) ?? new Set<string>()
      // bounded like the re-gossip pass; beyond it, re-gossip judges the rest
      if (waiting.size < REGOSSIP_MAX) waiting.add(entry.cid)
      this.unjudged.set(datanet.id, waiting)
    } else if (this.isValidator(datanet)) {
      const judgement = judge(facts, datanet.manifest, this.rules)
      const verdict = await signVerdict(this.opts.signer, this.opts.binding, {
        datanet: datanet.id,
        contribution: CID.parse(entry.cid),
        validator: this.opts.signer.address,
        accept: judgement.accept,
        score: judgement.score,
        reasons: judgement.reasons,
        timestamp: Date.now()
      })
      const bytes = encodeVerdict(verdict)
      await this.storeVerdict(verdict, bytes)
      await this.opts.router.publish(topics.verdicts(datanet.id), bytes)
      this.opts.logger.info({ contribution: entry.cid, accept: judgement.accept, score: judgement.score, reasons: judgement.reasons }, 'verdict published')
    }
    await this.tally(datanet, entry.cid)
  }

  private async storeVerdict (v: Verdict, bytes: Uint8Array): Promise<void> {
    const entry = verdictEntry(v, bytes)
    await this.opts.db.verdicts.put(entry)
    this.opts.onVerdict?.(v.datanet, entry)
  }

  /** Applies the quorum rule to a contribution's verdicts and records a decision once. */
  async tally (datanet: FollowedDatanet, cid: string): Promise<void> {
    const { db } = this.opts
    let count = 0
    // the verdicts are read under the entry's lock: a tally never overwrites a later one's
    const { before, after } = await db.contributions.update(cid, async entry => {
      if (entry === undefined) return undefined
      const verdicts = await db.verdicts.of(cid)
      count = verdicts.length
      // a hint for proposers: a version re-judges acceptance under its own height's set
      const set = this.sets.deciding(datanet)
      if (set === undefined) return undefined
      const result = tallyVerdicts(set, verdicts)
      const decided = entry.status === 'pending' && result.status !== 'pending'
      if (!decided && entry.score === result.score) return undefined
      return {
        ...entry,
        score: result.score,
        status: entry.status === 'pending' ? result.status : entry.status,
        decidedAt: decided ? Date.now() : entry.decidedAt
      }
    })
    if (before?.status === 'pending' && after !== undefined && after.status !== 'pending') {
      this.opts.logger.info({ contribution: cid, status: after.status, score: after.score, verdicts: count }, 'contribution decided')
      this.opts.onDecided?.(after)
    }
  }

  private topicHandler (datanet: FollowedDatanet): TopicHandler<GossipedVerdict> {
    return {
      topic: topics.verdicts(datanet.id),
      kind: 'verdicts',
      holdUntilSubscribed: true,
      scoreParams: datanetTopicScoreParams(),
      decode: (data: Uint8Array): GossipedVerdict => {
        let verdict: Verdict
        try {
          verdict = decodeVerdict(data)
        } catch (err) {
          // [REJECT] a well-formed verdict
          throw reject('VERDICT_ERROR_MALFORMED', `malformed verdict: ${(err as Error).message}`)
        }
        // [REJECT] canonical dag-cbor
        if (!bytesEqual(encodeVerdict(verdict), data)) throw reject('VERDICT_ERROR_NOT_CANONICAL', 'verdict is not canonical dag-cbor')
        return { verdict, bytes: data }
      },
      validate: async ({ verdict: v }: GossipedVerdict) => {
        // [REJECT] for the datanet of the topic it came on
        if (v.datanet !== datanet.id) throw reject('VERDICT_ERROR_WRONG_DATANET', `verdict for datanet ${v.datanet} on ${datanet.id}'s topic`)
        // [REJECT] from a validator of the datanet's set
        const deciding = this.sets.deciding(datanet)
        if (deciding === undefined || stakeOf(deciding, v.validator) === undefined) {
          // [IGNORE] from a validator of a set this node has not reached (or the set is not fixed yet)
          const latest = this.sets.latest(datanet)
          if (deciding === undefined || (latest !== undefined && stakeOf(latest, v.validator) !== undefined)) throw ignore('VERDICT_ERROR_OTHER_SET', `${v.validator} is not in the set deciding version ${this.sets.nextHeight(datanet)}`)
          throw reject('VERDICT_ERROR_NOT_VALIDATOR', `${v.validator} is not a validator of this datanet`)
        }
        // [REJECT] signed by that validator (domain: chain, registry, datanet)
        if (verdictSigner(v, this.opts.binding) !== v.validator) throw reject('VERDICT_ERROR_BAD_SIGNATURE', 'verdict is not signed by its validator')
        // [IGNORE] not dated in the future
        if (v.timestamp > Date.now() + MAX_FUTURE_MS) throw ignore('VERDICT_ERROR_FUTURE', 'verdict is dated in the future')
        // [IGNORE] the first verdict of this validator on this contribution (a second, different one is equivocation, kept for evidence later)
        if (await this.opts.db.verdicts.has(v.contribution.toString(), v.validator)) throw ignore('VERDICT_ERROR_KNOWN', 'already have this validator\'s verdict')
      },
      handle: async ({ verdict, bytes }: GossipedVerdict) => {
        await this.storeVerdict(verdict, bytes)
        await this.tally(datanet, verdict.contribution.toString())
      }
    }
  }
}

/** A verdict as stored. */
function verdictEntry (v: Verdict, bytes: Uint8Array): VerdictEntry {
  return {
    contribution: v.contribution.toString(),
    validator: v.validator,
    accept: v.accept,
    score: v.score,
    reasons: v.reasons,
    timestamp: v.timestamp,
    signature: toHex(v.signature),
    bytes: toHex(bytes)
  }
}
