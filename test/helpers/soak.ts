/**
 * A crash-fault soak in the style of CometBFT's e2e runner: real daemons, contributions
 * sent steadily, a random validator `kill -9`ed and restarted with the same data
 * directory, ports and arguments, again and again (never more than f = ⌊(n-1)/3⌋ down
 * at once); then invariants over what every node ended with.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Devnet } from '../../node/devnet/devnet.ts'
import { dataDirPaths, readApiToken } from '../../src/storage/data-dir.ts'
import { encodeManifest, parseManifest } from '../../src/datanet/manifest.ts'
import type { DaemonProcess } from '../../node/devnet/node-process.ts'
import type { EvidenceView } from '../../node/api/routes/evidence.ts'
import { TestCluster, type TestNode } from './cluster.ts'
import { waitFor } from './wait.ts'
import { prng } from '../fixtures/attribution/prng.ts'

export interface SoakMember {
  name: string
  role: 'validator' | 'node'
  address: string
  daemon: DaemonProcess
  token: string
}

/** The network a soak runs on: already started, every node following `datanet`. */
export interface SoakNetwork {
  datanet: string
  members: SoakMember[]
  /** Where the logs and data directories are (kept on failure when asked). */
  dir: string
  stop: (keep: boolean) => Promise<void>
}

export interface SoakConsensus {
  versionIntervalMs: number
  proposeTimeoutMs: number
  prevoteTimeoutMs: number
  precommitTimeoutMs: number
  timeoutDeltaMs: number
}

export interface SoakOptions {
  cycles: number
  /** No new cycle starts after this many ms of soaking (a loaded machine restarts slowly)… */
  budgetMs?: number
  /** … unless fewer than this many cycles ran. */
  minCycles?: number
  seed: number
  /** Pause between two contributions, uniform in [min, max] ms. */
  sendEveryMs?: [number, number]
  /** From a validator being up (or the previous kill) to the next kill, uniform in [min, max] ms. */
  upMs?: [number, number]
  /**
   * Share of cycles (0..1) that kill at an adversarial moment: the validator that just
   * acknowledged a contribution, right after its 201 (before its gossip reached everyone).
   */
  afterAckShare?: number
  /** How long a killed validator stays down, uniform in [min, max] ms. */
  downMs?: [number, number]
  /**
   * Wait for a restarted validator to answer before the next cycle (default). false: the
   * operator's pace; the next kill may come while it still starts (and may hit it again),
   * but never more than f processes are dead at once.
   */
  readyBeforeNext?: boolean
  /** After each restart a new version must be final within this (liveness). */
  livenessMs?: number
  /** After the last cycle, how long every acknowledged contribution gets to be final everywhere. */
  settleMs?: number
  /** Progress: called after each cycle. */
  onCycle?: (cycle: number, progress: SoakProgress) => void
  log?: (line: string) => void
}

export interface SoakProgress {
  kills: number
  acknowledged: number
  height: number
  seconds: number
}

export interface SoakSummary {
  seed: number
  acknowledged: number
  /** Uploads answered with something other than 201 (a node still starting refuses with 503). */
  refused: number
  /** Acknowledged contributions in a final version on every node. */
  final: number
  lost: number
  /** Equivocation evidence kept by any node (all validators are honest here). */
  evidence: number
  /** Each node's last final height. */
  heights: Record<string, number>
  seconds: number
  kills: number
  /** Heights at which two nodes hold different versions. */
  disagreements: string[]
  /** Restarts after which no version became final within livenessMs. */
  stalls: string[]
  /** Restarted validators that did not catch up with the others' height within livenessMs. */
  lagging: string[]
  /** Per restart, ms until the next final version (a figure, not an invariant). */
  recoveryMs: { median: number, max: number }
  /** Per restart, ms from spawning the process to its API answering. */
  restartMs: { median: number, max: number }
  violations: string[]
  /** On failure: the nodes' log lines about invalid proposals, evidence, failed steps and catch-up. */
  logLines: string[]
}

const between = (rand: () => number, [min, max]: [number, number]): number => min + Math.floor(rand() * (max - min + 1))
const pause = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

/** Short timeouts: heights take about a second, a dead proposer costs one propose timeout. */
export const SOAK_CONSENSUS: SoakConsensus = { versionIntervalMs: 1000, proposeTimeoutMs: 1500, prevoteTimeoutMs: 800, precommitTimeoutMs: 800, timeoutDeltaMs: 300 }

/**
 * N validators (the manifest's genesis set, equal stakes) and M plain nodes as daemons on
 * loopback (test/helpers/cluster.ts), no chain; every node follows the datanet and hears
 * every other on its topics before this returns.
 */
export async function startClusterNetwork (opts: {
  validators: number
  nodes: number
  consensus?: SoakConsensus
  equivocator?: boolean
  /** Daemon arguments beyond the cluster's. */
  extraArgs?: string[]
  /** Before any daemon starts: change their specs (relays in front, test/helpers/wide-area.ts). */
  prepare?: (nodes: TestNode[]) => Promise<void>
}): Promise<SoakNetwork> {
  const cluster = new TestCluster()
  try {
    const all = await cluster.create(opts.validators + opts.nodes, opts.extraArgs ?? [], { fastKeystore: true })
    await opts.prepare?.(all)
    const validators = all.slice(0, opts.validators)
    // the harness's own check: one byzantine validator (DATANET_FAULT) must show as evidence
    if (opts.equivocator === true) (validators[0] as TestNode).daemon.spec.env = { DATANET_FAULT: 'equivocate' }
    const manifest = parseManifest({
      name: 'soak', license: 'CC0-1.0',
      recordSchema: { type: 'object', required: ['text'] },
      consensus: opts.consensus ?? SOAK_CONSENSUS,
      validators: validators.map(v => ({ address: v.address, stake: '100' }))
    })
    writeFileSync(join(cluster.root.dir, 'manifest.json'), JSON.stringify(manifest))
    const datanet = (await encodeManifest(manifest)).id
    // a loaded 2-core machine can take a minute to start five daemons
    await cluster.startAll(all, 120_000)
    for (const n of all) {
      const res = await fetch(`${n.daemon.apiUrl}/v1/datanets`, {
        method: 'POST', headers: { authorization: `Bearer ${cluster.token(n)}`, 'content-type': 'application/json' }, body: JSON.stringify(manifest), signal: AbortSignal.timeout(30_000)
      })
      if (res.status !== 201 && res.status !== 200) throw new Error(`${n.name} refused the manifest: ${res.status} ${await res.text()}`)
    }
    for (const n of all) {
      await waitFor(async () => {
        const res = await fetch(`${n.daemon.apiUrl}/v1/datanets/${datanet}`, { signal: AbortSignal.timeout(5000) })
        const body = await res.json() as { subscribers: { contributions: string[], verdicts: string[] } }
        return body.subscribers.contributions.length >= all.length - 1 && body.subscribers.verdicts.length >= all.length - 1
      }, { timeoutMs: 60_000, what: `${n.name} to see every node on the datanet's topics` })
    }
    return {
      datanet,
      dir: cluster.root.dir,
      members: all.map((n, i) => ({ name: i < opts.validators ? `validator-${i}` : `node-${i - opts.validators}`, role: i < opts.validators ? 'validator' : 'node', address: n.address, daemon: n.daemon, token: cluster.token(n) })),
      stop: async (keep) => { await cluster.teardown(keep) }
    }
  } catch (err) {
    await cluster.teardown()
    throw err
  }
}

/**
 * The operator's setup: `datanet devnet` (node/devnet/devnet.ts) with anvil and the
 * registry, the devnet's datanet and its consensus timeouts, the genesis set from the chain.
 */
export async function startDevnetNetwork (opts: { validators: number, nodes: number, log?: (line: string) => void }): Promise<SoakNetwork> {
  const dir = mkdtempSync(join(tmpdir(), 'datanet-soak-devnet-'))
  const devnet = new Devnet({ dir, validators: opts.validators, nodes: opts.nodes, log: opts.log ?? (() => {}), readyTimeoutMs: 180_000 })
  let file
  try {
    file = await devnet.start()
  } catch (err) {
    rmSync(dir, { recursive: true, force: true })
    throw err
  }
  if (file.datanet === null) throw new Error('the devnet has no datanet')
  return {
    datanet: file.datanet,
    dir,
    members: devnet.daemons.map(d => ({ name: d.name, role: d.role, address: d.address, daemon: d.daemon, token: readApiToken(dataDirPaths(d.daemon.spec.dataDir).apiToken) })),
    stop: async (keep) => {
      await devnet.stop()
      if (keep || process.env.KEEP_TEST_DIRS === '1') process.stderr.write(`kept ${dir}\n`)
      else rmSync(dir, { recursive: true, force: true })
    }
  }
}

interface Ack { cid: string, node: string, at: number }
interface Restart { victim: string, at: number, height: number }
interface VersionRow { height: number, cid: string, contributions: string[] }

async function getJson<T> (url: string): Promise<T> {
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) })
  if (!res.ok) throw new Error(`GET ${url}: ${res.status}`)
  return await res.json() as T
}

/** A soak on a started network: returns the summary; the caller stops the network. */
export class Soak {
  private readonly net: SoakNetwork
  private readonly opts: Required<Omit<SoakOptions, 'onCycle' | 'log'>> & Pick<SoakOptions, 'onCycle' | 'log'>
  private readonly acks: Ack[] = []
  private readonly restarts: Restart[] = []
  private readonly restartMs: number[] = []
  private readonly lagging: string[] = []
  /** Restarts not waited for (readyBeforeNext false). */
  private readonly starting: Array<Promise<void>> = []
  /** Highest final height seen so far, sampled with its time. */
  private readonly heightSamples: Array<{ at: number, height: number }> = []
  private readonly down = new Set<string>()
  /** A crash cycle waiting for the next acknowledgement by a validator. */
  private ackWaiter: ((ack: Ack) => boolean) | undefined
  private sending = false
  private sampling = false
  private kills = 0
  private refused = 0
  private started = 0

  constructor (net: SoakNetwork, opts: SoakOptions) {
    this.net = net
    // an option passed as undefined takes its default
    const given = Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) as SoakOptions
    this.opts = { sendEveryMs: [150, 600], upMs: [500, 3000], downMs: [300, 2500], livenessMs: 30_000, settleMs: 90_000, readyBeforeNext: true, budgetMs: Number.POSITIVE_INFINITY, minCycles: 1, afterAckShare: 0, ...given }
  }

  private get validators (): SoakMember[] {
    return this.net.members.filter(m => m.role === 'validator')
  }

  private url (m: SoakMember, path: string): string {
    return `${m.daemon.apiUrl}/v1/datanets/${this.net.datanet}${path}`
  }

  private get height (): number {
    return this.heightSamples.at(-1)?.height ?? 0
  }

  private log (line: string): void {
    this.opts.log?.(line)
  }

  async run (): Promise<SoakSummary> {
    this.started = Date.now()
    const f = Math.floor((this.validators.length - 1) / 3)
    this.log(`soak: seed ${this.opts.seed}, ${this.validators.length} validators (f = ${f}), ${this.net.members.length - this.validators.length} nodes, ${this.opts.cycles} cycles, in ${this.net.dir}`)
    this.sending = true
    this.sampling = true
    const sampler = this.sample()
    const sender = this.send(prng(this.opts.seed ^ 0x5eed))
    const rand = prng(this.opts.seed)
    let cycle = 0
    // f crash loops at once, each one validator down at a time: never more than f down
    const crasher = async (): Promise<void> => {
      while (cycle < this.opts.cycles && (cycle < this.opts.minCycles || Date.now() - this.started < this.opts.budgetMs)) {
        cycle++
        await this.crashCycle(rand)
        this.opts.onCycle?.(cycle, { kills: this.kills, acknowledged: this.acks.length, height: this.height, seconds: (Date.now() - this.started) / 1000 })
      }
    }
    try {
      await Promise.all(Array.from({ length: Math.max(1, f) }, async () => { await crasher() }))
      await Promise.all(this.starting)
      // every validator runs from here on (one killed while it started is started again)
      for (const v of this.validators) {
        if (!v.daemon.running) v.daemon.start()
        await v.daemon.waitReady(120_000)
      }
      // keep contributions flowing until the last restart was followed by a final version
      const last = this.restarts.at(-1)
      if (last !== undefined) {
        await waitFor(() => this.height > last.height, { timeoutMs: this.opts.livenessMs, what: 'a final version after the last restart' }).catch(() => {})
      }
    } finally {
      this.sending = false
      await sender
    }
    const settled = await this.settle()
    this.sampling = false
    await sampler
    return await this.check(settled)
  }

  /**
   * One crash: a random validator that is up, killed at a random moment (or, for a share
   * of cycles, the one that just acknowledged a contribution), restarted after a random pause.
   */
  private async crashCycle (rand: () => number): Promise<void> {
    await pause(between(rand, this.opts.upMs))
    const up = this.validators.filter(v => !this.down.has(v.name))
    const downFor = between(rand, this.opts.downMs)
    const pick = up[Math.floor(rand() * up.length)] as SoakMember
    const victim = rand() < this.opts.afterAckShare ? (await this.nextAcknowledger(up)) ?? pick : pick
    this.down.add(victim.name)
    try {
      await victim.daemon.kill()
      this.kills++
      await pause(downFor)
      victim.daemon.start()
      const ready = this.ready(victim)
      if (this.opts.readyBeforeNext) await ready
      else this.starting.push(ready.catch(() => {}))
    } finally {
      this.down.delete(victim.name)
    }
  }

  /** The next validator among `up` to acknowledge a contribution, as soon as its 201 arrives (10 s at most). */
  private async nextAcknowledger (up: SoakMember[]): Promise<SoakMember | undefined> {
    return await new Promise(resolve => {
      const timer = setTimeout(() => { this.ackWaiter = undefined; resolve(undefined) }, 10_000)
      this.ackWaiter = ack => {
        const v = up.find(m => m.name === ack.node && !this.down.has(m.name))
        if (v === undefined) return false
        clearTimeout(timer)
        this.ackWaiter = undefined
        resolve(v)
        return true
      }
    })
  }

  /**
   * Waits until a restarted validator answers and (as CometBFT's e2e runner does before the
   * next perturbation) has caught up with the height the others were at; notes when, for
   * the liveness check.
   */
  private async ready (victim: SoakMember): Promise<void> {
    const spawned = Date.now()
    await victim.daemon.waitReady(120_000)
    const at = Date.now()
    const height = this.height
    this.restartMs.push(at - spawned)
    this.restarts.push({ victim: victim.name, at, height })
    if (!this.opts.readyBeforeNext) return
    try {
      await waitFor(async () => (await this.lastFinal(victim)) >= height, { timeoutMs: this.opts.livenessMs, what: `${victim.name} to catch up`, intervalMs: 250 })
    } catch {
      this.lagging.push(`${victim.name} restarted at ${((at - this.started) / 1000).toFixed(1)} s: at ${await this.lastFinal(victim).catch(() => -1)} of ${height} after ${this.opts.livenessMs} ms`)
    }
  }

  private async lastFinal (m: SoakMember): Promise<number> {
    return (await getJson<{ consensus: { lastFinal: number } | null }>(this.url(m, ''))).consensus?.lastFinal ?? 0
  }

  /** Small unique JSONL contributions to random running nodes; a 201 is an acknowledgement. */
  private async send (rand: () => number): Promise<void> {
    let n = 0
    while (this.sending) {
      const target = this.net.members[Math.floor(rand() * this.net.members.length)] as SoakMember
      const records = 1 + Math.floor(rand() * 3)
      const id = n++
      const body = Array.from({ length: records }, (_, j) => JSON.stringify({ text: `soak ${this.opts.seed} contribution ${id} record ${j}` })).join('\n') + '\n'
      if (target.daemon.running && !this.down.has(target.name)) {
        try {
          const res = await fetch(this.url(target, '/contributions?format=jsonl'), {
            method: 'POST', headers: { authorization: `Bearer ${target.token}`, 'content-type': 'application/x-ndjson' }, body, signal: AbortSignal.timeout(15_000)
          })
          const json = await res.json() as { cid?: string }
          if (res.status === 201 && typeof json.cid === 'string') {
            const ack = { cid: json.cid, node: target.name, at: Date.now() }
            this.acks.push(ack)
            this.ackWaiter?.(ack)
          } else {
            this.refused++
          }
        } catch {
          // killed under the request: not acknowledged, so not owed
        }
      }
      await pause(between(rand, this.opts.sendEveryMs))
    }
  }

  /** The highest final height among the running nodes, every 500 ms. */
  private async sample (): Promise<void> {
    while (this.sampling) {
      let best = this.height
      for (const m of this.net.members) {
        if (!m.daemon.running || this.down.has(m.name)) continue
        try {
          best = Math.max(best, await this.lastFinal(m))
        } catch {}
      }
      if (best !== this.height || this.heightSamples.length === 0) this.heightSamples.push({ at: Date.now(), height: best })
      await pause(500)
    }
  }

  private async versions (m: SoakMember): Promise<VersionRow[]> {
    return await getJson<VersionRow[]>(this.url(m, '/versions'))
  }

  /** Waits (bounded) until every acknowledged contribution is final on every node and all nodes are at one height. */
  private async settle (): Promise<boolean> {
    const wanted = this.acks.map(a => a.cid)
    try {
      await waitFor(async () => {
        const all = await Promise.all(this.net.members.map(async m => await this.versions(m)))
        const heights = new Set(all.map(vs => vs.length))
        if (heights.size !== 1) return false
        return all.every(vs => {
          const included = new Set(vs.flatMap(v => v.contributions))
          return wanted.every(c => included.has(c))
        })
      }, { timeoutMs: this.opts.settleMs, what: 'every acknowledged contribution final on every node', intervalMs: 1000 })
      return true
    } catch {
      return false
    }
  }

  private async check (settled: boolean): Promise<SoakSummary> {
    const violations: string[] = []
    const byNode = new Map<string, VersionRow[]>()
    for (const m of this.net.members) byNode.set(m.name, await this.versions(m).catch(() => []))
    // (a) lost: acknowledged, but not in a final version on every node
    const finalEverywhere = (cid: string): boolean => [...byNode.values()].every(vs => vs.some(v => v.contributions.includes(cid)))
    const lostAcks = this.acks.filter(a => !finalEverywhere(a.cid))
    const final = this.acks.length - lostAcks.length
    if (lostAcks.length > 0) {
      const sample = await Promise.all(lostAcks.slice(0, 5).map(async a => `${a.cid} (acknowledged by ${a.node}; ${await this.statusEverywhere(a.cid)})`))
      violations.push(`lost: ${lostAcks.length} of ${this.acks.length} acknowledged contributions are not in a final version on every node${settled ? '' : ` after ${this.opts.settleMs} ms`}, e.g. ${sample.join('; ')}`)
    }
    // (b) evidence: all validators are honest, so any is a crash that made one sign twice
    let evidence = 0
    for (const m of this.net.members) {
      const kept = await getJson<EvidenceView[]>(this.url(m, '/evidence')).catch(() => [] as EvidenceView[])
      evidence += kept.length
      if (kept.length > 0) violations.push(`evidence: ${m.name} keeps ${kept.length} against honest validators: ${kept.slice(0, 3).map(e => `${this.nameOf(e.validator)} at ${e.height}/${e.round}/${e.type}`).join(', ')}`)
    }
    // (c) agreement: one version per height
    const disagreements: string[] = []
    const atHeight = new Map<number, Map<string, string[]>>()
    for (const [name, vs] of byNode) {
      for (const v of vs) {
        const cids = atHeight.get(v.height) ?? new Map<string, string[]>()
        cids.set(v.cid, [...(cids.get(v.cid) ?? []), name])
        atHeight.set(v.height, cids)
      }
    }
    for (const [height, cids] of atHeight) {
      if (cids.size > 1) disagreements.push(`height ${height}: ${[...cids].map(([cid, names]) => `${names.join(',')} hold ${cid}`).join('; ')}`)
    }
    if (disagreements.length > 0) violations.push(`agreement: ${disagreements.slice(0, 3).join(' | ')}`)
    // (d) liveness: a new final version within livenessMs of each restart
    const stalls: string[] = []
    const recoveries: number[] = []
    for (const r of this.restarts) {
      const next = this.heightSamples.find(s => s.at >= r.at && s.height > r.height)
      if (next !== undefined) recoveries.push(next.at - r.at)
      if (next === undefined || next.at - r.at > this.opts.livenessMs) {
        stalls.push(`after ${r.victim} restarted at ${((r.at - this.started) / 1000).toFixed(1)} s (height ${r.height}): ${next === undefined ? 'no final version since' : `next version after ${next.at - r.at} ms`}`)
      }
    }
    if (this.lagging.length > 0) violations.push(`catch-up: ${this.lagging.length} of ${this.restarts.length} restarted validators did not reach the others' height within ${this.opts.livenessMs} ms, first ${this.lagging[0]}`)
    if (stalls.length > 0) violations.push(`liveness: ${stalls.length} of ${this.restarts.length} restarts not followed by a final version within ${this.opts.livenessMs} ms, first ${stalls[0]}`)
    const spread = (xs: number[]): { median: number, max: number } => {
      const sorted = [...xs].sort((a, b) => a - b)
      return { median: sorted[Math.floor(sorted.length / 2)] ?? 0, max: sorted.at(-1) ?? 0 }
    }
    const heights = Object.fromEntries([...byNode].map(([name, vs]) => [name, vs.reduce((h, v) => Math.max(h, v.height), 0)]))
    return {
      seed: this.opts.seed,
      acknowledged: this.acks.length,
      refused: this.refused,
      final,
      lost: lostAcks.length,
      evidence,
      heights,
      seconds: Math.round((Date.now() - this.started) / 1000),
      kills: this.kills,
      disagreements,
      stalls,
      lagging: this.lagging,
      recoveryMs: spread(recoveries),
      restartMs: spread(this.restartMs),
      violations,
      logLines: violations.length > 0 ? this.grepLogs() : []
    }
  }

  private nameOf (address: string): string {
    return this.net.members.find(m => m.address.toLowerCase() === address.toLowerCase())?.name ?? address
  }

  /** How each node sees a contribution: status and version, or unknown. */
  private async statusEverywhere (cid: string): Promise<string> {
    const parts = await Promise.all(this.net.members.map(async m => {
      try {
        const v = await getJson<{ status: string, version: number | null, verdicts: unknown[] }>(this.url(m, `/contributions/${cid}`))
        return `${m.name} ${v.status}${v.version === null ? '' : `@${v.version}`}/${v.verdicts.length}v`
      } catch {
        return `${m.name} unknown`
      }
    }))
    return parts.join(' ')
  }

  /** What the nodes logged about invalid proposals, evidence, failed steps and catch-up: the count and a few lines per node and kind. */
  grepLogs (perKind = 3): string[] {
    const out: string[] = []
    const kinds: Array<[string, RegExp]> = [
      ['invalid proposal', /"msg":"invalid proposal"/], ['evidence', /evidence/],
      // why a node stayed behind: a step that threw, a range refused or not applied
      ['consensus step failed', /"msg":"consensus step failed"/], ['catch-up', /"msg":"(synced version does not verify|a served range of versions does not verify: refused|a certified version does not link to our last final version)"/]
    ]
    for (const m of this.net.members) {
      let lines: string[]
      try { lines = readFileSync(m.daemon.spec.logFile, 'utf8').split('\n') } catch { continue }
      for (const [kind, re] of kinds) {
        const hits = lines.filter(l => re.test(l))
        if (hits.length === 0) continue
        out.push(`${m.name}: ${hits.length} '${kind}' lines, e.g.`)
        for (const l of hits.slice(0, perKind)) out.push(`  ${compact(l)}`)
      }
    }
    return out
  }
}

/** A pino JSON line as `msg key=value …`, without the noise. */
function compact (line: string): string {
  try {
    const { level: _l, time: _t, pid: _p, hostname: _h, msg, ...rest } = JSON.parse(line) as Record<string, unknown>
    return `${String(msg)} ${Object.entries(rest).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' ')}`.slice(0, 400)
  } catch {
    return line.slice(0, 400)
  }
}

/** Starts the network, soaks it, stops it (keeping its directory when asked or on a violation with `keepOnFailure`). */
export async function runSoak (net: SoakNetwork, opts: SoakOptions & { keep?: boolean, keepOnFailure?: boolean }): Promise<SoakSummary> {
  let summary: SoakSummary | undefined
  try {
    summary = await new Soak(net, opts).run()
    return summary
  } finally {
    await net.stop(opts.keep === true || (opts.keepOnFailure === true && (summary === undefined || summary.violations.length > 0)))
  }
}

/** One line for a summary. */
export function summaryLine (s: SoakSummary): string {
  return `acknowledged ${s.acknowledged} / final ${s.final} / lost ${s.lost} / evidence ${s.evidence} / heights ${Object.values(s.heights).join(',')} / kills ${s.kills} / ${s.seconds} s (seed ${s.seed}; restart median ${s.restartMs.median} ms, max ${s.restartMs.max} ms; next version after a restart median ${s.recoveryMs.median} ms, max ${s.recoveryMs.max} ms)`
}
