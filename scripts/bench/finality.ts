/**
 * Throughput to finality (issue 14 item 1): a 4-validator + 1-node loopback network (real
 * processes), U concurrent uploaders posting C contributions each of R records of about
 * S bytes to the plain node; records/s from the first upload to the last record being in a
 * final version on every node. Baseline from the same run: the node's ingest rate (first
 * upload to the last 201), as a ratio — what the network adds on top of taking the data in.
 * Then each daemon's CPU over the run by kind of thread (thread-cpu.ts): with five daemons
 * on a few cores, the wall time is their total work over the cores.
 *
 *   bash scripts/run.sh node scripts/bench/finality.ts [S=1024] [R=2000] [C=4] [U=4]
 */
import { availableParallelism } from 'node:os'
import { startClusterNetwork } from '../../test/helpers/soak.ts'
import { jsonlBody } from './synthetic-records.ts'
import { cpuSince, cpuTotal, formatCpu, threadCpu, type ThreadCpu } from './thread-cpu.ts'

const recordBytes = Number(process.argv[2] ?? 1024)
const recordsPer = Number(process.argv[3] ?? 2000)
const perUploader = Number(process.argv[4] ?? 4)
const uploaders = Number(process.argv[5] ?? 4)
const total = recordsPer * perUploader * uploaders

const net = await startClusterNetwork({ validators: 4, nodes: 1, extraArgs: ['--log-level', process.env.BENCH_LOG_LEVEL ?? 'info'] })
try {
  const node = net.members[4] as (typeof net.members)[number]
  const bodies = Array.from({ length: uploaders }, (_, u) => Array.from({ length: perUploader }, (_, c) => jsonlBody(u, c, recordsPer, recordBytes)))
  // every thread's CPU from here to the last final record: on a shared machine the wall time is their sum over the cores
  const cpuBefore = net.members.map(m => threadCpu(m.daemon.pid as number))
  const t0 = performance.now()
  let ackedAt = 0
  await Promise.all(bodies.map(async list => {
    for (const b of list) {
      const res = await fetch(`${node.daemon.apiUrl}/v1/datanets/${net.datanet}/contributions?format=jsonl`, {
        method: 'POST', headers: { authorization: `Bearer ${node.token}`, 'content-type': 'application/x-ndjson' }, body: b
      })
      if (res.status !== 201) throw new Error(`upload refused: ${res.status} ${await res.text()}`)
    }
    ackedAt = Math.max(ackedAt, performance.now())
  }))
  const ingestS = (ackedAt - t0) / 1000
  const finalAt: number[] = []
  const deadline = Date.now() + 600_000
  for (const m of net.members) {
    for (let poll = 0; ; poll++) {
      const vs = await (await fetch(`${m.daemon.apiUrl}/v1/datanets/${net.datanet}/versions`)).json() as Array<{ recordCount: number }>
      if ((vs[0]?.recordCount ?? 0) >= total) break
      // the contribution list with its verdicts is the node's work too: looked at every 2 s
      if (poll % 10 !== 9) {
        await new Promise(resolve => setTimeout(resolve, 200))
        continue
      }
      const list = await (await fetch(`${m.daemon.apiUrl}/v1/datanets/${net.datanet}/contributions`)).json() as Array<{ cid: string, status: string, verdicts: Array<{ reasons: string[] }> }>
      const rejected = list.filter(c => c.status === 'rejected')
      if (rejected.length > 0) throw new Error(`${m.name}: ${rejected.length} contributions rejected (${[...new Set(rejected.flatMap(c => c.verdicts.flatMap(v => v.reasons)))].join(', ')}): they will never be final`)
      if (Date.now() > deadline) throw new Error(`${m.name}: ${vs[0]?.recordCount ?? 0} of ${total} records final after 600 s`)
      await new Promise(resolve => setTimeout(resolve, 200))
    }
    finalAt.push(performance.now())
  }
  const finalS = (Math.max(...finalAt) - t0) / 1000
  const cpu = net.members.map((m, i) => cpuSince(cpuBefore[i] as ThreadCpu, threadCpu(m.daemon.pid as number)))
  const mb = total * recordBytes / 1e6
  const ingestRate = total / ingestS
  const finalRate = total / finalS
  console.log(`records: ${total.toLocaleString('en')} of ~${recordBytes} B (${mb.toFixed(1)} MB) in ${uploaders * perUploader} contributions from ${uploaders} uploaders`)
  console.log(`baseline  ingest (first upload → last 201 on the node):      ${ingestRate.toFixed(0).padStart(7)} records/s  ${(mb / ingestS).toFixed(2)} MB/s  (${ingestS.toFixed(1)} s)`)
  console.log(`finality  (first upload → all records final on all 5 nodes): ${finalRate.toFixed(0).padStart(7)} records/s  ${(mb / finalS).toFixed(2)} MB/s  (${finalS.toFixed(1)} s)`)
  console.log(`ratio finality/ingest: ${(finalRate / ingestRate).toFixed(2)}`)
  // how the burst split into versions and in which rounds they were decided: what the runs' spread comes from
  const made = (await (await fetch(`${net.members[0]?.daemon.apiUrl}/v1/datanets/${net.datanet}/versions`)).json() as Array<{ height: number, round: number, recordCount: number }>).reverse()
  console.log(`versions: ${made.length} (records, decided in round): ${made.map((v, i) => `${v.recordCount - (made[i - 1]?.recordCount ?? 0)}@r${v.round}`).join(' ')}`)
  const all = cpu.reduce((n, c) => n + cpuTotal(c), 0)
  console.log(`CPU from the first upload to the last final record (${availableParallelism()} cores × ${finalS.toFixed(1)} s = ${(availableParallelism() * finalS).toFixed(1)} core-seconds; used ${all.toFixed(1)}):`)
  for (const [i, m] of net.members.entries()) console.log(`  ${m.name.padEnd(12)} ${formatCpu(cpu[i] as ThreadCpu)}`)
  // BENCH_METRICS=<regex>: those lines of each member's /metrics (what moved over the network, say)
  if (process.env.BENCH_METRICS !== undefined) {
    const wanted = new RegExp(process.env.BENCH_METRICS)
    for (const m of net.members) {
      const text = await (await fetch(`${m.daemon.apiUrl}/metrics`)).text()
      console.log(`  ${m.name}: ${text.split('\n').filter(l => !l.startsWith('#') && wanted.test(l)).join('\n    ')}`)
    }
  }
} finally {
  await net.stop(process.env.KEEP_TEST_DIRS === '1')
}
