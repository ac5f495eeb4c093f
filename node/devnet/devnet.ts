import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseEther } from 'ethers'
import { encodeManifest, parseManifest, type Manifest } from '../../src/datanet/manifest.ts'
import { DatanetError } from '../../src/errors.ts'
import { dataDirPaths, initDataDir, readDataDirMeta, readApiToken, writeFileAtomic } from '../../src/storage/data-dir.ts'
import { startAnvil, type Anvil } from './anvil.ts'
import { deployRegistry, fundAccounts, localSigner, registerDatanet } from './chain-setup.ts'
import { ControlErrorCode, type DevnetNodeStatus, type NodeAction } from './control.ts'
import { DaemonProcess, freePort } from './node-process.ts'
import type { NodeInfo } from '../api/routes/node.ts'

/** The devnet's datanet: a text datanet whose genesis validators the devnet fills in. */
export const DEVNET_MANIFEST = fileURLToPath(new URL('../../config/devnet-manifest.json', import.meta.url))
const CHAIN_ID = 31337
/** Each validator's genesis stake, and what every node gets to pay gas, fees and stakes with. */
const GENESIS_STAKE = parseEther('10')
const NODE_FUNDS = parseEther('100')

/** What the devnet keeps of its chain between runs (`<dir>/chain.json`). */
interface ChainState {
  port: number
  chainId: number
  registry: string
  deployBlock: number
  datanet: string
  validators: string[]
}

export interface DevnetOptions {
  dir: string
  validators: number
  nodes: number
  /** Where progress lines go. */
  log: (line: string) => void
  readyTimeoutMs?: number
  /** Without a chain: nodes only (no anvil, no registry, no datanet). */
  noChain?: boolean
}

export type DevnetRole = 'validator' | 'node'

/** One entry of devnet.json's "nodes" (DESIGN §6). */
export interface DevnetNodeEntry {
  role: DevnetRole
  name: string
  pid: number
  address: string
  peerId: string
  multiaddrs: string[]
  apiUrl: string
  tokenFile: string
  dataDir: string
  logFile: string
}

export interface DevnetFile {
  /** `pid`: the devnet's anvil process. */
  chain: { rpcUrl: string, chainId: number, registry: string, pid: number | null } | null
  datanet: string | null
  nodes: DevnetNodeEntry[]
}

interface Member {
  role: DevnetRole
  name: string
  dir: string
  dataDir: string
  passwordFile: string
  logFile: string
  peerId: string
  address: string
  daemon?: DaemonProcess
}

/**
 * A local test network: N validators and M plain nodes as separate processes on
 * loopback, each with its own data directory, ports and log under `dir`, bootstrapped
 * to each other. Starting again from the same `dir` keeps every node's keys and state.
 */
export class Devnet {
  readonly dir: string
  private members: Member[] = []
  private stopping: Promise<void> | undefined
  private anvil: Anvil | undefined
  private chain: ChainState | undefined
  private manifest: Manifest | undefined

  private readonly opts: DevnetOptions

  constructor (opts: DevnetOptions) {
    this.opts = opts
    this.dir = resolve(opts.dir)
  }

  get file (): string {
    return join(this.dir, 'devnet.json')
  }

  /** A node config a newcomer starts with (`datanet node start --config <this>`) to join the devnet. */
  get connectFile (): string {
    return join(this.dir, 'connect.json')
  }

  /**
   * Starts anvil (its state kept in `dir`), and on the first run deploys the registry,
   * registers the devnet's datanet with the validators as its genesis set (their stakes
   * paid) and funds every node's account.
   */
  private async startChain (): Promise<ChainState> {
    const stateFile = join(this.dir, 'chain.json')
    const saved = existsSync(stateFile) ? JSON.parse(readFileSync(stateFile, 'utf8')) as ChainState : undefined
    const validators = this.members.filter(m => m.role === 'validator').map(m => m.address)
    if (saved !== undefined && saved.validators.join() !== validators.join()) {
      throw new DatanetError({ code: 'DEVNET_ERROR_USAGE' }, `${this.dir} holds a devnet with ${saved.validators.length} validators; use the same --validators or another --dir`, 'usage')
    }
    let port = saved?.port ?? await freePort()
    try {
      this.anvil = await startAnvil({ port, chainId: CHAIN_ID, stateFile: join(this.dir, 'anvil-state.json') })
    } catch (err) {
      if (saved === undefined) throw err
      // the old port is taken: the chain state does not depend on it
      port = await freePort()
      this.anvil = await startAnvil({ port, chainId: CHAIN_ID, stateFile: join(this.dir, 'anvil-state.json') })
    }
    const template = JSON.parse(readFileSync(DEVNET_MANIFEST, 'utf8')) as Record<string, unknown>
    this.manifest = parseManifest({ ...template, validators: validators.map(address => ({ address, stake: GENESIS_STAKE.toString() })) })
    if (saved !== undefined) {
      this.chain = { ...saved, port }
      writeFileAtomic(stateFile, JSON.stringify(this.chain, null, 2) + '\n', 0o644)
      this.opts.log(`anvil on ${this.anvil.url} (state from ${this.dir}), registry ${saved.registry}`)
      return this.chain
    }
    const { provider, signer } = localSigner(this.anvil.url, CHAIN_ID)
    try {
      const deployed = await deployRegistry(signer)
      const datanet = (await encodeManifest(this.manifest)).id
      await registerDatanet(signer, deployed.address, datanet, this.manifest)
      await fundAccounts(signer, this.members.map(m => m.address), NODE_FUNDS)
      this.chain = { port, chainId: CHAIN_ID, registry: deployed.address, deployBlock: deployed.block, datanet, validators }
      writeFileAtomic(stateFile, JSON.stringify(this.chain, null, 2) + '\n', 0o644)
      this.opts.log(`anvil on ${this.anvil.url}: registry ${deployed.address}, datanet ${datanet} (${validators.length} validators staking ${GENESIS_STAKE / 10n ** 18n} ETH each)`)
      return this.chain
    } finally {
      provider.destroy()
    }
  }

  /** Every node follows the devnet's datanet (idempotent: a node that has it answers 200). */
  private async followDatanet (): Promise<void> {
    for (const m of this.members) {
      const res = await fetch(`${m.daemon?.apiUrl}/v1/datanets`, {
        method: 'POST',
        headers: { authorization: `Bearer ${readApiToken(dataDirPaths(m.dataDir).apiToken)}`, 'content-type': 'application/json' },
        body: JSON.stringify(this.manifest),
        signal: AbortSignal.timeout(30_000)
      })
      if (res.status !== 200 && res.status !== 201) throw new DatanetError({ code: 'DEVNET_ERROR_DATANET' }, `${m.name} refused the devnet's datanet: ${await res.text()}`)
    }
  }

  private async prepare (role: DevnetRole, index: number): Promise<Member> {
    const name = `${role}-${index}`
    const dir = join(this.dir, name)
    const dataDir = join(dir, 'data')
    const passwordFile = join(dir, 'password')
    mkdirSync(dir, { recursive: true })
    if (!existsSync(passwordFile)) writeFileAtomic(passwordFile, randomBytes(16).toString('hex'))
    let meta
    if (existsSync(dataDirPaths(dataDir).meta)) {
      meta = readDataDirMeta(dataDir)
    } else {
      const password = readFileSync(passwordFile, 'utf8')
      meta = await initDataDir(dataDir, { password })
    }
    return { role, name, dir, dataDir, passwordFile, logFile: join(dir, 'node.log'), peerId: meta.peerId, address: meta.address }
  }

  async start (): Promise<DevnetFile> {
    const { validators, nodes } = this.opts
    if (!Number.isInteger(validators) || validators < 1) throw new DatanetError({ code: 'DEVNET_ERROR_USAGE' }, '--validators: expected an integer >= 1', 'usage')
    if (!Number.isInteger(nodes) || nodes < 0) throw new DatanetError({ code: 'DEVNET_ERROR_USAGE' }, '--nodes: expected an integer >= 0', 'usage')
    mkdirSync(this.dir, { recursive: true })
    this.opts.log(`devnet in ${this.dir}: ${validators} validators, ${nodes} nodes`)

    const roles: Array<[DevnetRole, number]> = [
      ...Array.from({ length: validators }, (_, i) => ['validator', i] as [DevnetRole, number]),
      ...Array.from({ length: nodes }, (_, i) => ['node', i] as [DevnetRole, number])
    ]
    this.members = await Promise.all(roles.map(async ([role, i]) => await this.prepare(role, i)))
    let chain: ChainState | undefined
    try {
      chain = this.opts.noChain === true ? undefined : await this.startChain()
    } catch (err) {
      await this.anvil?.stop()
      throw err
    }
    const chainArgs = chain === undefined ? [] : ['--chain-rpc', `http://127.0.0.1:${chain.port}`, '--registry', chain.registry]

    const ports = await Promise.all(this.members.map(async () => ({ p2p: await freePort(), api: await freePort() })))
    const addrs = this.members.map((m, i) => `/ip4/127.0.0.1/tcp/${ports[i]?.p2p}/p2p/${m.peerId}`)
    this.members.forEach((m, i) => {
      m.daemon = new DaemonProcess({
        dataDir: m.dataDir,
        passwordFile: m.passwordFile,
        logFile: m.logFile,
        p2pPort: ports[i]?.p2p as number,
        apiPort: ports[i]?.api as number,
        bootstrap: addrs.filter((_, j) => j !== i),
        extraArgs: chainArgs
      })
      m.daemon.start()
    })
    try {
      await Promise.all(this.members.map(async m => { await m.daemon?.waitReady(this.opts.readyTimeoutMs ?? 60_000) }))
      await this.waitPeered(this.opts.readyTimeoutMs ?? 60_000)
      if (chain !== undefined) {
        await this.followDatanet()
        await this.waitSubscribed(chain.datanet, this.opts.readyTimeoutMs ?? 60_000)
      }
    } catch (err) {
      await this.stop()
      throw err
    }
    const file = await this.describe()
    if (chain !== undefined) {
      writeFileAtomic(this.connectFile, JSON.stringify({
        p2p: { host: '127.0.0.1', port: 0, bootstrap: addrs },
        api: { port: 0 },
        chain: { rpcUrl: `http://127.0.0.1:${chain.port}`, chainId: chain.chainId, registry: chain.registry, confirmations: 0, pollIntervalMs: 500, startBlock: chain.deployBlock },
        datanets: [chain.datanet]
      }, null, 2) + '\n', 0o644)
    }
    writeFileAtomic(this.file, JSON.stringify(file, null, 2) + '\n', 0o644)
    return file
  }

  /** Waits until every node is connected to every other. */
  private async waitPeered (timeoutMs: number): Promise<void> {
    await this.waitEach(timeoutMs, 'peers', async m => (await this.nodeInfo(m)).peers.length)
  }

  /** Waits until every node hears every other on the datanet's topics, so nothing published first is lost. */
  private async waitSubscribed (datanet: string, timeoutMs: number): Promise<void> {
    await this.waitEach(timeoutMs, 'peers on the datanet\'s topics', async m => {
      const res = await fetch(`${m.daemon?.apiUrl}/v1/datanets/${datanet}`, { signal: AbortSignal.timeout(5000) })
      const body = await res.json() as { subscribers?: { contributions: string[], verdicts: string[] } }
      return Math.min(body.subscribers?.contributions.length ?? 0, body.subscribers?.verdicts.length ?? 0)
    })
  }

  /** Polls each node until `count` reaches the number of other nodes, within one deadline for all. */
  private async waitEach (timeoutMs: number, what: string, count: (m: Member) => Promise<number>): Promise<void> {
    const want = this.members.length - 1
    const deadline = Date.now() + timeoutMs
    for (const m of this.members) {
      for (;;) {
        const seen = await count(m)
        if (seen >= want) break
        if (Date.now() > deadline) {
          throw new DatanetError({ code: 'DEVNET_ERROR_NOT_PEERED' }, `${m.name} sees ${seen} of ${want} ${what} after ${timeoutMs} ms`)
        }
        await new Promise(resolve => setTimeout(resolve, 100))
      }
    }
  }

  private async nodeInfo (m: Member, timeoutMs = 5000): Promise<NodeInfo> {
    const res = await fetch(`${m.daemon?.apiUrl}/v1/node`, { signal: AbortSignal.timeout(timeoutMs) })
    return await res.json() as NodeInfo
  }

  async describe (): Promise<DevnetFile> {
    const nodes = await Promise.all(this.members.map(async (m): Promise<DevnetNodeEntry> => {
      const info = await this.nodeInfo(m)
      return {
        role: m.role,
        name: m.name,
        pid: m.daemon?.pid as number,
        address: info.address,
        peerId: info.peerId,
        multiaddrs: info.addresses,
        apiUrl: m.daemon?.apiUrl as string,
        tokenFile: dataDirPaths(m.dataDir).apiToken,
        dataDir: m.dataDir,
        logFile: m.logFile
      }
    }))
    const chain = this.chain === undefined ? null : { rpcUrl: `http://127.0.0.1:${this.chain.port}`, chainId: this.chain.chainId, registry: this.chain.registry, pid: this.anvil?.process.pid ?? null }
    return { chain, datanet: this.chain?.datanet ?? null, nodes }
  }

  /**
   * Reports each node's exits through `onExit` from now on, its restarts included: what
   * the devnet's live lines say, while the devnet itself goes on (a fault drill).
   */
  monitor (onExit: (name: string, code: number | null | undefined, requested: NodeAction | undefined) => void): void {
    this.onExit = onExit
    for (const m of this.members) this.track(m)
  }

  private onExit: ((name: string, code: number | null | undefined, requested: NodeAction | undefined) => void) | undefined
  /** What was asked of a node through `act`, to tell a drill from a crash. */
  private readonly requested = new Map<string, NodeAction>()

  private track (m: Member): void {
    const daemon = m.daemon
    if (daemon === undefined || !daemon.running) return
    const pid = daemon.pid
    void daemon.waitExit(2 ** 31 - 1).then(code => {
      // a restart replaced the process meanwhile, or the whole devnet is stopping
      if (daemon.pid !== pid || this.stopping !== undefined) return
      const requested = this.requested.get(m.name)
      this.requested.delete(m.name)
      this.onExit?.(m.name, code, requested)
    })
  }

  private member (name: string): Member {
    const m = this.members.find(x => x.name === name)
    if (m === undefined) throw new DatanetError({ code: ControlErrorCode.UNKNOWN_NODE }, `no node named ${name} in this devnet (nodes: ${this.members.map(x => x.name).join(', ')})`, 'usage')
    return m
  }

  /** Every node: up or down, its pid and its height (DESIGN §6 `devnet status --json`). */
  async status (): Promise<DevnetNodeStatus[]> {
    return await Promise.all(this.members.map(async m => await this.statusOf(m)))
  }

  private async statusOf (m: Member): Promise<DevnetNodeStatus> {
    const up = m.daemon?.running === true
    let height: number | null = null
    if (up) {
      try { height = (await this.nodeInfo(m, 2000)).height } catch {}
    }
    return { name: m.name, role: m.role, state: up ? 'up' : 'down', pid: up ? m.daemon?.pid ?? null : null, height }
  }

  /**
   * Stops (SIGTERM, as a process manager does), kills (SIGKILL: a crash) or starts again
   * (with its data, ports and peers as before) one node; the others go on. Returns its status.
   */
  async act (name: string, action: NodeAction): Promise<DevnetNodeStatus> {
    const m = this.member(name)
    const daemon = m.daemon as DaemonProcess
    if (action === 'start') {
      if (!daemon.running) {
        daemon.start()
        this.track(m)
        await daemon.waitReady(this.opts.readyTimeoutMs ?? 60_000)
        this.rewriteFile()
      }
    } else if (daemon.running) {
      this.requested.set(name, action)
      if (action === 'kill') await daemon.kill()
      else await daemon.stop()
    }
    return await this.statusOf(m)
  }

  /** devnet.json with each node's current pid (a restarted node has a new one). */
  private rewriteFile (): void {
    if (!existsSync(this.file)) return
    const file = JSON.parse(readFileSync(this.file, 'utf8')) as DevnetFile
    for (const n of file.nodes) {
      const pid = this.members.find(m => m.name === n.name)?.daemon?.pid
      if (pid !== undefined) n.pid = pid
    }
    writeFileAtomic(this.file, JSON.stringify(file, null, 2) + '\n', 0o644)
  }

  logFile (name: string): string | undefined {
    return this.members.find(m => m.name === name)?.logFile
  }

  tail (name: string): string {
    return this.members.find(m => m.name === name)?.daemon?.logTail() ?? ''
  }

  /**
   * Stops every node (SIGTERM, then SIGKILL after a grace period), then anvil; leaves no
   * process behind. A second call waits for the first stop to finish.
   */
  async stop (): Promise<void> {
    this.stopping ??= (async () => {
      await Promise.all(this.members.map(async m => { await m.daemon?.stop() }))
      // anvil last: it writes its state to the devnet's directory as it exits
      await this.anvil?.stop()
    })()
    await this.stopping
  }

  /** Each node's daemon, to kill and restart it exactly as started (scripts/soak.ts --chain). */
  get daemons (): Array<{ name: string, role: DevnetRole, address: string, daemon: DaemonProcess }> {
    return this.members.flatMap(m => m.daemon === undefined ? [] : [{ name: m.name, role: m.role, address: m.address, daemon: m.daemon }])
  }

  get anvilPid (): number | undefined {
    return this.anvil?.process.pid
  }
}
