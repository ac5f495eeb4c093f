import { Repository, jsonCodec, type BatchOp, type Bytes, type StateDb } from '../repository.ts'
import type { ContributionEntry } from '../state-db.ts'

const encoder = new TextEncoder()
const decoder = new TextDecoder()
const EMPTY = new Uint8Array(0)
/** Marks the index as built; sorts before every `<datanet>/` range. */
const BUILT = encoder.encode('\u0000built-v1')

/** Index key of a contribution no version includes yet: `<datanet>/<cid>`. */
function unincludedKey (datanet: string, cid: string): Bytes {
  return encoder.encode(`${datanet}/${cid}`)
}

/**
 * Contributions by CID, with an index of those no version includes yet, by datanet
 * (pending, accepted-not-included and rejected ones: a rejection is never included). Every
 * write of an entry updates the index in the same batch, from the entry alone (whether
 * `version` is null), so the index never disagrees with the entries. Proposal building
 * and re-gossip read the index: their cost follows what is still open, not every
 * contribution the node ever held.
 */
export class ContributionRepository extends Repository<string, ContributionEntry> {
  private readonly root: StateDb
  private readonly index

  constructor (db: StateDb) {
    super(db, 'contributions', jsonCodec<ContributionEntry>())
    this.root = db
    this.index = db.sublevel<Bytes, Bytes>('contributions-unincluded', { keyEncoding: 'view', valueEncoding: 'view' })
  }

  override async put (key: string, value: ContributionEntry): Promise<void> {
    await this.root.batch(this.putOps(key, value) as never)
  }

  override async putMany (entries: Iterable<[string, ContributionEntry]>): Promise<void> {
    const ops: BatchOp[] = []
    for (const [key, value] of entries) ops.push(...this.putOps(key, value))
    if (ops.length > 0) await this.root.batch(ops as never)
  }

  override async write (puts: Iterable<[string, ContributionEntry]>, deletes: Iterable<string> = []): Promise<void> {
    if ([...deletes].length > 0) throw new Error('ContributionRepository.write: delete with deleteOps(entry)')
    await this.putMany(puts)
  }

  override putOp (): BatchOp {
    throw new Error('ContributionRepository: use putOps (the entry and its index)')
  }

  override delOp (): BatchOp {
    throw new Error('ContributionRepository: use deleteOps (the entry and its index)')
  }

  override async delete (key: string): Promise<void> {
    const entry = await this.get(key)
    if (entry !== undefined) await this.root.batch(this.deleteOps(entry) as never)
  }

  /** The entry and its index record, for `StateDatabase.batch`. */
  putOps (key: string, value: ContributionEntry): BatchOp[] {
    const index: BatchOp = value.version === null
      ? { type: 'put', sublevel: this.index, key: unincludedKey(value.datanet, key), value: EMPTY }
      : { type: 'del', sublevel: this.index, key: unincludedKey(value.datanet, key) }
    return [{ type: 'put', sublevel: this.store, key: this.codec.encodeKey(key), value: this.codec.encodeValue(value) }, index]
  }

  deleteOps (entry: ContributionEntry): BatchOp[] {
    return [
      { type: 'del', sublevel: this.store, key: this.codec.encodeKey(entry.cid) },
      { type: 'del', sublevel: this.index, key: unincludedKey(entry.datanet, entry.cid) }
    ]
  }

  /** A datanet's contributions that no version includes yet, in CID order. */
  async * unincluded (datanet: string): AsyncGenerator<ContributionEntry> {
    const prefix = `${datanet}/`
    const keys: string[] = []
    for await (const key of this.index.keys({ gte: encoder.encode(prefix), lt: encoder.encode(`${datanet}0`) })) {
      keys.push(decoder.decode(key).slice(prefix.length))
      if (keys.length === 256) {
        yield * this.present(await this.getMany(keys))
        keys.length = 0
      }
    }
    yield * this.present(await this.getMany(keys))
  }

  /**
   * Builds the index from the entries unless it was built (a database written before the
   * index existed); idempotent, so a crash halfway only means building again.
   */
  async ensureIndex (): Promise<number> {
    if (await this.index.get(BUILT) !== undefined) return 0
    let n = 0
    let ops: BatchOp[] = []
    for await (const [key, value] of this.entries()) {
      if (value.version !== null) continue
      ops.push({ type: 'put', sublevel: this.index, key: unincludedKey(value.datanet, key), value: EMPTY })
      n++
      if (ops.length >= 1000) {
        await this.root.batch(ops as never)
        ops = []
      }
    }
    ops.push({ type: 'put', sublevel: this.index, key: BUILT, value: EMPTY })
    await this.root.batch(ops as never)
    return n
  }

  private * present (entries: Array<ContributionEntry | undefined>): Generator<ContributionEntry> {
    for (const e of entries) if (e !== undefined) yield e
  }
}
