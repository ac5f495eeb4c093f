/**
 * Gossip validation of inference events must end inside gossipsub's window: a message not
 * judged within a few heartbeats (mcache: 5 × 1 s) has left the message cache, so an accept
 * no longer relays it and a reject no longer costs its sender anything. What cannot be had
 * in time (an escrow our chain view lacks, a model record nobody serves, an index still
 * building) is IGNOREd; what is provably invalid is REJECTed.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { CID } from 'multiformats/cid'
import { inferenceEventId, signInferenceEvent, type InferenceEvent } from '../../src/inference/event.ts'
import { GossipAction } from '../../src/network/gossip.ts'
import { GOSSIP_VALIDATION_MS } from '../../node/services/inferences.ts'
import { BINDING, gossipVerdict, inferenceFixture, type Fixture } from '../helpers/inference-fixture.ts'
import { waitFor, withDeadline } from '../helpers/wait.ts'

/** Slack for a loaded CI machine; still well inside the ~4 s the message cache keeps a message. */
const SLACK_MS = 1500

async function judged (f: Fixture, e: InferenceEvent): Promise<{ verdict: string, ms: number }> {
  const t0 = performance.now()
  const verdict = await withDeadline(gossipVerdict(f, e), GOSSIP_VALIDATION_MS + 2 * SLACK_MS, 'the gossip validator')
  return { verdict, ms: performance.now() - t0 }
}

/** Runs `fn` with a fixture whose slow fakes are released (and the store closed) afterwards. */
async function withFixture (fn: (f: Fixture, release: AbortSignal) => Promise<void>): Promise<void> {
  const f = await inferenceFixture()
  const release = new AbortController()
  try {
    await fn(f, release.signal)
  } finally {
    release.abort()
    await f.close()
  }
}

const blocked = (signal: AbortSignal) => async (): Promise<void> => await new Promise(resolve => { signal.addEventListener('abort', () => { resolve() }, { once: true }) })

test('an event whose escrow our chain view lacks is ignored within the window', () => withFixture(async f => {
  const e = await signInferenceEvent(f.operator, BINDING, f.unsigned(1, { escrow: false }))
  const { verdict, ms } = await judged(f, e)
  assert.is(verdict, `${GossipAction.IGNORE} INFERENCE_ERROR_NO_ESCROW`)
  assert.ok(ms < GOSSIP_VALIDATION_MS + SLACK_MS, `took ${Math.round(ms)} ms`)
}))

test('a chain RPC that hangs does not hold the validator past the window', () => withFixture(async (f, release) => {
  f.chain.refreshDelay = blocked(release)
  const e = await signInferenceEvent(f.operator, BINDING, f.unsigned(2, { escrow: false }))
  const { verdict, ms } = await judged(f, e)
  assert.is(verdict, `${GossipAction.IGNORE} INFERENCE_ERROR_NO_ESCROW`)
  assert.ok(ms < GOSSIP_VALIDATION_MS + SLACK_MS, `took ${Math.round(ms)} ms`)
}))

test('an event on a model record nobody serves is ignored within the window', () => withFixture(async f => {
  const unknown = CID.parse('bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy').toString()
  const u = { ...f.unsigned(3, { escrow: false }), model: unknown }
  f.chain.paid.set(inferenceEventId(BINDING, u).toLowerCase(), { payer: f.operator.address.toLowerCase(), amount: 1000n })
  const { verdict, ms } = await judged(f, await signInferenceEvent(f.operator, BINDING, u))
  assert.is(verdict, `${GossipAction.IGNORE} INFERENCE_ERROR_UNKNOWN_MODEL`)
  assert.ok(ms < GOSSIP_VALIDATION_MS + SLACK_MS, `took ${Math.round(ms)} ms`)
}))

test('an attribution index still building does not hold the validator past the window', () => withFixture(async (f, release) => {
  f.attributeDelay = blocked(release)
  const { verdict, ms } = await judged(f, await signInferenceEvent(f.operator, BINDING, f.unsigned(4)))
  assert.is(verdict, `${GossipAction.IGNORE} INFERENCE_ERROR_VALIDATION_TIMEOUT`)
  assert.ok(ms < GOSSIP_VALIDATION_MS + SLACK_MS, `took ${Math.round(ms)} ms`)
}))

test('provably invalid events cost their sender: an escrow of another amount, a model of another version', () => withFixture(async f => {
  const u = f.unsigned(5, { escrow: false })
  f.chain.paid.set(inferenceEventId(BINDING, u).toLowerCase(), { payer: f.operator.address.toLowerCase(), amount: 1n })
  assert.is((await judged(f, await signInferenceEvent(f.operator, BINDING, u))).verdict, `${GossipAction.REJECT} INFERENCE_ERROR_ESCROW_MISMATCH`)
  const other = f.unsigned(6)
  assert.is((await judged(f, await signInferenceEvent(f.operator, BINDING, { ...other, version: 2 }))).verdict, `${GossipAction.REJECT} INFERENCE_ERROR_BAD_REQUEST`)
}))

test('an event ignored for want of its escrow is stored once the escrow shows, off the gossip path', () => withFixture(async f => {
  const u = f.unsigned(7, { escrow: false })
  const e = await signInferenceEvent(f.operator, BINDING, u)
  assert.is((await judged(f, e)).verdict, `${GossipAction.IGNORE} INFERENCE_ERROR_NO_ESCROW`)
  f.chain.paid.set(inferenceEventId(BINDING, u).toLowerCase(), { payer: f.operator.address.toLowerCase(), amount: 1000n })
  const pending = await waitFor(async () => (await f.service.pending(f.d, 10)).find(p => p.eventId === inferenceEventId(BINDING, u)), { timeoutMs: 15_000, what: 'the event to be stored' })
  assert.is(pending.fee, '1000')
}))

test.run()
