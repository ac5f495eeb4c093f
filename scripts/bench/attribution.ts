/**
 * The attribution pipeline (src/attribution) on a synthetic corpus: index build rate,
 * segment persistence, tokenization rate, and the latency of attributing a 500-token
 * output (half of it copied from records), beside a naive linear-scan baseline over the
 * same corpus in the same run.
 *
 * The corpus is seeded word salad over ~20k cl100k word tokens with a Zipf law, plus 300
 * phrases of 20–40 tokens repeated across records (some in more than D_MAX records,
 * so common). The index part takes token ids directly; tokenization is measured on
 * its own, on text made from the same vocabulary.
 *
 * Targets (ATTRIBUTION.md §7): index build ≥ 1.5 M tokens/s on one core; output
 * tokenization ≥ 5 MB/s; attribution of a 500-token output p50 ≤ 5 ms, p95 ≤ 25 ms.
 * Times are wall-clock; the CPU time of the process beside them shows when other work
 * on the machine slowed a run down.
 * Usage: scripts/run.sh node scripts/bench/attribution.ts [tokens=10000000] [queries=200]
 */
import { ALPHABET_SIZE, CorpusIndex, buildSegmentFromTokens, type IndexSegment, type TokenizedRecord } from '../../src/attribution/corpus-index.ts'
import { attributeTokens } from '../../src/attribution/index.ts'
import { normalizeText } from '../../src/attribution/normalize.ts'
import { validateAttributionParams } from '../../src/attribution/params.ts'
import { type PromptWindows, promptWindows } from '../../src/attribution/prompt-echo.ts'
import { decodeSegment, encodeSegment } from '../../src/attribution/segment-codec.ts'
import { buildSuffixArray } from '../../src/attribution/suffix-array.ts'
import { decodeTokens, isWordStartToken, tokenize } from '../../src/attribution/tokenizer.ts'
import { prng, randomInt } from '../../test/fixtures/attribution/prng.ts'
import { syntheticCorpus, timed } from './synthetic-corpus.ts'

const targetTokens = Number(process.argv[2] ?? 10_000_000)
const queries = Number(process.argv[3] ?? 200)
const naiveQueries = 2
const r = prng(20250101)

const fmt = (x: number, digits = 2): string => x.toFixed(digits)
const percentile = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number

// ── Vocabulary and corpus (scripts/bench/synthetic-corpus.ts).
const { vocabulary, salad, phrases, contributors } = syntheticCorpus(r)
const records: TokenizedRecord[] = []
let generated = 0
const gen = timed(() => {
  while (generated < targetTokens) {
    const tokens = salad(50 + randomInt(r, 400))
    if (randomInt(r, 4) === 0) {
      // Skewed: the first phrases land in more than C_SCAN records, the last in a few.
      const phrase = phrases[Math.floor(r() ** 3 * phrases.length)] as number[]
      tokens.splice(randomInt(r, tokens.length), 0, ...phrase)
    }
    records.push({ recordIndex: records.length, contributor: contributors[randomInt(r, contributors.length)] as string, tokens })
    generated += tokens.length
  }
})
console.log(`node ${process.version}; corpus: ${records.length} records, ${generated} tokens, vocabulary ${vocabulary} words (generated in ${fmt(gen.wall, 1)} s)`)

// ── Index build.
const build = timed(() => buildSegmentFromTokens(records))
const segment = build.value
const index = CorpusIndex.empty().extend(segment)
console.log(`index build: ${fmt(generated / build.wall / 1e6)} M tokens/s (${fmt(build.wall)} s wall, ${fmt(build.cpu)} s CPU → ${fmt(generated / build.cpu / 1e6)} M tokens/s of CPU)  target ≥ 1.5 M tokens/s`)
const saOnly = timed(() => buildSuffixArray(segment.text.slice(), ALPHABET_SIZE))
console.log(`  of which the suffix array (SA-IS): ${fmt(saOnly.wall)} s → ${fmt(generated / saOnly.wall / 1e6)} M tokens/s`)
const bytes = timed(() => encodeSegment(segment))
const loadFull = timed(() => decodeSegment(bytes.value))
const loadFast = timed(() => decodeSegment(bytes.value, { verify: 'structure' }))
console.log(`  segment bytes: ${fmt(bytes.value.byteLength / 1e6, 1)} MB (${fmt(bytes.value.byteLength / generated)} bytes/token); encode ${fmt(bytes.wall * 1000, 0)} ms, load with full verification ${fmt(loadFull.wall * 1000, 0)} ms, structure only ${fmt(loadFast.wall * 1000, 0)} ms`)
const delta = records.slice(0, Math.min(records.length, Math.ceil(1_000_000 / 250)))
const deltaTokens = delta.reduce((n, rec) => n + rec.tokens.length, 0)
const deltaBuild = timed(() => buildSegmentFromTokens(delta.map((rec, i) => ({ ...rec, recordIndex: records.length + i })), index.base))
console.log(`  delta segment of ${deltaTokens} tokens: ${fmt(deltaBuild.wall * 1000, 0)} ms (${fmt(deltaBuild.cpu * 1000, 0)} ms CPU)  target ≤ 1 s per 1 M tokens`)

// ── Tokenization of text made from the same vocabulary (after a warm-up run).
const text = Array.from({ length: 4000 }, () => decodeTokens(salad(200))).join('\n')
const mb = Buffer.byteLength(text) / 1e6
tokenize(normalizeText(text.slice(0, 200_000)))
const tok = timed(() => tokenize(normalizeText(text)))
const norm = timed(() => normalizeText(text))
console.log(`tokenization (N then T): ${fmt(mb / tok.wall)} MB/s (${fmt(mb, 1)} MB → ${tok.value.length} tokens; ${fmt(mb / tok.cpu)} MB/s of CPU); normalisation alone ${fmt(mb / norm.wall, 0)} MB/s  target ≥ 5 MB/s`)

// ── Queries: 500-token outputs, half copied from records in passages of 25–75 tokens.
const params = validateAttributionParams()
let copiedTokens = 0
function makeOutput (): { output: Uint32Array, prompt: PromptWindows } {
  const out: number[] = []
  // A third of the outputs open with one of the repeated phrases (common when it is in > D_MAX records).
  if (randomInt(r, 3) === 0) out.push(...(phrases[randomInt(r, phrases.length)] as number[]))
  let copy = true
  while (out.length < 500) {
    const len = Math.min(25 + randomInt(r, 51), 500 - out.length)
    if (copy) {
      const rec = (records[randomInt(r, records.length)] as TokenizedRecord).tokens as number[]
      const from = randomInt(r, Math.max(1, rec.length - len))
      const passage = rec.slice(from, from + len)
      out.push(...passage)
      copiedTokens += passage.length
    } else {
      out.push(...salad(len))
    }
    copy = !copy
  }
  return { output: Uint32Array.from(out), prompt: promptWindows(salad(100), params.minSpan) }
}
const outputs = Array.from({ length: queries }, makeOutput)
for (const o of outputs.slice(0, 10)) attributeTokens(index, o.output, o.prompt, 10n ** 18n, params) // warm-up
const latencies: number[] = []
const cpuTimes: number[] = []
let spans = 0
let common = 0
let credited = 0
const all = timed(() => {
  for (const o of outputs) {
    const c0 = process.cpuUsage()
    const t0 = performance.now()
    const result = attributeTokens(index, o.output, o.prompt, 10n ** 18n, params)
    latencies.push(performance.now() - t0)
    const c = process.cpuUsage(c0)
    cpuTimes.push((c.user + c.system) / 1000)
    spans += result.spans.length
    common += result.spans.filter(x => x.common).length
    credited += result.coverage.num > 0 ? 1 : 0
  }
})
latencies.sort((a, b) => a - b)
cpuTimes.sort((a, b) => a - b)
const p50 = percentile(latencies, 0.5)
console.log(`attribution of a 500-token output (${queries} queries, ${fmt(copiedTokens / (queries * 500) * 100, 0)}% of tokens copied, ${fmt(spans / queries, 1)} spans each, ${common} common spans in all, ${credited} outputs credited): p50 ${fmt(p50)} ms, p95 ${fmt(percentile(latencies, 0.95))} ms, p99 ${fmt(percentile(latencies, 0.99))} ms, max ${fmt(latencies[latencies.length - 1] as number)} ms; ${fmt(queries / all.wall, 0)} events/s  target p50 ≤ 5 ms, p95 ≤ 25 ms`)
console.log(`  CPU time per query: p50 ${fmt(percentile(cpuTimes, 0.5))} ms, p95 ${fmt(percentile(cpuTimes, 0.95))} ms, p99 ${fmt(percentile(cpuTimes, 0.99))} ms (the process had ${fmt(all.cpu / all.wall * 100, 0)}% of a core over the queries)`)

// ── Naive baseline: for every word-start position, a linear scan of the stream for the longest match.
function naiveLongestMatches (seg: IndexSegment, output: Uint32Array): Int32Array {
  const stream = seg.tokens
  const n = stream.length
  const best = new Int32Array(output.length)
  for (let l = 0; l < output.length; l++) {
    if (l > 0 && !isWordStartToken(output[l] as number)) continue
    const first = (output[l] as number) + 2
    const cap = Math.min(params.maxSpan, output.length - l)
    let m = 0
    for (let p = 0; p < n; p++) {
      if (stream[p] !== first) continue
      let k = 1
      while (k < cap && stream[p + k] === (output[l + k] as number) + 2) k++
      if (k > m) m = k
    }
    best[l] = m
  }
  return best
}
const naive = timed(() => { for (const o of outputs.slice(0, naiveQueries)) naiveLongestMatches(segment, o.output) })
const naiveMs = naive.wall / naiveQueries * 1000
console.log(`  naive linear scan of the same corpus (longest matches only, ${naiveQueries} queries): ${fmt(naiveMs, 0)} ms per output → the index is ${fmt(naiveMs / p50, 0)}× faster at p50`)
console.log(`peak RSS ${fmt(process.resourceUsage().maxRSS / 1024, 0)} MB`)
