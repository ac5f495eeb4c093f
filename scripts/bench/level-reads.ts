/**
 * Single reads of the node's LevelDB (src/storage/level-reads.ts): `readOne` (getSync on
 * this thread, what the node does) beside the same run's promise `get` (a trip to the
 * thread pool and back: what it did until 2026-12-07), and sets of a few keys by
 * `readMany` beside `getMany`. Keys are ~40 bytes and values 200, as the state database's
 * entries; the store is small enough to be in the cache, as the entries a version just
 * wrote are. CPU is the process's (all threads), per read.
 *
 * Usage: scripts/run.sh node scripts/bench/level-reads.ts [keys=20000] [rounds=3]
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ClassicLevel } from 'classic-level'
import { readMany, readOne } from '../../src/storage/level-reads.ts'

const n = Number(process.argv[2] ?? 20_000)
const rounds = Number(process.argv[3] ?? 3)

const dir = mkdtempSync(join(tmpdir(), 'datanet-bench-reads-'))
const db = new ClassicLevel<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' })
await db.open()
const keys = Array.from({ length: n }, (_, i) => Buffer.from(`versions/bafy${i.toString().padStart(8, '0')}${'k'.repeat(24)}`))
await db.batch(keys.map(key => ({ type: 'put' as const, key, value: new Uint8Array(200).fill(7) })))

/** µs of wall time and of CPU (all threads) per read. */
async function timed (reads: number, run: () => Promise<void>): Promise<{ wall: number, cpu: number }> {
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  await run()
  const wall = (performance.now() - t0) * 1000 / reads
  const cpu = process.cpuUsage(cpu0)
  return { wall, cpu: (cpu.user + cpu.system) / reads }
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number
const rows: Record<string, Array<{ wall: number, cpu: number }>> = { promise: [], here: [], many: [], manyHere: [] }
try {
  for (let r = 0; r < rounds; r++) {
    rows.promise?.push(await timed(n, async () => { for (const k of keys) if (await db.get(k) === undefined) throw new Error('missing') }))
    rows.here?.push(await timed(n, async () => { for (const k of keys) if (await readOne(db, k) === undefined) throw new Error('missing') }))
    // sets of 4 keys, as a range's verdicts or a version's entries are asked
    rows.many?.push(await timed(n, async () => { for (let i = 0; i < n; i += 4) await db.getMany(keys.slice(i, i + 4)) }))
    rows.manyHere?.push(await timed(n, async () => { for (let i = 0; i < n; i += 4) await readMany(db, keys.slice(i, i + 4)) }))
  }
} finally {
  await db.close()
  rmSync(dir, { recursive: true, force: true })
}
const fmt = (k: string): string => {
  const xs = rows[k] ?? []
  return `${median(xs.map(x => x.wall)).toFixed(2).padStart(6)} µs wall, ${median(xs.map(x => x.cpu)).toFixed(2).padStart(6)} µs CPU a read`
}
const ratio = (a: string, b: string): string => (median((rows[b] ?? []).map(x => x.cpu)) / median((rows[a] ?? []).map(x => x.cpu))).toFixed(1)
console.log(`node ${process.version}; ${n} keys in one LevelDB, medians of ${rounds} rounds`)
console.log(`one key    readOne (getSync here): ${fmt('here')}`)
console.log(`baseline   get (thread pool):      ${fmt('promise')}   → readOne ${ratio('here', 'promise')}× less CPU`)
console.log(`4 keys     readMany (here):        ${fmt('manyHere')}`)
console.log(`baseline   getMany (thread pool):  ${fmt('many')}   → readMany ${ratio('manyHere', 'many')}× less CPU`)
