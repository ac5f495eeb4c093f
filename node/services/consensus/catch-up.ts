/**
 * Catch-up (DESIGN §4 flow 8): final versions asked of peers by height range, each checked
 * (height, parent link, certificate against the height's set, every root) before it is
 * applied; and serving ours to others.
 */
import { CID } from 'multiformats/cid'
import { peerIdFromString } from '@libp2p/peer-id'
import { recoverAddress, type TypedDataDomain } from 'ethers'
import type { Helia } from '@helia/interface'
import { certificateProblem } from '../../../src/consensus/certificate.ts'
import { decodeVersion, headerOf, versionValue, voteDigest, type VersionValue } from '../../../src/consensus/version.ts'
import type { ValidatorSet } from '../../../src/datanet/manifest.ts'
import type { SyncRequest, SyncedVersion, VersionSync } from '../../../src/network/version-sync.ts'
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

const recover = (digest: string, signature: string): string | undefined => {
  try { return recoverAddress(digest, signature) } catch { return undefined }
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

  private async fromPeers (): Promise<void> {
    for (const peer of this.o.peers()) {
      for (;;) {
        let versions: SyncedVersion[]
        const from = this.o.versions.nextHeight
        try {
          versions = await this.o.sync.request(peerIdFromString(peer), { datanet: this.o.datanet, from, to: from + 31 })
        } catch (err) {
          this.o.logger.debug({ peer, err: (err as Error).message }, 'version sync request failed')
          break
        }
        if (versions.length === 0) break
        let applied = 0
        for (const synced of versions) {
          if (!await this.o.onQueue(async () => await this.applySynced(synced))) break
          applied++
        }
        if (applied === 0) break
        this.o.logger.info({ peer, from, applied, height: this.o.versions.nextHeight - 1 }, 'caught up')
      }
    }
  }

  /** Verifies a served version and applies it; false when it does not verify here (or is not the next). */
  private async applySynced (synced: SyncedVersion): Promise<boolean> {
    const log = this.o.logger
    let value: VersionValue
    try {
      value = await versionValue(decodeVersion(synced.version))
    } catch {
      return false
    }
    const v = value.version
    const versions = this.o.versions
    if (v.height !== versions.nextHeight || v.datanet !== this.o.datanet) return false
    if ((v.parent?.toString() ?? null) !== (versions.last?.cid ?? null)) { log.warn({ height: v.height }, 'synced version does not link to our last'); return false }
    if (!Number.isSafeInteger(synced.round) || synced.round < 0 || !Array.isArray(synced.certificate)) return false
    const set = this.o.setFor(v.height)
    if (set === undefined) return false
    const why = certificateProblem(set, voteDigest(this.o.domain, 'precommit', synced.round, headerOf(value)), synced.certificate, recover)
    if (why !== undefined) { log.warn({ height: v.height, why }, 'synced version\'s certificate does not verify'); return false }
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
