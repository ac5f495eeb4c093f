import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import type { Libp2p } from 'libp2p'
import { multiaddr } from '@multiformats/multiaddr'
import { CID } from 'multiformats/cid'
import { Wallet, encryptKeystoreJson } from 'ethers'
import { encodeManifest, parseManifest } from '../../src/datanet/manifest.ts'
import { encodeContribution, signContribution, contributionCid } from '../../src/contribution/contribution.ts'
import type { HostServices } from '../../src/network/libp2p-options.ts'
import { topics } from '../../src/network/topics.ts'
import { dataDirPaths } from '../../src/storage/data-dir.ts'
import { canonicalJson } from '../../src/codec/jcs.ts'
import { fromHex, sha256, toHex } from '../../src/codec/hash.ts'
import { verifyProof } from '../../src/merkle/tree.ts'
import { TestCluster, type TestNode } from '../helpers/cluster.ts'
import { loopbackHost } from '../helpers/libp2p-host.ts'
import { runCli } from '../helpers/cli.ts'
import { waitFor, hook } from '../helpers/wait.ts'
import type { ContributionView } from '../../node/services/contributions.ts'

const cluster = new TestCluster()
let validators: TestNode[] = []
let plain: TestNode
let datanetId = ''
let forger: Libp2p<HostServices> | undefined

const RECORDS = 10_000

/** The datanets of this file: text records, fast consensus, the three validators. */
function manifestNamed (name: string): ReturnType<typeof parseManifest> {
  return parseManifest({
    name,
    license: 'CC0-1.0',
    recordSchema: { type: 'object', required: ['text'], properties: { text: { type: 'string', minLength: 1 } } },
    consensus: { versionIntervalMs: 300, proposeTimeoutMs: 2000, prevoteTimeoutMs: 1000, precommitTimeoutMs: 1000, timeoutDeltaMs: 500 },
    validators: validators.map((v, i) => ({ address: v.address, stake: String(1000 + i) }))
  })
}

test.before(hook(async () => {
  const nodes = await cluster.create(4)
  validators = nodes.slice(0, 3)
  plain = nodes[3] as TestNode
  const manifest = manifestNamed('integration')
  writeFileSync(join(cluster.root.dir, 'manifest.json'), JSON.stringify(manifest))
  datanetId = (await encodeManifest(manifest)).id
  // Validators follow the datanet from their config: they fetch the manifest from whoever has it.
  for (const v of validators) (v.daemon.spec as { env?: NodeJS.ProcessEnv }).env = { DATANET_DATANETS: datanetId }
  await cluster.startAll()
  for (const n of cluster.nodes) await cluster.waitPeers(n, cluster.nodes.filter(o => o !== n).map(o => o.peerId))
}))

test.after(hook(async () => {
  await forger?.stop()
  await cluster.teardown()
}))

const cli = (node: TestNode, args: string[]): ReturnType<typeof runCli> =>
  runCli([...args, '--api', node.daemon.apiUrl, '--token-file', dataDirPaths(node.dataDir).apiToken])

async function api<T> (node: TestNode, path: string): Promise<{ status: number, body: T }> {
  const res = await fetch(`${node.daemon.apiUrl}${path}`, { signal: AbortSignal.timeout(10_000) })
  return { status: res.status, body: await res.json() as T }
}

test('datanet create on the plain node; the validators fetch the manifest and follow it', async () => {
  const created = await cli(plain, ['datanet', 'create', '--manifest', join(cluster.root.dir, 'manifest.json')])
  assert.is(created.code, 0, created.stderr)
  assert.is(created.stdout.trim(), datanetId)
  for (const n of cluster.nodes) {
    await waitFor(async () => (await api<{ subscribers: { contributions: string[], verdicts: string[] } }>(n, `/v1/datanets/${datanetId}`)).status === 200,
      { timeoutMs: 30_000, what: `${n.name} to follow the datanet` })
  }
  // every node hears every other on both topics before anything is published
  for (const n of cluster.nodes) {
    await waitFor(async () => {
      const { body } = await api<{ subscribers: { contributions: string[], verdicts: string[] } }>(n, `/v1/datanets/${datanetId}`)
      return body.subscribers.contributions.length >= 3 && body.subscribers.verdicts.length >= 3
    }, { timeoutMs: 30_000, what: `${n.name} to see the others subscribed` })
  }
  const list = await cli(validators[0] as TestNode, ['datanet', 'list', '--json'])
  assert.equal((JSON.parse(list.stdout) as Array<{ id: string }>).map(d => d.id), [datanetId])
})

let cid = ''

test(`a ${RECORDS}-record JSONL contribution on the plain node is accepted on every node with the same verdicts`, async () => {
  const file = join(cluster.root.dir, 'records.jsonl')
  writeFileSync(file, Array.from({ length: RECORDS }, (_, i) => JSON.stringify({ text: `record ${i}: ${'lorem ipsum '.repeat(i % 7)}`, i })).join('\n') + '\n')
  const out = await cli(plain, ['contribute', '--datanet', datanetId, file, '--json'])
  assert.is(out.code, 0, out.stderr)
  const result = JSON.parse(out.stdout) as { cid: string, recordCount: number }
  cid = result.cid
  assert.is(result.recordCount, RECORDS)

  const views: ContributionView[] = []
  for (const n of cluster.nodes) {
    views.push(await waitFor(async () => {
      const { status, body } = await api<ContributionView>(n, `/v1/datanets/${datanetId}/contributions/${cid}`)
      return status === 200 && body.status === 'accepted' && body.verdicts.length === 3 ? body : undefined
    }, { timeoutMs: 60_000, what: `${n.name} to see the contribution accepted with 3 verdicts` }))
  }
  const summary = (v: ContributionView): string => JSON.stringify(v.verdicts.map(x => [x.validator, x.accept, x.score, x.reasons, x.signature]).sort())
  for (const v of views) {
    assert.is(summary(v), summary(views[0] as ContributionView), 'every node reports the same verdicts')
    assert.is(v.recordCount, RECORDS)
    assert.is(v.score, 100)
  }
  // shards pinned on every validator
  for (const n of validators) {
    for (const shard of (views[0] as ContributionView).shards) {
      const res = await fetch(`${n.daemon.apiUrl}/v1/blocks/${shard}?offline=true`)
      assert.is(res.status, 200, `${n.name} holds shard ${shard}`)
    }
  }
  const shown = await cli(validators[1] as TestNode, ['contribution', 'show', cid])
  assert.is(shown.code, 0)
  assert.match(shown.stdout, /status\s+accepted/)
})

test('the accepted contribution becomes a final version with the same dataset root on every node, and its records have proofs', async () => {
  const finals: Array<{ height: number, datasetRoot: string, cid: string, recordCount: number, certificate: unknown[] }> = []
  for (const n of cluster.nodes) {
    finals.push(await waitFor(async () => {
      const { status, body } = await api<ContributionView>(n, `/v1/datanets/${datanetId}/contributions/${cid}`)
      if (status !== 200 || body.version === null) return undefined
      const v = await api<{ height: number, datasetRoot: string, cid: string, recordCount: number, certificate: unknown[] }>(n, `/v1/datanets/${datanetId}/versions/${body.version}`)
      return v.status === 200 ? v.body : undefined
    }, { timeoutMs: 60_000, what: `${n.name} to include the contribution in a final version` }))
  }
  for (const f of finals) {
    assert.is(f.cid, (finals[0] as { cid: string }).cid, 'one version for the height everywhere')
    assert.is(f.datasetRoot, (finals[0] as { datasetRoot: string }).datasetRoot)
  }
  assert.ok(((finals[0] as { recordCount: number }).recordCount) >= RECORDS)
  assert.ok((finals[0] as { certificate: unknown[] }).certificate.length >= 2, 'a precommit certificate of >= 2/3 of the stake')
  const record = new TextEncoder().encode(canonicalJson({ text: 'record 5: ' + 'lorem ipsum '.repeat(5), i: 5 }))
  const hash = toHex(sha256(record))
  const out = await cli(plain, ['proof', '--datanet', datanetId, hash, '--json'])
  assert.is(out.code, 0, out.stderr)
  const proof = JSON.parse(out.stdout) as { datasetRoot: string, proof: string[] }
  assert.ok(verifyProof(proof.proof.map(p => fromHex(p, 32)), fromHex(proof.datasetRoot, 32), sha256(record)), 'the served proof verifies with the contract\'s pair hashing')
})

test('a schema-invalid record refuses the upload, naming the line', async () => {
  const file = join(cluster.root.dir, 'bad.jsonl')
  writeFileSync(file, '{"text":"fine"}\n{"text":"also fine"}\n{"text":42}\n')
  const out = await cli(plain, ['contribute', '--datanet', datanetId, file])
  assert.is(out.code, 2)
  assert.match(out.stderr, /bad\.jsonl:3: \/text must be string/)
})

test('an upload of duplicates only is refused as such', async () => {
  const file = join(cluster.root.dir, 'dups.jsonl')
  writeFileSync(file, `${JSON.stringify({ text: 'record 1: lorem ipsum ', i: 1 })}\n`)
  const out = await cli(validators[2] as TestNode, ['contribute', '--datanet', datanetId, file])
  assert.is(out.code, 2)
  assert.match(out.stderr, /duplicates/)
})

test('a contributor signs with its own key (--key-file): the node builds, the contributor signs, every node accepts it', async () => {
  const account = Wallet.createRandom()
  const keyFile = join(cluster.root.dir, 'contributor.json')
  writeFileSync(keyFile, await encryptKeystoreJson({ address: account.address, privateKey: account.privateKey }, 'contributor-pw', { scrypt: { N: 1024 } }))
  const pwFile = join(cluster.root.dir, 'contributor.pw')
  writeFileSync(pwFile, 'contributor-pw')
  const file = join(cluster.root.dir, 'own-key.txt')
  writeFileSync(file, 'a line signed by its own contributor\nand a second one\n')
  const out = await cli(plain, ['contribute', '--datanet', datanetId, file, '--key-file', keyFile, '--key-password-file', pwFile, '--json'])
  assert.is(out.code, 0, out.stderr)
  const { cid: ownCid } = JSON.parse(out.stdout) as { cid: string }
  for (const n of cluster.nodes) {
    const view = await waitFor(async () => {
      const { status, body } = await api<ContributionView>(n, `/v1/datanets/${datanetId}/contributions/${ownCid}`)
      return status === 200 && body.status === 'accepted' ? body : undefined
    }, { timeoutMs: 30_000, what: `${n.name} to accept the contribution signed by its contributor` })
    assert.is(view.contributor, account.address)
  }
  const wrongPw = join(cluster.root.dir, 'wrong.pw')
  writeFileSync(wrongPw, 'nope')
  const refused = await cli(plain, ['contribute', '--datanet', datanetId, file, '--key-file', keyFile, '--key-password-file', wrongPw])
  assert.is(refused.code, 2)
  assert.match(refused.stderr, /wrong password/)
})

async function startForger (): Promise<Libp2p<HostServices>> {
  const node = await loopbackHost('forger')
  // A forger that does not validate relays as is: report everything as valid.
  const pubsub = node.services.pubsub as unknown as { addEventListener: (t: string, f: (e: CustomEvent<{ msgId: string, propagationSource: { toString: () => string } }>) => void) => void, reportMessageValidationResult: (id: string, src: string, r: string) => void }
  pubsub.addEventListener('gossipsub:message', e => { pubsub.reportMessageValidationResult(e.detail.msgId, e.detail.propagationSource.toString(), 'accept') })
  for (const n of cluster.nodes) await node.dial(multiaddr(n.multiaddr))
  node.services.pubsub.subscribe(topics.contributions(datanetId))
  await waitFor(() => node.services.pubsub.getSubscribers(topics.contributions(datanetId)).length >= cluster.nodes.length,
    { timeoutMs: 20_000, what: 'the forger to see every node subscribed' })
  return node
}

test('forged contributions (wrong signer; another datanet) are rejected by every node, stored by none, and the sender\'s score drops', async () => {
  forger = await startForger()
  const signer = Wallet.createRandom()
  const victim = Wallet.createRandom()
  const shards = [CID.parse('bafkreibbrwguekn7c23v7tyuoysenjg2dosj7pjyb5vehcmzemclmtvoae')]
  const base = { contributor: victim.address, shards, recordCount: 1, byteSize: 10, recordsRoot: new Uint8Array(32).fill(7), nonce: 1, timestamp: Date.now() }
  // signed by `signer` but claims `victim` as contributor
  const wrongSigner = await signContribution(signer, { chainId: 31337, registry: null }, { ...base, datanet: datanetId })
  // correctly signed, but for another datanet, sent on this datanet's topic
  const other = (await encodeManifest(parseManifest({ name: 'other', license: 'CC0-1.0', recordSchema: {}, validators: [{ address: victim.address, stake: '1' }] }))).id
  const otherDatanet = await signContribution(victim, { chainId: 31337, registry: null }, { ...base, contributor: victim.address, datanet: other })
  const forged = [encodeContribution(wrongSigner), encodeContribution(otherDatanet)]
  for (const bytes of forged) await forger.services.pubsub.publish(topics.contributions(datanetId), bytes)

  const forgerId = forger.peerId.toString()
  for (const n of cluster.nodes) {
    await waitFor(async () => {
      const { body } = await api<{ peers: Array<{ peerId: string, score: number }> }>(n, '/v1/node')
      const score = body.peers.find(p => p.peerId === forgerId)?.score
      return score !== undefined && score < 0
    }, { timeoutMs: 20_000, what: `${n.name} to score the forger negative` })
    for (const bytes of forged) {
      const forgedCid = (await contributionCid(bytes)).toString()
      const { status } = await api(n, `/v1/datanets/${datanetId}/contributions/${forgedCid}`)
      assert.is(status, 404, `${n.name} stored no forged contribution`)
    }
  }
})

/** Contributes `lines` (JSONL) on `node`; the CLI's result. */
async function contributeLines (node: TestNode, datanet: string, name: string, lines: string[]): Promise<{ code: number, stderr: string, cid?: string }> {
  const file = join(cluster.root.dir, name)
  writeFileSync(file, lines.join('\n') + '\n')
  const out = await cli(node, ['contribute', '--datanet', datanet, file, '--json'])
  return { code: out.code ?? -1, stderr: out.stderr, cid: out.code === 0 ? (JSON.parse(out.stdout) as { cid: string }).cid : undefined }
}

async function waitStatus (datanet: string, cidText: string, status: string): Promise<void> {
  for (const n of cluster.nodes) {
    const view = async (): Promise<{ status: number, body: ContributionView }> => await api<ContributionView>(n, `/v1/datanets/${datanet}/contributions/${cidText}`)
    await waitFor(async () => (await view()).body.status === status, { timeoutMs: 60_000, what: `${n.name} to see ${cidText} ${status}` })
      .catch(async (err: Error) => { const v = await view(); throw new Error(`${err.message}; it shows ${v.status} ${JSON.stringify({ status: v.body.status, verdicts: v.body.verdicts?.map(x => [x.accept, x.score, x.reasons]) })}`) })
  }
}

test('the record index is per datanet: a record of one datanet is new in another', async () => {
  const manifest = manifestNamed('integration-two')
  const path = join(cluster.root.dir, 'manifest-two.json')
  writeFileSync(path, JSON.stringify(manifest))
  const second = (await encodeManifest(manifest)).id
  for (const n of cluster.nodes) {
    const created = await cli(n, ['datanet', 'create', '--manifest', path])
    assert.is(created.code, 0, created.stderr)
  }
  for (const n of cluster.nodes) {
    await waitFor(async () => {
      const { status, body } = await api<{ subscribers: { contributions: string[], verdicts: string[] } }>(n, `/v1/datanets/${second}`)
      return status === 200 && body.subscribers.contributions.length >= 3 && body.subscribers.verdicts.length >= 3
    }, { timeoutMs: 30_000, what: `${n.name} to follow the second datanet with the others` })
  }
  // records the first datanet holds (uploaded on the plain node, accepted by the validators)
  const lines = Array.from({ length: 3 }, (_, i) => JSON.stringify({ text: `record ${i + 10}: ${'lorem ipsum '.repeat((i + 10) % 7)}`, i: i + 10 }))
  const out = await contributeLines(plain, second, 'same-records.jsonl', lines)
  assert.is(out.code, 0, `refused as duplicates of another datanet: ${out.stderr}`)
  await waitStatus(second, out.cid as string, 'accepted')
})

test.run()
