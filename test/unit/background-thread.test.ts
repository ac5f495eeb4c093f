/**
 * Index builds run below the threads that vote and judge (node/services/background-thread.ts):
 * at equal priority, seconds of SA-IS per version took the cores from proposal checks and
 * verdicts on a loaded validator.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { IndexBuilder } from '../../node/services/index-builder.ts'
import { BACKGROUND_NICE } from '../../node/services/background-thread.ts'
import { EMPTY_HEAD } from '../../src/attribution/index.ts'
import { corpus } from '../fixtures/attribution/corpus.ts'
import { tempDir } from '../helpers/tmp.ts'

/** Each thread of this process: its task id and nice value (/proc/self/task/<tid>/stat, field 19). */
function threadNices (): Map<number, number> {
  const out = new Map<number, number>()
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8')
      out.set(Number(tid), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]))
    } catch {
      // the thread ended meanwhile
    }
  }
  return out
}

test('the index build worker runs at the background nice value; the main thread keeps its own', async () => {
  const tmp = tempDir()
  const builder = new IndexBuilder({ inlineTokens: 0 })
  try {
    const before = threadNices()
    assert.not.ok([...before.values()].includes(BACKGROUND_NICE), 'no background thread yet')
    const { records } = corpus(3, 50)
    const built = await builder.build([records.map(r => ({ recordIndex: r.recordIndex, contributor: r.contributor, text: r.text }))], { head: EMPTY_HEAD, lastRecordIndex: -1 }, join(tmp.dir, 'a.seg'))
    assert.is(built?.records, 50)
    const after = threadNices()
    const lowered = [...after].filter(([tid, nice]) => nice === BACKGROUND_NICE && !before.has(tid))
    assert.is(lowered.length, 1, 'the worker thread, lowered')
    assert.is(after.get(process.pid), before.get(process.pid), 'the main thread as it was')
  } finally {
    await builder.stop()
    tmp.remove()
  }
})

test.run()
