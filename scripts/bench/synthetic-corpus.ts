/**
 * The attribution benchmarks' corpus: seeded word salad over ~20k cl100k word tokens
 * (" " + lowercase letters) with a Zipf law and some punctuation, 300 phrases of 20–40
 * tokens to repeat across records, and 1,000 contributor addresses.
 */
import { VOCAB_SIZE, decodeTokens, isWordStartToken, tokenize } from '../../src/attribution/tokenizer.ts'
import { randomInt } from '../../test/fixtures/attribution/prng.ts'

export interface SyntheticCorpus {
  /** Words of the vocabulary. */
  vocabulary: number
  salad: (n: number) => number[]
  phrases: number[][]
  contributors: string[]
}

export function syntheticCorpus (r: () => number): SyntheticCorpus {
  const words: number[] = []
  for (let id = 0; id < VOCAB_SIZE && words.length < 20_000; id++) {
    if (isWordStartToken(id) && /^ [a-z]{2,}$/.test(decodeTokens([id]))) words.push(id)
  }
  const punctuation = ['.', ',', ';'].map(p => tokenize(p)[0] as number)
  const zipf = new Float64Array(words.length)
  let acc = 0
  for (let i = 0; i < words.length; i++) {
    acc += 1 / (i + 1)
    zipf[i] = acc
  }
  const word = (): number => {
    if (randomInt(r, 12) === 0) return punctuation[randomInt(r, punctuation.length)] as number
    const x = r() * acc
    let lo = 0
    let hi = words.length - 1
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if ((zipf[mid] as number) < x) lo = mid + 1
      else hi = mid
    }
    return words[lo] as number
  }
  const salad = (n: number): number[] => Array.from({ length: n }, word)
  const phrases = Array.from({ length: 300 }, () => salad(20 + randomInt(r, 21)))
  const contributors = Array.from({ length: 1000 }, (_, i) => '0x' + (i + 1).toString(16).padStart(40, '0'))
  return { vocabulary: words.length, salad, phrases, contributors }
}

/** Wall and CPU seconds of `fn`. */
export function timed<T> (fn: () => T): { value: T, wall: number, cpu: number } {
  const c0 = process.cpuUsage()
  const t0 = performance.now()
  const value = fn()
  const wall = (performance.now() - t0) / 1000
  const c = process.cpuUsage(c0)
  return { value, wall, cpu: (c.user + c.system) / 1e6 }
}
