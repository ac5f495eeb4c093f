import { timingSafeEqual, createHash } from 'node:crypto'
import type { FastifyReply, FastifyRequest } from 'fastify'

const READ_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])
/**
 * POST routes that only compute and store nothing, open like reads: the attribution preview
 * (its text is a body, too long for a query), which the explorer offers to anyone. Matched
 * on the route's pattern, never on the raw path.
 */
export const OPEN_POSTS: ReadonlySet<string> = new Set(['/v1/datanets/:id/attribution'])

function digest (s: string): Buffer {
  return createHash('sha256').update(s).digest()
}

/**
 * Reads (and the OPEN_POSTS previews) are open; every write needs the node's API token as
 * a bearer token. Compared through fixed-length digests so timing says nothing about the
 * token. The 401 body also carries OpenAI's error `type`, for the OpenAI-compatible
 * routes' clients.
 */
export function requireTokenForWrites (token: string) {
  const expected = digest(token)
  return async function checkToken (request: FastifyRequest, reply: FastifyReply): Promise<void> {
    if (READ_METHODS.has(request.method)) return
    if (request.method === 'POST' && OPEN_POSTS.has(request.routeOptions.url ?? '')) return
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
