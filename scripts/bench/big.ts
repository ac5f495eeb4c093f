/**
 * A big datanet (issue 14 item 7): N records of about S bytes through a 4-validator + 2-node
 * loopback network (real processes), each stage timed at that size — run it at 1 M and at
 * 10 M records to see how each cost grows.
 *
 *   contribute  U uploaders post contributions of R records to node-0 (503s retried as told)
 *   finalize    first upload → every record in a final version on the 5 running nodes
 *   prove       record proofs over HTTP from a validator, records spread over the dataset
 *   attribute   attribution previews of outputs that copy three records each (once the
 *               validator's index of the last version is built: 503 until then)
 *   catch up    node-1, stopped since the start, started: → the last version applied
 *               (versions checked, contributions and shards fetched, records indexed)
 *
 * Baselines from the same run, as ratios: the node's ingest (first upload → last 201) for
 * finality; `GET /v1/health` for the two routes (what HTTP alone costs); the time the network
 * took to make the versions for catch-up. Every process's RSS at the end and at its peak is printed,
 * and of it the anonymous memory and the file pages; with BIG_IDLE_S=n, again after n seconds
 * idle (what the nodes hold once their workers are gone and their heaps given back).
 *
 *   bash scripts/run.sh node scripts/bench/big.ts [N=1000000] [S=120] [R=50000] [U=4]
 */
import { readFileSync } from 'node:fs'
import { canonicalBytes } from '../../src/codec/jcs.ts'
import { sha256, toHex } from '../../src/codec/hash.ts'
import { startClusterNetwork } from '../../test/helpers/soak.ts'
import { jsonlBody, recordTexts } from './synthetic-records.ts'

const total = Number(process.argv[2] ?? 1_000_000)
const recordBytes = Number(process.argv[3] ?? 120)
const perContribution = Number(process.argv[4] ?? 50_000)
const uploaders = Number(process.argv[5] ?? 4)
const contributions = Math.ceil(total / perContribution)
/** Records in contribution k (the last one takes the rest). */
const recordsIn = (k: number): number => Math.min(perContribution, total - k * perContribution)
/** Contribution k is uploader k % U's (k / U)th. */
const ids = (k: number): { u: number, c: number } => ({ u: k % uploaders, c: Math.floor(k / uploaders) })

const log = (line: string): void => { process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`) }
const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))
const quantile = (xs: number[], q: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * q))] as number
const ms = (x: number): string => x < 10 ? `${x.toFixed(2)} ms` : `${x.toFixed(0)} ms`

/**
 * A process's RSS now and at its peak (VmRSS, VmHWM), and of it now the anonymous memory
 * (heaps) and the file pages (the Node binary, LevelDB's memory-mapped tables: the kernel
 * drops those when it needs the memory), in MB.
 */
function rssMb (pid: number | undefined): { now: number, peak: number, anon: number, file: number } {
  try {
    const status = readFileSync(`/proc/${pid ?? 0}/status`, 'utf8')
    const field = (name: string): number => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN) / 1024
    return { now: field('VmRSS'), peak: field('VmHWM'), anon: field('RssAnon'), file: field('RssFile') }
  } catch {
    return { now: NaN, peak: NaN, anon: NaN, file: NaN }
  }
}

async function json<T> (url: string, init?: RequestInit): Promise<{ status: number, body: T }> {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(120_000) })
  return { status: res.status, body: await res.json() as T }
}

async function recordCount (apiUrl: string, datanet: string): Promise<number> {
  try {
    const { body } = await json<Array<{ recordCount: number }>>(`${apiUrl}/v1/datanets/${datanet}/versions`)
    return body[0]?.recordCount ?? 0
  } catch {
    return 0
  }
}

/** Each request's time to its whole answer, one after the other. */
async function timed (requests: ReadonlyArray<{ url: string, init?: RequestInit }>, check?: (status: number, body: unknown) => void): Promise<number[]> {
  const times: number[] = []
  for (const { url, init } of requests) {
    const t = performance.now()
    const res = await fetch(url, { ...init, signal: AbortSignal.timeout(60_000) })
    const body = await res.json() as unknown
    times.push(performance.now() - t)
    check?.(res.status, body)
  }
  return times
}

log(`${total.toLocaleString('en')} records of ~${recordBytes} B in ${contributions} contributions of ≤ ${perContribution.toLocaleString('en')} from ${uploaders} uploaders; 4 validators + 2 nodes on loopback`)
const net = await startClusterNetwork({ validators: 4, nodes: 2, extraArgs: ['--log-level', process.env.BENCH_LOG_LEVEL ?? 'warn'] })
try {
  const validator = net.members[0] as (typeof net.members)[number]
  const node = net.members[4] as (typeof net.members)[number]
  const late = net.members[5] as (typeof net.members)[number]
  await late.daemon.stop()
  const running = net.members.slice(0, 5)

  // contribute: each uploader its own contributions, one after the other, built as sent
  const t0 = performance.now()
  let ackedAt = 0
  let refused = 0
  await Promise.all(Array.from({ length: uploaders }, async (_, u) => {
    for (let k = u; k < contributions; k += uploaders) {
      const { c } = ids(k)
      const body = jsonlBody(u, c, recordsIn(k), recordBytes)
      for (;;) {
        const res = await fetch(`${node.daemon.apiUrl}/v1/datanets/${net.datanet}/contributions?format=jsonl`, {
          method: 'POST', headers: { authorization: `Bearer ${node.token}`, 'content-type': 'application/x-ndjson' }, body
        })
        const text = await res.text()
        if (res.status === 503) { refused++; await sleep(1000 * Number(res.headers.get('retry-after') ?? 1)); continue }
        if (res.status !== 201) throw new Error(`upload refused: ${res.status} ${text}`)
        break
      }
    }
    ackedAt = Math.max(ackedAt, performance.now())
  }))
  const ingestS = (ackedAt - t0) / 1000
  log(`contribute: ${ingestS.toFixed(1)} s (${refused} uploads told to come back)`)

  // finalize: every record final on every running node
  const deadline = Date.now() + 300_000 + 5 * total
  const finalAt: number[] = []
  for (const m of running) {
    for (let poll = 0; await recordCount(m.daemon.apiUrl, net.datanet) < total; poll++) {
      if (Date.now() > deadline) throw new Error(`${m.name}: ${await recordCount(m.daemon.apiUrl, net.datanet)} of ${total} records final in time`)
      if (poll % 20 === 19) {
        // a rejected contribution is never final: say why at once
        const list = (await json<Array<{ status: string, verdicts: Array<{ reasons: string[] }> }>>(`${m.daemon.apiUrl}/v1/datanets/${net.datanet}/contributions`)).body
        const rejected = list.filter(c => c.status === 'rejected')
        if (rejected.length > 0) throw new Error(`${m.name}: ${rejected.length} contributions rejected (${[...new Set(rejected.flatMap(c => c.verdicts.flatMap(v => v.reasons)))].join(', ')})`)
        log(`  ${m.name}: ${await recordCount(m.daemon.apiUrl, net.datanet)} records final, contributions ${JSON.stringify(Object.fromEntries([...new Set(list.map(c => c.status))].map(st => [st, list.filter(c => c.status === st).length])))}`)
      }
      await sleep(500)
    }
    finalAt.push(performance.now())
  }
  const finalS = (Math.max(...finalAt) - t0) / 1000
  log(`finalize: ${finalS.toFixed(1)} s from the first upload`)

  // prove: 200 records spread over the dataset (over up to 8 contributions, first and last included)
  const picks: Array<{ k: number, i: number }> = []
  const spread = Array.from(new Set([0, contributions - 1, ...Array.from({ length: 6 }, (_, j) => Math.floor((j + 1) * contributions / 7))])).filter(k => k < contributions)
  for (let p = 0; p < 200; p++) {
    const k = spread[p % spread.length] as number
    picks.push({ k, i: (p * 7919) % recordsIn(k) })
  }
  const texts = new Map(spread.map(k => [k, recordTexts(ids(k).u, ids(k).c, recordsIn(k), recordBytes)]))
  const textOf = (pick: { k: number, i: number }): string => (texts.get(pick.k) as string[])[pick.i] as string
  const hashOf = (text: string): string => toHex(sha256(canonicalBytes({ text }) as Uint8Array))
  const api = validator.daemon.apiUrl
  const health = await timed(Array.from({ length: 200 }, () => ({ url: `${api}/v1/health` })))
  const proofs = await timed(picks.map(p => ({ url: `${api}/v1/datanets/${net.datanet}/records/${hashOf(textOf(p))}/proof` })), (status, body) => {
    if (status !== 200) throw new Error(`a record's proof: ${status} ${JSON.stringify(body)}`)
  })

  // attribute: outputs that copy three records each, between fresh words
  const outputs = Array.from({ length: 50 }, (_, q) => `an answer ${q} begins here. ${textOf(picks[q * 3] as { k: number, i: number })} and then ${textOf(picks[q * 3 + 1] as { k: number, i: number })} also ${textOf(picks[q * 3 + 2] as { k: number, i: number })} the end.`)
  // the validator's index of the last version: a preview says 503 while it is being built
  const t2 = performance.now()
  for (;;) {
    const res = await fetch(`${api}/v1/datanets/${net.datanet}/attribution`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text: outputs[0] }), signal: AbortSignal.timeout(120_000) })
    await res.arrayBuffer()
    if (res.status !== 503) break
    await sleep(1000 * Number(res.headers.get('retry-after') ?? 1))
  }
  const indexS = (performance.now() - t2) / 1000
  let credited = 0
  const attributions = await timed(outputs.map(text => ({
    url: `${api}/v1/datanets/${net.datanet}/attribution`,
    init: { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text }) }
  })), (status, body) => {
    if (status !== 200) throw new Error(`an attribution: ${status} ${JSON.stringify(body)}`)
    credited += (body as { records: unknown[] }).records.length
  })

  // catch up: the node that was away since the start
  const t1 = performance.now()
  late.daemon.start()
  await late.daemon.waitReady(120_000)
  while (await recordCount(late.daemon.apiUrl, net.datanet) < total) {
    if (Date.now() > deadline + 300_000 + 5 * total) throw new Error(`the late node has ${await recordCount(late.daemon.apiUrl, net.datanet)} of ${total} records final`)
    await sleep(500)
  }
  const catchUpS = (performance.now() - t1) / 1000
  const versions = (await json<unknown[]>(`${late.daemon.apiUrl}/v1/datanets/${net.datanet}/versions`)).body.length

  const mb = total * recordBytes / 1e6
  const h50 = quantile(health, 0.5)
  console.log(`\n${total.toLocaleString('en')} records of ~${recordBytes} B (${mb.toFixed(0)} MB) in ${contributions} contributions, ${versions} versions; node ${process.version}`)
  console.log(`contribute  first upload → last 201:            ${ingestS.toFixed(1).padStart(8)} s  ${(total / ingestS).toFixed(0).padStart(7)} records/s  (baseline)`)
  console.log(`finalize    first upload → final on 5 nodes:    ${finalS.toFixed(1).padStart(8)} s  ${(total / finalS).toFixed(0).padStart(7)} records/s  ratio to ingest ${(ingestS / finalS).toFixed(2)}`)
  console.log(`prove       a record's proof over HTTP:          p50 ${ms(quantile(proofs, 0.5))}, p99 ${ms(quantile(proofs, 0.99))} (200)  GET /v1/health p50 ${ms(h50)}: ${(quantile(proofs, 0.5) / h50).toFixed(1)}x`)
  console.log(`attribute   a preview copying three records:     p50 ${ms(quantile(attributions, 0.5))}, p95 ${ms(quantile(attributions, 0.95))} (50; ${(credited / 50).toFixed(1)} records credited each)  ${(quantile(attributions, 0.5) / h50).toFixed(1)}x health; index of the last version ready ${indexS.toFixed(1)} s after the proofs`)
  console.log(`catch up    the node away since the start:       ${catchUpS.toFixed(1).padStart(8)} s  ${(total / catchUpS).toFixed(0).padStart(7)} records/s  ratio to the network making them ${(finalS / catchUpS).toFixed(2)}`)
  console.log(`RSS         now / peak: ${net.members.map(m => { const r = rssMb(m.daemon.pid); return `${m.name} ${r.now.toFixed(0)} / ${r.peak.toFixed(0)} MB` }).join(', ')}`)
  console.log(`            of it now anonymous + file pages: ${net.members.map(m => { const r = rssMb(m.daemon.pid); return `${m.name} ${r.anon.toFixed(0)} + ${r.file.toFixed(0)} MB` }).join(', ')}`)
  if (process.env.BIG_IDLE_S !== undefined) {
    // what the nodes hold once idle (they give unused heap back after a few idle seconds)
    await sleep(Number(process.env.BIG_IDLE_S) * 1000)
    console.log(`RSS after ${process.env.BIG_IDLE_S} s idle, anonymous + file pages: ${net.members.map(m => { const r = rssMb(m.daemon.pid); return `${m.name} ${r.anon.toFixed(0)} + ${r.file.toFixed(0)} MB` }).join(', ')}`)
  }
} finally {
  await net.stop(process.env.KEEP_TEST_DIRS === '1')
}
