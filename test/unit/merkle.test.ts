import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createHash } from 'node:crypto'
import { EMPTY_ROOT, MerkleFrontier, hashPair, leafHash, merkleProof, merkleRoot, processProof, proofFromNodes, proofNodeRefs, STORED_NODE_LEVEL, verifyProof } from '../../src/merkle/tree.ts'

/** sha256 computed independently of src/codec/hash.ts. */
function h (...parts: Uint8Array[]): Uint8Array {
  const hash = createHash('sha256')
  for (const p of parts) hash.update(p)
  return new Uint8Array(hash.digest())
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
const same = (a: Uint8Array, b: Uint8Array, msg?: string): void => { assert.is(hex(a), hex(b), msg) }
const differ = (a: Uint8Array, b: Uint8Array, msg?: string): void => { assert.is.not(hex(a), hex(b), msg) }

/** Record hashes: sha256 of "record i". */
const HASHES: Uint8Array[] = Array.from({ length: 130 }, (_, i) => h(Buffer.from(`record ${i}`)))
const hashes = (n: number): Uint8Array[] => HASHES.slice(0, n)

/** merkleProof(hashes(n), i), computed once per (n, i): both proof tests use them. */
const proofCache = new Map<string, Uint8Array[]>()
function proofOf (n: number, i: number): Uint8Array[] {
  const key = `${n}/${i}`
  let proof = proofCache.get(key)
  if (proof === undefined) {
    proof = merkleProof(hashes(n), i)
    proofCache.set(key, proof)
  }
  return proof
}

/** Independent reference: leaf = sha256(0x00 ‖ x), inner = sha256(min ‖ max). */
const refLeaf = (x: Uint8Array): Uint8Array => h(Uint8Array.of(0), x)
const refPair = (a: Uint8Array, b: Uint8Array): Uint8Array => Buffer.compare(a, b) <= 0 ? h(a, b) : h(b, a)

/** The root of a perfect tree over 2^k leaves, computed recursively. */
function perfectRoot (leaves: Uint8Array[]): Uint8Array {
  if (leaves.length === 1) return leaves[0] as Uint8Array
  const half = leaves.length / 2
  return refPair(perfectRoot(leaves.slice(0, half)), perfectRoot(leaves.slice(half)))
}

test('for n = 1..70 merkleRoot equals the frontier built one by one, and every proof verifies', () => {
  const frontier = new MerkleFrontier()
  for (let n = 1; n <= 70; n++) {
    const hs = hashes(n)
    frontier.append(hs[n - 1] as Uint8Array)
    assert.is(frontier.size, n)
    const root = merkleRoot(hs)
    assert.is(root.length, 32)
    same(frontier.root(), root, `n=${n}: frontier root`)
    for (let i = 0; i < n; i++) {
      const proof = proofOf(n, i)
      assert.ok(proof.length <= Math.ceil(Math.log2(n)), `n=${n} i=${i}: proof length ${proof.length}`)
      assert.ok(verifyProof(proof, root, hs[i] as Uint8Array), `n=${n} i=${i}: proof verifies`)
      same(processProof(proof, hs[i] as Uint8Array), root)
    }
  }
})

test('a proof for the wrong record, against another root, or with a sibling altered fails', () => {
  for (let n = 1; n <= 70; n++) {
    const hs = hashes(n)
    const root = merkleRoot(hs)
    const otherRoot = merkleRoot(hashes(n + 1))
    for (let i = 0; i < n; i++) {
      const proof = proofOf(n, i)
      const wrong = (n === 1 ? HASHES[100] : hs[(i + 1) % n]) as Uint8Array
      assert.not.ok(verifyProof(proof, root, wrong), `n=${n} i=${i}: wrong record`)
      assert.not.ok(verifyProof(proof, otherRoot, hs[i] as Uint8Array), `n=${n} i=${i}: other root`)
      for (let s = 0; s < proof.length; s++) {
        const altered = proof.map(p => new Uint8Array(p))
        const sibling = altered[s] as Uint8Array
        sibling[31] = (sibling[31] as number) ^ 0x01
        assert.not.ok(verifyProof(altered, root, hs[i] as Uint8Array), `n=${n} i=${i}: sibling ${s} altered`)
      }
      if (proof.length > 0) {
        assert.not.ok(verifyProof(proof.slice(0, -1), root, hs[i] as Uint8Array), `n=${n} i=${i}: truncated proof`)
      }
    }
  }
})

test('the root of n records differs from the root of n + 1', () => {
  const seen = new Set<string>()
  for (let n = 0; n <= 71; n++) {
    const root = hex(merkleRoot(hashes(n)))
    assert.not.ok(seen.has(root), `n=${n}: root seen before`)
    seen.add(root)
    differ(merkleRoot(hashes(n)), merkleRoot(hashes(n + 1)), `n=${n}`)
  }
})

test('the root depends on record order beyond swapping two siblings (the pair hash is commutative)', () => {
  const hs = hashes(5)
  const at = (...order: number[]): Uint8Array[] => order.map(i => hs[i] as Uint8Array)
  differ(merkleRoot(hs), merkleRoot(at(2, 1, 0, 3, 4)))
  differ(merkleRoot(hs), merkleRoot(at(4, 1, 2, 3, 0)))
  differ(merkleRoot(hs), merkleRoot(at(0, 2, 1, 3, 4)))
  // By design (OpenZeppelin's commutative hasher) siblings commute.
  same(merkleRoot(hs), merkleRoot(at(1, 0, 2, 3, 4)))
})

test('the empty root is 32 zero bytes', () => {
  assert.equal(merkleRoot([]), new Uint8Array(32))
  assert.equal(new MerkleFrontier().root(), new Uint8Array(32))
  assert.is(new MerkleFrontier().size, 0)
  assert.equal(EMPTY_ROOT, new Uint8Array(32))
})

test('the root of one record is its leaf hash', () => {
  const x = HASHES[7] as Uint8Array
  same(merkleRoot([x]), refLeaf(x))
  assert.equal(merkleProof([x], 0), [])
})

test('hashPair is commutative and is sha256 of the sorted pair', () => {
  for (let i = 0; i < 20; i++) {
    const a = HASHES[i] as Uint8Array
    const b = HASHES[i + 1] as Uint8Array
    same(hashPair(a, b), hashPair(b, a))
    same(hashPair(a, b), refPair(a, b))
  }
  const a = HASHES[0] as Uint8Array
  same(hashPair(a, a), h(a, a))
})

test('leafHash(x) is sha256(0x00 ‖ x), never x itself nor sha256(x)', () => {
  for (const x of hashes(20)) {
    const leaf = leafHash(x)
    same(leaf, refLeaf(x))
    differ(leaf, x)
    differ(leaf, h(x))
  }
})

test('a leaf never poses as an inner node: different preimage lengths', () => {
  const a = HASHES[0] as Uint8Array
  const b = HASHES[1] as Uint8Array
  // The 64 bytes of an inner node's preimage, taken as a record hash (only its first 32 bytes fit).
  const inner = hashPair(leafHash(a), leafHash(b))
  const root = merkleRoot([a, b])
  same(inner, root)
  // Presenting the inner node itself as a record does not reproduce the root.
  differ(leafHash(inner), inner)
  assert.not.ok(verifyProof([], root, inner), 'inner node presented as a record')
  // The same 32 bytes hashed as a leaf and as half of a pair never coincide.
  for (const x of hashes(10)) {
    differ(leafHash(x), hashPair(x, x))
    differ(leafHash(x), h(x, x))
  }
  // A tree of 4 records: an inner node cannot be proved as a leaf of a 2-record tree with the same root.
  const four = hashes(4)
  const l = four.map(refLeaf)
  const left = refPair(l[0] as Uint8Array, l[1] as Uint8Array)
  const right = refPair(l[2] as Uint8Array, l[3] as Uint8Array)
  const root4 = merkleRoot(four)
  same(root4, refPair(left, right))
  assert.not.ok(verifyProof([right], root4, left), 'inner node with its sibling as proof')
  assert.not.ok(verifyProof([left], root4, right), 'inner node with its sibling as proof')
})

test('a hand-computed 3-record root equals merkleRoot and the frontier', () => {
  const hs = hashes(3)
  const [l0, l1, l2] = hs.map(x => h(Uint8Array.of(0), x)) as [Uint8Array, Uint8Array, Uint8Array]
  const p01 = Buffer.compare(l0, l1) <= 0 ? h(l0, l1) : h(l1, l0)
  const root = Buffer.compare(p01, l2) <= 0 ? h(p01, l2) : h(l2, p01)
  same(merkleRoot(hs), root)
  const f = new MerkleFrontier()
  for (const x of hs) f.append(x)
  same(f.root(), root)
  // And the proofs are the siblings, bottom up.
  const proof0 = merkleProof(hs, 0)
  assert.is(proof0.length, 2)
  same(proof0[0] as Uint8Array, l1)
  same(proof0[1] as Uint8Array, l2)
  const proof2 = merkleProof(hs, 2)
  assert.is(proof2.length, 1)
  same(proof2[0] as Uint8Array, p01)
})

test('appendLeaf takes the leaf as is', () => {
  const hs = hashes(9)
  const f = new MerkleFrontier()
  for (const x of hs) f.appendLeaf(leafHash(x))
  same(f.root(), merkleRoot(hs))
})

test('merkleProof throws RangeError for bad indices', () => {
  const hs = hashes(5)
  for (const i of [-1, 5, 6, 1.5, Number.NaN, Infinity]) {
    assert.throws(() => merkleProof(hs, i), (e: unknown) => e instanceof RangeError, `index ${i}`)
  }
  assert.throws(() => merkleProof([], 0), (e: unknown) => e instanceof RangeError, 'empty list')
  assert.not.throws(() => merkleProof(hs, 4))
})

test('a frontier root after 2^k appends is the perfect tree root', () => {
  const f = new MerkleFrontier()
  let appended = 0
  for (let k = 0; k <= 7; k++) {
    const n = 2 ** k
    while (appended < n) f.append(HASHES[appended++] as Uint8Array)
    const expected = perfectRoot(hashes(n).map(refLeaf))
    same(f.root(), expected, `k=${k}`)
    same(merkleRoot(hashes(n)), expected, `k=${k}`)
  }
})

test('the unpaired last node moves up unchanged (5 records)', () => {
  const hs = hashes(5)
  const l = hs.map(refLeaf)
  const four = refPair(refPair(l[0] as Uint8Array, l[1] as Uint8Array), refPair(l[2] as Uint8Array, l[3] as Uint8Array))
  same(merkleRoot(hs), refPair(four, l[4] as Uint8Array))
})

test('proofs from stored perfect nodes equal the full build\'s, for every index of trees of 1 to 130 leaves and a few larger', () => {
  const hashes = Array.from({ length: 1100 }, (_, i) => new Uint8Array(createHash('sha256').update(`record ${i}`).digest()))
  // the nodes as the node stores them: leaves, and each inner node an append completes
  const stored = new Map<string, Uint8Array>()
  const tree = new MerkleFrontier()
  hashes.forEach((h, i) => {
    stored.set(`0/${i}`, leafHash(h))
    tree.append(h, (level, index, node) => { stored.set(`${level}/${index}`, node) })
  })
  const get = ([level, index]: readonly [number, number]): Uint8Array => {
    const node = stored.get(`${level}/${index}`)
    if (node === undefined) throw new Error(`node ${level}/${index} was never completed`)
    return node
  }
  const sizes = [...Array.from({ length: 130 }, (_, i) => i + 1), 255, 256, 257, 511, 1000, 1023, 1024, 1025, 1100]
  for (const size of sizes) {
    const prefix = hashes.slice(0, size)
    const indices = size <= 130 ? Array.from({ length: size }, (_, i) => i) : [0, 1, size >> 1, size - 2, size - 1]
    for (const index of indices) {
      // every level stored, or from STORED_NODE_LEVEL up (the levels below folded from leaves)
      for (const storedFrom of [1, STORED_NODE_LEVEL]) {
        const asked: number[] = []
        const proof = proofFromNodes(index, size, ref => { asked.push(ref[0]); return get(ref) }, storedFrom)
        assert.equal(proof.map(p => Buffer.from(p).toString('hex')), merkleProof(prefix, index).map(p => Buffer.from(p).toString('hex')), `size ${size}, index ${index}, stored from ${storedFrom}`)
        assert.ok(asked.every(level => level === 0 || level >= storedFrom), `asked for a level below ${storedFrom}`)
        // O(log n) reads: the path's siblings, one right-edge sibling folded from the perfect nodes under it, and the leaves under the unstored levels
        const reads = proofNodeRefs(index, size, storedFrom).length
        assert.ok(reads <= 2 * Math.ceil(Math.log2(size)) + 1 + 2 * 2 ** storedFrom, `size ${size}, index ${index}: ${reads} reads`)
      }
    }
  }
})

test.run()
