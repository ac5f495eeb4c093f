import { canonicalBytes } from '../codec/jcs.ts'
import { sha256 } from '../codec/hash.ts'
import { ShardPacker } from '../datanet/shard.ts'
import { DatanetError } from '../errors.ts'
import { MerkleFrontier } from '../merkle/tree.ts'
import { textKey } from './near-duplicates.ts'
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

interface Pending { bytes: Uint8Array, hash: Uint8Array, text: Uint8Array, key: string, flags: string[] | undefined }

/**
 * Streams parsed records into a contribution: canonicalise (RFC 8785), check size and
 * schema, hash, drop duplicates and near-duplicates (within the upload and against the
 * index), pack into shards and fold into the records root, a batch at a time so memory
 * stays flat. With invalid records and no `skipInvalid`, it keeps reading only to report
 * them, and throws CONTRIBUTION_ERROR_INVALID_RECORDS listing file lines.
 */
export async function ingestRecords (items: AsyncIterable<ParsedItem>, opts: IngestOptions, sink: IngestSink): Promise<IngestResult> {
  const { manifest } = opts
  const maxListed = opts.maxListed ?? 100
  const packer = new ShardPacker(manifest.shardSize)
  const tree = new MerkleFrontier()
  const shards: CID[] = []
  const invalid: InvalidRecord[] = []
  const flagged = new Map<string, number>()
  const recordRules = opts.rules.filter(r => r.checkRecord !== undefined)
  let invalidCount = 0
  let duplicates = 0
  let byteSize = 0
  let seen = 0
  let batch: Pending[] = []

  let inflight: Promise<void> = Promise.resolve()
  const refusing = (): boolean => invalidCount > 0 && !opts.skipInvalid
  const addInvalid = (line: number, error: string): void => {
    invalidCount++
    if (invalid.length < maxListed) invalid.push({ line, error })
  }
  const storeShard = async (shard: Uint8Array | undefined): Promise<void> => {
    if (shard === undefined) return
    byteSize += shard.length
    if (byteSize > manifest.limits.maxContributionBytes) {
      throw new DatanetError({ code: IngestErrorCode.TOO_LARGE }, `the contribution exceeds the datanet's limit of ${manifest.limits.maxContributionBytes} bytes`, 'usage')
    }
    shards.push(await sink.putShard(shard))
  }
  const flush = async (): Promise<void> => {
    if (batch.length === 0) return
    const current = batch
    batch = []
    if (refusing()) return
    // a record counts as a duplicate when its hash or its text key is held (near-duplicates.ts)
    const owners = await sink.owners([...current.map(p => p.hash), ...current.map(p => p.text)])
    const fresh: Pending[] = []
    const inBatch = new Set<string>()
    current.forEach((p, i) => {
      if (owners[i] !== undefined || owners[current.length + i] !== undefined || inBatch.has(p.key)) {
        duplicates++
        return
      }
      inBatch.add(p.key)
      fresh.push(p)
    })
    if (fresh.length === 0) return
    await sink.claim([...fresh.map(p => p.hash), ...fresh.map(p => p.text)])
    for (const p of fresh) {
      // an invalid record read meanwhile (parsing runs ahead) refuses the upload: store nothing more
      if (refusing()) return
      // flags count only records that end up in the contribution, as a validator reading the shards sees them
      for (const reason of p.flags ?? []) flagged.set(reason, (flagged.get(reason) ?? 0) + 1)
      tree.append(p.hash)
      await storeShard(packer.add(p.bytes))
    }
    if (tree.size > manifest.limits.maxRecordsPerContribution) {
      throw new DatanetError({ code: IngestErrorCode.TOO_LARGE }, `the contribution exceeds the datanet's limit of ${manifest.limits.maxRecordsPerContribution} records`, 'usage')
    }
  }

  for await (const item of items) {
    seen++
    if ('error' in item) {
      addInvalid(item.line, item.error)
    } else {
      const bytes = canonicalBytes(item.value)
      if (bytes === undefined) {
        addInvalid(item.line, 'not representable as canonical JSON')
      } else if (bytes.length > manifest.limits.maxRecordBytes) {
        addInvalid(item.line, `record is ${bytes.length} bytes, over the datanet's limit of ${manifest.limits.maxRecordBytes}`)
      } else {
        const schemaError = opts.validateRecord(item.value)
        if (schemaError !== undefined) {
          addInvalid(item.line, schemaError)
        } else if (!refusing()) {
          let flags: string[] | undefined
          for (const rule of recordRules) {
            const reason = rule.checkRecord?.(item.value, manifest)
            if (reason !== undefined) (flags ??= []).push(reason)
          }
          const hash = sha256(bytes)
          const text = textKey(bytes)
          // keyed by text: an exact repeat has the same text key too
          batch.push({ bytes, hash, text, key: Buffer.from(text).toString('latin1'), flags })
        }
      }
    }
    if (batch.length >= (opts.batchSize ?? BATCH)) {
      // One batch in the index while the next is parsed: flushes stay in order (each sees
      // the claims of the one before), but parsing no longer waits for the disk.
      await inflight
      inflight = flush()
      const at = seen
      void inflight.then(() => { opts.onProgress?.(at) }, () => {})
    }
  }
  await inflight
  await flush()
  if (!refusing()) await storeShard(packer.flush())
  opts.onProgress?.(seen)

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
