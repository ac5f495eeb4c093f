import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { DatanetError } from '../../src/errors.ts'
import { dataDirPaths, initDataDir, readDataDirMeta, writeFileAtomic } from '../../src/storage/data-dir.ts'
import { DaemonProcess, freePort } from './node-process.ts'
import type { NodeInfo } from '../api/routes/node.ts'

export interface DevnetOptions {
  dir: string
  validators: number
  nodes: number
  /** Where progress lines go. */
  log: (line: string) => void
  readyTimeoutMs?: number
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
  chain: { rpcUrl: string, chainId: number, registry: string } | null
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
  private stopping = false

  private readonly opts: DevnetOptions

  constructor (opts: DevnetOptions) {
    this.opts = opts
    this.dir = resolve(opts.dir)
  }

  get file (): string {
    return join(this.dir, 'devnet.json')
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

    const ports = await Promise.all(this.members.map(async () => ({ p2p: await freePort(), api: await freePort() })))
    const addrs = this.members.map((m, i) => `/ip4/127.0.0.1/tcp/${ports[i]?.p2p}/p2p/${m.peerId}`)
    this.members.forEach((m, i) => {
      m.daemon = new DaemonProcess({
        dataDir: m.dataDir,
        passwordFile: m.passwordFile,
        logFile: m.logFile,
        p2pPort: ports[i]?.p2p as number,
        apiPort: ports[i]?.api as number,
        bootstrap: addrs.filter((_, j) => j !== i)
      })
      m.daemon.start()
    })
    try {
      await Promise.all(this.members.map(async m => { await m.daemon?.waitReady(this.opts.readyTimeoutMs ?? 60_000) }))
      await this.waitPeered(this.opts.readyTimeoutMs ?? 60_000)
    } catch (err) {
      await this.stop()
      throw err
    }
    const file = await this.describe()
    writeFileAtomic(this.file, JSON.stringify(file, null, 2) + '\n', 0o644)
    return file
  }

  /** Waits until every node is connected to every other. */
  private async waitPeered (timeoutMs: number): Promise<void> {
    const want = this.members.length - 1
    const deadline = Date.now() + timeoutMs
    for (const m of this.members) {
      for (;;) {
        const info = await this.nodeInfo(m)
        if (info.peers.length >= want) break
        if (Date.now() > deadline) {
          throw new DatanetError({ code: 'DEVNET_ERROR_NOT_PEERED' }, `${m.name} sees ${info.peers.length} of ${want} peers after ${timeoutMs} ms`)
        }
        await new Promise(resolve => setTimeout(resolve, 100))
      }
    }
  }

  private async nodeInfo (m: Member): Promise<NodeInfo> {
    const res = await fetch(`${m.daemon?.apiUrl}/v1/node`, { signal: AbortSignal.timeout(5000) })
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
    return { chain: null, datanet: null, nodes }
  }

  /** Resolves when any node exits on its own (a crash), with that node's name. */
  async watch (): Promise<string> {
    return await Promise.race(this.members.map(async m => {
      await m.daemon?.waitExit(2 ** 31 - 1)
      return m.name
    }))
  }

  tail (name: string): string {
    return this.members.find(m => m.name === name)?.daemon?.logTail() ?? ''
  }

  /** Stops every node (SIGTERM, then SIGKILL after a grace period); leaves no process behind. */
  async stop (): Promise<void> {
    if (this.stopping) return
    this.stopping = true
    await Promise.all(this.members.map(async m => { await m.daemon?.stop() }))
  }
}
