/**
 * A large upload's per-record stage on a worker thread (node/services/ingest-thread.ts):
 * it must give exactly what the same stage gives on the main thread — records, order,
 * root, duplicates, invalid lines, errors — and give its thread back however the upload ends.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { parseManifest } from '../../src/datanet/manifest.ts'
import { compileRecordSchema } from '../../src/datanet/record-schema.ts'
import { shardCid } from '../../src/datanet/shard.ts'
import { ingestPrepared, type IngestOptions, type IngestResult, type IngestSink } from '../../src/contribution/ingest.ts'
import { builtinRules, type ContributionRule } from '../../src/contribution/rules/index.ts'
import { DatanetError } from '../../src/errors.ts'
import { ingestWorkersRunning, preparedBatches } from '../../node/services/ingest-thread.ts'
import type { ParseOptions } from '../../src/contribution/parse.ts'
import type { CID } from 'multiformats/cid'

const SCHEMA = { type: 'object', required: ['text'], properties: { text: { type: 'string', minLength: 1 }, n: { type: 'integer' } } }
const MANIFEST = parseManifest({
  name: 'ingest-thread',
  license: 'MIT',
  recordSchema: SCHEMA,
  shardSize: 64 * 1024,
  limits: { maxRecordBytes: 512 },
  validators: [{ address: '0x70997970C51812dc3A010C7d01b50e0d17dc79C8', stake: '1' }]
})
const JSONL: ParseOptions = { format: 'jsonl', textMode: 'line', maxRecordBytes: 2048 }

class MemorySink implements IngestSink {
  readonly index = new Map<string, string>()
  readonly blocks = new Map<string, Uint8Array>()
  owners = async (hashes: readonly Uint8Array[]): Promise<Array<string | undefined>> => hashes.map(h => this.index.get(Buffer.from(h).toString('hex')))
  claim = async (hashes: readonly Uint8Array[]): Promise<void> => { for (const h of hashes) this.index.set(Buffer.from(h).toString('hex'), 'upload') }
  putShard = async (bytes: Uint8Array): Promise<CID> => {
    const cid = shardCid(bytes)
    this.blocks.set(cid.toString(), new Uint8Array(bytes))
    return cid
  }
}

/** ~3 MB of JSONL with what a real upload holds: exact and near duplicates, CRLF, blank lines, and (when asked) bad lines. */
function upload (records: number, bad: boolean): Uint8Array {
  const lines: string[] = []
  for (let i = 0; i < records; i++) {
    const text = `record ${i} of a community dataset, with some words to make it longer ${'x'.repeat(i % 40)}`
    lines.push(JSON.stringify({ n: i, text }))
    if (i % 997 === 0) lines.push(JSON.stringify({ text, n: i })) // the same record, other key order
    if (i % 1499 === 0) lines.push(JSON.stringify({ text: text.toUpperCase() + '  ', n: i })) // a near-duplicate
    if (i % 2003 === 0) lines.push('')
    if (bad && i % 3001 === 7) lines.push(i % 2 === 0 ? '{"text": ' : JSON.stringify({ text: '' }))
  }
  return new TextEncoder().encode('\ufeff' + lines.join('\r\n') + '\r\n')
}

async function * chunked (bytes: Uint8Array, size = 65_536): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < bytes.length; at += size) yield bytes.subarray(at, at + size)
}

function options (overrides: Partial<IngestOptions> = {}): IngestOptions {
  return { manifest: MANIFEST, validateRecord: compileRecordSchema(SCHEMA), rules: builtinRules, skipInvalid: false, ...overrides }
}

async function ingest (bytes: Uint8Array, maxWorkers: number, opts = options(), parse = JSONL): Promise<{ result?: IngestResult, error?: DatanetError, sink: MemorySink, workersSeen: number }> {
  const sink = new MemorySink()
  let workersSeen = 0
  const seen = (): void => { workersSeen = Math.max(workersSeen, ingestWorkersRunning()) }
  try {
    const result = await ingestPrepared(preparedBatches(chunked(bytes), parse, opts, { maxWorkers }), { ...opts, onProgress: seen }, sink)
    return { result, sink, workersSeen }
  } catch (err) {
    assert.instance(err, DatanetError, String(err))
    return { error: err as DatanetError, sink, workersSeen }
  }
}

function summary (r: IngestResult, sink: MemorySink): unknown {
  return { ...r, recordsRoot: Buffer.from(r.recordsRoot).toString('hex'), shards: r.shards.map(c => c.toString()), blocks: r.shards.map(c => Buffer.from(sink.blocks.get(c.toString()) as Uint8Array).toString('hex').slice(0, 64)), flagged: [...r.flagged] }
}

test('a large upload prepared on a worker thread gives what the main thread gives', async () => {
  const bytes = upload(30_000, true)
  assert.ok(bytes.length > 2 * 1024 * 1024, 'the upload is larger than the offload threshold')
  const here = await ingest(bytes, 0, options({ skipInvalid: true }))
  const there = await ingest(bytes, 1, options({ skipInvalid: true }))
  assert.is(here.workersSeen, 0)
  assert.is(there.workersSeen, 1, 'the worker prepared the upload')
  assert.ok(here.result !== undefined && there.result !== undefined)
  assert.ok(here.result.invalidCount > 0 && here.result.duplicates > 40, `invalid ${here.result.invalidCount}, duplicates ${here.result.duplicates}`)
  assert.equal(summary(there.result, there.sink), summary(here.result, here.sink))
  assert.is(ingestWorkersRunning(), 0, 'the thread is given back')
})

test('invalid lines refuse the upload with the same lines listed, from either thread', async () => {
  const bytes = upload(30_000, true)
  const here = await ingest(bytes, 0)
  const there = await ingest(bytes, 1)
  assert.is(here.error?.code, 'CONTRIBUTION_ERROR_INVALID_RECORDS')
  assert.is(there.error?.code, here.error?.code)
  assert.is(there.error?.message, here.error?.message)
  assert.equal((there.error?.cause as { invalid: unknown }).invalid, (here.error?.cause as { invalid: unknown }).invalid)
  assert.is(ingestWorkersRunning(), 0)
})

test('a parser error in the worker reaches the caller as the same DatanetError', async () => {
  const csv = new TextEncoder().encode('text,text\n' + 'a,b\n'.repeat(400_000))
  const parse: ParseOptions = { format: 'csv', textMode: 'line', maxRecordBytes: 2048 }
  const here = await ingest(csv, 0, options(), parse)
  const there = await ingest(csv, 1, options(), parse)
  assert.is(here.error?.code, 'PARSE_ERROR_CSV_HEADER')
  assert.is(there.error?.code, here.error?.code)
  assert.is(there.error?.kind, 'usage')
  assert.is(there.error?.message, here.error?.message)
  assert.is(ingestWorkersRunning(), 0)
})

test('an upload given up half way gives its thread back and stops reading', async () => {
  const bytes = upload(30_000, false)
  let read = 0
  async function * counted (): AsyncGenerator<Uint8Array> {
    for await (const c of chunked(bytes)) {
      read += c.length
      yield c
    }
  }
  const batches = preparedBatches(counted(), JSONL, options(), { maxWorkers: 1 })
  const first = await batches.next()
  assert.is(first.done, false)
  assert.is(ingestWorkersRunning(), 1)
  await batches.return(undefined)
  assert.is(ingestWorkersRunning(), 0)
  assert.ok(read < bytes.length, `read ${read} of ${bytes.length} bytes`)
})

test('small uploads, datanets whose rules check records, and uploads beyond maxWorkers stay on the main thread', async () => {
  const small = await ingest(upload(100, false), 1)
  assert.is(small.workersSeen, 0)
  assert.is(small.result?.recordCount, 100)
  const flagging: ContributionRule = { name: 'flag-sevens', checkRecord: r => String(r.text).includes('7 of') ? 'SEVEN' : undefined }
  const ruled = await ingest(upload(30_000, false), 1, options({ rules: [...builtinRules, flagging] }))
  assert.is(ruled.workersSeen, 0)
  assert.ok((ruled.result?.flagged.get('SEVEN') ?? 0) > 0)
  const [a, b] = await Promise.all([ingest(upload(30_000, false), 1), ingest(upload(30_000, false), 1)])
  assert.is(Math.max(a.workersSeen, b.workersSeen), 1, 'one worker at a time')
  assert.equal(summary(a.result as IngestResult, a.sink), summary(b.result as IngestResult, b.sink))
})

test.run()
