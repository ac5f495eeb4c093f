/**
 * The tally service (node/services/tallies.ts): what GET /tallies, /tallies/:address and
 * POST /claim answer, computed once per final height instead of once per address.
 */
import { join } from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { getAddress } from 'ethers'
import { TallyTree, talliesToJSON, verifyTallyProof } from '../../src/attribution/tallies.ts'
import { toHex } from '../../src/codec/hash.ts'
import { StateDatabase, type VersionEntry } from '../../src/storage/state-db.ts'
import { TallyService } from '../../node/services/tallies.ts'
import type { ChainService } from '../../node/services/chain.ts'
import type { FollowedDatanet } from '../../node/services/datanets.ts'
import { tempDir } from '../helpers/tmp.ts'

const d = { id: 'bafyreitallyservicetestdatanet' } as unknown as FollowedDatanet
const A = '0x' + 'aa'.repeat(20)
const B = '0x' + 'bb'.repeat(20)
const C = '0x' + 'cc'.repeat(20)
const atOne = new Map([[A, 100n], [B, 50n]])
const atTwo = new Map([[A, 130n], [B, 50n], [C, 7n]])

function version (height: number): VersionEntry {
  return {
    datanet: d.id, height, cid: `v${height}`, parent: null, round: 0, datasetRoot: '0x', recordCount: 0, attributionRoot: '0x', totalAttributed: '0',
    validatorSetHash: '0x', contributions: [], certificate: [], frontier: { size: 0, nodes: [] }, decidedAt: 0, anchor: null
  }
}

interface FakeChain {
  anchored: { height: number, attributionRoot: string, totalAttributed: bigint } | undefined
  claimed: Map<string, bigint>
  claims: Array<{ account: string, amount: bigint, proof: string[] }>
}

function chainOf (fake: FakeChain): ChainService {
  return {
    address: getAddress(A),
    refresh: async () => {},
    anchoredAttribution: () => fake.anchored,
    claimedOn: (_d: FollowedDatanet, account: string) => fake.claimed.get(account.toLowerCase()) ?? 0n,
    claim: async (_d: FollowedDatanet, account: string, amount: bigint, proof: string[]) => {
      fake.claims.push({ account, amount, proof })
      return { txHash: '0xabc', block: 7, gasUsed: 1n }
    }
  } as unknown as ChainService
}

async function withDb (fn: (db: StateDatabase) => Promise<void>): Promise<void> {
  const tmp = tempDir()
  const db = new StateDatabase(join(tmp.dir, 'state'))
  await db.open()
  try {
    await fn(db)
  } finally {
    await db.close()
    tmp.remove()
  }
}

async function finalize (db: StateDatabase, height: number, tallies: Map<string, bigint>): Promise<void> {
  await db.batch([db.versions.putOp(version(height)), db.tallies.putOp(d.id, height, talliesToJSON(tallies))])
}

test('before any version: height 0, nothing attributed, nothing claimable', async () => {
  await withDb(async db => {
    const tallies = new TallyService({ db, chain: undefined })
    const list = await tallies.list(d)
    assert.equal(list, { height: 0, anchoredHeight: null, total: '0', tallies: [] })
    const one = await tallies.tallyOf(d, A)
    assert.is(one.amount, '0')
    assert.is(one.claimable, '0')
    assert.equal(one.proof, [])
  })
})

test('the latest amount, and what the anchored root lets an account claim, with a proof the root accepts', async () => {
  await withDb(async db => {
    await finalize(db, 1, atOne)
    await finalize(db, 2, atTwo)
    const root = toHex(new TallyTree(atOne).root)
    const fake: FakeChain = { anchored: { height: 1, attributionRoot: root, totalAttributed: 150n }, claimed: new Map([[A, 40n]]), claims: [] }
    const tallies = new TallyService({ db, chain: chainOf(fake) })
    const a = await tallies.tallyOf(d, A.toUpperCase().replace('0X', '0x'))
    assert.is(a.address, getAddress(A))
    assert.is(a.amount, '130', 'the latest final version')
    assert.is(a.height, 2)
    assert.is(a.anchoredHeight, 1)
    assert.is(a.cumulativeAmount, '100', 'what the anchor commits to')
    assert.is(a.claimed, '40')
    assert.is(a.claimable, '60')
    assert.is(a.root, root)
    assert.ok(verifyTallyProof(root, A, 100n, a.proof))
    // an account attributed after the anchor has nothing to claim yet
    const c = await tallies.tallyOf(d, C)
    assert.is(c.amount, '7')
    assert.is(c.claimable, '0')
    const list = await tallies.list(d)
    assert.is(list.total, '187')
    assert.equal(list.tallies.map(t => [t.address, t.cumulativeAmount]), [[getAddress(A), '100'], [getAddress(B), '50'], [getAddress(C), '0']])
    for (const t of list.tallies) if (t.cumulativeAmount !== '0') assert.ok(verifyTallyProof(root, t.address, BigInt(t.cumulativeAmount), t.proof))
  })
})

test('tallies that do not give the anchored root are an error, not a wrong proof', async () => {
  await withDb(async db => {
    await finalize(db, 1, atOne)
    const fake: FakeChain = { anchored: { height: 1, attributionRoot: '0x' + '11'.repeat(32), totalAttributed: 150n }, claimed: new Map(), claims: [] }
    const tallies = new TallyService({ db, chain: chainOf(fake) })
    try {
      await tallies.tallyOf(d, A)
      assert.unreachable('a mismatched root must not give a proof')
    } catch (err) {
      assert.is((err as { code?: string }).code, 'ATTRIBUTION_ERROR_ROOT_MISMATCH')
    }
  })
})

test('claim sends the anchored cumulative amount and its proof once there is something to claim', async () => {
  await withDb(async db => {
    await finalize(db, 1, atOne)
    const root = toHex(new TallyTree(atOne).root)
    const fake: FakeChain = { anchored: { height: 1, attributionRoot: root, totalAttributed: 150n }, claimed: new Map([[A, 100n]]), claims: [] }
    const tallies = new TallyService({ db, chain: chainOf(fake) })
    const chain = chainOf(fake)
    try {
      await tallies.claim(d, chain)
      assert.unreachable('nothing left to claim')
    } catch (err) {
      assert.is((err as { code?: string }).code, 'CLAIM_ERROR_NOTHING')
    }
    assert.is(fake.claims.length, 0)
    fake.claimed.set(A, 30n)
    const paid = await tallies.claim(d, chain)
    assert.is(paid.paid, '70')
    assert.is(paid.claimable, '0')
    assert.is(paid.txHash, '0xabc')
    assert.equal(fake.claims.map(c => [c.account, c.amount]), [[getAddress(A), 100n]])
    assert.ok(verifyTallyProof(root, A, 100n, fake.claims[0]?.proof ?? []))
  })
})

test('a final height is read once: later answers come from the kept tallies', async () => {
  await withDb(async db => {
    await finalize(db, 1, atOne)
    const tallies = new TallyService({ db, chain: undefined })
    assert.is((await tallies.tallyOf(d, A)).amount, '100')
    // tallies of a final height never change; the service does not read them again
    await db.batch([db.tallies.putOp(d.id, 1, talliesToJSON(new Map([[A, 1n]])))])
    assert.is((await tallies.tallyOf(d, A)).amount, '100')
    await tallies.stop()
    assert.is((await tallies.tallyOf(d, A)).amount, '1', 'stop drops what was kept')
  })
})

test('listing n accounts reads the stored tallies once, however many heights since they were written (each read decodes every account)', async () => {
  await withDb(async db => {
    const accounts = new Map(Array.from({ length: 300 }, (_, i) => ['0x' + (i + 1).toString(16).padStart(40, '0'), BigInt(i + 1)] as [string, bigint]))
    await finalize(db, 1, accounts)
    // heights 2..4 without events: no tallies written for them
    for (const h of [2, 3, 4]) await db.batch([db.versions.putOp(version(h))])
    let reads = 0
    const at = db.tallies.at.bind(db.tallies)
    db.tallies.at = async (...args) => { reads++; return await at(...args) }
    const service = new TallyService({ db, chain: undefined })
    const list = await service.list(d)
    assert.is(list.height, 4)
    assert.is(list.tallies.length, 300, 'version 4\'s tallies: those written at height 1')
    assert.is(list.total, String(300 * 301 / 2))
    assert.ok(reads <= 1, `${reads} reads of every account's tallies`)
    await service.list(d)
    assert.ok(reads <= 1, `${reads} reads after a second list (kept decoded)`)
  })
})

test.run()
