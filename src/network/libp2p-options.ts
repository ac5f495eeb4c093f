import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { gossipsub, type GossipSub } from '@libp2p/gossipsub'
import { createPeerScoreParams } from '@libp2p/gossipsub/score'
import { identify, type Identify } from '@libp2p/identify'
import { ping, type Ping } from '@libp2p/ping'
import { prometheusMetrics } from '@libp2p/prometheus-metrics'
import { tcp } from '@libp2p/tcp'
import { contentMessageId, fastMessageId } from './gossip.ts'
import { blockRequest, type BlockRequest, type BlockSource } from './block-request.ts'
import { versionSync, type VersionSource, type VersionSync } from './version-sync.ts'
import type { PrivateKey } from '@libp2p/interface'
import type { Libp2pOptions } from 'libp2p'
import type { Registry } from 'prom-client'

export interface HostOptions {
  privateKey: PrivateKey
  host: string
  port: number
  announce: string[]
  maxConnections: number
  dialTimeoutMs: number
  maxMessageBytes: number
  agentVersion: string
  metricsRegistry?: Registry
  /** Where the version-sync protocol reads the versions it serves (set once the node's services exist). */
  versionSource?: VersionSource
  /** Where the block protocol reads the blocks it serves (set once the node's store exists). */
  blockSource?: BlockSource
  /** Block requests answered at once (default 32). */
  blockServing?: number
  /** Where the filesystem usage metric looks. */
  statfsLocation?: string
}

export interface HostServices extends Record<string, unknown> {
  identify: Identify
  ping: Ping
  pubsub: GossipSub
  sync: VersionSync
  blocks: BlockRequest
}

function listenAddr (host: string, port: number): string {
  return host.includes(':') ? `/ip6/${host}/tcp/${port}` : `/ip4/${host}/tcp/${port}`
}

/** libp2p options for a datanet node: TCP, Noise, Yamux, identify, ping, gossipsub. Bootstrap peers are kept by PeerKeeper. */
export function libp2pOptions (opts: HostOptions): Libp2pOptions<HostServices> {
  return {
    privateKey: opts.privateKey,
    addresses: {
      listen: [listenAddr(opts.host, opts.port)],
      announce: opts.announce
    },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: {
      maxConnections: opts.maxConnections,
      dialTimeout: opts.dialTimeoutMs
    },
    nodeInfo: { userAgent: opts.agentVersion },
    // Process metrics (CPU, memory, event loop) come with libp2p's, in the node's registry.
    metrics: prometheusMetrics({ registry: opts.metricsRegistry, preserveExistingMetrics: true, statfsLocation: opts.statfsLocation }),
    services: {
      identify: identify(),
      ping: ping(),
      sync: versionSync({ source: opts.versionSource ?? {} }),
      blocks: blockRequest({ source: opts.blockSource ?? {}, maxServing: opts.blockServing }),
      pubsub: gossipsub({
        // Messages are judged by our topic validators before gossipsub relays them.
        asyncValidation: true,
        globalSignaturePolicy: 'StrictSign',
        msgIdFn: contentMessageId,
        // Copies of a message already seen are known by this id before anything else is
        // done with them: without it gossipsub checks every copy's signature first (one
        // Ed25519 key parsed and one verification each, ~0.6 s of a validator's main thread
        // in a finality run, most of it on duplicates). The same content hash as the id
        // (an adversary cannot make another message's id), computed once more per message.
        fastMsgIdFn: fastMessageId,
        maxInboundDataLength: opts.maxMessageBytes,
        allowPublishToZeroTopicPeers: true,
        // Re-gossip (every 20–30 s) repairs deliveries a node missed while down; with the
        // default 2 min a re-sent message was refused as a duplicate of itself and a
        // contribution made while half the validators were down waited minutes after their
        // return. A message crosses the network in seconds: 15 s still dedups every copy.
        seenTTL: 15_000,
        emitSelf: false,
        scoreParams: createPeerScoreParams({
          // Rejected messages weigh on a topic's score (P4); see gossip topic registration.
          behaviourPenaltyWeight: -10
        })
      })
    }
  }
}
