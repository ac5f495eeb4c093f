import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { encodeCbor } from '../../src/codec/cbor.ts'
import {
  MAX_NGRAM_ORDER, NgramErrorCode, decodeModel, encodeModel, generate, modelStats, tokenize, trainNgram, type NgramModel
} from '../../src/model/ngram.ts'
import { SplitMix32 } from '../../src/model/prng.ts'
import { checkPurity } from '../../scripts/check-purity.ts'

const CORPUS = [
  'The quick brown fox jumps over the lazy dog.',
  'A stitch in time saves nine, or so my grandmother used to say.',
  'Rivers of the northern valley freeze solid every January.',
  'The lazy dog sleeps under the old oak tree all afternoon.',
  'Every contributor keeps the right to be credited for their records.',
  'Honey never spoils if it is stored in a sealed jar.',
  'The old oak tree was planted by the first settlers in 1820.',
  'Lighthouse keepers once trimmed the lamp wicks twice each night.'
]

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

function throwsCode (fn: () => unknown, code: string, what = ''): void {
  try {
    fn()
  } catch (err) {
    assert.is((err as { code?: string }).code, code, `${what}: ${(err as Error).message}`)
    return
  }
  assert.unreachable(`${what}: expected ${code}`)
}

/** Word windows of `len` words of every record (the spans attribution would find). */
function spansOf (records: readonly string[], len: number): Set<string> {
  const out = new Set<string>()
  for (const r of records) {
    const w = tokenize(r)
    for (let i = 0; i + len <= w.length; i++) out.add(w.slice(i, i + len).join(' '))
  }
  return out
}

/** The longest run of output words that occurs verbatim in some record. */
function longestReusedSpan (output: string, records: readonly string[]): number {
  const words = tokenize(output)
  let best = 0
  for (let len = 1; len <= words.length; len++) {
    const spans = spansOf(records, len)
    let found = false
    for (let i = 0; i + len <= words.length && !found; i++) found = spans.has(words.slice(i, i + len).join(' '))
    if (!found) break
    best = len
  }
  return best
}

/** A synthetic corpus of `count` records from a seeded PRNG (so it is the same everywhere). */
function syntheticCorpus (count: number, seed: number): string[] {
  const rng = new SplitMix32(seed)
  const lexicon = Array.from({ length: 3000 }, (_, i) => `w${i.toString(36)}${'aeiou'[i % 5] as string}`)
  return Array.from({ length: count }, () => {
    const len = 8 + rng.below(25)
    const words: string[] = []
    for (let i = 0; i < len; i++) {
      // Zipf-ish: small ids far more often
      const a = rng.below(lexicon.length)
      words.push(lexicon[rng.below(a + 1)] as string)
    }
    return words.join(' ') + '.'
  })
}

test('tokenize: whitespace runs, punctuation attached, case kept, lone surrogates replaced', () => {
  assert.equal(tokenize('  Hello,\tworld!\n\nIt\u00a0is  fine. '), ['Hello,', 'world!', 'It', 'is', 'fine.'])
  assert.equal(tokenize(''), [])
  assert.equal(tokenize(' \u3000\u2028 '), [])
  assert.equal(tokenize('a\u200bb'), ['a\u200bb'], 'zero-width space is not whitespace')
  assert.equal(tokenize('x\ud800y'), ['x\ufffdy'])
})

test('SplitMix32: pinned sequence, seeds differ, below() in range and roughly uniform', () => {
  const r1 = new SplitMix32(42)
  const r2 = new SplitMix32(42)
  for (let i = 0; i < 100; i++) assert.is(r1.next(), r2.next())
  assert.is.not(new SplitMix32(1).next(), new SplitMix32(2).next())
  assert.is.not(new SplitMix32(5).next(), new SplitMix32(5 + 2 ** 32).next(), 'high bits of the seed count')
  assert.ok(Number.isInteger(new SplitMix32(-7).next()))
  const hist = [0, 0, 0, 0, 0, 0, 0]
  const g = new SplitMix32(7)
  for (let i = 0; i < 70_000; i++) {
    const b = g.below(7)
    hist[b] = (hist[b] as number) + 1
  }
  for (const h of hist) assert.ok(h > 9_000 && h < 11_000, String(hist))
  const big = 2 ** 40 + 3
  for (let i = 0; i < 1000; i++) {
    const x = g.below(big)
    assert.ok(Number.isSafeInteger(x) && x >= 0 && x < big)
  }
  assert.is(g.below(1), 0)
  assert.throws(() => g.below(0))
  assert.throws(() => new SplitMix32(0.5))
})

test('SplitMix32: known values (pinned: a change here changes every generated text)', () => {
  const r = new SplitMix32(0)
  assert.equal([r.next(), r.next(), r.next(), r.next()], PINNED_PRNG)
})

test('deterministic: same records (any order) → same bytes; pinned digest', () => {
  const a = encodeModel(trainNgram(CORPUS))
  const b = encodeModel(trainNgram([...CORPUS].reverse()))
  const c = encodeModel(trainNgram(new Set(CORPUS)))
  assert.equal(a, b)
  assert.equal(a, c)
  assert.is(sha(a), PINNED_MODEL_DIGEST)
})

test('deterministic generation: same (prompt, maxWords, seed) → same text; pinned output', () => {
  const m = trainNgram(CORPUS)
  for (const seed of [0, 1, 99, -5, 2 ** 40]) {
    for (const prompt of ['', 'The', 'the old', 'nothing like this']) {
      const x = generate(m, prompt, { maxWords: 30, seed })
      assert.is(generate(m, prompt, { maxWords: 30, seed }), x)
      assert.is(generate(decodeModel(encodeModel(m)), prompt, { maxWords: 30, seed }), x)
    }
  }
  assert.equal([0, 1, 2, 3].map(seed => generate(m, 'The', { maxWords: 20, seed })), PINNED_GENERATIONS)
})

test('encode/decode round-trip', () => {
  for (const n of [1, 2, 3, 4]) {
    const m = trainNgram(CORPUS, { n })
    const bytes = encodeModel(m)
    const back = decodeModel(bytes)
    assert.equal(encodeModel(back), bytes)
    assert.equal(back.vocab, m.vocab)
    assert.equal([...back.index], [...m.index])
    assert.equal(back.tables, m.tables)
    assert.equal(modelStats(back), modelStats(m))
  }
  const empty = trainNgram([])
  assert.equal(encodeModel(decodeModel(encodeModel(empty))), encodeModel(empty))
  assert.is(generate(empty, 'anything', { maxWords: 5, seed: 1 }), '')
})

test('modelStats', () => {
  const s = modelStats(trainNgram(CORPUS))
  const tokens = CORPUS.reduce((t, r) => t + tokenize(r).length, 0)
  assert.is(s.n, 3)
  assert.is(s.tokens, tokens)
  assert.is(s.records, CORPUS.length)
  assert.is(s.vocabularySize, new Set(CORPUS.flatMap(tokenize)).size)
  assert.is(s.contexts.length, 3)
  assert.is(s.contexts[0], 1)
  assert.is(s.ngrams[0], s.vocabularySize)
  assert.is(modelStats(trainNgram(CORPUS, { n: 1 })).records, null)
  assert.is(modelStats(trainNgram(['', '   ', 'one two'])).records, 1, 'empty records add nothing')
})

test('generation reproduces record phrases verbatim', () => {
  const m = trainNgram(CORPUS)
  // a prompt from inside one record continues that record to its end
  assert.is(generate(m, 'Honey never', { maxWords: 50, seed: 3 }), 'spoils if it is stored in a sealed jar.')
  assert.is(generate(m, 'Lighthouse keepers', { maxWords: 4, seed: 3 }), 'once trimmed the lamp')
  // from nothing, it starts like a record and reuses long spans, whatever the seed
  for (let seed = 0; seed < 20; seed++) {
    const out = generate(m, '', { maxWords: 40, seed })
    assert.ok(out.length > 0)
    assert.ok(longestReusedSpan(out, CORPUS) >= 4, out)
    assert.ok(CORPUS.some(r => r.startsWith(tokenize(out).slice(0, 2).join(' '))), `starts like a record: ${out}`)
  }
  // at a context two records share ("oak tree") it may switch records
  const switched = new Set(Array.from({ length: 20 }, (_, seed) => generate(m, 'sleeps under the', { maxWords: 40, seed })))
  assert.equal([...switched].sort(), ['old oak tree all afternoon.', 'old oak tree was planted by the first settlers in 1820.'])
})

test('greedy: the most frequent continuation, seed only for ties', () => {
  const m = trainNgram(['a b c', 'a b c', 'a b d', 'x y', 'x z'])
  for (let seed = 0; seed < 10; seed++) assert.is(generate(m, 'a b', { maxWords: 5, seed, strategy: 'greedy' }), 'c')
  const tie = new Set(Array.from({ length: 20 }, (_, seed) => generate(m, 'x', { maxWords: 5, seed, strategy: 'greedy' })))
  assert.equal([...tie].sort(), ['y', 'z'])
  // sampling follows counts: 'c' about twice as often as 'd'
  let c = 0
  for (let seed = 0; seed < 300; seed++) if (generate(m, 'a b', { maxWords: 1, seed }) === 'c') c++
  assert.ok(c > 160 && c < 240, String(c))
})

test('backoff: unseen context and unseen words still generate; maxWords bounds; end of record stops', () => {
  const m = trainNgram(CORPUS)
  const out = generate(m, 'zzz qqq completely unseen', { maxWords: 12, seed: 1 })
  assert.ok(tokenize(out).length >= 1 && tokenize(out).length <= 12, out)
  // bigram backoff: "old oak" never starts a record but follows "the"
  assert.ok(generate(m, 'my old', { maxWords: 2, seed: 0 }).startsWith('oak tree'))
  assert.is(generate(m, 'The', { maxWords: 0, seed: 0 }), '')
  assert.is(tokenize(generate(m, '', { maxWords: 3, seed: 0 })).length, 3)
  // the last word of a record ends the text when it is only ever last
  assert.is(generate(m, 'in a sealed jar.', { maxWords: 10, seed: 0 }), '')
})

test('options are validated with MODEL_ERROR_OPTIONS', () => {
  const m = trainNgram(CORPUS)
  throwsCode(() => trainNgram(CORPUS, { n: 0 }), NgramErrorCode.OPTIONS)
  throwsCode(() => trainNgram(CORPUS, { n: MAX_NGRAM_ORDER + 1 }), NgramErrorCode.OPTIONS)
  throwsCode(() => trainNgram(CORPUS, { n: 2.5 }), NgramErrorCode.OPTIONS)
  throwsCode(() => trainNgram([1 as unknown as string]), NgramErrorCode.OPTIONS)
  throwsCode(() => generate(m, 'x', { maxWords: -1, seed: 0 }), NgramErrorCode.OPTIONS)
  throwsCode(() => generate(m, 'x', { maxWords: 1.5, seed: 0 }), NgramErrorCode.OPTIONS)
  throwsCode(() => generate(m, 'x', { maxWords: 5, seed: 0.5 }), NgramErrorCode.OPTIONS)
  throwsCode(() => generate(m, 'x', { maxWords: 5, seed: 0, strategy: 'hot' as 'greedy' }), NgramErrorCode.OPTIONS)
})

test('decodeModel rejects garbage with MODEL_ERROR_MALFORMED', () => {
  const good = { format: 'datanet/ngram', v: 1, n: 2, vocab: ['a', 'b'], tables: [[2, 1, 2, 2, 1], [0, 1, 1, 1, 1, 1, 2, 1, 2, 1, 0, 1]] }
  // the well-formed base decodes; each variant breaks one rule
  decodeModel(encodeCbor(good))
  const variants: Array<[string, unknown]> = [
    ['wrong format', { ...good, format: 'other' }],
    ['wrong version', { ...good, v: 2 }],
    ['extra key', { ...good, extra: 1 }],
    ['n zero', { ...good, n: 0, tables: [] }],
    ['n too large', { ...good, n: 99 }],
    ['tables count', { ...good, tables: [good.tables[0]] }],
    ['vocab unsorted', { ...good, vocab: ['b', 'a'] }],
    ['vocab duplicate', { ...good, vocab: ['a', 'a'] }],
    ['vocab whitespace', { ...good, vocab: ['a', 'b c'] }],
    ['vocab empty word', { ...good, vocab: ['', 'a'] }],
    ['vocab number', { ...good, vocab: ['a', 7] }],
    ['id out of range', { ...good, tables: [[2, 1, 2, 3, 1], good.tables[1]] }],
    ['unigram boundary', { ...good, tables: [[2, 0, 2, 2, 1], good.tables[1]] }],
    ['zero count', { ...good, tables: [[2, 1, 2, 2, 0], good.tables[1]] }],
    ['walk order', { ...good, tables: [[2, 1, 1, 2, 2], good.tables[1]] }],
    ['tie order', { ...good, tables: [[2, 2, 1, 1, 1], good.tables[1]] }],
    ['repeated token', { ...good, tables: [[2, 1, 2, 1, 1], good.tables[1]] }],
    ['truncated', { ...good, tables: [[2, 1, 2, 2], good.tables[1]] }],
    ['no continuations', { ...good, tables: [good.tables[0], [0, 0]] }],
    ['contexts out of order', { ...good, tables: [good.tables[0], [1, 1, 2, 1, 0, 1, 1, 1]] }],
    ['negative', { ...good, tables: [[2, 1, 2, 2, -1], good.tables[1]] }],
    ['float', { ...good, tables: [[2, 1, 2, 2, 1.5], good.tables[1]] }],
    ['vocab not in unigrams', { ...good, vocab: ['a', 'b', 'c'] }],
    ['not a map', [1, 2, 3]]
  ]
  for (const [what, value] of variants) throwsCode(() => decodeModel(encodeCbor(value)), NgramErrorCode.MALFORMED, what)
  for (const bytes of [new Uint8Array(0), new Uint8Array([0xff, 0xfe, 0x00]), new TextEncoder().encode('{"format":"datanet/ngram"}')]) {
    throwsCode(() => decodeModel(bytes), NgramErrorCode.MALFORMED, 'bytes')
  }
  // every strict prefix of a real model is rejected
  const bytes = encodeModel(trainNgram(CORPUS))
  for (const cut of [1, 10, 100, bytes.length - 1]) throwsCode(() => decodeModel(bytes.slice(0, cut)), NgramErrorCode.MALFORMED, `prefix ${cut}`)
})

let big: NgramModel
test('10k records: trains, generates, round-trips', () => {
  const records = syntheticCorpus(10_000, 2024)
  big = trainNgram(records)
  const stats = modelStats(big)
  assert.is(stats.records, 10_000)
  assert.ok(stats.tokens > 100_000)
  // a record's opening words lead back into that record
  const record = tokenize(records[17] as string)
  const out = generate(big, record.slice(0, 3).join(' '), { maxWords: 40, seed: 9 })
  assert.ok(tokenize(out).length > 0)
  const fours = spansOf(records, 4)
  const words = [...record.slice(0, 3), ...tokenize(out)]
  assert.ok(words.some((_, i) => i + 4 <= words.length && fours.has(words.slice(i, i + 4).join(' '))), out)
  assert.is(generate(big, records[17] as string, { maxWords: 40, seed: 9 }), '', 'a whole record as prompt: its end follows')
  const fromStart = generate(big, '', { maxWords: 40, seed: 9 })
  assert.ok(tokenize(fromStart).length >= 3)
  const bytes = encodeModel(big)
  assert.equal(encodeModel(decodeModel(bytes)), bytes)
  assert.is(generate(decodeModel(bytes), '', { maxWords: 40, seed: 9 }), fromStart)
})

test('src/model is pure (same rule as scripts/check-purity.ts)', () => {
  assert.equal(checkPurity(join(import.meta.dirname, '..', '..'), ['src/model']), [])
})

// Pinned once from this implementation; they guard cross-run, cross-machine stability.
const PINNED_PRNG = [3553795876, 2060969114, 3789282531, 1263763164]
const PINNED_MODEL_DIGEST = 'd3e2f63c50eb23359ce782df7ad2c5c7bf81339352ba4cf1f8e388bf03f8da95'
const PINNED_GENERATIONS = [
  'old oak tree was planted by the first settlers in 1820.',
  'quick brown fox jumps over the lazy dog.',
  'old oak tree was planted by the first settlers in 1820.',
  'quick brown fox jumps over the lazy dog.'
]

test.run()
