/**
 * The memory an index takes in a process of its own: loads the segment files of a
 * directory (one version's cover, oldest first by name), runs queries so the lazy parts
 * are built (query aids, unigram counts), and prints the growth of RSS and of array
 * buffers over the same process with the attribution library loaded but no index.
 * Started by scripts/bench/attribution-versions.ts; one JSON line on stdout.
 * Usage: scripts/run.sh node --expose-gc scripts/bench/attribution-memory.ts DIR
 */
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { CorpusIndex, attributeTokens, decodeSegment, promptWindows, validateAttributionParams } from '../../src/attribution/index.ts'
import { prng, randomInt } from '../../test/fixtures/attribution/prng.ts'

const dir = process.argv[2] as string
const gc = (): void => { (globalThis as { gc?: () => void }).gc?.(); (globalThis as { gc?: () => void }).gc?.() }
gc()
const before = process.memoryUsage()
const index = CorpusIndex.fromSegments(readdirSync(dir).filter(f => f.endsWith('.seg')).sort().map(f => decodeSegment(readFileSync(join(dir, f)), { verify: 'structure' })))
const params = validateAttributionParams()
const r = prng(1)
// outputs made of the index's own tokens: every segment is searched deep
for (let q = 0; q < 20; q++) {
  const s = index.segments[randomInt(r, index.segments.length)] as (typeof index.segments)[number]
  const from = randomInt(r, s.tokens.length - 600)
  const output = Uint32Array.from(s.tokens.subarray(from, from + 500), t => t < 2 ? 100 : t - 2)
  attributeTokens(index, output, promptWindows([], params.minSpan), 10n ** 18n, params)
}
gc()
const after = process.memoryUsage()
console.log(JSON.stringify({ segments: index.segments.length, tokens: index.totalTokens, rss: after.rss - before.rss, arrayBuffers: after.arrayBuffers - before.arrayBuffers, heap: after.heapUsed - before.heapUsed, rssTotal: after.rss }))
