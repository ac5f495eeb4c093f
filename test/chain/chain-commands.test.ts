/**
 * The chain commands (issue 16 item 1), run as a user would, against anvil: deploy the
 * registry, register a datanet from its manifest, fund it; with one clear line and exit
 * code 1 when the chain refuses, and 2 for bad input.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Contract, JsonRpcProvider, Wallet, parseEther } from 'ethers'
import { registryArtifact } from '../../src/chain/registry-client.ts'
import { datanetDigest, encodeManifest, parseManifest } from '../../src/datanet/manifest.ts'
import { initDataDir } from '../../src/storage/data-dir.ts'
import { ANVIL_DEPLOYER_KEY } from '../../node/devnet/chain-setup.ts'
import { runCli } from '../helpers/cli.ts'
import { tempDir } from '../helpers/tmp.ts'
import { hook } from '../helpers/wait.ts'
import { startAnvil, type Anvil } from './anvil.ts'

const tmp = tempDir('datanet-chain-cli-')
const env = { DATANET_PASSWORD: 'chain-commands' }
let anvil: Anvil | undefined
let provider: JsonRpcProvider
let rpc = ''
let registry = ''
const funded = join(tmp.dir, 'funded')
const broke = join(tmp.dir, 'broke')
const validators = [Wallet.createRandom(), Wallet.createRandom()]
const manifest = parseManifest({
  name: 'chain commands', license: 'CC0-1.0', recordSchema: { type: 'object' }, anchorInterval: 2,
  validators: validators.map((w, i) => ({ address: w.address, stake: parseEther(String(1 + i)).toString() }))
})
const manifestFile = join(tmp.dir, 'manifest.json')
let datanetId = ''

test.before(hook(async () => {
  anvil = await startAnvil()
  rpc = anvil.url
  provider = new JsonRpcProvider(rpc, undefined, { polling: false })
  await initDataDir(funded, { password: env.DATANET_PASSWORD, ethPrivateKey: ANVIL_DEPLOYER_KEY })
  await initDataDir(broke, { password: env.DATANET_PASSWORD })
  writeFileSync(manifestFile, JSON.stringify(manifest))
  datanetId = (await encodeManifest(manifest)).id
}))

test.after(hook(async () => {
  provider?.destroy()
  await anvil?.stop()
  tmp.remove()
}))

async function cli (args: string[], dataDir = funded): Promise<{ code: number | null, json: Record<string, unknown>, stderr: string }> {
  const r = await runCli([...args, '--data-dir', dataDir, '--json'], { env })
  let json: Record<string, unknown> = {}
  try { json = JSON.parse(r.stdout) as Record<string, unknown> } catch {}
  return { code: r.code, json, stderr: r.stderr }
}

test('chain deploy puts the artifact\'s code on chain and prints the config that points a node at it', async () => {
  const configFile = join(tmp.dir, 'chain.json')
  const r = await cli(['chain', 'deploy', '--rpc', rpc, '--write-config', configFile])
  assert.is(r.code, 0, r.stderr)
  registry = String(r.json.address)
  assert.match(registry, /^0x[0-9a-fA-F]{40}$/)
  assert.is((await provider.getCode(registry)).toLowerCase(), registryArtifact().deployedBytecode.toLowerCase())
  assert.equal(r.json.config, { chain: { rpcUrl: rpc.replace(/\/$/, ''), chainId: anvil?.chainId, registry, startBlock: r.json.block } })
})

test('datanet register reads the manifest, pays the genesis stakes, and says so once', async () => {
  const before = await provider.getBalance(registry)
  const r = await cli(['datanet', 'register', '--manifest', manifestFile, '--rpc', rpc, '--registry', registry, '--unbonding-delay', '60'])
  assert.is(r.code, 0, r.stderr)
  assert.is(r.json.datanet, datanetId)
  assert.is(r.json.already, false)
  assert.is(await provider.getBalance(registry) - before, parseEther('3'), 'the stakes of the manifest, paid in')
  const contract = new Contract(registry, registryArtifact().abi, provider)
  const [addrs, stakes] = await contract.getFunction('validatorsOf').staticCall(datanetDigest(datanetId)) as [string[], bigint[]]
  assert.equal([...addrs], validators.map(w => w.address))
  assert.equal([...stakes], [parseEther('1'), parseEther('2')])
  const again = await cli(['datanet', 'register', '--manifest', manifestFile, '--rpc', rpc, '--registry', registry])
  assert.is(again.code, 0, again.stderr)
  assert.is(again.json.already, true)
})

test('datanet fund adds to the pool; an unknown datanet is refused by name', async () => {
  const before = await provider.getBalance(registry)
  const r = await cli(['datanet', 'fund', '--datanet', datanetId, '--amount', '2.5eth', '--rpc', rpc, '--registry', registry])
  assert.is(r.code, 0, r.stderr)
  assert.is(await provider.getBalance(registry) - before, parseEther('2.5'))
  const other = (await encodeManifest(parseManifest({ ...manifest, nonce: 'never registered' }))).id
  const refused = await cli(['datanet', 'fund', '--datanet', other, '--amount', '1', '--rpc', rpc, '--registry', registry])
  assert.is(refused.code, 1)
  assert.match(refused.stderr, /^datanet: fund reverted: UnknownDatanet\(0x[0-9a-f]{64}\)\n$/, refused.stderr)
})

test('bad input and an unreachable chain: one line each, exit 2 and 1', async () => {
  const usage = await cli(['datanet', 'fund', '--datanet', datanetId, '--amount', 'lots', '--rpc', rpc, '--registry', registry])
  assert.is(usage.code, 2)
  assert.is(usage.stderr.trim().split('\n').length, 1)
  assert.match(usage.stderr, /--amount/)
  const noMinStake = await cli(['datanet', 'register', '--manifest', manifestFile, '--min-stake', '5eth', '--rpc', rpc, '--registry', registry])
  assert.is(noMinStake.code, 2)
  assert.match(noMinStake.stderr, /at most the smallest genesis stake/)
  const down = await cli(['chain', 'deploy', '--rpc', 'http://127.0.0.1:9'])
  assert.is(down.code, 1)
  assert.match(down.stderr, /^datanet: cannot reach the chain RPC at http:\/\/127\.0\.0\.1:9\/(: [^\n]*)?\n$/, down.stderr)
  const poor = await cli(['datanet', 'fund', '--datanet', datanetId, '--amount', '1', '--rpc', rpc, '--registry', registry], broke)
  assert.is(poor.code, 1)
  assert.is(poor.stderr.trim().split('\n').length, 1, poor.stderr)
  assert.match(poor.stderr, /^datanet: 0x[0-9a-fA-F]{40} cannot pay for fund \(1000000000000000000 wei\) and its gas\n$/, poor.stderr)
})

test.run()
