import { ClassicLevel } from 'classic-level'
import { DatanetError } from '../errors.ts'
import { concatBytes } from '../codec/hash.ts'
import { KeyFilter } from './key-filter.ts'
import { readMany } from './level-reads.ts'
import { Repository, jsonCodec, keyOrder, type BatchOp, type Bytes, type StateDb } from './repository.ts'
import { ContributionRepository } from './repositories/contributions.ts'
import { DatasetRepository } from './repositories/dataset.ts'
import { EvidenceRepository } from './repositories/evidence.ts'
import { InferenceRepository } from './repositories/inferences.ts'
import { ModelRepository } from './repositories/models.ts'
import { VerdictRepository } from './repositories/verdicts.ts'
import { AnchorRepository, TallyRepository, VersionRepository } from './repositories/versions.ts'

/** What this node learnt of another node from its announcements. */
export interface PeerRecord {
  peerId: string
  /** The peer's Ethereum address, as it signed its announcement. */
  address: string
  multiaddrs: string[]
  agentVersion: string
  datanets: string[]
  /** The latest announcement's own timestamp (the peer's clock, ms since the epoch). */
  announcedAt: number
}

/** Node-local facts that outlive a restart. */
export interface NodeFacts {
  starts: number
  firstStartedAt: string
  lastStartedAt: string
}

/** A datanet this node follows. */
export interface DatanetEntry {
  id: string
  /** The manifest as stored (JSON of the dag-cbor object). */
  manifest: unknown
  addedAt: number
  source: 'created' | 'config' | 'api'
}

/** A contribution this node holds, and what it knows of its fate. */
export interface ContributionEntry {
  cid: string
  datanet: string
  /** JSON form of the signed contribution (src/contribution/contribution.ts contributionJson). */
  contribution: Record<string, unknown>
  status: 'pending' | 'accepted' | 'rejected'
  score: number | null
  receivedAt: number
  decidedAt: number | null
  origin: 'local' | 'gossip' | 'sync'
  /** The dataset version (height) that includes it; null until one does. */
  version: number | null
  /** Facts this node found reading its records (for its own verdict). */
  facts: { recordCount: number, byteSize: number, invalidRecords: number, duplicateRecords: number, nearDuplicateRecords?: number, flagged: Record<string, number> } | null
  /** The record index owner its records were claimed under when uploaded here (`u:<upload id>`). */
  claims?: string
}

/** A verdict as received: its fields and its encoded bytes (for re-gossip and certificates). */
export interface VerdictEntry {
  contribution: string
  validator: string
  accept: boolean
  score: number
  reasons: string[]
  timestamp: number
  signature: string
  /** hex of the dag-cbor bytes as gossiped */
  bytes: string
}

/** An upload being ingested; kept so a crash mid-upload can be cleaned up at the next start. */
export interface UploadEntry {
  id: string
  datanet: string
  startedAt: number
  shards: string[]
}

/** An own gossip message held until a peer subscribes to its topic (src/network/gossip.ts OutboxStore). */
export interface OutboxEntry {
  topic: string
  /** The message bytes, base64. */
  data: string
  at: number
}

const bytesKeyCodec = {
  encodeKey: (key: Uint8Array): Uint8Array => key,
  decodeKey: (bytes: Uint8Array): Uint8Array => bytes
}
const textEncoder = new TextEncoder()
const textDecoder = new TextDecoder()

/** A final version as indexed (the version object itself is in Helia). */
export interface VersionEntry {
  datanet: string
  height: number
  cid: string
  parent: string | null
  round: number
  datasetRoot: string
  recordCount: number
  attributionRoot: string
  totalAttributed: string
  validatorSetHash: string
  contributions: string[]
  /** The precommits that made it final: > 2/3 of the stake. */
  certificate: Array<{ validator: string, signature: string }>
  /** The record tree's frontier after this version (src/merkle MerkleFrontier.toJSON). */
  frontier: { size: number, nodes: Array<string | null> }
  decidedAt: number
  anchor: { txHash: string, block: number } | null
}

/** An inference event this node verified (its bytes are in Helia under `cid`). */
export interface InferenceEntry {
  cid: string
  datanet: string
  /** The EIP-712 digest the fee was escrowed for. */
  eventId: string
  model: string
  version: number
  operator: string
  nonce: string
  fee: string
  /** This node's attribution of the output: what it pays each contributor (wei, decimal). */
  shares: Array<{ address: string, amount: string }>
  resultHash: string
  receivedAt: number
  /** The height of the version that included it, or null while pending. */
  included: number | null
}

/** A model record this node knows (its bytes are in Helia under `id`). */
export interface ModelEntry {
  id: string
  datanet: string
  version: number
  kind: string
  artifact: string
  operator: string
  createdAt: number
}

/** The persisted consensus state of one datanet: the height in progress and its machine state (values as hex bytes). */
export interface ConsensusEntry {
  height: number
  state: Record<string, unknown>
}

/**
 * `<datanet digest><record hash>` → owner (a contribution CID, or `u:<upload id>` while and
 * after an upload is ingested here): which records a datanet already has or is being
 * offered, for duplicate checks. Per datanet, so a record is never a duplicate because
 * another datanet holds it; claims of a rejected contribution are released.
 */
export class RecordIndex extends Repository<Uint8Array, string> {
  private readonly root: StateDb
  /** The sublevel's prefix: uploads read and write their keys through the root database. */
  private readonly prefix: Uint8Array
  /**
   * Per datanet (hex digest), a filter of every key its index holds, once filled: a key it
   * says is absent is not read. New records are absent, and at 1 GB of them a batch's
   * reads reopened nearly every table (the table cache holds 64 of ~1,300): most of an
   * upload's cost. Filled in the background from the index on first use (until then,
   * reads go to LevelDB), kept by `claim` (added before and after each write, so a claim
   * racing the fill's snapshot is never missed); `release` leaves its keys in (a false
   * "maybe" only costs a read).
   */
  private readonly filters = new Map<string, { filter: KeyFilter, ready: boolean, filled: Promise<void> }>()

  constructor (db: StateDb) {
    super(db, 'records', {
      ...bytesKeyCodec,
      encodeValue: (owner: string) => textEncoder.encode(owner),
      decodeValue: (bytes: Uint8Array) => textDecoder.decode(bytes)
    })
    this.root = db
    this.prefix = textEncoder.encode(this.store.prefix)
  }

  /**
   * The stored keys (sublevel prefix ‖ datanet ‖ hash) of many hashes, built in one buffer.
   * An upload looks up and claims two keys per record: through the sublevel each key was
   * three objects and two buffers, alive across the database call, and the garbage
   * collector's copying of them was the largest cost of a large upload's main thread.
   */
  private storedKeys (datanet: Uint8Array, hashes: readonly Uint8Array[]): Uint8Array[] {
    const width = this.prefix.length + datanet.length + 32
    const all = new Uint8Array(width * hashes.length)
    const keys = new Array<Uint8Array>(hashes.length)
    for (let i = 0; i < hashes.length; i++) {
      const h = hashes[i] as Uint8Array
      if (h.length !== 32) throw new RangeError(`record index keys are 32 bytes, got ${h.length}`)
      const at = width * i
      all.set(this.prefix, at)
      all.set(datanet, at + this.prefix.length)
      all.set(h, at + this.prefix.length + datanet.length)
      keys[i] = all.subarray(at, at + width)
    }
    return keys
  }

  /** The datanet's filter when it is filled; starts filling it on first use. */
  private filterOf (datanet: Uint8Array): KeyFilter | undefined {
    const id = Buffer.from(datanet).toString('hex')
    const known = this.filters.get(id)
    if (known !== undefined) return known.ready ? known.filter : undefined
    // registered before the fill's iterator takes its snapshot: claims from now on add to it
    const entry = { filter: new KeyFilter(), ready: false, filled: Promise.resolve() }
    this.filters.set(id, entry)
    entry.filled = this.fill(datanet, entry).catch(() => { this.filters.delete(id) })
    return undefined
  }

  /** Starts the datanet's filter if it has none and resolves once it is filled (tests, benchmarks). */
  async filterFilled (datanet: Uint8Array): Promise<void> {
    this.filterOf(datanet)
    await this.filters.get(Buffer.from(datanet).toString('hex'))?.filled
  }

  private async fill (datanet: Uint8Array, entry: { filter: KeyFilter, ready: boolean }): Promise<void> {
    const skip = datanet.length
    const range = { gte: concatBytes(datanet, new Uint8Array(32)), lte: concatBytes(datanet, new Uint8Array(32).fill(0xff)) }
    for await (const key of this.store.keys(range)) entry.filter.add(key.subarray(skip))
    entry.ready = true
  }

  /** The owners of many hashes of one datanet in one read (undefined where unknown). */
  async owners (datanet: Uint8Array, hashes: readonly Uint8Array[]): Promise<Array<string | undefined>> {
    const out = new Array<string | undefined>(hashes.length)
    const filter = this.filterOf(datanet)
    const asked = filter === undefined ? hashes.map((_, i) => i) : hashes.flatMap((h, i) => filter.mayHave(h) ? [i] : [])
    if (asked.length === 0) return out
    const keys = this.storedKeys(datanet, asked.map(i => hashes[i] as Uint8Array))
    const order = keyOrder(keys)
    const values = await readMany(this.root, order.map(i => keys[i] as Uint8Array))
    for (let j = 0; j < order.length; j++) {
      const v = values[j]
      out[asked[order[j] as number] as number] = v === undefined ? undefined : this.codec.decodeValue(v)
    }
    return out
  }

  /** Marks hashes as owned by `owner`, in one batch (the owner encoded once, not per record). */
  async claim (datanet: Uint8Array, hashes: readonly Uint8Array[], owner: string): Promise<void> {
    if (hashes.length === 0) return
    const value = this.codec.encodeValue(owner)
    const id = Buffer.from(datanet).toString('hex')
    const remember = (): void => {
      const entry = this.filters.get(id)
      if (entry !== undefined) for (const h of hashes) entry.filter.add(h)
    }
    remember()
    // a chained batch hands each key to LevelDB as it is added: no operation objects kept
    const batch = this.root.batch()
    for (const key of this.storedKeys(datanet, hashes)) batch.put(key, value)
    await batch.write()
    // a fill that began meanwhile, after this write's keys were read or before they were written
    remember()
  }

  /** Drops the claims among `hashes` that `owners` hold (another owner's claim stays). */
  async release (datanet: Uint8Array, hashes: readonly Uint8Array[], owners: ReadonlySet<string>): Promise<number> {
    const current = await this.owners(datanet, hashes)
    const gone = hashes.filter((_, i) => owners.has(current[i] as string))
    if (gone.length > 0) await this.store.batch(gone.map(h => ({ type: 'del' as const, key: this.codec.encodeKey(concatBytes(datanet, h)) })))
    return gone.length
  }
}

/**
 * LevelDB memory-maps the table files it keeps open (up to 1,000 on 64-bit), and the
 * pages it touched count in the node's RSS until it closes the table. The record index
 * makes that large: a 1 GB upload adds 8.4 M random hashes (~500 MB of tables), each
 * looked up first, which reads the index and Bloom filter blocks of a table per level,
 * and on a filter false positive (~1 %) a data block; the kernel maps the 64 KB around
 * each page touched, so tables kept open end up mapped nearly whole (75 MB at 1 GB, and
 * growing with the index). The table cache holds maxOpenFiles - 10 tables (LevelDB
 * clips the option to at least 74): 64 tables of 1 MiB instead of 118 of 2 MiB bound
 * those pages to about a quarter. Lookups go in key order (Repository.getMany), so a
 * batch reopens each table at most once however small the cache.
 */
const LEVEL_OPTIONS = { maxOpenFiles: 74, maxFileSize: 1024 * 1024 }

/** The node's state database: a classic-level store holding one repository per entity. */
export class StateDatabase {
  readonly db: StateDb
  readonly peers: Repository<string, PeerRecord>
  readonly facts: Repository<string, NodeFacts>
  readonly datanets: Repository<string, DatanetEntry>
  readonly contributions: ContributionRepository
  readonly verdicts: VerdictRepository
  readonly records: RecordIndex
  readonly uploads: Repository<string, UploadEntry>
  readonly versions: VersionRepository
  /** Where versions were anchored (the chain service's; joined into versions on read). */
  readonly anchors: AnchorRepository
  readonly consensus: Repository<string, ConsensusEntry>
  readonly evidence: EvidenceRepository
  /** The records in final versions: positions, leaves and the record tree's inner nodes. */
  readonly dataset: DatasetRepository
  /** The registry's event log as read by the chain follower, and its checkpoint (src/storage/chain-store.ts). */
  readonly chain: Repository<string, Record<string, unknown>>
  /** Inference events by CID: verified, then included in a version. */
  readonly inferences: InferenceRepository
  readonly models: ModelRepository
  readonly tallies: TallyRepository
  /** Own gossip messages held for a subscriber, by content message id (hex): sent after a restart. */
  readonly outbox: Repository<string, OutboxEntry>

  constructor (path: string) {
    this.db = new ClassicLevel<Bytes, Bytes>(path, { keyEncoding: 'view', valueEncoding: 'view', ...LEVEL_OPTIONS })
    this.peers = new Repository(this.db, 'peers', jsonCodec<PeerRecord>())
    this.facts = new Repository(this.db, 'facts', jsonCodec<NodeFacts>())
    this.datanets = new Repository(this.db, 'datanets', jsonCodec<DatanetEntry>())
    this.contributions = new ContributionRepository(this.db)
    this.verdicts = new VerdictRepository(this.db)
    this.records = new RecordIndex(this.db)
    this.uploads = new Repository(this.db, 'uploads', jsonCodec<UploadEntry>())
    this.anchors = new AnchorRepository(this.db)
    this.versions = new VersionRepository(this.db, this.anchors)
    this.consensus = new Repository(this.db, 'consensus', jsonCodec<ConsensusEntry>())
    this.evidence = new EvidenceRepository(this.db)
    this.dataset = new DatasetRepository(this.db)
    this.chain = new Repository(this.db, 'chain', jsonCodec<Record<string, unknown>>())
    this.inferences = new InferenceRepository(this.db)
    this.models = new ModelRepository(this.db)
    this.tallies = new TallyRepository(this.db)
    this.outbox = new Repository(this.db, 'outbox', jsonCodec<OutboxEntry>())
  }

  /**
   * Writes operations of several repositories (`putOp`/`delOp`) atomically: all or none
   * survive a crash. `sync` waits until the write is on disk (for records a restart must
   * never lose, such as the votes signed).
   */
  async batch (ops: readonly BatchOp[], opts: { sync?: boolean } = {}): Promise<void> {
    if (ops.length > 0) await this.db.batch(ops as BatchOp[], { sync: opts.sync === true })
  }

  async open (): Promise<void> {
    try {
      await this.db.open()
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause
      if ((err as { code?: string }).code === 'LEVEL_LOCKED' || cause?.code === 'LEVEL_LOCKED') {
        throw new DatanetError({ code: 'STATE_DB_ERROR_LOCKED' }, `state database ${this.db.location} is locked by another process`, 'usage', { cause: err })
      }
      throw new DatanetError({ code: 'STATE_DB_ERROR_OPEN' }, `cannot open the state database ${this.db.location}`, 'failure', { cause: err })
    }
    await this.contributions.ensureIndex()
    await this.inferences.ensureIndex()
  }

  async close (): Promise<void> {
    await this.db.close()
  }
}
