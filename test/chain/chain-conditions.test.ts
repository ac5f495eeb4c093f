/**
 * The anchor service against anvil run as public chains behave (issue 16, "real chain
 * conditions"): interval mining, a base fee spike that leaves a send stuck under its fee,
 * reorgs before and after the anchor counts, and an RPC URL that goes away and comes back.
 * Each test has its own anvil (1 s blocks) and one validator holding the whole stake, and
 * drives the node's ChainService in-process with a final version whose certificate the
 * registry accepts. "Lands once" is read from the canonical chain's VersionCommitted logs.
 */
import { createWriteStream, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { HDNodeWallet, Interface, Wallet, ZeroHash, getAddress, parseEther, parseUnits, toBeHex, type JsonRpcProvider } from 'ethers'
import { registryArtifact } from '../../src/chain/registry-client.ts'
import { cidOf, encodeCbor } from '../../src/codec/cbor.ts'
import { datanetDomain } from '../../src/codec/eip712.ts'
import { sha256, toHex } from '../../src/codec/hash.ts'
import { headerOfStored, voteDigest } from '../../src/consensus/version.ts'
import { StateDatabase, type VersionEntry } from '../../src/storage/state-db.ts'
import { deployRegistry, genesisManifest, localSigner, registerDatanet } from '../../node/devnet/chain-setup.ts'
import { ChainService } from '../../node/services/chain.ts'
import type { FollowedDatanet } from '../../node/services/datanets.ts'
import { createLogger } from '../../node/logger.ts'
import { ANVIL_MNEMONIC, startAnvil, type Anvil } from './anvil.ts'
import { TcpProxy } from '../helpers/tcp-proxy.ts'
import { tempDir } from '../helpers/tmp.ts'
import { waitFor } from '../helpers/wait.ts'

const STAKE = parseEther('1')
const MAX_FEE = parseUnits('1000', 'gwei')
const iface = new Interface(registryArtifact().abi)

interface Setup {
  confirmations: number
  feeBumpAfterMs?: number
  /** RPC URLs for the node: proxies in front of anvil, made by the test (default: anvil itself). */
  proxies?: number
}

interface Commit { txHash: string, block: number }

interface Harness {
  anvil: Anvil
  provider: JsonRpcProvider
  proxies: TcpProxy[]
  wallet: Wallet
  d: FollowedDatanet
  db: StateDatabase
  service: ChainService
  rpc: (method: string, params?: unknown[]) => Promise<unknown>
  /** A final version at `height` with a certificate the registry accepts, stored as consensus stores it. */
  version: (height: number) => Promise<VersionEntry>
  /** VersionCommitted for `height` on the canonical chain. */
  commits: (height: number) => Promise<Commit[]>
  /** The anchor the node recorded into the stored version (what `version show` prints). */
  recorded: (height: number) => Promise<Commit | null>
  logTail: () => string
  stop: () => Promise<void>
}

async function setup (opts: Setup): Promise<Harness> {
  const tmp = tempDir('datanet-chain-conditions-')
  const anvil = await startAnvil({ blockTimeSeconds: 1 })
  const { provider, signer } = localSigner(anvil.url, anvil.chainId)
  const rpc = async (method: string, params: unknown[] = []): Promise<unknown> => await provider.send(method, params)
  const proxies: TcpProxy[] = []
  for (let i = 0; i < (opts.proxies ?? 0); i++) {
    const p = new TcpProxy({ host: '127.0.0.1', port: anvil.port })
    await p.start()
    proxies.push(p)
  }
  const deployed = await deployRegistry(signer)
  const hd = HDNodeWallet.fromPhrase(ANVIL_MNEMONIC, undefined, "m/44'/60'/0'/0/1")
  const wallet = new Wallet(hd.privateKey)
  const g = genesisManifest([{ address: wallet.address, stake: STAKE }], { anchorInterval: 2, nonce: 'chain-conditions' })
  const id = (await cidOf(g.bytes)).toString()
  await registerDatanet(signer, deployed.address, id, g.manifest)
  const validators = [{ address: getAddress(wallet.address), stake: STAKE }]
  const d: FollowedDatanet = { id, digest: g.digest, manifest: g.manifest, validators: { validators, total: STAKE }, validateRecord: () => ({ ok: true }) as never }
  const db = new StateDatabase(join(tmp.dir, 'state'))
  await db.open()
  const logFile = join(tmp.dir, 'chain.log')
  const service = new ChainService({
    db,
    rpcUrls: proxies.length > 0 ? proxies.map(p => p.url) : [anvil.url],
    chainId: anvil.chainId,
    registry: deployed.address,
    confirmations: opts.confirmations,
    pollIntervalMs: 200,
    startBlock: deployed.block,
    feeBumpAfterMs: opts.feeBumpAfterMs ?? 1500,
    maxFeePerGas: MAX_FEE,
    rpcTimeoutMs: 2000,
    wallet,
    peerId: '12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN',
    logger: createLogger({ level: 'debug', format: 'json', destination: createWriteStream(logFile) }),
    onChange: () => {}
  })
  await service.start()
  await service.follow(d)
  await waitFor(() => service.chainInfo(d).registered, { timeoutMs: 15_000, what: 'the node to see the datanet registered' })
  const topic = iface.getEvent('VersionCommitted')?.topicHash as string
  return {
    anvil,
    provider,
    proxies,
    wallet,
    d,
    db,
    service,
    rpc,
    version: async height => {
      const entry: VersionEntry = {
        datanet: id,
        height,
        cid: (await cidOf(encodeCbor({ test: 'chain-conditions', height }))).toString(),
        parent: null,
        round: 0,
        datasetRoot: toHex(sha256(new TextEncoder().encode(`records ${height}`))),
        recordCount: height,
        attributionRoot: ZeroHash,
        totalAttributed: '0',
        validatorSetHash: ZeroHash,
        contributions: [],
        certificate: [],
        frontier: { size: 0, nodes: [] },
        decidedAt: Date.now(),
        anchor: null
      }
      const digest = voteDigest(datanetDomain({ chainId: anvil.chainId, registry: deployed.address, datanet: g.digest }), 'precommit', 0, headerOfStored(entry))
      entry.certificate = [{ validator: wallet.address, signature: hd.signingKey.sign(digest).serialized }]
      await db.batch([db.versions.putOp(entry)])
      return entry
    },
    commits: async height => {
      const logs = await provider.getLogs({ address: deployed.address, fromBlock: 0, toBlock: 'latest', topics: [topic, g.digest] })
      return logs.filter(l => Number(iface.parseLog(l)?.args.getValue('height')) === height).map(l => ({ txHash: l.transactionHash, block: l.blockNumber }))
    },
    recorded: async height => (await db.versions.at(id, height))?.anchor ?? null,
    logTail: () => readFileSync(logFile, 'utf8').split('\n').slice(-25).join('\n'),
    stop: async () => {
      await service.stop()
      await db.close()
      for (const p of proxies) await p.stop()
      provider.destroy()
      await anvil.stop()
      tmp.remove()
    }
  }
}

/** Runs a test body on a fresh harness; on failure prints the node's last log lines. */
async function withChain (opts: Setup, body: (c: Harness) => Promise<void>): Promise<void> {
  const c = await setup(opts)
  try {
    await body(c)
  } catch (err) {
    process.stderr.write(`\n--- chain service log (tail) ---\n${c.logTail()}\n`)
    throw err
  } finally {
    await c.stop()
  }
}

/** Our transaction in anvil's pool, if any. */
async function pooled (c: Harness): Promise<{ nonce: number, maxFeePerGas: bigint, hash: string } | undefined> {
  const pool = await c.rpc('txpool_content') as { pending: Record<string, Record<string, { hash: string, nonce: string, maxFeePerGas: string }>> }
  const mine = Object.entries(pool.pending).find(([from]) => from.toLowerCase() === c.wallet.address.toLowerCase())?.[1]
  const tx = mine === undefined ? undefined : Object.values(mine)[0]
  return tx === undefined ? undefined : { nonce: Number(tx.nonce), maxFeePerGas: BigInt(tx.maxFeePerGas), hash: tx.hash }
}

/**
 * Congestion: every block's base fee pinned at `baseFee` (anvil lowers it 12.5% per empty
 * block otherwise). Mining resumes at 1 s blocks. A driver loop, not a wait for an outcome.
 */
function congestion (c: Harness, baseFee: bigint): { stop: () => Promise<void> } {
  let running = true
  const hex = toBeHex(baseFee)
  const loop = (async () => {
    await c.rpc('anvil_setNextBlockBaseFeePerGas', [hex])
    await c.rpc('evm_setIntervalMining', [1])
    let seen = -1
    while (running) {
      const head = Number(await c.rpc('eth_blockNumber'))
      if (head !== seen) {
        seen = head
        await c.rpc('anvil_setNextBlockBaseFeePerGas', [hex])
      }
      await new Promise(resolve => setTimeout(resolve, 50))
    }
  })()
  return { stop: async () => { running = false; await loop } }
}

test('a send stuck under a base fee spike is replaced (same nonce, higher fees) and the anchor lands once', async () => {
  await withChain({ confirmations: 1, feeBumpAfterMs: 1500 }, async c => {
    // the send goes out at the fees of a quiet chain; the spike comes before it is mined
    await c.rpc('evm_setIntervalMining', [0])
    c.service.onFinal(c.d, await c.version(2))
    const first = await waitFor(async () => await pooled(c), { timeoutMs: 15_000, what: 'the anchor transaction in the pool' })
    const spike = congestion(c, parseUnits('100', 'gwei'))
    try {
      assert.ok(first.maxFeePerGas < parseUnits('100', 'gwei'), `sent under the spike (${first.maxFeePerGas} wei)`)
      const [landed] = await waitFor(async () => { const l = await c.commits(2); return l.length > 0 ? l : undefined }, { timeoutMs: 20_000, what: 'the anchor of height 2 on chain while the base fee stays at 100 gwei' })
      const tx = await c.provider.getTransaction(landed?.txHash as string)
      assert.is(tx?.nonce, first.nonce, 'a replacement: the same nonce')
      assert.ok((tx?.maxFeePerGas ?? 0n) >= parseUnits('100', 'gwei') && (tx?.maxFeePerGas ?? 0n) <= MAX_FEE, `paid over the base fee, under the cap (${tx?.maxFeePerGas})`)
    } finally {
      await spike.stop()
    }
    await waitFor(async () => await c.recorded(2), { timeoutMs: 10_000, what: 'the node to record the anchor of height 2' })
    assert.is((await c.commits(2)).length, 1, 'anchored once')
    assert.is(await c.provider.getTransactionCount(c.wallet.address, 'latest'), first.nonce + 1, 'one nonce used')
  })
})

/** Waits until the node recorded the anchor of `height` and the chain has it exactly once; returns it. */
async function anchoredOnce (c: Harness, height: number, timeoutMs: number, what: string): Promise<Commit> {
  const recorded = await waitFor(async () => {
    const r = await c.recorded(height)
    return r !== null && c.service.chainInfo(c.d).lastAnchor?.height === height ? r : undefined
  }, { timeoutMs, what })
  const commits = await c.commits(height)
  assert.is(commits.length, 1, `height ${height} anchored once on the canonical chain`)
  assert.is(recorded.txHash, commits[0]?.txHash, 'the node recorded the transaction on chain')
  return recorded
}

test('RPC failover: the first URL goes away, reads and the anchor go through the second; then the second goes and the first is back', async () => {
  await withChain({ confirmations: 1, proxies: 2 }, async c => {
    const [first, second] = c.proxies as [TcpProxy, TcpProxy]
    await first.cut()
    const before = c.service.block
    c.service.onFinal(c.d, await c.version(2))
    await anchoredOnce(c, 2, 20_000, 'the anchor of height 2 with the first RPC URL down')
    assert.ok(c.service.block > before, 'the follower kept reading')
    await first.restore()
    await second.cut()
    c.service.onFinal(c.d, await c.version(4))
    await anchoredOnce(c, 4, 20_000, 'the anchor of height 4 with only the first RPC URL, back')
  })
})

test('a reorg before the anchor has its confirmations drops it: the node sends it again and it lands once', async () => {
  await withChain({ confirmations: 3 }, async c => {
    c.service.onFinal(c.d, await c.version(2))
    const [mined] = await waitFor(async () => { const l = await c.commits(2); return l.length > 0 ? l : undefined }, { timeoutMs: 15_000, what: 'the anchor mined', intervalMs: 50 })
    const head = await c.provider.getBlockNumber()
    assert.ok(head - (mined?.block ?? 0) < 3, 'reorged before its confirmations')
    await c.rpc('anvil_reorg', [head - (mined?.block ?? 0) + 1, []])
    assert.is((await c.commits(2)).length, 0, 'the reorg dropped it')
    await anchoredOnce(c, 2, 25_000, 'the anchor of height 2 after the reorg')
  })
})

test('a reorg deeper than the confirmations drops a counted anchor: the node notices and anchors again, once', async () => {
  await withChain({ confirmations: 1 }, async c => {
    c.service.onFinal(c.d, await c.version(2))
    const counted = await anchoredOnce(c, 2, 15_000, 'the anchor of height 2 counted')
    // a few blocks later the node's anchoring is long over (its own loop would resend on its next look)
    const head = await waitFor(async () => { const h = await c.provider.getBlockNumber(); return h >= counted.block + 3 ? h : undefined }, { timeoutMs: 10_000, what: 'three blocks on the anchor' })
    await c.rpc('anvil_reorg', [head - counted.block + 1, []])
    assert.is((await c.commits(2)).length, 0, 'the reorg dropped it')
    await waitFor(async () => (await c.commits(2)).length > 0, { timeoutMs: 20_000, what: 'the anchor of height 2 on chain again after the reorg' })
    await anchoredOnce(c, 2, 15_000, 'the node to count the new anchor')
  })
})

test.run()
