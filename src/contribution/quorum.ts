import type { ValidatorSet } from '../datanet/manifest.ts'
import { hasOneThird, hasTwoThirds } from '../consensus/quorum.ts'

export type ContributionStatus = 'pending' | 'accepted' | 'rejected'

export interface VerdictVote {
  validator: string
  accept: boolean
  score: number
}

export interface QuorumResult {
  status: ContributionStatus
  acceptStake: bigint
  rejectStake: bigint
  /** Stake-weighted median score of the counted verdicts; null before any. */
  score: number | null
  /** The verdicts that counted: one per validator of the set. */
  counted: VerdictVote[]
}

/**
 * The verdict quorum rule (DESIGN §3): accepted when validators holding >= 2/3 of the
 * stake accept, rejected when more than 1/3 reject (the two cannot both hold). Only
 * verdicts from members of the set count, the first one per validator; integer
 * arithmetic throughout.
 */
export function tallyVerdicts (set: ValidatorSet, votes: readonly VerdictVote[]): QuorumResult {
  const stakes = new Map(set.validators.map(v => [v.address.toLowerCase(), v.stake]))
  const seen = new Set<string>()
  const counted: VerdictVote[] = []
  let acceptStake = 0n
  let rejectStake = 0n
  for (const vote of votes) {
    const key = vote.validator.toLowerCase()
    const stake = stakes.get(key)
    if (stake === undefined || seen.has(key)) continue
    seen.add(key)
    counted.push(vote)
    if (vote.accept) acceptStake += stake
    else rejectStake += stake
  }
  let status: ContributionStatus = 'pending'
  if (hasTwoThirds(acceptStake, set.total)) status = 'accepted'
  else if (hasOneThird(rejectStake, set.total)) status = 'rejected'
  return { status, acceptStake, rejectStake, score: weightedMedian(counted, stakes), counted }
}

/**
 * The lower stake-weighted median: order votes by (score, validator address), then the
 * first score at which the cumulative stake reaches half of the counted stake.
 */
export function weightedMedian (votes: readonly VerdictVote[], stakes: ReadonlyMap<string, bigint>): number | null {
  if (votes.length === 0) return null
  const sorted = [...votes].sort((a, b) => a.score - b.score || (a.validator.toLowerCase() < b.validator.toLowerCase() ? -1 : a.validator.toLowerCase() > b.validator.toLowerCase() ? 1 : 0))
  const total = sorted.reduce((sum, v) => sum + (stakes.get(v.validator.toLowerCase()) ?? 0n), 0n)
  let cumulative = 0n
  for (const v of sorted) {
    cumulative += stakes.get(v.validator.toLowerCase()) ?? 0n
    if (cumulative * 2n >= total) return v.score
  }
  return (sorted[sorted.length - 1] as VerdictVote).score
}
