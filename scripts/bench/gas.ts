/**
 * Gas of the registry contract (src/chain/DatanetRegistry.sol) on a fresh anvil, beside the
 * issue's targets: commitVersion at 4, 16 and 64 validators all signing (and the cost of
 * each further signature), at 4 validators with headers for 10 vs 1,000,000 records and
 * 1 vs 100,000 contributors (real roots: the header has a constant size), claim (first and
 * repeated), the worst set change one commit applies (MAX_SET_CHANGES joins of many pending),
 * slash, joinValidator, leaveValidator, fund; and anchoring on one aggregate BLS signature
 * (commitVersionBls) at 4, 16 and 64 validators and with 1, 8 and 21 of 64 absent, beside ECDSA. Each figure is the receipt's gasUsed;
 * "intrinsic" is what the transaction pays before any code runs (21,000 + calldata at
 * 4/16 gas per zero/non-zero byte), "execution" the rest.
 *
 *   bash scripts/run.sh node scripts/bench/gas.ts [contributors=100000] [records=1000000]
 *
 * Most of the run is building the 100,000-leaf attribution tree with ethers' (JavaScript) keccak.
 */
import {
  AbiCoder, Contract, ContractFactory, HDNodeWallet, JsonRpcProvider, Wallet, getBytes, keccak256, parseEther, toBeHex, toUtf8Bytes,
  type ContractTransactionReceipt, type ContractTransactionResponse
} from 'ethers'
import { hash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { blsSecretKey, commitVersionBlsArgs, proveKeyPossession, signDigest } from '../../src/chain/bls.ts'
import { commitVersionArgs } from '../../src/chain/commit-args.ts'
import { datanetDomain } from '../../src/codec/eip712.ts'
import { toHex } from '../../src/codec/hash.ts'
import { voteDigest, type VersionHeader } from '../../src/consensus/version.ts'
import { MerkleFrontier } from '../../src/merkle/tree.ts'
import { ANVIL_MNEMONIC, startAnvil, type Anvil } from '../../node/devnet/anvil.ts'
import { genesisManifest } from '../../node/devnet/chain-setup.ts'

const artifact = JSON.parse(readFileSync(new URL('../../src/chain/artifacts/DatanetRegistry.json', import.meta.url), 'utf8')) as { abi: unknown[], bytecode: string }
const PARAMS = { thresholdNumerator: 2, thresholdDenominator: 3, minStake: parseEther('1'), unbondingDelay: 3600, anchorInterval: 1 }
const STAKE = parseEther('1')
const ZERO = '0x' + '00'.repeat(32)
const MANY_CONTRIBUTORS = Number(process.argv[2] ?? 100_000)
const MANY_RECORDS = Number(process.argv[3] ?? 1_000_000)

let anvil: Anvil | undefined
let provider: JsonRpcProvider | undefined

async function shutdown (): Promise<void> {
  provider?.destroy()
  provider = undefined
  const a = anvil
  anvil = undefined
  await a?.stop()
}
let interrupted = false
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    interrupted = true
    void shutdown().finally(() => process.exit(130))
  })
}

// ------------------------------------------------------------------ trees

/** OpenZeppelin StandardMerkleTree leaf of (address, uint256): keccak256(keccak256(abi.encode(account, amount))). */
function claimLeaf (account: string, amount: bigint): string {
  const encoded = new Uint8Array(64) // abi.encode: the address right-aligned in a word, then the amount
  encoded.set(getBytes(account), 12)
  encoded.set(getBytes(toBeHex(amount, 32)), 32)
  return keccak256(keccak256(encoded))
}
{
  const a = '0x00000000000000000000000000000000000000a1'
  if (claimLeaf(a, 5n) !== keccak256(keccak256(AbiCoder.defaultAbiCoder().encode(['address', 'uint256'], [a, 5n])))) throw new Error('claimLeaf is not abi.encode')
}

/** A sorted-pair keccak tree (what MerkleProof.verify checks) over `leaves`: its root and the proof of leaf `index`. */
function attributionTree (leaves: string[], index = 0): { root: string, proof: string[] } {
  let level = leaves.map(l => getBytes(l))
  const proof: string[] = []
  while (level.length > 1) {
    const next: Uint8Array[] = []
    for (let i = 0; i < level.length; i += 2) {
      const a = level[i] as Uint8Array
      const b = level[i + 1]
      if (b === undefined) { next.push(a); continue }
      next.push(getBytes(keccak256(Buffer.compare(a, b) <= 0 ? Buffer.concat([a, b]) : Buffer.concat([b, a]))))
    }
    const sibling = level[index ^ 1]
    if (sibling !== undefined) proof.push(toHex(sibling))
    index >>= 1
    level = next
  }
  return { root: toHex(level[0] as Uint8Array), proof }
}

/** The dataset root of `n` records (the node's sha256 record tree over sha256 record hashes). */
function datasetRoot (n: number): string {
  const tree = new MerkleFrontier()
  const b = Buffer.alloc(32)
  for (let i = 0; i < n; i++) {
    b.writeUInt32BE(i, 0)
    tree.append(hash('sha256', b, 'buffer'))
  }
  return toHex(tree.root())
}

// ------------------------------------------------------------------ chain helpers

interface Measured { gas: bigint, intrinsic: bigint }

async function measure (receipt: ContractTransactionReceipt): Promise<Measured> {
  const tx = await provider?.getTransaction(receipt.hash)
  if (tx == null) throw new Error(`no transaction ${receipt.hash}`)
  let zero = 0n
  let nonzero = 0n
  for (const byte of getBytes(tx.data)) {
    if (byte === 0) zero++
    else nonzero++
  }
  return { gas: receipt.gasUsed, intrinsic: 21_000n + 4n * zero + 16n * nonzero }
}

async function send (c: Contract, signer: Wallet | HDNodeWallet, name: string, args: unknown[], value?: bigint): Promise<Measured> {
  const fn = (c.connect(signer) as Contract).getFunction(name) as unknown as (...a: unknown[]) => Promise<ContractTransactionResponse>
  const tx = await fn(...args, ...(value === undefined ? [] : [{ value }]))
  const receipt = await tx.wait()
  if (receipt === null || receipt.status !== 1) throw new Error(`${name} failed`)
  return await measure(receipt)
}

function wallet (label: string): Wallet {
  return new Wallet(keccak256(toUtf8Bytes(`gas-bench ${label}`)), provider)
}

/** A datanet of `n` validators on `registry`, funded, with its head at `height` and the pieces to commit the next version. */
class Net {
  readonly registry: Contract
  readonly chainId: number
  readonly submitter: HDNodeWallet
  readonly id: string
  readonly validators: Wallet[]
  /** The manifest `createDatanet` takes; `id` is its sha2-256. */
  readonly manifest: Uint8Array
  height = 0
  head = ZERO
  attributed = 0n

  constructor (registry: Contract, chainId: number, submitter: HDNodeWallet, label: string, n: number) {
    this.registry = registry
    this.chainId = chainId
    this.submitter = submitter
    this.validators = Array.from({ length: n }, (_, i) => wallet(`${label} validator ${i}`))
    const m = genesisManifest(this.validators.map(w => ({ address: w.address, stake: STAKE })), { nonce: `gas-bench datanet ${label}` })
    this.id = m.digest
    this.manifest = m.bytes
  }

  async create (): Promise<void> {
    await send(this.registry, this.submitter, 'createDatanet', [this.manifest, PARAMS], STAKE * BigInt(this.validators.length))
    await send(this.registry, this.submitter, 'fund', [this.id], parseEther('1000'))
  }

  /** Registers every validator's BLS key (each pays for its own); the last registration's gas. */
  async registerBlsKeys (): Promise<Measured> {
    let last: Measured | undefined
    for (const w of this.validators) {
      await provider?.send('anvil_setBalance', [w.address, toBeHex(parseEther('1'))])
      const { key, proof } = proveKeyPossession(blsSecretKey(w.privateKey), w.address)
      last = await send(this.registry, w, 'registerBlsKey', [key, proof])
    }
    return last as Measured
  }

  async activeSet (): Promise<Array<{ address: string, stake: bigint }>> {
    const [addrs, stakes] = await this.registry.getFunction('validatorsOf').staticCall(this.id) as [string[], bigint[]]
    return addrs.map((address, i) => ({ address, stake: stakes[i] as bigint }))
  }

  /** Commits the next height signed by `signers` (all validators by default), with fresh roots unless given. */
  async commit (opts: { signers?: Wallet[], bls?: boolean, recordCount?: number, datasetRoot?: string, attributionRoot?: string, totalAttributed?: bigint } = {}): Promise<Measured> {
    const height = this.height + 1
    const header: VersionHeader = {
      height,
      parent: this.head,
      datasetRoot: opts.datasetRoot ?? keccak256(toUtf8Bytes(`dataset ${this.id} ${height}`)),
      recordCount: opts.recordCount ?? 10,
      attributionRoot: opts.attributionRoot ?? keccak256(toUtf8Bytes(`attribution ${this.id} ${height}`)),
      totalAttributed: String(opts.totalAttributed ?? this.attributed + parseEther('0.01')),
      validatorSetHash: keccak256(toUtf8Bytes(`set ${this.id}`)),
      version: keccak256(toUtf8Bytes(`version ${this.id} ${height}`))
    }
    const domain = datanetDomain({ chainId: this.chainId, registry: String(this.registry.target), datanet: this.id })
    const digest = voteDigest(domain, 'precommit', 0, header)
    const signatures = opts.bls === true ? [] : (opts.signers ?? this.validators).map(w => ({ signer: w.address, signature: w.signingKey.sign(digest).serialized }))
    const validators = await this.activeSet()
    const m = opts.bls === true
      ? await send(this.registry, this.submitter, 'commitVersionBls', commitVersionBlsArgs({
        datanetId: this.id, round: 0, header, validators,
        signatures: (opts.signers ?? this.validators).map(w => ({ signer: w.address, signature: signDigest(blsSecretKey(w.privateKey), digest) }))
      }))
      : await send(this.registry, this.submitter, 'commitVersion', commitVersionArgs({ datanetId: this.id, round: 0, header, signatures, validators }))
    this.height = height
    this.head = header.version
    this.attributed = BigInt(header.totalAttributed)
    return m
  }
}

// ------------------------------------------------------------------ table

interface Row { what: string, m: Measured | undefined, target?: string, note?: string }
const rows: Row[] = []
const fmt = (n: bigint): string => n.toLocaleString('en-US')

function row (what: string, m: Measured | undefined, target?: string, note?: string): void {
  rows.push({ what, m, target, note })
}

function print (header: string): void {
  const w = Math.max(...rows.filter(r => r.m !== undefined).map(r => r.what.length), 20)
  process.stdout.write(`${header}\n\n`)
  process.stdout.write(`${'operation'.padEnd(w)}  ${'gas'.padStart(9)}  ${'intrinsic'.padStart(9)}  ${'execution'.padStart(9)}  ${'target'.padEnd(10)}  note\n`)
  process.stdout.write(`${'-'.repeat(w)}  ${'-'.repeat(9)}  ${'-'.repeat(9)}  ${'-'.repeat(9)}  ${'-'.repeat(10)}  ----\n`)
  for (const r of rows) {
    if (r.m === undefined) { process.stdout.write(`${r.what}\n`); continue }
    const cells = [fmt(r.m.gas).padStart(9), r.m.intrinsic > 0n ? fmt(r.m.intrinsic).padStart(9) : ''.padStart(9), r.m.intrinsic > 0n ? fmt(r.m.gas - r.m.intrinsic).padStart(9) : ''.padStart(9)]
    process.stdout.write(`${r.what.padEnd(w)}  ${cells.join('  ')}  ${(r.target ?? '').padEnd(10)}  ${r.note ?? ''}\n`)
  }
}

const verdict = (gas: bigint, limit: bigint): string => (gas < limit ? 'met' : 'MISSED')

// ------------------------------------------------------------------ run

async function main (): Promise<void> {
  anvil = await startAnvil()
  const p = new JsonRpcProvider(anvil.url, anvil.chainId, { staticNetwork: true, pollingInterval: 20, cacheTimeout: -1 })
  provider = p
  const info = await p.send('anvil_nodeInfo', []) as { hardFork?: string }
  const accounts = Array.from({ length: 10 }, (_, i) => HDNodeWallet.fromPhrase(ANVIL_MNEMONIC, undefined, `m/44'/60'/0'/0/${i}`).connect(p))
  const deployer = accounts[0] as HDNodeWallet
  const registry = await new ContractFactory(artifact.abi as never, artifact.bytecode, deployer).deploy() as Contract
  await registry.waitForDeployment()

  // commitVersion by set size, all signing; the first commit of a datanet fills zero slots, so measure the second.
  const bySize = new Map<number, Measured>()
  let net4: Net | undefined
  for (const n of [4, 16, 64]) {
    const net = new Net(registry, anvil.chainId, deployer, `size ${n}`, n)
    await net.create()
    const first = await net.commit()
    if (n === 4) { net4 = net; row('commitVersion, 4 validators, first commit of a datanet', first, '', 'zero slots filled once') }
    bySize.set(n, await net.commit())
  }
  const g4 = (bySize.get(4) as Measured).gas
  const g16 = (bySize.get(16) as Measured).gas
  const g64 = (bySize.get(64) as Measured).gas
  row('commitVersion, 4 validators, 4 signing', bySize.get(4), '< 100,000', verdict(g4, 100_000n))
  row('commitVersion, 16 validators, 16 signing', bySize.get(16))
  row('commitVersion, 64 validators, 64 signing', bySize.get(64))
  const d16 = (g16 - g4) / 12n
  const d64 = (g64 - g4) / 60n
  row(`  per further validator+signature, 4 -> 16: ${fmt(d16)}`, undefined)
  row(`  per further validator+signature, 4 -> 64: ${fmt(d64)}   (target < 6,000: ${verdict(d64 > d16 ? d64 : d16, 6_000n)})`, undefined)
  if (net4 === undefined) throw new Error('no 4-validator datanet')
  const quorum = await net4.commit({ signers: net4.validators.slice(0, 3) })
  row('commitVersion, 4 validators, 3 signing (2/3 quorum)', quorum)

  // Headers for small and large datasets and attributions: the same size, the same gas.
  const contributors = [1, MANY_CONTRIBUTORS]
  const trees = new Map<number, { root: string, proof: string[], amount: bigint }>()
  const amount = parseEther('0.001')
  for (const c of contributors) {
    // contributor 0 is a funded anvil account (so the claim below pays an existing account); the rest are derived addresses
    const addrs = Array.from({ length: c }, (_, i) => (i === 0 ? (accounts[7] as HDNodeWallet).address : toHex(hash('sha256', `contributor ${i}`, 'buffer').subarray(0, 20))))
    const tree = attributionTree(addrs.map(a => claimLeaf(a, amount)))
    trees.set(c, { ...tree, amount })
  }
  const roots = new Map<number, string>([[10, datasetRoot(10)], [MANY_RECORDS, datasetRoot(MANY_RECORDS)]])
  for (const records of [10, MANY_RECORDS]) {
    for (const c of contributors) {
      const t = trees.get(c) as { root: string }
      const m = await net4.commit({ recordCount: records, datasetRoot: roots.get(records), attributionRoot: t.root, totalAttributed: net4.attributed + BigInt(c) * amount })
      row(`commitVersion, 4 signing, ${records.toLocaleString('en-US')} records, ${c.toLocaleString('en-US')} contributor${c === 1 ? '' : 's'}`, m)
    }
  }
  // The last root is the many-contributor one: a claim from it.
  const big = trees.get(MANY_CONTRIBUTORS) as { root: string, proof: string[], amount: bigint }
  const bigFirst = await send(registry, accounts[9] as HDNodeWallet, 'claim', [net4.id, (accounts[7] as HDNodeWallet).address, big.amount, big.proof])

  // A commit that applies a set change (one join) re-hashes the set from storage.
  const joiner = accounts[5] as HDNodeWallet
  const join = await send(registry, joiner, 'joinValidator', [net4.id, '0x' + '01'.repeat(38)], STAKE)
  const withJoin = await net4.commit()
  row('commitVersion, 4 signing, applying one join', withJoin, '', 'set re-hashed from storage (rare)')

  // Claims against a 4-contributor attribution (proofs of two siblings): two funded accounts, one
  // address never used before (paying it creates the account), one left unclaimed.
  const claimant = accounts[7] as HDNodeWallet
  const claimant2 = accounts[8] as HDNodeWallet
  const relayer = accounts[9] as HDNodeWallet
  const fresh = wallet('fresh claimant').address
  const claims = new Net(registry, anvil.chainId, deployer, 'claims', 4)
  await claims.create()
  const cumulative = (round: number): bigint => parseEther('0.1') * BigInt(round)
  const owed = [claimant.address, claimant2.address, fresh, wallet('unclaimed').address]
  const proofFor = (round: number, i: number): { root: string, proof: string[] } => attributionTree(owed.map(a => claimLeaf(a, cumulative(round))), i)
  await claims.commit({ attributionRoot: proofFor(1, 0).root, totalAttributed: 4n * cumulative(1) })
  const firstSelf = await send(registry, claimant, 'claim', [claims.id, claimant.address, cumulative(1), proofFor(1, 0).proof])
  const firstRelayed = await send(registry, relayer, 'claim', [claims.id, claimant2.address, cumulative(1), proofFor(1, 1).proof])
  const firstNew = await send(registry, relayer, 'claim', [claims.id, fresh, cumulative(1), proofFor(1, 2).proof])
  await claims.commit({ attributionRoot: proofFor(2, 0).root, totalAttributed: 4n * cumulative(2) })
  const againSelf = await send(registry, claimant, 'claim', [claims.id, claimant.address, cumulative(2), proofFor(2, 0).proof])
  const againRelayed = await send(registry, relayer, 'claim', [claims.id, claimant2.address, cumulative(2), proofFor(2, 1).proof])
  row('claim, first, submitted by the account', firstSelf, '< 60,000', `${verdict(firstSelf.gas, 60_000n)}`)
  row('claim, first, submitted by a relayer', firstRelayed, '< 60,000', `${verdict(firstRelayed.gas, 60_000n)}: + 2,500 cold access to the paid account`)
  row('claim, first, relayed, to a never-used address', firstNew, '', '+ 25,000 the EVM charges to create the account')
  row('claim, repeated (higher cumulative), by the account', againSelf, '< 60,000', verdict(againSelf.gas, 60_000n))
  row('claim, repeated, by a relayer', againRelayed, '< 60,000', verdict(againRelayed.gas, 60_000n))
  row(`claim, first, ${MANY_CONTRIBUTORS.toLocaleString('en-US')}-contributor tree (${big.proof.length} siblings)`, bigFirst, '', 'the proof grows with log2(contributors)')
  const firstWrite = firstSelf.gas - againSelf.gas
  const floor = firstSelf.intrinsic + 22_100n + 6_700n
  row(`  first - repeated claim: ${fmt(firstWrite)} = the account's claimed-amount slot written zero -> non-zero (22,100) instead of again (5,000)`, undefined)
  row(`  a first claim by the account cannot cost under ${fmt(floor)} = intrinsic ${fmt(firstSelf.intrinsic)} (21,000 + calldata) + 22,100 that slot + 6,700 the value transfer (9,000 - 2,300 stipend)`, undefined)
  row(`  before reading the root (2,100), updating the pool's unclaimed total (5,000: what bounds the paid sum by the funded) and the Claimed event`, undefined)

  // The worst set change a commit applies: MAX_SET_CHANGES joins of many pending (the rest wait).
  const PENDING = 100
  const crowded = new Net(registry, anvil.chainId, deployer, 'crowded', 4)
  await crowded.create()
  await crowded.commit()
  const joiners = Array.from({ length: PENDING }, (_, i) => wallet(`crowd joiner ${i}`))
  for (const w of joiners) {
    await p.send('anvil_setBalance', [w.address, toBeHex(parseEther('2'))])
    await send(registry, w, 'joinValidator', [crowded.id, '0x01'], STAKE)
  }
  const cap = Number(await registry.getFunction('MAX_SET_CHANGES').staticCall() as bigint)
  const crowdedCommit = await crowded.commit()
  row(`commitVersion, 4 signing, applying ${cap} of ${PENDING} pending joins`, crowdedCommit, '', `the most one commit applies (worst case); ${PENDING - cap} wait`)
  crowded.validators.push(...joiners.slice(0, cap))
  row(`commitVersion, ${4 + cap} signing, applying the next ${cap}`, await crowded.commit())

  // Slashing: two conflicting prevotes of one validator.
  const culprit = net4.validators[0] as Wallet
  const domain4 = datanetDomain({ chainId: anvil.chainId, registry: String(registry.target), datanet: net4.id })
  const evidence = [1, 2].map(k => {
    const header: VersionHeader = { height: 99, parent: ZERO, datasetRoot: keccak256(toUtf8Bytes(`conflict ${k}`)), recordCount: 1, attributionRoot: ZERO, totalAttributed: '0', validatorSetHash: ZERO, version: keccak256(toUtf8Bytes(`conflicting ${k}`)) }
    return [{ voteType: 1, round: 0, header }, culprit.signingKey.sign(voteDigest(domain4, 'prevote', 0, header)).serialized]
  })
  row('slash (two conflicting prevotes)', await send(registry, relayer, 'slash', [net4.id, ...(evidence[0] as unknown[]), ...(evidence[1] as unknown[])]), '', 'the offence recorded: taken once')

  // Staking and funding.
  row('joinValidator (38-byte peer id)', join)
  const leaver = claims.validators[0] as Wallet
  await p.send('anvil_setBalance', [leaver.address, toBeHex(parseEther('1'))])
  row('leaveValidator', await send(registry, leaver, 'leaveValidator', [claims.id]))
  const funded = new Net(registry, anvil.chainId, deployer, 'fund', 4)
  row('createDatanet (4 validators, the manifest read from its bytes)', await send(registry, deployer, 'createDatanet', [funded.manifest, PARAMS], STAKE * 4n), '', `${funded.manifest.length}-byte manifest; once per datanet`)
  row('fund', await send(registry, relayer, 'fund', [funded.id], parseEther('1')))

  // One aggregate BLS signature (issue 14 item 9): gas by set size and by absent members, beside ECDSA.
  const blsBySize = new Map<number, Measured>()
  let net64: Net | undefined
  let registration: Measured | undefined
  for (const n of [4, 16, 64]) {
    const net = new Net(registry, anvil.chainId, deployer, `bls size ${n}`, n)
    registration = await net.registerBlsKeys()
    await net.create()
    await net.commit({ bls: true })
    blsBySize.set(n, await net.commit({ bls: true }))
    if (n === 64) net64 = net
  }
  if (net64 === undefined) throw new Error('no 64-validator datanet')
  row('registerBlsKey (the proof of possession checked; once per validator)', registration, '', 'a pairing check and the key stored as code')
  for (const n of [4, 16, 64]) {
    const m = blsBySize.get(n) as Measured
    row(`commitVersionBls, ${n} validators, ${n} signing`, m, n === 64 ? '< 200,000' : '', n === 64 ? verdict(m.gas, 200_000n) : '')
  }
  const absentGas = new Map<number, Measured>()
  for (const absent of [1, 8, 21]) {
    const m = await net64.commit({ bls: true, signers: net64.validators.slice(absent) })
    absentGas.set(absent, m)
    row(`commitVersionBls, 64 validators, ${64 - absent} signing (${absent} absent)`, m)
  }
  const perAbsent = ((absentGas.get(21) as Measured).gas - (blsBySize.get(64) as Measured).gas) / 21n
  row(`  per absent member: ${fmt(perAbsent)} (its key read and subtracted); per signer: 0`, undefined)
  const joiner64 = wallet('bls joiner')
  await p.send('anvil_setBalance', [joiner64.address, toBeHex(parseEther('3'))])
  const { key: jk, proof: jp } = proveKeyPossession(blsSecretKey(joiner64.privateKey), joiner64.address)
  await send(registry, joiner64, 'registerBlsKey', [jk, jp])
  await send(registry, joiner64, 'joinValidator', [net64.id, '0x01'], STAKE)
  row('commitVersionBls, 64 signing, applying one join', await net64.commit({ bls: true }), '', 'the joiner\'s key added to the aggregate; the set re-hashed (rare)')
  net64.validators.push(joiner64)
  row('  the two curves, all signing (gas):', undefined)
  for (const n of [4, 16, 64]) {
    const e = (bySize.get(n) as Measured).gas
    const b = (blsBySize.get(n) as Measured).gas
    row(`    ${String(n).padStart(2)} validators: ECDSA ${fmt(e).padStart(9)}   BLS ${fmt(b).padStart(9)}   (${e < b ? 'ECDSA' : 'BLS'} cheaper)`, undefined)
  }
  const cross = Number(g4 - (blsBySize.get(4) as Measured).gas) / Number(d64)
  row(`    ECDSA is cheaper below ~${Math.ceil(4 - cross)} validators all signing; BLS is cheaper at 64 while fewer than ~${Math.floor(Number(g64 - (blsBySize.get(64) as Measured).gas) / Number(perAbsent + d64))} are absent`, undefined)

  print(`DatanetRegistry gas on anvil (hardfork ${info.hardFork ?? 'default'}, solc 0.8.28, optimizer 200 runs); stakes 1 ETH`)
}

try {
  await main()
} catch (err) {
  if (!interrupted) throw err // an interrupted run fails its pending requests: not worth a stack
} finally {
  await shutdown()
}
