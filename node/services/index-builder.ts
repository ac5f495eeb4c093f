/**
 * Runs index segment builds (index-build-worker.ts) on a worker thread, one at a time in
 * order, so the main thread keeps handling votes and gossip while a large version is
 * indexed. Small builds run here: a worker's start (~1 s, ~100 MB with the tokenizer
 * tables) costs more than they do. The worker stays for a while after its last build (a
 * busy datanet makes a version every few seconds) and then goes. A thread of its own,
 * not the merge worker's (index-segments.ts), whose one-merge-at-a-time scheduling and
 * failure bookkeeping belong to the segments; both load the tokenizer tables, so while both
 * run they cost ~2 × 100 MB — one thread for both jobs is the next step.
 *
 * A build's records come as chunks (a shard's at a time) and go to the worker as they come,
 * at most MAX_IN_FLIGHT unacknowledged: a version of one contribution of 100,000 records,
 * held whole with its texts, hashes and bytes and cloned to the worker at once, was the
 * largest thing a node held.
 */
import { Worker } from 'node:worker_threads'
import type { BuildMessage, BuildRecord, BuildReply } from './index-build-worker.ts'
import type { SegmentBase } from '../../src/attribution/corpus-index.ts'

/** Builds of at most this many tokens (text: ~4 bytes a token) run on the main thread. */
const INLINE_TOKENS = 200_000
/** The worker goes when no build came for this long. */
const IDLE_MS = 30_000
/** Chunks sent to the worker and not yet taken, at most (the rest wait: bounded memory on both sides). */
const MAX_IN_FLIGHT = 4

export interface IndexBuilderOptions {
  /** Builds of at most this many tokens run on the main thread (default INLINE_TOKENS; 0: all in the worker). */
  inlineTokens?: number
}

/**
 * A segment built: its bytes, tokens and records; `written`: its bytes are in `out` (a
 * worker's build, with their sha256 in `digest`), else the caller stores them (a small
 * build: index-segments.ts packs it).
 */
export interface BuiltSegment { bytes: Uint8Array, tokens: number, records: number, written: boolean, digest?: Uint8Array }

/** A build on the worker, as its replies find it. */
interface WorkerJob {
  done: Promise<{ bytes: Uint8Array, tokens: number, digest: Uint8Array }>
  resolve: (r: { bytes: Uint8Array, tokens: number, digest: Uint8Array }) => void
  reject: (err: Error) => void
  inFlight: number
  failed?: Error
  /** Waiting for an ack (or the failure). */
  wake?: () => void
}

type Chunks = AsyncIterable<BuildRecord[]> | Iterable<BuildRecord[]>

export class IndexBuilder {
  private readonly inlineTokens: number
  private worker: Worker | undefined
  private readonly jobs = new Map<number, WorkerJob>()
  private nextId = 1
  private idle: NodeJS.Timeout | undefined
  private stopped = false

  constructor (opts: IndexBuilderOptions = {}) {
    this.inlineTokens = opts.inlineTokens ?? INLINE_TOKENS
  }

  /**
   * Builds the segment of `chunks` (records in ascending recordIndex) after `base`;
   * undefined when there are no records. Large builds run on the worker, which writes them
   * into `out`; small builds (and all with `here`) run on this thread, streamed into the
   * segment as they come, and are not written.
   */
  async build (chunks: Chunks, base: SegmentBase, out: string, options: { here?: boolean } = {}): Promise<BuiltSegment | undefined> {
    if (this.stopped) throw new Error('the index builder is stopped')
    const source = Symbol.asyncIterator in chunks ? chunks[Symbol.asyncIterator]() : toAsync(chunks[Symbol.iterator]())
    if (options.here === true) return await this.here(rest([], source), base)
    // held until the build is known to be large
    const held: BuildRecord[][] = []
    let tokens = 0
    for (;;) {
      const next = await source.next()
      if (next.done === true) return await this.here(rest(held, undefined), base)
      held.push(next.value)
      tokens += estimatedTokens(next.value)
      if (tokens > this.inlineTokens) return await this.inWorker(rest(held, source), base, out)
    }
  }

  async stop (): Promise<void> {
    this.stopped = true
    clearTimeout(this.idle)
    await this.stopWorker()
  }

  private async here (chunks: AsyncIterable<BuildRecord[]>, base: SegmentBase): Promise<BuiltSegment | undefined> {
    const { SegmentBuilder } = await import('../../src/attribution/corpus-index.ts')
    const { finishSegment, tokenized } = await import('./index-build-worker.ts')
    const builder = new SegmentBuilder(base)
    for await (const chunk of chunks) for (const r of chunk) builder.add(tokenized(r))
    if (builder.recordCount === 0) return undefined
    return { ...finishSegment(builder), records: builder.recordCount, written: false }
  }

  private async inWorker (chunks: AsyncIterable<BuildRecord[]>, base: SegmentBase, out: string): Promise<BuiltSegment | undefined> {
    clearTimeout(this.idle)
    const worker = this.worker ?? this.start()
    const id = this.nextId++
    let resolve!: WorkerJob['resolve']
    let reject!: WorkerJob['reject']
    const done = new Promise<{ bytes: Uint8Array, tokens: number, digest: Uint8Array }>((res, rej) => { resolve = res; reject = rej })
    // awaited once the records are sent; a failure meanwhile is seen by the send loop
    done.catch(() => {})
    const job: WorkerJob = { done, resolve, reject, inFlight: 0 }
    this.jobs.set(id, job)
    const post = (m: BuildMessage): void => { worker.postMessage(m) }
    let ended = false
    try {
      post({ id, type: 'begin', base, out })
      let records = 0
      for await (const chunk of chunks) {
        if (chunk.length === 0) continue
        while (job.inFlight >= MAX_IN_FLIGHT && job.failed === undefined) await new Promise<void>(resolve => { job.wake = resolve })
        if (job.failed !== undefined) throw job.failed
        post({ id, type: 'add', records: chunk })
        job.inFlight++
        records += chunk.length
      }
      ended = true
      if (records === 0) {
        post({ id, type: 'abort' })
        return undefined
      }
      post({ id, type: 'end' })
      return { ...await done, records, written: true }
    } finally {
      if (!ended && job.failed === undefined) post({ id, type: 'abort' })
      this.jobs.delete(id)
      if (this.jobs.size === 0 && !this.stopped) {
        this.idle = setTimeout(() => { void this.stopWorker() }, IDLE_MS)
        this.idle.unref()
      }
    }
  }

  private start (): Worker {
    const worker = new Worker(new URL('./index-build-worker.ts', import.meta.url))
    worker.unref()
    const fail = (job: WorkerJob, err: Error): void => {
      job.failed ??= err
      job.reject(err)
      job.wake?.()
    }
    worker.on('message', (reply: BuildReply) => {
      const job = this.jobs.get(reply.id)
      if (job === undefined) return
      if (reply.type === 'ack') {
        job.inFlight--
        job.wake?.()
      } else if (reply.type === 'done') {
        job.resolve(reply)
      } else {
        fail(job, new Error(reply.error))
      }
    })
    let failure: Error | undefined
    // reported through exit, with its reason
    worker.on('error', err => { failure = err })
    // gone with builds in hand (an error, out of memory, stop): their callers fall back
    worker.on('exit', code => {
      if (this.worker === worker) this.worker = undefined
      const why = failure === undefined ? `code ${code}` : `${(failure as { code?: string }).code ?? 'error'}: ${failure.message}`
      for (const job of this.jobs.values()) fail(job, new Error(`the index build worker exited (${why})`))
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

/** `held` chunks, then the rest of `source`. */
async function * rest (held: readonly BuildRecord[][], source: AsyncIterator<BuildRecord[]> | undefined): AsyncGenerator<BuildRecord[]> {
  yield * held
  if (source === undefined) return
  for (;;) {
    const next = await source.next()
    if (next.done === true) return
    yield next.value
  }
}

async function * toAsync (it: Iterator<BuildRecord[]>): AsyncGenerator<BuildRecord[]> {
  for (;;) {
    const next = it.next()
    if (next.done === true) return
    yield next.value
  }
}

function estimatedTokens (records: readonly BuildRecord[]): number {
  let n = 0
  for (const r of records) n += r.tokens?.length ?? Math.ceil((r.text?.length ?? 0) / 4)
  return n
}
