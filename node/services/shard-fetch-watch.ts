/**
 * Timing a gossiped contribution's shard fetch fairly. A stall is "blocks asked for and
 * none arriving", not "waiting behind the same publisher's other contributions": each
 * publisher gets a few shard requests in flight at once (Permits), and a fetch's clocks
 * run only while it has requests out (FetchWatch). Before, every contribution of a burst
 * asked for its shards at once (12 × 8 blocks of 1 MiB from one uploader), each got a
 * sliver of the link, and honest ones were timed out, retried and their publisher
 * penalised (scripts/bench/finality.ts: ~10 such failures per validator per run).
 */

/** A FIFO semaphore whose waits end when their signal aborts. */
export class Permits {
  private free: number
  private readonly waiting: Array<{ grant: () => void, signal: AbortSignal, onAbort: () => void }> = []

  constructor (size: number) {
    this.free = size
  }

  async acquire (signal: AbortSignal): Promise<void> {
    signal.throwIfAborted()
    if (this.free > 0 && this.waiting.length === 0) {
      this.free--
      return
    }
    await new Promise<void>((resolve, reject) => {
      const entry = {
        grant: resolve,
        signal,
        onAbort: () => {
          const at = this.waiting.indexOf(entry)
          if (at >= 0) this.waiting.splice(at, 1)
          reject(signal.reason)
        }
      }
      signal.addEventListener('abort', entry.onAbort, { once: true })
      this.waiting.push(entry)
    })
  }

  release (): void {
    const next = this.waiting.shift()
    if (next === undefined) {
      this.free++
      return
    }
    next.signal.removeEventListener('abort', next.onAbort)
    next.grant()
  }
}

/**
 * Aborts a fetch when requests are out and no block arrives for `stallMs`, when requests
 * have been out for `activeMs` in all, or when `parent` aborts. Time with no request out
 * (waiting for a permit, checking records) counts for neither.
 */
export class FetchWatch {
  private readonly controller = new AbortController()
  private readonly parent: AbortSignal
  private readonly onParent = (): void => { this.controller.abort(this.parent.reason) }
  private readonly stallMs: number
  private readonly activeMs: number
  private budgetMs: number
  private out = 0
  private since = 0
  private stall: NodeJS.Timeout | undefined
  private cap: NodeJS.Timeout | undefined

  constructor (stallMs: number, activeMs: number, parent: AbortSignal) {
    this.stallMs = stallMs
    this.activeMs = activeMs
    this.budgetMs = activeMs
    this.parent = parent
    if (parent.aborted) this.controller.abort(parent.reason)
    else parent.addEventListener('abort', this.onParent, { once: true })
  }

  get signal (): AbortSignal {
    return this.controller.signal
  }

  /** A request went out. */
  started (): void {
    if (this.out++ > 0) return
    this.since = performance.now()
    this.armStall()
    this.cap = setTimeout(() => { this.controller.abort(new Error(`the shards took over ${this.activeMs} ms of fetching`)) }, Math.max(0, this.budgetMs))
  }

  /** A request ended: `arrived` when its block came. */
  ended (arrived: boolean): void {
    if (this.out === 0) return
    if (--this.out > 0) {
      if (arrived) this.armStall()
      return
    }
    this.pause()
  }

  clear (): void {
    this.pause()
    this.parent.removeEventListener('abort', this.onParent)
  }

  private armStall (): void {
    clearTimeout(this.stall)
    this.stall = setTimeout(() => { this.controller.abort(new Error(`no shard arrived for ${this.stallMs} ms`)) }, this.stallMs)
  }

  private pause (): void {
    if (this.stall === undefined && this.cap === undefined) return
    clearTimeout(this.stall)
    clearTimeout(this.cap)
    this.stall = undefined
    this.cap = undefined
    this.budgetMs -= performance.now() - this.since
  }
}
