import { Counter, Gauge, type Registry } from 'prom-client'

/** The node's own metrics, beside libp2p's and the process's in the same registry. Labels are bounded. */
export class NodeMetrics {
  private readonly gossipMessages: Counter<'topic' | 'result' | 'code'>

  private readonly registry: Registry

  constructor (registry: Registry) {
    this.registry = registry
    this.gossipMessages = new Counter({
      name: 'datanet_gossip_messages_total',
      help: 'Gossip messages by topic kind, validation result and error code',
      labelNames: ['topic', 'result', 'code'],
      registers: [registry]
    })
  }

  /** Own gossip messages waiting for a subscriber to their topic, read at each scrape. */
  gossipOutbox (waiting: () => number): void {
    const registry = this.registry
    new Gauge({
      name: 'datanet_gossip_outbox_messages',
      help: 'Own gossip messages waiting for a peer to subscribe to their topic',
      registers: [registry],
      collect () { this.set(waiting()) }
    })
  }

  /** Collections an idle node made to give its unused heap back (idle-trim.ts), read at each scrape. */
  idleTrims (count: () => number): void {
    const registry = this.registry
    new Gauge({
      name: 'datanet_idle_trims',
      help: 'Full collections made while the node was idle, to give its unused heap back',
      registers: [registry],
      collect () { this.set(count()) }
    })
  }

  gossipResult (topic: string, result: string, code = ''): void {
    this.gossipMessages.inc({ topic, result, code })
  }
}
