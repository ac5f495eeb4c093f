import { z } from 'zod'
import { PUBLIC_EVENTS, type NodeEventName, type NodeEvents } from '../../events.ts'
import { badRequest, parseRequest } from '../errors.ts'
import type { ApiRoutes } from '../server.ts'
import type { FastifyInstance } from 'fastify'

export interface EventRoutesDeps {
  events: NodeEvents
  /** A comment line this often keeps proxies from closing an idle stream. */
  heartbeatMs?: number
}

const eventsQuery = z.strictObject({
  datanet: z.string().min(1).max(200).optional(),
  types: z.string().max(200).optional()
})

/**
 * `GET /v1/events[?datanet=ID&types=version,anchor]`: server-sent events (DESIGN §6), one
 * `event: <type>` / `data: <json>` block per event, for the explorer and for scripts.
 */
export function eventRoutes ({ events, heartbeatMs = 15_000 }: EventRoutesDeps): ApiRoutes {
  return {
    register (app: FastifyInstance) {
      // open streams never end on their own: the server's stop ends them, or it would wait for ever
      const streams = new Set<() => void>()
      app.addHook('preClose', async () => { for (const end of [...streams]) end() })
      app.get('/v1/events', async (request, reply) => {
        const query = parseRequest(eventsQuery, request.query, 'query')
        const types = query.types === undefined ? PUBLIC_EVENTS : query.types.split(',').map(t => t.trim())
        const unknown = types.filter(t => !PUBLIC_EVENTS.includes(t as NodeEventName))
        if (unknown.length > 0) throw badRequest(`query: types: unknown ${unknown.join(', ')} (known: ${PUBLIC_EVENTS.join(', ')})`)
        reply.hijack()
        const raw = reply.raw
        raw.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' })
        raw.write(': datanet events\n\n')
        const offs = (types as NodeEventName[]).map(type => events.on(type, event => {
          if (query.datanet !== undefined && (event as { datanet?: string }).datanet !== query.datanet) return
          raw.write(`event: ${type}\ndata: ${JSON.stringify(event)}\n\n`)
        }))
        const heartbeat = setInterval(() => { raw.write(': keep-alive\n\n') }, heartbeatMs)
        heartbeat.unref()
        const close = (): void => {
          clearInterval(heartbeat)
          for (const off of offs) off()
          streams.delete(end)
        }
        const end = (): void => {
          close()
          raw.end()
        }
        streams.add(end)
        request.raw.once('close', close)
        raw.once('close', close)
      })
    }
  }
}
