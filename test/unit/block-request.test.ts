/**
 * Blocks asked of one peer (src/network/block-request.ts), the way a gossiped contribution's
 * shards are asked of its publisher: each block checked against its CID, a forged one
 * counted against the peer and not taken, a response bounded in bytes, and a request the
 * protocol does not allow refused by both sides.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { identity } from 'multiformats/hashes/identity'
import { lpStream } from '@libp2p/utils'
import type { Libp2p } from 'libp2p'
import { BLOCK_REQUEST_PROTOCOL, MAX_BLOCKS_PER_REQUEST, blockMatches } from '../../src/network/block-request.ts'
import type { HostServices } from '../../src/network/libp2p-options.ts'
import { shardCid } from '../../src/datanet/shard.ts'
import { loopbackHost } from '../helpers/libp2p-host.ts'

const bytesOf = (n: number, fill: number): Uint8Array => new Uint8Array(n).fill(fill)

/** A server holding `held` (its bytes served as they are: a forged entry is served as given), and an asker connected to it. */
async function pair (held: Map<string, Uint8Array>): Promise<{ server: Libp2p<HostServices>, asker: Libp2p<HostServices>, stop: () => Promise<void> }> {
  const server = await loopbackHost('blocks-server', { blockSource: { get: async cid => held.get(cid.toString()) } })
  const asker = await loopbackHost('blocks-asker')
  await server.start()
  await asker.start()
  await asker.dial(server.getMultiaddrs())
  return { server, asker, stop: async () => { await asker.stop(); await server.stop() } }
}

test('blocks held come back checked, one not held comes back empty', async () => {
  const a = bytesOf(1000, 1)
  const b = bytesOf(70_000, 2)
  const missing = shardCid(bytesOf(10, 3))
  const held = new Map([[shardCid(a).toString(), a], [shardCid(b).toString(), b]])
  const { server, asker, stop } = await pair(held)
  try {
    const answer = await asker.services.blocks.request(server.peerId, [shardCid(a), missing, shardCid(b)])
    assert.is(answer.forged, 0)
    assert.equal(answer.blocks[0], a)
    assert.is(answer.blocks[1], undefined)
    assert.equal(answer.blocks[2], b)
  } finally {
    await stop()
  }
})

test('a block that does not hash to its CID is not taken and is counted against the peer', async () => {
  const honest = bytesOf(500, 4)
  const claimed = shardCid(bytesOf(500, 5))
  const held = new Map([[claimed.toString(), bytesOf(500, 6)], [shardCid(honest).toString(), honest]])
  const { server, asker, stop } = await pair(held)
  try {
    const answer = await asker.services.blocks.request(server.peerId, [claimed, shardCid(honest)])
    assert.is(answer.forged, 1)
    assert.is(answer.blocks[0], undefined, 'the forged bytes are dropped')
    assert.equal(answer.blocks[1], honest, 'an honest block beside it is taken')
  } finally {
    await stop()
  }
})

test('a CID of a hash the asker cannot check: its block is not taken, nor counted as forged', async () => {
  const inline = CID.createV1(raw.code, identity.digest(bytesOf(8, 7)))
  const { server, asker, stop } = await pair(new Map([[inline.toString(), bytesOf(8, 7)]]))
  try {
    const answer = await asker.services.blocks.request(server.peerId, [inline])
    assert.equal(answer, { blocks: [undefined], forged: 0 })
  } finally {
    await stop()
  }
})

test('a response carries 4 MiB of blocks at most: the rest come back empty, to be asked again', async () => {
  const big = [1, 2, 3].map(i => bytesOf(1536 * 1024, i))
  const { server, asker, stop } = await pair(new Map(big.map(b => [shardCid(b).toString(), b])))
  try {
    const answer = await asker.services.blocks.request(server.peerId, big.map(b => shardCid(b)))
    assert.equal(answer.blocks.map(b => b?.byteLength), [1536 * 1024, 1536 * 1024, undefined])
    assert.is(answer.forged, 0)
  } finally {
    await stop()
  }
})

test('more CIDs than a request allows are refused by the asker, and by the server from a peer that sends them anyway; the server still serves', async () => {
  const block = bytesOf(100, 8)
  const { server, asker, stop } = await pair(new Map([[shardCid(block).toString(), block]]))
  try {
    const many = Array.from({ length: MAX_BLOCKS_PER_REQUEST + 1 }, (_, i) => shardCid(bytesOf(4, i)))
    let refused: unknown
    await asker.services.blocks.request(server.peerId, many).catch(err => { refused = err })
    assert.instance(refused, RangeError)
    // a hostile asker writes the request itself: the server resets the stream, answering nothing
    const { encodeCbor } = await import('../../src/codec/cbor.ts')
    for (const junk of [encodeCbor({ cids: many }), encodeCbor({ cids: ['not a cid'] }), new Uint8Array([0xff, 0x00])]) {
      const stream = await asker.dialProtocol(server.peerId, BLOCK_REQUEST_PROTOCOL)
      const lp = lpStream(stream)
      await lp.write(junk)
      let answered = true
      await lp.read({ signal: AbortSignal.timeout(5000) }).catch(() => { answered = false })
      assert.not.ok(answered, 'no answer to a malformed request')
    }
    const answer = await asker.services.blocks.request(server.peerId, [shardCid(block)])
    assert.equal(answer.blocks[0], block)
  } finally {
    await stop()
  }
})

test('a peer without the protocol (an older node) fails at once with UnsupportedProtocolError', async () => {
  const { server, asker, stop } = await pair(new Map())
  try {
    await server.unhandle(BLOCK_REQUEST_PROTOCOL)
    let name = ''
    await asker.services.blocks.request(server.peerId, [shardCid(bytesOf(4, 1))]).catch(err => { name = (err as Error).name })
    assert.is(name, 'UnsupportedProtocolError')
  } finally {
    await stop()
  }
})

test('a server answers maxServing requests at once at most, over all its peers: the rest wait their turn and are answered', async () => {
  const block = bytesOf(1000, 11)
  let now = 0
  let most = 0
  let open: () => void = () => {}
  const gate = new Promise<void>(resolve => { open = resolve })
  // 4 at once here (32 in a node): three peers asking 4 each
  const server = await loopbackHost('blocks-busy', {
    blockServing: 4,
    blockSource: {
      get: async () => {
        most = Math.max(most, ++now)
        await gate
        now--
        return block
      }
    }
  })
  const askers = await Promise.all([0, 1, 2].map(async i => await loopbackHost(`blocks-asker-${i}`)))
  try {
    await server.start()
    for (const a of askers) {
      await a.start()
      await a.dial(server.getMultiaddrs())
    }
    // (a failed one is kept as its error: the test reports it, not the process)
    const answers = askers.flatMap(a => Array.from({ length: 4 }, async () => await a.services.blocks.request(server.peerId, [shardCid(block)]).catch((err: Error) => ({ blocks: [], forged: 0, err }))))
    const { waitFor } = await import('../helpers/wait.ts')
    // every request reached the server: 4 being answered, the 8 others held, not served beside them
    await waitFor(() => now + server.services.blocks.queued >= 12, { timeoutMs: 10_000, what: 'all 12 requests at the server' })
    assert.is(now, 4)
    assert.is(server.services.blocks.queued, 8)
    open()
    const all = await Promise.all(answers)
    const failed = all.filter(a => a.blocks[0] === undefined).map(a => 'err' in a ? String(a.err) : 'no block')
    assert.equal(failed, [], 'every request answered in the end')
    assert.is(most, 4)
  } finally {
    open()
    for (const a of askers) await a.stop()
    await server.stop()
  }
})

test('blockMatches: the sha2-256 of the bytes against the CID', () => {
  const b = bytesOf(64, 9)
  assert.ok(blockMatches(shardCid(b), b))
  assert.not.ok(blockMatches(shardCid(b), bytesOf(64, 10)))
})

test.run()
