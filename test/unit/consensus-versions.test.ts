/**
 * A datanet's versions as consensus builds and applies them (node/services/consensus/
 * versions.ts over a real level store and an in-memory block store):
 *  - finalization is one atomic batch: a crash between any two of its steps leaves all of
 *    it or none, and the restarted node makes the same version final (on main, the dataset
 *    records were written before the version: a crash between the two marked the records
 *    present, the root never recomputed and the node stayed at that height);
 *  - a contribution is proposed only with an accept certificate from members of the
 *    height's set (a node that learnt of an acceptance without the verdicts — from a
 *    proposal, or with a departed validator's verdicts — never proposes a version every
 *    other validator must refuse).
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { join } from 'node:path'
import { CID } from 'multiformats/cid'
import { fromHex, toHex } from '../../src/codec/hash.ts'
import { Repository } from '../../src/storage/repository.ts'
import { verifyProof } from '../../src/merkle/tree.ts'
import { recordProof } from '../../node/services/record-proofs.ts'
import type { ValidatorSet } from '../../src/datanet/manifest.ts'
import { StateDatabase } from '../../src/storage/state-db.ts'
import { DatanetVersions } from '../../node/services/consensus/versions.ts'
import { versionValue, type VersionValue } from '../../src/consensus/version.ts'
import { MAX_VERSION_BYTES, MAX_VERSION_RECORDS, fitVersion, versionSizeProblem } from '../../src/consensus/proposal.ts'
import { createLogger } from '../../node/logger.ts'
import { tempDir } from '../helpers/tmp.ts'
import type { FollowedDatanet } from '../../node/services/datanets.ts'
import type { Helia } from '@helia/interface'
import { memoryPins } from '../helpers/memory-pins.ts'
import { binding, contribution, datanet, memoryHelia, wallets } from '../helpers/versions-world.ts'

const logger = createLogger({ level: 'silent', format: 'json' })
/** Raw bytes in and out: a repository to read a store's dataset writes as stored. */
const RAW = { encodeKey: (k: Uint8Array) => k, decodeKey: (k: Uint8Array) => k, encodeValue: (v: Uint8Array) => v, decodeValue: (v: Uint8Array) => v }

async function withStore (fn: (ctx: { dir: string, d: FollowedDatanet, helia: Helia }) => Promise<void>): Promise<void> {
  const tmp = tempDir()
  try {
    await fn({ dir: join(tmp.dir, 'state'), d: await datanet(), helia: memoryHelia() })
  } finally {
    tmp.remove()
  }
}

/** A store opened for `fn` (and closed after it) in `withStore`'s directory. */
async function withDb (fn: (ctx: { dir: string, db: StateDatabase, d: FollowedDatanet, helia: Helia }) => Promise<void>): Promise<void> {
  await withStore(async ({ dir, d, helia }) => {
    const db = new StateDatabase(dir)
    await db.open()
    try {
      await fn({ dir, db, d, helia })
    } finally {
      await db.close()
    }
  })
}

test('a final version pins its own block only: the history its parent link reaches is pinned already', async () => {
  // Helia's pins.add walks the whole DAG and rewrites each block's pin record (with every
  // pinner in it): pinning each version recursively walked the whole history through the
  // parent links, so finalizing took longer at every height (~40 s at height 55 of a soak)
  await withStore(async ({ dir, d, helia }) => {
    const pinned = memoryPins()
    const counting = { ...helia, ...pinned } as unknown as Helia
    const db = new StateDatabase(dir)
    await db.open()
    try {
      const versions = new DatanetVersions({ db, helia: counting, binding, logger }, d, logger)
      await versions.load()
      for (const height of [1, 2]) {
        await contribution(db, helia, d, [`line ${height}`], wallets.slice(0, 3))
        const value = await versions.build(height, d.validators, wallets[0]!.address, height)
        assert.ok(value !== undefined)
        await versions.finalize(0, value, [], height)
        assert.equal(pinned.pinOf(value.cid), { depth: 0, metadata: {} }, `version ${height} pinned alone`)
        // the block its pin names, nothing its links reach: the parent's record names its own pin only
        if (value.version.parent !== null) assert.is(pinned.pinnersOf(value.version.parent), 1)
        assert.is(pinned.records.size, 2 * height, 'a pin and a block record for each version')
      }
    } finally {
      await db.close()
    }
  })
})

test('finalization stores the tree nodes a proof needs: every record\'s proof at every version from O(log n) nodes, no leaf scan', async () => {
  await withDb(async ({ db, d, helia }) => {
    const versions = new DatanetVersions({ db, helia, binding, logger }, d, logger)
    await versions.load()
    const hashes: string[] = []
    for (const height of [1, 2, 3]) {
      // 1, 4 and 6 more records: trees of 1, 5 and 11 leaves, cut at every kind of edge
      const lines = Array.from({ length: [1, 4, 6][height - 1] as number }, (_, i) => `version ${height} line ${i}`)
      await contribution(db, helia, d, lines, wallets.slice(0, 3))
      const value = await versions.build(height, d.validators, wallets[0]!.address, height)
      assert.ok(value !== undefined)
      await versions.finalize(0, value, [], height)
    }
    const digest = fromHex(d.digest, 32)
    hashes.push(...(await db.dataset.leafRange(digest, 100)).map(h => toHex(h)))
    assert.is(hashes.length, 11)
    // a leaf scan would be the old O(n) path: make it fail loudly
    const leafRange = db.dataset.leafRange.bind(db.dataset)
    db.dataset.leafRange = () => { throw new Error('proof read every leaf') }
    try {
      for (const [height, size] of [[1, 1], [2, 5], [3, 11]] as const) {
        for (let position = 0; position < size; position++) {
          const p = await recordProof(db, d.id, d.digest, hashes[position] as string, height)
          assert.is(p.position, position)
          assert.is(p.recordCount, size)
          assert.ok(verifyProof(p.proof.map(x => fromHex(x, 32)), fromHex(p.datasetRoot, 32), fromHex(hashes[position] as string, 32)), `version ${height}, record ${position}`)
        }
      }
    } finally {
      db.dataset.leafRange = leafRange
    }
    // a version finalized before the nodes were stored still gets its proof, from the leaves
    const treeNodes = new Repository(db.db, 'tree-nodes', RAW)
    for await (const [key] of treeNodes.entries()) await treeNodes.delete(key)
    const old = await recordProof(db, d.id, d.digest, hashes[4] as string, 3)
    assert.ok(verifyProof(old.proof.map(x => fromHex(x, 32)), fromHex(old.datasetRoot, 32), fromHex(hashes[4] as string, 32)))
  })
})

const STEPS = ['before-block', 'after-block', 'before-batch', 'after-batch'] as const

for (const step of STEPS) {
  test(`a crash at "${step}" of finalizing leaves all or nothing, and the restarted node makes the same version final`, async () => {
    await withStore(async ({ dir, d, helia }) => {
      let db = new StateDatabase(dir)
      await db.open()
      await contribution(db, helia, d, ['one', 'two', 'three'], wallets.slice(0, 3))
      let versions = new DatanetVersions({ db, helia, binding, logger, crashPoint: s => { if (s === step) throw new Error(`crash at ${s}`) } }, d, logger)
      await versions.load()
      const value = await versions.build(1, d.validators, wallets[0]!.address, 1)
      assert.ok(value !== undefined)
      await versions.finalize(0, value, [], 1).then(() => assert.unreachable('no crash'), err => assert.match((err as Error).message, /crash at/))
      await db.close()
      // restart
      db = new StateDatabase(dir)
      await db.open()
      versions = new DatanetVersions({ db, helia, binding, logger }, d, logger)
      await versions.load()
      const applied = versions.nextHeight === 2
      assert.is(applied, step === 'after-batch', 'the batch is the only point where the version becomes final')
      const marked = (await db.contributions.get(value.version.contributions[0]!.cid.toString()))?.version
      assert.is(marked, applied ? 1 : null, 'the contribution is marked exactly when the version is stored')
      if (!applied) {
        // nothing half-written: the same version recomputes and is made final
        const again = await versions.build(1, d.validators, wallets[0]!.address, 1)
        assert.is(again?.cid.toString(), value.cid.toString(), 'the same version recomputes after the crash')
        assert.is(await versions.problem(value, d.validators), undefined, 'the decided version still verifies')
        await versions.finalize(0, value, [], 1)
      }
      assert.is(versions.last?.recordCount, 3)
      assert.is(versions.last?.datasetRoot, toHex(value.version.datasetRoot))
      await db.close()
    })
  })
}

test('records written ahead of their version (a piece of a large version, torn by a crash) are not the dataset: the decided version still verifies and is made final', async () => {
  await withDb(async ({ db, d, helia }) => {
    await contribution(db, helia, d, ['a', 'b', 'c'], wallets.slice(0, 3))
    const versions = new DatanetVersions({ db, helia, binding, logger }, d, logger)
    await versions.load()
    const value = await versions.build(1, d.validators, wallets[0]!.address, 1)
    assert.ok(value !== undefined)
    // a piece of its records on disk without the version (on 5940662, main's readers took
    // any stored position for the dataset: the version no longer verified, the height was stuck)
    const { splitShard } = await import('../../src/datanet/shard.ts')
    const shard = (await helia.blockstore.get(CID.parse(((await db.contributions.get(value.version.contributions[0]!.cid.toString()))!.contribution.shards as string[])[0]!)).next()).value as Uint8Array
    await db.batch(db.dataset.appendOps(fromHex(d.digest, 32), 0, splitShard(shard).map(r => r.hash).slice(0, 2), []))
    assert.is(await versions.problem(value, d.validators), undefined, 'the decided version still verifies')
    assert.is((await versions.build(1, d.validators, wallets[0]!.address, 1))?.cid.toString(), value.cid.toString(), 'and is proposed alike')
    await versions.finalize(0, value, [], 1)
    assert.is(versions.last?.recordCount, 3)
    assert.is(versions.last?.datasetRoot, toHex(value.version.datasetRoot))
  })
})

/** The largest batch `db` writes while `fn` runs, in operations. */
async function largestBatch (db: StateDatabase, fn: () => Promise<void>): Promise<number> {
  const level = db.db as unknown as { batch: (...args: unknown[]) => unknown }
  const batch = level.batch
  let max = 0
  level.batch = function (this: unknown, ...args: unknown[]) {
    if (Array.isArray(args[0])) max = Math.max(max, args[0].length)
    return batch.apply(this, args)
  }
  try {
    await fn()
  } finally {
    level.batch = batch
  }
  return max
}

test('a large version is written in pieces of bounded size, then its own batch (one batch of a 100,000-record contribution held ~8 buffers a record: every node reached its heap limit)', async () => {
  await withStore(async ({ dir, d, helia }) => {
    const lines = Array.from({ length: 20_000 }, (_, i) => `r${i}`)
    const db = new StateDatabase(dir)
    await db.open()
    try {
      await contribution(db, helia, d, lines, wallets.slice(0, 3))
      const versions = new DatanetVersions({ db, helia, binding, logger, pieceRecords: 1000 }, d, logger)
      await versions.load()
      const value = await versions.build(1, d.validators, wallets[0]!.address, 1)
      assert.ok(value !== undefined)
      const largest = await largestBatch(db, async () => { await versions.finalize(0, value, [], 1) })
      // a record's position and leaf, about one tree node a record, and the version's own writes
      assert.ok(largest < 2 * 1000 + 16, `the largest batch holds ${largest} writes, not a piece's < 2,000`)
      assert.is(versions.last?.recordCount, 20_000)
      const p = await recordProof(db, d.id, d.digest, toHex((await db.dataset.leavesAt(fromHex(d.digest, 32), [12_345]))[0]!), 1)
      assert.ok(verifyProof(p.proof.map(x => fromHex(x, 32)), fromHex(p.datasetRoot, 32), fromHex(p.recordHash, 32)), 'proofs read the nodes the pieces stored')
    } finally {
      await db.close()
    }
  })
})

test('a crash after a piece of a large version leaves it not final, and the restarted node makes the same version final', async () => {
  await withStore(async ({ dir, d, helia }) => {
    const lines = Array.from({ length: 50 }, (_, i) => `p${i}`)
    let db = new StateDatabase(dir)
    await db.open()
    await contribution(db, helia, d, lines, wallets.slice(0, 3))
    let pieces = 0
    let versions = new DatanetVersions({ db, helia, binding, logger, pieceRecords: 8, crashPoint: s => { if (s === 'after-piece' && ++pieces === 3) throw new Error('crash after a piece') } }, d, logger)
    await versions.load()
    const value = await versions.build(1, d.validators, wallets[0]!.address, 1)
    assert.ok(value !== undefined)
    await versions.finalize(0, value, [], 1).then(() => assert.unreachable('no crash'), err => assert.match((err as Error).message, /crash after a piece/))
    await db.close()
    db = new StateDatabase(dir)
    await db.open()
    try {
      versions = new DatanetVersions({ db, helia, binding, logger, pieceRecords: 8 }, d, logger)
      await versions.load()
      assert.is(versions.nextHeight, 1, 'not final')
      assert.is((await db.dataset.leafRange(fromHex(d.digest, 32), 100)).length, 12, 'three pieces (4 records each: 8 writes) were written ahead')
      assert.is(await versions.problem(value, d.validators), undefined, 'the decided version still verifies')
      await versions.finalize(0, value, [], 1)
      assert.is(versions.last?.recordCount, 50)
      assert.is(versions.last?.datasetRoot, toHex(value.version.datasetRoot))
    } finally {
      await db.close()
    }
  })
})

test('the same contributions proposed again in a later round (another timestamp, another CID) are not appended again: a version of 300,000 records took longer to check than a round lasts, ten rounds for one height', async () => {
  await withDb(async ({ db, d, helia }) => {
    const cid = await contribution(db, helia, d, ['x', 'y', 'z'], wallets.slice(0, 3))
    const shard = ((await db.contributions.get(cid))!.contribution.shards as string[])[0]!
    let reads = 0
    const get = helia.blockstore.get.bind(helia.blockstore)
    helia.blockstore.get = ((c: CID, ...rest: unknown[]) => { if (c.toString() === shard) reads++; return (get as (...a: unknown[]) => unknown)(c, ...rest) }) as typeof helia.blockstore.get
    const versions = new DatanetVersions({ db, helia, binding, logger }, d, logger)
    await versions.load()
    const round0 = await versions.build(1, d.validators, wallets[0]!.address, 1)
    assert.ok(round0 !== undefined)
    assert.is(reads, 1, 'built once')
    const round1 = await versions.build(1, d.validators, wallets[1]!.address, 2)
    assert.ok(round1 !== undefined && round1.cid.toString() !== round0.cid.toString(), 'another value')
    assert.is(await versions.problem(round0, d.validators), undefined)
    assert.is(await versions.problem(round1, d.validators), undefined)
    assert.is(reads, 1, 'its records were appended once for the height')
    // a wrong root is still refused (the tree is reused, not the verdict)
    const forged = await versionValue({ ...round1.version, recordCount: 2 })
    assert.is(await versions.problem(forged, d.validators), 'dataset root')
    await versions.finalize(0, round1, [], 2)
    assert.is(versions.last?.recordCount, 3)
    // the next height appends anew
    await contribution(db, helia, d, ['w'], wallets.slice(0, 3))
    const next = await versions.build(2, d.validators, wallets[0]!.address, 3)
    assert.is(next?.version.recordCount, 4)
  })
})

/** Every dataset write of a store (positions, leaves, tree nodes), as hex pairs. */
async function datasetWrites (db: StateDatabase): Promise<string[]> {
  const out: string[] = []
  for (const name of ['dataset', 'leaves', 'tree-nodes']) {
    const repo = new Repository(db.db, name, RAW)
    for await (const [k, v] of repo.entries()) out.push(`${name} ${toHex(k)} ${toHex(v)}`)
  }
  return out
}

test('a version built or checked here is finalized from the record hashes kept then (its shards are not read and hashed again), writing what a finalize that appends anew writes; past the cache\'s bound it appends anew', async () => {
  await withStore(async ({ dir, d, helia }) => {
    let reads = 0
    const get = helia.blockstore.get.bind(helia.blockstore)
    helia.blockstore.get = ((c: CID, ...rest: unknown[]) => { reads++; return (get as (...a: unknown[]) => unknown)(c, ...rest) }) as typeof helia.blockstore.get
    // three stores: finalized after a build (the kept hashes), without one (appended anew), after a build past the bound
    const stores = await Promise.all(['kept', 'anew', 'bounded'].map(async name => { const db = new StateDatabase(join(dir, name)); await db.open(); return db }))
    try {
      // a duplicate inside the first contribution, records of the first again in the second, shards of 2 records
      const heights = [['a', 'b', 'c', 'a', 'd'], ['c', 'b', ...Array.from({ length: 30 }, (_, i) => `n${i}`)]]
      const versions = stores.map((db, i) => new DatanetVersions({ db, helia, binding, logger, pieceRecords: 2, appendCacheRecords: i === 2 ? 3 : undefined }, d, logger))
      for (const v of versions) await v.load()
      for (const [h, lines] of heights.entries()) {
        for (const db of stores) await contribution(db, helia, d, lines, wallets.slice(0, 3), 'accepted', undefined, 2)
        reads = 0
        const value = await versions[0]!.build(h + 1, d.validators, wallets[0]!.address, h + 1)
        assert.ok(value !== undefined)
        const built = reads
        assert.ok(built > 0)
        await versions[0]!.finalize(0, value, [], h + 1)
        assert.is(reads, built, `height ${h + 1}: its shards were read again to finalize it`)
        await versions[1]!.finalize(0, value, [], h + 1)
        assert.ok(reads > built, 'appended anew')
        reads = 0
        assert.is(await versions[2]!.problem(value, d.validators), undefined)
        const checked = reads
        await versions[2]!.finalize(0, value, [], h + 1)
        assert.ok(reads > checked, `height ${h + 1}: past the bound, appended anew`)
        for (const v of versions) assert.is(v.last?.datasetRoot, toHex(value.version.datasetRoot))
      }
      assert.is(versions[0]!.last?.recordCount, 34)
      const kept = await datasetWrites(stores[0]!)
      // a position and a leaf a record, and the inner nodes from STORED_NODE_LEVEL up (of 16 and 32 leaves)
      assert.is(kept.length, 2 * 34 + 3)
      assert.equal(await datasetWrites(stores[1]!), kept)
      assert.equal(await datasetWrites(stores[2]!), kept)
    } finally {
      for (const db of stores) await db.close()
    }
  })
})

test('a contribution is proposed only with an accept certificate of the height\'s set', async () => {
  await withStore(async ({ dir, d, helia }) => {
    const db = new StateDatabase(dir)
    await db.open()
    // accepted here (e.g. learnt from a proposal) but with one verdict only: on main it was proposed, and every validator refused the proposal
    const lacking = await contribution(db, helia, d, ['x'], wallets.slice(0, 1))
    const full = await contribution(db, helia, d, ['y'], wallets.slice(0, 3))
    const versions = new DatanetVersions({ db, helia, binding, logger }, d, logger)
    await versions.load()
    const value = await versions.build(1, d.validators, wallets[0]!.address, 1)
    assert.equal(value?.version.contributions.map(c => c.cid.toString()), [full])
    assert.is(await versions.problem(value!, d.validators), undefined)
    assert.ok(!(await versions.candidates(d.validators)).some(c => c.entry.cid === lacking))
    // a validator left: under the set of the including height its verdict does not count
    const departed = wallets[0]!.address
    const after: ValidatorSet = { validators: d.validators.validators.filter(v => v.address !== departed), total: 300n }
    const c = await versions.candidates(after)
    assert.equal(c.map(x => x.entry.cid), [full], 'two of three remaining members accepted it: still a quorum')
    assert.is(c[0]?.certificate.length, 2, 'the departed validator\'s verdict is left out of the certificate')
    const stricter: ValidatorSet = { validators: [...after.validators, { address: '0x' + '1'.repeat(40), stake: 300n }], total: 600n }
    assert.equal(await versions.candidates(stricter), [], 'not enough of the new set has accepted yet: it waits for their verdicts')
    await db.close()
  })
})

test('a version holds as many contributions as fit its bound (four of 25,000 records in one version crashed every node); a proposal over it is refused', async () => {
  await withDb(async ({ db, d, helia }) => {
    // the records each declares (what the bound reads; the shards here hold one record)
    const big = { recordCount: 25_000, byteSize: 3_000_000 }
    const cids: string[] = []
    for (const l of ['a', 'b', 'c', 'd']) cids.push(await contribution(db, helia, d, [l], wallets.slice(0, 3), 'accepted', big))
    const versions = new DatanetVersions({ db, helia, binding, logger }, d, logger)
    await versions.load()
    const value = await versions.build(1, d.validators, wallets[0]!.address, 1)
    assert.is(value?.version.contributions.length, MAX_VERSION_RECORDS / 25_000, 'the rest wait for the next version')
    // a proposer that puts all four in one version: refused by every validator
    const certificateOf = async (cid: string): Promise<Uint8Array[]> => (await db.verdicts.of(cid)).map(v => fromHex(v.bytes))
    const all = await versionValue({ ...value!.version, contributions: await Promise.all(cids.map(async cid => ({ cid: CID.parse(cid), verdicts: await certificateOf(cid) }))) })
    assert.match(await versions.problem(all, d.validators) ?? '', /100000 records: a version of several contributions adds at most 50000/)
  })
})

test('fitVersion: the longest prefix within the records and bytes bounds, the first always', () => {
  const sizes = (xs: Array<[number, number]>): Array<{ recordCount: number, byteSize: number }> => xs.map(([recordCount, byteSize]) => ({ recordCount, byteSize }))
  assert.equal(fitVersion(sizes([[MAX_VERSION_RECORDS * 3, 1], [1, 1]]), s => s).length, 1, 'a contribution larger than the bound goes alone')
  assert.equal(fitVersion(sizes([[MAX_VERSION_RECORDS - 1, 1], [1, 1], [1, 1]]), s => s).length, 2)
  assert.equal(fitVersion(sizes([[1, MAX_VERSION_BYTES], [1, 1]]), s => s).length, 1, 'bytes bound too')
  assert.equal(fitVersion(sizes(Array.from({ length: 100 }, () => [1, 1] as [number, number])), s => s).length, 64, 'at most MAX_CONTRIBUTIONS')
  assert.is(versionSizeProblem(sizes([[MAX_VERSION_RECORDS * 3, 1]])), undefined)
  assert.ok(versionSizeProblem(sizes([[MAX_VERSION_RECORDS, 1], [1, 1]])) !== undefined)
})

test('CID grinding: a record two contributions share goes to the one accepted first, whatever CID the other ground', async () => {
  await withDb(async ({ db, d, helia }) => {
    const victim = await contribution(db, helia, d, ['a passage the victim wrote', 'the victim\'s second line'], wallets.slice(0, 3))
    // the attacker copies the shared record and grinds its own line until its CID sorts first
    let attacker = ''
    for (let k = 0; attacker === '' || attacker > victim; k++) attacker = await contribution(db, helia, d, ['a passage the victim wrote', `attacker line ${k}`], wallets.slice(0, 3))
    const accepted = async (cid: string, at: number): Promise<void> => { const e = await db.contributions.get(cid); await db.contributions.put(cid, { ...e!, receivedAt: at, decidedAt: at }) }
    await accepted(victim, 10)
    await accepted(attacker, 20)
    for await (const [cid, e] of db.contributions.entries()) if (cid !== victim && cid !== attacker) await db.contributions.put(cid, { ...e, status: 'rejected' })
    const versions = new DatanetVersions({ db, helia, binding, logger }, d, logger)
    await versions.load()
    const value = await versions.build(1, d.validators, wallets[0]!.address, 1)
    assert.equal(value?.version.contributions.map(c => c.cid.toString()), [victim, attacker], 'listed as accepted, not by CID')
    assert.is(await versions.problem(value!, d.validators), undefined, 'validators take the proposer\'s order')
    await versions.finalize(0, value!, [], 1)
    // the shared record is the dataset's first: the victim's, whose contribution comes first
    assert.is(versions.last?.recordCount, 3)
  })
})

/** Versions 1..3 made final one by one on a store of their own (a validator's), for another store to catch up with. */
async function madeElsewhere (dir: string, d: FollowedDatanet, helia: Helia, lines: string[][]): Promise<Array<{ round: number, value: VersionValue, certificate: [] }>> {
  const db = new StateDatabase(dir)
  await db.open()
  try {
    const versions = new DatanetVersions({ db, helia, binding, logger }, d, logger)
    await versions.load()
    const out: Array<{ round: number, value: VersionValue, certificate: [] }> = []
    for (const [i, l] of lines.entries()) {
      await contribution(db, helia, d, l, wallets.slice(0, 3))
      const value = await versions.build(i + 1, d.validators, wallets[0]!.address, i + 1)
      assert.ok(value !== undefined)
      await versions.finalize(0, value, [], i + 1)
      out.push({ round: 0, value, certificate: [] })
    }
    return out
  } finally {
    await db.close()
  }
}

// the second shares a record with the first: within one range, records of versions not written yet count as in the dataset
const RANGE = [['one', 'two'], ['two', 'three', 'four'], ['five']]

/** A store that has RANGE's contributions as gossip would have brought them (no verdicts: the versions carry them), and RANGE's versions made elsewhere. */
async function withRange (fn: (ctx: { d: FollowedDatanet, items: Awaited<ReturnType<typeof madeElsewhere>>, db: StateDatabase, versions: DatanetVersions }) => Promise<void>): Promise<void> {
  await withStore(async ({ dir, d, helia }) => {
    const items = await madeElsewhere(dir + '-validator', d, helia, RANGE)
    const db = new StateDatabase(dir)
    await db.open()
    try {
      for (const l of RANGE) await contribution(db, helia, d, l, [])
      const versions = new DatanetVersions({ db, helia, binding, logger }, d, logger)
      await versions.load()
      await fn({ d, items, db, versions })
    } finally {
      await db.close()
    }
  })
}

test('catch-up makes a range final in one batch: the same versions, records and inclusions as one by one', async () => {
  await withRange(async ({ d, items, db, versions }) => {
    const { applied, problem } = await versions.finalizeRange(items, () => d.validators, 1)
    assert.is(problem, undefined)
    assert.equal(applied.map(e => e.height), [1, 2, 3])
    assert.is(versions.last?.cid, items[2]!.value.cid.toString())
    assert.is(versions.last?.recordCount, 5)
    assert.is(versions.last?.datasetRoot, toHex(items[2]!.value.version.datasetRoot))
    for (const [i, item] of items.entries()) {
      assert.is((await db.versions.at(d.id, i + 1))?.cid, item.value.cid.toString())
      assert.is((await db.contributions.get(item.value.version.contributions[0]!.cid.toString()))?.version, i + 1)
    }
    assert.is((await db.dataset.leafRange(fromHex(d.digest, 32), 100)).length, 5, 'each record once')
  })
})

test('catch-up: a range\'s records already in the dataset (final before the range) are not added again, nor those its earlier versions add', async () => {
  await withRange(async ({ d, items, db, versions }) => {
    // version 1 final first (one range), then 2 and 3: version 2 repeats a record of version 1
    assert.equal((await versions.finalizeRange([items[0]!], () => d.validators, 1)).applied.map(e => e.height), [1])
    const { applied, problem } = await versions.finalizeRange([items[1]!, items[2]!], () => d.validators, 1)
    assert.is(problem, undefined)
    assert.equal(applied.map(e => e.height), [2, 3])
    assert.is(versions.last?.recordCount, 5)
    assert.is(versions.last?.datasetRoot, toHex(items[2]!.value.version.datasetRoot))
    assert.is((await db.dataset.leafRange(fromHex(d.digest, 32), 100)).length, 5, 'each record once')
  })
})

test('catch-up: a version of a range that does not verify here ends it; the versions before it are final', async () => {
  await withRange(async ({ d, items, db, versions }) => {
    // version 3 claims one record more than it has
    const bad = await versionValue({ ...items[2]!.value.version, recordCount: 6 })
    const { applied, problem } = await versions.finalizeRange([items[0]!, items[1]!, { ...items[2]!, value: bad }], () => d.validators, 1)
    assert.equal(applied.map(e => e.height), [1, 2])
    assert.equal(problem, { height: 3, why: 'dataset root' })
    assert.is(versions.nextHeight, 3)
    assert.is((await db.contributions.get(items[2]!.value.version.contributions[0]!.cid.toString()))?.version, null)
  })
})

test('catch-up: a version of 60,000 records is made final (its batch once overflowed the stack: a node could never catch up a large version)', async () => {
  await withStore(async ({ dir, d, helia }) => {
    const big = [Array.from({ length: 60_000 }, (_, i) => `r${i}`)]
    const items = await madeElsewhere(dir + '-validator', d, helia, big)
    const db = new StateDatabase(dir)
    await db.open()
    try {
      await contribution(db, helia, d, big[0]!, [])
      const versions = new DatanetVersions({ db, helia, binding, logger }, d, logger)
      await versions.load()
      let result: Awaited<ReturnType<DatanetVersions['finalizeRange']>> | undefined
      const largest = await largestBatch(db, async () => { result = await versions.finalizeRange(items, () => d.validators, 1) })
      const { applied, problem } = result!
      assert.is(problem, undefined)
      assert.equal(applied.map(e => e.height), [1])
      assert.is(versions.last?.recordCount, 60_000)
      assert.ok(largest < 2 * 16_384 + 16, `written in pieces: the largest batch holds ${largest} writes`)
      assert.is(versions.last?.datasetRoot, toHex(items[0]!.value.version.datasetRoot))
    } finally {
      await db.close()
    }
  })
})

test('catch-up: a large version of a range is written ahead as it is checked, and the versions after it read it from the store (records it added are not added again)', async () => {
  await withStore(async ({ dir, d, helia }) => {
    const large = Array.from({ length: 40 }, (_, i) => `big${i}`)
    const lines = [['one', 'two'], [...large, 'two'], ['big7', 'three', 'big39'], ['four']]
    const items = await madeElsewhere(dir + '-validator', d, helia, lines)
    const db = new StateDatabase(dir)
    await db.open()
    try {
      for (const l of lines) await contribution(db, helia, d, l, [])
      const versions = new DatanetVersions({ db, helia, binding, logger, pieceRecords: 8 }, d, logger)
      await versions.load()
      const { applied, problem } = await versions.finalizeRange(items, () => d.validators, 1)
      assert.is(problem, undefined)
      assert.equal(applied.map(e => e.recordCount), [2, 42, 43, 44])
      assert.is(versions.last?.datasetRoot, toHex(items[3]!.value.version.datasetRoot))
      const p = await recordProof(db, d.id, d.digest, toHex((await db.dataset.leavesAt(fromHex(d.digest, 32), [30]))[0]!), 2)
      assert.ok(verifyProof(p.proof.map(x => fromHex(x, 32)), fromHex(p.datasetRoot, 32), fromHex(p.recordHash, 32)))
    } finally {
      await db.close()
    }
  })
})

for (const step of ['range-before-batch', 'range-after-batch'] as const) {
  test(`catch-up: a crash at "${step}" leaves the store at a range boundary, and the range applies after restart`, async () => {
    await withStore(async ({ dir, d, helia }) => {
      const items = await madeElsewhere(dir + '-validator', d, helia, RANGE)
      let db = new StateDatabase(dir)
      await db.open()
      for (const l of RANGE) await contribution(db, helia, d, l, [])
      let versions = new DatanetVersions({ db, helia, binding, logger, crashPoint: s => { if (s === step) throw new Error(`crash at ${s}`) } }, d, logger)
      await versions.load()
      await versions.finalizeRange(items, () => d.validators, 1).then(() => assert.unreachable('no crash'), err => assert.match((err as Error).message, /crash at/))
      await db.close()
      db = new StateDatabase(dir)
      await db.open()
      versions = new DatanetVersions({ db, helia, binding, logger }, d, logger)
      await versions.load()
      const written = step === 'range-after-batch'
      assert.is(versions.nextHeight, written ? 4 : 1, 'all of the range or none')
      for (const item of items) assert.is((await db.contributions.get(item.value.version.contributions[0]!.cid.toString()))?.version, written ? item.value.version.height : null)
      assert.is((await db.dataset.leafRange(fromHex(d.digest, 32), 100)).length, written ? 5 : 0)
      if (!written) {
        const { applied } = await versions.finalizeRange(items, () => d.validators, 1)
        assert.is(applied.length, 3)
      }
      assert.is(versions.last?.datasetRoot, toHex(items[2]!.value.version.datasetRoot))
      await db.close()
    })
  })
}

test.run()
