/**
 * A record's inclusion proof (GET /v1/datanets/:id/records/:hash/proof): from the O(log n)
 * tree nodes finalization stores (node/services/record-proofs.ts), beside the same run's
 * read of every leaf up to the version (what it did until 2026-12-05, and what versions
 * finalized before then still get).
 *
 * Usage: scripts/run.sh node scripts/bench/proof.ts [records=1000000] [proofs=200]
 */
import { createHash } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { toHex } from '../../src/codec/hash.ts'
import { MerkleFrontier, merkleProof } from '../../src/merkle/tree.ts'
import { StateDatabase, type VersionEntry } from '../../src/storage/state-db.ts'
import { recordProof } from '../../node/services/record-proofs.ts'

const records = Number(process.argv[2] ?? 1_000_000)
const proofs = Number(process.argv[3] ?? 200)
const datanet = 'bafyreibenchproofs'
const digest = createHash('sha256').update(datanet).digest()

const dir = mkdtempSync(join(tmpdir(), 'bench-proof-'))
const db = new StateDatabase(join(dir, 'state'))
await db.open()
try {
  // a fixed spread of records, the last one (on the tree's right edge) included; only their
  // hashes are kept (all 10 M would be ~1.3 GB of small arrays)
  const picks = Array.from({ length: proofs }, (_, i) => Math.min(records - 1, Math.floor((i * 7919 * 104729) % records)))
  picks[0] = records - 1
  const picked = new Map<number, Uint8Array>(picks.map(i => [i, new Uint8Array(0)]))
  const t0 = performance.now()
  const tree = new MerkleFrontier()
  let hashes: Uint8Array[] = []
  let nodes: Array<[number, number, Uint8Array]> = []
  let start = 0
  const onNode = (level: number, index: number, node: Uint8Array): void => { nodes.push([level, index, node]) }
  for (let i = 0; i < records; i++) {
    const h = new Uint8Array(createHash('sha256').update(`record ${i}`).digest())
    hashes.push(h)
    if (picked.has(i)) picked.set(i, h)
    tree.append(h, onNode)
    if (i + 1 - start >= 10_000 || i === records - 1) {
      await db.batch(db.dataset.appendOps(digest, start, hashes, nodes))
      hashes = []
      nodes = []
      start = i + 1
      if (start % 1_000_000 === 0) process.stderr.write(`  ${start / 1e6} M records stored, ${((performance.now() - t0) / 1000).toFixed(0)} s, heap ${(process.memoryUsage().heapUsed / 2 ** 20).toFixed(0)} MB\n`)
    }
  }
  const version: VersionEntry = {
    datanet, height: 1, cid: 'v1', parent: null, round: 0, datasetRoot: toHex(tree.root()), recordCount: records, attributionRoot: '0x', totalAttributed: '0',
    validatorSetHash: '0x', contributions: [], certificate: [], frontier: tree.toJSON(), decidedAt: 0, anchor: null
  }
  await db.batch([db.versions.putOp(version)])
  const buildS = (performance.now() - t0) / 1000

  const times: number[] = []
  for (const i of picks) {
    const t = performance.now()
    await recordProof(db, datanet, toHex(digest), toHex(picked.get(i) as Uint8Array), 1)
    times.push(performance.now() - t)
  }
  times.sort((a, b) => a - b)
  const p50 = times[Math.floor(times.length / 2)] as number
  const p99 = times[Math.floor(times.length * 0.99)] as number

  // the baseline: every leaf up to the version, then the proof from them (above 2 M records
  // the leaves alone outgrow a default heap: not run)
  const baseRuns = records > 2_000_000 ? 0 : 3
  const t = performance.now()
  for (let r = 0; r < baseRuns; r++) {
    merkleProof(await db.dataset.leafRange(digest, records), picks[r] as number)
  }
  const baseMs = (performance.now() - t) / baseRuns

  const f = (ms: number): string => ms < 1 ? `${(ms * 1000).toFixed(0)} µs` : `${ms.toFixed(1)} ms`
  process.stdout.write(`record proofs in a dataset of ${records.toLocaleString('en')} records (stored in ${buildS.toFixed(1)} s: records, leaves, tree nodes)\n`)
  process.stdout.write(`  from the stored tree nodes: p50 ${f(p50)}, p99 ${f(p99)} (${proofs} proofs)\n`)
  if (baseRuns > 0) process.stdout.write(`  every leaf read (baseline): ${f(baseMs)} per proof: ${(baseMs / p50).toFixed(0)}x the p50\n`)
  else process.stdout.write('  every leaf read (baseline): not run above 2 M records (every leaf in memory: more than a default heap)\n')
} finally {
  await db.close()
  rmSync(dir, { recursive: true, force: true })
}
