/**
 * Merges index segments off the main thread (a merge of millions of tokens is seconds of
 * SA-IS): reads the parts' files (or takes the packed ones' bytes), merges them, writes the
 * result atomically (tmp + rename) and hands its bytes back (transferred, not copied).
 */
import { readFileSync } from 'node:fs'
import { parentPort } from 'node:worker_threads'
import { runInBackground } from './background-thread.ts'
import { writeSegmentFileSync } from './segment-files.ts'
import { mergeSegments, recomputeHead } from '../../src/attribution/corpus-index.ts'
import { decodeSegment, encodeSegment } from '../../src/attribution/segment-codec.ts'
import { sha256 } from '../../src/codec/hash.ts'

export interface MergeJob {
  id: number
  /** Segments, oldest first, each continuing the one before: a file, or the bytes of a packed one. */
  parts: Array<string | Uint8Array>
  out: string
}

/** `digest` (sha256 of the bytes) when the worker wrote them as a file: the node keeps it to read the file back with a structural check alone. */
export type MergeReply = { id: number, bytes: Uint8Array, digest?: Uint8Array } | { id: number, error: string }

/** Merges the bytes of a job's parts (oldest first); the merged segment's bytes (written by the caller: segment-files.ts). */
export function mergeSegmentBytes (parts: readonly Uint8Array[]): Uint8Array {
  // Structure only: the chain check below catches altered tokens, and SA-IS rebuilds the suffix array.
  const merged = mergeSegments(parts.map(bytes => decodeSegment(bytes, { verify: 'structure' })))
  if (Buffer.compare(recomputeHead(merged), merged.headAfter) !== 0) throw new Error('the parts\' records do not hash to their chain head')
  return encodeSegment(merged)
}

/** On this worker: a job's part files merged into its output file; the merged segment's bytes. */
function mergeFiles (job: MergeJob): Uint8Array {
  const bytes = mergeSegmentBytes(job.parts.map(part => typeof part === 'string' ? readFileSync(part) : part))
  writeSegmentFileSync(job.out, bytes)
  return bytes
}

// below the threads that vote and judge (this module is also loaded on the main thread for merges done there)
if (parentPort !== null) runInBackground()

parentPort?.on('message', (job: MergeJob) => {
  let reply: MergeReply
  try {
    const bytes = mergeFiles(job)
    reply = { id: job.id, bytes, digest: sha256(bytes) }
  } catch (err) {
    reply = { id: job.id, error: (err as Error).message }
  }
  parentPort?.postMessage(reply, 'bytes' in reply ? [reply.bytes.buffer as ArrayBuffer] : [])
})
