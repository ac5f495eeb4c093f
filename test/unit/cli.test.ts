import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { tempDir } from '../helpers/tmp.ts'
import { withDeadline } from '../helpers/wait.ts'

/**
 * The CLI as a user runs it: a child process per command. Each start-up loads the whole
 * node (~1 s), so independent commands run concurrently: every test starts its command
 * when the file loads (or once what it depends on is done) and awaits the result.
 */
const CLI = join(import.meta.dirname, '..', '..', 'node', 'cli', 'main.js')
const tmp = tempDir('datanet-cli-')
const home = join(tmp.dir, 'home')
mkdirSync(home)
const dataDir = join(tmp.dir, 'data')
const emptyDir = join(tmp.dir, 'empty')
mkdirSync(emptyDir)
const passwordFile = join(tmp.dir, 'password')
writeFileSync(passwordFile, 'cli-test-password\n', { mode: 0o600 })
const badConfig = join(tmp.dir, 'bad-config.json')
writeFileSync(badConfig, JSON.stringify({ p2p: { prot: 7400 } }))

/** The child's environment: no DATANET_* from the outside (e.g. a password or a test flag), and a private HOME. */
const childEnv: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('DATANET_')))
childEnv.HOME = home

interface Run { status: number | null, signal: NodeJS.Signals | null, stdout: string, stderr: string }

function cli (args: string[]): Promise<Run> {
  return new Promise(resolve => {
    const child = spawn(process.execPath, [CLI, ...args], { env: childEnv, cwd: tmp.dir, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (s: string) => { stdout += s })
    child.stderr.setEncoding('utf8').on('data', (s: string) => { stderr += s })
    const timer = setTimeout(() => { child.kill('SIGKILL') }, 90_000)
    child.on('close', (status, signal) => {
      clearTimeout(timer)
      resolve({ status, signal, stdout, stderr })
    })
  })
}

async function result (run: Promise<Run>, what: string): Promise<Run> {
  return await withDeadline(run, 40_000, what)
}

const lines = (s: string): string[] => s.split('\n').filter(l => l !== '')

/** stderr is exactly one 'datanet: …' line without a stack trace. */
function assertOneErrorLine (r: Run): string {
  const errLines = lines(r.stderr)
  assert.is(errLines.length, 1, `stderr: ${r.stderr}`)
  const line = errLines[0] as string
  assert.ok(line.startsWith('datanet: '), line)
  assert.not.ok(r.stderr.includes('    at '), 'no stack trace')
  return line
}

// Independent commands start at once.
const help = cli(['--help'])
const unknownOption = cli(['--no-such-option'])
const initNoPassword = cli(['init', '--data-dir', join(tmp.dir, 'no-password')])
const initOk = cli(['init', '--data-dir', dataDir, '--password-file', passwordFile, '--json'])
const startEmpty = cli(['node', 'start', '--data-dir', emptyDir, '--password-file', passwordFile])
const statusUnreachable = cli(['status', '--api', 'http://127.0.0.1:1'])
const programVersion = cli(['--version'])
// a subcommand's --version is the dataset version (on 3476a64 the program's flag took it: 0.1.0, exit 0)
const trainVersion = cli(['model', 'train', '--datanet', 'x', '--version', '1', '--api', 'http://127.0.0.1:1', '--token-file', passwordFile])
// These need the initialised data directory.
const afterInit = <T>(fn: () => Promise<T>): Promise<T> => initOk.then(fn)
const initAgain = afterInit(() => cli(['init', '--data-dir', dataDir, '--password-file', passwordFile]))
const startMissingConfig = afterInit(() => cli(['node', 'start', '--data-dir', dataDir, '--password-file', passwordFile, '--config', join(tmp.dir, 'nonexistent.json')]))
const startBadConfig = afterInit(() => cli(['node', 'start', '--data-dir', dataDir, '--password-file', passwordFile, '--config', badConfig]))
// The devnet preset (loopback, port 0): the daemon may get as far as starting libp2p before it
// asks for the wallet, and must not then collide with a node on the default port 7400.
const startNoPassword = afterInit(() => cli(['node', 'start', '--data-dir', dataDir, '--config', 'devnet']))

test.after(async () => {
  // every child has ended before the directory goes
  await Promise.allSettled([help, programVersion, trainVersion, unknownOption, initNoPassword, initOk, startEmpty, statusUnreachable, initAgain, startMissingConfig, startBadConfig, startNoPassword])
  tmp.remove()
})

test('--help exits 0 and lists the commands', async () => {
  const r = await result(help, '--help')
  assert.is(r.status, 0, r.stderr)
  for (const cmd of ['init', 'node', 'status', 'devnet']) assert.match(r.stdout, new RegExp(`^\\s+${cmd}\\b`, 'm'))
})

test('--version is the program\'s before a subcommand and the subcommand\'s after it', async () => {
  const r = await result(programVersion, '--version')
  assert.is(r.status, 0, r.stderr)
  assert.match(r.stdout, /^\d+\.\d+\.\d+\n$/)
  const t = await result(trainVersion, 'model train --version 1')
  assert.is(t.stdout, '', 'not the program version')
  assert.is(t.status, 1, t.stderr)
  assert.match(assertOneErrorLine(t), /127\.0\.0\.1:1/)
})

test('an unknown option exits 2', async () => {
  const r = await result(unknownOption, 'an unknown option')
  assert.is(r.status, 2)
  assert.ok(r.stderr.includes('--no-such-option'), r.stderr)
  assert.not.ok(r.stderr.includes('    at '))
})

test('init without a password exits 2 with one datanet: line and writes nothing', async () => {
  const r = await result(initNoPassword, 'init without a password')
  assert.is(r.status, 2)
  assertOneErrorLine(r)
  assert.not.ok(existsSync(join(tmp.dir, 'no-password', 'datanet.json')))
})

test('init --password-file exits 0; --json prints the peer id and address', async () => {
  const r = await result(initOk, 'init')
  assert.is(r.status, 0, r.stderr)
  const out = JSON.parse(r.stdout) as { dataDir: string, peerId: string, address: string, created: boolean }
  assert.match(out.peerId, /^12D3KooW/)
  assert.match(out.address, /^0x[0-9a-fA-F]{40}$/)
  assert.is(out.dataDir, dataDir)
  const meta = JSON.parse(readFileSync(join(dataDir, 'datanet.json'), 'utf8')) as { peerId: string, address: string }
  assert.is(meta.peerId, out.peerId)
  assert.is(meta.address, out.address)
})

test('init again on the same directory exits 2', async () => {
  const r = await result(initAgain, 'init again')
  assert.is(r.status, 2)
  assertOneErrorLine(r)
})

test('node start on an uninitialised directory exits 2', async () => {
  const r = await result(startEmpty, 'node start on an empty directory')
  assert.is(r.status, 2)
  const line = assertOneErrorLine(r)
  assert.ok(line.includes(emptyDir), line)
})

test('node start with a config file that does not exist exits 2', async () => {
  const r = await result(startMissingConfig, 'node start with a missing config')
  assert.is(r.status, 2)
  const line = assertOneErrorLine(r)
  assert.ok(line.includes('nonexistent.json'), line)
})

test('node start with an unknown key in the config file exits 2 naming the key', async () => {
  const r = await result(startBadConfig, 'node start with a bad config')
  assert.is(r.status, 2)
  const line = assertOneErrorLine(r)
  assert.ok(line.includes('p2p.prot'), line)
  assert.ok(line.includes(badConfig), line)
})

test('node start without a password exits 2', async () => {
  const r = await result(startNoPassword, 'node start without a password')
  assert.is(r.status, 2)
  assertOneErrorLine(r)
  assert.not.ok(existsSync(join(dataDir, 'node.lock')), 'the lock is released')
  assert.not.ok(existsSync(join(dataDir, 'api.json')), 'no API was started')
})

test('status against an unreachable API exits 1 with one line', async () => {
  const r = await result(statusUnreachable, 'status')
  assert.is(r.status, 1)
  const line = assertOneErrorLine(r)
  assert.ok(line.includes('http://127.0.0.1:1'), line)
})

test.run()
