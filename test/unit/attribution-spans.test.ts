import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { CorpusIndex, buildSegmentFromTokens, type TokenizedRecord } from '../../src/attribution/corpus-index.ts'
import { assignCoverage, recordUnits, spanUnits } from '../../src/attribution/coverage.ts'
import { validateAttributionParams, type AttributionParams } from '../../src/attribution/params.ts'
import { echoedTokens, promptWindowHashes, promptWindows, windowHash } from '../../src/attribution/prompt-echo.ts'
import { findSpans, type Span } from '../../src/attribution/spans.ts'
import { tokenize, wordStartFlags } from '../../src/attribution/tokenizer.ts'
import { prng, randomInt } from '../fixtures/attribution/prng.ts'

/** Three tokens that start words and two that continue them, so trimming matters. */
const WORDS = [' a', ' b', ' c', 'x', 'y'].map(w => tokenize(w)[0] as number)

/** The span definition of ATTRIBUTION.md §2, by brute force over the records. */
function referenceSpans (records: number[][], output: number[], params: AttributionParams): Span[] {
  const ws = wordStartFlags(output)
  const L = output.length
  const occurrences = (from: number, len: number): Array<[number, number]> => {
    const hits: Array<[number, number]> = []
    records.forEach((rec, r) => {
      for (let p = 0; p + len <= rec.length; p++) {
        let k = 0
        while (k < len && rec[p + k] === output[from + k]) k++
        if (k === len) hits.push([r, p])
      }
    })
    return hits
  }
  const spans: Span[] = []
  let lastR = 0
  for (let l = 0; l < L; l++) {
    if (ws[l] !== 1) continue
    const cap = Math.min(params.maxSpan, L - l)
    let m = 0
    while (m < cap && occurrences(l, m + 1).length > 0) m++
    while (m > 0 && l + m < L && ws[l + m] !== 1) m--
    // Maximality as the design states it: against the spans kept so far.
    if (m < params.minSpan || l + m <= lastR) continue
    lastR = l + m
    const hits = occurrences(l, m)
    const distinct = [...new Set(hits.map(([r]) => r))].sort((x, y) => x - y)
    const common = hits.length > params.cScan || distinct.length > params.dMax
    spans.push({ start: l, end: l + m, count: hits.length, records: common ? [] : distinct, common })
  }
  return spans
}

function randomTokens (r: () => number, n: number, alphabet: number): number[] {
  return Array.from({ length: n }, () => WORDS[randomInt(r, alphabet)] as number)
}

test('findSpans equals the brute-force definition on 300 random corpora and outputs, over 1–4 segments', () => {
  const r = prng(4242)
  for (let it = 0; it < 300; it++) {
    const alphabet = 2 + randomInt(r, 4)
    const records = Array.from({ length: 1 + randomInt(r, 12) }, () => randomTokens(r, randomInt(r, 40), alphabet))
    // Outputs copy pieces of records between random tokens.
    const output: number[] = []
    while (output.length < 60) {
      const rec = records[randomInt(r, records.length)] as number[]
      const from = randomInt(r, rec.length + 1)
      output.push(...rec.slice(from, from + randomInt(r, 20)), ...randomTokens(r, randomInt(r, 4), 5))
    }
    const params = validateAttributionParams({
      minSpan: 1 + randomInt(r, 6),
      maxSpan: 6 + randomInt(r, 20),
      cScan: 1 + randomInt(r, 12),
      dMax: 1 + randomInt(r, 5)
    })
    // Split the records into 1–4 segments.
    const cuts = [0, ...Array.from({ length: randomInt(r, 4) }, () => randomInt(r, records.length)).sort((x, y) => x - y), records.length]
    let index = CorpusIndex.empty()
    for (let c = 0; c + 1 < cuts.length; c++) {
      const part: TokenizedRecord[] = []
      for (let i = cuts[c] as number; i < (cuts[c + 1] as number); i++) part.push({ recordIndex: i, contributor: '0x' + '1'.repeat(40), tokens: records[i] as number[] })
      if (part.length > 0) index = index.extend(buildSegmentFromTokens(part, index.base))
    }
    const got = findSpans(index, output, wordStartFlags(output), params)
    assert.equal(got, referenceSpans(records, output, params), `case ${it}: ${index.segments.length} segment(s), ${JSON.stringify(params)}`)
  }
})

test('spans start at word starts and end at word boundaries; none is contained in another', () => {
  const r = prng(77)
  for (let it = 0; it < 50; it++) {
    const records = Array.from({ length: 6 }, () => randomTokens(r, 50, 5))
    const output = records.flatMap(rec => rec.slice(randomInt(r, 20), 20 + randomInt(r, 30)))
    const index = CorpusIndex.empty().extend(buildSegmentFromTokens(records.map((tokens, i) => ({ recordIndex: i, contributor: '0x' + '2'.repeat(40), tokens }))))
    const ws = wordStartFlags(output)
    const spans = findSpans(index, output, ws, validateAttributionParams({ minSpan: 3 }))
    for (const s of spans) {
      assert.is(ws[s.start], 1)
      assert.ok(s.end === output.length || ws[s.end] === 1)
      assert.ok(s.end - s.start >= 3)
    }
    for (let i = 1; i < spans.length; i++) {
      assert.ok((spans[i] as Span).start > (spans[i - 1] as Span).start)
      assert.ok((spans[i] as Span).end > (spans[i - 1] as Span).end, 'not contained in the previous span')
    }
  }
})

test('segments of ≥ 1M tokens answer through their lookup tables exactly as small segments do without them', () => {
  // Word-like ids: a skewed draw from 3000 word-start tokens, records of 50–300 tokens, repeated phrases.
  const r = prng(606)
  const vocabulary: number[] = []
  for (let id = 0; vocabulary.length < 3000; id++) if (wordStartFlags([0, id])[1] === 1) vocabulary.push(id)
  const draw = (): number => vocabulary[Math.floor(r() ** 3 * vocabulary.length)] as number
  const phrases = Array.from({ length: 20 }, () => Array.from({ length: 15 + randomInt(r, 20) }, draw))
  const records: TokenizedRecord[] = []
  let total = 0
  while (total < 1_100_000) {
    const tokens = Array.from({ length: 50 + randomInt(r, 250) }, draw)
    if (randomInt(r, 3) === 0) tokens.splice(randomInt(r, tokens.length), 0, ...(phrases[randomInt(r, phrases.length)] as number[]))
    records.push({ recordIndex: records.length, contributor: '0x' + '3'.repeat(40), tokens })
    total += tokens.length
  }
  const whole = CorpusIndex.empty().extend(buildSegmentFromTokens(records))
  assert.ok((whole.segments[0]?.tokens.length as number) >= 1 << 20, 'big enough for the lookup tables')
  let split = CorpusIndex.empty()
  for (let at = 0; at < records.length; at += 1500) split = split.extend(buildSegmentFromTokens(records.slice(at, at + 1500), split.base))
  assert.ok(split.segments.every(seg => seg.tokens.length < 1 << 20))
  const params = validateAttributionParams({ cScan: 200, dMax: 8 })
  let found = 0
  for (let it = 0; it < 40; it++) {
    const output: number[] = []
    while (output.length < 400) {
      const rec = (records[randomInt(r, records.length)] as TokenizedRecord).tokens as number[]
      const from = randomInt(r, rec.length)
      output.push(...rec.slice(from, from + randomInt(r, 60)), ...Array.from({ length: randomInt(r, 8) }, draw))
      if (randomInt(r, 5) === 0) output.push(...(phrases[randomInt(r, phrases.length)] as number[]))
    }
    const ws = wordStartFlags(output)
    const expected = findSpans(split, output, ws, params)
    assert.equal(findSpans(whole, output, ws, params), expected, `output ${it}`)
    found += expected.length
  }
  assert.ok(found > 100, `spans found: ${found}`)
})

const span = (start: number, end: number, records: number[], common = false): Span => ({ start, end, count: records.length, records, common })

test('coverage: a token goes to the longest covering span, ties to the smaller start; common spans take nothing', () => {
  const spans = [span(0, 5, [1]), span(3, 10, [2]), span(8, 13, [3]), span(9, 20, [4], true)]
  const owner = assignCoverage(spans, 20)
  // [3,10) is longest (7): tokens 3..9; [0,5) gets 0..2; [8,13) ties with [0,5) (5) and gets 10..12; common span nothing.
  assert.equal(Array.from(owner), [0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, -1, -1, -1, -1, -1, -1, -1])
  const tie = assignCoverage([span(0, 4, [1]), span(2, 6, [2])], 6)
  assert.equal(Array.from(tie), [0, 0, 0, 0, 1, 1], 'equal lengths: the smaller start wins the overlap')
  const echoed = Uint8Array.from([0, 1, 1, 0, 0, 0])
  assert.equal(Array.from(assignCoverage([span(0, 6, [1])], 6, echoed)), [0, -1, -1, 0, 0, 0], 'echoed tokens earn nothing')
})

test('units split equally over a span\'s records, the remainder to the smallest recordIndex', () => {
  const spans = [span(0, 3, [5, 9, 12]), span(3, 5, [9])]
  const owner = Int32Array.from([0, 0, 0, 1, 1])
  const weights = Uint32Array.from([100, 100, 101, 7, 8])
  const units = spanUnits(2, owner, weights)
  assert.equal(units, [301, 15])
  // 301 = 3·100 + 1 → #5 gets 101, #9 and #12 100 each; #9 also gets 15.
  assert.equal(recordUnits(spans, units), [{ recordIndex: 5, units: 101 }, { recordIndex: 9, units: 115 }, { recordIndex: 12, units: 100 }])
})

test('prompt windows: the hash is sha256 of u32le ids, 16 hex digits; echoed tokens are those in a shared window', () => {
  const ids = [1, 2, 3, 4, 5, 6, 7, 8]
  assert.match(windowHash(ids, 0, 3), /^[0-9a-f]{16}$/)
  assert.is.not(windowHash(ids, 0, 3), windowHash(ids, 1, 3))
  const prompt = [9, 9, 3, 4, 5, 9]
  const hashes = new Set(promptWindowHashes(prompt, 3))
  assert.is(hashes.size, 4)
  assert.equal(promptWindowHashes(prompt, 3), [...hashes].sort())
  // With the hashes only, and with the prompt's token set as well: the same answer.
  for (const windows of [{ hashes }, promptWindows(prompt, 3)]) {
    assert.equal(Array.from(echoedTokens(ids, windows, 3)), [0, 0, 1, 1, 1, 0, 0, 0])
    // Only windows touching a relevant token are looked at: the same answer there.
    assert.equal(Array.from(echoedTokens(ids, windows, 3, Uint8Array.from([0, 0, 0, 1, 0, 0, 0, 0]))).slice(3, 4), [1])
    assert.equal(Array.from(echoedTokens(ids, windows, 3, new Uint8Array(8))), [0, 0, 0, 0, 0, 0, 0, 0])
  }
  assert.equal(Array.from(echoedTokens(ids, { hashes: new Set() }, 3)), new Array(8).fill(0))
  // Random prompts and outputs over a small alphabet: the token-set shortcut never changes the answer.
  const r = prng(55)
  for (let it = 0; it < 300; it++) {
    const p = Array.from({ length: randomInt(r, 30) }, () => randomInt(r, 4))
    const o = Array.from({ length: randomInt(r, 30) }, () => randomInt(r, 5))
    const n = 1 + randomInt(r, 4)
    assert.equal(echoedTokens(o, promptWindows(p, n), n), echoedTokens(o, { hashes: new Set(promptWindowHashes(p, n)) }, n))
  }
})

test.run()
