import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { spawnCli } from '../../node/devnet/node-process.ts'
import { tempDir } from '../helpers/tmp.ts'
import { waitFor, withDeadline, hook } from '../helpers/wait.ts'
import type { ChildProcess } from 'node:child_process'
import type { DevnetFile } from '../../node/devnet/devnet.ts'
import type { NodeInfo } from '../../node/api/routes/node.ts'

const tmp = tempDir('datanet-devnet-')
const dir = join(tmp.dir, 'net')
let child: ChildProcess | undefined

function alive (pid: number): boolean {
  try { process.kill(pid, 0); return true } catch { return false }
}

async function runDevnet (): Promise<DevnetFile> {
  child = spawnCli(['devnet', '--validators', '2', '--nodes', '1', '--dir', dir, '--json'])
  let stdout = ''
  let stderr = ''
  child.stdout?.on('data', (b: Buffer) => { stdout += b.toString() })
  child.stderr?.on('data', (b: Buffer) => { stderr += b.toString() })
  const exited = new Promise(resolve => child?.once('exit', resolve))
  await withDeadline(Promise.race([
    waitFor(() => { try { return JSON.parse(stdout) as DevnetFile } catch { return undefined } }, { timeoutMs: 90_000, what: 'devnet to print devnet.json' }),
    exited.then(code => { throw new Error(`devnet exited with ${String(code)}: ${stderr}`) })
  ]), 95_000, 'the devnet to come up')
  return JSON.parse(readFileSync(join(dir, 'devnet.json'), 'utf8')) as DevnetFile
}

async function stopDevnet (): Promise<number | null> {
  const c = child as ChildProcess
  const exited = new Promise<number | null>(resolve => c.once('exit', resolve))
  c.kill('SIGTERM')
  return await withDeadline(exited, 30_000, 'the devnet to stop')
}

test.after(hook(async () => {
  if (child !== undefined && child.exitCode === null) {
    child.kill('SIGTERM')
    await withDeadline(new Promise(resolve => child?.once('exit', resolve)), 30_000, 'devnet stop').catch(() => child?.kill('SIGKILL'))
  }
  tmp.remove()
}))

let first: DevnetFile

test('devnet starts validators and nodes that peer with each other and writes devnet.json', async () => {
  first = await runDevnet()
  assert.is(first.chain, null)
  assert.is(first.datanet, null)
  assert.equal(first.nodes.map(n => n.role), ['validator', 'validator', 'node'])
  for (const n of first.nodes) {
    for (const key of ['pid', 'address', 'peerId', 'multiaddrs', 'apiUrl', 'tokenFile', 'dataDir', 'logFile']) {
      assert.ok(key in n, `devnet.json node has ${key}`)
    }
    assert.ok(alive(n.pid))
    assert.ok(existsSync(n.tokenFile) && existsSync(n.logFile))
    const info = await (await fetch(`${n.apiUrl}/v1/node`)).json() as NodeInfo
    assert.is(info.peerId, n.peerId)
    const peers = new Set(info.peers.map(p => p.peerId))
    for (const other of first.nodes.filter(o => o !== n)) assert.ok(peers.has(other.peerId), `${n.peerId} is connected to ${other.peerId}`)
  }
})

test('Ctrl-C (SIGTERM) stops every node: no process survives', async () => {
  const code = await stopDevnet()
  assert.is(code, 0)
  for (const n of first.nodes) assert.not.ok(alive(n.pid), `node ${n.pid} stopped`)
})

test('starting again from the same --dir keeps every node\'s identity', async () => {
  const second = await runDevnet()
  assert.equal(second.nodes.map(n => n.peerId), first.nodes.map(n => n.peerId))
  assert.equal(second.nodes.map(n => n.address), first.nodes.map(n => n.address))
  assert.is(await stopDevnet(), 0)
  for (const n of second.nodes) assert.not.ok(alive(n.pid))
})

test.run()
