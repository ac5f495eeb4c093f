import { spawn, type ChildProcess } from 'node:child_process'
import { closeSync, openSync, readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { fileURLToPath } from 'node:url'
import { DatanetError } from '../../src/errors.ts'

export const CLI_MAIN = fileURLToPath(new URL('../cli/main.js', import.meta.url))

/** A free TCP port on loopback (the OS picks; closed again before use). */
export async function freePort (host = '127.0.0.1'): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = createServer()
    srv.unref()
    srv.on('error', reject)
    srv.listen(0, host, () => {
      const addr = srv.address()
      srv.close(() => { typeof addr === 'object' && addr !== null ? resolve(addr.port) : reject(new Error('no port')) })
    })
  })
}

/**
 * V8 flags of every datanet process; node/bin/datanet passes the same. Semi-spaces of at
 * most 8 MB (V8's default is 16): with 2 MB, a validator judging a burst of 1 KB records
 * (shards of ~2 MB) promoted most of what it held for a moment, and its old generation
 * paid for it — 8 MB took 17% off a validator's CPU and 20% off its GC helpers, 1.11× to
 * finality, 1.5× the node's ingest (scripts/bench/finality.ts, alternating, 2026-12-07),
 * for 10 MB more idle RSS (107 → 117 MB; 16 MB: 118 and no faster). A 256 MB old generation makes V8 collect during a large upload instead of
 * letting garbage grow the heap past 600 MB; the node's live heap is tens of MB (state is
 * in level, blocks in the block store, indexes in typed arrays outside the heap).
 * `--expose-gc` lets an idle node give its unused heap back (node/daemon/idle-trim.ts:
 * V8's own memory reducer never runs here).
 * With so small a limit V8 lets the old generation grow only 1.3× between full
 * collections: a validator under a burst ran ~90 of them in 30 s, each freeing 2–5 MB of a
 * ~55 MB heap (--trace-gc). `--heap-growing-percent=50` (1.5×) took 9% off a 1 GB
 * upload's CPU (scripts/bench/contribute.ts) but is not passed: it leaves more garbage
 * between collections, and honest nodes under the proposal flood of
 * test/integration/byzantine.test.ts then grew past its 64 MB bound in a full run.
 */
export const RUNTIME_FLAGS = ['--max-semi-space-size=8', '--max-old-space-size=256', '--expose-gc']

/**
 * Two glibc malloc arenas instead of one per thread: LevelDB and crypto work on the
 * thread pool, and per-thread arenas keep freed memory as RSS (a large upload's peak RSS
 * drops by about a tenth).
 */
export const RUNTIME_ENV = { MALLOC_ARENA_MAX: '2' }

/** Runs the datanet CLI in a child process with this process's Node and flags. */
export function spawnCli (args: string[], opts: { env?: NodeJS.ProcessEnv, logFile?: string, cwd?: string, netns?: string } = {}): ChildProcess {
  const out = opts.logFile !== undefined ? openSync(opts.logFile, 'a') : 'pipe'
  const argv = [...new Set([...process.execArgv, ...RUNTIME_FLAGS]), CLI_MAIN, ...args]
  // in a network namespace (a separate host in tests): `ip netns exec` execs Node itself, so the pid is the node's
  const [cmd, cmdArgs] = opts.netns === undefined ? [process.execPath, argv] : ['ip', ['netns', 'exec', opts.netns, process.execPath, ...argv]]
  const child = spawn(cmd, cmdArgs, {
    env: { ...RUNTIME_ENV, ...process.env, ...opts.env },
    cwd: opts.cwd,
    stdio: ['ignore', out, out]
  })
  if (typeof out === 'number') closeSync(out)
  return child
}

export interface DaemonSpec {
  dataDir: string
  passwordFile: string
  logFile: string
  p2pPort: number
  apiPort: number
  bootstrap: string[]
  config?: string
  extraArgs?: string[]
  env?: NodeJS.ProcessEnv
  /** Run in this network namespace (a host of its own, in tests), with the API on `host`. */
  netns?: string
  /** The API's address (default 127.0.0.1). */
  host?: string
}

/** A `datanet node start` child process, with readiness and stop that never leave it behind. */
export class DaemonProcess {
  child: ChildProcess | undefined
  private exited: Promise<number | null> | undefined
  exitCode: number | null | undefined

  readonly spec: DaemonSpec

  constructor (spec: DaemonSpec) {
    this.spec = spec
  }

  get apiUrl (): string {
    return `http://${this.spec.host ?? '127.0.0.1'}:${this.spec.apiPort}`
  }

  get pid (): number | undefined {
    return this.child?.pid
  }

  start (): void {
    const s = this.spec
    const args = ['node', 'start', '--data-dir', s.dataDir, '--password-file', s.passwordFile,
      '--p2p-port', String(s.p2pPort), '--api-port', String(s.apiPort), '--config', s.config ?? 'devnet']
    if (s.bootstrap.length > 0) args.push('--bootstrap', ...s.bootstrap)
    args.push(...(s.extraArgs ?? []))
    this.exitCode = undefined
    const child = spawnCli(args, { env: s.env, logFile: s.logFile, netns: s.netns })
    this.child = child
    this.exited = new Promise(resolve => {
      child.once('exit', (code, signal) => {
        this.exitCode = code ?? (signal !== null ? -1 : null)
        resolve(this.exitCode)
      })
    })
  }

  get running (): boolean {
    return this.child !== undefined && this.exitCode === undefined
  }

  /** Waits until /v1/health answers, failing early if the process exits. */
  async waitReady (timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (Date.now() < deadline) {
      if (!this.running) {
        throw new DatanetError({ code: 'DEVNET_ERROR_NODE_EXITED' }, `node ${this.spec.dataDir} exited with code ${this.exitCode}: ${this.logTail()}`)
      }
      try {
        const res = await fetch(`${this.apiUrl}/v1/health`, { signal: AbortSignal.timeout(1000) })
        if (res.ok) return
      } catch {}
      await new Promise(resolve => setTimeout(resolve, 50))
    }
    throw new DatanetError({ code: 'DEVNET_ERROR_NODE_TIMEOUT' }, `node ${this.spec.dataDir} not ready within ${timeoutMs} ms: ${this.logTail()}`)
  }

  /** The last lines of its log, for error messages. */
  logTail (lines = 5): string {
    try {
      return readFileSync(this.spec.logFile, 'utf8').trim().split('\n').slice(-lines).join(' | ')
    } catch {
      return '(no log)'
    }
  }

  async waitExit (timeoutMs: number): Promise<number | null | undefined> {
    if (this.exited === undefined) return undefined
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<'timeout'>(resolve => { timer = setTimeout(() => resolve('timeout'), timeoutMs) })
    const result = await Promise.race([this.exited, timeout])
    clearTimeout(timer)
    return result === 'timeout' ? undefined : result
  }

  /** SIGTERM, then SIGKILL if it has not stopped within `graceMs`. */
  async stop (graceMs = 10_000): Promise<number | null | undefined> {
    if (!this.running) return this.exitCode
    this.child?.kill('SIGTERM')
    const code = await this.waitExit(graceMs)
    if (code !== undefined) return code
    this.child?.kill('SIGKILL')
    return await this.waitExit(5_000)
  }

  /** kill -9: the crash case. */
  async kill (): Promise<void> {
    if (!this.running) return
    this.child?.kill('SIGKILL')
    await this.waitExit(5_000)
  }
}
