/** Background work after gossip validation (fetching a contribution's shards, say). */
export type FairJob = (signal: AbortSignal) => Promise<void>

export interface FairQueueOptions {
  /** Jobs running at once, over all origins. */
  concurrency: number
  /** Jobs waiting per origin; more are refused. */
  maxQueuedPerOrigin: number
  /** Jobs waiting in all; more are refused. */
  maxQueued: number
  /**
   * Jobs of one origin running at once (default 1). Above 1, keep it below `concurrency`
   * so that a worker is always left for the other origins.
   */
  maxRunningPerOrigin?: number
  /** A job that throws (jobs should handle their own errors; this is for bugs). */
  onError?: (err: unknown, origin: string) => void
}

/**
 * A bounded work queue, fair between origins (the peers that published the messages):
 * at most `maxRunningPerOrigin` jobs per origin run at a time and origins take turns, so
 * a peer that floods it delays only its own work, holds at most that many of the
 * `concurrency` workers, and is refused past `maxQueuedPerOrigin` waiting jobs; an honest
 * burst from one origin still uses the workers nobody else needs. Stop aborts the
 * running jobs' signal.
 */
export class FairQueue {
  /** Waiting jobs by origin, in order of arrival. */
  private readonly waiting = new Map<string, FairJob[]>()
  /** When each origin with work waiting or running was last served (a turn counter). */
  private readonly lastServed = new Map<string, number>()
  private turn = 0
  /** Running jobs per origin. */
  private readonly runningOrigins = new Map<string, number>()
  private runningJobs = 0
  private queued = 0
  private controller = new AbortController()
  private readonly opts: FairQueueOptions

  constructor (opts: FairQueueOptions) {
    this.opts = opts
  }

  /** Whether a job from this origin would be taken now. */
  accepts (origin: string): boolean {
    return this.queued < this.opts.maxQueued && (this.waiting.get(origin)?.length ?? 0) < this.opts.maxQueuedPerOrigin
  }

  /** Queues a job; false when the origin's share or the queue is full. */
  push (origin: string, job: FairJob): boolean {
    if (!this.accepts(origin)) return false
    const list = this.waiting.get(origin)
    if (list === undefined) this.waiting.set(origin, [job])
    else list.push(job)
    this.queued++
    this.pump()
    return true
  }

  /** Jobs waiting (not running). */
  get size (): number {
    return this.queued
  }

  /** Jobs running. */
  get running (): number {
    return this.runningJobs
  }

  /** Drops the waiting jobs and aborts the running ones; the queue takes new jobs afterwards. */
  stop (): void {
    this.waiting.clear()
    this.lastServed.clear()
    this.queued = 0
    this.controller.abort()
    this.controller = new AbortController()
  }

  private pump (): void {
    while (this.runningJobs < this.opts.concurrency) {
      const origin = this.nextOrigin()
      if (origin === undefined) return
      const list = this.waiting.get(origin) as FairJob[]
      const job = list.shift() as FairJob
      this.queued--
      if (list.length === 0) this.waiting.delete(origin)
      this.lastServed.set(origin, ++this.turn)
      void this.run(origin, job)
    }
  }

  /** The origin served longest ago (never served first, then by arrival) with work waiting and a running slot free. */
  private nextOrigin (): string | undefined {
    let best: string | undefined
    let bestTurn = Infinity
    const perOrigin = this.opts.maxRunningPerOrigin ?? 1
    for (const origin of this.waiting.keys()) {
      if ((this.runningOrigins.get(origin) ?? 0) >= perOrigin) continue
      const turn = this.lastServed.get(origin) ?? 0
      if (turn < bestTurn) {
        best = origin
        bestTurn = turn
      }
    }
    return best
  }

  private async run (origin: string, job: FairJob): Promise<void> {
    this.runningOrigins.set(origin, (this.runningOrigins.get(origin) ?? 0) + 1)
    this.runningJobs++
    try {
      await job(this.controller.signal)
    } catch (err) {
      this.opts.onError?.(err, origin)
    } finally {
      this.runningJobs--
      const left = (this.runningOrigins.get(origin) ?? 1) - 1
      if (left > 0) this.runningOrigins.set(origin, left)
      else this.runningOrigins.delete(origin)
      if (!this.waiting.has(origin) && left === 0) this.lastServed.delete(origin)
      this.pump()
    }
  }
}
