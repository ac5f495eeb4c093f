/**
 * The ingest pipeline in one process, without HTTP: parse + canonicalise + validate + hash
 * + text keys + record index (LevelDB) + shards + tree, for ~120 B and ~1 KB records, with
 * the per-record stage on this thread and on a worker thread (node/services/ingest-thread.ts).
 * Baseline from the same run: sha256 of the same bytes (the floor no ingest can beat), as a
 * ratio. CPU seconds are printed beside wall time: on a loaded machine they are the steadier figure.
 * Usage: scripts/run.sh node --max-semi-space-size=8 scripts/bench/ingest.ts [MB per size=64]
 * (BENCH_SIZES=120,1024 the record sizes; BENCH_WORKERS=0,1 the per-record stage here, on a worker)
 * (the daemon's young generation: node/devnet/node-process.ts RUNTIME_FLAGS)
 */
import { createHash } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { CID } from 'multiformats/cid'
import { ingestPrepared } from '../../src/contribution/ingest.ts'
import { builtinRules } from '../../src/contribution/rules/index.ts'
import { parseManifest } from '../../src/datanet/manifest.ts'
import { compileRecordSchema } from '../../src/datanet/record-schema.ts'
import { StateDatabase } from '../../src/storage/state-db.ts'
import { preparedBatches } from '../../node/services/ingest-thread.ts'

const mb = Number(process.argv[2] ?? 64)
const schema = { type: 'object', required: ['text'], properties: { text: { type: 'string', minLength: 1 }, id: { type: 'integer' }, lang: { type: 'string' } } }
const manifest = parseManifest({ name: 'bench', license: 'CC0-1.0', recordSchema: schema, validators: [{ address: '0x70997970C51812dc3A010C7d01b50e0d17dc79C8', stake: '1' }] })
const validateRecord = compileRecordSchema(schema)
const anyCid = CID.parse('bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy')

const WORDS = ['data', 'community', 'model', 'record', 'attribution', 'validator', 'shard', 'version', 'quorum', 'anchor', 'river', 'stone', 'light', 'open', 'garden', 'signal']

/** About `chars` characters of seeded words. */
function words (seed: number, chars: number): string {
  let x = seed * 2654435761 >>> 0 || 1
  let out = ''
  while (out.length < chars) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0
    out += (out.length === 0 ? '' : ' ') + (WORDS[x & 15] as string)
  }
  return out
}

/** JSONL of distinct records of about `size` bytes each, `mb` MB in all. */
function corpus (size: number): { bytes: Buffer, records: number } {
  const lines: string[] = []
  let total = 0
  for (let i = 0; total < mb * 1048576; i++) {
    const line = JSON.stringify({ text: `${i} ${words(i + 1, size - 40)}`, id: i, lang: 'en' })
    lines.push(line)
    total += line.length + 1
  }
  return { bytes: Buffer.from(lines.join('\n') + '\n'), records: lines.length }
}

async function * chunks (bytes: Buffer): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < bytes.length; at += 65_536) yield bytes.subarray(at, at + 65_536)
}

async function run (bytes: Buffer, maxWorkers: number): Promise<{ seconds: number, cpu: number, records: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'datanet-bench-ingest-'))
  const db = new StateDatabase(join(dir, 'state'))
  await db.open()
  try {
    const digest = new Uint8Array(32).fill(maxWorkers + 1)
    const opts = { manifest, validateRecord, rules: builtinRules, skipInvalid: false }
    const c0 = process.cpuUsage()
    const t0 = performance.now()
    const r = await ingestPrepared(preparedBatches(chunks(bytes), { format: 'jsonl', textMode: 'line', maxRecordBytes: manifest.limits.maxRecordBytes * 4 }, opts, { maxWorkers }), opts, {
      owners: async hashes => await db.records.owners(digest, hashes),
      claim: async hashes => { await db.records.claim(digest, hashes, 'u:bench') },
      putShard: async () => anyCid
    })
    const seconds = (performance.now() - t0) / 1000
    const c = process.cpuUsage(c0)
    return { seconds, cpu: (c.user + c.system) / 1e6, records: r.recordCount }
  } finally {
    await db.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

console.log(`node ${process.version}; ${mb} MB per record size; load average ${(loadavg()[0] ?? 0).toFixed(1)}`)
for (const size of (process.env.BENCH_SIZES ?? '120,1024').split(',').map(Number)) {
  const { bytes, records } = corpus(size)
  const t0 = performance.now()
  createHash('sha256').update(bytes).digest()
  const floor = bytes.length / 1048576 / ((performance.now() - t0) / 1000)
  console.log(`~${size} B records: ${records} records, ${(bytes.length / 1048576).toFixed(0)} MB; baseline sha256 of the bytes ${floor.toFixed(0)} MB/s`)
  for (const workers of (process.env.BENCH_WORKERS ?? '0,1').split(',').map(Number)) {
    await run(bytes.subarray(0, bytes.lastIndexOf(10, 2 * 1048576) + 1), workers) // warm-up: compiled code, the worker's modules
    const r = await run(bytes, workers)
    const rate = bytes.length / 1048576 / r.seconds
    console.log(`  per-record stage ${workers === 0 ? 'on this thread ' : 'on a worker    '}: ${r.seconds.toFixed(2)} s, ${(r.records / r.seconds).toFixed(0)} records/s, ${rate.toFixed(1)} MB/s, ratio ${(rate / floor).toFixed(3)} of the floor; CPU ${r.cpu.toFixed(1)} s (${(r.records / r.cpu).toFixed(0)} records per CPU second)`)
  }
}
