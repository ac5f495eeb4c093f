import { execFile } from 'node:child_process'
import { randomInt } from 'node:crypto'
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
