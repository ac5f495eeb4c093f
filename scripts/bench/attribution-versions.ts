/**
 * Attribution after many versions (issue 14 item 5): V versions of ~T tokens each, one
 * delta segment per version. Latency of attributing a 500-token output (half of it
 * copied from records of the queried version, as scripts/bench/attribution.ts does)
 * against the newest version and older ones: with the segments merged as the aligned-
 * tier policy covers them (src/attribution/merge-policy.ts), beside the baseline in the
 * same run — every version's own segment, unmerged. Results are checked identical.
 * Then the memory of the newest version's merged index, loaded in a process of its own
 * (scripts/bench/attribution-memory.ts).
 *
 * Merged ranges are built here straight from the per-version segments (the same segment
 * the node builds level by level in its worker: a merge depends only on the records).
 *
 * Targets: p50 ≤ 5 ms, p95 ≤ 25 ms after 1,000 versions; index memory at 10 M tokens ≤ 300 MB.
 * Usage: scripts/run.sh node --expose-gc scripts/bench/attribution-versions.ts
 *          [versions=1000] [tokensPerVersion=10000] [queries=200] [baselineQueries=20] [fanouts=4]
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { CorpusIndex, buildSegmentFromTokens, mergeSegments, type IndexSegment, type TokenizedRecord } from '../../src/attribution/corpus-index.ts'
import { attributeTokens } from '../../src/attribution/index.ts'
import { encodeSegment } from '../../src/attribution/segment-codec.ts'
import { DEFAULT_MERGE_FANOUT, type HeightRange, coverOf, dueMerges, isMergeRange } from '../../src/attribution/merge-policy.ts'
import { validateAttributionParams } from '../../src/attribution/params.ts'
import { type PromptWindows, promptWindows } from '../../src/attribution/prompt-echo.ts'
import { prng, randomInt } from '../../test/fixtures/attribution/prng.ts'
import { syntheticCorpus, timed } from './synthetic-corpus.ts'

const versions = Number(process.argv[2] ?? 1000)
const perVersion = Number(process.argv[3] ?? 10_000)
const queries = Number(process.argv[4] ?? 200)
const baselineQueries = Number(process.argv[5] ?? 20)
const fanouts = (process.argv[6] ?? '4').split(',').map(Number)
const heights = [...new Set([versions, Math.round(versions * 0.75), Math.round(versions / 2), Math.round(versions / 4) + 3, Math.round(versions / 10) + 1])].filter(h => h >= 1)
const r = prng(20261205)

const fmt = (x: number, digits = 2): string => x.toFixed(digits)
const percentile = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number
const load = (): string => loadavg().map(x => fmt(x, 2)).join(' ')
const mb = (bytes: number): string => fmt(bytes / 1048576, 0)
// ── The corpus (scripts/bench/synthetic-corpus.ts): Zipf word salad, phrases repeated across records.
const { salad, phrases, contributors } = syntheticCorpus(r)

console.log(`node ${process.version}; ${versions} versions of ~${perVersion} tokens; load average ${load()}`)
const records: TokenizedRecord[] = []
/** First record of each version; [versions] = records.length. */
const firstRecord: number[] = []
const segments: IndexSegment[] = []
const build = timed(() => {
  let base = CorpusIndex.empty().base
  for (let v = 0; v < versions; v++) {
    firstRecord.push(records.length)
    const mine: TokenizedRecord[] = []
    let tokens = 0
    while (tokens < perVersion) {
      const t = salad(50 + randomInt(r, 400))
      if (randomInt(r, 4) === 0) t.splice(randomInt(r, t.length), 0, ...(phrases[Math.floor(r() ** 3 * phrases.length)] as number[]))
      const rec = { recordIndex: records.length, contributor: contributors[randomInt(r, contributors.length)] as string, tokens: t }
      records.push(rec)
      mine.push(rec)
      tokens += t.length
    }
    const segment = buildSegmentFromTokens(mine, base)
    segments.push(segment)
    base = { head: segment.headAfter, lastRecordIndex: segment.lastRecordIndex }
  }
  firstRecord.push(records.length)
})
const totalTokens = segments.reduce((n, s) => n + s.tokenCount, 0)
console.log(`corpus: ${records.length} records, ${totalTokens} tokens in ${versions} per-version segments (generated and built in ${fmt(build.wall, 1)} s)`)

// ── Outputs per queried version: 500 tokens, half copied (passages of 25–75) from that version's records.
const params = validateAttributionParams()
function makeOutput (h: number): { output: Uint32Array, prompt: PromptWindows } {
  const out: number[] = []
  if (randomInt(r, 3) === 0) out.push(...(phrases[randomInt(r, phrases.length)] as number[]))
  let copy = true
  const upTo = firstRecord[h] as number
  while (out.length < 500) {
    const len = Math.min(25 + randomInt(r, 51), 500 - out.length)
    if (copy) {
      const rec = (records[randomInt(r, upTo)] as TokenizedRecord).tokens as number[]
      const from = randomInt(r, Math.max(1, rec.length - len))
      out.push(...rec.slice(from, from + len))
    } else {
      out.push(...salad(len))
    }
    copy = !copy
  }
  return { output: Uint32Array.from(out), prompt: promptWindows(salad(100), params.minSpan) }
}
const outputs = new Map(heights.map(h => [h, Array.from({ length: queries }, () => makeOutput(h))]))

interface Latency { p50: number, p95: number, p99: number, cpu50: number, cpu95: number, results: string[] }
function measure (index: CorpusIndex, h: number, n: number): Latency {
  const outs = (outputs.get(h) ?? []).slice(0, n)
  for (const o of outs.slice(0, 3)) attributeTokens(index, o.output, o.prompt, 10n ** 18n, params) // warm-up: counts, query aids
  const latencies: number[] = []
  const cpu: number[] = []
  const results: string[] = []
  for (const o of outs) {
    const c0 = process.cpuUsage()
    const t0 = performance.now()
    const result = attributeTokens(index, o.output, o.prompt, 10n ** 18n, params)
    latencies.push(performance.now() - t0)
    const c = process.cpuUsage(c0)
    cpu.push((c.user + c.system) / 1000)
    results.push(result.resultHash)
  }
  latencies.sort((a, b) => a - b)
  cpu.sort((a, b) => a - b)
  return { p50: percentile(latencies, 0.5), p95: percentile(latencies, 0.95), p99: percentile(latencies, 0.99), cpu50: percentile(cpu, 0.5), cpu95: percentile(cpu, 0.95), results }
}

// ── Baseline: every version its own segment.
const baseline = new Map<number, Latency>()
for (const h of heights) {
  const index = CorpusIndex.fromSegments(segments.slice(0, h))
  const b = measure(index, h, baselineQueries)
  baseline.set(h, b)
  console.log(`baseline, version ${h} (${h} segments, ${baselineQueries} queries): p50 ${fmt(b.p50)} ms, p95 ${fmt(b.p95)} ms; CPU per query p50 ${fmt(b.cpu50)} ms, p95 ${fmt(b.cpu95)} ms; load average ${load()}`)
}

// ── Merged, per fanout.
const key = (x: HeightRange): string => `${x.from}-${x.to}`
let newestCover: IndexSegment[] = []
for (const fanout of fanouts) {
  const built = new Map<string, IndexSegment>()
  let mergeTokens = 0
  let mergeWall = 0
  let largest = { tokens: 0, wall: 0 }
  const segmentOf = (x: HeightRange): IndexSegment => {
    let s = built.get(key(x))
    if (s === undefined) {
      const m = timed(() => mergeSegments(segments.slice(x.from - 1, x.to)))
      s = m.value
      built.set(key(x), s)
      mergeTokens += s.tokenCount
      mergeWall += m.wall
      if (s.tokenCount > largest.tokens) largest = { tokens: s.tokenCount, wall: m.wall }
    }
    return s
  }
  // every merge due by `versions` done
  const has = (x: HeightRange): boolean => isMergeRange(x, fanout) && x.to <= versions
  for (const h of heights) {
    const cover = coverOf(h, has, fanout)
    const index = CorpusIndex.fromSegments(cover.map(x => x.from === x.to ? segments[x.from - 1] as IndexSegment : segmentOf(x)))
    const m = measure(index, h, queries)
    const b = baseline.get(h) as Latency
    const same = b.results.every((x, i) => x === m.results[i])
    if (!same) throw new Error(`version ${h}: merged results differ from the unmerged ones`)
    console.log(`fanout ${fanout}, version ${h} (${cover.length} segments, largest ${fmt(Math.max(...index.segments.map(s => s.tokenCount)) / 1e6)} M tokens; ${queries} queries): p50 ${fmt(m.p50)} ms, p95 ${fmt(m.p95)} ms, p99 ${fmt(m.p99)} ms; CPU per query p50 ${fmt(m.cpu50)} ms, p95 ${fmt(m.cpu95)} ms — ${fmt(b.p50 / m.p50, 0)}× faster at p50, ${fmt(b.p95 / m.p95, 0)}× at p95 than unmerged (CPU: ${fmt(b.cpu50 / m.cpu50, 0)}×, ${fmt(b.cpu95 / m.cpu95, 0)}×); results identical; load average ${load()}`)
    if (h === versions && (fanout === DEFAULT_MERGE_FANOUT || newestCover.length === 0)) newestCover = [...index.segments]
  }
  // what the node merges over the life of `versions` versions (merge-policy.ts dueMerges: the largest aligned range ending at each height)
  const before = [0]
  for (const seg of segments) before.push((before[before.length - 1] as number) + seg.tokenCount)
  const resorted = dueMerges(versions, () => false, fanout).reduce((n, x) => n + (before[x.to] as number) - (before[x.from - 1] as number), 0)
  const rate = mergeTokens / mergeWall
  console.log(`  merges built: ${built.size} ranges, ${fmt(mergeTokens / 1e6, 1)} M tokens in ${fmt(mergeWall, 1)} s (${fmt(rate / 1e6)} M tokens/s; the largest, ${fmt(largest.tokens / 1e6, 1)} M tokens, ${fmt(largest.wall, 1)} s); over the life of ${versions} versions the node's merges re-sort every token ${fmt(resorted / totalTokens, 1)}× on average (≈ ${fmt(resorted / rate, 0)} s of a background core in all, ${fmt(resorted / rate / versions * 1000, 0)} ms per version)`)
  built.clear()
}

// ── Reference: version `versions` in one segment (a full compaction), the floor merges can reach.
{
  const whole = timed(() => mergeSegments(segments))
  const m = measure(CorpusIndex.fromSegments([whole.value]), versions, queries)
  const b = baseline.get(versions) as Latency
  if (!b.results.every((x, i) => x === m.results[i])) throw new Error('one segment: results differ')
  console.log(`reference, version ${versions} in one segment (merged in ${fmt(whole.wall, 1)} s): p50 ${fmt(m.p50)} ms, p95 ${fmt(m.p95)} ms, p99 ${fmt(m.p99)} ms; CPU per query p50 ${fmt(m.cpu50)} ms, p95 ${fmt(m.cpu95)} ms; load average ${load()}`)
}

// ── Memory of the newest version's merged index (the default fanout's), in a process of its own.
{
  const dir = mkdtempSync(join(tmpdir(), 'datanet-attr-mem-'))
  try {
    newestCover.forEach((seg, i) => { writeFileSync(join(dir, `${i.toString().padStart(4, '0')}.seg`), encodeSegment(seg)) })
    const out = execFileSync(process.execPath, [...process.execArgv, join(import.meta.dirname, 'attribution-memory.ts'), dir], { encoding: 'utf8' })
    const m = JSON.parse(out.trim().split('\n').pop() as string) as { segments: number, tokens: number, rss: number, arrayBuffers: number, heap: number, rssTotal: number }
    console.log(`memory of version ${versions}'s merged index (${m.segments} segments, ${m.tokens} tokens, queried), in a process of its own: RSS +${mb(m.rss)} MB, array buffers +${mb(m.arrayBuffers)} MB (${fmt(m.arrayBuffers / m.tokens)} bytes/token), heap +${mb(m.heap)} MB over the same process without it; that process's RSS ${mb(m.rssTotal)} MB in all (node and the tokenizer tables included)  target ≤ 300 MB`)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
console.log(`this process: peak RSS ${mb(process.resourceUsage().maxRSS * 1024)} MB (all ${versions} per-version segments, the merged ones and the baseline); load average ${load()}`)
