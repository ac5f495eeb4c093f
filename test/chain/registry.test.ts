import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import {
  AbiCoder, Contract, ContractFactory, HDNodeWallet, Interface, JsonRpcProvider, TypedDataEncoder, concat, keccak256, parseEther, recoverAddress,
  type ContractTransactionReceipt, type ContractTransactionResponse, type TypedDataDomain
} from 'ethers'
import type { CID } from 'multiformats/cid'
import { cidOf, encodeCbor } from '../../src/codec/cbor.ts'
import { datanetDomain } from '../../src/codec/eip712.ts'
import { sha256, toHex } from '../../src/codec/hash.ts'
import { VOTE_TYPES, headerOf, validatorSetHash, versionValue, voteDigest, type VersionHeader, type VersionValue } from '../../src/consensus/version.ts'
import type { VoteType } from '../../src/consensus/types.ts'
import { merkleProof, merkleRoot } from '../../src/merkle/tree.ts'
import { ANVIL_MNEMONIC, startAnvil, type Anvil } from './anvil.ts'

const SOURCE = fileURLToPath(new URL('../../src/chain/DatanetRegistry.sol', import.meta.url))
const ARTIFACT = fileURLToPath(new URL('../../src/chain/artifacts/DatanetRegistry.json', import.meta.url))
const artifact = JSON.parse(readFileSync(ARTIFACT, 'utf8')) as { abi: unknown[], bytecode: string, sourceSha256: string }
const iface = new Interface(artifact.abi as never)

const STAKE = parseEther('10')
const PARAMS = { thresholdNumerator: 2, thresholdDenominator: 3, minStake: parseEther('1'), unbondingDelay: 3600 }
const ROUND = 0

let anvil: Anvil | undefined
let provider: JsonRpcProvider
let wallets: HDNodeWallet[] = []
let registry: Contract
let chainId: number
let datanetCid: string
let datanetId: string
/** Genesis validators 1..4, sorted by address later when signing. */
let genesis: HDNodeWallet[]
let joiner: HDNodeWallet
let outsider: HDNodeWallet
let contributorA: HDNodeWallet
let contributorB: HDNodeWallet
let deployer: HDNodeWallet

const records = ['alpha', 'beta', 'gamma', 'delta', 'epsilon'].map(t => sha256(new TextEncoder().encode(JSON.stringify({ text: t }) + '\n')))
const gas: Record<string, bigint> = {}
let v1: VersionValue
let v2: VersionValue

// ------------------------------------------------------------------ helpers

function fn (c: Contract, name: string): (...args: unknown[]) => Promise<ContractTransactionResponse> {
  return c.getFunction(name) as unknown as (...args: unknown[]) => Promise<ContractTransactionResponse>
}

async function view<T> (c: Contract, name: string, ...args: unknown[]): Promise<T> {
  return await c.getFunction(name).staticCall(...args) as T
}

async function send (c: Contract, signer: HDNodeWallet, name: string, args: unknown[], value?: bigint): Promise<ContractTransactionReceipt> {
  const connected = c.connect(signer) as Contract
  const tx = await fn(connected, name)(...args, ...(value === undefined ? [] : [{ value }]))
  const receipt = await tx.wait()
  if (receipt === null) throw new Error('no receipt')
  return receipt
}

/** Awaits a call that must revert with the custom error `name` (decoded with the contract's interface). */
async function reverts (p: Promise<unknown>, name: string): Promise<unknown[]> {
  try {
    await p
  } catch (err) {
    const e = err as { data?: string, info?: { error?: { data?: string } } }
    const data = e.data ?? e.info?.error?.data
    assert.type(data, 'string', `revert without data: ${String(err)}`)
    const parsed = iface.parseError(data as string)
    assert.ok(parsed !== null, `unknown revert data ${String(data)}`)
    assert.is(parsed?.name, name)
    return [...(parsed?.args ?? [])]
  }
  assert.unreachable(`expected revert ${name}`)
  return []
}

function eventsOf (receipt: ContractTransactionReceipt, name: string): unknown[][] {
  return receipt.logs.map(l => iface.parseLog(l)).filter(l => l?.name === name).map(l => [...(l?.args ?? [])])
}

function domainFor (binding: { chainId?: number, registry?: string, datanet?: string } = {}): TypedDataDomain {
  return datanetDomain({ chainId: binding.chainId ?? chainId, registry: binding.registry ?? String(registry.target), datanet: binding.datanet ?? datanetId })
}

function byAddress (signers: HDNodeWallet[]): HDNodeWallet[] {
  return [...signers].sort((a, b) => (BigInt(a.address) < BigInt(b.address) ? -1 : 1))
}

/** Signatures of `signers` over the vote digest the node computes, in the given order. */
function sign (signers: HDNodeWallet[], header: VersionHeader, opts: { domain?: TypedDataDomain, type?: VoteType, round?: number } = {}): string[] {
  const digest = voteDigest(opts.domain ?? domainFor(), opts.type ?? 'precommit', opts.round ?? ROUND, header)
  return signers.map(w => w.signingKey.sign(digest).serialized)
}

function commit (header: VersionHeader, sigs: string[], c: Contract = registry, id: string = datanetId): Promise<ContractTransactionReceipt> {
  return send(c, deployer, 'commitVersion', [id, ROUND, header, sigs])
}

async function makeVersion (height: number, parent: CID | null, recordHashes: Uint8Array[], attributionRoot: string, totalAttributed: bigint, set: HDNodeWallet[]): Promise<VersionValue> {
  return await versionValue({
    datanet: datanetCid,
    height,
    parent,
    contributions: [],
    rejected: [],
    datasetRoot: merkleRoot(recordHashes),
    recordCount: recordHashes.length,
    attributionRoot: new Uint8Array(Buffer.from(attributionRoot.slice(2), 'hex')),
    totalAttributed: totalAttributed.toString(),
    validatorSetHash: validatorSetHash(set.map(w => ({ address: w.address, stake: STAKE }))),
    proposer: set[0]?.address ?? '',
    timestamp: 1_750_000_000_000 + height
  })
}

/** OpenZeppelin StandardMerkleTree leaf of (address, uint256). */
function claimLeaf (account: string, amount: bigint): string {
  return keccak256(keccak256(AbiCoder.defaultAbiCoder().encode(['address', 'uint256'], [account, amount])))
}

function keccakPair (a: string, b: string): string {
  return BigInt(a) < BigInt(b) ? keccak256(concat([a, b])) : keccak256(concat([b, a]))
}

async function balance (address: string): Promise<bigint> {
  return await provider.getBalance(address)
}

async function activeSet (c: Contract = registry, id: string = datanetId): Promise<string[]> {
  const [addrs] = await view<[string[], bigint[]]>(c, 'validatorsOf', id)
  return [...addrs].map(a => a.toLowerCase()).sort()
}

// ------------------------------------------------------------------ setup

test.before(async () => {
  anvil = await startAnvil()
  chainId = anvil.chainId
  provider = new JsonRpcProvider(anvil.url, chainId, { staticNetwork: true, pollingInterval: 20, cacheTimeout: -1 })
  wallets = Array.from({ length: 10 }, (_, i) => HDNodeWallet.fromPhrase(ANVIL_MNEMONIC, undefined, `m/44'/60'/0'/0/${i}`).connect(provider))
  deployer = wallets[0] as HDNodeWallet
  genesis = wallets.slice(1, 5)
  joiner = wallets[5] as HDNodeWallet
  outsider = wallets[6] as HDNodeWallet
  contributorA = wallets[7] as HDNodeWallet
  contributorB = wallets[8] as HDNodeWallet
  const factory = new ContractFactory(artifact.abi as never, artifact.bytecode, deployer)
  registry = await factory.deploy() as Contract
  await registry.waitForDeployment()
  const manifestCid = await cidOf(encodeCbor({ name: 'registry-test', schema: { type: 'object' } }))
  datanetCid = manifestCid.toString()
  datanetId = toHex(manifestCid.multihash.digest)
})

test.after(async () => {
  provider?.destroy()
  await anvil?.stop()
})

// ------------------------------------------------------------------ tests

test('the checked-in artifact matches the Solidity source', () => {
  const digest = createHash('sha256').update(readFileSync(SOURCE)).digest('hex')
  assert.is(artifact.sourceSha256, digest, 'run node scripts/build-contracts.ts')
  assert.ok(artifact.bytecode.length > 1000)
})

test('createDatanet: funds genesis stakes exactly, once', async () => {
  const addrs = genesis.map(w => w.address)
  const stakes = genesis.map(() => STAKE)
  await reverts(send(registry, deployer, 'createDatanet', [datanetId, PARAMS, addrs, stakes], STAKE * 3n), 'WrongValue')
  await reverts(send(registry, deployer, 'createDatanet', [datanetId, PARAMS, [addrs[0], addrs[0]], [STAKE, STAKE]], STAKE * 2n), 'DuplicateValidator')
  const receipt = await send(registry, deployer, 'createDatanet', [datanetId, PARAMS, addrs, stakes], STAKE * 4n)
  assert.is(eventsOf(receipt, 'DatanetCreated').length, 1)
  assert.equal(await activeSet(), addrs.map(a => a.toLowerCase()).sort())
  const [, stakesOut] = await view<[string[], bigint[]]>(registry, 'validatorsOf', datanetId)
  assert.equal([...stakesOut], stakes)
  await reverts(send(registry, deployer, 'createDatanet', [datanetId, PARAMS, addrs, stakes], STAKE * 4n), 'DatanetExists')
})

test('node and contract agree on the domain and the vote digest', async () => {
  v1 = await makeVersion(1, null, records, '0x' + '00'.repeat(32), 0n, genesis)
  const header = headerOf(v1)
  const domain = domainFor()
  assert.is(await view<string>(registry, 'domainSeparator', datanetId), TypedDataEncoder.hashDomain(domain))
  const nodeDigest = voteDigest(domain, 'precommit', 3, header)
  assert.is(await view<string>(registry, 'voteDigest', datanetId, { voteType: 2, round: 3, header }), nodeDigest)
  // A wallet's own EIP-712 signing gives the same digest.
  const w = genesis[0] as HDNodeWallet
  const sig = await w.signTypedData(domain, VOTE_TYPES, { voteType: 2, round: 3, header })
  assert.is(recoverAddress(nodeDigest, sig), w.address)
})

// Attribution: A is owed 1 ETH, B 0.5 ETH.
const AMOUNT_A = parseEther('1')
const AMOUNT_B = parseEther('0.5')
let attributionRoot: string

test('commitVersion refusals at the first height', async () => {
  const leafA = claimLeaf(contributorA.address, AMOUNT_A)
  const leafB = claimLeaf(contributorB.address, AMOUNT_B)
  attributionRoot = keccakPair(leafA, leafB)
  v1 = await makeVersion(1, null, records, attributionRoot, AMOUNT_A + AMOUNT_B, genesis)
  const header = headerOf(v1)
  const three = byAddress(genesis.slice(0, 3))
  // Nothing funded yet: attributing 1.5 ETH is refused.
  await reverts(commit(header, sign(three, header)), 'OverAttributed')
  await send(registry, contributorB, 'fund', [datanetId], parseEther('2'))
  // Two of four (50%) is under 2/3.
  const args = await reverts(commit(header, sign(byAddress(genesis.slice(0, 2)), header)), 'InsufficientStake')
  assert.equal(args, [STAKE * 2n, STAKE * 4n])
  // No signatures at all.
  await reverts(commit(header, []), 'InsufficientStake')
  // A signer outside the active set.
  await reverts(commit(header, sign(byAddress([...genesis.slice(0, 2), outsider]), header)), 'NotActiveValidator')
  // A duplicate signer (and unsorted signers).
  const g0 = three[0] as HDNodeWallet
  await reverts(commit(header, sign([g0, g0, three[1] as HDNodeWallet, three[2] as HDNodeWallet], header)), 'UnsortedOrDuplicateSigner')
  await reverts(commit(header, sign([...three].reverse(), header)), 'UnsortedOrDuplicateSigner')
  // A prevote is not a precommit; another round is another digest.
  await reverts(commit(header, sign(three, header, { type: 'prevote' })), 'NotActiveValidator')
  await reverts(commit(header, sign(three, header, { round: 1 })), 'NotActiveValidator')
  // Signatures under another chain id, contract or datanet recover to other addresses.
  await reverts(commit(header, sign(three, header, { domain: domainFor({ chainId: chainId + 1 }) })), 'NotActiveValidator')
  await reverts(commit(header, sign(three, header, { domain: domainFor({ registry: outsider.address }) })), 'NotActiveValidator')
  await reverts(commit(header, sign(three, header, { domain: domainFor({ datanet: '0x' + '11'.repeat(32) }) })), 'NotActiveValidator')
  // A malformed signature.
  await reverts(commit(header, ['0x1234']), 'InvalidSignature')
})

test('commitVersion: 3 of 4 precommits anchor the version', async () => {
  const header = headerOf(v1)
  const receipt = await commit(header, sign(byAddress(genesis.slice(1, 4)), header))
  const [event] = eventsOf(receipt, 'VersionCommitted')
  assert.is(event?.[0], datanetId)
  assert.is(event?.[1], 1n)
  assert.is(event?.[2], v1.id)
  const info = await view<unknown[]>(registry, 'datanet', datanetId)
  assert.is(info[1], 1n)
  assert.is(info[2], v1.id)
  assert.is(info[3], attributionRoot)
  assert.is(info[4], AMOUNT_A + AMOUNT_B)
  assert.is(await view<string>(registry, 'datasetRootAt', datanetId, 1), header.datasetRoot)
  // The same certificate again (another submitter racing) is stale.
  await reverts(commit(header, sign(byAddress(genesis.slice(0, 3)), header)), 'StaleHeight')
})

test('commitVersion with all 4 signatures (gas)', async () => {
  v2 = await makeVersion(2, v1.cid, records, attributionRoot, AMOUNT_A + AMOUNT_B, genesis)
  const header = headerOf(v2)
  const receipt = await commit(header, sign(byAddress(genesis), header))
  gas.commit4 = receipt.gasUsed
})

test('verifyRecord checks a src/merkle proof against the committed dataset root', async () => {
  for (let i = 0; i < records.length; i++) {
    const proof = merkleProof(records, i).map(toHex)
    assert.ok(await view<boolean>(registry, 'verifyRecord', datanetId, 1, toHex(records[i] as Uint8Array), proof), `record ${i}`)
  }
  const proof0 = merkleProof(records, 0).map(toHex)
  assert.not.ok(await view<boolean>(registry, 'verifyRecord', datanetId, 1, toHex(records[1] as Uint8Array), proof0))
  assert.not.ok(await view<boolean>(registry, 'verifyRecord', datanetId, 1, toHex(sha256(new Uint8Array([1]))), proof0))
  await reverts(view(registry, 'verifyRecord', datanetId, 99, toHex(records[0] as Uint8Array), proof0), 'UnknownVersion')
})

test('old heights and wrong parents are refused', async () => {
  const stale = headerOf(await makeVersion(2, v1.cid, records, attributionRoot, AMOUNT_A + AMOUNT_B, genesis))
  await reverts(commit(stale, sign(byAddress(genesis), stale)), 'StaleHeight')
  const wrongParent = headerOf(await makeVersion(3, v1.cid, records, attributionRoot, AMOUNT_A + AMOUNT_B, genesis))
  await reverts(commit(wrongParent, sign(byAddress(genesis), wrongParent)), 'WrongParent')
  const over = headerOf(await makeVersion(3, v2.cid, records, attributionRoot, parseEther('2.01'), genesis))
  await reverts(commit(over, sign(byAddress(genesis), over)), 'OverAttributed')
  const less = headerOf(await makeVersion(3, v2.cid, records, attributionRoot, parseEther('1'), genesis))
  await reverts(commit(less, sign(byAddress(genesis), less)), 'AttributionDecreased')
})

test('claim pays the cumulative amount once; wrong proofs pay nothing', async () => {
  const leafA = claimLeaf(contributorA.address, AMOUNT_A)
  const leafB = claimLeaf(contributorB.address, AMOUNT_B)
  const before = await balance(contributorA.address)
  // Anyone may submit; the account is paid.
  const receipt = await send(registry, deployer, 'claim', [datanetId, contributorA.address, AMOUNT_A, [leafB]])
  gas.claim = receipt.gasUsed
  assert.is(await balance(contributorA.address) - before, AMOUNT_A)
  assert.equal(eventsOf(receipt, 'Claimed')[0]?.slice(1), [contributorA.address, AMOUNT_A, AMOUNT_A])
  await reverts(send(registry, deployer, 'claim', [datanetId, contributorA.address, AMOUNT_A, [leafB]]), 'NothingToClaim')
  assert.is(await balance(contributorA.address) - before, AMOUNT_A)
  // Wrong amount, wrong account, wrong sibling.
  await reverts(send(registry, deployer, 'claim', [datanetId, contributorA.address, AMOUNT_A * 2n, [leafB]]), 'InvalidProof')
  await reverts(send(registry, deployer, 'claim', [datanetId, outsider.address, AMOUNT_A, [leafB]]), 'InvalidProof')
  await reverts(send(registry, deployer, 'claim', [datanetId, contributorB.address, AMOUNT_B, [leafB]]), 'InvalidProof')
  const beforeB = await balance(contributorB.address)
  await send(registry, deployer, 'claim', [datanetId, contributorB.address, AMOUNT_B, [leafA]])
  assert.is(await balance(contributorB.address) - beforeB, AMOUNT_B)
  const info = await view<unknown[]>(registry, 'datanet', datanetId)
  assert.is(info[6], AMOUNT_A + AMOUNT_B)
})

let v3: VersionValue

test('a joining validator becomes active after the next commit', async () => {
  await reverts(send(registry, joiner, 'joinValidator', [datanetId, '0x01'], parseEther('0.5')), 'StakeTooLow')
  const receipt = await send(registry, joiner, 'joinValidator', [datanetId, '0x0102'], STAKE)
  assert.is(eventsOf(receipt, 'ValidatorJoinRequested').length, 1)
  await reverts(send(registry, joiner, 'joinValidator', [datanetId, '0x01'], STAKE), 'AlreadyValidator')
  assert.not.ok((await activeSet()).includes(joiner.address.toLowerCase()))
  v3 = await makeVersion(3, v2.cid, records, attributionRoot, AMOUNT_A + AMOUNT_B, genesis)
  const header = headerOf(v3)
  // Pending, so it cannot sign version 3.
  await reverts(commit(header, sign(byAddress([...genesis.slice(0, 3), joiner]), header)), 'NotActiveValidator')
  const committed = await commit(header, sign(byAddress(genesis.slice(0, 3)), header))
  assert.equal(eventsOf(committed, 'ValidatorActivated').map(e => e[1]), [joiner.address])
  assert.ok((await activeSet()).includes(joiner.address.toLowerCase()))
  // Now 3 of 5 (60%) is short of 2/3, and the joiner counts.
  const v4 = await makeVersion(4, v3.cid, records, attributionRoot, AMOUNT_A + AMOUNT_B, [...genesis, joiner])
  const h4 = headerOf(v4)
  await reverts(commit(h4, sign(byAddress(genesis.slice(0, 3)), h4)), 'InsufficientStake')
  await commit(h4, sign(byAddress([...genesis.slice(0, 3), joiner]), h4))
  v3 = v4
})

test('a leaving validator unbonds after the delay', async () => {
  const leaver = genesis[3] as HDNodeWallet
  await reverts(send(registry, outsider, 'leaveValidator', [datanetId]), 'NotActiveValidator')
  await send(registry, leaver, 'leaveValidator', [datanetId])
  await reverts(send(registry, leaver, 'leaveValidator', [datanetId]), 'LeaveAlreadyRequested')
  await reverts(send(registry, leaver, 'withdraw', [datanetId]), 'NothingToWithdraw')
  // Still active (and may sign) until the next commit.
  const v5 = await makeVersion(5, v3.cid, records, attributionRoot, AMOUNT_A + AMOUNT_B, [...genesis, joiner])
  const h5 = headerOf(v5)
  const receipt = await commit(h5, sign(byAddress([...genesis, joiner]), h5))
  assert.equal(eventsOf(receipt, 'ValidatorDeactivated').map(e => e[1]), [leaver.address])
  assert.not.ok((await activeSet()).includes(leaver.address.toLowerCase()))
  const v6 = await makeVersion(6, v5.cid, records, attributionRoot, AMOUNT_A + AMOUNT_B, [...genesis.slice(0, 3), joiner])
  const h6 = headerOf(v6)
  await reverts(commit(h6, sign(byAddress([...genesis, joiner]), h6)), 'NotActiveValidator')
  await reverts(send(registry, leaver, 'withdraw', [datanetId]), 'StillBonded')
  await provider.send('evm_increaseTime', [PARAMS.unbondingDelay - 100])
  await provider.send('evm_mine', [])
  await reverts(send(registry, leaver, 'withdraw', [datanetId]), 'StillBonded')
  await provider.send('evm_increaseTime', [200])
  await provider.send('evm_mine', [])
  const before = await balance(leaver.address)
  const w = await send(registry, leaver, 'withdraw', [datanetId])
  assert.is(await balance(leaver.address) - before, STAKE - w.gasUsed * w.gasPrice)
  await reverts(send(registry, leaver, 'withdraw', [datanetId]), 'NothingToWithdraw')
  await commit(h6, sign(byAddress([...genesis.slice(0, 3), joiner]), h6))
  v3 = v6
})

test('slash: conflicting votes burn the stake; anything else is refused', async () => {
  const culprit = genesis[0] as HDNodeWallet
  const a = headerOf(await makeVersion(7, v3.cid, records, attributionRoot, AMOUNT_A + AMOUNT_B, genesis))
  const b = headerOf(await makeVersion(7, v3.cid, records.slice(0, 4), attributionRoot, AMOUNT_A + AMOUNT_B, genesis))
  const voteA = { voteType: 1, round: 2, header: a }
  const voteB = { voteType: 1, round: 2, header: b }
  const [sigA] = sign([culprit], a, { type: 'prevote', round: 2 })
  const [sigB] = sign([culprit], b, { type: 'prevote', round: 2 })
  const [sigBRound3] = sign([culprit], b, { type: 'prevote', round: 3 })
  const [sigBOther] = sign([genesis[1] as HDNodeWallet], b, { type: 'prevote', round: 2 })
  const [sigAPrecommit] = sign([culprit], a, { type: 'precommit', round: 2 })
  // The same vote twice, another round, another type, two signers: not equivocation.
  await reverts(send(registry, outsider, 'slash', [datanetId, voteA, sigA, voteA, sigA]), 'NotConflicting')
  await reverts(send(registry, outsider, 'slash', [datanetId, voteA, sigA, { ...voteB, round: 3 }, sigBRound3]), 'NotConflicting')
  await reverts(send(registry, outsider, 'slash', [datanetId, { ...voteA, voteType: 2 }, sigAPrecommit, voteB, sigB]), 'NotConflicting')
  await reverts(send(registry, outsider, 'slash', [datanetId, voteA, sigA, voteB, sigBOther]), 'SignersDiffer')
  await reverts(send(registry, outsider, 'slash', [datanetId, voteA, sigA, { ...voteB, header: { ...b, height: 8 } }, sigB]), 'NotConflicting')
  const receipt = await send(registry, outsider, 'slash', [datanetId, voteA, sigA, voteB, sigB])
  assert.equal(eventsOf(receipt, 'Slashed')[0]?.slice(1, 3), [culprit.address, STAKE])
  assert.not.ok((await activeSet()).includes(culprit.address.toLowerCase()))
  const info = await view<unknown[]>(registry, 'datanet', datanetId)
  assert.is(info[7], STAKE * 3n)
  assert.is(info[8], STAKE)
  await reverts(send(registry, outsider, 'slash', [datanetId, voteA, sigA, voteB, sigB]), 'NothingToSlash')
  await reverts(send(registry, culprit, 'withdraw', [datanetId]), 'NothingToWithdraw')
  // The slashed validator no longer counts.
  const h7 = a
  await reverts(commit(h7, sign(byAddress(genesis.slice(0, 3)), h7)), 'NotActiveValidator')
  await commit(h7, sign(byAddress([...genesis.slice(1, 3), joiner]), h7))
})

test('a certificate for one datanet or contract does not verify on another', async () => {
  // Another datanet on the same contract, with the same validators.
  const otherId = '0x' + '22'.repeat(32)
  const addrs = genesis.map(w => w.address)
  await send(registry, deployer, 'createDatanet', [otherId, PARAMS, addrs, addrs.map(() => STAKE)], STAKE * 4n)
  const header = headerOf(await makeVersion(1, null, records, '0x' + '00'.repeat(32), 0n, genesis))
  await reverts(commit(header, sign(byAddress(genesis), header), registry, otherId), 'NotActiveValidator')
  await commit(header, sign(byAddress(genesis), header, { domain: domainFor({ datanet: otherId }) }), registry, otherId)
  // Another contract with the same datanet id.
  const other = await new ContractFactory(artifact.abi as never, artifact.bytecode, deployer).deploy() as Contract
  await other.waitForDeployment()
  await send(other, deployer, 'createDatanet', [datanetId, PARAMS, addrs, addrs.map(() => STAKE)], STAKE * 4n)
  await reverts(commit(header, sign(byAddress(genesis), header), other, datanetId), 'NotActiveValidator')
  await commit(header, sign(byAddress(genesis), header, { domain: domainFor({ registry: String(other.target) }) }), other, datanetId)
})

test('the threshold is exactly the node\'s 2/3: 2 of 3 equal validators anchor; a threshold under 2/3 is refused', async () => {
  const thirdsId = '0x' + '33'.repeat(32)
  const three = genesis.slice(0, 3)
  const addrs = three.map(w => w.address)
  await reverts(send(registry, deployer, 'createDatanet', [thirdsId, { ...PARAMS, thresholdNumerator: 3, thresholdDenominator: 5 }, addrs, addrs.map(() => STAKE)], STAKE * 3n), 'InvalidParams')
  await send(registry, deployer, 'createDatanet', [thirdsId, PARAMS, addrs, addrs.map(() => STAKE)], STAKE * 3n)
  const header = headerOf(await makeVersion(1, null, records, '0x' + '00'.repeat(32), 0n, three))
  const domain = domainFor({ datanet: thirdsId })
  await reverts(commit(header, sign(byAddress(three.slice(0, 1)), header, { domain }), registry, thirdsId), 'InsufficientStake')
  await commit(header, sign(byAddress(three.slice(0, 2)), header, { domain }), registry, thirdsId)
})

test('gas figures', () => {
  process.stdout.write(`\n  gas: commitVersion (4 signatures) ${gas.commit4}, claim ${gas.claim}\n`)
  assert.ok((gas.commit4 ?? 0n) > 0n && (gas.claim ?? 0n) > 0n)
})

test.run()
