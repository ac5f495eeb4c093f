/**
 * Signature checks on a thread of their own (signature-thread.ts): a catching-up node
 * checks the next ranges' certificates here while its main thread applies the range before.
 */
import { parentPort } from 'node:worker_threads'
import { verifyAll, type SignedDigest } from '../../src/codec/signer.ts'

/** main → worker: a batch to check. */
export interface SignatureJob { id: number, items: SignedDigest[] }
/** worker → main: ready to take batches, or a batch's answer. */
export type SignatureAnswer = { ready: true } | { id: number, ok: boolean }

const port = parentPort
if (port === null) throw new Error('signature-worker.ts runs as a worker thread')
port.on('message', ({ id, items }: SignatureJob) => {
  let ok: boolean
  try {
    ok = verifyAll(items)
  } catch {
    ok = false
  }
  port.postMessage({ id, ok } satisfies SignatureAnswer)
})
port.postMessage({ ready: true } satisfies SignatureAnswer)
