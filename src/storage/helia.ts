import { withBitswap } from '@helia/bitswap'
import { withLibp2pLight, type HeliaWithLibp2p, type CreateLibp2pOptions } from '@helia/libp2p'
import * as dagCbor from '@ipld/dag-cbor'
import { LevelBlockstore } from 'blockstore-level'
import { LevelDatastore } from 'datastore-level'
import { createHeliaLight } from 'helia'
import * as raw from 'multiformats/codecs/raw'
import type { ServiceMap } from '@libp2p/interface'

export interface ContentStoreOptions<S extends ServiceMap> {
  blocksPath: string
  datastorePath: string
  libp2p: CreateLibp2pOptions<S>
}

export interface ContentStore<S extends ServiceMap> {
  helia: HeliaWithLibp2p<S>
  blockstore: LevelBlockstore
  datastore: LevelDatastore
  start: () => Promise<void>
  stop: () => Promise<void>
}

/**
 * Helia (light composition: no WebRTC, no HTTP gateways) over level-backed block and
 * data stores in the data directory, with libp2p and bitswap. libp2p keeps its peer
 * store in the same datastore, so known peers survive a restart.
 */
export function createContentStore<S extends ServiceMap> (opts: ContentStoreOptions<S>): ContentStore<S> {
  const blockstore = new LevelBlockstore(opts.blocksPath)
  const datastore = new LevelDatastore(opts.datastorePath)
  const light = createHeliaLight({ blockstore, datastore, codecs: [dagCbor, raw] })
  const helia = withBitswap(withLibp2pLight(light, opts.libp2p)) as unknown as HeliaWithLibp2p<S>
  return {
    helia,
    blockstore,
    datastore,
    async start () {
      await blockstore.open()
      await datastore.open()
      await helia.start()
    },
    async stop () {
      await helia.stop()
      await blockstore.close()
      await datastore.close()
    }
  }
}
