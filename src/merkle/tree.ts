import { sha256Pair, sha256Prefixed } from '../codec/hash.ts'

/**
 * The record Merkle tree. Leaves are `sha256(0x00 ‖ recordHash)` (33-byte preimages, so a
 * leaf can never pose as an inner node); inner nodes are `sha256(min(a,b) ‖ max(a,b))`,
 * the commutative pair hash OpenZeppelin's `MerkleProof.processProof(proof, leaf, hasher)`
 * accepts, so a proof is a plain list of siblings with no direction bits. Leaves pair
 * left to right; an unpaired last node moves up unchanged. That shape is what folding the
 * frontier of an append-only tree gives, so appending is O(log n) and any prefix's root
 * is the same whether built at once or record by record.
 */

export const EMPTY_ROOT = new Uint8Array(32)

export function leafHash (recordHash: Uint8Array): Uint8Array {
  return sha256Prefixed(0, recordHash)
}

export function hashPair (a: Uint8Array, b: Uint8Array): Uint8Array {
  return Buffer.compare(a, b) <= 0 ? sha256Pair(a, b) : sha256Pair(b, a)
}

/**
 * An append-only tree that keeps only its frontier: one perfect subtree root per set bit
 * of the leaf count. Memory O(log n), append amortised O(1) hashes, root O(log n).
 */
export class MerkleFrontier {
  /** frontier[h]: root of the perfect subtree of 2^h leaves at height h, if that bit of count is set. */
  private readonly frontier: Array<Uint8Array | undefined> = []
  private count = 0

  get size (): number {
    return this.count
  }

  /** Appends a record hash (the leaf is derived from it). */
  append (recordHash: Uint8Array, onNode?: (level: number, index: number, node: Uint8Array) => void): void {
    this.appendLeaf(leafHash(recordHash), onNode)
  }

  /**
   * Appends a leaf. `onNode` sees each inner node the append completes: the perfect subtree
   * at `level` (≥ 1) whose leaves are `index·2^level … (index+1)·2^level − 1`, which no later
   * append changes (what `proofFromNodes` reads).
   */
  appendLeaf (leaf: Uint8Array, onNode?: (level: number, index: number, node: Uint8Array) => void): void {
    let node = leaf
    let h = 0
    const position = this.count
    while (this.frontier[h] !== undefined) {
      node = hashPair(this.frontier[h] as Uint8Array, node)
      this.frontier[h] = undefined
      h++
      onNode?.(h, Math.floor(position / 2 ** h), node)
    }
    this.frontier[h] = node
    this.count++
  }

  /** The frontier as JSON (hex), to persist a version's tree state. */
  toJSON (): { size: number, nodes: Array<string | null> } {
    return { size: this.count, nodes: this.frontier.map(n => (n === undefined ? null : Buffer.from(n).toString('hex'))) }
  }

  static fromJSON (json: { size: number, nodes: Array<string | null> }): MerkleFrontier {
    const tree = new MerkleFrontier()
    tree.count = json.size
    json.nodes.forEach((n, h) => { tree.frontier[h] = n === null ? undefined : new Uint8Array(Buffer.from(n, 'hex')) })
    return tree
  }

  clone (): MerkleFrontier {
    return MerkleFrontier.fromJSON(this.toJSON())
  }

  root (): Uint8Array {
    let acc: Uint8Array | undefined
    for (const node of this.frontier) {
      if (node === undefined) continue
      acc = acc === undefined ? node : hashPair(node, acc)
    }
    return acc ?? EMPTY_ROOT
  }
}

/** The root over record hashes, in order. */
export function merkleRoot (recordHashes: Iterable<Uint8Array>): Uint8Array {
  const tree = new MerkleFrontier()
  for (const h of recordHashes) tree.append(h)
  return tree.root()
}

/** The inclusion proof of the record at `index` among `recordHashes` (siblings, bottom up). */
export function merkleProof (recordHashes: readonly Uint8Array[], index: number): Uint8Array[] {
  if (!Number.isInteger(index) || index < 0 || index >= recordHashes.length) throw new RangeError(`no record at index ${index}`)
  let level = recordHashes.map(leafHash)
  let i = index
  const proof: Uint8Array[] = []
  while (level.length > 1) {
    const sibling = i ^ 1
    if (sibling < level.length) proof.push(level[sibling] as Uint8Array)
    const next: Uint8Array[] = []
    for (let j = 0; j < level.length; j += 2) {
      next.push(j + 1 < level.length ? hashPair(level[j] as Uint8Array, level[j + 1] as Uint8Array) : level[j] as Uint8Array)
    }
    level = next
    i = i >> 1
  }
  return proof
}

/**
 * Inner nodes are stored for proofs from this level up; a proof folds the ones below from
 * the 2^STORED_NODE_LEVEL leaves around its record (16 leaves, read at once). Storing every
 * level wrote a node for each record: a third of a finalization's writes.
 */
export const STORED_NODE_LEVEL = 4

/**
 * A stored tree node: `level` 0 is the leaf of the record at position `index`; a higher
 * level is the perfect subtree over leaves `index·2^level … (index+1)·2^level − 1`.
 */
export type NodeRef = readonly [level: number, index: number]

/**
 * The node at (`level`, `index`) of the tree over the first `size` leaves, from perfect
 * nodes only: a node the tree's right edge cuts (its leaves run past `size`) is folded from
 * the perfect ones under it, as the level-by-level build pairs them.
 */
function nodeAt (level: number, index: number, size: number, get: (ref: NodeRef) => Uint8Array, storedFrom: number): Uint8Array {
  const perfect = (index + 1) * 2 ** level <= size
  if (perfect && (level === 0 || level >= storedFrom)) return get([level, index])
  // the right child exists when its first leaf is inside the tree; else the left moves up unchanged
  if (!perfect && (2 * index + 1) * 2 ** (level - 1) >= size) return nodeAt(level - 1, 2 * index, size, get, storedFrom)
  return hashPair(nodeAt(level - 1, 2 * index, size, get, storedFrom), nodeAt(level - 1, 2 * index + 1, size, get, storedFrom))
}

/**
 * The inclusion proof of the leaf at `index` in the tree of the first `size` leaves, from
 * stored perfect nodes (`get`): O(log n) of them, where `merkleProof` reads every leaf.
 * At most one sibling lies on the right edge, folded from O(log n) more.
 */
export function proofFromNodes (index: number, size: number, get: (ref: NodeRef) => Uint8Array, storedFrom = STORED_NODE_LEVEL): Uint8Array[] {
  if (!Number.isInteger(index) || index < 0 || index >= size) throw new RangeError(`no record at index ${index} of ${size}`)
  const proof: Uint8Array[] = []
  let level = 0
  let i = index
  let width = size
  while (width > 1) {
    const sibling = i ^ 1
    if (sibling < width) proof.push(nodeAt(level, sibling, size, get, storedFrom))
    i = Math.floor(i / 2)
    width = Math.ceil(width / 2)
    level++
  }
  return proof
}

/** The stored nodes `proofFromNodes(index, size, …)` reads, each once. */
export function proofNodeRefs (index: number, size: number, storedFrom = STORED_NODE_LEVEL): NodeRef[] {
  const refs = new Map<string, NodeRef>()
  const blank = new Uint8Array(32)
  proofFromNodes(index, size, ref => { refs.set(`${ref[0]}/${ref[1]}`, ref); return blank }, storedFrom)
  return [...refs.values()]
}

/** What OpenZeppelin's processProof computes with the commutative sha256 hasher. */
export function processProof (proof: readonly Uint8Array[], recordHash: Uint8Array): Uint8Array {
  let acc = leafHash(recordHash)
  for (const sibling of proof) acc = hashPair(acc, sibling)
  return acc
}

export function verifyProof (proof: readonly Uint8Array[], root: Uint8Array, recordHash: Uint8Array): boolean {
  return Buffer.compare(processProof(proof, recordHash), root) === 0
}
