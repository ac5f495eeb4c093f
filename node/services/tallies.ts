import { TallyTree, talliesFromJSON, type Tallies } from '../../src/attribution/tallies.ts'
import { checksumAddress } from '../../src/codec/address.ts'
import { toHex } from '../../src/codec/hash.ts'
import { DatanetError } from '../../src/errors.ts'
import { type StateDatabase } from '../../src/storage/state-db.ts'
import type { ChainService } from './chain.ts'
import type { FollowedDatanet } from './datanets.ts'

export const TallyServiceErrorCode = {
  ROOT_MISMATCH: 'ATTRIBUTION_ERROR_ROOT_MISMATCH',
  NOTHING_TO_CLAIM: 'CLAIM_ERROR_NOTHING'
} as const

/** One account's tally (GET /v1/datanets/:id/tallies/:address, DESIGN §6). */
export interface TallyView {
  address: string
  /** Cumulative attribution after the latest final version, in wei. */
  amount: string
  height: number
  anchoredHeight: number | null
  /** What the anchored root lets the account claim in all, what it has claimed, and the rest. */
  cumulativeAmount: string
  claimed: string
  claimable: string
  root: string
  proof: string[]
}

export interface TallyList {
  height: number
  anchoredHeight: number | null
  total: string
  tallies: TallyView[]
}

export interface TallyServiceOptions {
  db: StateDatabase
  chain: ChainService | undefined
  /** Tally sets kept decoded, with their trees (the latest and the anchored height of a few datanets). */
  cacheSize?: number
}

interface Decoded {
  tallies: Tallies
  tree?: TallyTree
}

/**
 * Reads the cumulative tallies the versions service stores at each final version whose
 * events changed them, and answers for accounts: amounts, what the anchored root lets them
 * claim, and the proof. Stored tallies never change, so the decoded set and its tree are
 * kept per (datanet, height that wrote them):
 * after the first request a tally costs a map lookup and an O(log n) proof, and listing n
 * accounts builds one tree, not n.
 */
export class TallyService {
  private readonly opts: TallyServiceOptions
  private readonly cache = new Map<string, Decoded>()
  private readonly cacheSize: number

  constructor (opts: TallyServiceOptions) {
    this.opts = opts
    this.cacheSize = opts.cacheSize ?? 8
  }

  async start (): Promise<void> {}

  async stop (): Promise<void> {
    this.cache.clear()
  }

  async latestHeight (d: FollowedDatanet): Promise<number> {
    return (await this.opts.db.versions.latest(d.id))?.height ?? 0
  }

  /** One account's tally, with its claim proof against the last anchor. */
  async tallyOf (d: FollowedDatanet, account: string): Promise<TallyView> {
    const height = await this.latestHeight(d)
    return await this.view(d, account.toLowerCase(), height, await this.anchoredTree(d))
  }

  /** Every account's tally at the latest final version. */
  async list (d: FollowedDatanet): Promise<TallyList> {
    const height = await this.latestHeight(d)
    const { tallies } = await this.at(d, height)
    const anchored = await this.anchoredTree(d)
    const views: TallyView[] = []
    for (const account of tallies.keys()) views.push(await this.view(d, account, height, anchored, tallies))
    return {
      height,
      anchoredHeight: anchored.height,
      total: [...tallies.values()].reduce((a, b) => a + b, 0n).toString(),
      tallies: views
    }
  }

  /** Claims what the node's own account may claim against the latest anchor on `chain` (the node's). */
  async claim (d: FollowedDatanet, chain: ChainService): Promise<TallyView & { paid: string, txHash: string, block: number }> {
    // claim against the latest anchor there is, not the one the last poll saw
    await chain.refresh()
    const tally = await this.tallyOf(d, chain.address)
    if (BigInt(tally.claimable) === 0n) {
      throw new DatanetError({ code: TallyServiceErrorCode.NOTHING_TO_CLAIM }, `nothing to claim for ${tally.address}: ${tally.cumulativeAmount} wei attributed as of the last anchor (version ${String(tally.anchoredHeight ?? '-')}), ${tally.claimed} claimed`, 'conflict')
    }
    const tx = await chain.claim(d, tally.address, BigInt(tally.cumulativeAmount), tally.proof)
    return { ...tally, paid: tally.claimable, claimed: tally.cumulativeAmount, claimable: '0', txHash: tx.txHash, block: tx.block }
  }

  private async view (d: FollowedDatanet, account: string, height: number, anchored: { height: number | null, tree: TallyTree }, tallies?: Tallies): Promise<TallyView> {
    const latest = (tallies ?? (await this.at(d, height)).tallies).get(account) ?? 0n
    const proof = anchored.tree.proof(account)
    const claimed = this.opts.chain?.claimedOn(d, account) ?? 0n
    const cumulative = proof?.cumulativeAmount ?? 0n
    return {
      address: checksumAddress(account),
      amount: latest.toString(),
      height,
      anchoredHeight: anchored.height,
      cumulativeAmount: cumulative.toString(),
      claimed: claimed.toString(),
      claimable: (cumulative > claimed ? cumulative - claimed : 0n).toString(),
      root: toHex(anchored.tree.root),
      proof: proof?.proof ?? []
    }
  }

  /** The tree of the tallies the contract's root commits to (empty before the first anchor), checked against that root. */
  private async anchoredTree (d: FollowedDatanet): Promise<{ height: number | null, tree: TallyTree }> {
    const anchored = this.opts.chain?.anchoredAttribution(d)
    const decoded = await this.at(d, anchored?.height ?? 0)
    decoded.tree ??= new TallyTree(decoded.tallies)
    if (anchored !== undefined && toHex(decoded.tree.root) !== anchored.attributionRoot.toLowerCase()) {
      throw new DatanetError({ code: TallyServiceErrorCode.ROOT_MISMATCH }, `the tallies of version ${anchored.height} here do not give the anchored root`, 'failure')
    }
    return { height: anchored?.height ?? null, tree: decoded.tree }
  }

  private async at (d: FollowedDatanet, height: number): Promise<Decoded> {
    const written = height === 0 ? undefined : await this.opts.db.tallies.writtenAt(d.id, height)
    // none yet: not cached, they may come
    if (written === undefined) return { tallies: new Map() }
    // by the height that wrote them: the heights after it without events share one tree
    const key = `${d.id}/${written}`
    const hit = this.cache.get(key)
    if (hit !== undefined) {
      // most recently used last
      this.cache.delete(key)
      this.cache.set(key, hit)
      return hit
    }
    const stored = await this.opts.db.tallies.at(d.id, written)
    if (stored === undefined) return { tallies: new Map() }
    const decoded: Decoded = { tallies: talliesFromJSON(stored.tallies) }
    this.cache.set(key, decoded)
    while (this.cache.size > this.cacheSize) this.cache.delete(this.cache.keys().next().value as string)
    return decoded
  }
}
