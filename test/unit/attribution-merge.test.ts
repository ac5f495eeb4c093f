import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { CorpusIndex, buildSegment, mergeSegments, type IndexRecord, type IndexSegment } from '../../src/attribution/corpus-index.ts'
import { contentWeights } from '../../src/attribution/content-weight.ts'
import { attribute } from '../../src/attribution/index.ts'
import { validateAttributionParams } from '../../src/attribution/params.ts'
import { recordCoverageBps } from '../../src/attribution/record-coverage.ts'
import { decodeSegment, encodeSegment } from '../../src/attribution/segment-codec.ts'
import { prng, randomInt } from '../fixtures/attribution/prng.ts'
import { corpus, segmentsOf } from '../fixtures/attribution/corpus.ts'

const params = validateAttributionParams()
/** Merges random runs of consecutive segments (through bytes half of the time). */
function mergeRuns (segments: readonly IndexSegment[], r: () => number): IndexSegment[] {
  const out: IndexSegment[] = []
  for (let at = 0; at < segments.length;) {
    const run = 1 + randomInt(r, Math.min(6, segments.length - at))
    const merged = mergeSegments(segments.slice(at, at + run))
    out.push(randomInt(r, 2) === 0 ? decodeSegment(encodeSegment(merged)) : merged)
    at += run
  }
  return out
}

function queries (records: readonly IndexRecord[], r: () => number): string[] {
  return Array.from({ length: 10 }, () => {
    const parts: string[] = []
    for (let i = 0; i < 3; i++) {
      const words = (records[randomInt(r, records.length)] as IndexRecord).text.split(' ')
      const from = randomInt(r, Math.max(1, words.length - 10))
      parts.push(words.slice(from, from + 6 + randomInt(r, 20)).join(' '))
    }
    return `Well, ${parts.join(' and also ')}`
  })
}

const weightsOf = (index: CorpusIndex): string => JSON.stringify([...contentWeights(index.segments, params.maxRecordTokens)].sort(([a], [b]) => a.localeCompare(b)).map(([a, w]) => [a, w.toString()]))

test('merged segments answer exactly as unmerged ones: attribution, record coverage, content weights, index hash (seeded corpora)', () => {
  let credited = 0
  let nearDuplicates = 0
  for (let seed = 1; seed <= 12; seed++) {
    const { records, r } = corpus(seed, 30 + randomInt(prng(seed + 100), 90))
    const pieces = segmentsOf(records, r, 2 + randomInt(r, 20))
    const unmerged = CorpusIndex.fromSegments(pieces)
    const variants = [
      CorpusIndex.fromSegments(mergeRuns(pieces, r)),
      CorpusIndex.fromSegments([mergeSegments(pieces)]),
      CorpusIndex.fromRecords(records)
    ]
    for (const index of variants) {
      assert.is(index.indexHash, unmerged.indexHash, `seed ${seed}`)
      assert.is(index.totalTokens, unmerged.totalTokens)
      assert.is(index.recordCount, records.length)
      assert.is(index.lastRecordIndex, unmerged.lastRecordIndex)
      assert.is(weightsOf(index), weightsOf(unmerged))
      for (const id of [0, 198, 220, 13]) assert.is(index.unigramCount(id), unmerged.unigramCount(id))
      for (const rec of records) assert.is(index.contributorOf(rec.recordIndex), rec.contributor.toLowerCase())
      assert.is(index.contributorOf(records.length * 3 + 7), undefined)
    }
    for (const q of queries(records, r)) {
      const prompt = randomInt(r, 2) === 0 ? q.slice(0, 40) : null
      const expected = JSON.stringify(attribute(unmerged, q, prompt, 10n ** 18n, params))
      for (const index of variants) assert.is(JSON.stringify(attribute(index, q, prompt, 10n ** 18n, params)), expected, `seed ${seed}: ${q}`)
      if ((JSON.parse(expected) as { contributors: unknown[] }).contributors.length > 0) credited++
    }
    for (const rec of records.slice(0, 15)) {
      const probe = rec.text.split(' ').map((w, i) => i % 20 === 14 ? 'pivot' : w).join(' ')
      const expected = recordCoverageBps(unmerged, probe, params)
      for (const index of variants) assert.is(recordCoverageBps(index, probe, params), expected)
      if (expected >= 5000) nearDuplicates++
    }
  }
  assert.ok(credited >= 60, `most queries credit someone (${credited})`)
  assert.ok(nearDuplicates >= 60, `most probes are near-duplicates (${nearDuplicates})`)
})

test('a merged segment is the segment built in one piece: same stream, suffix array, records and chain ends', () => {
  const { records, r } = corpus(77, 60)
  const pieces = segmentsOf(records, r, 9)
  const merged = mergeSegments(pieces)
  const whole = buildSegment(records)
  assert.equal(Array.from(merged.tokens), Array.from(whole.tokens))
  assert.equal(Array.from(merged.sa), Array.from(whole.sa))
  assert.equal(Array.from(merged.docStart), Array.from(whole.docStart))
  assert.equal(Array.from(merged.recordIndexes), Array.from(whole.recordIndexes))
  for (let i = 0; i < merged.recordCount; i++) assert.is(merged.contributorOfLocal(i), whole.contributorOfLocal(i))
  assert.equal(merged.headBefore, (pieces[0] as IndexSegment).headBefore)
  assert.equal(merged.headAfter, whole.headAfter)
  // a merge of a later run continues from the run before it
  const tail = mergeSegments(pieces.slice(4))
  assert.equal(tail.headBefore, (pieces[3] as IndexSegment).headAfter)
  assert.is(CorpusIndex.fromSegments([mergeSegments(pieces.slice(0, 4)), tail]).indexHash, CorpusIndex.fromSegments([whole]).indexHash)
})

test('segments that do not continue each other are not merged', () => {
  const { records, r } = corpus(5, 20)
  const pieces = segmentsOf(records, r, 4)
  assert.throws(() => mergeSegments([pieces[0] as IndexSegment, pieces[2] as IndexSegment]), /do not continue/)
  assert.throws(() => mergeSegments([]), /nothing to merge/)
})

test.run()
