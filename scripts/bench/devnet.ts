/**
 * The devnet on this machine: time from `datanet devnet` starting to its first anchored
 * version, and each node's memory once it has one.
 *
 *   scripts/run.sh node scripts/bench/devnet.ts [validators] [nodes]     (default 8 and 2)
 *
 * Prints the start-up phases, the RSS of every node and of anvil (at the first anchor, and
 * again after DEVNET_IDLE_S seconds idle, default 20), and, as the baseline of
 * the same run, the RSS of a bare Node process. The nodes' summed RSS counts the pages they
 * share (the node binary, ~50 MB, and libraries) once per process; their summed PSS
 * (proportional set size) counts each page once, which is what the machine gives them.
 */
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Devnet } from '../../node/devnet/devnet.ts'
import { readApiToken } from '../../src/storage/data-dir.ts'
import { tempDir } from '../../test/helpers/tmp.ts'

const validators = Number(process.argv[2] ?? 8)
const nodes = Number(process.argv[3] ?? 2)

function rssMb (pid: number | undefined): number {
  if (pid === undefined) return NaN
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find(l => l.startsWith('VmRSS:'))
  return Math.round(Number(line?.split(/\s+/)[1] ?? 0) / 1024)
}

/** Proportional set size: each page shared by k processes counts 1/k (/proc/PID/smaps_rollup). */
function pssMb (pid: number | undefined): number {
  if (pid === undefined) return NaN
  const line = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8').split('\n').find(l => l.startsWith('Pss:'))
  return Math.round(Number(line?.split(/\s+/)[1] ?? 0) / 1024)
}

const tmp = tempDir('datanet-bench-devnet-')
const devnet = new Devnet({ dir: join(tmp.dir, 'net'), validators, nodes, log: () => {}, readyTimeoutMs: 180_000 })
const t0 = performance.now()
try {
  const file = await devnet.start()
  const up = performance.now() - t0
  const v = file.nodes[0]
  if (v === undefined || file.datanet === null) throw new Error('no devnet')
  const body = Array.from({ length: 20 }, (_, i) => JSON.stringify({ text: `bench record number ${i} of the devnet start-up measurement` })).join('\n') + '\n'
  const res = await fetch(`${v.apiUrl}/v1/datanets/${file.datanet}/contributions?format=jsonl`, {
    method: 'POST', headers: { authorization: `Bearer ${readApiToken(v.tokenFile)}`, 'content-type': 'application/x-ndjson' }, body
  })
  if (res.status !== 201) throw new Error(`contribution refused: ${await res.text()}`)
  const deadline = Date.now() + 180_000
  for (;;) {
    const list = await (await fetch(`${v.apiUrl}/v1/datanets/${file.datanet}/versions`)).json() as Array<{ anchor: unknown }>
    if (list.some(x => x.anchor !== null)) break
    if (Date.now() > deadline) throw new Error('no anchored version within 180 s')
    await new Promise(resolve => setTimeout(resolve, 200))
  }
  const anchored = performance.now() - t0
  const rss = file.nodes.map(n => ({ role: n.role, mb: rssMb(n.pid), pss: pssMb(n.pid) }))
  const bare = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 2000)'])
  await new Promise(resolve => setTimeout(resolve, 500))
  const bareMb = rssMb(bare.pid)
  bare.kill()
  const mean = (xs: number[]): number => Math.round(xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length))
  const of = (role: string): number[] => rss.filter(r => r.role === role).map(r => r.mb)
  process.stdout.write([
    `devnet ${validators} validators + ${nodes} nodes on ${(await import('node:os')).cpus().length} cores`,
    `  up (anvil, registry, datanet, every node ready and peered): ${(up / 1000).toFixed(1)} s`,
    `  start → first anchored version (after one contribution): ${(anchored / 1000).toFixed(1)} s`,
    `  RSS per validator: mean ${mean(of('validator'))} MB (${of('validator').join(', ')})`,
    `  RSS per plain node: mean ${mean(of('node'))} MB (${of('node').join(', ')})`,
    `  anvil RSS: ${rssMb(file.chain?.pid ?? undefined)} MB; all nodes: ${rss.reduce((a, r) => a + r.mb, 0)} MB RSS, ${rss.reduce((a, r) => a + r.pss, 0)} MB PSS`,
    `  baseline, a bare Node process: ${bareMb} MB (a node is ${(mean(of('validator')) / bareMb).toFixed(1)}×)`
  ].join('\n') + '\n')
  // what the devnet holds once it has idled a while (a node gives its unused heap back: node/daemon/idle-trim.ts)
  const idleS = Number(process.env.DEVNET_IDLE_S ?? 20)
  await new Promise(resolve => setTimeout(resolve, idleS * 1000))
  const idle = file.nodes.map(n => ({ mb: rssMb(n.pid), pss: pssMb(n.pid) }))
  process.stdout.write(`  after ${idleS} s idle: RSS per node mean ${mean(idle.map(r => r.mb))} MB; all nodes: ${idle.reduce((a, r) => a + r.mb, 0)} MB RSS, ${idle.reduce((a, r) => a + r.pss, 0)} MB PSS\n`)
} finally {
  await devnet.stop()
  tmp.remove()
}
