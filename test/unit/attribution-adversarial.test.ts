import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { CorpusIndex, type IndexRecord } from '../../src/attribution/corpus-index.ts'
import { attribute, type AttributionResult } from '../../src/attribution/index.ts'
import { validateAttributionParams } from '../../src/attribution/params.ts'
import { normalizeText } from '../../src/attribution/normalize.ts'
import { promptWindowHashes } from '../../src/attribution/prompt-echo.ts'
import { tokenize } from '../../src/attribution/tokenizer.ts'
import { prng, randomInt } from '../fixtures/attribution/prng.ts'

const CORPUS = (JSON.parse(readFileSync(join(import.meta.dirname, '../fixtures/attribution/corpus.json'), 'utf8')) as { records: IndexRecord[] }).records
const params = validateAttributionParams()
const FEE = 10n ** 18n
const DATA_POOL = '600000000000000000'
const addr = (i: number): string => '0x' + i.toString(16).padStart(40, '0')

const BOILERPLATE = 'This entry was contributed to the community dataset under the terms of the open licence, and anyone may reuse it for any purpose with attribution.'
const UNIQUE = 'The cartographer walked every footpath of the parish with a measuring wheel and a compass, and drew the first honest map of the marshes.'

function checkMoney (result: AttributionResult): void {
  const paid = result.contributors.reduce((a, c) => a + BigInt(c.amount), 0n)
  assert.is(paid.toString(), result.paid)
  assert.is((paid + BigInt(result.basePool)).toString(), result.dataPool, 'contributors + base pool = data pool')
  assert.ok(paid <= BigInt(result.dataPool))
}

test('an output made of a phrase found in more than D_MAX records earns nothing', () => {
  // 20 records (20 contributors) end with the same licence boilerplate.
  const records: IndexRecord[] = CORPUS.slice(0, 20).map((r, i) => ({ ...r, contributor: addr(100 + i), text: `${r.text} ${BOILERPLATE}` }))
  const index = CorpusIndex.fromRecords(records)
  const result = attribute(index, `Note: ${BOILERPLATE}`, null, FEE, params)
  assert.ok(result.spans.length > 0 && result.spans.every(s => s.common), 'the boilerplate span is found and is common')
  assert.equal(result.contributors, [])
  assert.is(result.basePool, DATA_POOL)
  checkMoney(result)
  // The same boilerplate in 16 records is not yet common: it pays, split 16 ways.
  const sixteen = CorpusIndex.fromRecords(records.slice(0, 16))
  const paid = attribute(sixteen, `Note: ${BOILERPLATE}`, null, FEE, params)
  assert.is(paid.contributors.length, 16)
  checkMoney(paid)
})

test('a record repeated by many contributors splits its credit; beyond D_MAX copies it earns nothing', () => {
  const copies = (k: number): CorpusIndex => CorpusIndex.fromRecords([
    ...CORPUS.slice(0, 5),
    ...Array.from({ length: k }, (_, i) => ({ recordIndex: 100 + i, contributor: addr(500 + i), text: UNIQUE }))
  ])
  const output = `Here is a story. ${UNIQUE}`
  const one = attribute(copies(1), output, null, FEE, params)
  assert.is(one.contributors.length, 1)
  const units = one.records[0]?.units as number
  for (const k of [2, 3, 7, 16]) {
    const result = attribute(copies(k), output, null, FEE, params)
    assert.is(result.contributors.length, k)
    // The copies raise the unigram counts, so the span weighs no more than with one copy.
    const spanUnits = result.spans.reduce((a, s) => a + s.units, 0)
    assert.ok(spanUnits <= units, 'splitting adds no units')
    assert.is(result.records.map(r => r.units).reduce((a, b) => a + b, 0), spanUnits)
    const each = Math.floor(spanUnits / k)
    assert.equal(result.records.map(r => r.units), [each + (spanUnits - each * k), ...new Array<number>(k - 1).fill(each)], 'equal split, remainder to the smallest recordIndex')
    // Together the copies get no more than one copy would before the per-record cap. (The
    // cap itself is per record, so exact copies each have their own: ingestion dedupe,
    // not attribution, is what refuses them — ATTRIBUTION.md §5.)
    assert.ok(BigInt(result.paid) <= BigInt(one.attributed), `k=${k}: sybils together get no more than one uncapped copy`)
    checkMoney(result)
  }
  const seventeen = attribute(copies(17), output, null, FEE, params)
  assert.equal(seventeen.contributors, [])
  assert.is(seventeen.basePool, DATA_POOL)
})

test('prompt echo earns nothing: the output repeats text pasted in the prompt', () => {
  const index = CorpusIndex.fromRecords(CORPUS)
  const record = CORPUS[8] as IndexRecord
  const output = `Sure. ${record.text}`
  const free = attribute(index, output, 'Please summarise.', FEE, params)
  assert.ok(free.contributors.length > 0, 'without the echo the copy pays')
  const echoed = attribute(index, output, `Repeat after me: ${record.text}`, FEE, params)
  assert.equal(echoed.contributors, [])
  assert.is(echoed.basePool, DATA_POOL)
  // The same through the window hashes an event carries instead of the prompt.
  const windowHashes = promptWindowHashes(tokenize(normalizeText(`Repeat after me: ${record.text}`)), params.minSpan)
  assert.equal(attribute(index, output, { windowHashes }, FEE, params), echoed)
  // Echoing only the first half leaves the second half paying (less than the whole).
  const half = record.text.split(' ').slice(0, 12).join(' ')
  const partly = attribute(index, output, half, FEE, params)
  assert.ok(partly.contributors.length === 1 && BigInt(partly.attributed) < BigInt(free.attributed) && BigInt(partly.attributed) > 0n)
})

test('short common phrases (< MIN_SPAN tokens) earn nothing even when rare', () => {
  const index = CorpusIndex.fromRecords(CORPUS)
  const result = attribute(index, 'I think the night train to the mountains leaves at eleven.', null, FEE, params)
  assert.equal(result.contributors, [])
})

test('fuzz: on random outputs amounts never exceed the data pool and add up exactly', () => {
  const index = CorpusIndex.fromRecords(CORPUS)
  const r = prng(2024)
  const words = CORPUS.flatMap(rec => rec.text.split(' '))
  for (let it = 0; it < 60; it++) {
    const parts: string[] = []
    for (let p = 0; p < 6; p++) {
      if (randomInt(r, 2) === 0) {
        const rec = (CORPUS[randomInt(r, CORPUS.length)] as IndexRecord).text.split(' ')
        const from = randomInt(r, rec.length)
        parts.push(rec.slice(from, from + randomInt(r, 30)).join(' '))
      } else {
        parts.push(Array.from({ length: randomInt(r, 10) }, () => words[randomInt(r, words.length)]).join(' '))
      }
    }
    const fee = BigInt(randomInt(r, 2 ** 40)) * 10n ** BigInt(randomInt(r, 12))
    const p = validateAttributionParams({ minSpan: 4 + randomInt(r, 10), recordCapBps: randomInt(r, 10_001), dataBps: randomInt(r, 10_001) })
    const result = attribute(index, parts.join(' '), randomInt(r, 3) === 0 ? parts[0] : undefined, fee, p)
    checkMoney(result)
    assert.is(BigInt(result.dataPool), fee * BigInt(p.dataBps) / 10_000n)
    for (const rec of result.records) assert.ok(BigInt(rec.amount) <= BigInt(result.dataPool) * BigInt(p.recordCapBps) / 10_000n)
    assert.ok(result.coverage.num <= result.coverage.den)
  }
})

test('bad inputs are refused with ATTRIBUTION_ERROR_BAD_INPUT', () => {
  const index = CorpusIndex.fromRecords(CORPUS.slice(0, 3))
  const code = (fn: () => unknown): string | undefined => {
    try {
      fn()
    } catch (err) {
      return (err as { code?: string }).code
    }
    return undefined
  }
  assert.is(code(() => attribute(index, 'x', null, '-5', params)), 'ATTRIBUTION_ERROR_BAD_INPUT')
  assert.is(code(() => attribute(index, 'x', null, '1e18', params)), 'ATTRIBUTION_ERROR_BAD_INPUT')
  assert.is(code(() => attribute(index, 'x', null, -1n, params)), 'ATTRIBUTION_ERROR_BAD_INPUT')
  assert.is(code(() => attribute(index, 'x', null, 1n, params, { eventId: '0x12' })), 'ATTRIBUTION_ERROR_BAD_INPUT')
  assert.is(code(() => attribute(index, 'x', { windowHashes: ['zz'] }, 1n, params)), 'ATTRIBUTION_ERROR_BAD_INPUT')
  assert.is(code(() => attribute(index, 'x', null, 1n, { ...params, minSpan: 0 })), 'ATTRIBUTION_ERROR_BAD_PARAMS', 'parameters are checked')
  assert.equal(attribute(index, CORPUS[1]?.text as string, null, FEE, { ...params }), attribute(index, CORPUS[1]?.text as string, null, FEE, params), 'a plain copy of valid parameters works the same')
  assert.is(attribute(index, '', null, 1n, params).basePool, '0')
  assert.is(attribute(CorpusIndex.empty(), 'anything at all', null, FEE, params).basePool, DATA_POOL)
})

test.run()
