/**
 * A batch of blocks written through Helia reaches the block store as a batch: Helia's
 * identity layer took putMany from its base class and put one block after another, so
 * CachedBlockstore.putMany (small blocks in one LevelDB batch) was never called.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { identity } from 'multiformats/hashes/identity'
import { sha256 } from 'multiformats/hashes/sha2'
import { Registry } from 'prom-client'
import { libp2pOptions, type HostServices } from '../../src/network/libp2p-options.ts'
import { createContentStore } from '../../src/storage/helia.ts'
import { CachedBlockstore } from '../../src/storage/cached-blockstore.ts'
import { tempDir } from '../helpers/tmp.ts'

test('putMany through Helia writes the blocks in one call of the store, and keeps identity CIDs its own', async () => {
  const dir = tempDir('helia-put-many-')
  const proto = CachedBlockstore.prototype
  const { put, putMany } = proto
  let puts = 0
  let batches = 0
  proto.put = async function (this: CachedBlockstore, ...args: Parameters<CachedBlockstore['put']>) { puts++; return await put.apply(this, args) }
  proto.putMany = async function * (this: CachedBlockstore, ...args: Parameters<CachedBlockstore['putMany']>) { batches++; yield * putMany.apply(this, args) }
  const store = await createContentStore<HostServices>({
    name: 'put-many',
    version: '0',
    blocksPath: join(dir.dir, 'blocks'),
    datastorePath: join(dir.dir, 'datastore'),
    libp2p: libp2pOptions({ privateKey: await generateKeyPair('Ed25519'), host: '127.0.0.1', port: 0, announce: [], maxConnections: 4, dialTimeoutMs: 5000, maxMessageBytes: 1024 * 1024, agentVersion: 'put-many', metricsRegistry: new Registry() })
  })
  try {
    await store.start()
    const blocks = await Promise.all(Array.from({ length: 100 }, async () => {
      const bytes = randomBytes(200)
      return { cid: CID.createV1(raw.code, await sha256.digest(bytes)), bytes }
    }))
    const inline = new TextEncoder().encode('inline')
    const id = CID.createV1(raw.code, identity.digest(inline))
    const written: string[] = []
    for await (const cid of store.helia.blockstore.putMany([...blocks, { cid: id, bytes: inline }])) written.push(cid.toString())
    // an identity CID holds its bytes: Helia counts it as held already and does not yield it
    assert.equal(written.sort(), blocks.map(b => b.cid.toString()).sort())
    assert.is(batches, 1, 'the store was given the batch')
    assert.is(puts, 0, 'no block was put one at a time')
    for (const b of blocks) assert.ok(await store.helia.blockstore.has(b.cid))
    assert.ok(await store.helia.blockstore.has(id))
  } finally {
    proto.put = put
    proto.putMany = putMany
    await store.stop()
    dir.remove()
  }
})

test.run()
