/**
 * Finality over wide-area links (issue 14 item 8): 4 validators and 1 plain node as real
 * daemons, each behind a DelayRelay (test/helpers/wide-area.ts) adding D ms ± J each way,
 * so every round trip between nodes gains 2·D. N small contributions posted one after the
 * other to the plain node, each timed from its upload to its being in a final version on
 * all 5 nodes (p50, p99); then B contributions posted at once, records/s to final.
 * Baseline from the same run: the same network with the relays adding nothing.
 *
 *   bash scripts/run.sh node scripts/bench/wide-area.ts [D=50] [J=5] [N=30] [B=50] [V=500]
 */
import { startWideAreaNetwork, DEVNET_CONSENSUS, type WideAreaNetwork } from '../../test/helpers/wide-area.ts'
import { percentile } from '../../test/helpers/stats.ts'

const delayMs = Number(process.argv[2] ?? 50)
const jitterMs = Number(process.argv[3] ?? 5)
const samples = Number(process.argv[4] ?? 30)
const burst = Number(process.argv[5] ?? 50)
/** The devnet's timeouts with versions every V ms (a version waits for the interval since the last). */
const CONSENSUS = { ...DEVNET_CONSENSUS, versionIntervalMs: Number(process.argv[6] ?? 500) }

interface Figures { p50: number, p99: number, max: number, burstRate: number }

async function post (net: WideAreaNetwork, text: string): Promise<string> {
  const node = net.members[4] as WideAreaNetwork['members'][number]
  const res = await fetch(`${node.daemon.apiUrl}/v1/datanets/${net.datanet}/contributions?format=jsonl`, {
    method: 'POST', headers: { authorization: `Bearer ${node.token}`, 'content-type': 'application/x-ndjson' }, body: JSON.stringify({ text }) + '\n'
  })
  if (res.status !== 201) throw new Error(`upload refused: ${res.status} ${await res.text()}`)
  return (await res.json() as { cid: string }).cid
}

/**
 * When each contribution became final on each member, from the members' event streams
 * (`GET /v1/events`, one version event per final version, then that version's list):
 * no polling to load the nodes being measured.
 */
class FinalityWatch {
  private readonly finalOn = new Map<string, number>()
  private readonly stops: Array<() => void> = []
  private readonly waiters = new Set<() => void>()

  private readonly net: WideAreaNetwork

  constructor (net: WideAreaNetwork) {
    this.net = net
  }

  async start (): Promise<void> {
    await Promise.all(this.net.members.map(async m => {
      const controller = new AbortController()
      const res = await fetch(`${m.daemon.apiUrl}/v1/events?datanet=${this.net.datanet}&types=version`, { signal: controller.signal })
      this.stops.push(() => { controller.abort() })
      void (async () => {
        const reader = (res.body as ReadableStream<Uint8Array>).getReader()
        const decoder = new TextDecoder()
        let text = ''
        for (;;) {
          const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true as const }))
          if (done) return
          text += decoder.decode(value, { stream: true })
          let cut
          while ((cut = text.indexOf('\n\n')) >= 0) {
            const block = text.slice(0, cut)
            text = text.slice(cut + 2)
            const data = /^data: (.*)$/m.exec(block)
            if (data === null) continue
            const at = performance.now()
            const { height } = JSON.parse(data[1] as string) as { height: number }
            const v = await (await fetch(`${m.daemon.apiUrl}/v1/datanets/${this.net.datanet}/versions/${height}`)).json() as { contributions: string[] }
            for (const cid of v.contributions) {
              const key = `${m.name} ${cid}`
              if (!this.finalOn.has(key)) this.finalOn.set(key, at)
            }
            for (const w of this.waiters) w()
          }
        }
      })()
    }))
  }

  /** When `cid` was final on every member (resolves once it is). */
  async finalEverywhere (cid: string): Promise<number> {
    const at = (): number | undefined => {
      const times = this.net.members.map(m => this.finalOn.get(`${m.name} ${cid}`))
      return times.every(t => t !== undefined) ? Math.max(...times as number[]) : undefined
    }
    return await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => { this.waiters.delete(check); reject(new Error(`${cid} not final on every node after 120 s`)) }, 120_000)
      const check = (): void => {
        const t = at()
        if (t === undefined) return
        clearTimeout(timer)
        this.waiters.delete(check)
        resolve(t)
      }
      this.waiters.add(check)
      check()
    })
  }

  stop (): void {
    for (const s of this.stops) s()
  }
}

async function measure (delay: number, jitter: number): Promise<Figures> {
  const net = await startWideAreaNetwork({ validators: 4, nodes: 1, delayMs: delay, jitterMs: jitter, consensus: CONSENSUS })
  const watch = new FinalityWatch(net)
  try {
    await watch.start()
    await watch.finalEverywhere(await post(net, 'warm-up'))
    const times: number[] = []
    for (let i = 0; i < samples; i++) {
      const t0 = performance.now()
      times.push(await watch.finalEverywhere(await post(net, `delay ${delay} sample ${i}`)) - t0)
    }
    const t0 = performance.now()
    const cids = await Promise.all(Array.from({ length: burst }, async (_, i) => await post(net, `delay ${delay} burst ${i}`)))
    const ends = await Promise.all(cids.map(async cid => await watch.finalEverywhere(cid)))
    const burstS = (Math.max(...ends) - t0) / 1000
    const sorted = times.sort((a, b) => a - b)
    return { p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted[sorted.length - 1] as number, burstRate: burst / burstS }
  } finally {
    watch.stop()
    await net.stop(false)
  }
}

const base = await measure(0, 0)
const wide = await measure(delayMs, jitterMs)
const row = (name: string, f: Figures): string => `${name.padEnd(34)} p50 ${f.p50.toFixed(0).padStart(5)} ms  p99 ${f.p99.toFixed(0).padStart(5)} ms  max ${f.max.toFixed(0).padStart(5)} ms  burst ${f.burstRate.toFixed(1).padStart(6)} contributions/s`
console.log(`contribution → final on all 5 nodes (4 validators + 1 node; devnet consensus timeouts, versions every ${CONSENSUS.versionIntervalMs} ms), ${samples} one at a time, then ${burst} at once`)
console.log(row('baseline: relays adding 0 ms', base))
console.log(row(`${2 * delayMs} ms RTT (±${jitterMs} ms each way)`, wide))
console.log(`ratio p50 wide/baseline: ${(wide.p50 / base.p50).toFixed(2)}; burst rate wide/baseline: ${(wide.burstRate / base.burstRate).toFixed(2)}`)
