/**
 * Anchoring on one aggregate BLS signature (issue 14 item 9) on a real anvil (Prague: the
 * EIP-2537 precompiles), with the node's own code: keys, proofs and aggregates from
 * src/chain/bls.ts, digests from src/consensus/version.ts. Each attack is played against the
 * contract, and the rogue-key attack also against a variant compiled without the proof of
 * possession, where it forges an anchor.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Contract, ContractFactory, HDNodeWallet, Interface, JsonRpcProvider, Wallet, parseEther, type InterfaceAbi, type Signer } from 'ethers'
import { bls12_381 as bls } from '@noble/curves/bls12-381.js'
import { readFileSync } from 'node:fs'
import { datanetDomain } from '../../src/codec/eip712.ts'
import { voteDigest, type VersionHeader } from '../../src/consensus/version.ts'
import {
  blsPublicKey, blsSecretKey, commitVersionBlsArgs, decodeG2, encodeG1, encodeG2, proveKeyPossession, signDigest, verifyAggregate
} from '../../src/chain/bls.ts'
import { genesisManifest } from '../../node/devnet/chain-setup.ts'
import { compileRegistry, SOURCE_PATH } from '../../scripts/build-contracts.ts'
import { hook } from '../helpers/wait.ts'
import { startAnvil, type Anvil } from './anvil.ts'

const artifact = JSON.parse(readFileSync(new URL('../../src/chain/artifacts/DatanetRegistry.json', import.meta.url), 'utf8')) as { abi: unknown[], bytecode: string }
const errors = new Interface(artifact.abi as InterfaceAbi)
const ONE = parseEther('1')
const PARAMS = { thresholdNumerator: 2, thresholdDenominator: 3, minStake: ONE, unbondingDelay: 3600, anchorInterval: 1 }
const ZERO = '0x' + '00'.repeat(32)

let anvil: Anvil | undefined
let provider: JsonRpcProvider

/** A new account, funded (each send asks the chain for its nonce: a refused send takes none). */
function account (): { wallet: HDNodeWallet, signer: Signer } {
  const wallet = HDNodeWallet.createRandom()
  funding.push(provider.send('anvil_setBalance', [wallet.address, '0x' + (100n * ONE).toString(16)]))
  return { wallet, signer: new Wallet(wallet.privateKey, provider) }
}
const funding: Array<Promise<unknown>> = []

async function deploy (bytecode = artifact.bytecode, abi = artifact.abi): Promise<Contract> {
  const { signer } = account()
  await Promise.all(funding)
  const c = await new ContractFactory(abi as InterfaceAbi, bytecode, signer).deploy()
  await c.waitForDeployment()
  return c as Contract
}

/** The contract error a call reverts with (its name), or undefined when it does not revert. */
async function revertOf (p: Promise<unknown>): Promise<string | undefined> {
  try {
    const tx = await p as { wait?: () => Promise<unknown> }
    await tx.wait?.()
  } catch (err) {
    const e = err as { revert?: { name?: string }, data?: string }
    const parsed = typeof e.data === 'string' ? errors.parseError(e.data) : null
    return e.revert?.name ?? parsed?.name ?? `not a contract error: ${(err as Error).message.slice(0, 200)}`
  }
  return undefined
}

interface Validator { wallet: HDNodeWallet, signer: Signer, secret: Uint8Array }

function validators (n: number): Validator[] {
  return Array.from({ length: n }, () => {
    const a = account()
    return { ...a, secret: blsSecretKey(a.wallet.privateKey) }
  })
}

async function register (registry: Contract, v: Validator): Promise<void> {
  await Promise.all(funding)
  const { key, proof } = proveKeyPossession(v.secret, v.wallet.address)
  await (await (registry.connect(v.signer) as Contract).getFunction('registerBlsKey').send(key, proof)).wait()
}

/** A datanet of `set` (1 ether each): its id (the manifest's digest). */
async function createDatanet (registry: Contract, set: Validator[], nonce: string): Promise<string> {
  const m = genesisManifest(set.map(v => ({ address: v.wallet.address, stake: ONE })), { nonce })
  const { signer } = account()
  await Promise.all(funding)
  await (await (registry.connect(signer) as Contract).getFunction('createDatanet').send(m.bytes, PARAMS, { value: ONE * BigInt(set.length) })).wait()
  return m.digest
}

/** The header of `height` in a chain of headers named `tag` (each names its parent's version). */
function header (height: number, tag = 'a'): VersionHeader {
  const h = (s: string): string => '0x' + Buffer.from(s.padEnd(32, '.')).toString('hex')
  return {
    height, parent: height > 1 ? h(`version ${tag} ${height - 1}`) : ZERO, datasetRoot: h(`root ${tag} ${height}`), recordCount: 3,
    attributionRoot: ZERO, totalAttributed: '0', validatorSetHash: ZERO, version: h(`version ${tag} ${height}`)
  } as unknown as VersionHeader
}

async function digestOf (registry: Contract, id: string, h: VersionHeader, round = 0): Promise<string> {
  return voteDigest(datanetDomain({ chainId: anvil?.chainId ?? 31337, registry: await registry.getAddress(), datanet: id }), 'precommit', round, h)
}

/** commitVersionBls signed by `signers` of `set`. */
async function commitBls (registry: Contract, id: string, set: Validator[], signers: Validator[], h: VersionHeader): Promise<unknown> {
  const digest = await digestOf(registry, id, h)
  const args = commitVersionBlsArgs({
    datanetId: id, round: 0, header: h,
    signatures: signers.map(v => ({ signer: v.wallet.address, signature: signDigest(v.secret, digest) })),
    validators: set.map(v => ({ address: v.wallet.address, stake: ONE }))
  })
  return await registry.getFunction('commitVersionBls').send(...args)
}

async function lastHeight (registry: Contract, id: string): Promise<bigint> {
  const d = await registry.getFunction('datanet').staticCall(id) as unknown as [unknown, bigint]
  return d[1]
}

test.before(async () => {
  anvil = await startAnvil()
  provider = new JsonRpcProvider(anvil.url, anvil.chainId, { staticNetwork: true, polling: false, cacheTimeout: -1 })
})

test.after(async () => {
  provider?.destroy()
  await anvil?.stop()
})

test('a key and its proof from the node agree with the contract: registered once, readable, bound to its owner', hook(async () => {
  const registry = await deploy()
  const [a, b] = validators(2) as [Validator, Validator]
  // someone copies a's key and proof to register a's key as theirs (to be counted for a's signatures)
  const copied = proveKeyPossession(a.secret, a.wallet.address)
  assert.is(await revertOf((registry.connect(b.signer) as Contract).getFunction('registerBlsKey').send(copied.key, copied.proof)), 'InvalidBlsKey')
  await register(registry, a)
  assert.is(await registry.getFunction('blsKeyOf').staticCall(a.wallet.address), blsPublicKey(a.secret))
  assert.is(await revertOf((registry.connect(a.signer) as Contract).getFunction('registerBlsKey').send(copied.key, copied.proof)), 'BlsKeyExists')
  // the point at infinity, whose "proof" is the point at infinity: it would let anyone sign as its owner
  const zero = encodeG2(bls.G2.Point.ZERO)
  assert.is(await revertOf((registry.connect(b.signer) as Contract).getFunction('registerBlsKey').send(zero, encodeG1(bls.G1.Point.ZERO))), 'InvalidBlsKey')
  // bytes that are no point of G2
  const junk = '0x' + '00'.repeat(16) + '11'.repeat(48) + ('00'.repeat(16) + '22'.repeat(48)).repeat(3)
  assert.ok(await revertOf((registry.connect(b.signer) as Contract).getFunction('registerBlsKey').send(junk, copied.proof)) !== undefined)
  assert.is(await registry.getFunction('blsKeyOf').staticCall(b.wallet.address), '0x')
}))

test('an aggregate of 2/3 of the set anchors; fewer, a lie about who is absent, or another header do not', hook(async () => {
  const registry = await deploy()
  const set = validators(4)
  for (const v of set) await register(registry, v)
  const id = await createDatanet(registry, set, 'bls quorum')
  const keys = set.map(v => blsPublicKey(v.secret))
  assert.is(await registry.getFunction('aggregateKeyOf').staticCall(id), encodeG2(bls.shortSignatures.aggregatePublicKeys(keys.map(decodeG2))))

  await (await commitBls(registry, id, set, set, header(1)) as { wait: () => Promise<unknown> }).wait()
  assert.is(await lastHeight(registry, id), 1n)
  await (await commitBls(registry, id, set, set.slice(0, 3), header(2)) as { wait: () => Promise<unknown> }).wait()
  assert.is(await lastHeight(registry, id), 2n)

  assert.is(await revertOf(commitBls(registry, id, set, set.slice(0, 2), header(3))), 'InsufficientStake')
  // three signed, but the caller names nobody absent: the key checked is all four's
  const h = header(3)
  const digest = await digestOf(registry, id, h)
  const three = commitVersionBlsArgs({
    datanetId: id, round: 0, header: h,
    signatures: set.slice(0, 3).map(v => ({ signer: v.wallet.address, signature: signDigest(v.secret, digest) })),
    validators: set.map(v => ({ address: v.wallet.address, stake: ONE }))
  })
  assert.ok(verifyAggregate(three[4], digest, keys.slice(0, 3)))
  assert.not.ok(verifyAggregate(three[4], digest, keys))
  assert.is(await revertOf(registry.getFunction('commitVersionBls').send(three[0], three[1], three[2], [], three[4])), 'InvalidAggregateSignature')
  // the absent named twice (its stake subtracted twice, its key too), or someone outside the set
  const absent = three[3][0] as string
  assert.is(await revertOf(registry.getFunction('commitVersionBls').send(three[0], three[1], three[2], [absent, absent], three[4])), 'UnsortedOrDuplicateAbsent')
  const outsider = account().wallet.address
  assert.is(await revertOf(registry.getFunction('commitVersionBls').send(three[0], three[1], three[2], [outsider], three[4])), 'NotActiveValidator')
  // the same signatures offered for another round's precommit
  assert.is(await revertOf(registry.getFunction('commitVersionBls').send(three[0], 1, three[2], three[3], three[4])), 'InvalidAggregateSignature')
  // a signature that is no point of G1
  assert.ok(await revertOf(registry.getFunction('commitVersionBls').send(three[0], three[1], three[2], three[3], '0x' + '01'.repeat(128))) !== undefined)
  await (await registry.getFunction('commitVersionBls').send(...three)).wait()
  assert.is(await lastHeight(registry, id), 3n)
}))

test('a set with a member without a key has no BLS anchors until the key is registered and the aggregate refreshed', hook(async () => {
  const registry = await deploy()
  const set = validators(3)
  for (const v of set.slice(0, 2)) await register(registry, v)
  const id = await createDatanet(registry, set, 'bls unkeyed')
  assert.is(await registry.getFunction('aggregateKeyOf').staticCall(id), '0x')
  assert.is(await revertOf(commitBls(registry, id, set, set, header(1))), 'NoAggregateKey')
  await register(registry, set[2] as Validator)
  await (await registry.getFunction('refreshAggregateKey').send(id)).wait()
  await (await commitBls(registry, id, set, set, header(1)) as { wait: () => Promise<unknown> }).wait()
  assert.is(await lastHeight(registry, id), 1n)
}))

/** The aggregate key of `members` as the contract should hold it. */
function aggregateOf (members: Validator[]): string {
  return encodeG2(bls.shortSignatures.aggregatePublicKeys(members.map(v => decodeG2(blsPublicKey(v.secret)))))
}

async function send (registry: Contract, v: Validator, method: string, args: unknown[], value?: bigint): Promise<void> {
  await (await (registry.connect(v.signer) as Contract).getFunction(method).send(...args, value === undefined ? {} : { value })).wait()
}

test('the aggregate key follows the set: a joiner\'s key added, a leaver\'s taken away; a joiner without a key leaves the set without one until refreshed', hook(async () => {
  const registry = await deploy()
  const set = validators(3)
  for (const v of set) await register(registry, v)
  const id = await createDatanet(registry, set, 'bls follows the set')
  const [joiner, bare] = validators(2) as [Validator, Validator]
  await register(registry, joiner)
  await send(registry, joiner, 'joinValidator', [id, '0x01'], ONE)
  const wait = async (p: Promise<unknown>): Promise<void> => { await (await p as { wait: () => Promise<unknown> }).wait() }
  await wait(commitBls(registry, id, set, set, header(1)))
  const four = [...set, joiner]
  assert.is(await registry.getFunction('aggregateKeyOf').staticCall(id), aggregateOf(four), 'the joiner\'s key added')
  await send(registry, set[0] as Validator, 'leaveValidator', [id])
  await wait(commitBls(registry, id, four, four, header(2)))
  const three = four.slice(1)
  assert.is(await registry.getFunction('aggregateKeyOf').staticCall(id), aggregateOf(three), 'the leaver\'s key taken away')
  await send(registry, bare, 'joinValidator', [id, '0x01'], ONE)
  await wait(commitBls(registry, id, three, three, header(3)))
  assert.is(await registry.getFunction('aggregateKeyOf').staticCall(id), '0x')
  const withBare = [...three, bare]
  assert.is(await revertOf(commitBls(registry, id, withBare, three, header(4))), 'NoAggregateKey')
  await register(registry, bare)
  await (await registry.getFunction('refreshAggregateKey').send(id)).wait()
  assert.is(await registry.getFunction('aggregateKeyOf').staticCall(id), aggregateOf(withBare))
  await wait(commitBls(registry, id, withBare, withBare, header(4)))
  assert.is(await lastHeight(registry, id), 4n)
}))

/** Registers `rogue` = the attacker's key less the others' keys, with a proof made of nothing. */
async function rogueAttack (registry: Contract, tag: string): Promise<{ registered: string | undefined, forged: string | undefined, height: bigint }> {
  const honest = validators(3)
  for (const v of honest) await register(registry, v)
  const [attacker] = validators(1) as [Validator]
  const own = bls.shortSignatures.getPublicKey(attacker.secret)
  const rogue = own.subtract(bls.shortSignatures.aggregatePublicKeys(honest.map(v => decodeG2(blsPublicKey(v.secret)))))
  const registered = await revertOf((registry.connect(attacker.signer) as Contract).getFunction('registerBlsKey').send(encodeG2(rogue), encodeG1(bls.G1.Point.BASE)))
  const set = [...honest, attacker]
  const id = await createDatanet(registry, set, `rogue ${tag}`)
  // the set's aggregate key is now the attacker's own: it alone signs for all four
  const h = header(1, 'forged')
  const digest = await digestOf(registry, id, h)
  const args = commitVersionBlsArgs({ datanetId: id, round: 0, header: h, signatures: [{ signer: attacker.wallet.address, signature: signDigest(attacker.secret, digest) }], validators: set.map(v => ({ address: v.wallet.address, stake: ONE })) })
  const forged = await revertOf(registry.getFunction('commitVersionBls').send(args[0], args[1], args[2], [], args[4]))
  return { registered, forged, height: await lastHeight(registry, id) }
}

test('a rogue key (another member\'s keys subtracted) cannot be registered, so one member cannot sign for the set', hook(async () => {
  const kept = await rogueAttack(await deploy(), 'registry')
  assert.is(kept.registered, 'InvalidBlsKey')
  assert.is(kept.forged, 'NoAggregateKey')
  assert.is(kept.height, 0n)
  // the broken variant: registerBlsKey without the proof of possession
  const source = readFileSync(SOURCE_PATH, 'utf8')
  const check = 'if (!Bls12381.verify(proof, abi.encodePacked(msg.sender, key), BLS_POP_DST, k)) revert InvalidBlsKey();'
  assert.ok(source.includes(check), 'the proof-of-possession check is where the broken variant removes it')
  const broken = compileRegistry(source.replace(check, ''))
  const forged = await rogueAttack(await deploy(broken.bytecode, broken.abi), 'broken')
  assert.is(forged.registered, undefined)
  assert.is(forged.forged, undefined, 'without the proof, one member anchors alone')
  assert.is(forged.height, 1n)
}))

test.run()
