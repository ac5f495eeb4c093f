/**
 * The simulated datanet the consensus simulator's validators agree on: real versions
 * (src/consensus/version.ts) whose contributions carry accept certificates of verdicts
 * signed by the simulated validators, judged with the node's own rules
 * (versionShapeProblem, checkAcceptCertificate, rootsProblem over in-memory ports), and a
 * fast deterministic signature scheme in place of ECDSA.
 *
 * Signatures: sha256(secret || message) || 32 zero bytes || the signer's index, 65 bytes
 * like an ECDSA signature, so `recover` can name the signer and check it. The messages
 * are the fields a real signature covers (the vote's type, round and whole header; the
 * proposal's height, round, validRound and version id; the verdict's fields), as text:
 * EIP-712 digests cost ~0.2 ms each on this machine and would dominate the run.
 */
import { TypedDataEncoder, getAddress } from 'ethers'
import { CID } from 'multiformats/cid'
import { create as createDigest } from 'multiformats/hashes/digest'
import { concatBytes, fromHex, sha256, toHex } from '../../src/codec/hash.ts'
import { encodeVerdict, type Verdict } from '../../src/contribution/verdict.ts'
import { addShares, tallyRoot, totalOf, type Tallies } from '../../src/attribution/tallies.ts'
import { MerkleFrontier } from '../../src/merkle/tree.ts'
import { attributionOf, checkAcceptCertificate, rootsProblem, versionShapeProblem } from '../../src/consensus/proposal.ts'
import { decodeVersion, encodeVersion, headerOf, validatorSetHash, type Version, type VersionHeader, type VersionValue } from '../../src/consensus/version.ts'
import type { ConsensusSigner } from '../../src/consensus/driver.ts'
import type { ValidatorSet } from '../../src/datanet/manifest.ts'
import type { Validator, VoteType } from '../../src/consensus/types.ts'

// EIP-712 struct hashes are pure; the driver and machine recompute a value's header id
// many times per message (~0.2 ms each under load), so the simulator memoizes them.
const hashStruct = TypedDataEncoder.prototype.hashStruct
const structCache = new Map<string, string>()
TypedDataEncoder.prototype.hashStruct = function (this: TypedDataEncoder, name: string, value: Record<string, unknown>): string {
  if (name !== 'VersionHeader') return hashStruct.call(this, name, value)
  const key = `${String(value.height)}/${String(value.parent)}/${String(value.datasetRoot)}/${String(value.recordCount)}/${String(value.attributionRoot)}/${String(value.totalAttributed)}/${String(value.validatorSetHash)}/${String(value.version)}`
  let id = structCache.get(key)
  if (id === undefined) {
    if (structCache.size > 200_000) structCache.clear()
    structCache.set(key, id = hashStruct.call(this, name, value))
  }
  return id
}

export const DATANET = 'sim'
const enc = new TextEncoder()

/** Validator i's address (checksummed, as verdicts require). */
export function simAddress (i: number): string {
  return getAddress(toHex(sha256(enc.encode(`sim validator ${i}`)).subarray(0, 20)))
}

export function headerKey (h: VersionHeader): string {
  return `${h.height}/${h.parent}/${h.datasetRoot}/${h.recordCount}/${h.attributionRoot}/${h.totalAttributed}/${h.validatorSetHash}/${h.version}`
}

export const voteMessage = (type: VoteType, round: number, header: VersionHeader): string => `vote/${type}/${round}/${headerKey(header)}`
export const proposalMessage = (height: number, round: number, validRound: number, versionId: string): string => `proposal/${height}/${round}/${validRound}/${versionId}`
const verdictMessage = (v: Omit<Verdict, 'signature'>): string =>
  `verdict/${v.datanet}/${v.contribution.toString()}/${v.validator}/${String(v.accept)}/${v.score}/${v.reasons.join(',')}/${v.timestamp}`

/** A value from a version, synchronously (versionValue's CID is async; the same bytes and id). */
export function valueOf (version: Version): VersionValue {
  const bytes = encodeVersion(version)
  const cid = CID.createV1(0x71, createDigest(0x12, sha256(bytes)))
  return { version, bytes, cid, id: toHex(cid.multihash.digest) }
}

export function valueOfBytes (bytes: Uint8Array): VersionValue {
  return valueOf(decodeVersion(bytes))
}

interface ChainEntry { value: VersionValue | null, tree: MerkleFrontier, tallies: Tallies }

/** How a Byzantine proposer spoils a value. */
export type Spoil = 'bad-roots' | 'below-quorum' | 'departed'

/**
 * Keys, the validator set, contributions and the agreed chain of one run. Validators
 * 0..n-1 form the set of every height; validator n is a departed one (its verdicts do
 * not count any more).
 */
export class World {
  readonly validators: Validator[]
  readonly set: ValidatorSet
  readonly addresses: string[]
  readonly departed: string
  private readonly secrets: Uint8Array[]
  private readonly byAddress = new Map<string, number>()
  private readonly chain = new Map<number, ChainEntry>([[0, { value: null, tree: new MerkleFrontier(), tallies: new Map() }]])
  private readonly problems = new Map<string, string | undefined>()
  private readonly certChecks = new WeakMap<Uint8Array[], string | undefined>()
  private readonly records = new Map<string, Uint8Array[]>()
  private readonly contributionsOf = new Map<number, { cid: CID, verdicts: Uint8Array[] }>()
  private counter = 0

  constructor (powers: readonly bigint[]) {
    this.addresses = powers.map((_, i) => simAddress(i))
    this.departed = simAddress(powers.length)
    this.secrets = [...powers, 0n].map((_, i) => sha256(enc.encode(`sim secret ${i}`)))
    ;[...this.addresses, this.departed].forEach((a, i) => this.byAddress.set(a.toLowerCase(), i))
    this.validators = powers.map((power, i) => ({ address: this.addresses[i] as string, power }))
    const stakes = powers.map((stake, i) => ({ address: this.addresses[i] as string, stake }))
      .sort((a, b) => (a.address.toLowerCase() < b.address.toLowerCase() ? -1 : 1))
    this.set = { validators: stakes, total: powers.reduce((s, p) => s + p, 0n) }
  }

  indexOf (address: string): number | undefined {
    return this.byAddress.get(address.toLowerCase())
  }

  // -- signatures

  sign (index: number, message: string): string {
    const key = this.secrets[index]
    if (key === undefined) throw new Error(`no key ${index}`)
    return toHex(concatBytes(sha256(key, enc.encode(message)), new Uint8Array(32), Uint8Array.of(index)))
  }

  /** The signer of `signature` over `message`, or undefined when it does not verify. */
  recover = (message: string, signature: string): string | undefined => {
    if (typeof signature !== 'string' || signature.length !== 132) return undefined
    const index = parseInt(signature.slice(130), 16)
    const key = this.secrets[index]
    if (key === undefined) return undefined
    return this.sign(index, message) === signature ? (index < this.addresses.length ? this.addresses[index] : this.departed) : undefined
  }

  signer (index: number): ConsensusSigner {
    return {
      address: this.addresses[index] as string,
      signVote: (type, round, header) => this.sign(index, voteMessage(type, round, header)),
      signProposal: (height, round, validRound, value) => this.sign(index, proposalMessage(height, round, validRound, value.id))
    }
  }

  // -- the chain

  /** The agreed value of a height (after the first decision of it). */
  decided (height: number): VersionValue | null | undefined {
    return this.chain.get(height)?.value
  }

  /** The first decision of `height` extends the chain (agreement is checked by the caller). */
  extend (height: number, value: VersionValue): void {
    if (this.chain.has(height)) return
    const parent = this.chain.get(height - 1)
    if (parent === undefined) throw new Error(`height ${height} decided before ${height - 1}`)
    const tree = parent.tree.clone()
    for (const c of value.version.contributions) for (const h of this.records.get(c.cid.toString()) ?? []) tree.append(h)
    this.chain.set(height, { value, tree, tallies: parent.tallies })
  }

  // -- values

  /** The contribution of a height, with an accept certificate of every validator's verdict. */
  private contribution (height: number): { cid: CID, verdicts: Uint8Array[] } {
    let c = this.contributionsOf.get(height)
    if (c === undefined) {
      const cid = this.newContribution(height)
      c = { cid, verdicts: this.set.validators.map(v => this.verdict(this.indexOf(v.address) as number, cid)) }
      this.contributionsOf.set(height, c)
    }
    return c
  }

  private newContribution (height: number): CID {
    const cid = CID.createV1(0x71, createDigest(0x12, sha256(enc.encode(`contribution ${height} ${this.counter++}`))))
    this.records.set(cid.toString(), [0, 1].map(k => sha256(enc.encode(`record ${cid.toString()} ${k}`))))
    return cid
  }

  private verdict (index: number, contribution: CID): Uint8Array {
    const unsigned = { datanet: DATANET, contribution, validator: index < this.addresses.length ? this.addresses[index] as string : this.departed, accept: true, score: 100, reasons: [], timestamp: 0 }
    return encodeVerdict({ ...unsigned, signature: fromHex(this.sign(index, verdictMessage(unsigned)), 65) })
  }

  /**
   * A value for `height` on the agreed parent, by validator `proposer`; `salt` makes
   * values of different rounds differ. Undefined while the parent is not decided.
   */
  build (height: number, proposer: number, salt: number, spoil?: Spoil): VersionValue | undefined {
    const parent = this.chain.get(height - 1)
    if (parent === undefined) return undefined
    let contribution = this.contribution(height)
    if (spoil === 'below-quorum' || spoil === 'departed') {
      // its own verdict and the fewest others' it can have while under 2/3 of the stake
      const cid = this.newContribution(height)
      const members = this.set.validators.map(v => this.indexOf(v.address) as number)
      const chosen = [proposer]
      let stake = this.validators[proposer]?.power ?? 0n
      for (const i of members) {
        const p = this.validators[i]?.power ?? 0n
        if (i === proposer || 3n * (stake + p) >= 2n * this.set.total) continue
        chosen.push(i)
        stake += p
      }
      // a departed validator's verdict would have made up the quorum under the old set
      if (spoil === 'departed') chosen.push(this.addresses.length)
      contribution = { cid, verdicts: chosen.sort((a, b) => a - b).map(i => this.verdict(i, cid)) }
    }
    const tree = parent.tree.clone()
    for (const h of this.records.get(contribution.cid.toString()) ?? []) tree.append(h)
    const tallies = addShares(parent.tallies, [])
    const version: Version = {
      datanet: DATANET,
      height,
      parent: parent.value?.cid ?? null,
      contributions: [contribution],
      rejected: [],
      inferences: [],
      datasetRoot: tree.root(),
      recordCount: tree.size + (spoil === 'bad-roots' ? 1 : 0),
      attributionRoot: tallyRoot(tallies),
      totalAttributed: totalOf(tallies).toString(),
      validatorSetHash: validatorSetHash(this.set.validators),
      proposer: this.addresses[proposer] ?? this.departed,
      timestamp: salt
    }
    return valueOf(version)
  }

  /** A value that fails every check: what a flooding proposer sends. */
  junk (height: number, proposer: number, salt: number): VersionValue {
    return valueOf({
      datanet: DATANET, height, parent: null, contributions: [], rejected: [], inferences: [], datasetRoot: new Uint8Array(32), recordCount: salt,
      attributionRoot: new Uint8Array(32), totalAttributed: '0', validatorSetHash: new Uint8Array(32), proposer: this.addresses[proposer] ?? '', timestamp: salt
    })
  }

  /**
   * Why a value may not be decided at `height` (undefined: valid), by the node's rules:
   * shape against the agreed parent and the set, every contribution's accept certificate,
   * the dataset and attribution roots recomputed.
   */
  problem (value: VersionValue, height: number): string | undefined {
    const key = `${height}/${value.id}`
    if (this.problems.has(key)) return this.problems.get(key)
    const parent = this.chain.get(height - 1)
    if (parent === undefined) return 'parent not decided'
    const why = this.judge(value.version, height, parent)
    this.problems.set(key, why)
    return why
  }

  private judge (v: Version, height: number, parent: ChainEntry): string | undefined {
    const shape = versionShapeProblem(v, { datanet: DATANET, height, parent: parent.value?.cid.toString() ?? null, set: this.set })
    if (shape !== undefined) return shape
    const tree = parent.tree.clone()
    for (const c of v.contributions) {
      let why = this.certChecks.get(c.verdicts)
      if (why === undefined && !this.certChecks.has(c.verdicts)) {
        const checked = checkAcceptCertificate(this.set, DATANET, c.cid.toString(), c.verdicts, verdict => this.recover(verdictMessage(verdict), toHex(verdict.signature)))
        why = typeof checked === 'string' ? checked : undefined
        this.certChecks.set(c.verdicts, why)
      }
      if (why !== undefined) return why
      const records = this.records.get(c.cid.toString())
      if (records === undefined) return 'records of a contribution unknown'
      for (const h of records) tree.append(h)
    }
    return rootsProblem(v, { tree }, attributionOf(parent.tallies))
  }

  headerOf (value: VersionValue): VersionHeader {
    return headerOf(value)
  }
}
