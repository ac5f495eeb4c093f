/**
 * Where an upload's per-record stage runs: a large upload's on a worker thread
 * (ingest-worker.ts), so that parsing and hashing one batch overlaps the index and shard
 * writes of the one before, on two cores instead of one; a small upload's here, where
 * handing it over would cost more than it saves. Workers are kept for the next upload (a
 * new thread loads its modules, compiles the schema and warms its code again: a second or
 * so on a busy machine) and end after a minute idle.
 */
import { availableParallelism } from 'node:os'
import { Worker } from 'node:worker_threads'
import { prepareRecords, type PrepareOptions, type PreparedBatch } from '../../src/contribution/ingest.ts'
import { parseRecords, type ParseOptions } from '../../src/contribution/parse.ts'
import { DatanetError, type ErrorKind } from '../../src/errors.ts'
import type { FromWorker, IngestWorkerData, ToWorker } from './ingest-worker.ts'

/** An upload that ends within this many bytes is prepared here. */
export const OFFLOAD_BYTES = 1024 * 1024
/** Upload bytes coalesced per message to the worker. */
const CHUNK_BYTES = 256 * 1024
/** Chunks posted and not yet taken by the worker, and batches back and not yet taken here: bound memory, not speed. */
const CHUNKS_AHEAD = 4
const BATCHES_AHEAD = 2

export interface PrepareThreadOptions {
  /** Worker threads that may run at once over all uploads (0: every upload here). */
  maxWorkers: number
  /** Uploads longer than this go to a worker (default OFFLOAD_BYTES). */
  offloadBytes?: number
}

/**
 * Workers when the config leaves it open: the cores beyond two, at most two. On two cores
 * LevelDB's writes and compactions of the record index take much of the second core during
 * a large upload: a worker measured 1.4× faster for ~120 B records but 0.9× for ~1 KB ones
 * (scripts/bench/ingest.ts), so two cores stay without one.
 */
export function defaultIngestWorkers (): number {
  return Math.max(0, Math.min(2, availableParallelism() - 2))
}

/** An idle worker ends after this long. */
const IDLE_MS = 60_000

let running = 0
const idle: Array<{ worker: Worker, timer: NodeJS.Timeout }> = []

function takeWorker (): Worker {
  const kept = idle.pop()
  if (kept !== undefined) {
    clearTimeout(kept.timer)
    kept.worker.removeAllListeners('exit')
    kept.worker.ref()
    return kept.worker
  }
  // A young generation larger than the daemon's (--max-semi-space-size=8): the stage
  // allocates per record, and a small one promoted much of it to the old generation.
  return new Worker(new URL('./ingest-worker.ts', import.meta.url), { resourceLimits: { maxYoungGenerationSizeMb: 48, maxOldGenerationSizeMb: 128 } })
}

/** A worker whose job ended cleanly waits for the next; one that failed or was cut off ends. */
function giveBack (worker: Worker, clean: boolean): void {
  // by name: Worker listens to its own newListener/removeListener to start its port
  for (const event of ['message', 'error', 'exit']) worker.removeAllListeners(event)
  if (!clean) {
    void worker.terminate()
    return
  }
  worker.unref()
  const forget = (): void => {
    const i = idle.indexOf(entry)
    if (i >= 0) idle.splice(i, 1)
  }
  const entry = {
    worker,
    timer: setTimeout(() => {
      forget()
      void worker.terminate()
    }, IDLE_MS)
  }
  entry.timer.unref()
  worker.once('exit', forget)
  idle.push(entry)
}

/** Worker threads preparing uploads now (for tests and metrics). */
export function ingestWorkersRunning (): number {
  return running
}

/** The prepared batches of an upload, in order, from a worker thread or from this one. */
export async function * preparedBatches (body: AsyncIterable<Uint8Array>, parse: ParseOptions, prepare: PrepareOptions, opts: PrepareThreadOptions): AsyncGenerator<PreparedBatch> {
  const it = body[Symbol.asyncIterator]()
  const head: Uint8Array[] = []
  let headBytes = 0
  let ended = false
  // rules are code: a datanet whose rules check records prepares here
  const movable = opts.maxWorkers > running && prepare.rules.every(r => r.checkRecord === undefined)
  while (movable && headBytes <= (opts.offloadBytes ?? OFFLOAD_BYTES)) {
    const r = await it.next()
    if (r.done === true) {
      ended = true
      break
    }
    head.push(r.value)
    headBytes += r.value.length
  }
  const all = async function * (): AsyncGenerator<Uint8Array> {
    yield * head
    if (ended) return
    for (let r = await it.next(); r.done !== true; r = await it.next()) yield r.value
  }
  if (!movable || ended || opts.maxWorkers <= running) {
    yield * prepareRecords(parseRecords(all(), parse), prepare)
    return
  }
  running++
  try {
    yield * onWorker(all(), parse, prepare)
  } finally {
    running--
    void it.return?.()
  }
}

async function * onWorker (chunks: AsyncGenerator<Uint8Array>, parse: ParseOptions, prepare: PrepareOptions): AsyncGenerator<PreparedBatch> {
  const data: IngestWorkerData = { parse, prepare: { manifest: prepare.manifest, skipInvalid: prepare.skipInvalid, maxListed: prepare.maxListed, batchSize: prepare.batchSize } }
  const worker = takeWorker()
  const batches: PreparedBatch[] = []
  let credit = CHUNKS_AHEAD
  let done = false
  let closed = false
  let failure: Error | undefined
  let wakeConsumer: (() => void) | undefined
  let wakePump: (() => void) | undefined
  const wake = (): void => {
    wakeConsumer?.()
    wakePump?.()
  }
  const fail = (err: Error): void => {
    failure ??= err
    wake()
  }
  worker.on('message', (m: FromWorker) => {
    if ('consumed' in m) credit++
    else if ('batch' in m) batches.push(m.batch)
    else if ('done' in m) done = true
    else fail(m.error.code !== undefined ? new DatanetError({ code: m.error.code }, m.error.message, (m.error.kind ?? 'failure') as ErrorKind) : new Error(`ingest worker: ${m.error.message}`))
    wake()
  })
  worker.on('error', err => { fail(new DatanetError({ code: 'CONTRIBUTION_ERROR_INGEST_WORKER' }, `the upload's ingest thread failed: ${err.message}`, 'failure', { cause: err })) })
  worker.on('exit', code => { if (!done) fail(new DatanetError({ code: 'CONTRIBUTION_ERROR_INGEST_WORKER' }, `the upload's ingest thread exited (code ${code})`)) })

  const post = (m: ToWorker, transfer: ArrayBuffer[] = []): void => { worker.postMessage(m, transfer) }
  post({ start: data })
  const pump = async (): Promise<void> => {
    let pieces: Uint8Array[] = []
    let size = 0
    const send = async (): Promise<void> => {
      while (!closed && (credit <= 0 || batches.length >= BATCHES_AHEAD)) await new Promise<void>(resolve => { wakePump = resolve })
      if (closed) return
      // a copy: body chunks may share a pooled buffer, which cannot be transferred
      const chunk = new Uint8Array(size)
      let at = 0
      for (const p of pieces) {
        chunk.set(p, at)
        at += p.length
      }
      pieces = []
      size = 0
      credit--
      post({ chunk }, [chunk.buffer])
    }
    for await (const piece of chunks) {
      if (closed) return
      pieces.push(piece)
      size += piece.length
      if (size >= CHUNK_BYTES) await send()
    }
    if (size > 0) await send()
    if (!closed) post({ end: true })
  }
  pump().catch(err => { fail(err as Error) })

  try {
    for (;;) {
      const next = batches.shift()
      if (next !== undefined) {
        wakePump?.()
        yield next
      } else if (failure !== undefined) {
        throw failure
      } else if (done) {
        return
      } else {
        await new Promise<void>(resolve => { wakeConsumer = resolve })
      }
    }
  } finally {
    closed = true
    wakePump?.()
    void chunks.return(undefined)
    giveBack(worker, done && failure === undefined)
  }
}
