/**
 * Gives memory back while the node is idle. V8's memory reducer, which does that in a
 * browser, never runs in this Node: it waits for a low allocation rate in every heap, and
 * the embedder's heap (cppgc), which allocates nothing here, always reads as a rate of 0
 * and so a mutator utilization of 0 — "high alloc" (`--trace-mutator-utilization`). An
 * idle node thus kept for ever the pages of its start: new space grown to two 8 MB
 * semi-spaces and ~15 MB of pages pooled for reuse.
 *
 * Every `intervalMs`, when the event loop was busy less than `maxUtilization` of the
 * interval and the JavaScript heap holds at least `minSlackBytes` it does not use, one
 * full collection that shrinks the heap and releases the pool (V8's last-resort flavour:
 * ~20–46 ms, on a loop that had nothing to do), at most one in `minSpacingMs`. A busy node
 * is never paused by it.
 * Needs `gc` (`--expose-gc`, in the daemon's runtime flags); without it, does nothing.
 */
import { getHeapStatistics } from 'node:v8'
import { performance, type EventLoopUtilization } from 'node:perf_hooks'
import type { Logger } from '../logger.ts'

export interface IdleTrimOptions {
  logger: Logger
  /** How often the loop's use is looked at (default 5 s). */
  intervalMs?: number
  /** Busier than this (a fraction of the interval), the node is not idle (default 0.05). */
  maxUtilization?: number
  /** Less unused heap than this is not worth a collection (default 8 MB). */
  minSlackBytes?: number
  /** At most one collection in this long (default 30 s): a quiet node that allocates keeps its cost bounded. */
  minSpacingMs?: number
  /** The collection (default: V8's `gc` with the last-resort flavour, when exposed). */
  collect?: () => void
  /** Heap figures (default: node:v8's). */
  heap?: () => { total: number, used: number }
  /** The loop's use since `last` (default: perf_hooks'). */
  utilization?: (last?: EventLoopUtilization) => EventLoopUtilization
}

export interface IdleTrim {
  start: () => void
  stop: () => void
  /** Collections made so far. */
  readonly trims: number
}

type ExposedGc = (options: { type: 'major', execution: 'sync', flavor: 'last-resort' }) => void

/** V8's collection that reduces memory, when `--expose-gc` exposed it. */
export function exposedCollect (): (() => void) | undefined {
  const gc = (globalThis as { gc?: ExposedGc }).gc
  return typeof gc === 'function' ? () => { gc({ type: 'major', execution: 'sync', flavor: 'last-resort' }) } : undefined
}

/** Whether an interval with this loop use and heap is one to collect after. */
export function worthTrimming (utilization: number, heap: { total: number, used: number }, o: { maxUtilization: number, minSlackBytes: number }): boolean {
  return utilization < o.maxUtilization && heap.total - heap.used >= o.minSlackBytes
}

export function idleTrim (o: IdleTrimOptions): IdleTrim {
  const collect = o.collect ?? exposedCollect()
  const heap = o.heap ?? (() => { const s = getHeapStatistics(); return { total: s.total_heap_size, used: s.used_heap_size } })
  const utilization = o.utilization ?? ((last?: EventLoopUtilization) => performance.eventLoopUtilization(last))
  const limits = { maxUtilization: o.maxUtilization ?? 0.05, minSlackBytes: o.minSlackBytes ?? 8 * 1024 * 1024 }
  let timer: NodeJS.Timeout | undefined
  let last: EventLoopUtilization | undefined
  let trims = 0
  let lastTrim = -Infinity
  const check = (): void => {
    const now = utilization()
    const used = last === undefined ? 1 : utilization(last).utilization
    last = now
    const before = heap()
    if (collect === undefined || !worthTrimming(used, before, limits)) return
    const t0 = performance.now()
    if (t0 - lastTrim < (o.minSpacingMs ?? 30_000)) return
    lastTrim = t0
    collect()
    trims++
    // the collection itself is not the loop's work
    last = utilization()
    const after = heap()
    o.logger.debug({ ms: Math.round(performance.now() - t0), heapBefore: before.total, heapAfter: after.total, utilization: Number(used.toFixed(3)) }, 'idle: memory given back')
  }
  return {
    start: () => {
      if (timer !== undefined) return
      last = utilization()
      timer = setInterval(check, o.intervalMs ?? 5000)
      timer.unref()
    },
    stop: () => {
      clearInterval(timer)
      timer = undefined
    },
    get trims () { return trims }
  }
}
