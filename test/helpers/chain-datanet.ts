/**
 * A datanet between test daemons on a chain: what the chain tests' setups share. Writes the
 * manifest beside the cluster, registers it with the registry (2/3, 1 ETH minimum stake),
 * funds the accounts, starts the daemons, gives each the manifest and waits until each sees
 * `peers` others subscribed to its verdicts.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseEther, type Signer } from 'ethers'
import { encodeManifest, parseManifest, type Manifest } from '../../src/datanet/manifest.ts'
import { DEFAULT_REGISTRY_PARAMS, fundAccounts, registerDatanet } from '../../node/devnet/chain-setup.ts'
import type { TestCluster, TestNode } from './cluster.ts'
import { waitFor } from './wait.ts'

/** A chain test's manifest: `validators` staking 1 ETH each, text records, versions every second, short timeouts. */
export function chainManifest (name: string, validators: readonly TestNode[], anchorInterval: number): Manifest {
  return parseManifest({
    name, license: 'CC0-1.0',
    recordSchema: { type: 'object', required: ['text'] },
    consensus: { versionIntervalMs: 1000, proposeTimeoutMs: 1500, prevoteTimeoutMs: 800, precommitTimeoutMs: 800, timeoutDeltaMs: 300 },
    anchorInterval,
    validators: validators.map(v => ({ address: v.address, stake: parseEther('1').toString() }))
  })
}

export interface ChainDatanetOptions {
  cluster: TestCluster
  signer: Signer
  registry: string
  manifest: Manifest
  /** The daemons to start and give the manifest (default: all the cluster's). */
  nodes?: TestNode[]
  /** The accounts funded with 10 ETH each (default: `nodes`). */
  funded?: TestNode[]
  /** How many others each node must see subscribed. */
  peers: number
  startTimeoutMs?: number
  subscribedTimeoutMs?: number
}

/** The datanet's id, once every node follows it and sees its peers. */
export async function openChainDatanet (o: ChainDatanetOptions): Promise<string> {
  const nodes = o.nodes ?? o.cluster.nodes
  writeFileSync(join(o.cluster.root.dir, 'manifest.json'), JSON.stringify(o.manifest))
  const datanetId = (await encodeManifest(o.manifest)).id
  await registerDatanet(o.signer, o.registry, datanetId, o.manifest, DEFAULT_REGISTRY_PARAMS)
  await fundAccounts(o.signer, (o.funded ?? nodes).map(n => n.address), parseEther('10'))
  await o.cluster.startAll(nodes, o.startTimeoutMs ?? 90_000)
  for (const n of nodes) {
    const r = await fetch(`${n.daemon.apiUrl}/v1/datanets`, { method: 'POST', headers: { authorization: `Bearer ${o.cluster.token(n)}`, 'content-type': 'application/json' }, body: JSON.stringify(o.manifest) })
    if (r.status !== 201 && r.status !== 200) throw new Error(`${n.name} refused the manifest: ${r.status} ${await r.text()}`)
  }
  for (const n of nodes) {
    await waitFor(async () => {
      const res = await fetch(`${n.daemon.apiUrl}/v1/datanets/${datanetId}`, { signal: AbortSignal.timeout(30_000) })
      const body = await res.json() as { subscribers?: { verdicts?: string[] } }
      return (body.subscribers?.verdicts?.length ?? 0) >= o.peers
    }, { timeoutMs: o.subscribedTimeoutMs ?? 30_000, what: `${n.name} to see the others subscribed` })
  }
  return datanetId
}
