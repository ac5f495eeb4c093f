/**
 * One answer to "which validator set decides height h" (node/services/validator-sets.ts):
 * the verdict service gives, checks and tallies verdicts under the set deciding the node's
 * next version, as consensus does, never under the chain's newest set.
 *
 * The scene: anchor 4 moved the set from {A, B, C, D} to {A, B, C, E}; this node has only
 * finalized height 2, so height 3 is still decided by {A, B, C, D}. On main the chain
 * service overwrote the datanet's set with the newest one, so D's verdict was REJECTed
 * (costing an honest relay its score), E's was counted, and D stopped judging.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Wallet } from 'ethers'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import * as raw from 'multiformats/codecs/raw'
import { pino } from 'pino'
import { join } from 'node:path'
import { encodeManifest, parseManifest, type ValidatorSet } from '../../src/datanet/manifest.ts'
import { encodeVerdict, signVerdict } from '../../src/contribution/verdict.ts'
import { GossipValidationError, type GossipRouter, type TopicHandler } from '../../src/network/gossip.ts'
import { StateDatabase } from '../../src/storage/state-db.ts'
import { VerdictService } from '../../node/services/verdicts.ts'
import { ValidatorSets, type ChainSets } from '../../node/services/validator-sets.ts'
import { tempDir } from '../helpers/tmp.ts'
import type { FollowedDatanet } from '../../node/services/datanets.ts'

const binding = { chainId: 31337, registry: null }
const [A, B, C, D, E] = Array.from({ length: 5 }, (_, i) => new Wallet('0x' + (i + 31).toString(16).padStart(64, '0'))) as [Wallet, Wallet, Wallet, Wallet, Wallet]
const setOf = (ws: Wallet[]): ValidatorSet => ({ validators: ws.map(w => ({ address: w.address, stake: 100n })), total: 100n * BigInt(ws.length) })
const OLD = setOf([A, B, C, D])
const NEW = setOf([A, B, C, E])

interface Scene {
  service: (signer: Wallet, onVerdict?: (datanet: string, entry: { validator: string }) => void) => VerdictService
  handler: () => TopicHandler<unknown>
  published: Uint8Array[]
  d: FollowedDatanet
  db: StateDatabase
  contribution: string
}

/** The facts every scene's contribution was stored with (what a late judgement reads). */
const FACTS = { recordCount: 1, byteSize: 10, invalidRecords: 0, duplicateRecords: 0, flagged: {} }

/** `chain`: what the chain service answers (default: anchor 4 moved the set, see above). */
async function withScene (fn: (s: Scene) => Promise<void>, chain: ChainSets = { validatorSet: (_d, h) => (h <= 4 ? OLD : NEW), latestSet: () => NEW }): Promise<void> {
  const tmp = tempDir()
  const db = new StateDatabase(join(tmp.dir, 'state'))
  await db.open()
  try {
    const manifest = parseManifest({ name: 'sets', license: 'CC0-1.0', recordSchema: { type: 'object' }, validators: [A, B, C, D].map(w => ({ address: w.address, stake: '100' })) })
    const e = await encodeManifest(manifest)
    // what the chain service left in the datanet on main: the newest set
    const d: FollowedDatanet = { id: e.id, digest: e.digest, manifest, validators: NEW, validateRecord: () => undefined as never }
    const sets = new ValidatorSets(chain)
    sets.finalized(d.id, 2)
    const contribution = CID.createV1(raw.code, await sha256.digest(new TextEncoder().encode('c'))).toString()
    await db.contributions.put(contribution, { cid: contribution, datanet: d.id, contribution: {}, status: 'pending', score: null, receivedAt: 1, decidedAt: null, origin: 'gossip', version: null, facts: FACTS })
    let handler: TopicHandler<unknown> | undefined
    const published: Uint8Array[] = []
    const router = {
      register: (h: TopicHandler<unknown>) => { handler = h },
      publish: async (_t: string, bytes: Uint8Array) => { published.push(bytes); return 1 }
    } as unknown as GossipRouter
    const service = (signer: Wallet, onVerdict?: (datanet: string, entry: { validator: string }) => void): VerdictService => {
      const s = new VerdictService({ db, router, signer, binding, rules: [], logger: pino({ level: 'silent' }), sets, onVerdict } as ConstructorParameters<typeof VerdictService>[0])
      s.follow(d)
      return s
    }
    await fn({ service, handler: () => handler as TopicHandler<unknown>, published, d, db, contribution })
  } finally {
    await db.close()
    tmp.remove()
  }
}

async function verdictBytes (s: Scene, w: Wallet): Promise<Uint8Array> {
  return encodeVerdict(await signVerdict(w, binding, { datanet: s.d.id, contribution: CID.parse(s.contribution), validator: w.address, accept: true, score: 100, reasons: [], timestamp: 1 }))
}

/** The gossip decision for a message: 'accept', or the error's action and code. */
async function decide (h: TopicHandler<unknown>, bytes: Uint8Array): Promise<string> {
  try {
    const m = h.decode(bytes)
    await h.validate(m, { from: 'peer' } as never)
    await h.handle(m, { from: 'peer' } as never)
    return 'accept'
  } catch (err) {
    if (err instanceof GossipValidationError) return `${err.action} ${err.code}`
    throw err
  }
}

test('a verdict of a validator of the deciding set is taken, though the chain\'s newest set left it', () => withScene(async s => {
  s.service(A)
  assert.is(await decide(s.handler(), await verdictBytes(s, D)), 'accept')
}))

test('a verdict of a validator that joined at an anchor this node has not reached is ignored (never the relay\'s fault), not counted', () => withScene(async s => {
  s.service(A)
  assert.match(await decide(s.handler(), await verdictBytes(s, E)), /^ignore /)
  assert.is(await s.db.verdicts.has(s.contribution, E.address), false)
}))

test('a verdict from no set at all is rejected', () => withScene(async s => {
  s.service(A)
  const stranger = new Wallet('0x' + '77'.repeat(32))
  assert.is(await decide(s.handler(), await verdictBytes(s, stranger)), 'reject VERDICT_ERROR_NOT_VALIDATOR')
}))

test('the tally counts the deciding set: A, B and D accept → accepted (3 of 4 of {A, B, C, D})', () => withScene(async s => {
  s.service(C)
  for (const w of [A, B, D]) assert.is(await decide(s.handler(), await verdictBytes(s, w)), 'accept')
  assert.is((await s.db.contributions.get(s.contribution))?.status, 'accepted')
}))

test('a validator of the deciding set judges; one only in the newest set does not yet', async () => {
  await withScene(async s => {
    assert.is(s.service(D).isValidator(s.d), true, 'D still decides height 3')
    assert.is(s.service(E).isValidator(s.d), false, 'E decides from height 5 only')
  })
})

test('a contribution stored while the deciding set is not fixed yet is judged as soon as the chain fixes it, not at the next re-gossip', async () => {
  // version 2 is final, its anchor not seen yet: the set of height 3 is unknown
  let anchored = false
  await withScene(async s => {
    const service = s.service(A)
    const entry = await s.db.contributions.get(s.contribution)
    assert.ok(entry !== undefined)
    await service.onContribution(s.d, entry, { ...FACTS, flagged: new Map() })
    assert.is(s.published.length, 0, 'no set to judge under yet')
    // the chain service reports the anchor: the set of height 3 is fixed (re-gossip, 20 s away, never runs here)
    anchored = true
    await service.onSetsChanged?.(s.d)
    assert.is(s.published.length, 1, 'judged when the set was fixed')
    assert.is(await s.db.verdicts.has(s.contribution, A.address), true)
    // and only once
    await service.onSetsChanged?.(s.d)
    assert.is(s.published.length, 1)
  }, { validatorSet: (_d, h) => (h <= 2 || anchored ? OLD : undefined), latestSet: () => OLD })
})

test('adopting a caught-up range\'s verdicts: the new ones stored in one batch and told once each, one held already or given twice kept as first stored, the contribution tallied', () => withScene(async s => {
  const told: string[] = []
  const service = s.service(A, (_d, e) => { told.push(e.validator) })
  const signed = async (w: Wallet, score: number): Promise<{ verdict: Awaited<ReturnType<typeof signVerdict>>, bytes: Uint8Array }> => {
    const verdict = await signVerdict(w, binding, { datanet: s.d.id, contribution: CID.parse(s.contribution), validator: w.address, accept: true, score, reasons: [], timestamp: 1 })
    return { verdict, bytes: encodeVerdict(verdict) }
  }
  // B's verdict held before the range (from gossip), with score 90
  const held = await signed(B, 90)
  await service.adopt(s.d, [held])
  assert.equal(told, [B.address])
  told.length = 0
  const batches: number[] = []
  const putMany = s.db.verdicts.putMany.bind(s.db.verdicts)
  s.db.verdicts.putMany = async entries => { batches.push(entries.length); await putMany(entries) }
  await service.adopt(s.d, [await signed(B, 10), await signed(C, 80), await signed(D, 70), await signed(C, 5)])
  assert.equal(batches, [2], 'C and D in one batch; B held, C\'s second dropped')
  assert.equal(told, [C.address, D.address])
  assert.is((await s.db.verdicts.get(s.contribution, B.address))?.score, 90)
  assert.is((await s.db.verdicts.get(s.contribution, C.address))?.score, 80)
  const entry = await s.db.contributions.get(s.contribution)
  assert.is(entry?.status, 'accepted', 'three of four accept: tallied')
}))

test.run()

