import type { Manifest } from '../../datanet/manifest.ts'

/** What a validator learnt about a contribution by reading all its records. */
export interface ContributionFacts {
  recordCount: number
  byteSize: number
  /** Records that fail the datanet's record schema. */
  invalidRecords: number
  /** Records already in the dataset or in another pending contribution. */
  duplicateRecords: number
  /** Records whose text another record already has, up to case, whitespace and other fields (near-duplicates.ts). */
  nearDuplicateRecords?: number
  /** Per reason code from per-record rules: how many records it flagged. */
  flagged: ReadonlyMap<string, number>
}

export interface Finding {
  /** A reason code: upper snake case. */
  reason: string
  /** Refuse the contribution outright. */
  reject?: boolean
  /** Points off the score (0–100). */
  penalty?: number
}

/** A datanet rule. Pure: it sees values, never the network or the disk. */
export interface ContributionRule {
  name: string
  /** Called for every record; a reason code flags the record. */
  checkRecord?: (record: Readonly<Record<string, unknown>>, manifest: Manifest) => string | undefined
  /** Called once with the facts. */
  check?: (facts: ContributionFacts, manifest: Manifest) => Finding[]
}

export interface Judgement {
  accept: boolean
  score: number
  reasons: string[]
}

export const Reason = {
  SCHEMA_INVALID: 'SCHEMA_INVALID',
  TOO_LARGE: 'TOO_LARGE',
  DUPLICATE_RECORDS: 'DUPLICATE_RECORDS',
  SOME_DUPLICATE_RECORDS: 'SOME_DUPLICATE_RECORDS',
  NEAR_DUPLICATE_RECORDS: 'NEAR_DUPLICATE_RECORDS',
  SOME_NEAR_DUPLICATE_RECORDS: 'SOME_NEAR_DUPLICATE_RECORDS',
  EMPTY: 'EMPTY'
} as const

const percentOf = (part: number, whole: number): number => (whole === 0 ? 100 : Math.ceil((part * 100) / whole))

/** The rules every datanet applies: schema, limits, duplicates, near-duplicates. */
export const builtinRules: readonly ContributionRule[] = [
  {
    name: 'schema',
    check: facts => facts.invalidRecords > 0 ? [{ reason: Reason.SCHEMA_INVALID, reject: true }] : []
  },
  {
    name: 'limits',
    check: (facts, manifest) => {
      if (facts.recordCount === 0) return [{ reason: Reason.EMPTY, reject: true }]
      return facts.recordCount > manifest.limits.maxRecordsPerContribution || facts.byteSize > manifest.limits.maxContributionBytes
        ? [{ reason: Reason.TOO_LARGE, reject: true }]
        : []
    }
  },
  {
    name: 'duplicates',
    check: facts => {
      if (facts.duplicateRecords === 0) return []
      if (facts.duplicateRecords >= facts.recordCount) return [{ reason: Reason.DUPLICATE_RECORDS, reject: true }]
      return [{ reason: Reason.SOME_DUPLICATE_RECORDS, penalty: percentOf(facts.duplicateRecords, facts.recordCount) }]
    }
  },
  {
    // a contribution of nothing but copies, exact or near, is refused under the near reason
    name: 'near-duplicates',
    check: facts => {
      const near = facts.nearDuplicateRecords ?? 0
      if (near === 0) return []
      if (near + facts.duplicateRecords >= facts.recordCount) return [{ reason: Reason.NEAR_DUPLICATE_RECORDS, reject: true }]
      return [{ reason: Reason.SOME_NEAR_DUPLICATE_RECORDS, penalty: percentOf(near, facts.recordCount) }]
    }
  }
]

/**
 * A validator's judgement: rejected if any rule rejects or nothing of the score is left;
 * the score is 100 less every penalty (records flagged by a per-record rule cost the
 * share of records they are). Reasons are sorted so equal judgements sign equal bytes.
 */
export function judge (facts: ContributionFacts, manifest: Manifest, rules: readonly ContributionRule[]): Judgement {
  const findings: Finding[] = []
  for (const [reason, count] of facts.flagged) {
    if (count > 0) findings.push({ reason, penalty: percentOf(count, facts.recordCount) })
  }
  for (const rule of rules) findings.push(...(rule.check?.(facts, manifest) ?? []))
  const penalty = findings.reduce((sum, f) => sum + Math.max(0, Math.floor(f.penalty ?? 0)), 0)
  const score = Math.max(0, 100 - penalty)
  const reject = findings.some(f => f.reject === true)
  return {
    accept: !reject && score > 0,
    score: reject ? 0 : score,
    reasons: [...new Set(findings.map(f => f.reason))].sort()
  }
}
