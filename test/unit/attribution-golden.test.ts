import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { CorpusIndex, type IndexRecord } from '../../src/attribution/corpus-index.ts'
import { attribute, contentWeights } from '../../src/attribution/index.ts'
import { normalizeText } from '../../src/attribution/normalize.ts'
import { validateAttributionParams } from '../../src/attribution/params.ts'
import { encodeSegment, segmentDigest } from '../../src/attribution/segment-codec.ts'
import { TOKENIZATION_ID_HEX, specId } from '../../src/attribution/spec.ts'
import { tokenize, wordStartFlags } from '../../src/attribution/tokenizer.ts'

const dir = join(import.meta.dirname, '../fixtures/attribution')
const CORPUS = (JSON.parse(readFileSync(join(dir, 'corpus.json'), 'utf8')) as { records: IndexRecord[] }).records

interface GoldenSpan { start: number, end: number, text: string, count: number, records: number[], common: boolean, units: number }
interface Golden {
  specId: string
  params: Record<string, number>
  tokenizationId: string
  normalization: Array<{ input: string, output: string }>
  tokenization: Array<{ text: string, ids: number[], wordStarts: number[] }>
  index: { records: number, totalTokens: number, indexHash: string, segmentDigest: string }
  contentWeights: Record<string, string>
  events: Array<{
    name: string
    output: string
    prompt: string | null
    fee: string
    eventId?: string
    expected: {
      spans: GoldenSpan[]
      records: Array<{ recordIndex: number, contributor: string, units: number, amount: string }>
      contributors: Array<{ address: string, amount: string }>
      dataPool: string
      attributed: string
      paid: string
      basePool: string
      coverage: { num: number, den: number }
      resultHash: string
    }
  }>
}

const golden = JSON.parse(readFileSync(join(dir, 'golden.json'), 'utf8')) as Golden
const params = validateAttributionParams(golden.params)
const index = CorpusIndex.fromRecords(CORPUS)

test('golden: spec id, tokenization id, normalisation and tokenization vectors', () => {
  assert.is(specId(params), golden.specId)
  assert.is(TOKENIZATION_ID_HEX, golden.tokenizationId)
  for (const v of golden.normalization) assert.is(normalizeText(v.input), v.output)
  for (const v of golden.tokenization) {
    const ids = tokenize(normalizeText(v.text))
    assert.equal(Array.from(ids), v.ids, v.text)
    assert.equal(Array.from(wordStartFlags(ids)), v.wordStarts, v.text)
  }
})

test('golden: content weights (words per contributor), what each event\'s base pool is shared by', () => {
  const weights = contentWeights(index.segments, params.maxRecordTokens)
  assert.equal(Object.fromEntries([...weights].map(([a, w]) => [a, w.toString()])), golden.contentWeights)
  let words = 0
  for (const r of CORPUS) words += r.text.split(/\s+/).filter(w => w.length > 0).length
  const total = [...weights.values()].reduce((a, b) => a + b, 0n)
  // the words a reader counts, within a few (punctuation glued to a word is one word both ways)
  assert.ok(Math.abs(Number(total) - words) <= words / 50, `weights ${total} vs ${words} words`)
})

test('golden: index hash, token total and the digest of the one-segment bytes', () => {
  assert.is(index.recordCount, golden.index.records)
  assert.is(index.totalTokens, golden.index.totalTokens)
  assert.is(index.indexHash, golden.index.indexHash)
  assert.is(segmentDigest(encodeSegment(index.segments[0] as (typeof index.segments)[number])), golden.index.segmentDigest)
})

for (const event of golden.events) {
  test(`golden event: ${event.name}`, () => {
    const result = attribute(index, event.output, event.prompt, event.fee, params, event.eventId !== undefined ? { eventId: event.eventId } : {})
    const e = event.expected
    assert.equal(result.spans, e.spans)
    assert.equal(result.records, e.records)
    assert.equal(result.contributors, e.contributors)
    assert.is(result.dataPool, e.dataPool)
    assert.is(result.attributed, e.attributed)
    assert.is(result.paid, e.paid)
    assert.is(result.basePool, e.basePool)
    assert.equal(result.coverage, e.coverage)
    assert.is(result.resultHash, e.resultHash)
  })
}

/** Σ of independent weights: unigram counts by a plain scan of the tokenized corpus, log2 in q8 from binary digits. */
function independentUnits (text: string, span: GoldenSpan): number {
  const counts = new Map<number, number>()
  let total = 0
  for (const r of CORPUS) {
    for (const id of tokenize(normalizeText(r.text))) {
      counts.set(id, (counts.get(id) ?? 0) + 1)
      total++
    }
  }
  const ids = tokenize(normalizeText(text))
  let units = 0
  for (let t = span.start; t < span.end; t++) {
    const x = BigInt(total) / BigInt((counts.get(ids[t] as number) ?? 0) + 1)
    const bits = x.toString(2)
    const w = x === 0n ? 0 : 256 * (bits.length - 1) + parseInt((bits.slice(1) + '00000000').slice(0, 8), 2)
    units += Math.min(w, params.wCap)
  }
  return units
}

test('golden, checked independently: span units from a plain count; money from the formulas, in BigInt by hand', () => {
  let checked = 0
  for (const event of golden.events) {
    const e = event.expected
    const spans = e.spans.filter(s => !s.common && s.units > 0)
    // Where the credited spans do not overlap, each span's units are the weights of all its tokens.
    const disjoint = spans.every((s, i) => i === 0 || (spans[i - 1] as GoldenSpan).end <= s.start)
    if (disjoint) {
      for (const s of spans) assert.is(s.units, independentUnits(event.output, s), `${event.name}: ${s.text}`)
      checked += spans.length
    }
    const fee = BigInt(event.fee)
    const dataPool = fee * 6000n / 10000n
    const cap = dataPool * 2500n / 10000n
    assert.is(e.dataPool, dataPool.toString())
    const attributed = e.coverage.den === 0 ? 0n : dataPool * BigInt(e.coverage.num) / BigInt(e.coverage.den)
    assert.is(e.attributed, attributed.toString())
    let paid = 0n
    for (const r of e.records) {
      const share = attributed * BigInt(r.units) / BigInt(e.coverage.num)
      assert.is(r.amount, (share < cap ? share : cap).toString(), `${event.name}: record ${r.recordIndex}`)
      paid += BigInt(r.amount)
    }
    assert.is(e.paid, paid.toString())
    assert.is(e.basePool, (dataPool - paid).toString())
  }
  assert.ok(checked >= 8, `span units checked independently: ${checked}`)
})

test('golden: the proportional event (two passages under the cap), by hand', () => {
  const e = golden.events.find(x => x.name.startsWith('two short passages'))?.expected
  assert.ok(e)
  // dataPool 6e17; attributed = 6e17 · 58696 / 252618; #16: · 32636 / 58696; #25: · 26060 / 58696.
  assert.equal(e.coverage, { num: 58_696, den: 252_618 })
  assert.is(e.attributed, '139410493314015628')
  assert.equal(e.contributors, [
    { address: '0x1000000000000000000000000000000000000007', amount: '77514666413319715' },
    { address: '0x100000000000000000000000000000000000000f', amount: '61895826900695912' }
  ])
  assert.is(e.basePool, '460589506685984373', 'one wei of dust')
})

test.run()
