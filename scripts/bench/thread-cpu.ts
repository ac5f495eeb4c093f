/**
 * CPU time of a process's threads, by kind, from Linux's /proc (clock ticks of 10 ms): what
 * a multi-process benchmark spent where, when the processes share the machine's cores and
 * wall time measures their sum. Node names its threads: MainThread, V8Worker (V8's
 * platform threads: concurrent marking and sweeping, parallel scavenges, the optimizing
 * compiler), WorkerThread (worker_threads), libuv-worker (the thread pool: LevelDB, crypto,
 * files). Threads that have exited count in the process's total only: "exited".
 */
import { readdirSync, readFileSync } from 'node:fs'

export type ThreadKind = 'main' | 'v8' | 'workers' | 'pool' | 'other' | 'exited'

export type ThreadCpu = Record<ThreadKind, number>

const KINDS: Record<string, ThreadKind> = { MainThread: 'main', V8Worker: 'v8', WorkerThread: 'workers', 'libuv-worker': 'pool' }

/** utime + stime of a /proc stat line, in seconds. */
function statSeconds (stat: string): { name: string, s: number } {
  const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return { name, s: (Number(f[11]) + Number(f[12])) / 100 }
}

/** CPU seconds (user + system, all threads, exited ones included) process `pid` has used. */
export function processCpuSeconds (pid: number): number {
  return statSeconds(readFileSync(`/proc/${pid}/stat`, 'utf8')).s
}

/** CPU seconds of process `pid` so far, by kind of thread; zeros when it is gone or /proc is not there. */
export function threadCpu (pid: number): ThreadCpu {
  const out: ThreadCpu = { main: 0, v8: 0, workers: 0, pool: 0, other: 0, exited: 0 }
  try {
    const total = processCpuSeconds(pid)
    let live = 0
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        const { name, s } = statSeconds(readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8'))
        out[KINDS[name] ?? 'other'] += s
        live += s
      } catch { /* the thread exited meanwhile */ }
    }
    out.exited = Math.max(0, total - live)
  } catch { /* not Linux, or the process is gone */ }
  return out
}

/** b − a, kind by kind. */
export function cpuSince (a: ThreadCpu, b: ThreadCpu): ThreadCpu {
  const out = { ...b }
  for (const k of Object.keys(out) as ThreadKind[]) out[k] = b[k] - a[k]
  return out
}

/** One line: each kind's seconds and the total. */
export function formatCpu (c: ThreadCpu): string {
  return `${cpuTotal(c).toFixed(1).padStart(5)} s: main ${c.main.toFixed(1)}, V8 helpers (GC, compiler) ${c.v8.toFixed(1)}, worker threads ${(c.workers + c.exited).toFixed(1)}, thread pool ${c.pool.toFixed(1)}, other ${c.other.toFixed(1)}`
}

/** Total seconds of a ThreadCpu. */
export function cpuTotal (c: ThreadCpu): number {
  return c.main + c.v8 + c.workers + c.pool + c.other + c.exited
}
