/**
 * A network of real daemons on loopback where every node-to-node connection crosses a
 * delayed link: each node has a DelayRelay in front of its libp2p port, announces the
 * relay's address (p2p.announce) and is bootstrapped to the others' relays, so whoever
 * dials whom, the connection goes through the callee's relay and its one-way delay.
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { DelayRelay } from './delay-relay.ts'
import { startClusterNetwork, type SoakConsensus, type SoakNetwork } from './soak.ts'
import type { TestNode } from './cluster.ts'

/** The consensus timeouts the devnet's datanet runs with (config/devnet-manifest.json): what an operator starts from. */
export const DEVNET_CONSENSUS = (JSON.parse(readFileSync(fileURLToPath(new URL('../../config/devnet-manifest.json', import.meta.url)), 'utf8')) as { consensus: SoakConsensus }).consensus

export interface WideAreaOptions {
  validators: number
  nodes: number
  /** One-way delay of every link, ms (a round trip gains twice this). */
  delayMs: number
  jitterMs?: number
  consensus?: SoakConsensus
  extraArgs?: string[]
}

export interface WideAreaNetwork extends SoakNetwork {
  /** One per member, in the members' order: the relay in front of its libp2p port. */
  relays: DelayRelay[]
  /** Each member's own libp2p port (what no other node should be connected to). */
  p2pPorts: number[]
}

/** A connection's remote TCP port, from its multiaddr (/ip4/…/tcp/<port>/…). */
export function tcpPort (multiaddr: string): number | undefined {
  const m = /\/tcp\/(\d+)/.exec(multiaddr)
  return m === null ? undefined : Number(m[1])
}

export async function startWideAreaNetwork (opts: WideAreaOptions): Promise<WideAreaNetwork> {
  const relays: DelayRelay[] = []
  const p2pPorts: number[] = []
  const prepare = async (nodes: TestNode[]): Promise<void> => {
    for (const n of nodes) {
      const relay = new DelayRelay({ target: { host: '127.0.0.1', port: n.daemon.spec.p2pPort }, delayMs: opts.delayMs, jitterMs: opts.jitterMs ?? 0 })
      await relay.start()
      relays.push(relay)
      p2pPorts.push(n.daemon.spec.p2pPort)
    }
    nodes.forEach((n, i) => {
      const spec = n.daemon.spec as { bootstrap: string[], env?: NodeJS.ProcessEnv }
      // others reach this node only at its relay: it announces that address and no other
      spec.env = { ...spec.env, DATANET_P2P_ANNOUNCE: (relays[i] as DelayRelay).multiaddr }
      spec.bootstrap = nodes.flatMap((o, j) => j === i ? [] : [`${(relays[j] as DelayRelay).multiaddr}/p2p/${o.peerId}`])
    })
  }
  let net: SoakNetwork
  try {
    net = await startClusterNetwork({ validators: opts.validators, nodes: opts.nodes, consensus: opts.consensus ?? DEVNET_CONSENSUS, extraArgs: opts.extraArgs, prepare })
  } catch (err) {
    for (const r of relays) await r.stop()
    throw err
  }
  return {
    ...net,
    relays,
    p2pPorts,
    stop: async (keep) => {
      await net.stop(keep)
      for (const r of relays) await r.stop()
    }
  }
}

export interface Connection { from: string, peer: string, remote: string }

/**
 * Every connection each member has, and those that do not go through a relay. A
 * connection a member dialled has the callee's relay as its remote address; one it
 * accepted comes from its own relay's upstream side (one of `upstreamPorts`).
 */
export async function relayedConnections (net: WideAreaNetwork): Promise<{ all: Connection[], direct: Connection[] }> {
  const relayPorts = new Set(net.relays.map(r => r.port))
  const upstream = new Set(net.relays.flatMap(r => [...r.upstreamPorts]))
  const all: Connection[] = []
  for (const m of net.members) {
    const res = await fetch(`${m.daemon.apiUrl}/v1/node`, { signal: AbortSignal.timeout(5000) })
    const info = await res.json() as { peers: Array<{ peerId: string, addresses: string[] }> }
    for (const p of info.peers) for (const remote of p.addresses) all.push({ from: m.name, peer: p.peerId, remote })
  }
  const direct = all.filter(c => {
    const port = tcpPort(c.remote)
    return port === undefined || net.p2pPorts.includes(port) || (!relayPorts.has(port) && !upstream.has(port))
  })
  return { all, direct }
}
