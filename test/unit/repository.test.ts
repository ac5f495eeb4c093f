import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Repository, heightKey, jsonCodec, readHeightKey, type RepositoryCodec } from '../../src/storage/repository.ts'
import { StateDatabase, type PeerRecord } from '../../src/storage/state-db.ts'
import { DatanetError } from '../../src/errors.ts'
import { tempDir } from '../helpers/tmp.ts'

const tmp = tempDir('datanet-repo-')
const dbPath = join(tmp.dir, 'state')
let db = new StateDatabase(dbPath)

const text = { encoder: new TextEncoder(), decoder: new TextDecoder() }
const heightCodec: RepositoryCodec<bigint, string> = {
  encodeKey: heightKey,
  decodeKey: readHeightKey,
  encodeValue: v => text.encoder.encode(v),
  decodeValue: b => text.decoder.decode(b)
}

const peer = (id: string, announcedAt = 1): PeerRecord => ({
  peerId: id,
  address: '0x' + '11'.repeat(20),
  multiaddrs: [`/ip4/127.0.0.1/tcp/7400/p2p/${id}`],
  agentVersion: 'datanet/test',
  datanets: ['d1'],
  announcedAt
})

async function collect<T> (it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const x of it) out.push(x)
  return out
}

test.before(async () => { await db.open() })
test.after(async () => {
  await db.close()
  tmp.remove()
})

test('get of a missing key is undefined; has is false', async () => {
  assert.is(await db.peers.get('nobody'), undefined)
  assert.is(await db.peers.has('nobody'), false)
})

test('put, get, has, delete', async () => {
  const rec = peer('p-put')
  await db.peers.put('p-put', rec)
  assert.equal(await db.peers.get('p-put'), rec)
  assert.is(await db.peers.has('p-put'), true)
  await db.peers.put('p-put', { ...rec, announcedAt: 2 })
  assert.is((await db.peers.get('p-put'))?.announcedAt, 2, 'put overwrites')
  await db.peers.delete('p-put')
  assert.is(await db.peers.get('p-put'), undefined)
  assert.is(await db.peers.has('p-put'), false)
  await db.peers.delete('p-put') // deleting a missing key is fine
})

test('putMany writes every entry; an empty putMany is a no-op', async () => {
  const repo = new Repository(db.db, 'many', jsonCodec<number>())
  await repo.putMany([['a', 1], ['b', 2], ['c', 3]])
  assert.is(await repo.get('a'), 1)
  assert.is(await repo.get('b'), 2)
  assert.is(await repo.get('c'), 3)
  await repo.putMany([])
  await repo.putMany(new Map([['d', 4]]))
  assert.equal(await collect(repo.entries()), [['a', 1], ['b', 2], ['c', 3], ['d', 4]])
  assert.equal(await repo.values(), [1, 2, 3, 4])
  assert.equal(await repo.values({ limit: 2 }), [1, 2])
})

test('getMany answers in the order asked (it reads in key order), undefined where missing', async () => {
  // keys sharing a long prefix, some also the next 4 bytes, one that is the prefix itself, one asked twice
  const prefix = new Uint8Array(32).fill(7)
  const key = (i: number): Uint8Array => Uint8Array.from([...prefix, ...(i % 5 === 0 ? [1, 2, 3, 4] : [i >> 8, i & 255, 9, 9]), i & 255, i >> 8])
  const keys = [prefix, ...Array.from({ length: 600 }, (_, i) => key(i))]
  const repo = new Repository(db.db, 'get-many', { encodeKey: (k: Uint8Array) => k, decodeKey: (k: Uint8Array) => k, encodeValue: (n: number) => Uint8Array.of(n & 255, n >> 8), decodeValue: (b: Uint8Array) => (b[0] as number) + ((b[1] as number) << 8) })
  await repo.putMany(keys.filter((_, i) => i % 3 !== 1).map((k, i) => [k, i]))
  const stored = new Map(keys.filter((_, i) => i % 3 !== 1).map((k, i) => [Buffer.from(k).toString('hex'), i]))
  const asked = [...keys].reverse().concat([keys[10] as Uint8Array])
  const got = await repo.getMany(asked)
  assert.equal(got, asked.map(k => stored.get(Buffer.from(k).toString('hex'))))
  assert.equal(await repo.getMany([]), [])
})

test('records: claim marks hashes with one owner; owners reads them back in order', async () => {
  const hash = (i: number): Uint8Array => new Uint8Array(32).fill(i)
  const d = new Uint8Array(32).fill(0xd1)
  await db.records.claim(d, [hash(3), hash(1)], 'u:upload')
  await db.records.claim(d, [], 'u:nothing')
  assert.equal(await db.records.owners(d, [hash(1), hash(2), hash(3)]), ['u:upload', undefined, 'u:upload'])
})

test('records: the index is per datanet, and release drops only the given owners\' claims', async () => {
  const hash = (i: number): Uint8Array => new Uint8Array(32).fill(i)
  const a = new Uint8Array(32).fill(0xa1)
  const b = new Uint8Array(32).fill(0xb1)
  await db.records.claim(a, [hash(7), hash(8)], 'bafyrejected')
  await db.records.claim(a, [hash(9)], 'bafyother')
  assert.equal(await db.records.owners(b, [hash(7)]), [undefined], 'another datanet does not hold it')
  assert.is(await db.records.release(a, [hash(7), hash(8), hash(9)], new Set(['bafyrejected'])), 2)
  assert.equal(await db.records.owners(a, [hash(7), hash(8), hash(9)]), [undefined, undefined, 'bafyother'])
})

test('heightKey is 8 bytes big-endian and readHeightKey inverts it', () => {
  assert.equal([...heightKey(1)], [0, 0, 0, 0, 0, 0, 0, 1])
  assert.equal([...heightKey(256)], [0, 0, 0, 0, 0, 0, 1, 0])
  for (const h of [0n, 1n, 255n, 256n, 70000n, 2n ** 53n + 1n, 2n ** 64n - 1n]) assert.is(readHeightKey(heightKey(h)), h)
  assert.is(readHeightKey(heightKey(70000)), 70000n)
  // a number key is the same bytes as its bigint (the number path skips BigInt)
  for (const h of [0, 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, 123_456_789_012, Number.MAX_SAFE_INTEGER]) assert.equal([...heightKey(h)], [...heightKey(BigInt(h))], String(h))
  assert.throws(() => heightKey(1.5))
  assert.throws(() => heightKey(-1))
  // works on a view into a larger buffer
  const big = new Uint8Array(12)
  big.set(heightKey(513), 4)
  assert.is(readHeightKey(big.subarray(4)), 513n)
})

test('entries() over heightKey keys iterates in numeric order', async () => {
  const repo = new Repository(db.db, 'blocks-by-height', heightCodec)
  for (const h of [256n, 10n, 70000n, 1n, 2n]) await repo.put(h, `block ${h}`)
  const all = await collect(repo.entries())
  assert.equal(all.map(([h]) => h), [1n, 2n, 10n, 256n, 70000n])
  assert.equal(all.map(([, v]) => v), ['block 1', 'block 2', 'block 10', 'block 256', 'block 70000'])

  const reversed = await collect(repo.entries({ reverse: true }))
  assert.equal(reversed.map(([h]) => h), [70000n, 256n, 10n, 2n, 1n])

  const range = await collect(repo.entries({ gte: 2n, lt: 256n }))
  assert.equal(range.map(([h]) => h), [2n, 10n])

  const limited = await collect(repo.entries({ gte: 10n, limit: 2 }))
  assert.equal(limited.map(([h]) => h), [10n, 256n])

  const latest = await collect(repo.entries({ reverse: true, limit: 1 }))
  assert.equal(latest, [[70000n, 'block 70000']])
})

test('two repositories (peers, facts) do not see each other\'s keys', async () => {
  await db.peers.put('shared-key', peer('shared-key'))
  assert.is(await db.facts.get('shared-key'), undefined)
  await db.facts.put('node', { starts: 1, firstStartedAt: 'a', lastStartedAt: 'b' })
  assert.is(await db.peers.get('node'), undefined)
  const facts = await collect(db.facts.entries())
  assert.equal(facts.map(([k]) => k), ['node'])
  const peers = await collect(db.peers.entries())
  assert.ok(peers.every(([k]) => k !== 'node'))
  assert.ok(peers.some(([k]) => k === 'shared-key'))
  await db.facts.put('shared-key', { starts: 9, firstStartedAt: 'x', lastStartedAt: 'y' })
  assert.is((await db.peers.get('shared-key'))?.peerId, 'shared-key', 'the peer record is untouched')
})

test('a repository whose name is a prefix of another does not see its keys', async () => {
  const a = new Repository(db.db, 'pre', jsonCodec<string>())
  const b = new Repository(db.db, 'prefix', jsonCodec<string>())
  await a.put('k', 'from a')
  await b.put('k', 'from b')
  assert.is(await a.get('k'), 'from a')
  assert.is(await b.get('k'), 'from b')
  assert.equal(await a.values(), ['from a'])
  assert.equal(await b.values(), ['from b'])
})

test('values persist after close and reopen', async () => {
  await db.peers.put('persist', peer('persist', 42))
  await db.facts.put('persist-facts', { starts: 3, firstStartedAt: 'f', lastStartedAt: 'l' })
  await new Repository(db.db, 'blocks-by-height', heightCodec).put(99n, 'block 99')
  await db.close()

  db = new StateDatabase(dbPath)
  await db.open()
  assert.equal(await db.peers.get('persist'), peer('persist', 42))
  assert.equal(await db.facts.get('persist-facts'), { starts: 3, firstStartedAt: 'f', lastStartedAt: 'l' })
  const heights = await collect(new Repository(db.db, 'blocks-by-height', heightCodec).entries())
  assert.equal(heights.map(([h]) => h), [1n, 2n, 10n, 99n, 256n, 70000n])
})

test('opening a state database that is already open is STATE_DB_ERROR_LOCKED', async () => {
  const second = new StateDatabase(dbPath)
  try {
    await second.open()
    assert.unreachable('a second open must fail')
  } catch (err) {
    assert.instance(err, DatanetError)
    assert.is((err as DatanetError).code, 'STATE_DB_ERROR_LOCKED')
    assert.is((err as DatanetError).kind, 'usage')
  }
  // the first handle still works
  assert.is((await db.peers.get('persist'))?.announcedAt, 42)
})

test('opening a state database at a path that is a file is STATE_DB_ERROR_OPEN', async () => {
  const file = join(tmp.dir, 'not-a-dir')
  writeFileSync(file, 'x')
  const bad = new StateDatabase(file)
  try {
    await bad.open()
    assert.unreachable('opening a file as a database must fail')
  } catch (err) {
    assert.instance(err, DatanetError)
    assert.is((err as DatanetError).code, 'STATE_DB_ERROR_OPEN')
    assert.is((err as DatanetError).kind, 'failure')
  }
})

test.run()
