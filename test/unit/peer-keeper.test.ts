/**
 * The peer keeper (src/network/peer-keeper.ts): bootstrap peers and the peers other nodes
 * announce are dialled and redialled; on 3476a64 only bootstrap peers were, so nodes given
 * one seed reached each other only through it (test/chain/separate-hosts.test.ts).
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { pino } from 'pino'
import type { Libp2p } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { PeerKeeper } from '../../src/network/peer-keeper.ts'
import { waitFor } from '../helpers/wait.ts'

const logger = pino({ level: 'silent' })

async function peerId (): Promise<string> {
  return peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
}

/** Just enough of libp2p: dials recorded, a dial to `reachable` connects, any other fails. */
function fakeLibp2p (self: string, reachable: Set<string>): { libp2p: Libp2p, dials: string[][], connected: Set<string> } {
  const dials: string[][] = []
  const connected = new Set<string>()
  const libp2p = {
    peerId: { toString: () => self },
    getPeers: () => [...connected].map(p => ({ toString: () => p })),
    dial: async (addrs: Multiaddr[]) => {
      const list = addrs.map(a => a.toString())
      dials.push(list)
      const peer = list[0]?.split('/p2p/')[1] as string
      if (!reachable.has(peer)) throw new Error('connection refused')
      connected.add(peer)
    }
  } as unknown as Libp2p
  return { libp2p, dials, connected }
}

test('an announced peer is dialled at its announced addresses, and kept connected', async () => {
  const [self, seed, other] = await Promise.all([peerId(), peerId(), peerId()])
  const { libp2p, dials, connected } = fakeLibp2p(self, new Set([seed, other]))
  const keeper = new PeerKeeper({ peers: [`/ip4/10.0.0.1/tcp/7400/p2p/${seed}`], dialTimeoutMs: 1000, minBackoffMs: 5, logger })
  keeper.start(libp2p)
  try {
    await waitFor(() => connected.has(seed) || undefined, { timeoutMs: 2000, what: 'the seed dialled' })
    // announcements carry addresses with and without the /p2p suffix; another peer's is ignored
    assert.is(keeper.add(other, [`/ip4/10.0.0.2/tcp/7400/p2p/${other}`, '/ip4/10.0.0.3/tcp/7400', `/ip4/10.0.0.9/tcp/7400/p2p/${seed}`]), true)
    await waitFor(() => connected.has(other) || undefined, { timeoutMs: 2000, what: 'the announced peer dialled' })
    assert.equal(dials.find(d => d[0]?.endsWith(other)), [`/ip4/10.0.0.2/tcp/7400/p2p/${other}`, `/ip4/10.0.0.3/tcp/7400/p2p/${other}`])
    assert.is(keeper.add(self, ['/ip4/10.0.0.4/tcp/7400']), false, 'never itself')
    assert.is(keeper.add(await peerId(), ['not a multiaddr']), false, 'nothing to dial')
    // a dropped connection is dialled again
    connected.delete(other)
    const before = dials.length
    await waitFor(() => connected.has(other) || undefined, { timeoutMs: 2000, what: 'the announced peer redialled' })
    assert.ok(dials.length > before)
  } finally {
    keeper.stop()
  }
})

test('announced peers are bounded, and one that never answers is dropped', async () => {
  const self = await peerId()
  const { libp2p, dials } = fakeLibp2p(self, new Set())
  const keeper = new PeerKeeper({ peers: [], dialTimeoutMs: 1000, minBackoffMs: 1, maxBackoffMs: 2, maxAnnounced: 2, maxAnnouncedFailures: 3, logger })
  keeper.start(libp2p)
  try {
    const [a, b, c] = await Promise.all([peerId(), peerId(), peerId()])
    assert.is(keeper.add(a, ['/ip4/10.0.0.5/tcp/7400']), true)
    assert.is(keeper.add(b, ['/ip4/10.0.0.6/tcp/7400']), true)
    assert.is(keeper.add(c, ['/ip4/10.0.0.7/tcp/7400']), false, 'over the bound')
    await waitFor(() => keeper.peers.length === 0 || undefined, { timeoutMs: 3000, what: 'the unreachable peers dropped' })
    assert.is(dials.filter(d => d[0]?.endsWith(a)).length, 3, 'three tries, then dropped')
    assert.is(keeper.add(c, ['/ip4/10.0.0.7/tcp/7400']), true, 'room again')
    await waitFor(() => dials.some(d => d[0]?.endsWith(c)) || undefined, { timeoutMs: 2000, what: 'the new peer dialled' })
  } finally {
    keeper.stop()
  }
})

test.run()
