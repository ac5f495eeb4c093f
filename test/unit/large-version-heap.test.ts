/**
 * One honest contribution of 200,000 small records, made final and caught up, in a 96 MB
 * heap (test/helpers/large-version.ts in a child process). On a4a8238 a version was
 * finalized in one batch (~8 buffers a record) and a range's record hashes were read ahead
 * whole: `big.ts` with one contribution of 100,000 records brought every node to its 256 MB
 * heap limit, and this run dies of `JavaScript heap out of memory`.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { spawnSync } from 'node:child_process'
import { tempDir } from '../helpers/tmp.ts'

test('a version of one contribution of 200,000 small records is finalized and caught up in a 96 MB heap', () => {
  const tmp = tempDir()
  try {
    const run = spawnSync(process.execPath, ['--max-old-space-size=96', new URL('../helpers/large-version.ts', import.meta.url).pathname, '200000', tmp.dir], { encoding: 'utf8', timeout: 300_000 })
    assert.is(run.status, 0, `exit ${String(run.status)} ${run.signal ?? ''}: ${run.stderr.split('\n').filter(l => /^(checking|finalizing|catching|FATAL|\w*Error)/.test(l)).join(' | ')}`)
    const out = JSON.parse(run.stdout.trim()) as { final: number, caughtUp: number, sameRoot: boolean, problem?: unknown }
    assert.equal(out, { final: 200_000, caughtUp: 200_000, sameRoot: true })
  } finally {
    tmp.remove()
  }
})

test.run()
