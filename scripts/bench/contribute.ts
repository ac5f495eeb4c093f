/**
 * Contributing a large JSONL file: throughput of parse + canonicalise + validate + hash +
 * dedupe + shard (records/s, MB/s) through a running node's streaming API, and the node's
 * peak RSS (VmHWM) while it ingests. Baseline from the same run: reading the same file and
 * hashing it with sha256 (the floor no ingest can beat), as a ratio.
 * Target (issue 3): a 1 GB file with the node's peak RSS under 300 MB.
 * Usage: scripts/run.sh node scripts/bench/contribute.ts [sizeMB=1024]
 */
import { createHash } from 'node:crypto'
import { createReadStream, createWriteStream, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { once } from 'node:events'
import { initDataDir, dataDirPaths } from '../../src/storage/data-dir.ts'
import { DaemonProcess, freePort } from '../../node/devnet/node-process.ts'
import { processCpuSeconds } from './thread-cpu.ts'

const sizeMb = Number(process.argv[2] ?? 1024)
const root = mkdtempSync(join(tmpdir(), 'datanet-bench-contribute-'))
const file = join(root, 'records.jsonl')
const passwordFile = join(root, 'password')
writeFileSync(passwordFile, 'bench')

interface Memory { rss: number, anon: number, file: number, hwm: number }

/** The node's memory from /proc (MB): resident, of it anonymous and file-backed, and the peak resident (VmHWM). */
function memory (pid: number): Memory {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8')
  const field = (name: string): number => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(text)?.[1] ?? 0) / 1024
  return { rss: field('VmRSS'), anon: field('RssAnon'), file: field('RssFile'), hwm: field('VmHWM') }
}

/** Resident MB of the node's memory-mapped LevelDB table files (deleted ones too, while still mapped). */
function levelTablesMb (pid: number): number {
  let kb = 0
  let table = false
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) table = /\.ldb( \(deleted\))?$/.test(line)
    else if (table && line.startsWith('Rss:')) kb += Number(line.split(/\s+/)[1])
  }
  return kb / 1024
}

async function generate (): Promise<number> {
  const out = createWriteStream(file)
  const words = ['data', 'community', 'model', 'record', 'attribution', 'validator', 'shard', 'version', 'quorum', 'anchor']
  let bytes = 0
  let i = 0
  while (bytes < sizeMb * 1024 * 1024) {
    let line = ''
    for (let k = 0; k < 200 && bytes < sizeMb * 1024 * 1024; k++, i++) {
      const text = `${i} ${words[i % 10]} ${words[(i * 7) % 10]} ${words[(i * 3) % 10]} ${'x'.repeat(i % 120)}`
      const l = JSON.stringify({ text, id: i, lang: 'en' }) + '\n'
      line += l
      bytes += l.length
    }
    if (!out.write(line)) await once(out, 'drain')
  }
  out.end()
  await once(out, 'finish')
  return i
}

async function baseline (): Promise<number> {
  const t0 = performance.now()
  const h = createHash('sha256')
  for await (const chunk of createReadStream(file, { highWaterMark: 1024 * 1024 })) h.update(chunk as Buffer)
  h.digest()
  return (performance.now() - t0) / 1000
}

let daemon: DaemonProcess | undefined
try {
  process.stdout.write(`generating ${sizeMb} MB of JSONL… `)
  const records = await generate()
  const bytes = statSync(file).size
  process.stdout.write(`${records} records\n`)

  const dataDir = join(root, 'node')
  const meta = await initDataDir(dataDir, { password: 'bench' })
  daemon = new DaemonProcess({ dataDir, passwordFile, logFile: join(root, 'node.log'), p2pPort: await freePort(), apiPort: await freePort(), bootstrap: [], extraArgs: ['--log-level', 'warn'], env: { ...(process.env.BENCH_NODE_OPTIONS !== undefined ? { NODE_OPTIONS: process.env.BENCH_NODE_OPTIONS } : {}), ...(process.env.BENCH_MALLOC_ARENA_MAX !== undefined ? { MALLOC_ARENA_MAX: process.env.BENCH_MALLOC_ARENA_MAX } : {}) } })
  daemon.start()
  await daemon.waitReady()
  const token = readFileSync(dataDirPaths(dataDir).apiToken, 'utf8').trim()
  const headers = { authorization: `Bearer ${token}` }
  const manifest = {
    name: 'bench', license: 'CC0-1.0',
    recordSchema: { type: 'object', required: ['text'], properties: { text: { type: 'string', minLength: 1 }, id: { type: 'integer' }, lang: { type: 'string' } } },
    validators: [{ address: meta.address, stake: '1' }]
  }
  const created = await (await fetch(`${daemon.apiUrl}/v1/datanets`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify(manifest) })).json() as { id: string }
  const pid = daemon.pid as number
  const before = memory(pid)
  // The startup peak (the keystore's scrypt takes 128 MB for a moment) is not the
  // upload's: reset VmHWM (Linux ≥ 4.0) so that it reads the peak during the upload. The
  // node's lifetime peak is the larger of the two, printed too.
  let reset = true
  try { writeFileSync(`/proc/${pid}/clear_refs`, '5') } catch { reset = false }

  // VmHWM counts file-backed pages too: the node's binary, and the LevelDB tables it
  // keeps memory-mapped. The sample with the highest RSS shows what the peak is made of.
  const top = { rss: 0, anon: 0, file: 0, tables: 0 }
  const peaks = { anon: 0, file: 0 }
  const memSampler = setInterval(() => {
    try {
      const m = memory(pid)
      peaks.anon = Math.max(peaks.anon, m.anon)
      peaks.file = Math.max(peaks.file, m.file)
      if (m.rss > top.rss) Object.assign(top, { rss: m.rss, anon: m.anon, file: m.file, tables: levelTablesMb(pid) })
    } catch {}
  }, 100)
  const sampler = setInterval(() => {
    if (process.env.BENCH_VERBOSE === undefined) return
    fetch(`${daemon?.apiUrl}/metrics`).then(async r => await r.text()).then(t => {
      const pick = (n: string): string => (Number(new RegExp(`^${n} (\\S+)`, 'm').exec(t)?.[1] ?? 0) / 1048576).toFixed(0)
      console.log(`rss ${pick('process_resident_memory_bytes')} heap ${pick('nodejs_heap_size_used_bytes')}/${pick('nodejs_heap_size_total_bytes')} external ${pick('nodejs_external_memory_bytes')}`)
    }).catch(() => {})
  }, 2000)
  const cpu0 = processCpuSeconds(pid)
  const t0 = performance.now()
  const res = await fetch(`${daemon.apiUrl}/v1/datanets/${created.id}/contributions?format=jsonl`, {
    method: 'POST',
    headers: { ...headers, 'content-type': 'application/x-ndjson' },
    body: createReadStream(file, { highWaterMark: 1024 * 1024 }) as unknown as ReadableStream,
    duplex: 'half'
  } as RequestInit)
  const result = await res.json() as { recordCount: number, shards: number }
  const seconds = (performance.now() - t0) / 1000
  const cpu = processCpuSeconds(pid) - cpu0
  clearInterval(sampler)
  clearInterval(memSampler)
  if (!res.ok) throw new Error(`contribution failed: ${JSON.stringify(result)}`)
  const peak = memory(pid).hwm
  const base = await baseline()

  const mbs = bytes / 1048576 / seconds
  const baseMbs = bytes / 1048576 / base
  console.log(`node ${process.version}; ${(bytes / 1048576).toFixed(0)} MB, ${result.recordCount} records in ${result.shards} shards`)
  console.log(`ingest (parse + canonicalise + validate + hash + dedupe + shard + store): ${seconds.toFixed(1)} s, ${(result.recordCount / seconds).toFixed(0)} records/s, ${mbs.toFixed(1)} MB/s`)
  // CPU time is what the node spent whatever else ran on the machine: the figure to compare across loaded runs
  console.log(`  node CPU during the upload: ${cpu.toFixed(1)} s (${(cpu / seconds).toFixed(2)} cores), ${(result.recordCount / cpu).toFixed(0)} records per CPU second; load average ${(loadavg()[0] ?? 0).toFixed(1)}`)
  console.log(`  baseline read + sha256 of the file: ${baseMbs.toFixed(0)} MB/s  ratio ${(mbs / baseMbs).toFixed(3)} of the floor`)
  console.log(`node RSS: ${before.rss.toFixed(0)} MB before the upload (startup peak ${before.hwm.toFixed(0)} MB); peak during the upload ${peak.toFixed(0)} MB (VmHWM${reset ? '' : ', not reset: includes the startup'}); lifetime peak ${Math.max(peak, before.hwm).toFixed(0)} MB  target < 300 MB`)
  console.log(`  highest sample (every 100 ms) ${top.rss.toFixed(0)} MB: anonymous ${top.anon.toFixed(0)} MB, file-backed ${top.file.toFixed(0)} MB (LevelDB tables ${top.tables.toFixed(0)} MB, the rest mostly the node binary); at most anonymous ${peaks.anon.toFixed(0)} MB, file-backed ${peaks.file.toFixed(0)} MB`)
} finally {
  await daemon?.stop(60_000) // a profiled node (--cpu-prof) writes its profile as it exits
  rmSync(root, { recursive: true, force: true })
}
