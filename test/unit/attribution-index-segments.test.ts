import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { pino } from 'pino'
import * as lib from '../../src/attribution/index.ts'
import { CorpusIndex, buildSegment, type IndexRecord, type IndexSegment } from '../../src/attribution/corpus-index.ts'
import { IndexSegments } from '../../node/services/index-segments.ts'
import { SegmentPack } from '../../node/services/segment-pack.ts'
import { prng, randomInt } from '../fixtures/attribution/prng.ts'
import { tempDir } from '../helpers/tmp.ts'

const params = lib.validateAttributionParams()
const logger = pino({ level: 'silent' })
const WORDS = ['amber', 'basin', 'cedar', 'delta', 'ember', 'fjord', 'grove', 'heron', 'inlet', 'juniper', 'kelp', 'larch', 'moss', 'nectar', 'otter', 'prairie']
const HEIGHTS = 37

/** Per version, its segment (undefined: a version that added no records), built in sequence. */
function versions (): Array<IndexSegment | undefined> {
  const r = prng(4242)
  const out: Array<IndexSegment | undefined> = []
  let index = CorpusIndex.empty()
  let recordIndex = 0
  const texts: string[] = []
  for (let h = 1; h <= HEIGHTS; h++) {
    if (h % 11 === 5) { out.push(undefined); continue }
    const records: IndexRecord[] = []
    for (let i = 0, n = 1 + randomInt(r, 4); i < n; i++) {
      let text = Array.from({ length: 10 + randomInt(r, 30) }, () => WORDS[randomInt(r, WORDS.length)]).join(' ')
      if (texts.length > 0 && randomInt(r, 3) === 0) text = `${texts[randomInt(r, texts.length)] as string} ${text}`
      texts.push(text)
      records.push({ recordIndex: recordIndex++, contributor: '0x' + String(1 + randomInt(r, 5)).repeat(40), text })
    }
    const built = index.appendRecords(records)
    out.push(built.segment)
    index = built.index
  }
  return out
}

const SEGMENTS = versions()
const reference = (h: number): CorpusIndex => CorpusIndex.fromSegments(SEGMENTS.slice(0, h).filter((s): s is IndexSegment => s !== undefined))

/** Outputs quoting records of the first versions and of the last ones. */
const OUTPUTS = (() => {
  const r = prng(7)
  const texts = SEGMENTS.filter((s): s is IndexSegment => s !== undefined).flatMap(s => Array.from({ length: s.recordCount }, (_, i) => lib.decodeTokens(Array.from(s.tokens.subarray(s.docStart[i], (s.docStart[i + 1] ?? s.tokens.length - 1) - 1), t => t - 2))))
  return Array.from({ length: 6 }, (_, i) => {
    const a = texts[i < 3 ? randomInt(r, 10) : texts.length - 1 - randomInt(r, 10)] as string
    const b = texts[randomInt(r, texts.length)] as string
    return `So ${a} and ${b.split(' ').slice(0, 14).join(' ')}`
  })
})()

/** Every answer of a version's index, as one string. */
function answers (index: CorpusIndex): string {
  const weights = [...lib.contentWeights(index.segments, params.maxRecordTokens)].sort(([a], [b]) => a.localeCompare(b)).map(([a, w]) => `${a}:${w}`)
  return JSON.stringify({
    hash: index.indexHash,
    tokens: index.totalTokens,
    weights,
    results: OUTPUTS.map(o => lib.attribute(index, o, null, 10n ** 18n, params)),
    coverage: OUTPUTS.map(o => lib.recordCoverageBps(index, o, params))
  })
}

const EXPECTED = Array.from({ length: HEIGHTS + 1 }, (_, h) => answers(reference(h)))

function open (dir: string, cacheBytes = 1 << 30, inlineMergeBytes?: number, library: typeof lib = lib): IndexSegments {
  const store = new IndexSegments({ dir, logger, fanout: 2, cacheBytes, inlineMergeBytes }, library)
  for (let h = 1; h <= HEIGHTS; h++) {
    const onDisk = store.readVersion(h)
    const segment = SEGMENTS[h - 1]
    store.add(onDisk ?? segment, onDisk === undefined && segment !== undefined)
  }
  return store
}

async function assertAllHeights (store: IndexSegments, note: string): Promise<void> {
  for (let h = 0; h <= HEIGHTS; h++) assert.is(answers(await store.indexAt(h)), EXPECTED[h], `${note}: version ${h}`)
}

test('merged in the background (in the worker), every version answers as before, from a few segments; the same after a restart', async () => {
  const tmp = tempDir()
  try {
    assert.ok(EXPECTED.slice(1).every(e => (JSON.parse(e) as { results: Array<{ contributors: unknown[] }> }).results.some(x => x.contributors.length > 0)))
    const store = open(tmp.dir, undefined, 0)
    await assertAllHeights(store, 'while merging')
    await store.mergesIdle()
    const merged = readdirSync(tmp.dir).filter(f => f.startsWith('m-'))
    // fanout 2 up to 37: the largest aligned range ending at each even height
    assert.is(merged.length, 18)
    assert.ok(merged.includes('m-0000000001-0000000032.seg'))
    for (let h = 1; h <= HEIGHTS; h++) {
      const cover = store.coverAt(h)
      assert.ok(cover.length <= Math.ceil(Math.log2(h + 1)), `version ${h}: ${cover.length} segments`)
    }
    assert.equal(store.coverAt(HEIGHTS).map(r => `${r.from}-${r.to}`), ['1-32', '33-36', '37-37'])
    await assertAllHeights(store, 'merged')
    await store.stop()

    const again = open(tmp.dir, undefined, 0)
    // the merged files are used as they are: nothing is due
    assert.equal(again.coverAt(HEIGHTS).map(r => `${r.from}-${r.to}`), ['1-32', '33-36', '37-37'])
    await again.mergesIdle()
    await assertAllHeights(again, 'after a restart')
    await again.stop()
  } finally {
    tmp.remove()
  }
})

test('a corrupt merged file is ignored and rebuilt; answers never change', async () => {
  const tmp = tempDir()
  try {
    // every merge in the worker: merged segments are files
    const store = open(tmp.dir, undefined, 0)
    await store.mergesIdle()
    await store.stop()
    const big = join(tmp.dir, 'm-0000000001-0000000032.seg')
    const bytes = readFileSync(big)
    bytes[bytes.length - 30] = (bytes[bytes.length - 30] as number) ^ 0xff // a contributor address byte
    writeFileSync(big, bytes)
    const gone = join(tmp.dir, 'm-0000000017-0000000024.seg')
    writeFileSync(gone, 'not a segment')

    const again = open(tmp.dir, undefined, 0)
    await assertAllHeights(again, 'corrupt files')
    await again.mergesIdle()
    assert.ok(existsSync(big) && existsSync(gone))
    assert.equal(again.coverAt(HEIGHTS).map(r => `${r.from}-${r.to}`), ['1-32', '33-36', '37-37'])
    await assertAllHeights(again, 'rebuilt')
    await again.stop()
    // the rebuilt file is a correct segment of its versions
    const rebuilt = lib.decodeSegment(readFileSync(big))
    assert.is(CorpusIndex.fromSegments([rebuilt]).indexHash, reference(32).indexHash)
  } finally {
    tmp.remove()
  }
})

test('files the worker wrote are read back against the sha256 the node kept of them, with a structural check alone; one changed since is verified in full, and rebuilt', async () => {
  const tmp = tempDir()
  try {
    // every merge in the worker: merged segments are files, their sha256 packed
    const store = open(tmp.dir, undefined, 0)
    await store.mergesIdle()
    await store.stop()
    const files = readdirSync(tmp.dir).filter(f => f.startsWith('m-'))
    assert.is(files.length, 18)
    const changed = join(tmp.dir, 'm-0000000001-0000000032.seg')
    const bytes = readFileSync(changed)
    bytes[bytes.length - 30] = (bytes[bytes.length - 30] as number) ^ 0xff // a contributor address byte: the structure still holds
    writeFileSync(changed, bytes)

    const checks: Array<{ bytes: number, verify: string }> = []
    const watched = { ...lib, decodeSegment: (b: Uint8Array, o?: { verify?: 'full' | 'structure' }) => { checks.push({ bytes: b.byteLength, verify: o?.verify ?? 'full' }); return lib.decodeSegment(b, o) } }
    const again = open(tmp.dir, undefined, 0, watched)
    await assertAllHeights(again, 'read back')
    await again.mergesIdle()
    await assertAllHeights(again, 'rebuilt')
    await again.stop()
    // the changed file alone was verified in full (and failed: rebuilt); every other read was structural
    assert.equal(checks.filter(c => c.verify === 'full').map(c => c.bytes), [bytes.byteLength])
    assert.ok(checks.filter(c => c.verify === 'structure').length > 30)
    assert.is(CorpusIndex.fromSegments([lib.decodeSegment(readFileSync(changed))]).indexHash, reference(32).indexHash)
  } finally {
    tmp.remove()
  }
})

test('a packed merged segment whose bytes changed, or that is not a segment, is ignored and rebuilt; answers never change', async () => {
  const tmp = tempDir()
  try {
    // every merge on this thread: merged segments are packed with the versions
    const store = open(tmp.dir)
    await store.mergesIdle()
    await store.stop()
    assert.equal(readdirSync(tmp.dir), ['segments.pack'])
    const packFile = join(tmp.dir, 'segments.pack')
    const pack = readFileSync(packFile)
    const at = pack.indexOf('m-0000000001-0000000032.seg') + 27 + 500
    pack[at] = (pack[at] as number) ^ 0xff
    writeFileSync(packFile, pack)
    const appended = new SegmentPack(packFile)
    appended.append('m-0000000017-0000000024.seg', Buffer.from('not a segment'))
    appended.close()

    const again = open(tmp.dir)
    await assertAllHeights(again, 'corrupt entries')
    await again.mergesIdle()
    assert.equal(again.coverAt(HEIGHTS).map(r => `${r.from}-${r.to}`), ['1-32', '33-36', '37-37'])
    await assertAllHeights(again, 'rebuilt')
    await again.stop()
    // the rebuilt entries (appended, so the later ones) are correct segments of their versions
    const reread = new SegmentPack(packFile)
    const rebuilt = lib.decodeSegment(reread.read('m-0000000001-0000000032.seg') as Uint8Array)
    assert.is(CorpusIndex.fromSegments([rebuilt]).indexHash, reference(32).indexHash)
    assert.ok(lib.decodeSegment(reread.read('m-0000000017-0000000024.seg') as Uint8Array).recordCount > 0)
    reread.close()
  } finally {
    tmp.remove()
  }
})

test('memory: with no cache budget only the newest version\'s cover stays loaded; old versions load on demand', async () => {
  const tmp = tempDir()
  try {
    const store = open(tmp.dir, 0)
    await store.mergesIdle()
    await assertAllHeights(store, 'no cache')
    const newest = await store.indexAt(HEIGHTS)
    const pinned = newest.segments.reduce((n, s) => n + s.tokens.byteLength + s.sa.byteLength + 12 * s.recordCount, 0)
    assert.is(store.loadedBytes, pinned)
    // all versions' segments together are far more
    const all = SEGMENTS.reduce((n, s) => n + (s === undefined ? 0 : s.tokens.byteLength + s.sa.byteLength + 12 * s.recordCount), 0)
    assert.ok(store.loadedBytes <= all)
    await store.stop()
  } finally {
    tmp.remove()
  }
})

test('memory: segments a merge took out of the newest cover are let go at once, whatever the cache budget; old versions still answer', async () => {
  const tmp = tempDir()
  try {
    const store = open(tmp.dir)
    await store.mergesIdle()
    const newest = await store.indexAt(HEIGHTS)
    const pinned = newest.segments.reduce((n, s) => n + s.tokens.byteLength + s.sa.byteLength + 12 * s.recordCount, 0)
    assert.is(store.loadedBytes, pinned, `${store.loadedBytes} bytes of segments loaded for a newest cover of ${pinned}`)
    await assertAllHeights(store, 'parts loaded again')
    await store.stop()
  } finally {
    tmp.remove()
  }
})

test('a segment that does not continue the versions before is refused', () => {
  const tmp = tempDir()
  try {
    const store = new IndexSegments({ dir: tmp.dir, logger, merge: false }, lib)
    store.add(SEGMENTS[0], true)
    assert.throws(() => { store.add(SEGMENTS[2], true) }, /does not continue/)
    assert.throws(() => { store.add(buildSegment([{ recordIndex: 0, contributor: '0x' + '1'.repeat(40), text: 'amber basin' }]), true) }, /does not continue/)
    assert.is(store.height, 1)
  } finally {
    tmp.remove()
  }
})

test('a long history: each new version costs the merge schedule O(log h), not a scan of every height (a catching-up node adds thousands)', async () => {
  const tmp = tempDir()
  const store = new IndexSegments({ dir: tmp.dir, logger, fanout: 2 }, lib)
  try {
    // versions that add no records: nothing to merge, only the schedule's own work
    for (let h = 1; h <= 2000; h++) store.add(undefined, false)
    let asked = 0
    const merged = (store as unknown as { merged: Set<string> }).merged
    const has = merged.has.bind(merged)
    merged.has = (k: string) => { asked++; return has(k) }
    for (let h = 2001; h <= 2100; h++) store.add(undefined, false)
    // log2(2100) ≈ 11 ranges a height at most, each asked about a few times (schedule, cover)
    assert.ok(asked < 100 * 40, `${asked} lookups for 100 versions`)
    assert.is(store.height, 2100)
  } finally {
    await store.stop()
    tmp.remove()
  }
})

test.run()
