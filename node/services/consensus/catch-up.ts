/**
 * Catch-up (DESIGN §4 flow 8): final versions asked of peers by height range, each checked
 * (height, parent link, certificate against the height's set, every root) before it is
 * applied; and serving ours to others.
 */
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { peerIdFromString } from '@libp2p/peer-id'
import type { TypedDataDomain } from 'ethers'
import type { Helia } from '@helia/interface'
import { certificateProblem } from '../../../src/consensus/certificate.ts'
import { decodeVersion, headerOf, validatorSetHash, versionValue, voteDigest, type VersionValue } from '../../../src/consensus/version.ts'
import { recoverSigner } from '../../../src/codec/signer.ts'
import { toHex } from '../../../src/codec/hash.ts'
import { decodeContribution } from '../../../src/contribution/contribution.ts'
import type { ValidatorSet } from '../../../src/datanet/manifest.ts'
import { MAX_VERSIONS_PER_REQUEST, type SyncRequest, type SyncedVersion, type VersionSync } from '../../../src/network/version-sync.ts'
import { getBlock } from '../blocks.ts'
import type { DatanetVersions } from './versions.ts'
import type { Logger } from '../../logger.ts'

export interface CatchUpOptions {
  sync: VersionSync
  helia: Helia
  versions: DatanetVersions
  domain: TypedDataDomain
  datanet: string
  logger: Logger
  setFor: (height: number) => ValidatorSet | undefined
  peers: () => string[]
  /** Runs a task on the consensus queue; the result says whether to go on. */
  onQueue: (task: () => Promise<boolean>) => Promise<boolean>
  /** Applies a checked version (finalizes it and moves consensus on). */
  apply: (round: number, value: VersionValue, certificate: SyncedVersion['certificate']) => Promise<void>
}

const recover = (digest: string, signature: string, claimed: string): string | undefined => {
  try { return recoverSigner(digest, signature, claimed) } catch { return undefined }
}

/** Blocks fetched at once ahead of the versions being applied (contributions, then their shards). */
const PREFETCH_CONCURRENCY = 16
const PREFETCH_TIMEOUT_MS = 30_000
/** Ranges asked for ahead of the one being applied. */
const PIPELINE_DEPTH = 2

/** A served version decoded, with its certificate checked when its set was known. */
interface Prepared {
  synced: SyncedVersion
  value: VersionValue
  /** The hash of the set its certificate was checked against; undefined: check it when applied. */
  checkedSet?: string
}

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
  private range (peer: string, from: number): Promise<Prepared[]> {
    const p = this.o.sync.request(peerIdFromString(peer), { datanet: this.o.datanet, from, to: from + MAX_VERSIONS_PER_REQUEST - 1 })
      .then(async versions => await this.prepare(versions))
    p.catch(() => {})
    return p
  }

  /**
   * Ranges from one peer after the other, pipelined: the next PIPELINE_DEPTH ranges are
   * asked for, checked and their blocks fetched while this one is applied, so no version
   * waits for a round trip of its own.
   */
  private async fromPeers (): Promise<void> {
    for (const peer of this.o.peers()) {
      const inflight: Array<{ from: number, prepared: Promise<Prepared[]> }> = []
      let asked = this.o.versions.nextHeight
      const fill = (): void => {
        while (inflight.length < PIPELINE_DEPTH) {
          inflight.push({ from: asked, prepared: this.range(peer, asked) })
          asked += MAX_VERSIONS_PER_REQUEST
        }
      }
      fill()
      for (;;) {
        const head = inflight.shift() as { from: number, prepared: Promise<Prepared[]> }
        let prepared: Prepared[]
        try {
          prepared = await head.prepared
        } catch (err) {
          this.o.logger.debug({ peer, err: (err as Error).message }, 'version sync request failed')
          break
        }
        if (prepared.length === 0) break
        fill()
        let applied = 0
        for (const p of prepared) {
          if (!await this.o.onQueue(async () => await this.applySynced(p))) break
          applied++
        }
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
   * Decodes a served range and checks each certificate whose set is known now (all of
   * them, unless the range crosses a set change), then fetches the blocks of every
   * version so vouched for: its contributions and their shards. A version that does not
   * decode ends the range; nothing is fetched for one no quorum signed.
   */
  private async prepare (versions: readonly SyncedVersion[]): Promise<Prepared[]> {
    const out: Prepared[] = []
    const vouched: CID[] = []
    for (const synced of versions) {
      let value: VersionValue
      try {
        value = await versionValue(decodeVersion(synced.version))
      } catch {
        break
      }
      const p: Prepared = { synced, value }
      const set = this.o.setFor(value.version.height)
      if (set !== undefined && Number.isSafeInteger(synced.round) && synced.round >= 0 && Array.isArray(synced.certificate) &&
        certificateProblem(set, voteDigest(this.o.domain, 'precommit', synced.round, headerOf(value)), synced.certificate, recover) === undefined) {
        p.checkedSet = toHex(validatorSetHash(set.validators))
        for (const c of value.version.contributions) vouched.push(c.cid)
      }
      out.push(p)
    }
    await this.prefetch(vouched)
    return out
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

  /** Verifies a served version and applies it; false when it does not verify here (or is not the next). */
  private async applySynced ({ synced, value, checkedSet }: Prepared): Promise<boolean> {
    const log = this.o.logger
    const v = value.version
    const versions = this.o.versions
    if (v.height !== versions.nextHeight || v.datanet !== this.o.datanet) return false
    if ((v.parent?.toString() ?? null) !== (versions.last?.cid ?? null)) { log.warn({ height: v.height }, 'synced version does not link to our last'); return false }
    if (!Number.isSafeInteger(synced.round) || synced.round < 0 || !Array.isArray(synced.certificate)) return false
    const set = this.o.setFor(v.height)
    if (set === undefined) return false
    // checked in prepare() against this very set, unless the set of this height changed since
    if (checkedSet !== toHex(validatorSetHash(set.validators))) {
      const why = certificateProblem(set, voteDigest(this.o.domain, 'precommit', synced.round, headerOf(value)), synced.certificate, recover)
      if (why !== undefined) { log.warn({ height: v.height, why }, 'synced version\'s certificate does not verify'); return false }
    }
    const problem = await versions.problem(value, set)
    if (problem !== undefined) { log.error({ height: v.height, why: problem }, 'synced version does not verify'); return false }
    await this.o.apply(synced.round, value, synced.certificate)
    return true
  }

  /** Serves final versions for catch-up. */
  async serve (request: SyncRequest): Promise<SyncedVersion[]> {
    const out: SyncedVersion[] = []
    for (let h = request.from; h <= request.to; h++) {
      const entry = await this.o.versions.versionAt(h)
      if (entry === undefined) break
      out.push({ version: await getBlock(this.o.helia, CID.parse(entry.cid), { offline: true }), round: entry.round, certificate: entry.certificate })
    }
    return out
  }
}
