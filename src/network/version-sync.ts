import { lpStream } from '@libp2p/utils'
import { decodeCbor, encodeCbor } from '../codec/cbor.ts'
import type { PeerId, Startable, Stream } from '@libp2p/interface'
import type { ConnectionManager, Registrar } from '@libp2p/interface-internal'

export const VERSION_SYNC_PROTOCOL = '/datanet/version-sync/1.0.0'

/** Versions per request, at most. */
export const MAX_VERSIONS_PER_REQUEST = 32
/** Bytes of one request or response, at most. */
export const MAX_SYNC_MESSAGE_BYTES = 4 * 1024 * 1024
const TIMEOUT_MS = 30_000

export interface SyncRequest {
  datanet: string
  from: number
  to: number
  /** Also the blocks the versions vouch for (contributions, then their shards), as many as fit. */
  blocks?: boolean
}

/**
 * Bytes of blocks one response carries at most; the rest are fetched by bitswap. Blocks are
 * named by their hash, so the asker checks each against the CIDs the checked versions name.
 */
export const MAX_BLOCK_BYTES_PER_RESPONSE = 2 * 1024 * 1024

/** What a peer serves for a request: the versions, and (when asked) blocks they vouch for. */
export interface SyncResponse {
  versions: SyncedVersion[]
  blocks: Uint8Array[]
}

/** A final version as served: its bytes, the round it was decided in and its precommit certificate. */
export interface SyncedVersion {
  version: Uint8Array
  round: number
  certificate: Array<{ validator: string, signature: string }>
}

/** Where served versions come from: set by the node once its services exist. */
export interface VersionSource {
  serve?: (request: SyncRequest) => Promise<SyncResponse>
}

export interface VersionSyncComponents {
  registrar: Registrar
  connectionManager: ConnectionManager
}

export interface VersionSyncInit {
  source: VersionSource
}

/**
 * Request/response for catch-up (DESIGN §4 flow 8): ask a peer for a datanet's final
 * versions by height range, get them back with their certificates. The caller verifies
 * every certificate and parent link before applying anything.
 */
export class VersionSync implements Startable {
  private readonly components: VersionSyncComponents
  private readonly source: VersionSource

  constructor (components: VersionSyncComponents, init: VersionSyncInit) {
    this.components = components
    this.source = init.source
  }

  async start (): Promise<void> {
    await this.components.registrar.handle(VERSION_SYNC_PROTOCOL, async (stream: Stream) => { await this.onRequest(stream) }, { maxInboundStreams: 16 })
  }

  async stop (): Promise<void> {
    await this.components.registrar.unhandle(VERSION_SYNC_PROTOCOL)
  }

  private async onRequest (stream: Stream): Promise<void> {
    const signal = AbortSignal.timeout(TIMEOUT_MS)
    const lp = lpStream(stream, { maxDataLength: MAX_SYNC_MESSAGE_BYTES })
    try {
      const request = decodeCbor<SyncRequest>((await lp.read({ signal })).subarray())
      if (typeof request?.datanet !== 'string' || !Number.isSafeInteger(request.from) || !Number.isSafeInteger(request.to) || request.from < 1 || request.to < request.from) {
        throw new Error('malformed request')
      }
      const to = Math.min(request.to, request.from + MAX_VERSIONS_PER_REQUEST - 1)
      const served = (await this.source.serve?.({ datanet: request.datanet, from: request.from, to, blocks: request.blocks === true })) ?? { versions: [], blocks: [] }
      await lp.write(encodeCbor(request.blocks === true ? served : { versions: served.versions }), { signal })
      await stream.close({ signal })
    } catch (err) {
      stream.abort(err as Error)
    }
  }

  /** Asks one peer for versions [from, to] of a datanet. */
  async request (peer: PeerId, request: SyncRequest): Promise<SyncResponse> {
    const signal = AbortSignal.timeout(TIMEOUT_MS)
    const stream = await this.components.connectionManager.openStream(peer, VERSION_SYNC_PROTOCOL, { signal })
    try {
      const lp = lpStream(stream, { maxDataLength: MAX_SYNC_MESSAGE_BYTES })
      await lp.write(encodeCbor(request), { signal })
      const response = decodeCbor<{ versions?: unknown, blocks?: unknown }>((await lp.read({ signal })).subarray())
      await stream.close({ signal })
      if (!Array.isArray(response?.versions)) throw new Error('malformed response')
      // blocks are optional (a peer may send none); anything but byte strings is junk, dropped
      const blocks = Array.isArray(response.blocks) ? response.blocks.filter((b): b is Uint8Array => b instanceof Uint8Array) : []
      return { versions: response.versions as SyncedVersion[], blocks }
    } catch (err) {
      stream.abort(err as Error)
      throw err
    }
  }
}

/** The service in libp2p's factory style: `services: { sync: versionSync({ source }) }`. */
export function versionSync (init: VersionSyncInit): (components: VersionSyncComponents) => VersionSync {
  return (components) => new VersionSync(components, init)
}
