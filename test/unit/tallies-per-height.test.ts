/**
 * Tallies cost what their changes cost, not accounts × heights (node/services/consensus/
 * versions.ts, src/storage/repositories/versions.ts): every height built the tree of every
 * account to propose, check and finalize its version (0.5 s at 10,000 accounts: a datanet
 * whose fees reached many contributors slowed at every height, and a proposer past its
 * timeout loses the round), and stored a copy of every account (750 KB a height at 10,000).
 * A version without inference events carries its parent's attribution: nothing is rebuilt
 * or stored for it, and a version that lies about it is still refused.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { join } from 'node:path'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 as sha256Hasher } from 'multiformats/hashes/sha2'
import { toHex } from '../../src/codec/hash.ts'
import { tallyTreesBuilt, talliesFromJSON } from '../../src/attribution/tallies.ts'
import { Repository, jsonCodec } from '../../src/storage/repository.ts'
import { StateDatabase, type InferenceEntry } from '../../src/storage/state-db.ts'
import { DatanetVersions, type InferenceSource } from '../../node/services/consensus/versions.ts'
import { versionValue, type VersionValue } from '../../src/consensus/version.ts'
import { createLogger } from '../../node/logger.ts'
import { tempDir } from '../helpers/tmp.ts'
import type { FollowedDatanet } from '../../node/services/datanets.ts'
import type { Helia } from '@helia/interface'
import { binding, contribution, datanet, memoryHelia, wallets } from '../helpers/versions-world.ts'

const logger = createLogger({ level: 'silent', format: 'json' })
const ACCOUNTS = 2000
const HEIGHTS = 8

/** One event at height 2 that pays ACCOUNTS accounts. */
async function feeEvent (d: FollowedDatanet): Promise<InferenceEntry> {
  const cid = CID.create(1, raw.code, await sha256Hasher.digest(new TextEncoder().encode('event')))
  const shares = Array.from({ length: ACCOUNTS }, (_, i) => ({ address: '0x' + (i + 1).toString(16).padStart(40, '0'), amount: String(1000 + i) }))
  return { cid: cid.toString(), datanet: d.id, eventId: '0x' + '11'.repeat(32), model: 'm', version: 1, operator: wallets[0]!.address, nonce: '1', fee: '1', shares, resultHash: '0x', receivedAt: 1, included: null }
}

/** Events as the inference service gives them: `live` holds those known here so far. */
function source (live: InferenceEntry[]): InferenceSource {
  return {
    pending: async () => live.filter(e => e.included === null),
    ensure: async (_d, cid) => live.find(e => e.cid === cid),
    markIncluded: async (cids, height) => { for (const e of live) if (cids.includes(e.cid)) e.included = height }
  }
}

/** The heights at which a store holds tallies for `d`. */
async function talliesHeights (db: StateDatabase, d: FollowedDatanet): Promise<number[]> {
  const out: number[] = []
  const repo = new Repository(db.db, 'tallies', jsonCodec<unknown>())
  for await (const [key] of repo.entries({ gte: `${d.id}/`, lt: `${d.id}/g` })) out.push(parseInt(key.slice(d.id.length + 1), 16))
  return out
}

interface World { dir: string, d: FollowedDatanet, helia: Helia, event: InferenceEntry, values: VersionValue[], trees: number[] }

/** HEIGHTS versions made on a validator's store: a contribution each, and at height 2 the event; the trees each height built. */
async function made (dir: string): Promise<World> {
  const d = await datanet()
  const helia = memoryHelia()
  const event = await feeEvent(d)
  const live: InferenceEntry[] = []
  const db = new StateDatabase(join(dir, 'validator'))
  await db.open()
  const values: VersionValue[] = []
  const trees: number[] = []
  try {
    const versions = new DatanetVersions({ db, helia, binding, logger, inferences: source(live) }, d, logger)
    await versions.load()
    for (let h = 1; h <= HEIGHTS; h++) {
      if (h === 2) live.push({ ...event })
      await contribution(db, helia, d, [`line ${h}`], wallets.slice(0, 3))
      const before = tallyTreesBuilt()
      const value = await versions.build(h, d.validators, wallets[0]!.address, h)
      assert.ok(value !== undefined)
      await versions.finalize(0, value, [], h)
      trees.push(tallyTreesBuilt() - before)
      values.push(value)
    }
    assert.equal(await talliesHeights(db, d), [2], 'tallies stored where the event changed them, and nowhere else')
    assert.is(talliesFromJSON((await db.tallies.at(d.id, 5))?.tallies ?? []).size, ACCOUNTS, 'version 5\'s tallies: those of version 2')
    assert.is(talliesFromJSON((await db.tallies.at(d.id, 1))?.tallies ?? []).size, 0)
  } finally {
    await db.close()
  }
  return { dir, d, helia, event, values, trees }
}

test('a version without inference events builds no tally tree and stores no tallies; it carries its parent\'s root', async () => {
  const tmp = tempDir()
  try {
    const { values, trees } = await made(tmp.dir)
    assert.equal(trees.slice(2), Array(HEIGHTS - 2).fill(0), 'no tree for versions 3.. (no events)')
    assert.ok((trees[1] as number) >= 1, 'the event\'s version builds one')
    const root2 = toHex(values[1]!.version.attributionRoot)
    assert.is.not(root2, toHex(values[0]!.version.attributionRoot))
    for (const v of values.slice(2)) {
      assert.is(toHex(v.version.attributionRoot), root2)
      assert.is(v.version.totalAttributed, values[1]!.version.totalAttributed)
    }
  } finally {
    tmp.remove()
  }
})

test('attack: a version without events that changes the attribution root or total is refused, by a check and by catch-up alike', async () => {
  const tmp = tempDir()
  try {
    const { d, helia, event, values } = await made(tmp.dir)
    const forgeries = [
      await versionValue({ ...values[4]!.version, attributionRoot: new Uint8Array(32).fill(7) }),
      await versionValue({ ...values[4]!.version, totalAttributed: (BigInt(values[4]!.version.totalAttributed) + 1n).toString() })
    ]
    // a validator checking each proposal
    const db = new StateDatabase(join(tmp.dir, 'checker'))
    await db.open()
    try {
      const versions = new DatanetVersions({ db, helia, binding, logger, inferences: source([{ ...event }]) }, d, logger)
      await versions.load()
      for (const [i, value] of values.entries()) {
        await contribution(db, helia, d, [`line ${i + 1}`], [])
        if (i === 4) for (const forged of forgeries) assert.is(await versions.problem(forged, d.validators), 'attribution root does not recompute')
        const before = tallyTreesBuilt()
        assert.is(await versions.problem(value, d.validators), undefined, `version ${i + 1}`)
        if (i >= 2) assert.is(tallyTreesBuilt(), before, `no tree to check version ${i + 1}`)
        await versions.finalize(0, value, [], i + 1)
      }
      assert.equal(await talliesHeights(db, d), [2])
    } finally {
      await db.close()
    }
    // a node catching up the range
    const late = new StateDatabase(join(tmp.dir, 'late'))
    await late.open()
    try {
      // its contributions as gossip brought them
      for (let h = 1; h <= HEIGHTS; h++) await contribution(late, helia, d, [`line ${h}`], [])
      const versions = new DatanetVersions({ db: late, helia, binding, logger, inferences: source([{ ...event }]) }, d, logger)
      await versions.load()
      const items = values.map(value => ({ round: 0, value, certificate: [] }))
      const forged = await versions.finalizeRange([...items.slice(0, 4), { ...items[4]!, value: forgeries[0]! }], () => d.validators, 1)
      assert.equal(forged.problem, { height: 5, why: 'attribution root does not recompute' })
      assert.is(forged.applied.length, 4)
      const rest = await versions.finalizeRange(items.slice(4), () => d.validators, 1)
      assert.is(rest.problem, undefined)
      assert.is(versions.last?.height, HEIGHTS)
      assert.equal(await talliesHeights(late, d), [2])
      assert.is(talliesFromJSON((await late.tallies.at(d.id, HEIGHTS))?.tallies ?? []).size, ACCOUNTS)
    } finally {
      await late.close()
    }
  } finally {
    tmp.remove()
  }
})

test.run()
