/**
 * Fault drills on the local network (issue 15): a validator killed with `kill -9` is
 * reported and the devnet goes on; `datanet devnet status|start|kill|stop NAME` act on one
 * node of the running devnet; the restarted validator catches up; and whatever stops the
 * devnet's parent stops everything the devnet started.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { CLI_MAIN, RUNTIME_FLAGS, spawnCli } from '../../node/devnet/node-process.ts'
import { runCli } from '../helpers/cli.ts'
import { tempDir } from '../helpers/tmp.ts'
import { hook, waitFor, withDeadline } from '../helpers/wait.ts'
import type { DevnetFile } from '../../node/devnet/devnet.ts'

const tmp = tempDir('datanet-drills-')
const children: ChildProcess[] = []
/** Processes a failed test may leave behind (an orphaned devnet's nodes). */
const leftovers: number[] = []

function alive (pid: number | null | undefined): boolean {
  if (pid === null || pid === undefined) return false
  try { process.kill(pid, 0); return true } catch { return false }
}

interface Running { child: ChildProcess, file: DevnetFile, stderr: () => string }

async function startDevnet (dir: string, args: string[]): Promise<Running> {
  const child = spawnCli(['devnet', '--dir', dir, '--json', ...args])
  children.push(child)
  let stdout = ''
  let stderr = ''
  child.stdout?.on('data', (b: Buffer) => { stdout += b.toString() })
  child.stderr?.on('data', (b: Buffer) => { stderr += b.toString() })
  const exited = new Promise(resolve => child.once('exit', resolve))
  await withDeadline(Promise.race([
    waitFor(() => { try { return JSON.parse(stdout) as DevnetFile } catch { return undefined } }, { timeoutMs: 120_000, what: 'devnet.json on stdout' }),
    exited.then(code => { throw new Error(`devnet exited with ${String(code)}: ${stderr}`) })
  ]), 125_000, 'the devnet to come up')
  return { child, file: JSON.parse(readFileSync(join(dir, 'devnet.json'), 'utf8')) as DevnetFile, stderr: () => stderr }
}

interface StatusRow { name: string, role: string, state: 'up' | 'down', pid: number | null, height: number | null }

async function status (dir: string): Promise<StatusRow[]> {
  const r = await runCli(['devnet', 'status', '--dir', dir, '--json'])
  assert.is(r.code, 0, r.stderr)
  return (JSON.parse(r.stdout) as { nodes: StatusRow[] }).nodes
}

async function heightOf (apiUrl: string): Promise<number> {
  const info = await (await fetch(`${apiUrl}/v1/node`, { signal: AbortSignal.timeout(5000) })).json() as { height: number | null }
  return info.height ?? 0
}

async function contribute (file: DevnetFile, node: number, text: string): Promise<string> {
  const n = file.nodes[node] as DevnetFile['nodes'][number]
  const res = await fetch(`${n.apiUrl}/v1/datanets/${file.datanet}/contributions?format=text`, {
    method: 'POST',
    headers: { authorization: `Bearer ${readFileSync(n.tokenFile, 'utf8').trim()}`, 'content-type': 'text/plain' },
    body: text
  })
  assert.is(res.status, 201, await res.clone().text())
  return (await res.json() as { cid: string }).cid
}

async function finalOn (apiUrl: string, datanet: string, cid: string, timeoutMs: number): Promise<number> {
  return await waitFor(async () => {
    const res = await fetch(`${apiUrl}/v1/datanets/${datanet}/contributions/${cid}`, { signal: AbortSignal.timeout(5000) }).catch(() => undefined)
    if (res === undefined || !res.ok) return undefined
    const v = await res.json() as { version: number | null }
    return v.version ?? undefined
  }, { timeoutMs, what: `contribution ${cid} in a final version at ${apiUrl}` })
}

test.after(hook(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM')
  await Promise.all(children.map(async c => await withDeadline(new Promise(resolve => { if (c.exitCode !== null || c.signalCode !== null) resolve(null); else c.once('exit', resolve) }), 30_000, 'devnet stop').catch(() => c.kill('SIGKILL'))))
  for (const pid of leftovers) if (alive(pid)) process.kill(pid, 'SIGKILL')
  tmp.remove()
}))

test('kill -9 of a validator: the devnet reports it and goes on; `devnet start` brings it back and it catches up', async () => {
  const dir = join(tmp.dir, 'drill')
  const net = await startDevnet(dir, ['--validators', '4', '--nodes', '0'])
  const victim = net.file.nodes.find(n => n.name === 'validator-1')
  assert.ok(victim !== undefined && net.file.datanet !== null)
  const datanet = net.file.datanet
  process.kill(victim.pid, 'SIGKILL')
  await waitFor(() => /validator-1 exited/.test(net.stderr()), { timeoutMs: 20_000, what: 'the devnet to report validator-1\'s exit' })
  // three of four validators still decide
  const cid = await contribute(net.file, 0, 'drill record while validator-1 is down\n')
  const height = await finalOn(net.file.nodes[0]?.apiUrl as string, datanet, cid, 60_000)
  assert.is(net.child.exitCode, null, `the devnet keeps running: ${net.stderr()}`)
  const down = await status(dir)
  assert.equal(down.map(r => [r.name, r.state]), [['validator-0', 'up'], ['validator-1', 'down'], ['validator-2', 'up'], ['validator-3', 'up']])
  assert.ok(down.every(r => r.state === 'down' ? r.height === null : typeof r.height === 'number'))

  const started = await runCli(['devnet', 'start', 'validator-1', '--dir', dir])
  assert.is(started.code, 0, started.stderr)
  const up = await status(dir)
  assert.is(up.find(r => r.name === 'validator-1')?.state, 'up')
  const newPid = up.find(r => r.name === 'validator-1')?.pid
  assert.ok(alive(newPid) && newPid !== victim.pid)
  // devnet.json follows the restarted process
  assert.is((JSON.parse(readFileSync(join(dir, 'devnet.json'), 'utf8')) as DevnetFile).nodes.find(n => n.name === 'validator-1')?.pid, newPid)
  await waitFor(async () => (await heightOf(victim.apiUrl)) >= height, { timeoutMs: 60_000, what: `validator-1 to catch up to height ${height}` })

  // kill and stop through the devnet, one node at a time
  const killed = await runCli(['devnet', 'kill', 'validator-2', '--dir', dir])
  assert.is(killed.code, 0, killed.stderr)
  await waitFor(async () => (await status(dir)).find(r => r.name === 'validator-2')?.state === 'down', { timeoutMs: 10_000, what: 'validator-2 down' })
  const stopped = await runCli(['devnet', 'stop', 'validator-3', '--dir', dir])
  assert.is(stopped.code, 0, stopped.stderr)
  assert.is((await status(dir)).find(r => r.name === 'validator-3')?.state, 'down')
  assert.is(net.child.exitCode, null, 'the devnet still runs with two nodes down')
  const unknown = await runCli(['devnet', 'kill', 'validator-9', '--dir', dir])
  assert.is(unknown.code, 2)
  assert.match(unknown.stderr, /validator-9/)

  // SIGTERM stops everything it started
  const pids = [...(await status(dir)).map(r => r.pid), net.file.chain?.pid]
  const exited = new Promise(resolve => net.child.once('exit', resolve))
  net.child.kill('SIGTERM')
  await withDeadline(exited, 40_000, 'the devnet to stop')
  for (const pid of pids) assert.not.ok(alive(pid), `process ${String(pid)} stopped`)
  const none = await runCli(['devnet', 'kill', 'validator-0', '--dir', dir])
  assert.is(none.code, 2)
  assert.match(none.stderr, /no devnet is running/)
})

test('the devnet\'s parent killed (a process manager, `npm run devnet` stopped): every node and anvil stop', async () => {
  const dir = join(tmp.dir, 'orphan')
  // a parent shell that does not exec, as npm's `sh -c` does: killing it orphans the devnet
  const shell = spawn('sh', ['-c', `"${process.execPath}" ${[...process.execArgv, ...RUNTIME_FLAGS].join(' ')} "${CLI_MAIN}" devnet --dir "${dir}" --validators 1 --nodes 0 --json > "${join(tmp.dir, 'orphan.out')}" 2>&1; echo done`], { stdio: 'ignore' })
  children.push(shell)
  const file = await waitFor(() => { try { return JSON.parse(readFileSync(join(dir, 'devnet.json'), 'utf8')) as DevnetFile } catch { return undefined } }, { timeoutMs: 120_000, what: 'devnet.json' })
  const pids = [...file.nodes.map(n => n.pid), file.chain?.pid]
  assert.ok(pids.every(alive))
  leftovers.push(...pids.filter((p): p is number => p !== undefined && p !== null))
  shell.kill('SIGKILL')
  await waitFor(() => pids.every(p => !alive(p)), { timeoutMs: 40_000, what: `every process of the orphaned devnet to stop (${pids.join(', ')})` })
})

test('contribute --wait returns once the contribution is in a final version, and --json names it', async () => {
  const dir = join(tmp.dir, 'wait')
  const net = await startDevnet(dir, ['--validators', '1', '--nodes', '1'])
  // through the plain node: final there means the validator decided and the version reached it
  const n = net.file.nodes[1] as DevnetFile['nodes'][number]
  const env = { DATANET_API: n.apiUrl, DATANET_TOKEN_FILE: n.tokenFile }
  const passage = 'The quick brown fox drills across the devnet at dawn, every single morning, while the validators count the votes and the anchors land on chain one block after another'
  const first = join(tmp.dir, 'first.txt')
  writeFileSync(first, `${passage}.\n`)
  const ok = await runCli(['contribute', '--datanet', net.file.datanet as string, first, '--wait', '--json', '--timeout', '60'], { env })
  assert.is(ok.code, 0, ok.stderr)
  const result = JSON.parse(ok.stdout) as { cid: string, status: string, version: number | null }
  assert.is(result.status, 'accepted')
  assert.type(result.version, 'number')
  // the version it names is final and holds it, as soon as the command returned
  const v = await (await fetch(`${n.apiUrl}/v1/datanets/${net.file.datanet}/versions/${result.version}`)).json() as { contributions: string[] }
  assert.ok(v.contributions.includes(result.cid))

  net.child.kill('SIGTERM')
  await withDeadline(new Promise(resolve => net.child.once('exit', resolve)), 40_000, 'the devnet to stop')
})

test.run()
