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
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { once } from 'node:events'
import { initDataDir, dataDirPaths } from '../../src/storage/data-dir.ts'
import { DaemonProcess, freePort } from '../../node/devnet/node-process.ts'

const sizeMb = Number(process.argv[2] ?? 1024)
const root = mkdtempSync(join(tmpdir(), 'datanet-bench-contribute-'))
const file = join(root, 'records.jsonl')
const passwordFile = join(root, 'password')
writeFileSync(passwordFile, 'bench')

function status (pid: number, field: string): number {
  return Number(new RegExp(`${field}:\\s+(\\d+)`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024
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
  const rssBefore = status(daemon.pid as number, 'VmRSS')

  // VmHWM counts file-backed pages too: LevelDB mmaps its tables, and compaction of the
  // block store touches them. Anonymous memory is what the node really holds.
  const peaks = { anon: 0, file: 0 }
  const memSampler = setInterval(() => {
    try {
      peaks.anon = Math.max(peaks.anon, status(daemon?.pid as number, 'RssAnon'))
      peaks.file = Math.max(peaks.file, status(daemon?.pid as number, 'RssFile'))
    } catch {}
  }, 250)
  const sampler = setInterval(() => {
    if (process.env.BENCH_VERBOSE === undefined) return
    fetch(`${daemon?.apiUrl}/metrics`).then(async r => await r.text()).then(t => {
      const pick = (n: string): string => (Number(new RegExp(`^${n} (\\S+)`, 'm').exec(t)?.[1] ?? 0) / 1048576).toFixed(0)
      console.log(`rss ${pick('process_resident_memory_bytes')} heap ${pick('nodejs_heap_size_used_bytes')}/${pick('nodejs_heap_size_total_bytes')} external ${pick('nodejs_external_memory_bytes')}`)
    }).catch(() => {})
  }, 2000)
  const t0 = performance.now()
  const res = await fetch(`${daemon.apiUrl}/v1/datanets/${created.id}/contributions?format=jsonl`, {
    method: 'POST',
    headers: { ...headers, 'content-type': 'application/x-ndjson' },
    body: createReadStream(file, { highWaterMark: 1024 * 1024 }) as unknown as ReadableStream,
    duplex: 'half'
  } as RequestInit)
  const result = await res.json() as { recordCount: number, shards: number }
  const seconds = (performance.now() - t0) / 1000
  clearInterval(sampler)
  clearInterval(memSampler)
  if (!res.ok) throw new Error(`contribution failed: ${JSON.stringify(result)}`)
  const peak = status(daemon.pid as number, 'VmHWM')
  const base = await baseline()

  const mbs = bytes / 1048576 / seconds
  const baseMbs = bytes / 1048576 / base
  console.log(`node ${process.version}; ${(bytes / 1048576).toFixed(0)} MB, ${result.recordCount} records in ${result.shards} shards`)
  console.log(`ingest (parse + canonicalise + validate + hash + dedupe + shard + store): ${seconds.toFixed(1)} s, ${(result.recordCount / seconds).toFixed(0)} records/s, ${mbs.toFixed(1)} MB/s`)
  console.log(`  baseline read + sha256 of the file: ${baseMbs.toFixed(0)} MB/s  ratio ${(mbs / baseMbs).toFixed(3)} of the floor`)
  console.log(`node RSS: ${rssBefore.toFixed(0)} MB before; peak during the upload ${peak.toFixed(0)} MB (VmHWM), of which anonymous at most ${peaks.anon.toFixed(0)} MB and file-backed (mmapped LevelDB tables) at most ${peaks.file.toFixed(0)} MB  target < 300 MB`)
} finally {
  await daemon?.stop()
  rmSync(root, { recursive: true, force: true })
}
