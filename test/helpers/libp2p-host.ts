import { createLibp2p, type Libp2p } from 'libp2p'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { Registry } from 'prom-client'
import { libp2pOptions, type HostServices } from '../../src/network/libp2p-options.ts'
import type { BlockSource } from '../../src/network/block-request.ts'

/** An in-process libp2p host with the node's options on a loopback port (its own metrics registry). */
export async function loopbackHost (agentVersion: string, opts: { blockSource?: BlockSource, blockServing?: number } = {}): Promise<Libp2p<HostServices>> {
  return await createLibp2p(libp2pOptions({
    privateKey: await generateKeyPair('Ed25519'),
    host: '127.0.0.1',
    port: 0,
    announce: [],
    maxConnections: 16,
    dialTimeoutMs: 5000,
    maxMessageBytes: 1024 * 1024,
    agentVersion,
    metricsRegistry: new Registry(),
    blockSource: opts.blockSource,
    blockServing: opts.blockServing
  }))
}
