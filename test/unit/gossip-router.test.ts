import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { pino } from 'pino'
import { GossipRouter, contentMessageId, ignore, reject, type GossipContext, type GossipRouterOptions, type HeldMessage, type OutboxStore, type TopicHandler } from '../../src/network/gossip.ts'
import { waitFor } from '../helpers/wait.ts'
import type { GossipSub, Message } from '@libp2p/gossipsub'
import type { PeerId, PrivateKey } from '@libp2p/interface'

type Verdict = 'accept' | 'ignore' | 'reject'
interface Report { msgId: string, source: string, result: Verdict }

/** Just enough of gossipsub for the router: an event target that records validation reports. */
class FakePubSub extends EventTarget {
  readonly reports: Report[] = []
  readonly subscribed: string[] = []
  readonly unsubscribed: string[] = []
  readonly published: Array<{ topic: string, data: Uint8Array }> = []
  /** gossipsub's score parameters, where the router installs its application-specific score. */
  readonly score = { params: { topics: {}, appSpecificScore: (_peerId: string): number => 0 } }

  subscribe (topic: string): void { this.subscribed.push(topic) }
  unsubscribe (topic: string): void { this.unsubscribed.push(topic) }
  /** Whether a peer is subscribed (and reachable) as gossipsub sees it. */
  peers = true
  async publish (topic: string, data: Uint8Array): Promise<{ recipients: PeerId[] }> {
    this.published.push({ topic, data })
    return { recipients: this.peers ? [publisher, publisher] : [] }
  }

  get streamsOutbound (): Map<string, unknown> { return new Map([[publisher.toString(), {}]]) }

  /** A peer's subscription arriving, as gossipsub announces it. */
  peerSubscribes (topic: string): void {
    this.peers = true
    this.dispatchEvent(new CustomEvent('subscription-change', { detail: { peerId: publisher, subscriptions: [{ topic, subscribe: true }] } }))
  }

  getSubscribers (_topic: string): PeerId[] { return this.peers ? [publisher] : [] }
  getMeshPeers (topic: string): string[] { return [`mesh-of-${topic}`] }
  getScore (_peerId: string): number { return 4.5 }
  reportMessageValidationResult (msgId: string, source: string, result: Verdict): void {
    this.reports.push({ msgId, source, result })
  }

  report (msgId: string): Report | undefined {
    return this.reports.find(r => r.msgId === msgId)
  }
}

let key: PrivateKey
let publisher: PeerId
let relay: PeerId

test.before(async () => {
  key = await generateKeyPair('Ed25519')
  publisher = peerIdFromPrivateKey(key)
  relay = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
})

interface Setup {
  pubsub: FakePubSub
  router: GossipRouter
  handled: Array<{ value: string, ctx: GossipContext }>
  results: Array<[string, string, string | undefined]>
}

const TOPIC = '/test/1/topic'

function setup (handler: Partial<TopicHandler<string>> = {}, options: Partial<GossipRouterOptions> = {}): Setup {
  const pubsub = new FakePubSub()
  const handled: Setup['handled'] = []
  const results: Setup['results'] = []
  const router = new GossipRouter(pubsub as unknown as GossipSub, {
    queueSize: 16,
    logger: pino({ level: 'silent' }),
    onResult: (kind, result, code) => { results.push([kind, result, code]) },
    ...options
  })
  router.register<string>({
    topic: TOPIC,
    kind: 'test',
    decode: data => new TextDecoder().decode(data),
    validate: () => {},
    handle: (value, ctx) => { handled.push({ value, ctx }) },
    ...handler
  })
  router.start()
  return { pubsub, router, handled, results }
}

function signed (topic: string, text: string): Message {
  return { type: 'signed', from: publisher, topic, data: new TextEncoder().encode(text), sequenceNumber: 1n, signature: new Uint8Array(), key: key.publicKey }
}

function send (pubsub: FakePubSub, msgId: string, msg: Message, source: PeerId = relay): void {
  pubsub.dispatchEvent(new CustomEvent('gossipsub:message', { detail: { msg, msgId, propagationSource: source } }))
}

async function verdict (pubsub: FakePubSub, msgId: string): Promise<Report> {
  return await waitFor(() => pubsub.report(msgId), { timeoutMs: 2000, what: `a validation report for ${msgId}`, intervalMs: 5 })
}

/** Resolves once every message so far has been fully processed (accepted ones handled too). */
async function settle (s: Setup, msgIds: string[]): Promise<void> {
  for (const id of msgIds) await verdict(s.pubsub, id)
}

test('register subscribes to the topic; registering a topic twice throws', async () => {
  const s = setup()
  assert.equal(s.pubsub.subscribed, [TOPIC])
  assert.throws(() => {
    s.router.register({ topic: TOPIC, kind: 'again', decode: d => d, validate: () => {}, handle: () => {} })
  }, /already has a handler/)
  assert.equal(s.pubsub.subscribed, [TOPIC], 'no second subscription')
  await s.router.stop()
})

test('a valid message is reported accept, then handled with its context', async () => {
  const s = setup()
  send(s.pubsub, 'm1', signed(TOPIC, 'hello'))
  const r = await verdict(s.pubsub, 'm1')
  assert.equal(r, { msgId: 'm1', source: relay.toString(), result: 'accept' })
  await waitFor(() => s.handled.length === 1, { timeoutMs: 2000, what: 'the handler', intervalMs: 5 })
  const h = s.handled[0]
  assert.ok(h !== undefined)
  assert.is(h.value, 'hello')
  assert.ok(h.ctx.publisher.equals(publisher))
  assert.ok(h.ctx.propagationSource.equals(relay))
  assert.is(h.ctx.msgId, 'm1')
  assert.equal(s.router.stats, { accepted: 1, rejected: 0, ignored: 0, dropped: 0, delayed: 0, unsent: 0, penalised: 0 })
  assert.equal(s.results, [['test', 'accept', undefined]])
  await s.router.stop()
})

test('the verdict is reported before the handler runs', async () => {
  let reportsWhenHandled = -1
  const s = setup({ handle: () => { reportsWhenHandled = s.pubsub.reports.length } })
  send(s.pubsub, 'm1', signed(TOPIC, 'x'))
  await waitFor(() => reportsWhenHandled !== -1, { timeoutMs: 2000, what: 'the handler', intervalMs: 5 })
  assert.is(reportsWhenHandled, 1)
  await s.router.stop()
})

test('a validator throwing reject() is reported reject and never handled', async () => {
  const s = setup({ validate: () => { throw reject('TEST_ERROR_BAD', 'bad message') } })
  send(s.pubsub, 'm1', signed(TOPIC, 'bad'))
  assert.is((await verdict(s.pubsub, 'm1')).result, 'reject')
  assert.equal(s.handled, [])
  assert.equal(s.router.stats, { accepted: 0, rejected: 1, ignored: 0, dropped: 0, delayed: 0, unsent: 0, penalised: 0 })
  assert.equal(s.results, [['test', 'reject', 'TEST_ERROR_BAD']])
  await s.router.stop()
})

test('an async validator rejecting with reject() is reported reject', async () => {
  const s = setup({ validate: async () => { await Promise.resolve(); throw reject('TEST_ERROR_ASYNC', 'bad') } })
  send(s.pubsub, 'm1', signed(TOPIC, 'bad'))
  assert.is((await verdict(s.pubsub, 'm1')).result, 'reject')
  assert.equal(s.handled, [])
  await s.router.stop()
})

test('a validator throwing ignore() is reported ignore and never handled', async () => {
  const s = setup({ validate: () => { throw ignore('TEST_ERROR_STALE', 'old news') } })
  send(s.pubsub, 'm1', signed(TOPIC, 'old'))
  assert.is((await verdict(s.pubsub, 'm1')).result, 'ignore')
  assert.equal(s.handled, [])
  assert.equal(s.router.stats, { accepted: 0, rejected: 0, ignored: 1, dropped: 0, delayed: 0, unsent: 0, penalised: 0 })
  assert.equal(s.results, [['test', 'ignore', 'TEST_ERROR_STALE']])
  await s.router.stop()
})

test('a decode that throws reject() is reported reject and the validator is not called', async () => {
  let validated = 0
  const s = setup({
    decode: () => { throw reject('TEST_ERROR_MALFORMED', 'garbage') },
    validate: () => { validated++ }
  })
  send(s.pubsub, 'm1', signed(TOPIC, 'garbage'))
  assert.is((await verdict(s.pubsub, 'm1')).result, 'reject')
  assert.is(validated, 0)
  assert.equal(s.handled, [])
  await s.router.stop()
})

test('a validator throwing a plain Error is reported ignore (not reject) and not handled', async () => {
  const s = setup({ validate: () => { throw new Error('validator bug') } })
  send(s.pubsub, 'm1', signed(TOPIC, 'x'))
  assert.is((await verdict(s.pubsub, 'm1')).result, 'ignore')
  assert.equal(s.handled, [])
  assert.equal(s.router.stats, { accepted: 0, rejected: 0, ignored: 1, dropped: 0, delayed: 0, unsent: 0, penalised: 0 })
  assert.equal(s.results, [['test', 'ignore', 'GOSSIP_ERROR_VALIDATOR_FAILED']])
  await s.router.stop()
})

test('an unsigned message is reported reject and never decoded', async () => {
  let decoded = 0
  const s = setup({ decode: d => { decoded++; return new TextDecoder().decode(d) } })
  send(s.pubsub, 'm1', { type: 'unsigned', topic: TOPIC, data: new TextEncoder().encode('anon') })
  assert.is((await verdict(s.pubsub, 'm1')).result, 'reject')
  assert.is(decoded, 0)
  assert.equal(s.handled, [])
  assert.equal(s.results, [['test', 'reject', 'GOSSIP_ERROR_UNSIGNED']])
  await s.router.stop()
})

test('a message on an unregistered topic is reported ignore', async () => {
  const s = setup()
  send(s.pubsub, 'm1', signed('/other/topic', 'x'))
  assert.equal(await verdict(s.pubsub, 'm1'), { msgId: 'm1', source: relay.toString(), result: 'ignore' })
  assert.equal(s.handled, [])
  await s.router.stop()
})

test('a handler that throws does not stop later messages', async () => {
  let calls = 0
  const s = setup({ handle: () => { calls++; if (calls === 1) throw new Error('handler bug') } })
  send(s.pubsub, 'm1', signed(TOPIC, 'a'))
  send(s.pubsub, 'm2', signed(TOPIC, 'b'))
  assert.is((await verdict(s.pubsub, 'm1')).result, 'accept')
  assert.is((await verdict(s.pubsub, 'm2')).result, 'accept')
  await waitFor(() => calls === 2, { timeoutMs: 2000, what: 'both handler calls', intervalMs: 5 })
  await s.router.stop()
})

test('messages on one topic are validated in arrival order', async () => {
  const seen: string[] = []
  const s = setup({ validate: async (v) => { seen.push(v); await Promise.resolve() } })
  const ids = ['a', 'b', 'c', 'd', 'e']
  for (const id of ids) send(s.pubsub, id, signed(TOPIC, id))
  await settle(s, ids)
  assert.equal(seen, ids)
  assert.equal(s.pubsub.reports.map(r => r.msgId), ids)
  await s.router.stop()
})

test('when the queue is full, extra messages are reported ignore and counted as dropped', async () => {
  let release: () => void = () => {}
  const gate = new Promise<void>(resolve => { release = resolve })
  let started = 0
  const s = setup({ validate: async () => { started++; await gate } }, { queueSize: 1 })
  try {
    send(s.pubsub, 'm1', signed(TOPIC, 'one')) // taken off the queue, blocks in validate
    await waitFor(() => started === 1, { timeoutMs: 2000, what: 'the first validation to start', intervalMs: 5 })
    send(s.pubsub, 'm2', signed(TOPIC, 'two')) // waits in the queue (1 of 1)
    send(s.pubsub, 'm3', signed(TOPIC, 'three')) // no room
    send(s.pubsub, 'm4', signed(TOPIC, 'four')) // no room
    assert.equal(s.pubsub.reports, [
      { msgId: 'm3', source: relay.toString(), result: 'ignore' },
      { msgId: 'm4', source: relay.toString(), result: 'ignore' }
    ])
    assert.is(s.router.stats.dropped, 2)
    assert.equal(s.results, [['test', 'dropped', undefined], ['test', 'dropped', undefined]])
  } finally {
    release()
  }
  await settle(s, ['m1', 'm2'])
  assert.is(s.pubsub.report('m1')?.result, 'accept')
  assert.is(s.pubsub.report('m2')?.result, 'accept')
  await waitFor(() => s.handled.length === 2, { timeoutMs: 2000, what: 'both handled', intervalMs: 5 })
  assert.equal(s.handled.map(h => h.value), ['one', 'two'])
  assert.equal(s.router.stats, { accepted: 2, rejected: 0, ignored: 0, dropped: 2, delayed: 0, unsent: 0, penalised: 0 })
  await s.router.stop()
})

test('stop removes the listener and unsubscribes; later messages are not processed', async () => {
  let decoded = 0
  const s = setup({ decode: d => { decoded++; return new TextDecoder().decode(d) } })
  // while running, a message is decoded synchronously inside dispatchEvent
  send(s.pubsub, 'm0', signed(TOPIC, 'early'))
  assert.is(decoded, 1)
  await settle(s, ['m0'])
  await s.router.stop()
  assert.equal(s.pubsub.unsubscribed, [TOPIC])
  send(s.pubsub, 'm1', signed(TOPIC, 'late'))
  assert.is(decoded, 1, 'no listener: the late message never reached the router')
  assert.equal(s.pubsub.reports.map(r => r.msgId), ['m0'])
  s.router.stop() // idempotent
  assert.equal(s.pubsub.unsubscribed, [TOPIC])
})

test('a peer subscribing to a topic is told to its handler (consensus asks it for versions at once); another topic\'s or a throwing listener changes nothing else', async () => {
  const told: string[] = []
  const s = setup({ onSubscribed: peer => { told.push(peer) } })
  s.pubsub.peerSubscribes('/test/1/other')
  assert.equal(told, [])
  s.pubsub.peerSubscribes(TOPIC)
  assert.equal(told, [publisher.toString()])
  s.pubsub.dispatchEvent(new CustomEvent('subscription-change', { detail: { peerId: publisher, subscriptions: [{ topic: TOPIC, subscribe: false }] } }))
  assert.equal(told, [publisher.toString()], 'an unsubscription is not a new peer')
  await s.router.stop()
  const t = setup({ onSubscribed: () => { throw new Error('listener failed') } })
  t.pubsub.peerSubscribes(TOPIC)
  send(t.pubsub, 'after', signed(TOPIC, 'after'))
  assert.is((await verdict(t.pubsub, 'after')).result, 'accept')
  await t.router.stop()
})

test('publish, meshPeers, subscribers and score delegate to gossipsub', async () => {
  const s = setup()
  const data = new Uint8Array([1, 2, 3])
  assert.is(await s.router.publish(TOPIC, data), 2)
  assert.equal(s.pubsub.published, [{ topic: TOPIC, data }])
  assert.equal(s.router.meshPeers(TOPIC), [`mesh-of-${TOPIC}`])
  assert.equal(s.router.subscribers(TOPIC), [publisher.toString()])
  assert.is(s.router.score('x'), 4.5)
  await s.router.stop()
})

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text)
const texts = (p: FakePubSub): string[] => p.published.map(m => new TextDecoder().decode(m.data))

test('an own message published before any peer subscribed waits, in order, and goes out when one subscribes', async () => {
  const s = setup({ holdUntilSubscribed: true }, { outboxRetryMs: 60_000 })
  s.pubsub.peers = false
  assert.is(await s.router.publish(TOPIC, bytes('first')), 0)
  assert.is(await s.router.publish(TOPIC, bytes('second')), 0)
  assert.is(await s.router.publish(TOPIC, bytes('first')), 0)
  assert.is(s.router.waiting, 2, 'the same bytes wait once')
  assert.equal(s.pubsub.published, [], 'nothing sent while nobody listens')
  s.pubsub.peerSubscribes('/another/topic')
  assert.equal(s.pubsub.published, [], 'a subscription to another topic does not flush this one')
  s.pubsub.peerSubscribes(TOPIC)
  await waitFor(() => s.router.waiting === 0, { timeoutMs: 2000, what: 'the outbox to empty' })
  assert.equal(texts(s.pubsub), ['first', 'second'])
  assert.is(s.router.stats.delayed, 2)
  await s.router.stop()
})

test('the outbox is retried on a timer too (a subscriber may be under the publish threshold at first)', async () => {
  const s = setup({ holdUntilSubscribed: true }, { outboxRetryMs: 20 })
  s.pubsub.peers = false
  await s.router.publish(TOPIC, bytes('late'))
  s.pubsub.peers = true // no subscription event: only the timer can send it
  await waitFor(() => s.router.waiting === 0, { timeoutMs: 2000, what: 'the retry timer to send it' })
  assert.equal(texts(s.pubsub), ['late'])
  await s.router.stop()
})

test('the outbox is bounded: too old or too many are dropped and counted; stop empties it', async () => {
  const s = setup({ holdUntilSubscribed: true }, { outboxRetryMs: 60_000, outboxSize: 2, outboxTtlMs: 50 })
  s.pubsub.peers = false
  await s.router.publish(TOPIC, bytes('a'))
  await s.router.publish(TOPIC, bytes('b'))
  await s.router.publish(TOPIC, bytes('c'))
  assert.is(s.router.waiting, 2)
  assert.is(s.router.stats.unsent, 1, 'the oldest went')
  await new Promise(resolve => setTimeout(resolve, 80))
  await s.router.publish(TOPIC, bytes('fresh'))
  s.pubsub.peerSubscribes(TOPIC)
  await waitFor(() => s.router.waiting === 0, { timeoutMs: 2000, what: 'the outbox to empty' })
  assert.equal(texts(s.pubsub), ['fresh'], 'the expired ones are not sent')
  assert.is(s.router.stats.unsent, 3)
  s.pubsub.peers = false
  await s.router.publish(TOPIC, bytes('never'))
  await s.router.stop()
  assert.is(s.router.waiting, 0)
})

test('a topic that does not hold messages publishes to nobody at once (votes, announcements)', async () => {
  const s = setup({}, { outboxRetryMs: 20 })
  s.pubsub.peers = false
  assert.is(await s.router.publish(TOPIC, bytes('vote')), 0, 'sent to nobody, without an error')
  assert.is(s.router.waiting, 0)
  assert.equal(texts(s.pubsub), ['vote'])
  await s.router.stop()
})

test('publish errors other than "no peers" and "sent already" reach the caller', async () => {
  const s = setup({ holdUntilSubscribed: true })
  s.pubsub.publish = async () => { throw new Error('PublishError.Uninitialized') }
  const err = await s.router.publish(TOPIC, bytes('x')).then(() => undefined, (e: Error) => e)
  assert.is(err?.message, 'PublishError.Uninitialized')
  assert.is(s.router.waiting, 0)
  // a message gossipsub has seen went out already (gossip-publish-twice.test.ts)
  s.pubsub.publish = async () => { throw new Error('PublishError.Duplicate') }
  assert.is(await s.router.publish(TOPIC, bytes('y')), 0)
  assert.is(s.router.waiting, 0)
  await s.router.stop()
})

/** An outbox store in memory, shared by the routers of successive "runs". */
class FakeOutboxStore implements OutboxStore {
  readonly held = new Map<string, HeldMessage>()
  async put (id: string, message: HeldMessage): Promise<void> { this.held.set(id, message) }
  async delete (id: string): Promise<void> { this.held.delete(id) }
  async all (): Promise<Array<[string, HeldMessage]>> { return [...this.held] }
}

test('a held message survives a crash: a new router over the same store sends it, then forgets it', async () => {
  const store = new FakeOutboxStore()
  const first = setup({ holdUntilSubscribed: true }, { outboxStore: store, outboxRetryMs: 60_000 })
  first.pubsub.peers = false
  assert.is(await first.router.publish(TOPIC, bytes('acknowledged')), 0)
  assert.is(await first.router.publish(TOPIC, bytes('then this')), 0)
  assert.is(store.held.size, 2, 'in the store when publish returns (before the caller acknowledges it)')
  // kill -9: the first router is dropped without stop, and never sends
  const second = setup({ holdUntilSubscribed: true }, { outboxStore: store, outboxRetryMs: 60_000 })
  await second.router.ready()
  await waitFor(() => second.router.waiting === 0, { timeoutMs: 2000, what: 'the restored messages to be sent' })
  assert.equal(texts(second.pubsub), ['acknowledged', 'then this'], 'sent in the order they were held')
  assert.equal(first.pubsub.published, [])
  assert.is(store.held.size, 0, 'sent: forgotten')
  second.router.stop()
  first.router.stop()
})

test('held messages stay in the store across a clean stop; expired ones are dropped from it at the next start', async () => {
  const store = new FakeOutboxStore()
  const first = setup({ holdUntilSubscribed: true }, { outboxStore: store, outboxRetryMs: 60_000 })
  first.pubsub.peers = false
  await first.router.publish(TOPIC, bytes('kept'))
  first.router.stop()
  assert.is(first.router.waiting, 0)
  assert.is(store.held.size, 1, 'a stop does not forget it')
  const [[id, held]] = [...store.held] as [[string, HeldMessage]]
  store.held.set(id, { ...held, at: Date.now() - 3_600_000 })
  const second = setup({ holdUntilSubscribed: true }, { outboxStore: store, outboxRetryMs: 60_000, outboxTtlMs: 600_000 })
  await second.router.ready()
  await waitFor(() => store.held.size === 0, { timeoutMs: 2000, what: 'the expired message to leave the store' })
  assert.equal(second.pubsub.published, [], 'too old to send')
  assert.is(second.router.stats.unsent, 1)
  second.router.stop()
})

test('a message dropped from a full outbox leaves the store too', async () => {
  const store = new FakeOutboxStore()
  const s = setup({ holdUntilSubscribed: true }, { outboxStore: store, outboxRetryMs: 60_000, outboxSize: 1 })
  s.pubsub.peers = false
  await s.router.publish(TOPIC, bytes('old'))
  await s.router.publish(TOPIC, bytes('new'))
  assert.equal([...store.held.values()].map(m => new TextDecoder().decode(m.data)), ['new'])
  await s.router.stop()
})

test('penalise lowers the peer\'s application-specific score (P5), counted by code; forgive takes it back', async () => {
  const s = setup()
  const p5 = s.pubsub.score.params.appSpecificScore
  assert.is(p5('peer-a'), 0)
  s.router.penalise('peer-a', 'test', 'TEST_ERROR_UNAVAILABLE', 1)
  s.router.penalise('peer-a', 'test', 'TEST_ERROR_UNAVAILABLE', 1)
  assert.ok(p5('peer-a') < -1.99 && p5('peer-a') > -2.01, `two penalties: ${p5('peer-a')}`)
  assert.is(p5('peer-b'), 0, 'other peers are not affected')
  assert.is(s.router.stats.penalised, 2)
  assert.equal(s.results, [['test', 'penalised', 'TEST_ERROR_UNAVAILABLE'], ['test', 'penalised', 'TEST_ERROR_UNAVAILABLE']])
  s.router.forgive('peer-a', 2)
  assert.is(p5('peer-a'), 0)
  await s.router.stop()
})

test('contentMessageId depends on topic and data only', () => {
  const a = contentMessageId(signed('t1', 'same'))
  const b = contentMessageId({ type: 'unsigned', topic: 't1', data: new TextEncoder().encode('same') })
  const c = contentMessageId(signed('t2', 'same'))
  const d = contentMessageId(signed('t1', 'other'))
  assert.is(a.length, 32)
  assert.equal(a, b)
  assert.not.equal(a, c)
  assert.not.equal(a, d)
})

test('stop waits for the message being validated, and its handler, before it resolves', async () => {
  let release: () => void = () => {}
  const gate = new Promise<void>(resolve => { release = resolve })
  let validating = false
  const s = setup({ validate: async () => { validating = true; await gate } })
  send(s.pubsub, 'm-held', signed(TOPIC, 'in hand'))
  send(s.pubsub, 'm-queued', signed(TOPIC, 'waiting'))
  await waitFor(() => validating || undefined, { timeoutMs: 2000, what: 'the validation to start', intervalMs: 5 })
  let stopped = false
  const stopping = s.router.stop().then(() => { stopped = true })
  // the stop is parked on the message in hand: flush the microtasks and look
  await new Promise(resolve => setImmediate(resolve))
  assert.is(stopped, false, 'stop resolved under a message being validated')
  release()
  await stopping
  assert.equal(s.handled.map(h => h.value), ['in hand'], 'the message in hand was finished; the waiting one dropped')
  assert.is(s.pubsub.report('m-queued'), undefined)
})

test('stop gives up on a validation that never ends after its bound', async () => {
  const s = setup({ validate: async () => { await new Promise(() => {}) } })
  send(s.pubsub, 'm-stuck', signed(TOPIC, 'stuck'))
  await new Promise(resolve => setImmediate(resolve))
  const t = performance.now()
  await s.router.stop(50)
  assert.ok(performance.now() - t >= 45, 'waited for the bound')
  assert.is(s.handled.length, 0)
})

test.run()
