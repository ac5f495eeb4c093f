/**
 * One datanet's versions as consensus sees them: the last final version, building the
 * next one, judging a proposed one (src/consensus/proposal.ts behind ports over level and
 * Helia), and making one final in a single atomic batch.
 */
import { CID } from 'multiformats/cid'
import type { Helia } from '@helia/interface'
import { bytesKey, fromHex, toHex } from '../../../src/codec/hash.ts'
import { decodeContribution, contributionCid, contributionJson, type Contribution } from '../../../src/contribution/contribution.ts'
import { verdictSigner, type Verdict } from '../../../src/contribution/verdict.ts'
import { splitShard } from '../../../src/datanet/shard.ts'
import type { ValidatorSet } from '../../../src/datanet/manifest.ts'
import { MerkleFrontier, STORED_NODE_LEVEL } from '../../../src/merkle/tree.ts'
import {
  MAX_INFERENCES, acceptCertificate, fitVersion, versionSizeProblem, type ContributionSize, appendRecords, attributionOf, checkAcceptCertificate, rootsProblem, talliesAfter, versionShapeProblem, NO_ATTRIBUTION, type Attribution,
  type AppendSink, type ProposalPorts
} from '../../../src/consensus/proposal.ts'
import { validatorSetHash, versionValue, type Version, type VersionValue } from '../../../src/consensus/version.ts'
import { talliesFromJSON, talliesToJSON, type Tallies } from '../../../src/attribution/tallies.ts'
import type { BatchOp } from '../../../src/storage/repository.ts'
import { type ContributionEntry, type InferenceEntry, type StateDatabase, type VersionEntry } from '../../../src/storage/state-db.ts'
import type { DomainBinding } from '../../../src/codec/eip712.ts'
import { getBlock, pin, pinMany, prefetcher } from '../blocks.ts'
import type { FollowedDatanet } from '../datanets.ts'
import type { ShardHashes } from '../shard-hashes.ts'
import type { Logger } from '../../logger.ts'

/** What consensus needs of the inference service. */
export interface InferenceSource {
  pending: (d: FollowedDatanet, limit: number) => Promise<InferenceEntry[]>
  /** Known, or fetched and verified; undefined when it does not verify here. */
  ensure: (d: FollowedDatanet, cid: string) => Promise<InferenceEntry | undefined>
  /** Operations that mark these events included at `height` (written in the version's batch). */
  includeOps?: (cids: readonly string[], height: number) => Promise<BatchOp[]>
  markIncluded: (cids: readonly string[], height: number) => Promise<void>
}

/** What consensus needs of the verdict service: verdicts a certificate carried, adopted as if gossiped. */
export interface VerdictSink {
  adopt: (d: FollowedDatanet, verdicts: ReadonlyArray<{ verdict: Verdict, bytes: Uint8Array }>) => Promise<void>
}

export interface VersionsOptions {
  db: StateDatabase
  helia: Helia
  binding: Omit<DomainBinding, 'datanet'>
  logger: Logger
  inferences?: InferenceSource
  verdicts?: VerdictSink
  /** Fault injection for the crash tests: throws between the steps of a finalization. */
  crashPoint?: (step: string) => void
  /** Records a version's dataset writes are written ahead in, at most (default PIECE_RECORDS; tests make it small). */
  pieceRecords?: number
  /** The record hashes of the append cache are kept up to this many records (default APPEND_CACHE_RECORDS). */
  appendCacheRecords?: number
  /** Shards' record hashes kept since their receipt (shard-hashes.ts): appends read and hash only the shards it lacks. */
  shardHashes?: ShardHashes
}

/** The head `check` extends: the last final version, then each version of a range not written yet. */
interface Tip {
  cid: string | null
  height: number
  recordCount: number
  tree: MerkleFrontier
  /** What the tip carries of its tallies (checked with it): a version without events carries the same. */
  attribution: Attribution
  /** The tallies after the tip; read when an event needs them (unset: those stored for the last final version). */
  tallies?: Tallies
  /** Record hashes (latin1), contributions and inference event ids that versions of the range not written yet add. */
  added: Set<string>
  contributions: Set<string>
  events: Set<string>
  /** The entries of a range's contributions, read at once (catch-up): one read for the range, not several for each version. */
  entries?: Map<string, ContributionEntry | undefined>
  /** The ports of a range's checks, its reads done at once (catch-up, `rangePorts`). */
  ports?: ProposalPorts
  /**
   * Positions below this are the dataset for the range's next check: a large version of
   * the range is written ahead as it is checked (its records are not held, nor added to
   * `added`), and then counts as written. Unset: the last final version's count.
   */
  written?: number
}

/** A version checked: its records appended, its events, and its tallies when its events changed them. */
interface Checked {
  built: { tree: MerkleFrontier, added: Uint8Array[] }
  events: InferenceEntry[]
  attribution: Attribution
  tallies?: Tallies
  adopted: Array<{ verdict: Verdict, bytes: Uint8Array }>
}

/** How `problem` begins when a contribution the version vouches for is not here (yet): a refusal for now, not for good. */
export const NOT_HERE_YET = 'not here yet'

/** Contributions a version vouches for fetched at once by a node that missed their gossip. */
const ENSURE_CONCURRENCY = 8
/** Shards of one such contribution fetched at once. */
const SHARD_CONCURRENCY = 8

/** Contributions fetched and version blocks stored at once while a range of versions is applied (catch-up). */
const RANGE_CONCURRENCY = 16
/**
 * A range's record hashes are read ahead for its contributions of one shard, while they
 * declare at most this many records (a hash held costs ~200 bytes with its key: ~13 MB).
 * Larger contributions are read a shard at a time as they are checked: read ahead whole,
 * one of 200,000 records took a catching-up node's heap over a 96 MB limit.
 */
const RANGE_HASHES_RECORDS = 65_536

/**
 * A version's records are written ahead of it in pieces of this many (with the tree nodes
 * they complete; ~3 writes a record): one batch for a version of 100,000 small records held
 * ~8 buffers a record and brought every node to its heap limit.
 */
const PIECE_RECORDS = 16_384

/**
 * The append cache keeps the record hashes it appended (32 bytes each, packed off the heap)
 * for versions of at most this many records (64 MB): finalizing the version then replays
 * them rather than reading, splitting and hashing its shards again and asking the store
 * which records it holds (half of a finalization's time on its own).
 */
const APPEND_CACHE_RECORDS = 2_000_000

/** Record hashes packed 32 bytes each in pieces of PIECE_RECORDS: a million is 32 MB in 62 buffers, not a million objects. */
class PackedHashes {
  private readonly pieces: Uint8Array[] = []
  private used = 0
  count = 0

  push (h: Uint8Array): void {
    let last = this.pieces[this.pieces.length - 1]
    if (last === undefined || this.used === last.length) {
      last = new Uint8Array(PIECE_RECORDS * 32)
      this.pieces.push(last)
      this.used = 0
    }
    last.set(h, this.used)
    this.used += 32
    this.count++
  }

  /** The hashes in order, a piece at a time (views, not copies). */
  * chunks (): Generator<Uint8Array[]> {
    for (const [i, piece] of this.pieces.entries()) {
      const n = (i === this.pieces.length - 1 ? this.used : piece.length) / 32
      yield Array.from({ length: n }, (_, j) => piece.subarray(j * 32, j * 32 + 32))
    }
  }
}

/**
 * The tree nodes an append completed at the levels finalization stores (level ≥
 * STORED_NODE_LEVEL, about one for every 8 records), in the order it completed them: their
 * bytes packed, their places in two arrays. Kept with the append's hashes so that
 * finalizing replays both instead of hashing every leaf and pair again.
 */
class PackedNodes {
  private readonly bytes = new PackedHashes()
  private readonly levels: number[] = []
  private readonly indexes: number[] = []

  push (level: number, index: number, node: Uint8Array): void {
    this.levels.push(level)
    this.indexes.push(index)
    this.bytes.push(node)
  }

  /** The nodes in order with the position of the last leaf each covers (the append that completed it). */
  * all (): Generator<{ level: number, index: number, node: Uint8Array, lastLeaf: number }> {
    let i = 0
    for (const chunk of this.bytes.chunks()) {
      for (const node of chunk) {
        const level = this.levels[i] as number
        const index = this.indexes[i] as number
        yield { level, index, node, lastLeaf: (index + 1) * 2 ** level - 1 }
        i++
      }
    }
  }
}


/** Runs `task` over `items`, at most `concurrency` at once. */
async function eachAtOnce<T> (items: readonly T[], concurrency: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) await task(items[next++] as T)
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker))
}

/**
 * Appends `items` to `target` one by one: `target.push(...items)` passes each item as an
 * argument on the stack, and a version's batch of ~2 ops per record overflowed it at ~60,000
 * records (a node could not catch up a large version).
 */
function pushAll<T> (target: T[], items: Iterable<T>): void {
  for (const item of items) target.push(item)
}

/**
 * The dataset writes of versions being made final: written ahead of their versions in
 * pieces of at most ~2 × `piece` writes (unsynced: the version's synced batch after them makes
 * them durable), the rest left for the version's own batch. A piece alone is harmless: a
 * position at or past the last final version's count is not the dataset (`finalCount`), and
 * only a decided version's records are written, so a torn piece is rewritten alike.
 */
class RecordWriter {
  private readonly db: StateDatabase
  private readonly digest: Uint8Array
  private readonly piece: number
  private readonly onPiece: () => void
  private ops: BatchOp[] = []

  constructor (db: StateDatabase, digest: Uint8Array, piece: number, onPiece: () => void) {
    this.db = db
    this.digest = digest
    this.piece = piece
    this.onPiece = onPiece
  }

  /** Records `hashes` at positions `start…` and the inner nodes they complete. */
  async add (start: number, hashes: readonly Uint8Array[], nodes: ReadonlyArray<readonly [number, number, Uint8Array]>): Promise<void> {
    // a record is two writes (position, leaf), a node one: at most a piece's worth pending
    // before a slice, a piece's worth in a slice
    const half = Math.max(1, this.piece >> 1)
    for (let i = 0; i < hashes.length; i += half) {
      pushAll(this.ops, this.db.dataset.appendOps(this.digest, start + i, hashes.slice(i, i + half), []))
      await this.flushFull()
    }
    for (let i = 0; i < nodes.length; i += this.piece) {
      pushAll(this.ops, this.db.dataset.appendOps(this.digest, 0, [], nodes.slice(i, i + this.piece)))
      await this.flushFull()
    }
  }

  private async flushFull (): Promise<void> {
    if (this.ops.length >= this.piece) await this.flush()
  }

  /** Writes what is pending now. */
  async flush (): Promise<void> {
    if (this.ops.length === 0) return
    await this.db.batch(this.ops)
    this.ops = []
    this.onPiece()
  }

  /** The writes not written ahead: they go in the version's batch. */
  rest (): BatchOp[] {
    const ops = this.ops
    this.ops = []
    return ops
  }
}

/** A stored contribution's declared size. */
const sizeOf = (e: ContributionEntry): ContributionSize => ({ recordCount: Number(e.contribution.recordCount ?? 0), byteSize: Number(e.contribution.byteSize ?? 0) })

/** When this node learnt a contribution was accepted (or received it, if it never decided it itself). */
const firstAccepted = (e: ContributionEntry): number => e.decidedAt ?? e.receivedAt


export class DatanetVersions {
  private readonly opts: VersionsOptions
  private readonly d: FollowedDatanet
  private readonly log: Logger
  private readonly digest: Uint8Array
  last: VersionEntry | undefined
  private readonly ports: ProposalPorts
  /**
   * The tree of the last contributions appended to the last final version (building or
   * checking a proposal): each round proposes the same contributions anew (another
   * timestamp, another CID), and a version of 300,000 records took longer to build and to
   * check than a round lasts — ten rounds, 286 s, for one height (`big.ts 300000 120 300000`).
   */
  private appended: { key: string, tree: MerkleFrontier, kept?: { hashes: PackedHashes, nodes: PackedNodes } } | undefined
  /** The tallies after the last final version, decoded (`talliesAt`). */
  private tallyMemo: { height: number, tallies: Tallies } | undefined

  constructor (opts: VersionsOptions, d: FollowedDatanet, log: Logger) {
    this.opts = opts
    this.d = d
    this.log = log
    this.digest = fromHex(d.digest, 32)
    this.ports = this.portsAfter(new Set())
  }

  /**
   * The records final here: a position below the last final version's count. A large
   * version's records are written ahead of it in pieces (`finalize`), so a position at or
   * past that count is a piece of a version not final yet (or torn by a crash), not the dataset.
   */
  private finalCount (): number {
    return this.last?.recordCount ?? 0
  }

  /**
   * The proposal ports, with `added` (record hashes, latin1) counted as in the dataset:
   * versions of a range not written yet; stored positions below `count()` are the dataset.
   */
  private portsAfter (added: ReadonlySet<string>, entries?: ReadonlyMap<string, ContributionEntry | undefined>, count: () => number = () => this.finalCount()): ProposalPorts {
    const { db, helia, shardHashes } = this.opts
    return {
      recordHashes: async function * (cid) {
        const entry = entries?.get(cid.toString()) ?? await db.contributions.get(cid.toString())
        if (entry === undefined) throw new Error(`contribution ${cid.toString()} unknown`)
        for (const s of entry.contribution.shards as string[]) {
          const held = shardHashes?.get(s)
          if (held !== undefined) {
            yield held
            continue
          }
          const records = splitShard(await getBlock(helia, CID.parse(s), { signal: AbortSignal.timeout(30_000) }))
          // the next round's proposal and the finalization append the same shards
          shardHashes?.put(s, records)
          yield records.map(r => r.hash)
        }
      },
      inDataset: async hashes => {
        const known = await db.dataset.positionsOf(this.digest, hashes)
        const below = count()
        return known.map((x, i) => (x !== undefined && x < below) || added.has(bytesKey(hashes[i] as Uint8Array)))
      }
    }
  }

  /**
   * The ports of a range's checks with their reads done at once for its contributions of
   * one shard (at most RANGE_HASHES_RECORDS records, their hashes held meanwhile): their
   * record hashes (RANGE_CONCURRENCY at once) and which of them the dataset holds (one
   * read); the records that versions of the range add count as held (`tip.added`).
   */
  private async rangePorts (tip: Tip): Promise<ProposalPorts> {
    const entries = tip.entries ?? new Map<string, ContributionEntry | undefined>()
    const base = this.portsAfter(tip.added, entries, () => tip.written ?? this.finalCount())
    const ahead: string[] = []
    let records = 0
    for (const [cid, e] of entries) {
      if (e === undefined || (e.contribution.shards as string[] | undefined)?.length !== 1) continue
      records += sizeOf(e).recordCount
      if (records > RANGE_HASHES_RECORDS) break
      ahead.push(cid)
    }
    if (ahead.length === 0) return base
    const hashes = new Map<string, Uint8Array[]>()
    await eachAtOnce(ahead, RANGE_CONCURRENCY, async cid => {
      try {
        const all: Uint8Array[] = []
        for await (const chunk of base.recordHashes(CID.parse(cid))) pushAll(all, chunk)
        hashes.set(cid, all)
      } catch {
        // the check reads it again, and reports it
      }
    })
    // read ahead against the final versions: once a large version of the range is written, the store answers
    return await this.readAhead(base, new Map([...hashes].map(([cid, all]) => [cid, [all]])), tip.added, () => tip.written === undefined)
  }

  /**
   * Ports over `base` that answer for the contributions of `hashes` (their record hashes,
   * a shard's at a time) from memory, and say which of those records the final versions
   * hold from one read of the store; `added` counts as held too. While `current()` is
   * false (a large version of a range written since the read), the store answers.
   */
  private async readAhead (base: ProposalPorts, hashes: ReadonlyMap<string, Uint8Array[][]>, added: ReadonlySet<string>, current: () => boolean): Promise<ProposalPorts> {
    const all: Uint8Array[] = []
    for (const shards of hashes.values()) for (const shard of shards) pushAll(all, shard)
    const positions = await this.opts.db.dataset.positionsOf(this.digest, all)
    const count = this.finalCount()
    const read = new Set<string>()
    const held = new Set<string>()
    all.forEach((h, i) => {
      const key = bytesKey(h)
      read.add(key)
      const at = positions[i]
      if (at !== undefined && at < count) held.add(key)
    })
    return {
      recordHashes: cid => {
        const known = hashes.get(cid.toString())
        return known === undefined ? base.recordHashes(cid) : (async function * () { yield * known })()
      },
      inDataset: async of => current() && of.every(h => read.has(bytesKey(h)))
        ? of.map(h => held.has(bytesKey(h)) || added.has(bytesKey(h)))
        : await base.inDataset(of)
    }
  }

  /**
   * The ports of a live build or check of `cids` (appended to the last final version) with
   * the record hashes the memo holds for their shards (`shardHashes`) and which of them the
   * dataset holds, read at once: asked a shard at a time, each read waited its turn behind
   * the receipt of the next contributions, and a build of 12 shards took 1–2.4 s on a
   * loaded validator (`finality.ts`, phase timers). Shards it lacks are read as appended.
   */
  private async heldPorts (cids: readonly CID[]): Promise<ProposalPorts> {
    const memo = this.opts.shardHashes
    if (memo === undefined) return this.ports
    const entries = await this.opts.db.contributions.getMany(cids.map(c => c.toString()))
    const hashes = new Map<string, Uint8Array[][]>()
    let records = 0
    entries.forEach((e, i) => {
      const held = (e?.contribution.shards as string[] | undefined)?.map(s => memo.get(s))
      if (held === undefined || !held.every(h => h !== undefined)) return
      const n = held.reduce((sum, h) => sum + h.length, 0)
      if (records + n > RANGE_HASHES_RECORDS) return
      records += n
      hashes.set((cids[i] as CID).toString(), held)
    })
    return hashes.size === 0 ? this.ports : await this.readAhead(this.ports, hashes, new Set(), () => true)
  }

  async load (): Promise<void> {
    this.last = await this.opts.db.versions.latest(this.d.id)
  }

  get nextHeight (): number {
    return (this.last?.height ?? 0) + 1
  }

  private parentTree (): MerkleFrontier {
    return this.last === undefined ? new MerkleFrontier() : MerkleFrontier.fromJSON(this.last.frontier)
  }

  /** The tallies after version `height` (the last final version's are kept decoded: 20 ms a read at 10,000 accounts). */
  async talliesAt (height: number): Promise<Tallies> {
    if (height === 0) return new Map()
    if (this.tallyMemo?.height === height) return this.tallyMemo.tallies
    const stored = await this.opts.db.tallies.at(this.d.id, height)
    const tallies = stored === undefined ? new Map() : talliesFromJSON(stored.tallies)
    if (height === this.last?.height) this.tallyMemo = { height, tallies }
    return tallies
  }

  /** The attribution of the last final version (checked when it was). */
  private lastAttribution (): Attribution {
    const last = this.last
    return last === undefined ? NO_ATTRIBUTION : { root: fromHex(last.attributionRoot, 32), total: last.totalAttributed }
  }

  /**
   * The attribution after `events` on top of `parent` (and the tallies, when the events
   * change them): a version without events carries its parent's, so the tree of every
   * account is built only at heights whose events change it (it was built at each
   * proposal, check and finalization: 0.5 s at 10,000 accounts).
   */
  private async attributionAfter (parent: { attribution: Attribution, tallies?: Tallies, height: number }, events: readonly InferenceEntry[]): Promise<{ attribution: Attribution, tallies?: Tallies }> {
    if (events.length === 0) return { attribution: parent.attribution }
    const tallies = talliesAfter(parent.tallies ?? await this.talliesAt(parent.height), events)
    return { attribution: attributionOf(tallies), tallies }
  }

  /** Version `height` is final with `tallies` (undefined: as its parent's). */
  private talliesFinal (height: number, tallies: Tallies | undefined): void {
    if (tallies !== undefined) this.tallyMemo = { height, tallies }
    else if (this.tallyMemo?.height === height - 1) this.tallyMemo = { height, tallies: this.tallyMemo.tallies }
    else this.tallyMemo = undefined
  }

  /** Contributions not in a version yet whose verdicts make an accept certificate under `set`, by CID. */
  async candidates (set: ValidatorSet): Promise<Array<{ entry: ContributionEntry, certificate: Uint8Array[] }>> {
    const open: ContributionEntry[] = []
    for await (const entry of this.opts.db.contributions.unincluded(this.d.id)) if (entry.status !== 'rejected') open.push(entry)
    // their verdicts read at once: one after the other, each read waited its turn behind the
    // receipt of the next contributions, and a proposer's build took seconds on a loaded node
    const verdicts = await Promise.all(open.map(async e => await this.opts.db.verdicts.of(e.cid)))
    const out: Array<{ entry: ContributionEntry, certificate: Uint8Array[] }> = []
    open.forEach((entry, i) => {
      const certificate = acceptCertificate(set, (verdicts[i] ?? []).map(v => ({ validator: v.validator, accept: v.accept, bytes: fromHex(v.bytes) })))
      if (certificate !== undefined) out.push({ entry, certificate })
    })
    // first accepted first: a record two contributions share is credited to the earlier one
    out.sort((a, b) => firstAccepted(a.entry) - firstAccepted(b.entry) || a.entry.receivedAt - b.entry.receivedAt || (a.entry.cid < b.entry.cid ? -1 : a.entry.cid > b.entry.cid ? 1 : 0))
    // as many as one version holds (the rest wait for the next)
    return fitVersion(out, c => sizeOf(c.entry))
  }

  async pendingEvents (): Promise<InferenceEntry[]> {
    return (await this.opts.inferences?.pending(this.d, MAX_INFERENCES)) ?? []
  }

  /**
   * The last final version's tree extended by `cids`' new records (their hashes are not
   * returned: building and checking need the tree alone; the cache keeps them packed, with
   * the stored-level nodes they completed, up to APPEND_CACHE_RECORDS, for finalization to
   * replay).
   */
  private async appendToLast (cids: readonly CID[]): Promise<{ tree: MerkleFrontier, added: Uint8Array[] }> {
    const key = this.appendKey(cids)
    if (this.appended?.key !== key) {
      const bound = this.opts.appendCacheRecords ?? APPEND_CACHE_RECORDS
      let kept: { hashes: PackedHashes, nodes: PackedNodes } | undefined = { hashes: new PackedHashes(), nodes: new PackedNodes() }
      const { tree } = await appendRecords(this.parentTree(), cids, await this.heldPorts(cids), {
        node: (level, index, node) => { if (level >= STORED_NODE_LEVEL) kept?.nodes.push(level, index, node) },
        records: async added => {
          if (kept !== undefined && kept.hashes.count + added.length > bound) kept = undefined
          if (kept !== undefined) for (const h of added) kept.hashes.push(h)
        }
      })
      this.appended = { key, tree, kept }
    }
    return { tree: this.appended.tree.clone(), added: [] }
  }

  private appendKey (cids: readonly CID[]): string {
    return `${this.last?.cid ?? ''} ${cids.join(' ')}`
  }

  /**
   * `cids` appended to the last final version, with the records and the nodes they complete
   * written to `sink`: from what the append cache kept when it holds them (nothing hashed
   * again: a leaf and a pair hash a record, ~0.3 s of a validator's CPU in a finality run),
   * else read from the shards again.
   */
  private async appendForFinal (cids: readonly CID[], sink: Required<AppendSink>): Promise<{ tree: MerkleFrontier, added: Uint8Array[] }> {
    const cached = this.appended
    const kept = cached?.key === this.appendKey(cids) ? cached.kept : undefined
    if (cached === undefined || kept === undefined) return await appendRecords(this.parentTree(), cids, await this.heldPorts(cids), sink)
    // the parent's size, without decoding its frontier
    let start = this.last?.frontier.size ?? 0
    const nodes = kept.nodes.all()
    let next = nodes.next()
    for (const chunk of kept.hashes.chunks()) {
      const end = start + chunk.length
      // the nodes this chunk's appends completed, as appending it would report them
      for (; next.done !== true && next.value.lastLeaf < end; next = nodes.next()) sink.node(next.value.level, next.value.index, next.value.node)
      await sink.records(chunk, start)
      start = end
    }
    if (next.done !== true || start !== cached.tree.size) throw new Error('the kept record hashes and nodes do not make the tree they were kept with')
    return { tree: cached.tree.clone(), added: [] }
  }

  /** The records the next version would append: its candidates' declared counts. */
  async pendingRecords (set: ValidatorSet): Promise<number> {
    let records = 0
    for (const c of await this.candidates(set)) records += sizeOf(c.entry).recordCount
    return records
  }

  /** Whether there is anything to put in a new version. */
  async hasWork (set: ValidatorSet): Promise<boolean> {
    return (await this.candidates(set)).length > 0 || (await this.pendingEvents()).length > 0
  }

  /** The next version, or undefined when there is nothing to include. */
  async build (height: number, set: ValidatorSet, proposer: string, now: number): Promise<VersionValue | undefined> {
    const candidates = await this.candidates(set)
    const events = await this.pendingEvents()
    if (candidates.length === 0 && events.length === 0) return undefined
    const contributions = candidates.map(c => ({ cid: CID.parse(c.entry.cid), verdicts: c.certificate }))
    const built = await this.appendToLast(contributions.map(c => c.cid))
    const { attribution } = await this.attributionAfter({ attribution: this.lastAttribution(), height: this.last?.height ?? 0 }, events)
    const version: Version = {
      datanet: this.d.id,
      height,
      parent: this.last === undefined ? null : CID.parse(this.last.cid),
      contributions,
      rejected: [],
      inferences: events.map(e => CID.parse(e.cid)),
      datasetRoot: built.tree.root(),
      recordCount: built.tree.size,
      attributionRoot: attribution.root,
      totalAttributed: attribution.total,
      validatorSetHash: validatorSetHash(set.validators),
      proposer,
      timestamp: now
    }
    return await versionValue(version)
  }

  /**
   * Why a proposed version is invalid at `height` under `set`, or undefined when it is valid.
   * `fetch: false`: a contribution it vouches for that is not here makes it invalid here
   * (fetched beforehand by `fetchVouched`, off the consensus queue).
   */
  async problem (value: VersionValue, set: ValidatorSet, opts: { fetch?: boolean } = {}): Promise<string | undefined> {
    const checked = await this.check(value, set, await this.tip(), false, true, undefined, opts.fetch ?? true)
    return typeof checked === 'string' ? checked : undefined
  }

  /**
   * Fetches the contributions a proposed version vouches for that this node lacks (missed
   * gossip: a restarted or partitioned node), each only once its accept certificate under
   * `set` checks, so a proposer cannot make this node fetch junk. Errors are the later
   * check's to report.
   */
  async fetchVouched (value: VersionValue, set: ValidatorSet): Promise<void> {
    const missing: CID[] = []
    for (const c of value.version.contributions) {
      const cid = c.cid.toString()
      if (await this.opts.db.contributions.has(cid)) continue
      if (typeof checkAcceptCertificate(set, this.d.id, cid, c.verdicts, verdict => verdictSigner(verdict, this.opts.binding)) === 'string') return
      missing.push(c.cid)
    }
    await this.ensureContributions(missing)
  }

  /** The last final version as `check` extends it. */
  private async tip (): Promise<Tip> {
    const last = this.last
    return {
      cid: last?.cid ?? null,
      height: last?.height ?? 0,
      recordCount: last?.recordCount ?? 0,
      tree: this.parentTree(),
      attribution: this.lastAttribution(),
      added: new Set(),
      contributions: new Set(),
      events: new Set()
    }
  }

  /**
   * Checks `value` as the version after `tip` under `set`: shape, events, every
   * contribution's accept certificate (its verdicts' signatures too, unless `vouched`: the
   * version's own checked precommit certificate vouches for its content, src/consensus/
   * range.ts), contributions fetched (unless not `fetch`), roots recomputed. `adoptNow`: the verdicts are
   * adopted once the certificates hold, whatever the roots. `sink` takes the tree nodes
   * the new leaves complete, and the records if it will (then not kept). Returns what
   * finalizing needs, or why the version is invalid.
   */
  private async check (value: VersionValue, set: ValidatorSet, tip: Tip, vouched: boolean, adoptNow: boolean, sink?: AppendSink, fetch = true): Promise<Checked | string> {
    const v = value.version
    const shape = versionShapeProblem(v, { datanet: this.d.id, height: tip.height + 1, parent: tip.cid, set })
    if (shape !== undefined) return shape
    const events = await this.includedEvents(v)
    if (typeof events === 'string') return events
    for (const e of events) if (tip.events.has(e.eventId)) return `inference event ${e.cid} already included`
    const signerOf = vouched ? (verdict: Verdict) => verdict.validator : (verdict: Verdict) => verdictSigner(verdict, this.opts.binding)
    const adopted: Array<{ verdict: Verdict, bytes: Uint8Array }> = []
    const missing: CID[] = []
    const sizes: ContributionSize[] = []
    for (const c of v.contributions) {
      const cid = c.cid.toString()
      const entry = tip.entries?.has(cid) === true ? tip.entries.get(cid) : await this.opts.db.contributions.get(cid)
      if (entry !== undefined) sizes.push(sizeOf(entry))
      if (entry !== undefined && entry.datanet !== this.d.id) return `contribution ${cid} is another datanet's`
      if ((entry !== undefined && entry.version !== null) || tip.contributions.has(cid)) return `contribution ${cid} already included`
      const verdicts = checkAcceptCertificate(set, this.d.id, cid, c.verdicts, signerOf)
      if (typeof verdicts === 'string') return verdicts
      verdicts.forEach((verdict, i) => adopted.push({ verdict, bytes: c.verdicts[i] as Uint8Array }))
      if (entry === undefined) missing.push(c.cid)
    }
    // vouched for by the quorum: a node that missed their gossip fetches them now, several at
    // once (one after the other, a restarted validator took 23 s over a proposal of 16)
    if (!fetch && missing.length > 0) return `${NOT_HERE_YET}: contribution ${missing[0]?.toString() ?? ''}`
    const ensured = await this.ensureContributions(missing)
    if (ensured.failed !== undefined) return `contribution ${ensured.failed.toString()} cannot be fetched`
    for (const cid of missing) {
      const entry = ensured.entries.get(cid.toString())
      if (entry !== undefined) sizes.push(sizeOf(entry))
    }
    // a proposal's bound; a final version (catch-up) was decided under the bound of its day
    const tooBig = vouched ? undefined : versionSizeProblem(sizes)
    if (tooBig !== undefined) return tooBig
    if (adoptNow) await this.adopt(adopted)
    let built
    try {
      const cids = v.contributions.map(c => c.cid)
      built = tip.ports === undefined && tip.added.size === 0 && sink === undefined && tip.cid === (this.last?.cid ?? null)
        ? await this.appendToLast(cids)
        : await appendRecords(tip.tree, cids, tip.ports ?? (tip.added.size === 0 ? this.ports : this.portsAfter(tip.added)), sink)
    } catch (err) {
      return `records: ${(err as Error).message}`
    }
    const { attribution, tallies } = await this.attributionAfter(tip, events)
    const why = rootsProblem(v, built, attribution)
    if (why !== undefined) return why
    return { built, events, attribution, tallies, adopted }
  }

  /** The certificate's verdicts are valid: a node that missed them (down, partitioned) now has them too. */
  private async adopt (adopted: ReadonlyArray<{ verdict: Verdict, bytes: Uint8Array }>): Promise<void> {
    if (adopted.length > 0) await this.opts.verdicts?.adopt(this.d, adopted)
  }

  /** The events a version includes, each verified here and not in an earlier version; or why not. */
  async includedEvents (v: Version): Promise<InferenceEntry[] | string> {
    if (v.inferences.length === 0) return []
    if (this.opts.inferences === undefined) return 'inference events, but this node has no inference service'
    const out: InferenceEntry[] = []
    const ids = new Set<string>()
    for (const c of v.inferences) {
      const cid = c.toString()
      const e = await this.opts.inferences.ensure(this.d, cid)
      if (e === undefined) return `inference event ${cid} does not verify`
      // [INVALID] two signatures over one event are one event: its fee is credited once
      if (ids.has(e.eventId)) return `inference event ${cid} is another signature over an event already in this version`
      ids.add(e.eventId)
      if (e.included !== null && e.included !== v.height) return `inference event ${cid} already included`
      if (e.version >= v.height) return `inference event ${cid} credits version ${e.version}, not before ${v.height}`
      out.push(e)
    }
    return out
  }

  /**
   * Makes sure the contributions certificates vouch for are here, for a node that missed
   * their gossip: each fetched from peers with its shards (`concurrency` at a time), then
   * all of them pinned in one batch and recorded as accepted in one batch. Returns the first
   * that cannot be fetched, if any (the others are still kept), and every entry as it is
   * now (undefined for those not here).
   */
  private async ensureContributions (cids: readonly CID[], concurrency = ENSURE_CONCURRENCY): Promise<{ failed?: CID, entries: Map<string, ContributionEntry | undefined> }> {
    const unique = [...new Map(cids.map(c => [c.toString(), c])).values()]
    const held = await this.opts.db.contributions.getMany(unique.map(c => c.toString()))
    const entries = new Map(unique.map((c, i) => [c.toString(), held[i]]))
    const missing = unique.filter((_, i) => held[i] === undefined)
    let failed: CID | undefined
    const fetched = new Map<string, Contribution>()
    await eachAtOnce(missing, concurrency, async cid => {
      if (failed !== undefined) return
      const contribution = await this.fetchContribution(cid)
      if (contribution === undefined) failed = cid
      else fetched.set(cid.toString(), contribution)
    })
    if (fetched.size === 0) return { failed, entries }
    try {
      await pinMany(this.opts.helia, missing.filter(c => fetched.has(c.toString())), { signal: AbortSignal.timeout(120_000) })
    } catch (err) {
      this.log.warn({ contributions: fetched.size, err: (err as Error).message }, 'cannot pin contributions a certificate vouches for')
      return { failed: failed ?? missing.find(c => fetched.has(c.toString())), entries }
    }
    const now = Date.now()
    // gossip may have brought one meanwhile: a quorum vouched for it, so it is accepted either way
    const recorded = await this.opts.db.contributions.updateMany([...fetched.keys()], (key, existing) => existing !== undefined
      ? { ...existing, status: 'accepted', decidedAt: existing.decidedAt ?? now }
      : {
          cid: key, datanet: this.d.id, contribution: contributionJson(fetched.get(key) as Contribution), status: 'accepted', score: null,
          receivedAt: now, decidedAt: now, origin: 'sync', version: null, facts: null
        })
    for (const [cid, entry] of recorded) entries.set(cid, entry)
    return { failed, entries }
  }

  /** A contribution fetched with its shards and checked (its CID, its datanet); undefined when it cannot be. */
  private async fetchContribution (cid: CID): Promise<Contribution | undefined> {
    const key = cid.toString()
    try {
      const bytes = await getBlock(this.opts.helia, cid, { signal: AbortSignal.timeout(10_000) })
      const contribution = decodeContribution(bytes, 100_000)
      if ((await contributionCid(bytes)).toString() !== key || contribution.datanet !== this.d.id) return undefined
      const signal = AbortSignal.timeout(120_000)
      // the shards through getBlock first (a want bitswap lost is sent again; Helia's pin walk
      // sends each once, and one lost want held this node's consensus queue for the whole 120 s)
      const missing: CID[] = []
      for (const shard of contribution.shards) if (!await this.opts.helia.blockstore.has(shard)) missing.push(shard)
      const next = prefetcher(this.opts.helia, missing, SHARD_CONCURRENCY, signal)
      for (const shard of missing) await next(shard)
      return contribution
    } catch (err) {
      this.log.warn({ contribution: key, err: (err as Error).message }, 'cannot fetch a contribution a certificate vouches for')
      return undefined
    }
  }

  /**
   * Makes a version final in one atomic batch: the tallies, the version, its contributions
   * and events marked included, the consensus state of the height cleared, and the last of
   * its records. Its other records (positions, leaves, tree nodes) are written ahead in
   * pieces (RecordWriter), which count for nothing until the version is stored. A crash
   * leaves the version final or not, and the restarted node makes the same one final (the
   * version's block in Helia is written first and is harmless alone).
   */
  async finalize (round: number, value: VersionValue, certificate: VersionEntry['certificate'], now: number): Promise<VersionEntry> {
    const { db, helia } = this.opts
    const crash = this.opts.crashPoint ?? (() => {})
    const v = value.version
    // the records and the inner nodes they complete (so a proof reads O(log n) nodes, src/merkle
    // proofFromNodes), written ahead in pieces as they are appended: a contribution of
    // millions of records is never held, nor its writes
    const writer = new RecordWriter(db, this.digest, this.opts.pieceRecords ?? PIECE_RECORDS, () => { crash('after-piece') })
    let nodes: Array<[number, number, Uint8Array]> = []
    const built = await this.appendForFinal(v.contributions.map(c => c.cid), {
      node: (level, index, node) => { if (level >= STORED_NODE_LEVEL) nodes.push([level, index, node]) },
      records: async (hashes, at) => {
        const completed = nodes
        nodes = []
        await writer.add(at, hashes, completed)
      }
    })
    const events = await this.includedEvents(v)
    if (typeof events === 'string') throw new Error(`final version ${v.height}: ${events}`)
    // written only when its events change them (TallyRepository.at)
    const tallies = events.length === 0 ? undefined : talliesAfter(await this.talliesAt(this.last?.height ?? 0), events)
    crash('before-block')
    await helia.blockstore.put(value.cid, value.bytes)
    // the block alone: its parent and its contributions are pinned on their own, and a
    // recursive pin would walk the whole history at every height
    await pin(helia, value.cid, undefined, 0)
    crash('after-block')
    const entry = this.entryOf(value, round, certificate, built.tree, now)
    const ops = writer.rest()
    if (tallies !== undefined) ops.push(db.tallies.putOp(this.d.id, v.height, talliesToJSON(tallies)))
    ops.push(db.versions.putOp(entry))
    const eventCids = v.inferences.map(c => c.toString())
    if (this.opts.inferences?.includeOps !== undefined) pushAll(ops, await this.opts.inferences.includeOps(eventCids, v.height))
    ops.push(db.consensus.delOp(this.d.id))
    crash('before-batch')
    await db.contributions.include(entry.contributions, v.height, ops, { sync: true })
    crash('after-batch')
    if (this.opts.inferences !== undefined && this.opts.inferences.includeOps === undefined) await this.opts.inferences.markIncluded(eventCids, v.height)
    this.last = entry
    this.talliesFinal(v.height, tallies)
    // its key names the parent: of no use from now on
    this.appended = undefined
    return entry
  }


  /**
   * Makes a range of versions final (catch-up), each checked against the one before it as
   * `problem` does, but with their verdicts vouched for (`vouched`: each version's
   * precommit certificate was checked, src/consensus/range.ts), and all of them written in
   * one synced batch: a crash leaves the store at the last range applied, a version
   * boundary. A version that does not verify here ends the range: the versions before it
   * are applied, and its problem returned. Records are written ahead in pieces as in
   * `finalize` once their version checks.
   */
  async finalizeRange (items: ReadonlyArray<{ round: number, value: VersionValue, certificate: VersionEntry['certificate'] }>, setFor: (height: number) => ValidatorSet | undefined, now: number): Promise<{ applied: VersionEntry[], problem?: { height: number, why: string } }> {
    const { db, helia } = this.opts
    const crash = this.opts.crashPoint ?? (() => {})
    const tip = await this.tip()
    // the contributions the range vouches for that this node lacks, fetched 16 at once, then
    // pinned and recorded in one batch each, rather than version after version (the range's
    // certificates were checked: a quorum vouched for them); one that cannot be fetched is
    // the check's to report. Their entries, read once, serve the range's checks.
    const vouched = items.flatMap(({ value }) => value.version.contributions.map(c => c.cid))
    tip.entries = (await this.ensureContributions(vouched, RANGE_CONCURRENCY)).entries
    tip.ports = await this.rangePorts(tip)
    // each version's records written ahead in pieces once it checks (a version may hold millions)
    const piece = this.opts.pieceRecords ?? PIECE_RECORDS
    const writer = new RecordWriter(db, this.digest, piece, () => { crash('range-after-piece') })
    const ops: BatchOp[] = []
    const included: Array<{ cids: string[], height: number }> = []
    const events: Array<{ cids: string[], height: number }> = []
    const adopted: Array<{ verdict: Verdict, bytes: Uint8Array }> = []
    const applied: VersionEntry[] = []
    let problem: { height: number, why: string } | undefined
    for (const { round, value, certificate } of items) {
      const v = value.version
      const set = setFor(v.height)
      if (set === undefined) break
      let nodes: Array<[number, number, Uint8Array]> = []
      // a large version (as it declares; a lie fails its root) is written ahead as it is
      // checked, its records never held: its certificate vouches for it
      const streamed = v.recordCount - tip.recordCount > piece
      const sink: AppendSink = { node: (level, index, node) => { if (level >= STORED_NODE_LEVEL) nodes.push([level, index, node]) } }
      if (streamed) {
        // the versions before it written, so that what is pending when it fails is its own
        await writer.flush()
        sink.records = async (hashes, at) => { const completed = nodes; nodes = []; await writer.add(at, hashes, completed) }
      }
      const checked = await this.check(value, set, tip, true, false, sink)
      if (typeof checked === 'string') {
        // its pieces on disk count for nothing (past the final count); the rest is dropped
        if (streamed) writer.rest()
        problem = { height: v.height, why: checked }
        break
      }
      const entry = this.entryOf(value, round, certificate, checked.built.tree, now)
      if (streamed) {
        // the next versions' checks read it from the store
        await writer.flush()
        tip.written = v.recordCount
      } else {
        await writer.add(tip.recordCount, checked.built.added, nodes)
      }
      if (checked.tallies !== undefined) ops.push(db.tallies.putOp(this.d.id, v.height, talliesToJSON(checked.tallies)))
      ops.push(db.versions.putOp(entry))
      const eventCids = v.inferences.map(c => c.toString())
      if (this.opts.inferences?.includeOps !== undefined) pushAll(ops, await this.opts.inferences.includeOps(eventCids, v.height))
      else events.push({ cids: eventCids, height: v.height })
      included.push({ cids: entry.contributions, height: v.height })
      pushAll(adopted, checked.adopted)
      applied.push(entry)
      // the next version is checked against this one (its records in `added`, or written ahead when large)
      tip.cid = entry.cid
      tip.height = v.height
      tip.recordCount = v.recordCount
      tip.tree = checked.built.tree
      tip.attribution = checked.attribution
      if (checked.tallies !== undefined) tip.tallies = checked.tallies
      for (const h of checked.built.added) tip.added.add(bytesKey(h))
      for (const c of entry.contributions) tip.contributions.add(c)
      for (const e of checked.events) tip.events.add(e.eventId)
    }
    if (applied.length === 0) return { applied, problem }
    // the blocks alone first (harmless without their entries), as finalize does
    for await (const _ of helia.blockstore.putMany(items.slice(0, applied.length).map(({ value }) => ({ cid: value.cid, bytes: value.bytes })))) { /* drain */ }
    await pinMany(helia, items.slice(0, applied.length).map(i => i.value.cid), { depth: 0 })
    await this.adopt(adopted)
    pushAll(ops, writer.rest())
    ops.push(db.consensus.delOp(this.d.id))
    crash('range-before-batch')
    await db.contributions.includeAll(included, ops, { sync: true })
    crash('range-after-batch')
    for (const e of events) if (e.cids.length > 0) await this.opts.inferences?.markIncluded(e.cids, e.height)
    const before = this.last?.height ?? 0
    this.last = applied[applied.length - 1]
    if (tip.tallies !== undefined) this.tallyMemo = { height: tip.height, tallies: tip.tallies }
    else if (this.tallyMemo?.height !== before) this.tallyMemo = undefined
    else this.tallyMemo = { height: tip.height, tallies: this.tallyMemo.tallies }
    return { applied, problem }
  }

  /** The stored entry of a final version. */
  private entryOf (value: VersionValue, round: number, certificate: VersionEntry['certificate'], tree: MerkleFrontier, now: number): VersionEntry {
    const v = value.version
    return {
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
      frontier: tree.toJSON(),
      decidedAt: now,
      anchor: null
    }
  }

  async versionAt (height: number): Promise<VersionEntry | undefined> {
    return await this.opts.db.versions.at(this.d.id, height)
  }
}
