import type { CID } from 'multiformats/cid'
import { bytesEqual, fromHex } from '../../src/codec/hash.ts'
import type { DomainBinding } from '../../src/codec/eip712.ts'
import { contributionCid, contributionSigner, decodeContribution, encodeContribution, type Contribution } from '../../src/contribution/contribution.ts'
import type { ContributionFacts, ContributionRule } from '../../src/contribution/rules/index.ts'
import { indexContribution, scanContribution } from '../../src/contribution/scan.ts'
import type { BlockRequest } from '../../src/network/block-request.ts'
import { FairQueue } from '../../src/network/fair-queue.ts'
import { ignore, reject, type GossipContext, type GossipRouter, type TopicHandler } from '../../src/network/gossip.ts'
import { datanetTopicScoreParams, topics } from '../../src/network/topics.ts'
import type { ContributionEntry, StateDatabase } from '../../src/storage/state-db.ts'
import { getBlock, pin, prefetcher } from './blocks.ts'
import { ShardHashes } from './shard-hashes.ts'
import type { FollowedDatanet } from './datanets.ts'
import { FetchWatch, Permits } from './shard-fetch-watch.ts'
import type { VerdictService } from './verdicts.ts'
import type { Helia } from '@helia/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import type { Logger } from '../logger.ts'

/** How far ahead of our clock a contribution's timestamp may be. */
const MAX_FUTURE_MS = 5 * 60_000

/** The smallest record line: one byte and its newline. */
const MIN_RECORD_BYTES = 2

/**
 * Text keys kept from a contribution's check for its indexing: 32 bytes a record, 262,144
 * records at most (a larger contribution's later shards are keyed only when indexed).
 * Without them every record was parsed twice on every validator (heap sampling of
 * scripts/bench/finality.ts).
 */
const TEXT_KEYS_HELD = 8 * 1024 * 1024

export const ShardCheckCode = {
  /** No shard arrived within the stall time (or the whole fetch took too long). */
  UNAVAILABLE: 'CONTRIBUTION_ERROR_SHARDS_UNAVAILABLE',
  /** The fetch queue had no room for the publisher's contribution. */
  QUEUE_FULL: 'CONTRIBUTION_ERROR_FETCH_QUEUE_FULL',
  /** The publisher, asked for a shard directly, sent bytes that do not hash to it. */
  FORGED_SHARD: 'CONTRIBUTION_ERROR_FORGED_SHARD'
} as const

/** A publisher that does not speak the block protocol (an older node) is asked by bitswap alone for this long. */
const NO_DIRECT_MS = 10 * 60_000
/** One that could not be reached (a failed dial, a reset stream) for this long. */
const UNREACHABLE_MS = 30_000
const NO_DIRECT_MAX = 1024

/**
 * Fetching a gossiped contribution's shards, after the gossip verdict (see topicHandler).
 * One source of defaults: the daemon passes overrides only.
 */
export interface ShardFetchOptions {
  /** An attempt fails when its shard requests are out and none arrives for this long. */
  stallMs: number
  /** Cap on an attempt's time with requests out, per MiB claimed (at least stallMs). */
  msPerMiB: number
  /** Shard requests in flight per publisher, over all its contributions (shard-fetch-watch.ts). */
  shardsPerPublisher: number
  /** A shard asked of its publisher directly is asked by bitswap after this long without an answer (below stallMs). */
  directMs: number
  /** Attempts before the contribution is dropped; each failed one costs its publisher score. */
  attempts: number
  /** Wait before attempt n+1: n times this. */
  retryMs: number
  /** Contributions fetched at once, over all publishers. */
  concurrency: number
  /** Contributions of one publisher fetched at once (below `concurrency`: one worker stays free for the others). */
  runningPerPublisher: number
  /** Contributions waiting per publisher; beyond it new ones are ignored (not relayed; the uploader re-gossips). */
  queuedPerPublisher: number
  /** Contributions waiting in all. */
  queued: number
}

export const defaultShardFetchOptions: Readonly<ShardFetchOptions> = Object.freeze({
  stallMs: 10_000,
  msPerMiB: 2000,
  shardsPerPublisher: 8,
  // an honest publisher under load answers a 1 MiB shard well within it
  directMs: 5000,
  attempts: 3,
  retryMs: 5000,
  // an honest node re-gossiping a backlog (hundreds of small contributions) must not wait
  // for one fetch at a time, 16 every 30 s: that capped a datanet at ~16 per version. A
  // fetch is mostly waiting (round trips to the holder, the store's writes): with 3 at a
  // time per publisher, one node's burst of small contributions reached validators at
  // ~2 per second (scripts/bench/wide-area.ts)
  concurrency: 16,
  runningPerPublisher: 12,
  queuedPerPublisher: 256,
  queued: 1024
})

/**
 * Application penalties (gossipsub P5, see GossipRouter.penalise): an attempt whose
 * shards could not be fetched costs as much as ten first deliveries earn (it may be our
 * network; it is taken back if a retry succeeds); shards that contradict the signed
 * claim are proof of a bad contribution and cost as much as a rejected message.
 */
const PENALTY_UNAVAILABLE = 1
const PENALTY_INVALID = 10

/** A gossiped contribution; its CID is computed during validation. */
interface Gossiped { contribution: Contribution, bytes: Uint8Array, cid?: CID }

export interface ContributionReceiverOptions {
  db: StateDatabase
  helia: Helia
  router: GossipRouter
  verdicts: VerdictService
  binding: Omit<DomainBinding, 'datanet'>
  rules: readonly ContributionRule[]
  /** How gossiped contributions' shards are fetched (defaults: defaultShardFetchOptions). */
  shardFetch?: Partial<ShardFetchOptions> | undefined
  logger: Logger
  onGossip?: ((result: string) => void) | undefined
  /** Which records the datanet's final versions already mostly hold; absent: none. */
  covered?: ((d: FollowedDatanet, records: readonly Uint8Array[]) => Promise<boolean[]>) | undefined
  /** Where the record hashes of shards that pass the check are kept for the versions that append them. */
  shardHashes?: ShardHashes | undefined
  /** Blocks asked of one peer (src/network/block-request.ts): shards are asked of their publisher first. Absent: bitswap alone. */
  blocks?: Pick<BlockRequest, 'request'> | undefined
  /** Stores a checked contribution's entry (the contribution service's, which owns the entries). */
  store: (datanet: FollowedDatanet, contribution: Contribution, cid: CID, origin: ContributionEntry['origin'], facts: ContributionFacts) => Promise<{ entry: ContributionEntry, created: boolean }>
}

/**
 * Everyone else's contributions, from the datanet's gossip topic. A gossiped contribution
 * is judged in two steps: the gossip verdict, from the message alone and in well under a
 * second (gossipsub forgets a message not judged within a few heartbeats, and would then
 * never relay it); then, in a bounded queue fair between publishers, its shards are
 * fetched and its records root recomputed. Only then is it pinned, indexed, stored (by
 * the contribution service) and handed to the verdict service.
 */
export class ContributionReceiver {
  private readonly opts: ContributionReceiverOptions
  private readonly fetch: ShardFetchOptions
  private readonly fetchQueue: FairQueue
  /** Contributions (CIDs) queued, being fetched, or waiting for a retry. */
  private readonly fetching = new Set<string>()
  private readonly retryTimers = new Set<NodeJS.Timeout>()
  /** Publishers asked by bitswap alone for a while (no block protocol, or unreachable), until when. */
  private readonly noDirect = new Map<string, number>()
  /** Shard requests in flight per publisher, and the fetches sharing them. */
  private readonly permits = new Map<string, { permits: Permits, fetches: number }>()

  constructor (opts: ContributionReceiverOptions) {
    this.opts = opts
    this.fetch = { ...defaultShardFetchOptions, ...opts.shardFetch }
    this.fetchQueue = new FairQueue({
      concurrency: this.fetch.concurrency,
      maxQueuedPerOrigin: this.fetch.queuedPerPublisher,
      maxQueued: this.fetch.queued,
      maxRunningPerOrigin: this.fetch.runningPerPublisher,
      onError: (err, origin) => { this.opts.logger.error({ err, publisher: origin }, 'fetching a contribution\'s shards failed') }
    })
  }

  /** Contributions whose shards are waiting to be fetched or being fetched. */
  get pendingFetches (): number {
    return this.fetching.size
  }

  follow (datanet: FollowedDatanet): void {
    this.opts.router.register(this.topicHandler(datanet))
  }

  /** Drops the fetches in progress (a contribution dropped so is fetched again by consensus if it is included). */
  stop (): void {
    for (const t of this.retryTimers) clearTimeout(t)
    this.retryTimers.clear()
    this.fetchQueue.stop()
    this.fetching.clear()
  }


  private topicHandler (datanet: FollowedDatanet): TopicHandler<Gossiped> {
    const maxShards = Math.ceil(datanet.manifest.limits.maxContributionBytes / Math.max(1, datanet.manifest.shardSize - datanet.manifest.limits.maxRecordBytes)) + 1
    return {
      topic: topics.contributions(datanet.id),
      kind: 'contributions',
      holdUntilSubscribed: true,
      scoreParams: datanetTopicScoreParams(),
      concurrency: 4,
      decode: (data: Uint8Array): Gossiped => {
        let contribution: Contribution
        try {
          contribution = decodeContribution(data, maxShards)
        } catch (err) {
          // [REJECT] a well-formed contribution object
          throw reject('CONTRIBUTION_ERROR_MALFORMED', `malformed contribution: ${(err as Error).message}`)
        }
        // [REJECT] in canonical dag-cbor, so its CID is the one its signer meant
        if (!bytesEqual(encodeContribution(contribution), data)) throw reject('CONTRIBUTION_ERROR_NOT_CANONICAL', 'contribution is not canonical dag-cbor')
        return { contribution, bytes: data }
      },
      validate: async (g: Gossiped, ctx: GossipContext) => { await this.validateGossiped(datanet, g, ctx) },
      handle: (g: Gossiped, ctx: GossipContext) => { this.handleGossiped(datanet, g, ctx) }
    }
  }

  /**
   * The gossip verdict: only checks of the message itself, bounded and cheap (decode,
   * one signature recovery, one index lookup), so gossipsub relays a valid contribution
   * at once whatever its size. Its shards are checked afterwards (verifyShards): a
   * contribution whose message is valid but whose shards are missing or wrong is relayed
   * once, and its publisher pays for it in score.
   */
  private async validateGossiped (datanet: FollowedDatanet, g: Gossiped, ctx: GossipContext): Promise<void> {
    const c = g.contribution
    const { manifest } = datanet
    const cid = await contributionCid(g.bytes)
    g.cid = cid
    // [REJECT] for the datanet of the topic it came on
    if (c.datanet !== datanet.id) throw reject('CONTRIBUTION_ERROR_WRONG_DATANET', `contribution for datanet ${c.datanet} on ${datanet.id}'s topic`)
    // [REJECT] the signature recovers to contribution.contributor (domain: chain, registry, datanet)
    const signer = contributionSigner(c, this.opts.binding)
    if (signer === undefined || signer !== c.contributor) throw reject('CONTRIBUTION_ERROR_BAD_SIGNATURE', 'contribution is not signed by its contributor')
    // [REJECT] within the datanet's limits
    if (c.recordCount > manifest.limits.maxRecordsPerContribution || c.byteSize > manifest.limits.maxContributionBytes || c.shards.length > c.recordCount) {
      throw reject('CONTRIBUTION_ERROR_TOO_LARGE', 'contribution exceeds the datanet\'s limits')
    }
    // [REJECT] sizes its shards can hold: each shard at most the shard size, each record
    // at least one byte and its newline (what scanContribution would find anyway)
    if (c.shards.length * manifest.shardSize < c.byteSize || c.recordCount * MIN_RECORD_BYTES > c.byteSize) {
      throw reject('CONTRIBUTION_ERROR_IMPOSSIBLE_SIZE', `${c.recordCount} records of ${c.byteSize} bytes cannot be in ${c.shards.length} shards of at most ${manifest.shardSize} bytes`)
    }
    // [IGNORE] not dated in the future
    if (c.timestamp > Date.now() + MAX_FUTURE_MS) throw ignore('CONTRIBUTION_ERROR_FUTURE', 'contribution is dated in the future')
    // [IGNORE] not already known, nor already being fetched
    if (this.fetching.has(cid.toString()) || await this.opts.db.contributions.has(cid.toString())) throw ignore('CONTRIBUTION_ERROR_KNOWN', 'contribution already known')
    // [IGNORE] its publisher has room in the fetch queue (a flood is not relayed)
    if (!this.fetchQueue.accepts(ctx.publisher.toString())) throw ignore(ShardCheckCode.QUEUE_FULL, 'too many of this publisher\'s contributions are waiting for their shards')
  }

  /** After the gossip verdict: queues the shard check. */
  private handleGossiped (datanet: FollowedDatanet, g: Gossiped, ctx: GossipContext): void {
    if (g.cid === undefined) return
    const cid = g.cid.toString()
    if (this.fetching.has(cid)) return
    this.fetching.add(cid)
    this.enqueue(datanet, g, ctx.publisher.toString(), 1)
  }

  private enqueue (datanet: FollowedDatanet, g: Gossiped, publisher: string, attempt: number): void {
    const cid = (g.cid as CID).toString()
    const queued = this.fetchQueue.push(publisher, async signal => { await this.verifyShards(datanet, g, publisher, attempt, signal) })
    if (!queued) {
      this.fetching.delete(cid)
      this.opts.logger.warn({ cid, publisher }, 'contribution dropped: the shard fetch queue is full')
      this.opts.onGossip?.(ShardCheckCode.QUEUE_FULL)
    }
  }

  /**
   * Fetches the shards and checks them against the signed claim (count, size, records
   * root); a contribution that passes is stored. Bounded: an attempt ends when no shard
   * arrives for `stallMs` (so a claim of shards nobody has costs seconds, whatever size it
   * claims) or after `msPerMiB` per MiB claimed.
   */
  private async verifyShards (datanet: FollowedDatanet, g: Gossiped, publisher: string, attempt: number, stopped: AbortSignal): Promise<void> {
    const c = g.contribution
    const cid = (g.cid as CID).toString()
    const { router, logger } = this.opts
    let done = false
    try {
      // consensus fetched it meanwhile (a certificate vouched for it)
      if (await this.opts.db.contributions.has(cid)) {
        done = true
        return
      }
      const { helia } = this.opts
      const shared = this.permits.get(publisher) ?? { permits: new Permits(this.fetch.shardsPerPublisher), fetches: 0 }
      shared.fetches++
      this.permits.set(publisher, shared)
      const permits = shared.permits
      const watch = new FetchWatch(this.fetch.stallMs, Math.max(this.fetch.stallMs, Math.ceil(c.byteSize / (1024 * 1024)) * this.fetch.msPerMiB), stopped)
      const fetchShard = async (shard: CID): Promise<Uint8Array> => {
        await permits.acquire(watch.signal)
        watch.started()
        let arrived = false
        try {
          const bytes = await this.fromPublisher(publisher, shard, watch.signal) ?? await getBlock(helia, shard, { signal: watch.signal })
          arrived = true
          return bytes
        } finally {
          watch.ended(arrived)
          permits.release()
        }
      }
      let result
      // each shard's hashes packed as it is split, while they fit the memo (a record held would keep its whole shard)
      const split: Array<[CID, Uint8Array]> = []
      let packed = 0
      // and its records' text keys from the check's parse, for indexing (bounded: beyond, indexing computes them)
      const textKeys = new Map<string, Uint8Array>()
      let keyBytes = 0
      try {
        result = await scanContribution(c, datanet.manifest, datanet.validateRecord, this.opts.rules, {
          getShard: prefetcher(helia, c.shards, 8, watch.signal, fetchShard),
          onShard: (shard, records) => {
            const memo = this.opts.shardHashes
            if (memo === undefined || packed + records.length * 32 > memo.capacity) return
            packed += records.length * 32
            split.push([shard, ShardHashes.pack(records)])
          },
          keepTextKeys: (shard, records) => {
            if (keyBytes + 32 * records > TEXT_KEYS_HELD) return undefined
            const keys = new Uint8Array(32 * records)
            keyBytes += keys.byteLength
            textKeys.set(shard.toString(), keys)
            return keys
          }
        })
      } catch (err) {
        if (stopped.aborted) {
          done = true
          return
        }
        router.penalise(publisher, 'contributions', ShardCheckCode.UNAVAILABLE, PENALTY_UNAVAILABLE)
        // Helia reports its own error for an aborted fetch: say which clock ran out
        const why = watch.signal.aborted ? (watch.signal.reason as Error).message : (err as Error).message
        if (attempt >= this.fetch.attempts) {
          done = true
          logger.warn({ cid, publisher, attempts: attempt, err: why }, 'contribution dropped: its shards could not be fetched')
          return
        }
        logger.info({ cid, publisher, attempt, err: why }, 'contribution\'s shards not fetched: trying again later')
        const timer = setTimeout(() => {
          this.retryTimers.delete(timer)
          this.enqueue(datanet, g, publisher, attempt + 1)
        }, this.fetch.retryMs * attempt)
        timer.unref()
        this.retryTimers.add(timer)
        return
      } finally {
        watch.clear()
        if (--shared.fetches === 0) this.permits.delete(publisher)
      }
      done = true
      if (!result.ok) {
        // [REJECT, after relaying] shards that hold exactly the stated records
        router.penalise(publisher, 'contributions', result.code, PENALTY_INVALID)
        logger.warn({ cid, publisher, code: result.code, reason: result.message }, 'gossiped contribution refused: its shards do not match it')
        return
      }
      for (const [shard, records] of split) this.opts.shardHashes?.put(shard, records)
      // the earlier failures were transient
      if (attempt > 1) router.forgive(publisher, PENALTY_UNAVAILABLE * (attempt - 1))
      await this.storeGossiped(datanet, g, result.facts, textKeys)
    } finally {
      if (done) this.fetching.delete(cid)
    }
  }

  /**
   * A shard from its publisher alone (one copy, where bitswap's want brings one from every
   * holder), stored here; undefined when the publisher has no answer, so bitswap is asked.
   * Bytes that do not hash to the shard are proof against the publisher: penalised.
   */
  private async fromPublisher (publisher: string, shard: CID, signal: AbortSignal): Promise<Uint8Array | undefined> {
    const { blocks, helia } = this.opts
    if (blocks === undefined || signal.aborted || (this.noDirect.get(publisher) ?? 0) > Date.now()) return undefined
    const limit = AbortSignal.timeout(this.fetch.directMs)
    try {
      const answer = await blocks.request(peerIdFromString(publisher), [shard], { signal: AbortSignal.any([signal, limit]) })
      if (answer.forged > 0) {
        this.opts.router.penalise(publisher, 'contributions', ShardCheckCode.FORGED_SHARD, PENALTY_INVALID)
        this.opts.logger.warn({ publisher, shard: shard.toString() }, 'a publisher sent a shard that does not hash to its CID')
      }
      const bytes = answer.blocks[0]
      if (bytes !== undefined) await helia.blockstore.put(shard, bytes, { signal })
      return bytes
    } catch (err) {
      // slow (our own limit) is not unreachable: the next shard asks it again
      const unsupported = (err as Error).name === 'UnsupportedProtocolError'
      if (unsupported || (!limit.aborted && !signal.aborted)) {
        if (this.noDirect.size >= NO_DIRECT_MAX) this.noDirect.clear()
        this.noDirect.set(publisher, Date.now() + (unsupported ? NO_DIRECT_MS : UNREACHABLE_MS))
      }
      return undefined
    }
  }

  private async storeGossiped (datanet: FollowedDatanet, g: Gossiped, facts: ContributionFacts, textKeys: ReadonlyMap<string, Uint8Array>): Promise<void> {
    const contributionCidValue = g.cid as CID
    const cid = contributionCidValue.toString()
    if (await this.opts.db.contributions.has(cid)) return
    const { db, helia } = this.opts
    await helia.blockstore.put(contributionCidValue, g.bytes)
    await pin(helia, contributionCidValue)
    const digest = fromHex(datanet.digest, 32)
    const covered = this.opts.covered
    const counts = await indexContribution(g.contribution, cid, {
      getShard: async s => await getBlock(helia, s, { offline: true }),
      owners: async hashes => await db.records.owners(digest, hashes),
      claim: async (hashes, owner) => { await db.records.claim(digest, hashes, owner) },
      covered: covered === undefined ? undefined : async records => await covered(datanet, records),
      textKeys: shard => textKeys.get(shard.toString()),
      recordHashes: shard => this.opts.shardHashes?.get(shard)
    })
    const withDuplicates = { ...facts, ...counts }
    const { entry, created } = await this.opts.store(datanet, g.contribution, contributionCidValue, 'gossip', withDuplicates)
    // consensus fetched it meanwhile (a certificate vouched for it): that entry stands
    if (!created) return
    this.opts.logger.info({ cid, datanet: datanet.id, contributor: g.contribution.contributor, records: g.contribution.recordCount, duplicates: counts.duplicateRecords, nearDuplicates: counts.nearDuplicateRecords }, 'contribution received')
    await this.opts.verdicts.onContribution(datanet, entry, withDuplicates)
  }
}
