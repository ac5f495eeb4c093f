/**
 * A contribution acknowledged while no peer could receive it is held in the gossip
 * outbox; the node is then killed (kill -9) before any peer subscribes. On restart the
 * held message comes back from the state database and goes out once a peer subscribes
 * (issue 11 item 7). The datanet has no quorum (a validator that never runs holds most
 * stake), so no version can carry the contribution: only gossip can.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Wallet } from 'ethers'
import { encodeManifest, parseManifest } from '../../src/datanet/manifest.ts'
import { dataDirPaths } from '../../src/storage/data-dir.ts'
import { TestCluster, type TestNode } from '../helpers/cluster.ts'
import { runCli } from '../helpers/cli.ts'
import { hook, waitFor } from '../helpers/wait.ts'

const cluster = new TestCluster()
let sender: TestNode
let receiver: TestNode
let datanetId = ''

test.before(hook(async () => {
  [sender, receiver] = await cluster.create(2) as [TestNode, TestNode]
  const manifest = parseManifest({
    name: 'outbox-restart',
    license: 'CC0-1.0',
    recordSchema: {},
    validators: [{ address: sender.address, stake: '1' }, { address: Wallet.createRandom().address, stake: '1000' }]
  })
  writeFileSync(join(cluster.root.dir, 'manifest.json'), JSON.stringify(manifest))
  datanetId = (await encodeManifest(manifest)).id
  ;(receiver.daemon.spec as { env?: NodeJS.ProcessEnv }).env = { DATANET_DATANETS: datanetId }
}))

test.after(hook(async () => { await cluster.teardown() }))

const cli = (node: TestNode, args: string[]): ReturnType<typeof runCli> =>
  runCli([...args, '--api', node.daemon.apiUrl, '--token-file', dataDirPaths(node.dataDir).apiToken])

test('a contribution held for a subscriber when the node is killed is sent after its restart', async () => {
  await cluster.startAll([sender])
  const created = await cli(sender, ['datanet', 'create', '--manifest', join(cluster.root.dir, 'manifest.json')])
  assert.is(created.code, 0, created.stderr)
  const file = join(cluster.root.dir, 'held.txt')
  writeFileSync(file, 'held while nobody listened\n')
  const out = await cli(sender, ['contribute', '--datanet', datanetId, file, '--json'])
  assert.is(out.code, 0, out.stderr)
  const { cid } = JSON.parse(out.stdout) as { cid: string }
  await sender.daemon.kill()

  await cluster.startAll([sender, receiver])
  await waitFor(async () => {
    const res = await fetch(`${receiver.daemon.apiUrl}/v1/datanets/${datanetId}/contributions/${cid}`, { signal: AbortSignal.timeout(5000) })
    return res.status === 200
  }, { timeoutMs: 60_000, what: 'the receiver to get the contribution held before the crash' })
})

test.run()
