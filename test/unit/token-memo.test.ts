/**
 * Tokens reused between the near-duplicate check and the index extension
 * (node/services/token-memo.ts): bounded, taken once, and an index built from them is the
 * index built by tokenizing again (same segment bytes, same head).
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { CorpusIndex, type IndexRecord } from '../../src/attribution/corpus-index.ts'
import { normalizeText } from '../../src/attribution/normalize.ts'
import { encodeSegment } from '../../src/attribution/segment-codec.ts'
import { tokenize } from '../../src/attribution/tokenizer.ts'
import { TokenMemo } from '../../node/services/token-memo.ts'

const CORPUS = (JSON.parse(readFileSync(join(import.meta.dirname, '../fixtures/attribution/corpus.json'), 'utf8')) as { records: IndexRecord[] }).records

test('held entries stay under the bound, oldest out first; taken once', () => {
  // three entries of 4 tokens cost 320 + 16 = 336 bytes each
  const memo = new TokenMemo(700)
  memo.put('a', new Uint32Array(4))
  memo.put('b', new Uint32Array(4))
  memo.put('c', new Uint32Array(4))
  assert.is(memo.size, 8)
  assert.is(memo.bytes, 672)
  assert.is(memo.take('a'), undefined, 'the oldest went to make room')
  assert.is(memo.take('b')?.length, 4)
  assert.is(memo.take('b'), undefined, 'taken once')
  assert.is(memo.bytes, 336)
  memo.put('huge', new Uint32Array(100))
  assert.is(memo.take('huge'), undefined, 'larger than the bound: not held')
})

test('a stream of small records is bounded by what their entries cost, not by their tokens (16 M tokens of small records were ~130 MB of heap)', () => {
  const memo = new TokenMemo()
  // 200,000 records of ~120 characters and 44 tokens: 8.8 M tokens, under the old bound of 16 M
  for (let i = 0; i < 200_000; i++) memo.put(`record ${i} `.padEnd(120, 'x'), new Uint32Array(44))
  assert.ok(memo.size < 44 * 60_000, `${memo.size} tokens held: about one version of small records, not 200,000 of them`)
  assert.ok(memo.bytes <= 24 * 1024 * 1024, `${memo.bytes} bytes held`)
  assert.ok(memo.size > 44 * 30_000, 'still about one version of them')
})

test('a burst of 1 KB records is mostly held: the memo costs what their tokens do, not their text (keyed by text it held 6,446)', () => {
  const memo = new TokenMemo()
  let held = 0
  for (let i = 0; i < 32_000; i++) {
    const text = `record ${i} `.padEnd(1024, 'x')
    memo.put(text, new Uint32Array(400))
  }
  for (let i = 0; i < 32_000; i++) if (memo.take(`record ${i} `.padEnd(1024, 'x')) !== undefined) held++
  assert.ok(held >= 12_000, `${held} of 32,000 held`)
  assert.is(memo.size, 0, 'each taken once')
})

test('an index extended with remembered tokens is the index built by tokenizing again', () => {
  const records = CORPUS.slice(0, 40)
  const memo = new TokenMemo()
  // what the near-duplicate check remembers: half of the records
  for (const r of records.slice(0, 20)) memo.put(normalizeText(r.text), tokenize(normalizeText(r.text)))
  let taken = 0
  const withMemo = CorpusIndex.empty().appendRecords(records, n => { const t = memo.take(n); if (t !== undefined) taken++; return t })
  const plain = CorpusIndex.empty().appendRecords(records)
  assert.ok(taken >= 1, 'remembered tokens were used')
  assert.equal(encodeSegment(withMemo.segment), encodeSegment(plain.segment))
  assert.equal(withMemo.index.head, plain.index.head)
})

test.run()
