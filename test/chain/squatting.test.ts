/**
 * Datanet id squatting (issue 12 item 4), on a real anvil with a real daemon. On 49e59c6 an
 * account registered a manifest's id first with itself as the sole genesis validator, and the
 * node adopted it; on c5ba816 the node ignored such a registration, but the id stayed taken
 * on chain, so the datanet could never anchor. Now `createDatanet` takes the manifest's bytes,
 * keys the datanet by their sha2-256 and reads the genesis set from them: a squatter's set can
 * only register under another id, and whoever registers the manifest's id registers the
 * manifest (and pays its validators' stakes).
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Contract, Wallet, parseEther } from 'ethers'
import { encodeCbor } from '../../src/codec/cbor.ts'
import { sha256, toHex } from '../../src/codec/hash.ts'
import { datanetDigest, encodeManifest, parseManifest, type Manifest } from '../../src/datanet/manifest.ts'
import { registryArtifact, revertName } from '../../src/chain/registry-client.ts'
import { DEFAULT_REGISTRY_PARAMS, deployRegistry, fundAccounts, localSigner, registerDatanet, registryParams } from '../../node/devnet/chain-setup.ts'
import { startAnvil, type Anvil } from '../../node/devnet/anvil.ts'
import { TestCluster, type TestNode } from '../helpers/cluster.ts'
import { hook, waitFor } from '../helpers/wait.ts'

const cluster = new TestCluster()
let anvil: Anvil | undefined
let registry = ''
let datanetId = ''
let validator: TestNode
let manifest: Manifest
const squatter = Wallet.createRandom()

interface ValidatorsJson {
  source: string
  validators: Array<{ address: string }>
  chain: { registered: boolean, registration: string, problem: string | null } | null
}

async function api<T> (node: TestNode, path: string): Promise<{ status: number, body: T }> {
  const res = await fetch(`${node.daemon.apiUrl}${path}`, { signal: AbortSignal.timeout(30_000) })
  return { status: res.status, body: await res.json() as T }
}

test.before(hook(async () => {
  anvil = await startAnvil()
  const { provider, signer } = localSigner(anvil.url, anvil.chainId)
  try {
    registry = (await deployRegistry(signer)).address
    const nodes = await cluster.create(1, ['--chain-rpc', anvil.url, '--registry', registry])
    validator = nodes[0] as TestNode
    manifest = parseManifest({
      name: 'squatted', license: 'CC0-1.0',
      recordSchema: { type: 'object', required: ['text'] },
      consensus: { versionIntervalMs: 500, proposeTimeoutMs: 1000, prevoteTimeoutMs: 500, precommitTimeoutMs: 500, timeoutDeltaMs: 200 },
      validators: [{ address: validator.address, stake: parseEther('1').toString() }]
    })
    writeFileSync(join(cluster.root.dir, 'manifest.json'), JSON.stringify(manifest))
    datanetId = (await encodeManifest(manifest)).id
    await fundAccounts(signer, [squatter.address, validator.address], parseEther('10'))
    await cluster.startAll(cluster.nodes, 90_000)
    const r = await fetch(`${validator.daemon.apiUrl}/v1/datanets`, { method: 'POST', headers: { authorization: `Bearer ${cluster.token(validator)}`, 'content-type': 'application/json' }, body: JSON.stringify(manifest) })
    assert.ok(r.status === 201 || r.status === 200, await r.text())
  } finally {
    provider.destroy()
  }
}))

test.after(hook(async () => {
  await cluster.teardown()
  await anvil?.stop()
}))

async function revertOf (p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p
    return 'no revert'
  } catch (err) {
    return revertName(err)
  }
}

test('a squatter cannot take the manifest\'s id: its own set registers under another id, a tampered manifest or interval is refused', async () => {
  assert.ok(anvil !== undefined)
  const { provider } = localSigner(anvil.url, anvil.chainId)
  try {
    const registryAs = new Contract(registry, registryArtifact().abi, squatter.connect(provider))
    const params = registryParams(DEFAULT_REGISTRY_PARAMS, manifest.anchorInterval)
    // the squatter's set in the manifest's clothes: a different manifest, so a different id
    const squatted = parseManifest({ ...manifest, validators: [{ address: squatter.address, stake: parseEther('1').toString() }] })
    const bytes = encodeCbor(squatted)
    await (await registryAs.getFunction('createDatanet').send(bytes, params, { value: parseEther('1') })).wait()
    assert.is.not(toHex(sha256(bytes)), datanetDigest(datanetId))
    assert.is(await revertOf(registryAs.getFunction('validatorsOf').staticCall(datanetDigest(datanetId))), 'UnknownDatanet', 'the manifest\'s id is still free')
    // the real manifest with a wrong anchor interval, or too little value, is refused
    const real = encodeCbor(manifest)
    assert.is(await revertOf(registryAs.getFunction('createDatanet').staticCall(real, { ...params, anchorInterval: 2 }, { value: parseEther('1') })), 'InvalidParams')
    assert.is(await revertOf(registryAs.getFunction('createDatanet').staticCall(real, params, { value: 1n })), 'WrongValue')
    // bytes that are not a manifest
    assert.is(await revertOf(registryAs.getFunction('createDatanet').staticCall(real.subarray(0, real.length - 1), params, { value: parseEther('1') })), 'MalformedManifest')
  } finally {
    provider.destroy()
  }
})

test('whoever registers the manifest\'s id registers the manifest: the node follows it and anchors', async () => {
  assert.ok(anvil !== undefined)
  const { provider } = localSigner(anvil.url, anvil.chainId)
  try {
    // the squatter pays the manifest's validator's stake: a gift, not a takeover
    await registerDatanet(squatter.connect(provider), registry, datanetId, manifest)
  } finally {
    provider.destroy()
  }
  const { body } = await waitFor(async () => {
    const r = await api<ValidatorsJson>(validator, `/v1/datanets/${datanetId}/validators`)
    return r.body.chain?.registered === true ? r : undefined
  }, { timeoutMs: 30_000, what: 'the node to see the registration' })
  assert.equal(body.validators.map(v => v.address.toLowerCase()), [validator.address.toLowerCase()], 'the manifest\'s set')
  assert.is(body.chain?.registration, 'matches')
  assert.is(body.chain?.problem, null)
  const res = await fetch(`${validator.daemon.apiUrl}/v1/datanets/${datanetId}/contributions?format=jsonl`, {
    method: 'POST', headers: { authorization: `Bearer ${cluster.token(validator)}`, 'content-type': 'application/x-ndjson' }, body: '{"text":"not the squatter\'s"}\n'
  })
  assert.is(res.status, 201, await res.text())
  const v1 = await waitFor(async () => {
    const r = await api<{ height: number, anchor: unknown }>(validator, `/v1/datanets/${datanetId}/versions/1`)
    return r.status === 200 && r.body.anchor !== null ? r.body : undefined
  }, { timeoutMs: 90_000, what: 'version 1 anchored' })
  assert.ok(v1.anchor !== null)
})

test.run()
