import { execFile, spawn } from 'node:child_process'
import { randomInt } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

const run = promisify(execFile)

/** A network namespace with one address on the hosts' bridge. */
export interface Host {
  ns: string
  address: string
}

export interface Hosts {
  hosts: Host[]
  /** The root namespace's address on the bridge (where the test itself talks from). */
  gateway: string
  destroy: () => Promise<void>
}

async function ip (...args: string[]): Promise<void> {
  await run('ip', args)
}

/**
 * Creates `n` hosts: network namespaces, each with a veth pair whose other end is on one
 * bridge in the root namespace, addresses 10.R.0.10+i/24 (R random, so runs do not
 * collide) and loopback up. Nothing routes between them but the bridge: a node reaches
 * another only by its address. Needs root and iproute2 (as this machine's CI has).
 */
export async function createHosts (n: number): Promise<Hosts> {
  const tag = randomInt(1000, 9999).toString()
  const subnet = `10.${randomInt(100, 200)}.0`
  const bridge = `dnbr${tag}`
  const hosts: Host[] = []
  const destroy = async (): Promise<void> => {
    for (const h of hosts) await ip('netns', 'del', h.ns).catch(() => {})
    await ip('link', 'del', bridge).catch(() => {})
  }
  try {
    await ip('link', 'add', bridge, 'type', 'bridge')
    await ip('addr', 'add', `${subnet}.1/24`, 'dev', bridge)
    await ip('link', 'set', bridge, 'up')
    for (let i = 0; i < n; i++) {
      const ns = `dn${tag}h${i}`
      const outer = `dn${tag}v${i}`
      const inner = `dn${tag}p${i}`
      const address = `${subnet}.${10 + i}`
      await ip('netns', 'add', ns)
      hosts.push({ ns, address })
      await ip('link', 'add', outer, 'type', 'veth', 'peer', 'name', inner)
      await ip('link', 'set', inner, 'netns', ns)
      await ip('link', 'set', outer, 'master', bridge)
      await ip('link', 'set', outer, 'up')
      await ip('netns', 'exec', ns, 'ip', 'addr', 'add', `${address}/24`, 'dev', inner)
      await ip('netns', 'exec', ns, 'ip', 'link', 'set', inner, 'up')
      await ip('netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up')
    }
  } catch (err) {
    await destroy()
    throw new Error(`cannot create network namespaces (root and iproute2 needed): ${(err as Error).message}`)
  }
  return { hosts, gateway: `${subnet}.1`, destroy }
}

/** A delaying relay running on a host (test/helpers/delay-relay-main.ts). */
export interface HostRelay {
  /** Where others reach the host's node through the delay. */
  address: string
  port: number
  stop: () => Promise<void>
}

/**
 * Puts a user-space delay on a host's link (this kernel has no netem): a relay process in
 * the host's namespace listens on `listenPort` of its address and forwards to `targetPort`,
 * adding `delayMs` (± `jitterMs`) each way. Every connection to the host made at
 * `listenPort` crosses it.
 */
export async function startHostRelay (host: Host, listenPort: number, targetPort: number, delayMs: number, jitterMs = 0): Promise<HostRelay> {
  const main = fileURLToPath(new URL('./delay-relay-main.ts', import.meta.url))
  const child = spawn('ip', ['netns', 'exec', host.ns, process.execPath, main, host.address, String(listenPort), host.address, String(targetPort), String(delayMs), String(jitterMs)], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (b: Buffer) => { stderr += b.toString() })
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`relay on ${host.address} not ready in 10 s: ${stderr}`)) }, 10_000)
    let out = ''
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString()
      const m = /^ready (\d+)$/m.exec(out)
      if (m !== null) { clearTimeout(timer); resolve(Number(m[1])) }
    })
    child.once('exit', code => { clearTimeout(timer); reject(new Error(`relay on ${host.address} exited (${String(code)}): ${stderr}`)) })
  })
  return {
    address: host.address,
    port,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return
      const exited = new Promise<void>(resolve => child.once('exit', () => resolve()))
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
      await exited
      clearTimeout(timer)
    }
  }
}
