import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { encodeManifest, parseManifest } from '../../src/datanet/manifest.ts'
import { TestCluster, type TestNode } from '../helpers/cluster.ts'
import { hook, waitFor } from '../helpers/wait.ts'
import type { ContributionView } from '../../node/services/contributions.ts'

const cluster = new TestCluster()
let validators: TestNode[] = []
let observer: TestNode
let datanetId = ''
let counter = 0
const OPEN_LIMIT = 4

interface DatanetStatus { consensus: { height: number, round: number | null, step: string | null, lastFinal: number } }
interface VersionJson { height: number, cid: string, datasetRoot: string, recordCount: number }

async function api<T> (node: TestNode, path: string): Promise<{ status: number, body: T }> {
  const res = await fetch(`${node.daemon.apiUrl}${path}`, { signal: AbortSignal.timeout(10_000) })
  return { status: res.status, body: await res.json() as T }
}

/** Contributes a few fresh records through a node's API; returns the contribution CID. */
async function contribute (node: TestNode, records = 3): Promise<string> {
  const body = Array.from({ length: records }, () => JSON.stringify({ text: `consensus record ${counter++}` })).join('\n') + '\n'
  const res = await fetch(`${node.daemon.apiUrl}/v1/datanets/${datanetId}/contributions?format=jsonl`, {
    method: 'POST', headers: { authorization: `Bearer ${cluster.token(node)}`, 'content-type': 'application/x-ndjson' }, body
  })
  const json = await res.json() as { cid: string }
  assert.is(res.status, 201, JSON.stringify(json))
  return json.cid
}

async function lastFinal (node: TestNode): Promise<number> {
  return (await api<DatanetStatus>(node, `/v1/datanets/${datanetId}`)).body.consensus.lastFinal
}

async function waitFinal (nodes: TestNode[], height: number, timeoutMs = 60_000): Promise<VersionJson[]> {
  return await Promise.all(nodes.map(async n => await waitFor(async () => {
    const { status, body } = await api<VersionJson>(n, `/v1/datanets/${datanetId}/versions/${height}`)
    return status === 200 ? body : undefined
  }, { timeoutMs, what: `${n.name} to have version ${height}` })))
}

function assertSame (versions: VersionJson[]): void {
  for (const v of versions) {
    assert.is(v.cid, (versions[0] as VersionJson).cid)
    assert.is(v.datasetRoot, (versions[0] as VersionJson).datasetRoot)
  }
}

test.before(hook(async () => {
  const nodes = await cluster.create(5)
  validators = nodes.slice(0, 4)
  observer = nodes[4] as TestNode
  // a small backpressure bound on the observer (config api.maxOpenContributions), reached below while nothing can be final
  observer.daemon.spec.env = { ...observer.daemon.spec.env, DATANET_API_MAX_OPEN_CONTRIBUTIONS: String(OPEN_LIMIT) }
  const manifest = parseManifest({
    name: 'consensus', license: 'CC0-1.0',
    recordSchema: { type: 'object', required: ['text'] },
    consensus: { versionIntervalMs: 2500, proposeTimeoutMs: 1500, prevoteTimeoutMs: 800, precommitTimeoutMs: 800, timeoutDeltaMs: 300 },
    validators: validators.map(v => ({ address: v.address, stake: '100' }))
  })
  writeFileSync(join(cluster.root.dir, 'manifest.json'), JSON.stringify(manifest))
  datanetId = (await encodeManifest(manifest)).id
  await cluster.startAll()
  const res = await fetch(`${observer.daemon.apiUrl}/v1/datanets`, { method: 'POST', headers: { authorization: `Bearer ${cluster.token(observer)}`, 'content-type': 'application/json' }, body: JSON.stringify(manifest) })
  assert.is(res.status, 201)
  // every other node learns the datanet by id (as if from its config) and fetches the manifest from peers
  for (const n of validators) {
    const r = await fetch(`${n.daemon.apiUrl}/v1/datanets`, { method: 'POST', headers: { authorization: `Bearer ${cluster.token(n)}`, 'content-type': 'application/json' }, body: JSON.stringify(manifest) })
    assert.ok(r.status === 201 || r.status === 200)
  }
  for (const n of cluster.nodes) {
    await waitFor(async () => {
      const { body } = await api<{ subscribers: { contributions: string[], verdicts: string[] } }>(n, `/v1/datanets/${datanetId}`)
      return body.subscribers.contributions.length >= 4 && body.subscribers.verdicts.length >= 4
    }, { timeoutMs: 30_000, what: `${n.name} to see every node subscribed` })
  }
}))

test.after(hook(async () => {
  await cluster.teardown()
}))

test('contributions become final versions with identical roots on all five nodes', async () => {
  await contribute(validators[0] as TestNode)
  assertSame(await waitFinal(cluster.nodes, 1))
  await contribute(observer)
  await contribute(validators[2] as TestNode)
  const target = await lastFinal(validators[0] as TestNode) + 1
  assertSame(await waitFinal(cluster.nodes, target))
})

test('kill -9 of a validator: the others keep finalizing, and after restart it catches up', async () => {
  const victim = validators[3] as TestNode
  await victim.daemon.kill()
  const before = await lastFinal(validators[0] as TestNode)
  await contribute(validators[1] as TestNode)
  const during = await waitFinal(cluster.nodes.filter(n => n !== victim), before + 1)
  assertSame(during)
  victim.daemon.start()
  await victim.daemon.waitReady()
  const caught = await waitFinal([victim], before + 1)
  assert.is((caught[0] as VersionJson).cid, (during[0] as VersionJson).cid, 'the restarted validator holds the same version')
  // and it takes part again
  await contribute(victim)
  assertSame(await waitFinal(cluster.nodes, before + 2))
})

test('with 2 of 4 validators stopped nothing is final; after they restart progress resumes', async () => {
  const [a, b, c, d] = validators as [TestNode, TestNode, TestNode, TestNode]
  // A version was just made final, so the next height waits versionIntervalMs (2.5 s):
  // the contribution below is accepted inside that window and can only become final after it.
  const previous = await lastFinal(a) + 1
  await contribute(b)
  await waitFinal([a], previous)
  const before = previous
  const cid = await contribute(a)
  // the contribution is accepted while all four judge it …
  for (const n of validators) {
    await waitFor(async () => (await api<ContributionView>(n, `/v1/datanets/${datanetId}/contributions/${cid}`)).body.status === 'accepted',
      { timeoutMs: 30_000, what: `${n.name} to accept the contribution` })
  }
  // … but two stop before a version holding it can be final
  await Promise.all([c.daemon.kill(), d.daemon.kill()])
  // The live half opens the height and prevotes; without 2/3 of the stake nothing moves past that.
  const stuck = await waitFor(async () => {
    const { body } = await api<DatanetStatus>(a, `/v1/datanets/${datanetId}`)
    return body.consensus.height === before + 1 && body.consensus.step === 'prevote' ? body.consensus : undefined
  }, { timeoutMs: 60_000, what: 'the live validators to open the height and prevote' })
  assert.is(stuck.lastFinal, before, 'half the stake decides nothing')
  assert.is(await lastFinal(b), before)
  // Backpressure: nothing leaves the open set now, so uploads to the observer are taken
  // up to its bound and then refused with a clear, retryable error, not queued without end.
  await waitFor(async () => (await api<ContributionView>(observer, `/v1/datanets/${datanetId}/contributions/${cid}`)).status === 200 ? true : undefined,
    { timeoutMs: 30_000, what: 'the observer to hold the open contribution' })
  const taken: string[] = []
  let refused: Response | undefined
  for (let i = 0; i < OPEN_LIMIT + 2 && refused === undefined; i++) {
    const res = await fetch(`${observer.daemon.apiUrl}/v1/datanets/${datanetId}/contributions?format=jsonl`, {
      method: 'POST', headers: { authorization: `Bearer ${cluster.token(observer)}`, 'content-type': 'application/x-ndjson' }, body: JSON.stringify({ text: `consensus record ${counter++}` }) + '\n'
    })
    if (res.status === 201) taken.push((await res.json() as { cid: string }).cid)
    else refused = res
  }
  assert.ok(refused !== undefined, `the observer took ${taken.length} uploads beyond its bound of ${OPEN_LIMIT} open contributions`)
  assert.is(refused.status, 503)
  assert.is(refused.headers.get('retry-after'), '2')
  const error = (await refused.json() as { error: { code: string, message: string } }).error
  assert.is(error.code, 'CONTRIBUTION_ERROR_BUSY')
  assert.match(error.message, /contributions waiting for a version \(at most 4\)/)
  assert.ok(taken.length >= 1 && taken.length < OPEN_LIMIT, `${taken.length} taken: the one already open counts`)
  c.daemon.start()
  d.daemon.start()
  await Promise.all([c.daemon.waitReady(), d.daemon.waitReady()])
  assertSame(await waitFinal(cluster.nodes, before + 1, 90_000))
  // nothing taken is lost: every upload the observer acknowledged becomes final
  for (const t of taken) {
    await waitFor(async () => typeof (await api<ContributionView>(observer, `/v1/datanets/${datanetId}/contributions/${t}`)).body.version === 'number' ? true : undefined,
      { timeoutMs: 90_000, what: `contribution ${t} to be in a final version` })
  }
})

test('a node started after 50 versions catches up and verifies them all', async () => {
  // A second datanet with a short version interval, so 50 versions take seconds.
  const fast = parseManifest({
    name: 'catch-up', license: 'CC0-1.0', recordSchema: { type: 'object', required: ['text'] },
    consensus: { versionIntervalMs: 50, proposeTimeoutMs: 1500, prevoteTimeoutMs: 800, precommitTimeoutMs: 800, timeoutDeltaMs: 300 },
    validators: validators.map(v => ({ address: v.address, stake: '100' }))
  })
  const fastId = (await encodeManifest(fast)).id
  const post = async (n: TestNode, path: string, body: string, type: string): Promise<Response> =>
    await fetch(`${n.daemon.apiUrl}${path}`, { method: 'POST', headers: { authorization: `Bearer ${cluster.token(n)}`, 'content-type': type }, body })
  for (const n of cluster.nodes) assert.is((await post(n, '/v1/datanets', JSON.stringify(fast), 'application/json')).status, 201)
  for (const n of cluster.nodes) {
    await waitFor(async () => (await api<{ subscribers: { verdicts: string[] } }>(n, `/v1/datanets/${fastId}`)).body.subscribers.verdicts.length >= 4,
      { timeoutMs: 30_000, what: `${n.name} to see every node on the second datanet` })
  }
  const VERSIONS = 50
  for (let h = 1; h <= VERSIONS; h++) {
    const res = await post(validators[h % 4] as TestNode, `/v1/datanets/${fastId}/contributions?format=jsonl`, `{"text":"catch-up ${h}"}\n`, 'application/x-ndjson')
    assert.is(res.status, 201)
    await waitFor(async () => (await api(validators[0] as TestNode, `/v1/datanets/${fastId}/versions/${h}`)).status === 200,
      { timeoutMs: 60_000, what: `version ${h} of the second datanet` })
  }
  const [late] = await cluster.create(1)
  const node = late as TestNode
  node.daemon.start()
  await node.daemon.waitReady()
  assert.is((await post(node, '/v1/datanets', JSON.stringify(fast), 'application/json')).status, 201)
  const [mine, theirs] = await Promise.all([node, validators[0] as TestNode].map(async n => await waitFor(async () => {
    const { status, body } = await api<VersionJson>(n, `/v1/datanets/${fastId}/versions/${VERSIONS}`)
    return status === 200 ? body : undefined
  }, { timeoutMs: 120_000, what: `${n.name} to hold version ${VERSIONS}` }))) as [VersionJson, VersionJson]
  assert.is(mine.cid, theirs.cid, 'the same chain of versions')
  assert.is(mine.datasetRoot, theirs.datasetRoot)
  assert.is(mine.recordCount, VERSIONS)
  const all = (await api<VersionJson[]>(node, `/v1/datanets/${fastId}/versions`)).body
  assert.is(all.length, VERSIONS, 'every version applied, each after its certificate and parent were verified')
})

test.run()
