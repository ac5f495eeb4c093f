/**
 * A restart's attribution index reload (node/services/index-segments.ts): a node reads
 * every version's segment back at start. V versions of R records each, stored as the node
 * stores them now — small segments packed, each read against its sha256 and checked for
 * structure; large ones as files its worker wrote, with their sha256 kept in the pack, read
 * the same way — against the same segments as a file each, fully verified (hash chain and
 * suffix array), as they were stored before: the baseline, same run, as a ratio.
 *
 *   bash scripts/run.sh node scripts/bench/index-reopen.ts [V=200] [R=500] [runs=3]
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import * as lib from '../../src/attribution/index.ts'
import { CorpusIndex, type IndexSegment } from '../../src/attribution/corpus-index.ts'
import { IndexSegments } from '../../node/services/index-segments.ts'
import { writeSegmentFileSync } from '../../node/services/segment-files.ts'
import { sha256 } from '../../src/codec/hash.ts'
import { corpus } from '../../test/fixtures/attribution/corpus.ts'

const versions = Number(process.argv[2] ?? 200)
const perVersion = Number(process.argv[3] ?? 500)
const runs = Number(process.argv[4] ?? 3)
const logger = pino({ level: 'silent' })
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number

const { records } = corpus(11, versions * perVersion)
const segments: IndexSegment[] = []
let index = CorpusIndex.empty()
for (let h = 0; h < versions; h++) {
  const built = index.appendRecords(records.slice(h * perVersion, (h + 1) * perVersion))
  segments.push(built.segment as IndexSegment)
  index = built.index
}
const root = mkdtempSync(join(tmpdir(), 'index-reopen-'))
try {
  const packed = join(root, 'packed')
  const store = new IndexSegments({ dir: packed, logger, fanout: 2, merge: false }, lib)
  for (const segment of segments) store.add(segment, true)
  await store.stop()
  const files = join(root, 'files')
  mkdirSync(files)
  segments.forEach((segment, i) => { writeFileSync(join(files, `${(i + 1).toString().padStart(10, '0')}.seg`), lib.encodeSegment(segment)) })
  // as the build worker leaves them: the file written there, its sha256 handed back and kept
  const worker = join(root, 'worker')
  const built = new IndexSegments({ dir: worker, logger, fanout: 2, merge: false }, lib)
  for (const segment of segments) {
    const bytes = lib.encodeSegment(segment)
    writeSegmentFileSync(built.versionFile(built.height + 1), bytes)
    built.adopt(segment, bytes, true, sha256(bytes))
  }
  await built.stop()

  /** Ms to open `dir` and read every version back, as a start does (attribution.ts extend). */
  const reopen = async (dir: string): Promise<number> => {
    const t0 = performance.now()
    const again = new IndexSegments({ dir, logger, fanout: 2, merge: false }, lib)
    for (let h = 1; h <= versions; h++) {
      const segment = again.readVersion(h)
      if (segment === undefined) throw new Error(`version ${h} not read back`)
      again.add(segment, false)
    }
    const ms = performance.now() - t0
    await again.stop()
    return ms
  }
  const times = { packed: [] as number[], worker: [] as number[], files: [] as number[] }
  for (let i = 0; i < runs; i++) {
    times.files.push(await reopen(files))
    times.packed.push(await reopen(packed))
    times.worker.push(await reopen(worker))
  }
  const tokens = index.totalTokens
  console.log(`${versions} versions of ${perVersion} records, ${tokens} tokens; node ${process.version}`)
  console.log(`baseline  a file a version, fully verified: ${median(times.files).toFixed(0)} ms (${(median(times.files) * 1e6 / tokens).toFixed(0)} ns a token; runs ${times.files.map(t => t.toFixed(0)).join(', ')})`)
  for (const [kind, label] of [['packed', 'packed, read against sha256, structure:'], ['worker', 'files a worker wrote, sha256 kept:     ']] as const) {
    const t = times[kind]
    console.log(`${label} ${median(t).toFixed(0)} ms (${(median(t) * 1e6 / tokens).toFixed(0)} ns a token; runs ${t.map(x => x.toFixed(0)).join(', ')}): ${(median(times.files) / median(t)).toFixed(1)}× faster`)
  }
} finally {
  rmSync(root, { recursive: true, force: true })
}
