/**
 * Index segments built or merged on the main thread are appended to the datanet's pack
 * (node/services/segment-pack.ts), not written as a file each: a catching-up node made two
 * files a version, through the thread pool, and they were 0.64 of its main thread's
 * 2.13 ms a version (catch-up.ts). This thread's file creations, opens, renames and reads
 * under the index's directory are counted by wrapping node:fs for this thread only.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readFileSync, readdirSync, truncateSync, writeFileSync } from 'node:fs'
import { createRequire, syncBuiltinESMExports } from 'node:module'
import { join } from 'node:path'
import { pino } from 'pino'
import * as lib from '../../src/attribution/index.ts'
import { CorpusIndex, EMPTY_HEAD, type IndexSegment } from '../../src/attribution/corpus-index.ts'
import { IndexBuilder } from '../../node/services/index-builder.ts'
import { IndexSegments, storedSegmentNames } from '../../node/services/index-segments.ts'
import { SegmentPack } from '../../node/services/segment-pack.ts'
import { corpus } from '../fixtures/attribution/corpus.ts'
import { tempDir } from '../helpers/tmp.ts'

const fs = createRequire(import.meta.url)('node:fs') as Record<string, (...args: unknown[]) => unknown>
const BLOCKING = ['writeFileSync', 'renameSync', 'openSync', 'mkdirSync', 'readFileSync'] as const

/** Runs `fn` counting this thread's blocking reads and writes of files under `dir` (and named as `named` says). */
async function blockingWritesUnder<T> (dir: string, fn: () => Promise<T>, counted: (call: string, file: string) => boolean = () => true): Promise<{ result: T, calls: string[] }> {
  const calls: string[] = []
  const originals = BLOCKING.map(name => [name, fs[name]] as const)
  for (const [name, original] of originals) {
    fs[name] = (...args: unknown[]) => {
      if (typeof args[0] === 'string' && args[0].startsWith(dir) && counted(name, args[0])) calls.push(`${name} ${args[0].slice(dir.length)}`)
      return (original as (...a: unknown[]) => unknown)(...args)
    }
  }
  syncBuiltinESMExports()
  try {
    return { result: await fn(), calls }
  } finally {
    for (const [name, original] of originals) fs[name] = original as (...args: unknown[]) => unknown
    syncBuiltinESMExports()
  }
}

/** The segments of 8 versions of 8 records each, one continuing the other. */
function eightVersions (): IndexSegment[] {
  const { records } = corpus(5, 64)
  const segments: IndexSegment[] = []
  let index = CorpusIndex.empty()
  for (let h = 0; h < 8; h++) {
    const built = index.appendRecords(records.slice(h * 8, h * 8 + 8))
    segments.push(built.segment as IndexSegment)
    index = built.index
  }
  return segments
}

test('a small segment built on this thread is not written by the builder; the index packs it with one append: no file made', async () => {
  const tmp = tempDir()
  const builder = new IndexBuilder({ inlineTokens: Number.MAX_SAFE_INTEGER })
  const store = new IndexSegments({ dir: tmp.dir, logger: pino({ level: 'silent' }), fanout: 2 }, lib)
  try {
    const { records } = corpus(3, 40)
    const { result, calls } = await blockingWritesUnder(tmp.dir, async () => {
      const built = await builder.build([records.map(r => ({ recordIndex: r.recordIndex, contributor: r.contributor, text: r.text }))], { head: EMPTY_HEAD, lastRecordIndex: -1 }, join(tmp.dir, '0000000001.seg'))
      if (built === undefined) throw new Error('no segment')
      store.adopt(lib.decodeSegment(built.bytes), built.bytes, built.written)
      return built
    })
    assert.is(result.records, 40)
    assert.is(result.written, false)
    assert.equal(calls, ['mkdirSync ', 'openSync /segments.pack'])
    assert.equal(readdirSync(tmp.dir), ['segments.pack'])
    assert.equal(storedSegmentNames(tmp.dir), ['0000000001.seg'])
  } finally {
    await builder.stop()
    await store.stop()
    tmp.remove()
  }
})

test('segments merged on this thread are packed: no file made, read or renamed', async () => {
  const tmp = tempDir()
  const segments = eightVersions()
  // every merge on this thread
  const store = new IndexSegments({ dir: tmp.dir, logger: pino({ level: 'silent' }), fanout: 2, inlineMergeBytes: Number.MAX_SAFE_INTEGER }, lib)
  try {
    const { calls } = await blockingWritesUnder(tmp.dir, async () => {
      for (const segment of segments) store.add(segment, true)
      await store.mergesIdle()
    }, call => call !== 'mkdirSync')
    assert.equal(calls, ['openSync /segments.pack'])
    assert.equal(storedSegmentNames(tmp.dir).filter(f => f.startsWith('m-')), ['m-0000000001-0000000002.seg', 'm-0000000001-0000000004.seg', 'm-0000000001-0000000008.seg', 'm-0000000005-0000000006.seg'])
    assert.equal(store.coverAt(8).map(r => `${r.from}-${r.to}`), ['1-8'])
  } finally {
    await store.stop()
    tmp.remove()
  }
})

test('a pack: a torn tail is cut at the next open and appends go on after it; changed bytes read as corrupt; a name appended again is the later entry', () => {
  const tmp = tempDir()
  try {
    const file = join(tmp.dir, 'segments.pack')
    const pack = new SegmentPack(file)
    const blob = (n: number, fill: number): Buffer => Buffer.alloc(n, fill)
    pack.append('a', blob(1000, 1))
    pack.append('b', blob(2000, 2))
    pack.append('c', blob(3000, 3))
    pack.close()
    const whole = readFileSync(file).length
    // a crash in the middle of c's append
    truncateSync(file, whole - 1500)
    const reopened = new SegmentPack(file)
    assert.equal([...reopened.names()], ['a', 'b'])
    assert.is(readFileSync(file).length, whole - 3000 - 44 - 1, 'the torn entry is cut off')
    reopened.append('c', blob(3000, 4))
    reopened.append('a', blob(10, 5))
    assert.equal(Buffer.from(reopened.read('a') as Uint8Array), blob(10, 5))
    assert.equal(Buffer.from(reopened.read('c') as Uint8Array), blob(3000, 4))
    assert.is(reopened.size('b'), 2000)
    assert.is(reopened.read('x'), undefined)
    reopened.close()
    // a byte of b's changed on disk
    const bytes = readFileSync(file)
    const at = 1000 + 44 + 1 + 44 + 1 + 10
    bytes[at] = (bytes[at] as number) ^ 0xff
    writeFileSync(file, bytes)
    const again = new SegmentPack(file)
    assert.equal([...again.names()].sort(), ['a', 'b', 'c'])
    assert.equal(Buffer.from(again.read('a') as Uint8Array), blob(10, 5), 'the later entry')
    assert.throws(() => again.read('b'), /corrupt/)
    again.forget('b')
    assert.is(again.has('b'), false)
    again.close()
    assert.equal(SegmentPack.names(file).sort(), ['a', 'b', 'c'])
  } finally {
    tmp.remove()
  }
})

// A catching-up node merges about once a version, and each merge read its parts back from
// the files it had just written (an open, a stat, a read and a close each).
test('a merge on this thread takes the parts this process wrote from memory, not from their files', async () => {
  const tmp = tempDir()
  const segments = eightVersions()
  const promises = createRequire(import.meta.url)('node:fs/promises') as Record<string, (...args: unknown[]) => Promise<unknown>>
  const readFile = promises.readFile as (...args: unknown[]) => Promise<unknown>
  const reads: string[] = []
  promises.readFile = async (...args: unknown[]) => {
    if (typeof args[0] === 'string' && args[0].startsWith(tmp.dir)) reads.push(args[0].slice(tmp.dir.length))
    return await readFile(...args)
  }
  syncBuiltinESMExports()
  const store = new IndexSegments({ dir: tmp.dir, logger: pino({ level: 'silent' }), fanout: 2, inlineMergeBytes: Number.MAX_SAFE_INTEGER }, lib)
  try {
    for (const segment of segments) store.add(segment, true)
    await store.mergesIdle()
    assert.equal(store.coverAt(8).map(r => `${r.from}-${r.to}`), ['1-8'])
    assert.equal(reads, [])
    // what the merges wrote is what a new process reads back
    const again = new IndexSegments({ dir: tmp.dir, logger: pino({ level: 'silent' }), fanout: 2, merge: false }, lib)
    for (const segment of segments) again.add(segment, false)
    const merged = await again.indexAt(8)
    const direct = await store.indexAt(8)
    assert.ok(merged.totalTokens > 0)
    assert.is(merged.totalTokens, direct.totalTokens)
    assert.is(merged.recordCount, 64)
    assert.equal(Buffer.from(merged.head), Buffer.from(direct.head))
    await again.stop()
  } finally {
    promises.readFile = readFile
    syncBuiltinESMExports()
    await store.stop()
    tmp.remove()
  }
})

test.run()
