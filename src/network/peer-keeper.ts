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
  /** Announced peers kept at most (bootstrap peers always are). */
  maxAnnounced?: number
  /** Failed dials in a row after which an announced peer is dropped until it announces again. */
  maxAnnouncedFailures?: number
  logger: Logger
}

interface Target { addrs: Multiaddr[], peerId: string, failures: number, nextAt: number, announced: boolean }

/**
 * Keeps the node connected to its bootstrap peers and to the peers it learns of from their
 * signed announcements: dials each at start and again, with exponential backoff, whenever
 * it is not connected. Nodes of a network often start together, so a first dial that finds
 * nobody listening must not be the last; and a node given one bootstrap peer must not
 * depend on it for ever (without the announced peers, every node reached the others only
 * through the seed: one crash partitioned the network).
 */
export class PeerKeeper {
  private readonly opts: PeerKeeperOptions
  private readonly targets: Target[]
  private self: string | undefined
  private timer: NodeJS.Timeout | undefined
  private libp2p: Libp2p | undefined
  private readonly dialing = new Set<string>()

  constructor (opts: PeerKeeperOptions) {
    this.opts = opts
    this.targets = opts.peers.map(p => {
      const addr = multiaddr(p)
      const peerId = addr.getComponents().find(c => c.name === 'p2p')?.value
      if (peerId === undefined) throw new Error(`bootstrap address ${p} has no /p2p/<peer id>`)
      return { addrs: [addr], peerId, failures: 0, nextAt: 0, announced: false }
    })
  }

  start (libp2p: Libp2p): void {
    this.libp2p = libp2p
    this.self = libp2p.peerId.toString()
    this.schedule(0)
  }

  /**
   * Keeps a peer another node announced (its multiaddrs, with or without its /p2p): dialled like a
   * bootstrap peer, up to `maxAnnounced` of them, dropped after `maxAnnouncedFailures`
   * failures in a row. Returns whether it is kept.
   */
  add (peerId: string, multiaddrs: readonly string[]): boolean {
    if (peerId === this.self) return false
    const addrs: Multiaddr[] = []
    for (const text of multiaddrs.slice(0, 8)) {
      try {
        const a = multiaddr(text)
        const named = a.getComponents().find(c => c.name === 'p2p')?.value
        // an address of another peer is not this peer's (a relayed one is not kept either)
        if (named === undefined) addrs.push(a.encapsulate(`/p2p/${peerId}`))
        else if (named === peerId && a.getComponents().filter(c => c.name === 'p2p').length === 1) addrs.push(a)
      } catch {}
    }
    if (addrs.length === 0) return false
    const known = this.targets.find(t => t.peerId === peerId)
    if (known !== undefined) {
      if (known.announced) known.addrs = addrs
      return true
    }
    if (this.targets.filter(t => t.announced).length >= (this.opts.maxAnnounced ?? 50)) return false
    this.targets.push({ addrs, peerId, failures: 0, nextAt: 0, announced: true })
    if (this.timer === undefined) this.schedule(0)
    return true
  }

  /** The peers kept, bootstrap first. */
  get peers (): string[] {
    return this.targets.map(t => t.peerId)
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
    this.timer = undefined
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
      libp2p.dial(t.addrs, { signal: AbortSignal.timeout(this.opts.dialTimeoutMs) }).then(() => {
        t.failures = 0
      }, (err: Error) => {
        t.failures++
        t.nextAt = Date.now() + Math.min(this.opts.maxBackoffMs ?? 30_000, (this.opts.minBackoffMs ?? 250) * 2 ** (t.failures - 1))
        this.opts.logger.debug({ peer: t.peerId, failures: t.failures, announced: t.announced, err: err.message }, 'peer dial failed')
        if (t.announced && t.failures >= (this.opts.maxAnnouncedFailures ?? 10)) this.targets.splice(this.targets.indexOf(t), 1)
      }).finally(() => {
        this.dialing.delete(t.peerId)
      })
    }
    this.schedule(this.opts.minBackoffMs ?? 250)
  }
}
