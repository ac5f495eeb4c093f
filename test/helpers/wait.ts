/** Bounded waiting for tests: uvu has no per-test timeout, so every wait has a deadline. */

export async function withDeadline<T> (promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)
  })
  try {
    return await Promise.race([promise, deadline])
  } finally {
    clearTimeout(timer)
  }
}

/** Polls `probe` until it returns a value other than undefined/false, or fails after `timeoutMs`. */
export async function waitFor<T> (probe: () => Promise<T | undefined | false> | T | undefined | false, opts: { timeoutMs: number, what: string, intervalMs?: number }): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs
  let lastError: unknown
  for (;;) {
    try {
      const value = await probe()
      if (value !== undefined && value !== false) return value
    } catch (err) {
      lastError = err
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${opts.timeoutMs} ms waiting for ${opts.what}${lastError !== undefined ? ` (last error: ${String(lastError)})` : ''}`)
    }
    await new Promise(resolve => setTimeout(resolve, opts.intervalMs ?? 100))
  }
}

/**
 * Wraps a uvu before/after hook so its failure is printed: uvu counts the suite's tests
 * as not passed but swallows the hook's error.
 */
export function hook (fn: () => Promise<void> | void): () => Promise<void> {
  return async () => {
    try {
      await fn()
    } catch (err) {
      process.stderr.write(`hook failed: ${(err as Error).stack ?? String(err)}\n`)
      throw err
    }
  }
}
