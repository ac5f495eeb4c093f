/**
 * Cold start and idle memory of a node. Starts 3 peer daemons, then starts the measured
 * node R times: time from spawn until /v1/health answers, and its RSS after it has idled
 * with 3 peers. Baseline from the same run: a bare Node.js HTTP server (spawn → first
 * answer, and its RSS), so the ratio shows what the node adds over the runtime itself.
 * Also the node's CPU time (user + system, all its threads) when it answers: on a loaded
 * machine the wall time mostly measures the others, the CPU time much less.
 * The node runs bundled (node/build/, scripts/build.ts) and from its sources, alternating,
 * so the bundle's gain is a ratio from the same run; the time a start waited for the
 * keystore's scrypt (N = 2^17, ~0.8 s of one core) is printed apart.
 * Targets (issue 14): ready within 1 s, idle RSS at most 120 MB.
 * Usage: scripts/run.sh node scripts/bench/startup.ts [runs=5] [idleSeconds=10]
 */
import { spawn } from 'node:child_process'
import { randomBytes, scrypt } from 'node:crypto'
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { initDataDir } from '../../src/storage/data-dir.ts'
import { DaemonProcess, freePort } from '../../node/devnet/node-process.ts'
import { processCpuSeconds } from './thread-cpu.ts'

const runs = Number(process.argv[2] ?? 5)
const idleSeconds = Number(process.argv[3] ?? 10)
const root = mkdtempSync(join(tmpdir(), 'datanet-bench-'))
const passwordFile = join(root, 'password')
writeFileSync(passwordFile, 'bench')

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

async function makeNode (name: string, bootstrap: string[], opts: { bundle?: '0' | '1', logLevel?: string } = {}): Promise<{ daemon: DaemonProcess, addr: string, logFile: string }> {
  const dataDir = join(root, name)
  const meta = await initDataDir(dataDir, { password: 'bench' })
  const p2pPort = await freePort()
  const logFile = join(root, `${name}.log`)
  const env = opts.bundle === undefined ? undefined : { DATANET_BUNDLE: opts.bundle }
  const daemon = new DaemonProcess({ dataDir, passwordFile, logFile, p2pPort, apiPort: await freePort(), bootstrap, env, extraArgs: ['--log-level', opts.logLevel ?? 'warn'] })
  return { daemon, addr: `/ip4/127.0.0.1/tcp/${p2pPort}/p2p/${meta.peerId}`, logFile }
}

/** How long the last start waited for the keystore's scrypt after its own steps were done (its "started" log line). */
function keystoreWaitMs (logFile: string): { waitMs: number, afterKeyMs: number, prefetched: boolean } {
  const line = readFileSync(logFile, 'utf8').split('\n').filter(l => l.includes('datanet node started')).at(-1)
  const started = line === undefined ? undefined : JSON.parse(line) as { phases?: Record<string, number>, keystorePrefetched?: boolean }
  const phases = started?.phases
  const last = phases === undefined ? undefined : Math.max(...Object.values(phases))
  return {
    waitMs: phases?.keystore !== undefined && phases.network !== undefined ? phases.keystore - phases.network : NaN,
    afterKeyMs: phases?.keystore !== undefined && last !== undefined ? last - phases.keystore : NaN,
    prefetched: started?.keystorePrefetched === true
  }
}

interface Runs { startMs: number[], startCpuMs: number[], rss: number[], keystoreWait: number[], afterKey: number[], prefetched: number }

const peers: DaemonProcess[] = []
try {
  const peerNodes = await Promise.all(['peer-0', 'peer-1', 'peer-2'].map(async n => await makeNode(n, [])))
  for (const p of peerNodes) { p.daemon.start(); peers.push(p.daemon) }
  await Promise.all(peers.map(async p => { await p.waitReady() }))

  // the bundled node (scripts/build.ts) and the same node from its sources, alternating
  const modes = { bundle: '1', sources: '0' } as const
  const measured = {
    bundle: await makeNode('bundle', peerNodes.map(p => p.addr), { bundle: '1', logLevel: 'info' }),
    sources: await makeNode('sources', peerNodes.map(p => p.addr), { bundle: '0', logLevel: 'info' })
  }
  const results: Record<keyof typeof modes, Runs> = {
    bundle: { startMs: [], startCpuMs: [], rss: [], keystoreWait: [], afterKey: [], prefetched: 0 },
    sources: { startMs: [], startCpuMs: [], rss: [], keystoreWait: [], afterKey: [], prefetched: 0 }
  }
  for (let i = 0; i < runs; i++) {
    for (const mode of ['bundle', 'sources'] as const) {
      const { daemon, logFile } = measured[mode]
      const out = results[mode]
      const t0 = performance.now()
      daemon.start()
      await untilHealthy(`${daemon.apiUrl}/v1/health`)
      out.startMs.push(performance.now() - t0)
      out.startCpuMs.push(processCpuSeconds(daemon.pid as number) * 1000)
      const deadline = Date.now() + 20_000
      while (await peersOf(daemon.apiUrl) < 3 && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 100))
      await idle()
      out.rss.push(rssMb(daemon.pid as number))
      await daemon.stop()
      const k = keystoreWaitMs(logFile)
      out.keystoreWait.push(k.waitMs)
      out.afterKey.push(k.afterKeyMs)
      if (k.prefetched) out.prefetched++
    }
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

  // the floor a start cannot go under: the keystore's scrypt, alone on an idle core
  const kdf: number[] = []
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now()
    await new Promise<void>((resolve, reject) => { scrypt('bench', randomBytes(32), 32, { N: 1 << 17, r: 8, p: 1, maxmem: 256 << 20 }, err => { err == null ? resolve() : reject(err) }) })
    kdf.push(performance.now() - t0)
  }

  const bs = median(baseStart)
  const br = median(baseRss)
  const range = (xs: number[]): string => `median ${median(xs).toFixed(0)} (min ${Math.min(...xs).toFixed(0)}, max ${Math.max(...xs).toFixed(0)})`
  console.log(`node ${process.version}, ${runs} runs of each, alternating, idle ${idleSeconds} s with 3 peers`)
  for (const mode of ['bundle', 'sources'] as const) {
    const r = results[mode]
    console.log(`${mode === 'bundle' ? 'bundled node (node/build/)' : 'the same node from its sources (DATANET_BUNDLE=0)'}:`)
    console.log(`  cold start until /v1/health: ${range(r.startMs)} ms  target <= 1000 ms; ratio to the bare server ${(median(r.startMs) / bs).toFixed(1)}x`)
    console.log(`    of which waiting for the keystore's scrypt after the node's own steps: ${range(r.keystoreWait)} ms (begun by main.js in ${r.prefetched} of ${r.startMs.length} starts)`)
    console.log(`    of which the node's steps after the key arrived: ${range(r.afterKey)} ms`)
    console.log(`    CPU time of the node until then: ${range(r.startCpuMs)} ms`)
    console.log(`  idle RSS with 3 peers: ${range(r.rss)} MB  target <= 120 MB; ratio to the bare server ${(median(r.rss) / br).toFixed(1)}x`)
  }
  console.log(`bundled / sources: cold start ${(median(results.bundle.startMs) / median(results.sources.startMs)).toFixed(2)}x, idle RSS ${(median(results.bundle.rss) / median(results.sources.rss)).toFixed(2)}x`)
  console.log(`baseline bare node http server: start median ${bs.toFixed(0)} ms, RSS ${br.toFixed(0)} MB`)
  console.log(`floor: the keystore's scrypt (N = 2^17, r = 8) alone on an idle core: median ${median(kdf).toFixed(0)} ms`)
} finally {
  for (const p of peers) await p.stop()
  rmSync(root, { recursive: true, force: true })
}
