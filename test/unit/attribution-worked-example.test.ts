/**
 * ATTRIBUTION.md §3, reproduced through the whole pipeline (index, spans, weights,
 * coverage, shares), with a token-level corpus built so the weights come out as the
 * example states them:
 *
 *   T_total = 2^17 = 131,072 record tokens.
 *   F: 511 occurrences → floor(T/512) = 256 → w = 2048     (229 output tokens)
 *   H: 255 occurrences → floor(T/256) = 512 → w = 2304     (107 output tokens)
 *   a: 255 occurrences → 512 → w = 2304                    (span A: 20 tokens, only in record #17)
 *   b: 680 occurrences → floor(T/681) = 192 → w = 1920     (span B: 14 tokens, in #40, #41, #52)
 *   g: 8191 occurrences → floor(T/8192) = 16 → w = 1024    (span C: 30 tokens, in 212 records → common)
 *
 *   Σw(output) = 229·2048 + 107·2304 + 20·2304 + 14·1920 + 30·1024 = 819,200 = 400·2048.
 *
 * Outside the spans every output token occurs in the corpus only between padding
 * tokens P, so nothing else matches two tokens in a row.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { CorpusIndex, SYMBOL_OFFSET, buildSegmentFromTokens, type TokenizedRecord } from '../../src/attribution/corpus-index.ts'
import { attributeTokens } from '../../src/attribution/index.ts'
import { validateAttributionParams } from '../../src/attribution/params.ts'
import { isWordStartToken, tokenize } from '../../src/attribution/tokenizer.ts'
import { tokenWeight } from '../../src/attribution/weights.ts'

function token (word: string): number {
  const ids = tokenize(word)
  assert.is(ids.length, 1, `${JSON.stringify(word)} is one token`)
  assert.ok(isWordStartToken(ids[0] as number), `${JSON.stringify(word)} starts a word`)
  return ids[0] as number
}

const F = token(' apple')
const H = token(' cherry')
const A = token(' banana')
const B = token(' grape')
const G = token(' lemon')
const P = token(' orange')

const addr = (c: string): string => '0x' + c.repeat(40)
const AAA = addr('a')
const BBB = addr('b')
const CCC = addr('c')
const DDD = addr('d')
const PAD = addr('e')

const T_TOTAL = 1 << 17
const run = (t: number, n: number): number[] => new Array<number>(n).fill(t)

function corpus (): TokenizedRecord[] {
  const records: TokenizedRecord[] = []
  // Padding record #0: each output token alone between P's, up to its count, then P's to T_TOTAL.
  const isolated: Array<[number, number]> = [[F, 511], [H, 255], [A, 255 - 20], [B, 680 - 3 * 14], [G, 8191 - 212 * 30]]
  const padding: number[] = []
  for (const [t, n] of isolated) for (let i = 0; i < n; i++) padding.push(t, P)
  records.push({ recordIndex: 0, contributor: PAD, tokens: padding })
  records.push({ recordIndex: 17, contributor: AAA, tokens: run(A, 20) })
  records.push({ recordIndex: 40, contributor: BBB, tokens: run(B, 14) })
  records.push({ recordIndex: 41, contributor: CCC, tokens: run(B, 14) })
  records.push({ recordIndex: 52, contributor: BBB, tokens: run(B, 14) })
  for (let i = 0; i < 212; i++) records.push({ recordIndex: 100 + i, contributor: DDD, tokens: run(G, 30) })
  const used = records.reduce((n, r) => n + r.tokens.length, 0)
  padding.push(...run(P, T_TOTAL - used))
  return records
}

const OUTPUT = [
  ...run(F, 40), ...run(A, 20), ...run(F, 40), ...run(H, 50), ...run(B, 14),
  ...run(F, 40), ...run(G, 30), ...run(H, 57), ...run(F, 109)
]

test('the corpus has the counts the example needs, and the weights are 2048, 2304, 1920, 1024', () => {
  const index = CorpusIndex.empty().extend(buildSegmentFromTokens(corpus()))
  assert.is(index.totalTokens, T_TOTAL)
  assert.is(OUTPUT.length, 400)
  const expected: Array<[number, number, number]> = [[F, 511, 2048], [H, 255, 2304], [A, 255, 2304], [B, 680, 1920], [G, 8191, 1024]]
  for (const [t, count, w] of expected) {
    assert.is(index.unigramCount(t), count)
    assert.is(tokenWeight(count, T_TOTAL, 4096), w)
  }
  assert.ok(P + SYMBOL_OFFSET > 1)
})

test('ATTRIBUTION.md §3: fee 1 ETH → 0xaaa 33.75e15, 0xbbb 13.125e15, 0xccc 6.5625e15, base pool 546.5625e15 wei', () => {
  const index = CorpusIndex.empty().extend(buildSegmentFromTokens(corpus()))
  const params = validateAttributionParams()
  const result = attributeTokens(index, Uint32Array.from(OUTPUT), undefined, 10n ** 18n, params)

  assert.equal(result.spans.map(s => [s.start, s.end, s.count, s.records, s.common, s.units]), [
    [40, 60, 1, [17], false, 20 * 2304], // span A
    [150, 164, 3, [40, 41, 52], false, 14 * 1920], // span B
    [204, 234, 212, [], true, 0] // span C: 212 records > D_MAX = 16
  ])
  assert.equal(result.coverage, { num: 72_960, den: 819_200 })
  assert.is(result.dataPool, '600000000000000000')
  assert.is(result.attributed, '53437500000000000')
  assert.equal(result.records, [
    { recordIndex: 17, contributor: AAA, units: 46_080, amount: '33750000000000000' },
    { recordIndex: 40, contributor: BBB, units: 8_960, amount: '6562500000000000' },
    { recordIndex: 41, contributor: CCC, units: 8_960, amount: '6562500000000000' },
    { recordIndex: 52, contributor: BBB, units: 8_960, amount: '6562500000000000' }
  ])
  assert.equal(result.contributors, [
    { address: AAA, amount: '33750000000000000' },
    { address: BBB, amount: '13125000000000000' },
    { address: CCC, amount: '6562500000000000' }
  ])
  assert.is(result.paid, '53437500000000000', 'no dust here')
  assert.is(result.basePool, '546562500000000000')
})

test.run()
