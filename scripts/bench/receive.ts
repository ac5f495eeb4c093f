/**
 * A validator receiving one large contribution (node/services/contribution-receiver.ts, on
 * one store, shards in memory): the scan (every record parsed and checked canonical, the
 * schema, the rules, the records root recomputed) and the record index (each record's hash
 * and text key looked up and claimed: duplicates and near-duplicates), on a fresh store
 * each run. Baseline from the same run: splitting and hashing the shards, which each of
 * them does once (what receipt costs over the hash floor).
 *
 * Usage: scripts/run.sh node scripts/bench/receive.ts [records=300000] [runs=3]
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CID } from 'multiformats/cid'
import { canonicalBytes } from '../../src/codec/jcs.ts'
import { fromHex } from '../../src/codec/hash.ts'
import { MerkleFrontier } from '../../src/merkle/tree.ts'
import { ShardPacker, shardCid, splitShard } from '../../src/datanet/shard.ts'
import { compileRecordSchema } from '../../src/datanet/record-schema.ts'
import { builtinRules } from '../../src/contribution/rules/index.ts'
import { indexContribution, scanContribution, type IndexDeps } from '../../src/contribution/scan.ts'
import { StateDatabase } from '../../src/storage/state-db.ts'
import type { Contribution } from '../../src/contribution/contribution.ts'
import { datanet } from '../../test/helpers/versions-world.ts'

const records = Number(process.argv[2] ?? 300_000)
const runs = Number(process.argv[3] ?? 3)
const d = await datanet()
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number

// ~120 B records packed as ingest packs them
const packer = new ShardPacker(d.manifest.shardSize)
const shards: Uint8Array[] = []
for (let i = 0; i < records; i++) {
  const closed = packer.add(canonicalBytes({ text: `record ${i} of one large contribution, about a hundred and twenty bytes long once it is canonical JSON` }) as Uint8Array)
  if (closed !== undefined) shards.push(closed)
}
const rest = packer.flush()
if (rest !== undefined) shards.push(rest)
const tree = new MerkleFrontier()
let byteSize = 0
for (const s of shards) {
  byteSize += s.length
  for (const r of splitShard(s)) tree.append(r.hash)
}
const blocks = new Map(shards.map(s => [shardCid(s).toString(), s]))
const c = { datanet: CID.parse(d.id), contributor: '0x' + '11'.repeat(20), shards: shards.map(s => shardCid(s)), recordCount: records, byteSize, recordsRoot: tree.root(), nonce: 1, timestamp: 1, signature: new Uint8Array(65) } as unknown as Contribution
const getShard = async (cid: CID): Promise<Uint8Array> => blocks.get(cid.toString()) as Uint8Array
const digest = fromHex(d.digest, 32)
const validate = compileRecordSchema(d.manifest.recordSchema)

/** The index of the contribution on a fresh store (its record-index filter filled, as a running node's is). */
async function index (): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-receive-'))
  const db = new StateDatabase(join(dir, 'state'))
  await db.open()
  try {
    await db.records.filterFilled(digest)
    const deps: IndexDeps = {
      getShard,
      owners: async h => await db.records.owners(digest, h),
      claim: async (h, owner) => { await db.records.claim(digest, h, owner) },
      // no version yet: nothing covered (the node asks all the same)
      covered: async lines => lines.map(() => false)
    }
    const t0 = performance.now()
    const counts = await indexContribution(c, 'bench-contribution', deps)
    if (counts.duplicateRecords !== 0) throw new Error('duplicates in fresh records')
    return performance.now() - t0
  } finally {
    await db.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

const floor: number[] = []
const scans: number[] = []
const indexes: number[] = []
for (let run = 0; run < runs; run++) {
  let t0 = performance.now()
  for (const s of shards) splitShard(s)
  floor.push(performance.now() - t0)
  t0 = performance.now()
  const scanned = await scanContribution(c, d.manifest, validate, builtinRules, { getShard })
  scans.push(performance.now() - t0)
  if (!scanned.ok) throw new Error(scanned.message)
  indexes.push(await index())
}
const line = (what: string, ms: number, base: number): string => `${what.padEnd(46)} ${(ms / 1000).toFixed(2)} s  ${Math.round(records / ms * 1000).toLocaleString('en').padStart(9)} records/s  ${(ms / base).toFixed(2)}× the baseline\n`
const base = median(floor)
process.stdout.write(`${records.toLocaleString('en')} records of ~120 B in ${shards.length} shards, medians of ${runs}; node ${process.version}\n`)
process.stdout.write(line('split and hash the shards (baseline)', base, base))
process.stdout.write(line('scan', median(scans), base))
process.stdout.write(line('index', median(indexes), base))
process.stdout.write(line('receipt: both', median(scans) + median(indexes), base))
