import { Repository, type BatchOp, type Bytes, type RepositoryCodec, type StateDb } from '../repository.ts'
import { readOne } from '../level-reads.ts'

const encoder = new TextEncoder()
const decoder = new TextDecoder()
const EMPTY = new Uint8Array(0)
/** Marks an index as built; sorts before every key an index holds. */
const BUILT = encoder.encode('\u0000built-v1')

/** Where an entry sits in the index: its index key, and whether it belongs there now. */
export interface IndexPlace {
  key: string
  member: boolean
}

/**
 * A repository of string-keyed entries with one secondary index: a sibling sublevel whose
 * keys are the entries the `place` function says belong to it. The place is computed from
 * the entry alone, so every write puts or deletes the index key in the entry's own batch
 * and the index never disagrees with the entries; single operations that would skip it are
 * refused. Readers walk the index by key prefix.
 */
export class IndexedRepository<V> extends Repository<string, V> {
  private readonly root: StateDb
  private readonly index
  private readonly place: (key: string, value: V) => IndexPlace

  constructor (db: StateDb, name: string, codec: RepositoryCodec<string, V>, indexName: string, place: (key: string, value: V) => IndexPlace) {
    super(db, name, codec)
    this.root = db
    this.place = place
    this.index = db.sublevel<Bytes, Bytes>(indexName, { keyEncoding: 'view', valueEncoding: 'view' })
  }

  override async put (key: string, value: V): Promise<void> {
    await this.root.batch(this.putOps(key, value) as never)
  }

  override async putMany (entries: Iterable<[string, V]>): Promise<void> {
    const ops: BatchOp[] = []
    for (const [key, value] of entries) ops.push(...this.putOps(key, value))
    if (ops.length > 0) await this.root.batch(ops as never)
  }

  override async write (puts: Iterable<[string, V]>, deletes: Iterable<string> = []): Promise<void> {
    if ([...deletes].length > 0) throw new Error(`${this.name}: delete with deleteOps(key, entry)`)
    await this.putMany(puts)
  }

  override putOp (): BatchOp {
    throw new Error(`${this.name}: use putOps (the entry and its index)`)
  }

  override delOp (): BatchOp {
    throw new Error(`${this.name}: use deleteOps (the entry and its index)`)
  }

  override async delete (key: string): Promise<void> {
    const value = await this.get(key)
    if (value !== undefined) await this.root.batch(this.deleteOps(key, value) as never)
  }

  /** Writes operations of this and other repositories in one atomic batch (`sync`: on disk before it resolves). */
  protected async batch (ops: readonly BatchOp[], opts: { sync?: boolean } = {}): Promise<void> {
    if (ops.length > 0) await this.root.batch(ops as never, { sync: opts.sync === true })
  }

  /** The entry and its index record, for `StateDatabase.batch`. */
  putOps (key: string, value: V): BatchOp[] {
    const at = this.place(key, value)
    const indexKey = encoder.encode(at.key)
    return [
      { type: 'put', sublevel: this.store, key: this.codec.encodeKey(key), value: this.codec.encodeValue(value) },
      at.member ? { type: 'put', sublevel: this.index, key: indexKey, value: EMPTY } : { type: 'del', sublevel: this.index, key: indexKey }
    ]
  }

  deleteOps (key: string, value: V): BatchOp[] {
    return [
      { type: 'del', sublevel: this.store, key: this.codec.encodeKey(key) },
      { type: 'del', sublevel: this.index, key: encoder.encode(this.place(key, value).key) }
    ]
  }

  /** The entries whose index keys start with `prefix`, in index-key order (read 256 at a time). */
  protected async * indexed (prefix: string, keyOf: (indexKey: string) => string): AsyncGenerator<V> {
    const keys: string[] = []
    for await (const k of this.index.keys({ gte: encoder.encode(prefix), lt: encoder.encode(prefix + '\uffff') })) {
      keys.push(keyOf(decoder.decode(k)))
      if (keys.length === 256) {
        for (const v of await this.getMany(keys)) if (v !== undefined) yield v
        keys.length = 0
      }
    }
    for (const v of await this.getMany(keys)) if (v !== undefined) yield v
  }

  /**
   * Builds the index from the entries unless it was built (a database written before the
   * index existed); idempotent, so a crash halfway only means building again. Returns the
   * entries indexed (0 when it was built already).
   */
  async ensureIndex (): Promise<number> {
    if (await readOne(this.index, BUILT) !== undefined) return 0
    let n = 0
    let ops: BatchOp[] = []
    for await (const [key, value] of this.entries()) {
      const at = this.place(key, value)
      if (!at.member) continue
      ops.push({ type: 'put', sublevel: this.index, key: encoder.encode(at.key), value: EMPTY })
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
}
