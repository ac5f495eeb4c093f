import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import { DatanetError, describeError, httpStatusOf, isDatanetError } from '../../src/errors.ts'
import { requireTokenForWrites } from './auth.ts'
import type { Logger } from '../logger.ts'

/** What the HTTP API needs from the node: values in, values out, no knowledge of its parts. */
export interface ApiRoutes {
  register: (app: FastifyInstance) => void
}

export interface ApiServerOptions {
  host: string
  port: number
  token: string
  bodyLimitBytes: number
  logger: Logger
  routes: ApiRoutes[]
}

export const ApiErrorCode = {
  LISTEN: 'API_ERROR_LISTEN',
  BAD_REQUEST: 'API_ERROR_BAD_REQUEST',
  NOT_FOUND: 'API_ERROR_NOT_FOUND'
} as const

/** The node's HTTP API (fastify): JSON under /v1, Prometheus text under /metrics. */
export class ApiServer {
  readonly app: FastifyInstance
  private url: string | undefined

  private readonly opts: ApiServerOptions

  constructor (opts: ApiServerOptions) {
    this.opts = opts
    this.app = Fastify({
      loggerInstance: opts.logger.child({ component: 'api' }) as FastifyBaseLogger,
      logController: new LogController({ disableRequestLogging: true }),
      bodyLimit: opts.bodyLimitBytes,
      forceCloseConnections: true,
      return503OnClosing: true
    })
    this.app.addHook('onRequest', requireTokenForWrites(opts.token))
    this.app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer' }, (_req, body, done) => { done(null, body) })
    this.app.setErrorHandler((err, request, reply) => {
      const status = isDatanetError(err)
        ? httpStatusOf(err)
        : (typeof (err as { statusCode?: number }).statusCode === 'number' ? (err as { statusCode: number }).statusCode : 500)
      const code = isDatanetError(err) ? err.code : status < 500 ? ApiErrorCode.BAD_REQUEST : 'API_ERROR_INTERNAL'
      // a node that is busy says so and when to come back; that is not a failure of this node
      if (status === 503 && isDatanetError(err)) void reply.header('retry-after', '2')
      else if (status >= 500) request.log.error({ err, url: request.url }, 'request failed')
      void reply.code(status).send({ error: { code, message: describeError(err) } })
    })
    this.app.setNotFoundHandler((request, reply) => {
      void reply.code(404).send({ error: { code: ApiErrorCode.NOT_FOUND, message: `no route ${request.method} ${request.url.split('?')[0]}` } })
    })
    for (const routes of opts.routes) routes.register(this.app)
  }

  async start (): Promise<string> {
    try {
      await this.app.listen({ host: this.opts.host, port: this.opts.port })
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      const why = code === 'EADDRINUSE' ? 'the port is already in use' : code === 'EACCES' ? 'permission denied' : describeError(err)
      throw new DatanetError({ code: ApiErrorCode.LISTEN }, `cannot listen for the HTTP API on ${this.opts.host}:${this.opts.port}: ${why}`, 'failure', { cause: err })
    }
    const address = this.app.server.address()
    const port = typeof address === 'object' && address !== null ? address.port : this.opts.port
    const host = this.opts.host.includes(':') ? `[${this.opts.host}]` : this.opts.host
    this.url = `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`
    return this.url
  }

  get listeningUrl (): string | undefined {
    return this.url
  }

  async stop (): Promise<void> {
    await this.app.close()
  }
}
