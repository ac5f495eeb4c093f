import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import {
  AbiCoder, Contract, ContractFactory, HDNodeWallet, Interface, JsonRpcProvider, TypedDataEncoder, concat, keccak256, parseEther, recoverAddress, toBeHex,
  type ContractTransactionReceipt, type ContractTransactionResponse, type TypedDataDomain
} from 'ethers'
import type { CID } from 'multiformats/cid'
import { cidOf, encodeCbor } from '../../src/codec/cbor.ts'
import { datanetDomain } from '../../src/codec/eip712.ts'
import { sha256, toHex } from '../../src/codec/hash.ts'
import { VOTE_TYPES, headerOf, validatorSetHash, versionValue, voteDigest, type VersionHeader, type VersionValue } from '../../src/consensus/version.ts'
import type { VoteType } from '../../src/consensus/types.ts'
import { merkleProof, merkleRoot } from '../../src/merkle/tree.ts'
import { activeSetHash, commitVersionArgs, compactSignature, packMember, type CommitVersionArgs, type SignedPrecommitInput, type ValidatorStakeInput } from '../../src/chain/commit-args.ts'
import { hook } from '../helpers/wait.ts'
import { genesisManifest } from '../../node/devnet/chain-setup.ts'
import { ANVIL_MNEMONIC, startAnvil, type Anvil } from './anvil.ts'

const SOURCE = fileURLToPath(new URL('../../src/chain/DatanetRegistry.sol', import.meta.url))
const ARTIFACT = fileURLToPath(new URL('../../src/chain/artifacts/DatanetRegistry.json', import.meta.url))
const artifact = JSON.parse(readFileSync(ARTIFACT, 'utf8')) as { abi: unknown[], bytecode: string, sourceSha256: string }
const iface = new Interface(artifact.abi as never)

const STAKE = parseEther('10')
const PARAMS = { thresholdNumerator: 2, thresholdDenominator: 3, minStake: parseEther('1'), unbondingDelay: 3600, anchorInterval: 1 }
const ROUND = 0

let anvil: Anvil | undefined
let provider: JsonRpcProvider
let wallets: HDNodeWallet[] = []
let registry: Contract
let chainId: number
let datanetCid: string
let datanetId: string
/** The manifest whose sha2-256 is datanetId: what `createDatanet` takes. */
let datanetManifest: Uint8Array
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
function sign (signers: HDNodeWallet[], header: VersionHeader, opts: { domain?: TypedDataDomain, type?: VoteType, round?: number } = {}): SignedPrecommitInput[] {
  const digest = voteDigest(opts.domain ?? domainFor(), opts.type ?? 'precommit', opts.round ?? ROUND, header)
  return signers.map(w => ({ signer: w.address, signature: w.signingKey.sign(digest).serialized }))
}

/** The active set as the contract reports it (validatorsOf, unordered). */
async function validatorsOf (c: Contract = registry, id: string = datanetId): Promise<ValidatorStakeInput[]> {
  const [addrs, stakes] = await view<[string[], bigint[]]>(c, 'validatorsOf', id)
  return addrs.map((address, i) => ({ address, stake: stakes[i] as bigint }))
}

/** commitVersion's arguments as the anchor service builds them (src/chain/commit-args.ts), against the contract's current set. */
async function argsFor (header: VersionHeader, signatures: SignedPrecommitInput[], opts: { c?: Contract, id?: string, validators?: ValidatorStakeInput[] } = {}): Promise<CommitVersionArgs> {
  const validators = opts.validators ?? await validatorsOf(opts.c, opts.id)
  return commitVersionArgs({ datanetId: opts.id ?? datanetId, round: ROUND, header, signatures, validators })
}

function commitRaw (args: CommitVersionArgs, c: Contract = registry): Promise<ContractTransactionReceipt> {
  return send(c, deployer, 'commitVersion', args)
}

async function commit (header: VersionHeader, sigs: SignedPrecommitInput[], c: Contract = registry, id: string = datanetId): Promise<ContractTransactionReceipt> {
  return await commitRaw(await argsFor(header, sigs, { c, id }), c)
}

/** `args` with its signatures replaced (each given as [index, wallet's 65-byte signature]). */
function withSignatures (args: CommitVersionArgs, sigs: Array<[number, string]>): CommitVersionArgs {
  return [args[0], args[1], args[2], args[3], sigs.map(([index, sig]) => ({ index: BigInt(index), ...compactSignature(sig) }))]
}

/** Signature pairs in index order. */
function byIndex (pairs: Array<[number, string]>): Array<[number, string]> {
  return [...pairs].sort((a, b) => a[0] - b[0])
}

const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n

/** The index of `w` in the packed, sorted members of `args`. */
function indexIn (args: CommitVersionArgs, w: HDNodeWallet): number {
  return args[3].findIndex(m => m >> 96n === BigInt(w.address))
}

async function makeVersion (height: number, parent: CID | null, recordHashes: Uint8Array[], attributionRoot: string, totalAttributed: bigint, set: HDNodeWallet[]): Promise<VersionValue> {
  return await versionValue({
    datanet: datanetCid,
    height,
    parent,
    contributions: [],
    rejected: [],
    inferences: [],
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

test.before(hook(async () => {
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
  const g = genesisManifest(genesis.map(w => ({ address: w.address, stake: STAKE })), { nonce: 'registry-test' })
  datanetManifest = g.bytes
  datanetCid = (await cidOf(g.bytes)).toString()
  datanetId = g.digest
}))

test.after(hook(async () => {
  provider?.destroy()
  await anvil?.stop()
}))

// ------------------------------------------------------------------ tests

test('the checked-in artifact matches the Solidity source', () => {
  const digest = createHash('sha256').update(readFileSync(SOURCE)).digest('hex')
  assert.is(artifact.sourceSha256, digest, 'run node scripts/build-contracts.ts')
  assert.ok(artifact.bytecode.length > 1000)
})

test('createDatanet: funds genesis stakes exactly, once', async () => {
  const addrs = genesis.map(w => w.address)
  const stakes = genesis.map(() => STAKE)
  await reverts(send(registry, deployer, 'createDatanet', [datanetManifest, PARAMS], STAKE * 3n), 'WrongValue')
  // the manifest schema refuses a repeated validator; the contract does too, whatever the bytes
  const { manifest } = genesisManifest(genesis.map(w => ({ address: w.address, stake: STAKE })))
  const twice = encodeCbor({ ...manifest, validators: [manifest.validators[0], manifest.validators[0]] })
  await reverts(send(registry, deployer, 'createDatanet', [twice, PARAMS], STAKE * 2n), 'DuplicateValidator')
  const receipt = await send(registry, deployer, 'createDatanet', [datanetManifest, PARAMS], STAKE * 4n)
  assert.is(eventsOf(receipt, 'DatanetCreated').length, 1)
  assert.equal(await activeSet(), addrs.map(a => a.toLowerCase()).sort())
  const [, stakesOut] = await view<[string[], bigint[]]>(registry, 'validatorsOf', datanetId)
  assert.equal([...stakesOut], stakes)
  // The set commitVersion takes: packed, sorted, and hashed as src/chain/commit-args.ts does.
  const [members, hash] = await view<[bigint[], string]>(registry, 'activeSet', datanetId)
  const input = genesis.map(w => ({ address: w.address, stake: STAKE }))
  assert.equal([...members], input.map(v => packMember(v.address, v.stake)).sort((a, b) => (a < b ? -1 : 1)))
  assert.is(hash, activeSetHash(input))
  await reverts(send(registry, deployer, 'createDatanet', [datanetManifest, PARAMS], STAKE * 4n), 'DatanetExists')
})

test('the contract reads the genesis set and interval of any manifest as the node does; damaged bytes are refused', async () => {
  // Manifests whose other fields hold every kind of CBOR item the reader must step over.
  const schemas: Array<Record<string, unknown>> = [
    { type: 'object' },
    { type: 'object', properties: { text: { type: 'string', maxLength: 70_000, pattern: '^[^\\u0000]*$' }, score: { type: 'number', minimum: -1.5, maximum: 1e300 } }, required: ['text'] },
    { anyOf: [{ type: 'null' }, { type: 'boolean', const: true }, { enum: [-1, 0, 24, 255, 256, 65_536, 2 ** 32, -(2 ** 40), 0.25] }], description: 'é'.repeat(300) }
  ]
  for (let i = 0; i < 9; i++) {
    const set = genesis.slice(0, 1 + (i % 4)).map((w, j) => ({ address: w.address, stake: STAKE + BigInt(i * 1000 + j) }))
    const interval = [1, 23, 24, 255, 256, 65_535][i % 6] as number
    const { manifest } = genesisManifest(set, { anchorInterval: interval, nonce: `reader ${i}` })
    const bytes = encodeCbor({ ...manifest, recordSchema: schemas[i % schemas.length], description: 'x'.repeat(i * 40) })
    const id = toHex(sha256(bytes))
    await send(registry, deployer, 'createDatanet', [bytes, { ...PARAMS, anchorInterval: interval }], set.reduce((a, v) => a + v.stake, 0n))
    const [addrs, stakes] = await view<[string[], bigint[]]>(registry, 'validatorsOf', id)
    assert.equal([...addrs], set.map(v => v.address), `manifest ${i}: the set`)
    assert.equal([...stakes], set.map(v => v.stake), `manifest ${i}: the stakes`)
  }
  const { manifest } = genesisManifest(genesis.map(w => ({ address: w.address, stake: STAKE })), { nonce: 'damaged' })
  const good = encodeCbor(manifest)
  const damaged: Array<[string, Uint8Array]> = [
    ['truncated', good.subarray(0, good.length - 3)],
    ['trailing byte', new Uint8Array([...good, 0])],
    ['not a map', encodeCbor([manifest])],
    ['no validators', encodeCbor(Object.fromEntries(Object.entries(manifest).filter(([k]) => k !== 'validators')))],
    ['a stake with a leading zero', encodeCbor({ ...manifest, validators: [{ address: genesis[0]?.address, stake: '0' + STAKE.toString() }] })],
    ['a stake that is a number', encodeCbor({ ...manifest, validators: [{ address: genesis[0]?.address, stake: 1 }] })],
    ['an address without 0x', encodeCbor({ ...manifest, validators: [{ address: genesis[0]?.address.slice(2) + '00', stake: STAKE.toString() }] })],
    ['an interval that is text', encodeCbor({ ...manifest, anchorInterval: '1' })],
    ['a length past the end', new Uint8Array([0xa1, 0x7b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])]
  ]
  for (const [what, bytes] of damaged) await reverts(send(registry, deployer, 'createDatanet', [bytes, PARAMS], STAKE * 4n), 'MalformedManifest').catch((err: unknown) => { throw new Error(`${what}: ${String(err)}`) })
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
  // A signer outside the active set: commit-args leaves it out (2 of 4 remain) ...
  await reverts(commit(header, sign(byAddress([...genesis.slice(0, 2), outsider]), header)), 'InsufficientStake')
  // ... and put in by hand at a member's index, it recovers to another address than that member.
  const good = await argsFor(header, sign(three, header))
  const [i0, i1, i2] = three.map(w => indexIn(good, w)) as [number, number, number]
  const [s0, s1, s2] = sign(three, header).map(s => s.signature) as [string, string, string]
  const outsiderSig = sign([outsider], header)[0]?.signature as string
  let e = await reverts(commitRaw(withSignatures(good, [[i0, s0], [i1, s1], [i2, outsiderSig]])), 'WrongSigner')
  assert.equal(e, [2n, outsider.address, three[2]?.address])
  // A signature whose index names another member than its signer (the fourth validator's index, with the third's signature).
  const i3 = indexIn(good, genesis.find(w => !three.includes(w)) as HDNodeWallet)
  e = await reverts(commitRaw(withSignatures(good, byIndex([[i0, s0], [i1, s1], [i3, s2]]))), 'WrongSigner')
  assert.equal(e.slice(1), [three[2]?.address, genesis.find(w => !three.includes(w))?.address])
  // An index past the set.
  e = await reverts(commitRaw(withSignatures(good, [[i0, s0], [i1, s1], [4, s2]])), 'SignerIndexOutOfRange')
  assert.equal(e, [2n, 4n])
  // A duplicate signer (and unsorted signers): indices must strictly increase.
  e = await reverts(commitRaw(withSignatures(good, [[i0, s0], [i0, s0], [i1, s1], [i2, s2]])), 'UnsortedOrDuplicateSigner')
  assert.equal(e, [1n, BigInt(i0)])
  await reverts(commitRaw(withSignatures(good, [[i2, s2], [i1, s1], [i0, s0]])), 'UnsortedOrDuplicateSigner')
  // commit-args itself keeps each signer once, in the set's order.
  const dup = await argsFor(header, [...sign([...three].reverse(), header), ...sign(three, header)])
  assert.equal(dup[4].map(s => s.index), [i0, i1, i2].sort((a, b) => a - b).map(BigInt))
  // The active set in calldata must be the contract's: another stake, a member missing, an extra member, another order.
  const members = good[3]
  const wrongSets: bigint[][] = [
    members.map((m, i) => (i === 0 ? m + 1n : m)),
    members.slice(0, 3),
    [...members, packMember(outsider.address, STAKE)].sort((a, b) => (a < b ? -1 : 1)),
    [...members].reverse()
  ]
  for (const set of wrongSets) {
    e = await reverts(commitRaw([good[0], good[1], good[2], set, good[4]]), 'WrongActiveSet')
    assert.is(e[1], activeSetHash(genesis.map(w => ({ address: w.address, stake: STAKE }))))
  }
  // A prevote is not a precommit; another round is another digest.
  await reverts(commit(header, sign(three, header, { type: 'prevote' })), 'WrongSigner')
  await reverts(commit(header, sign(three, header, { round: 1 })), 'WrongSigner')
  // Signatures under another chain id, contract or datanet recover to other addresses.
  await reverts(commit(header, sign(three, header, { domain: domainFor({ chainId: chainId + 1 }) })), 'WrongSigner')
  await reverts(commit(header, sign(three, header, { domain: domainFor({ registry: outsider.address }) })), 'WrongSigner')
  await reverts(commit(header, sign(three, header, { domain: domainFor({ datanet: '0x' + '11'.repeat(32) }) })), 'WrongSigner')
  // A malformed signature: no point for r, and a high s (malleable).
  const zero = '0x' + '00'.repeat(32)
  e = await reverts(commitRaw([good[0], good[1], good[2], good[3], [{ index: 0n, r: zero, vs: zero }]]), 'InvalidSignature')
  assert.equal(e, [0n])
  // r past the curve order (ERC-2098 cannot carry a high s: its top bit is the parity).
  const first = good[4][0] as { index: bigint, r: string, vs: string }
  e = await reverts(commitRaw([good[0], good[1], good[2], good[3], [{ ...first, r: toBeHex(SECP256K1_N + 1n, 32) }]]), 'InvalidSignature')
  assert.equal(e, [0n])
})

test('commitVersion: 3 of 4 precommits anchor the version', async () => {
  const header = headerOf(v1)
  const receipt = await commit(header, sign(byAddress(genesis.slice(1, 4)), header))
  const [event] = eventsOf(receipt, 'VersionCommitted')
  assert.is(event?.[0], datanetId)
  assert.is(event?.[1], 1n)
  assert.is(event?.[2], v1.id)
  // datasetRoot, attributionRoot, totalAttributed, round, submitter (the rest of the header is in the calldata)
  assert.equal(event?.slice(3), [header.datasetRoot, attributionRoot, AMOUNT_A + AMOUNT_B, BigInt(ROUND), deployer.address])
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
  // Pending, so it cannot sign version 3: commit-args leaves it out of the contract's set (2 of 4 remain) ...
  await reverts(commit(header, sign(byAddress([...genesis.slice(0, 2), joiner]), header)), 'InsufficientStake')
  // ... and a set that already counts it is not the contract's.
  const withJoiner = [...await validatorsOf(), { address: joiner.address, stake: STAKE }]
  await reverts(commitRaw(await argsFor(header, sign([...genesis.slice(0, 2), joiner], header), { validators: withJoiner })), 'WrongActiveSet')
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
  const setBefore = await validatorsOf()
  const receipt = await commit(h5, sign(byAddress([...genesis, joiner]), h5))
  assert.equal(eventsOf(receipt, 'ValidatorDeactivated').map(e => e[1]), [leaver.address])
  assert.not.ok((await activeSet()).includes(leaver.address.toLowerCase()))
  const v6 = await makeVersion(6, v5.cid, records, attributionRoot, AMOUNT_A + AMOUNT_B, [...genesis.slice(0, 3), joiner])
  const h6 = headerOf(v6)
  // The leaver's signature no longer counts (2 of 4 remain), and the set before the leave is not the contract's.
  await reverts(commit(h6, sign([leaver, genesis[0] as HDNodeWallet, joiner], h6)), 'InsufficientStake')
  await reverts(commitRaw(await argsFor(h6, sign([...genesis, joiner], h6), { validators: setBefore })), 'WrongActiveSet')
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
  const v7 = await makeVersion(7, v3.cid, records, attributionRoot, AMOUNT_A + AMOUNT_B, genesis)
  const a = headerOf(v7)
  const b = headerOf(await makeVersion(7, v3.cid, records.slice(0, 4), attributionRoot, AMOUNT_A + AMOUNT_B, genesis))
  const voteA = { voteType: 1, round: 2, header: a }
  const voteB = { voteType: 1, round: 2, header: b }
  const [sigA] = sign([culprit], a, { type: 'prevote', round: 2 }).map(s => s.signature)
  const [sigB] = sign([culprit], b, { type: 'prevote', round: 2 }).map(s => s.signature)
  const [sigBRound3] = sign([culprit], b, { type: 'prevote', round: 3 }).map(s => s.signature)
  const [sigBOther] = sign([genesis[1] as HDNodeWallet], b, { type: 'prevote', round: 2 }).map(s => s.signature)
  const [sigAPrecommit] = sign([culprit], a, { type: 'precommit', round: 2 }).map(s => s.signature)
  const setBefore = await validatorsOf()
  // The same vote twice, another round, another type, two signers: not equivocation.
  await reverts(send(registry, outsider, 'slash', [datanetId, voteA, sigA, voteA, sigA]), 'NotConflicting')
  await reverts(send(registry, outsider, 'slash', [datanetId, voteA, sigA, { ...voteB, round: 3 }, sigBRound3]), 'NotConflicting')
  await reverts(send(registry, outsider, 'slash', [datanetId, { ...voteA, voteType: 2 }, sigAPrecommit, voteB, sigB]), 'NotConflicting')
  await reverts(send(registry, outsider, 'slash', [datanetId, voteA, sigA, voteB, sigBOther]), 'SignersDiffer')
  await reverts(send(registry, outsider, 'slash', [datanetId, voteA, sigA, { ...voteB, header: { ...b, height: 8 } }, sigB]), 'NotConflicting')
  const receipt = await send(registry, outsider, 'slash', [datanetId, voteA, sigA, voteB, sigB])
  assert.equal(eventsOf(receipt, 'Slashed')[0]?.slice(1, 3), [culprit.address, STAKE])
  let info = await view<unknown[]>(registry, 'datanet', datanetId)
  assert.is(info[8], STAKE)
  await reverts(send(registry, outsider, 'slash', [datanetId, voteA, sigA, voteB, sigB]), 'NothingToSlash')
  await reverts(send(registry, culprit, 'withdraw', [datanetId]), 'NothingToWithdraw')
  await reverts(send(registry, culprit, 'leaveValidator', [datanetId]), 'LeaveAlreadyRequested')
  // The stake is gone, but the set that decided height 7 (every node counts the culprit's
  // weight there) is the contract's until that anchor: its certificate still verifies.
  assert.equal(await validatorsOf(), setBefore)
  const h7 = a
  const committed = await commit(h7, sign(byAddress([culprit, ...genesis.slice(1, 3)]), h7))
  assert.equal(eventsOf(committed, 'ValidatorDeactivated').map(e => [e[1], e[3]]), [[culprit.address, 0n]])
  assert.not.ok((await activeSet()).includes(culprit.address.toLowerCase()))
  info = await view<unknown[]>(registry, 'datanet', datanetId)
  assert.is(info[7], STAKE * 3n)
  // Out of the set now: its signature no longer counts.
  const h8 = headerOf(await makeVersion(8, v7.cid, records, attributionRoot, AMOUNT_A + AMOUNT_B, genesis))
  await reverts(commit(h8, sign([culprit, genesis[1] as HDNodeWallet], h8)), 'InsufficientStake')
  await reverts(commitRaw(await argsFor(h8, sign(genesis.slice(0, 3), h8), { validators: setBefore })), 'WrongActiveSet')
  await commit(h8, sign(byAddress([...genesis.slice(1, 3), joiner]), h8))
})

test('a certificate for one datanet or contract does not verify on another', async () => {
  // Another datanet on the same contract, with the same validators.
  const otherManifest = genesisManifest(genesis.map(w => ({ address: w.address, stake: STAKE })), { nonce: 'other' })
  const otherId = otherManifest.digest
  await send(registry, deployer, 'createDatanet', [otherManifest.bytes, PARAMS], STAKE * 4n)
  const header = headerOf(await makeVersion(1, null, records, '0x' + '00'.repeat(32), 0n, genesis))
  await reverts(commit(header, sign(byAddress(genesis), header), registry, otherId), 'WrongSigner')
  await commit(header, sign(byAddress(genesis), header, { domain: domainFor({ datanet: otherId }) }), registry, otherId)
  // Another contract with the same datanet id.
  const other = await new ContractFactory(artifact.abi as never, artifact.bytecode, deployer).deploy() as Contract
  await other.waitForDeployment()
  await send(other, deployer, 'createDatanet', [datanetManifest, PARAMS], STAKE * 4n)
  await reverts(commit(header, sign(byAddress(genesis), header), other, datanetId), 'WrongSigner')
  await commit(header, sign(byAddress(genesis), header, { domain: domainFor({ registry: String(other.target) }) }), other, datanetId)
})

test('the threshold is exactly the node\'s 2/3: 2 of 3 equal validators anchor; a threshold under 2/3 is refused', async () => {
  const three = genesis.slice(0, 3)
  const thirds = genesisManifest(three.map(w => ({ address: w.address, stake: STAKE })), { nonce: 'thirds' })
  const thirdsId = thirds.digest
  await reverts(send(registry, deployer, 'createDatanet', [thirds.bytes, { ...PARAMS, thresholdNumerator: 3, thresholdDenominator: 5 }], STAKE * 3n), 'InvalidParams')
  await send(registry, deployer, 'createDatanet', [thirds.bytes, PARAMS], STAKE * 3n)
  const header = headerOf(await makeVersion(1, null, records, '0x' + '00'.repeat(32), 0n, three))
  const domain = domainFor({ datanet: thirdsId })
  await reverts(commit(header, sign(byAddress(three.slice(0, 1)), header, { domain }), registry, thirdsId), 'InsufficientStake')
  await commit(header, sign(byAddress(three.slice(0, 2)), header, { domain }), registry, thirdsId)
})

test('gas figures', () => {
  process.stdout.write(`\n  gas: commitVersion (4 signatures) ${gas.commit4}, claim ${gas.claim} (scripts/bench/gas.ts has the full table)\n`)
  assert.ok((gas.commit4 ?? 0n) > 0n && (gas.claim ?? 0n) > 0n)
  assert.ok((gas.commit4 as bigint) < 100_000n, `commitVersion with 4 signatures costs ${gas.commit4} (target < 100,000)`)
})

test.run()
