/**
 * Twin inference events (issue 11): the fee is escrowed under the event's id (the EIP-712
 * digest of the unsigned event), but events are named by CID, which covers the signature.
 * An operator can sign one event twice (another nonce k), and anyone can re-encode a
 * signature (v as 0/1 or EIP-155, s as n − s). Two signatures over one event must be one
 * event on every path: gossip, HTTP, proposals, inclusion.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { decodeInferenceEvent, encodeInferenceEvent, inferenceEventId, inferenceEventJson, inferenceSigner, signInferenceEvent, type InferenceEvent } from '../../src/inference/event.ts'
import { decodeModelRecord, encodeModelRecord, signModelRecord } from '../../src/inference/model-record.ts'
import { GossipAction } from '../../src/network/gossip.ts'
import { DatanetError } from '../../src/errors.ts'
import { BINDING, gossipVerdict, inferenceFixture, serve, type Fixture } from '../helpers/inference-fixture.ts'

const gossip = gossipVerdict

async function posted (f: Fixture, e: InferenceEvent): Promise<string> {
  try {
    await f.service.post(f.d, inferenceEventJson(e))
    return 'stored'
  } catch (err) {
    if (err instanceof DatanetError) return `${err.kind} ${err.code}`
    throw err
  }
}

async function withFixture (fn: (f: Fixture) => Promise<void>): Promise<void> {
  const f = await inferenceFixture()
  try { await fn(f) } finally { await f.close() }
}

test('premise: a second signature over one event recovers the operator and gives another CID', () => withFixture(async f => {
  const { b, aCid, bCid } = await f.twins(f.unsigned(1))
  assert.is(inferenceSigner(b, BINDING), f.operator.address)
  assert.is.not(aCid, bCid)
}))

test('codec: re-encoded signatures (v 0/1 or EIP-155, high s) are refused, so no one but the operator can make a twin', () => withFixture(async f => {
  const { a } = await f.twins(f.unsigned(2))
  const withV = (v: number): Uint8Array => { const s = new Uint8Array(a.signature); s[64] = v; return s }
  const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n
  const highS = new Uint8Array(a.signature)
  const s = BigInt('0x' + Buffer.from(a.signature.subarray(32, 64)).toString('hex'))
  highS.set(Buffer.from((N - s).toString(16).padStart(64, '0'), 'hex'), 32)
  highS[64] = a.signature[64] === 27 ? 28 : 27
  for (const signature of [withV((a.signature[64] as number) - 27), withV((a.signature[64] as number) + 8), highS]) {
    assert.throws(() => decodeInferenceEvent(encodeInferenceEvent({ ...a, signature }), 65_536), /signature: not canonical/)
  }
  assert.is(decodeInferenceEvent(encodeInferenceEvent(a), 65_536).operator, f.operator.address)
  const record = await signModelRecord(f.operator, BINDING, { datanet: f.d.id, version: 1, kind: 'ngram-v1', artifact: f.model.artifact, operator: f.operator.address, createdAt: 1 })
  const sig = new Uint8Array(record.signature); sig[64] = (sig[64] as number) - 27
  assert.throws(() => decodeModelRecord(encodeModelRecord({ ...record, signature: sig })), /signature: not canonical/)
  assert.throws(() => decodeInferenceEvent(encodeInferenceEvent({ ...a, fee: '0' }), 65_536), /fee/)
}))

test('gossip: a twin of a known event is ignored (not the relayer\'s fault) and changes nothing', () => withFixture(async f => {
  const { a, b, aCid } = await f.twins(f.unsigned(3))
  assert.is(await gossip(f, a), 'accept')
  assert.is(await gossip(f, b), `${GossipAction.IGNORE} INFERENCE_ERROR_TWIN`)
  assert.equal((await f.service.pending(f.d, 10)).map(e => e.cid), [aCid])
}))

test('HTTP: posting a twin of a known event is refused with a typed conflict', () => withFixture(async f => {
  const { a, b, aCid } = await f.twins(f.unsigned(4))
  assert.is(await posted(f, a), 'stored')
  assert.is(await posted(f, b), 'conflict INFERENCE_ERROR_TWIN')
  assert.is(await posted(f, a), 'stored', 'the same bytes again are the known event')
  assert.equal((await f.service.pending(f.d, 10)).map(e => e.cid), [aCid])
}))

test('proposal: a node holding twin B judges a proposal with twin A as that event, and marks B included when A is final', () => withFixture(async f => {
  const { a, b, bCid, eventId } = await f.twins(f.unsigned(5))
  assert.is(await posted(f, b), 'stored')
  const aCid = await serve(f, a)
  const seen = await f.service.ensure(f.d, aCid)
  assert.ok(seen !== undefined, 'twin A verifies here')
  assert.is(seen.eventId, eventId)
  assert.is(seen.included, null)
  await f.service.markIncluded([aCid], 7)
  assert.equal(await f.service.pending(f.d, 10), [], 'B is not pending once A is in a final version')
  assert.is((await f.service.ensure(f.d, bCid))?.included, 7)
  assert.is((await f.service.ensure(f.d, aCid))?.included, 7)
}))

test('proposal: a twin of an included event is judged already included', () => withFixture(async f => {
  const { a, b, aCid } = await f.twins(f.unsigned(6))
  assert.is(await posted(f, a), 'stored')
  await f.service.markIncluded([aCid], 4)
  const bCid = await serve(f, b)
  assert.is((await f.service.ensure(f.d, bCid))?.included, 4)
  assert.is(await gossip(f, b), `${GossipAction.IGNORE} INFERENCE_ERROR_TWIN`)
}))

test('proposal: a node holding neither twin stores the first it meets; the other resolves to it', () => withFixture(async f => {
  const { a, b, eventId } = await f.twins(f.unsigned(7))
  const aCid = await serve(f, a)
  const bCid = await serve(f, b)
  assert.is((await f.service.ensure(f.d, bCid))?.cid, bCid)
  assert.is((await f.service.ensure(f.d, aCid))?.eventId, eventId)
  assert.is((await f.service.pending(f.d, 10)).length, 1)
  assert.is(await posted(f, a), 'conflict INFERENCE_ERROR_TWIN')
}))

test('split: twin A to one node, twin B to another; a proposal with A is judged alike on both, and leaves neither pending', async () => {
  const x = await inferenceFixture()
  const y = await inferenceFixture()
  try {
    const u = x.unsigned(9)
    y.unsigned(9)
    const { a, b } = await x.twins(u)
    assert.is(await posted(x, a), 'stored')
    assert.is(await posted(y, b), 'stored')
    const proposal = (await x.service.pending(x.d, 10)).map(e => e.cid)
    await serve(y, a)
    const judged = await Promise.all([x, y].map(async n => await Promise.all(proposal.map(async c => await n.service.ensure(n.d, c)))))
    for (const entries of judged) {
      assert.ok(entries.every(e => e !== undefined && e.included === null), 'every event of the proposal verifies and is not yet included')
      assert.equal(entries.map(e => e?.shares), judged[0]?.map(e => e?.shares), 'the same shares on both nodes')
    }
    for (const n of [x, y]) await n.service.markIncluded(proposal, 1)
    assert.equal(await x.service.pending(x.d, 10), [])
    assert.equal(await y.service.pending(y.d, 10), [], 'B is the event A included')
  } finally {
    await x.close()
    await y.close()
  }
})

test('split by nonce: two escrowed events with one nonce, one to each node; a proposal with either is judged alike', async () => {
  const x = await inferenceFixture()
  const y = await inferenceFixture()
  try {
    const u1 = x.unsigned(11)
    y.unsigned(11)
    const u2 = { ...u1, output: `${u1.output} again` }
    for (const n of [x, y]) n.chain.paid.set(inferenceEventId(BINDING, u2).toLowerCase(), { payer: n.operator.address.toLowerCase(), amount: 1000n })
    const e1 = await signInferenceEvent(x.operator, BINDING, u1)
    const e2 = await signInferenceEvent(x.operator, BINDING, u2)
    assert.is(await posted(x, e1), 'stored')
    assert.is(await posted(y, e2), 'stored')
    assert.is(await posted(x, e2), 'conflict INFERENCE_ERROR_REPLAYED_NONCE', 'the nonce rule still holds for admission')
    const c1 = await serve(y, e1)
    assert.ok((await y.service.ensure(y.d, c1)) !== undefined, 'a proposal with the other event is not refused for its nonce')
  } finally {
    await x.close()
    await y.close()
  }
})

test('after a restart, a twin still resolves to the known event and marks it by event id', () => withFixture(async f => {
  const { a, b, bCid } = await f.twins(f.unsigned(10))
  assert.is(await posted(f, b), 'stored')
  const aCid = await serve(f, a)
  f.restart()
  assert.is((await f.service.ensure(f.d, aCid))?.cid, bCid)
  f.restart()
  await f.service.markIncluded([aCid], 2)
  assert.is((await f.service.ensure(f.d, bCid))?.included, 2)
  assert.is(await gossip(f, a), `${GossipAction.IGNORE} INFERENCE_ERROR_TWIN`)
}))

test('concurrent twins over gossip and HTTP: one is stored, the other refused', () => withFixture(async f => {
  const { a, b } = await f.twins(f.unsigned(8))
  const results = await Promise.all([posted(f, a), gossip(f, b)])
  assert.is(results.filter(r => r === 'stored' || r === 'accept').length, 1, results.join(', '))
  assert.is((await f.service.pending(f.d, 10)).length, 1)
}))

test.run()
