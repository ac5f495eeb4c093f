import { createServer, connect, type Server, type Socket } from 'node:net'

/** Bytes and connections through one relay, by direction. */
export interface RelayStats {
  connections: number
  /** Client → target. */
  bytesUp: number
  /** Target → client. */
  bytesDown: number
}

export interface DelayRelayOptions {
  target: { host: string, port: number }
  /** One-way delay added to every chunk, each direction (so a round trip gains 2×). */
  delayMs: number
  /** Each chunk's delay varies uniformly within ±jitterMs (never reordering a stream). */
  jitterMs?: number
  host?: string
  /** 0: the OS picks. */
  port?: number
  /** Seedable randomness for the jitter (default Math.random). */
  random?: () => number
}

type Item = { at: number, chunk: Buffer } | { at: number, end: true }

/**
 * One direction of a connection, delayed. Chunks keep their order: each is released at
 * max(the previous chunk's release, now + delay ± jitter), and one timer drains the queue
 * head first, so equal release times cannot be reordered by the timer wheel.
 */
class DelayedPipe {
  private readonly queue: Item[] = []
  private last = 0
  private timer: NodeJS.Timeout | undefined
  private readonly from: Socket
  private readonly to: Socket
  private readonly delay: () => number
  private readonly count: (n: number) => void
  /** The source's end arrived (so its end is queued or delivered). */
  ended = false
  /** Its end was passed on. */
  endDelivered = false
  /** The source closed: after passing its end on, close the destination too. */
  closeAfterEnd = false

  constructor (from: Socket, to: Socket, delay: () => number, count: (n: number) => void) {
    this.from = from
    this.to = to
    this.delay = delay
    this.count = count
    from.on('data', (chunk: Buffer) => { this.count(chunk.length); this.push({ at: this.releaseAt(), chunk }) })
    // the end travels as late as the data before it: a half-close is not a shortcut
    from.on('end', () => { this.ended = true; this.push({ at: this.releaseAt(), end: true }) })
    // a slow reader pushes back on the writer instead of the queue growing without bound
    to.on('drain', () => { from.resume() })
  }

  private releaseAt (): number {
    this.last = Math.max(this.last, Date.now() + this.delay())
    return this.last
  }

  private push (item: Item): void {
    this.queue.push(item)
    if (this.timer === undefined) this.arm()
  }

  private arm (): void {
    const head = this.queue[0]
    if (head === undefined) return
    this.timer = setTimeout(() => { this.timer = undefined; this.drain() }, Math.max(0, head.at - Date.now()))
  }

  private drain (): void {
    const now = Date.now()
    while (this.queue.length > 0 && (this.queue[0] as Item).at <= now) {
      const item = this.queue.shift() as Item
      if (this.to.destroyed) { this.queue.length = 0; return }
      if ('end' in item) {
        this.endDelivered = true
        if (this.closeAfterEnd) this.to.destroySoon()
        else this.to.end()
      }
      else if (!this.to.write(item.chunk)) this.from.pause()
    }
    this.arm()
  }

  stop (): void {
    clearTimeout(this.timer)
    this.timer = undefined
    this.queue.length = 0
  }
}

/**
 * A TCP relay that delays every chunk in each direction by a one-way delay plus jitter: a
 * wide-area link on one machine (this kernel has no netem). A node behind one announces
 * the relay's address, so every connection to it crosses one delayed link.
 */
export class DelayRelay {
  private server: Server | undefined
  private readonly sockets = new Set<Socket>()
  private readonly pipes = new Set<DelayedPipe>()
  private readonly opts: DelayRelayOptions
  port: number
  readonly stats: RelayStats = { connections: 0, bytesUp: 0, bytesDown: 0 }
  /**
   * The local ports of the relay's connections to the target: what the target sees as the
   * remote port of a connection that came through the relay.
   */
  readonly upstreamPorts = new Set<number>()

  constructor (opts: DelayRelayOptions) {
    this.opts = opts
    this.port = opts.port ?? 0
  }

  /** Sockets still open (both sides of every connection). */
  get openSockets (): number {
    return this.sockets.size
  }

  get host (): string {
    return this.opts.host ?? '127.0.0.1'
  }

  /** The relay's address as a multiaddr (without /p2p). */
  get multiaddr (): string {
    return `/ip4/${this.host}/tcp/${this.port}`
  }

  private delay (): number {
    const jitter = this.opts.jitterMs ?? 0
    return Math.max(0, this.opts.delayMs + (jitter === 0 ? 0 : ((this.opts.random ?? Math.random)() * 2 - 1) * jitter))
  }

  async start (): Promise<void> {
    // half-open on both sides: each direction's end is forwarded, delayed, on its own
    const server = createServer({ allowHalfOpen: true, noDelay: true }, client => {
      this.stats.connections++
      const upstream = connect({ port: this.opts.target.port, host: this.opts.target.host, allowHalfOpen: true, noDelay: true })
      upstream.once('connect', () => { if (upstream.localPort !== undefined) this.upstreamPorts.add(upstream.localPort) })
      const up = new DelayedPipe(client, upstream, () => this.delay(), n => { this.stats.bytesUp += n })
      const down = new DelayedPipe(upstream, client, () => this.delay(), n => { this.stats.bytesDown += n })
      this.pipes.add(up)
      this.pipes.add(down)
      const abort = (): void => {
        up.stop()
        down.stop()
        this.pipes.delete(up)
        this.pipes.delete(down)
        client.destroy()
        upstream.destroy()
      }
      const pairs: Array<[Socket, DelayedPipe, Socket]> = [[client, up, upstream], [upstream, down, client]]
      for (const [s, from, other] of pairs) {
        this.sockets.add(s)
        s.on('error', abort)
        s.on('close', hadError => {
          this.sockets.delete(s)
          if (hadError || !from.ended) { abort(); return }
          // closed cleanly: what it sent (and its end) still arrives, late, then the other side closes too
          if (from.endDelivered) other.destroySoon()
          else from.closeAfterEnd = true
        })
      }
    })
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(this.port, this.host, () => resolve())
    })
    const address = server.address()
    this.port = typeof address === 'object' && address !== null ? address.port : 0
    this.server = server
  }

  /** Refuses new connections and drops open ones. */
  async stop (): Promise<void> {
    const server = this.server
    this.server = undefined
    for (const p of this.pipes) p.stop()
    this.pipes.clear()
    for (const s of this.sockets) s.destroy()
    this.sockets.clear()
    if (server !== undefined) await new Promise<void>(resolve => server.close(() => resolve()))
  }
}
