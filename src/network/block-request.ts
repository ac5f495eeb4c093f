import { lpStream } from '@libp2p/utils'
import { CID } from 'multiformats/cid'
import { decodeCbor, encodeCbor } from '../codec/cbor.ts'
import { bytesEqual, sha256 } from '../codec/hash.ts'
import type { PeerId, Startable, Stream } from '@libp2p/interface'
import type { ConnectionManager, Registrar } from '@libp2p/interface-internal'

export const BLOCK_REQUEST_PROTOCOL = '/datanet/blocks/1.0.0'

/** CIDs per request, at most. */
export const MAX_BLOCKS_PER_REQUEST = 16
/** Bytes of blocks one response carries at most (a shard is at most 2 MiB, so one always fits); from the first that does not fit on, they come back empty. */
export const MAX_BLOCK_RESPONSE_BYTES = 4 * 1024 * 1024
const MAX_MESSAGE_BYTES = MAX_BLOCK_RESPONSE_BYTES + 64 * 1024
const TIMEOUT_MS = 30_000
const SHA2_256 = 0x12
/**
 * Requests answered at once over all peers: what a node holds for them is at most this many
 * responses (≤ 4 MiB each, ~1 MiB with shards of the default size); the rest wait their
 * turn, holding nothing but their request, until the asker's own deadline.
 */
const MAX_SERVING = 32
/** Streams of this protocol per connection (a receiver asks a publisher for 8 shards at once, catch-up 4 requests): waiting ones hold only their request, the global bound holds the memory. */
const MAX_STREAMS_PER_CONNECTION = 32

/** Where served blocks come from: this node's own store only (never fetched for the asker). Set once the node's store exists. */
export interface BlockSource {
  get?: (cid: CID) => Promise<Uint8Array | undefined>
}

export interface BlockRequestComponents {
  registrar: Registrar
  connectionManager: ConnectionManager
}

/** What one peer answered: a checked block per CID asked (undefined where it sent none), and how many it sent that do not hash to their CID. */
export interface BlockAnswer {
  blocks: Array<Uint8Array | undefined>
  forged: number
}

/** Does `bytes` hash to `cid`? Only sha2-256 CIDs (every block a datanet names) can be checked here. */
export function blockMatches (cid: CID, bytes: Uint8Array): boolean {
  return cid.multihash.code === SHA2_256 && bytesEqual(sha256(bytes), cid.multihash.digest)
}

/**
 * Blocks asked of one peer by CID, in one request and one response. Bitswap sends a want to
 * every connected peer and each that holds the block sends it back: with 4 validators and
 * one uploader, a validator received each gossiped shard 2.4–3.4 times
 * (scripts/bench/finality.ts, BENCH_METRICS), and the copies cost encryption, framing and
 * hashing on both sides. A gossiped contribution's publisher holds its shards, so the
 * receiver asks it alone first (contribution-receiver.ts) and bitswap only for the rest.
 */
export class BlockRequest implements Startable {
  private readonly components: BlockRequestComponents
  private readonly source: BlockSource
  private serving = 0
  private readonly waiting: Array<() => void> = []
  /** Requests answered at once, over all peers (MAX_SERVING unless set). */
  readonly maxServing: number

  /** Requests waiting for a slot. */
  get queued (): number {
    return this.waiting.length
  }

  constructor (components: BlockRequestComponents, init: { source: BlockSource, maxServing?: number }) {
    this.components = components
    this.source = init.source
    this.maxServing = init.maxServing ?? MAX_SERVING
  }

  async start (): Promise<void> {
    await this.components.registrar.handle(BLOCK_REQUEST_PROTOCOL, async (stream: Stream) => { await this.onRequest(stream) }, { maxInboundStreams: MAX_STREAMS_PER_CONNECTION })
  }

  async stop (): Promise<void> {
    await this.components.registrar.unhandle(BLOCK_REQUEST_PROTOCOL)
  }

  private async onRequest (stream: Stream): Promise<void> {
    const signal = AbortSignal.timeout(TIMEOUT_MS)
    const lp = lpStream(stream, { maxDataLength: MAX_MESSAGE_BYTES })
    try {
      const request = decodeCbor<{ cids?: unknown }>((await lp.read({ signal })).subarray())
      const asked = Array.isArray(request?.cids) ? request.cids.map(c => CID.asCID(c)) : []
      if (asked.length === 0 || asked.length > MAX_BLOCKS_PER_REQUEST || asked.some(c => c === null)) throw new Error('malformed block request')
      // a slot, or a wait for one handed over by a request that ends
      if (this.serving < this.maxServing) this.serving++
      else await new Promise<void>(resolve => { this.waiting.push(resolve) })
      try {
        await this.answer(lp, asked as CID[], signal)
      } finally {
        const next = this.waiting.shift()
        if (next === undefined) this.serving--
        else next()
      }
      await stream.close({ signal })
    } catch (err) {
      stream.abort(err as Error)
    }
  }

  /** The blocks held of `asked`, in order, while they fit MAX_BLOCK_RESPONSE_BYTES. */
  private async answer (lp: ReturnType<typeof lpStream>, asked: readonly CID[], signal: AbortSignal): Promise<void> {
    const blocks: Array<Uint8Array | null> = []
    let bytes = 0
    let full = false
    // in order until one does not fit: the asker asks again for those after its last block
    for (const cid of asked) {
      const block = full ? undefined : await this.source.get?.(cid)
      if (block !== undefined && bytes + block.byteLength > MAX_BLOCK_RESPONSE_BYTES) full = true
      blocks.push(block === undefined || full ? null : block)
      if (block !== undefined && !full) bytes += block.byteLength
    }
    await lp.write(encodeCbor({ blocks }), { signal })
  }

  /** Asks `peer` for the blocks of `cids` (at most MAX_BLOCKS_PER_REQUEST); each block is checked against its CID. */
  async request (peer: PeerId, cids: readonly CID[], options: { signal?: AbortSignal } = {}): Promise<BlockAnswer> {
    if (cids.length === 0 || cids.length > MAX_BLOCKS_PER_REQUEST) throw new RangeError(`between 1 and ${MAX_BLOCKS_PER_REQUEST} blocks a request, not ${cids.length}`)
    const limit = AbortSignal.timeout(TIMEOUT_MS)
    const signal = options.signal === undefined ? limit : AbortSignal.any([options.signal, limit])
    const stream = await this.components.connectionManager.openStream(peer, BLOCK_REQUEST_PROTOCOL, { signal })
    try {
      const lp = lpStream(stream, { maxDataLength: MAX_MESSAGE_BYTES })
      await lp.write(encodeCbor({ cids }), { signal })
      const response = decodeCbor<{ blocks?: unknown }>((await lp.read({ signal })).subarray())
      await stream.close({ signal })
      if (!Array.isArray(response?.blocks) || response.blocks.length !== cids.length) throw new Error('malformed block response')
      let forged = 0
      const blocks = response.blocks.map((b: unknown, i) => {
        // a CID of another hash cannot be checked here: not taken, nor held against the peer
        if (!(b instanceof Uint8Array) || (cids[i] as CID).multihash.code !== SHA2_256) return undefined
        if (blockMatches(cids[i] as CID, b)) return b
        forged++
        return undefined
      })
      return { blocks, forged }
    } catch (err) {
      stream.abort(err as Error)
      throw err
    }
  }
}

/** The service in libp2p's factory style: `services: { blocks: blockRequest({ source }) }`. */
export function blockRequest (init: { source: BlockSource, maxServing?: number }): (components: BlockRequestComponents) => BlockRequest {
  return (components) => new BlockRequest(components, init)
}
