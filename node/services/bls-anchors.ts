/**
 * The BLS side of anchoring (issue 14 item 9), for the chain service: this validator's BLS
 * key on chain (registered once, with its proof of possession), its anchor shares of final
 * versions (gossiped), the shares received, and the commitVersionBls call built from them.
 *
 * When: `chain.anchorSignatures` is `ecdsa` (never), `bls` (whenever the set's aggregate key
 * is on chain and shares hold 2/3 of the stake) or `auto` (the default: keys registered once
 * the active set has BLS_MIN_SET members, below which ECDSA certificates cost less; each
 * anchor then takes whichever of the two calls the chain estimates lower).
 *
 * A share whose BLS signature is bad makes the aggregate fail on chain (estimated before any
 * send): the shares are then checked one by one against their validators' keys, the bad ones
 * dropped (their validators count as absent), and the anchor tried again; if none was bad
 * the height is anchored with ECDSA. Nothing here can keep a height from being anchored.
 */
import { getAddress, keccak256, type TypedDataDomain, type Wallet } from 'ethers'
import { AnchorSharePool, shareDigest, type AnchorShare } from '../../src/chain/anchor-shares.ts'
import { blsSecretKey, commitVersionBlsArgs, proveKeyPossession, signDigest, verifyDigest, type CommitVersionBlsArgs } from '../../src/chain/bls.ts'
import type { RegistryClient } from '../../src/chain/registry-client.ts'
import type { ValidatorStake } from '../../src/chain/registry-state.ts'
import { fromHex } from '../../src/codec/hash.ts'
import { voteDigest, type VersionHeader } from '../../src/consensus/version.ts'
import { headerId, type WireShare } from '../../src/consensus/wire.ts'
import type { Logger } from '../logger.ts'

export type AnchorSignatures = 'auto' | 'ecdsa' | 'bls'

/** Below this many validators, ECDSA certificates cost less gas than one BLS aggregate (scripts/bench/gas.ts: ~24). */
export const BLS_MIN_SET = 24
/** How long an anchor waits for the set's shares at most before it is built from those in. */
const SHARE_WAIT_MS = 2000
/** Between validators' turns to sum the set's key on chain. */
const REFRESH_STAGGER_MS = 1500

export interface BlsAnchorsOptions {
  mode: AnchorSignatures
  wallet: Wallet
  client: () => RegistryClient | undefined
  logger: Logger
  publish?: (datanet: string, share: WireShare) => Promise<void>
  /** Fault injection: the BLS signature signs another message (the ECDSA one is honest). */
  badShares?: boolean
}

export class BlsAnchors {
  private readonly o: BlsAnchorsOptions
  private readonly pool = new AnchorSharePool()
  private secretKey: Uint8Array | undefined
  /** Validators' BLS keys read from chain (keys never change once registered). */
  private readonly keys = new Map<string, string>()
  private registering: Promise<void> | undefined

  constructor (o: BlsAnchorsOptions) {
    this.o = o
  }

  get enabled (): boolean {
    return this.o.mode !== 'ecdsa'
  }

  /** Whether a set of this size uses BLS at all (registers keys, shares, tries the aggregate). */
  wanted (setSize: number): boolean {
    return this.o.mode === 'bls' || (this.o.mode === 'auto' && setSize >= BLS_MIN_SET)
  }

  private get secret (): Uint8Array {
    this.secretKey ??= blsSecretKey(this.o.wallet.privateKey)
    return this.secretKey
  }

  /** A validator's key on chain ('0x' when none), cached once found. */
  async keyOf (validator: string): Promise<string> {
    const known = this.keys.get(validator.toLowerCase())
    if (known !== undefined) return known
    const key = await this.o.client()?.view<string>('blsKeyOf', [validator]) ?? '0x'
    if (key !== '0x') this.keys.set(validator.toLowerCase(), key)
    return key
  }

  /** Registers this validator's key if the chain has none. */
  async register (): Promise<void> {
    const me = this.o.wallet.address
    if (await this.keyOf(me) === '0x') {
      this.registering ??= (async () => {
        const { key, proof } = proveKeyPossession(this.secret, me)
        const tx = await this.o.client()?.send('registerBlsKey', [key, proof])
        this.keys.set(me.toLowerCase(), key)
        this.o.logger.info({ txHash: tx?.txHash, gasUsed: tx?.gasUsed.toString() }, 'BLS key registered')
      })().finally(() => { this.registering = undefined })
      await this.registering
    }
  }

  /**
   * While the set has no aggregate key, asks the registry to sum the set's keys (refused while a
   * member has none: estimated first, so that costs nothing; asked again at the next anchor
   * height). Validators take turns by `rank` (1.5 s apart), so that usually one pays for the sum.
   */
  async refresh (digest: string, rank = 0, sleep?: (ms: number) => Promise<void>): Promise<void> {
    let client = this.o.client()
    if (client === undefined || await client.view<string>('aggregateKeyOf', [digest]) !== '0x') return
    if (rank > 0 && sleep !== undefined) {
      await sleep(rank * REFRESH_STAGGER_MS)
      client = this.o.client()
      if (client === undefined || await client.view<string>('aggregateKeyOf', [digest]) !== '0x') return
    }
    try {
      await client.estimate('refreshAggregateKey', [digest])
    } catch {
      return // a member has no key yet
    }
    const tx = await client.send('refreshAggregateKey', [digest])
    this.o.logger.info({ txHash: tx.txHash, gasUsed: tx.gasUsed.toString() }, 'the set\'s aggregate BLS key summed on chain')
  }

  /** Signs and gossips this validator's share of a final version (an anchor height), keeping it too. */
  async share (datanet: string, domain: TypedDataDomain, height: number, round: number, header: VersionHeader): Promise<void> {
    if (await this.keyOf(this.o.wallet.address) === '0x') return
    const precommit = voteDigest(domain, 'precommit', round, header)
    const bls = signDigest(this.secret, this.o.badShares === true ? keccak256(precommit) : precommit)
    const signature = this.o.wallet.signingKey.sign(shareDigest(domain, precommit, bls)).serialized
    this.add(datanet, height, { validator: this.o.wallet.address, round, headerId: headerId(header), bls })
    await this.o.publish?.(datanet, { kind: 'share', round, header, bls: fromHex(bls, 48), signature: fromHex(signature, 65), sentAt: Date.now() })
  }

  /** A checked share from gossip. */
  add (datanet: string, height: number, share: AnchorShare): void {
    this.pool.add(datanet, height, share)
  }

  forget (datanet: string, height: number): void {
    this.pool.forget(datanet, height)
  }

  /** Waits (bounded) until every member of `set` shared the version, or SHARE_WAIT_MS passed. */
  async gather (datanet: string, height: number, round: number, header: VersionHeader, set: readonly ValidatorStake[], sleep: (ms: number) => Promise<void>): Promise<void> {
    const id = headerId(header)
    for (let waited = 0; waited < SHARE_WAIT_MS; waited += 100) {
      if (this.pool.of(datanet, height, round, id).length >= set.length) return
      await sleep(100)
    }
  }

  /**
   * commitVersionBls's arguments from the shares in, or undefined when the set has no
   * aggregate key on chain or the shares hold less than 2/3 of the stake.
   */
  async call (input: { datanet: string, digest: string, height: number, round: number, header: VersionHeader, set: readonly ValidatorStake[] }): Promise<CommitVersionBlsArgs | undefined> {
    const client = this.o.client()
    if (client === undefined || await client.view<string>('aggregateKeyOf', [input.digest]) === '0x') return undefined
    const members = new Map(input.set.map(v => [v.address.toLowerCase(), v.stake]))
    const shares = this.pool.of(input.datanet, input.height, input.round, headerId(input.header)).filter(s => members.has(s.validator))
    const total = input.set.reduce((a, v) => a + v.stake, 0n)
    const signed = shares.reduce((a, s) => a + (members.get(s.validator) ?? 0n), 0n)
    if (shares.length === 0 || signed * 3n < total * 2n) return undefined
    return commitVersionBlsArgs({
      datanetId: input.digest,
      round: input.round,
      header: input.header,
      signatures: shares.map(s => ({ signer: getAddress(s.validator), signature: s.bls })),
      validators: input.set
    })
  }

  /** After the aggregate failed: drops the shares whose BLS signature is bad; how many. */
  async dropBad (datanet: string, domain: TypedDataDomain, height: number, round: number, header: VersionHeader): Promise<number> {
    const precommit = voteDigest(domain, 'precommit', round, header)
    let dropped = 0
    for (const s of this.pool.of(datanet, height, round, headerId(header))) {
      const key = await this.keyOf(s.validator)
      if (key !== '0x' && verifyDigest(s.bls, precommit, key)) continue
      this.pool.drop(datanet, height, s)
      dropped++
      this.o.logger.warn({ datanet, height, validator: s.validator }, 'bad BLS anchor share: left out (its validator counts as absent)')
    }
    return dropped
  }
}
