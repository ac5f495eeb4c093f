/**
 * Proof of attribution end to end (issue 6) on loopback with a real anvil: contribute,
 * finalize, train the reference model, infer (the fee escrowed on chain), the event enters
 * a version whose tally root is anchored, and a contributor claims exactly its tally in wei.
 * Bad events (no escrow, a bad signature, a replayed nonce) are refused.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Contract, Interface, parseEther } from 'ethers'
import { registryArtifact } from '../../src/chain/registry-client.ts'
import { datanetDigest, encodeManifest, parseManifest } from '../../src/datanet/manifest.ts'
import { deployRegistry, fundAccounts, localSigner, registerDatanet } from '../../node/devnet/chain-setup.ts'
import { startAnvil, type Anvil } from '../../node/devnet/anvil.ts'
import { inferenceEventId, inferenceEventJson, signInferenceEvent, type UnsignedInferenceEvent } from '../../src/inference/event.ts'
import { loadWallet } from '../../src/storage/data-dir.ts'
import { TestCluster, type TestNode } from '../helpers/cluster.ts'
import { hook, waitFor } from '../helpers/wait.ts'

const cluster = new TestCluster()
let anvil: Anvil | undefined
let registry = ''
let datanetId = ''
let validators: TestNode[] = []
let contributor: TestNode
let operator: TestNode
const iface = new Interface(registryArtifact().abi)

const RECORDS_A = [
  'The lighthouse keeper climbed the spiral stairs every evening to light the great lamp before the fishing boats returned.',
  'Honeybees communicate the distance and direction of flowers to their sisters through a waggle dance performed inside the hive.',
  'During the long winter the villagers gathered in the old mill to repair their nets and tell stories about the northern lights.',
  'A well-tuned violin carries its sound across a concert hall because the spruce top vibrates freely above the maple back.'
]
const RECORDS_B = [
  'Tidal pools along the rocky coast shelter anemones, hermit crabs and small fish that wait for the ocean to return at high tide.',
  'The baker folded cold butter into the dough seven times so that the croissants would rise into dozens of flaky golden layers.'
]

interface Json { [k: string]: unknown }

async function api<T = Json> (node: TestNode, path: string, init: { method?: string, body?: unknown } = {}): Promise<{ status: number, body: T }> {
  const post = init.method === 'POST'
  const res = await fetch(`${node.daemon.apiUrl}${path}`, {
    method: init.method ?? 'GET',
    headers: post ? { authorization: `Bearer ${cluster.token(node)}`, 'content-type': 'application/json' } : {},
    body: post ? JSON.stringify(init.body ?? {}) : undefined,
    signal: AbortSignal.timeout(60_000)
  })
  return { status: res.status, body: await res.json() as T }
}

async function contribute (node: TestNode, texts: string[]): Promise<void> {
  const body = texts.map(text => JSON.stringify({ text })).join('\n') + '\n'
  const res = await fetch(`${node.daemon.apiUrl}/v1/datanets/${datanetId}/contributions?format=jsonl`, {
    method: 'POST', headers: { authorization: `Bearer ${cluster.token(node)}`, 'content-type': 'application/x-ndjson' }, body
  })
  assert.is(res.status, 201, await res.text())
}

async function waitVersion (nodes: TestNode[], pred: (v: { height: number, anchor: unknown, attributionRoot: string }) => boolean, what: string): Promise<Array<{ height: number, attributionRoot: string }>> {
  return await Promise.all(nodes.map(async n => await waitFor(async () => {
    const { body } = await api<Array<{ height: number, anchor: unknown, attributionRoot: string }>>(n, `/v1/datanets/${datanetId}/versions`)
    return body.find(pred)
  }, { timeoutMs: 90_000, what: `${n.name}: ${what}` })))
}

test.before(hook(async () => {
  anvil = await startAnvil()
  const { provider, signer } = localSigner(anvil.url, anvil.chainId)
  try {
    registry = (await deployRegistry(signer)).address
    const nodes = await cluster.create(5, ['--chain-rpc', anvil.url, '--registry', registry])
    validators = nodes.slice(0, 3)
    contributor = nodes[3] as TestNode
    operator = nodes[4] as TestNode
    const manifest = parseManifest({
      name: 'attribution', license: 'CC0-1.0',
      recordSchema: { type: 'object', required: ['text'], properties: { text: { type: 'string' } } },
      consensus: { versionIntervalMs: 1000, proposeTimeoutMs: 1500, prevoteTimeoutMs: 800, precommitTimeoutMs: 800, timeoutDeltaMs: 300 },
      anchorInterval: 1,
      attribution: { minSpanTokens: 8 },
      validators: validators.map(v => ({ address: v.address, stake: parseEther('1').toString() }))
    })
    datanetId = (await encodeManifest(manifest)).id
    await registerDatanet(signer, registry, datanetId, manifest, { thresholdNumerator: 2, thresholdDenominator: 3, minStake: parseEther('1'), unbondingDelaySeconds: 60 })
    await fundAccounts(signer, nodes.map(n => n.address), parseEther('10'))
    await cluster.startAll(cluster.nodes, 90_000)
    for (const n of cluster.nodes) {
      const r = await api(n, '/v1/datanets', { method: 'POST', body: manifest })
      assert.ok(r.status === 201 || r.status === 200, JSON.stringify(r.body))
    }
    for (const n of cluster.nodes) {
      await waitFor(async () => ((await api<{ subscribers: { verdicts: string[] } }>(n, `/v1/datanets/${datanetId}`)).body.subscribers.verdicts.length >= 4), { timeoutMs: 30_000, what: `${n.name} to see the others subscribed` })
    }
  } finally {
    provider.destroy()
  }
}))

test.after(hook(async () => {
  await cluster.teardown()
  await anvil?.stop()
}))

let modelId = ''
let event: Json = {}

test('contribute, finalize, train a model on the version', async () => {
  await contribute(contributor, RECORDS_A)
  await contribute(validators[0] as TestNode, RECORDS_B)
  await waitVersion(cluster.nodes, v => v.anchor !== null && v.height >= 1, 'a final, anchored version')
  // both contributions in: wait until the dataset holds all six records
  const [v] = await waitVersion([operator], v => (v as unknown as { recordCount: number }).recordCount === 6 && v.anchor !== null, 'six records anchored')
  const trained = await api<{ id: string, version: number }>(operator, `/v1/datanets/${datanetId}/models`, { method: 'POST', body: { version: v?.height, train: true } })
  assert.is(trained.status, 201, JSON.stringify(trained.body))
  modelId = trained.body.id
  const listed = await waitFor(async () => {
    const { body } = await api<Array<{ id: string }>>(validators[1] as TestNode, `/v1/datanets/${datanetId}/models`)
    return body.some(m => m.id === modelId)
  }, { timeoutMs: 20_000, what: 'the model record to reach a validator' })
  assert.ok(listed)
})

test('an attribution preview credits the records a text copies', async () => {
  const text = `As the story goes, ${RECORDS_A[1] as string}`
  const { status, body } = await api<{ contributors: Array<{ address: string, amount: string }>, spans: Array<{ common: boolean }> }>(validators[2] as TestNode, `/v1/datanets/${datanetId}/attribution`, { method: 'POST', body: { text } })
  assert.is(status, 200, JSON.stringify(body))
  assert.equal(body.contributors.map(c => c.address), [contributor.address.toLowerCase()])
  assert.ok(BigInt(body.contributors[0]?.amount ?? '0') > 0n)
})

test('infer: the fee is escrowed, the event enters a version, every node tallies the same', async () => {
  const fee = parseEther('0.01')
  const r = await api<{ cid: string, output: string, eventId: string, shares: Array<{ address: string, amount: string }> }>(operator, `/v1/datanets/${datanetId}/inferences`, { method: 'POST', body: { model: modelId, prompt: 'Honeybees communicate the', fee: fee.toString(), maxWords: 30 } })
  assert.is(r.status, 201, JSON.stringify(r.body))
  assert.ok(r.body.output.length > 0)
  event = (await api<{ event: Json }>(operator, `/v1/datanets/${datanetId}/inferences/${r.body.cid}`)).body.event
  const versions = await waitVersion(cluster.nodes, v => v.attributionRoot !== '0x' + '00'.repeat(32) && v.anchor !== null, 'a version with the event, anchored')
  assert.is(new Set(versions.map(v => v.attributionRoot)).size, 1, 'every node computed the same tally root')
  const tallies = await Promise.all(cluster.nodes.map(async n => (await api<{ total: string }>(n, `/v1/datanets/${datanetId}/tallies`)).body.total))
  assert.is(new Set(tallies).size, 1)
  assert.ok(BigInt(tallies[0] as string) > 0n && BigInt(tallies[0] as string) <= fee, 'what is attributed never exceeds the fee')
})

test('a contributor claims exactly its tally in wei', async () => {
  const { body: tally } = await waitFor(async () => {
    const r = await api<{ claimable: string, cumulativeAmount: string }>(validators[1] as TestNode, `/v1/datanets/${datanetId}/tallies/${contributor.address}`)
    return BigInt(r.body.claimable) > 0n ? r : undefined
  }, { timeoutMs: 30_000, what: 'a claimable tally' })
  const claim = await api<{ paid: string, txHash: string }>(contributor, `/v1/datanets/${datanetId}/claim`, { method: 'POST' })
  assert.is(claim.status, 200, JSON.stringify(claim.body))
  assert.is(claim.body.paid, tally.claimable)
  const { provider } = localSigner(anvil?.url ?? '', 31337)
  try {
    const receipt = await provider.getTransactionReceipt(claim.body.txHash)
    const claimed = receipt?.logs.map(l => iface.parseLog(l)).find(l => l?.name === 'Claimed')
    assert.is(String(claimed?.args.getValue('amount')), tally.cumulativeAmount, 'paid exactly the tally')
    const contract = new Contract(registry, registryArtifact().abi, provider)
    assert.is(String(await contract.getFunction('claimed').staticCall(datanetDigest(datanetId), contributor.address)), tally.cumulativeAmount)
  } finally {
    provider.destroy()
  }
  const again = await api<{ error: { code: string } }>(contributor, `/v1/datanets/${datanetId}/claim`, { method: 'POST' })
  assert.is(again.status, 409)
  assert.is(again.body.error.code, 'CLAIM_ERROR_NOTHING')
})

test('events without escrow, with a bad signature, or with a replayed nonce are refused', async () => {
  const target = validators[2] as TestNode
  const post = async (e: Json): Promise<{ status: number, code: string }> => {
    const r = await api<{ error?: { code: string } }>(target, `/v1/datanets/${datanetId}/inferences`, { method: 'POST', body: { event: e } })
    return { status: r.status, code: r.body.error?.code ?? '' }
  }
  const sig = String(event.signature)
  assert.equal(await post({ ...event, signature: sig.slice(0, 10) + (sig[10] === 'a' ? 'b' : 'a') + sig.slice(11) }), { status: 400, code: 'INFERENCE_ERROR_BAD_SIGNATURE' })
  assert.equal(await post({ ...event, output: `${String(event.output)} more` }), { status: 400, code: 'INFERENCE_ERROR_BAD_SIGNATURE' }, 'a changed event no longer matches its signature')

  const wallet = (await loadWallet(operator.dataDir, 'test-password')).connect(localSigner(anvil?.url ?? '', 31337).provider)
  const binding = { chainId: 31337, registry }
  const { signature: _s, ...unsigned } = event
  const sign = async (e: UnsignedInferenceEvent): Promise<Json> => inferenceEventJson(await signInferenceEvent(wallet, binding, e)) as Json
  const fresh = { ...(unsigned as unknown as UnsignedInferenceEvent), nonce: '0x' + '42'.repeat(32), timestamp: Date.now() }
  assert.equal(await post(await sign(fresh)), { status: 409, code: 'INFERENCE_ERROR_NO_ESCROW' }, 'no fee escrowed')

  // the first event's nonce again, on a new output whose fee is escrowed: a replay
  const replay = { ...(unsigned as unknown as UnsignedInferenceEvent), output: `${String(event.output)} twice`, timestamp: Date.now() }
  const contract = new Contract(registry, registryArtifact().abi, wallet)
  await (await contract.getFunction('payInference').send(datanetDigest(datanetId), inferenceEventId(binding, replay), { value: BigInt(replay.fee) })).wait()
  assert.equal(await post(await sign(replay)), { status: 409, code: 'INFERENCE_ERROR_REPLAYED_NONCE' })
  ;(wallet.provider as { destroy?: () => void } | null)?.destroy?.()
})

test('an operator that gossips a twin of each event first (DATANET_FAULT=twin-inference): one event everywhere, counted once, anchoring goes on', async () => {
  await operator.daemon.stop(10_000)
  operator.daemon.spec.env = { ...operator.daemon.spec.env, DATANET_FAULT: 'twin-inference' }
  operator.daemon.start()
  await operator.daemon.waitReady(60_000)
  await waitFor(async () => ((await api<{ subscribers: { verdicts: string[] } }>(operator, `/v1/datanets/${datanetId}`)).body.subscribers.verdicts.length >= 4), { timeoutMs: 30_000, what: 'the restarted operator to see the others subscribed' })
  const totals = async (): Promise<bigint[]> => await Promise.all(cluster.nodes.map(async n => BigInt((await api<{ total: string }>(n, `/v1/datanets/${datanetId}/tallies`)).body.total)))
  const before = await totals()
  assert.is(new Set(before).size, 1)
  const r = await api<{ cid: string, shares: Array<{ amount: string }> }>(operator, `/v1/datanets/${datanetId}/inferences`, { method: 'POST', body: { model: modelId, prompt: 'The lighthouse keeper climbed', fee: parseEther('0.01').toString(), maxWords: 30 } })
  assert.is(r.status, 201, JSON.stringify(r.body))
  const paid = r.body.shares.reduce((s, x) => s + BigInt(x.amount), 0n)
  assert.ok(paid > 0n)
  // the operator keeps its event, the network learnt the twin first
  const included = await waitFor(async () => (await api<{ included: number | null }>(operator, `/v1/datanets/${datanetId}/inferences/${r.body.cid}`)).body.included ?? undefined, { timeoutMs: 90_000, what: 'the operator\'s event included (as its twin)' })
  // gossip does not keep the operator's order on every path: a validator may have the operator's copy first
  const statuses = await Promise.all(validators.map(async v => (await api(v, `/v1/datanets/${datanetId}/inferences/${r.body.cid}`)).status))
  assert.ok(statuses.includes(404), `some validator holds the twin, not the operator's copy (the fault happened): ${statuses.join(', ')}`)
  const versions = await waitVersion(cluster.nodes, v => v.height === included, `version ${included}`)
  assert.is(new Set(versions.map(v => (v as unknown as { cid: string }).cid)).size, 1, 'one version at that height everywhere')
  const after = await waitFor(async () => { const t = await totals(); return t.every(x => x === (before[0] as bigint) + paid) ? t : undefined }, { timeoutMs: 30_000, what: 'every node to count the event once' })
  assert.equal(new Set(after).size, 1)
  // anchoring goes on past the twin's version
  await contribute(contributor, ['After the storm the fishermen mended their nets on the harbour wall while gulls circled over the boats.'])
  await waitVersion(cluster.nodes, v => v.height > (included as number) && v.anchor !== null, 'an anchored version after the twin\'s')
})

test.run()
