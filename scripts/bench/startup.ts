/**
 * Cold start and idle memory of a node. Starts 3 peer daemons, then starts the measured
 * node R times: time from spawn until /v1/health answers, and its RSS after it has idled
 * with 3 peers. Baseline from the same run: a bare Node.js HTTP server (spawn → first
 * answer, and its RSS), so the ratio shows what the node adds over the runtime itself.
 * Also the node's CPU time (user + system, all its threads) when it answers: on a loaded
 * machine the wall time mostly measures the others, the CPU time much less.
 * Targets (issue 14): ready within 1 s, idle RSS at most 120 MB.
 * Usage: scripts/run.sh node scripts/bench/startup.ts [runs=5] [idleSeconds=10]
 */
import { spawn } from 'node:child_process'
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { initDataDir } from '../../src/storage/data-dir.ts'
import { DaemonProcess, freePort } from '../../node/devnet/node-process.ts'

const runs = Number(process.argv[2] ?? 5)
const idleSeconds = Number(process.argv[3] ?? 10)
const root = mkdtempSync(join(tmpdir(), 'datanet-bench-'))
const passwordFile = join(root, 'password')
writeFileSync(passwordFile, 'bench')

/** User + system CPU time of a process so far, in ms (/proc/PID/stat fields 14 and 15, in clock ticks of 10 ms). */
function cpuMs (pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ')
  return (Number(fields[11]) + Number(fields[12])) * 10
}

function rssMb (pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024
}

async function untilHealthy (url: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    try {
      if ((await fetch(url, { signal: AbortSignal.timeout(500) })).ok) return
    } catch {}
    await new Promise(resolve => setTimeout(resolve, 5))
  }
  throw new Error(`${url} did not answer within ${timeoutMs} ms`)
}

async function peersOf (url: string): Promise<number> {
  const info = await (await fetch(`${url}/v1/node`)).json() as { peers: unknown[] }
  return info.peers.length
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number
const idle = (): Promise<void> => new Promise(resolve => setTimeout(resolve, idleSeconds * 1000))

async function makeNode (name: string, bootstrap: string[]): Promise<{ daemon: DaemonProcess, addr: string }> {
  const dataDir = join(root, name)
  const meta = await initDataDir(dataDir, { password: 'bench' })
  const p2pPort = await freePort()
  const daemon = new DaemonProcess({ dataDir, passwordFile, logFile: join(root, `${name}.log`), p2pPort, apiPort: await freePort(), bootstrap, extraArgs: ['--log-level', 'warn'] })
  return { daemon, addr: `/ip4/127.0.0.1/tcp/${p2pPort}/p2p/${meta.peerId}` }
}

const peers: DaemonProcess[] = []
try {
  const peerNodes = await Promise.all(['peer-0', 'peer-1', 'peer-2'].map(async n => await makeNode(n, [])))
  for (const p of peerNodes) { p.daemon.start(); peers.push(p.daemon) }
  await Promise.all(peers.map(async p => { await p.waitReady() }))

  const measured = await makeNode('measured', peerNodes.map(p => p.addr))
  const startMs: number[] = []
  const startCpuMs: number[] = []
  const rss: number[] = []
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now()
    measured.daemon.start()
    await untilHealthy(`${measured.daemon.apiUrl}/v1/health`)
    startMs.push(performance.now() - t0)
    startCpuMs.push(cpuMs(measured.daemon.pid as number))
    const deadline = Date.now() + 20_000
    while (await peersOf(measured.daemon.apiUrl) < 3 && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 100))
    await idle()
    rss.push(rssMb(measured.daemon.pid as number))
    await measured.daemon.stop()
  }

  // Baseline: the runtime alone, serving HTTP.
  const baseStart: number[] = []
  const baseRss: number[] = []
  for (let i = 0; i < runs; i++) {
    const port = await freePort()
    const t0 = performance.now()
    const child = spawn(process.execPath, ['-e', `require('node:http').createServer((q, s) => s.end('ok')).listen(${port}, '127.0.0.1')`], { stdio: 'ignore' })
    await untilHealthy(`http://127.0.0.1:${port}/`)
    baseStart.push(performance.now() - t0)
    baseRss.push(rssMb(child.pid as number))
    child.kill()
  }

  const s = median(startMs)
  const r = median(rss)
  const bs = median(baseStart)
  const br = median(baseRss)
  console.log(`node ${process.version}, ${runs} runs, idle ${idleSeconds} s with 3 peers`)
  console.log(`cold start until /v1/health: median ${s.toFixed(0)} ms (min ${Math.min(...startMs).toFixed(0)}, max ${Math.max(...startMs).toFixed(0)})  target <= 1000 ms`)
  console.log(`  baseline bare node http server: median ${bs.toFixed(0)} ms  ratio ${(s / bs).toFixed(1)}x`)
  console.log(`  CPU time of the node until then: median ${median(startCpuMs).toFixed(0)} ms (min ${Math.min(...startCpuMs).toFixed(0)}, max ${Math.max(...startCpuMs).toFixed(0)})`)
  console.log(`idle RSS with 3 peers: median ${r.toFixed(0)} MB (max ${Math.max(...rss).toFixed(0)})  target <= 120 MB`)
  console.log(`  baseline bare node http server: ${br.toFixed(0)} MB  ratio ${(r / br).toFixed(1)}x`)
} finally {
  for (const p of peers) await p.stop()
  rmSync(root, { recursive: true, force: true })
}
