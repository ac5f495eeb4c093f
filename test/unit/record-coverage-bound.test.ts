import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { CorpusIndex, type IndexRecord } from '../../src/attribution/corpus-index.ts'
import { validateAttributionParams } from '../../src/attribution/params.ts'
import { recordCoverageAtLeast, recordCoverageBps } from '../../src/attribution/record-coverage.ts'
import { corpus, segmentsOf, VOCAB } from '../fixtures/attribution/corpus.ts'
import { prng, randomInt } from '../fixtures/attribution/prng.ts'

// The near-duplicate check answers "coverage ≥ threshold" from a bound on windows first
// and runs the span search only when the bound allows it (issue 14: the span search was a
// sixth of a validator's CPU under load). The answer must be the exact one, always.

/** Records that are, or are not, near-duplicates of indexed ones: edits of every kind. */
function probes (records: readonly IndexRecord[], r: () => number, minSpan: number): string[] {
  const out: string[] = []
  const pick = (): string[] => (records[randomInt(r, records.length)] as IndexRecord).text.split(' ')
  for (let i = 0; i < 40; i++) {
    const words = pick()
    switch (randomInt(r, 9)) {
      case 0: out.push(words.join(' ')); break
      case 1: out.push(words.map(w => randomInt(r, 1 + randomInt(r, 30)) === 0 ? 'pivot' : w).join(' ')); break
      case 2: out.push([...words, ...Array.from({ length: 1 + randomInt(r, 8) }, () => 'tail')].join(' ')); break
      case 3: out.push([...Array.from({ length: 1 + randomInt(r, 8) }, () => VOCAB[randomInt(r, VOCAB.length)] as string), ...words].join(' ')); break
      case 4: out.push([...words.slice(0, words.length >> 1), ...pick()].join(' ')); break
      case 5: out.push(words.filter(() => randomInt(r, 12) !== 0).join(' ')); break
      case 6:
      case 7: {
        // runs of about minSpan words (~1 token each) copied between fresh words: spans at
        // the bound's edge, coverage near the thresholds
        const k = minSpan - 1 + randomInt(r, 4)
        const phase = randomInt(r, k + 1)
        out.push([...words, ...pick()].map((w, j) => (j + phase) % (k + 1) === k ? 'pivot' : w).join(' '))
        break
      }
      default: out.push(Array.from({ length: 5 + randomInt(r, 60) }, () => VOCAB[randomInt(r, VOCAB.length)] as string).join(' '))
    }
  }
  return out
}

const THRESHOLDS = [1, 2500, 5000, 7500, 9000, 9500, 9999, 10_000]

test('recordCoverageAtLeast answers as recordCoverageBps ≥ threshold: seeded corpora, edited records, every threshold, several minSpans', () => {
  let covered = 0
  let notCovered = 0
  for (let seed = 1; seed <= 40; seed++) {
    const { records, r } = corpus(seed, 20 + randomInt(prng(seed + 100), 80))
    const index = CorpusIndex.fromSegments(segmentsOf(records, r, 1 + randomInt(r, 8)))
    const params = validateAttributionParams({ minSpan: [2, 3, 6, 12, 13, 24][seed % 6] as number })
    for (const text of probes(records, r, params.minSpan)) {
      const bps = recordCoverageBps(index, text, params)
      for (const t of THRESHOLDS) {
        const fast = recordCoverageAtLeast(index, text, params, t)
        assert.is(fast, bps >= t, `seed ${seed}, minSpan ${params.minSpan}, threshold ${t}, coverage ${bps}: ${text}`)
        if (fast) covered++; else notCovered++
      }
    }
  }
  // both answers occur often, or the property says little
  assert.ok(covered > 2000 && notCovered > 2000, `${covered} covered, ${notCovered} not`)
})

test('recordCoverageAtLeast: an empty index covers nothing, a zero threshold is always met, minSpan 1 has no bound and answers exactly', () => {
  const params = validateAttributionParams()
  assert.is(recordCoverageAtLeast(CorpusIndex.empty(), 'river stone market', params, 9000), false)
  assert.is(recordCoverageAtLeast(CorpusIndex.empty(), 'river stone market', params, 0), true)
  const { records } = corpus(7, 30)
  const index = CorpusIndex.fromRecords(records)
  const one = validateAttributionParams({ minSpan: 1 })
  for (const rec of records) assert.is(recordCoverageAtLeast(index, rec.text, one, 9000), recordCoverageBps(index, rec.text, one) >= 9000)
})

test.run()
