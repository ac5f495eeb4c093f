/**
 * Wide-area links (issue 14 item 8): 4 validators and 1 plain node as real daemons, each
 * behind a DelayRelay adding 50 ms ± 5 ms each way (100 ms round trips), announcing the
 * relay's address and bootstrapped to the others' relays (test/helpers/wide-area.ts).
 * Every connection goes through a relay, and a contribution still becomes final on every
 * node. The figures are scripts/bench/wide-area.ts's; no timing is asserted here.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { hook, waitFor } from '../helpers/wait.ts'
import { relayedConnections, startWideAreaNetwork, tcpPort, type WideAreaNetwork } from '../helpers/wide-area.ts'

let net: WideAreaNetwork | undefined

test.before(hook(async () => {
  net = await startWideAreaNetwork({ validators: 4, nodes: 1, delayMs: 50, jitterMs: 5 })
}))

test.after(hook(async () => {
  // KEEP_TEST_DIRS=1 keeps the nodes' logs and data directories
  await net?.stop(false)
}))

test('every connection between nodes goes through a relay, none to a node\'s own port', async () => {
  const n = net as WideAreaNetwork
  const { all, direct } = await relayedConnections(n)
  assert.equal(direct, [], `direct connections: ${JSON.stringify(direct)}`)
  // each of the 5 nodes is connected to the 4 others
  for (const m of n.members) {
    const peers = new Set(all.filter(c => c.from === m.name).map(c => c.peer))
    assert.ok(peers.size >= n.members.length - 1, `${m.name} has ${peers.size} peers`)
  }
  // and each relay that the open connections go through carries traffic both ways (a
  // connection just accepted may not have sent its first bytes yet). Not every relay need
  // carry one: when two nodes dial each other at once, either dial may be the one kept.
  const used = n.relays.filter(r => all.some(c => { const port = tcpPort(c.remote); return port !== undefined && (port === r.port || r.upstreamPorts.has(port)) }))
  assert.ok(used.length > 0, 'no connection goes through a relay')
  for (const r of used) {
    const i = n.relays.indexOf(r)
    await waitFor(() => r.stats.connections > 0 && r.stats.bytesUp > 0 && r.stats.bytesDown > 0 ? true : undefined, { timeoutMs: 20_000, what: `traffic both ways through the relay of ${n.members[i]?.name ?? i}` })
  }
})

test('a contribution to the plain node becomes final on every node over the delayed links', async () => {
  const n = net as WideAreaNetwork
  const plain = n.members.find(m => m.role === 'node')
  assert.ok(plain !== undefined)
  const res = await fetch(`${plain.daemon.apiUrl}/v1/datanets/${n.datanet}/contributions?format=jsonl`, {
    method: 'POST',
    headers: { authorization: `Bearer ${plain.token}`, 'content-type': 'application/x-ndjson' },
    body: '{"text":"a record that crossed 100 ms round trips"}\n',
    signal: AbortSignal.timeout(30_000)
  })
  assert.is(res.status, 201, await res.clone().text())
  const { cid } = await res.json() as { cid: string }
  const heights = await Promise.all(n.members.map(async m => await waitFor(async () => {
    const r = await fetch(`${m.daemon.apiUrl}/v1/contributions/${cid}`, { signal: AbortSignal.timeout(5000) })
    if (!r.ok) return undefined
    const view = await r.json() as { version: number | null }
    return typeof view.version === 'number' ? view.version : undefined
  }, { timeoutMs: 45_000, what: `${m.name} to hold ${cid} in a final version`, intervalMs: 200 })))
  // one version, the same everywhere
  assert.is(new Set(heights).size, 1, `heights ${heights.join(', ')}`)
  const versions = await Promise.all(n.members.map(async m => {
    const r = await fetch(`${m.daemon.apiUrl}/v1/datanets/${n.datanet}/versions/${heights[0]}`, { signal: AbortSignal.timeout(5000) })
    return (await r.json() as { cid: string }).cid
  }))
  assert.is(new Set(versions).size, 1, `versions ${versions.join(', ')}`)
  // still no direct connection after the traffic of a whole height
  assert.equal((await relayedConnections(n)).direct, [])
})

test.run()
