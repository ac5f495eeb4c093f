import { randomBytes } from 'node:crypto'
import { CID } from 'multiformats/cid'
import { fromHex } from '../../src/codec/hash.ts'
import { datanetDigest } from '../../src/datanet/manifest.ts'
import {
  contributionCid, contributionJson, contributionSigner, contributionTypedData, encodeContribution, signContribution,
  type Contribution, type UnsignedContribution
} from '../../src/contribution/contribution.ts'
import { ingestPrepared, type IngestResult } from '../../src/contribution/ingest.ts'
import type { UploadFormat } from '../../src/contribution/parse.ts'
import { builtinRules, type ContributionFacts, type ContributionRule } from '../../src/contribution/rules/index.ts'
import { recordKeys } from '../../src/contribution/near-duplicates.ts'
import { splitShard, shardCid } from '../../src/datanet/shard.ts'
import { DatanetError } from '../../src/errors.ts'
import type { GossipRouter } from '../../src/network/gossip.ts'
import { topics } from '../../src/network/topics.ts'
import { getBlock, pin } from './blocks.ts'
import { ContributionReceiver, type ContributionReceiverOptions, type ShardFetchOptions } from './contribution-receiver.ts'
import { preparedBatches } from './ingest-thread.ts'
import type { DomainBinding, TypedDataSigner } from '../../src/codec/eip712.ts'
import type { ContributionEntry, StateDatabase, UploadEntry, VerdictEntry } from '../../src/storage/state-db.ts'
import type { DatanetService, FollowedDatanet } from './datanets.ts'
import type { ShardHashes } from './shard-hashes.ts'
import type { VerdictService } from './verdicts.ts'
import type { Helia } from '@helia/interface'
import type { Logger } from '../logger.ts'

export const ContributionErrorCode = {
  NOT_FOUND: 'CONTRIBUTION_ERROR_NOT_FOUND',
  BAD_CID: 'CONTRIBUTION_ERROR_BAD_CID',
  NO_DRAFT: 'CONTRIBUTION_ERROR_NO_DRAFT',
  BAD_SIGNATURE: 'CONTRIBUTION_ERROR_BAD_SIGNATURE',
  BUSY: 'CONTRIBUTION_ERROR_BUSY'
} as const

/** How long a count of a datanet's open contributions is trusted (uploads in between are added to it). */
const OPEN_COUNT_MS = 1000

/** How often the node re-sends contributions it took that are still undecided, and how many per pass. */
const REGOSSIP_MS = 30_000
const REGOSSIP_MAX = 64
/** How long a draft waits for its contributor's signature. */
const DRAFT_TTL_MS = 10 * 60_000

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
  /**
   * Contributions a datanet may have open (received, not rejected, in no version yet)
   * before uploads to it are refused (config api.maxOpenContributions; 256 = four full
   * versions). Without a bound, uploads faster than the quorum could judge and include
   * them filled every validator's event loop with receipt work and starved consensus: no
   * version was final for ten minutes (scripts/bench/catch-up.ts with six uploaders).
   */
  maxOpen: number
  /** Large uploads whose per-record stage may run on a worker thread at once (config api.ingestWorkers; 0: none). */
  ingestWorkers: number
  /** How gossiped contributions' shards are fetched (defaults: defaultShardFetchOptions). */
  shardFetch?: Partial<ShardFetchOptions>
  logger: Logger
  onGossip?: (result: string) => void
  /** A contribution stored here for the first time. */
  onStored?: (entry: ContributionEntry) => void
  /** Which records the datanet's final versions already mostly hold (AttributionService.covered); absent: none. */
  covered?: (d: FollowedDatanet, records: readonly Uint8Array[]) => Promise<boolean[]>
  /** Where shards' record hashes are kept for the versions that append them (the consensus service reads it). */
  shardHashes?: ShardHashes
  /** Blocks asked of one peer: gossiped contributions' shards are asked of their publisher first. */
  blocks?: ContributionReceiverOptions['blocks']
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
 * Contributions: streamed uploads turned into signed contributions, and the gossip topic
 * that receives everyone else's (ContributionReceiver, node/services/contribution-receiver.ts).
 * The one owner of contribution entries as received: both paths store through `store`.
 */
export class ContributionService {
  private readonly opts: ContributionServiceOptions
  private readonly rules: readonly ContributionRule[]
  private readonly drafts = new Map<string, Draft>()
  /** Per datanet: its open contributions when last counted, plus uploads admitted since. */
  private readonly open = new Map<string, { at: number, count: number }>()
  private readonly receiver: ContributionReceiver

  constructor (opts: ContributionServiceOptions) {
    this.opts = opts
    this.rules = [...builtinRules, ...opts.rules]
    this.receiver = new ContributionReceiver({
      db: opts.db,
      helia: opts.helia,
      router: opts.router,
      verdicts: opts.verdicts,
      binding: opts.binding,
      rules: this.rules,
      shardFetch: opts.shardFetch,
      logger: opts.logger,
      onGossip: opts.onGossip,
      covered: opts.covered,
      shardHashes: opts.shardHashes,
      blocks: opts.blocks,
      store: async (datanet, contribution, cid, origin, facts) => await this.store(datanet, contribution, cid, origin, facts)
    })
  }

  /** Contributions whose shards are waiting to be fetched or being fetched. */
  get pendingFetches (): number {
    return this.receiver.pendingFetches
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
    this.receiver.follow(datanet)
  }

  /** Drops the fetches in progress (a contribution dropped so is fetched again by consensus if it is included). */
  stop (): void {
    clearInterval(this.regossipTimer)
    this.receiver.stop()
  }

  // ---- local uploads -------------------------------------------------------------------

  /**
   * Ingests an upload and publishes it as a contribution signed by this node's key; or,
   * with `options.contributor` (another account), leaves it as a draft whose EIP-712
   * typed data the contributor signs and hands back with `completeDraft`.
   */
  async contribute (datanetId: string, body: AsyncIterable<Uint8Array>, options: ContributeOptions): Promise<ContributeResult | DraftResult> {
    const datanet = this.opts.datanets.require(datanetId)
    await this.admit(datanet)
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
    await this.admit(draft.datanet)
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
      const opts = { manifest: datanet.manifest, validateRecord: datanet.validateRecord, rules: this.rules, skipInvalid: options.skipInvalid, onProgress: options.onProgress }
      const result = await ingestPrepared(
        preparedBatches(body, { format: options.format, textMode: datanet.manifest.textMode, maxRecordBytes: datanet.manifest.limits.maxRecordBytes * 4 }, opts, { maxWorkers: this.opts.ingestWorkers }),
        opts,
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

  /** Refuses an upload while the datanet has `maxOpen` contributions open (backpressure: the client retries). */
  private async admit (datanet: FollowedDatanet): Promise<void> {
    let open = this.open.get(datanet.id)
    if (open === undefined || Date.now() - open.at > OPEN_COUNT_MS) {
      let count = 0
      for await (const e of this.opts.db.contributions.unincluded(datanet.id)) if (e.status !== 'rejected') count++
      open = { at: Date.now(), count }
      this.open.set(datanet.id, open)
    }
    if (open.count >= this.opts.maxOpen) {
      throw new DatanetError({ code: ContributionErrorCode.BUSY }, `datanet ${datanet.id} has ${open.count} contributions waiting for a version (at most ${this.opts.maxOpen}): try again in a few seconds`, 'unavailable')
    }
    // counted now, so a burst within one count's lifetime cannot overshoot
    open.count++
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
    await pin(helia, cid)
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
    const { covered, shardHashes } = this.opts
    if (covered === undefined && shardHashes === undefined) return 0
    let n = 0
    for (const s of shards) {
      const records = splitShard(await getBlock(this.opts.helia, s, { offline: true }))
      shardHashes?.put(s, records)
      if (covered !== undefined) n += (await covered(datanet, records.map(r => r.bytes))).filter(Boolean).length
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
