/**
 * The README's first experience, end to end (issue 7): `datanet devnet --demo` as a child
 * process. Waits (bounded) for its summary, checks the summary against the nodes' APIs
 * and the chain, stops it and checks that none of its processes survives.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Contract, Interface } from 'ethers'
import { registryArtifact } from '../../src/chain/registry-client.ts'
import { datanetDigest } from '../../src/datanet/manifest.ts'
import { localSigner } from '../../node/devnet/chain-setup.ts'
import { spawnCli } from '../../node/devnet/node-process.ts'
import { tempDir } from '../helpers/tmp.ts'
import { hook, waitFor, withDeadline } from '../helpers/wait.ts'
import type { ChildProcess } from 'node:child_process'
import type { DemoSummary } from '../../node/devnet/demo.ts'
import type { DevnetFile } from '../../node/devnet/devnet.ts'

const tmp = tempDir('datanet-demo-')
const dir = join(tmp.dir, 'net')
let child: ChildProcess | undefined

function alive (pid: number | null | undefined): boolean {
  if (pid == null) return false
  try { process.kill(pid, 0); return true } catch { return false }
}

test.after(hook(async () => {
  if (child !== undefined && child.exitCode === null) {
    child.kill('SIGTERM')
    await withDeadline(new Promise(resolve => child?.once('exit', resolve)), 60_000, 'devnet stop').catch(() => child?.kill('SIGKILL'))
  }
  if (process.env.KEEP_TEST_DIRS === '1') process.stderr.write(`kept ${tmp.dir}\n`)
  else tmp.remove()
}))

/** The warnings and errors the nodes logged, for reading a failure from CI's output. */
function nodeWarnings (): string {
  if (!existsSync(dir)) return ''
  return readdirSync(dir).filter(n => existsSync(join(dir, n, 'node.log'))).map(n => {
    const lines = readFileSync(join(dir, n, 'node.log'), 'utf8').split('\n').filter(l => /"level":(40|50|60)/.test(l))
    return `--- ${n}: ${lines.length} warnings/errors (last 15) ---\n${lines.slice(-15).join('\n')}`
  }).join('\n')
}

let summary: DemoSummary
let devnet: DevnetFile

test('devnet --demo tells the whole story and ends with a summary', async () => {
  child = spawnCli(['devnet', '--validators', '4', '--nodes', '1', '--dir', dir, '--demo', '--json'])
  let stdout = ''
  let stderr = ''
  child.stdout?.on('data', (b: Buffer) => { stdout += b.toString() })
  child.stderr?.on('data', (b: Buffer) => { stderr += b.toString() })
  const exited = new Promise(resolve => child?.once('exit', resolve))
  // the demo bounds each of its own waits and names the step that timed out; this bound
  // only catches a demo that hangs
  try {
    summary = await withDeadline(Promise.race([
      waitFor(() => {
        const line = stdout.split('\n').find(l => l.startsWith('{"summary"'))
        return line === undefined ? undefined : (JSON.parse(line) as { summary: DemoSummary }).summary
      }, { timeoutMs: 600_000, what: 'the demo\'s summary', intervalMs: 500 }),
      exited.then(code => { throw new Error(`devnet exited with ${String(code)}`) })
    ]), 610_000, 'the demo')
  } catch (err) {
    // what the demo said, so a failure on CI can be read from its log
    throw new Error(`${(err as Error).message}\n--- devnet stderr (tail) ---\n${stderr.slice(-6000)}\n${nodeWarnings()}`)
  }
  devnet = JSON.parse(readFileSync(join(dir, 'devnet.json'), 'utf8')) as DevnetFile
  assert.is(summary.datanet, devnet.datanet)
  assert.is(summary.records, 30)
  assert.is(summary.inferences.length, 3)
  assert.ok(summary.anchors.length >= 2)
  for (const step of ['1. Contributors', '2. Validators', '3. A model', '4. Inferences', '5. Validators agree', '6. A contributor claims']) {
    assert.ok(stderr.includes(step), `narrates "${step}"`)
  }
})

test('the summary matches the nodes and the chain', async () => {
  const chain = devnet.chain
  assert.ok(chain !== null)
  // every node agrees on the latest version's roots
  const latest = await Promise.all(devnet.nodes.map(async n => {
    const list = await (await fetch(`${n.apiUrl}/v1/datanets/${devnet.datanet}/versions`)).json() as Array<{ height: number, datasetRoot: string, attributionRoot: string }>
    return list[0]
  }))
  const top = Math.min(...latest.map(v => v?.height ?? 0))
  const roots = await Promise.all(devnet.nodes.map(async n => (await (await fetch(`${n.apiUrl}/v1/datanets/${devnet.datanet}/versions/${top}`)).json() as { datasetRoot: string, attributionRoot: string })))
  assert.is(new Set(roots.map(r => `${r.datasetRoot}/${r.attributionRoot}`)).size, 1, 'all nodes agree on the roots')

  const { provider } = localSigner(chain.rpcUrl, chain.chainId)
  try {
    const iface = new Interface(registryArtifact().abi)
    // the anchors exist: each summary tx carries the VersionCommitted of its height
    for (const a of summary.anchors) {
      const receipt = await provider.getTransactionReceipt(a.txHash)
      const committed = receipt?.logs.map(l => iface.parseLog(l)).find(l => l?.name === 'VersionCommitted')
      assert.is(Number(committed?.args.getValue('height')), a.height)
    }
    // the claim arrived: paid to the claimer, and the contract records it
    const receipt = await provider.getTransactionReceipt(summary.claim.txHash)
    assert.is(receipt?.status, 1)
    const claimed = receipt?.logs.map(l => iface.parseLog(l)).find(l => l?.name === 'Claimed')
    assert.is(String(claimed?.args.getValue('account')).toLowerCase(), summary.claim.address.toLowerCase())
    assert.is(String(claimed?.args.getValue('amount')), summary.claim.amount)
    const contract = new Contract(chain.registry, registryArtifact().abi, provider)
    assert.ok(BigInt(await contract.getFunction('claimed').staticCall(datanetDigest(devnet.datanet as string), summary.claim.address)) >= BigInt(summary.claim.amount))
  } finally {
    provider.destroy()
  }
})

test('SIGTERM stops the devnet: no node and no anvil survives', async () => {
  const c = child as ChildProcess
  const exited = new Promise<number | null>(resolve => c.once('exit', resolve))
  c.kill('SIGTERM')
  assert.is(await withDeadline(exited, 60_000, 'the devnet to stop'), 0)
  for (const n of devnet.nodes) assert.not.ok(alive(n.pid), `node ${n.pid} stopped`)
  assert.not.ok(alive(devnet.chain?.pid), 'anvil stopped')
})

test.run()
