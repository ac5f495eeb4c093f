/**
 * The V8 flags of a node started by `node/bin/datanet` (a user's start) and by the devnet
 * and tests (`spawnCli`) are one list: a flag in one place only made the two differ in
 * memory and GC cost.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { RUNTIME_FLAGS } from '../../node/devnet/node-process.ts'

test('node/bin/datanet passes RUNTIME_FLAGS, no more, no fewer', () => {
  const script = readFileSync(join(import.meta.dirname, '..', '..', 'node', 'bin', 'datanet'), 'utf8')
  const line = /^flags=\((.*)\)$/m.exec(script)
  assert.ok(line !== null, 'a flags=(…) line in node/bin/datanet')
  assert.equal(line[1]?.trim().split(/\s+/), RUNTIME_FLAGS)
})

test.run()
