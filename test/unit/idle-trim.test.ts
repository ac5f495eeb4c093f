/**
 * node/daemon/idle-trim.ts: an idle node gives its unused heap back (V8's memory reducer
 * never runs in this Node), a busy one is never paused for it. The real collection, in a
 * child process with --expose-gc, does shrink the heap it is called on.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { spawnSync } from 'node:child_process'
import type { EventLoopUtilization } from 'node:perf_hooks'
import { idleTrim, worthTrimming } from '../../node/daemon/idle-trim.ts'
import { createLogger } from '../../node/logger.ts'
import { waitFor } from '../helpers/wait.ts'

const MB = 1024 * 1024
const logger = createLogger({ level: 'silent', format: 'json' })
const limits = { maxUtilization: 0.05, minSlackBytes: 8 * MB }

test('worth trimming: an idle loop and a heap with slack, nothing else', () => {
  assert.ok(worthTrimming(0.01, { total: 45 * MB, used: 27 * MB }, limits))
  assert.not.ok(worthTrimming(0.2, { total: 45 * MB, used: 27 * MB }, limits), 'a busy loop is not paused')
  assert.not.ok(worthTrimming(0.01, { total: 30 * MB, used: 27 * MB }, limits), 'a tight heap has nothing to give')
})

test('the trim collects while the node idles with slack, once, and not while it is busy', async () => {
  let busy = 0.5
  let heap = { total: 45 * MB, used: 27 * MB }
  let collections = 0
  const trim = idleTrim({
    logger,
    intervalMs: 5,
    minSpacingMs: 0,
    collect: () => { collections++; heap = { total: 29 * MB, used: 27 * MB } },
    heap: () => heap,
    utilization: () => ({ idle: 0, active: 0, utilization: busy }) as EventLoopUtilization
  })
  trim.start()
  try {
    await new Promise(resolve => setTimeout(resolve, 50))
    assert.is(collections, 0, 'collected while the loop was busy')
    busy = 0.01
    await waitFor(async () => collections > 0 ? true : undefined, { timeoutMs: 2000, what: 'a collection once idle' })
    await new Promise(resolve => setTimeout(resolve, 50))
    assert.is(collections, 1, 'collected again with nothing to give back')
    heap = { total: 45 * MB, used: 27 * MB }
    await waitFor(async () => collections > 1 ? true : undefined, { timeoutMs: 2000, what: 'a second collection once the heap grew again' })
  } finally {
    trim.stop()
  }
  const after = collections
  await new Promise(resolve => setTimeout(resolve, 30))
  assert.is(collections, after, 'collected after stop')
})

test('at most one collection in minSpacingMs, however much the heap has to give', async () => {
  let collections = 0
  const trim = idleTrim({
    logger,
    intervalMs: 5,
    minSpacingMs: 60_000,
    collect: () => { collections++ },
    heap: () => ({ total: 45 * MB, used: 27 * MB }),
    utilization: () => ({ idle: 0, active: 0, utilization: 0.01 }) as EventLoopUtilization
  })
  trim.start()
  try {
    await waitFor(async () => collections > 0 ? true : undefined, { timeoutMs: 2000, what: 'a first collection' })
    await new Promise(resolve => setTimeout(resolve, 60))
    assert.is(collections, 1)
  } finally {
    trim.stop()
  }
})

test('V8\'s last-resort collection gives back the heap a burst left (a child with --expose-gc)', () => {
  const script = `
    import { getHeapStatistics } from 'node:v8'
    import { exposedCollect } from ${JSON.stringify(new URL('../../node/daemon/idle-trim.ts', import.meta.url).href)}
    let keep = []
    for (let i = 0; i < 400000; i++) { keep.push({ i, s: 'x' + i }); if (keep.length > 20000) keep = [] }
    keep = []
    const before = getHeapStatistics().total_heap_size
    exposedCollect()()
    console.log(JSON.stringify({ before, after: getHeapStatistics().total_heap_size }))
  `
  const out = spawnSync(process.execPath, [...process.execArgv, '--expose-gc', '--max-semi-space-size=8', '--input-type=module', '-e', script], { encoding: 'utf8' })
  assert.is(out.status, 0, out.stderr)
  const { before, after } = JSON.parse(out.stdout) as { before: number, after: number }
  assert.ok(after < before - 4 * MB, `heap ${(before / MB).toFixed(1)} -> ${(after / MB).toFixed(1)} MB`)
  const without = spawnSync(process.execPath, [...process.execArgv, '--input-type=module', '-e', `import { exposedCollect } from ${JSON.stringify(new URL('../../node/daemon/idle-trim.ts', import.meta.url).href)}; console.log(String(exposedCollect() === undefined))`], { encoding: 'utf8' })
  assert.is(without.stdout.trim(), 'true', 'without --expose-gc there is nothing to call')
})

test.run()
