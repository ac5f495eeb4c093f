import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { canonicalBytes } from '../../src/codec/jcs.ts'
import { parseManifest } from '../../src/datanet/manifest.ts'
import { shardCid, splitShard } from '../../src/datanet/shard.ts'
import { merkleRoot } from '../../src/merkle/tree.ts'
import { indexContribution, scanContribution, type IndexDeps } from '../../src/contribution/scan.ts'
import { ingestRecords } from '../../src/contribution/ingest.ts'
import { compileRecordSchema } from '../../src/datanet/record-schema.ts'
import { builtinRules, judge, Reason, type ContributionFacts, type Judgement } from '../../src/contribution/rules/index.ts'
import { foldText, textKey } from '../../src/contribution/near-duplicates.ts'
import { normalizeText } from '../../src/attribution/normalize.ts'
import { CorpusIndex, buildSegment } from '../../src/attribution/corpus-index.ts'
import { recordCoverageAtLeast, recordCoverageBps } from '../../src/attribution/record-coverage.ts'
import { attributionParamsFromManifest } from '../../src/attribution/params.ts'
import { recordText } from '../../src/datanet/record-text.ts'
import { NEAR_DUPLICATE_COVERAGE_BPS } from '../../src/datanet/manifest.ts'
import type { CID } from 'multiformats/cid'
import type { Contribution } from '../../src/contribution/contribution.ts'
import type { ParsedItem } from '../../src/contribution/parse.ts'

// Issue 12 item 2: a victim's text with a trailing space or an extra optional field was a
// new record (a new hash) accepted at score 100, so k copies took k/(k+1) of every span.

const SCHEMA = { type: 'object', required: ['text'], properties: { text: { type: 'string', minLength: 1 } } }
const MANIFEST = parseManifest({
  name: 'near',
  license: 'MIT',
  recordSchema: SCHEMA,
  shardSize: 65536,
  validators: [{ address: '0x' + '11'.repeat(20), stake: '1' }]
})

const VICTIM = 'The harbour seals of the northern coast haul out on the same three rocks every spring tide.'
const OTHERS = [
  'Lichens on the granite grow a millimetre a year, so a bare patch marks an old rockfall.',
  'Fishermen count the terns nesting on the breakwater and report them to the county.'
]

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
const line = (v: unknown): string => Buffer.from(canonicalBytes(v) as Uint8Array).toString()

/** A record index and a block store in memory, as the node's are on disk. */
function world (): { blocks: Map<string, Uint8Array>, index: Map<string, string>, deps: IndexDeps, contribution: (lines: readonly string[]) => Contribution } {
  const blocks = new Map<string, Uint8Array>()
  const index = new Map<string, string>()
  const deps: IndexDeps = {
    getShard: async (cid: CID) => blocks.get(cid.toString()) as Uint8Array,
    owners: async hashes => hashes.map(h => index.get(hex(h))),
    claim: async (hashes, owner) => { for (const h of hashes) index.set(hex(h), owner) }
  }
  const contribution = (lines: readonly string[]): Contribution => {
    const bytes = new TextEncoder().encode(lines.map(l => l + '\n').join(''))
    const cid = shardCid(bytes)
    blocks.set(cid.toString(), bytes)
    return {
      datanet: 'bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy',
      contributor: '0x' + '22'.repeat(20),
      shards: [cid],
      recordCount: lines.length,
      byteSize: bytes.length,
      recordsRoot: merkleRoot(splitShard(bytes).map(r => r.hash)),
      createdAt: 1,
      signature: new Uint8Array(65)
    } as unknown as Contribution
  }
  return { blocks, index, deps, contribution }
}

async function verdictOn (w: ReturnType<typeof world>, lines: readonly string[], cid: string): Promise<Judgement> {
  const c = w.contribution(lines)
  const counted = await indexContribution(c, cid, w.deps)
  const facts: ContributionFacts = { recordCount: lines.length, byteSize: c.byteSize, invalidRecords: 0, flagged: new Map(), ...counted }
  return judge(facts, MANIFEST, builtinRules)
}

async function withVictim (): Promise<ReturnType<typeof world>> {
  const w = world()
  const j = await verdictOn(w, [line({ text: VICTIM }), ...OTHERS.map(text => line({ text }))], 'bafyvictim')
  assert.equal(j, { accept: true, score: 100, reasons: [] }, 'the victim\'s contribution is accepted')
  return w
}

test('a copy with a trailing space is refused as a near-duplicate', async () => {
  const w = await withVictim()
  const j = await verdictOn(w, [line({ text: VICTIM + ' ' })], 'bafyattacker')
  assert.equal(j, { accept: false, score: 0, reasons: [Reason.NEAR_DUPLICATE_RECORDS] })
})

test('a copy with an extra optional field, or in other case and spacing, is refused as a near-duplicate', async () => {
  const w = await withVictim()
  assert.equal(await verdictOn(w, [line({ text: VICTIM, source: 'my own notes' })], 'bafyextra'), { accept: false, score: 0, reasons: [Reason.NEAR_DUPLICATE_RECORDS] })
  const shouted = VICTIM.toUpperCase().replaceAll(' ', '  \n ')
  assert.equal(await verdictOn(w, [line({ text: shouted })], 'bafyshouted'), { accept: false, score: 0, reasons: [Reason.NEAR_DUPLICATE_RECORDS] })
})

test('k padded copies among fresh records cost their share of the score', async () => {
  const w = await withVictim()
  const fresh = ['Oystercatchers probe the mud at low water.', 'The lighthouse keeper logged every wreck since 1880.', 'Kelp forests shelter young pollack.']
  const j = await verdictOn(w, [line({ text: VICTIM + '\t' }), ...fresh.map(text => line({ text }))], 'bafymixed')
  assert.equal(j, { accept: true, score: 75, reasons: [Reason.SOME_NEAR_DUPLICATE_RECORDS] })
})

test('two near-identical records inside one contribution: the second is a near-duplicate', async () => {
  const w = world()
  const j = await verdictOn(w, [line({ text: 'Tide tables are printed each winter.' }), line({ text: 'Tide tables are printed each winter. ' }), line({ text: 'Gulls follow the ferry.' }), line({ text: 'Crabs moult in summer.' })], 'bafyself')
  assert.equal(j, { accept: true, score: 75, reasons: [Reason.SOME_NEAR_DUPLICATE_RECORDS] })
})

test('an honest paraphrase is accepted at 100', async () => {
  const w = await withVictim()
  const j = await verdictOn(w, [line({ text: 'Every spring tide, the northern coast\'s harbour seals come ashore on the same three rocks.' })], 'bafyparaphrase')
  assert.equal(j, { accept: true, score: 100, reasons: [] })
})

test('indexing is idempotent: a second run after a crash counts the same and claims nothing new', async () => {
  const w = await withVictim()
  const lines = [line({ text: VICTIM + ' ' }), line({ text: 'Gannets dive from thirty metres.' })]
  const first = await verdictOn(w, lines, 'bafyagain')
  const size = w.index.size
  assert.equal(await verdictOn(w, lines, 'bafyagain'), first)
  assert.is(w.index.size, size)
})

test('the check hands each shard\'s text keys, and indexing takes them instead of parsing every record again', async () => {
  const w = await withVictim()
  const fresh = ['Oystercatchers probe the mud at low water.', 'Kelp forests shelter young pollack.']
  const lines = [line({ text: VICTIM + ' ' }), ...fresh.map(text => line({ text }))]
  const c = w.contribution(lines)
  const shard = w.blocks.get(c.shards[0]?.toString() as string) as Uint8Array
  const handed = new Map<string, Uint8Array>()
  const scanned = await scanContribution(c, MANIFEST, compileRecordSchema(SCHEMA), builtinRules, {
    getShard: w.deps.getShard,
    keepTextKeys: (cid, records) => { const keys = new Uint8Array(32 * records); handed.set(cid.toString(), keys); return keys }
  })
  assert.ok(scanned.ok)
  // the keys the check derived from its parse are the ones a record's bytes give
  assert.equal([...handed.values()].map(hex), [hex(Buffer.concat(splitShard(shard).map(r => textKey(r.bytes))))])
  // taken as given: keys that say the fresh records copy the victim make them near-duplicates
  const victimKey = textKey(new TextEncoder().encode(line({ text: VICTIM })))
  const given = Buffer.concat([victimKey, victimKey, victimKey])
  const counted = await indexContribution(c, 'bafyheld', { ...w.deps, textKeys: cid => cid.toString() === c.shards[0]?.toString() ? given : undefined })
  assert.equal(counted, { duplicateRecords: 0, nearDuplicateRecords: 3 })
  // keys of another length than the shard's records are not the shard's: computed again
  const again = world()
  const c2 = again.contribution(lines)
  assert.equal(await indexContribution(c2, 'bafyfresh', { ...again.deps, textKeys: () => victimKey }), { duplicateRecords: 0, nearDuplicateRecords: 0 })
})

test('foldText equals the one-expression fold it replaced, on 20,000 seeded texts of words and every kind of whitespace run, at the ends too', () => {
  const reference = (text: string): string => normalizeText(text).normalize('NFKC').toLowerCase().replace(/\s+/gu, ' ').trim()
  const parts = ['a', 'Bc', 'ÉTÉ', 'ﬁ', '١٢', ' ', '  ', '\t', '\n', '\r\n', '\u00a0', '\u2028', '\u3000', '\u200b', ' \t ', '\u2003', 'x\u0301', '.', '']
  let seed = 20261207
  const next = (n: number): number => { seed = (seed * 1103515245 + 12345) >>> 0; return seed % n }
  for (let i = 0; i < 20_000; i++) {
    let text = ''
    for (let j = next(12); j >= 0; j--) text += parts[next(parts.length)] as string
    assert.is(foldText(text), reference(text), JSON.stringify(text))
  }
})

test('textKey: equal for whitespace, case and field changes; different for other words', () => {
  const key = (v: unknown): string => hex(textKey(canonicalBytes(v) as Uint8Array))
  assert.is(key({ text: 'A  b\nC ' }), key({ text: 'a b c' }))
  assert.is(key({ text: 'a b c', lang: 'en' }), key({ text: 'a b c' }))
  assert.is(key('a b c'), key({ text: 'a b c' }), 'a JSON string record is its text')
  assert.is.not(key({ text: 'a b c' }), key({ text: 'a b d' }))
  assert.is.not(key({ text: 'a b c' }), key({ text: 'a bc' }))
})

test('a local upload skips near-duplicates of indexed records and of its own, and says how many', async () => {
  const w = await withVictim()
  async function * items (): AsyncGenerator<ParsedItem> {
    let l = 0
    for (const value of [{ text: VICTIM + ' ' }, { text: 'Puffins return in April.' }, { text: 'puffins  return in april.' }]) yield { line: ++l, value }
  }
  const stored: Uint8Array[] = []
  const result = await ingestRecords(items(), { manifest: MANIFEST, validateRecord: compileRecordSchema(SCHEMA), rules: builtinRules, skipInvalid: false }, {
    owners: w.deps.owners,
    claim: async hashes => { await w.deps.claim(hashes, 'u:upload') },
    putShard: async bytes => { stored.push(bytes); return shardCid(bytes) }
  })
  assert.is(result.recordCount, 1)
  assert.is(result.duplicates, 2)
  assert.equal(stored.flatMap(b => splitShard(b).map(r => Buffer.from(r.bytes).toString())), [line({ text: 'Puffins return in April.' })])
})

// -- mostly covered by a record already in the dataset (the attribution index) ------------

const LONG = 'In the winter of 1963 the harbour froze from the lighthouse to the fish market, and for six weeks the island children walked across the ice to the mainland school, carrying lanterns in the morning fog.'

/** The dataset holds the victim's record (a final version's index); coverage at the manifest's threshold. */
function withIndexedVictim (): ReturnType<typeof world> {
  const w = world()
  const index = CorpusIndex.empty().extend(buildSegment([{ recordIndex: 0, contributor: '0x' + '33'.repeat(20), text: LONG }]))
  const params = attributionParamsFromManifest(MANIFEST)
  w.deps.covered = async records => records.map(b => recordCoverageAtLeast(index, recordText(b), params, MANIFEST.limits.nearDuplicateCoverageBps ?? NEAR_DUPLICATE_COVERAGE_BPS))
  return w
}

test('a record with one word changed, or a sentence added, is a near-duplicate of the record the dataset holds', async () => {
  const w = withIndexedVictim()
  const changed = LONG.replace('six weeks', 'six long weeks')
  const added = LONG + ' Nobody drowned.'
  assert.equal(await verdictOn(w, [line({ text: changed })], 'bafychanged'), { accept: false, score: 0, reasons: [Reason.NEAR_DUPLICATE_RECORDS] })
  assert.equal(await verdictOn(w, [line({ text: added }), line({ text: 'Seals sleep on the slipway.' })], 'bafyadded'), { accept: true, score: 50, reasons: [Reason.SOME_NEAR_DUPLICATE_RECORDS] })
})

test('an honest record quoting a short part of it, or a paraphrase, is not', async () => {
  const w = withIndexedVictim()
  const quoting = 'My grandmother remembered that the island children walked across the ice to the mainland school, but she never said how cold it was or who led them.'
  const paraphrase = 'During the hard frost of 1963 the sea around the harbour turned to ice, so island pupils spent six weeks walking to school on the mainland.'
  assert.equal(await verdictOn(w, [line({ text: quoting }), line({ text: paraphrase })], 'bafyhonest'), { accept: true, score: 100, reasons: [] })
})

test('recordCoverageBps: nothing indexed covers nothing; the record itself covers all of it', () => {
  const params = attributionParamsFromManifest(MANIFEST)
  assert.is(recordCoverageBps(CorpusIndex.empty(), LONG, params), 0)
  const index = CorpusIndex.empty().extend(buildSegment([{ recordIndex: 0, contributor: '0x' + '33'.repeat(20), text: LONG }]))
  assert.is(recordCoverageBps(index, LONG, params), 10_000)
  assert.ok(recordCoverageBps(index, 'Completely different words about goats and cheese in the Alps, nothing else.', params) === 0)
})

test.run()
