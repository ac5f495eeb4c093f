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

test('held tokens stay under the bound, oldest out first; taken once', () => {
  const memo = new TokenMemo(10)
  memo.put('a', new Uint32Array(4))
  memo.put('b', new Uint32Array(4))
  memo.put('c', new Uint32Array(4))
  assert.is(memo.size, 8)
  assert.is(memo.take('a'), undefined, 'the oldest went to make room')
  assert.is(memo.take('b')?.length, 4)
  assert.is(memo.take('b'), undefined, 'taken once')
  memo.put('huge', new Uint32Array(11))
  assert.is(memo.take('huge'), undefined, 'larger than the bound: not held')
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
