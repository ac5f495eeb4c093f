/**
 * Money (ATTRIBUTION.md §2 "Money"), BigInt wei only — no floating point anywhere:
 *
 *     dataPool   = fee · DATA_BPS / 10000                                  (floor)
 *     attributed = dataPool · ΣU / ΣW_all                                  (floor)
 *     amount_r   = min(attributed · units_r / ΣU, dataPool · RECORD_CAP_BPS / 10000)  (floor)
 *     contributor amount = Σ amount_r over its records
 *     basePool   = dataPool − Σ amount_r   (uncovered share, capped excess, rounding dust)
 *
 * so Σ contributors + basePool = dataPool exactly and no amount exceeds the pool.
 *
 *     resultHash = keccak256(abi.encode(bytes32 eventId, bytes32 specId, bytes32 indexHash,
 *                                       (address, uint256)[] sorted by address))
 */
import { keccak256 } from 'ethers'
import { fromHex } from '../codec/hash.ts'

const BPS = 10_000n

export interface RecordShare {
  recordIndex: number
  contributor: string
  units: number
  amount: bigint
}

export interface ContributorShare {
  /** Lowercase address. */
  address: string
  amount: bigint
}

export interface Shares {
  dataPool: bigint
  /** dataPool · ΣU / ΣW_all, before the per-record cap. */
  attributed: bigint
  /** The most one record takes. */
  recordCap: bigint
  /** Ascending recordIndex. */
  records: RecordShare[]
  /** Ascending address; only those with a non-zero amount. */
  contributors: ContributorShare[]
  /** Σ amounts actually paid to contributors. */
  paid: bigint
  basePool: bigint
}

export interface SharesInput {
  fee: bigint
  dataBps: number
  recordCapBps: number
  /** Σ weights of every output token (ΣW_all). */
  totalWeight: number
  /** Units per record, ascending recordIndex, with each record's contributor. */
  records: ReadonlyArray<{ recordIndex: number, contributor: string, units: number }>
}

function compareAddresses (a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

export function computeShares (input: SharesInput): Shares {
  const { fee, totalWeight } = input
  if (fee < 0n) throw new RangeError('fee must not be negative')
  const dataPool = fee * BigInt(input.dataBps) / BPS
  const recordCap = dataPool * BigInt(input.recordCapBps) / BPS
  let unitSum = 0
  for (const r of input.records) unitSum += r.units
  if (unitSum > totalWeight) throw new RangeError(`credited units ${unitSum} exceed the output's weight ${totalWeight}`)
  const attributed = totalWeight === 0 ? 0n : dataPool * BigInt(unitSum) / BigInt(totalWeight)
  const records: RecordShare[] = []
  const byContributor = new Map<string, bigint>()
  let paid = 0n
  for (const r of input.records) {
    const proportional = attributed * BigInt(r.units) / BigInt(unitSum)
    const amount = proportional < recordCap ? proportional : recordCap
    records.push({ recordIndex: r.recordIndex, contributor: r.contributor, units: r.units, amount })
    byContributor.set(r.contributor, (byContributor.get(r.contributor) ?? 0n) + amount)
    paid += amount
  }
  const contributors: ContributorShare[] = [...byContributor]
    .filter(([, amount]) => amount > 0n)
    .sort((a, b) => compareAddresses(a[0], b[0]))
    .map(([address, amount]) => ({ address, amount }))
  return { dataPool, attributed, recordCap, records, contributors, paid, basePool: dataPool - paid }
}

/**
 * abi.encode(bytes32, bytes32, bytes32, (address, uint256)[]) written out: three words,
 * the array's offset (0x80), its length, then per entry the address left-padded and
 * the amount as a 32-byte big-endian word. (ethers' AbiCoder gives the same bytes — the
 * tests check — at ~20× the cost, which showed in the per-event time.)
 */
function encodeResult (eventId: string, specId: string, indexHash: string, contributors: readonly ContributorShare[]): Uint8Array {
  const out = new Uint8Array(32 * (5 + 2 * contributors.length))
  out.set(fromHex(eventId, 32), 0)
  out.set(fromHex(specId, 32), 32)
  out.set(fromHex(indexHash, 32), 64)
  out[127] = 0x80
  writeUint256(out, 128, BigInt(contributors.length))
  let at = 160
  for (const c of contributors) {
    out.set(fromHex(c.address, 20), at + 12)
    writeUint256(out, at + 32, c.amount)
    at += 64
  }
  return out
}

function writeUint256 (out: Uint8Array, at: number, value: bigint): void {
  if (value < 0n || value >> 256n !== 0n) throw new RangeError('amount does not fit a uint256')
  let v = value
  for (let i = at + 31; i >= at && v !== 0n; i--) {
    out[i] = Number(v & 0xffn)
    v >>= 8n
  }
}

/** The result hash validators sign (`0x` hex). Contributors must be sorted by address. */
export function resultHash (eventId: string, specId: string, indexHash: string, contributors: readonly ContributorShare[]): string {
  for (let i = 1; i < contributors.length; i++) {
    if (compareAddresses((contributors[i - 1] as ContributorShare).address, (contributors[i] as ContributorShare).address) >= 0) {
      throw new RangeError('resultHash: contributors must be sorted by address, without repeats')
    }
  }
  return keccak256(encodeResult(eventId, specId, indexHash, contributors))
}
