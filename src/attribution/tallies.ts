import { decodeCbor, encodeCbor } from '../codec/cbor.ts'
import { getBytes } from 'ethers'
import { keccak, toHex } from '../codec/hash.ts'
import { DatanetError } from '../errors.ts'

/**
 * Cumulative attribution tallies and their Merkle tree (DESIGN §4 flows 5–6).
 *
 * The tree is OpenZeppelin's `StandardMerkleTree` for `['address', 'uint256']`, rebuilt
 * here without the `@openzeppelin/merkle-tree` dependency, so the registry's
 *
 *     leaf = keccak256(bytes.concat(keccak256(abi.encode(account, cumulativeAmount))))
 *     MerkleProof.verifyCalldata(proof, attributionRoot, leaf)
 *
 * accepts its proofs, and its root equals `StandardMerkleTree.of(entries, ['address',
 * 'uint256']).root` for the same entries:
 *
 * - leaf: the double keccak above (64-byte preimage `abi.encode(address, uint256)`, so a
 *   leaf can never pose as an inner node, whose preimage is also 64 bytes but is hashed once);
 * - inner node: `keccak256(min(a, b) ‖ max(a, b))`, OpenZeppelin's commutative pair hash,
 *   so a proof is a plain list of siblings with no direction bits;
 * - ordering: leaf *hashes* sorted ascending by bytes (OpenZeppelin's `sortLeaves: true`),
 *   laid out as a complete binary tree in an array of 2n−1 nodes, leaf i at index
 *   2n−2−i, node i with children 2i+1 and 2i+2. The order depends only on the set of
 *   (address, amount) pairs, never on how the map was built.
 * - the empty tree (no tallies): root = 32 zero bytes (OpenZeppelin refuses an empty
 *   tree). No leaf hashes to zero, so nothing can be claimed against it.
 *
 * Building the tree is O(n log n) (the sort) plus 3n−1 keccaks; a proof is O(log n)
 * from a built tree (`buildTallyTree(t).proof(address)`), so serving many proofs should
 * build the tree once.
 *
 * Pure: no I/O, no clock, no randomness.
 */

/** Cumulative attributed amount (wei) per contributor; keys are lowercase `0x` addresses. */
export type Tallies = ReadonlyMap<string, bigint>

export interface Share {
  address: string
  amount: bigint
}

export interface TallyProof {
  cumulativeAmount: bigint
  /** Sibling hashes bottom-up, `0x` hex, as `claim(..., bytes32[] proof)` takes them. */
  proof: string[]
}

export const TallyErrorCode = {
  INVALID_ADDRESS: 'TALLY_ERROR_INVALID_ADDRESS',
  INVALID_AMOUNT: 'TALLY_ERROR_INVALID_AMOUNT',
  MALFORMED: 'TALLY_ERROR_MALFORMED'
} as const

export type TallyErrorCodeValue = typeof TallyErrorCode[keyof typeof TallyErrorCode]

export class TallyError extends DatanetError<{ code: TallyErrorCodeValue }> {
  constructor (code: TallyErrorCodeValue, message: string) {
    super({ code }, message, 'usage')
    this.name = 'TallyError'
  }
}

/** The root of the empty tree: 32 zero bytes. */
export const EMPTY_TALLY_ROOT: Uint8Array = new Uint8Array(32)

/** The largest amount a uint256 leaf can hold. */
export const MAX_UINT256 = (1n << 256n) - 1n

const ADDRESS_ANY_CASE = /^0x[0-9a-fA-F]{40}$/
const ADDRESS_LOWER = /^0x[0-9a-f]{40}$/

/** `0x` + 40 hex digits (any case) → lowercase; throws TALLY_ERROR_INVALID_ADDRESS otherwise. */
export function normalizeAddress (address: unknown): string {
  if (typeof address !== 'string' || !ADDRESS_ANY_CASE.test(address)) {
    throw new TallyError(TallyErrorCode.INVALID_ADDRESS, `invalid address ${describe(address)}: expected 0x and 40 hex digits`)
  }
  return address.toLowerCase()
}

function checkAmount (amount: unknown, what: string): bigint {
  if (typeof amount !== 'bigint') throw new TallyError(TallyErrorCode.INVALID_AMOUNT, `${what}: amount must be a bigint, got ${describe(amount)}`)
  if (amount < 0n) throw new TallyError(TallyErrorCode.INVALID_AMOUNT, `${what}: amount ${amount} is negative`)
  if (amount > MAX_UINT256) throw new TallyError(TallyErrorCode.INVALID_AMOUNT, `${what}: amount ${amount} exceeds uint256`)
  return amount
}

function describe (value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? value.slice(0, 60) + '…' : value)
  if (typeof value === 'bigint') return `${value}n`
  return value === null ? 'null' : typeof value
}

/** A new map with the entries in canonical order: ascending address bytes (= lowercase hex order). */
function sorted (entries: Map<string, bigint>): Map<string, bigint> {
  const keys = [...entries.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
  const out = new Map<string, bigint>()
  for (const k of keys) out.set(k, entries.get(k) as bigint)
  return out
}

/**
 * Adds shares to cumulative tallies. Pure: returns a new map in canonical order
 * (ascending address), never touches `tallies`. Share addresses may be any case; shares
 * of one address add up; a zero share creates no entry (tallies only name contributors
 * that earned something, unless a decoded snapshot said otherwise). Throws
 * TALLY_ERROR_INVALID_ADDRESS / TALLY_ERROR_INVALID_AMOUNT (negative, not a bigint, or a
 * sum past uint256).
 */
export function addShares (tallies: Tallies, shares: Iterable<Share>): Map<string, bigint> {
  const next = new Map<string, bigint>()
  for (const [address, amount] of tallies) {
    if (typeof address !== 'string' || !ADDRESS_LOWER.test(address)) {
      throw new TallyError(TallyErrorCode.INVALID_ADDRESS, `tallies key ${describe(address)} is not a lowercase 0x address`)
    }
    next.set(address, checkAmount(amount, `tally of ${address}`))
  }
  for (const share of shares) {
    const address = normalizeAddress(share?.address)
    const amount = checkAmount(share?.amount, `share of ${address}`)
    if (amount === 0n) continue
    const sum = (next.get(address) ?? 0n) + amount
    if (sum > MAX_UINT256) throw new TallyError(TallyErrorCode.INVALID_AMOUNT, `tally of ${address} would exceed uint256`)
    next.set(address, sum)
  }
  return sorted(next)
}

/** The sum of all tallies (what the version's `totalAttributed` states). */
export function totalOf (tallies: Tallies): bigint {
  let total = 0n
  for (const amount of tallies.values()) total += amount
  return total
}

// ---------------------------------------------------------------------------------------
// The tree

function compareBytes (a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length && i < b.length; i++) {
    const d = (a[i] as number) - (b[i] as number)
    if (d !== 0) return d
  }
  return a.length - b.length
}

/** `keccak256(min(a, b) ‖ max(a, b))`: OpenZeppelin's `Hashes.commutativeKeccak256`. */
export function hashPair (a: Uint8Array, b: Uint8Array): Uint8Array {
  const buf = new Uint8Array(64)
  if (compareBytes(a, b) <= 0) {
    buf.set(a, 0)
    buf.set(b, 32)
  } else {
    buf.set(b, 0)
    buf.set(a, 32)
  }
  return keccak(buf)
}

/**
 * `abi.encode(address, uint256)`: two 32-byte words, the address left-padded with zeros,
 * the amount big-endian. Written out rather than through `AbiCoder`, which checksums the
 * address (one more keccak) and costs ~0.2 ms per leaf; the unit test checks it against
 * `AbiCoder.defaultAbiCoder().encode(['address', 'uint256'], ...)`.
 */
export function encodeLeafData (address: string, amount: bigint): Uint8Array {
  const addr = normalizeAddress(address)
  checkAmount(amount, `leaf of ${addr}`)
  const out = new Uint8Array(64)
  for (let i = 0; i < 20; i++) out[12 + i] = parseInt(addr.slice(2 + 2 * i, 4 + 2 * i), 16)
  let v = amount
  for (let i = 63; i >= 32 && v > 0n; i--) {
    out[i] = Number(v & 0xffn)
    v >>= 8n
  }
  return out
}

/** `keccak256(bytes.concat(keccak256(abi.encode(account, cumulativeAmount))))`. */
export function tallyLeaf (address: string, amount: bigint): Uint8Array {
  return keccak(keccak(encodeLeafData(address, amount)))
}

let treesBuilt = 0

/** Tally trees built by this process so far (tests: a tree of every account is built only where tallies change). */
export function tallyTreesBuilt (): number {
  return treesBuilt
}

/** A built tally tree: its root, and proofs in O(log n) each. */
export class TallyTree {
  /** 32 bytes; EMPTY_TALLY_ROOT when there are no tallies. */
  readonly root: Uint8Array
  /** Nodes in OpenZeppelin's array layout (root at 0; leaves at the end, in sorted-hash order reversed). */
  private readonly nodes: Uint8Array[]
  /** address → [index in nodes, amount]. */
  private readonly leaves: Map<string, { index: number, amount: bigint }>

  constructor (tallies: Tallies) {
    treesBuilt++
    const hashed: Array<{ address: string, amount: bigint, hash: Uint8Array }> = []
    for (const [address, amount] of tallies) {
      if (typeof address !== 'string' || !ADDRESS_LOWER.test(address)) {
        throw new TallyError(TallyErrorCode.INVALID_ADDRESS, `tallies key ${describe(address)} is not a lowercase 0x address`)
      }
      hashed.push({ address, amount, hash: tallyLeaf(address, amount) })
    }
    hashed.sort((a, b) => compareBytes(a.hash, b.hash))
    const n = hashed.length
    this.leaves = new Map()
    if (n === 0) {
      this.nodes = []
      this.root = EMPTY_TALLY_ROOT
      return
    }
    const nodes = new Array<Uint8Array>(2 * n - 1)
    hashed.forEach((leaf, i) => {
      const index = nodes.length - 1 - i
      nodes[index] = leaf.hash
      this.leaves.set(leaf.address, { index, amount: leaf.amount })
    })
    for (let i = nodes.length - 1 - n; i >= 0; i--) {
      nodes[i] = hashPair(nodes[2 * i + 1] as Uint8Array, nodes[2 * i + 2] as Uint8Array)
    }
    this.nodes = nodes
    this.root = nodes[0] as Uint8Array
  }

  get size (): number {
    return this.leaves.size
  }

  /** The claim proof of `address` (any case), or null when it has no tally. */
  proof (address: string): TallyProof | null {
    const leaf = this.leaves.get(normalizeAddress(address))
    if (leaf === undefined) return null
    const proof: string[] = []
    let i = leaf.index
    while (i > 0) {
      // sibling: a left child (odd index) pairs with the next node, a right child with the previous
      proof.push(toHex(this.nodes[i % 2 === 1 ? i + 1 : i - 1] as Uint8Array))
      i = (i - 1) >> 1
    }
    return { cumulativeAmount: leaf.amount, proof }
  }
}

export function buildTallyTree (tallies: Tallies): TallyTree {
  return new TallyTree(tallies)
}

/** The attribution root: 32 bytes; 32 zero bytes for empty tallies. */
export function tallyRoot (tallies: Tallies): Uint8Array {
  return new TallyTree(tallies).root
}

/** The claim proof for one address (builds the tree: O(n log n)); null when it has no tally. */
export function tallyProof (tallies: Tallies, address: string): TallyProof | null {
  return new TallyTree(tallies).proof(address)
}

/**
 * What the registry's `claim` checks: the proof folds the leaf of (address, amount) up to
 * `root` with the commutative pair hash. Never throws: malformed input is just `false`.
 */
export function verifyTallyProof (root: Uint8Array | string, address: string, amount: bigint, proof: readonly string[]): boolean {
  try {
    const rootBytes = typeof root === 'string' ? getBytes(root) : root
    if (rootBytes.length !== 32) return false
    let acc = tallyLeaf(address, amount)
    for (const sibling of proof) {
      const s = getBytes(sibling)
      if (s.length !== 32) return false
      acc = hashPair(acc, s)
    }
    return compareBytes(acc, rootBytes) === 0
  } catch {
    return false
  }
}

// ---------------------------------------------------------------------------------------
// Encoding

const ENCODING_VERSION = 1

function amountToBytes (amount: bigint): Uint8Array {
  if (amount === 0n) return new Uint8Array(0)
  const hex = amount.toString(16)
  return getBytes('0x' + (hex.length % 2 === 0 ? hex : '0' + hex))
}

function malformed (message: string): TallyError {
  return new TallyError(TallyErrorCode.MALFORMED, `malformed tallies: ${message}`)
}

/**
 * Tallies as dag-cbor: `{v: 1, entries: [[address: bytes(20), amount: bytes], ...]}`,
 * entries in ascending address order, amounts minimal big-endian (no leading zero byte;
 * zero is the empty byte string). One set of tallies has exactly one encoding.
 */
export function encodeTallies (tallies: Tallies): Uint8Array {
  const entries: Array<[Uint8Array, Uint8Array]> = []
  for (const [address, amount] of sorted(new Map(tallies))) {
    if (!ADDRESS_LOWER.test(address)) throw new TallyError(TallyErrorCode.INVALID_ADDRESS, `tallies key ${describe(address)} is not a lowercase 0x address`)
    entries.push([getBytes(address), amountToBytes(checkAmount(amount, `tally of ${address}`))])
  }
  return encodeCbor({ v: ENCODING_VERSION, entries })
}

/**
 * Decodes `encodeTallies` output, strictly: the exact shape, 20-byte addresses in strictly
 * ascending order, minimal amounts of at most 32 bytes. Throws TALLY_ERROR_MALFORMED.
 */
export function decodeTallies (bytes: Uint8Array): Map<string, bigint> {
  let value: unknown
  try {
    value = decodeCbor(bytes)
  } catch (err) {
    throw malformed(`not dag-cbor (${err instanceof Error ? err.message : String(err)})`)
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Uint8Array) throw malformed('not a map')
  const keys = Object.keys(value).sort()
  if (keys.length !== 2 || keys[0] !== 'entries' || keys[1] !== 'v') throw malformed(`expected keys {entries, v}, got {${keys.join(', ')}}`)
  const { v, entries } = value as { v: unknown, entries: unknown }
  if (v !== ENCODING_VERSION) throw malformed(`unsupported version ${describe(v)}`)
  if (!Array.isArray(entries)) throw malformed('entries is not an array')
  const out = new Map<string, bigint>()
  let previous = ''
  entries.forEach((entry: unknown, i) => {
    if (!Array.isArray(entry) || entry.length !== 2) throw malformed(`entry ${i} is not an [address, amount] pair`)
    const [addr, amt] = entry as [unknown, unknown]
    if (!(addr instanceof Uint8Array) || addr.length !== 20) throw malformed(`entry ${i}: address is not 20 bytes`)
    if (!(amt instanceof Uint8Array) || amt.length > 32) throw malformed(`entry ${i}: amount is not at most 32 bytes`)
    if (amt.length > 0 && amt[0] === 0) throw malformed(`entry ${i}: amount has a leading zero byte`)
    const address = toHex(addr)
    if (address <= previous) throw malformed(`entry ${i}: addresses not in strictly ascending order`)
    previous = address
    out.set(address, amt.length === 0 ? 0n : BigInt(toHex(amt)))
  })
  return out
}

export interface TallyJson {
  address: string
  /** Decimal string, wei. */
  amount: string
}

/** Tallies for the API: `[{address, amount: decimal string}]` in ascending address order. */
export function talliesToJSON (tallies: Tallies): TallyJson[] {
  return [...sorted(new Map(tallies))].map(([address, amount]) => ({ address, amount: amount.toString() }))
}

const DECIMAL = /^(0|[1-9][0-9]*)$/

/**
 * Parses `talliesToJSON` output, strictly: lowercase addresses, each once, amounts as
 * canonical decimal strings (no sign, no leading zeros) within uint256. Returns the
 * canonical (sorted) map. Throws TALLY_ERROR_MALFORMED / _INVALID_ADDRESS / _INVALID_AMOUNT.
 */
export function talliesFromJSON (value: unknown): Map<string, bigint> {
  if (!Array.isArray(value)) throw malformed('expected an array of {address, amount}')
  const out = new Map<string, bigint>()
  value.forEach((entry: unknown, i) => {
    if (typeof entry !== 'object' || entry === null) throw malformed(`entry ${i} is not an object`)
    const keys = Object.keys(entry).sort()
    if (keys.length !== 2 || keys[0] !== 'address' || keys[1] !== 'amount') throw malformed(`entry ${i}: expected keys {address, amount}`)
    const { address, amount } = entry as { address: unknown, amount: unknown }
    if (typeof address !== 'string' || !ADDRESS_LOWER.test(address)) {
      throw new TallyError(TallyErrorCode.INVALID_ADDRESS, `entry ${i}: address ${describe(address)} is not a lowercase 0x address`)
    }
    if (typeof amount !== 'string' || !DECIMAL.test(amount)) {
      throw new TallyError(TallyErrorCode.INVALID_AMOUNT, `entry ${i}: amount ${describe(amount)} is not a non-negative decimal integer`)
    }
    if (out.has(address)) throw malformed(`entry ${i}: address ${address} appears twice`)
    out.set(address, checkAmount(BigInt(amount), `entry ${i}`))
  })
  return sorted(out)
}
