/**
 * Catch-up of a node that was away while a datanet made many small versions: 4 validators
 * and 1 plain node as daemons on loopback; the plain node is stopped, the validators make
 * `V` versions of one small contribution each, then the node starts
 * again and fetches, verifies (certificates, verdicts, roots) and applies them.
 *
 * Baseline from the same run: the rate at which the quorum made those versions (a node
 * must catch up faster than the network moves on), printed as a ratio. Beside it, the
 * floor the precommit signatures alone set (3 per version, in this process, one thread).
 * With `rounds` > 1 the node then starts over `rounds` − 1 times (its state, blocks and
 * index deleted, its keys kept), so one run of the quorum gives several samples.
 * Usage: scripts/run.sh node scripts/bench/catch-up.ts [versions=300] [rounds=1]
 */
import { randomBytes } from 'node:crypto'
import { readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { Wallet, hexlify } from 'ethers'
import { startClusterNetwork } from '../../test/helpers/soak.ts'
import { dataDirPaths } from '../../src/storage/data-dir.ts'
import { forgetSigners, recoverSigner, verifyAll } from '../../src/codec/signer.ts'
import { cpuSince, cpuTotal, formatCpu, threadCpu, type ThreadCpu } from './thread-cpu.ts'

const target = Number(process.argv[2] ?? 300)
const rounds = Number(process.argv[3] ?? 1)

async function height (apiUrl: string, datanet: string): Promise<number> {
  const d = await (await fetch(`${apiUrl}/v1/datanets/${datanet}`, { signal: AbortSignal.timeout(10_000) })).json() as { consensus: { lastFinal: number } }
  return d.consensus.lastFinal
}

const net = await startClusterNetwork({
  validators: 4,
  nodes: 1,
  consensus: { versionIntervalMs: 50, proposeTimeoutMs: 1000, prevoteTimeoutMs: 500, precommitTimeoutMs: 500, timeoutDeltaMs: 250 },
  extraArgs: ['--log-level', process.env.BENCH_LOG_LEVEL ?? 'info']
})
try {
  const validators = net.members.slice(0, 4)
  const late = net.members[4] as (typeof net.members)[number]
  await late.daemon.stop()
  const t0 = performance.now()
  let n = 0
  let refused = 0
  // one contribution per version: upload, wait for the height to move, again
  for (let h = 0; h < target;) {
    const v = validators[n % validators.length] as (typeof validators)[number]
    const res = await fetch(`${v.daemon.apiUrl}/v1/datanets/${net.datanet}/contributions?format=jsonl`, {
      method: 'POST', headers: { authorization: `Bearer ${v.token}`, 'content-type': 'application/x-ndjson' },
      body: JSON.stringify({ text: `catch-up bench record ${n} at ${Date.now()}` }) + '\n'
    })
    // the node's backpressure (MAX_OPEN_CONTRIBUTIONS): come back as it says
    if (res.status === 503) { refused++; await res.text(); await new Promise(resolve => setTimeout(resolve, 1000 * Number(res.headers.get('retry-after') ?? 1))); continue }
    if (res.status !== 201) throw new Error(`upload refused: ${res.status} ${await res.text()}`)
    n++
    const before = h
    const deadline = Date.now() + 60_000
    while (h === before) {
      if (Date.now() > deadline) throw new Error(`no version after ${before} within 60 s`)
      await new Promise(resolve => setTimeout(resolve, 10))
      h = await height(v.daemon.apiUrl, net.datanet)
    }
  }
  const madeS = (performance.now() - t0) / 1000
  const h = await height((validators[0] as (typeof validators)[number]).daemon.apiUrl, net.datanet)
  const made0 = h / madeS

  // one version asked for at a time (the list of all would cost the node more as it grows)
  const has = async (v: number): Promise<boolean> => (await fetch(`${late.daemon.apiUrl}/v1/datanets/${net.datanet}/versions/${v}`, { signal: AbortSignal.timeout(10_000) })).status === 200
  const samples: Array<{ rate: number, totalS: number, steadyS: number, readyS: number, cpu: ThreadCpu }> = []
  for (let round = 0; round < rounds; round++) {
    if (round > 0) {
      // the node starts over: nothing of the datanet kept but its keys
      await late.daemon.stop()
      const paths = dataDirPaths(late.daemon.spec.dataDir)
      for (const dir of [paths.state, paths.blocks, paths.datastore, paths.attribution]) rmSync(dir, { recursive: true, force: true })
    }
    const t1 = performance.now()
    late.daemon.start()
    await late.daemon.waitReady(60_000)
    const readyS = (performance.now() - t1) / 1000
    if (round > 0) {
      const res = await fetch(`${late.daemon.apiUrl}/v1/datanets`, { method: 'POST', headers: { authorization: `Bearer ${late.token}`, 'content-type': 'application/json' }, body: readFileSync(join(net.dir, 'manifest.json')), signal: AbortSignal.timeout(30_000) })
      if (res.status !== 201 && res.status !== 200) throw new Error(`the late node refused the manifest: ${res.status} ${await res.text()}`)
    }
    let firstAt: number | undefined
    let cpuAtFirst: ThreadCpu | undefined
    const deadline = Date.now() + 900_000
    for (;;) {
      if (firstAt === undefined && await has(1)) { firstAt = performance.now(); cpuAtFirst = threadCpu(late.daemon.pid as number) }
      if (firstAt !== undefined && await has(h)) break
      if (Date.now() > deadline) throw new Error(`the late node lacks version ${h} after 900 s`)
      await new Promise(resolve => setTimeout(resolve, 20))
    }
    const doneAt = performance.now()
    // the late node's CPU from its first version applied to its last: what a version costs it,
    // whatever the other processes on these cores take meanwhile (clock ticks of 10 ms)
    const cpu = cpuSince(cpuAtFirst as ThreadCpu, threadCpu(late.daemon.pid as number))
    const steadyS = (doneAt - (firstAt as number)) / 1000
    samples.push({ rate: h / steadyS, totalS: (doneAt - t1) / 1000, steadyS, readyS, cpu })
  }
  const median = <T>(xs: T[], by: (x: T) => number): T => [...xs].sort((a, b) => by(a) - by(b))[Math.floor(xs.length / 2)] as T
  const { rate, steadyS } = median(samples, s => s.rate)
  const { totalS, readyS } = median(samples, s => s.totalS)
  // the signature floor, measured after the run (not beside it): 3 precommits a version, each recovered
  const signers = Array.from({ length: 3 }, () => new Wallet(hexlify(randomBytes(32))))
  const sample = Array.from({ length: 3 * 200 }, (_, i) => { const w = signers[i % 3] as Wallet; const digest = hexlify(randomBytes(32)); return { digest, signature: w.signingKey.sign(digest).serialized, signer: w.address } })
  forgetSigners()
  for (const w of signers) { const d = hexlify(randomBytes(32)); recoverSigner(d, w.signingKey.sign(d).serialized) }
  const t = performance.now()
  for (let i = 0; i < sample.length; i += 96) if (!verifyAll(sample.slice(i, i + 96))) throw new Error('a good batch refused')
  const floor = 200 / ((performance.now() - t) / 1000)
  console.log(`node ${process.version}; 4 validators + 1 node on loopback; ${h} versions of small contributions (${n} uploads, ${refused} refused as busy)`)
  console.log(`baseline  the quorum made them:          ${made0.toFixed(1).padStart(8)} versions/s (${madeS.toFixed(1)} s)`)
  if (rounds > 1) console.log(`rounds    first version → last applied: ${samples.map(s => s.rate.toFixed(1)).join(', ')} versions/s; from start: ${samples.map(s => (h / s.totalS).toFixed(1)).join(', ')} (medians below)`)
  console.log(`catch-up  first version → last applied:  ${rate.toFixed(1).padStart(8)} versions/s (${steadyS.toFixed(1)} s; ratio ${(rate / made0).toFixed(2)})`)
  console.log(`          start → all applied:           ${(h / totalS).toFixed(1).padStart(8)} versions/s (${totalS.toFixed(1)} s, of which ${readyS.toFixed(1)} s until the API answered)`)
  const perVersion = (s: number): string => `${(1000 * s / h).toFixed(2)} ms`
  const mainMs = median(samples, s => s.cpu.main).cpu.main
  const mid = median(samples, s => cpuTotal(s.cpu)).cpu
  console.log(`late node CPU, first → last applied: main thread ${perVersion(mainMs)} a version, all its threads ${perVersion(cpuTotal(mid))} (medians; ${samples.map(s => `${perVersion(s.cpu.main)}/${perVersion(cpuTotal(s.cpu))}`).join(', ')})`)
  console.log(`          the median sample by kind of thread:${formatCpu(mid)}`)
  console.log(`floor     3 precommits a version, on one thread: ${floor.toFixed(0).padStart(6)} versions/s (catch-up at ${(rate / floor).toFixed(2)} of it)`)
} finally {
  await net.stop(process.env.KEEP_TEST_DIRS === '1')
}
