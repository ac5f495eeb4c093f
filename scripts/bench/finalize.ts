/**
 * One large contribution made final on one store (node/services/consensus/versions.ts over
 * LevelDB and an in-memory block store): the proposer's build (the append pass: shards read,
 * split and hashed, the store asked which records it holds, the tree) as the baseline, then
 * the finalization of the version it built (its records, leaves and tree nodes written in
 * pieces, then its own synced batch), as a ratio to it. Run alone: on five nodes of one
 * 2-core machine the same finalization took ~6× as long (`big.ts`).
 *
 * Usage: scripts/run.sh node scripts/bench/finalize.ts [records=300000] [runs=3]
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createLogger } from '../../node/logger.ts'
import { DatanetVersions } from '../../node/services/consensus/versions.ts'
import { StateDatabase } from '../../src/storage/state-db.ts'
import { binding, contribution, datanet, memoryHelia, wallets } from '../../test/helpers/versions-world.ts'

const records = Number(process.argv[2] ?? 300_000)
const runs = Number(process.argv[3] ?? 3)
const logger = createLogger({ level: 'silent', format: 'json' })
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number
// ~120 B records in shards of ~8,000, as ingest packs them
const lines = Array.from({ length: records }, (_, i) => `record ${i} of one large contribution, about a hundred and twenty bytes long once it is canonical JSON`)

const builds: number[] = []
const finals: number[] = []
for (let run = 0; run < runs; run++) {
  const dir = mkdtempSync(join(tmpdir(), 'bench-finalize-'))
  const db = new StateDatabase(join(dir, 'state'))
  await db.open()
  try {
    const d = await datanet()
    const helia = memoryHelia()
    await contribution(db, helia, d, lines, wallets.slice(0, 3), 'accepted', undefined, 8_000)
    const versions = new DatanetVersions({ db, helia, binding, logger }, d, logger)
    await versions.load()
    let t0 = performance.now()
    const value = await versions.build(1, d.validators, wallets[0]!.address, 1)
    if (value === undefined) throw new Error('nothing to propose')
    builds.push(performance.now() - t0)
    t0 = performance.now()
    await versions.finalize(0, value, [], 1)
    finals.push(performance.now() - t0)
    if (versions.last?.recordCount !== records) throw new Error(`final with ${versions.last?.recordCount} records`)
  } finally {
    await db.close()
    rmSync(dir, { recursive: true, force: true })
  }
}
const b = median(builds)
const f = median(finals)
process.stdout.write(`${records.toLocaleString('en')} records in one contribution, median of ${runs}; node ${process.version}\n`)
process.stdout.write(`build      the append pass (baseline):   ${(b / 1000).toFixed(2)} s  ${Math.round(records / b * 1000).toLocaleString('en')} records/s\n`)
process.stdout.write(`finalize   the version it built:         ${(f / 1000).toFixed(2)} s  ${Math.round(records / f * 1000).toLocaleString('en')} records/s  ratio to the build ${(f / b).toFixed(2)}\n`)
