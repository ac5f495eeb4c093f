import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { CorpusIndex, EMPTY_HEAD, buildSegment, mergeSegments, type IndexRecord } from '../../src/attribution/corpus-index.ts'
import { attribute } from '../../src/attribution/index.ts'
import { validateAttributionParams } from '../../src/attribution/params.ts'
import { decodeSegment, encodeSegment, segmentDigest } from '../../src/attribution/segment-codec.ts'
import { prng, randomInt } from '../fixtures/attribution/prng.ts'

const CORPUS = (JSON.parse(readFileSync(join(import.meta.dirname, '../fixtures/attribution/corpus.json'), 'utf8')) as { records: IndexRecord[] }).records
const params = validateAttributionParams()

/** The index over `records` cut into segments of the given sizes, each segment also sent through bytes. */
function segmented (records: readonly IndexRecord[], sizes: number[], viaBytes = false): CorpusIndex {
  let index = CorpusIndex.empty()
  let at = 0
  for (const size of sizes) {
    let segment = buildSegment(records.slice(at, at + size), index.base)
    if (viaBytes) segment = decodeSegment(encodeSegment(segment))
    index = index.extend(segment)
    at += size
  }
  assert.is(at, records.length)
  return index
}

/** Outputs that copy passages from several records, with a prompt echoing one of them. */
function outputs (): Array<{ output: string, prompt: string }> {
  const r = prng(1)
  return Array.from({ length: 12 }, () => {
    const parts: string[] = []
    for (let i = 0; i < 3; i++) {
      const words = (CORPUS[randomInt(r, CORPUS.length)] as IndexRecord).text.split(' ')
      const from = randomInt(r, Math.max(1, words.length - 14))
      parts.push(words.slice(from, from + 10 + randomInt(r, 20)).join(' '))
    }
    return { output: `As far as I know, ${parts.join(' Then, ')}.`, prompt: randomInt(r, 2) === 0 ? parts[0] as string : 'tell me something' }
  })
}

test('results do not depend on segmentation: 1, 2, 5 segments, merged, and through bytes give identical results', () => {
  const n = CORPUS.length
  const layouts = [[n], [10, n - 10], [3, 9, 1, 12, n - 25], [1, 1, 1, 1, n - 4]]
  const indexes = [
    ...layouts.map(sizes => segmented(CORPUS, sizes)),
    segmented(CORPUS, [3, 9, 1, 12, n - 25], true),
    segmented(CORPUS, [3, 9, 1, 12, n - 25]).compact(),
    CorpusIndex.fromSegments([mergeSegments(segmented(CORPUS, [7, n - 7]).segments)])
  ]
  assert.equal(indexes.map(i => i.segments.length), [1, 2, 5, 5, 5, 1, 1])
  for (const index of indexes) {
    assert.is(index.indexHash, indexes[0]?.indexHash)
    assert.is(index.totalTokens, indexes[0]?.totalTokens)
    assert.is(index.recordCount, n)
  }
  let credited = 0
  for (const { output, prompt } of outputs()) {
    const expected = JSON.stringify(attribute(indexes[0] as CorpusIndex, output, prompt, 10n ** 18n, params))
    for (const index of indexes.slice(1)) {
      assert.is(JSON.stringify(attribute(index, output, prompt, 10n ** 18n, params)), expected, output)
    }
    if ((JSON.parse(expected) as { contributors: unknown[] }).contributors.length > 0) credited++
  }
  assert.ok(credited >= 8, `most outputs credit someone (${credited})`)
})

test('compactTail keeps O(log n) segments and never changes an answer', () => {
  let index = CorpusIndex.empty()
  let merges = 0
  for (const rec of CORPUS) {
    index = index.appendRecords([rec]).index
    const { index: compacted, merged, replaced } = index.compactTail()
    if (merged !== undefined) {
      merges++
      assert.is(compacted.segments.length, index.segments.length - replaced + 1)
      assert.is(compacted.segments[compacted.segments.length - 1], merged)
    }
    index = compacted
    const sizes = index.segments.map(seg => seg.tokens.length)
    for (let i = 1; i < sizes.length; i++) assert.ok(2 * (sizes[i] as number) < (sizes[i - 1] as number), `sizes ${sizes.join(',')}`)
    assert.ok(index.segments.length <= 1 + Math.log2(index.totalTokens + index.recordCount + 1))
  }
  assert.ok(merges > 5)
  assert.is(index.indexHash, CorpusIndex.fromRecords(CORPUS).indexHash)
  for (const { output, prompt } of outputs()) {
    assert.equal(attribute(index, output, prompt, 10n ** 18n, params), attribute(CorpusIndex.fromRecords(CORPUS), output, prompt, 10n ** 18n, params))
  }
})

test('the index hash is a chain over records: it changes with a record\'s text, index or contributor', () => {
  const base = CorpusIndex.fromRecords(CORPUS.slice(0, 5)).indexHash
  assert.is.not(base, CorpusIndex.empty().indexHash)
  assert.is(CorpusIndex.empty().indexHash, '0x' + '00'.repeat(32))
  const variants: IndexRecord[][] = [
    CORPUS.slice(0, 5).map((r, i) => i === 2 ? { ...r, text: r.text + ' ' } : r),
    CORPUS.slice(0, 5).map((r, i) => i === 4 ? { ...r, recordIndex: 99 } : r),
    CORPUS.slice(0, 5).map((r, i) => i === 0 ? { ...r, contributor: '0x' + '9'.repeat(40) } : r),
    CORPUS.slice(0, 4)
  ]
  for (const records of variants) assert.is.not(CorpusIndex.fromRecords(records).indexHash, base)
  // Case of the address does not matter: stored lowercase.
  assert.is(CorpusIndex.fromRecords(CORPUS.slice(0, 5).map(r => ({ ...r, contributor: r.contributor.toUpperCase().replace('0X', '0x') }))).indexHash, base)
})

test('segment bytes round-trip exactly, are ~8 bytes per token, and their digest names them', () => {
  const segment = buildSegment(CORPUS)
  const bytes = encodeSegment(segment)
  const again = decodeSegment(bytes)
  assert.equal(Array.from(again.tokens), Array.from(segment.tokens))
  assert.equal(Array.from(again.sa), Array.from(segment.sa))
  assert.equal(again.contributors, segment.contributors)
  assert.ok(Buffer.compare(encodeSegment(again), bytes) === 0)
  assert.is(bytes.byteLength, 120 + 8 * segment.tokens.length + 12 * segment.recordCount + 20 * segment.contributors.length)
  assert.match(segmentDigest(bytes), /^0x[0-9a-f]{64}$/)
  // Unaligned bytes decode too (copied).
  const shifted = new Uint8Array(bytes.byteLength + 1)
  shifted.set(bytes, 1)
  assert.equal(Array.from(decodeSegment(shifted.subarray(1)).sa), Array.from(segment.sa))
})

test('corrupted segment bytes are refused with ATTRIBUTION_ERROR_BAD_SEGMENT', () => {
  const segment = buildSegment(CORPUS.slice(0, 6))
  const bytes = encodeSegment(segment)
  const n = segment.tokens.length
  const corrupt = (at: number, value: number): Uint8Array => {
    const b = bytes.slice()
    b[at] = value
    return b
  }
  const saAt = 120 + 4 * n
  const cases: Array<[string, Uint8Array]> = [
    ['magic', corrupt(0, 0)],
    ['format', corrupt(4, 2)],
    ['tokenization id', corrupt(30, (bytes[30] as number) ^ 1)],
    ['a token', corrupt(120 + 4 * 3, (bytes[120 + 12] as number) ^ 1)],
    ['the chain head', corrupt(100, (bytes[100] as number) ^ 1)],
    ['suffix array order', (() => {
      const b = bytes.slice()
      b.copyWithin(saAt + 4 * 10, saAt + 4 * 11, saAt + 4 * 12)
      b.set(bytes.subarray(saAt + 4 * 10, saAt + 4 * 11), saAt + 4 * 11)
      return b
    })()],
    ['truncated', bytes.subarray(0, bytes.byteLength - 1)],
    ['short', bytes.subarray(0, 50)]
  ]
  for (const [what, b] of cases) {
    try {
      decodeSegment(b)
      assert.unreachable(`${what}: decoded`)
    } catch (err) {
      assert.is((err as { code?: string }).code, 'ATTRIBUTION_ERROR_BAD_SEGMENT', what)
    }
  }
  // 'structure' skips the chain and suffix-array checks (for bytes whose digest was checked).
  assert.is(decodeSegment(corrupt(100, (bytes[100] as number) ^ 1), { verify: 'structure' }).recordCount, 6)
})

test('records out of order, bad contributors and segments that do not continue the index are refused', () => {
  const code = (fn: () => unknown): string | undefined => {
    try {
      fn()
    } catch (err) {
      return (err as { code?: string }).code
    }
    return undefined
  }
  const r = (recordIndex: number, contributor = '0x' + 'a'.repeat(40)): IndexRecord => ({ recordIndex, contributor, text: 'some text here' })
  assert.is(code(() => CorpusIndex.fromRecords([r(2), r(1)])), 'ATTRIBUTION_ERROR_OUT_OF_ORDER')
  assert.is(code(() => CorpusIndex.fromRecords([r(2), r(2)])), 'ATTRIBUTION_ERROR_OUT_OF_ORDER')
  assert.is(code(() => CorpusIndex.fromRecords([r(-1)])), 'ATTRIBUTION_ERROR_BAD_RECORD')
  assert.is(code(() => CorpusIndex.fromRecords([r(1.5)])), 'ATTRIBUTION_ERROR_BAD_RECORD')
  assert.is(code(() => CorpusIndex.fromRecords([r(2 ** 32)])), 'ATTRIBUTION_ERROR_BAD_RECORD')
  assert.is(code(() => CorpusIndex.fromRecords([r(1, '0x1234')])), 'ATTRIBUTION_ERROR_BAD_RECORD')
  const first = CorpusIndex.fromRecords([r(1), r(5)])
  assert.is(code(() => first.appendRecords([r(5)])), 'ATTRIBUTION_ERROR_OUT_OF_ORDER')
  assert.is(code(() => first.extend(buildSegment([r(9)]))), 'ATTRIBUTION_ERROR_OUT_OF_ORDER', 'chain starts elsewhere')
  assert.is(code(() => first.extend(buildSegment([r(9)], { head: EMPTY_HEAD, lastRecordIndex: 5 }))), 'ATTRIBUTION_ERROR_OUT_OF_ORDER')
  assert.is(first.appendRecords([r(6)]).index.recordCount, 3)
  assert.is(first.recordCount, 2, 'extending returns a new index; the old one is unchanged')
})

test('contributorOf and unigram counts span all segments', () => {
  const index = segmented(CORPUS, [4, 10, CORPUS.length - 14])
  for (const rec of CORPUS) assert.is(index.contributorOf(rec.recordIndex), rec.contributor.toLowerCase())
  assert.is(index.contributorOf(1000), undefined)
  const one = CorpusIndex.fromRecords(CORPUS)
  for (const id of [279, 323, 13, 11, 3]) assert.is(index.unigramCount(id), one.unigramCount(id))
  assert.ok(one.unigramCount(279) > 10, '" the" is frequent')
})

test.run()
