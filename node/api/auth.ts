import { timingSafeEqual, createHash } from 'node:crypto'
import type { FastifyReply, FastifyRequest } from 'fastify'

const READ_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])

function digest (s: string): Buffer {
  return createHash('sha256').update(s).digest()
}

/**
 * Reads are open; every write needs the node's API token as a bearer token. Compared
 * through fixed-length digests so timing says nothing about the token. The 401 body also
 * carries OpenAI's error `type`, for the OpenAI-compatible routes' clients.
 */
export function requireTokenForWrites (token: string) {
  const expected = digest(token)
  return async function checkToken (request: FastifyRequest, reply: FastifyReply): Promise<void> {
    if (READ_METHODS.has(request.method)) return
    const header = request.headers.authorization
    const match = typeof header === 'string' ? /^Bearer\s+(\S+)$/i.exec(header) : null
    if (match === null) {
      await reply.code(401).send({ error: { code: 'API_ERROR_UNAUTHORIZED', type: 'authentication_error', message: 'this route needs the node\'s API token: Authorization: Bearer <token>' } })
      return
    }
    if (!timingSafeEqual(digest(match[1] as string), expected)) {
      await reply.code(401).send({ error: { code: 'API_ERROR_UNAUTHORIZED', type: 'authentication_error', message: 'the API token is wrong' } })
    }
  }
}
