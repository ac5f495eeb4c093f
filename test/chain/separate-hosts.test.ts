/**
 * A datanet across separate hosts (issue 16 item 3): anvil, 4 validators and 1 plain node
 * each in a network namespace of its own, joined by one bridge, each node listening on and
 * announcing its own address. From nothing with `datanet` commands only (chain deploy,
 * node start, datanet create, datanet register, contribute, model train, infer, claim,
 * validator join): the datanet finalizes and anchors, a contributor is paid on chain, a
 * node joins the set, and no connection between nodes uses a loopback address. Then the seed every
 * node was given crashes: on 3476a64 the others knew only it (announced peers were stored,
 * never dialled), so one crash partitioned the network; now they stay connected and go on.
 * Every host's link adds 50 ms ± 5 ms each way (a relay in its namespace in front of its
 * node; no netem on this kernel), so all of it runs over 100 ms round trips, and the test
 * measures finality over them.
 */
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { HDNodeWallet, encryptKeystoreJson, parseEther } from 'ethers'
import { dataDirPaths, initDataDir } from '../../src/storage/data-dir.ts'
import { DaemonProcess } from '../../node/devnet/node-process.ts'
import { runCli, type CliResult } from '../helpers/cli.ts'
import { createHosts, startHostRelay, type HostRelay, type Hosts } from '../helpers/netns.ts'
import { tempDir } from '../helpers/tmp.ts'
import { hook, waitFor } from '../helpers/wait.ts'
import { ANVIL_MNEMONIC, startAnvil, type Anvil } from './anvil.ts'
import { percentile } from '../helpers/stats.ts'

const PASSWORD = 'separate-hosts'
const P2P_PORT = 7400
const API_PORT = 7401
/** Where a host's node is reached by the others: its link's relay, in front of P2P_PORT. */
const LINK_PORT = 7402
const LINK_DELAY_MS = 50
const LINK_JITTER_MS = 5
const tmp = tempDir('datanet-hosts-')
const passwordFile = join(tmp.dir, 'password')
let net: Hosts | undefined
const relays: HostRelay[] = []
let anvil: Anvil | undefined
let rpc = ''
let registry = ''
let datanetId = ''

interface HostNode { name: string, dataDir: string, address: string, peerId: string, host: string, daemon: DaemonProcess }
const nodes: HostNode[] = []

/** HOSTS_TRANSCRIPT=FILE: every command and its output, for README's walk (real output). */
const transcript = process.env.HOSTS_TRANSCRIPT

async function cli (args: string[], node?: HostNode): Promise<CliResult & { json: Record<string, unknown> }> {
  const r = await runCli([...args, ...(node === undefined ? [] : ['--api', node.daemon.apiUrl, '--token-file', dataDirPaths(node.dataDir).apiToken]), '--json'], { env: { DATANET_PASSWORD: PASSWORD }, timeoutMs: 120_000 })
  if (transcript !== undefined) appendFileSync(transcript, `${node === undefined ? '' : `[${node.name} ${node.host}] `}$ datanet ${args.join(' ')} --json\n${r.stdout}${r.stderr}\n`)
  let json: Record<string, unknown> = {}
  try { json = JSON.parse(r.stdout) as Record<string, unknown> } catch {}
  return { ...r, json }
}

/** The event types a server-sent event stream delivers, as they come. */
function collectEvents (body: ReadableStream<Uint8Array>): { types: Set<string>, stop: () => void } {
  const types = new Set<string>()
  const reader = body.getReader()
  const decoder = new TextDecoder()
  void (async () => {
    let text = ''
    for (;;) {
      const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }))
      if (done === true) return
      text += decoder.decode(value, { stream: true })
      for (const m of text.matchAll(/^event: (\w+)$/gm)) types.add(m[1] as string)
      text = text.slice(text.lastIndexOf('\n') + 1)
    }
  })()
  return { types, stop: () => { void reader.cancel().catch(() => {}) } }
}

async function api<T> (node: HostNode, path: string): Promise<{ status: number, body: T }> {
  const res = await fetch(`${node.daemon.apiUrl}${path}`, { signal: AbortSignal.timeout(10_000) })
  return { status: res.status, body: await res.json() as T }
}

test.before(hook(async () => {
  writeFileSync(passwordFile, PASSWORD + '\n', { mode: 0o600 })
  net = await createHosts(6)
  const [chainHost, ...nodeHosts] = net.hosts
  anvil = await startAnvil({ netns: chainHost?.ns, host: chainHost?.address, port: 8545, blockTimeSeconds: 1 })
  rpc = anvil.url
  // anvil's funded dev accounts 1..5: validators 0..3 and the plain node
  for (let i = 0; i < 5; i++) {
    const host = nodeHosts[i]
    assert.ok(host !== undefined)
    const wallet = HDNodeWallet.fromPhrase(ANVIL_MNEMONIC, undefined, `m/44'/60'/0'/0/${i + 1}`)
    const name = i < 4 ? `validator-${i}` : 'node-0'
    const dataDir = join(tmp.dir, name)
    const meta = await initDataDir(dataDir, { password: PASSWORD, ethPrivateKey: wallet.privateKey })
    // a cheap keystore: each start decrypts it
    writeFileSync(dataDirPaths(dataDir).keystore, await encryptKeystoreJson({ address: wallet.address, privateKey: wallet.privateKey }, PASSWORD, { scrypt: { N: 1 << 10 } }), { mode: 0o600 })
    nodes.push({ name, dataDir, address: meta.address, peerId: meta.peerId, host: host.address, daemon: undefined as unknown as DaemonProcess })
  }
}))

test.after(hook(async () => {
  await Promise.all(nodes.map(async n => await n.daemon?.stop()))
  for (const r of relays) await r.stop()
  await anvil?.stop()
  await net?.destroy()
  tmp.remove()
}))

test('from nothing to a 5-host datanet that finalizes and anchors, with datanet commands only', async () => {
  // the registry, deployed from the operator's machine (the root namespace) over the bridge
  const deployed = await cli(['chain', 'deploy', '--rpc', rpc, '--data-dir', nodes[0]!.dataDir])
  assert.is(deployed.code, 0, deployed.stderr)
  registry = String(deployed.json.address)
  const startBlock = Number(deployed.json.block)

  const seed = nodes[0] as HostNode
  for (const n of nodes) {
    const host = net?.hosts.find(h => h.address === n.host)
    assert.ok(host !== undefined)
    relays.push(await startHostRelay(host, LINK_PORT, P2P_PORT, LINK_DELAY_MS, LINK_JITTER_MS))
  }
  for (const n of nodes) {
    n.daemon = new DaemonProcess({
      dataDir: n.dataDir,
      passwordFile,
      logFile: join(tmp.dir, `${n.name}.log`),
      p2pPort: P2P_PORT,
      apiPort: API_PORT,
      bootstrap: n === seed ? [] : [`/ip4/${seed.host}/tcp/${LINK_PORT}/p2p/${seed.peerId}`],
      extraArgs: ['--chain-rpc', rpc, '--registry', registry],
      netns: net?.hosts.find(h => h.address === n.host)?.ns,
      host: n.host,
      env: {
        DATANET_P2P_HOST: n.host,
        DATANET_API_HOST: n.host,
        DATANET_P2P_ANNOUNCE: `/ip4/${n.host}/tcp/${LINK_PORT}`,
        DATANET_CHAIN_START_BLOCK: String(startBlock)
      }
    })
    n.daemon.start()
  }
  await Promise.all(nodes.map(async n => { await n.daemon.waitReady(90_000) }))

  const manifestFile = join(tmp.dir, 'manifest.json')
  writeFileSync(manifestFile, JSON.stringify({
    name: 'separate hosts', license: 'CC0-1.0', recordSchema: { type: 'object', required: ['text'] },
    consensus: { versionIntervalMs: 500, proposeTimeoutMs: 1500, prevoteTimeoutMs: 800, precommitTimeoutMs: 800, timeoutDeltaMs: 300 },
    validators: nodes.slice(0, 4).map(n => ({ address: n.address, stake: parseEther('1').toString() }))
  }))
  for (const n of nodes) {
    const created = await cli(['datanet', 'create', '--manifest', manifestFile], n)
    assert.is(created.code, 0, `${n.name}: ${created.stderr}`)
    datanetId = String(created.json.id)
  }
  const registered = await cli(['datanet', 'register', '--datanet', datanetId, '--rpc', rpc, '--registry', registry, '--unbonding-delay', '60', '--data-dir', seed.dataDir], seed)
  assert.is(registered.code, 0, registered.stderr)

  const plain = nodes[4] as HostNode
  // what the node streams to the explorer and to scripts while it happens
  const stream = await fetch(`${plain.daemon.apiUrl}/v1/events?datanet=${datanetId}`)
  assert.is(stream.status, 200)
  const seen = collectEvents(stream.body as ReadableStream<Uint8Array>)
  const file = join(tmp.dir, 'records.jsonl')
  writeFileSync(file, ['{"text":"carried from one host to four others"}', '{"text":"over a bridge, never over loopback"}'].join('\n') + '\n')
  const contributed = await cli(['contribute', '--datanet', datanetId, file, '--wait', '--timeout', '120'], plain)
  assert.is(contributed.code, 0, contributed.stderr)
  assert.is(contributed.json.status, 'accepted')

  // final and anchored on every host
  for (const n of nodes) {
    const v = await waitFor(async () => {
      const r = await api<{ height: number, anchor: { txHash: string } | null, recordCount: number }>(n, `/v1/datanets/${datanetId}/versions/1`)
      return r.status === 200 && r.body.anchor !== null ? r.body : undefined
    }, { timeoutMs: 120_000, what: `version 1 anchored, as ${n.name} sees it` })
    assert.ok(v.recordCount >= 2)
  }

  await waitFor(() => ['contribution', 'verdict', 'decided', 'version', 'anchor'].every(t => seen.types.has(t)) || undefined, { timeoutMs: 30_000, what: `contribution, verdict, decided, version and anchor events (seen: ${[...seen.types].join(', ')})` })
  seen.stop()

  // every node announces its own address and, from the others' announcements (it was given
  // only the seed), reaches them by theirs
  for (const n of nodes) {
    const info = await waitFor(async () => {
      const body = (await api<{ addresses: string[], peers: Array<{ peerId: string, addresses: string[] }> }>(n, '/v1/node')).body
      return body.peers.length >= nodes.length - 1 ? body : undefined
    }, { timeoutMs: 30_000, what: `${n.name} connected to the ${nodes.length - 1} others` })
    assert.ok(info.addresses.length > 0 && info.addresses.every(a => a.startsWith(`/ip4/${n.host}/`)), `${n.name} announces ${info.addresses.join(', ')}`)
    for (const p of info.peers) {
      for (const a of p.addresses) {
        assert.ok(!a.includes('/127.') && !a.startsWith('/ip6/::1'), `${n.name} reaches ${p.peerId} over ${a}`)
        // dialled at the other's link port, or accepted through its own host's relay: never around the delay
        assert.ok(!a.includes(`/tcp/${P2P_PORT}/`) && !a.endsWith(`/tcp/${P2P_PORT}`), `${n.name} reaches ${p.peerId} at its node's own port: ${a}`)
      }
    }
  }
})

test('the walk goes on: a model on version 1, an inference paid on chain, the contributor claims its tally', async () => {
  const plain = nodes[4] as HostNode
  const trained = await cli(['model', 'train', '--datanet', datanetId, '--version', '1'], plain)
  assert.is(trained.code, 0, trained.stderr)
  const inferred = await cli(['infer', '--model', String(trained.json.id), '--datanet', datanetId, '--fee', '0.01eth', '--max-words', '12', 'carried from one host'], plain)
  assert.is(inferred.code, 0, inferred.stderr)
  // claimable once a version holding the event is anchored
  const tally = await waitFor(async () => {
    const r = await api<{ claimable: string }>(nodes[1] as HostNode, `/v1/datanets/${datanetId}/tallies/${plain.address}`)
    return r.status === 200 && BigInt(r.body.claimable) > 0n ? r.body : undefined
  }, { timeoutMs: 120_000, what: 'a claimable tally for the contributor' })
  const claimed = await cli(['claim', '--datanet', datanetId], plain)
  assert.is(claimed.code, 0, claimed.stderr)
  assert.is(claimed.json.paid, tally.claimable)
})

test('finality over the 100 ms round trips: contribution to final on every host, p50 and p99 printed', async () => {
  const plain = nodes[4] as HostNode
  const token = readFileSync(dataDirPaths(plain.dataDir).apiToken, 'utf8').trim()
  const samples: number[] = []
  for (let i = 0; i < 10; i++) {
    const t0 = performance.now()
    const res = await fetch(`${plain.daemon.apiUrl}/v1/datanets/${datanetId}/contributions?format=jsonl`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/x-ndjson' },
      body: JSON.stringify({ text: `measured across the hosts, sample ${i}` }) + '\n',
      signal: AbortSignal.timeout(30_000)
    })
    assert.is(res.status, 201, await res.clone().text())
    const { cid } = await res.json() as { cid: string }
    const heights = await Promise.all(nodes.map(async n => await waitFor(async () => {
      const r = await api<{ version: number | null }>(n, `/v1/contributions/${cid}`)
      return r.status === 200 && typeof r.body.version === 'number' ? r.body.version : undefined
    }, { timeoutMs: 60_000, intervalMs: 20, what: `sample ${i} final as ${n.name} sees it` })))
    samples.push(performance.now() - t0)
    assert.is(new Set(heights).size, 1, `sample ${i} final at heights ${heights.join(', ')}`)
  }
  const sorted = [...samples].sort((a, b) => a - b)
  const line = `finality over ${2 * LINK_DELAY_MS} ms round trips (5 hosts, versions every 500 ms): p50 ${percentile(sorted, 50).toFixed(0)} ms, p99 ${percentile(sorted, 99).toFixed(0)} ms, n=${sorted.length} (${samples.map(t => t.toFixed(0)).join(' ')})`
  console.log(line)
  if (transcript !== undefined) appendFileSync(transcript, `# ${line}\n`)
})

test('the seed every node was given crashes: the others stay connected through what they announced, and go on', async () => {
  const seed = nodes[0] as HostNode
  const rest = nodes.slice(1)
  await seed.daemon.kill()
  const plain = nodes[4] as HostNode
  const file = join(tmp.dir, 'after-the-seed.jsonl')
  writeFileSync(file, '{"text":"written after the seed went down"}\n')
  const contributed = await cli(['contribute', '--datanet', datanetId, file, '--wait', '--timeout', '120'], plain)
  assert.is(contributed.code, 0, contributed.stderr)
  assert.is(contributed.json.status, 'accepted')
  for (const n of rest) {
    await waitFor(async () => {
      const r = await api<{ contributions: string[] }>(n, `/v1/datanets/${datanetId}/versions`)
      const versions = r.body as unknown as Array<{ contributions: string[] }>
      return versions.some(v => v.contributions.includes(String(contributed.json.cid))) || undefined
    }, { timeoutMs: 120_000, what: `the contribution final as ${n.name} sees it, without the seed` })
  }
})

test('with the seed still down, the plain node joins as a validator and the set it joins goes on', async () => {
  const plain = nodes[4] as HostNode
  const joined = await cli(['validator', 'join', '--datanet', datanetId, '--stake', '1'], plain)
  assert.is(joined.code, 0, joined.stderr)
  // the join takes effect after the next anchored version: give it one
  const file = join(tmp.dir, 'after-the-join.jsonl')
  writeFileSync(file, '{"text":"the fifth validator\'s first version"}\n')
  const first = await cli(['contribute', '--datanet', datanetId, file, '--wait', '--timeout', '120'], plain)
  assert.is(first.code, 0, first.stderr)
  await waitFor(async () => {
    const r = await api<{ validators: Array<{ address: string, status: string }> }>(nodes[1] as HostNode, `/v1/datanets/${datanetId}/validators`)
    return r.body.validators.some(v => v.address.toLowerCase() === plain.address.toLowerCase() && v.status === 'active') || undefined
  }, { timeoutMs: 120_000, what: 'the plain node active in the set' })
  // five validators, one down: four of five stakes decide
  const second = join(tmp.dir, 'under-five.jsonl')
  writeFileSync(second, '{"text":"decided by four of five"}\n')
  const contributed = await cli(['contribute', '--datanet', datanetId, second, '--wait', '--timeout', '120'], plain)
  assert.is(contributed.code, 0, contributed.stderr)
  await waitFor(async () => {
    const versions = (await api<Array<{ contributions: string[], anchor: unknown }>>(nodes[1] as HostNode, `/v1/datanets/${datanetId}/versions`)).body
    return versions.some(v => v.contributions.includes(String(contributed.json.cid)) && v.anchor !== null) || undefined
  }, { timeoutMs: 120_000, what: 'the contribution final and anchored under the five' })
})

test.run()
