/**
 * The per-record stage of a large upload on a thread of its own: parse, canonicalise,
 * check the schema, hash, derive text keys (`prepareRecords`). The main thread keeps the
 * record index, the shards and the tree, so the two halves of an upload run on two cores.
 * Batches come back as a few transferred buffers (columns): no per-record structured clone.
 */
import { parentPort } from 'node:worker_threads'
import { prepareRecords, type PrepareOptions, type PreparedBatch } from '../../src/contribution/ingest.ts'
import { parseRecords, type ParseOptions } from '../../src/contribution/parse.ts'
import { compileRecordSchema } from '../../src/datanet/record-schema.ts'
import { isDatanetError } from '../../src/errors.ts'

export interface IngestWorkerData {
  parse: ParseOptions
  /** Without the validator and rules, which are code: the worker compiles the manifest's schema, and runs only where no rule checks records. */
  prepare: Omit<PrepareOptions, 'validateRecord' | 'rules'>
}

/** main → worker: a job's start (the worker takes one upload at a time, and job after job), a chunk of it (its buffer transferred), or its end. */
export type ToWorker = { start: IngestWorkerData } | { chunk: Uint8Array } | { end: true }

/** worker → main: a batch, a chunk consumed (credit for the next), the end, or a failure. */
export type FromWorker =
  | { batch: PreparedBatch }
  | { consumed: true }
  | { done: true }
  | { error: { message: string, code?: string, kind?: string } }

/** The chunks of one job, as the async iterable `parseRecords` reads; each is acknowledged once taken. */
class JobInput {
  private readonly queue: Array<Uint8Array | null> = []
  private wake: (() => void) | undefined
  private readonly port: NonNullable<typeof parentPort>

  constructor (port: NonNullable<typeof parentPort>) {
    this.port = port
  }

  push (chunk: Uint8Array | null): void {
    this.queue.push(chunk)
    this.wake?.()
  }

  async * chunks (): AsyncGenerator<Uint8Array> {
    for (;;) {
      while (this.queue.length === 0) await new Promise<void>(resolve => { this.wake = resolve })
      const chunk = this.queue.shift() as Uint8Array | null
      if (chunk === null) return
      this.port.postMessage({ consumed: true } satisfies FromWorker)
      yield chunk
    }
  }
}

async function run (port: NonNullable<typeof parentPort>, data: IngestWorkerData, input: JobInput): Promise<void> {
  try {
    const opts: PrepareOptions = { ...data.prepare, validateRecord: compileRecordSchema(data.prepare.manifest.recordSchema), rules: [] }
    for await (const batch of prepareRecords(parseRecords(input.chunks(), data.parse), opts)) {
      // each batch's columns are views of buffers of its own (a builder per batch): moved, not copied
      port.postMessage({ batch } satisfies FromWorker, [batch.bytes.buffer as ArrayBuffer, batch.offsets.buffer as ArrayBuffer, batch.hashes.buffer as ArrayBuffer, batch.texts.buffer as ArrayBuffer])
    }
    port.postMessage({ done: true } satisfies FromWorker)
  } catch (err) {
    const error = isDatanetError(err) ? { message: err.message, code: err.code, kind: err.kind } : { message: (err as Error).message }
    port.postMessage({ error } satisfies FromWorker)
  }
}

const port = parentPort
if (port !== null) {
  // jobs come one after another: main starts the next only once this one is done or failed
  let input: JobInput | undefined
  port.on('message', (m: ToWorker) => {
    if ('start' in m) {
      input = new JobInput(port)
      void run(port, m.start, input)
    } else {
      input?.push('chunk' in m ? m.chunk : null)
    }
  })
}
