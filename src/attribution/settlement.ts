import type { AttributionResult } from './index.ts'
import type { Share } from './tallies.ts'

/**
 * What one inference event pays each contributor: its span shares, plus its base pool
 * (uncovered, capped away or rounded off) split pro rata to the accepted records each
 * contributor holds in the event's dataset version (floor; the dust stays unattributed).
 * Integers only; the result is sorted by address.
 */
export function eventShares (result: Pick<AttributionResult, 'contributors' | 'basePool'>, recordsByContributor: ReadonlyMap<string, number>): Share[] {
  const amounts = new Map<string, bigint>()
  for (const c of result.contributors) amounts.set(c.address.toLowerCase(), BigInt(c.amount))
  const basePool = BigInt(result.basePool)
  let total = 0n
  for (const n of recordsByContributor.values()) total += BigInt(n)
  if (basePool > 0n && total > 0n) {
    for (const [address, n] of recordsByContributor) {
      const part = basePool * BigInt(n) / total
      if (part > 0n) amounts.set(address.toLowerCase(), (amounts.get(address.toLowerCase()) ?? 0n) + part)
    }
  }
  return [...amounts].filter(([, a]) => a > 0n).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([address, amount]) => ({ address, amount }))
}
