/**
 * The one stake threshold rule (DESIGN §3): a quorum is at least 2/3 of the total stake
 * (safe while Byzantine stake is under 1/3); "more than 1/3" is what can block a quorum
 * (a rejection, a round skip). Integer arithmetic only.
 */
export function hasTwoThirds (power: bigint, total: bigint): boolean {
  return total > 0n && power * 3n >= total * 2n
}

export function hasOneThird (power: bigint, total: bigint): boolean {
  return power * 3n > total
}
