import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { CorpusIndex, attribute, validateAttributionParams } from '../../src/attribution/index.ts'
import { eventShares } from '../../src/attribution/settlement.ts'

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
      const shares = eventShares(result, new Map([[OPERATOR, texts.length]]))
      const back = sum(shares)
      assert.ok(back <= BigInt(result.dataPool), 'never more than the data pool')
      assert.ok(back < fee || fee === 0n, `paid ${fee}, received ${back}`)
    }
  }
})

test('the base pool is shared by accepted records, floor, and never overpays', () => {
  const result = { contributors: [{ address: OTHER, amount: '10' }], basePool: '100' }
  const shares = eventShares(result, new Map([[OPERATOR, 2], [OTHER, 1]]))
  assert.equal(shares.map(s => [s.address, s.amount]), [[OPERATOR, 66n], [OTHER, 10n + 33n]])
  assert.ok(sum(shares) <= 110n)
  assert.equal(eventShares({ contributors: [], basePool: '5' }, new Map()), [], 'no records: the base pool stays unattributed')
})

test('shares are sorted by address and lowercase, zero shares dropped', () => {
  const shares = eventShares({ contributors: [{ address: OTHER.toUpperCase().replace('0X', '0x'), amount: '3' }, { address: OPERATOR, amount: '0' }], basePool: '0' }, new Map())
  assert.equal(shares, [{ address: OTHER, amount: 3n }])
})

test.run()
