/**
 * Consensus for every followed datanet: per datanet, the driver's glue
 * (datanet-consensus.ts), its versions (versions.ts) and catch-up (catch-up.ts).
 */
import type { Wallet } from 'ethers'
import type { Helia } from '@helia/interface'
import { signingDomain } from '../../../src/codec/eip712.ts'
import type { DomainBinding } from '../../../src/codec/eip712.ts'
import type { ValidatorSet } from '../../../src/datanet/manifest.ts'
import type { AnchorShare } from '../../../src/chain/anchor-shares.ts'
import type { WireShare } from '../../../src/consensus/wire.ts'
import type { GossipRouter } from '../../../src/network/gossip.ts'
import { topics } from '../../../src/network/topics.ts'
import type { SyncRequest, SyncResponse, VersionSync } from '../../../src/network/version-sync.ts'
import type { StateDatabase, VersionEntry } from '../../../src/storage/state-db.ts'
import type { FollowedDatanet } from '../datanets.ts'
import type { ShardHashes } from '../shard-hashes.ts'
import type { Logger } from '../../logger.ts'
import { CatchUp, type CatchUpOptions } from './catch-up.ts'
import { SignatureThread } from '../signature-thread.ts'
import { ValidatorSets } from '../validator-sets.ts'
import { DatanetConsensus, type ConsensusFault, type ConsensusStatus } from './datanet-consensus.ts'
import { DatanetVersions, type InferenceSource, type VerdictSink } from './versions.ts'

export type { ConsensusFault, ConsensusStatus, InferenceSource, VerdictSink }

export interface ConsensusServiceOptions {
  db: StateDatabase
  helia: Helia
  router: GossipRouter
  sync: VersionSync
  /** Blocks asked of one peer: catch-up asks the peer that served a range for what it names. */
  blocks?: CatchUpOptions['blocks']
  wallet: Wallet
  binding: Omit<DomainBinding, 'datanet'>
  logger: Logger
  onFinal?: (entry: VersionEntry) => void
  /**
   * The set that decides a height (from the chain: fixed at each anchor; undefined while it
   * is not known yet, and the height waits); told each final height. Default: the
   * manifest's genesis set.
   */
  sets?: ValidatorSets
  /** Equivocation evidence was kept for a datanet (the chain service submits it). */
  onEvidence?: (datanet: string) => void
  /** Fault injection for tests of the protocol's defences (DATANET_FAULT). */
  fault?: ConsensusFault
  /** Junk proposals per proposal under `proposal-flood` (DATANET_FAULT_FLOOD; default 200). */
  floodCount?: number
  /** Padding of each junk version under `proposal-flood` (DATANET_FAULT_FLOOD_BYTES; default 0). */
  floodBytes?: number
  /** Verified inference events (absent: versions carry none). */
  inferences?: InferenceSource
  /** Where verdicts carried by certificates go (the verdict service). */
  verdicts?: VerdictSink
  /** Fault injection for crash tests: called between the steps of a finalization. */
  crashPoint?: (step: string) => void
  /** Shards' record hashes kept since their receipt (the contribution service fills it). */
  shardHashes?: ShardHashes
  /** A checked anchor share from gossip, for the chain service (src/chain/anchor-shares.ts). */
  onShare?: (datanet: string, height: number, share: AnchorShare) => void
}

/** A served range no quorum signed: as much as an invalid contribution costs its publisher. */
const PENALTY_FORGED_RANGE = 10

interface PerDatanet { consensus: DatanetConsensus, versions: DatanetVersions, catchUp: CatchUp, timers: NodeJS.Timeout[] }

export class ConsensusService {
  private readonly opts: ConsensusServiceOptions
  private readonly byDatanet = new Map<string, PerDatanet>()
  /** Catch-up ranges' signatures, checked on a thread of their own (one for every datanet). */
  private readonly signatures = new SignatureThread()

  constructor (opts: ConsensusServiceOptions) {
    this.opts = opts
  }

  async follow (d: FollowedDatanet): Promise<void> {
    const o = this.opts
    const log = o.logger.child({ datanet: d.id })
    const domain = signingDomain(o.binding, d.id)
    const sets = o.sets ?? new ValidatorSets()
    const setFor = (height: number): ValidatorSet | undefined => sets.at(d, height)
    const versions = new DatanetVersions({ db: o.db, helia: o.helia, binding: o.binding, logger: log, inferences: o.inferences, verdicts: o.verdicts, crashPoint: o.crashPoint, shardHashes: o.shardHashes }, d, log)
    await versions.load()
    sets.finalized(d.id, versions.nextHeight - 1)
    // eslint-disable-next-line prefer-const
    let consensus: DatanetConsensus
    const apply = async (round: number, value: Parameters<DatanetVersions['finalize']>[1], certificate: VersionEntry['certificate']): Promise<void> => {
      const entry = await versions.finalize(round, value, certificate, Date.now())
      log.info({ height: entry.height, round, version: entry.cid, records: entry.recordCount, contributions: entry.contributions.length, datasetRoot: entry.datasetRoot }, 'version final')
      sets.finalized(d.id, entry.height)
      consensus.advanced()
      o.onFinal?.(entry)
    }
    const catchUp = new CatchUp({
      sync: o.sync, helia: o.helia, versions, domain, datanet: d.id, logger: log, setFor, blocks: o.blocks,
      peers: () => o.router.subscribers(topics.consensus(d.id)),
      onQueue: async <T>(task: () => Promise<T>): Promise<T> => {
        let result: T | undefined
        await consensus.enqueue(async () => { result = await task() })
        return result as T
      },
      applyRange: async items => {
        const { applied, problem } = await versions.finalizeRange(items, setFor, Date.now())
        if (problem !== undefined) log.error({ height: problem.height, why: problem.why }, 'synced version does not verify')
        const last = applied[applied.length - 1]
        if (last === undefined) return 0
        log.info({ from: applied[0]?.height, to: last.height, records: last.recordCount, datasetRoot: last.datasetRoot }, 'versions final (caught up)')
        for (const entry of applied) {
          sets.finalized(d.id, entry.height)
          o.onFinal?.(entry)
        }
        consensus.advanced()
        return applied.length
      },
      penalise: peer => { o.router.penalise(peer, 'version-sync', 'FORGED_RANGE', PENALTY_FORGED_RANGE) },
      verify: async signatures => await this.signatures.verify(signatures)
    })
    consensus = new DatanetConsensus({
      db: o.db, router: o.router, wallet: o.wallet, logger: log, versions, domain, setFor,
      onFinal: apply,
      onEvidence: () => { o.onEvidence?.(d.id) },
      onBehind: () => { catchUp.request() },
      onShare: (height, share) => { o.onShare?.(d.id, height, share) },
      fault: o.fault,
      floodCount: o.floodCount,
      floodBytes: o.floodBytes
    }, d)
    const entry: PerDatanet = { consensus, versions, catchUp, timers: [] }
    this.byDatanet.set(d.id, entry)
    await consensus.start()
    // nodes learn of versions made without them (after a partition or a restart), idle or mid-height
    const periodic = setInterval(() => { catchUp.request() }, 10_000)
    periodic.unref()
    const first = setTimeout(() => { catchUp.request() }, 1000)
    first.unref()
    entry.timers.push(periodic as unknown as NodeJS.Timeout, first)
  }

  /** Gossips this validator's anchor share of a final version of `datanet`. */
  async publishShare (datanet: string, share: WireShare): Promise<void> {
    await this.byDatanet.get(datanet)?.consensus.publishShare(share)
  }

  poke (datanet: string): void {
    this.byDatanet.get(datanet)?.consensus.poke()
  }

  async serve (request: SyncRequest): Promise<SyncResponse> {
    return (await this.byDatanet.get(request.datanet)?.catchUp.serve(request)) ?? { versions: [], blocks: [] }
  }

  height (datanet: string): number | undefined {
    return this.byDatanet.get(datanet)?.consensus.height
  }

  status (datanet: string): ConsensusStatus | undefined {
    return this.byDatanet.get(datanet)?.consensus.status()
  }

  async stop (): Promise<void> {
    for (const p of this.byDatanet.values()) {
      for (const t of p.timers) clearTimeout(t)
      p.consensus.stop()
    }
    await this.signatures.stop()
  }
}
