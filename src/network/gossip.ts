import { createHash } from 'node:crypto'
import { TopicValidatorResult, type GossipSub, type GossipsubMessage, type Message } from '@libp2p/gossipsub'
import { DatanetError } from '../errors.ts'
import { PeerPenalties } from './peer-penalties.ts'
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
  /**
   * Own messages published while no peer is subscribed wait in the outbox until one is
   * (for messages sent once and never again; not for votes or periodic announcements).
   */
  holdUntilSubscribed?: boolean
  /** A peer subscribed to the topic: it may hold what this node lacks (consensus asks it for versions at once). */
  onSubscribed?: (peer: string) => void
}

/** The parts of the gossipsub service this router uses beyond its public interface. */
interface GossipSubInternals extends GossipSub {
  score: { params: { topics: Record<string, TopicScoreParams>, appSpecificScore: (peerId: string) => number } }
  reportMessageValidationResult: (msgId: string, propagationSource: string, acceptance: TopicValidatorResult) => void
  getScore: (peerId: string) => number
  getMeshPeers: (topic: string) => string[]
  publish: (topic: string, data: Uint8Array, opts?: { allowPublishToZeroTopicPeers?: boolean }) => Promise<{ recipients: PeerId[] }>
  /** Peers we have a gossipsub stream to: a subscriber without one would not get a message. */
  streamsOutbound: Map<string, unknown>
}

export interface GossipStats {
  accepted: number
  rejected: number
  ignored: number
  dropped: number
  /** Own messages that waited in the outbox and were then sent. */
  delayed: number
  /** Own messages dropped from the outbox: too old, or too many waiting. */
  unsent: number
  /** Penalties given to peers for what their accepted messages turned out to be. */
  penalised: number
}

/** An own message waiting in the outbox. */
export interface HeldMessage {
  topic: string
  data: Uint8Array
  /** When it was first held (ms since the epoch): its time to live counts from there. */
  at: number
}

/**
 * Where held messages are kept so a crash does not lose them: put when held, deleted
 * when sent or dropped, read back at start (keys are the messages' content ids).
 */
export interface OutboxStore {
  put: (id: string, message: HeldMessage) => Promise<void>
  delete: (id: string) => Promise<void>
  all: () => Promise<Array<[string, HeldMessage]>>
}

interface Unsent extends HeldMessage { id: string }

/** Content-hash message ids: the same bytes on the same topic are one message, whoever sends them. */
export function contentMessageId (msg: Message): Uint8Array {
  return contentHash(msg.topic, msg.data)
}

/** contentMessageId of a message as it arrives (before its signature is checked), as a string: gossipsub's fast message id. */
export function fastMessageId (msg: { topic: string, data?: Uint8Array }): string {
  return contentHash(msg.topic, msg.data ?? new Uint8Array(0)).toString('base64')
}

function contentHash (topic: string, data: Uint8Array): Buffer {
  return createHash('sha256').update(topic).update('\0').update(data).digest()
}

interface Queued { handler: TopicHandler<unknown>, event: GossipsubMessage }

export interface GossipRouterOptions {
  /** Messages waiting for validation per topic; beyond it new ones are ignored (not penalised). */
  queueSize: number
  /** Own messages kept per topic while no peer is subscribed to it (default 256; oldest dropped). */
  outboxSize?: number
  /** How long an own message waits for a subscriber before it is dropped (default 10 min). */
  outboxTtlMs?: number
  /** How often the outbox is retried besides on subscription changes (default 1 s). */
  outboxRetryMs?: number
  /** Keeps held messages across restarts; in memory only when absent. */
  outboxStore?: OutboxStore
  /** Time for a peer's application penalty to halve (default 2 min). */
  penaltyHalfLifeMs?: number
  logger: Logger
  onResult?: (kind: string, result: 'accept' | GossipAction | 'dropped' | 'penalised', code?: string) => void
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
  /** The drain loops running, so a stop can wait for the messages they are validating. */
  private readonly drains = new Set<Promise<void>>()
  private readonly pubsub: GossipSubInternals
  /**
   * Own messages published while no peer was subscribed to their topic (at start, before
   * subscriptions arrive): gossipsub would mark them seen and never send them, so they
   * wait here until a peer subscribes.
   */
  private readonly outbox = new Map<string, Unsent[]>()
  private retryTimer: NodeJS.Timeout | undefined
  private flushing = false
  /** Taken from the outbox by the pass sending them, not sent yet. */
  private sending = 0
  private running = false
  /** Resolves once the held messages of the last run are back in the outbox. */
  private restored: Promise<void> = Promise.resolve()
  readonly stats: GossipStats = { accepted: 0, rejected: 0, ignored: 0, dropped: 0, delayed: 0, unsent: 0, penalised: 0 }
  private readonly penalties: PeerPenalties

  private readonly options: GossipRouterOptions

  constructor (pubsub: GossipSub, options: GossipRouterOptions) {
    this.options = options
    this.pubsub = pubsub as GossipSubInternals
    this.penalties = new PeerPenalties({ halfLifeMs: options.penaltyHalfLifeMs })
  }

  start (): void {
    if (this.running) return
    this.running = true
    // P5 of the peer score is ours: penalties for what accepted messages turned out to be
    this.pubsub.score.params.appSpecificScore = peerId => this.penalties.score(peerId)
    this.pubsub.addEventListener('gossipsub:message', this.onMessage)
    this.pubsub.addEventListener('subscription-change', this.onSubscriptionChange)
    for (const topic of this.handlers.keys()) this.pubsub.subscribe(topic)
    this.restored = this.restoreHeld()
  }

  /** Resolves once the messages held before the last stop or crash wait in the outbox again. */
  async ready (): Promise<void> {
    await this.restored
  }

  /** Puts back what the outbox store held (the previous run crashed or stopped before a peer subscribed). */
  private async restoreHeld (): Promise<void> {
    const store = this.options.outboxStore
    if (store === undefined) return
    let stored: Array<[string, HeldMessage]>
    try {
      stored = await store.all()
    } catch (err) {
      this.options.logger.error({ err }, 'cannot read the gossip outbox store: held messages of the last run are not sent')
      return
    }
    if (!this.running || stored.length === 0) return
    stored.sort(([, a], [, b]) => a.at - b.at)
    for (const [id, message] of stored) {
      const list = this.outbox.get(message.topic) ?? []
      if (list.some(u => u.id === id)) continue
      // older than anything held since this start
      const at = list.findIndex(u => u.at > message.at)
      list.splice(at === -1 ? list.length : at, 0, { ...message, id })
      this.outbox.set(message.topic, list)
    }
    this.options.logger.info({ held: stored.length }, 'own gossip messages held before the last stop: sending them when a peer subscribes')
    this.startRetry()
    await this.flush()
  }

  /**
   * Lowers a peer's score for what a message it published turned out to be after it was
   * accepted (through gossipsub's application-specific score, P5; `weight` 1 is -10 of
   * score with the default weights, as much as ten first deliveries earn).
   */
  penalise (peerId: string, kind: string, code: string, weight: number): void {
    this.penalties.add(peerId, weight)
    this.stats.penalised++
    this.options.onResult?.(kind, 'penalised', code)
    this.options.logger.debug({ peer: peerId, topic: kind, code, weight, penalty: this.penalties.current(peerId) }, 'peer penalised')
  }

  /** Takes back an earlier penalty (the fault turned out to be a transient one). */
  forgive (peerId: string, weight: number): void {
    this.penalties.add(peerId, -weight)
  }

  /**
   * Stops taking messages, drops the ones waiting, and resolves once the ones being
   * validated or handled are done (at most `drainMs`): the services their handlers write
   * through stop after this, never under a message.
   */
  async stop (drainMs = 5000): Promise<void> {
    if (!this.running) return
    this.running = false
    this.pubsub.removeEventListener('gossipsub:message', this.onMessage)
    this.pubsub.removeEventListener('subscription-change', this.onSubscriptionChange)
    clearInterval(this.retryTimer)
    this.retryTimer = undefined
    // what is held stays in the store, for the next start
    this.outbox.clear()
    for (const topic of this.handlers.keys()) this.pubsub.unsubscribe(topic)
    for (const queue of this.queues.values()) queue.length = 0
    if (this.drains.size === 0) return
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<'late'>(resolve => { timer = setTimeout(() => { resolve('late') }, drainMs) })
    const done = await Promise.race([Promise.allSettled([...this.drains]).then(() => 'done' as const), late])
    clearTimeout(timer)
    if (done === 'late') this.options.logger.warn({ inFlight: this.drains.size, drainMs }, 'gossip stopped with messages still being validated')
  }

  register<T> (handler: TopicHandler<T>): void {
    if (this.handlers.has(handler.topic)) throw new Error(`gossip topic ${handler.topic} already has a handler`)
    this.handlers.set(handler.topic, handler as TopicHandler<unknown>)
    this.queues.set(handler.topic, [])
    // gossipsub reads topic parameters on every score computation, so topics can join later.
    if (handler.scoreParams !== undefined) this.pubsub.score.params.topics[handler.topic] = handler.scoreParams
    if (this.running) this.pubsub.subscribe(handler.topic)
    // peers that subscribed before this handler existed send no event: told of now (after
    // the caller's own setup), so a node that follows a datanet late asks them at once
    const onSubscribed = handler.onSubscribed
    if (onSubscribed !== undefined && this.running) {
      queueMicrotask(() => {
        if (this.handlers.get(handler.topic) !== handler) return
        for (const peer of this.subscribers(handler.topic)) {
          try {
            onSubscribed(peer)
          } catch (err) {
            this.options.logger.warn({ err, kind: handler.kind }, 'a subscription listener failed')
          }
        }
      })
    }
  }

  /**
   * Publishes an own message; returns how many peers it was sent to. With none subscribed
   * yet it returns 0, and on a topic that holds messages the message waits in the outbox
   * until one is.
   */
  async publish (topic: string, data: Uint8Array): Promise<number> {
    const hold = this.handlers.get(topic)?.holdUntilSubscribed === true
    // behind messages already waiting, to keep their order
    if (hold && (this.outbox.has(topic) || !this.reachable(topic))) {
      await this.hold(topic, data)
      return 0
    }
    try {
      return (await this.pubsub.publish(topic, data, { allowPublishToZeroTopicPeers: true })).recipients.length
    } catch (err) {
      // sent already (a re-gossip got there first): the message is out, nothing failed
      if (isDuplicatePublish(err)) return 0
      throw err
    }
  }

  /**
   * Whether a message published now reaches a subscriber. gossipsub marks a message seen
   * when it is published, sent or not, so one sent to nobody could not be sent again.
   */
  private reachable (topic: string): boolean {
    return this.pubsub.getSubscribers(topic).some(p => this.pubsub.streamsOutbound.has(p.toString()))
  }

  /** Own messages waiting for a subscriber to their topic. */
  get waiting (): number {
    let n = this.sending
    for (const list of this.outbox.values()) n += list.length
    return n
  }

  /** Keeps an own message until a peer can receive it; in the store before this returns (the caller may acknowledge it). */
  private async hold (topic: string, data: Uint8Array): Promise<void> {
    const id = Buffer.from(contentMessageId({ type: 'unsigned', topic, data })).toString('hex')
    // the same bytes are one gossip message: gossipsub would refuse the second as a duplicate
    if (this.outbox.get(topic)?.some(u => u.id === id) === true) return
    const message = { topic, data, at: Date.now() }
    // stored first: a pass of the outbox that sends it deletes it from the store after this
    await this.options.outboxStore?.put(id, message)
    const list = this.outbox.get(topic) ?? []
    if (list.some(u => u.id === id)) return
    list.push({ ...message, id })
    this.outbox.set(topic, list)
    this.options.logger.debug({ topic, waiting: list.length }, 'no peer can receive it yet: held until one subscribes')
    if (list.length > (this.options.outboxSize ?? 256)) {
      const oldest = list.shift() as Unsent
      this.stats.unsent++
      this.options.logger.warn({ topic }, 'gossip outbox full: dropped the oldest unsent message')
      await this.unstore(oldest.id)
    }
    this.startRetry()
  }

  private startRetry (): void {
    if (this.running && this.retryTimer === undefined) {
      this.retryTimer = setInterval(() => { void this.flush() }, this.options.outboxRetryMs ?? 1000)
      this.retryTimer.unref()
    }
  }

  /** Forgets a held message in the store (sent, or dropped); a store error only costs a second send after a restart. */
  private async unstore (id: string): Promise<void> {
    try {
      await this.options.outboxStore?.delete(id)
    } catch (err) {
      this.options.logger.warn({ err }, 'cannot delete a message from the gossip outbox store')
    }
  }

  private readonly onSubscriptionChange = (evt: CustomEvent<{ peerId: { toString: () => string }, subscriptions: Array<{ topic: string, subscribe: boolean }> }>): void => {
    if (evt.detail.subscriptions.some(s => s.subscribe && this.outbox.has(s.topic))) void this.flush()
    for (const { topic, subscribe } of evt.detail.subscriptions) {
      const onSubscribed = subscribe ? this.handlers.get(topic)?.onSubscribed : undefined
      if (onSubscribed === undefined) continue
      try {
        onSubscribed(evt.detail.peerId.toString())
      } catch (err) {
        this.options.logger.warn({ err, kind: this.handlers.get(topic)?.kind }, 'a subscription listener failed')
      }
    }
  }

  /** Sends what the outbox holds for topics that now have subscribers; drops what is too old. */
  private async flush (): Promise<void> {
    // one pass at a time: a second one would publish the same messages again
    if (this.flushing) return
    this.flushing = true
    try {
      await this.sendHeld()
    } finally {
      this.flushing = false
    }
  }

  private async sendHeld (): Promise<void> {
    const ttl = this.options.outboxTtlMs ?? 600_000
    for (const topic of [...this.outbox.keys()]) {
      // the outbox is read and rewritten with no await between: a message held meanwhile is not lost
      const list = this.outbox.get(topic)
      if (list === undefined) continue
      const fresh = list.filter(item => Date.now() - item.at <= ttl)
      const expired = list.filter(item => !fresh.includes(item))
      const send = fresh.length > 0 && this.reachable(topic)
      if (send || fresh.length === 0) this.outbox.delete(topic)
      else this.outbox.set(topic, fresh)
      if (expired.length > 0) {
        this.stats.unsent += expired.length
        this.options.logger.warn({ topic, dropped: expired.length, ttlMs: ttl }, 'gossip messages dropped: no peer subscribed to their topic in time')
        for (const item of expired) await this.unstore(item.id)
      }
      if (!send) continue
      this.sending += fresh.length
      for (const item of fresh) {
        try {
          await this.pubsub.publish(topic, item.data, { allowPublishToZeroTopicPeers: true })
          this.stats.delayed++
        } catch (err) {
          if (!isDuplicatePublish(err)) this.options.logger.warn({ topic, err: (err as Error).message }, 'gossip message from the outbox not sent')
        }
        await this.unstore(item.id)
        this.sending--
      }
    }
    if (this.outbox.size === 0) {
      clearInterval(this.retryTimer)
      this.retryTimer = undefined
    }
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
    if (workers < (handler.concurrency ?? 1)) {
      const drain = this.drain(msg.topic)
      this.drains.add(drain)
      void drain.finally(() => { this.drains.delete(drain) })
    }
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

/** gossipsub's refusal to publish a message its seen cache holds: the message went out already. */
function isDuplicatePublish (err: unknown): boolean {
  return err instanceof Error && err.message === 'PublishError.Duplicate'
}
