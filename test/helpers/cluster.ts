import { join } from 'node:path'
import { writeFileSync, readFileSync } from 'node:fs'
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

  /** Initialises `count` data directories and prepares (not starts) their daemons, fully bootstrapped to each other. */
  async create (count: number, extraArgs: string[] = []): Promise<TestNode[]> {
    const made: TestNode[] = []
    for (let i = 0; i < count; i++) {
      const name = `n${this.nodes.length + i}`
      const dataDir = join(this.root.dir, name)
      const meta = await initDataDir(dataDir, { password: 'test-password' })
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
    await Promise.all(nodes.map(async n => { await n.daemon.waitReady(timeoutMs) }))
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

  /** Stops every daemon (LIFO), then removes the directories. */
  async teardown (): Promise<void> {
    for (const node of [...this.nodes].reverse()) await node.daemon.stop(5_000)
    // for a post-mortem of a failing run: KEEP_TEST_DIRS=1 keeps the logs and data directories
    if (process.env.KEEP_TEST_DIRS === '1') process.stderr.write(`kept ${this.root.dir}\n`)
    else this.root.remove()
  }
}
