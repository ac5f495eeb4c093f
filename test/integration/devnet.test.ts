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
  // the chain: anvil from npm, the registry deployed, the devnet's datanet registered
  assert.ok(first.chain !== null)
  assert.is(first.chain.chainId, 31337)
  assert.match(first.chain.registry, /^0x[0-9a-fA-F]{40}$/)
  assert.ok(alive(first.chain.pid as number), 'anvil runs')
  assert.type(first.datanet, 'string')
  const validators = await (await fetch(`${first.nodes[0]?.apiUrl}/v1/datanets/${first.datanet}/validators`)).json() as { source: string, validators: Array<{ address: string, status: string }> }
  assert.is(validators.source, 'chain')
  assert.equal(validators.validators.map(v => v.address).sort(), first.nodes.filter(n => n.role === 'validator').map(n => n.address).sort())
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
  assert.not.ok(alive(first.chain?.pid as number), 'anvil stopped')
})

test('starting again from the same --dir keeps every node\'s identity', async () => {
  const second = await runDevnet()
  assert.equal(second.nodes.map(n => n.peerId), first.nodes.map(n => n.peerId))
  assert.equal(second.nodes.map(n => n.address), first.nodes.map(n => n.address))
  assert.is(second.chain?.registry, first.chain?.registry, 'the chain came back with its state')
  assert.is(second.datanet, first.datanet)
  assert.is(await stopDevnet(), 0)
  for (const n of second.nodes) assert.not.ok(alive(n.pid))
  assert.not.ok(alive(second.chain?.pid as number))
})

test.run()
