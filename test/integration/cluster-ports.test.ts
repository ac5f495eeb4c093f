/**
 * The test cluster's own footing (test/helpers/cluster.ts): a port freePort handed out is
 * free only when picked. When another process — here a stand-in for a stray daemon of an
 * earlier test, answering health checks like a node — holds a node's API port by the time
 * the node starts, the cluster must not take that process for the node. In CI on
 * `7eb9ad7` the wide-area test's manifest went to such a process: *n4 refused the
 * manifest: 401 … the API token is wrong*. Its p2p port may be taken the same way: the
 * node then exits (EADDRINUSE), and a new API port alone failed it three times over
 * (*n4: the API … is another process's (undefined), after 3 ports*, a full run on `835019e`).
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createServer, type Server } from 'node:http'
import { createServer as createTcpServer } from 'node:net'
import { TestCluster } from '../helpers/cluster.ts'

/** An HTTP server that looks like another datanet node: healthy, another peer id, every token wrong. */
async function strayNode (): Promise<{ server: Server, port: number }> {
  const server = createServer((req, res) => {
    res.setHeader('content-type', 'application/json')
    if (req.method === 'GET' && req.url === '/v1/health') { res.end(JSON.stringify({ status: 'ok' })); return }
    if (req.method === 'GET' && req.url === '/v1/node') { res.end(JSON.stringify({ peerId: '12D3KooWStrayStrayStrayStrayStrayStrayStrayStrayStray' })); return }
    res.statusCode = 401
    res.end(JSON.stringify({ error: { code: 'API_ERROR_UNAUTHORIZED', message: 'the API token is wrong' } }))
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('no port')
  return { server, port: address.port }
}

test('a node whose API port another process holds moves to a fresh port: what answers at its API is the node itself', async () => {
  const stray = await strayNode()
  const cluster = new TestCluster()
  try {
    const [n] = await cluster.create(1, [], { fastKeystore: true })
    if (n === undefined) throw new Error('no node')
    ;(n.daemon.spec as { apiPort: number }).apiPort = stray.port
    await cluster.startAll([n], 120_000)
    const info = await (await fetch(`${n.daemon.apiUrl}/v1/node`)).json() as { peerId: string }
    assert.is(info.peerId, n.peerId, `the API at ${n.daemon.apiUrl} is not the node's`)
    assert.is.not(n.daemon.spec.apiPort, stray.port)
    const res = await fetch(`${n.daemon.apiUrl}/v1/datanets`, { headers: { authorization: `Bearer ${cluster.token(n)}` } })
    assert.is(res.status, 200, 'the node takes its own token')
  } finally {
    await cluster.teardown()
    stray.server.close()
  }
})

test('a node whose p2p port another process holds moves to a fresh one and starts', async () => {
  const holder = createTcpServer()
  await new Promise<void>(resolve => holder.listen(0, '127.0.0.1', resolve))
  const address = holder.address()
  if (address === null || typeof address === 'string') throw new Error('no port')
  const cluster = new TestCluster()
  try {
    const [n] = await cluster.create(1, [], { fastKeystore: true })
    if (n === undefined) throw new Error('no node')
    ;(n.daemon.spec as { p2pPort: number }).p2pPort = address.port
    await cluster.startAll([n], 120_000)
    const info = await (await fetch(`${n.daemon.apiUrl}/v1/node`)).json() as { peerId: string }
    assert.is(info.peerId, n.peerId)
    assert.is.not(n.daemon.spec.p2pPort, address.port)
    assert.match(n.multiaddr, `/tcp/${n.daemon.spec.p2pPort}/`, 'others bootstrap to where it listens')
  } finally {
    await cluster.teardown()
    holder.close()
  }
})

test.run()
