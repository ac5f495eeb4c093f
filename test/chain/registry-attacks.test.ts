/**
 * Attacks on the registry by accounts that are not the datanet's validators (issues 11, 12),
 * on a real anvil, with the node's own chain code: the registry client, the event fold of
 * src/chain/registry-state.ts and the commit arguments the anchor service builds. Each test
 * plays the attack, then checks that the datanet goes on.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { HDNodeWallet, JsonRpcProvider, Wallet, parseEther } from 'ethers'
import type { CID } from 'multiformats/cid'
import { cidOf, encodeCbor } from '../../src/codec/cbor.ts'
import { datanetDomain } from '../../src/codec/eip712.ts'
import { sha256 } from '../../src/codec/hash.ts'
import { headerOf, validatorSetHash, versionValue, voteDigest, type VersionHeader, type VersionValue } from '../../src/consensus/version.ts'
import { merkleRoot } from '../../src/merkle/tree.ts'
import { commitVersionArgs } from '../../src/chain/commit-args.ts'
import { RegistryClient, revertName } from '../../src/chain/registry-client.ts'
import { activeSet, anchorIntervalOf, replayRegistryLog, setForHeight, type DatanetChainState, type ValidatorStake } from '../../src/chain/registry-state.ts'
import { deployRegistry, localSigner, registerDatanet } from '../../node/devnet/chain-setup.ts'
import { datanetDigest, encodeManifest, parseManifest } from '../../src/datanet/manifest.ts'
import { hook } from '../helpers/wait.ts'
import { ANVIL_MNEMONIC, startAnvil, type Anvil } from './anvil.ts'

const ONE = parseEther('1')
const records = ['a', 'b', 'c'].map(t => sha256(new TextEncoder().encode(t)))

let anvil: Anvil | undefined
let provider: JsonRpcProvider
let registry = ''
let wallets: HDNodeWallet[] = []
const clients: RegistryClient[] = []

/** One datanet as its nodes see it: manifest, chain id, and the versions they finalized. */
interface Net {
  id: string
  digest: string
  interval: number
  validators: HDNodeWallet[]
  versions: Map<number, VersionValue>
}

async function client (w: HDNodeWallet | Wallet): Promise<RegistryClient> {
  const c = await RegistryClient.connect({ rpcUrl: anvil?.url ?? '', chainId: anvil?.chainId ?? 31337, registry, signer: new Wallet(w.privateKey) })
  clients.push(c)
  return c
}

/** The registry's log folded as every node folds it. */
async function chainState (net: Net): Promise<DatanetChainState> {
  const c = clients[0] as RegistryClient
  const state = replayRegistryLog(await c.events(0, await c.blockNumber())).get(net.digest)
  if (state === undefined) throw new Error('datanet not on chain')
  return state
}

/** The set the nodes give the decision of `height` (undefined: it waits for an anchor), as node/services/chain.ts does. */
function nodeSet (state: DatanetChainState, net: Net, height: number): ValidatorStake[] | undefined {
  return setForHeight(state, height, anchorIntervalOf(state, net.interval))
}

async function newNet (name: string, validators: HDNodeWallet[], interval: number, params: { unbondingDelaySeconds?: number } = {}): Promise<Net> {
  const manifest = parseManifest({
    name, license: 'CC0-1.0', recordSchema: { type: 'object' }, anchorInterval: interval,
    validators: validators.map(v => ({ address: v.address, stake: ONE.toString() }))
  })
  const { id } = await encodeManifest(manifest)
  const { provider: p, signer } = localSigner(anvil?.url ?? '', anvil?.chainId ?? 31337, wallets[0]?.privateKey)
  try {
    await registerDatanet(signer, registry, id, manifest, { thresholdNumerator: 2, thresholdDenominator: 3, minStake: ONE, unbondingDelaySeconds: params.unbondingDelaySeconds ?? 3600 })
  } finally {
    p.destroy()
  }
  return { id, digest: datanetDigest(id), interval, validators, versions: new Map() }
}

/** The version the nodes finalize at `height`, decided by the set they give it. */
async function finalize (net: Net, height: number, set: ValidatorStake[]): Promise<VersionValue> {
  const parent: CID | null = net.versions.get(height - 1)?.cid ?? null
  const v = await versionValue({
    datanet: net.id, height, parent, contributions: [], rejected: [], inferences: [],
    datasetRoot: merkleRoot(records), recordCount: records.length, attributionRoot: new Uint8Array(32), totalAttributed: '0',
    validatorSetHash: validatorSetHash(set), proposer: set[0]?.address ?? '', timestamp: 1_750_000_000_000 + height
  })
  net.versions.set(height, v)
  return v
}

/** Precommits (the version's certificate) of every member of `set` we hold the key of. */
function certificate (net: Net, header: VersionHeader, set: ValidatorStake[]): Array<{ signer: string, signature: string }> {
  const digest = voteDigest(datanetDomain({ chainId: anvil?.chainId ?? 31337, registry, datanet: net.digest }), 'precommit', 0, header)
  return set.flatMap(v => {
    const w = wallets.find(x => x.address.toLowerCase() === v.address.toLowerCase())
    return w === undefined ? [] : [{ signer: w.address, signature: w.signingKey.sign(digest).serialized }]
  })
}

/** commitVersion as node/services/chain.ts sends it: the chain's current set, signers no longer in it left out. */
async function anchorAsNode (net: Net, height: number, from: RegistryClient): Promise<void> {
  const state = await chainState(net)
  const v = net.versions.get(height) as VersionValue
  const header = headerOf(v)
  const set = nodeSet(state, net, height) as ValidatorStake[]
  const current = activeSet(state)
  const active = new Set(current.map(x => x.address))
  await from.send('commitVersion', commitVersionArgs({ datanetId: net.digest, round: 0, header, signatures: certificate(net, header, set).filter(s => active.has(s.signer.toLowerCase())), validators: current }))
}

async function revertOfSend (p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p
  } catch (err) {
    return revertName(err) ?? `not a revert: ${(err as Error).message}`
  }
  return undefined
}

/** Finalizes heights from..to as the nodes do, anchoring at their schedule with `anchorer`. */
async function run (net: Net, from: number, to: number, anchorer: RegistryClient): Promise<void> {
  for (let h = from; h <= to; h++) {
    const state = await chainState(net)
    const set = nodeSet(state, net, h)
    assert.ok(set !== undefined, `the nodes have a set for height ${h}`)
    await finalize(net, h, set as ValidatorStake[])
    if (h % net.interval === 0) await anchorAsNode(net, h, anchorer)
  }
}

test.before(hook(async () => {
  anvil = await startAnvil()
  provider = new JsonRpcProvider(anvil.url, anvil.chainId, { staticNetwork: true, cacheTimeout: -1 })
  wallets = Array.from({ length: 10 }, (_, i) => HDNodeWallet.fromPhrase(ANVIL_MNEMONIC, undefined, `m/44'/60'/0'/0/${i}`).connect(provider))
  const { provider: p, signer } = localSigner(anvil.url, anvil.chainId)
  try {
    registry = (await deployRegistry(signer)).address
  } finally {
    p.destroy()
  }
  await client(wallets[0] as HDNodeWallet)
}))

test.after(hook(async () => {
  for (const c of clients) c.destroy()
  provider?.destroy()
  await anvil?.stop()
}))

test('an off-schedule anchor by a plain account while a join is pending does not stop the scheduled anchors', async () => {
  const genesis = wallets.slice(1, 5)
  const joiner = wallets[5] as HDNodeWallet
  const outsider = await client(wallets[6] as HDNodeWallet)
  const node = await client(genesis[0] as HDNodeWallet)
  const net = await newNet('off-schedule', genesis, 2)
  await run(net, 1, 2, node)
  // A validator joins with a large stake (3 of the 7 ETH): it counts from the next anchor on.
  await (await client(joiner)).send('joinValidator', [net.digest, '0x01'], { value: ONE * 3n })
  await finalize(net, 3, nodeSet(await chainState(net), net, 3) as ValidatorStake[])
  // Height 3's certificate is public (versions are served with it); an outsider anchors it.
  const offSchedule = await revertOfSend(anchorAsNode(net, 3, outsider))
  // The nodes go on: height 4 is decided by the set they give it and anchored on schedule.
  await run(net, 4, 4, node)
  const state = await chainState(net)
  assert.is(state.anchorInterval, 2, 'the interval is on chain')
  assert.is(state.anchors[state.anchors.length - 1]?.height, 4)
  // From height 5 on the joiner counts, in the nodes' view and the contract's alike.
  const five = nodeSet(state, net, 5)
  assert.ok(five?.some(v => v.address === joiner.address.toLowerCase()), 'the joiner decides height 5')
  assert.equal(five, activeSet(state))
  await run(net, 5, 6, node)
  assert.is(offSchedule, 'NotAnchorHeight', 'the off-schedule anchor is refused')
})

test.run()
