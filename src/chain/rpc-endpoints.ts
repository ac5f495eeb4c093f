import { FetchRequest, JsonRpcProvider, type JsonRpcApiProviderOptions, type JsonRpcPayload, type JsonRpcResult, type Networkish } from 'ethers'

/** One RPC URL's health: consecutive failures and until when it is skipped. */
export interface EndpointHealth {
  failures: number
  /** Epoch ms; 0 when healthy. */
  downUntil: number
}

/** How long an endpoint that failed is skipped: 1 s, doubling per consecutive failure, at most 30 s. */
export function retryDelayMs (failures: number): number {
  return Math.min(1000 * 2 ** Math.max(0, failures - 1), 30_000)
}

/**
 * The order to try endpoints in: those not skipped, in the configured order (so the first
 * URL is preferred again as soon as its pause is over), then the skipped ones by when their
 * pause ends (when all are down, the soonest back is tried first rather than none).
 */
export function endpointOrder (health: readonly EndpointHealth[], now: number): number[] {
  const up = health.flatMap((h, i) => (h.downUntil <= now ? [i] : []))
  const down = health.flatMap((h, i) => (h.downUntil > now ? [i] : [])).sort((a, b) => (health[a] as EndpointHealth).downUntil - (health[b] as EndpointHealth).downUntil)
  return [...up, ...down]
}

export interface FailoverOptions {
  /** A request with no answer in this time counts as the endpoint being down. */
  timeoutMs: number
  /** Called when requests move to another endpoint (index into the URLs). */
  onSwitch?: (from: number, to: number, err: unknown) => void
}

/**
 * A JSON-RPC provider over several URLs of one chain. Each request goes to the first
 * healthy URL; a transport failure (refused, reset, timed out, HTTP error) marks the URL
 * down for a while and the same request goes to the next. A JSON-RPC error answer (a
 * revert, "nonce too low") is an answer, not a failure: it is returned, never retried
 * elsewhere. Below ethers, so reads, sends, contract calls and the signer all fail over.
 */
export class FailoverJsonRpcProvider extends JsonRpcProvider {
  readonly urls: readonly string[]
  readonly health: EndpointHealth[]
  private readonly failover: FailoverOptions
  private active = 0

  constructor (urls: readonly string[], network: Networkish, options: JsonRpcApiProviderOptions, failover: FailoverOptions) {
    if (urls.length === 0) throw new Error('no RPC URL')
    super(urls[0], network, options)
    this.urls = [...urls]
    this.health = urls.map(() => ({ failures: 0, downUntil: 0 }))
    this.failover = failover
  }

  /** The URL requests currently go to. */
  get activeUrl (): string {
    return this.urls[this.active] as string
  }

  override async _send (payload: JsonRpcPayload | JsonRpcPayload[]): Promise<JsonRpcResult[]> {
    let lastError: unknown
    for (const i of endpointOrder(this.health, Date.now())) {
      const request = new FetchRequest(this.urls[i] as string)
      request.timeout = this.failover.timeoutMs
      // a throttled endpoint is a down one here: the next URL answers sooner than a backoff
      request.setThrottleParams({ maxAttempts: 1 })
      request.body = JSON.stringify(payload)
      request.setHeader('content-type', 'application/json')
      try {
        const response = await request.send()
        response.assertOk()
        const body = response.bodyJson as JsonRpcResult | JsonRpcResult[]
        const h = this.health[i] as EndpointHealth
        h.failures = 0
        h.downUntil = 0
        if (i !== this.active) {
          this.failover.onSwitch?.(this.active, i, lastError)
          this.active = i
        }
        return Array.isArray(body) ? body : [body]
      } catch (err) {
        const h = this.health[i] as EndpointHealth
        h.failures++
        h.downUntil = Date.now() + retryDelayMs(h.failures)
        lastError = err
      }
    }
    throw lastError
  }
}
