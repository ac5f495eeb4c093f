import type { Logger } from 'pino'
import type { VersionEntry } from '../src/storage/state-db.ts'

/**
 * What happens in a node, as its services tell each other and as `GET /v1/events` streams
 * it (DESIGN §6). The first six are public; the rest are for the node's own wiring.
 */
export interface NodeEventMap {
  /** A contribution stored here for the first time (uploaded, gossiped or synced). */
  contribution: { datanet: string, cid: string, contributor: string, recordCount: number, origin: string }
  /** A validator's verdict, as received (this node's own included). */
  verdict: { datanet: string, contribution: string, validator: string, accept: boolean, score: number }
  /** A contribution's acceptance decided by its verdicts. */
  decided: { datanet: string, cid: string, status: 'accepted' | 'rejected', score: number | null }
  /** A version final here. */
  version: { datanet: string, height: number, cid: string, recordCount: number, datasetRoot: string, attributionRoot: string, contributions: number }
  /** A version anchored on chain. */
  anchor: { datanet: string, height: number, txHash: string, block: number }
  /** An inference event verified here, its fee escrowed. */
  inference: { datanet: string, cid: string, model: string, fee: string }
  /** Something a proposer may include is waiting (a decided contribution, an event). */
  work: { datanet: string }
  /** The chain's view of a datanet changed (its sets, anchors, escrows). */
  chain: { datanet: string }
  /** Conflicting votes were recorded: evidence for the chain. */
  evidence: { datanet: string }
  /** A version final here, whole (what attribution and anchoring need; `version` is its public summary). */
  final: VersionEntry
}

export type NodeEventName = keyof NodeEventMap
export const PUBLIC_EVENTS: readonly NodeEventName[] = ['contribution', 'verdict', 'decided', 'version', 'anchor', 'inference']

type Listener<K extends NodeEventName> = (event: NodeEventMap[K]) => void

/**
 * A typed, synchronous event bus: the services emit what happened and the daemon declares
 * who reacts, in one place, instead of services calling each other through callbacks bound
 * after they were built. A listener that throws is logged and never stops the others or the
 * emitter.
 */
export class NodeEvents {
  private readonly listeners = new Map<NodeEventName, Set<(event: never) => void>>()
  private readonly logger: Logger | undefined

  constructor (logger?: Logger) {
    this.logger = logger
  }

  /** Subscribes; returns the unsubscribe. */
  on<K extends NodeEventName> (name: K, listener: Listener<K>): () => void {
    let set = this.listeners.get(name)
    if (set === undefined) {
      set = new Set()
      this.listeners.set(name, set)
    }
    set.add(listener as (event: never) => void)
    return () => { set.delete(listener as (event: never) => void) }
  }

  emit<K extends NodeEventName> (name: K, event: NodeEventMap[K]): void {
    for (const listener of this.listeners.get(name) ?? []) {
      try {
        (listener as Listener<K>)(event)
      } catch (err) {
        this.logger?.error({ err, event: name }, 'event listener failed')
      }
    }
  }

  listenerCount (name: NodeEventName): number {
    return this.listeners.get(name)?.size ?? 0
  }
}
