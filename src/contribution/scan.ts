import { bytesEqual, bytesKey } from '../codec/hash.ts'
import { decodeRecord, splitShard, type ShardRecord } from '../datanet/shard.ts'
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

export type ScanResult =
  | { ok: true, facts: ContributionFacts }
  | { ok: false, code: string, message: string }

export interface ScanDeps {
  /** A shard's bytes, by CID (content-addressed: the store verified them). */
  getShard: (cid: CID) => Promise<Uint8Array>
  /** Each shard's records as split (their hashes are what versions append). */
  onShard?: (cid: CID, records: ReadonlyArray<{ hash: Uint8Array }>) => void
  /**
   * Where to put a shard's text keys (32 bytes a record, in order), taken from the value the
   * check parses so that indexContribution need not parse every record again; undefined:
   * not kept (then they are not computed here).
   */
  keepTextKeys?: (cid: CID, records: number) => Uint8Array | undefined
}

export interface IndexDeps extends ScanDeps {
  /** Owners of record hashes and text keys in the record index. */
  owners: (hashes: readonly Uint8Array[]) => Promise<Array<string | undefined>>
  /** Records these hashes as owned by the contribution. */
  claim: (hashes: readonly Uint8Array[], owner: string) => Promise<void>
  /** Which of these records (bytes) records already in the dataset mostly cover (record-coverage.ts); absent: none. */
  covered?: (records: readonly Uint8Array[]) => Promise<boolean[]>
  /** A shard's text keys as scanContribution packed them, when held; absent: computed here. */
  textKeys?: (shard: CID) => Uint8Array | undefined
  /** A shard's record hashes as its check split them (ShardHashes), when held; absent: hashed here. */
  recordHashes?: (shard: CID) => readonly Uint8Array[] | undefined
}

/**
 * Reads a contribution's shards in order and checks that they are what it claims: every
 * line canonical JSON, the record count, the byte size and the records root recomputed
 * exactly. On the way it gathers the facts a verdict needs from the records alone (schema
 * failures, per-record rule flags; duplicates come from indexContribution). Reads only:
 * it runs inside gossip validation. One shard in memory at a time.
 */
export async function scanContribution (c: Contribution, manifest: Manifest, validateRecord: RecordValidator, rules: readonly ContributionRule[], deps: ScanDeps): Promise<ScanResult> {
  const tree = new MerkleFrontier()
  const flagged = new Map<string, number>()
  const recordRules = rules.filter(r => r.checkRecord !== undefined)
  let byteSize = 0
  let invalidRecords = 0
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
    deps.onShard?.(shardCid, records)
    const textKeys = deps.keepTextKeys?.(shardCid, records.length)
    for (let i = 0; i < records.length; i++) {
      const record = records[i] as ShardRecord
      let value: Record<string, unknown>
      try {
        value = decodeRecord(record.bytes)
      } catch (err) {
        return { ok: false, code: ScanErrorCode.SHARD_MALFORMED, message: `shard ${shardCid.toString()}: ${(err as Error).message}` }
      }
      tree.append(record.hash)
      if (tree.size > c.recordCount) return { ok: false, code: ScanErrorCode.RECORD_COUNT, message: `more records than the stated ${c.recordCount}` }
      textKeys?.set(textKeyOf(value, record.bytes), 32 * i)
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
  return { ok: true, facts: { recordCount: c.recordCount, byteSize, invalidRecords, duplicateRecords: 0, flagged } }
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
export async function indexContribution (c: Contribution, cid: string, deps: IndexDeps): Promise<IndexCounts> {
  let duplicateRecords = 0
  let nearDuplicateRecords = 0
  const claimedHere = new Set<string>()
  const textsHere = new Set<string>()
  for (const shardCid of c.shards) {
    const records = splitShard(await deps.getShard(shardCid), deps.recordHashes?.(shardCid))
    const held = deps.textKeys?.(shardCid)
    const texts = held !== undefined && held.byteLength === 32 * records.length
      ? records.map((_, i) => held.subarray(32 * i, 32 * (i + 1)))
      : records.map(r => textKey(r.bytes))
    const owners = await deps.owners([...records.map(r => r.hash), ...texts])
    const fresh: Uint8Array[] = []
    const unseen: Uint8Array[] = []
    records.forEach((r, i) => {
      const owner = owners[i]
      const key = bytesKey(r.hash)
      if (claimedHere.has(key) || (owner !== undefined && owner !== cid)) {
        duplicateRecords++
        return
      }
      claimedHere.add(key)
      if (owner === undefined) fresh.push(r.hash)
      const text = texts[i] as Uint8Array
      const textOwner = owners[records.length + i]
      const textId = bytesKey(text)
      if (textsHere.has(textId) || (textOwner !== undefined && textOwner !== cid)) {
        nearDuplicateRecords++
        return
      }
      textsHere.add(textId)
      if (textOwner === undefined) fresh.push(text)
      unseen.push(r.bytes)
    })
    claimedHere.clear()
    // a record no key matched may still be mostly another's text (a word changed, a sentence added)
    if (deps.covered !== undefined && unseen.length > 0) nearDuplicateRecords += (await deps.covered(unseen)).filter(Boolean).length
    await deps.claim(fresh, cid)
  }
  return { duplicateRecords, nearDuplicateRecords }
}
