/**
 * Consensus on a 4-validator loopback net: the time from a contribution's acceptance to
 * the final version that includes it (p50, p99), and catch-up speed (versions/s) of a
 * node started afterwards. Baseline from the same run: the time from upload to
 * acceptance (verdict gossip: one round of messages between the same nodes), as a ratio.
 * Usage: scripts/run.sh node scripts/bench/consensus.ts [contributions=40]
 */
import { encodeManifest, parseManifest } from '../../src/datanet/manifest.ts'
import { TestCluster, type TestNode } from '../../test/helpers/cluster.ts'

const count = Number(process.argv[2] ?? 40)
const cluster = new TestCluster()

async function json<T> (url: string, init?: RequestInit): Promise<T> {
  const res = await fetch(url, init)
  return await res.json() as T
}

async function until<T> (probe: () => Promise<T | undefined>, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    const v = await probe().catch(() => undefined)
    if (v !== undefined) return v
    if (Date.now() > deadline) throw new Error('timed out')
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

const pct = (xs: number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))] as number

try {
  const nodes = await cluster.create(4, ['--log-level', 'warn'])
  const manifest = parseManifest({
    name: 'bench', license: 'CC0-1.0', recordSchema: { type: 'object' },
    consensus: { versionIntervalMs: 100, proposeTimeoutMs: 1000, prevoteTimeoutMs: 500, precommitTimeoutMs: 500, timeoutDeltaMs: 250 },
    validators: nodes.map(n => ({ address: n.address, stake: '1' }))
  })
  const id = (await encodeManifest(manifest)).id
  await cluster.startAll()
  for (const n of nodes) {
    await fetch(`${n.daemon.apiUrl}/v1/datanets`, { method: 'POST', headers: { authorization: `Bearer ${cluster.token(n)}`, 'content-type': 'application/json' }, body: JSON.stringify(manifest) })
  }
  for (const n of nodes) {
    await until(async () => (await json<{ subscribers: { verdicts: string[] } }>(`${n.daemon.apiUrl}/v1/datanets/${id}`)).subscribers.verdicts.length >= 3 ? true : undefined)
  }
  const toAccept: number[] = []
  const toFinal: number[] = []
  for (let i = 0; i < count; i++) {
    const node = nodes[i % 4] as TestNode
    const t0 = Date.now()
    const { cid } = await json<{ cid: string }>(`${node.daemon.apiUrl}/v1/datanets/${id}/contributions?format=jsonl`, {
      method: 'POST', headers: { authorization: `Bearer ${cluster.token(node)}`, 'content-type': 'application/x-ndjson' }, body: `{"text":"bench ${i} ${Date.now()}"}\n`
    })
    const observer = nodes[0] as TestNode
    const view = await until(async () => {
      const v = await json<{ decidedAt: number | null, version: number | null }>(`${observer.daemon.apiUrl}/v1/contributions/${cid}`)
      return typeof v.version === 'number' ? v : undefined
    })
    const version = await json<{ decidedAt: number }>(`${observer.daemon.apiUrl}/v1/datanets/${id}/versions/${view.version}`)
    if (process.env.BENCH_VERBOSE !== undefined) console.log(i, view, version.decidedAt, t0)
    toAccept.push((view.decidedAt as number) - t0)
    toFinal.push(version.decidedAt - (view.decidedAt as number))
  }
  const height = (await json<Array<{ height: number }>>(`${nodes[0]?.daemon.apiUrl}/v1/datanets/${id}/versions`))[0]?.height ?? 0

  const [late] = await cluster.create(1, ['--log-level', 'warn'])
  const lateNode = late as TestNode
  lateNode.daemon.start()
  await lateNode.daemon.waitReady()
  const t0 = Date.now()
  await fetch(`${lateNode.daemon.apiUrl}/v1/datanets`, { method: 'POST', headers: { authorization: `Bearer ${cluster.token(lateNode)}`, 'content-type': 'application/json' }, body: JSON.stringify(manifest) })
  await until(async () => (await fetch(`${lateNode.daemon.apiUrl}/v1/datanets/${id}/versions/${height}`)).status === 200 ? true : undefined, 300_000)
  const catchUp = (Date.now() - t0) / 1000

  console.log(`node ${process.version}; 4 validators on loopback, ${count} contributions, versionIntervalMs 100`)
  console.log(`acceptance → final version: p50 ${pct(toFinal, 0.5)} ms, p99 ${pct(toFinal, 0.99)} ms`)
  console.log(`  baseline upload → accepted (verdict gossip): p50 ${pct(toAccept, 0.5)} ms  ratio ${(pct(toFinal, 0.5) / pct(toAccept, 0.5)).toFixed(1)}x`)
  console.log(`catch-up of a late node: ${height} versions in ${catchUp.toFixed(1)} s = ${(height / catchUp).toFixed(1)} versions/s (fetching each version's contributions and shards, verifying certificates and roots)`)
} finally {
  await cluster.teardown()
}
