import { createServer, connect, type Server, type Socket } from 'node:net'

/** A loopback TCP proxy that can be cut and restored: an RPC outage without losing the chain. */
export class TcpProxy {
  private server: Server | undefined
  private readonly sockets = new Set<Socket>()
  port = 0
  private readonly target: { host: string, port: number }

  constructor (target: { host: string, port: number }) {
    this.target = target
  }

  get url (): string {
    return `http://127.0.0.1:${this.port}`
  }

  async start (): Promise<void> {
    const server = createServer(client => {
      const upstream = connect(this.target.port, this.target.host)
      for (const s of [client, upstream]) {
        this.sockets.add(s)
        s.on('close', () => this.sockets.delete(s))
        s.on('error', () => { client.destroy(); upstream.destroy() })
      }
      client.pipe(upstream).pipe(client)
    })
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(this.port, '127.0.0.1', () => resolve())
    })
    const address = server.address()
    this.port = typeof address === 'object' && address !== null ? address.port : 0
    this.server = server
  }

  /** Refuses new connections and drops open ones. */
  async cut (): Promise<void> {
    const server = this.server
    this.server = undefined
    for (const s of this.sockets) s.destroy()
    this.sockets.clear()
    if (server !== undefined) await new Promise<void>(resolve => server.close(() => resolve()))
  }

  /** Listens again on the same port. */
  async restore (): Promise<void> {
    await this.start()
  }

  async stop (): Promise<void> {
    await this.cut()
  }
}
