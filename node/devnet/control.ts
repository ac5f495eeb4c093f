import { existsSync, rmSync } from 'node:fs'
import { createServer, request, type IncomingMessage, type Server } from 'node:http'
import { join } from 'node:path'
import { DatanetError } from '../../src/errors.ts'

/** One node of a running devnet, as `datanet devnet status` shows it (DESIGN §6). */
export interface DevnetNodeStatus {
  name: string
  role: 'validator' | 'node'
  state: 'up' | 'down'
  pid: number | null
  /** Its highest final version; null while down or before any. */
  height: number | null
}

export type NodeAction = 'stop' | 'start' | 'kill'

/** What the control socket serves: the running devnet's nodes and what to do to one. */
export interface DevnetControl {
  status: () => Promise<DevnetNodeStatus[]>
  act: (name: string, action: NodeAction) => Promise<DevnetNodeStatus>
}

export const ControlErrorCode = {
  NOT_RUNNING: 'DEVNET_ERROR_NOT_RUNNING',
  UNKNOWN_NODE: 'DEVNET_ERROR_UNKNOWN_NODE'
} as const

/** The devnet's control socket: `<dir>/devnet.sock` (only this machine's users with access to the directory reach it). */
export function controlSocket (dir: string): string {
  return join(dir, 'devnet.sock')
}

/**
 * Serves `control` on a unix socket in the devnet's directory, so that `datanet devnet
 * status|stop|start|kill` from another shell act on the processes this devnet owns (only
 * their parent can restart them as they were started). Returns the close.
 */
export async function serveControl (dir: string, control: DevnetControl): Promise<() => Promise<void>> {
  const path = controlSocket(dir)
  // a socket file left by a devnet that was killed: nothing listens on it
  if (existsSync(path)) rmSync(path, { force: true })
  const server: Server = createServer((req, res) => {
    const reply = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' })
      res.end(JSON.stringify(body))
    }
    void (async () => {
      const match = /^\/nodes\/([\w-]+)\/(stop|start|kill)$/.exec(req.url ?? '')
      if (req.method === 'GET' && req.url === '/status') return reply(200, { nodes: await control.status() })
      if (req.method === 'POST' && match !== null) return reply(200, await control.act(match[1] as string, match[2] as NodeAction))
      reply(404, { error: { code: 'DEVNET_ERROR_ROUTE', message: `no such control request: ${req.method ?? ''} ${req.url ?? ''}` } })
    })().catch((err: unknown) => {
      const e = err instanceof DatanetError ? err : undefined
      reply(e?.code === ControlErrorCode.UNKNOWN_NODE ? 404 : 500, { error: { code: e?.code ?? 'DEVNET_ERROR_CONTROL', message: (err as Error).message } })
    })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(path, () => { resolve() })
  })
  return async () => {
    await new Promise<void>(resolve => server.close(() => { resolve() }))
    rmSync(path, { force: true })
  }
}

/** Asks the devnet running in `dir`; a clear error when none is. */
export async function askControl<T> (dir: string, method: 'GET' | 'POST', path: string, timeoutMs = 90_000): Promise<T> {
  const socketPath = controlSocket(dir)
  const notRunning = (): DatanetError => new DatanetError({ code: ControlErrorCode.NOT_RUNNING }, `no devnet is running in ${dir} (start one with: datanet devnet --dir ${dir})`, 'usage')
  if (!existsSync(socketPath)) throw notRunning()
  const res = await new Promise<{ status: number, body: string }>((resolve, reject) => {
    const req = request({ socketPath, path, method, timeout: timeoutMs }, (r: IncomingMessage) => {
      let body = ''
      r.setEncoding('utf8')
      r.on('data', (chunk: string) => { body += chunk })
      r.on('end', () => { resolve({ status: r.statusCode ?? 0, body }) })
      r.on('error', reject)
    })
    req.on('timeout', () => { req.destroy(new Error(`the devnet did not answer within ${timeoutMs} ms`)) })
    req.on('error', reject)
    req.end()
  }).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ECONNREFUSED' || err.code === 'ENOENT') throw notRunning()
    throw err
  })
  const json = JSON.parse(res.body) as T & { error?: { code: string, message: string } }
  if (res.status !== 200) {
    const e = json.error ?? { code: 'DEVNET_ERROR_CONTROL', message: res.body }
    throw new DatanetError({ code: e.code }, e.message, e.code === ControlErrorCode.UNKNOWN_NODE ? 'usage' : 'failure')
  }
  return json
}
