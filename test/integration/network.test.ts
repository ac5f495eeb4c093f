import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { TestCluster, type TestNode } from '../helpers/cluster.ts'
import { waitFor, hook } from '../helpers/wait.ts'

const cluster = new TestCluster()
let nodes: TestNode[] = []

test.before(hook(async () => {
  nodes = await cluster.create(3)
  await cluster.startAll()
}))

test.after(hook(async () => {
  await cluster.teardown()
}))

const node = (i: number): TestNode => nodes[i] as TestNode

test('three daemons bootstrapped from one another see each other as peers', async () => {
  for (const n of nodes) {
    const others = nodes.filter(o => o !== n).map(o => o.peerId)
    const info = await cluster.waitPeers(n, others)
    assert.is(info.peerId, n.peerId)
    assert.is(info.address, n.address)
  }
})

test('an announcement published on gossip by one node is received by the other two', async () => {
  // Each node publishes its signed announcement on /datanet/1/nodes/announce; the
  // receivers learn the publisher's Ethereum address only from that message.
  for (const receiver of nodes) {
    for (const sender of nodes.filter(o => o !== receiver)) {
      await waitFor(async () => {
        const info = await cluster.info(receiver)
        return info.peers.find(p => p.peerId === sender.peerId)?.address === sender.address
      }, { timeoutMs: 20_000, what: `${receiver.name} to receive ${sender.name}'s announcement` })
    }
  }
})

test('a block put into one node is fetched by another over bitswap', async () => {
  const bytes = new TextEncoder().encode(`block from ${node(0).name} at ${process.hrtime.bigint()}`)
  const put = await fetch(`${node(0).daemon.apiUrl}/v1/blocks`, {
    method: 'POST',
    headers: { authorization: `Bearer ${cluster.token(node(0))}`, 'content-type': 'application/octet-stream' },
    body: bytes
  })
  assert.is(put.status, 201)
  const { cid } = await put.json() as { cid: string }

  const missing = await fetch(`${node(2).daemon.apiUrl}/v1/blocks/${cid}?offline=true`)
  assert.is(missing.status, 404, 'not on node 2 before it asks the network')

  const got = await fetch(`${node(2).daemon.apiUrl}/v1/blocks/${cid}?timeoutMs=20000`)
  assert.is(got.status, 200)
  assert.equal(new Uint8Array(await got.arrayBuffer()), bytes)

  const local = await fetch(`${node(2).daemon.apiUrl}/v1/blocks/${cid}?offline=true`)
  assert.is(local.status, 200, 'kept locally once fetched')
})

test('writes need the API token', async () => {
  const res = await fetch(`${node(1).daemon.apiUrl}/v1/blocks`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: new Uint8Array([1]) })
  assert.is(res.status, 401)
})

test('/metrics serves libp2p and process metrics', async () => {
  const res = await fetch(`${node(0).daemon.apiUrl}/metrics`)
  assert.is(res.status, 200)
  const text = await res.text()
  assert.match(text, /libp2p_/)
  assert.match(text, /process_resident_memory_bytes/)
  assert.match(text, /datanet_gossip_messages_total\{topic="announce",result="accept"/)
  // the collections an idle node made to give its heap back (node/daemon/idle-trim.ts)
  assert.match(text, /^datanet_idle_trims \d+$/m)
})

test('a restarted daemon keeps its peer id, its blocks and its database', async () => {
  const n = node(1)
  const bytes = new TextEncoder().encode(`kept across restarts ${process.hrtime.bigint()}`)
  const put = await fetch(`${n.daemon.apiUrl}/v1/blocks`, { method: 'POST', headers: { authorization: `Bearer ${cluster.token(n)}`, 'content-type': 'application/octet-stream' }, body: bytes })
  const { cid } = await put.json() as { cid: string }
  const before = await cluster.info(n)

  assert.is(await n.daemon.stop(), 0, 'graceful stop exits 0')
  n.daemon.start()
  await n.daemon.waitReady()
  const after = await cluster.info(n)
  assert.is(after.peerId, before.peerId)
  assert.is(after.starts, before.starts + 1, 'the state database kept its count of starts')
  assert.ok(after.knownPeers >= 2, 'peers learnt before the restart are still known')
  const got = await fetch(`${n.daemon.apiUrl}/v1/blocks/${cid}?offline=true`)
  assert.is(got.status, 200)
  assert.equal(new Uint8Array(await got.arrayBuffer()), bytes)
  await cluster.waitPeers(n, nodes.filter(o => o !== n).map(o => o.peerId))
})

test('kill -9 then start: the lock is recovered and nothing is lost', async () => {
  const n = node(2)
  const bytes = new TextEncoder().encode(`acknowledged before a crash ${process.hrtime.bigint()}`)
  const put = await fetch(`${n.daemon.apiUrl}/v1/blocks`, { method: 'POST', headers: { authorization: `Bearer ${cluster.token(n)}`, 'content-type': 'application/octet-stream' }, body: bytes })
  assert.is(put.status, 201)
  const { cid } = await put.json() as { cid: string }
  const before = await cluster.info(n)

  await n.daemon.kill()
  n.daemon.start()
  await n.daemon.waitReady()
  const after = await cluster.info(n)
  assert.is(after.peerId, before.peerId)
  assert.is(after.starts, before.starts + 1)
  const got = await fetch(`${n.daemon.apiUrl}/v1/blocks/${cid}?offline=true`)
  assert.is(got.status, 200, 'a block acknowledged before kill -9 is still there')
  await cluster.waitPeers(n, nodes.filter(o => o !== n).map(o => o.peerId))
})

test.run()
