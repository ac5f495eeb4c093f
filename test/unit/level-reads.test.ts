/**
 * Reads of LevelDB on the calling thread (src/storage/level-reads.ts): the state
 * database's repositories, the small-block store and Helia's datastore read an open store
 * without a trip to the thread pool (~30 µs of CPU each, against ~1 µs), answer as the
 * promise API does (values, misses, the store's errors), and wait for a store still opening.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { join } from 'node:path'
import { ClassicLevel } from 'classic-level'
import { Key } from 'interface-datastore'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { SYNC_READ_KEYS, readMany, readOne } from '../../src/storage/level-reads.ts'
import { StateDatabase } from '../../src/storage/state-db.ts'
import { CachedBlockstore } from '../../src/storage/cached-blockstore.ts'
import { LevelDatastoreReadHere } from '../../src/storage/helia.ts'
import { withTempDir } from '../helpers/tmp.ts'

/** Counts classic-level's trips to the thread pool for reads while `fn` runs. */
async function poolReads (fn: () => Promise<void>): Promise<{ get: number, getMany: number }> {
  const proto = ClassicLevel.prototype as unknown as Record<'_get' | '_getMany', (...a: unknown[]) => unknown>
  const get = proto._get
  const getMany = proto._getMany
  const seen = { get: 0, getMany: 0 }
  proto._get = function (this: unknown, ...a: unknown[]) { seen.get++; return get.apply(this, a) }
  proto._getMany = function (this: unknown, ...a: unknown[]) { seen.getMany++; return getMany.apply(this, a) }
  try {
    await fn()
  } finally {
    proto._get = get
    proto._getMany = getMany
  }
  return seen
}

const withDir = async (fn: (dir: string) => Promise<void>): Promise<void> => { await withTempDir(fn, 'datanet-level-reads-') }

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s)
const text = (v: Uint8Array | undefined): string | undefined => v === undefined ? undefined : Buffer.from(v).toString()

test('readOne and readMany answer an open store here, and large sets in one batch of the thread pool', async () => {
  await withDir(async dir => {
    const db = new ClassicLevel<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' })
    await db.open()
    const keys = Array.from({ length: SYNC_READ_KEYS + 1 }, (_, i) => bytes(`k${i}`))
    await db.batch(keys.slice(0, -1).map(key => ({ type: 'put' as const, key, value: key })))
    const seen = await poolReads(async () => {
      assert.is(text(await readOne(db, bytes('k3'))), 'k3')
      assert.is(await readOne(db, bytes('absent')), undefined)
      const few = await readMany(db, keys.slice(-SYNC_READ_KEYS))
      assert.equal(few.map(text), [...keys.slice(-SYNC_READ_KEYS, -1).map(text), undefined])
    })
    assert.equal(seen, { get: 0, getMany: 0 }, 'reads of an open store went to the thread pool')
    const many = await poolReads(async () => {
      assert.is((await readMany(db, keys)).filter(v => v !== undefined).length, SYNC_READ_KEYS)
    })
    assert.equal(many, { get: 0, getMany: 1 }, 'a large set is one batch')
    await db.close()
  })
})

test('a read of a store still opening waits for it', async () => {
  await withDir(async dir => {
    const first = new ClassicLevel<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' })
    await first.put(bytes('a'), bytes('1'))
    await first.close()
    const db = new ClassicLevel<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' })
    const opening = db.open()
    assert.is.not(db.status, 'open')
    assert.is(text(await readOne(db, bytes('a'))), '1')
    assert.equal((await readMany(db, [bytes('a'), bytes('b')])).map(text), ['1', undefined])
    await opening
    await db.close()
  })
})

test('the state database, the small-block store and the datastore read without the thread pool', async () => {
  await withDir(async dir => {
    const state = new StateDatabase(join(dir, 'state'))
    await state.open()
    const blocks = new CachedBlockstore(join(dir, 'blocks'))
    await blocks.open()
    const datastore = new LevelDatastoreReadHere(join(dir, 'datastore'))
    await datastore.open()
    try {
      await state.facts.put('height', { height: 7 } as never)
      const shard = bytes('a small block')
      const cid = CID.createV1(raw.code, await sha256.digest(shard))
      await blocks.put(cid, shard)
      await datastore.put(new Key('/pins/a'), bytes('pin'))
      const missing = CID.createV1(raw.code, await sha256.digest(bytes('never stored')))
      // a store of its own: the block just put is not in the first store's memory
      const again = new CachedBlockstore(join(dir, 'blocks'))
      await blocks.close()
      await again.open()
      try {
        const seen = await poolReads(async () => {
          assert.equal(await state.facts.get('height'), { height: 7 })
          assert.is(await state.facts.get('absent'), undefined)
          assert.ok(await state.facts.has('height'))
          assert.equal((await state.facts.getMany(['height', 'absent'])).length, 2)
          assert.ok(await again.has(cid))
          assert.not.ok(await again.has(missing))
          assert.ok(await datastore.has(new Key('/pins/a')))
          assert.is(text(await datastore.get(new Key('/pins/a'))), 'pin')
          assert.not.ok(await datastore.has(new Key('/pins/absent')))
        })
        assert.equal(seen, { get: 0, getMany: 0 }, 'reads went to the thread pool')
        // a miss is the store's own error, as before
        try {
          await datastore.get(new Key('/pins/absent'))
          assert.unreachable('a missing key was answered')
        } catch (err) {
          assert.is((err as Error).name, 'NotFoundError')
        }
      } finally {
        await again.close()
      }
    } finally {
      await datastore.close()
      await state.close()
    }
  })
})

test.run()
