import { rmSync } from 'node:fs'
import { multiaddr } from '@multiformats/multiaddr'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { Registry } from 'prom-client'
import { DatanetError } from '../../src/errors.ts'
import { AnnounceService } from '../../src/network/announce.ts'
import { GossipRouter } from '../../src/network/gossip.ts'
import { levelOutboxStore } from '../../src/network/outbox-store.ts'
import { PeerKeeper } from '../../src/network/peer-keeper.ts'
import type { VersionSource } from '../../src/network/version-sync.ts'
import type { BlockSource } from '../../src/network/block-request.ts'
import { libp2pOptions, type HostServices } from '../../src/network/libp2p-options.ts'
import { DataDirErrorCode, DataDirLock, dataDirPaths, loadLibp2pKey, loadWallet, readApiToken, readDataDirMeta, writeFileAtomic } from '../../src/storage/data-dir.ts'
import { kdfStats } from '../../src/storage/keystore-kdf.ts'
import { createContentStore, type ContentStore } from '../../src/storage/helia.ts'
import { StateDatabase } from '../../src/storage/state-db.ts'
import { ApiServer } from '../api/server.ts'
import { nodeRoutes, type NodeInfo, type NodeView, type PeerInfo } from '../api/routes/node.ts'
import { NodeMetrics } from './metrics.ts'
import { DatanetService } from '../services/datanets.ts'
import { ContributionService } from '../services/contributions.ts'
import { defaultIngestWorkers } from '../services/ingest-thread.ts'
import { VerdictService } from '../services/verdicts.ts'
import { ConsensusService } from '../services/consensus/index.ts'
import type { FaultOptions } from '../services/faults.ts'
import { ValidatorSets } from '../services/validator-sets.ts'
import { versionRoutes } from '../api/routes/versions.ts'
import { validatorRoutes } from '../api/routes/validators.ts'
import { attributionRoutes } from '../api/routes/attribution.ts'
import { openAiRoutes } from '../api/routes/openai.ts'
import { evidenceRoutes } from '../api/routes/evidence.ts'
import { ChainService } from '../services/chain.ts'
import { ShardHashes } from '../services/shard-hashes.ts'
import { getBlock as blockHere } from '../services/blocks.ts'
import { AttributionService } from '../services/attribution.ts'
import { TallyService } from '../services/tallies.ts'
import { NodeEvents } from '../events.ts'
import { eventRoutes } from '../api/routes/events.ts'
import { webRoutes } from '../api/routes/web.ts'
import { InferenceService } from '../services/inferences.ts'
import { ModelService } from '../services/models.ts'
import { datanetRoutes } from '../api/routes/datanets.ts'
import type { ContributionRule } from '../../src/contribution/rules/index.ts'
import { AGENT_VERSION, VERSION } from '../version.ts'
import type { NodeConfig } from '../config/schema.ts'
import type { Logger } from '../logger.ts'
import { parseUnits, type Wallet } from 'ethers'
import { idleTrim } from './idle-trim.ts'

export interface DatanetNodeOptions {
  config: Readonly<NodeConfig>
  password: string | undefined
  logger: Logger
  /** Custom contribution rules for the datanets this node validates (DESIGN §4 flow 2). */
  rules?: ContributionRule[]
  /** Byzantine behaviour to inject (tests and drills only; none by default). */
  faults?: FaultOptions
  /** The keystore already being decrypted with `password` (run.ts starts it early); else start() decrypts it. */
  wallet?: Promise<Wallet>
}

const NodeErrorCode = {
  P2P_LISTEN: 'NODE_ERROR_P2P_LISTEN',
  BAD_CID: 'NODE_ERROR_BAD_CID',
  BLOCK_NOT_FOUND: 'NODE_ERROR_BLOCK_NOT_FOUND',
  DIAL: 'NODE_ERROR_DIAL'
} as const

/**
 * The composition root: wires the library's parts into one running node. Start order is
 * lock → database → content store and network → services → API; stop runs the other
 * way, API first and database last.
 */
export class DatanetNode implements NodeView {
  readonly config: Readonly<NodeConfig>
  private readonly logger: Logger
  private readonly password: string | undefined
  private readonly faults: FaultOptions
  private readonly paths: ReturnType<typeof dataDirPaths>
  private readonly lock: DataDirLock
  private readonly registry = new Registry()
  private readonly versionSource: VersionSource = {}
  private readonly blockSource: BlockSource = {}
  /** Shards' record hashes from their receipt to the version that appends them (the receiver writes, versions read). */
  private readonly shardHashes = new ShardHashes()
  private db: StateDatabase | undefined
  private content: ContentStore<HostServices> | undefined
  private gossip: GossipRouter | undefined
  private readonly rules: ContributionRule[]
  datanets: DatanetService | undefined
  contributions: ContributionService | undefined
  verdicts: VerdictService | undefined
  consensus: ConsensusService | undefined
  chain: ChainService | undefined
  attribution: AttributionService | undefined
  /** What happens in this node (node/events.ts): the services' wiring and `GET /v1/events`. */
  readonly events: NodeEvents
  inferences: InferenceService | undefined
  private api: ApiServer | undefined
  private wallet: Wallet | undefined
  private nodeMetrics: NodeMetrics | undefined
  private startedAt = 0
  private starts = 0
  private readonly stopSteps: Array<[string, () => Promise<void> | void]> = []

  constructor (opts: DatanetNodeOptions) {
    this.config = opts.config
    this.logger = opts.logger
    this.password = opts.password
    this.faults = opts.faults ?? {}
    this.events = new NodeEvents(opts.logger.child({ component: 'events' }))
    this.rules = opts.rules ?? []
    this.paths = dataDirPaths(opts.config.dataDir)
    this.lock = new DataDirLock(opts.config.dataDir)
    this.walletPromise = opts.wallet
  }

  get apiUrl (): string | undefined {
    return this.api?.listeningUrl
  }

  get peerId (): string {
    return this.libp2p.peerId.toString()
  }

  private get libp2p () {
    if (this.content === undefined) throw new Error('node is not started')
    return this.content.libp2p
  }

  /**
   * Starts the node as a list of steps, each one small and named (its time is logged as a
   * phase); each registers how to undo itself, so a failed start or a stop unwinds exactly
   * what started, in reverse order.
   */
  async start (): Promise<void> {
    const t0 = performance.now()
    const phases: Record<string, number> = {}
    this.preflight()
    try {
      const steps: Array<[string, () => Promise<void>]> = [
        ['database', async () => { await this.openDatabase() }],
        ['network', async () => { await this.startNetwork() }],
        ['keystore', async () => { this.wallet = await this.need(this.walletPromise) }],
        ['announce', async () => { await this.startAnnounce() }],
        ['chain', async () => { await this.startChain() }],
        ['attribution', async () => { this.startAttribution() }],
        ['consensus', async () => { this.startConsensus() }],
        ['datanets', async () => { await this.startDatanets() }],
        ['api', async () => { await this.startApi() }]
      ]
      for (const [name, step] of steps) {
        await step()
        phases[name] = Math.round(performance.now() - t0)
      }
      const trim = idleTrim({ logger: this.logger })
      this.nodeMetrics?.idleTrims(() => trim.trims)
      trim.start()
      this.stopSteps.push(['idle trim', () => { trim.stop() }])
      this.startedAt = Date.now()
      this.logger.info({
        peerId: this.peerId,
        address: this.wallet?.address,
        p2p: this.libp2p.getMultiaddrs().map(a => a.toString()),
        api: this.api?.listeningUrl,
        startMs: Math.round(performance.now() - t0),
        processUptimeMs: Math.round(process.uptime() * 1000),
        phases,
        // the keystore's key derived from main.js's start (node/cli/keystore-prefetch.ts)
        keystorePrefetched: kdfStats.prefetchTaken > 0
      }, 'datanet node started')
    } catch (err) {
      await this.stop()
      throw err
    }
  }

  private walletPromise: Promise<Wallet> | undefined

  /** Checks the data directory and the password, takes the lock, and starts decrypting the keystore (scrypt runs on the thread pool while the rest starts). */
  private preflight (): void {
    readDataDirMeta(this.config.dataDir)
    if (this.password === undefined || this.password === '') {
      throw new DatanetError({ code: DataDirErrorCode.NO_PASSWORD }, 'no keystore password: pass --password-file FILE or set DATANET_PASSWORD', 'usage')
    }
    this.lock.acquire()
    this.stopSteps.push(['lock', () => { this.lock.release() }])
    this.walletPromise ??= loadWallet(this.config.dataDir, this.password)
    this.walletPromise.catch(() => {})
    this.token = readApiToken(this.paths.apiToken)
  }

  private token: string | undefined

  private async openDatabase (): Promise<void> {
    const db = new StateDatabase(this.paths.state)
    await db.open()
    this.db = db
    this.stopSteps.push(['database', async () => { await db.close() }])
    const facts = await db.facts.get('node')
    const now = new Date().toISOString()
    this.starts = (facts?.starts ?? 0) + 1
    await db.facts.put('node', { starts: this.starts, firstStartedAt: facts?.firstStartedAt ?? now, lastStartedAt: now })
    this.nodeMetrics = new NodeMetrics(this.registry)
  }

  /** The content store (Helia over libp2p), the gossip router, and the peer keeper. */
  private async startNetwork (): Promise<void> {
    const { config, logger } = this
    const db = this.need(this.db)
    const privateKey = await loadLibp2pKey(config.dataDir)
    const content = await createContentStore<HostServices>({
      name: 'datanet',
      version: VERSION,
      blocksPath: this.paths.blocks,
      datastorePath: this.paths.datastore,
      libp2p: libp2pOptions({
        privateKey,
        host: config.p2p.host,
        port: config.p2p.port,
        announce: config.p2p.announce,
        maxConnections: config.p2p.maxConnections,
        dialTimeoutMs: config.p2p.dialTimeoutMs,
        maxMessageBytes: config.p2p.maxMessageBytes,
        agentVersion: AGENT_VERSION,
        metricsRegistry: this.registry,
        versionSource: this.versionSource,
        blockSource: this.blockSource,
        statfsLocation: config.dataDir
      })
    })
    this.content = content
    this.stopSteps.push(['network', async () => { await content.stop() }])
    try {
      await content.start()
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'EADDRINUSE' || /EADDRINUSE|address already in use/i.test(String((err as Error).message))) {
        throw new DatanetError({ code: NodeErrorCode.P2P_LISTEN }, `cannot listen for p2p on ${config.p2p.host}:${config.p2p.port}: the port is already in use`, 'failure', { cause: err })
      }
      throw err
    }
    // the block protocol serves what is here, never fetches for the asker
    this.blockSource.get = async cid => await blockHere(content.helia, cid, { offline: true }).catch(() => undefined)
    const gossip = new GossipRouter(content.helia.libp2p.services.pubsub, {
      queueSize: config.p2p.validationQueueSize,
      outboxStore: levelOutboxStore(db.outbox),
      logger: logger.child({ component: 'gossip' }),
      onResult: (kind, result, code) => { this.nodeMetrics?.gossipResult(kind, result, code) }
    })
    this.gossip = gossip
    this.nodeMetrics?.gossipOutbox(() => gossip.waiting)
    gossip.start()
    this.stopSteps.push(['gossip', async () => { await gossip.stop() }])
    const keeper = new PeerKeeper({ peers: config.p2p.bootstrap, dialTimeoutMs: config.p2p.dialTimeoutMs, maxAnnounced: Math.floor(config.p2p.maxConnections / 2), logger: logger.child({ component: 'peers' }) })
    keeper.start(content.libp2p)
    // the peers announced before the last stop: a restart does not depend on the bootstrap peers alone
    for (const p of await db.peers.values()) keeper.add(p.peerId, p.multiaddrs)
    this.keeper = keeper
    this.stopSteps.push(['peers', () => { keeper.stop() }])
  }

  private keeper: PeerKeeper | undefined

  /** Signed announcements of this node's addresses; the peers others announce go to the keeper. */
  private async startAnnounce (): Promise<void> {
    const { config } = this
    const keeper = this.need(this.keeper)
    const announce = new AnnounceService({
      router: this.need(this.gossip),
      db: this.need(this.db),
      wallet: this.need(this.wallet),
      binding: { chainId: config.chain.chainId, registry: config.chain.registry, datanet: null },
      peerId: this.peerId,
      intervalMs: config.p2p.announceIntervalMs,
      agentVersion: AGENT_VERSION,
      multiaddrs: () => this.libp2p.getMultiaddrs().map(a => a.toString()),
      datanets: () => this.datanets?.list().map(d => d.id) ?? [...config.datanets],
      onPeer: (peerId, multiaddrs) => { keeper.add(peerId, multiaddrs) },
      logger: this.logger.child({ component: 'announce' })
    })
    await announce.start()
    this.stopSteps.push(['announce', () => { announce.stop() }])
  }

  /** The chain follower and anchor service, when the config names a chain. */
  private async startChain (): Promise<void> {
    const { config, events } = this
    if (config.chain.rpcUrl === null) return
    if (config.chain.registry === null) throw new DatanetError({ code: 'CONFIG_ERROR_NO_REGISTRY' }, 'chain.rpcUrl is set but chain.registry is not: give the registry contract\'s address (--registry)', 'usage')
    const chain = new ChainService({
      db: this.need(this.db),
      rpcUrls: [...new Set([config.chain.rpcUrl, ...config.chain.rpcUrls])],
      chainId: config.chain.chainId,
      registry: config.chain.registry,
      confirmations: config.chain.confirmations,
      pollIntervalMs: config.chain.pollIntervalMs,
      startBlock: config.chain.startBlock,
      feeBumpAfterMs: config.chain.feeBumpAfterMs,
      maxFeePerGas: parseUnits(config.chain.maxFeePerGasGwei.toFixed(9), 'gwei'),
      rpcTimeoutMs: config.chain.rpcTimeoutMs,
      wallet: this.need(this.wallet),
      peerId: this.peerId,
      logger: this.logger.child({ component: 'chain' }),
      onChange: datanet => { events.emit('chain', { datanet }) },
      onAnchored: anchor => { events.emit('anchor', anchor) },
      anchorSignatures: config.chain.anchorSignatures,
      badShares: this.faults.fault === 'bad-bls-share',
      publishShare: async (datanet, share) => { await this.consensus?.publishShare(datanet, share) }
    })
    this.stopSteps.push(['chain', async () => { await chain.stop() }])
    await chain.start()
    this.chain = chain
  }

  private get binding (): { chainId: number, registry: string | null } {
    return { chainId: this.config.chain.chainId, registry: this.config.chain.registry }
  }

  /** Attribution, models and inference events. */
  private startAttribution (): void {
    const { logger, events, binding } = this
    const db = this.need(this.db)
    const content = this.need(this.content)
    const gossip = this.need(this.gossip)
    const wallet = this.need(this.wallet)
    const attribution = new AttributionService({ db, helia: content.helia, dir: this.paths.attribution, logger: logger.child({ component: 'attribution' }), shardHashes: this.shardHashes })
    this.attribution = attribution
    this.stopSteps.push(['attribution', async () => { await attribution.stop() }])
    const models = new ModelService({ db, helia: content.helia, router: gossip, wallet, binding, logger: logger.child({ component: 'models' }) })
    this.models = models
    const inferences = new InferenceService({
      db,
      helia: content.helia,
      router: gossip,
      attribution,
      models,
      chain: this.chain,
      wallet,
      binding,
      logger: logger.child({ component: 'inferences' }),
      onPending: (datanet, e) => {
        events.emit('inference', { datanet, cid: e.cid, model: e.model, fee: e.fee })
        events.emit('work', { datanet })
      },
      fault: this.faults.fault
    })
    this.inferences = inferences
    this.stopSteps.push(['inferences', () => { inferences.stop() }])
  }

  /** Verdicts and consensus, over one answer to "which validator set at height h" (also the API's). */
  private startConsensus (): void {
    const { logger, events, binding } = this
    const db = this.need(this.db)
    const content = this.need(this.content)
    const gossip = this.need(this.gossip)
    const wallet = this.need(this.wallet)
    const { fault, floodCount, floodBytes } = this.faults
    const sets = new ValidatorSets(this.chain)
    this.sets = sets
    const verdicts = new VerdictService({
      db, router: gossip, signer: wallet, binding, rules: this.rules, logger: logger.child({ component: 'verdicts' }), sets,
      onDecided: entry => { events.emit('decided', { datanet: entry.datanet, cid: entry.cid, status: entry.status === 'rejected' ? 'rejected' : 'accepted', score: entry.score }) },
      onVerdict: (datanet, v) => { events.emit('verdict', { datanet, contribution: v.contribution, validator: v.validator, accept: v.accept, score: v.score }) }
    })
    this.verdicts = verdicts
    verdicts.start()
    this.stopSteps.push(['verdicts', () => { verdicts.stop() }])
    const consensus = new ConsensusService({
      db,
      helia: content.helia,
      router: gossip,
      sync: content.libp2p.services.sync,
      blocks: content.libp2p.services.blocks,
      wallet,
      binding,
      logger: logger.child({ component: 'consensus' }),
      inferences: this.need(this.inferences),
      onEvidence: datanet => { events.emit('evidence', { datanet }) },
      fault,
      floodCount,
      floodBytes,
      verdicts,
      sets,
      shardHashes: this.shardHashes,
      onFinal: entry => { events.emit('final', entry) },
      onShare: (datanet, height, share) => { this.chain?.addShare(datanet, height, share) }
    })
    this.versionSource.serve = async request => await consensus.serve(request)
    this.consensus = consensus
    this.stopSteps.push(['consensus', async () => { await consensus.stop() }])
  }

  /** The datanets followed and the contributions to them; then who reacts to what, and the start of each. */
  private async startDatanets (): Promise<void> {
    const { config, logger, events, binding, chain } = this
    const db = this.need(this.db)
    const content = this.need(this.content)
    const gossip = this.need(this.gossip)
    const wallet = this.need(this.wallet)
    const verdicts = this.need(this.verdicts)
    const attribution = this.need(this.attribution)
    const models = this.need(this.models)
    const inferences = this.need(this.inferences)
    const consensus = this.need(this.consensus)
    const datanets = new DatanetService({
      db,
      helia: content.helia,
      configured: config.datanets,
      logger: logger.child({ component: 'datanets' }),
      // a followed datanet reaches every service; `events` could not order these awaits
      onFollow: async (d) => {
        this.contributions?.follow(d)
        verdicts.follow(d)
        await chain?.follow(d)
        await attribution.follow(d)
        models.follow(d)
        inferences.follow(d)
        await consensus.follow(d)
      }
    })
    this.datanets = datanets
    const contributions = new ContributionService({
      db,
      helia: content.helia,
      router: gossip,
      datanets,
      verdicts,
      signer: wallet,
      binding,
      rules: this.rules,
      maxMessageBytes: config.p2p.maxMessageBytes,
      maxOpen: config.api.maxOpenContributions,
      ingestWorkers: config.api.ingestWorkers ?? defaultIngestWorkers(),
      blocks: content.libp2p.services.blocks,
      onStored: entry => {
        events.emit('contribution', { datanet: entry.datanet, cid: entry.cid, contributor: String(entry.contribution.contributor ?? ''), recordCount: entry.facts?.recordCount ?? 0, origin: entry.origin })
      },
      // coverage tokenizes every record: only a node that judges pays for it
      covered: async (d, records) => verdicts.isValidator(d) ? await attribution.covered(d, records) : records.map(() => false),
      shardHashes: this.shardHashes,
      logger: logger.child({ component: 'contributions' })
    })
    this.contributions = contributions
    this.wire()
    await contributions.start()
    this.stopSteps.push(['contributions', () => { contributions.stop() }])
    await datanets.start()
    this.stopSteps.push(['datanets', () => { datanets.stop() }])
    const tallies = new TallyService({ db, chain })
    await tallies.start()
    this.tallies = tallies
    this.stopSteps.push(['tallies', async () => { await tallies.stop() }])
    // stops first after the API: no message reaches a stopped service, none is cut off halfway
    this.stopSteps.push(['gossip (drain)', async () => { await gossip.stop() }])
  }

  private sets: ValidatorSets | undefined
  private models: ModelService | undefined
  private tallies: TallyService | undefined

  /** Who reacts to what, in one place: the services emit what happened (node/events.ts). */
  private wire (): void {
    const { events, logger } = this
    const db = this.need(this.db)
    const consensus = this.need(this.consensus)
    const datanets = this.need(this.datanets)
    const attribution = this.need(this.attribution)
    const poke = ({ datanet }: { datanet: string }): void => { consensus.poke(datanet) }
    events.on('chain', e => {
      poke(e)
      const d = datanets.get(e.datanet)
      if (d !== undefined) void this.verdicts?.onSetsChanged(d).catch((err: unknown) => { logger.warn({ err, datanet: e.datanet }, 'cannot judge the contributions that waited for the validator set') })
    })
    events.on('work', poke)
    events.on('decided', e => {
      poke(e)
      if (e.status !== 'rejected') return
      void db.contributions.get(e.cid).then(async entry => { if (entry !== undefined) await this.contributions?.release(entry) })
        .catch((err: unknown) => { logger.warn({ err, contribution: e.cid }, 'cannot release the records of a rejected contribution') })
    })
    events.on('evidence', ({ datanet }) => {
      const d = datanets.get(datanet)
      if (d !== undefined) void this.chain?.submitEvidence(d)
    })
    events.on('final', entry => {
      events.emit('version', { datanet: entry.datanet, height: entry.height, cid: entry.cid, recordCount: entry.recordCount, datasetRoot: entry.datasetRoot, attributionRoot: entry.attributionRoot, contributions: entry.contributions.length })
      const d = datanets.get(entry.datanet)
      if (d === undefined) return
      void attribution.onFinal(d, entry)
      this.chain?.onFinal(d, entry)
    })
  }

  /** The HTTP API (routes over the services), and the file that lets the CLI find it. */
  private async startApi (): Promise<void> {
    const { config, logger, events, chain } = this
    const db = this.need(this.db)
    const gossip = this.need(this.gossip)
    const datanets = this.need(this.datanets)
    const consensus = this.need(this.consensus)
    const sets = this.need(this.sets)
    const attribution = this.need(this.attribution)
    const api = new ApiServer({
      host: config.api.host,
      port: config.api.port,
      token: this.need(this.token),
      bodyLimitBytes: config.api.bodyLimitBytes,
      logger,
      routes: [
        nodeRoutes(this),
        datanetRoutes({ datanets, contributions: this.need(this.contributions), sets, subscribers: topic => gossip.subscribers(topic), consensus: id => consensus.status(id), registration: chain === undefined ? undefined : d => chain.registration(d) }),
        versionRoutes({ db, datanets }),
        validatorRoutes({ datanets, chain, sets }),
        attributionRoutes({ datanets, tallies: this.need(this.tallies), attribution, inferences: this.need(this.inferences), models: this.need(this.models), chain }),
        openAiRoutes({ datanets, inferences: this.need(this.inferences), models: this.need(this.models) }),
        evidenceRoutes({ db, datanets }),
        eventRoutes({ events }),
        webRoutes()
      ]
    })
    this.api = api
    const url = await api.start()
    this.stopSteps.push(['api', async () => {
      rmSync(this.paths.apiInfo, { force: true })
      await api.stop()
    }])
    // Lets the CLI find this node's API without being told.
    writeFileAtomic(this.paths.apiInfo, JSON.stringify({ url, pid: process.pid }) + '\n', 0o644)
  }

  /** A component an earlier step made (a step run out of order is a bug here, not a user error). */
  private need<T> (component: T | undefined): T {
    if (component === undefined) throw new Error('a start step ran before the step it needs')
    return component
  }

  /** Stops in reverse order of start: API, gossip (waiting for the messages in hand), services, network, database, lock. Never throws. */
  async stop (): Promise<void> {
    while (this.stopSteps.length > 0) {
      const [name, step] = this.stopSteps.pop() as [string, () => Promise<void> | void]
      try {
        await step()
      } catch (err) {
        this.logger.error({ err, step: name }, 'error while stopping')
      }
    }
  }

  async info (): Promise<NodeInfo> {
    const libp2p = this.libp2p
    const db = this.db as StateDatabase
    const announced = new Map((await db.peers.values()).map(p => [p.peerId, p]))
    const peers: PeerInfo[] = libp2p.getPeers().map(id => {
      const peerId = id.toString()
      return {
        peerId,
        addresses: libp2p.getConnections(id).map(c => c.remoteAddr.toString()),
        address: announced.get(peerId)?.address ?? null,
        score: this.gossip?.score(peerId) ?? 0
      }
    })
    const { chain } = this.config
    return {
      peerId: this.peerId,
      address: (this.wallet as Wallet).address,
      addresses: libp2p.getMultiaddrs().map(a => a.toString()),
      peers,
      knownPeers: announced.size,
      datanets: this.datanets?.list().map(d => d.id) ?? [...this.config.datanets],
      chain: chain.rpcUrl === null ? null : { rpcUrl: chain.rpcUrl, chainId: chain.chainId, registry: chain.registry, block: this.chain?.block ?? null },
      height: this.latestHeight(),
      version: VERSION,
      uptimeMs: Date.now() - this.startedAt,
      starts: this.starts
    }
  }

  /** The highest final version height over the followed datanets; null before any. */
  private latestHeight (): number | null {
    const heights = (this.datanets?.list() ?? []).map(d => (this.consensus?.height(d.id) ?? 1) - 1).filter(h => h > 0)
    return heights.length === 0 ? null : Math.max(...heights)
  }

  async dial (addr: string): Promise<PeerInfo> {
    let ma
    try {
      ma = multiaddr(addr)
    } catch (err) {
      throw new DatanetError({ code: NodeErrorCode.DIAL }, `not a multiaddr: ${addr}`, 'usage', { cause: err })
    }
    try {
      const conn = await this.libp2p.dial(ma, { signal: AbortSignal.timeout(this.config.p2p.dialTimeoutMs) })
      return { peerId: conn.remotePeer.toString(), addresses: [conn.remoteAddr.toString()], address: null, score: 0 }
    } catch (err) {
      throw new DatanetError({ code: NodeErrorCode.DIAL }, `cannot dial ${addr}`, 'unavailable', { cause: err })
    }
  }

  async putBlock (bytes: Uint8Array): Promise<string> {
    const cid = CID.createV1(raw.code, await sha256.digest(bytes))
    await (this.content as ContentStore<HostServices>).helia.blockstore.put(cid, bytes)
    return cid.toString()
  }

  async getBlock (cidText: string, options: { offline: boolean, timeoutMs: number }): Promise<Uint8Array> {
    let cid: CID
    try {
      cid = CID.parse(cidText)
    } catch (err) {
      throw new DatanetError({ code: NodeErrorCode.BAD_CID }, `not a CID: ${cidText}`, 'usage', { cause: err })
    }
    const blockstore = (this.content as ContentStore<HostServices>).helia.blockstore
    try {
      const chunks: Uint8Array[] = []
      for await (const chunk of blockstore.get(cid, { offline: options.offline, signal: AbortSignal.timeout(options.timeoutMs) })) chunks.push(chunk)
      return Buffer.concat(chunks)
    } catch (err) {
      throw new DatanetError({ code: NodeErrorCode.BLOCK_NOT_FOUND }, `block ${cidText} not found${options.offline ? ' locally' : ` within ${options.timeoutMs} ms`}`, 'not_found', { cause: err })
    }
  }

  async metrics (): Promise<{ contentType: string, body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() }
  }
}

