import { join } from 'node:path'
import { writeFileSync, readFileSync } from 'node:fs'
import { Wallet, encryptKeystoreJson } from 'ethers'
import { initDataDir, dataDirPaths } from '../../src/storage/data-dir.ts'
import { DaemonProcess, freePort } from '../../node/devnet/node-process.ts'
import { tempDir } from './tmp.ts'
import { waitFor } from './wait.ts'
import type { NodeInfo } from '../../node/api/routes/node.ts'

export interface TestNode {
  name: string
  dataDir: string
  peerId: string
  address: string
  daemon: DaemonProcess
  multiaddr: string
}

/** Real daemons on 127.0.0.1, each a separate process with its own data directory. */
export class TestCluster {
  readonly root = tempDir('datanet-cluster-')
  readonly nodes: TestNode[] = []
  readonly passwordFile: string

  constructor () {
    this.passwordFile = join(this.root.dir, 'password')
    writeFileSync(this.passwordFile, 'test-password\n', { mode: 0o600 })
  }

  /**
   * Initialises `count` data directories and prepares (not starts) their daemons, fully
   * bootstrapped to each other. `fastKeystore`: the keystore re-encrypted with scrypt
   * N = 2^10 instead of 2^17, which saves seconds of every (re)start on a loaded machine.
   */
  async create (count: number, extraArgs: string[] = [], opts: { fastKeystore?: boolean } = {}): Promise<TestNode[]> {
    const made: TestNode[] = []
    for (let i = 0; i < count; i++) {
      const name = `n${this.nodes.length + i}`
      const dataDir = join(this.root.dir, name)
      const wallet = Wallet.createRandom()
      const meta = await initDataDir(dataDir, { password: 'test-password', ethPrivateKey: wallet.privateKey })
      if (opts.fastKeystore === true) {
        writeFileSync(dataDirPaths(dataDir).keystore, await encryptKeystoreJson({ address: wallet.address, privateKey: wallet.privateKey }, 'test-password', { scrypt: { N: 1 << 10 } }), { mode: 0o600 })
      }
      const p2pPort = await freePort()
      const apiPort = await freePort()
      made.push({
        name,
        dataDir,
        peerId: meta.peerId,
        address: meta.address,
        multiaddr: `/ip4/127.0.0.1/tcp/${p2pPort}/p2p/${meta.peerId}`,
        daemon: new DaemonProcess({ dataDir, passwordFile: this.passwordFile, logFile: join(this.root.dir, `${name}.log`), p2pPort, apiPort, bootstrap: [], extraArgs })
      })
    }
    this.nodes.push(...made)
    for (const node of this.nodes) {
      (node.daemon.spec as { bootstrap: string[] }).bootstrap = this.nodes.filter(n => n !== node).map(n => n.multiaddr)
    }
    return made
  }

  async startAll (nodes: TestNode[] = this.nodes, timeoutMs = 60_000): Promise<void> {
    for (const n of nodes) n.daemon.start()
    await Promise.all(nodes.map(async n => { await this.ready(n, timeoutMs) }))
  }

  /**
   * Waits until the node answers at its API port, and checks that what answers is this
   * node (its peer id): a port freePort handed out is free only when it is picked, and
   * another process (a stray daemon of an earlier test) may hold it by the time the node
   * starts — its health check then passed and the test's requests went to the other
   * process (CI: *n4 refused the manifest: 401 … the API token is wrong*). The node then
   * moves to a fresh API port; and to a fresh p2p port when that one was taken (it exited
   * saying so: a new API port alone failed three times over). Others bootstrap to its old
   * p2p address, but it dials them.
   */
  async ready (n: TestNode, timeoutMs = 60_000): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      let answered: unknown
      try {
        await n.daemon.waitReady(timeoutMs)
        answered = ((await (await fetch(`${n.daemon.apiUrl}/v1/node`, { signal: AbortSignal.timeout(10_000) })).json()) as { peerId?: unknown }).peerId
      } catch (err) {
        // or the node saw the port taken and exited first
        if (n.daemon.running || !/EADDRINUSE/.test(n.daemon.logTail(20))) throw err
      }
      if (answered === n.peerId) return
      if (attempt === 3) throw new Error(`${n.name}: the API at ${n.daemon.apiUrl} is another process's (${String(answered)}), after ${attempt} ports`)
      await n.daemon.stop()
      const spec = n.daemon.spec as { apiPort: number, p2pPort: number }
      if (new RegExp(`cannot listen for p2p on \\S*:${spec.p2pPort}\\b`).test(n.daemon.logTail(20))) {
        spec.p2pPort = await freePort()
        n.multiaddr = n.multiaddr.replace(/\/tcp\/\d+\//, `/tcp/${spec.p2pPort}/`)
      }
      spec.apiPort = await freePort()
      n.daemon.start()
    }
  }

  token (node: TestNode): string {
    return readFileSync(dataDirPaths(node.dataDir).apiToken, 'utf8').trim()
  }

  async info (node: TestNode): Promise<NodeInfo> {
    const res = await fetch(`${node.daemon.apiUrl}/v1/node`, { signal: AbortSignal.timeout(5000) })
    if (!res.ok) throw new Error(`GET /v1/node: ${res.status}`)
    return await res.json() as NodeInfo
  }

  async waitPeers (node: TestNode, peerIds: string[], timeoutMs = 20_000): Promise<NodeInfo> {
    return await waitFor(async () => {
      const info = await this.info(node)
      const have = new Set(info.peers.map(p => p.peerId))
      return peerIds.every(id => have.has(id)) ? info : undefined
    }, { timeoutMs, what: `${node.name} to see peers ${peerIds.join(', ')}` })
  }

  /** Stops every daemon (LIFO), then removes the directories (unless `keep`). */
  async teardown (keep = false): Promise<void> {
    for (const node of [...this.nodes].reverse()) await node.daemon.stop(5_000)
    // for a post-mortem of a failing run: KEEP_TEST_DIRS=1 keeps the logs and data directories
    if (keep || process.env.KEEP_TEST_DIRS === '1') process.stderr.write(`kept ${this.root.dir}\n`)
    else this.root.remove()
  }
}
