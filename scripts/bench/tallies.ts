/**
 * Serving tallies (GET /v1/datanets/:id/tallies/:address and /tallies): the tally service
 * (node/services/tallies.ts), which decodes a final height's tallies and builds its tree
 * once, beside the same run's per-request rebuild (what the route did until 2026-12-05:
 * decode the stored tallies and build the tree for every address asked, so listing n
 * accounts cost n trees).
 *
 * Usage: scripts/run.sh node scripts/bench/tallies.ts [accounts=20000] [requests=2000]
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { TallyTree, talliesFromJSON, talliesToJSON } from '../../src/attribution/tallies.ts'
import { StateDatabase, type VersionEntry } from '../../src/storage/state-db.ts'
import { TallyService } from '../../node/services/tallies.ts'
import type { FollowedDatanet } from '../../node/services/datanets.ts'

const accounts = Number(process.argv[2] ?? 20_000)
const requests = Number(process.argv[3] ?? 2000)
const d = { id: 'bafyreibenchtallies' } as unknown as FollowedDatanet

const dir = mkdtempSync(join(tmpdir(), 'bench-tallies-'))
const db = new StateDatabase(join(dir, 'state'))
await db.open()
try {
  const tallies = new Map<string, bigint>()
  for (let i = 0; i < accounts; i++) tallies.set('0x' + (i + 1).toString(16).padStart(40, '0'), BigInt(1 + i * 7919))
  const version = { datanet: d.id, height: 1, cid: 'v1', parent: null, round: 0, datasetRoot: '0x', recordCount: 0, attributionRoot: '0x', totalAttributed: '0', validatorSetHash: '0x', contributions: [], certificate: [], frontier: { size: 0, nodes: [] }, decidedAt: 0, anchor: null } satisfies VersionEntry
  await db.batch([db.versions.putOp(version), db.tallies.putOp(d.id, 1, talliesToJSON(tallies))])
  const asked = [...tallies.keys()].filter((_, i) => i % Math.max(1, Math.floor(accounts / requests)) === 0).slice(0, requests)

  // baseline: what the route did per address (read, decode, build the tree, prove)
  const rebuildN = Math.min(20, asked.length)
  let t = performance.now()
  for (const a of asked.slice(0, rebuildN)) {
    const json = await db.tallies.at(d.id, 1)
    new TallyTree(talliesFromJSON(json?.tallies ?? [])).proof(a)
  }
  const rebuildMs = (performance.now() - t) / rebuildN

  const service = new TallyService({ db, chain: undefined })
  t = performance.now()
  await service.tallyOf(d, asked[0] as string)
  const firstMs = performance.now() - t
  t = performance.now()
  for (const a of asked) await service.tallyOf(d, a)
  const keptMs = (performance.now() - t) / asked.length
  t = performance.now()
  const list = await service.list(d)
  const listMs = performance.now() - t

  const f = (ms: number): string => ms < 1 ? `${(ms * 1000).toFixed(0)} µs` : `${ms.toFixed(1)} ms`
  process.stdout.write(`tallies of ${accounts.toLocaleString('en')} accounts, one final height\n`)
  process.stdout.write(`  per-request rebuild (baseline, ${rebuildN} requests): ${f(rebuildMs)} per address\n`)
  process.stdout.write(`  tally service, first request (reads and decodes the height): ${f(firstMs)}\n`)
  process.stdout.write(`  tally service, ${asked.length} further requests: ${f(keptMs)} per address: ${(rebuildMs / keptMs).toFixed(0)}x the baseline's speed\n`)
  process.stdout.write(`  GET /tallies (all ${list.tallies.length.toLocaleString('en')} accounts, one tree): ${f(listMs)}; the baseline would take ~${(rebuildMs * accounts / 1000).toFixed(0)} s\n`)
} finally {
  await db.close()
  rmSync(dir, { recursive: true, force: true })
}
