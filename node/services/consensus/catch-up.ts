/**
 * Catch-up (DESIGN §4 flow 8): final versions asked of peers by height range. A range is
 * checked as a whole before any of it is used (src/consensus/range.ts: one chain, each
 * version under its height's set, every certificate's signatures in one batch), then its
 * vouched-for blocks fetched, then each version checked against the one before (roots
 * recomputed; verdicts not re-checked: the version's certificate vouches for them) and
 * the range made final in one synced batch. A peer that serves a range no quorum signed is
 * penalised and nothing of that range is applied. And serving ours to others.
 */
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { peerIdFromString } from '@libp2p/peer-id'
import type { TypedDataDomain } from 'ethers'
import type { Helia } from '@helia/interface'
import { checkRange, rangePieces } from '../../../src/consensus/range.ts'
import { decodeVersion, versionValue, type VersionValue } from '../../../src/consensus/version.ts'
import { verifyAll, type SignedDigest } from '../../../src/codec/signer.ts'
import { decodeContribution } from '../../../src/contribution/contribution.ts'
import type { ValidatorSet } from '../../../src/datanet/manifest.ts'
import { MAX_BLOCK_BYTES_PER_RESPONSE, MAX_SYNC_MESSAGE_BYTES, MAX_VERSIONS_PER_REQUEST, type SyncRequest, type SyncResponse, type SyncedVersion, type VersionSync } from '../../../src/network/version-sync.ts'
import { MAX_BLOCKS_PER_REQUEST, type BlockAnswer, type BlockRequest } from '../../../src/network/block-request.ts'
import { sha256, toHex } from '../../../src/codec/hash.ts'
import { getBlock } from '../blocks.ts'
import type { DatanetVersions } from './versions.ts'
import type { Logger } from '../../logger.ts'

/** A version of a checked range, ready to apply. */
export interface RangeItem {
  round: number
  value: VersionValue
  certificate: SyncedVersion['certificate']
}

export interface CatchUpOptions {
  sync: VersionSync
  helia: Helia
  versions: DatanetVersions
  domain: TypedDataDomain
  datanet: string
  logger: Logger
  setFor: (height: number) => ValidatorSet | undefined
  peers: () => string[]
  /** Runs a task on the consensus queue; the result is the task's. */
  onQueue: <T>(task: () => Promise<T>) => Promise<T>
  /** Applies checked versions that follow our last (finalizes them and moves consensus on); how many were applied. */
  applyRange: (items: readonly RangeItem[]) => Promise<number>
  /** A peer served a range that does not verify (a forgery, or junk). */
  penalise?: (peer: string, why: string) => void
  /** Checks a range's signatures in one batch (default: verifyAll on this thread; a node's SignatureThread). */
  verify?: (signatures: readonly SignedDigest[]) => Promise<boolean>
  /** Blocks asked of one peer: what a range names and did not bring is asked of the peer that served it first. Absent: bitswap alone. */
  blocks?: Pick<BlockRequest, 'request'> | undefined
}

/** The multihash code of sha2-256 (what every block here is named by). */
const SHA2_256 = 0x12

/** Blocks fetched at once ahead of the versions being applied (contributions, then their shards). */
const PREFETCH_CONCURRENCY = 16
const PREFETCH_TIMEOUT_MS = 30_000
/** Requests of up to MAX_BLOCKS_PER_REQUEST blocks in flight at once to the peer that served a range. */
const SERVER_REQUESTS = 4
/** One such request's limit (4 MiB at most): a peer that stalls it leaves the rest to bitswap this soon. */
const SERVER_REQUEST_MS = 10_000
/**
 * Ranges asked for ahead of the one being applied: each waits on this thread behind the
 * apply before it, so two kept it ~80% busy; four measured 1.13× (`catch-up.ts`, medians
 * of 9 and 15 samples). At most 4 MiB a response in flight each.
 */
const PIPELINE_DEPTH = 4

export class CatchUp {
  private readonly o: CatchUpOptions
  private syncing = false
  private lastSyncAt = 0

  constructor (o: CatchUpOptions) {
    this.o = o
  }

  /** Asks peers for final versions from the current height on (at most every 2 s). */
  request (): void {
    if (this.syncing || Date.now() - this.lastSyncAt < 2000) return
    this.syncing = true
    this.lastSyncAt = Date.now()
    void this.fromPeers().finally(() => { this.syncing = false })
  }

  /** One range from a peer, decoded, checked and its blocks fetched (prepare). */
  private range (peer: string, from: number): Promise<RangeItem[] | undefined> {
    const p = this.o.sync.request(peerIdFromString(peer), { datanet: this.o.datanet, from, to: from + MAX_VERSIONS_PER_REQUEST - 1, blocks: true })
      .then(async served => await this.prepare(peer, served))
    p.catch(() => {})
    return p
  }

  /**
   * Ranges from one peer after the other, pipelined: the next PIPELINE_DEPTH ranges are
   * asked for, checked and their blocks fetched while this one is applied, so no version
   * waits for a round trip of its own. A range that does not verify ends this peer's turn.
   */
  private async fromPeers (): Promise<void> {
    for (const peer of this.o.peers()) {
      const inflight: Array<{ from: number, prepared: Promise<RangeItem[] | undefined> }> = []
      let asked = this.o.versions.nextHeight
      const fill = (): void => {
        while (inflight.length < PIPELINE_DEPTH) {
          inflight.push({ from: asked, prepared: this.range(peer, asked) })
          asked += MAX_VERSIONS_PER_REQUEST
        }
      }
      fill()
      for (;;) {
        const head = inflight.shift() as { from: number, prepared: Promise<RangeItem[] | undefined> }
        let prepared: RangeItem[] | undefined
        try {
          prepared = await head.prepared
        } catch (err) {
          this.o.logger.debug({ peer, err: (err as Error).message }, 'version sync request failed')
          break
        }
        if (prepared === undefined || prepared.length === 0) break
        fill()
        const applied = await this.o.onQueue(async () => await this.applyChecked(prepared))
        if (applied === 0) break
        this.o.logger.info({ peer, from: head.from, applied, height: this.o.versions.nextHeight - 1 }, 'caught up')
        // a short range (the peer's end, or its answer cut) or a version not applied: ask again from where we are
        if (prepared.length < MAX_VERSIONS_PER_REQUEST || this.o.versions.nextHeight !== head.from + prepared.length) {
          inflight.length = 0
          asked = this.o.versions.nextHeight
          fill()
        }
      }
    }
  }

  /**
   * Decodes a served range and checks it as a whole (src/consensus/range.ts), then stores
   * the blocks served with it that its versions vouch for and fetches the rest: their
   * contributions and shards. Undefined when the range is refused (the peer is penalised):
   * nothing of it is used. The versions whose set is not known here yet are left for later.
   */
  private async prepare (peer: string, { versions, blocks }: SyncResponse): Promise<RangeItem[] | undefined> {
    const refuse = (why: string, height?: number): undefined => {
      this.o.logger.warn({ peer, height, why }, 'a served range of versions does not verify: refused')
      this.o.penalise?.(peer, why)
      return undefined
    }
    const decoded: Array<{ value: VersionValue, round: unknown, certificate: unknown }> = []
    for (const synced of versions) {
      try {
        decoded.push({ value: await versionValue(decodeVersion(synced.version)), round: synced.round, certificate: synced.certificate })
      } catch {
        return refuse('a version does not decode')
      }
    }
    const verify = this.o.verify ?? verifyAll
    const checked = await checkRange(decoded, { datanet: this.o.datanet, domain: this.o.domain, setFor: this.o.setFor, verify })
    if (checked.problem !== undefined) return refuse(checked.problem, checked.height)
    const items = decoded.slice(0, checked.usable) as RangeItem[]
    if (!await this.storeServed(items, decoded.slice(checked.usable).map(d => d.value), blocks)) {
      // the range itself is certified: it is used; the junk is not stored
      this.o.logger.warn({ peer }, 'a peer served blocks with a range that the range does not vouch for: dropped')
      this.o.penalise?.(peer, 'blocks the range does not vouch for')
    }
    const named = items.flatMap(i => i.value.version.contributions.map(c => c.cid))
    await this.fromServer(peer, named)
    await this.prefetch(named)
    return items
  }

  /**
   * Stores the blocks a peer served with a checked range that the range vouches for: the
   * contributions its versions name, and the shards those contributions name. A block's
   * name is its hash, so each is checked by hashing it (one sha256: no bitswap round trip,
   * and one copy instead of one from every peer asked). Blocks of the served versions not
   * checked yet (`unchecked`: their height's set is not known here) are not stored. False
   * when the peer sent a block no served version names: junk, not stored.
   */
  private async storeServed (items: readonly RangeItem[], unchecked: readonly VersionValue[], blocks: readonly Uint8Array[]): Promise<boolean> {
    if (blocks.length === 0) return true
    const { helia } = this.o
    const byDigest = new Map<string, Uint8Array>()
    for (const b of blocks) byDigest.set(toHex(sha256(b)), b)
    const named = new Set<string>()
    const toStore = new Map<string, { cid: CID, bytes: Uint8Array }>()
    /** The served bytes of `cid`, stored when `store`. */
    const take = (cid: CID, store: boolean): Uint8Array | undefined => {
      if (cid.multihash.code !== SHA2_256) return undefined
      const key = toHex(cid.multihash.digest)
      const bytes = byDigest.get(key)
      if (bytes === undefined) return undefined
      named.add(key)
      if (store) toStore.set(key, { cid, bytes })
      return bytes
    }
    const versions = [...items.map(i => ({ value: i.value, store: true })), ...unchecked.map(value => ({ value, store: false }))]
    for (const { value, store } of versions) {
      for (const c of value.version.contributions) {
        let bytes = take(c.cid, store)
        if (bytes === undefined && await helia.blockstore.has(c.cid)) bytes = await getBlock(helia, c.cid, { offline: true })
        if (bytes === undefined) continue
        let shards: CID[]
        try {
          shards = decodeContribution(bytes, 100_000).shards
        } catch {
          continue
        }
        for (const shard of shards) take(shard, store)
      }
    }
    // written many at once (a file each), not one after the other
    for await (const _ of helia.blockstore.putMany(toStore.values())) { /* drain */ }
    return named.size === byDigest.size
  }

  /**
   * Asks the peer that served a range for the blocks it names and did not bring (its
   * contributions, then their shards): it made those versions final, so it holds them, and
   * one copy comes instead of one from every peer bitswap asks (its want goes to every
   * peer, and each holder sends the block). 16 CIDs a request, SERVER_REQUESTS at once; blocks a
   * response's byte bound left out are asked again; what the peer does not send is left to
   * bitswap (prefetch). Blocks that do not hash to their CIDs cost the peer its score and
   * end its turn.
   */
  private async fromServer (peer: string, contributions: readonly CID[]): Promise<void> {
    const { blocks, helia } = this.o
    if (blocks === undefined || contributions.length === 0) return
    const signal = AbortSignal.timeout(PREFETCH_TIMEOUT_MS)
    const peerId = peerIdFromString(peer)
    const queue: CID[] = []
    for (const cid of contributions) if (!await helia.blockstore.has(cid)) queue.push(cid)
    let done = false
    const worker = async (): Promise<void> => {
      while (queue.length > 0 && !done && !signal.aborted) {
        const batch = queue.splice(0, MAX_BLOCKS_PER_REQUEST)
        let answer: BlockAnswer
        try {
          answer = await blocks.request(peerId, batch, { signal: AbortSignal.any([signal, AbortSignal.timeout(SERVER_REQUEST_MS)]) })
        } catch {
          done = true
          return
        }
        if (answer.forged > 0) {
          this.o.logger.warn({ peer, forged: answer.forged }, 'a peer sent blocks that do not hash to their CIDs')
          this.o.penalise?.(peer, 'blocks that do not hash to their CIDs')
          done = true
        }
        const got: Array<{ cid: CID, bytes: Uint8Array }> = []
        let last = -1
        for (const [i, cid] of batch.entries()) {
          const bytes = answer.blocks[i]
          if (bytes === undefined) continue
          got.push({ cid, bytes })
          last = i
          if (cid.code === raw.code) continue
          try {
            for (const shard of decodeContribution(bytes, 100_000).shards) if (!await helia.blockstore.has(shard)) queue.push(shard)
          } catch {
            // not a contribution: the check reports it
          }
        }
        // the response's byte bound cut it after `last`: those again (each round brings one at least)
        if (!done && last >= 0) for (let i = last + 1; i < batch.length; i++) if (answer.blocks[i] === undefined) queue.push(batch[i] as CID)
        for await (const _ of helia.blockstore.putMany(got)) { /* drain */ }
      }
    }
    // shards join the queue as their contributions arrive: workers again until it stays empty
    while (queue.length > 0 && !done && !signal.aborted) {
      await Promise.all(Array.from({ length: Math.min(SERVER_REQUESTS, Math.ceil(queue.length / MAX_BLOCKS_PER_REQUEST)) }, worker))
    }
  }

  /** Brings the contributions' blocks and their shards here, PREFETCH_CONCURRENCY at a time; misses are left to the check. */
  private async prefetch (contributions: readonly CID[]): Promise<void> {
    const { helia } = this.o
    const signal = AbortSignal.timeout(PREFETCH_TIMEOUT_MS)
    const queue = [...contributions]
    const worker = async (): Promise<void> => {
      for (let cid = queue.shift(); cid !== undefined && !signal.aborted; cid = queue.shift()) {
        try {
          const bytes = await getBlock(helia, cid, { signal })
          // a contribution: its shards (raw blocks) follow
          if (cid.code !== raw.code) {
            for (const shard of decodeContribution(bytes, 100_000).shards) {
              if (!await helia.blockstore.has(shard)) queue.push(shard)
            }
          }
        } catch {
          // a miss is the check's to report (versions.problem)
        }
      }
    }
    await Promise.all(Array.from({ length: Math.min(PREFETCH_CONCURRENCY, queue.length) }, worker))
  }

  /**
   * Applies a checked range from where this node is (consensus may have made some of it
   * final meanwhile); 0 when it does not follow our last version.
   */
  private async applyChecked (items: readonly RangeItem[]): Promise<number> {
    const versions = this.o.versions
    const rest = items.filter(i => i.value.version.height >= versions.nextHeight)
    const first = rest[0]
    if (first === undefined || first.value.version.height !== versions.nextHeight) return 0
    if ((first.value.version.parent?.toString() ?? null) !== (versions.last?.cid ?? null)) {
      // both chains carry quorum certificates: a fork of final versions, not a peer's forgery
      this.o.logger.error({ height: first.value.version.height }, 'a certified version does not link to our last final version')
      return 0
    }
    // in pieces of bounded records, each its own batch (rangePieces)
    let applied = 0
    for (const piece of rangePieces(rest, versions.last?.recordCount ?? 0)) {
      const n = await this.o.applyRange(piece)
      applied += n
      if (n < piece.length) break
    }
    return applied
  }

  /**
   * Serves final versions for catch-up, and when asked the blocks they vouch for — each
   * version's contributions, then their shards — while they fit MAX_BLOCK_BYTES_PER_RESPONSE
   * and the message's room left by the versions.
   */
  async serve (request: SyncRequest): Promise<SyncResponse> {
    const { helia } = this.o
    const versions: SyncedVersion[] = []
    const contributions: string[] = []
    let versionBytes = 0
    for (let h = request.from; h <= request.to; h++) {
      const entry = await this.o.versions.versionAt(h)
      if (entry === undefined) break
      const version = await getBlock(helia, CID.parse(entry.cid), { offline: true })
      versions.push({ version, round: entry.round, certificate: entry.certificate })
      versionBytes += version.byteLength + 256 * entry.certificate.length
      contributions.push(...entry.contributions)
    }
    const blocks: Uint8Array[] = []
    // a margin for the envelope's own bytes
    let budget = request.blocks === true ? Math.min(MAX_BLOCK_BYTES_PER_RESPONSE, MAX_SYNC_MESSAGE_BYTES - versionBytes - 64 * 1024) : 0
    const add = (bytes: Uint8Array): boolean => {
      if (bytes.byteLength > budget) { budget = 0; return false }
      blocks.push(bytes)
      budget -= bytes.byteLength
      return true
    }
    for (const cid of contributions) {
      if (budget <= 0) break
      try {
        const bytes = await getBlock(helia, CID.parse(cid), { offline: true })
        if (!add(bytes)) break
        for (const shard of decodeContribution(bytes, 100_000).shards) if (!add(await getBlock(helia, shard, { offline: true }))) break
      } catch {
        // not here (or not a contribution): the asker fetches it by bitswap
      }
    }
    return { versions, blocks }
  }
}
