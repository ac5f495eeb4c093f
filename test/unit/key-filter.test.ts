/**
 * The record index's key filter (src/storage/key-filter.ts, RecordIndex in state-db.ts):
 * a key it says is absent is not read, so it must never say so of a key the index holds —
 * whether claimed before the filter was filled, while it was being filled, or after.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { KeyFilter } from '../../src/storage/key-filter.ts'
import { StateDatabase } from '../../src/storage/state-db.ts'
import { tempDir } from '../helpers/tmp.ts'

const keys = (n: number): Uint8Array[] => Array.from({ length: n }, () => new Uint8Array(randomBytes(32)))

test('KeyFilter: every key added is a maybe; few keys never added are', () => {
  const f = new KeyFilter()
  const added = keys(300_000)
  for (const k of added) f.add(k)
  assert.is(f.size, 300_000)
  assert.ok(added.every(k => f.mayHave(k)), 'no false negatives')
  const others = keys(100_000)
  const wrong = others.filter(k => f.mayHave(k)).length
  assert.ok(wrong < 5_000, `${wrong} of 100,000 absent keys said maybe`)
  assert.ok(f.bytes < 300_000 * 3, `${f.bytes} bytes for 300,000 keys`)
})

test('the record index finds every key claimed before, during and after its filter is filled, also after a restart', async () => {
  const tmp = tempDir()
  const path = join(tmp.dir, 'state')
  let db = new StateDatabase(path)
  await db.open()
  try {
    const datanet = new Uint8Array(randomBytes(32))
    const other = new Uint8Array(randomBytes(32))
    const before = keys(20_000)
    await db.records.claim(datanet, before, 'before')
    await db.records.claim(other, keys(1_000), 'other datanet')
    // claims in flight while the first read starts the fill
    const during = Array.from({ length: 40 }, () => keys(500))
    const inflight = during.map(async (ks, i) => { await db.records.claim(datanet, ks, `during-${i}`) })
    const absent = keys(2_000)
    assert.ok((await db.records.owners(datanet, absent)).every(o => o === undefined))
    await Promise.all(inflight)
    await db.records.filterFilled(datanet)
    const after = keys(5_000)
    await db.records.claim(datanet, after, 'after')
    const owners = await db.records.owners(datanet, [...before, ...during.flat(), ...after])
    assert.is(owners.filter(o => o === undefined).length, 0, 'no claimed key is missed')
    assert.is(owners[0], 'before')
    assert.is(owners[before.length + 3], 'during-0')
    assert.is(owners[owners.length - 1], 'after')
    assert.ok((await db.records.owners(datanet, absent)).every(o => o === undefined), 'absent keys stay absent')
    assert.ok((await db.records.owners(other, before)).every(o => o === undefined), 'another datanet\'s index is its own')

    await db.close()
    db = new StateDatabase(path)
    await db.open()
    await db.records.filterFilled(datanet)
    const reread = await db.records.owners(datanet, [...before, ...during.flat(), ...after])
    assert.is(reread.filter(o => o === undefined).length, 0, 'filled again from disk after a restart')
  } finally {
    await db.close()
    tmp.remove()
  }
})

test.run()
