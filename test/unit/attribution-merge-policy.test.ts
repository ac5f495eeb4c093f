import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { type HeightRange, coverOf, coverRange, dueMerges, isMergeRange, mergeEndingAt, mergeParts } from '../../src/attribution/merge-policy.ts'

const key = (r: HeightRange): string => `${r.from}-${r.to}`
const all = (): boolean => true
const none = (): boolean => false
/** The examples below are in fanout 4 (the default is 2). */
const F = 4

/** Every merge due up to `final`, as a set the cover functions can ask. */
function mergedUpTo (final: number, fanout: number): (r: HeightRange) => boolean {
  const done = new Set(dueMerges(final, none, fanout).map(key))
  return r => done.has(key(r))
}

function assertTiles (cover: HeightRange[], from: number, to: number): void {
  let at = from
  for (const r of cover) {
    assert.is(r.from, at)
    assert.ok(r.to >= r.from)
    at = r.to + 1
  }
  assert.is(at, to + 1)
}

test('aligned ranges: size a power of the fanout (> 1), starting on its grid', () => {
  assert.ok(isMergeRange({ from: 1, to: 4 }, F))
  assert.ok(isMergeRange({ from: 17, to: 32 }, F))
  assert.ok(isMergeRange({ from: 65, to: 128 }, F))
  assert.not.ok(isMergeRange({ from: 3, to: 3 }, F))
  assert.not.ok(isMergeRange({ from: 2, to: 5 }, F))
  assert.not.ok(isMergeRange({ from: 1, to: 8 }, F))
  assert.ok(isMergeRange({ from: 1, to: 8 }, 8))
  assert.ok(isMergeRange({ from: 3, to: 4 }))
  assert.not.ok(isMergeRange({ from: 0, to: 3 }, F))
  assert.throws(() => isMergeRange({ from: 1, to: 4 }, 1))
})

test('the cover of version h with every due merge done: the base-F digits of h', () => {
  const has = mergedUpTo(1000, 4)
  // 1000 = 3·256 + 3·64 + 2·16 + 2·4
  assert.equal(coverOf(1000, has, F).map(key), ['1-256', '257-512', '513-768', '769-832', '833-896', '897-960', '961-976', '977-992', '993-996', '997-1000'])
  assert.equal(coverOf(7, has, F).map(key), ['1-4', '5-5', '6-6', '7-7'])
  assert.equal(coverOf(1, has, F).map(key), ['1-1'])
  assert.equal(coverOf(0, has, F), [])
  for (const fanout of [2, 4, 8]) {
    const done = mergedUpTo(1100, fanout)
    const levels = Math.ceil(Math.log(1100) / Math.log(fanout))
    for (let h = 1; h <= 1100; h++) {
      const cover = coverOf(h, done, fanout)
      assertTiles(cover, 1, h)
      let digits = 0
      for (let x = h; x > 0; x = Math.floor(x / fanout)) digits += x % fanout
      assert.is(cover.length, digits, `h=${h} F=${fanout}`)
      assert.ok(cover.length <= (fanout - 1) * levels)
      for (const r of cover) assert.ok(r.from === r.to || isMergeRange(r, fanout))
    }
  }
})

test('a cover uses only ranges at hand: single versions without merges, smaller ranges when a larger is missing', () => {
  assert.equal(coverOf(5, none, F).map(key), ['1-1', '2-2', '3-3', '4-4', '5-5'])
  const has = (r: HeightRange): boolean => key(r) !== '1-16' && isMergeRange(r, F)
  assert.equal(coverOf(17, has, F).map(key), ['1-4', '5-8', '9-12', '13-16', '17-17'])
  // a larger range at hand is taken even if a smaller one at the same start is missing
  const onlyBig = (r: HeightRange): boolean => key(r) === '1-16'
  assert.equal(coverOf(18, onlyBig, F).map(key), ['1-16', '17-17', '18-18'])
  assertTiles(coverRange(5, 40, all, F), 5, 40)
  assert.equal(coverRange(5, 40, all, F).map(key), ['5-8', '9-12', '13-16', '17-32', '33-36', '37-40'])
})

test('merges due: the largest aligned range ending at each height, in height order; none twice; parts from the ranges before', () => {
  assert.equal(dueMerges(3, none, F), [])
  assert.equal(dueMerges(4, none, F).map(key), ['1-4'])
  // 13-16 is not merged: 1-16 ends at 16 too, and no cover takes 13-16 beside it
  assert.equal(dueMerges(17, none, F).map(key), ['1-4', '5-8', '9-12', '1-16'])
  assert.equal(dueMerges(8, none, 2).map(key), ['1-2', '1-4', '5-6', '1-8'])
  const done = new Set<string>()
  for (let h = 1; h <= 300; h++) {
    const due = dueMerges(h, r => done.has(key(r)), F)
    for (const r of due) {
      assert.ok(isMergeRange(r, F))
      assert.ok(r.to <= h)
      assert.not.ok(done.has(key(r)))
      const parts = mergeParts(r, x => done.has(key(x)), F)
      assertTiles(parts, r.from, r.to)
      // built as they come due: F − 1 parts a level below, and the same again inside the last
      const levels = Math.round(Math.log(r.to - r.from + 1) / Math.log(F))
      assert.ok(parts.length <= (F - 1) * levels + 1, `${key(r)}: ${parts.length} parts`)
      done.add(key(r))
    }
    // merges become due as soon as their last version is final
    assert.is(due.length, h % 4 === 0 ? 1 : 0, `h=${h}`)
  }
  assert.equal(mergeParts({ from: 1, to: 16 }, none, F).length, 16)
  assert.equal(mergeParts({ from: 1, to: 16 }, all, F).map(key), ['1-4', '5-8', '9-12', '13-16'])
  assert.equal(mergeParts({ from: 1, to: 16 }, x => done.has(key(x)), F).map(key), ['1-4', '5-8', '9-12', '13-13', '14-14', '15-15', '16-16'])
})

test('every range of every cover is merged: the covers are those of merging every aligned range, at about half the merging', () => {
  for (const fanout of [2, 3, F]) {
    const every = (r: HeightRange): boolean => isMergeRange(r, fanout) && r.to <= 700
    const merged = mergedUpTo(700, fanout)
    let all = 0
    let largest = 0
    for (let h = 1; h <= 700; h++) {
      assert.equal(coverOf(h, merged, fanout), coverOf(h, every, fanout), `fanout ${fanout}, h=${h}`)
      for (let size = fanout; size <= h && h % size === 0; size *= fanout) all += size
      largest += (h % fanout === 0 ? (mergeEndingAt(h, fanout) as HeightRange).to - (mergeEndingAt(h, fanout) as HeightRange).from + 1 : 0)
    }
    // versions re-sorted by merges over 700 heights: about half for F = 2 (the default), less saved as F grows
    assert.ok(largest < (fanout === 2 ? 0.6 : 0.9) * all, `fanout ${fanout}: ${largest} against ${all}`)
  }
})

test('the merge each height ends, added height by height, is what a scan finds due (a node scans once)', () => {
  for (const fanout of [2, 3, F]) {
    const added: string[] = []
    for (let h = 1; h <= 700; h++) {
      const ending = mergeEndingAt(h, fanout)
      assert.is(ending === undefined, h % fanout !== 0)
      if (ending !== undefined) {
        assert.is(ending.to, h)
        assert.ok(isMergeRange(ending, fanout))
        assert.is(h % ((ending.to - ending.from + 1) * fanout) === 0 && (ending.to - ending.from + 1) * fanout <= h, false, 'the largest')
        added.push(key(ending))
      }
      assert.equal(added, dueMerges(h, none, fanout).map(key), `fanout ${fanout}, h=${h}`)
    }
  }
})

test.run()
