import { lpStream } from '@libp2p/utils'
import { decodeCbor, encodeCbor } from '../codec/cbor.ts'
import type { PeerId, Startable, Stream } from '@libp2p/interface'
import type { ConnectionManager, Registrar } from '@libp2p/interface-internal'

export const VERSION_SYNC_PROTOCOL = '/datanet/version-sync/1.0.0'

/** Versions per request, at most. */
export const MAX_VERSIONS_PER_REQUEST = 32
const MAX_MESSAGE_BYTES = 4 * 1024 * 1024
const TIMEOUT_MS = 30_000

export interface SyncRequest {
  datanet: string
  from: number
  to: number
}

/** A final version as served: its bytes, the round it was decided in and its precommit certificate. */
export interface SyncedVersion {
  version: Uint8Array
  round: number
  certificate: Array<{ validator: string, signature: string }>
}

/** Where served versions come from: set by the node once its services exist. */
export interface VersionSource {
  serve?: (request: SyncRequest) => Promise<SyncedVersion[]>
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
    const lp = lpStream(stream, { maxDataLength: MAX_MESSAGE_BYTES })
    try {
      const request = decodeCbor<SyncRequest>((await lp.read({ signal })).subarray())
      if (typeof request?.datanet !== 'string' || !Number.isSafeInteger(request.from) || !Number.isSafeInteger(request.to) || request.from < 1 || request.to < request.from) {
        throw new Error('malformed request')
      }
      const to = Math.min(request.to, request.from + MAX_VERSIONS_PER_REQUEST - 1)
      const versions = (await this.source.serve?.({ datanet: request.datanet, from: request.from, to })) ?? []
      await lp.write(encodeCbor({ versions }), { signal })
      await stream.close({ signal })
    } catch (err) {
      stream.abort(err as Error)
    }
  }

  /** Asks one peer for versions [from, to] of a datanet. */
  async request (peer: PeerId, request: SyncRequest): Promise<SyncedVersion[]> {
    const signal = AbortSignal.timeout(TIMEOUT_MS)
    const stream = await this.components.connectionManager.openStream(peer, VERSION_SYNC_PROTOCOL, { signal })
    try {
      const lp = lpStream(stream, { maxDataLength: MAX_MESSAGE_BYTES })
      await lp.write(encodeCbor(request), { signal })
      const response = decodeCbor<{ versions?: unknown }>((await lp.read({ signal })).subarray())
      await stream.close({ signal })
      if (!Array.isArray(response?.versions)) throw new Error('malformed response')
      return response.versions as SyncedVersion[]
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
