/**
 * EIP-55 addresses, memoized. ethers' getAddress hashes the address with keccak at every
 * call, and the same few addresses (a validator set, recent contributors) are checked at
 * every verdict, contribution and certificate: in a catch-up profile it was ~4% of the
 * node's main thread. The memo keeps the answer, so it cannot answer otherwise.
 */
import { getAddress } from 'ethers'

/** Bounded: validators, contributors and operators seen lately; an attacker's fresh addresses only push out older ones. */
const MAX_ADDRESSES = 4096
const checksummed = new Map<string, string>()

/** `getAddress(value)`: the EIP-55 form of a hex address; throws as ethers does on a bad one. */
export function checksumAddress (value: string): string {
  let address = checksummed.get(value)
  if (address === undefined) {
    address = getAddress(value)
    checksummed.set(value, address)
    if (checksummed.size > MAX_ADDRESSES) checksummed.delete(checksummed.keys().next().value as string)
  }
  return address
}

/** Whether `v` is an address in its EIP-55 checksummed form. */
export function isChecksummedAddress (v: unknown): v is string {
  if (typeof v !== 'string' || !/^0x[0-9a-fA-F]{40}$/.test(v)) return false
  try {
    return checksumAddress(v) === v
  } catch {
    return false
  }
}
