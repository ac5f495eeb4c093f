/**
 * The registry's money as a property (issue 12 item 10; fast-check, fixed seed, 200 runs)
 * on a real anvil: two datanets sharing validators and contributors, and any sequence of
 * funding, inference payments, anchors (cumulative tallies that only grow, possibly
 * promising more than was funded), claims (repeats, stale and inflated proofs, another
 * account's or another datanet's proof), joins, leaves, withdrawals after time passes, and
 * slashes (fresh and replayed evidence). Every run starts from one chain snapshot.
 *
 * After every step, against the chain itself:
 * - the registry holds exactly every datanet's unclaimed funds, burned stake and bonded stake;
 * - per datanet, claims never exceed what was funded (fees included), and the contract's
 *   totals are what was sent to that datanet: no datanet's funds move to another;
 * - no account has been paid more than its latest cumulative attribution in that datanet,
 *   and each claim pays exactly what a model of the contract predicts (or is refused with
 *   the error it names); a double claim pays nothing;
 * - per datanet and validator, stake in = stake held + withdrawn + slashed, and a
 *   withdrawal pays the validator exactly its stake (its balance moves by that, less gas).
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fc from 'fast-check'
import {
  AbiCoder, Contract, ContractFactory, HDNodeWallet, Interface, JsonRpcProvider, Wallet, concat, getAddress, keccak256, parseEther, toBeHex, toUtf8Bytes,
  type ContractTransactionReceipt, type ContractTransactionResponse
} from 'ethers'
import { readFileSync } from 'node:fs'
import { commitVersionArgs } from '../../src/chain/commit-args.ts'
import { datanetDomain } from '../../src/codec/eip712.ts'
import { voteDigest, type VersionHeader } from '../../src/consensus/version.ts'
import { genesisManifest } from '../../node/devnet/chain-setup.ts'
import { hook } from '../helpers/wait.ts'
import { ANVIL_MNEMONIC, startAnvil, type Anvil } from './anvil.ts'

const artifact = JSON.parse(readFileSync(new URL('../../src/chain/artifacts/DatanetRegistry.json', import.meta.url), 'utf8')) as { abi: unknown[], bytecode: string }
const iface = new Interface(artifact.abi as never)
const PARAMS = { thresholdNumerator: 2, thresholdDenominator: 3, minStake: 1n, unbondingDelay: 60, anchorInterval: 1 }
const STAKE = parseEther('1')
const ZERO = '0x' + '00'.repeat(32)
const CONTRIBUTORS = 4
const DATANETS = 2
/** Validator keys: the first 4 are both datanets' genesis set, the rest may join. */
const VALIDATORS = 6
const GENESIS = 4
const RUNS = 200
const SEED = 0x5eed12

let anvil: Anvil | undefined
let provider: JsonRpcProvider
let registry: Contract
let chainId: number
let submitter: HDNodeWallet
let funder: HDNodeWallet
let operator: HDNodeWallet
/** Funded anvil accounts that never send: their balance moves only by what claims pay them. */
let contributors: HDNodeWallet[] = []
let validators: Wallet[] = []
const validatorKey = (i: number): string => keccak256(toUtf8Bytes(`money-property validator ${i}`))
/** The datanets' manifests (what `createDatanet` takes): the same genesis set, told apart by the nonce. */
const manifests = Array.from({ length: DATANETS }, (_, d) => genesisManifest(
  Array.from({ length: GENESIS }, (_, i) => ({ address: new Wallet(validatorKey(i)).address, stake: STAKE })), { nonce: `money-property datanet ${d}` }))
const datanetIds = manifests.map(m => m.digest)
let snapshot = ''
/** How the steps of all runs ended, to show the scenarios reach every outcome. */
const outcomes: Record<string, number> = {}
const count = (key: string): void => { outcomes[key] = (outcomes[key] ?? 0) + 1 }

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

async function send (signer: HDNodeWallet | Wallet, name: string, args: unknown[], value?: bigint): Promise<ContractTransactionReceipt> {
  const fn = (registry.connect(signer) as Contract).getFunction(name) as unknown as (...a: unknown[]) => Promise<ContractTransactionResponse>
  const tx = await fn(...args, ...(value === undefined ? [] : [{ value }]))
  const receipt = await tx.wait()
  if (receipt === null) throw new Error('no receipt')
  return receipt
}

/** Sends; resolves to the receipt, or to the name of the custom error the call reverts with. */
async function attempt (signer: HDNodeWallet | Wallet, name: string, args: unknown[], value?: bigint): Promise<ContractTransactionReceipt | string> {
  try {
    return await send(signer, name, args, value)
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

type ProofOf = 'latest' | 'stale' | 'inflated' | 'other-account' | 'other-datanet'
type Step =
  | { kind: 'fund', d: number, amount: bigint }
  | { kind: 'pay', d: number, event: number, amount: bigint }
  | { kind: 'anchor', d: number, increments: bigint[] }
  | { kind: 'claim', d: number, account: number, proofOf: ProofOf, repeat: boolean }
  | { kind: 'join', d: number, v: number, stake: bigint }
  | { kind: 'leave', d: number, v: number }
  | { kind: 'withdraw', d: number, v: number }
  /** leave, the anchor that applies it, the unbonding delay, withdraw: the whole way out */
  | { kind: 'exit', d: number, v: number }
  | { kind: 'slash', d: number, v: number, ahead: number, round: number, replay: boolean }
  | { kind: 'time' }

const d = fc.nat({ max: DATANETS - 1 })
const v = fc.nat({ max: VALIDATORS - 1 })
// Increments are a quarter of a funding step at most, so most claims can be paid and some cannot.
const fundArb = fc.record({ kind: fc.constant('fund' as const), d, amount: fc.bigInt({ min: 1n, max: parseEther('2') }) })
const anchorArb = fc.record({
  kind: fc.constant('anchor' as const),
  d,
  increments: fc.array(fc.oneof(fc.constant(0n), fc.bigInt({ min: 1n, max: parseEther('0.5') })), { minLength: CONTRIBUTORS, maxLength: CONTRIBUTORS })
})
const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 2, arbitrary: fundArb },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('pay' as const), d, event: fc.nat({ max: 2 }), amount: fc.bigInt({ min: 1n, max: parseEther('1') }) }) },
  { weight: 3, arbitrary: anchorArb },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('claim' as const),
      d,
      account: fc.nat({ max: CONTRIBUTORS - 1 }),
      proofOf: fc.oneof(
        { weight: 5, arbitrary: fc.constant('latest' as const) },
        { weight: 2, arbitrary: fc.constantFrom('stale' as const, 'inflated' as const, 'other-account' as const, 'other-datanet' as const) }
      ),
      repeat: fc.boolean()
    })
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('join' as const), d, v, stake: fc.constantFrom(STAKE, 2n * STAKE) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('leave' as const), d, v }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('withdraw' as const), d, v }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('exit' as const), d, v }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('slash' as const), d, v, ahead: fc.nat({ max: 2 }), round: fc.nat({ max: 1 }), replay: fc.boolean() }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'time' as const }) }
)
/** Any scenario, but most start with funding and an anchor in each datanet, so that claims have something to draw on. */
const scenarioArb = fc.tuple(fc.nat({ max: 3 }), fc.array(stepArb, { minLength: 3, maxLength: 10 }))
  .chain(([prefixed, rest]) => prefixed > 0
    ? fc.tuple(fundArb, anchorArb, fundArb, anchorArb).map(([f0, a0, f1, a1]): Step[] => [{ ...f0, d: 0 }, { ...a0, d: 0 }, { ...f1, d: 1 }, { ...a1, d: 1 }, ...rest])
    : fc.constant(rest))

/** Reverts each validator operation may meet: anything else fails the run. */
const ALLOWED: Record<string, readonly string[]> = {
  pay: ['InferenceAlreadyPaid'],
  join: ['AlreadyValidator'],
  leave: ['NotActiveValidator', 'LeaveAlreadyRequested', 'LastValidator'],
  withdraw: ['NothingToWithdraw', 'StillBonded'],
  exit: ['NotActiveValidator', 'LeaveAlreadyRequested', 'LastValidator', 'NothingToWithdraw', 'StillBonded'],
  slash: ['NothingToSlash', 'EvidenceUsed', 'EvidenceOutOfWindow']
}

interface Version { root: string, cumulative: bigint[], proofs: string[][] }

interface DatanetModel {
  id: string
  versions: Version[]
  head: string
  attributed: bigint
  funded: bigint
  totalPaid: bigint
  cumulative: bigint[]
  claimed: bigint[]
  paid: bigint[]
  /** Per validator: stake sent in, withdrawn, slashed. */
  stakeIn: bigint[]
  withdrawn: bigint[]
  slashed: bigint[]
  evidence: unknown[][]
}

const eventsOf = (receipt: ContractTransactionReceipt, name: string): Array<{ args: { getValue: (k: string) => unknown } }> =>
  receipt.logs.map(l => iface.parseLog(l)).filter(l => l !== null && l.name === name) as never

async function version (m: DatanetModel, increments: bigint[], label: string): Promise<void> {
  increments.forEach((inc, k) => { m.cumulative[k] = (m.cumulative[k] as bigint) + inc })
  const tree = buildTree(contributors.map((c, k) => leafOf(c.address, m.cumulative[k] as bigint)))
  // The header states at most what was funded; the tree's leaves may promise more (the pool is the guard).
  const promised = m.cumulative.reduce((a, b) => a + b, 0n)
  const total = promised < m.funded ? promised : m.funded
  m.attributed = total > m.attributed ? total : m.attributed
  const height = m.versions.length + 1
  const header: VersionHeader = {
    height,
    parent: m.head,
    datasetRoot: keccak256(toUtf8Bytes(`dataset ${m.id} ${height}`)),
    recordCount: height,
    attributionRoot: tree.root,
    totalAttributed: m.attributed.toString(),
    validatorSetHash: ZERO,
    version: keccak256(toUtf8Bytes(`version ${m.id} ${height}`))
  }
  // the certificate: every member of the chain's current set (slashed members keep their weight until this anchor)
  const [members] = await registry.getFunction('activeSet').staticCall(m.id) as [bigint[], string]
  const active = members.map(p => ({ address: getAddress(toBeHex(p >> 96n, 20)), stake: p & ((1n << 96n) - 1n) }))
  const digest = voteDigest(datanetDomain({ chainId, registry: String(registry.target), datanet: m.id }), 'precommit', 0, header)
  const signatures = active.map(a => validators.find(w => w.address === a.address) as Wallet).map(w => ({ signer: w.address, signature: w.signingKey.sign(digest).serialized }))
  const outcome = await attempt(submitter, 'commitVersion', commitVersionArgs({ datanetId: m.id, round: 0, header, signatures, validators: active }))
  assert.type(outcome, 'object', `${label}: the whole set's certificate must anchor, got ${String(outcome)}`)
  m.head = header.version
  m.versions.push({ root: tree.root, cumulative: [...m.cumulative], proofs: tree.proofs })
}

async function claimOnce (m: DatanetModel, account: number, amountClaimed: bigint, proof: string[], label: string): Promise<bigint> {
  const address = (contributors[account] as HDNodeWallet).address
  const latest = m.versions[m.versions.length - 1]
  // the model: the contract pays the rise of a valid leaf of the latest root, within what is left unpaid
  let expected: string | bigint
  if (latest === undefined || !verify(proof, latest.root, leafOf(address, amountClaimed))) expected = 'InvalidProof'
  else if (amountClaimed <= (m.claimed[account] as bigint)) expected = 'NothingToClaim'
  else if (amountClaimed - (m.claimed[account] as bigint) > m.funded - m.totalPaid) expected = 'InsufficientFunds'
  else expected = amountClaimed - (m.claimed[account] as bigint)
  const before = await provider.getBalance(address)
  const outcome = await attempt(submitter, 'claim', [m.id, address, amountClaimed, proof])
  count(`claim ${typeof outcome === 'string' ? outcome : 'paid'}`)
  const got = await provider.getBalance(address) - before
  if (typeof expected === 'string') {
    assert.is(outcome, expected, `${label}: expected ${expected}`)
    assert.is(got, 0n, `${label}: a refused claim paid ${got}`)
  } else {
    assert.type(outcome, 'object', `${label}: expected a payment of ${expected}, got ${String(outcome)}`)
    assert.is(got, expected, `${label}: paid`)
    m.claimed[account] = amountClaimed
  }
  m.paid[account] = (m.paid[account] as bigint) + got
  m.totalPaid += got
  return got
}

/** Two different prevotes of one validator for one (height, round). */
function equivocation (m: DatanetModel, w: Wallet, height: number, round: number): unknown[] {
  const domain = datanetDomain({ chainId, registry: String(registry.target), datanet: m.id })
  const votes = ['a', 'b'].map(side => {
    const header: VersionHeader = { height, parent: m.head, datasetRoot: keccak256(toUtf8Bytes(`equivocation ${side}`)), recordCount: 1, attributionRoot: ZERO, totalAttributed: '0', validatorSetHash: ZERO, version: keccak256(toUtf8Bytes(`equivocation ${side} ${height}`)) }
    return [{ voteType: 1, round, header }, w.signingKey.sign(voteDigest(domain, 'prevote', round, header)).serialized]
  })
  return [m.id, ...(votes[0] as unknown[]), ...(votes[1] as unknown[])]
}

/** A validator's own transaction; resolves to its receipt or revert name, checking it is one the step may meet. */
async function validatorTx (step: Step, w: Wallet, name: string, args: unknown[], label: string, value?: bigint): Promise<ContractTransactionReceipt | string> {
  const outcome = await attempt(w, name, args, value)
  count(`${step.kind} ${typeof outcome === 'string' ? outcome : 'done'}`)
  if (typeof outcome === 'string') assert.ok(ALLOWED[step.kind]?.includes(outcome), `${label}: unexpected revert ${outcome}`)
  return outcome
}

async function withdraw (m: DatanetModel, step: Step & { v: number }, label: string): Promise<void> {
  const w = validators[step.v] as Wallet
  const before = await provider.getBalance(w.address)
  const outcome = await validatorTx(step, w, 'withdraw', [m.id], label)
  if (typeof outcome === 'string') return
  count('stake withdrawn')
  const amount = eventsOf(outcome, 'StakeWithdrawn').reduce((a, e) => a + BigInt(e.args.getValue('amount') as bigint), 0n)
  const gas = outcome.gasUsed * outcome.gasPrice
  assert.is(await provider.getBalance(w.address) - before, amount - gas, `${label}: the withdrawal pays the validator its stake`)
  m.withdrawn[step.v] = (m.withdrawn[step.v] as bigint) + amount
}

async function checkInvariants (models: DatanetModel[], label: string): Promise<void> {
  // every view of every datanet in one round of concurrent calls (the provider batches them)
  const view = async <T>(name: string, ...args: unknown[]): Promise<T> => await registry.getFunction(name).staticCall(...args) as T
  const [balance, ...perDatanet] = await Promise.all([
    provider.getBalance(String(registry.target)),
    ...models.map(async m => await Promise.all([
      view<unknown[]>('datanet', m.id),
      Promise.all(contributors.map(async c => await view<bigint>('claimed', m.id, c.address))),
      Promise.all(validators.map(async w => BigInt((await view<{ stake: bigint }>('validator', m.id, w.address)).stake)))
    ]))
  ])
  let held = 0n
  models.forEach((m, at) => {
    const [info, onChainClaimed, stakes] = perDatanet[at] as [unknown[], bigint[], bigint[]]
    const [funded, claimed, slashed] = [info[5], info[6], info[8]] as [bigint, bigint, bigint]
    const name = m.id.slice(0, 10)
    assert.is(funded, m.funded, `${label}: ${name} totalFunded is what was sent to it`)
    assert.is(claimed, m.totalPaid, `${label}: ${name} totalClaimed is what its claims paid`)
    assert.ok(m.totalPaid <= m.funded, `${label}: ${name} paid ${m.totalPaid} of ${m.funded} funded`)
    const latest = m.versions[m.versions.length - 1]
    for (let k = 0; k < CONTRIBUTORS; k++) {
      assert.ok((m.paid[k] as bigint) <= (latest?.cumulative[k] ?? 0n), `${label}: account ${k} received ${m.paid[k]} in ${name} over its cumulative ${latest?.cumulative[k]}`)
      assert.is(onChainClaimed[k], m.paid[k], `${label}: ${name} claimed(${k})`)
    }
    stakes.forEach((stake, i) => {
      assert.is(stake + (m.withdrawn[i] as bigint) + (m.slashed[i] as bigint), m.stakeIn[i], `${label}: validator ${i}'s stake in ${name} is held, withdrawn or slashed`)
    })
    assert.is(slashed, m.slashed.reduce((x, y) => x + y, 0n), `${label}: ${name} burned stake`)
    held += funded - claimed + slashed + stakes.reduce((x, y) => x + y, 0n)
  })
  assert.is(balance, held, `${label}: the registry holds exactly the datanets' unclaimed funds, burned and bonded stake`)
}

/** Runs one scenario from the snapshot, checking the model and the invariants after every step. */
async function runScenario (steps: Step[]): Promise<void> {
  await provider.send('evm_revert', [snapshot])
  snapshot = await provider.send('evm_snapshot', []) as string
  const models: DatanetModel[] = datanetIds.map(id => ({
    id,
    versions: [],
    head: ZERO,
    attributed: 0n,
    funded: 0n,
    totalPaid: 0n,
    cumulative: contributors.map(() => 0n),
    claimed: contributors.map(() => 0n),
    paid: contributors.map(() => 0n),
    stakeIn: validators.map((_, i) => (i < GENESIS ? STAKE : 0n)),
    withdrawn: validators.map(() => 0n),
    slashed: validators.map(() => 0n),
    evidence: []
  }))
  const paidEvents = new Set<string>()

  for (const [i, step] of steps.entries()) {
    const label = `step ${i} ${JSON.stringify(step, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x))}`
    if (step.kind === 'time') {
      await provider.send('evm_increaseTime', [PARAMS.unbondingDelay + 1])
      await provider.send('evm_mine', [])
      continue
    }
    const m = models[step.d] as DatanetModel
    switch (step.kind) {
      case 'fund':
        await send(funder, 'fund', [m.id], step.amount)
        m.funded += step.amount
        break
      case 'pay': {
        const eventId = keccak256(toUtf8Bytes(`event ${step.event}`))
        const outcome = await validatorTx(step, operator as unknown as Wallet, 'payInference', [m.id, eventId], label, step.amount)
        const key = `${step.d}/${step.event}`
        assert.is(typeof outcome === 'string', paidEvents.has(key), `${label}: one payment per payer and event id`)
        if (typeof outcome !== 'string') { m.funded += step.amount; paidEvents.add(key) }
        break
      }
      case 'anchor':
        await version(m, step.increments, label)
        break
      case 'claim': {
        const latest = m.versions[m.versions.length - 1]
        const stale = m.versions[Math.max(0, m.versions.length - 2)]
        const otherNet = (models[(step.d + 1) % DATANETS] as DatanetModel).versions.at(-1)
        const k = step.account
        const other = (k + 1) % CONTRIBUTORS
        let claim: { amount: bigint, proof: string[] }
        switch (step.proofOf) {
          case 'latest': claim = { amount: latest?.cumulative[k] ?? 1n, proof: latest?.proofs[k] ?? [] }; break
          case 'stale': claim = { amount: stale?.cumulative[k] ?? 1n, proof: stale?.proofs[k] ?? [] }; break
          case 'inflated': claim = { amount: (latest?.cumulative[k] ?? 0n) + 1n, proof: latest?.proofs[k] ?? [] }; break
          case 'other-account': claim = { amount: latest?.cumulative[other] ?? 1n, proof: latest?.proofs[other] ?? [] }; break
          case 'other-datanet': claim = { amount: otherNet?.cumulative[k] ?? 1n, proof: otherNet?.proofs[k] ?? [] }; break
        }
        const first = await claimOnce(m, k, claim.amount, claim.proof, label)
        if (step.repeat || first > 0n) {
          const again = await claimOnce(m, k, claim.amount, claim.proof, `${label} (repeated)`)
          assert.is(again, 0n, `${label}: a double claim paid ${again}`)
        }
        break
      }
      case 'join': {
        const outcome = await validatorTx(step, validators[step.v] as Wallet, 'joinValidator', [m.id, '0x01'], label, step.stake)
        if (typeof outcome !== 'string') m.stakeIn[step.v] = (m.stakeIn[step.v] as bigint) + step.stake
        break
      }
      case 'leave':
        await validatorTx(step, validators[step.v] as Wallet, 'leaveValidator', [m.id], label)
        break
      case 'withdraw':
        await withdraw(m, step, label)
        break
      case 'exit': {
        const left = await validatorTx(step, validators[step.v] as Wallet, 'leaveValidator', [m.id], `${label} (leave)`)
        if (typeof left === 'string') break
        await version(m, contributors.map(() => 0n), `${label} (anchor)`)
        await provider.send('evm_increaseTime', [PARAMS.unbondingDelay + 1])
        await provider.send('evm_mine', [])
        await withdraw(m, step, label)
        break
      }
      case 'slash': {
        const previous = m.evidence.at(-1)
        const evidence = step.replay && previous !== undefined ? previous : equivocation(m, validators[step.v] as Wallet, m.versions.length + 1 + step.ahead, step.round)
        const outcome = await validatorTx(step, submitter as unknown as Wallet, 'slash', evidence, label)
        if (typeof outcome !== 'string') {
          for (const e of eventsOf(outcome, 'Slashed')) {
            const at = validators.findIndex(w => w.address === getAddress(e.args.getValue('validator') as string))
            m.slashed[at] = (m.slashed[at] as bigint) + BigInt(e.args.getValue('amount') as bigint)
          }
          m.evidence.push(evidence)
        } else if (step.replay && previous !== undefined) {
          count('slash replay refused')
        }
        break
      }
    }
    await checkInvariants(models, label)
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
  operator = accounts[2] as HDNodeWallet
  contributors = accounts.slice(3)
  validators = Array.from({ length: VALIDATORS }, (_, i) => new Wallet(validatorKey(i), provider))
  registry = await new ContractFactory(artifact.abi as never, artifact.bytecode, submitter).deploy() as Contract
  await registry.waitForDeployment()
  for (const w of validators) await (await submitter.sendTransaction({ to: w.address, value: parseEther('100') })).wait()
  for (const m of manifests) await send(submitter, 'createDatanet', [m.bytes, PARAMS], STAKE * BigInt(GENESIS))
  snapshot = await provider.send('evm_snapshot', []) as string
}))

test.after(hook(async () => {
  provider?.destroy()
  await anvil?.stop()
}))

// ------------------------------------------------------------------ the property

test(`money over ${RUNS} runs (seed ${SEED}): conserved per datanet, claims within attribution and funding, stake held, withdrawn or slashed`, async () => {
  await fc.assert(fc.asyncProperty(scenarioArb, runScenario), { numRuns: RUNS, seed: SEED })
  process.stdout.write(`\n  outcomes over ${RUNS} runs: ${Object.entries(outcomes).sort().map(([k, n]) => `${k} ${n}`).join(', ')}\n`)
  for (const seen of ['claim paid', 'claim InvalidProof', 'claim NothingToClaim', 'claim InsufficientFunds', 'join done', 'leave done', 'stake withdrawn', 'slash done', 'slash replay refused', 'pay done', 'pay InferenceAlreadyPaid']) {
    assert.ok((outcomes[seen] ?? 0) > 0, `the scenarios reach "${seen}"`)
  }
})

test('a claim before any version, and on an unknown datanet, pays nothing', async () => {
  await provider.send('evm_revert', [snapshot])
  snapshot = await provider.send('evm_snapshot', []) as string
  const datanetId = datanetIds[0] as string
  await send(funder, 'fund', [datanetId], parseEther('1'))
  const address = (contributors[0] as HDNodeWallet).address
  assert.is(await attempt(submitter, 'claim', [datanetId, address, 1n, []]), 'InvalidProof')
  assert.is(await attempt(submitter, 'claim', [keccak256(toUtf8Bytes('nowhere')), address, 1n, []]), 'UnknownDatanet')
})

test.run()
