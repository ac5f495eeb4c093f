import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { CorpusIndex, attribute, validateAttributionParams } from '../../src/attribution/index.ts'
import { eventShares } from '../../src/attribution/settlement.ts'
import { contentWeights } from '../../src/attribution/content-weight.ts'

const OPERATOR = '0x' + '0a'.repeat(20)
const OTHER = '0x' + '0b'.repeat(20)
const params = validateAttributionParams({ minSpan: 8 })
const texts = [
  'The lighthouse keeper climbed the spiral stairs every evening to light the lamp before the fishing boats came home.',
  'Honeybees tell their sisters where the flowers are by dancing a figure eight whose angle points toward the sun.',
  'A potter centres the clay on the wheel by leaning into it with both hands until the spinning lump stops wobbling.'
]

const sum = (xs: Array<{ amount: bigint }>): bigint => xs.reduce((a, x) => a + x.amount, 0n)

test('an operator paying for events on its own records gets back less than it paid', () => {
  // the operator holds every record: spans and the whole base pool come back to it
  const index = CorpusIndex.fromRecords(texts.map((text, i) => ({ recordIndex: i, contributor: OPERATOR, text })))
  for (const fee of [1n, 999n, 10n ** 16n, 10n ** 18n + 7n]) {
    for (const output of [texts[0] as string, `${texts[1] as string} ${texts[2] as string}`, 'nothing of the dataset at all']) {
      const result = attribute(index, output, null, fee, params)
      const shares = eventShares(result, contentWeights(index.segments, params.maxRecordTokens))
      const back = sum(shares)
      assert.ok(back <= BigInt(result.dataPool), 'never more than the data pool')
      assert.ok(back < fee || fee === 0n, `paid ${fee}, received ${back}`)
    }
  }
})

test('the base pool is shared by content weight, floor, and never overpays', () => {
  const result = { contributors: [{ address: OTHER, amount: '10' }], basePool: '100' }
  const shares = eventShares(result, new Map([[OPERATOR, 2n], [OTHER, 1n]]))
  assert.equal(shares.map(s => [s.address, s.amount]), [[OPERATOR, 66n], [OTHER, 10n + 33n]])
  assert.ok(sum(shares) <= 110n)
  assert.equal(eventShares({ contributors: [], basePool: '5' }, new Map()), [], 'no records: the base pool stays unattributed')
})

// 100 words of ordinary prose (the attack: the same words as 100 one-word records)
const WORDS = ('on a cold morning the baker opened the shop early and the smell of bread filled the street ' +
  'the old mill stood by the river where the farmers brought their grain every autumn and the miller kept a careful record of each sack in a book ' +
  'that his family had used for three generations while children played on the bank and watched the wheel turn slowly under the weight of the water that ' +
  'came down from the hills after the rain and the whole village gathered there at harvest time to share bread and stories until the lamps were lit ' +
  'and the last cart rolled home along the lane beside the dark and quiet fields').split(' ').slice(0, 100)

const baseShares = (records: Array<{ contributor: string, text: string }>): Map<string, bigint> => {
  const index = CorpusIndex.fromRecords(records.map((r, i) => ({ recordIndex: i, ...r })))
  // an event that matches nothing: the whole data pool is the base pool
  const shares = eventShares({ contributors: [], basePool: '1000000000000000000' }, contentWeights(index.segments, params.maxRecordTokens))
  return new Map(shares.map(s => [s.address, s.amount]))
}

test('record farming: 100 one-word records earn what one 100-word record earns (within 1%)', () => {
  assert.is(WORDS.length, 100)
  const shares = baseShares([{ contributor: OPERATOR, text: WORDS.join(' ') }, ...WORDS.map(w => ({ contributor: OTHER, text: w }))])
  const honest = shares.get(OPERATOR) ?? 0n
  const farmer = shares.get(OTHER) ?? 0n
  const diff = honest > farmer ? honest - farmer : farmer - honest
  assert.ok(diff * 100n <= honest, `honest ${honest}, farmer ${farmer}`)
})

test('record farming: padding records with whitespace or splitting them further gains nothing', () => {
  const plain = baseShares([{ contributor: OPERATOR, text: WORDS.join(' ') }, { contributor: OTHER, text: WORDS.slice(0, 50).join(' ') }]).get(OTHER) ?? 0n
  const padded = baseShares([{ contributor: OPERATOR, text: WORDS.join(' ') }, ...WORDS.slice(0, 50).map(w => ({ contributor: OTHER, text: `   ${w} \n\t  ` }))]).get(OTHER) ?? 0n
  assert.ok(padded * 100n <= plain * 101n, `padded ${padded} vs plain ${plain}`)
})

test('content weight: a record counts at most maxRecordTokens', () => {
  const capped = validateAttributionParams({ maxRecordTokens: 10 })
  const index = CorpusIndex.fromRecords([{ recordIndex: 0, contributor: OPERATOR, text: WORDS.join(' ') }, { recordIndex: 1, contributor: OTHER, text: 'three short words' }])
  const w = contentWeights(index.segments, capped.maxRecordTokens)
  assert.is(w.get(OPERATOR), 10n)
  assert.is(w.get(OTHER), 3n)
})

test('shares are sorted by address and lowercase, zero shares dropped', () => {
  const shares = eventShares({ contributors: [{ address: OTHER.toUpperCase().replace('0X', '0x'), amount: '3' }, { address: OPERATOR, amount: '0' }], basePool: '0' }, new Map())
  assert.equal(shares, [{ address: OTHER, amount: 3n }])
})

test.run()
