/**
 * Index segments built or merged on the main thread are written without blocking it
 * (node/services/segment-files.ts): a catching-up node writes two segment files a
 * version, and its blocking opens took a quarter of its main thread (catch-up.ts, profiled).
 * The worker threads may block; this thread's blocking writes under the index's directory
 * are counted by wrapping node:fs for this thread only.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { existsSync, readdirSync } from 'node:fs'
import { createRequire, syncBuiltinESMExports } from 'node:module'
import { join } from 'node:path'
import { pino } from 'pino'
import * as lib from '../../src/attribution/index.ts'
import { CorpusIndex, EMPTY_HEAD, type IndexSegment } from '../../src/attribution/corpus-index.ts'
import { IndexBuilder } from '../../node/services/index-builder.ts'
import { IndexSegments } from '../../node/services/index-segments.ts'
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

test('a segment built on this thread is written without blocking it', async () => {
  const tmp = tempDir()
  const builder = new IndexBuilder({ inlineTokens: Number.MAX_SAFE_INTEGER })
  try {
    const { records } = corpus(3, 40)
    const out = join(tmp.dir, 'attribution', 'v-1.seg')
    const { result, calls } = await blockingWritesUnder(tmp.dir, async () => await builder.build([records.map(r => ({ recordIndex: r.recordIndex, contributor: r.contributor, text: r.text }))], { head: EMPTY_HEAD, lastRecordIndex: -1 }, out))
    assert.is(result?.records, 40)
    assert.ok(existsSync(out), 'written')
    assert.equal(calls, [])
  } finally {
    await builder.stop()
    tmp.remove()
  }
})

test('segments merged on this thread are read and written without blocking it', async () => {
  const tmp = tempDir()
  const segments = eightVersions()
  // every merge on this thread
  const store = new IndexSegments({ dir: tmp.dir, logger: pino({ level: 'silent' }), fanout: 2, inlineMergeBytes: Number.MAX_SAFE_INTEGER }, lib)
  try {
    // the versions' own files written as a test writes them (blocking, not counted); then the merges, counted
    const { calls } = await blockingWritesUnder(tmp.dir, async () => {
      for (const segment of segments) store.add(segment, true)
      await store.mergesIdle()
    }, (call, file) => call === 'readFileSync' || file.includes('/m-'))
    assert.ok(readdirSync(tmp.dir).some(f => f.startsWith('m-')), 'merged files written')
    assert.equal(store.coverAt(8).map(r => `${r.from}-${r.to}`), ['1-8'])
    assert.equal(calls, [])
  } finally {
    await store.stop()
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
