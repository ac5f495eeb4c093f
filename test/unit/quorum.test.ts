import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { getAddress } from 'ethers'
import { genesisValidatorSet, parseManifest, type Manifest, type ValidatorSet } from '../../src/datanet/manifest.ts'
import { tallyVerdicts, weightedMedian, type VerdictVote } from '../../src/contribution/quorum.ts'
import { Reason, builtinRules, judge, type ContributionFacts, type ContributionRule } from '../../src/contribution/rules/index.ts'

/** Validator addresses, checksummed, in ascending order. */
const ADDR = Array.from({ length: 8 }, (_, i) => getAddress('0x' + (i + 1).toString(16).padStart(2, '0').repeat(20)))
const addr = (i: number): string => ADDR[i] as string

/** A validator set with these stakes, built like a node builds it (from a manifest). */
function setOf (...stakes: number[]): ValidatorSet {
  return genesisValidatorSet(parseManifest({
    name: 'q',
    license: 'MIT',
    recordSchema: {},
    validators: stakes.map((s, i) => ({ address: addr(i), stake: String(s) }))
  }))
}

const vote = (i: number, accept: boolean, score = accept ? 100 : 0): VerdictVote => ({ validator: addr(i), accept, score })
const stakesOf = (set: ValidatorSet): Map<string, bigint> => new Map(set.validators.map(v => [v.address.toLowerCase(), v.stake]))

function permutations<T> (items: readonly T[]): T[][] {
  if (items.length <= 1) return [[...items]]
  return items.flatMap((x, i) => permutations([...items.slice(0, i), ...items.slice(i + 1)]).map(p => [x, ...p]))
}

// -- tally ----------------------------------------------------------------------------

test('3 equal validators: 2 accepts accepted, 1 accept pending, 2 rejects rejected, 1 reject pending', () => {
  const set = setOf(1, 1, 1)
  assert.is(tallyVerdicts(set, [vote(0, true), vote(1, true)]).status, 'accepted')
  assert.is(tallyVerdicts(set, [vote(0, true)]).status, 'pending')
  assert.is(tallyVerdicts(set, [vote(0, false), vote(1, false)]).status, 'rejected')
  assert.is(tallyVerdicts(set, [vote(0, false)]).status, 'pending', '1/3 is not more than 1/3')
  assert.is(tallyVerdicts(set, [vote(0, false), vote(1, true)]).status, 'pending')
  assert.is(tallyVerdicts(set, [vote(0, true), vote(1, false), vote(2, true)]).status, 'accepted')
  assert.is(tallyVerdicts(set, []).status, 'pending')
})

test('4 equal validators: 1 reject pending, 2 rejects rejected, 3 accepts accepted, 2 accepts pending', () => {
  const set = setOf(5, 5, 5, 5)
  assert.is(tallyVerdicts(set, [vote(0, false)]).status, 'pending')
  assert.is(tallyVerdicts(set, [vote(0, false), vote(1, false)]).status, 'rejected')
  assert.is(tallyVerdicts(set, [vote(0, true), vote(1, true), vote(2, true)]).status, 'accepted', '3/4 >= 2/3')
  assert.is(tallyVerdicts(set, [vote(0, true), vote(1, true)]).status, 'pending', '1/2 < 2/3')
  assert.is(tallyVerdicts(set, [vote(0, true), vote(1, true), vote(2, false)]).status, 'pending')
})

test('exactly 2/3 of the stake accepting is accepted', () => {
  assert.is(tallyVerdicts(setOf(1, 1, 1), [vote(1, true), vote(2, true)]).status, 'accepted')
  const twoOne = setOf(2, 1)
  assert.is(tallyVerdicts(twoOne, [vote(0, true)]).status, 'accepted', 'the 2-stake validator alone')
  assert.is(tallyVerdicts(twoOne, [vote(1, true)]).status, 'pending', 'the 1-stake validator alone')
  assert.is(tallyVerdicts(twoOne, [vote(1, false)]).status, 'pending', 'exactly 1/3 rejecting')
  assert.is(tallyVerdicts(twoOne, [vote(0, false)]).status, 'rejected')
  // just under 2/3: 666 of 1000
  assert.is(tallyVerdicts(setOf(666, 334), [vote(0, true)]).status, 'pending')
  assert.is(tallyVerdicts(setOf(667, 333), [vote(0, true)]).status, 'accepted')
})

test('stake weighs: 70% alone accepts, 40% alone rejects, 30% alone does neither', () => {
  const set = setOf(70, 15, 15)
  assert.is(tallyVerdicts(set, [vote(0, true)]).status, 'accepted')
  const r = tallyVerdicts(setOf(40, 30, 30), [vote(0, false)])
  assert.is(r.status, 'rejected')
  assert.is(r.rejectStake, 40n)
  assert.is(r.acceptStake, 0n)
  assert.is(tallyVerdicts(setOf(40, 30, 30), [vote(1, false), vote(2, true)]).status, 'pending')
  // and the big one decides against the small ones
  assert.is(tallyVerdicts(setOf(70, 15, 15), [vote(1, true), vote(2, true), vote(0, false)]).status, 'rejected')
})

test('stakes bigger than 2^53 tally exactly', () => {
  const big = setOf(1, 1, 1)
  const wei = 10n ** 24n
  const exact: ValidatorSet = {
    validators: big.validators.map((v, i) => ({ address: v.address, stake: i === 0 ? 2n * wei : wei + (i === 1 ? 1n : 0n) })),
    total: 4n * wei + 1n
  }
  // 2·10^24 + 10^24 + 1 = 3·10^24 + 1 accepting of 4·10^24 + 1: 3/4 ≥ 2/3
  assert.is(tallyVerdicts(exact, [vote(0, true), vote(1, true)]).acceptStake, 3n * wei + 1n)
})

test('verdicts from outside the set are ignored', () => {
  const set = setOf(1, 1, 1)
  const r = tallyVerdicts(set, [vote(5, true), vote(6, true), vote(7, true), vote(0, true)])
  assert.is(r.status, 'pending')
  assert.is(r.acceptStake, 1n)
  assert.equal(r.counted, [vote(0, true)])
  assert.is(tallyVerdicts(set, [vote(5, false), vote(6, false)]).status, 'pending')
})

test('a second verdict from the same validator is ignored, whatever its case; the first counts', () => {
  const set = setOf(1, 1, 1)
  const lower = { validator: addr(0).toLowerCase(), accept: false, score: 0 }
  const upper = { validator: '0x' + addr(0).slice(2).toUpperCase(), accept: false, score: 0 }
  const r = tallyVerdicts(set, [vote(0, true), lower, upper, vote(0, false), vote(1, true)])
  assert.is(r.status, 'accepted')
  assert.is(r.acceptStake, 2n)
  assert.is(r.rejectStake, 0n)
  assert.equal(r.counted, [vote(0, true), vote(1, true)])
  // the other way round: the first (a reject, in lower case) counts
  const r2 = tallyVerdicts(set, [lower, vote(0, true), vote(1, true)])
  assert.is(r2.status, 'pending')
  assert.is(r2.rejectStake, 1n)
  assert.is(r2.acceptStake, 1n)
  // repeated rejects do not add up
  assert.is(tallyVerdicts(set, [vote(0, false), vote(0, false), lower]).status, 'pending')
})

test('a set with no stake never accepts', () => {
  const empty: ValidatorSet = { validators: [], total: 0n }
  assert.is(tallyVerdicts(empty, []).status, 'pending')
  assert.is(tallyVerdicts(empty, [vote(0, true)]).status, 'pending')
  const zero: ValidatorSet = { validators: [{ address: addr(0), stake: 0n }, { address: addr(1), stake: 0n }], total: 0n }
  const r = tallyVerdicts(zero, [vote(0, true), vote(1, true)])
  assert.is(r.status, 'pending')
  assert.is(tallyVerdicts(zero, [vote(0, false), vote(1, false)]).status, 'pending')
})

// -- weighted median ------------------------------------------------------------------

test('weighted median: equal stakes [10, 50, 90] → 50', () => {
  const set = setOf(1, 1, 1)
  const votes = [vote(0, true, 10), vote(1, true, 50), vote(2, true, 90)]
  assert.is(weightedMedian(votes, stakesOf(set)), 50)
  assert.is(tallyVerdicts(set, votes).score, 50)
})

test('weighted median: stakes [1, 1, 10] with scores [10, 20, 90] → 90', () => {
  const set = setOf(1, 1, 10)
  const votes = [vote(0, true, 10), vote(1, true, 20), vote(2, true, 90)]
  assert.is(weightedMedian(votes, stakesOf(set)), 90)
  assert.is(tallyVerdicts(set, votes).score, 90)
})

test('weighted median is the lower median for an even split', () => {
  const set = setOf(1, 1, 1, 1)
  assert.is(weightedMedian([vote(0, true, 10), vote(1, true, 20), vote(2, true, 30), vote(3, true, 40)], stakesOf(set)), 20)
  assert.is(weightedMedian([vote(0, true, 10), vote(1, true, 90)], stakesOf(setOf(1, 1))), 10)
  assert.is(weightedMedian([vote(0, true, 10), vote(1, true, 90)], stakesOf(setOf(1, 2))), 90)
})

test('weighted median counts only counted verdicts (outsiders and repeats do not move it)', () => {
  const set = setOf(1, 1, 1)
  const r = tallyVerdicts(set, [vote(0, true, 10), vote(0, true, 100), vote(7, true, 100), vote(1, true, 20)])
  assert.is(r.score, 10)
})

test('weighted median and tally never depend on the order of the verdicts', () => {
  const cases: Array<{ stakes: number[], votes: VerdictVote[] }> = [
    { stakes: [1, 1, 1, 1], votes: [vote(0, true, 50), vote(1, true, 50), vote(2, false, 50), vote(3, true, 20)] },
    { stakes: [3, 1, 2, 5], votes: [vote(0, true, 70), vote(1, false, 70), vote(2, true, 10), vote(3, true, 70)] },
    { stakes: [1, 2, 3, 4, 5], votes: [vote(0, true, 0), vote(1, true, 100), vote(2, false, 0), vote(3, true, 60), vote(4, true, 60)] }
  ]
  for (const { stakes, votes } of cases) {
    const set = setOf(...stakes)
    const expected = tallyVerdicts(set, votes)
    const median = weightedMedian(votes, stakesOf(set))
    assert.is(expected.score, median)
    for (const p of permutations(votes)) {
      const r = tallyVerdicts(set, p)
      assert.is(r.score, expected.score, JSON.stringify(p))
      assert.is(r.status, expected.status)
      assert.is(r.acceptStake, expected.acceptStake)
      assert.is(r.rejectStake, expected.rejectStake)
      assert.is(weightedMedian(p, stakesOf(set)), median)
    }
  }
})

test('weighted median of nothing is null', () => {
  assert.is(weightedMedian([], new Map()), null)
  assert.is(tallyVerdicts(setOf(1, 1), []).score, null)
})

// -- judge ----------------------------------------------------------------------------

const MANIFEST: Manifest = parseManifest({
  name: 'rules',
  license: 'MIT',
  recordSchema: {},
  limits: { maxRecordsPerContribution: 100, maxContributionBytes: 10_000 },
  validators: [{ address: addr(0), stake: '1' }]
})

function facts (overrides: Partial<ContributionFacts> = {}): ContributionFacts {
  return { recordCount: 10, byteSize: 500, invalidRecords: 0, duplicateRecords: 0, flagged: new Map(), ...overrides }
}

test('judge: clean facts accept with score 100 and no reasons', () => {
  assert.equal(judge(facts(), MANIFEST, builtinRules), { accept: true, score: 100, reasons: [] })
  assert.equal(judge(facts({ recordCount: 100, byteSize: 10_000 }), MANIFEST, builtinRules), { accept: true, score: 100, reasons: [] }, 'at the limits')
})

test('judge: invalid records reject with SCHEMA_INVALID and score 0', () => {
  assert.equal(judge(facts({ invalidRecords: 1 }), MANIFEST, builtinRules), { accept: false, score: 0, reasons: [Reason.SCHEMA_INVALID] })
})

test('judge: all duplicates reject with DUPLICATE_RECORDS', () => {
  assert.equal(judge(facts({ duplicateRecords: 10 }), MANIFEST, builtinRules), { accept: false, score: 0, reasons: [Reason.DUPLICATE_RECORDS] })
})

test('judge: some duplicates (1 of 4) accept with score 75 and SOME_DUPLICATE_RECORDS', () => {
  assert.equal(judge(facts({ recordCount: 4, duplicateRecords: 1 }), MANIFEST, builtinRules), { accept: true, score: 75, reasons: [Reason.SOME_DUPLICATE_RECORDS] })
  // a share that is not a whole percent costs the next whole percent
  assert.equal(judge(facts({ recordCount: 3, duplicateRecords: 1 }), MANIFEST, builtinRules), { accept: true, score: 66, reasons: [Reason.SOME_DUPLICATE_RECORDS] })
})

test('judge: too many records or bytes reject with TOO_LARGE; no records with EMPTY', () => {
  assert.equal(judge(facts({ recordCount: 101 }), MANIFEST, builtinRules), { accept: false, score: 0, reasons: [Reason.TOO_LARGE] })
  assert.equal(judge(facts({ byteSize: 10_001 }), MANIFEST, builtinRules), { accept: false, score: 0, reasons: [Reason.TOO_LARGE] })
  const empty = judge(facts({ recordCount: 0, byteSize: 0 }), MANIFEST, builtinRules)
  assert.is(empty.accept, false)
  assert.is(empty.score, 0)
  assert.ok(empty.reasons.includes(Reason.EMPTY), empty.reasons.join())
})

const badWords: ContributionRule = {
  name: 'bad-words',
  checkRecord: record => typeof record.text === 'string' && record.text.includes('darn') ? 'BAD_WORDS' : undefined
}

test('judge: records flagged by a per-record rule cost their share: 2 of 10 → 80 with BAD_WORDS', () => {
  const j = judge(facts({ flagged: new Map([['BAD_WORDS', 2]]) }), MANIFEST, [...builtinRules, badWords])
  assert.equal(j, { accept: true, score: 80, reasons: ['BAD_WORDS'] })
  // a zero count is no finding
  assert.equal(judge(facts({ flagged: new Map([['BAD_WORDS', 0]]) }), MANIFEST, [...builtinRules, badWords]), { accept: true, score: 100, reasons: [] })
  // every record flagged leaves nothing of the score: refused
  assert.equal(judge(facts({ flagged: new Map([['BAD_WORDS', 10]]) }), MANIFEST, [...builtinRules, badWords]), { accept: false, score: 0, reasons: ['BAD_WORDS'] })
})

test('judge: a custom check() that rejects refuses the contribution', () => {
  const refuse: ContributionRule = { name: 'refuse', check: f => f.byteSize > 100 ? [{ reason: 'TOO_MANY_BYTES_FOR_ME', reject: true }] : [] }
  assert.equal(judge(facts(), MANIFEST, [...builtinRules, refuse]), { accept: false, score: 0, reasons: ['TOO_MANY_BYTES_FOR_ME'] })
  assert.equal(judge(facts({ byteSize: 100 }), MANIFEST, [...builtinRules, refuse]), { accept: true, score: 100, reasons: [] })
  // a custom rule sees the manifest
  const seesManifest: ContributionRule = { name: 'm', check: (_f, m) => m.name === 'rules' ? [{ reason: 'SAW_MANIFEST', penalty: 5 }] : [] }
  assert.equal(judge(facts(), MANIFEST, [...builtinRules, seesManifest]), { accept: true, score: 95, reasons: ['SAW_MANIFEST'] })
})

test('judge: penalties add up, floor at 0 and then refuse; negative penalties are ignored', () => {
  const pen = (reason: string, penalty: number): ContributionRule => ({ name: reason, check: () => [{ reason, penalty }] })
  assert.equal(judge(facts(), MANIFEST, [pen('P_A', 30), pen('P_B', 20.9)]), { accept: true, score: 50, reasons: ['P_A', 'P_B'] })
  assert.equal(judge(facts(), MANIFEST, [pen('P_A', 60), pen('P_B', 60)]), { accept: false, score: 0, reasons: ['P_A', 'P_B'] })
  assert.equal(judge(facts(), MANIFEST, [pen('P_A', -50)]), { accept: true, score: 100, reasons: ['P_A'] })
})

test('judge: reasons are sorted and unique', () => {
  const rules: ContributionRule[] = [
    ...builtinRules,
    { name: 'z', check: () => [{ reason: 'ZULU', penalty: 1 }, { reason: 'ALPHA', penalty: 1 }] },
    { name: 'again', check: () => [{ reason: 'ZULU', penalty: 1 }] }
  ]
  const j = judge(facts({ recordCount: 4, duplicateRecords: 1, flagged: new Map([['MIKE', 1], ['BRAVO', 1]]) }), MANIFEST, rules)
  assert.equal(j.reasons, ['ALPHA', 'BRAVO', 'MIKE', 'SOME_DUPLICATE_RECORDS', 'ZULU'])
  // 25 each for MIKE, BRAVO (1 of 4 records flagged) and the duplicates; 1 each for ZULU, ALPHA, ZULU
  assert.is(j.score, 100 - 25 - 25 - 25 - 3)
  assert.is(j.accept, true)
  const rejected = judge(facts({ invalidRecords: 2, recordCount: 101, duplicateRecords: 101 }), MANIFEST, builtinRules)
  assert.equal(rejected.reasons, [Reason.DUPLICATE_RECORDS, Reason.SCHEMA_INVALID, Reason.TOO_LARGE])
  assert.is(rejected.accept, false)
})

test.run()
