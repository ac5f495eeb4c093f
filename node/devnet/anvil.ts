import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { createServer } from 'node:net'
import { dirname, join } from 'node:path'

/** The dev mnemonic anvil funds its default accounts from. */
export const ANVIL_MNEMONIC = 'test test test test test test test test test test test junk'

/** The anvil binary of the optional platform package (installed without install scripts). */
export function anvilBinary (): string {
  const require = createRequire(import.meta.url)
  const pkg = `@foundry-rs/anvil-${process.platform === 'win32' ? 'win32' : process.platform}-${process.arch === 'x64' ? 'amd64' : process.arch}`
  let dir: string
  try {
    dir = dirname(require.resolve(`${pkg}/package.json`))
  } catch {
    throw new Error(`anvil binary package ${pkg} is not installed (package.json lists it as an optional dependency; it exists for linux x64 only)`)
  }
  const bin = join(dir, 'bin', process.platform === 'win32' ? 'anvil.exe' : 'anvil')
  if (!existsSync(bin)) throw new Error(`anvil binary missing at ${bin}`)
  return bin
}

async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })
}

export interface Anvil {
  url: string
  port: number
  chainId: number
  process: ChildProcess
  stop: () => Promise<void>
}

async function rpc (url: string, method: string, params: unknown[] = []): Promise<unknown> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
    signal: AbortSignal.timeout(1000)
  })
  const body = await res.json() as { result?: unknown, error?: { message: string } }
  if (body.error !== undefined) throw new Error(body.error.message)
  return body.result
}

/** Starts anvil on a free (or the given) 127.0.0.1 port and resolves once eth_chainId answers (bounded by `timeoutMs`). */
export async function startAnvil (opts: { chainId?: number, timeoutMs?: number, port?: number, stateFile?: string, blockTimeSeconds?: number, host?: string, netns?: string } = {}): Promise<Anvil> {
  const bin = anvilBinary()
  const host = opts.host ?? '127.0.0.1'
  const port = opts.port ?? await freePort()
  const args = ['--host', host, '--port', String(port), '--silent', '--mnemonic', ANVIL_MNEMONIC]
  if (opts.chainId !== undefined) args.push('--chain-id', String(opts.chainId))
  // the chain's state is loaded from and dumped to this file, so a devnet restarts where it was
  if (opts.stateFile !== undefined) args.push('--state', opts.stateFile)
  if (opts.blockTimeSeconds !== undefined) args.push('--block-time', String(opts.blockTimeSeconds))
  const child = opts.netns === undefined
    ? spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] })
    : spawn('ip', ['netns', 'exec', opts.netns, bin, ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr?.on('data', (d: Buffer) => { stderr += d.toString() })
  const exited = new Promise<never>((_resolve, reject) => {
    child.once('exit', (code, signal) => reject(new Error(`anvil exited early (code ${code}, signal ${signal}): ${stderr}`)))
    child.once('error', reject)
  })
  exited.catch(() => {})
  const url = `http://${host}:${port}`
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return
    const gone = new Promise<void>(resolve => child.once('exit', () => resolve()))
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000)
    await gone
    clearTimeout(timer)
  }
  const deadline = Date.now() + (opts.timeoutMs ?? 15_000)
  try {
    for (;;) {
      try {
        const id = await Promise.race([rpc(url, 'eth_chainId'), exited])
        return { url, port, chainId: Number(id), process: child, stop }
      } catch (err) {
        if (child.exitCode !== null || child.signalCode !== null) throw err
        if (Date.now() > deadline) throw new Error(`anvil did not answer on ${url} within the deadline: ${(err as Error).message} ${stderr}`)
      }
      // Polling interval for readiness (bounded by the deadline above), not a sleep for luck.
      await Promise.race([new Promise(resolve => setTimeout(resolve, 50)), exited])
    }
  } catch (err) {
    await stop()
    throw err
  }
}
