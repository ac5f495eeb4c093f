import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { buildSuffixArray, patternRange } from '../../src/attribution/suffix-array.ts'
import { isSuffixArray } from '../../src/attribution/segment-codec.ts'
import { prng, randomInt } from '../fixtures/attribution/prng.ts'

/** Reference: sort all suffixes by direct comparison (the sentinel 0 is unique, so comparisons end). */
function naiveSuffixArray (text: Int32Array): Int32Array {
  const order = Array.from(text, (_, i) => i)
  order.sort((a, b) => {
    for (let i = a, j = b; ; i++, j++) {
      const d = (text[i] as number) - (text[j] as number)
      if (d !== 0) return d
    }
  })
  return Int32Array.from(order)
}

/** A text of length n ≥ 1: body symbols in [1, k), then the sentinel. */
function withSentinel (body: number[]): Int32Array {
  return Int32Array.from([...body, 0])
}

function check (text: Int32Array, k: number, label: string): void {
  const copy = text.slice()
  const sa = buildSuffixArray(text, k)
  assert.equal(Array.from(sa), Array.from(naiveSuffixArray(copy)), label)
  assert.equal(Array.from(text), Array.from(copy), `${label}: the text is given back unchanged`)
  assert.ok(isSuffixArray(text, sa), `${label}: passes the linear-time check`)
}

test('SA-IS equals the naive sort on 600 random texts (lengths 1..300, alphabets 2..1000)', () => {
  const r = prng(20240601)
  for (let it = 0; it < 600; it++) {
    const n = randomInt(r, 300)
    const k = 2 + randomInt(r, it % 3 === 0 ? 3 : it % 3 === 1 ? 20 : 1000)
    const body = Array.from({ length: n }, () => 1 + randomInt(r, k - 1))
    check(withSentinel(body), k, `random #${it} n=${n} k=${k}`)
  }
})

test('SA-IS equals the naive sort on repetitive texts: runs, periods, Fibonacci words, separators', () => {
  const r = prng(7)
  const cases: Array<[string, number[], number]> = []
  for (let n = 0; n <= 70; n++) cases.push([`run of ${n}`, new Array<number>(n).fill(5), 6])
  for (let p = 1; p <= 9; p++) {
    const period = Array.from({ length: p }, () => 1 + randomInt(r, 4))
    for (const n of [p, 3 * p + 1, 97, 256]) cases.push([`period ${p} length ${n}`, Array.from({ length: n }, (_, i) => period[i % p] as number), 5])
  }
  // Fibonacci words over {2, 3}: maximally repetitive, deep recursion.
  let a = [2]
  let b = [2, 3]
  for (let i = 0; i < 12; i++) {
    cases.push([`fibonacci ${b.length}`, b, 4])
    ;[a, b] = [b, [...b, ...a]]
  }
  // Records with separators (SEP = 1) and repeated records, as the index builds them.
  for (let it = 0; it < 100; it++) {
    const body: number[] = []
    const records = Array.from({ length: 1 + randomInt(r, 4) }, () => Array.from({ length: randomInt(r, 12) }, () => 2 + randomInt(r, 3)))
    for (let j = 0; j < 1 + randomInt(r, 10); j++) body.push(...(records[randomInt(r, records.length)] as number[]), 1)
    cases.push([`records #${it}`, body, 5])
  }
  for (const [label, body, k] of cases) check(withSentinel(body), k, label)
})

test('SA-IS equals the naive sort on word-like texts: Zipf-distributed large alphabet with repeated phrases', () => {
  const r = prng(12)
  const k = 5000
  for (let it = 0; it < 40; it++) {
    const phrases = Array.from({ length: 5 }, () => Array.from({ length: 3 + randomInt(r, 30) }, () => 2 + randomInt(r, 50)))
    const body: number[] = []
    const n = 200 + randomInt(r, 3000)
    while (body.length < n) {
      const x = r()
      if (x < 0.05) body.push(...(phrases[randomInt(r, phrases.length)] as number[]))
      else if (x < 0.07) body.push(1)
      else body.push(2 + Math.floor((k - 3) * r() ** 4))
    }
    check(withSentinel(body), k, `word-like #${it} n=${body.length}`)
  }
})

test('SA-IS on the largest alphabet the index uses, and big random texts, passes the linear-time check', () => {
  const r = prng(99)
  const k = 100258
  for (const n of [1000, 50_000]) {
    const text = withSentinel(Array.from({ length: n }, () => 1 + randomInt(r, k - 1)))
    const sa = buildSuffixArray(text, k)
    assert.ok(isSuffixArray(text, sa), `n=${n}`)
    if (n === 1000) assert.equal(Array.from(sa), Array.from(naiveSuffixArray(text)))
  }
})

test('isSuffixArray rejects a swapped pair, a repeated entry and a wrong length', () => {
  const text = withSentinel([3, 1, 2, 3, 3, 1, 2, 2])
  const sa = buildSuffixArray(text, 4)
  assert.ok(isSuffixArray(text, sa))
  for (let i = 0; i + 1 < sa.length; i++) {
    const swapped = sa.slice()
    ;[swapped[i], swapped[i + 1]] = [swapped[i + 1] as number, swapped[i] as number]
    assert.not.ok(isSuffixArray(text, swapped), `swap at ${i}`)
  }
  const repeated = sa.slice()
  repeated[3] = repeated[4] as number
  assert.not.ok(isSuffixArray(text, repeated))
  assert.not.ok(isSuffixArray(text, sa.subarray(1)))
})

test('buildSuffixArray refuses a text without a unique final sentinel or with symbols out of range', () => {
  assert.throws(() => buildSuffixArray(Int32Array.from([2, 3]), 4), /sentinel/)
  assert.throws(() => buildSuffixArray(Int32Array.from([2, 0, 3, 0]), 4), /outside/)
  assert.throws(() => buildSuffixArray(Int32Array.from([2, 9, 0]), 4), /outside/)
  assert.throws(() => buildSuffixArray(new Int32Array(0), 4), /sentinel/)
})

test('patternRange finds exactly the occurrences a linear scan finds', () => {
  const r = prng(31337)
  for (let it = 0; it < 200; it++) {
    const body = Array.from({ length: 1 + randomInt(r, 200) }, () => 1 + randomInt(r, 3))
    const text = withSentinel(body)
    const sa = buildSuffixArray(text, 4)
    const start = randomInt(r, body.length)
    const len = 1 + randomInt(r, 6)
    const pattern = it % 4 === 0
      ? Array.from({ length: len }, () => 1 + randomInt(r, 3))
      : body.slice(start, start + len)
    const expected: number[] = []
    for (let p = 0; p + pattern.length <= body.length; p++) {
      if (pattern.every((c, j) => body[p + j] === c)) expected.push(p)
    }
    const { lo, hi } = patternRange(text, sa, pattern)
    assert.equal(Array.from(sa.subarray(lo, hi)).sort((a, b) => a - b), expected, `pattern ${pattern.join(',')} in ${body.join('')}`)
  }
})

test.run()
