/**
 * The near-duplicate check a validator runs on every record it receives (issue 12 item 2):
 * is the record ≥ 90 % covered by one record the dataset holds? Answered from a window
 * bound first (recordCoverageAtLeast) beside the exact span search for every record
 * (recordCoverageBps ≥ threshold, what ran before), on the same records in the same run,
 * as a ratio; and the answers compared. Tokenization of the same records is printed for
 * scale (it runs once per record either way).
 *
 * The index: seeded Zipf word salad (scripts/bench/synthetic-corpus.ts) in S segments, as
 * a merged index after many versions is. Records: ~1 KB fresh ones (what an honest upload
 * is) and the same number of near-duplicates (an indexed record with one word changed).
 * Usage: scripts/run.sh node scripts/bench/near-duplicates.ts [indexTokens=4000000] [records=2000] [segments=6]
 */
import { CorpusIndex, buildSegmentFromTokens, type TokenizedRecord } from '../../src/attribution/corpus-index.ts'
import { normalizeText } from '../../src/attribution/normalize.ts'
import { validateAttributionParams } from '../../src/attribution/params.ts'
import { recordCoverageAtLeast, recordCoverageBps } from '../../src/attribution/record-coverage.ts'
import { decodeTokens, tokenize, tokenizeReference } from '../../src/attribution/tokenizer.ts'
import { NEAR_DUPLICATE_COVERAGE_BPS } from '../../src/datanet/manifest.ts'
import { foldText } from '../../src/contribution/near-duplicates.ts'
import { prng, randomInt } from '../../test/fixtures/attribution/prng.ts'
import { syntheticCorpus, timed } from './synthetic-corpus.ts'

const indexTokens = Number(process.argv[2] ?? 4_000_000)
const count = Number(process.argv[3] ?? 2000)
const segmentCount = Number(process.argv[4] ?? 6)
const r = prng(20261206)
const params = validateAttributionParams()
const threshold = NEAR_DUPLICATE_COVERAGE_BPS
const RECORD_TOKENS = 250 // ~1 KB of text

const { salad, contributors } = syntheticCorpus(r)
const indexed: TokenizedRecord[] = []
for (let n = 0; n < indexTokens; n += RECORD_TOKENS) {
  indexed.push({ recordIndex: indexed.length, contributor: contributors[randomInt(r, contributors.length)] as string, tokens: salad(RECORD_TOKENS) })
}
const built = timed(() => {
  let index = CorpusIndex.empty()
  const per = Math.ceil(indexed.length / segmentCount)
  for (let i = 0; i < indexed.length; i += per) index = index.extend(buildSegmentFromTokens(indexed.slice(i, i + per), index.base))
  return index
})
const index = built.value
console.log(`index: ${index.totalTokens.toLocaleString('en')} tokens, ${indexed.length.toLocaleString('en')} records in ${index.segments.length} segments (built in ${built.wall.toFixed(1)} s)`)

const fresh = Array.from({ length: count }, () => normalizeText(decodeTokens(salad(RECORD_TOKENS))))
const nearDuplicates = Array.from({ length: count }, () => {
  const words = decodeTokens((indexed[randomInt(r, indexed.length)] as TokenizedRecord).tokens as number[]).split(' ')
  words[1 + randomInt(r, words.length - 1)] = 'changed'
  return normalizeText(words.join(' '))
})

const texts = [...fresh, ...nearDuplicates]
const tokenized = timed(() => texts.map(text => tokenize(text)))
const tokens = tokenized.value
const mb = texts.reduce((a, t) => a + Buffer.byteLength(t), 0) / 1e6


function run (label: string, check: (text: string, t: Uint32Array) => boolean): boolean[] {
  // a warm-up pass over a few, then the measured pass
  for (let i = 0; i < 50; i++) check(texts[i] as string, tokens[i] as Uint32Array)
  const t = timed(() => texts.map((text, i) => check(text, tokens[i] as Uint32Array)))
  const answers = t.value
  const perRecord = t.wall / texts.length
  console.log(`${label}: ${(texts.length / t.wall).toFixed(0).padStart(7)} records/s (${(perRecord * 1e6).toFixed(0)} µs per record, ${t.wall.toFixed(2)} s wall, ${t.cpu.toFixed(2)} s CPU); near-duplicates found: ${answers.filter(Boolean).length} of ${texts.length}`)
  return answers
}

console.log(`records: ${count} fresh + ${count} near-duplicates of ~${RECORD_TOKENS} tokens (${mb.toFixed(1)} MB), threshold ${threshold} bps`)
// tokenization, warm (a second pass): the encoder alone beside the node's (its pattern, pieces memoized)
const reference = timed(() => { for (const t of texts) tokenizeReference(t) })
const ours = timed(() => { for (const t of texts) tokenize(t) })
console.log(`tokenization: first pass ${(mb / tokenized.wall).toFixed(1)} MB/s; warm: tokenize ${(mb / ours.wall).toFixed(1)} MB/s, gpt-tokenizer's encode alone ${(mb / reference.wall).toFixed(1)} MB/s (ratio ${(reference.wall / ours.wall).toFixed(2)})`)
// the text key's fold (the record index's near-duplicate key), against the one expression it was
const foldOnce = (text: string): string => normalizeText(text).normalize('NFKC').toLowerCase().replace(/\s+/gu, ' ').trim()
const foldBaseline = timed(() => { for (const t of texts) foldOnce(t) })
const folds = timed(() => { for (const t of texts) foldText(t) })
console.log(`text fold: ${(texts.length / folds.wall).toFixed(0)} records/s, against the fold that always collapsed whitespace ${(texts.length / foldBaseline.wall).toFixed(0)} records/s (ratio ${(foldBaseline.wall / folds.wall).toFixed(2)})`)
const exact = run('baseline  span search for every record (recordCoverageBps ≥ t)', (text, t) => recordCoverageBps(index, text, params, t) >= threshold)
const bounded = run('bounded   window bound first (recordCoverageAtLeast)       ', (text, t) => recordCoverageAtLeast(index, text, params, threshold, t))
const differ = exact.filter((a, i) => a !== bounded[i]).length
if (differ > 0) throw new Error(`${differ} answers differ`)
const freshTimes = (fn: (text: string, t: Uint32Array) => boolean): number => timed(() => { for (let i = 0; i < count; i++) fn(texts[i] as string, tokens[i] as Uint32Array) }).wall
const fe = freshTimes((text, t) => recordCoverageBps(index, text, params, t) >= threshold)
const fb = freshTimes((text, t) => recordCoverageAtLeast(index, text, params, threshold, t))
console.log(`fresh records alone: baseline ${(count / fe).toFixed(0)} records/s, bounded ${(count / fb).toFixed(0)} records/s (ratio ${(fe / fb).toFixed(1)}×); all ${texts.length} answers equal`)
