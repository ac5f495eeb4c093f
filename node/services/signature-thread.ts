/**
 * Signature checks in batches off the main thread. A catching-up node checks each range's
 * certificates (every precommit signature, src/consensus/range.ts) before it uses any of
 * it; on the main thread those checks took a fifth of its time, beside the apply of the
 * range before (scripts/bench/catch-up.ts, profiled). Here they run on a worker
 * (signature-worker.ts), on the second core.
 *
 * A batch is checked here instead when it is the first while the worker starts (~0.1 s:
 * the first range does not wait for it; the next ones do, as this thread has the range
 * before them to apply), when it is small (handing it over costs more than it saves), and
 * when the worker failed (its pending batches are checked here: an answer is never lost).
 * The worker ends after IDLE_MS without a batch.
 */
import { Worker } from 'node:worker_threads'
import { verifyAll, type SignedDigest } from '../../src/codec/signer.ts'
import type { SignatureAnswer, SignatureJob } from './signature-worker.ts'

/** Fewer signatures than this are checked here. */
export const MIN_OFFLOAD = 24
const IDLE_MS = 30_000

export interface SignatureThreadOptions {
  /** Fewer signatures are checked here (default MIN_OFFLOAD). */
  minOffload?: number
  idleMs?: number
}

/** How many batches were checked where (tests, benchmarks). */
export interface SignatureThreadStats { onWorker: number, here: number, workerFailures: number }

export class SignatureThread {
  private readonly o: SignatureThreadOptions
  private worker: Worker | undefined
  private ready = false
  private nextId = 0
  private readonly pending = new Map<number, { items: readonly SignedDigest[], resolve: (ok: boolean) => void, posted: boolean }>()
  /** A batch was checked here since the worker began to start. */
  private checkedWhileStarting = false
  private idle: NodeJS.Timeout | undefined
  private stopped = false
  readonly stats: SignatureThreadStats = { onWorker: 0, here: 0, workerFailures: 0 }

  constructor (o: SignatureThreadOptions = {}) {
    this.o = o
  }

  /** True only if every signature is its signer's (verifyAll). */
  async verify (items: readonly SignedDigest[]): Promise<boolean> {
    if (items.length < (this.o.minOffload ?? MIN_OFFLOAD) || this.stopped) return this.here(items)
    const worker = this.start()
    if (!this.ready && !this.checkedWhileStarting) {
      this.checkedWhileStarting = true
      return this.here(items)
    }
    clearTimeout(this.idle)
    const id = this.nextId++
    worker.ref()
    return await new Promise<boolean>(resolve => {
      // posted once the worker is ready
      this.pending.set(id, { items, resolve, posted: this.ready })
      if (this.ready) worker.postMessage({ id, items: [...items] } satisfies SignatureJob)
    })
  }

  private here (items: readonly SignedDigest[]): boolean {
    this.stats.here++
    return verifyAll(items)
  }

  private start (): Worker {
    if (this.worker !== undefined) return this.worker
    const worker = new Worker(new URL('./signature-worker.ts', import.meta.url), { resourceLimits: { maxOldGenerationSizeMb: 64 } })
    this.worker = worker
    this.ready = false
    this.checkedWhileStarting = false
    worker.unref()
    worker.on('message', (m: SignatureAnswer) => {
      if ('ready' in m) {
        this.ready = true
        for (const [id, job] of this.pending) {
          if (job.posted) continue
          job.posted = true
          worker.postMessage({ id, items: [...job.items] } satisfies SignatureJob)
        }
        if (this.pending.size === 0) this.idleAfter()
        return
      }
      const job = this.pending.get(m.id)
      if (job === undefined) return
      this.pending.delete(m.id)
      this.stats.onWorker++
      job.resolve(m.ok)
      if (this.pending.size === 0) {
        worker.unref()
        this.idleAfter()
      }
    })
    const failed = (): void => {
      if (this.worker !== worker) return
      this.worker = undefined
      this.ready = false
      clearTimeout(this.idle)
      if (!this.stopped) this.stats.workerFailures++
      // what it had not answered is checked here
      const jobs = [...this.pending.values()]
      this.pending.clear()
      for (const job of jobs) job.resolve(this.here(job.items))
    }
    worker.on('error', failed)
    worker.on('exit', failed)
    return worker
  }

  private idleAfter (): void {
    clearTimeout(this.idle)
    this.idle = setTimeout(() => { void this.end() }, this.o.idleMs ?? IDLE_MS)
    this.idle.unref()
  }

  private async end (): Promise<void> {
    const worker = this.worker
    if (worker === undefined || this.pending.size > 0) return
    this.worker = undefined
    this.ready = false
    await worker.terminate()
  }

  async stop (): Promise<void> {
    this.stopped = true
    clearTimeout(this.idle)
    const worker = this.worker
    this.worker = undefined
    this.ready = false
    const jobs = [...this.pending.values()]
    this.pending.clear()
    for (const job of jobs) job.resolve(this.here(job.items))
    await worker?.terminate()
  }
}
