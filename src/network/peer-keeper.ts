import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import type { Libp2p } from '@libp2p/interface'
import type { Logger } from 'pino'

export interface PeerKeeperOptions {
  /** Multiaddrs with /p2p/<peer id>. */
  peers: readonly string[]
  dialTimeoutMs: number
  /** First retry delay; doubles per failure up to maxBackoffMs. */
  minBackoffMs?: number
  maxBackoffMs?: number
  logger: Logger
}

interface Target { addr: Multiaddr, peerId: string, failures: number, nextAt: number }

/**
 * Keeps the node connected to its bootstrap peers: dials each at start and again, with
 * exponential backoff, whenever it is not connected. Nodes of a network often start
 * together, so a first dial that finds nobody listening must not be the last.
 */
export class PeerKeeper {
  private readonly opts: PeerKeeperOptions
  private readonly targets: Target[]
  private timer: NodeJS.Timeout | undefined
  private libp2p: Libp2p | undefined
  private readonly dialing = new Set<string>()

  constructor (opts: PeerKeeperOptions) {
    this.opts = opts
    this.targets = opts.peers.map(p => {
      const addr = multiaddr(p)
      const peerId = addr.getComponents().find(c => c.name === 'p2p')?.value
      if (peerId === undefined) throw new Error(`bootstrap address ${p} has no /p2p/<peer id>`)
      return { addr, peerId, failures: 0, nextAt: 0 }
    })
  }

  start (libp2p: Libp2p): void {
    this.libp2p = libp2p
    this.schedule(0)
  }

  stop (): void {
    clearTimeout(this.timer)
    this.timer = undefined
    this.libp2p = undefined
  }

  private schedule (ms: number): void {
    if (this.libp2p === undefined || this.targets.length === 0) return
    clearTimeout(this.timer)
    this.timer = setTimeout(() => { this.tick() }, ms)
    this.timer.unref()
  }

  private tick (): void {
    const libp2p = this.libp2p
    if (libp2p === undefined) return
    const now = Date.now()
    const connected = new Set(libp2p.getPeers().map(p => p.toString()))
    for (const t of this.targets) {
      if (connected.has(t.peerId)) {
        t.failures = 0
        continue
      }
      if (t.nextAt > now || this.dialing.has(t.peerId)) continue
      this.dialing.add(t.peerId)
      libp2p.dial(t.addr, { signal: AbortSignal.timeout(this.opts.dialTimeoutMs) }).then(() => {
        t.failures = 0
      }, (err: Error) => {
        t.failures++
        t.nextAt = Date.now() + Math.min(this.opts.maxBackoffMs ?? 30_000, (this.opts.minBackoffMs ?? 250) * 2 ** (t.failures - 1))
        this.opts.logger.debug({ peer: t.peerId, failures: t.failures, err: err.message }, 'bootstrap dial failed')
      }).finally(() => {
        this.dialing.delete(t.peerId)
      })
    }
    this.schedule(this.opts.minBackoffMs ?? 250)
  }
}
