/**
 * Builds a final version's index segment off the main thread: SA-IS over a large
 * version's tokens (and tokenizing what the near-duplicate check did not) is seconds of
 * CPU, and on the main thread it held every vote, proposal and gossip message meanwhile
 * (8 s per 22,000-record version in scripts/bench/finality.ts). Writes the segment file
 * atomically (tmp + rename) and hands its bytes back (transferred, not copied).
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { parentPort } from 'node:worker_threads'
import { buildSegmentFromTokens, type SegmentBase, type TokenizedRecord } from '../../src/attribution/corpus-index.ts'
import { normalizeText } from '../../src/attribution/normalize.ts'
import { encodeSegment } from '../../src/attribution/segment-codec.ts'
import { tokenizeToArray } from '../../src/attribution/tokenizer.ts'

/** A record with its tokens when they are known (T(N(text))), else its text. */
export interface BuildRecord { recordIndex: number, contributor: string, tokens?: Uint32Array, text?: string }

export interface BuildJob {
  id: number
  records: BuildRecord[]
  base: SegmentBase
  out: string
}

export type BuildReply = { id: number, bytes: Uint8Array, tokens: number } | { id: number, error: string }

/** Builds a job's segment and writes its file; returns the segment's bytes. */
export function buildFile (job: BuildJob): { bytes: Uint8Array, tokens: number } {
  const records: TokenizedRecord[] = job.records.map(r => ({
    recordIndex: r.recordIndex,
    contributor: r.contributor,
    tokens: r.tokens ?? tokenizeToArray(normalizeText(r.text ?? ''))
  }))
  const segment = buildSegmentFromTokens(records, job.base)
  const bytes = encodeSegment(segment)
  mkdirSync(dirname(job.out), { recursive: true })
  writeFileSync(`${job.out}.tmp`, bytes)
  renameSync(`${job.out}.tmp`, job.out)
  return { bytes, tokens: segment.tokenCount }
}

parentPort?.on('message', (job: BuildJob) => {
  let reply: BuildReply
  try {
    reply = { id: job.id, ...buildFile(job) }
  } catch (err) {
    reply = { id: job.id, error: (err as Error).message }
  }
  parentPort?.postMessage(reply, 'bytes' in reply ? [reply.bytes.buffer as ArrayBuffer] : [])
})
