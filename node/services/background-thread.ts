import { readlinkSync } from 'node:fs'
import { setPriority } from 'node:os'

/** The nice value of the threads that build and merge attribution index segments. */
export const BACKGROUND_NICE = 10

/**
 * Lowers the calling thread's scheduling priority to BACKGROUND_NICE (on Linux a
 * thread's nice value is its own: `/proc/thread-self` names its task id). Index builds and
 * merges are seconds of CPU per version that nothing waits for on the way to finality
 * (the near-duplicate check waits a bounded time, previews for their version), yet at
 * equal priority they took the cores from the threads that vote, check proposals and
 * judge contributions. Elsewhere, or if refused, the thread keeps its priority. Whether it
 * was lowered.
 */
export function runInBackground (): boolean {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop())
    if (!Number.isSafeInteger(tid) || tid <= 0) return false
    setPriority(tid, BACKGROUND_NICE)
    return true
  } catch {
    return false
  }
}
