/**
 * Datanet id squatting (issue 12 item 4), on a real anvil with a real daemon: an account
 * registers a manifest's id first, with itself as the sole genesis validator. On main the
 * node adopted the chain's genesis set over the manifest's: the squatter decided the
 * datanet's versions and the manifest's validator was shut out. Now the node refuses the
 * registration: it says so in the API and keeps the manifest's set, without anchoring or
 * escrow on that registration.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Wallet, parseEther } from 'ethers'
import { encodeManifest, parseManifest } from '../../src/datanet/manifest.ts'
import { deployRegistry, fundAccounts, localSigner, registerDatanet } from '../../node/devnet/chain-setup.ts'
import { startAnvil, type Anvil } from '../../node/devnet/anvil.ts'
import { TestCluster, type TestNode } from '../helpers/cluster.ts'
import { hook, waitFor } from '../helpers/wait.ts'

const cluster = new TestCluster()
let anvil: Anvil | undefined
let registry = ''
let datanetId = ''
let validator: TestNode
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
    const manifest = parseManifest({
      name: 'squatted', license: 'CC0-1.0',
      recordSchema: { type: 'object', required: ['text'] },
      consensus: { versionIntervalMs: 500, proposeTimeoutMs: 1000, prevoteTimeoutMs: 500, precommitTimeoutMs: 500, timeoutDeltaMs: 200 },
      validators: [{ address: validator.address, stake: parseEther('1').toString() }]
    })
    writeFileSync(join(cluster.root.dir, 'manifest.json'), JSON.stringify(manifest))
    datanetId = (await encodeManifest(manifest)).id
    // the squatter takes the id first, as the sole validator of its own registration
    await fundAccounts(signer, [squatter.address, validator.address], parseEther('10'))
    await registerDatanet(squatter.connect(provider), registry, datanetId, parseManifest({ ...manifest, validators: [{ address: squatter.address, stake: parseEther('1').toString() }] }))
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

test('a squatter\'s registration of the manifest\'s id is refused: the manifest\'s set decides, the API says why', async () => {
  const { body } = await waitFor(async () => {
    const r = await api<ValidatorsJson>(validator, `/v1/datanets/${datanetId}/validators`)
    return r.body.chain?.registered === true ? r : undefined
  }, { timeoutMs: 30_000, what: 'the node to see the registration' })
  assert.equal(body.validators.map(v => v.address.toLowerCase()), [validator.address.toLowerCase()], 'the set is the manifest\'s, not the squatter\'s')
  assert.is(body.source, 'manifest')
  assert.is(body.chain?.registration, 'mismatch')
  assert.match(body.chain?.problem ?? '', /genesis set/)
  const shown = await api<{ validators: Array<{ address: string }>, chain: { registration: string, problem: string } | null }>(validator, `/v1/datanets/${datanetId}`)
  assert.equal(shown.body.validators.map(v => v.address), [validator.address])
  assert.is(shown.body.chain?.registration, 'mismatch')
})

test('the datanet goes on under its manifest\'s set, without anchoring on the squatted registration', async () => {
  const res = await fetch(`${validator.daemon.apiUrl}/v1/datanets/${datanetId}/contributions?format=jsonl`, {
    method: 'POST', headers: { authorization: `Bearer ${cluster.token(validator)}`, 'content-type': 'application/x-ndjson' }, body: '{"text":"not the squatter\'s"}\n'
  })
  assert.is(res.status, 201, await res.text())
  const v1 = await waitFor(async () => {
    const r = await api<{ height: number, anchor: unknown }>(validator, `/v1/datanets/${datanetId}/versions/1`)
    return r.status === 200 ? r.body : undefined
  }, { timeoutMs: 60_000, what: 'version 1 final under the manifest\'s validator' })
  assert.is(v1.anchor, null, 'never anchored on the squatter\'s registration')
})

test.run()
