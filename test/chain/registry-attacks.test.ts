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
import { encodeCbor } from '../../src/codec/cbor.ts'
import { datanetDomain } from '../../src/codec/eip712.ts'
import { sha256 } from '../../src/codec/hash.ts'
import { headerOf, validatorSetHash, versionValue, voteDigest, type VersionHeader, type VersionValue } from '../../src/consensus/version.ts'
import { merkleRoot } from '../../src/merkle/tree.ts'
import { commitVersionArgs } from '../../src/chain/commit-args.ts'
import { RegistryClient, revertName } from '../../src/chain/registry-client.ts'
import { activeSet, anchorIntervalOf, inferenceEscrow, replayRegistryLog, setForHeight, type DatanetChainState, type ValidatorStake } from '../../src/chain/registry-state.ts'
import { deployRegistry, genesisManifest, localSigner, registerDatanet } from '../../node/devnet/chain-setup.ts'
import { datanetDigest, encodeManifest, parseManifest } from '../../src/datanet/manifest.ts'
import { hook } from '../helpers/wait.ts'
import { ANVIL_MNEMONIC, startAnvil, type Anvil } from './anvil.ts'

const ONE = parseEther('1')
const records = ['a', 'b', 'c'].map(t => sha256(new TextEncoder().encode(t)))

let anvil: Anvil | undefined
let provider: JsonRpcProvider
let registry = ''
let wallets: HDNodeWallet[] = []
/** Keys of generated accounts (the mass joiners), by lowercase address. */
const keys = new Map<string, HDNodeWallet | Wallet>()
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

async function newNet (name: string, validators: HDNodeWallet[], interval: number, params: { unbondingDelaySeconds?: number, minStake?: bigint, stakes?: bigint[] } = {}): Promise<Net> {
  const manifest = parseManifest({
    name, license: 'CC0-1.0', recordSchema: { type: 'object' }, anchorInterval: interval,
    validators: validators.map((v, i) => ({ address: v.address, stake: (params.stakes?.[i] ?? ONE).toString() }))
  })
  const { id } = await encodeManifest(manifest)
  const { provider: p, signer } = localSigner(anvil?.url ?? '', anvil?.chainId ?? 31337, wallets[0]?.privateKey)
  try {
    await registerDatanet(signer, registry, id, manifest, { thresholdNumerator: 2, thresholdDenominator: 3, minStake: params.minStake ?? ONE, unbondingDelaySeconds: params.unbondingDelaySeconds ?? 3600 })
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
    const w = wallets.find(x => x.address.toLowerCase() === v.address.toLowerCase()) ?? keys.get(v.address.toLowerCase())
    return w === undefined ? [] : [{ signer: w.address, signature: w.signingKey.sign(digest).serialized }]
  })
}

/**
 * commitVersion as node/services/chain.ts sends it: the chain's current set, signers no longer
 * in it left out. The certificate holds every member we hold the key of, or only `online`.
 */
async function anchorAsNode (net: Net, height: number, from: RegistryClient, online?: HDNodeWallet[]): Promise<void> {
  const state = await chainState(net)
  const v = net.versions.get(height) as VersionValue
  const header = headerOf(v)
  const all = nodeSet(state, net, height) as ValidatorStake[]
  const set = online === undefined ? all : all.filter(v => online.some(w => w.address.toLowerCase() === v.address))
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

/** Two conflicting prevotes of `w` at (height, round): the evidence every node keeps and anyone may send. */
async function equivocation (net: Net, w: HDNodeWallet, height: number, round: number): Promise<unknown[]> {
  const domain = datanetDomain({ chainId: anvil?.chainId ?? 31337, registry, datanet: net.digest })
  const votes = await Promise.all([records, records.slice(1)].map(async recs => {
    const v = await versionValue({
      datanet: net.id, height, parent: null, contributions: [], rejected: [], inferences: [],
      datasetRoot: merkleRoot(recs), recordCount: recs.length, attributionRoot: new Uint8Array(32), totalAttributed: '0',
      validatorSetHash: new Uint8Array(32), proposer: w.address, timestamp: 1_750_000_000_000 + height
    })
    const header = headerOf(v)
    return [{ voteType: 1, round, header }, w.signingKey.sign(voteDigest(domain, 'prevote', round, header)).serialized]
  }))
  return [net.digest, ...(votes[0] as unknown[]), ...(votes[1] as unknown[])]
}

async function stakeOnChain (net: Net, address: string): Promise<bigint> {
  const v = await (clients[0] as RegistryClient).view<{ stake: bigint }>('validator', [net.digest, address])
  return BigInt(v.stake)
}

test('slashing evidence is taken once, and only for the stake that signed it within its unbonding window', async () => {
  const genesis = wallets.slice(1, 5)
  const culprit = genesis[3] as HDNodeWallet
  const node = await client(genesis[0] as HDNodeWallet)
  const outsider = await client(wallets[6] as HDNodeWallet)
  const net = await newNet('evidence', genesis, 1)
  await run(net, 1, 1, node)
  const evidence = await equivocation(net, culprit, 1, 0)
  await outsider.send('slash', evidence)
  assert.is(await stakeOnChain(net, culprit.address), 0n)
  await run(net, 2, 2, node)
  // The slashed validator stakes again and is back in the set.
  await (await client(culprit)).send('joinValidator', [net.digest, '0x01'], { value: ONE })
  await run(net, 3, 3, node)
  assert.ok(activeSet(await chainState(net)).some(v => v.address === culprit.address.toLowerCase()))
  // The same public evidence again: refused, the new stake stays.
  const replay = await revertOfSend(outsider.send('slash', evidence))
  assert.is(await stakeOnChain(net, culprit.address), ONE, 'the new stake is not slashed by old evidence')
  assert.is(replay, 'EvidenceUsed')
  // Other votes from before the new stake was bonded (height 1, another round): not its offence.
  assert.is(await revertOfSend(outsider.send('slash', await equivocation(net, culprit, 1, 1))), 'EvidenceOutOfWindow')
  // A validator that left and whose unbonding window passed is out of reach.
  const leaver = genesis[2] as HDNodeWallet
  const late = await equivocation(net, leaver, 4, 0)
  await (await client(leaver)).send('leaveValidator', [net.digest])
  await run(net, 4, 4, node)
  await provider.send('evm_increaseTime', [3601])
  await provider.send('evm_mine', [])
  assert.is(await revertOfSend(outsider.send('slash', late)), 'EvidenceOutOfWindow')
  assert.is(await stakeOnChain(net, leaver.address), ONE)
  // Fresh evidence within the window still slashes.
  await outsider.send('slash', await equivocation(net, culprit, 4, 0))
  assert.is(await stakeOnChain(net, culprit.address), 0n)
  await run(net, 5, 6, node)
})

test('a third party paying an event id first neither blocks nor takes over the operator\'s escrow', async () => {
  const genesis = wallets.slice(1, 5)
  const net = await newNet('escrow', genesis, 1)
  const operator = await client(wallets[7] as HDNodeWallet)
  const frontRunner = await client(wallets[8] as HDNodeWallet)
  const eventId = '0x' + 'ab'.repeat(32)
  // Seen in the mempool: the front-runner pays 1 wei for the same id first.
  await frontRunner.send('payInference', [net.digest, eventId], { value: 1n })
  const operatorPays = await revertOfSend(operator.send('payInference', [net.digest, eventId], { value: ONE }))
  assert.is(operatorPays, undefined, 'the operator\'s payment goes through')
  // Each node's escrow check finds the operator's fee for the event, not the 1 wei.
  const state = await chainState(net)
  assert.equal(inferenceEscrow(state, eventId, (wallets[7] as HDNodeWallet).address), { payer: (wallets[7] as HDNodeWallet).address.toLowerCase(), amount: ONE, block: inferenceEscrow(state, eventId, (wallets[7] as HDNodeWallet).address)?.block })
  assert.is(inferenceEscrow(state, eventId, (wallets[8] as HDNodeWallet).address)?.amount, 1n)
  assert.is(inferenceEscrow(state, eventId, (wallets[6] as HDNodeWallet).address), undefined)
  assert.is(await operator.view<bigint>('inferencePaid', [net.digest, (wallets[7] as HDNodeWallet).address, eventId]), ONE)
  // The same payer cannot pay the same event twice (the fee counts once).
  assert.is(await revertOfSend(operator.send('payInference', [net.digest, eventId], { value: ONE })), 'InferenceAlreadyPaid')
})

test('createDatanet refuses parameters the nodes cannot meet', async () => {
  const genesis = wallets.slice(1, 4)
  const deployer = await client(wallets[0] as HDNodeWallet)
  const base = { thresholdNumerator: 2, thresholdDenominator: 3, minStake: ONE, unbondingDelay: 60, anchorInterval: 1 }
  const { manifest } = genesisManifest(genesis.map(w => ({ address: w.address, stake: ONE })), { nonce: 'parameters' })
  // the manifest's own interval, written as given (the manifest schema refuses 0)
  const create = async (params: Record<string, unknown>): Promise<string | undefined> =>
    await revertOfSend(deployer.send('createDatanet', [encodeCbor({ ...manifest, anchorInterval: params.anchorInterval ?? 1 }), { ...base, ...params }], { value: ONE * 3n }))
  // the nodes finalize at 2/3 of the stake: a higher bar would refuse their certificates
  assert.is(await create({ thresholdNumerator: 3, thresholdDenominator: 4 }), 'InvalidParams', 'threshold 3/4')
  assert.is(await create({ thresholdNumerator: 1, thresholdDenominator: 1 }), 'InvalidParams', 'threshold 1/1')
  assert.is(await create({ unbondingDelay: 0 }), 'InvalidParams', 'no unbonding: evidence would find no stake')
  assert.is(await create({ minStake: 0n }), 'InvalidParams', 'minStake 0')
  assert.is(await create({ anchorInterval: 0 }), 'InvalidParams', 'anchorInterval 0')
  assert.is(await create({ anchorInterval: 65_536 }), 'InvalidParams', 'anchorInterval past 16 bits')
  assert.is(await revertOfSend(deployer.send('createDatanet', [encodeCbor(manifest), { ...base, anchorInterval: 2 }], { value: ONE * 3n })), 'InvalidParams', 'an interval that is not the manifest\'s')
  assert.is(await create({ thresholdNumerator: 4, thresholdDenominator: 6 }), undefined, '4/6 is 2/3')
})

test('a slash before the anchor lands does not make the certificate insufficient; the set is never emptied', async () => {
  // One validator holds half the stake; its precommit is in the certificate of height 2.
  const genesis = wallets.slice(1, 6)
  const big = genesis[0] as HDNodeWallet
  const node = await client(genesis[1] as HDNodeWallet)
  const outsider = await client(wallets[6] as HDNodeWallet)
  const net = await newNet('slash-quorum', genesis, 2, { stakes: [ONE * 4n, ONE, ONE, ONE, ONE] })
  await run(net, 1, 1, node)
  await finalize(net, 2, nodeSet(await chainState(net), net, 2) as ValidatorStake[])
  // It equivocated somewhere; the evidence lands before the anchor of height 2.
  await outsider.send('slash', await equivocation(net, big, 2, 3))
  // The certificate holds 6 of the 8 ETH: its own precommit and two others (two validators are offline).
  await anchorAsNode(net, 2, node, [big, genesis[1] as HDNodeWallet, genesis[2] as HDNodeWallet])
  const state = await chainState(net)
  assert.is(state.anchors[state.anchors.length - 1]?.height, 2)
  assert.not.ok(activeSet(state).some(v => v.address === big.address.toLowerCase()), 'out of the set after the anchor')
  assert.equal(nodeSet(state, net, 3), activeSet(state))
  await run(net, 3, 4, node)
  // A datanet's only validator equivocates: slashed, but it stays the set until another joins.
  const solo = wallets[7] as HDNodeWallet
  const single = await newNet('slash-last', [solo], 1)
  const soloNode = await client(solo)
  await run(single, 1, 1, soloNode)
  await outsider.send('slash', await equivocation(single, solo, 2, 0))
  await run(single, 2, 2, soloNode)
  assert.equal(activeSet(await chainState(single)).map(v => v.address), [solo.address.toLowerCase()])
  await (await client(wallets[8] as HDNodeWallet)).send('joinValidator', [single.digest, '0x01'], { value: ONE })
  await run(single, 3, 4, soloNode)
  assert.equal(activeSet(await chainState(single)).map(v => v.address), [(wallets[8] as HDNodeWallet).address.toLowerCase()])
})

test('hundreds of pending joins at minStake: each anchor applies a bounded number, the rest wait', async () => {
  const JOINERS = 600
  const genesis = wallets.slice(1, 5)
  const node = await client(genesis[0] as HDNodeWallet)
  const net = await newNet('mass-join', genesis, 1, { minStake: 1n })
  await run(net, 1, 1, node)
  const registryIface = (clients[0] as RegistryClient).contract.interface
  const data = registryIface.encodeFunctionData('joinValidator', [net.digest, '0x01'])
  const joiners = Array.from({ length: JOINERS }, () => Wallet.createRandom())
  for (const w of joiners) keys.set(w.address.toLowerCase(), w)
  for (let i = 0; i < joiners.length; i += 50) {
    const batch = joiners.slice(i, i + 50)
    await Promise.all(batch.map(async w => { await provider.send('anvil_setBalance', [w.address, '0x' + (10n ** 17n).toString(16)]) }))
    const sent = await Promise.all(batch.map(async w => await w.connect(provider).sendTransaction({ to: registry, data, value: 1n, nonce: 0, gasLimit: 300_000, chainId: anvil?.chainId, gasPrice: 2_000_000_000n, type: 0 })))
    await Promise.all(sent.map(async tx => await tx.wait()))
  }
  assert.is([...(await chainState(net)).validators.values()].filter(v => v.status === 'joining').length, JOINERS)
  const block = await provider.getBlock('latest')
  await run(net, 2, 2, node)
  const receipt = await provider.getTransactionReceipt((await chainState(net)).anchors.at(-1)?.txHash as string)
  const gasUsed = receipt?.gasUsed ?? 0n
  process.stdout.write(`\n  commitVersion applying joins with ${JOINERS} pending: ${gasUsed} gas (block gas limit ${block?.gasLimit})\n`)
  assert.ok(gasUsed < (block?.gasLimit ?? 0n) / 4n, `commitVersion used ${gasUsed} gas`)
  let state = await chainState(net)
  const activated = activeSet(state).length - genesis.length
  assert.ok(activated > 0 && activated < JOINERS, `${activated} joins applied at one anchor`)
  await run(net, 3, 4, node)
  state = await chainState(net)
  assert.is(activeSet(state).length - genesis.length, activated * 3)
  assert.equal(nodeSet(state, net, 5), activeSet(state))
})

test.run()
