/**
 * A burst of small contributions into a 4-validator + 1-node loopback network (real
 * processes, no kills): N uploads to the plain node from 8 concurrent clients, then one
 * line per new version until all N are final on that node (LIMIT seconds at most).
 *
 *   bash scripts/run.sh node scripts/burst.ts [N=400] [LIMIT=240]
 *
 * A probe, not a benchmark: it found the fetch queue that let a datanet take ~16
 * contributions of one publisher per 30 s re-gossip (README, "Faults and attacks").
 */
import { startClusterNetwork } from '../test/helpers/soak.ts'
const net = await startClusterNetwork({ validators: 4, nodes: 1 })
const node = net.members[4] as (typeof net.members)[number]
const t0 = Date.now()
const N = Number(process.argv[2] ?? 400)
const LIMIT_MS = Number(process.argv[3] ?? 240) * 1000
await Promise.all(Array.from({ length: 8 }, async (_, w) => {
  for (let i = w; i < N; i += 8) {
    const res = await fetch(`${node.daemon.apiUrl}/v1/datanets/${net.datanet}/contributions?format=jsonl`, { method: 'POST', headers: { authorization: `Bearer ${node.token}`, 'content-type': 'application/x-ndjson' }, body: JSON.stringify({ text: `probe ${i} ${Math.random()}` }) + '\n' })
    if (res.status !== 201) console.log('status', res.status, await res.text())
  }
}))
console.log(`acked ${N} in ${Date.now() - t0} ms`)
let last = 0
while (Date.now() - t0 < LIMIT_MS) {
  const vs = await (await fetch(`${node.daemon.apiUrl}/v1/datanets/${net.datanet}/versions`)).json() as Array<{ height: number, contributions: string[], decidedAt: number, round: number }>
  const total = vs.reduce((s, v) => s + v.contributions.length, 0)
  if (vs.length !== last) { last = vs.length; console.log(`${((Date.now() - t0) / 1000).toFixed(1)} s: height ${vs[0]?.height} round ${vs[0]?.round}, ${total} contributions final`) }
  if (total >= N) break
  await new Promise(r => setTimeout(r, 500))
}
await net.stop(true)
console.log('dir', net.dir)
