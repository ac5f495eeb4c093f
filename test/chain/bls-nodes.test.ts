/**
 * Anchoring with one aggregate BLS signature between real daemons (issue 14 item 9): four
 * validators with `chain.anchorSignatures = bls` register their keys on their own, the set's
 * aggregate key is summed on chain, shares of final versions travel over gossip, and an anchor
 * lands through commitVersionBls. One validator's shares are bad (DATANET_FAULT=bad-bls-share:
 * its BLS signature signs another message, its ECDSA signature over it is honest): the
 * anchorer finds it, counts that validator absent, and the BLS anchor still lands.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Interface } from 'ethers'
import { registryArtifact } from '../../src/chain/registry-client.ts'
import { deployRegistry, localSigner } from '../../node/devnet/chain-setup.ts'
import { chainManifest, openChainDatanet } from '../helpers/chain-datanet.ts'
import { startAnvil, type Anvil } from '../../node/devnet/anvil.ts'
import { TestCluster, type TestNode } from '../helpers/cluster.ts'
import { hook, waitFor } from '../helpers/wait.ts'

const cluster = new TestCluster()
let anvil: Anvil | undefined
let datanetId = ''
let validators: TestNode[] = []
let counter = 0
const ANCHOR_INTERVAL = 2
const iface = new Interface(registryArtifact().abi)

interface VersionJson { height: number, anchor: { txHash: string, block: number } | null }

async function api<T> (node: TestNode, path: string): Promise<{ status: number, body: T }> {
  const res = await fetch(`${node.daemon.apiUrl}${path}`, { signal: AbortSignal.timeout(30_000) })
  return { status: res.status, body: await res.json() as T }
}

async function contribute (node: TestNode): Promise<void> {
  const body = JSON.stringify({ text: `bls anchored record ${counter++}` }) + '\n'
  const res = await fetch(`${node.daemon.apiUrl}/v1/datanets/${datanetId}/contributions?format=jsonl`, {
    method: 'POST', headers: { authorization: `Bearer ${cluster.token(node)}`, 'content-type': 'application/x-ndjson' }, body
  })
  assert.is(res.status, 201, await res.text())
}

/** The anchor transaction of `height` once every validator has it: the method and arguments it called. */
async function anchorOf (height: number): Promise<{ method: string, absent: string[] }> {
  const [v] = await Promise.all(validators.map(async n => await waitFor(async () => {
    const { status, body } = await api<VersionJson>(n, `/v1/datanets/${datanetId}/versions/${height}`)
    return status === 200 && body.anchor !== null ? body : undefined
  }, { timeoutMs: 90_000, what: `${n.name} to have version ${height} anchored` })))
  const { provider } = localSigner(anvil?.url ?? '', anvil?.chainId ?? 31337)
  try {
    const tx = await provider.getTransaction((v as VersionJson).anchor?.txHash ?? '')
    const parsed = iface.parseTransaction({ data: tx?.data ?? '0x' })
    return { method: parsed?.name ?? '?', absent: parsed?.name === 'commitVersionBls' ? (parsed.args.getValue('absent') as string[]).map(a => a.toLowerCase()) : [] }
  } finally {
    provider.destroy()
  }
}

test.before(hook(async () => {
  anvil = await startAnvil()
  const { provider, signer } = localSigner(anvil.url, anvil.chainId)
  try {
    const { address: registry } = await deployRegistry(signer)
    validators = await cluster.create(4, ['--chain-rpc', anvil.url, '--registry', registry], { fastKeystore: true })
    // every anchor counts at once and is seen within half a second: anvil mines only on transactions
    for (const n of validators) n.daemon.spec.env = { DATANET_CHAIN_CONFIRMATIONS: '0', DATANET_CHAIN_POLL_INTERVAL_MS: '500', DATANET_CHAIN_ANCHOR_SIGNATURES: 'bls' }
    const byzantine = validators[3] as TestNode
    byzantine.daemon.spec.env = { ...byzantine.daemon.spec.env, DATANET_FAULT: 'bad-bls-share' }
    const manifest = chainManifest('bls anchoring', validators, ANCHOR_INTERVAL)
    datanetId = await openChainDatanet({ cluster, signer, registry, manifest, peers: 3 })
  } finally {
    provider.destroy()
  }
}))

test.after(hook(async () => {
  await cluster.teardown()
  await anvil?.stop()
}))

test('validators register their BLS keys, share final versions, and an anchor lands as one aggregate signature with the bad sharer absent', async () => {
  // the first anchor heights register the keys and sum them on chain (anchored with ECDSA meanwhile)
  let found: { height: number, method: string, absent: string[] } | undefined
  for (let height = 1; height <= 5 * ANCHOR_INTERVAL && found === undefined; height++) {
    await contribute(validators[height % 3] as TestNode)
    await Promise.all(validators.map(async n => await waitFor(async () => (await api<VersionJson>(n, `/v1/datanets/${datanetId}/versions/${height}`)).status === 200 || undefined,
      { timeoutMs: 60_000, what: `${n.name} to have version ${height}` })))
    if (height % ANCHOR_INTERVAL !== 0) continue
    const anchor = await anchorOf(height)
    if (anchor.method === 'commitVersionBls') found = { height, ...anchor }
  }
  assert.ok(found !== undefined, 'an anchor went through commitVersionBls')
  assert.equal(found.absent, [(validators[3] as TestNode).address.toLowerCase()], 'the validator whose share was bad counts as absent, no one else')
})

test.run()
