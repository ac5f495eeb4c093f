/**
 * Runs index segment builds (index-build-worker.ts) on a worker thread, one at a time in
 * order, so the main thread keeps handling votes and gossip while a large version is
 * indexed. Small builds run here: a worker's start (~1 s, ~100 MB with the tokenizer
 * tables) costs more than they do. The worker stays for a while after its last build (a
 * busy datanet makes a version every few seconds) and then goes. A thread of its own,
 * not the merge worker's (index-segments.ts), whose one-merge-at-a-time scheduling and
 * failure bookkeeping belong to the segments; both load the tokenizer tables, so while both
 * run they cost ~2 × 100 MB — one thread for both jobs is the next step.
 */
import { Worker } from 'node:worker_threads'
import type { BuildJob, BuildRecord, BuildReply } from './index-build-worker.ts'
import type { SegmentBase } from '../../src/attribution/corpus-index.ts'

/** Builds of at most this many tokens (text: ~4 bytes a token) run on the main thread. */
const INLINE_TOKENS = 200_000
/** The worker goes when no build came for this long. */
const IDLE_MS = 30_000

export interface IndexBuilderOptions {
  /** Builds of at most this many tokens run on the main thread (default INLINE_TOKENS; 0: all in the worker). */
  inlineTokens?: number
}

export class IndexBuilder {
  private readonly inlineTokens: number
  private worker: Worker | undefined
  private readonly pending = new Map<number, { resolve: (r: { bytes: Uint8Array, tokens: number }) => void, reject: (err: Error) => void }>()
  private nextId = 1
  private idle: NodeJS.Timeout | undefined
  private stopped = false

  constructor (opts: IndexBuilderOptions = {}) {
    this.inlineTokens = opts.inlineTokens ?? INLINE_TOKENS
  }

  /** Builds the segment of `records` after `base` into `out`; its bytes and token count. `here`: on this thread whatever its size. */
  async build (records: BuildRecord[], base: SegmentBase, out: string, options: { here?: boolean } = {}): Promise<{ bytes: Uint8Array, tokens: number }> {
    if (this.stopped) throw new Error('the index builder is stopped')
    const job: BuildJob = { id: this.nextId++, records, base, out }
    if (options.here === true || estimatedTokens(records) <= this.inlineTokens) {
      const { buildFile } = await import('./index-build-worker.ts')
      return buildFile(job)
    }
    clearTimeout(this.idle)
    const worker = this.worker ?? this.start()
    const reply = new Promise<{ bytes: Uint8Array, tokens: number }>((resolve, reject) => { this.pending.set(job.id, { resolve, reject }) })
    worker.postMessage(job)
    try {
      return await reply
    } finally {
      if (this.pending.size === 0 && !this.stopped) {
        this.idle = setTimeout(() => { void this.stopWorker() }, IDLE_MS)
        this.idle.unref()
      }
    }
  }

  async stop (): Promise<void> {
    this.stopped = true
    clearTimeout(this.idle)
    await this.stopWorker()
  }

  private start (): Worker {
    const worker = new Worker(new URL('./index-build-worker.ts', import.meta.url))
    worker.unref()
    worker.on('message', (reply: BuildReply) => {
      const p = this.pending.get(reply.id)
      if (p === undefined) return
      this.pending.delete(reply.id)
      if ('error' in reply) p.reject(new Error(reply.error))
      else p.resolve(reply)
    })
    worker.on('error', () => { /* reported through exit */ })
    // gone with builds in hand (an error, out of memory, stop): their callers fall back
    worker.on('exit', () => {
      if (this.worker === worker) this.worker = undefined
      for (const p of this.pending.values()) p.reject(new Error('the index build worker exited'))
      this.pending.clear()
    })
    this.worker = worker
    return worker
  }

  private async stopWorker (): Promise<void> {
    const worker = this.worker
    this.worker = undefined
    if (worker !== undefined) await worker.terminate()
  }
}

function estimatedTokens (records: readonly BuildRecord[]): number {
  let n = 0
  for (const r of records) n += r.tokens?.length ?? Math.ceil((r.text?.length ?? 0) / 4)
  return n
}
