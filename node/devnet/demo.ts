import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { formatEther } from 'ethers'
import { DatanetError } from '../../src/errors.ts'
import { readApiToken } from '../../src/storage/data-dir.ts'
import type { DevnetFile, DevnetNodeEntry } from './devnet.ts'

/** The sample dataset the demo contributes (CC0, see its README). */
export const DEMO_DATASET = fileURLToPath(new URL('../../config/devnet-dataset/', import.meta.url))

const PROMPTS = ['Honeybees tell their', 'The baker folds cold butter', 'The lighthouse keeper climbed']
const FEE = 10n ** 16n // 0.01 ETH per inference

export interface DemoSummary {
  datanet: string
  records: number
  versions: number
  anchors: Array<{ height: number, txHash: string, block: number }>
  model: string
  inferences: Array<{ prompt: string, output: string, cid: string, fee: string }>
  tallies: Array<{ address: string, attributed: string, claimed: string }>
  claim: { address: string, amount: string, txHash: string }
}

interface VersionJson { height: number, recordCount: number, attributionRoot: string, anchor: { txHash: string, block: number } | null, contributions: string[] }

class NodeApi {
  readonly entry: DevnetNodeEntry
  private readonly token: string
  constructor (entry: DevnetNodeEntry) {
    this.entry = entry
    this.token = readApiToken(entry.tokenFile)
  }

  async call<T> (method: 'GET' | 'POST', path: string, body?: unknown, contentType = 'application/json'): Promise<T> {
    const res = await fetch(`${this.entry.apiUrl}${path}`, {
      method,
      headers: method === 'POST' ? { authorization: `Bearer ${this.token}`, 'content-type': contentType } : {},
      body: method === 'POST' ? (typeof body === 'string' ? body : JSON.stringify(body ?? {})) : undefined,
      signal: AbortSignal.timeout(120_000)
    })
    const json = await res.json() as T & { error?: { message: string } }
    if (!res.ok) throw new DatanetError({ code: 'DEMO_ERROR' }, `${this.entry.name} ${method} ${path}: ${json.error?.message ?? res.status}`)
    return json
  }
}

async function until<T> (what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await probe().catch(() => undefined)
    if (v !== undefined) return v
    if (Date.now() > deadline) throw new DatanetError({ code: 'DEMO_ERROR_TIMEOUT' }, `the demo gave up waiting for ${what} after ${timeoutMs / 1000} s`)
    await new Promise(resolve => setTimeout(resolve, 500))
  }
}

const eth = (wei: string | bigint): string => `${formatEther(wei)} ETH`

/**
 * The whole story on a running devnet, narrated: contributors add the sample dataset,
 * validators judge it, versions finalize and are anchored, a model is trained on a
 * version, inferences are made and attributed, and a contributor claims its reward.
 */
export async function runDemo (devnet: DevnetFile, say: (line: string) => void): Promise<DemoSummary> {
  const datanet = devnet.datanet
  if (datanet === null || devnet.chain === null) throw new DatanetError({ code: 'DEMO_ERROR' }, 'the demo needs a devnet with a chain and a datanet')
  const apis = devnet.nodes.map(n => new NodeApi(n))
  const validators = apis.filter(a => a.entry.role === 'validator')
  const plain = apis.filter(a => a.entry.role === 'node')
  const d = `/v1/datanets/${datanet}`
  // three contributors: the plain nodes first, then validators
  const files = readdirSync(DEMO_DATASET).filter(f => f.endsWith('.jsonl')).sort()
  const contributors = [...plain, ...validators].slice(0, files.length)
  const observer = validators[0] as NodeApi
  const t0 = Date.now()
  // each step says when it began, so a slow run shows where its time went
  const step = (title: string): void => { say(`\n== ${title} (${((Date.now() - t0) / 1000).toFixed(0)} s)`) }

  step('1. Contributors add the sample dataset')
  const contributed: string[] = []
  let totalRecords = 0
  for (const [i, file] of files.entries()) {
    const who = contributors[i % contributors.length] as NodeApi
    const body = readFileSync(join(DEMO_DATASET, file), 'utf8')
    const r = await who.call<{ cid: string, recordCount: number }>('POST', `${d}/contributions?format=jsonl&filename=${encodeURIComponent(file)}`, body, 'application/x-ndjson')
    contributed.push(r.cid)
    totalRecords += r.recordCount
    say(`   ${who.entry.name} (${who.entry.address}) contributes ${file}: ${r.recordCount} records → ${r.cid}`)
  }

  step('2. Validators judge the contributions; a version finalizes and is anchored')
  for (const cid of contributed) {
    const c = await until(`contribution ${cid} to be accepted and in a version`, 120_000, async () => {
      const v = await observer.call<{ status: string, version: number | null, verdicts: Array<{ validator: string, accept: boolean, score: number }> }>('GET', `${d}/contributions/${cid}`)
      return v.status !== 'pending' && v.version !== null ? v : undefined
    })
    say(`   ${cid}: ${c.status} by ${c.verdicts.filter(v => v.accept).length}/${c.verdicts.length} verdicts, in version ${c.version}`)
  }
  const dataVersion = await until('the dataset version to be anchored', 120_000, async () => {
    const list = await observer.call<VersionJson[]>('GET', `${d}/versions`)
    return list.find(v => v.recordCount >= totalRecords && v.anchor !== null)
  })
  say(`   version ${dataVersion.height}: ${dataVersion.recordCount} records, anchored in tx ${dataVersion.anchor?.txHash} (block ${dataVersion.anchor?.block})`)

  step('3. A model is trained on that version')
  const operator = plain[0] ?? validators[validators.length - 1] as NodeApi
  // the operator trains on its own copy of the version: wait until its node has it final
  await until(`${operator.entry.name} to have version ${dataVersion.height}`, 60_000, async () => {
    const list = await operator.call<VersionJson[]>('GET', `${d}/versions`)
    return list.some(v => v.height >= dataVersion.height) ? true : undefined
  })
  const model = await operator.call<{ id: string, version: number }>('POST', `${d}/models`, { version: dataVersion.height, train: true })
  say(`   ${operator.entry.name} trains the reference n-gram model on version ${model.version} → model ${model.id}`)

  step('4. Inferences are made, their fees escrowed on chain, and attributed')
  const inferences: DemoSummary['inferences'] = []
  for (const prompt of PROMPTS) {
    const r = await operator.call<{ cid: string, output: string, escrow: { txHash: string }, attribution: { contributors: Array<{ address: string, amount: string }>, coverage: { num: number, den: number } } }>('POST', `${d}/inferences`, { model: model.id, prompt, fee: FEE.toString(), maxWords: 30 })
    inferences.push({ prompt, output: r.output, cid: r.cid, fee: FEE.toString() })
    const credited = r.attribution.contributors.map(c => `${c.address.slice(0, 10)}… ${eth(c.amount)}`).join(', ') || 'nobody'
    say(`   "${prompt} ${r.output}"\n     fee ${eth(FEE)} (escrow ${r.escrow.txHash.slice(0, 18)}…); spans credit ${credited}`)
  }

  step('5. Validators agree on the tallies; the version carrying them is anchored')
  const included = await until('every inference event to be in a version', 120_000, async () => {
    const heights = await Promise.all(inferences.map(async i => (await observer.call<{ included: number | null }>('GET', `${d}/inferences/${i.cid}`)).included))
    return heights.every(h => h !== null) ? Math.max(...(heights as number[])) : undefined
  })
  const tallyVersion = await until('the version with the last event to be anchored', 120_000, async () => {
    const tallies = await observer.call<{ anchoredHeight: number | null }>('GET', `${d}/tallies`)
    if ((tallies.anchoredHeight ?? 0) < included) return undefined
    return (await observer.call<VersionJson[]>('GET', `${d}/versions`)).find(v => v.height === tallies.anchoredHeight)
  })
  say(`   version ${tallyVersion.height}: attribution root ${tallyVersion.attributionRoot}, anchored in tx ${tallyVersion.anchor?.txHash}`)

  step('6. A contributor claims its reward on-chain')
  const first = contributors[0] as NodeApi
  // the claimer's own node must have read that anchor from the chain too
  await until(`${first.entry.name} to see the anchor of version ${tallyVersion.height}`, 60_000, async () => {
    const t = await first.call<{ anchoredHeight: number | null }>('GET', `${d}/tallies`)
    return (t.anchoredHeight ?? 0) >= tallyVersion.height ? true : undefined
  })
  const claim = await first.call<{ address: string, paid: string, txHash: string }>('POST', `${d}/claim`)
  say(`   ${first.entry.name} (${claim.address}) claims ${eth(claim.paid)} in tx ${claim.txHash}`)

  const versions = await observer.call<VersionJson[]>('GET', `${d}/versions`)
  // the claimer's node has read its own claim back from the chain
  const tallies = await first.call<{ tallies: Array<{ address: string, amount: string, claimed: string }> }>('GET', `${d}/tallies`)
  return {
    datanet,
    records: Math.max(0, ...versions.map(v => v.recordCount)),
    versions: versions.length,
    anchors: versions.filter(v => v.anchor !== null).map(v => ({ height: v.height, txHash: v.anchor?.txHash as string, block: v.anchor?.block as number })).sort((a, b) => a.height - b.height),
    model: model.id,
    inferences,
    tallies: tallies.tallies.map(t => ({ address: t.address, attributed: t.amount, claimed: t.claimed })),
    claim: { address: claim.address, amount: claim.paid, txHash: claim.txHash }
  }
}

/** The summary table the demo ends with. */
export function describeSummary (s: DemoSummary): string {
  const lines = [
    '\n== Summary',
    `datanet     ${s.datanet}`,
    `records     ${s.records} in ${s.versions} versions`,
    `model       ${s.model}`,
    `inferences  ${s.inferences.length} (${eth(s.inferences.reduce((a, i) => a + BigInt(i.fee), 0n))} in fees)`,
    'anchors',
    ...s.anchors.map(a => `  version ${String(a.height).padStart(3)}  tx ${a.txHash}  block ${a.block}`),
    'tallies',
    ...s.tallies.map(t => `  ${t.address}  attributed ${eth(t.attributed).padEnd(26)} claimed ${eth(t.claimed)}`),
    `claim       ${s.claim.address} received ${eth(s.claim.amount)} (tx ${s.claim.txHash})`
  ]
  return lines.join('\n')
}
