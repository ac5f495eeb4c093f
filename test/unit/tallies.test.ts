import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { AbiCoder, getBytes, hexlify, keccak256, solidityPackedKeccak256 } from 'ethers'
import { encodeCbor } from '../../src/codec/cbor.ts'
import {
  EMPTY_TALLY_ROOT, MAX_UINT256, TallyErrorCode, addShares, buildTallyTree, decodeTallies, encodeLeafData, encodeTallies,
  tallyLeaf, tallyProof, tallyRoot, talliesFromJSON, talliesToJSON, totalOf, verifyTallyProof, type Tallies
} from '../../src/attribution/tallies.ts'

// ---------------------------------------------------------------------------------------
// An independent reference, written the way OpenZeppelin writes it.

const abi = AbiCoder.defaultAbiCoder()

/** StandardMerkleTree leaf: keccak256(bytes.concat(keccak256(abi.encode(address, uint256)))) via AbiCoder. */
function refLeaf (address: string, amount: bigint): string {
  return keccak256(keccak256(abi.encode(['address', 'uint256'], [address, amount])))
}

/** Hashes.commutativeKeccak256: keccak of the sorted pair (solidityPacked as a second route to the bytes). */
function refPair (a: string, b: string): string {
  const [lo, hi] = BigInt(a) < BigInt(b) ? [a, b] : [b, a]
  return solidityPackedKeccak256(['bytes32', 'bytes32'], [lo, hi])
}

/** OpenZeppelin's makeMerkleTree over leaf hashes sorted ascending (hex strings). */
function refTree (leafHashes: string[]): string[] {
  const leaves = [...leafHashes].sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : BigInt(a) > BigInt(b) ? 1 : 0))
  const tree = new Array<string>(2 * leaves.length - 1)
  leaves.forEach((leaf, i) => { tree[tree.length - 1 - i] = leaf })
  for (let i = tree.length - 1 - leaves.length; i >= 0; i--) tree[i] = refPair(tree[2 * i + 1] as string, tree[2 * i + 2] as string)
  return tree
}

function refRoot (tallies: Tallies): string {
  if (tallies.size === 0) return '0x' + '00'.repeat(32)
  return refTree([...tallies].map(([a, v]) => refLeaf(a, v)))[0] as string
}

/** OpenZeppelin MerkleProof.processProof / verify with the default commutative keccak hasher. */
function ozVerify (proof: readonly string[], root: string, leaf: string): boolean {
  let computed = leaf
  for (const sibling of proof) computed = refPair(computed, sibling)
  return computed === root
}

// ---------------------------------------------------------------------------------------

/** A deterministic address and amount per index. */
const addr = (i: number): string => '0x' + keccak256(new TextEncoder().encode(`account ${i}`)).slice(26)
const amt = (i: number): bigint => BigInt(i + 1) * 10n ** 15n + BigInt(i * i)

function talliesOf (n: number): Map<string, bigint> {
  return addShares(new Map(), Array.from({ length: n }, (_, i) => ({ address: addr(i), amount: amt(i) })))
}

const hex = (b: Uint8Array): string => hexlify(b)

function throwsCode (fn: () => unknown, code: string, what = ''): void {
  try {
    fn()
  } catch (err) {
    assert.is((err as { code?: string }).code, code, `${what}: ${(err as Error).message}`)
    return
  }
  assert.unreachable(`${what}: expected ${code}`)
}

test('leaf data equals AbiCoder.encode([address, uint256]); leaf equals the double keccak', () => {
  for (const [a, v] of [[addr(1), 0n], [addr(2), 1n], ['0x' + 'ff'.repeat(20), MAX_UINT256], [addr(3), 10n ** 18n]] as const) {
    assert.is(hex(encodeLeafData(a, v)), abi.encode(['address', 'uint256'], [a, v]))
    assert.is(hex(tallyLeaf(a, v)), refLeaf(a, v))
  }
})

test('the test reference reproduces published StandardMerkleTree dumps', () => {
  // @openzeppelin/merkle-tree README: two (address, uint256) leaves
  const a = '0x1111111111111111111111111111111111111111'
  const b = '0x2222222222222222222222222222222222222222'
  assert.is(refLeaf(a, 5000000000000000000n), '0xeb02c421cfa48976e66dfb29120745909ea3a0f843456c263cf8f1253483e283')
  assert.equal(refTree([refLeaf(a, 5000000000000000000n), refLeaf(b, 2500000000000000000n)]), [
    '0xd4dee0beab2d53f2cc83e567171bd2820e49898130a22622b10ead383e90bd77',
    '0xeb02c421cfa48976e66dfb29120745909ea3a0f843456c263cf8f1253483e283',
    '0xb92c48e9d7abe27fd8dfd6b5dfdbfb1c9a463f80c712b66f3a5180a090cccafc'
  ])
  // a published 3-leaf dump (one address, amounts 0, 1, 2): checks the odd layout
  const c = '0x80d628ff4AC2aFf620C3474663F1e559234bbE0c'
  assert.equal(refTree([0n, 1n, 2n].map(v => refLeaf(c, v))), [
    '0x0fecce441c7468f17e3fe4a5f211b77a15b27c9ab3d33317df385dfbe5487034',
    '0x636ab2686ee3036244cf3d6b5574e051e4b20a3577b008975dbcca6dde2897d2',
    '0xd90245da324d7908326a3d56a9659741551a4603c397bf4dd373976bd85660e7',
    '0x36fb17c97ec80bb961ff0adff1af4a2a34847ecc40653c162e327117a76e3ec9',
    '0x1867c4ebd455913e429523a5c2d4b3a79f58068b5a25af911956245ed03a659d'
  ])
})

test('known vector: the README tallies give the README root and proofs', () => {
  const t = addShares(new Map(), [
    { address: '0x2222222222222222222222222222222222222222', amount: 2500000000000000000n },
    { address: '0x1111111111111111111111111111111111111111', amount: 5000000000000000000n }
  ])
  assert.is(hex(tallyRoot(t)), '0xd4dee0beab2d53f2cc83e567171bd2820e49898130a22622b10ead383e90bd77')
  assert.equal(tallyProof(t, '0x1111111111111111111111111111111111111111'), {
    cumulativeAmount: 5000000000000000000n,
    proof: ['0xb92c48e9d7abe27fd8dfd6b5dfdbfb1c9a463f80c712b66f3a5180a090cccafc']
  })
})

test('known vector: a fixed 10-account set matches the reference root', () => {
  const t = talliesOf(10)
  assert.is(hex(tallyRoot(t)), refRoot(t))
  assert.is(hex(tallyRoot(t)), refRoot(new Map([...t].reverse())))
  // pinned (computed once), so a change of the leaf encoding or tree shape cannot pass silently
  assert.is(hex(tallyRoot(t)), '0x2a3be24b879a69039c63d0bcff44fa17048281f12482d523a633183298f59ea5')
})

for (const n of [0, 1, 2, 3, 7, 100]) {
  test(`${n} leaves: root matches the reference; every proof verifies (ours and OZ MerkleProof)`, () => {
    const t = talliesOf(n)
    const tree = buildTallyTree(t)
    const root = hex(tree.root)
    assert.is(root, refRoot(t))
    assert.is(hex(tallyRoot(t)), root)
    assert.is(tree.size, n)
    if (n === 0) assert.equal(tree.root, EMPTY_TALLY_ROOT)
    for (const [a, v] of t) {
      const p = tree.proof(a)
      assert.ok(p !== null)
      assert.is(p.cumulativeAmount, v)
      assert.ok(p.proof.length <= Math.ceil(Math.log2(Math.max(n, 1))), 'proof is O(log n)')
      assert.equal(tallyProof(t, a), p)
      assert.ok(verifyTallyProof(tree.root, a, v, p.proof))
      assert.ok(verifyTallyProof(root, a.toUpperCase().replace('0X', '0x'), v, p.proof), 'address case does not matter')
      assert.ok(ozVerify(p.proof, root, refLeaf(a, v)))
      // [REJECT] wrong amount, wrong address, tampered proof, truncated proof, wrong root
      assert.not.ok(verifyTallyProof(root, a, v + 1n, p.proof))
      assert.not.ok(ozVerify(p.proof, root, refLeaf(a, v + 1n)))
      assert.not.ok(verifyTallyProof(root, addr(10_000), v, p.proof))
      if (p.proof.length > 0) {
        const bad = [...p.proof]
        const first = getBytes(bad[0] as string)
        first[31] = (first[31] as number) ^ 1
        bad[0] = hexlify(first)
        assert.not.ok(verifyTallyProof(root, a, v, bad))
        assert.not.ok(ozVerify(bad, root, refLeaf(a, v)))
        assert.not.ok(verifyTallyProof(root, a, v, p.proof.slice(1)))
      }
      assert.not.ok(verifyTallyProof(new Uint8Array(32).fill(7), a, v, p.proof))
    }
    assert.is(tree.proof(addr(10_000)), null)
    assert.is(tallyProof(t, addr(10_000)), null)
  })
}

test('the root depends on the set only, not on insertion order or how shares were split', () => {
  const t1 = talliesOf(20)
  const shares = [...t1].reverse().flatMap(([address, amount]) => [{ address, amount: amount - 1n }, { address: address.toUpperCase().replace('0X', '0x'), amount: 1n }])
  const t2 = addShares(new Map(), shares)
  assert.equal([...t2.keys()], [...t1.keys()])
  assert.equal(tallyRoot(t1), tallyRoot(t2))
  assert.equal(tallyRoot(t1), tallyRoot(new Map([...t1].reverse())))
})

test('addShares: pure, canonical order, sums, skips zero shares, validates', () => {
  const base: Tallies = new Map([['0x' + 'bb'.repeat(20), 5n]])
  const next = addShares(base, [
    { address: '0x' + 'AA'.repeat(20), amount: 3n },
    { address: '0x' + 'bb'.repeat(20), amount: 2n },
    { address: '0x' + 'cc'.repeat(20), amount: 0n },
    { address: '0x' + 'aa'.repeat(20), amount: 4n }
  ])
  assert.equal([...next], [['0x' + 'aa'.repeat(20), 7n], ['0x' + 'bb'.repeat(20), 7n]])
  assert.equal([...base], [['0x' + 'bb'.repeat(20), 5n]], 'input untouched')
  assert.is.not(next, base)
  assert.is(totalOf(next), 14n)
  assert.is(totalOf(new Map()), 0n)
  throwsCode(() => addShares(base, [{ address: '0x1234', amount: 1n }]), TallyErrorCode.INVALID_ADDRESS)
  throwsCode(() => addShares(base, [{ address: 'bb'.repeat(20), amount: 1n }]), TallyErrorCode.INVALID_ADDRESS)
  throwsCode(() => addShares(base, [{ address: addr(1), amount: -1n }]), TallyErrorCode.INVALID_AMOUNT)
  throwsCode(() => addShares(base, [{ address: addr(1), amount: 1 as unknown as bigint }]), TallyErrorCode.INVALID_AMOUNT)
  throwsCode(() => addShares(new Map([[addr(1), MAX_UINT256]]), [{ address: addr(1), amount: 1n }]), TallyErrorCode.INVALID_AMOUNT)
  throwsCode(() => addShares(new Map([['0x' + 'AB'.repeat(20), 1n]]), []), TallyErrorCode.INVALID_ADDRESS)
})

test('encodeTallies / decodeTallies round-trip, canonical bytes', () => {
  for (const n of [0, 1, 5, 50]) {
    const t = talliesOf(n)
    t.set('0x' + '00'.repeat(20), 0n)
    t.set('0x' + 'ff'.repeat(20), MAX_UINT256)
    const bytes = encodeTallies(t)
    const back = decodeTallies(bytes)
    assert.equal([...back], [...addShares(t, [])].sort(([a], [b]) => (a < b ? -1 : 1)))
    assert.equal(encodeTallies(back), bytes)
    assert.equal(encodeTallies(new Map([...t].reverse())), bytes, 'insertion order does not matter')
    assert.is(hex(tallyRoot(back)), hex(tallyRoot(t)))
  }
})

test('decodeTallies rejects malformed input with TALLY_ERROR_MALFORMED', () => {
  const a = getBytes('0x' + '11'.repeat(20))
  const b = getBytes('0x' + '22'.repeat(20))
  const bad: Array<[string, Uint8Array]> = [
    ['garbage', new Uint8Array([0xff, 0x00, 0x13])],
    ['empty', new Uint8Array(0)],
    ['not a map', encodeCbor([1, []])],
    ['extra key', encodeCbor({ v: 1, entries: [], x: 1 })],
    ['wrong version', encodeCbor({ v: 2, entries: [] })],
    ['entries not array', encodeCbor({ v: 1, entries: {} })],
    ['short address', encodeCbor({ v: 1, entries: [[a.slice(1), new Uint8Array([1])]] })],
    ['string address', encodeCbor({ v: 1, entries: [['0x' + '11'.repeat(20), new Uint8Array([1])]] })],
    ['integer amount', encodeCbor({ v: 1, entries: [[a, 5]] })],
    ['leading zero', encodeCbor({ v: 1, entries: [[a, new Uint8Array([0, 1])]] })],
    ['33-byte amount', encodeCbor({ v: 1, entries: [[a, new Uint8Array(33).fill(1)]] })],
    ['unsorted', encodeCbor({ v: 1, entries: [[b, new Uint8Array([1])], [a, new Uint8Array([1])]] })],
    ['duplicate', encodeCbor({ v: 1, entries: [[a, new Uint8Array([1])], [a, new Uint8Array([2])]] })],
    ['triple', encodeCbor({ v: 1, entries: [[a, new Uint8Array([1]), 1]] })]
  ]
  for (const [what, bytes] of bad) throwsCode(() => decodeTallies(bytes), TallyErrorCode.MALFORMED, what)
  // the well-formed neighbour decodes
  assert.equal([...decodeTallies(encodeCbor({ v: 1, entries: [[a, new Uint8Array([1])], [b, new Uint8Array(0)]] }))], [['0x' + '11'.repeat(20), 1n], ['0x' + '22'.repeat(20), 0n]])
})

test('talliesToJSON / talliesFromJSON: decimal strings, strict', () => {
  const t = talliesOf(4)
  t.set('0x' + 'ff'.repeat(20), MAX_UINT256)
  const json = talliesToJSON(t)
  assert.ok(json.every(e => typeof e.amount === 'string' && /^\d+$/.test(e.amount)))
  assert.equal([...talliesFromJSON(JSON.parse(JSON.stringify(json)))], [...addShares(t, [])])
  const a = '0x' + 'ab'.repeat(20)
  throwsCode(() => talliesFromJSON({}), TallyErrorCode.MALFORMED)
  throwsCode(() => talliesFromJSON([{ address: a }]), TallyErrorCode.MALFORMED)
  throwsCode(() => talliesFromJSON([{ address: a, amount: '1' }, { address: a, amount: '2' }]), TallyErrorCode.MALFORMED)
  throwsCode(() => talliesFromJSON([{ address: a.toUpperCase().replace('0X', '0x'), amount: '1' }]), TallyErrorCode.INVALID_ADDRESS)
  for (const amount of ['-1', '01', '1.5', '1e3', ' 1', '', 1, (MAX_UINT256 + 1n).toString()]) {
    throwsCode(() => talliesFromJSON([{ address: a, amount }]), TallyErrorCode.INVALID_AMOUNT, String(amount))
  }
})

test('verifyTallyProof never throws on malformed input', () => {
  const t = talliesOf(3)
  const [a, v] = [...t][0] as [string, bigint]
  const { proof } = tallyProof(t, a) ?? { proof: [] }
  const root = tallyRoot(t)
  assert.not.ok(verifyTallyProof(root, 'nope', v, proof))
  assert.not.ok(verifyTallyProof(root, a, -1n, proof))
  assert.not.ok(verifyTallyProof(root, a, v, ['0x1234']))
  assert.not.ok(verifyTallyProof(root, a, v, ['zz']))
  assert.not.ok(verifyTallyProof(root.slice(1), a, v, proof))
  assert.not.ok(verifyTallyProof('0x', a, v, proof))
  assert.not.ok(verifyTallyProof(EMPTY_TALLY_ROOT, a, v, []))
})

test('a 5000-account tree builds and serves proofs', () => {
  const t = talliesOf(5000)
  const tree = buildTallyTree(t)
  let i = 0
  for (const [a, v] of t) {
    if (i++ % 500 !== 0) continue
    const p = tree.proof(a)
    assert.ok(p !== null && verifyTallyProof(tree.root, a, v, p.proof))
  }
})

test.run()
