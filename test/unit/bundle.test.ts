/**
 * The bundled node (scripts/build.ts, node/cli/bundle.js): it runs only while no input is
 * newer than it — an edited, deleted or reinstalled input sends every start back to the
 * sources — and the bundle setup builds answers as the sources do.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { BUILD_DIR, freshBundle } from '../../node/cli/bundle.js'

/** A repo with two sources and a build of them made at `builtAt`; the sources are older. */
function fixture (): { root: string, build: string, builtAt: number } {
  const root = mkdtempSync(join(tmpdir(), 'datanet-bundle-'))
  const build = join(root, 'node', 'build')
  mkdirSync(join(root, 'src'), { recursive: true })
  mkdirSync(build, { recursive: true })
  const builtAt = Date.now()
  const before = new Date(builtAt - 60_000)
  for (const f of ['src/a.ts', 'src/b.ts']) {
    writeFileSync(join(root, f), 'export {}')
    utimesSync(join(root, f), before, before)
  }
  writeFileSync(join(build, 'program-X.js'), 'export {}')
  writeFileSync(join(build, 'manifest.json'), JSON.stringify({ builtAt, root: '../..', entries: { program: 'program-X.js' }, outputs: ['program-X.js'], inputs: ['src/a.ts', 'src/b.ts'] }))
  return { root, build, builtAt }
}

test('a bundle no input is newer than is used', () => {
  const { root, build } = fixture()
  try {
    assert.equal(freshBundle(build), { program: pathToFileURL(join(build, 'program-X.js')).href })
  } finally { rmSync(root, { recursive: true, force: true }) }
})

test('an input edited after the build sends the start to the sources', () => {
  const { root, build, builtAt } = fixture()
  try {
    const after = new Date(builtAt + 1_000)
    utimesSync(join(root, 'src/b.ts'), after, after)
    assert.is(freshBundle(build), undefined)
  } finally { rmSync(root, { recursive: true, force: true }) }
})

test('an input deleted, the entry missing, or a torn manifest: the sources', () => {
  for (const breakIt of [
    (f: ReturnType<typeof fixture>) => { unlinkSync(join(f.root, 'src/a.ts')) },
    (f: ReturnType<typeof fixture>) => { unlinkSync(join(f.build, 'program-X.js')) },
    (f: ReturnType<typeof fixture>) => { writeFileSync(join(f.build, 'manifest.json'), '{"builtAt": 1, "entr') },
    (f: ReturnType<typeof fixture>) => { writeFileSync(join(f.build, 'manifest.json'), '{"builtAt": "soon", "entries": {"program": "program-X.js"}, "inputs": []}') },
    (f: ReturnType<typeof fixture>) => { unlinkSync(join(f.build, 'manifest.json')) }
  ]) {
    const f = fixture()
    try {
      assert.ok(freshBundle(f.build) !== undefined)
      breakIt(f)
      assert.is(freshBundle(f.build), undefined)
    } finally { rmSync(f.root, { recursive: true, force: true }) }
  }
})

test('DATANET_BUNDLE=0 runs the sources; the build script\'s own check ignores it', () => {
  const { root, build } = fixture()
  const saved = process.env.DATANET_BUNDLE
  try {
    process.env.DATANET_BUNDLE = '0'
    assert.is(freshBundle(build), undefined)
    assert.ok(freshBundle(build, { honourEnv: false }) !== undefined)
  } finally {
    if (saved === undefined) delete process.env.DATANET_BUNDLE
    else process.env.DATANET_BUNDLE = saved
    rmSync(root, { recursive: true, force: true })
  }
})

/** Prints the CLI entry each start resolves (a resolve hook), so a test knows which one ran. */
const SHOW_ENTRY = 'data:text/javascript,import { registerHooks } from "node:module"; registerHooks({ resolve (s, c, n) { const r = n(s, c); if (/\\/node\\/(build|cli)\\/program/.test(r.url)) process.stderr.write("entry " + r.url + "\\n"); return r } })'

test('the bundle setup built is fresh, is what starts, and answers as the sources do', () => {
  assert.ok(freshBundle(BUILD_DIR, { honourEnv: false }) !== undefined, 'scripts/setup.sh builds node/build/ before the tests')
  const main = join(import.meta.dirname, '..', '..', 'node', 'cli', 'main.js')
  const run = (bundle: '0' | '1', args: string[]): { out: string, entry: string } => {
    const r = spawnSync(process.execPath, ['--import', SHOW_ENTRY, main, ...args], { env: { ...process.env, DATANET_BUNDLE: bundle }, encoding: 'utf8' })
    return { out: r.stdout, entry: /entry (\S+)/.exec(r.stderr)?.[1] ?? r.stderr }
  }
  for (const args of [['--help'], ['--version'], ['node', 'start', '--help'], ['datanet', 'create', '--help']]) {
    const bundled = run('1', args)
    const sources = run('0', args)
    assert.match(bundled.entry, /\/node\/build\/program-\w+\.js$/)
    assert.match(sources.entry, /\/node\/cli\/program\.ts$/)
    assert.ok(bundled.out.length > 0)
    assert.is(bundled.out, sources.out, args.join(' '))
  }
})

test.run()
