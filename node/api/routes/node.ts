import { z } from 'zod'
import { badRequest, parseRequest } from '../errors.ts'
import type { ApiRoutes } from '../server.ts'
import type { FastifyInstance } from 'fastify'

export interface PeerInfo {
  peerId: string
  addresses: string[]
  /** The Ethereum address the peer announced, once its announcement arrived. */
  address: string | null
  /** Its gossipsub peer score as this node sees it (negative after invalid messages). */
  score: number
}

export interface NodeInfo {
  peerId: string
  address: string
  addresses: string[]
  peers: PeerInfo[]
  knownPeers: number
  datanets: string[]
  chain: { rpcUrl: string, chainId: number, registry: string | null, block: number | null } | null
  height: number | null
  version: string
  uptimeMs: number
  starts: number
}

/** The node as the API sees it. */
export interface NodeView {
  info: () => Promise<NodeInfo>
  dial: (multiaddr: string) => Promise<PeerInfo>
  putBlock: (bytes: Uint8Array) => Promise<string>
  getBlock: (cid: string, options: { offline: boolean, timeoutMs: number }) => Promise<Uint8Array>
  metrics: () => Promise<{ contentType: string, body: string }>
}

const dialBody = z.strictObject({ multiaddr: z.string().min(1) })
const blockQuery = z.strictObject({
  offline: z.enum(['true', 'false']).optional(),
  timeoutMs: z.coerce.number().int().min(1).max(600_000).optional()
})


/** Routes about the node itself: health, identity, peers, raw blocks, metrics. */
export function nodeRoutes (node: NodeView): ApiRoutes {
  return {
    register (app: FastifyInstance) {
      app.get('/v1/health', async () => ({ status: 'ok' }))
      app.get('/v1/node', async () => await node.info())
      app.get('/metrics', async (_request, reply) => {
        const { contentType, body } = await node.metrics()
        return await reply.type(contentType).send(body)
      })
      app.post('/v1/peers', async (request) => {
        const { multiaddr } = parseRequest(dialBody, request.body, 'body')
        return await node.dial(multiaddr)
      })
      app.post('/v1/blocks', async (request, reply) => {
        if (!(request.body instanceof Uint8Array) || request.body.length === 0) {
          throw badRequest('body: expected the block bytes as application/octet-stream')
        }
        const cid = await node.putBlock(request.body)
        return await reply.code(201).send({ cid })
      })
      app.get('/v1/blocks/:cid', async (request, reply) => {
        const query = parseRequest(blockQuery, request.query, 'query')
        const { cid } = request.params as { cid: string }
        const bytes = await node.getBlock(cid, { offline: query.offline === 'true', timeoutMs: query.timeoutMs ?? 30_000 })
        return await reply.type('application/octet-stream').send(Buffer.from(bytes))
      })
    }
  }
}
