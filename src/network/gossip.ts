import { createHash } from 'node:crypto'
import { TopicValidatorResult, type GossipSub, type GossipsubMessage, type Message } from '@libp2p/gossipsub'
import { DatanetError } from '../errors.ts'
import type { TopicScoreParams } from '@libp2p/gossipsub/score'
import type { PeerId } from '@libp2p/interface'
import type { Logger } from 'pino'

/** What a topic validator decides; Accept is the absence of an error. */
export const GossipAction = {
  REJECT: 'reject',
  IGNORE: 'ignore'
} as const
export type GossipAction = typeof GossipAction[keyof typeof GossipAction]

export interface GossipErrorType { code: string }

/**
 * Thrown by a topic validator. REJECT: the message is invalid, never relayed, and its
 * sender's score drops. IGNORE: not invalid, just not useful (duplicate, stale).
 */
export class GossipValidationError extends DatanetError {
  readonly action: GossipAction

  constructor (action: GossipAction, type: GossipErrorType, message: string) {
    super(type, message, 'usage')
    this.action = action
  }
}

export const reject = (code: string, message: string): GossipValidationError => new GossipValidationError(GossipAction.REJECT, { code }, message)
export const ignore = (code: string, message: string): GossipValidationError => new GossipValidationError(GossipAction.IGNORE, { code }, message)

export interface GossipContext {
  /** The peer that signed and published the message (messages are StrictSign). */
  publisher: PeerId
  /** The peer that relayed it to us. */
  propagationSource: PeerId
  msgId: string
}

/**
 * One gossip topic: how to decode its messages, how to judge them (read-only, throws
 * GossipValidationError) and what to do with accepted ones (side effects, after the
 * verdict was reported so relaying never waits for them).
 */
export interface TopicHandler<T> {
  topic: string
  /** A bounded label for metrics and logs (never the raw topic: it embeds ids). */
  kind: string
  decode: (data: Uint8Array) => T
  validate: (message: T, ctx: GossipContext) => Promise<void> | void
  handle: (message: T, ctx: GossipContext) => Promise<void> | void
  /** Peer-score parameters for the topic; unscored when absent. */
  scoreParams?: TopicScoreParams
  /** Messages validated at once (default 1: in order). */
  concurrency?: number
}

/** The parts of the gossipsub service this router uses beyond its public interface. */
interface GossipSubInternals extends GossipSub {
  score: { params: { topics: Record<string, TopicScoreParams> } }
  reportMessageValidationResult: (msgId: string, propagationSource: string, acceptance: TopicValidatorResult) => void
  getScore: (peerId: string) => number
  getMeshPeers: (topic: string) => string[]
}

export interface GossipStats {
  accepted: number
  rejected: number
  ignored: number
  dropped: number
}

/** Content-hash message ids: the same bytes on the same topic are one message, whoever sends them. */
export function contentMessageId (msg: Message): Uint8Array {
  return createHash('sha256').update(msg.topic).update('\0').update(msg.data).digest()
}

interface Queued { handler: TopicHandler<unknown>, event: GossipsubMessage }

export interface GossipRouterOptions {
  /** Messages waiting for validation per topic; beyond it new ones are ignored (not penalised). */
  queueSize: number
  logger: Logger
  onResult?: (kind: string, result: 'accept' | GossipAction | 'dropped', code?: string) => void
}

/**
 * Validates every message before it is forwarded (gossipsub asyncValidation): messages
 * queue per topic, are decoded and judged off the gossip callback, the verdict is
 * reported back to gossipsub, and only accepted messages reach their handler.
 */
export class GossipRouter {
  private readonly handlers = new Map<string, TopicHandler<unknown>>()
  private readonly queues = new Map<string, Queued[]>()
  private readonly draining = new Map<string, number>()
  private readonly pubsub: GossipSubInternals
  private running = false
  readonly stats: GossipStats = { accepted: 0, rejected: 0, ignored: 0, dropped: 0 }

  private readonly options: GossipRouterOptions

  constructor (pubsub: GossipSub, options: GossipRouterOptions) {
    this.options = options
    this.pubsub = pubsub as GossipSubInternals
  }

  start (): void {
    if (this.running) return
    this.running = true
    this.pubsub.addEventListener('gossipsub:message', this.onMessage)
    for (const topic of this.handlers.keys()) this.pubsub.subscribe(topic)
  }

  stop (): void {
    if (!this.running) return
    this.running = false
    this.pubsub.removeEventListener('gossipsub:message', this.onMessage)
    for (const topic of this.handlers.keys()) this.pubsub.unsubscribe(topic)
    for (const queue of this.queues.values()) queue.length = 0
  }

  register<T> (handler: TopicHandler<T>): void {
    if (this.handlers.has(handler.topic)) throw new Error(`gossip topic ${handler.topic} already has a handler`)
    this.handlers.set(handler.topic, handler as TopicHandler<unknown>)
    this.queues.set(handler.topic, [])
    // gossipsub reads topic parameters on every score computation, so topics can join later.
    if (handler.scoreParams !== undefined) this.pubsub.score.params.topics[handler.topic] = handler.scoreParams
    if (this.running) this.pubsub.subscribe(handler.topic)
  }

  async publish (topic: string, data: Uint8Array): Promise<number> {
    const result = await this.pubsub.publish(topic, data)
    return result.recipients.length
  }

  meshPeers (topic: string): string[] {
    return this.pubsub.getMeshPeers(topic)
  }

  subscribers (topic: string): string[] {
    return this.pubsub.getSubscribers(topic).map(p => p.toString())
  }

  score (peerId: string): number {
    return this.pubsub.getScore(peerId)
  }

  private readonly onMessage = (evt: CustomEvent<GossipsubMessage>): void => {
    const { msg, msgId, propagationSource } = evt.detail
    const handler = this.handlers.get(msg.topic)
    const source = propagationSource.toString()
    if (handler === undefined) {
      this.pubsub.reportMessageValidationResult(msgId, source, TopicValidatorResult.Ignore)
      return
    }
    const queue = this.queues.get(msg.topic) as Queued[]
    if (queue.length >= this.options.queueSize) {
      this.stats.dropped++
      this.options.onResult?.(handler.kind, 'dropped')
      this.pubsub.reportMessageValidationResult(msgId, source, TopicValidatorResult.Ignore)
      return
    }
    queue.push({ handler, event: evt.detail })
    const workers = this.draining.get(msg.topic) ?? 0
    if (workers < (handler.concurrency ?? 1)) void this.drain(msg.topic)
  }

  private async drain (topic: string): Promise<void> {
    this.draining.set(topic, (this.draining.get(topic) ?? 0) + 1)
    try {
      const queue = this.queues.get(topic)
      while (this.running && queue !== undefined && queue.length > 0) {
        const item = queue.shift() as Queued
        await this.process(item)
      }
    } finally {
      this.draining.set(topic, (this.draining.get(topic) ?? 1) - 1)
    }
  }

  /** Resolves when no message is waiting or being validated (for orderly stops and tests). */
  get idle (): boolean {
    return [...this.queues.values()].every(q => q.length === 0) && [...this.draining.values()].every(n => n === 0)
  }

  private async process ({ handler, event }: Queued): Promise<void> {
    const { msg, msgId, propagationSource } = event
    const source = propagationSource.toString()
    const log = this.options.logger
    if (msg.type !== 'signed') {
      // [REJECT] every message is signed by its publisher (StrictSign)
      this.report(handler, msgId, source, TopicValidatorResult.Reject, 'GOSSIP_ERROR_UNSIGNED')
      return
    }
    const ctx: GossipContext = { publisher: msg.from, propagationSource, msgId }
    let decoded: unknown
    try {
      decoded = handler.decode(msg.data)
      await handler.validate(decoded, ctx)
    } catch (err) {
      if (err instanceof GossipValidationError) {
        const result = err.action === GossipAction.REJECT ? TopicValidatorResult.Reject : TopicValidatorResult.Ignore
        log.debug({ topic: handler.kind, code: err.code, from: msg.from.toString(), source, reason: err.message }, 'gossip message %s', err.action)
        this.report(handler, msgId, source, result, err.code)
      } else {
        // A validator that crashes must not let the message through, nor punish the sender for our bug.
        log.error({ err, topic: handler.kind, from: msg.from.toString() }, 'gossip validator failed')
        this.report(handler, msgId, source, TopicValidatorResult.Ignore, 'GOSSIP_ERROR_VALIDATOR_FAILED')
      }
      return
    }
    this.report(handler, msgId, source, TopicValidatorResult.Accept)
    try {
      await handler.handle(decoded, ctx)
    } catch (err) {
      log.error({ err, topic: handler.kind, from: msg.from.toString() }, 'gossip handler failed')
    }
  }

  private report (handler: TopicHandler<unknown>, msgId: string, source: string, result: TopicValidatorResult, code?: string): void {
    if (result === TopicValidatorResult.Accept) this.stats.accepted++
    else if (result === TopicValidatorResult.Reject) this.stats.rejected++
    else this.stats.ignored++
    this.options.onResult?.(handler.kind, result === TopicValidatorResult.Accept ? 'accept' : result === TopicValidatorResult.Reject ? GossipAction.REJECT : GossipAction.IGNORE, code)
    this.pubsub.reportMessageValidationResult(msgId, source, result)
  }
}
