/**
 * A copy of a gossip message already seen is dropped before its signature is checked
 * (src/network/libp2p-options.ts: gossipsub's fast message id). Without it gossipsub parsed
 * the publisher's key and verified every copy, a validator's ~0.6 s in a finality run, two
 * thirds of it on copies of messages it had already. Four hosts in a full mesh: each gets a
 * message from its publisher and from the two others that relay it.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { TopicValidatorResult, type GossipSub } from '@libp2p/gossipsub'
import { loopbackHost } from '../helpers/libp2p-host.ts'
import { waitFor } from '../helpers/wait.ts'

const TOPIC = 'duplicates'

/** The parts of gossipsub this test drives beyond its public interface. */
interface Internals extends GossipSub {
  reportMessageValidationResult: (msgId: string, source: string, result: TopicValidatorResult) => void
  getMeshPeers: (topic: string) => string[]
  score: { duplicateMessage: (...a: unknown[]) => void }
}
const pubsubOf = (h: Awaited<ReturnType<typeof loopbackHost>>): Internals => h.services.pubsub as unknown as Internals
const MESSAGES = 20

test('each host checks one signature a message, however many copies reach it', async () => {
  // the class of every Ed25519 peer's public key: its verify is what checks a message's signature
  const proto = Object.getPrototypeOf((await generateKeyPair('Ed25519')).publicKey) as { verify: (...a: unknown[]) => unknown }
  const verify = proto.verify
  const hosts = await Promise.all([0, 1, 2, 3].map(async i => await loopbackHost(`duplicates-${i}`)))
  // the hosts share this process: the checks of all of them
  let checked = 0
  proto.verify = function (this: unknown, ...args: unknown[]) {
    checked++
    return verify.apply(this, args)
  }
  try {
    await Promise.all(hosts.map(async h => { await h.start() }))
    for (let i = 0; i < hosts.length; i++) {
      for (let j = i + 1; j < hosts.length; j++) await hosts[i]!.dial(hosts[j]!.getMultiaddrs())
    }
    const received = hosts.map(() => new Set<string>())
    const duplicates = hosts.map(() => 0)
    hosts.forEach((h, i) => {
      const pubsub = pubsubOf(h)
      pubsub.subscribe(TOPIC)
      pubsub.addEventListener('gossipsub:message', e => {
        received[i]!.add(e.detail.msgId)
        pubsub.reportMessageValidationResult(e.detail.msgId, e.detail.propagationSource.toString(), TopicValidatorResult.Accept)
      })
      const score = pubsub.score
      const dup = score.duplicateMessage.bind(score)
      score.duplicateMessage = (...a: unknown[]) => { duplicates[i]!++; dup(...a) }
    })
    await waitFor(() => hosts.every(h => pubsubOf(h).getMeshPeers(TOPIC).length === hosts.length - 1), { timeoutMs: 15_000, what: 'a full mesh' })
    // what identify checked while the hosts met is not counted
    checked = 0
    for (let m = 0; m < MESSAGES; m++) await hosts[0]!.services.pubsub.publish(TOPIC, new TextEncoder().encode(`message ${m}`))
    await waitFor(() => received.slice(1).every(r => r.size === MESSAGES), { timeoutMs: 10_000, what: 'every message at every host' })
    // the copies relayed by the two other hosts reached each host
    await waitFor(() => duplicates.slice(1).every(d => d >= MESSAGES), { timeoutMs: 10_000, what: 'the relayed copies' })
    const copies = duplicates.slice(1).reduce((a, b) => a + b, 0)
    assert.is(checked, MESSAGES * (hosts.length - 1), `${checked} signatures checked for ${MESSAGES} messages at 3 hosts that got ${copies} copies more`)
  } finally {
    proto.verify = verify
    await Promise.all(hosts.map(async h => { await h.stop() }))
  }
})

test.run()
