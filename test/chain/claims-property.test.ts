/**
 * Claims against the registry on a real anvil, as a property (fast-check): random funding,
 * random versions whose cumulative tallies only grow (attribution trees of OpenZeppelin
 * StandardMerkleTree leaves, possibly promising more than was funded), and random claims,
 * including repeats, stale proofs, inflated amounts and another account's proof.
 *
 * After every step: the sum paid never exceeds what was funded, no account has received
 * more than its latest cumulative amount, a double claim pays nothing, and each claim pays
 * exactly what a model of the contract predicts (or is refused with the error it names).
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fc from 'fast-check'
import {
  AbiCoder, Contract, ContractFactory, HDNodeWallet, Interface, JsonRpcProvider, Wallet, concat, keccak256, parseEther, toUtf8Bytes,
  type ContractTransactionReceipt, type ContractTransactionResponse
} from 'ethers'
import { readFileSync } from 'node:fs'
import { commitVersionArgs } from '../../src/chain/commit-args.ts'
import { datanetDomain } from '../../src/codec/eip712.ts'
import { voteDigest, type VersionHeader } from '../../src/consensus/version.ts'
import { hook } from '../helpers/wait.ts'
import { ANVIL_MNEMONIC, startAnvil, type Anvil } from './anvil.ts'

const artifact = JSON.parse(readFileSync(new URL('../../src/chain/artifacts/DatanetRegistry.json', import.meta.url), 'utf8')) as { abi: unknown[], bytecode: string }
const iface = new Interface(artifact.abi as never)
const PARAMS = { thresholdNumerator: 2, thresholdDenominator: 3, minStake: 1n, unbondingDelay: 60, anchorInterval: 1 }
const STAKE = parseEther('1')
const ZERO = '0x' + '00'.repeat(32)
const CONTRIBUTORS = 4
/** Bounded so the file finishes in well under a minute (each run is a fresh datanet and ~10-20 transactions). */
const RUNS = 15

let anvil: Anvil | undefined
let provider: JsonRpcProvider
let registry: Contract
let chainId: number
let submitter: HDNodeWallet
let funder: HDNodeWallet
/** Funded anvil accounts that never send: their balance moves only by what claims pay them. */
let contributors: HDNodeWallet[] = []
const validators = Array.from({ length: 4 }, (_, i) => new Wallet(keccak256(toUtf8Bytes(`claims-property validator ${i}`))))
let runCounter = 0
/** How the claims of all runs ended, to show the scenarios reach every outcome. */
const outcomes: Record<string, number> = {}

// ------------------------------------------------------------------ a StandardMerkleTree-compatible attribution tree

/** OpenZeppelin StandardMerkleTree leaf of (address, uint256). */
function leafOf (account: string, amount: bigint): string {
  return keccak256(keccak256(AbiCoder.defaultAbiCoder().encode(['address', 'uint256'], [account, amount])))
}

function hashPair (a: string, b: string): string {
  return BigInt(a) < BigInt(b) ? keccak256(concat([a, b])) : keccak256(concat([b, a]))
}

/** Sorted-pair keccak tree (what MerkleProof.verify checks): the root and each leaf's proof. */
function buildTree (leaves: string[]): { root: string, proofs: string[][] } {
  const layers: string[][] = [leaves]
  while ((layers[layers.length - 1] as string[]).length > 1) {
    const level = layers[layers.length - 1] as string[]
    const next: string[] = []
    for (let i = 0; i < level.length; i += 2) next.push(i + 1 < level.length ? hashPair(level[i] as string, level[i + 1] as string) : level[i] as string)
    layers.push(next)
  }
  const proofs = leaves.map((_, index) => {
    const proof: string[] = []
    let i = index
    for (const level of layers.slice(0, -1)) {
      const sibling = level[i ^ 1]
      if (sibling !== undefined) proof.push(sibling)
      i >>= 1
    }
    return proof
  })
  return { root: (layers[layers.length - 1] as string[])[0] as string, proofs }
}

function verify (proof: string[], root: string, leaf: string): boolean {
  return proof.reduce(hashPair, leaf) === root
}

// ------------------------------------------------------------------ chain helpers

async function send (signer: HDNodeWallet, name: string, args: unknown[], value?: bigint): Promise<ContractTransactionReceipt> {
  const fn = (registry.connect(signer) as Contract).getFunction(name) as unknown as (...a: unknown[]) => Promise<ContractTransactionResponse>
  const tx = await fn(...args, ...(value === undefined ? [] : [{ value }]))
  const receipt = await tx.wait()
  if (receipt === null) throw new Error('no receipt')
  return receipt
}

/** Sends; resolves to the receipt, or to the name of the custom error the call reverts with. */
async function attempt (signer: HDNodeWallet, name: string, args: unknown[]): Promise<ContractTransactionReceipt | string> {
  try {
    return await send(signer, name, args)
  } catch (err) {
    const e = err as { data?: string, info?: { error?: { data?: string } } }
    const data = e.data ?? e.info?.error?.data
    if (typeof data !== 'string') throw err
    const parsed = iface.parseError(data)
    if (parsed === null) throw err
    return parsed.name
  }
}

// ------------------------------------------------------------------ scenarios

type Step =
  | { kind: 'fund', amount: bigint }
  | { kind: 'version', increments: bigint[] }
  | { kind: 'claim', account: number, proofOf: 'latest' | 'stale' | 'inflated' | 'other-account', repeat: boolean }

// Increments are a quarter of a funding step at most, so most claims can be paid and some cannot.
const fundArb = fc.record({ kind: fc.constant('fund' as const), amount: fc.oneof(fc.bigInt({ min: 1n, max: parseEther('2') }), fc.bigInt({ min: parseEther('1'), max: parseEther('2') })) })
const versionArb = fc.record({
  kind: fc.constant('version' as const),
  increments: fc.array(fc.oneof(fc.constant(0n), fc.bigInt({ min: 1n, max: parseEther('0.5') })), { minLength: CONTRIBUTORS, maxLength: CONTRIBUTORS })
})
const claimArb = fc.record({
  kind: fc.constant('claim' as const),
  account: fc.nat({ max: CONTRIBUTORS - 1 }),
  proofOf: fc.oneof(
    { weight: 5, arbitrary: fc.constant('latest' as const) },
    { weight: 1, arbitrary: fc.constantFrom('stale' as const, 'inflated' as const, 'other-account' as const) }
  ),
  repeat: fc.boolean()
})
const stepArb: fc.Arbitrary<Step> = fc.oneof({ weight: 1, arbitrary: fundArb }, { weight: 2, arbitrary: versionArb }, { weight: 4, arbitrary: claimArb })
/** Any scenario, but most start with some funding and a version, so that claims have something to draw on. */
const scenarioArb = fc.tuple(fc.boolean(), fc.array(stepArb, { minLength: 3, maxLength: 10 }))
  .chain(([prefixed, rest]) => prefixed ? fc.tuple(fundArb, versionArb).map(([f, v]): Step[] => [f, v, ...rest]) : fc.constant(rest))

interface Version { root: string, cumulative: bigint[], proofs: string[][] }

/** Runs one scenario on a fresh datanet, checking the model and the invariants after every step. */
async function runScenario (steps: Step[]): Promise<void> {
  const datanetId = keccak256(toUtf8Bytes(`claims-property run ${runCounter++}`))
  await send(submitter, 'createDatanet', [datanetId, PARAMS, validators.map(v => v.address), validators.map(() => STAKE)], STAKE * BigInt(validators.length))
  const domain = datanetDomain({ chainId, registry: String(registry.target), datanet: datanetId })
  const active = validators.map(v => ({ address: v.address, stake: STAKE }))
  const versions: Version[] = []
  let funded = 0n
  let attributed = 0n
  let head = ZERO
  const claimedModel = contributors.map(() => 0n)
  const paid = contributors.map(() => 0n)
  let totalPaid = 0n
  const cumulative = contributors.map(() => 0n)

  const claimOnce = async (account: number, amountClaimed: bigint, proof: string[], label: string): Promise<bigint> => {
    const address = (contributors[account] as HDNodeWallet).address
    const latest = versions[versions.length - 1]
    // the model: the contract pays the rise of a valid leaf of the latest root, within what is left unpaid
    let expected: string | bigint
    if (latest === undefined || !verify(proof, latest.root, leafOf(address, amountClaimed))) expected = 'InvalidProof'
    else if (amountClaimed <= (claimedModel[account] as bigint)) expected = 'NothingToClaim'
    else if (amountClaimed - (claimedModel[account] as bigint) > funded - totalPaid) expected = 'InsufficientFunds'
    else expected = amountClaimed - (claimedModel[account] as bigint)
    const before = await provider.getBalance(address)
    const outcome = await attempt(submitter, 'claim', [datanetId, address, amountClaimed, proof])
    outcomes[typeof outcome === 'string' ? outcome : 'paid'] = (outcomes[typeof outcome === 'string' ? outcome : 'paid'] ?? 0) + 1
    const got = await provider.getBalance(address) - before
    if (typeof expected === 'string') {
      assert.is(outcome, expected, `${label}: expected ${expected}`)
      assert.is(got, 0n, `${label}: a refused claim paid ${got}`)
    } else {
      assert.type(outcome, 'object', `${label}: expected a payment of ${expected}, got ${String(outcome)}`)
      assert.is(got, expected, `${label}: paid`)
      claimedModel[account] = amountClaimed
    }
    paid[account] = (paid[account] as bigint) + got
    totalPaid += got
    return got
  }

  for (const [i, step] of steps.entries()) {
    const label = `step ${i} ${JSON.stringify(step, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))}`
    if (step.kind === 'fund') {
      await send(funder, 'fund', [datanetId], step.amount)
      funded += step.amount
    } else if (step.kind === 'version') {
      step.increments.forEach((inc, k) => { cumulative[k] = (cumulative[k] as bigint) + inc })
      const tree = buildTree(contributors.map((c, k) => leafOf(c.address, cumulative[k] as bigint)))
      // The header states at most what was funded; the tree's leaves may promise more (the pool is the guard).
      const promised = cumulative.reduce((a, b) => a + b, 0n)
      const total = promised < funded ? promised : funded
      attributed = total > attributed ? total : attributed
      const height = versions.length + 1
      const header: VersionHeader = {
        height,
        parent: head,
        datasetRoot: keccak256(toUtf8Bytes(`dataset ${datanetId} ${height}`)),
        recordCount: height,
        attributionRoot: tree.root,
        totalAttributed: attributed.toString(),
        validatorSetHash: ZERO,
        version: keccak256(toUtf8Bytes(`version ${datanetId} ${height}`))
      }
      const digest = voteDigest(domain, 'precommit', 0, header)
      const signatures = validators.map(v => ({ signer: v.address, signature: v.signingKey.sign(digest).serialized }))
      await send(submitter, 'commitVersion', commitVersionArgs({ datanetId, round: 0, header, signatures, validators: active }))
      head = header.version
      versions.push({ root: tree.root, cumulative: [...cumulative], proofs: tree.proofs })
    } else {
      const latest = versions[versions.length - 1]
      const stale = versions[Math.max(0, versions.length - 2)]
      const k = step.account
      const other = (k + 1) % CONTRIBUTORS
      let claim: { amount: bigint, proof: string[] }
      switch (step.proofOf) {
        case 'latest': claim = { amount: latest?.cumulative[k] ?? 1n, proof: latest?.proofs[k] ?? [] }; break
        case 'stale': claim = { amount: stale?.cumulative[k] ?? 1n, proof: stale?.proofs[k] ?? [] }; break
        case 'inflated': claim = { amount: (latest?.cumulative[k] ?? 0n) + 1n, proof: latest?.proofs[k] ?? [] }; break
        case 'other-account': claim = { amount: latest?.cumulative[other] ?? 1n, proof: latest?.proofs[other] ?? [] }; break
      }
      const first = await claimOnce(k, claim.amount, claim.proof, label)
      if (step.repeat || first > 0n) {
        // the same claim again pays nothing
        const again = await claimOnce(k, claim.amount, claim.proof, `${label} (repeated)`)
        assert.is(again, 0n, `${label}: a double claim paid ${again}`)
      }
    }
    // The invariants, against the chain itself.
    assert.ok(totalPaid <= funded, `${label}: paid ${totalPaid} of ${funded} funded`)
    const latest = versions[versions.length - 1]
    const [info, ...claimed] = await Promise.all([
      registry.getFunction('datanet').staticCall(datanetId) as Promise<unknown[]>,
      ...contributors.map(async c => await registry.getFunction('claimed').staticCall(datanetId, c.address) as bigint)
    ])
    for (let k = 0; k < CONTRIBUTORS; k++) {
      assert.ok((paid[k] as bigint) <= (latest?.cumulative[k] ?? 0n), `${label}: account ${k} received ${paid[k]} over its cumulative ${latest?.cumulative[k]}`)
      assert.is(claimed[k], paid[k], `${label}: claimed(${k})`)
    }
    assert.is((info as unknown[])[5], funded, `${label}: totalFunded`)
    assert.is((info as unknown[])[6], totalPaid, `${label}: totalClaimed`)
  }
}

// ------------------------------------------------------------------ setup

test.before(hook(async () => {
  anvil = await startAnvil()
  chainId = anvil.chainId
  provider = new JsonRpcProvider(anvil.url, chainId, { staticNetwork: true, pollingInterval: 10, cacheTimeout: -1 })
  const accounts = Array.from({ length: 3 + CONTRIBUTORS }, (_, i) => HDNodeWallet.fromPhrase(ANVIL_MNEMONIC, undefined, `m/44'/60'/0'/0/${i}`).connect(provider))
  submitter = accounts[0] as HDNodeWallet
  funder = accounts[1] as HDNodeWallet
  contributors = accounts.slice(3)
  registry = await new ContractFactory(artifact.abi as never, artifact.bytecode, submitter).deploy() as Contract
  await registry.waitForDeployment()
}))

test.after(hook(async () => {
  provider?.destroy()
  await anvil?.stop()
}))

// ------------------------------------------------------------------ the property

test('claims never pay more than funded, nor an account more than its latest cumulative amount; double claims pay nothing', async () => {
  await fc.assert(fc.asyncProperty(scenarioArb, runScenario), { numRuns: RUNS })
  process.stdout.write(`\n  claims over ${RUNS} runs: ${Object.entries(outcomes).map(([k, n]) => `${k} ${n}`).join(', ')}\n`)
  assert.ok((outcomes.paid ?? 0) > 0 && (outcomes.InvalidProof ?? 0) > 0 && (outcomes.NothingToClaim ?? 0) > 0, 'the scenarios reach paid, invalid and repeated claims')
})

test('a claim before any version, and on an unknown datanet, pays nothing', async () => {
  const datanetId = keccak256(toUtf8Bytes('claims-property empty'))
  await send(submitter, 'createDatanet', [datanetId, PARAMS, validators.map(v => v.address), validators.map(() => STAKE)], STAKE * BigInt(validators.length))
  await send(funder, 'fund', [datanetId], parseEther('1'))
  const address = (contributors[0] as HDNodeWallet).address
  assert.is(await attempt(submitter, 'claim', [datanetId, address, 1n, []]), 'InvalidProof')
  assert.is(await attempt(submitter, 'claim', [keccak256(toUtf8Bytes('nowhere')), address, 1n, []]), 'UnknownDatanet')
})

test.run()
