/**
 * Finding a datanet's contributions no version includes yet (what every proposal build and
 * every re-gossip round reads): the contributions repository's index
 * (src/storage/repositories/contributions.ts) beside the same run's full scan of every
 * contribution the node holds (what they did until 2026-12-05).
 *
 * Usage: scripts/run.sh node scripts/bench/open-contributions.ts [included=100000] [open=200]
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { StateDatabase, type ContributionEntry } from '../../src/storage/state-db.ts'

const included = Number(process.argv[2] ?? 100_000)
const open = Number(process.argv[3] ?? 200)
const datanet = 'bafyreibenchopencontributions'

function entry (i: number, version: number | null): ContributionEntry {
  return {
    cid: `bafyrei${i.toString(36).padStart(12, '0')}`, datanet, contribution: { padding: 'x'.repeat(400) }, status: 'accepted', score: 100,
    receivedAt: i, decidedAt: i, origin: 'gossip', version, facts: { recordCount: 10, byteSize: 1000, invalidRecords: 0, duplicateRecords: 0, flagged: {} }
  }
}

const dir = mkdtempSync(join(tmpdir(), 'bench-open-'))
const db = new StateDatabase(join(dir, 'state'))
await db.open()
try {
  const all: Array<[string, ContributionEntry]> = []
  for (let i = 0; i < included + open; i++) {
    const e = entry(i, i < included ? 1 + Math.floor(i / 100) : null)
    all.push([e.cid, e])
    if (all.length === 5000) { await db.contributions.putMany(all); all.length = 0 }
  }
  await db.contributions.putMany(all)

  const runs = 5
  let t = performance.now()
  let scanned = 0
  for (let r = 0; r < runs; r++) {
    scanned = 0
    for await (const [, e] of db.contributions.entries()) if (e.datanet === datanet && e.version === null) scanned++
  }
  const scanMs = (performance.now() - t) / runs
  t = performance.now()
  let indexed = 0
  for (let r = 0; r < runs; r++) {
    indexed = 0
    for await (const e of db.contributions.unincluded(datanet)) if (e.version === null) indexed++
  }
  const indexMs = (performance.now() - t) / runs
  if (scanned !== open || indexed !== open) throw new Error(`found ${scanned} by scan, ${indexed} by index, expected ${open}`)
  process.stdout.write(`${open} open contributions among ${(included + open).toLocaleString('en')} held\n`)
  process.stdout.write(`  full scan (baseline): ${scanMs.toFixed(1)} ms\n`)
  process.stdout.write(`  index: ${indexMs.toFixed(2)} ms (${(scanMs / indexMs).toFixed(0)}x)\n`)
} finally {
  await db.close()
  rmSync(dir, { recursive: true, force: true })
}
