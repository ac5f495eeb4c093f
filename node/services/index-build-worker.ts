/**
 * Builds a final version's index segment off the main thread: SA-IS over a large
 * version's tokens (and tokenizing what the near-duplicate check did not) is seconds of
 * CPU, and on the main thread it held every vote, proposal and gossip message meanwhile
 * (8 s per 22,000-record version in scripts/bench/finality.ts). A build's records come in
 * chunks (a shard's at a time, each acknowledged) and are held packed (SegmentBuilder): a
 * version of one large contribution is never held whole on either thread. Writes the
 * segment file atomically (tmp + rename) and hands its bytes back (transferred, not copied).
 */
import { parentPort } from 'node:worker_threads'
import { runInBackground } from './background-thread.ts'
import { writeSegmentFileSync } from './segment-files.ts'
import { SegmentBuilder, type SegmentBase, type TokenizedRecord } from '../../src/attribution/corpus-index.ts'
import { normalizeText } from '../../src/attribution/normalize.ts'
import { encodeSegment } from '../../src/attribution/segment-codec.ts'
import { tokenize } from '../../src/attribution/tokenizer.ts'
import { sha256 } from '../../src/codec/hash.ts'

/** A record with its tokens when they are known (T(N(text))), else its text. */
export interface BuildRecord { recordIndex: number, contributor: string, tokens?: Uint32Array, text?: string }

/** A build: begun, its records added in chunks, ended. */
export type BuildMessage =
  | { id: number, type: 'begin', base: SegmentBase, out: string }
  | { id: number, type: 'add', records: BuildRecord[] }
  | { id: number, type: 'end' }
  /** Dropped: its records failed on the sending side, or there were none. */
  | { id: number, type: 'abort' }

/** An `add` taken (`ack`), a build done, or failed (no more replies for it). */
export type BuildReply =
  | { id: number, type: 'ack' }
  /** `digest`: sha256 of the bytes written, which the node keeps to read the file back with a structural check alone (index-segments.ts). */
  | { id: number, type: 'done', bytes: Uint8Array, tokens: number, digest: Uint8Array }
  | { id: number, type: 'error', error: string }

/** A build record as SegmentBuilder takes it: its tokens, or its text tokenized now. */
export function tokenized (r: BuildRecord): TokenizedRecord {
  return { recordIndex: r.recordIndex, contributor: r.contributor, tokens: r.tokens ?? tokenize(normalizeText(r.text ?? '')) }
}

/** The segment of the records `builder` took, encoded; its bytes and token count (written by the caller: segment-files.ts). */
export function finishSegment (builder: SegmentBuilder): { bytes: Uint8Array, tokens: number } {
  const segment = builder.build()
  return { bytes: encodeSegment(segment), tokens: segment.tokenCount }
}

const builds = new Map<number, { builder: SegmentBuilder, out: string }>()

// below the threads that vote and judge (this module is also loaded on the main thread for inline builds)
if (parentPort !== null) runInBackground()

parentPort?.on('message', (m: BuildMessage) => {
  try {
    if (m.type === 'begin') {
      builds.set(m.id, { builder: new SegmentBuilder(m.base), out: m.out })
      return
    }
    const build = builds.get(m.id)
    // failed already (its error was sent)
    if (build === undefined) return
    if (m.type === 'abort') {
      builds.delete(m.id)
      return
    }
    if (m.type === 'add') {
      for (const r of m.records) build.builder.add(tokenized(r))
      parentPort?.postMessage({ id: m.id, type: 'ack' } satisfies BuildReply)
      return
    }
    builds.delete(m.id)
    const done = finishSegment(build.builder)
    writeSegmentFileSync(build.out, done.bytes)
    parentPort?.postMessage({ id: m.id, type: 'done', ...done, digest: sha256(done.bytes) } satisfies BuildReply, [done.bytes.buffer as ArrayBuffer])
  } catch (err) {
    builds.delete(m.id)
    parentPort?.postMessage({ id: m.id, type: 'error', error: (err as Error).message } satisfies BuildReply)
  }
})
