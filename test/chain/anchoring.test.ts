/**
 * The node's side of the chain (issue 5), end to end on loopback: real daemons, a real
 * anvil behind a proxy that can be cut. Anchors every interval and exactly once, an RPC
 * outage during anchoring, a validator joining (its votes count) and leaving, and a served
 * record proof checked by the contract's verifyRecord.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Contract, Interface, parseEther } from 'ethers'
import { registryArtifact } from '../../src/chain/registry-client.ts'
import { canonicalBytes } from '../../src/codec/jcs.ts'
import { sha256, toHex } from '../../src/codec/hash.ts'
import { datanetDigest } from '../../src/datanet/manifest.ts'
import { deployRegistry, localSigner } from '../../node/devnet/chain-setup.ts'
import { chainManifest, openChainDatanet } from '../helpers/chain-datanet.ts'
import { startAnvil, type Anvil } from '../../node/devnet/anvil.ts'
import { TestCluster, type TestNode } from '../helpers/cluster.ts'
import { TcpProxy } from '../helpers/tcp-proxy.ts'
import { hook, waitFor } from '../helpers/wait.ts'

const cluster = new TestCluster()
let anvil: Anvil | undefined
let proxy: TcpProxy | undefined
let registry = ''
let datanetId = ''
let validators: TestNode[] = []
let joiner: TestNode
let counter = 0
const ANCHOR_INTERVAL = 2
const iface = new Interface(registryArtifact().abi)

interface VersionJson { height: number, cid: string, datasetRoot: string, recordCount: number, certificate: Array<{ validator: string }>, anchor: { txHash: string, block: number } | null }
interface ValidatorsJson { source: string, validators: Array<{ address: string, stake: string, status: string, since: number }> }

async function api<T> (node: TestNode, path: string, init: { method?: string, body?: unknown } = {}): Promise<{ status: number, body: T }> {
  const res = await fetch(`${node.daemon.apiUrl}${path}`, {
    method: init.method ?? 'GET',
    headers: init.method === 'POST' ? { authorization: `Bearer ${cluster.token(node)}`, 'content-type': 'application/json' } : {},
    body: init.body === undefined ? (init.method === 'POST' ? '{}' : undefined) : JSON.stringify(init.body),
    signal: AbortSignal.timeout(30_000)
  })
  return { status: res.status, body: await res.json() as T }
}

async function contribute (node: TestNode, records = 3): Promise<void> {
  const body = Array.from({ length: records }, () => JSON.stringify({ text: `anchored record ${counter++}` })).join('\n') + '\n'
  const res = await fetch(`${node.daemon.apiUrl}/v1/datanets/${datanetId}/contributions?format=jsonl`, {
    method: 'POST', headers: { authorization: `Bearer ${cluster.token(node)}`, 'content-type': 'application/x-ndjson' }, body
  })
  assert.is(res.status, 201, await res.text())
}

async function waitVersion (nodes: TestNode[], height: number, pred: (v: VersionJson) => boolean = () => true, timeoutMs = 60_000): Promise<VersionJson[]> {
  return await Promise.all(nodes.map(async n => await waitFor(async () => {
    const { status, body } = await api<VersionJson>(n, `/v1/datanets/${datanetId}/versions/${height}`)
    return status === 200 && pred(body) ? body : undefined
  }, { timeoutMs, what: `${n.name} to have version ${height}` })))
}

/** Contributes until version `height` is final everywhere (a version needs something new to include). */
async function finalize (height: number, via: TestNode, nodes: TestNode[]): Promise<VersionJson[]> {
  await contribute(via)
  return await waitVersion(nodes, height)
}

/** VersionCommitted events on chain for one height. */
async function commitsAt (height: number): Promise<number> {
  const { provider } = localSigner(anvil?.url ?? '', 31337)
  try {
    const topic = iface.getEvent('VersionCommitted')?.topicHash as string
    const logs = await provider.getLogs({ address: registry, fromBlock: 0, toBlock: 'latest', topics: [topic, datanetDigest(datanetId)] })
    return logs.map(l => iface.parseLog(l)).filter(l => Number(l?.args.getValue('height')) === height).length
  } finally {
    provider.destroy()
  }
}

test.before(hook(async () => {
  anvil = await startAnvil()
  proxy = new TcpProxy({ host: '127.0.0.1', port: anvil.port })
  await proxy.start()
  const { provider, signer } = localSigner(anvil.url, anvil.chainId)
  try {
    const deployed = await deployRegistry(signer)
    registry = deployed.address
    const nodes = await cluster.create(5, ['--chain-rpc', proxy.url, '--registry', registry])
    validators = nodes.slice(0, 4)
    joiner = nodes[4] as TestNode
    const manifest = chainManifest('anchoring', validators, ANCHOR_INTERVAL)
    datanetId = await openChainDatanet({ cluster, signer, registry, manifest, peers: 4 })
  } finally {
    provider.destroy()
  }
}))

test.after(hook(async () => {
  await cluster.teardown()
  await proxy?.stop()
  await anvil?.stop()
}))

test('the validator set comes from the chain', async () => {
  const { status, body } = await api<ValidatorsJson>(joiner, `/v1/datanets/${datanetId}/validators`)
  assert.is(status, 200)
  assert.is(body.source, 'chain')
  assert.equal(body.validators.map(v => v.address.toLowerCase()).sort(), validators.map(v => v.address.toLowerCase()).sort())
  assert.ok(body.validators.every(v => v.status === 'active' && v.stake === parseEther('1').toString()))
})

test('versions are anchored every interval, exactly once each', async () => {
  await finalize(1, validators[1] as TestNode, cluster.nodes)
  await finalize(2, validators[1] as TestNode, cluster.nodes)
  const anchored = await waitVersion(cluster.nodes, 2, v => v.anchor !== null, 30_000)
  const txs = new Set(anchored.map(v => v.anchor?.txHash))
  assert.is(txs.size, 1, 'every node records the same anchor transaction')
  assert.is(await commitsAt(2), 1)
  assert.is(await commitsAt(1), 0, 'height 1 is not an anchor height')
  const v1 = await api<VersionJson>(validators[0] as TestNode, `/v1/datanets/${datanetId}/versions/1`)
  assert.is(v1.body.anchor, null)
})

test('a record proof served by a node verifies on-chain (verifyRecord)', async () => {
  const { body: list } = await api<Array<{ cid: string }>>(validators[1] as TestNode, `/v1/datanets/${datanetId}/contributions`)
  assert.ok(list.length > 0)
  // a record's hash is the sha256 of its canonical JSON (RFC 8785)
  const hash = toHex(sha256(canonicalBytes({ text: 'anchored record 0' }) as Uint8Array))
  const { status, body: proof } = await api<{ proof: string[], version: number, recordHash: string }>(validators[2] as TestNode, `/v1/datanets/${datanetId}/records/${hash}/proof?version=2`)
  assert.is(status, 200, JSON.stringify(proof))
  const { provider } = localSigner(anvil?.url ?? '', 31337)
  try {
    const contract = new Contract(registry, registryArtifact().abi, provider)
    assert.is(await contract.getFunction('verifyRecord').staticCall(datanetDigest(datanetId), 2, proof.recordHash, proof.proof), true)
    const wrong = '0x' + '00'.repeat(31) + '01'
    assert.is(await contract.getFunction('verifyRecord').staticCall(datanetDigest(datanetId), 2, wrong, proof.proof), false)
  } finally {
    provider.destroy()
  }
})

test('a new node joins: active at the next anchor, and its votes count', async () => {
  const join = await api<{ txHash: string }>(joiner, `/v1/datanets/${datanetId}/validators/join`, { method: 'POST', body: { stake: parseEther('1').toString() } })
  assert.is(join.status, 200, JSON.stringify(join.body))
  const pending = await api<ValidatorsJson>(validators[0] as TestNode, `/v1/datanets/${datanetId}/validators`)
  const mine = (b: ValidatorsJson): ValidatorsJson['validators'][number] | undefined => b.validators.find(v => v.address.toLowerCase() === joiner.address.toLowerCase())
  await waitFor(async () => mine((await api<ValidatorsJson>(validators[0] as TestNode, `/v1/datanets/${datanetId}/validators`)).body)?.status === 'joining', { timeoutMs: 10_000, what: 'the join to be seen' })
  assert.ok(pending.status === 200)
  await finalize(3, validators[1] as TestNode, cluster.nodes)
  await finalize(4, validators[1] as TestNode, cluster.nodes)
  await waitVersion(cluster.nodes, 4, v => v.anchor !== null, 30_000)
  await waitFor(async () => mine((await api<ValidatorsJson>(validators[0] as TestNode, `/v1/datanets/${datanetId}/validators`)).body)?.status === 'active', { timeoutMs: 10_000, what: 'the joiner to be active' })
  // with five equal stakes, four must precommit: stopping one original validator leaves a
  // quorum only if the joiner's votes count
  const stopped = validators[0] as TestNode
  await stopped.daemon.stop()
  const others = cluster.nodes.filter(n => n !== stopped)
  const [v5] = await finalize(5, validators[1] as TestNode, others)
  assert.ok(v5?.certificate.some(c => c.validator.toLowerCase() === joiner.address.toLowerCase()), 'the joiner precommitted version 5')
  stopped.daemon.start()
  await stopped.daemon.waitReady(30_000)
})

test('an RPC outage of 30 s during anchoring: the anchor lands once when it is back', async () => {
  await proxy?.cut()
  const cutAt = Date.now()
  await finalize(6, validators[1] as TestNode, cluster.nodes)
  // the anchor of height 6 cannot land while the RPC is down
  const v6 = await api<VersionJson>(validators[1] as TestNode, `/v1/datanets/${datanetId}/versions/6`)
  assert.is(v6.body.anchor, null)
  const left = 30_000 - (Date.now() - cutAt)
  if (left > 0) await new Promise(resolve => setTimeout(resolve, left)) // the outage itself, not a wait for an outcome
  await proxy?.restore()
  await waitVersion(cluster.nodes, 6, v => v.anchor !== null, 60_000)
  assert.is(await commitsAt(6), 1)
})

test('leave: the validator is out of the set after the next anchor', async () => {
  const leave = await api<{ txHash: string }>(joiner, `/v1/datanets/${datanetId}/validators/leave`, { method: 'POST' })
  assert.is(leave.status, 200, JSON.stringify(leave.body))
  await finalize(7, validators[1] as TestNode, cluster.nodes)
  await finalize(8, validators[1] as TestNode, cluster.nodes)
  await waitVersion(cluster.nodes, 8, v => v.anchor !== null, 30_000)
  const { body } = await waitFor(async () => {
    const r = await api<ValidatorsJson>(validators[0] as TestNode, `/v1/datanets/${datanetId}/validators`)
    return r.body.validators.find(v => v.address.toLowerCase() === joiner.address.toLowerCase())?.status === 'unbonding' ? r : undefined
  }, { timeoutMs: 10_000, what: 'the joiner to be unbonding' })
  assert.is(body.validators.filter(v => v.status === 'active').length, 4)
  const [v9] = await finalize(9, validators[1] as TestNode, validators)
  assert.not.ok(v9?.certificate.some(c => c.validator.toLowerCase() === joiner.address.toLowerCase()))
})

test('an equivocating validator is slashed on-chain from the evidence the others submit', async () => {
  const byzantine = validators[3] as TestNode
  await byzantine.daemon.stop()
  byzantine.daemon.spec.env = { ...byzantine.daemon.spec.env, DATANET_FAULT: 'equivocate' }
  byzantine.daemon.start()
  await byzantine.daemon.waitReady(60_000)
  // the others see its double votes once it votes in time for a height in progress:
  // keep giving them heights to decide
  let lastContribution = 0
  const slashed = await waitFor(async () => {
    const r = await api<ValidatorsJson>(validators[0] as TestNode, `/v1/datanets/${datanetId}/validators`)
    const v = r.body.validators.find(x => x.address.toLowerCase() === byzantine.address.toLowerCase())
    if (v?.status === 'slashed') return v
    if (Date.now() - lastContribution > 4000) {
      lastContribution = Date.now()
      await contribute(validators[1] as TestNode)
    }
    return undefined
  }, { timeoutMs: 120_000, what: 'the equivocating validator to be slashed', intervalMs: 500 })
  assert.is(slashed.stake, '0')
  const { provider } = localSigner(anvil?.url ?? '', 31337)
  try {
    const topic = iface.getEvent('Slashed')?.topicHash as string
    const logs = await provider.getLogs({ address: registry, fromBlock: 0, toBlock: 'latest', topics: [topic, datanetDigest(datanetId)] })
    assert.is(logs.length, 1, 'slashed once, whoever submitted first')
    assert.is(String(iface.parseLog(logs[0] as never)?.args.getValue('validator')).toLowerCase(), byzantine.address.toLowerCase())
  } finally {
    provider.destroy()
  }
})

test.run()
