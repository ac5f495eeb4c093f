import { bytesEqual, bytesKey } from '../codec/hash.ts'
import { decodeRecord, shardLines, splitShard } from '../datanet/shard.ts'
import { MerkleFrontier } from '../merkle/tree.ts'
import { textKey, textKeyOf } from './near-duplicates.ts'
import type { CID } from 'multiformats/cid'
import type { Manifest } from '../datanet/manifest.ts'
import type { RecordValidator } from '../datanet/record-schema.ts'
import type { Contribution } from './contribution.ts'
import type { ContributionFacts, ContributionRule } from './rules/index.ts'

export const ScanErrorCode = {
  SHARD_MALFORMED: 'CONTRIBUTION_ERROR_SHARD_MALFORMED',
  RECORD_COUNT: 'CONTRIBUTION_ERROR_RECORD_COUNT_MISMATCH',
  BYTE_SIZE: 'CONTRIBUTION_ERROR_BYTE_SIZE_MISMATCH',
  ROOT: 'CONTRIBUTION_ERROR_RECORDS_ROOT_MISMATCH',
  SHARD_TOO_LARGE: 'CONTRIBUTION_ERROR_SHARD_TOO_LARGE'
} as const

/** What a scan keeps of a shard for `indexContribution`: its records' hashes and text keys, packed 32 bytes each, in order. */
export interface ScannedShard { hashes: Uint8Array, texts: Uint8Array }

/**
 * A scan keeps its shards' keys (64 bytes a record, off the heap: 64 MB) for contributions of
 * at most this many records; a larger one is split and hashed again by the index.
 */
export const KEEP_KEYS_RECORDS = 1_000_000

export type ScanResult =
  | { ok: true, facts: ContributionFacts, keys?: ScannedShard[] }
  | { ok: false, code: string, message: string }

export interface ScanDeps {
  /** A shard's bytes, by CID (content-addressed: the store verified them). */
  getShard: (cid: CID) => Promise<Uint8Array>
}

export interface IndexDeps extends ScanDeps {
  /** Owners of record hashes and text keys in the record index. */
  owners: (hashes: readonly Uint8Array[]) => Promise<Array<string | undefined>>
  /** Records these hashes as owned by the contribution. */
  claim: (hashes: readonly Uint8Array[], owner: string) => Promise<void>
  /** Which of these records (bytes) records already in the dataset mostly cover (record-coverage.ts); absent: none. */
  covered?: (records: readonly Uint8Array[]) => Promise<boolean[]>
}

/**
 * Reads a contribution's shards in order and checks that they are what it claims: every
 * line canonical JSON, the record count, the byte size and the records root recomputed
 * exactly. On the way it gathers the facts a verdict needs from the records alone (schema
 * failures, per-record rule flags; duplicates come from indexContribution). Reads only:
 * it runs inside gossip validation. One shard in memory at a time.
 */
export async function scanContribution (c: Contribution, manifest: Manifest, validateRecord: RecordValidator, rules: readonly ContributionRule[], deps: ScanDeps, keepKeys = KEEP_KEYS_RECORDS): Promise<ScanResult> {
  const tree = new MerkleFrontier()
  const flagged = new Map<string, number>()
  const recordRules = rules.filter(r => r.checkRecord !== undefined)
  let byteSize = 0
  let invalidRecords = 0
  // the index needs each record's hash and text key: computed here, where the record is parsed
  // already, they spare it a second split, hash and parse of every record
  const keys: ScannedShard[] | undefined = c.recordCount <= keepKeys ? [] : undefined
  for (const shardCid of c.shards) {
    const shard = await deps.getShard(shardCid)
    if (shard.length > manifest.shardSize) return { ok: false, code: ScanErrorCode.SHARD_TOO_LARGE, message: `shard ${shardCid.toString()} is larger than the datanet's shard size` }
    byteSize += shard.length
    let records
    try {
      records = splitShard(shard)
    } catch {
      return { ok: false, code: ScanErrorCode.SHARD_MALFORMED, message: `shard ${shardCid.toString()} is not newline-terminated records` }
    }
    const kept = keys === undefined ? undefined : { hashes: new Uint8Array(records.length * 32), texts: new Uint8Array(records.length * 32) }
    if (kept !== undefined) keys?.push(kept)
    for (const [i, record] of records.entries()) {
      let value: Record<string, unknown>
      try {
        value = decodeRecord(record.bytes)
      } catch (err) {
        return { ok: false, code: ScanErrorCode.SHARD_MALFORMED, message: `shard ${shardCid.toString()}: ${(err as Error).message}` }
      }
      tree.append(record.hash)
      if (kept !== undefined) {
        kept.hashes.set(record.hash, i * 32)
        kept.texts.set(textKeyOf(value, record.bytes), i * 32)
      }
      if (tree.size > c.recordCount) return { ok: false, code: ScanErrorCode.RECORD_COUNT, message: `more records than the stated ${c.recordCount}` }
      if (validateRecord(value) !== undefined) invalidRecords++
      for (const rule of recordRules) {
        const reason = rule.checkRecord?.(value, manifest)
        if (reason !== undefined) flagged.set(reason, (flagged.get(reason) ?? 0) + 1)
      }
    }
  }
  if (tree.size !== c.recordCount) return { ok: false, code: ScanErrorCode.RECORD_COUNT, message: `${tree.size} records, not the stated ${c.recordCount}` }
  if (byteSize !== c.byteSize) return { ok: false, code: ScanErrorCode.BYTE_SIZE, message: `${byteSize} bytes, not the stated ${c.byteSize}` }
  if (!bytesEqual(tree.root(), c.recordsRoot)) return { ok: false, code: ScanErrorCode.ROOT, message: 'the records root does not match the shards' }
  return { ok: true, facts: { recordCount: c.recordCount, byteSize, invalidRecords, duplicateRecords: 0, flagged }, ...(keys === undefined ? {} : { keys }) }
}

/** Views of `packed`'s 32-byte keys. */
function views (packed: Uint8Array): Uint8Array[] {
  return Array.from({ length: packed.length / 32 }, (_, i) => packed.subarray(i * 32, i * 32 + 32))
}

/** What indexing a contribution found: records held already, exactly or up to their text key. */
export interface IndexCounts {
  duplicateRecords: number
  nearDuplicateRecords: number
}

/**
 * Adds a verified contribution's records to the record index, owned by it — each record's
 * hash and its text key (near-duplicates.ts) — and counts what it repeats: exact
 * duplicates (a hash another contribution holds, or repeated within one of its shards)
 * and near-duplicates (a fresh hash whose text key is held, or repeated within the
 * contribution, or a record mostly covered by one already in the dataset). Keys it already owns are not counted, so a second run after a crash
 * changes nothing; the price is that a record repeated exactly across two of its shards
 * goes uncounted (an honest upload never does that: ingest drops such repeats).
 */
export async function indexContribution (c: Contribution, cid: string, deps: IndexDeps, scanned?: readonly ScannedShard[]): Promise<IndexCounts> {
  let duplicateRecords = 0
  let nearDuplicateRecords = 0
  const claimedHere = new Set<string>()
  const textsHere = new Set<string>()
  for (const [s, shardCid] of c.shards.entries()) {
    // the keys the scan kept (the shard read again only for what coverage needs: its lines), or split and hashed anew
    const kept = scanned?.[s]
    let hashes: Uint8Array[]
    let texts: Uint8Array[]
    let lines: Uint8Array[] | undefined
    if (kept !== undefined) {
      hashes = views(kept.hashes)
      texts = views(kept.texts)
      lines = deps.covered === undefined ? undefined : shardLines(await deps.getShard(shardCid))
      if (lines !== undefined && lines.length !== hashes.length) throw new Error(`shard ${shardCid.toString()}: ${lines.length} records, the scan kept ${hashes.length}`)
    } else {
      const records = splitShard(await deps.getShard(shardCid))
      hashes = records.map(r => r.hash)
      texts = records.map(r => textKey(r.bytes))
      lines = records.map(r => r.bytes)
    }
    const owners = await deps.owners([...hashes, ...texts])
    const fresh: Uint8Array[] = []
    const unseen: Uint8Array[] = []
    hashes.forEach((hash, i) => {
      const owner = owners[i]
      const key = bytesKey(hash)
      if (claimedHere.has(key) || (owner !== undefined && owner !== cid)) {
        duplicateRecords++
        return
      }
      claimedHere.add(key)
      if (owner === undefined) fresh.push(hash)
      const text = texts[i] as Uint8Array
      const textOwner = owners[hashes.length + i]
      const textId = bytesKey(text)
      if (textsHere.has(textId) || (textOwner !== undefined && textOwner !== cid)) {
        nearDuplicateRecords++
        return
      }
      textsHere.add(textId)
      if (textOwner === undefined) fresh.push(text)
      if (lines !== undefined) unseen.push(lines[i] as Uint8Array)
    })
    claimedHere.clear()
    // a record no key matched may still be mostly another's text (a word changed, a sentence added)
    if (deps.covered !== undefined && unseen.length > 0) nearDuplicateRecords += (await deps.covered(unseen)).filter(Boolean).length
    await deps.claim(fresh, cid)
  }
  return { duplicateRecords, nearDuplicateRecords }
}
