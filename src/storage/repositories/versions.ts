import { Repository, jsonCodec, type BatchOp, type StateDb } from '../repository.ts'
import type { VersionEntry } from '../state-db.ts'

/** The key of a datanet's entry at a height: `<datanet>/<height as 16 hex digits>`, so one datanet's entries scan in height order. */
function heightKeyOf (datanet: string, height: number): string {
  return `${datanet}/${height.toString(16).padStart(16, '0')}`
}

export interface Anchor { txHash: string, block: number }

/**
 * Final versions by datanet and height. Written once, by finalization (consensus); the
 * anchor a version gets later is the chain service's, kept in its own repository
 * (`AnchorRepository`) and joined here on read, so each entity has one writer.
 */
export class VersionRepository {
  private readonly store: Repository<string, VersionEntry>
  private readonly anchors: AnchorRepository

  constructor (db: StateDb, anchors: AnchorRepository) {
    this.store = new Repository(db, 'versions', jsonCodec<VersionEntry>())
    this.anchors = anchors
  }

  /** A datanet's final version at `height`, with its anchor when it has one. */
  async at (datanet: string, height: number): Promise<VersionEntry | undefined> {
    const [entry, anchor] = await Promise.all([this.store.get(heightKeyOf(datanet, height)), this.anchors.at(datanet, height)])
    return entry === undefined ? undefined : withAnchor(entry, anchor)
  }

  /** A datanet's final versions in height order (or the reverse), with their anchors. */
  async of (datanet: string, opts: { reverse?: boolean, limit?: number } = {}): Promise<VersionEntry[]> {
    const out: VersionEntry[] = []
    for await (const [, v] of this.store.entries({ gte: `${datanet}/`, lt: `${datanet}/g`, ...opts })) out.push(v)
    if (out.length === 0) return out
    const anchors = await this.anchors.of(datanet)
    return out.map(v => withAnchor(v, anchors.get(v.height)))
  }

  /** The highest final version of a datanet. */
  async latest (datanet: string): Promise<VersionEntry | undefined> {
    return (await this.of(datanet, { reverse: true, limit: 1 }))[0]
  }

  /** The write of a final version, for finalization's atomic batch (its anchor is not stored here). */
  putOp (entry: VersionEntry): BatchOp {
    return this.store.putOp(heightKeyOf(entry.datanet, entry.height), { ...entry, anchor: null })
  }
}

// Entries written before anchors had their own repository carry their anchor inline.
function withAnchor (entry: VersionEntry, anchor: Anchor | undefined): VersionEntry {
  return { ...entry, anchor: anchor ?? entry.anchor }
}

/** Where each anchored version landed on chain: written only by the chain service, from the registry's events. */
export class AnchorRepository {
  private readonly store: Repository<string, Anchor>

  constructor (db: StateDb) {
    this.store = new Repository(db, 'anchors', jsonCodec<Anchor>())
  }

  async at (datanet: string, height: number): Promise<Anchor | undefined> {
    return await this.store.get(heightKeyOf(datanet, height))
  }

  /** A datanet's anchors by height. */
  async of (datanet: string): Promise<Map<number, Anchor>> {
    const out = new Map<number, Anchor>()
    for await (const [key, a] of this.store.entries({ gte: `${datanet}/`, lt: `${datanet}/g` })) out.set(parseInt(key.slice(datanet.length + 1), 16), a)
    return out
  }

  /** Records (or, after a reorg, replaces) the anchor of a version. */
  async put (datanet: string, height: number, anchor: Anchor): Promise<void> {
    await this.store.put(heightKeyOf(datanet, height), anchor)
  }

  /** Forgets an anchor a reorg took off the chain (until the version is anchored again). */
  async delete (datanet: string, height: number): Promise<void> {
    await this.store.delete(heightKeyOf(datanet, height))
  }
}

export type TallyJson = Array<{ address: string, amount: string }>

/** Tallies as stored, with the height whose events wrote them. */
export interface StoredTallies { height: number, tallies: TallyJson }

/** Cumulative attribution tallies by datanet, at each height that changed them; written by finalization. */
export class TallyRepository {
  private readonly store: Repository<string, TallyJson>

  constructor (db: StateDb) {
    this.store = new Repository(db, 'tallies', jsonCodec<TallyJson>())
  }

  /**
   * The tallies after version `height`: those written at the last height at or below it.
   * Only a version whose inference events changed them writes them: a copy of every
   * account at each height made a datanet's store grow as accounts × heights (750 KB a
   * height at 10,000 accounts). Stores written before keep an entry a height, read alike.
   */
  async at (datanet: string, height: number): Promise<StoredTallies | undefined> {
    const written = await this.writtenAt(datanet, height)
    if (written === undefined) return undefined
    const tallies = await this.store.get(heightKeyOf(datanet, written))
    return tallies === undefined ? undefined : { height: written, tallies }
  }

  /** The height whose tallies are in force at `height` (a key read: the value, every account, is not decoded). */
  async writtenAt (datanet: string, height: number): Promise<number | undefined> {
    for await (const key of this.store.keys({ gte: `${datanet}/`, lt: heightKeyOf(datanet, height + 1), reverse: true, limit: 1 })) {
      return parseInt(key.slice(datanet.length + 1), 16)
    }
    return undefined
  }

  putOp (datanet: string, height: number, tallies: TallyJson): BatchOp {
    return this.store.putOp(heightKeyOf(datanet, height), tallies)
  }
}
