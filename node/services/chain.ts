import { getAddress, type Wallet } from 'ethers'
import { peerIdFromString } from '@libp2p/peer-id'
import { base58btc } from 'multiformats/bases/base58'
import { ChainFollower } from '../../src/chain/follower.ts'
import { RegistryClient, isTransient, revertName, type SentTx } from '../../src/chain/registry-client.ts'
import { activeSet, anchorAt, anchorIntervalOf, inferenceEscrow, lastAnchor, registrationProblem, setForHeight, type DatanetChainState, type ValidatorInfo, type ValidatorStake } from '../../src/chain/registry-state.ts'
import { commitVersionArgs } from '../../src/chain/commit-args.ts'
import { headerOfStored, type SignedVote } from '../../src/consensus/version.ts'
import { stakeOf, type ValidatorSet } from '../../src/datanet/manifest.ts'
import { DatanetError } from '../../src/errors.ts'
import { levelFollowerStore } from '../../src/storage/chain-store.ts'
import { type StateDatabase, type VersionEntry } from '../../src/storage/state-db.ts'
import type { FollowedDatanet } from './datanets.ts'
import { BlsAnchors, type AnchorSignatures } from './bls-anchors.ts'
import type { AnchorShare } from '../../src/chain/anchor-shares.ts'
import { signingDomain } from '../../src/codec/eip712.ts'
import type { WireShare } from '../../src/consensus/wire.ts'
import type { Logger } from '../logger.ts'

export interface ChainServiceOptions {
  db: StateDatabase
  /** The chain's RPC URLs in order of preference: reads and sends fail over to the next when one is down. */
  rpcUrls: readonly string[]
  chainId: number
  registry: string
  /** Blocks on top before an event counts, and before the node's own transaction counts. */
  confirmations: number
  pollIntervalMs: number
  startBlock: number
  /** Time without a receipt after which a transaction is replaced with higher fees. */
  feeBumpAfterMs: number
  /** The most a transaction pays per gas, in wei. */
  maxFeePerGas: bigint
  /** A request with no answer in this time counts as its RPC URL being down. */
  rpcTimeoutMs: number
  wallet: Wallet
  peerId: string
  logger: Logger
  /** The chain changed what a datanet's consensus may do (a set was fixed, an anchor landed). */
  onChange: (datanetId: string) => void
  /** A version's anchor found on chain and written into it. */
  onAnchored?: (anchor: { datanet: string, height: number, txHash: string, block: number }) => void
  /** How anchors are signed (node/services/bls-anchors.ts); default `auto`. */
  anchorSignatures?: AnchorSignatures
  /** Gossips this validator's anchor share (the consensus service's topic). */
  publishShare?: (datanet: string, share: WireShare) => Promise<void>
  /** Fault injection (DATANET_FAULT=bad-bls-share): shares whose BLS signature signs another message. */
  badShares?: boolean
}

export const ChainServiceErrorCode = {
  NOT_ON_CHAIN: 'CHAIN_ERROR_DATANET_NOT_REGISTERED',
  REGISTRATION_MISMATCH: 'CHAIN_ERROR_REGISTRATION_MISMATCH',
  NOT_VALIDATOR: 'CHAIN_ERROR_NOT_VALIDATOR',
  BAD_AMOUNT: 'CHAIN_ERROR_BAD_AMOUNT'
} as const

const ANCHOR_STAGGER_MS = 3000
const MAX_BACKOFF_MS = 10_000

/** The registry's side of a datanet as the API shows it (DESIGN §6 /validators, `chain`). */
export interface ChainInfo {
  registered: boolean
  /** `mismatch`: registered, but not with the manifest's genesis set and interval (a squatter's): ignored. */
  registration: 'none' | 'matches' | 'mismatch'
  problem: string | null
  lastAnchor: { height: number, txHash: string, block: number } | null
  totalFunded: string
  totalClaimed: string
}

/** A validator in the API's shape (DESIGN §6 /validators). */
export interface ValidatorView {
  address: string
  stake: string
  status: ValidatorInfo['status']
  peerId: string | null
  since: number
  unlockAt: number | null
}

/**
 * The node's side of the registry (DESIGN §4 flows 4, 6, 7): follows its events, derives
 * the validator set of every height, anchors final versions every anchorInterval, submits
 * equivocation evidence to `slash`, and sends a validator's join and leave.
 */
export class ChainService {
  private readonly opts: ChainServiceOptions
  private readonly log: Logger
  private client: RegistryClient | undefined
  private follower: ChainFollower | undefined
  private readonly datanets = new Map<string, FollowedDatanet>()
  private readonly anchoring = new Set<string>()
  /** Per datanet id: why its registration is not its manifest's (null when it is); set once registered, which is final. */
  private readonly problems = new Map<string, string | null>()
  private readonly refused = new Set<string>()
  private readonly timers = new Set<NodeJS.Timeout>()
  private running = false
  private polling: Promise<void> | undefined
  private failures = 0

  private readonly bls: BlsAnchors

  constructor (opts: ChainServiceOptions) {
    this.opts = opts
    this.log = opts.logger
    this.bls = new BlsAnchors({ mode: opts.anchorSignatures ?? 'auto', wallet: opts.wallet, client: () => this.client, logger: opts.logger, publish: opts.publishShare, badShares: opts.badShares })
  }

  /** A checked anchor share from gossip. */
  addShare (datanet: string, height: number, share: AnchorShare): void {
    this.bls.add(datanet, height, share)
  }

  async start (): Promise<void> {
    const { opts } = this
    this.client = await RegistryClient.connect({
      rpcUrl: opts.rpcUrls,
      chainId: opts.chainId,
      registry: opts.registry,
      signer: opts.wallet,
      confirmations: opts.confirmations,
      feeBumpAfterMs: opts.feeBumpAfterMs,
      maxFeePerGas: opts.maxFeePerGas,
      rpcTimeoutMs: opts.rpcTimeoutMs,
      // long enough for a few replacements; past it the anchor loop sends again and the client replaces what is pending
      receiptTimeoutMs: Math.max(60_000, 4 * opts.feeBumpAfterMs),
      onRpcSwitch: (from, to, err) => { this.log.warn({ from, to, err: (err as Error | undefined)?.message }, 'chain RPC failed over') },
      onSend: sent => {
        const fees = { maxFeePerGas: sent.fees.maxFeePerGas.toString(), maxPriorityFeePerGas: sent.fees.maxPriorityFeePerGas.toString() }
        if (sent.replacement) this.log.info({ method: sent.method, txHash: sent.hash, nonce: sent.nonce, ...fees }, 'no receipt yet: transaction replaced with higher fees')
        else this.log.debug({ method: sent.method, txHash: sent.hash, nonce: sent.nonce, ...fees }, 'transaction sent')
      }
    })
    this.follower = new ChainFollower({
      source: this.client,
      store: levelFollowerStore(opts.db.chain),
      confirmations: opts.confirmations,
      startBlock: opts.startBlock,
      onEvents: events => { void this.onEvents(events.map(e => e.datanetId)) },
      onReorg: (fork, dropped) => {
        this.log.warn({ fork, dropped }, 'chain reorg: events after the fork block dropped')
        // an anchor in the dropped blocks is no longer on chain: anchor again what is not
        for (const d of this.datanets.values()) void this.forgetDroppedAnchors(d).then(async () => { await this.resumeAnchors(d) })
      }
    })
    await this.follower.load()
    this.running = true
    await this.pollOnce()
    this.schedule(opts.pollIntervalMs)
    this.log.info({ rpcUrls: opts.rpcUrls, chainId: opts.chainId, registry: opts.registry, block: this.follower.block }, 'following the registry')
  }

  async stop (): Promise<void> {
    this.running = false
    for (const t of this.timers) clearTimeout(t)
    this.timers.clear()
    await this.polling
    this.client?.destroy()
  }

  private schedule (ms: number): void {
    const t = setTimeout(() => {
      this.timers.delete(t)
      this.polling = this.pollOnce().finally(() => {
        // back off while the RPC is down
        if (this.running) this.schedule(Math.min(this.opts.pollIntervalMs * 2 ** this.failures, MAX_BACKOFF_MS))
      })
    }, ms)
    t.unref()
    this.timers.add(t)
  }

  private pollQueue: Promise<void> = Promise.resolve()

  /** One follower step at a time (polls from the timer, after sends and from waiters queue up). */
  private async pollOnce (): Promise<void> {
    const next = this.pollQueue.then(async () => { await this.pollStep() })
    this.pollQueue = next
    await next
  }

  private async pollStep (): Promise<void> {
    try {
      await this.follower?.poll()
      if (this.failures > 0) this.log.info({ block: this.follower?.block }, 'chain RPC reachable again')
      this.failures = 0
    } catch (err) {
      if (this.failures === 0) this.log.warn({ err: (err as Error).message }, 'chain RPC unreachable; retrying with backoff')
      this.failures = Math.min(this.failures + 1, 8)
    }
  }

  /** The account this node sends from. */
  get address (): string {
    return this.opts.wallet.address
  }

  get block (): number {
    return this.follower?.block ?? -1
  }

  /** Starts following a datanet's registry entry (the datanet's consensus then asks for sets). */
  async follow (d: FollowedDatanet): Promise<void> {
    this.datanets.set(d.digest.toLowerCase(), d)
    this.checkRegistration(d)
    if (this.state(d) === undefined && this.mismatch(d) === undefined) this.log.warn({ datanet: d.id, digest: d.digest }, 'datanet not registered on chain yet: its consensus waits for it')
    void this.resumeAnchors(d)
    void this.submitEvidence(d)
  }

  /**
   * The registry's state of a datanet — undefined when its registration is not the
   * manifest's (a squatter's): nothing of it is followed, anchored or escrowed.
   */
  private state (d: FollowedDatanet): DatanetChainState | undefined {
    return this.mismatch(d) === undefined ? this.follower?.state(d.digest) : undefined
  }

  /** Why the datanet's registration is not its manifest's, or undefined (a match, or not registered yet). */
  private mismatch (d: FollowedDatanet): string | undefined {
    const known = this.problems.get(d.id)
    if (known !== undefined) return known ?? undefined
    const state = this.follower?.state(d.digest)
    if (state?.created == null) return undefined
    const problem = registrationProblem(state, d.manifest) ?? null
    this.problems.set(d.id, problem)
    return problem ?? undefined
  }

  /** The registration as the API shows it. */
  registration (d: FollowedDatanet): { status: 'none' | 'matches' | 'mismatch', problem: string | null } {
    const problem = this.mismatch(d)
    if (problem !== undefined) return { status: 'mismatch', problem }
    return { status: this.state(d)?.created == null ? 'none' : 'matches', problem: null }
  }

  /**
   * The set that decides `height` (checksummed addresses, sorted), or undefined until the
   * chain fixes it; the manifest's genesis set for good when the registration is not the
   * manifest's (the datanet goes on as without a chain: unanchored).
   */
  validatorSet (d: FollowedDatanet, height: number): ValidatorSet | undefined {
    if (this.mismatch(d) !== undefined) return d.validators
    const state = this.state(d)
    if (state === undefined) return undefined
    const set = setForHeight(state, height, this.anchorInterval(d))
    return set === undefined ? undefined : this.checksummed(set)
  }

  /** Sets as the chain state holds them (one array per anchor), checksummed once: every vote and verdict asks. */
  private readonly sets = new WeakMap<readonly ValidatorStake[], ValidatorSet>()

  private checksummed (set: readonly ValidatorStake[]): ValidatorSet {
    let out = this.sets.get(set)
    if (out === undefined) {
      const validators = set.map(v => ({ address: getAddress(v.address), stake: v.stake }))
      out = { validators, total: validators.reduce((s, v) => s + v.stake, 0n) }
      this.sets.set(set, out)
    }
    return out
  }

  validators (d: FollowedDatanet): ValidatorView[] {
    const state = this.state(d)
    if (state === undefined) return []
    return [...state.validators.values()]
      .sort((a, b) => (a.address < b.address ? -1 : 1))
      .map(v => ({ address: getAddress(v.address), stake: v.stake.toString(), status: v.status, peerId: peerIdText(v.peerId), since: v.since, unlockAt: v.unlockAt }))
  }

  anchorOf (d: FollowedDatanet, height: number): { txHash: string, block: number } | null {
    const state = this.state(d)
    const a = state === undefined ? undefined : anchorAt(state, height)
    return a === undefined ? null : { txHash: a.txHash, block: a.block }
  }

  chainInfo (d: FollowedDatanet): ChainInfo {
    const state = this.state(d)
    const a = state === undefined ? undefined : lastAnchor(state)
    const { status, problem } = this.registration(d)
    return {
      registered: status !== 'none',
      registration: status,
      problem,
      lastAnchor: a === undefined ? null : { height: a.height, txHash: a.txHash, block: a.block },
      totalFunded: (state?.totalFunded ?? 0n).toString(),
      totalClaimed: (state?.totalClaimed ?? 0n).toString()
    }
  }

  private async onEvents (ids: string[]): Promise<void> {
    for (const id of new Set(ids)) {
      const d = this.datanets.get(id)
      if (d === undefined) continue
      this.checkRegistration(d)
      await this.recordAnchors(d)
      this.opts.onChange(d.id)
      void this.submitEvidence(d)
    }
  }

  /** The registry's active set now (the set after its last anchor); undefined before it is registered. */
  latestSet (d: FollowedDatanet): ValidatorSet | undefined {
    if (this.mismatch(d) !== undefined) return d.validators
    const state = this.state(d)
    if (state?.created == null) return undefined
    const validators = activeSet(state).map(v => ({ address: getAddress(v.address), stake: v.stake }))
    return { validators, total: validators.reduce((s, v) => s + v.stake, 0n) }
  }

  private checkRegistration (d: FollowedDatanet): void {
    const problem = this.mismatch(d)
    if (problem === undefined || this.refused.has(d.id)) return
    this.refused.add(d.id)
    this.log.error({ datanet: d.id, digest: d.digest, problem }, 'the datanet\'s registration on chain is not its manifest\'s (a squatter\'s?): ignored; versions go on under the manifest\'s set, unanchored')
  }

  /** Writes each anchor into the version it anchors (what `version show` prints). */
  private async recordAnchors (d: FollowedDatanet): Promise<void> {
    const state = this.state(d)
    if (state === undefined) return
    for (const a of state.anchors) {
      const entry = await this.opts.db.versions.at(d.id, a.height)
      if (entry === undefined || entry.anchor?.txHash === a.txHash) continue
      await this.opts.db.anchors.put(d.id, a.height, { txHash: a.txHash, block: a.block })
      this.log.info({ datanet: d.id, height: a.height, txHash: a.txHash, block: a.block }, 'version anchored')
      this.opts.onAnchored?.({ datanet: d.id, height: a.height, txHash: a.txHash, block: a.block })
    }
  }

  // ---- anchoring (DESIGN §4 flow 4) --------------------------------------------------------

  /**
   * Heights the contract anchors: multiples of the interval registered on chain (the truth
   * when it differs from the manifest's: the contract refuses any other height).
   */
  private anchorInterval (d: FollowedDatanet): number {
    return anchorIntervalOf(this.state(d), d.manifest.anchorInterval)
  }

  /** After a reorg: an anchor the reorg took off the chain is no anchor until the version lands again. */
  private async forgetDroppedAnchors (d: FollowedDatanet): Promise<void> {
    const onChain = new Set(this.state(d)?.anchors.map(a => a.height) ?? [])
    for (const height of (await this.opts.db.anchors.of(d.id)).keys()) {
      if (onChain.has(height)) continue
      await this.opts.db.anchors.delete(d.id, height)
      this.log.warn({ datanet: d.id, height }, 'anchor dropped by a reorg')
    }
  }

  /** Called for every final version: anchors the ones at anchor heights. */
  onFinal (d: FollowedDatanet, entry: VersionEntry): void {
    if (entry.height % this.anchorInterval(d) !== 0 || this.mismatch(d) !== undefined) return
    void this.recordAnchors(d)
    void this.shareAnchor(d, entry)
    void this.anchor(d, entry)
  }

  /** A validator of the height with BLS in use: its key on chain, then its share of the version. */
  private async shareAnchor (d: FollowedDatanet, entry: VersionEntry): Promise<void> {
    const state = this.state(d)
    const set = this.validatorSet(d, entry.height)
    if (!this.bls.enabled || state === undefined || set === undefined || stakeOf(set, this.opts.wallet.address) === undefined || this.anchored(d, entry.height)) return
    const active = activeSet(state)
    if (!this.bls.wanted(active.length)) return
    try {
      const rank = (set.validators.findIndex(v => v.address.toLowerCase() === this.opts.wallet.address.toLowerCase()) + entry.height) % set.validators.length
      await this.bls.register()
      await this.bls.share(d.id, this.domainOf(d), entry.height, entry.round, headerOfStored(entry))
      await this.bls.refresh(d.digest, rank, async ms => { await this.sleep(ms) })
    } catch (err) {
      this.log.warn({ datanet: d.id, height: entry.height, err: (err as Error).message }, 'no BLS anchor share this time')
    }
  }

  private domainOf (d: FollowedDatanet): ReturnType<typeof signingDomain> {
    return signingDomain({ chainId: this.opts.chainId, registry: this.opts.registry }, d.id)
  }

  /** After a restart: final versions at anchor heights above the last anchor. */
  private async resumeAnchors (d: FollowedDatanet): Promise<void> {
    if (this.mismatch(d) !== undefined) return
    const last = this.state(d) === undefined ? 0 : (lastAnchor(this.state(d) as DatanetChainState)?.height ?? 0)
    for (const entry of await this.opts.db.versions.of(d.id)) {
      if (entry.height > last && entry.height % this.anchorInterval(d) === 0) void this.anchor(d, entry)
    }
    await this.recordAnchors(d)
  }

  private anchored (d: FollowedDatanet, height: number): boolean {
    const a = this.state(d) === undefined ? undefined : lastAnchor(this.state(d) as DatanetChainState)
    return a !== undefined && a.height >= height
  }

  /**
   * Submits a final version's certificate. Validators take turns (a stagger by a rank that
   * rotates with the height), so usually one transaction lands and the others see its event
   * and stop; a loser's StaleHeight revert also means done. RPC errors and dropped
   * transactions retry with backoff until the anchor is in: in the follower's state, i.e.
   * with `confirmations` blocks on top. A send that returned but whose anchor a reorg
   * dropped is sent again (the client replaces a stuck one; see RegistryClient.send).
   */
  private async anchor (d: FollowedDatanet, entry: VersionEntry): Promise<void> {
    const key = `${d.id}/${entry.height}`
    if (this.anchoring.has(key)) return
    this.anchoring.add(key)
    const log = this.log.child({ datanet: d.id, height: entry.height })
    try {
      const set = this.validatorSet(d, entry.height) ?? d.validators
      const me = this.opts.wallet.address
      if (stakeOf(set, me) === undefined) return
      const rank = (set.validators.findIndex(v => v.address.toLowerCase() === me.toLowerCase()) + entry.height) % set.validators.length
      await this.sleep(rank * ANCHOR_STAGGER_MS)
      let attempt = 0
      let bls = this.bls.enabled
      let gathered = false
      while (this.running && !this.anchored(d, entry.height)) {
        let method = 'commitVersion'
        try {
          const state = this.state(d)
          if (state === undefined) throw new DatanetError({ code: ChainServiceErrorCode.NOT_ON_CHAIN }, 'datanet not registered on chain', 'unavailable')
          const active = new Set(activeSet(state).map(v => v.address))
          const header = headerOfStored(entry)
          let args: unknown[] = commitVersionArgs({
            datanetId: d.digest,
            round: entry.round,
            header,
            // the contract's set is the one that decided the height (slashes and leaves apply at the
            // anchor); a signer outside it would make the contract refuse the whole certificate
            signatures: entry.certificate.filter(c => active.has(c.validator.toLowerCase())).map(c => ({ signer: c.validator, signature: c.signature })),
            validators: activeSet(state)
          })
          if (bls && this.bls.wanted(active.size)) {
            if (!gathered) await this.bls.gather(d.id, entry.height, entry.round, header, activeSet(state), async ms => { await this.sleep(ms) })
            gathered = true
            const blsArgs = await this.bls.call({ datanet: d.id, digest: d.digest, height: entry.height, round: entry.round, header, set: activeSet(state) })
            if (blsArgs !== undefined) {
              method = 'commitVersionBls' // a revert from here on is the BLS call's
              if (await this.blsCheaper(blsArgs, args)) args = blsArgs
              else method = 'commitVersion'
            }
          }
          const tx = await this.client?.send(method, args) as SentTx
          log.info({ txHash: tx.txHash, block: tx.block, gasUsed: tx.gasUsed.toString(), method }, 'anchor submitted')
          await this.pollOnce()
          // confirmed by the client; the follower counts it at the same depth, unless a reorg took it
          if (!this.anchored(d, entry.height)) log.warn({ txHash: tx.txHash }, 'anchor not in the chain\'s state after its confirmations (a reorg?): anchoring again')
        } catch (err) {
          const name = revertName(err)
          if (name === 'StaleHeight') { log.debug('anchored by another validator'); await this.pollOnce(); return }
          // not a height the registry anchors (its interval was not known yet): the next multiple will be
          if (name === 'NotAnchorHeight') { log.warn('not an anchor height on chain; skipped'); return }
          if (method === 'commitVersionBls' && name !== undefined) {
            // a bad share (found and left out), or no quorum of good ones: ECDSA then
            const dropped = name === 'InvalidAggregateSignature' ? await this.bls.dropBad(d.id, this.domainOf(d), entry.height, entry.round, headerOfStored(entry)) : 0
            if (dropped === 0) bls = false
            log.info({ revert: name, dropped }, dropped === 0 ? 'BLS anchor refused: anchoring with ECDSA' : 'BLS anchor refused: bad shares left out')
            continue
          }
          attempt++
          const wait = Math.min(500 * 2 ** attempt, MAX_BACKOFF_MS)
          if (name !== undefined || !isTransient(err)) log.warn({ err: (err as Error).message, attempt }, 'anchor refused; retrying')
          else log.info({ err: (err as Error).message, attempt, retryInMs: wait }, 'anchor not sent; retrying')
          await this.sleep(wait)
          await this.pollOnce()
        }
      }
    } finally {
      this.anchoring.delete(key)
      if (this.anchored(d, entry.height)) this.bls.forget(d.id, entry.height)
    }
  }

  /** Whether the BLS call is the one to send: always under `bls`, the lower estimate under `auto`. */
  private async blsCheaper (blsArgs: unknown[], ecdsaArgs: unknown[]): Promise<boolean> {
    if (this.opts.anchorSignatures === 'bls') return true
    const client = this.requireClient()
    const [b, e] = await Promise.all([client.estimate('commitVersionBls', blsArgs), client.estimate('commitVersion', ecdsaArgs)])
    return b < e
  }

  private async sleep (ms: number): Promise<void> {
    if (ms <= 0) return
    await new Promise<void>(resolve => {
      const t = setTimeout(() => { this.timers.delete(t); resolve() }, ms)
      t.unref()
      this.timers.add(t)
    })
  }

  // ---- slashing (DESIGN §4 flow 7) ----------------------------------------------------------

  private submittingEvidence = false

  /** Sends every unsubmitted equivocation the consensus kept to `slash`. */
  async submitEvidence (d: FollowedDatanet): Promise<void> {
    if (this.submittingEvidence || !this.running) return
    this.submittingEvidence = true
    try {
      for (const value of await this.opts.db.evidence.of(d.id)) {
        if (value.submitted !== undefined) continue
        const first = value.first as SignedVote | undefined
        const second = value.second as SignedVote | undefined
        if (first === undefined || second === undefined) continue
        const validator = first.vote.validator.toLowerCase()
        const info = this.state(d)?.validators.get(validator)
        if (info === undefined || info.status === 'slashed' || info.stake === 0n) {
          await this.opts.db.evidence.markSubmitted(value, 'not slashable')
          continue
        }
        try {
          const tx = await this.client?.send('slash', slashArgs({ datanetId: d.digest, first, second })) as SentTx
          this.log.warn({ datanet: d.id, validator, txHash: tx.txHash }, 'equivocation evidence submitted: validator slashed')
          await this.opts.db.evidence.markSubmitted(value, tx.txHash)
        } catch (err) {
          const name = revertName(err)
          if (name !== undefined) {
            this.log.info({ datanet: d.id, validator, revert: name }, 'evidence not taken (already slashed?)')
            await this.opts.db.evidence.markSubmitted(value, name)
          } else {
            this.log.warn({ datanet: d.id, validator, err: (err as Error).message }, 'evidence not sent yet; will retry')
          }
        }
      }
    } finally {
      this.submittingEvidence = false
    }
  }

  // ---- the node's own validator (CLI: validator join / leave) -------------------------------

  async join (d: FollowedDatanet, stake: bigint): Promise<SentTx> {
    const problem = this.mismatch(d)
    if (problem !== undefined) throw new DatanetError({ code: ChainServiceErrorCode.REGISTRATION_MISMATCH }, `datanet ${d.id}'s registration on chain ${this.opts.chainId} is not its manifest's (${problem}): nodes ignore it; staking there would back a squatter`, 'conflict')
    if (this.state(d)?.created == null) throw new DatanetError({ code: ChainServiceErrorCode.NOT_ON_CHAIN }, `datanet ${d.id} is not registered on chain ${this.opts.chainId}`, 'conflict')
    const set = this.state(d) === undefined ? [] : activeSet(this.state(d) as DatanetChainState)
    // the key first, so that the set's aggregate key includes it from the anchor that activates the join
    if (this.bls.wanted(set.length + 1)) {
      await this.bls.register()
      await this.bls.refresh(d.digest)
    }
    const tx = await this.requireClient().send('joinValidator', [d.digest, peerIdFromString(this.opts.peerId).toMultihash().bytes], { value: stake })
    await this.pollOnce()
    return tx
  }

  async leave (d: FollowedDatanet): Promise<SentTx> {
    const tx = await this.requireClient().send('leaveValidator', [d.digest])
    await this.pollOnce()
    return tx
  }

  async withdraw (d: FollowedDatanet): Promise<SentTx> {
    const tx = await this.requireClient().send('withdraw', [d.digest])
    await this.pollOnce()
    return tx
  }

  async claim (d: FollowedDatanet, account: string, cumulativeAmount: bigint, proof: string[]): Promise<SentTx> {
    const tx = await this.requireClient().send('claim', [d.digest, account, cumulativeAmount, proof])
    await this.pollOnce()
    return tx
  }

  /** Escrows an inference fee for an event id (the fee funds the datanet's attribution). */
  async payInference (d: FollowedDatanet, eventId: string, fee: bigint): Promise<SentTx> {
    if (fee <= 0n) throw new DatanetError({ code: 'CHAIN_ERROR_BAD_AMOUNT' }, 'the fee must be more than zero wei', 'usage')
    const tx = await this.requireClient().send('payInference', [d.digest, eventId], { value: fee })
    await this.pollOnce()
    return tx
  }

  /** The escrow `payer` (the event's operator) paid for an event id, as this node's view of the chain has it. */
  inferencePaid (d: FollowedDatanet, eventId: string, payer: string): { payer: string, amount: bigint } | undefined {
    const state = this.state(d)
    return state === undefined ? undefined : inferenceEscrow(state, eventId, payer)
  }

  /** Reads the chain now rather than at the next poll. */
  async refresh (): Promise<void> {
    await this.pollOnce()
  }

  /** The attribution root and height the contract holds: what claims are checked against. */
  anchoredAttribution (d: FollowedDatanet): { height: number, attributionRoot: string, totalAttributed: bigint } | undefined {
    const state = this.state(d)
    const a = state === undefined ? undefined : lastAnchor(state)
    return a === undefined ? undefined : { height: a.height, attributionRoot: a.attributionRoot, totalAttributed: a.totalAttributed }
  }

  claimedOn (d: FollowedDatanet, account: string): bigint {
    return this.state(d)?.claimed.get(account.toLowerCase()) ?? 0n
  }

  async claimedOf (d: FollowedDatanet, account: string): Promise<bigint> {
    return BigInt(await this.requireClient().view<bigint>('claimed', [d.digest, account]))
  }

  private requireClient (): RegistryClient {
    if (this.client === undefined) throw new DatanetError({ code: 'CHAIN_ERROR_NOT_STARTED' }, 'the chain service is not started', 'unavailable')
    return this.client
  }
}

/** `slash` arguments from two conflicting signed votes (the contract recomputes both digests). */
function slashArgs ({ datanetId, first, second }: { datanetId: string, first: SignedVote, second: SignedVote }): unknown[] {
  const vote = (v: SignedVote): Record<string, unknown> => ({ voteType: v.vote.type === 'prevote' ? 1 : 2, round: v.vote.round, header: { ...v.header, totalAttributed: BigInt(v.header.totalAttributed) } })
  return [datanetId, vote(first), first.signature, vote(second), second.signature]
}

/** A peer id announced on chain (its multihash bytes) in its text form, base58btc without the multibase prefix. */
function peerIdText (hex: string | null): string | null {
  if (hex === null || hex === '0x') return null
  return base58btc.encode(Buffer.from(hex.slice(2), 'hex')).slice(1)
}
