import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createHash } from 'node:crypto'
import { Wallet } from 'ethers'
import { canonicalBytes } from '../../src/codec/jcs.ts'
import { parseManifest, type Manifest } from '../../src/datanet/manifest.ts'
import { compileRecordSchema } from '../../src/datanet/record-schema.ts'
import { shardCid, splitShard } from '../../src/datanet/shard.ts'
import { merkleRoot } from '../../src/merkle/tree.ts'
import { IngestErrorCode, ingestRecords, type IngestOptions, type IngestResult, type IngestSink } from '../../src/contribution/ingest.ts'
import { parseRecords, type ParsedItem } from '../../src/contribution/parse.ts'
import { ScanErrorCode, indexContribution, scanContribution, type IndexDeps, type ScanResult } from '../../src/contribution/scan.ts'
import { builtinRules, type ContributionRule } from '../../src/contribution/rules/index.ts'
import { DatanetError } from '../../src/errors.ts'
import type { CID } from 'multiformats/cid'
import type { Contribution } from '../../src/contribution/contribution.ts'

const SCHEMA = { type: 'object', required: ['text'], properties: { text: { type: 'string', minLength: 1 } } }
const VALIDATOR = new Wallet('0x' + '8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba').address
const CONTRIBUTOR = new Wallet('0x' + '59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d').address
const DATANET = 'bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy'

function manifestWith (limits: Record<string, number> = {}): Manifest {
  return parseManifest({
    name: 'ingest',
    license: 'MIT',
    recordSchema: SCHEMA,
    shardSize: 1024,
    limits: { maxRecordBytes: 256, ...limits },
    validators: [{ address: VALIDATOR, stake: '1' }]
  })
}

const MANIFEST = manifestWith()
const validate = compileRecordSchema(SCHEMA)

const enc = new TextEncoder()
const sha = (b: Uint8Array): Uint8Array => new Uint8Array(createHash('sha256').update(b).digest())
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
const canon = (v: unknown): Uint8Array => canonicalBytes(v) as Uint8Array
const rec = (i: number): { text: string } => ({ text: `record number ${i}` })

/** The in-memory stand-in for the record index and the block store. */
class MemorySink implements IngestSink {
  /** hex record hash → owner */
  readonly index = new Map<string, string>()
  /** CID string → shard bytes */
  readonly blocks = new Map<string, Uint8Array>()
  /** For each putShard call: how many parsed items had been read when it was called. */
  readonly putAt: number[] = []
  readonly owner: string
  private readonly progress: { yielded: number }

  constructor (owner = 'upload', progress = { yielded: 0 }) {
    this.owner = owner
    this.progress = progress
  }

  owners = async (hashes: readonly Uint8Array[]): Promise<Array<string | undefined>> => hashes.map(h => this.index.get(hex(h)))
  claim = async (hashes: readonly Uint8Array[]): Promise<void> => { for (const h of hashes) this.index.set(hex(h), this.owner) }
  putShard = async (bytes: Uint8Array): Promise<CID> => {
    this.putAt.push(this.progress.yielded)
    const cid = shardCid(bytes)
    this.blocks.set(cid.toString(), new Uint8Array(bytes))
    return cid
  }

  getShard = async (cid: CID): Promise<Uint8Array> => {
    const bytes = this.blocks.get(cid.toString())
    if (bytes === undefined) throw new Error(`no block ${cid.toString()}`)
    return bytes
  }
}

async function * once (data: Uint8Array): AsyncGenerator<Uint8Array> { yield data }

/** JSONL parsed the way the node parses uploads (the parser's limit is looser than the datanet's). */
function parsed (lines: readonly unknown[]): AsyncIterable<ParsedItem> {
  const text = lines.map(l => typeof l === 'string' ? l : JSON.stringify(l)).join('\n') + '\n'
  return parseRecords(once(enc.encode(text)), { format: 'jsonl', textMode: 'line', maxRecordBytes: 4096 })
}

/** Hand-made items that count how many have been read. */
async function * tracked (items: readonly ParsedItem[], progress: { yielded: number }): AsyncGenerator<ParsedItem> {
  for (const item of items) {
    progress.yielded++
    yield item
  }
}

function options (overrides: Partial<IngestOptions> = {}): IngestOptions {
  return { manifest: MANIFEST, validateRecord: validate, rules: builtinRules, skipInvalid: false, ...overrides }
}

async function ingestError (promise: Promise<unknown>, code: string): Promise<DatanetError> {
  try {
    await promise
  } catch (err) {
    assert.instance(err, DatanetError, String(err))
    assert.is((err as DatanetError).code, code, (err as Error).message)
    assert.is((err as DatanetError).kind, 'usage')
    return err as DatanetError
  }
  assert.unreachable(`expected ${code}`)
  throw new Error('unreachable')
}

/** The records of the stored shards, in order. */
function storedRecords (sink: MemorySink, shards: readonly CID[]): string[] {
  return shards.flatMap(s => splitShard(sink.blocks.get(s.toString()) as Uint8Array).map(r => Buffer.from(r.bytes).toString()))
}

function contributionOf (r: Pick<IngestResult, 'shards' | 'recordCount' | 'byteSize' | 'recordsRoot'>): Contribution {
  return {
    datanet: DATANET,
    contributor: CONTRIBUTOR,
    shards: [...r.shards],
    recordCount: r.recordCount,
    byteSize: r.byteSize,
    recordsRoot: r.recordsRoot,
    nonce: 1,
    timestamp: 1_750_000_000_000,
    signature: new Uint8Array(65)
  }
}

/** A contribution over hand-written shards (each a list of lines), stored in `sink`. */
function handMade (sink: MemorySink, shards: ReadonlyArray<readonly string[]>): Contribution {
  const cids: CID[] = []
  const hashes: Uint8Array[] = []
  let byteSize = 0
  for (const lines of shards) {
    const bytes = enc.encode(lines.map(l => l + '\n').join(''))
    const cid = shardCid(bytes)
    sink.blocks.set(cid.toString(), bytes)
    cids.push(cid)
    byteSize += bytes.length
    for (const l of lines) hashes.push(sha(enc.encode(l)))
  }
  return contributionOf({ shards: cids, recordCount: hashes.length, byteSize, recordsRoot: merkleRoot(hashes) })
}

const badWords: ContributionRule = {
  name: 'bad-words',
  checkRecord: record => typeof record.text === 'string' && record.text.includes('darn') ? 'BAD_WORDS' : undefined
}

// -- ingest ---------------------------------------------------------------------------

test('100 valid records: count, shards within shardSize, records root, byte size', async () => {
  const sink = new MemorySink()
  const records = Array.from({ length: 100 }, (_, i) => rec(i))
  const r = await ingestRecords(parsed(records), options(), sink)
  assert.is(r.recordCount, 100)
  assert.ok(r.shards.length >= 3, `${r.shards.length} shards`)
  assert.is(sink.putAt.length, r.shards.length)
  let total = 0
  for (const cid of r.shards) {
    const bytes = sink.blocks.get(cid.toString()) as Uint8Array
    assert.ok(bytes.length <= 1024, `a shard of ${bytes.length} bytes`)
    assert.is(shardCid(bytes).toString(), cid.toString())
    total += bytes.length
  }
  assert.is(r.byteSize, total)
  const canonical = records.map(canon)
  assert.equal(r.recordsRoot, merkleRoot(canonical.map(sha)))
  assert.equal(storedRecords(sink, r.shards), canonical.map(b => Buffer.from(b).toString()), 'records in order')
  assert.is(r.duplicates, 0)
  assert.is(r.invalidCount, 0)
  assert.equal(r.invalid, [])
  assert.is(r.flagged.size, 0)
  assert.is(sink.index.size, 200, 'every record claimed, by hash and by text key')
  assert.ok([...sink.index.values()].every(o => o === 'upload'))
})

test('records are canonicalised: key order and spacing in the upload do not matter', async () => {
  const sink = new MemorySink()
  const r = await ingestRecords(parsed(['{ "text" : "hi", "a": 1 }', '{"a":2,"text":"ho"}']), options(), sink)
  assert.equal(storedRecords(sink, r.shards), ['{"a":1,"text":"hi"}', '{"a":2,"text":"ho"}'])
})

test('progress is reported with the records seen', async () => {
  const seen: number[] = []
  await ingestRecords(parsed(Array.from({ length: 1500 }, (_, i) => rec(i))), options({ onProgress: n => seen.push(n), batchSize: 1024 }), new MemorySink())
  assert.equal(seen, [1024, 1500])
})

test('duplicates inside the upload are dropped and counted, the first kept', async () => {
  const sink = new MemorySink()
  const lines = [rec(0), rec(1), rec(0), rec(2), rec(1), { text: 'record number 2' }]
  const r = await ingestRecords(parsed(lines), options(), sink)
  assert.is(r.recordCount, 3)
  assert.is(r.duplicates, 3)
  assert.equal(storedRecords(sink, r.shards), [rec(0), rec(1), rec(2)].map(x => JSON.stringify(x)))
  assert.equal(r.recordsRoot, merkleRoot([rec(0), rec(1), rec(2)].map(x => sha(canon(x)))))
})

test('a duplicate in a later batch of the same upload is dropped too', async () => {
  const sink = new MemorySink()
  const lines = [...Array.from({ length: 1100 }, (_, i) => rec(i)), rec(5), rec(1050)]
  const r = await ingestRecords(parsed(lines), options(), sink)
  assert.is(r.recordCount, 1100)
  assert.is(r.duplicates, 2)
})

test('records already owned in the index are dropped and counted, and keep their owner', async () => {
  const sink = new MemorySink()
  sink.index.set(hex(sha(canon(rec(3)))), 'dataset')
  sink.index.set(hex(sha(canon(rec(7)))), 'another upload')
  const records = Array.from({ length: 10 }, (_, i) => rec(i))
  const r = await ingestRecords(parsed(records), options(), sink)
  assert.is(r.recordCount, 8)
  assert.is(r.duplicates, 2)
  const kept = records.filter((_, i) => i !== 3 && i !== 7)
  assert.equal(storedRecords(sink, r.shards), kept.map(x => JSON.stringify(x)))
  assert.equal(r.recordsRoot, merkleRoot(kept.map(x => sha(canon(x)))))
  assert.is(sink.index.get(hex(sha(canon(rec(3))))), 'dataset')
  assert.is(sink.index.get(hex(sha(canon(rec(7))))), 'another upload')
  assert.is(sink.index.get(hex(sha(canon(rec(0))))), 'upload')
})

test('an upload of only duplicates throws CONTRIBUTION_ERROR_ONLY_DUPLICATES', async () => {
  const sink = new MemorySink()
  for (let i = 0; i < 5; i++) sink.index.set(hex(sha(canon(rec(i)))), 'dataset')
  const e = await ingestError(ingestRecords(parsed([rec(0), rec(1), rec(2), rec(3), rec(4), rec(0)]), options(), sink), IngestErrorCode.ONLY_DUPLICATES)
  assert.equal(e.cause, { duplicates: 6 })
  assert.is(sink.putAt.length, 0, 'no shard stored')
})

test('an empty upload throws CONTRIBUTION_ERROR_EMPTY', async () => {
  await ingestError(ingestRecords(parseRecords(once(new Uint8Array(0)), { format: 'jsonl', textMode: 'line', maxRecordBytes: 4096 }), options(), new MemorySink()), IngestErrorCode.EMPTY)
  await ingestError(ingestRecords(parseRecords(once(enc.encode('\n  \n\n')), { format: 'jsonl', textMode: 'line', maxRecordBytes: 4096 }), options(), new MemorySink()), IngestErrorCode.EMPTY)
  await ingestError(ingestRecords(tracked([], { yielded: 0 }), options(), new MemorySink()), IngestErrorCode.EMPTY)
})

test('schema-invalid records throw CONTRIBUTION_ERROR_INVALID_RECORDS with their lines; nothing is stored', async () => {
  const progress = { yielded: 0 }
  const sink = new MemorySink('upload', progress)
  const lines = [rec(0), rec(1), { text: '' }, rec(3), { nope: 1 }, 'not json', rec(6)]
  const items: ParsedItem[] = []
  for await (const item of parsed(lines)) items.push(item)
  const e = await ingestError(ingestRecords(tracked(items, progress), options(), sink), IngestErrorCode.INVALID_RECORDS)
  assert.match(e.message, /^3 invalid records; line 3: /)
  assert.match(e.message, /\/text/)
  const cause = e.cause as { invalid: Array<{ line: number, error: string }>, invalidCount: number }
  assert.is(cause.invalidCount, 3)
  assert.equal(cause.invalid.map(i => i.line), [3, 5, 6])
  assert.match(cause.invalid[0]?.error as string, /\/text/)
  assert.match(cause.invalid[1]?.error as string, /text/)
  assert.match(cause.invalid[2]?.error as string, /invalid JSON/)
  assert.equal(sink.putAt, [], 'no shard stored')
})

test('only maxListed invalid records are listed, all are counted', async () => {
  const lines = Array.from({ length: 10 }, (_, i) => i % 2 === 0 ? { bad: i } : rec(i))
  const e = await ingestError(ingestRecords(parsed(lines), options({ maxListed: 2 }), new MemorySink()), IngestErrorCode.INVALID_RECORDS)
  const cause = e.cause as { invalid: Array<{ line: number }>, invalidCount: number }
  assert.is(cause.invalidCount, 5)
  assert.equal(cause.invalid.map(i => i.line), [1, 3])
  assert.match(e.message, /^5 invalid records; line 1: /)
})

test('no shard is stored once an invalid record has been read (invalid record after the first batch)', async () => {
  const progress = { yielded: 0 }
  const sink = new MemorySink('upload', progress)
  const items: ParsedItem[] = Array.from({ length: 1100 }, (_, i) => ({ line: i + 1, value: rec(i) }))
  items.push({ line: 1101, value: { text: '' } })
  const firstInvalid = items.length
  await ingestError(ingestRecords(tracked(items, progress), options({ batchSize: 1024 }), sink), IngestErrorCode.INVALID_RECORDS)
  assert.ok(sink.putAt.length > 0, 'the first batch was stored before the invalid record came')
  const late = sink.putAt.filter(at => at >= firstInvalid)
  assert.equal(late, [], `${late.length} shard(s) stored after item ${firstInvalid} (the invalid one) was read`)
})

test('skipInvalid drops invalid records and reports them', async () => {
  const sink = new MemorySink()
  const lines = [rec(0), { text: '' }, rec(2), { text: 'x'.repeat(300) }, rec(4), '[1]']
  const r = await ingestRecords(parsed(lines), options({ skipInvalid: true }), sink)
  assert.is(r.recordCount, 3)
  assert.is(r.invalidCount, 3)
  assert.equal(r.invalid.map(i => i.line), [2, 4, 6])
  assert.equal(r.recordsRoot, merkleRoot([rec(0), rec(2), rec(4)].map(x => sha(canon(x)))))
  assert.equal(storedRecords(sink, r.shards), [rec(0), rec(2), rec(4)].map(x => JSON.stringify(x)))
})

test('a record over maxRecordBytes is invalid; one of exactly maxRecordBytes is fine', async () => {
  const exact = { text: 'x'.repeat(256 - '{"text":""}'.length) }
  assert.is(canon(exact).length, 256)
  const over = { text: 'x'.repeat(256 - '{"text":""}'.length + 1) }
  const ok = await ingestRecords(parsed([exact]), options(), new MemorySink())
  assert.is(ok.recordCount, 1)
  const e = await ingestError(ingestRecords(parsed([rec(0), over]), options(), new MemorySink()), IngestErrorCode.INVALID_RECORDS)
  const cause = e.cause as { invalid: Array<{ line: number, error: string }> }
  assert.is(cause.invalid[0]?.line, 2)
  assert.match(cause.invalid[0]?.error as string, /257 bytes.*256/)
})

test('a value that is not canonical JSON is invalid', async () => {
  const e = await ingestError(ingestRecords(tracked([{ line: 1, value: { text: 'a', n: Number.NaN } }, { line: 2, value: rec(2) }], { yielded: 0 }), options(), new MemorySink()), IngestErrorCode.INVALID_RECORDS)
  assert.match(e.message, /line 1: not representable as canonical JSON/)
})

test('more records than maxRecordsPerContribution throws CONTRIBUTION_ERROR_TOO_LARGE', async () => {
  const small = manifestWith({ maxRecordsPerContribution: 5 })
  const five = await ingestRecords(parsed([rec(0), rec(1), rec(2), rec(3), rec(4)]), options({ manifest: small }), new MemorySink())
  assert.is(five.recordCount, 5)
  await ingestError(ingestRecords(parsed([rec(0), rec(1), rec(2), rec(3), rec(4), rec(5)]), options({ manifest: small }), new MemorySink()), IngestErrorCode.TOO_LARGE)
  // duplicates do not count towards the limit
  const withDup = await ingestRecords(parsed([rec(0), rec(1), rec(2), rec(3), rec(4), rec(0)]), options({ manifest: small }), new MemorySink())
  assert.is(withDup.recordCount, 5)
})

test('more bytes than maxContributionBytes throws CONTRIBUTION_ERROR_TOO_LARGE', async () => {
  const small = manifestWith({ maxContributionBytes: 1500 })
  await ingestError(ingestRecords(parsed(Array.from({ length: 100 }, (_, i) => rec(i))), options({ manifest: small }), new MemorySink()), IngestErrorCode.TOO_LARGE)
})

test('a checkRecord rule\'s flags are counted in result.flagged', async () => {
  const lines = Array.from({ length: 10 }, (_, i) => i % 4 === 0 ? { text: `darn ${i}` } : rec(i))
  const r = await ingestRecords(parsed(lines), options({ rules: [...builtinRules, badWords] }), new MemorySink())
  assert.is(r.recordCount, 10)
  assert.equal([...r.flagged], [['BAD_WORDS', 3]])
})

test('flags count only the records that make it into the contribution, as scanContribution counts them', async () => {
  const sink = new MemorySink()
  const lines = [{ text: 'darn 1' }, rec(1), { text: 'darn 1' }, rec(2), { text: 'darn 1' }]
  const rules = [...builtinRules, badWords]
  const r = await ingestRecords(parsed(lines), options({ rules }), sink)
  assert.is(r.recordCount, 3)
  assert.is(r.duplicates, 2)
  const scan = await scanContribution(contributionOf(r), MANIFEST, validate, rules, sink)
  assert.ok(scan.ok)
  const scanned = (scan as Extract<ScanResult, { ok: true }>).facts.flagged
  assert.equal([...scanned], [['BAD_WORDS', 1]])
  assert.equal([...r.flagged], [...scanned], 'the uploader judges its own contribution on the same facts as the other validators')
})

// -- scan -----------------------------------------------------------------------------

async function ingested (n = 100, rules: readonly ContributionRule[] = builtinRules): Promise<{ sink: MemorySink, result: IngestResult, c: Contribution }> {
  const sink = new MemorySink()
  const lines = Array.from({ length: n }, (_, i) => i % 10 === 0 ? { text: `darn ${i}` } : rec(i))
  const result = await ingestRecords(parsed(lines), options({ rules }), sink)
  return { sink, result, c: contributionOf(result) }
}

function scanFails (r: ScanResult, code: string): void {
  assert.is(r.ok, false, `expected ${code}`)
  assert.is((r as Extract<ScanResult, { ok: false }>).code, code, (r as { message?: string }).message)
  assert.type((r as Extract<ScanResult, { ok: false }>).message, 'string')
}

test('scanContribution: an honest contribution scans ok with its facts', async () => {
  const rules = [...builtinRules, badWords]
  const { sink, result, c } = await ingested(100, rules)
  assert.ok(c.shards.length > 1)
  const r = await scanContribution(c, MANIFEST, validate, rules, sink)
  assert.ok(r.ok, JSON.stringify(r))
  assert.equal((r as Extract<ScanResult, { ok: true }>).facts, {
    recordCount: 100,
    byteSize: result.byteSize,
    invalidRecords: 0,
    duplicateRecords: 0,
    flagged: new Map([['BAD_WORDS', 10]])
  })
})

test('scanContribution: an altered records root is CONTRIBUTION_ERROR_RECORDS_ROOT_MISMATCH', async () => {
  const { sink, c } = await ingested()
  const root = new Uint8Array(c.recordsRoot)
  root[0] = (root[0] as number) ^ 1
  scanFails(await scanContribution({ ...c, recordsRoot: root }, MANIFEST, validate, builtinRules, sink), ScanErrorCode.ROOT)
  scanFails(await scanContribution({ ...c, shards: [...c.shards].reverse() }, MANIFEST, validate, builtinRules, sink), ScanErrorCode.ROOT)
})

test('scanContribution: a record count off by one is CONTRIBUTION_ERROR_RECORD_COUNT_MISMATCH', async () => {
  const { sink, c } = await ingested()
  scanFails(await scanContribution({ ...c, recordCount: c.recordCount + 1 }, MANIFEST, validate, builtinRules, sink), ScanErrorCode.RECORD_COUNT)
  scanFails(await scanContribution({ ...c, recordCount: c.recordCount - 1 }, MANIFEST, validate, builtinRules, sink), ScanErrorCode.RECORD_COUNT)
})

test('scanContribution: a byte size off is CONTRIBUTION_ERROR_BYTE_SIZE_MISMATCH', async () => {
  const { sink, c } = await ingested()
  scanFails(await scanContribution({ ...c, byteSize: c.byteSize + 1 }, MANIFEST, validate, builtinRules, sink), ScanErrorCode.BYTE_SIZE)
  scanFails(await scanContribution({ ...c, byteSize: c.byteSize - 1 }, MANIFEST, validate, builtinRules, sink), ScanErrorCode.BYTE_SIZE)
})

test('scanContribution: a non-canonical or malformed shard is CONTRIBUTION_ERROR_SHARD_MALFORMED', async () => {
  const sink = new MemorySink()
  const cases: Array<ReadonlyArray<readonly string[]>> = [
    [['{"text":"ok"}', '{"text":"b","a":1}']],
    [['{"text": "ok"}']],
    [['{"text":"ok"}'], ['["text"]']],
    [['not json']]
  ]
  for (const shards of cases) {
    scanFails(await scanContribution(handMade(sink, shards), MANIFEST, validate, builtinRules, sink), ScanErrorCode.SHARD_MALFORMED)
  }
  // a shard without its final newline
  const c = handMade(sink, [['{"text":"ok"}']])
  const bytes = enc.encode('{"text":"ok"}')
  const cid = shardCid(bytes)
  sink.blocks.set(cid.toString(), bytes)
  scanFails(await scanContribution({ ...c, shards: [cid], byteSize: bytes.length }, MANIFEST, validate, builtinRules, sink), ScanErrorCode.SHARD_MALFORMED)
})

test('scanContribution: a BOM-prefixed copy of a record is not accepted as a canonical record', async () => {
  const sink = new MemorySink()
  const c = handMade(sink, [['{"text":"ok"}', '\uFEFF{"text":"ok"}']])
  scanFails(await scanContribution(c, MANIFEST, validate, builtinRules, sink), ScanErrorCode.SHARD_MALFORMED)
})

test('scanContribution: a shard over shardSize is CONTRIBUTION_ERROR_SHARD_TOO_LARGE', async () => {
  const sink = new MemorySink()
  const big = Array.from({ length: 60 }, (_, i) => JSON.stringify(rec(i)))
  scanFails(await scanContribution(handMade(sink, [big]), MANIFEST, validate, builtinRules, sink), ScanErrorCode.SHARD_TOO_LARGE)
})

test('scanContribution counts schema-invalid records in facts.invalidRecords', async () => {
  const sink = new MemorySink()
  const c = handMade(sink, [['{"text":"ok"}', '{"other":1}'], ['{"text":""}', '{"text":"fine"}']])
  const r = await scanContribution(c, MANIFEST, validate, builtinRules, sink)
  assert.ok(r.ok, JSON.stringify(r))
  const facts = (r as Extract<ScanResult, { ok: true }>).facts
  assert.is(facts.invalidRecords, 2)
  assert.is(facts.recordCount, 4)
  assert.is(facts.byteSize, c.byteSize)
})

// -- index ----------------------------------------------------------------------------

/** The node's record index, apart from the upload sink. */
function indexDeps (sink: MemorySink, index: Map<string, string>): IndexDeps {
  return {
    getShard: sink.getShard,
    owners: async hashes => hashes.map(h => index.get(hex(h))),
    claim: async (hashes, owner) => { for (const h of hashes) index.set(hex(h), owner) }
  }
}

const NONE = { duplicateRecords: 0, nearDuplicateRecords: 0 }
const lines = (from: number, to: number): string[] => Array.from({ length: to - from }, (_, i) => JSON.stringify(rec(from + i)))

test('indexContribution: a fresh contribution claims every record and has no duplicates; again is a no-op', async () => {
  const sink = new MemorySink()
  const index = new Map<string, string>()
  const c = handMade(sink, [lines(0, 5), lines(5, 10)])
  assert.equal(await indexContribution(c, 'cid-1', indexDeps(sink, index)), NONE)
  assert.is(index.size, 20, 'hash and text key of each')
  for (const l of lines(0, 10)) assert.is(index.get(hex(sha(enc.encode(l)))), 'cid-1')
  const before = [...index.entries()]
  assert.equal(await indexContribution(c, 'cid-1', indexDeps(sink, index)), NONE, 'idempotent')
  assert.equal([...index.entries()], before)
})

test('indexContribution: a second contribution sharing 3 records has 3 duplicates, and they keep their owner', async () => {
  const sink = new MemorySink()
  const index = new Map<string, string>()
  await indexContribution(handMade(sink, [lines(0, 10)]), 'cid-1', indexDeps(sink, index))
  const second = handMade(sink, [lines(7, 12), lines(12, 15)])
  assert.equal(await indexContribution(second, 'cid-2', indexDeps(sink, index)), { duplicateRecords: 3, nearDuplicateRecords: 0 })
  for (const l of lines(7, 10)) assert.is(index.get(hex(sha(enc.encode(l)))), 'cid-1')
  for (const l of lines(10, 15)) assert.is(index.get(hex(sha(enc.encode(l)))), 'cid-2')
  assert.equal(await indexContribution(second, 'cid-2', indexDeps(sink, index)), { duplicateRecords: 3, nearDuplicateRecords: 0 }, 'a second run counts the same')
})

test('indexContribution: a shard with a repeated line counts 1 duplicate', async () => {
  const sink = new MemorySink()
  const index = new Map<string, string>()
  const [a, b, c] = lines(0, 3) as [string, string, string]
  const contribution = handMade(sink, [[a, b, a, c]])
  assert.equal(await indexContribution(contribution, 'cid-1', indexDeps(sink, index)), { duplicateRecords: 1, nearDuplicateRecords: 0 })
  assert.is(index.size, 6)
})

test('indexContribution: re-indexing a contribution with a repeated line counts it again (the count feeds the verdict)', async () => {
  const sink = new MemorySink()
  const index = new Map<string, string>()
  const [a, b, c] = lines(0, 3) as [string, string, string]
  const contribution = handMade(sink, [[a, b, a, c]])
  const first = await indexContribution(contribution, 'cid-1', indexDeps(sink, index))
  const again = await indexContribution(contribution, 'cid-1', indexDeps(sink, index))
  assert.equal(again, first)
})

test('ingest then index: the uploaded contribution claims all its records', async () => {
  const { sink, c } = await ingested(50)
  const index = new Map<string, string>()
  assert.equal(await indexContribution(c, 'cid-x', indexDeps(sink, index)), NONE)
  assert.is(index.size, 100)
})

test.run()
