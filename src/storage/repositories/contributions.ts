import { KeyedMutex } from '../keyed-mutex.ts'
import { jsonCodec, type BatchOp, type StateDb } from '../repository.ts'
import type { ContributionEntry } from '../state-db.ts'
import { IndexedRepository } from './indexed.ts'

/**
 * Contributions by CID, indexed by datanet while no version includes them (pending,
 * accepted-not-included and rejected ones: a rejection is never included). Proposal
 * building and re-gossip read the index: their cost follows what is still open, not every
 * contribution the node ever held.
 *
 * Three services change an entry (receipt, the verdict tally, inclusion in a version): all
 * go through `update` and `include`, which hold the entry's lock from read to write, so no
 * change is lost to another made meanwhile.
 */
export class ContributionRepository extends IndexedRepository<ContributionEntry> {
  private readonly locks = new KeyedMutex()

  constructor (db: StateDb) {
    super(db, 'contributions', jsonCodec<ContributionEntry>(), 'contributions-unincluded',
      (cid, e) => ({ key: `${e.datanet}/${cid}`, member: e.version === null }))
  }

  /**
   * Reads an entry and writes what `change` makes of it (nothing when it returns undefined),
   * with no other update or inclusion of that entry in between. Returns the entry before and after.
   */
  async update (cid: string, change: (current: ContributionEntry | undefined) => ContributionEntry | undefined | Promise<ContributionEntry | undefined>): Promise<{ before: ContributionEntry | undefined, after: ContributionEntry | undefined }> {
    return await this.locks.run(cid, async () => {
      const before = await this.get(cid)
      const after = await change(before)
      if (after !== undefined && after !== before) await this.put(cid, after)
      return { before, after: after ?? before }
    })
  }

  /**
   * `update` for several entries in one batch, holding their locks (in CID order) from the
   * read to the write: `change` sees each entry as it is (undefined when absent). Returns
   * each entry as it is after.
   */
  async updateMany (cids: readonly string[], change: (cid: string, current: ContributionEntry | undefined) => ContributionEntry | undefined): Promise<Map<string, ContributionEntry | undefined>> {
    const sorted = [...new Set(cids)].sort()
    const out = new Map<string, ContributionEntry | undefined>()
    await this.holding(sorted, async () => {
      const ops: BatchOp[] = []
      const entries = await this.getMany(sorted)
      entries.forEach((before, j) => {
        const cid = sorted[j] as string
        const after = change(cid, before)
        if (after !== undefined && after !== before) ops.push(...this.putOps(cid, after))
        out.set(cid, after ?? before)
      })
      await this.batch(ops)
    })
    return out
  }

  /**
   * Marks the held ones of `cids` included at `height` in one batch with `ops` (the rest of a
   * version's finalization), holding their locks (in CID order) from read to write.
   */
  async include (cids: readonly string[], height: number, ops: readonly BatchOp[], opts: { sync?: boolean } = {}): Promise<void> {
    await this.includeAll([{ cids, height }], ops, opts)
  }

  /**
   * `include` for several versions at once (catch-up writes a range in one batch): each
   * group's held contributions marked included at its height, with `ops`, in one batch.
   */
  async includeAll (groups: ReadonlyArray<{ cids: readonly string[], height: number }>, ops: readonly BatchOp[], opts: { sync?: boolean } = {}): Promise<void> {
    const heightOf = new Map<string, number>()
    for (const g of groups) for (const cid of g.cids) if (!heightOf.has(cid)) heightOf.set(cid, g.height)
    const sorted = [...heightOf.keys()].sort()
    await this.holding(sorted, async () => {
      const all = [...ops]
      const entries = await this.getMany(sorted)
      entries.forEach((e, j) => { if (e !== undefined) all.push(...this.putOps(sorted[j] as string, { ...e, version: heightOf.get(sorted[j] as string) as number })) })
      await this.batch(all, opts)
    })
  }

  /** Runs `task` holding the locks of `sorted` (CIDs in order: two holders never wait on each other). */
  private async holding (sorted: readonly string[], task: () => Promise<void>): Promise<void> {
    const hold = async (i: number): Promise<void> => {
      if (i < sorted.length) await this.locks.run(sorted[i] as string, async () => { await hold(i + 1) })
      else await task()
    }
    await hold(0)
  }

  /** A datanet's contributions that no version includes yet, in CID order. */
  unincluded (datanet: string): AsyncGenerator<ContributionEntry> {
    return this.indexed(`${datanet}/`, k => k.slice(datanet.length + 1))
  }
}
