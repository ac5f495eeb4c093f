/**
 * Pins written many at once (node/services/blocks.ts pinMany) in Helia's own records: the
 * records are byte for byte those Helia's `pins.add` writes (a Helia upgrade that changes
 * them fails here), Helia reads them (isPinned, ls, rm), and concurrent pins that share a
 * block lose no root.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as dagCbor from '@ipld/dag-cbor'
import { LevelDatastore } from 'datastore-level'
import { base36 } from 'multiformats/bases/base36'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import type { Helia } from '@helia/interface'
import type { HeliaInit } from 'helia'
import { CachedBlockstore } from '../../src/storage/cached-blockstore.ts'
import { pin, pinMany } from '../../node/services/blocks.ts'

const { Helia: HeliaClass } = await import(new URL('./helia.js', import.meta.resolve('helia')).href) as { Helia: new (init: HeliaInit & { name: string, version: string }) => Helia }

const dirs: string[] = []
const open: Array<() => Promise<void>> = []
test.after.each(async () => {
  while (open.length > 0) await (open.pop() as () => Promise<void>)()
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

async function helia (): Promise<Helia> {
  const dir = mkdtempSync(join(tmpdir(), 'datanet-pins-'))
  dirs.push(dir)
  const blockstore = new CachedBlockstore(join(dir, 'blocks'))
  const datastore = new LevelDatastore(join(dir, 'datastore'))
  await blockstore.open()
  await datastore.open()
  open.push(async () => { await datastore.close(); await blockstore.close() })
  return new HeliaClass({ name: 'test', version: '0', blockstore, datastore, codecs: [dagCbor, raw] } as unknown as HeliaInit & { name: string, version: string })
}

async function rawBlock (text: string): Promise<{ cid: CID, bytes: Uint8Array }> {
  const bytes = new TextEncoder().encode(text)
  return { cid: CID.create(1, raw.code, await sha256.digest(bytes)), bytes }
}

/** A contribution-like DAG: a dag-cbor root linking raw shards. */
async function dag (name: string, shards: Array<{ cid: CID, bytes: Uint8Array }>): Promise<{ cid: CID, bytes: Uint8Array }> {
  const bytes = dagCbor.encode({ name, shards: shards.map(s => s.cid) })
  return { cid: CID.create(1, dagCbor.code, await sha256.digest(bytes)), bytes }
}

async function put (h: Helia, blocks: Array<{ cid: CID, bytes: Uint8Array }>): Promise<void> {
  for (const b of blocks) await h.blockstore.put(b.cid, b.bytes)
}

/** Every pin record of a Helia's datastore, key → hex value. */
async function pinRecords (h: Helia): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  for (const prefix of ['/pin/', '/pinned-block/']) {
    for await (const { key, value } of h.datastore.query({ prefix })) out[key.toString()] = Buffer.from(value).toString('hex')
  }
  return out
}

const fixture = async (): Promise<{ shared: { cid: CID, bytes: Uint8Array }, a: { cid: CID, bytes: Uint8Array }, b: { cid: CID, bytes: Uint8Array }, blocks: Array<{ cid: CID, bytes: Uint8Array }> }> => {
  const shared = await rawBlock('a record two contributions share')
  const s1 = await rawBlock('a shard of a')
  const s2 = await rawBlock('a shard of b')
  const a = await dag('a', [s1, shared])
  const b = await dag('b', [shared, s2])
  return { shared, a, b, blocks: [shared, s1, s2, a, b] }
}

test('the records pinMany writes are byte for byte those of Helia\'s pins.add', async () => {
  const { a, b, blocks } = await fixture()
  const byHelia = await helia()
  const byUs = await helia()
  await put(byHelia, blocks)
  await put(byUs, blocks)
  for (const root of [a, b]) for await (const _ of byHelia.pins.add(root.cid)) { /* drain */ }
  await pinMany(byUs, [a.cid, b.cid])
  const expected = await pinRecords(byHelia)
  assert.is(Object.keys(expected).length, 2 + 5, 'two pins, five blocks')
  assert.equal(await pinRecords(byUs), expected)
})

test('Helia reads them as its own: isPinned, ls, and rm', async () => {
  const { a, b, shared, blocks } = await fixture()
  const h = await helia()
  await put(h, blocks)
  await pinMany(h, [a.cid, b.cid])
  assert.ok(await h.pins.isPinned(shared.cid))
  const listed = []
  for await (const p of h.pins.ls()) listed.push({ cid: p.cid.toString(), depth: p.depth })
  assert.equal(listed.sort((x, y) => x.cid < y.cid ? -1 : 1), [a, b].map(r => ({ cid: r.cid.toString(), depth: Infinity })).sort((x, y) => x.cid < y.cid ? -1 : 1))
  for await (const _ of h.pins.rm(a.cid)) { /* drain */ }
  assert.not.ok(await h.pins.isPinned(a.cid), 'a root unpinned by Helia')
  assert.not.ok((await pinRecords(h))[`/pin/${a.cid.toString(base36)}`])
  assert.ok(await h.pins.isPinned(shared.cid), 'b still pins the shared block')
})

test('concurrent pins of roots that share a block lose no root; pinning again changes nothing', async () => {
  // 16 contributions of the same record (one shard, content-addressed) pinned at once, as a
  // caught-up range's were (16 at once): Helia's pins.add reads and rewrites the shard's
  // record in each, so on f527636 the record named 1 of the 16
  const shared = await rawBlock('one record sixteen contributions share')
  const roots = await Promise.all(Array.from({ length: 16 }, async (_, i) => await dag(`c${i}`, [shared])))
  const h = await helia()
  await put(h, [shared, ...roots])
  await Promise.all([...roots.map(async r => { await pin(h, r.cid) }), pinMany(h, roots.slice(0, 4).map(r => r.cid))])
  const before = await pinRecords(h)
  const record = dagCbor.decode(Buffer.from(before[`/pinned-block/${base36.encode(shared.cid.multihash.bytes)}`] as string, 'hex')) as { pinCount: number, pinnedBy: Uint8Array[] }
  assert.is(record.pinCount, 16, 'the shared block is pinned by every root')
  assert.is(record.pinnedBy.length, 16)
  await pinMany(h, roots.map(r => r.cid))
  assert.equal(await pinRecords(h), before)
})

test('depth 0 pins the block alone', async () => {
  const { a, shared, blocks } = await fixture()
  const h = await helia()
  await put(h, blocks)
  await pin(h, a.cid, undefined, 0)
  assert.ok(await h.pins.isPinned(a.cid))
  assert.not.ok(await h.pins.isPinned(shared.cid))
  assert.is((await h.pins.get(a.cid)).depth, 0)
})

test.run()
