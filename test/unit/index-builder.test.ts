/**
 * A final version's index segment is built on a worker thread when large (index-builder.ts):
 * on the main thread, SA-IS over a 22,000-record version held votes and gossip for 8 s.
 * The worker's segment must be the one the main thread builds, byte for byte, and the
 * attribution service must answer from it as from one built inline.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { sha256 } from '../../src/codec/hash.ts'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { pino } from 'pino'
import { CID } from 'multiformats/cid'
import * as lib from '../../src/attribution/index.ts'
import { IndexBuilder } from '../../node/services/index-builder.ts'
import { AttributionService } from '../../node/services/attribution.ts'
import type { FollowedDatanet } from '../../node/services/datanets.ts'
import { canonicalJson } from '../../src/codec/jcs.ts'
import { ShardPacker, shardCid, splitShard } from '../../src/datanet/shard.ts'
import type { StateDatabase, VersionEntry } from '../../src/storage/state-db.ts'
import type { Helia } from '@helia/interface'
import { corpus } from '../fixtures/attribution/corpus.ts'
import { tempDir } from '../helpers/tmp.ts'
import { waitFor } from '../helpers/wait.ts'

const GENESIS = { head: lib.EMPTY_HEAD, lastRecordIndex: -1 }

test('IndexBuilder: a segment built on the worker is the one built here, byte for byte, with tokens given or not; its file is written', async () => {
  const tmp = tempDir()
  const inWorker = new IndexBuilder({ inlineTokens: 0 })
  const here = new IndexBuilder({ inlineTokens: Number.MAX_SAFE_INTEGER })
  try {
    const { records } = corpus(5, 300)
    const withTokens = records.map((r, i) => i % 2 === 0
      ? { recordIndex: r.recordIndex, contributor: r.contributor, tokens: lib.tokenize(lib.normalizeText(r.text)) }
      : { recordIndex: r.recordIndex, contributor: r.contributor, text: r.text })
    // in chunks, as a version's shards come: more than the worker takes unacknowledged
    const chunks = Array.from({ length: 15 }, (_, i) => withTokens.slice(i * 20, (i + 1) * 20))
    const expected = lib.encodeSegment(lib.buildSegment(records, GENESIS))
    const a = await inWorker.build(chunks, GENESIS, join(tmp.dir, 'w', 'a.seg'))
    const b = await here.build(chunks, GENESIS, join(tmp.dir, 'h', 'b.seg'))
    assert.ok(a !== undefined && Buffer.from(a.bytes).equals(Buffer.from(expected)), 'worker build = lib.buildSegment')
    assert.ok(b !== undefined && Buffer.from(b.bytes).equals(Buffer.from(expected)), 'inline build = lib.buildSegment')
    assert.is(a.records, 300)
    // the worker wrote it and says so, with the sha256 the index keeps to read it back (index-segments.ts)
    assert.is(a.written, true)
    assert.equal(Buffer.from(a.digest as Uint8Array), Buffer.from(sha256(expected)))
    // a build here is written by no one: the index packs it
    assert.is(b.written, false)
    assert.not.ok(existsSync(join(tmp.dir, 'h', 'b.seg')))
    assert.is(await here.build([[], []], GENESIS, join(tmp.dir, 'h', 'none.seg')), undefined, 'no records, no segment')
    // records that fail on the sending side (a shard that cannot be read) fail the build, not the worker
    async function * broken (): AsyncGenerator<typeof withTokens> { yield * chunks.slice(0, 6); throw new Error('shard unreadable') }
    assert.match(await inWorker.build(broken(), GENESIS, join(tmp.dir, 'w', 'x.seg')).then(() => 'built', (err: Error) => err.message), /shard unreadable/)
    const again = await inWorker.build(chunks, GENESIS, join(tmp.dir, 'w', 'a2.seg'))
    assert.ok(again !== undefined && Buffer.from(again.bytes).equals(Buffer.from(expected)), 'the worker builds the next one')
    // a record out of order fails in the worker and reaches the caller
    const disordered = [chunks[1]!, chunks[0]!]
    assert.match(await inWorker.build(disordered, GENESIS, join(tmp.dir, 'w', 'y.seg')).then(() => 'built', (err: Error) => err.message), /ascending/)
    assert.ok(readFileSync(join(tmp.dir, 'w', 'a.seg')).equals(Buffer.from(expected)))
    assert.not.ok(existsSync(join(tmp.dir, 'w', 'a.seg.tmp')))
    // stopped: builds in hand and later ones fail (the service then builds on its own thread)
    const failure = async (p: Promise<unknown>): Promise<string> => await p.then(() => 'built', (err: Error) => err.message)
    const pending = failure(inWorker.build(chunks, GENESIS, join(tmp.dir, 'w', 'c.seg')))
    await inWorker.stop()
    assert.match(await pending, /exited/)
    assert.match(await failure(inWorker.build(chunks, GENESIS, join(tmp.dir, 'w', 'd.seg'))), /stopped/)
  } finally {
    await inWorker.stop()
    await here.stop()
    tmp.remove()
  }
})

/** Versions of real shards in memory, as the attribution service reads them (versionRecords). */
function world (heights: number, perVersion: number): { db: StateDatabase, helia: Helia, d: FollowedDatanet, texts: string[] } {
  const blocks = new Map<string, Uint8Array>()
  const contributions = new Map<string, { contribution: { contributor: string, shards: string[] } }>()
  const positions = new Map<string, number>()
  const versions: VersionEntry[] = []
  const { records } = corpus(11, heights * perVersion)
  const texts = records.map(r => r.text)
  for (let h = 1; h <= heights; h++) {
    const packer = new ShardPacker(1 << 20)
    const slice = records.slice((h - 1) * perVersion, h * perVersion)
    for (const r of slice) packer.add(new TextEncoder().encode(canonicalJson({ text: r.text })))
    const shard = packer.flush() as Uint8Array
    const cid = shardCid(shard)
    blocks.set(cid.toString(), shard)
    splitShard(shard).forEach((r, i) => positions.set(Buffer.from(r.hash).toString('hex'), (h - 1) * perVersion + i))
    const contribution = `contribution-${h}`
    contributions.set(contribution, { contribution: { contributor: (slice[0] as { contributor: string }).contributor, shards: [cid.toString()] } })
    versions.push({ height: h, recordCount: h * perVersion, contributions: [contribution] } as unknown as VersionEntry)
  }
  const db = {
    versions: { at: async (_id: string, h: number) => versions[h - 1] },
    contributions: { get: async (cid: string) => contributions.get(cid) },
    dataset: { positionsOf: async (_digest: Uint8Array, hashes: Uint8Array[]) => hashes.map(x => positions.get(Buffer.from(x).toString('hex'))) }
  } as unknown as StateDatabase
  const helia = { blockstore: { get: async function * (cid: CID) { yield blocks.get(cid.toString()) as Uint8Array } } } as unknown as Helia
  const d = { id: 'datanet-b', digest: '0x' + 'cd'.repeat(32), manifest: { attribution: {} } } as unknown as FollowedDatanet
  return { db, helia, d, texts }
}

test('AttributionService: versions indexed on the worker attribute as versions indexed inline', async () => {
  const tmp = tempDir()
  const { db, helia, d, texts } = world(6, 40)
  const warnings: string[] = []
  const logger = pino({ level: 'warn' }, { write: (line: string) => { warnings.push(line) } })
  const make = (sub: string, inlineTokens: number): AttributionService => new AttributionService({ db, helia, dir: join(tmp.dir, sub), logger, segments: { merge: false }, builder: { inlineTokens } })
  const worker = make('w', 0)
  const inline = make('i', Number.MAX_SAFE_INTEGER)
  try {
    await worker.follow(d)
    await inline.follow(d)
    assert.is(worker.latestHeight(d), 6)
    const output = `Well, ${texts[7] as string} and ${texts[200] as string}`
    for (const h of [1, 3, 6]) {
      const a = await worker.attribute(d, h, output, null, 10n ** 18n)
      const b = await inline.attribute(d, h, output, null, 10n ** 18n)
      assert.equal(a, b, `version ${h}`)
    }
    assert.ok(((await worker.attribute(d, 6, output, null, 10n ** 18n))?.contributors.length ?? 0) > 0, 'the output credits someone')
    assert.ok(existsSync(join(tmp.dir, 'w', d.digest.slice(2), `${'6'.padStart(10, '0')}.seg`)), 'the worker wrote version 6\'s segment file')
    // the worker's segments were used, not rebuilt here after a failure
    assert.equal(warnings, [])
  } finally {
    await worker.stop()
    await inline.stop()
    tmp.remove()
  }
})

test('AttributionService: a preview that names no version, asked while the newest final version is being indexed, waits for it, within a bound (it said "no final version yet")', async () => {
  const tmp = tempDir()
  const { db, helia, d, texts } = world(2, 40)
  const versions = db.versions as unknown as { at: (id: string, h: number) => Promise<VersionEntry | undefined> }
  const at = versions.at
  let final = 0
  versions.at = async (id, h) => h <= final ? await at(id, h) : undefined
  const service = new AttributionService({ db, helia, dir: tmp.dir, logger: pino({ level: 'silent' }), segments: { merge: false }, builder: { inlineTokens: 0 } })
  try {
    await service.follow(d)
    assert.is(service.finalHeight(d), 0, 'nothing final yet')
    assert.is(await service.indexedWithin(d, 1, 50), false, 'a version not final is not waited for beyond the bound')
    for (const height of [1, 2]) {
      final = height
      const indexed = service.onFinal(d, await at(d.id, height))
      // what the preview route attributes against when the request names no version
      assert.is(service.finalHeight(d), height, `version ${height} is final, its index not built yet`)
      assert.is(await service.indexedWithin(d, height, 30_000), true, 'the route waits for its index (a 503 after 10 s)')
      const result = await service.attribute(d, service.finalHeight(d), `So ${texts[height * 40 - 1] as string}.`, null, 10n ** 18n)
      assert.ok((result?.contributors.length ?? 0) > 0, `version ${height}'s records are credited`)
      await indexed
    }
  } finally {
    await service.stop()
    tmp.remove()
  }
})

test('AttributionService: an extension of the index that fails is reported to previews (not "being built" for ever) and tried again until it succeeds', async () => {
  const tmp = tempDir()
  const { db, helia, d, texts } = world(2, 40)
  const get = helia.blockstore.get.bind(helia.blockstore)
  let broken = true
  helia.blockstore.get = ((cid: CID, ...rest: unknown[]) => {
    if (broken) throw new Error('block store unreadable')
    return (get as (...a: unknown[]) => unknown)(cid, ...rest)
  }) as typeof helia.blockstore.get
  const service = new AttributionService({ db, helia, dir: tmp.dir, logger: pino({ level: 'silent' }), segments: { merge: false }, builder: { inlineTokens: 0 }, retryMs: 50 })
  try {
    // a node whose index cannot be built still starts: follow does not throw (it did, before consensus was followed)
    await service.follow(d)
    await service.onFinal(d, await db.versions.at(d.id, 1))
    assert.is(service.latestHeight(d), 0)
    assert.is(await service.indexedWithin(d, 1, 5_000), false, 'not waited for: the extension has failed')
    const failure = service.indexFailure(d, 1)
    assert.is(failure?.height, 1)
    assert.match(failure?.message ?? '', /block store unreadable/)
    broken = false
    // the retry extends it without another final version
    await waitFor(() => service.latestHeight(d) === 2, { timeoutMs: 10_000, what: 'the failed extension tried again', intervalMs: 20 })
    assert.is(service.indexFailure(d, 2), undefined)
    const result = await service.attribute(d, 2, `So ${texts[79] as string}.`, null, 10n ** 18n)
    assert.ok((result?.contributors.length ?? 0) > 0)
  } finally {
    await service.stop()
    tmp.remove()
  }
})

/**
 * A world of `heights` versions whose datanet has limits (the near-duplicate check reads
 * them), only version 1 final, and the shards of versions `heldBack` held back until
 * `release()`: their index cannot be built meanwhile. `finalize(h)` makes versions up to h readable.
 */
async function heldBackWorld (heights: number, heldBack: number[]): Promise<ReturnType<typeof world> & { release: () => void, finalize: (h: number) => void, at: (h: number) => Promise<VersionEntry | undefined> }> {
  const w = world(heights, 40)
  const d = { ...w.d, manifest: { ...w.d.manifest, limits: {} } } as unknown as FollowedDatanet
  const versions = w.db.versions as unknown as { at: (id: string, h: number) => Promise<VersionEntry | undefined> }
  const at = versions.at
  let final = 1
  versions.at = async (id, h) => h <= final ? await at(id, h) : undefined
  const held = new Set<string>()
  for (const h of heldBack) for (const s of (await w.db.contributions.get((await at(d.id, h))!.contributions[0]!))!.contribution.shards as string[]) held.add(s)
  let release: () => void = () => {}
  const released = new Promise<void>(resolve => { release = resolve })
  const get = w.helia.blockstore.get.bind(w.helia.blockstore)
  w.helia.blockstore.get = (async function * (cid: CID, ...rest: unknown[]) {
    if (held.has(cid.toString())) await released
    yield * (get as (...a: unknown[]) => AsyncIterable<Uint8Array>)(cid, ...rest)
  }) as typeof w.helia.blockstore.get
  return { ...w, d, release: () => { release() }, finalize: h => { final = h }, at: async h => await at(d.id, h) }
}

const recordOf = (text: string): Uint8Array => new TextEncoder().encode(canonicalJson({ text }))

test('AttributionService: the near-duplicate check waits for the newest final version\'s index within a bound, then judges against the newest built (every contribution received while a version was indexed waited for it: no verdict, no version for 16 s under load)', async () => {
  const tmp = tempDir()
  const { db, helia, d, texts, release, finalize, at } = await heldBackWorld(2, [2])
  const service = new AttributionService({ db, helia, dir: tmp.dir, logger: pino({ level: 'silent' }), segments: { merge: false }, builder: { inlineTokens: 0 }, coveredWaitMs: 100 })
  const asked = [recordOf(texts[5] as string), recordOf(texts[45] as string), recordOf('nothing like any record of the corpus at all, not one word of it')]
  try {
    await service.follow(d)
    assert.is(service.latestHeight(d), 1)
    finalize(2)
    const indexing = service.onFinal(d, await at(2))
    const answer = await Promise.race([service.covered(d, asked), new Promise<'waited'>(resolve => setTimeout(() => { resolve('waited') }, 5_000))])
    assert.equal(answer, [true, false, false], 'answered while version 2 is indexed: version 1\'s record is covered, version 2\'s not yet')
    release()
    await indexing
    assert.is(service.latestHeight(d), 2)
    assert.equal(await service.covered(d, asked), [true, true, false], 'once built, version 2\'s record is covered')
  } finally {
    release()
    await service.stop()
    tmp.remove()
  }
})

test('AttributionService: the near-duplicate check judges without at most `coveredLag` final versions; further behind, it waits for the index in turns (its builds run in the background, and an overloaded node could leave them far behind)', async () => {
  const tmp = tempDir()
  const { db, helia, d, texts, release, finalize, at } = await heldBackWorld(3, [2, 3])
  const service = new AttributionService({ db, helia, dir: tmp.dir, logger: pino({ level: 'silent' }), segments: { merge: false }, builder: { inlineTokens: 0 }, coveredWaitMs: 50, coveredLag: 1, lagWaitMs: 1_000 })
  try {
    await service.follow(d)
    finalize(3)
    const [v2, v3] = [await at(2), await at(3)]
    const indexing = Promise.all([service.onFinal(d, v2), service.onFinal(d, v3)])
    assert.is(service.finalHeight(d), 3)
    assert.is(service.latestHeight(d), 1)
    // two final versions unindexed, one allowed: no answer while the index is held back
    const check = service.covered(d, [recordOf(texts[5] as string), recordOf(texts[45] as string)])
    const early = await Promise.race([check.then(() => 'answered'), new Promise<string>(resolve => setTimeout(() => { resolve('waiting') }, 500))])
    assert.is(early, 'waiting', 'it waits for the index while it is more than one version behind')
    // the turn ends with the index still behind: judged against version 1's, and the next check does not wait
    assert.equal(await check, [true, false])
    const next = await Promise.race([service.covered(d, [recordOf(texts[45] as string)]), new Promise<string>(resolve => setTimeout(() => { resolve('waiting') }, 500))])
    assert.equal(next, [false], 'no second turn at once')
    release()
    await indexing
    assert.is(service.latestHeight(d), 3)
  } finally {
    release()
    await service.stop()
    tmp.remove()
  }
})

test.run()
