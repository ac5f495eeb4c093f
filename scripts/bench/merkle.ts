/**
 * Appending record hashes to the record tree (src/merkle), beside the same run's raw
 * sha256 rate (one hash per record: the floor, since the tree needs ~2 per record:
 * the leaf and, amortised, one inner node).
 * Usage: scripts/run.sh node scripts/bench/merkle.ts [records=1000000]
 */
import { hash } from 'node:crypto'
import { MerkleFrontier } from '../../src/merkle/tree.ts'

const n = Number(process.argv[2] ?? 1_000_000)
const hashes: Uint8Array[] = []
for (let i = 0; i < n; i++) {
  const b = Buffer.alloc(32)
  b.writeUInt32BE(i, 0)
  hashes.push(hash('sha256', b, 'buffer'))
}

function best (runs: number, fn: () => void): number {
  let min = Infinity
  for (let r = 0; r < runs; r++) {
    const t0 = performance.now()
    fn()
    min = Math.min(min, performance.now() - t0)
  }
  return min / 1000
}

const raw = best(3, () => { for (const h of hashes) hash('sha256', h, 'buffer') })
const tree = best(3, () => {
  const t = new MerkleFrontier()
  for (const h of hashes) t.append(h)
  t.root()
})
console.log(`node ${process.version}; ${n} record hashes, best of 3`)
console.log(`append to the record tree: ${(n / tree / 1e6).toFixed(2)} M records/s (${(tree * 1000).toFixed(0)} ms)`)
console.log(`  baseline one sha256 per record: ${(n / raw / 1e6).toFixed(2)} M hashes/s  ratio ${(raw / tree).toFixed(2)} of the floor`)
