import { DatanetError, type ErrorKind } from '../../src/errors.ts'
import { CliErrorCode } from './context.ts'

export interface ApiClientOptions {
  url: string
  token?: string
  timeoutMs?: number
}

function kindOfStatus (status: number): ErrorKind {
  if (status === 400 || status === 422) return 'usage'
  if (status === 401) return 'unauthorized'
  if (status === 404) return 'not_found'
  if (status === 409) return 'conflict'
  return 'failure'
}

/** A small client for a node's HTTP API; errors come back as the node's own code and message. */
export class ApiClient {
  private readonly opts: ApiClientOptions

  constructor (opts: ApiClientOptions) {
    this.opts = opts
  }

  get url (): string {
    return this.opts.url
  }

  async request<T> (method: string, path: string, body?: unknown, init: { raw?: boolean, contentType?: string } = {}): Promise<T> {
    const headers: Record<string, string> = {}
    if (this.opts.token !== undefined) headers.authorization = `Bearer ${this.opts.token}`
    let payload: string | Uint8Array | undefined
    if (body instanceof Uint8Array) {
      payload = body
      headers['content-type'] = init.contentType ?? 'application/octet-stream'
    } else if (body !== undefined) {
      payload = JSON.stringify(body)
      headers['content-type'] = 'application/json'
    }
    let res: Response
    try {
      res = await fetch(`${this.opts.url}${path}`, { method, headers, body: payload as RequestInit['body'], signal: AbortSignal.timeout(this.opts.timeoutMs ?? 60_000) })
    } catch (err) {
      throw new DatanetError({ code: CliErrorCode.API_UNREACHABLE }, `cannot reach the node's API at ${this.opts.url} (is \`datanet node start\` running?)`, 'failure', { cause: err })
    }
    if (!res.ok) {
      let code: string = CliErrorCode.API
      let message = `${method} ${path}: HTTP ${res.status}`
      try {
        const json = await res.json() as { error?: { code?: string, message?: string } }
        if (json.error?.message !== undefined) message = json.error.message
        if (json.error?.code !== undefined) code = json.error.code
      } catch {}
      throw new DatanetError({ code }, message, kindOfStatus(res.status))
    }
    if (init.raw === true) return new Uint8Array(await res.arrayBuffer()) as T
    return await res.json() as T
  }

  async get<T> (path: string): Promise<T> {
    return await this.request<T>('GET', path)
  }

  async post<T> (path: string, body?: unknown): Promise<T> {
    return await this.request<T>('POST', path, body)
  }
}
