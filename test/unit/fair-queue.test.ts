import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { FairQueue } from '../../src/network/fair-queue.ts'
import { PeerPenalties } from '../../src/network/peer-penalties.ts'
import { waitFor } from '../helpers/wait.ts'

/** A job that runs until released (or aborted), recording that it started. */
function gated (started: string[], name: string): { job: (signal: AbortSignal) => Promise<void>, release: () => void } {
  let release: () => void = () => {}
  const gate = new Promise<void>(resolve => { release = resolve })
  return {
    release,
    job: async signal => {
      started.push(name)
      await Promise.race([gate, new Promise<void>(resolve => signal.addEventListener('abort', () => resolve(), { once: true }))])
    }
  }
}

test('a flooding origin holds one worker; another origin\'s job starts at once', async () => {
  const q = new FairQueue({ concurrency: 2, maxQueuedPerOrigin: 16, maxQueued: 64 })
  const started: string[] = []
  const flood = Array.from({ length: 8 }, (_, i) => gated(started, `hostile-${i}`))
  for (const f of flood) assert.ok(q.push('hostile', f.job))
  assert.equal(started, ['hostile-0'], 'one job per origin at a time')
  const honest = gated(started, 'honest')
  assert.ok(q.push('honest', honest.job))
  assert.equal(started, ['hostile-0', 'honest'], 'the second worker goes to the other origin')
  honest.release()
  await waitFor(() => q.running === 1, { timeoutMs: 2000, what: 'the honest job to finish' })
  flood[0]?.release()
  await waitFor(() => started.length === 3, { timeoutMs: 2000, what: 'the next hostile job' })
  assert.is(started[2], 'hostile-1', 'an origin\'s jobs run in order')
  q.stop()
})

test('one origin\'s burst uses the idle workers up to its limit; one worker stays for the others', async () => {
  const q = new FairQueue({ concurrency: 4, maxQueuedPerOrigin: 256, maxQueued: 1024, maxRunningPerOrigin: 3 })
  const started: string[] = []
  const burst = Array.from({ length: 10 }, (_, i) => gated(started, `busy-${i}`))
  for (const b of burst) assert.ok(q.push('busy', b.job))
  assert.equal(started, ['busy-0', 'busy-1', 'busy-2'], 'three at once, not one (an honest backlog drained one fetch at a time capped a datanet)')
  const other = gated(started, 'other')
  assert.ok(q.push('other', other.job))
  assert.is(started[3], 'other', 'the fourth worker is the other origin\'s at once')
  for (const b of burst) b.release()
  other.release()
  await waitFor(() => started.length === 11, { timeoutMs: 2000, what: 'every job' })
  q.stop()
})

test('origins take turns', async () => {
  const q = new FairQueue({ concurrency: 1, maxQueuedPerOrigin: 16, maxQueued: 64 })
  const order: string[] = []
  const first = gated(order, 'a0')
  q.push('a', first.job)
  for (const [origin, name] of [['a', 'a1'], ['a', 'a2'], ['b', 'b0'], ['b', 'b1'], ['c', 'c0']]) {
    q.push(origin as string, async () => { order.push(name as string) })
  }
  first.release()
  await waitFor(() => order.length === 6, { timeoutMs: 2000, what: 'every job' })
  assert.equal(order, ['a0', 'b0', 'c0', 'a1', 'b1', 'a2'])
})

test('bounded: an origin past its share, or a full queue, is refused; stop aborts running jobs and drops waiting ones', async () => {
  const q = new FairQueue({ concurrency: 1, maxQueuedPerOrigin: 2, maxQueued: 3 })
  const started: string[] = []
  let aborted = false
  assert.ok(q.push('a', async signal => {
    started.push('running')
    await new Promise<void>(resolve => signal.addEventListener('abort', () => { aborted = true; resolve() }, { once: true }))
  }))
  assert.ok(q.push('a', async () => { started.push('a1') }))
  assert.ok(q.push('a', async () => { started.push('a2') }))
  assert.not.ok(q.accepts('a'))
  assert.not.ok(q.push('a', async () => { started.push('a3') }), 'the origin\'s share is full')
  assert.ok(q.push('b', async () => { started.push('b0') }))
  assert.not.ok(q.push('c', async () => { started.push('c0') }), 'the queue is full')
  assert.is(q.size, 3)
  q.stop()
  await waitFor(() => aborted, { timeoutMs: 2000, what: 'the running job to be aborted' })
  assert.is(q.size, 0)
  assert.equal(started, ['running'])
})

test('a job that throws is reported and does not stop the queue', async () => {
  const errors: string[] = []
  const q = new FairQueue({ concurrency: 1, maxQueuedPerOrigin: 4, maxQueued: 8, onError: (err, origin) => { errors.push(`${origin}: ${(err as Error).message}`) } })
  let ran = false
  q.push('a', async () => { throw new Error('bug') })
  q.push('a', async () => { ran = true })
  await waitFor(() => ran, { timeoutMs: 2000, what: 'the second job' })
  assert.equal(errors, ['a: bug'])
})

test('peer penalties decay by half each half-life and are forgotten below the floor', () => {
  let now = 0
  const p = new PeerPenalties({ halfLifeMs: 1000, floor: 0.1, now: () => now })
  p.add('x', 4)
  assert.is(p.score('x'), -4)
  now = 1000
  assert.is(p.current('x'), 2)
  p.add('x', 1)
  assert.is(p.current('x'), 3)
  p.add('x', -10)
  assert.is(p.score('x'), 0, 'never below zero')
  p.add('y', 1)
  now = 10_000
  assert.is(p.score('y'), 0)
  assert.is(p.size, 0)
})

test.run()
