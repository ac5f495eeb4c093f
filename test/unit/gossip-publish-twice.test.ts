/**
 * Publishing a message already sent is not a failure. A node that took an upload stores its
 * contribution, then publishes it; the re-gossip of pending local contributions (sent again
 * until decided, contributions.ts) can publish it in between, and the upload's own publish
 * then threw gossipsub's `PublishError.Duplicate`: the API answered 500 for a contribution
 * it had stored and sent (seen on `a5fb6b7` in scripts/bench/catch-up.ts: *upload refused:
 * 500 … PublishError.Duplicate*, one of 600 uploads).
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { pino } from 'pino'
import { GossipRouter } from '../../src/network/gossip.ts'
import { loopbackHost } from '../helpers/libp2p-host.ts'

test('the same message published twice: the second is a no-op (0 recipients), not an error', async () => {
  const node = await loopbackHost('publish-twice')
  await node.start()
  const router = new GossipRouter(node.services.pubsub, { queueSize: 16, logger: pino({ level: 'silent' }) })
  router.register<string>({ topic: '/datanet-test/1/twice', kind: 'twice', decode: d => new TextDecoder().decode(d), validate: () => {}, handle: () => {} })
  router.start()
  try {
    const data = new TextEncoder().encode('a contribution')
    assert.is(await router.publish('/datanet-test/1/twice', data), 0)
    let second: unknown
    try {
      second = await router.publish('/datanet-test/1/twice', data)
    } catch (err) {
      second = err
    }
    assert.is(second, 0, `the second publish: ${String(second)}`)
  } finally {
    router.stop()
    await node.stop()
  }
})

test.run()
