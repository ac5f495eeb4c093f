import { canonicalJson } from '../codec/jcs.ts'
import { sha256 } from '../codec/hash.ts'
import { ShardPacker } from '../datanet/shard.ts'
import { DatanetError } from '../errors.ts'
import { MerkleFrontier } from '../merkle/tree.ts'
import { textKeyOf } from './near-duplicates.ts'
import type { CID } from 'multiformats/cid'
import type { Manifest } from '../datanet/manifest.ts'
import type { RecordValidator } from '../datanet/record-schema.ts'
import type { ParsedItem } from './parse.ts'
import type { ContributionRule } from './rules/index.ts'

export const IngestErrorCode = {
  INVALID_RECORDS: 'CONTRIBUTION_ERROR_INVALID_RECORDS',
  ONLY_DUPLICATES: 'CONTRIBUTION_ERROR_ONLY_DUPLICATES',
  EMPTY: 'CONTRIBUTION_ERROR_EMPTY',
  TOO_LARGE: 'CONTRIBUTION_ERROR_TOO_LARGE'
} as const

export interface InvalidRecord {
  line: number
  error: string
}

/** Where an upload's results go: the record index and the block store. */
export interface IngestSink {
  /** Owners of record hashes and text keys already known: in the dataset, pending, or earlier in this upload. */
  owners: (hashes: readonly Uint8Array[]) => Promise<Array<string | undefined>>
  /** Marks hashes and text keys as part of this upload. */
  claim: (hashes: readonly Uint8Array[]) => Promise<void>
  putShard: (bytes: Uint8Array) => Promise<CID>
}

export interface IngestOptions {
  manifest: Manifest
  validateRecord: RecordValidator
  rules: readonly ContributionRule[]
  /** Drop schema-invalid records instead of refusing the upload. */
  skipInvalid: boolean
  /** How many invalid records to list (all are counted). */
  maxListed?: number
  /** Records checked against the index and stored per step (default 4096: a level batch each). */
  batchSize?: number
  /** Called after each batch with the records seen so far. */
  onProgress?: (records: number) => void
}

export interface IngestResult {
  recordCount: number
  byteSize: number
  shards: CID[]
  recordsRoot: Uint8Array
  invalid: InvalidRecord[]
  invalidCount: number
  duplicates: number
  flagged: Map<string, number>
}

const BATCH = 4096

/**
 * Some records of an upload after the per-record stage, in file order, column by column:
 * what goes to the record index, the shards and the tree. Columns, not an object per
 * record: a batch is live across the index's reads and writes, and thousands of small
 * objects surviving the young generation made garbage collection the main thread's
 * largest cost. The stage is pure and needs no index, so it can run on another thread
 * (node/services/ingest-worker.ts), the columns crossing as transferred buffers.
 */
export interface PreparedBatch {
  count: number
  /** The records' canonical bytes back to back: record i is bytes[offsets[i], offsets[i + 1]). */
  bytes: Uint8Array
  offsets: Uint32Array
  /** sha256 of each record, 32 bytes each. */
  hashes: Uint8Array
  /** Text key of each record (near-duplicates.ts), 32 bytes each. */
  texts: Uint8Array
  /** Rule flags of the records that have any, by index. */
  flags: Array<[number, string[]]>
  /** This batch's invalid items, listed while the upload has listed fewer than `maxListed`. */
  invalid: InvalidRecord[]
  invalidCount: number
  /** Items read so far in the upload (valid and invalid). */
  seen: number
}

/** The options of the per-record stage alone (what a worker thread needs: no sink, no callbacks). */
export type PrepareOptions = Pick<IngestOptions, 'manifest' | 'validateRecord' | 'rules' | 'skipInvalid' | 'maxListed' | 'batchSize'>

const encoder = new TextEncoder()

/** Columns of a batch being filled; the bytes column grows as records come. */
class BatchBuilder {
  count = 0
  private bytes: Uint8Array
  private at = 0
  private readonly offsets: Uint32Array
  private readonly hashes: Uint8Array
  private readonly texts: Uint8Array
  private readonly flags: Array<[number, string[]]> = []
  readonly invalid: InvalidRecord[] = []
  invalidCount = 0
  private readonly size: number

  constructor (size: number) {
    this.size = size
    this.bytes = new Uint8Array(size * 128)
    this.offsets = new Uint32Array(size + 1)
    this.hashes = new Uint8Array(32 * size)
    this.texts = new Uint8Array(32 * size)
  }

  get full (): boolean {
    return this.count >= this.size
  }

  /** Encodes a record's canonical JSON into the bytes column; returns its bytes (a view), or its length when over `max` (not kept). */
  encode (json: string, max: number): Uint8Array | number {
    const need = this.at + json.length * 3
    if (need > this.bytes.length) {
      const grown = new Uint8Array(Math.max(need, this.bytes.length * 2))
      grown.set(this.bytes.subarray(0, this.at))
      this.bytes = grown
    }
    const { written } = encoder.encodeInto(json, this.bytes.subarray(this.at))
    return written > max ? written : this.bytes.subarray(this.at, this.at + written)
  }

  /** Keeps the record `encode` just wrote. */
  add (bytes: Uint8Array, value: unknown, flags: string[] | undefined): void {
    const i = this.count++
    this.offsets[i] = this.at
    this.at += bytes.length
    this.hashes.set(sha256(bytes), 32 * i)
    this.texts.set(textKeyOf(value, bytes), 32 * i)
    if (flags !== undefined) this.flags.push([i, flags])
  }

  /** The batch, as views of the builder's own buffers (a builder per batch: they are the batch's alone, and can be transferred). */
  finish (seen: number): PreparedBatch {
    const n = this.count
    this.offsets[n] = this.at
    return {
      count: n,
      bytes: this.bytes.subarray(0, this.at),
      offsets: this.offsets.subarray(0, n + 1),
      hashes: this.hashes.subarray(0, 32 * n),
      texts: this.texts.subarray(0, 32 * n),
      flags: this.flags,
      invalid: this.invalid,
      invalidCount: this.invalidCount,
      seen
    }
  }
}

/**
 * The per-record stage: canonicalise (RFC 8785), check size, schema and per-record rules,
 * hash, derive the text key. Yields a batch per `batchSize` records. Once an invalid record
 * refuses the upload (no `skipInvalid`) records are only read, to report the invalid ones.
 */
export async function * prepareRecords (items: AsyncIterable<ParsedItem>, opts: PrepareOptions): AsyncGenerator<PreparedBatch> {
  const { manifest } = opts
  const maxListed = opts.maxListed ?? 100
  const size = opts.batchSize ?? BATCH
  const recordRules = opts.rules.filter(r => r.checkRecord !== undefined)
  let listed = 0
  let refusing = false
  let seen = 0
  let batch = new BatchBuilder(size)
  const addInvalid = (line: number, error: string): void => {
    batch.invalidCount++
    if (listed++ < maxListed) batch.invalid.push({ line, error })
    if (!opts.skipInvalid) refusing = true
  }
  for await (const item of items) {
    seen++
    if ('error' in item) {
      addInvalid(item.line, item.error)
    } else {
      const json = canonicalJson(item.value)
      const bytes = json === undefined ? undefined : batch.encode(json, manifest.limits.maxRecordBytes)
      if (bytes === undefined) {
        addInvalid(item.line, 'not representable as canonical JSON')
      } else if (typeof bytes === 'number') {
        addInvalid(item.line, `record is ${bytes} bytes, over the datanet's limit of ${manifest.limits.maxRecordBytes}`)
      } else {
        const schemaError = opts.validateRecord(item.value)
        if (schemaError !== undefined) {
          addInvalid(item.line, schemaError)
        } else if (!refusing) {
          let flags: string[] | undefined
          for (const rule of recordRules) {
            const reason = rule.checkRecord?.(item.value, manifest)
            if (reason !== undefined) (flags ??= []).push(reason)
          }
          batch.add(bytes, item.value, flags)
        }
      }
    }
    if (batch.full) {
      yield batch.finish(seen)
      batch = new BatchBuilder(size)
    }
  }
  yield batch.finish(seen)
}

/**
 * Streams parsed records into a contribution: the per-record stage (`prepareRecords`), then
 * drop duplicates and near-duplicates (within the upload and against the index), pack into
 * shards and fold into the records root, a batch at a time so memory stays flat. With
 * invalid records and no `skipInvalid`, it keeps reading only to report them, and throws
 * CONTRIBUTION_ERROR_INVALID_RECORDS listing file lines.
 */
export async function ingestRecords (items: AsyncIterable<ParsedItem>, opts: IngestOptions, sink: IngestSink): Promise<IngestResult> {
  return await ingestPrepared(prepareRecords(items, opts), opts, sink)
}

/** The index, shard and tree stage of `ingestRecords`, over batches prepared here or by a worker. */
export async function ingestPrepared (batches: AsyncIterable<PreparedBatch>, opts: IngestOptions, sink: IngestSink): Promise<IngestResult> {
  const { manifest } = opts
  const packer = new ShardPacker(manifest.shardSize)
  const tree = new MerkleFrontier()
  const shards: CID[] = []
  const invalid: InvalidRecord[] = []
  const flagged = new Map<string, number>()
  let invalidCount = 0
  let duplicates = 0
  let byteSize = 0
  let seen = 0
  let reported = -1

  let inflight: Promise<void> = Promise.resolve()
  const refusing = (): boolean => invalidCount > 0 && !opts.skipInvalid
  const storeShard = async (shard: Uint8Array | undefined): Promise<void> => {
    if (shard === undefined) return
    byteSize += shard.length
    if (byteSize > manifest.limits.maxContributionBytes) {
      throw new DatanetError({ code: IngestErrorCode.TOO_LARGE }, `the contribution exceeds the datanet's limit of ${manifest.limits.maxContributionBytes} bytes`, 'usage')
    }
    shards.push(await sink.putShard(shard))
  }
  const flush = async (b: PreparedBatch): Promise<void> => {
    const n = b.count
    if (n === 0 || refusing()) return
    const keys = new Array<Uint8Array>(2 * n)
    for (let i = 0; i < n; i++) {
      keys[i] = b.hashes.subarray(32 * i, 32 * i + 32)
      keys[n + i] = b.texts.subarray(32 * i, 32 * i + 32)
    }
    // a record counts as a duplicate when its hash or its text key is held (near-duplicates.ts)
    const owners = await sink.owners(keys)
    const fresh: number[] = []
    // keyed by text: an exact repeat has the same text key too
    const inBatch = new Set<string>()
    const texts = Buffer.from(b.texts.buffer, b.texts.byteOffset, b.texts.byteLength)
    for (let i = 0; i < n; i++) {
      const key = texts.toString('latin1', 32 * i, 32 * i + 32)
      if (owners[i] !== undefined || owners[n + i] !== undefined || inBatch.has(key)) {
        duplicates++
        continue
      }
      inBatch.add(key)
      fresh.push(i)
    }
    if (fresh.length === 0) return
    await sink.claim([...fresh.map(i => keys[i] as Uint8Array), ...fresh.map(i => keys[n + i] as Uint8Array)])
    const flags = new Map(b.flags)
    for (const i of fresh) {
      // an invalid record read meanwhile (preparing runs ahead) refuses the upload: store nothing more
      if (refusing()) return
      // flags count only records that end up in the contribution, as a validator reading the shards sees them
      for (const reason of flags.get(i) ?? []) flagged.set(reason, (flagged.get(reason) ?? 0) + 1)
      tree.append(keys[i] as Uint8Array)
      await storeShard(packer.add(b.bytes.subarray(b.offsets[i], b.offsets[i + 1])))
    }
    if (tree.size > manifest.limits.maxRecordsPerContribution) {
      throw new DatanetError({ code: IngestErrorCode.TOO_LARGE }, `the contribution exceeds the datanet's limit of ${manifest.limits.maxRecordsPerContribution} records`, 'usage')
    }
  }

  for await (const batch of batches) {
    invalidCount += batch.invalidCount
    for (const entry of batch.invalid) invalid.push(entry)
    seen = batch.seen
    // One batch in the index while the next is prepared: flushes stay in order (each sees
    // the claims of the one before), but preparing no longer waits for the disk.
    await inflight
    inflight = flush(batch)
    const at = seen
    void inflight.then(() => {
      reported = at
      opts.onProgress?.(at)
    }, () => {})
  }
  await inflight
  if (!refusing()) await storeShard(packer.flush())
  if (reported !== seen) opts.onProgress?.(seen)

  if (refusing()) {
    const first = invalid[0] as InvalidRecord
    throw new DatanetError({ code: IngestErrorCode.INVALID_RECORDS }, `${invalidCount} invalid record${invalidCount === 1 ? '' : 's'}; line ${first.line}: ${first.error}`, 'usage', { cause: { invalid, invalidCount } })
  }
  if (tree.size === 0) {
    if (duplicates > 0) throw new DatanetError({ code: IngestErrorCode.ONLY_DUPLICATES }, `all ${duplicates} records are duplicates of records already in the datanet or in this upload`, 'usage', { cause: { duplicates } })
    throw new DatanetError({ code: IngestErrorCode.EMPTY }, 'the upload holds no valid record', 'usage')
  }
  return { recordCount: tree.size, byteSize, shards, recordsRoot: tree.root(), invalid, invalidCount, duplicates, flagged }
}
