/**
 * libp2p's peer records written behind (src/storage/peer-records.ts). The cost it removes:
 * libp2p merges the negotiated protocol into the remote peer's record at every stream, so
 * every stream was a LevelDB put of that record. Then what must hold: reads see the writes
 * that wait, a query writes them first, keys outside the peer store go through at once,
 * a failed batch keeps its writes, and a stop writes them (known peers survive a restart).
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { LevelDatastore } from 'datastore-level'
import { Key } from 'interface-datastore'
import { Registry } from 'prom-client'
import { libp2pOptions, type HostServices } from '../../src/network/libp2p-options.ts'
import { createContentStore, LevelDatastoreReadHere } from '../../src/storage/helia.ts'
import { PeerRecordsDatastore } from '../../src/storage/peer-records.ts'
import { tempDir } from '../helpers/tmp.ts'

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s)
const text = (b: Uint8Array): string => new TextDecoder().decode(b)
/** The error `f` rejects with (undefined when it resolves). */
async function rejection (f: () => Promise<unknown>): Promise<Error | undefined> {
  try { await f() } catch (err) { return err as Error }
  return undefined
}

test('streams between two nodes write the remote peer\'s record once, not once a stream; a stop writes it', async () => {
  const dir = tempDir('peer-records-')
  const proto = LevelDatastoreReadHere.prototype
  const { put, batch } = proto
  let peerPuts = 0
  proto.put = async function (this: LevelDatastoreReadHere, ...args: Parameters<LevelDatastoreReadHere['put']>) {
    if (args[0].toString().startsWith('/peers/')) peerPuts++
    return await put.apply(this, args)
  }
  let peerBatches = 0
  proto.batch = function (this: LevelDatastoreReadHere) {
    const b = batch.apply(this)
    const bput = b.put.bind(b)
    let counted = false
    b.put = (key, value) => { if (!counted && key.toString().startsWith('/peers/')) { counted = true; peerBatches++ } bput(key, value) }
    return b
  }
  const open = async (name: string): ReturnType<typeof createContentStore<HostServices>> => await createContentStore<HostServices>({
    name,
    version: '0',
    blocksPath: join(dir.dir, name, 'blocks'),
    datastorePath: join(dir.dir, name, 'datastore'),
    libp2p: libp2pOptions({ privateKey: await generateKeyPair('Ed25519'), host: '127.0.0.1', port: 0, announce: [], maxConnections: 4, dialTimeoutMs: 5000, maxMessageBytes: 1024 * 1024, agentVersion: name, metricsRegistry: new Registry() })
  })
  const a = await open('a')
  const b = await open('b')
  let stopped = false
  try {
    await a.start()
    await b.start()
    await a.libp2p.dial(b.libp2p.getMultiaddrs())
    const streams = 30
    for (let i = 0; i < streams; i++) await a.libp2p.services.ping.ping(b.libp2p.peerId)
    assert.ok(peerPuts < 3, `${peerPuts} puts of peer records for ${streams} streams (each stream merged a protocol into its peer's record)`)
    // what the peer store reads is what it wrote
    const record = await a.libp2p.peerStore.get(b.libp2p.peerId)
    assert.ok(record.protocols.length > 0)
    await a.stop()
    await b.stop()
    stopped = true
    assert.ok(peerBatches >= 1, 'the records were written at stop')
    // a's store now holds b's record
    const reopened = new LevelDatastore(join(dir.dir, 'a', 'datastore'))
    await reopened.open()
    try {
      let found = false
      for await (const k of reopened.queryKeys({ prefix: '/peers/' })) if (k.toString().includes(b.libp2p.peerId.toCID().toString())) found = true
      assert.ok(found, 'the remote peer\'s record survives the stop')
    } finally {
      await reopened.close()
    }
  } finally {
    proto.put = put
    proto.batch = batch
    if (!stopped) {
      await a.stop()
      await b.stop()
    }
    dir.remove()
  }
})

/** A PeerRecordsDatastore (no timer flush within a test) over a LevelDB of its own. */
async function withStores (f: (inner: LevelDatastore, ds: PeerRecordsDatastore) => Promise<void>): Promise<void> {
  const dir = tempDir('peer-records-unit-')
  const inner = new LevelDatastore(join(dir.dir, 'ds'))
  await inner.open()
  try {
    await f(inner, new PeerRecordsDatastore(inner, 60_000))
  } finally {
    await inner.close()
    dir.remove()
  }
}

test('reads see waiting writes and deletes; a query writes them first; other keys go through at once', async () => {
  await withStores(async (inner, ds) => {
    const k = new Key('/peers/abc')
    await ds.put(k, bytes('one'))
    await ds.put(k, bytes('two'))
    assert.not.ok(await inner.has(k), 'waiting')
    assert.is(text(await ds.get(k)), 'two')
    assert.ok(await ds.has(k))
    const other = new Key('/pins/xyz')
    await ds.put(other, bytes('pin'))
    assert.ok(await inner.has(other), 'a key outside the peer store is written at once')
    const seen: string[] = []
    for await (const { key, value } of ds.query({ prefix: '/peers/' })) seen.push(`${key.toString()}=${text(value)}`)
    assert.equal(seen, ['/peers/abc=two'], 'a query sees the waiting write')
    assert.is(ds.flushes, 1)
    assert.is(text(await inner.get(k)), 'two')
    await ds.delete(k)
    assert.not.ok(await ds.has(k), 'a waiting delete')
    assert.ok(await rejection(async () => await ds.get(k)) !== undefined, 'not found')
    assert.ok(await inner.has(k), 'not deleted yet')
    await ds.flush()
    assert.not.ok(await inner.has(k))
    // a batch through it waits as its puts do
    const bt = ds.batch()
    bt.put(new Key('/peers/def'), bytes('three'))
    await bt.commit()
    assert.is(text(await ds.get(new Key('/peers/def'))), 'three')
    assert.not.ok(await inner.has(new Key('/peers/def')))
  })
})

test('a batch that fails keeps its writes for the next flush, under newer ones', async () => {
  await withStores(async (inner, ds) => {
    const realBatch = inner.batch.bind(inner)
    await ds.put(new Key('/peers/a'), bytes('a1'))
    await ds.put(new Key('/peers/b'), bytes('b1'))
    inner.batch = () => ({ put: () => {}, delete: () => {}, commit: async () => { throw new Error('disk full') } })
    assert.match((await rejection(async () => await ds.flush()))?.message ?? '', /disk full/)
    assert.is(text(await ds.get(new Key('/peers/a'))), 'a1', 'still read from here')
    await ds.put(new Key('/peers/a'), bytes('a2'))
    inner.batch = realBatch
    await ds.flush()
    assert.is(text(await inner.get(new Key('/peers/a'))), 'a2', 'the newer write wins')
    assert.is(text(await inner.get(new Key('/peers/b'))), 'b1', 'the failed batch\'s other write kept')
  })
})

test.run()
