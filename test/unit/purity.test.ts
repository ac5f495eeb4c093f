import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { checkPurity, PURE_DIRS, type Violation } from '../../scripts/check-purity.ts'
import { tempDir, tempProject } from '../helpers/tmp.ts'

const repoRoot = join(import.meta.dirname, '..', '..')

const project = (files: Record<string, string>): { dir: string, remove: () => void } => tempProject(files, 'datanet-purity-')

const at = (vs: Violation[], line: number): Violation[] => vs.filter(v => v.line === line)

test('reports each forbidden import and global, with file and line', () => {
  const tmp = project({
    'src/consensus/a.ts': [
      "import { x } from 'libp2p'", // 1
      "import fs from 'node:fs'", // 2
      'export function f (): void {', // 3
      '  setTimeout(() => {}, 1)', // 4
      '  process.exit()', // 5
      '}', // 6
      "import { y } from '../storage/db.ts'" // 7
    ].join('\n')
  })
  try {
    const vs = checkPurity(tmp.dir, ['src/consensus'])
    const file = join('src', 'consensus', 'a.ts')
    for (const v of vs) assert.is(v.file, file)
    assert.is(vs.length, 5, JSON.stringify(vs))
    assert.ok(at(vs, 1).some(v => v.what.includes('libp2p')), 'libp2p import on line 1')
    assert.ok(at(vs, 2).some(v => v.what.includes('node:fs')), 'node:fs import on line 2')
    assert.ok(at(vs, 4).some(v => v.what.includes('timer')), 'timer on line 4')
    assert.ok(at(vs, 5).some(v => v.what.includes('process')), 'process on line 5')
    assert.ok(at(vs, 7).some(v => v.what.includes('../storage/db.ts')), 'relative I/O import on line 7')
  } finally {
    tmp.remove()
  }
})

test('reports other forbidden forms: dynamic import, require, clock, randomness, providers, helia, level', () => {
  const tmp = project({
    'src/codec/b.ts': [
      "const net = await import('node:net')", // 1
      "const cp = require('child_process')", // 2
      'const t = Date.now()', // 3
      'const r = Math.random()', // 4
      'const p = new JsonRpcProvider(url)', // 5
      "import { createHelia } from 'helia'", // 6
      "import { ClassicLevel } from 'classic-level'", // 7
      "export { a } from '../../node/cli/x.ts'", // 8
      "import 'fs/promises'", // 9
      "import pino from 'pino'" // 10
    ].join('\n')
  })
  try {
    const vs = checkPurity(tmp.dir, ['src/codec'])
    for (let line = 1; line <= 10; line++) assert.ok(at(vs, line).length >= 1, `line ${line}: ${JSON.stringify(vs)}`)
    assert.is(vs.length, 10, JSON.stringify(vs))
  } finally {
    tmp.remove()
  }
})

test('a clean file reports nothing: pure code, and forbidden words only in comments or strings', () => {
  const tmp = project({
    'src/consensus/clean.ts': [
      "import { encodeCbor } from '../codec/cbor.ts'",
      "import { keccak256 } from 'ethers'",
      "import type { Block } from './types.ts'",
      '// process.exit() and setTimeout(f) are not allowed here',
      '/* Date.now() and Math.random()',
      "   import fs from 'node:fs' */",
      'export function add (a: number, b: number): number { return a + b }',
      "export const note = 'process.exit() is forbidden; setTimeout() too'",
      'export const tpl = `process.env is not read here`',
      'export const obj = { process: { id: 1 } }',
      'export const id = obj.process.id',
      'export const myprocess = { x: 1 }; export const y = myprocess.x',
      'export function quorum (n: number): number { return Math.floor((2 * n) / 3) + 1 }'
    ].join('\n')
  })
  try {
    assert.equal(checkPurity(tmp.dir, ['src/consensus']), [])
  } finally {
    tmp.remove()
  }
})

test('only the given directories are checked, recursively, and missing ones are skipped', () => {
  const tmp = project({
    'src/network/io.ts': "import fs from 'node:fs'\n",
    'src/merkle/deep/inner/x.ts': 'process.exit(1)\n',
    'src/merkle/readme.md': 'process.exit(1)\n'
  })
  try {
    const vs = checkPurity(tmp.dir, ['src/merkle', 'src/does-not-exist'])
    assert.equal(vs.map(v => [v.file, v.line]), [[join('src', 'merkle', 'deep', 'inner', 'x.ts'), 1]])
  } finally {
    tmp.remove()
  }
})

test('comment markers inside strings hide nothing, and a specifier inside a string is not an import', () => {
  const { dir, remove } = tempDir()
  try {
    mkdirSync(join(dir, 'src/consensus'), { recursive: true })
    writeFileSync(join(dir, 'src/consensus/tricky.ts'), [
      "const u = 'http://x'; setTimeout(f, 1)",
      "const g = '/*'; process.exit()",
      'const s = "from \'libp2p\'"'
    ].join('\n'))
    const found = checkPurity(dir, ['src/consensus']).map(v => `${v.line}:${v.what}`)
    assert.equal(found, ['1:uses a timer', '2:uses process'])
  } finally {
    remove()
  }
})

test('transitively: a file a pure one imports is held to the same rules, wherever it lives (named with who imports it)', () => {
  const tmp = project({
    'src/consensus/driver.ts': "import { now } from '../util/clock.ts'\nexport const t = now()\n",
    'src/util/clock.ts': "import { pick } from './pick'\nexport function now (): number { return performance.now() }\n",
    'src/util/pick.ts': 'export function pick (): string { return new Date().toISOString() + randomUUID() }\n',
    'src/util/unused.ts': 'export const x = Date.now()\n'
  })
  try {
    const found = checkPurity(tmp.dir, ['src/consensus']).map(v => `${v.file}:${v.line}:${v.what}`)
    assert.equal(found, [
      `${join('src', 'util', 'clock.ts')}:2:uses the clock (pure because ${join('src', 'consensus', 'driver.ts')} imports it)`,
      `${join('src', 'util', 'pick.ts')}:1:uses the clock (pure because ${join('src', 'util', 'clock.ts')} imports it)`,
      `${join('src', 'util', 'pick.ts')}:1:uses randomness (pure because ${join('src', 'util', 'clock.ts')} imports it)`
    ])
  } finally {
    tmp.remove()
  }
})

test('the repository itself has no purity violations', () => {
  assert.equal(checkPurity(repoRoot), [])
  assert.equal(checkPurity(repoRoot, PURE_DIRS), [])
})

test.run()
