/**
 * A message published before any peer subscribed to its topic (a node that contributes
 * right after it started, say) is not lost: with real gossipsub on loopback, it waits in
 * the router's outbox and goes out when a peer subscribes.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { pino } from 'pino'
import type { Libp2p } from 'libp2p'
import { GossipRouter } from '../../src/network/gossip.ts'
import { loopbackHost } from '../helpers/libp2p-host.ts'
import type { HostServices } from '../../src/network/libp2p-options.ts'
import { hook, waitFor, withDeadline } from '../helpers/wait.ts'

const HELD = '/datanet-test/1/held'
const PLAIN = '/datanet-test/1/plain'
const hosts: Libp2p<HostServices>[] = []
const routers: GossipRouter[] = []

async function host (name: string): Promise<{ node: Libp2p<HostServices>, router: GossipRouter, received: string[] }> {
  const node = await loopbackHost(name)
  hosts.push(node)
  const router = new GossipRouter(node.services.pubsub, { queueSize: 16, logger: pino({ level: 'silent' }), outboxRetryMs: 200 })
  routers.push(router)
  const received: string[] = []
  for (const [topic, hold] of [[HELD, true], [PLAIN, false]] as const) {
    router.register<string>({
      topic,
      kind: hold ? 'held' : 'plain',
      holdUntilSubscribed: hold,
      decode: data => new TextDecoder().decode(data),
      validate: () => {},
      handle: value => { received.push(value) }
    })
  }
  router.start()
  return { node, router, received }
}

test.after(hook(async () => {
  for (const r of routers) await r.stop()
  await Promise.all(hosts.map(async h => { await h.stop() }))
}))

test('published with no peer: held on a one-shot topic, not on a vote-like one; sent once a peer subscribes', async () => {
  const a = await host('a')
  const enc = (s: string): Uint8Array => new TextEncoder().encode(s)
  assert.is(await a.router.publish(HELD, enc('contribution')), 0)
  assert.is(await a.router.publish(PLAIN, enc('vote')), 0, 'a plain topic publishes to nobody without an error')
  assert.is(a.router.waiting, 1)

  const b = await host('b')
  await b.node.dial(a.node.getMultiaddrs()[0] as NonNullable<ReturnType<typeof a.node.getMultiaddrs>[number]>)
  await withDeadline(waitFor(() => b.received.includes('contribution'), { timeoutMs: 20_000, what: 'b to receive the held message' }), 25_000, 'the held message')
  assert.is(a.router.waiting, 0)
  assert.is(a.router.stats.delayed, 1)
  assert.not.ok(b.received.includes('vote'), 'the vote was not held')
})

// A node that follows a datanet after it connected (a node new to it, or one whose state
// was lost) registers the datanet's topics when its peers already subscribed to them:
// no subscription event comes, and catch-up waited for a timer (~1 s from start).
test('a handler registered after peers subscribed hears of each of them', async () => {
  const a = await host('c')
  const b = await host('d')
  const LATE = '/datanet-test/1/late'
  b.router.register<string>({ topic: LATE, kind: 'late', decode: data => new TextDecoder().decode(data), validate: () => {}, handle: () => {} })
  await b.node.dial(a.node.getMultiaddrs()[0] as NonNullable<ReturnType<typeof a.node.getMultiaddrs>[number]>)
  await withDeadline(waitFor(() => a.router.subscribers(LATE).length > 0, { timeoutMs: 20_000, what: 'a to see b subscribed' }), 25_000, 'the subscription')
  const heard: string[] = []
  a.router.register<string>({ topic: LATE, kind: 'late', decode: data => new TextDecoder().decode(data), validate: () => {}, handle: () => {}, onSubscribed: peer => { heard.push(peer) } })
  await withDeadline(waitFor(() => heard.length > 0, { timeoutMs: 5_000, what: 'onSubscribed for a peer already subscribed' }), 10_000, 'onSubscribed')
  assert.equal(heard, [b.node.peerId.toString()])
})

test.run()
