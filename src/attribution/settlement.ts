import type { AttributionResult } from './index.ts'
import type { Share } from './tallies.ts'

/**
 * What one inference event pays each contributor: its span shares, plus its base pool
 * (uncovered, capped away or rounded off) split pro rata to each contributor's content
 * weight in the event's dataset version (floor; the dust stays unattributed). Integers
 * only; the result is sorted by address.
 */
export function eventShares (result: Pick<AttributionResult, 'contributors' | 'basePool'>, weights: ReadonlyMap<string, bigint | number>): Share[] {
  const amounts = new Map<string, bigint>()
  for (const c of result.contributors) amounts.set(c.address.toLowerCase(), BigInt(c.amount))
  const basePool = BigInt(result.basePool)
  let total = 0n
  for (const w of weights.values()) total += BigInt(w)
  if (basePool > 0n && total > 0n) {
    for (const [address, w] of weights) {
      const part = basePool * BigInt(w) / total
      if (part > 0n) amounts.set(address.toLowerCase(), (amounts.get(address.toLowerCase()) ?? 0n) + part)
    }
  }
  return [...amounts].filter(([, a]) => a > 0n).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([address, amount]) => ({ address, amount }))
}
