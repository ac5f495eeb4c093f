import { parseUnits } from 'ethers'
import { usageError } from './context.ts'

const UNITS: Record<string, number> = { wei: 0, gwei: 9, eth: 18, ether: 18 }

/**
 * An amount as a user types it: `1.5eth` (ether), `2gwei`, `1000wei`, or a bare number in
 * `unit` (ether for stakes, wei for fees as DESIGN §6 has them). Returns wei; a clear
 * usage error names what was wrong.
 */
export function parseAmount (text: string, what = 'amount', unit: 'eth' | 'wei' = 'eth'): bigint {
  const m = /^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*$/.exec(text)
  if (m === null) throw usageError(`${what}: expected an amount such as 1.5eth, 2gwei or 1000wei (a bare number is in ${unit}), got "${text}"`)
  const given = (m[2] ?? '').toLowerCase() || unit
  const decimals = UNITS[given]
  if (decimals === undefined) throw usageError(`${what}: unknown unit "${m[2]}" (use eth, gwei or wei)`)
  let wei: bigint
  try {
    wei = parseUnits(m[1] as string, decimals)
  } catch {
    throw usageError(`${what}: ${m[1]} ${given} is not a whole number of wei`)
  }
  if (wei <= 0n) throw usageError(`${what}: must be more than zero`)
  return wei
}
