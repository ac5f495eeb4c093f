/**
 * One validator of four signs, beside each vote, a second one over a bogus header (a record
 * count one off): the certificates the honest nodes produce must still be what the
 * registry's commitVersion accepts, so versions keep being anchored. Kept minimal: the
 * anchor schedule is the contract's business (tested in anchoring.test.ts).
 */
import { readFileSync } from 'node:fs'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { deployRegistry, localSigner } from '../../node/devnet/chain-setup.ts'
import { chainManifest, openChainDatanet } from '../helpers/chain-datanet.ts'
import { startAnvil, type Anvil } from '../../node/devnet/anvil.ts'
import { TestCluster, type TestNode } from '../helpers/cluster.ts'
import { hook, waitFor } from '../helpers/wait.ts'

const cluster = new TestCluster()
let anvil: Anvil | undefined
let datanetId = ''
let honest: TestNode[] = []
let counter = 0

interface VersionJson { height: number, anchor: { txHash: string, block: number } | null }

async function api<T> (node: TestNode, path: string): Promise<{ status: number, body: T }> {
  const res = await fetch(`${node.daemon.apiUrl}${path}`, { signal: AbortSignal.timeout(30_000) })
  return { status: res.status, body: await res.json() as T }
}

async function post (node: TestNode, path: string, body: string, type: string): Promise<Response> {
  return await fetch(`${node.daemon.apiUrl}${path}`, { method: 'POST', headers: { authorization: `Bearer ${cluster.token(node)}`, 'content-type': type }, body })
}

test.before(hook(async () => {
  anvil = await startAnvil()
  const { provider, signer } = localSigner(anvil.url, anvil.chainId)
  try {
    const registry = (await deployRegistry(signer)).address
    const validators = await cluster.create(4, ['--chain-rpc', anvil.url, '--registry', registry])
    const byzantine = validators[3] as TestNode
    honest = validators.slice(0, 3)
    // every anchor counts at once and is seen within half a second, as on the devnet: with
    // anvil mining only on transactions, waiting for confirmations depends on traffic
    const chainEnv = { DATANET_CHAIN_CONFIRMATIONS: '0', DATANET_CHAIN_POLL_INTERVAL_MS: '500' }
    for (const v of validators) v.daemon.spec.env = { ...chainEnv }
    byzantine.daemon.spec.env = { ...chainEnv, DATANET_FAULT: 'bogus-header' }
    const manifest = chainManifest('byzantine-anchoring', validators, 1)
    datanetId = await openChainDatanet({ cluster, signer, registry, manifest, funded: validators, peers: 3, startTimeoutMs: 180_000, subscribedTimeoutMs: 90_000 })
  } finally {
    provider.destroy()
  }
}))

test.after(hook(async () => {
  await cluster.teardown()
  await anvil?.stop()
}))

test('with a bogus-header validator, the certificates of the honest nodes are accepted on-chain: versions keep being anchored', async () => {
  const VERSIONS = 3
  for (let h = 1; h <= VERSIONS; h++) {
    const via = honest[h % honest.length] as TestNode
    const res = await post(via, `/v1/datanets/${datanetId}/contributions?format=jsonl`, `{"text":"byzantine anchored ${counter++}"}\n`, 'application/x-ndjson')
    assert.is(res.status, 201)
    for (const n of honest) {
      await waitFor(async () => (await api(n, `/v1/datanets/${datanetId}/versions/${h}`)).status === 200, { timeoutMs: 120_000, what: `${n.name} to have version ${h}` })
    }
  }
  // the last anchor height at or below VERSIONS depends on the contract's schedule: wait for any anchor past the first version
  for (const n of honest) {
    await waitFor(async () => (await api<VersionJson[]>(n, `/v1/datanets/${datanetId}/versions`)).body.some(v => v.height >= 2 && v.anchor !== null),
      { timeoutMs: 60_000, what: `${n.name} to record an anchor of version 2 or later` })
  }
  assert.ok(readFileSync(cluster.nodes[3]?.daemon.spec.logFile ?? '', 'utf8').includes('fault injection: signing a vote with a bogus header'), 'the faulty validator signed bogus headers')
  // the contract's refusals of a certificate (other refusals, e.g. a retried race on the active set, are not this test's)
  const certificateErrors = /WrongSigner|InvalidSignature|UnsortedOrDuplicateSigner|SignerIndexOutOfRange|InsufficientStake/
  for (const n of cluster.nodes) {
    const refused = readFileSync(n.daemon.spec.logFile, 'utf8').split('\n').filter(l => l.includes('anchor refused') && certificateErrors.test(l))
    assert.equal(refused, [], `${n.name}: no certificate refused by the contract`)
  }
})

test.run()
