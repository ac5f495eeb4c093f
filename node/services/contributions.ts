import { randomBytes } from 'node:crypto'
import { createUnsafe } from 'multiformats/block'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { bytesEqual, fromHex } from '../../src/codec/hash.ts'
import { datanetDigest } from '../../src/datanet/manifest.ts'
import {
  contributionCid, contributionJson, contributionSigner, contributionTypedData, decodeContribution, encodeContribution, signContribution,
  type Contribution, type UnsignedContribution
} from '../../src/contribution/contribution.ts'
import { ingestRecords, type IngestResult } from '../../src/contribution/ingest.ts'
import { parseRecords, type UploadFormat } from '../../src/contribution/parse.ts'
import { builtinRules, type ContributionFacts, type ContributionRule } from '../../src/contribution/rules/index.ts'
import { recordKeys } from '../../src/contribution/near-duplicates.ts'
import { indexContribution, scanContribution } from '../../src/contribution/scan.ts'
import { splitShard, shardCid } from '../../src/datanet/shard.ts'
import { DatanetError } from '../../src/errors.ts'
import { FairQueue } from '../../src/network/fair-queue.ts'
import { ignore, reject, type GossipContext, type GossipRouter, type TopicHandler } from '../../src/network/gossip.ts'
import { datanetTopicScoreParams, topics } from '../../src/network/topics.ts'
import { getBlock, prefetcher } from './blocks.ts'
import type { DomainBinding, TypedDataSigner } from '../../src/codec/eip712.ts'
import type { ContributionEntry, StateDatabase, UploadEntry, VerdictEntry } from '../../src/storage/state-db.ts'
import type { DatanetService, FollowedDatanet } from './datanets.ts'
import type { VerdictService } from './verdicts.ts'
import type { GraphNode, GraphWalkerFactory, Helia, WalkOptions } from '@helia/interface'
import type { Logger } from '../logger.ts'

export const ContributionErrorCode = {
  NOT_FOUND: 'CONTRIBUTION_ERROR_NOT_FOUND',
  BAD_CID: 'CONTRIBUTION_ERROR_BAD_CID',
  NO_DRAFT: 'CONTRIBUTION_ERROR_NO_DRAFT',
  BAD_SIGNATURE: 'CONTRIBUTION_ERROR_BAD_SIGNATURE'
} as const

/** How often the node re-sends contributions it took that are still undecided, and how many per pass. */
const REGOSSIP_MS = 30_000
const REGOSSIP_MAX = 64
/** How long a draft waits for its contributor's signature. */
const DRAFT_TTL_MS = 10 * 60_000

/** How far ahead of our clock a contribution's timestamp may be. */
const MAX_FUTURE_MS = 5 * 60_000

/** The smallest record line: one byte and its newline. */
const MIN_RECORD_BYTES = 2

export const ShardCheckCode = {
  /** No shard arrived within the stall time (or the whole fetch took too long). */
  UNAVAILABLE: 'CONTRIBUTION_ERROR_SHARDS_UNAVAILABLE',
  /** The fetch queue had no room for the publisher's contribution. */
  QUEUE_FULL: 'CONTRIBUTION_ERROR_FETCH_QUEUE_FULL'
} as const

/**
 * Fetching a gossiped contribution's shards, after the gossip verdict (see topicHandler).
 * One source of defaults: the daemon passes overrides only.
 */
export interface ShardFetchOptions {
  /** An attempt fails when no shard arrives for this long. */
  stallMs: number
  /** Cap on a whole attempt, per MiB claimed (at least stallMs). */
  msPerMiB: number
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
  attempts: 3,
  retryMs: 5000,
  // an honest node re-gossiping a backlog (hundreds of small contributions) must not wait
  // for one fetch at a time, 16 every 30 s: that capped a datanet at ~16 per version
  concurrency: 4,
  runningPerPublisher: 3,
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

export interface ContributionServiceOptions {
  db: StateDatabase
  helia: Helia
  router: GossipRouter
  datanets: DatanetService
  verdicts: VerdictService
  signer: TypedDataSigner
  binding: Omit<DomainBinding, 'datanet'>
  rules: readonly ContributionRule[]
  maxMessageBytes: number
  /** How gossiped contributions' shards are fetched (defaults: defaultShardFetchOptions). */
  shardFetch?: Partial<ShardFetchOptions>
  logger: Logger
  onGossip?: (result: string) => void
  /** A contribution stored here for the first time. */
  onStored?: (entry: ContributionEntry) => void
  /** Which records the datanet's final versions already mostly hold (AttributionService.covered); absent: none. */
  covered?: (d: FollowedDatanet, records: readonly Uint8Array[]) => Promise<boolean[]>
}

export interface ContributeOptions {
  format: UploadFormat
  skipInvalid: boolean
  /** Another account that will sign (a draft is returned); default this node's key. */
  contributor?: string
  onProgress?: (records: number) => void
}

export interface ContributeResult {
  cid: string
  status: ContributionEntry['status']
  recordCount: number
  byteSize: number
  shards: number
  duplicates: number
  skippedInvalid: number
}

/** An upload waiting for its contributor's signature. */
export interface DraftResult {
  draft: string
  contributor: string
  recordCount: number
  duplicates: number
  skippedInvalid: number
  expiresInMs: number
  /** EIP-712: sign with eth_signTypedData_v4 / ethers signTypedData(domain, types, value). */
  typedData: { domain: Record<string, unknown>, types: Record<string, Array<{ name: string, type: string }>>, value: Record<string, unknown> }
}

interface Draft {
  datanet: FollowedDatanet
  upload: UploadEntry
  result: IngestResult
  unsigned: UnsignedContribution
  timer: NodeJS.Timeout
}

/** What the API shows of a contribution (DESIGN §6: cid, status, verdicts, version). */
export interface ContributionView {
  cid: string
  datanet: string
  status: ContributionEntry['status']
  score: number | null
  version: number | null
  contributor: string
  recordCount: number
  byteSize: number
  shards: string[]
  recordsRoot: string
  receivedAt: number
  decidedAt: number | null
  verdicts: Array<Omit<VerdictEntry, 'bytes' | 'contribution'>>
}

/**
 * A pin walker that does not read back the raw blocks (shards) the node already holds.
 * Helia's default walker reads every block of the DAG into an unbounded queue that runs
 * ahead of the pin writes, so pinning a 1 GB contribution read its 1,024 shards again
 * and buffered them: the largest RSS peak of an upload (+80 MB anonymous, for ~45 s).
 * A raw block has no links, so a pin needs only to know that it is here; one that is not
 * is still fetched, as before. The pin records written are the same.
 */
const localShardsUnread: GraphWalkerFactory = ({ blockstore, getCodec }) => ({
  async * walk<T> (root: CID, options: WalkOptions<T> = {}): AsyncGenerator<GraphNode<T>> {
    const maxDepth = options.depth ?? Infinity
    const stack = [{ cid: root, depth: 0, path: [root] }]
    for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
      const { cid, depth, path } = next
      if (cid.code === raw.code && await blockstore.has(cid, options)) {
        // Helia's pins use only node.block.cid
        yield { block: { cid }, depth, path } as unknown as GraphNode<T>
        continue
      }
      const chunks: Uint8Array[] = []
      for await (const chunk of blockstore.get(cid, options)) chunks.push(chunk)
      const block = createUnsafe({ cid, bytes: chunks.length === 1 ? chunks[0] as Uint8Array : Buffer.concat(chunks), codec: await getCodec(cid.code) })
      if (depth < maxDepth) {
        const links = [...block.links()].map(([, link]) => link)
        for (const link of links.reverse()) stack.push({ cid: link, depth: depth + 1, path: [...path, link] })
      }
      yield { block, depth, path } as GraphNode<T>
    }
  }
})

/** Pins a contribution and its shards (see localShardsUnread); as blocks.ts pin otherwise. */
async function pinContribution (helia: Helia, cid: CID): Promise<void> {
  if (await helia.pins.isPinned(cid)) return
  for await (const _ of helia.pins.add(cid, { walker: localShardsUnread })) { /* drain */ }
}

/** A gossiped contribution; its CID is computed during validation. */
interface Gossiped { contribution: Contribution, bytes: Uint8Array, cid?: CID }

/**
 * Contributions: streamed uploads turned into signed contributions, and the gossip topic
 * that receives everyone else's. A gossiped contribution is judged in two steps: the
 * gossip verdict, from the message alone and in well under a second (gossipsub forgets a
 * message not judged within a few heartbeats, and would then never relay it); then, in
 * a bounded queue fair between publishers, its shards are fetched and its records root
 * recomputed. Only then is it pinned, indexed, and handed to the verdict service.
 */
export class ContributionService {
  private readonly opts: ContributionServiceOptions
  private readonly rules: readonly ContributionRule[]
  private readonly drafts = new Map<string, Draft>()
  private readonly fetch: ShardFetchOptions
  private readonly fetchQueue: FairQueue
  /** Contributions (CIDs) queued, being fetched, or waiting for a retry. */
  private readonly fetching = new Set<string>()
  private readonly retryTimers = new Set<NodeJS.Timeout>()

  constructor (opts: ContributionServiceOptions) {
    this.opts = opts
    this.rules = [...builtinRules, ...opts.rules]
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

  async start (): Promise<void> {
    for (const upload of await this.opts.db.uploads.values()) {
      this.opts.logger.warn({ upload: upload.id, datanet: upload.datanet }, 'cleaning up an upload interrupted by a crash')
      await this.forgetUpload(upload)
    }
    this.regossipTimer = setInterval(() => { void this.regossip().catch(err => { this.opts.logger.warn({ err }, 'contribution re-gossip failed') }) }, REGOSSIP_MS)
    this.regossipTimer.unref()
  }

  private regossipTimer: NodeJS.Timeout | undefined

  /**
   * Gossip is sent once: a contribution acknowledged here just before a crash, or whose
   * shards its receivers could not fetch while this node was down, would stay pending for
   * ever. Until it is decided, the node that took the upload sends it again; receivers
   * that hold it ignore it.
   */
  async regossip (): Promise<number> {
    let sent = 0
    for (const d of this.opts.datanets.list()) {
      for await (const entry of this.opts.db.contributions.unincluded(d.id)) {
        if (sent >= REGOSSIP_MAX) return sent
        if (entry.origin !== 'local' || entry.status !== 'pending') continue
        try {
          const bytes = await getBlock(this.opts.helia, CID.parse(entry.cid), { offline: true })
          await this.opts.router.publish(topics.contributions(entry.datanet), bytes)
          sent++
        } catch (err) {
          this.opts.logger.debug({ cid: entry.cid, err: (err as Error).message }, 'contribution not re-sent')
        }
      }
    }
    return sent
  }

  follow (datanet: FollowedDatanet): void {
    this.opts.router.register(this.topicHandler(datanet))
  }

  /** Drops the fetches in progress (a contribution dropped so is fetched again by consensus if it is included). */
  stop (): void {
    clearInterval(this.regossipTimer)
    for (const t of this.retryTimers) clearTimeout(t)
    this.retryTimers.clear()
    this.fetchQueue.stop()
    this.fetching.clear()
  }

  // ---- local uploads -------------------------------------------------------------------

  /**
   * Ingests an upload and publishes it as a contribution signed by this node's key; or,
   * with `options.contributor` (another account), leaves it as a draft whose EIP-712
   * typed data the contributor signs and hands back with `completeDraft`.
   */
  async contribute (datanetId: string, body: AsyncIterable<Uint8Array>, options: ContributeOptions): Promise<ContributeResult | DraftResult> {
    const datanet = this.opts.datanets.require(datanetId)
    const contributor = options.contributor ?? this.opts.signer.address
    const { upload, result } = await this.ingest(datanet, body, options)
    const unsigned: UnsignedContribution = {
      datanet: datanet.id,
      contributor,
      shards: result.shards,
      recordCount: result.recordCount,
      byteSize: result.byteSize,
      recordsRoot: result.recordsRoot,
      nonce: Number.parseInt(randomBytes(6).toString('hex'), 16),
      timestamp: Date.now()
    }
    if (contributor === this.opts.signer.address) {
      return await this.publish(datanet, upload, result, await signContribution(this.opts.signer, this.opts.binding, unsigned))
    }
    const timer = setTimeout(() => { void this.dropDraft(upload.id) }, DRAFT_TTL_MS)
    timer.unref()
    this.drafts.set(upload.id, { datanet, upload, result, unsigned, timer })
    const typed = contributionTypedData(this.opts.binding, unsigned)
    return { draft: upload.id, contributor, recordCount: result.recordCount, duplicates: result.duplicates, skippedInvalid: result.invalidCount, expiresInMs: DRAFT_TTL_MS, typedData: typed }
  }

  /** Finishes a draft with the contributor's signature over its typed data. */
  async completeDraft (datanetId: string, draftId: string, signatureHex: string): Promise<ContributeResult> {
    const draft = this.drafts.get(draftId)
    if (draft === undefined || draft.datanet.id !== datanetId) {
      throw new DatanetError({ code: ContributionErrorCode.NO_DRAFT }, `no draft ${draftId} for datanet ${datanetId} (drafts expire after ${DRAFT_TTL_MS / 60_000} minutes)`, 'not_found')
    }
    if (!/^0x[0-9a-fA-F]{130}$/.test(signatureHex)) throw new DatanetError({ code: ContributionErrorCode.BAD_SIGNATURE }, 'signature: expected 65 bytes of 0x-hex', 'usage')
    const contribution: Contribution = { ...draft.unsigned, signature: fromHex(signatureHex, 65) }
    if (contributionSigner(contribution, this.opts.binding) !== draft.unsigned.contributor) {
      throw new DatanetError({ code: ContributionErrorCode.BAD_SIGNATURE }, `the signature is not ${draft.unsigned.contributor}'s over this draft`, 'usage')
    }
    clearTimeout(draft.timer)
    this.drafts.delete(draftId)
    return await this.publish(draft.datanet, draft.upload, draft.result, contribution)
  }

  private async dropDraft (id: string): Promise<void> {
    const draft = this.drafts.get(id)
    if (draft === undefined) return
    clearTimeout(draft.timer)
    this.drafts.delete(id)
    await this.forgetUpload(draft.upload)
  }

  private async ingest (datanet: FollowedDatanet, body: AsyncIterable<Uint8Array>, options: ContributeOptions): Promise<{ upload: UploadEntry, result: IngestResult }> {
    const { db, helia } = this.opts
    const upload: UploadEntry = { id: randomBytes(8).toString('hex'), datanet: datanet.id, startedAt: Date.now(), shards: [] }
    const owner = `u:${upload.id}`
    const digest = fromHex(datanet.digest, 32)
    await db.uploads.put(upload.id, upload)
    try {
      const result = await ingestRecords(
        parseRecords(body, { format: options.format, textMode: datanet.manifest.textMode, maxRecordBytes: datanet.manifest.limits.maxRecordBytes * 4 }),
        { manifest: datanet.manifest, validateRecord: datanet.validateRecord, rules: this.rules, skipInvalid: options.skipInvalid, onProgress: options.onProgress },
        {
          owners: async hashes => await db.records.owners(digest, hashes),
          claim: async hashes => { await db.records.claim(digest, hashes, owner) },
          putShard: async bytes => {
            const cid = shardCid(bytes)
            await helia.blockstore.put(cid, bytes)
            upload.shards.push(cid.toString())
            await db.uploads.put(upload.id, upload)
            return cid
          }
        }
      )
      return { upload, result }
    } catch (err) {
      await this.forgetUpload(upload)
      throw err
    }
  }

  private async publish (datanet: FollowedDatanet, upload: UploadEntry, result: IngestResult, contribution: Contribution): Promise<ContributeResult> {
    const { db, helia } = this.opts
    const bytes = encodeContribution(contribution)
    if (bytes.length > this.opts.maxMessageBytes) {
      await this.forgetUpload(upload)
      throw new DatanetError({ code: 'CONTRIBUTION_ERROR_TOO_MANY_SHARDS' }, `the contribution's ${result.shards.length} shards do not fit one gossip message; split the upload`, 'usage')
    }
    const cid = await contributionCid(bytes)
    await helia.blockstore.put(cid, bytes)
    await pinContribution(helia, cid)
    // ingest dropped copies; what the dataset already mostly holds is judged here as validators will
    const facts: ContributionFacts = { recordCount: result.recordCount, byteSize: result.byteSize, invalidRecords: 0, duplicateRecords: 0, nearDuplicateRecords: await this.coveredIn(datanet, result.shards), flagged: result.flagged }
    const { entry } = await this.store(datanet, contribution, cid, 'local', facts, `u:${upload.id}`)
    await db.uploads.delete(upload.id)
    const recipients = await this.opts.router.publish(topics.contributions(datanet.id), bytes)
    this.opts.logger.info({ cid: cid.toString(), datanet: datanet.id, contributor: contribution.contributor, records: result.recordCount, shards: result.shards.length, duplicates: result.duplicates, recipients }, 'contribution published')
    await this.opts.verdicts.onContribution(datanet, entry, facts)
    const after = await db.contributions.get(cid.toString())
    return {
      cid: cid.toString(),
      status: after?.status ?? entry.status,
      recordCount: result.recordCount,
      byteSize: result.byteSize,
      shards: result.shards.length,
      duplicates: result.duplicates,
      skippedInvalid: result.invalidCount
    }
  }

  private async coveredIn (datanet: FollowedDatanet, shards: readonly CID[]): Promise<number> {
    if (this.opts.covered === undefined) return 0
    let n = 0
    for (const s of shards) {
      const records = splitShard(await getBlock(this.opts.helia, s, { offline: true }))
      n += (await this.opts.covered(datanet, records.map(r => r.bytes))).filter(Boolean).length
    }
    return n
  }

  /** Undoes an upload's claims on the record index (its shards stay as unpinned blocks). */
  private async forgetUpload (upload: UploadEntry): Promise<void> {
    const owner = `u:${upload.id}`
    for (const s of upload.shards) {
      try {
        const records = splitShard(await getBlock(this.opts.helia, CID.parse(s), { offline: true }))
        await this.opts.db.records.release(fromHex(datanetDigest(upload.datanet), 32), recordKeys(records), new Set([owner]))
      } catch (err) {
        this.opts.logger.warn({ err, shard: s }, 'cannot read an abandoned shard')
      }
    }
    await this.opts.db.uploads.delete(upload.id)
  }

  /**
   * A contribution this node decided rejected gives its records back: its claims on the
   * datanet's record index (as received, or as uploaded here) are dropped, so the records
   * can be contributed again. Claims of other contributions stay.
   */
  async release (entry: ContributionEntry): Promise<void> {
    if (entry.status !== 'rejected' || entry.version !== null) return
    const owners = new Set([entry.cid, ...(entry.claims === undefined ? [] : [entry.claims])])
    const digest = fromHex(datanetDigest(entry.datanet), 32)
    const shards = Array.isArray(entry.contribution.shards) ? entry.contribution.shards as string[] : []
    let released = 0
    for (const s of shards) {
      try {
        const records = splitShard(await getBlock(this.opts.helia, CID.parse(s), { offline: true }))
        released += await this.opts.db.records.release(digest, recordKeys(records), owners)
      } catch (err) {
        // a shard never fetched here: its records were never claimed here either
        this.opts.logger.debug({ err, shard: s, contribution: entry.cid }, 'no shard to release records of')
      }
    }
    if (released > 0) this.opts.logger.info({ contribution: entry.cid, datanet: entry.datanet, keys: released }, 'records of a rejected contribution released (hashes and text keys)')
  }

  /** Stores a new contribution entry; an entry already there (e.g. included meanwhile) is kept and returned. */
  private async store (datanet: FollowedDatanet, contribution: Contribution, cid: CID, origin: ContributionEntry['origin'], facts: ContributionFacts, claims?: string): Promise<{ entry: ContributionEntry, created: boolean }> {
    const entry: ContributionEntry = {
      cid: cid.toString(),
      datanet: datanet.id,
      contribution: contributionJson(contribution),
      status: 'pending',
      score: null,
      receivedAt: Date.now(),
      decidedAt: null,
      origin,
      version: null,
      facts: { ...facts, flagged: Object.fromEntries(facts.flagged) },
      ...(claims === undefined ? {} : { claims })
    }
    const { before } = await this.opts.db.contributions.update(entry.cid, existing => existing ?? entry)
    if (before !== undefined) return { entry: before, created: false }
    this.opts.onStored?.(entry)
    return { entry, created: true }
  }

  // ---- gossip --------------------------------------------------------------------------

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
      const watch = new StallWatch(this.fetch.stallMs, Math.max(this.fetch.stallMs, Math.ceil(c.byteSize / (1024 * 1024)) * this.fetch.msPerMiB), stopped)
      let result
      try {
        const getShard = prefetcher(this.opts.helia, c.shards, 8, watch.signal)
        result = await scanContribution(c, datanet.manifest, datanet.validateRecord, this.rules, {
          getShard: async shard => {
            const bytes = await getShard(shard)
            watch.progress()
            return bytes
          }
        })
      } catch (err) {
        if (stopped.aborted) {
          done = true
          return
        }
        router.penalise(publisher, 'contributions', ShardCheckCode.UNAVAILABLE, PENALTY_UNAVAILABLE)
        if (attempt >= this.fetch.attempts) {
          done = true
          logger.warn({ cid, publisher, attempts: attempt, err: (err as Error).message }, 'contribution dropped: its shards could not be fetched')
          return
        }
        logger.info({ cid, publisher, attempt, err: (err as Error).message }, 'contribution\'s shards not fetched: trying again later')
        const timer = setTimeout(() => {
          this.retryTimers.delete(timer)
          this.enqueue(datanet, g, publisher, attempt + 1)
        }, this.fetch.retryMs * attempt)
        timer.unref()
        this.retryTimers.add(timer)
        return
      } finally {
        watch.clear()
      }
      done = true
      if (!result.ok) {
        // [REJECT, after relaying] shards that hold exactly the stated records
        router.penalise(publisher, 'contributions', result.code, PENALTY_INVALID)
        logger.warn({ cid, publisher, code: result.code, reason: result.message }, 'gossiped contribution refused: its shards do not match it')
        return
      }
      // the earlier failures were transient
      if (attempt > 1) router.forgive(publisher, PENALTY_UNAVAILABLE * (attempt - 1))
      await this.storeGossiped(datanet, g, result.facts)
    } finally {
      if (done) this.fetching.delete(cid)
    }
  }

  private async storeGossiped (datanet: FollowedDatanet, g: Gossiped, facts: ContributionFacts): Promise<void> {
    const contributionCidValue = g.cid as CID
    const cid = contributionCidValue.toString()
    if (await this.opts.db.contributions.has(cid)) return
    const { db, helia } = this.opts
    await helia.blockstore.put(contributionCidValue, g.bytes)
    await pinContribution(helia, contributionCidValue)
    const digest = fromHex(datanet.digest, 32)
    const covered = this.opts.covered
    const counts = await indexContribution(g.contribution, cid, {
      getShard: async s => await getBlock(helia, s, { offline: true }),
      owners: async hashes => await db.records.owners(digest, hashes),
      claim: async (hashes, owner) => { await db.records.claim(digest, hashes, owner) },
      covered: covered === undefined ? undefined : async records => await covered(datanet, records)
    })
    const withDuplicates = { ...facts, ...counts }
    const { entry, created } = await this.store(datanet, g.contribution, contributionCidValue, 'gossip', withDuplicates)
    // consensus fetched it meanwhile (a certificate vouched for it): that entry stands
    if (!created) return
    this.opts.logger.info({ cid, datanet: datanet.id, contributor: g.contribution.contributor, records: g.contribution.recordCount, duplicates: counts.duplicateRecords, nearDuplicates: counts.nearDuplicateRecords }, 'contribution received')
    await this.opts.verdicts.onContribution(datanet, entry, withDuplicates)
  }

  // ---- reads ---------------------------------------------------------------------------

  async view (cidText: string, datanetId?: string): Promise<ContributionView> {
    let cid: CID
    try {
      cid = CID.parse(cidText)
    } catch (err) {
      throw new DatanetError({ code: ContributionErrorCode.BAD_CID }, `not a contribution CID: ${cidText}`, 'usage', { cause: err })
    }
    const entry = await this.opts.db.contributions.get(cid.toString())
    if (entry === undefined || (datanetId !== undefined && entry.datanet !== datanetId)) {
      throw new DatanetError({ code: ContributionErrorCode.NOT_FOUND }, `contribution ${cidText} is not known to this node`, 'not_found')
    }
    const verdicts = (await this.opts.db.verdicts.of(entry.cid)).map(({ bytes: _b, contribution: _c, ...v }) => v)
    const c = entry.contribution as { contributor: string, recordCount: number, byteSize: number, shards: string[], recordsRoot: string }
    return {
      cid: entry.cid,
      datanet: entry.datanet,
      status: entry.status,
      score: entry.score,
      version: entry.version,
      contributor: c.contributor,
      recordCount: c.recordCount,
      byteSize: c.byteSize,
      shards: c.shards,
      recordsRoot: c.recordsRoot,
      receivedAt: entry.receivedAt,
      decidedAt: entry.decidedAt,
      verdicts
    }
  }

  async list (datanetId: string, limit = 100): Promise<ContributionView[]> {
    this.opts.datanets.require(datanetId)
    const out: ContributionView[] = []
    for await (const [, entry] of this.opts.db.contributions.entries()) {
      if (entry.datanet !== datanetId) continue
      out.push(await this.view(entry.cid))
    }
    return out.sort((a, b) => b.receivedAt - a.receivedAt).slice(0, limit)
  }
}

/**
 * Aborts a fetch when no progress was made for `stallMs`, after `totalMs` in all, or
 * when `parent` aborts.
 */
class StallWatch {
  private readonly controller = new AbortController()
  private stall: NodeJS.Timeout
  private readonly total: NodeJS.Timeout
  private readonly stallMs: number
  private readonly parent: AbortSignal
  private readonly onParent = (): void => { this.controller.abort(this.parent.reason) }

  constructor (stallMs: number, totalMs: number, parent: AbortSignal) {
    this.stallMs = stallMs
    this.parent = parent
    this.stall = setTimeout(() => { this.controller.abort(new Error(`no shard arrived for ${stallMs} ms`)) }, stallMs)
    this.total = setTimeout(() => { this.controller.abort(new Error(`the shards took over ${totalMs} ms`)) }, totalMs)
    parent.addEventListener('abort', this.onParent, { once: true })
  }

  get signal (): AbortSignal {
    return this.controller.signal
  }

  progress (): void {
    clearTimeout(this.stall)
    this.stall = setTimeout(() => { this.controller.abort(new Error(`no shard arrived for ${this.stallMs} ms`)) }, this.stallMs)
  }

  clear (): void {
    clearTimeout(this.stall)
    clearTimeout(this.total)
    this.parent.removeEventListener('abort', this.onParent)
  }
}
