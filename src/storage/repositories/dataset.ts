import { concatBytes } from '../../codec/hash.ts'
import { Repository, heightKey, readHeightKey, type BatchOp, type StateDb } from '../repository.ts'

const bytesKey = {
  encodeKey: (key: Uint8Array): Uint8Array => key,
  decodeKey: (bytes: Uint8Array): Uint8Array => bytes
}
const raw = { ...bytesKey, encodeValue: (h: Uint8Array) => h, decodeValue: (b: Uint8Array) => b }

/**
 * The records included in final versions, per datanet (by its 32-byte digest), in three
 * sublevels written together by finalization (their one writer):
 * - `dataset`: `<digest><record hash>` → position (is a record in the dataset, and where);
 * - `leaves`: `<digest><position, 8 bytes BE>` → record hash (the tree's leaves in order);
 * - `tree-nodes`: `<digest><level, 1 byte><index, 8 bytes BE>` → the perfect inner node over
 *   leaves index·2^level … (index+1)·2^level − 1: what a proof reads besides leaves, O(log n).
 */
export class DatasetRepository {
  private readonly positions: Repository<Uint8Array, number>
  private readonly leaves: Repository<Uint8Array, Uint8Array>
  private readonly nodes: Repository<Uint8Array, Uint8Array>

  constructor (db: StateDb) {
    this.positions = new Repository(db, 'dataset', { ...bytesKey, encodeValue: (n: number) => heightKey(n), decodeValue: (b: Uint8Array) => Number(readHeightKey(b)) })
    this.leaves = new Repository(db, 'leaves', raw)
    this.nodes = new Repository(db, 'tree-nodes', raw)
  }

  async positionOf (digest: Uint8Array, hash: Uint8Array): Promise<number | undefined> {
    return await this.positions.get(concatBytes(digest, hash))
  }

  /** The positions of many records in one read (undefined for those in no final version). */
  async positionsOf (digest: Uint8Array, hashes: readonly Uint8Array[]): Promise<Array<number | undefined>> {
    return await this.positions.getMany(hashes.map(h => concatBytes(digest, h)))
  }

  /** The record hashes at `positions` (undefined where none). */
  async leavesAt (digest: Uint8Array, positions: readonly number[]): Promise<Array<Uint8Array | undefined>> {
    return await this.leaves.getMany(positions.map(i => concatBytes(digest, heightKey(i))))
  }

  /** The first `size` record hashes, in order. */
  async leafRange (digest: Uint8Array, size: number): Promise<Uint8Array[]> {
    const out: Uint8Array[] = []
    for await (const [, leaf] of this.leaves.entries({ gte: concatBytes(digest, heightKey(0)), lt: concatBytes(digest, heightKey(size)) })) out.push(leaf)
    return out
  }

  /** Stored inner nodes at `[level, index]` (undefined where none). */
  async nodesAt (digest: Uint8Array, refs: ReadonlyArray<readonly [number, number]>): Promise<Array<Uint8Array | undefined>> {
    return await this.nodes.getMany(refs.map(([level, index]) => concatBytes(digest, Uint8Array.of(level), heightKey(index))))
  }

  /**
   * The writes that append `hashes` at positions `start…` and store the inner nodes they
   * complete, for finalization's atomic batch.
   */
  appendOps (digest: Uint8Array, start: number, hashes: readonly Uint8Array[], nodes: Iterable<readonly [number, number, Uint8Array]>): BatchOp[] {
    const ops: BatchOp[] = []
    hashes.forEach((h, i) => {
      ops.push(this.positions.putOp(concatBytes(digest, h), start + i))
      ops.push(this.leaves.putOp(concatBytes(digest, heightKey(start + i)), h))
    })
    for (const [level, index, node] of nodes) ops.push(this.nodes.putOp(concatBytes(digest, Uint8Array.of(level), heightKey(index)), node))
    return ops
  }
}
