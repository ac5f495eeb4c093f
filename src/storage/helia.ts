import { withBitswap } from '@helia/bitswap'
import * as dagCbor from '@ipld/dag-cbor'
import { LevelDatastore } from 'datastore-level'
import { createLibp2p, type Libp2pOptions } from 'libp2p'
import * as raw from 'multiformats/codecs/raw'
import type { Helia } from '@helia/interface'
import type { HeliaInit } from 'helia'
import type { HeliaWithLibp2p } from '@helia/libp2p'
import type { AbortOptions, Libp2p, ServiceMap } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import { IdentityBlockstore } from 'blockstore-core/identity'
import type { Key } from 'interface-datastore'
import { NotFoundError } from 'interface-store'
import { CachedBlockstore } from './cached-blockstore.ts'
import { PeerRecordsDatastore } from './peer-records.ts'
import { readOne } from './level-reads.ts'

/**
 * Helia's class, loaded from its own module. The `helia` package index statically imports
 * `@helia/libp2p`, whose defaults pull WebRTC, auto-TLS, the DHT and HTTP routers: 0.7 s
 * of start-up and ~130 MB of RSS for code a datanet node never runs. Loading the class
 * module alone keeps the light composition light. test/unit/helia-light.test.ts guards
 * that the module still exports the class.
 */
const heliaModule = new URL('./helia.js', import.meta.resolve('helia')).href
const { Helia: HeliaClass } = await import(heliaModule) as { Helia: new (init: HeliaInit & { name: string, version: string }) => Helia }

/**
 * blockstore-core's IdentityBlockstore, the layer Helia puts right above our store, takes
 * putMany from its base class: one awaited put after another, so no batch reached the
 * store (CachedBlockstore.putMany writes small blocks in one LevelDB batch). Given here
 * what its put does block by block: identity CIDs are its own, the rest go to the child
 * as one stream. test/unit/helia-put-many.test.ts guards it.
 */
type IdentityPair = { cid: CID, bytes: Uint8Array }
interface IdentityChild { putMany: (source: AsyncIterable<IdentityPair>, options?: AbortOptions) => AsyncIterable<CID> }
const IDENTITY_CODE = 0x00
IdentityBlockstore.prototype.putMany = async function * (this: IdentityBlockstore, source: Iterable<IdentityPair> | AsyncIterable<IdentityPair>, options?: AbortOptions): AsyncGenerator<CID> {
  const child = (this as unknown as { child?: IdentityChild }).child
  const own: IdentityPair[] = []
  async function * rest (): AsyncGenerator<IdentityPair> {
    for await (const pair of source) {
      if (pair.cid.multihash.code === IDENTITY_CODE || child === undefined) own.push(pair)
      else yield pair
    }
  }
  if (child !== undefined) yield * child.putMany(rest(), options)
  else for await (const _ of rest()) { /* all its own */ }
  for (const { cid, bytes } of own) yield await this.put(cid, bytes, options)
} as IdentityBlockstore['putMany']

/** LevelDB memory-maps the table files it keeps open (counted as RSS): a bounded table cache bounds them. */
const LEVEL_OPTIONS = { cacheSize: 2 * 1024 * 1024, writeBufferSize: 2 * 1024 * 1024, maxOpenFiles: 64 }

export interface ContentStoreOptions<S extends ServiceMap> {
  blocksPath: string
  datastorePath: string
  libp2p: Libp2pOptions<S>
  name: string
  version: string
}

export interface ContentStore<S extends ServiceMap> {
  helia: HeliaWithLibp2p<S>
  libp2p: Libp2p<S>
  start: () => Promise<void>
  stop: () => Promise<void>
}

/**
 * The level datastore (Helia's pins, libp2p's peer store) read on this thread
 * (level-reads.ts): a pin walk asks `has` of every block it pins, most of them absent.
 * Answers and errors are the base class's (an error takes its path).
 */
export class LevelDatastoreReadHere extends LevelDatastore {
  override async get (key: Key, options?: AbortOptions): Promise<Uint8Array> {
    options?.signal?.throwIfAborted()
    let data: Uint8Array | undefined
    try {
      data = await readOne(this.db, key.toString())
    } catch {
      return await super.get(key, options)
    }
    if (data === undefined) throw new NotFoundError()
    return data
  }

  override async has (key: Key, options?: AbortOptions): Promise<boolean> {
    options?.signal?.throwIfAborted()
    try {
      return await readOne(this.db, key.toString()) !== undefined
    } catch {
      return await super.has(key, options)
    }
  }
}

/**
 * Helia (light: no WebRTC, no HTTP gateways, no DHT) over a flat-file block store and a
 * level datastore in the data directory, our own libp2p, and bitswap. libp2p keeps its peer store
 * in the same datastore, so known peers survive a restart; its writes wait and go in
 * batches (peer-records.ts).
 */
export async function createContentStore<S extends ServiceMap> (opts: ContentStoreOptions<S>): Promise<ContentStore<S>> {
  // Blocks (shards up to a few MiB) are flat files: LevelDB would rewrite them in every
  // compaction and keep its table files memory-mapped, which a large upload pays in RSS.
  // The blocks last used stay in memory: each is read several times soon after it arrives.
  const blockstore = new CachedBlockstore(opts.blocksPath)
  const datastore = new LevelDatastoreReadHere(opts.datastorePath, LEVEL_OPTIONS)
  await blockstore.open()
  await datastore.open()
  const peerRecords = new PeerRecordsDatastore(datastore)
  let libp2p: Libp2p<S>
  try {
    libp2p = await createLibp2p({ ...opts.libp2p, datastore: peerRecords, start: false })
  } catch (err) {
    await blockstore.close()
    await datastore.close()
    throw err
  }
  const helia = new HeliaClass({ name: opts.name, version: opts.version, blockstore, datastore, codecs: [dagCbor, raw] }) as HeliaWithLibp2p<S>
  Object.defineProperty(helia, 'libp2p', { value: libp2p, enumerable: true })
  withBitswap(helia)
  let started = false
  return {
    helia,
    libp2p,
    async start () {
      await libp2p.start()
      await helia.start()
      started = true
    },
    async stop () {
      if (started) {
        await helia.stop()
        await libp2p.stop()
      }
      await peerRecords.flush().catch(() => {})
      await blockstore.close()
      await datastore.close()
    }
  }
}
