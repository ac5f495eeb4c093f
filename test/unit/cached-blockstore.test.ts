/**
 * The block store's memory of recent blocks (src/storage/cached-blockstore.ts): what it
 * answers must be what the files hold — a deleted block is gone, even when a read of it
 * was under way; the bytes held stay within the bound; a miss reads the file.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { unlinkSync, readdirSync, statSync } from 'node:fs'
import { createRequire, syncBuiltinESMExports } from 'node:module'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { ClassicLevel } from 'classic-level'
import { FsBlockstore } from 'blockstore-fs'
import { CachedBlockstore } from '../../src/storage/cached-blockstore.ts'
import { withTempDir } from '../helpers/tmp.ts'

async function block (size: number): Promise<{ cid: CID, bytes: Uint8Array }> {
  const bytes = randomBytes(size)
  return { cid: CID.createV1(raw.code, await sha256.digest(bytes)), bytes }
}

async function read (store: CachedBlockstore, cid: CID): Promise<Uint8Array> {
  const parts: Uint8Array[] = []
  for await (const p of store.get(cid)) parts.push(p)
  return Buffer.concat(parts)
}

/** Every block file under the store, so a test can take one away behind the cache's back. */
function files (dir: string): string[] {
  const out: string[] = []
  for (const name of readdirSync(dir)) {
    const p = join(dir, name)
    if (statSync(p).isDirectory()) out.push(...files(p))
    else if (name.endsWith('.data')) out.push(p)
  }
  return out
}

/** A fresh directory for `fn`, removed after. */
const withDir = async (fn: (dir: string) => Promise<void>): Promise<void> => { await withTempDir(fn, 'blocks-') }

/** A store opened on `dir` for `fn` (a process's life), closed after. */
async function opened (dir: string, init: ConstructorParameters<typeof CachedBlockstore>[1], fn: (store: CachedBlockstore) => Promise<void>): Promise<void> {
  const store = new CachedBlockstore(dir, init)
  await store.open()
  try {
    await fn(store)
  } finally {
    await store.close()
  }
}

async function withStore (cacheBytes: number, fn: (store: CachedBlockstore, dir: string) => Promise<void>): Promise<void> {
  await withDir(async dir => { await opened(dir, { cacheBytes }, async store => { await fn(store, dir) }) })
}

test('a block written is read back from memory, the same bytes; a deleted one is gone', async () => {
  await withStore(1 << 20, async (store, dir) => {
    const b = await block(4096)
    await store.put(b.cid, b.bytes)
    // the file taken away: only the cache can answer now
    for (const f of files(dir)) unlinkSync(f)
    assert.equal(await read(store, b.cid), Buffer.from(b.bytes))
    assert.ok(await store.has(b.cid))
    await store.delete(b.cid)
    assert.not.ok(await store.has(b.cid))
    try {
      await read(store, b.cid)
      assert.unreachable('a deleted block was read')
    } catch (err) {
      assert.equal((err as Error).name, 'NotFoundError')
    }
  })
})

test('a read that a delete overtakes does not put the block back', async () => {
  await withStore(1 << 20, async (store, dir) => {
    const b = await block(4096)
    // written by another store over the same files: this one has not seen it
    const other = new CachedBlockstore(dir, { cacheBytes: 0, smallBlockBytes: 0 })
    await other.open()
    await other.put(b.cid, b.bytes)
    const reading = store.get(b.cid)
    const first = reading.next()
    await store.delete(b.cid)
    await first.catch(() => undefined)
    assert.not.ok(await store.has(b.cid), 'the cache holds a block whose file was deleted')
    await other.close()
  })
})

test('the bytes held stay within the bound, least recently used out first; a miss reads the file', async () => {
  await withStore(40_000, async (store) => {
    const blocks = await Promise.all(Array.from({ length: 12 }, async () => await block(10_000)))
    for (const b of blocks) await store.put(b.cid, b.bytes)
    assert.ok(store.cachedBytes <= 40_000, `${store.cachedBytes} bytes held`)
    // the oldest were dropped from memory, not from disk
    for (const b of blocks) assert.equal(await read(store, b.cid), Buffer.from(b.bytes))
    assert.ok(store.cachedBytes <= 40_000)
    // a block larger than the bound is never held
    const big = await block(50_000)
    await store.put(big.cid, big.bytes)
    assert.equal(await read(store, big.cid), Buffer.from(big.bytes))
    assert.ok(store.cachedBytes <= 40_000)
  })
})

test('a block that is a view into a larger buffer is held as its own copy: the larger buffer is not kept alive', async () => {
  await withStore(1 << 20, async (store, dir) => {
    const message = randomBytes(256 * 1024)
    const bytes = message.subarray(1000, 5096)
    const cid = CID.createV1(raw.code, await sha256.digest(bytes))
    await store.put(cid, bytes)
    for (const f of files(dir)) unlinkSync(f)
    let held: Uint8Array = new Uint8Array()
    for await (const part of store.get(cid)) held = part
    assert.equal(Buffer.from(held), Buffer.from(bytes))
    assert.is(held.buffer.byteLength, 4096, 'the cache holds the block, not the message it came in')
  })
})

async function readAll (store: CachedBlockstore): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>()
  for await (const { cid, bytes } of store.getAll()) {
    const parts: Uint8Array[] = []
    for await (const p of bytes) parts.push(p)
    out.set(Buffer.from(cid.multihash.bytes).toString('hex'), Buffer.concat(parts))
  }
  return out
}

const hexOf = (cid: CID): string => Buffer.from(cid.multihash.bytes).toString('hex')

// A node catching up on small versions wrote three files a version (a temporary file,
// its write, close and rename each, and a directory check): most of its main thread.
test('small blocks go to the database, not a file each; large ones are files; all read back after a restart', async () => {
  await withDir(async dir => {
    const small = await Promise.all(Array.from({ length: 300 }, async (_, i) => await block(50 + i)))
    const large = await Promise.all(Array.from({ length: 2 }, async () => await block(100_000)))
    const one = await block(100)
    await opened(dir, {}, async store => {
      const put: string[] = []
      for await (const cid of store.putMany([...small.slice(0, 150), ...large, ...small.slice(150)])) put.push(hexOf(cid))
      assert.equal(put.sort(), [...small, ...large].map(b => hexOf(b.cid)).sort(), 'putMany yields each CID once')
      assert.is(files(dir).length, 2, 'only the large blocks are files')
      await store.put(one.cid, one.bytes)
      assert.is(files(dir).length, 2)
    })
    // a new process: nothing in memory
    await opened(dir, { cacheBytes: 0 }, async store => {
      for (const b of [...small, ...large, one]) {
        assert.ok(await store.has(b.cid))
        assert.equal(await read(store, b.cid), Buffer.from(b.bytes))
      }
      const all = await readAll(store)
      assert.is(all.size, 303)
      for (const b of [...small, ...large, one]) assert.equal(all.get(hexOf(b.cid)), Buffer.from(b.bytes))
      // a delete takes a block away wherever it is
      await store.delete(small[0]!.cid)
      await store.delete(large[0]!.cid)
      assert.not.ok(await store.has(small[0]!.cid))
      assert.not.ok(await store.has(large[0]!.cid))
      assert.is((await readAll(store)).size, 301)
    })
  })
})

/** Runs `fn` counting calls of fs/promises' access (a file's existence: blockstore-fs's has) under `dir`. */
async function accessCalls (dir: string, fn: () => Promise<void>): Promise<number> {
  const promises = createRequire(import.meta.url)('node:fs/promises') as Record<string, (...args: unknown[]) => Promise<unknown>>
  const access = promises.access as (...args: unknown[]) => Promise<unknown>
  let calls = 0
  promises.access = async (...args: unknown[]) => {
    if (typeof args[0] === 'string' && args[0].startsWith(dir)) calls++
    return await access(...args)
  }
  syncBuiltinESMExports()
  try {
    await fn()
  } finally {
    promises.access = access
    syncBuiltinESMExports()
  }
  return calls
}

// Helia asks `has` before it writes a block: for every new block a failed access on a file
// (an error made and thrown) on top of the database's lookup
test('a new store answers has() from its database alone, for small and large blocks and for blocks not here', async () => {
  await withDir(async dir => {
    const small = await block(300)
    const large = await block(100_000)
    const empty = await block(0)
    const absent = await block(300)
    await opened(dir, { cacheBytes: 0 }, async store => {
      await store.put(small.cid, small.bytes)
      for await (const _ of store.putMany([large, empty])) { /* drain */ }
    })
    await opened(dir, { cacheBytes: 0 }, async store => {
      const calls = await accessCalls(dir, async () => {
        assert.ok(await store.has(small.cid))
        assert.ok(await store.has(large.cid))
        assert.ok(await store.has(empty.cid), 'an empty block (a file: entries under 2 bytes are markers)')
        assert.not.ok(await store.has(absent.cid))
      })
      assert.is(calls, 0)
      assert.equal(await read(store, large.cid), Buffer.from(large.bytes))
      assert.equal(await read(store, empty.cid), Buffer.from(empty.bytes))
      assert.is((await readAll(store)).size, 3, 'getAll: each block once, not the markers')
      await store.delete(large.cid)
      assert.not.ok(await store.has(large.cid))
      assert.is(files(dir).length, 1)
    })
  })
})

// kill -9 between a large block's marker and its file, and between its file and the marker
// that says it is whole: the block is neither claimed before its file is there nor lost after
test('a large block cut short by a crash is as its file says', async () => {
  await withDir(async dir => {
    const big = await block(100_000)
    await opened(dir, { cacheBytes: 0 }, async () => {})
    // the crash after the "being written" marker: no file
    const level = new ClassicLevel<Uint8Array, Uint8Array>(join(dir, 'small'), { keyEncoding: 'view', valueEncoding: 'view' })
    await level.put(big.cid.multihash.bytes, Uint8Array.of(0))
    await level.close()
    await opened(dir, { cacheBytes: 0 }, async s => { assert.not.ok(await s.has(big.cid), 'claimed before its file was written') })
    // the crash after the file (written here by a store that keeps no entries), before "whole"
    await opened(dir, { cacheBytes: 0, smallBlockBytes: 0 }, async files => { await files.put(big.cid, big.bytes) })
    await opened(dir, { cacheBytes: 0 }, async s => {
      assert.ok(await s.has(big.cid), 'its whole file was lost')
      assert.equal(await read(s, big.cid), Buffer.from(big.bytes))
      // written again (Helia would not: it has it): the marker says whole
      await s.put(big.cid, big.bytes)
    })
    await opened(dir, { cacheBytes: 0 }, async s => {
      const calls = await accessCalls(dir, async () => { assert.ok(await s.has(big.cid)) })
      assert.is(calls, 0)
    })
    // the same through put itself: the process dies once the file is written
    const other = await block(100_000)
    const write = FsBlockstore.prototype.put
    FsBlockstore.prototype.put = async function (this: FsBlockstore, ...args: Parameters<FsBlockstore['put']>) {
      await write.apply(this, args)
      throw new Error('killed after the file')
    }
    try {
      await opened(dir, { cacheBytes: 0 }, async s => { await s.put(other.cid, other.bytes).then(() => assert.unreachable('not killed'), () => {}) })
    } finally {
      FsBlockstore.prototype.put = write
    }
    await opened(dir, { cacheBytes: 0 }, async s => {
      assert.ok(await s.has(other.cid), 'a whole file written before the crash was lost')
      assert.equal(await read(s, other.cid), Buffer.from(other.bytes))
    })
  })
})

test('a store whose small blocks were written as files (before they moved) still reads them', async () => {
  await withDir(async dir => {
    const b = await block(500)
    await opened(dir, { smallBlockBytes: 0 }, async old => { await old.put(b.cid, b.bytes) })
    assert.is(files(dir).length, 1)
    await opened(dir, { cacheBytes: 0 }, async store => {
      assert.ok(await store.has(b.cid))
      assert.equal(await read(store, b.cid), Buffer.from(b.bytes))
      assert.is((await readAll(store)).size, 1)
      await store.delete(b.cid)
      assert.is(files(dir).length, 0)
      assert.not.ok(await store.has(b.cid))
    })
  })
})

test.run()
