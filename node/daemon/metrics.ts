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
    this.readAtScrape('datanet_gossip_outbox_messages', 'Own gossip messages waiting for a peer to subscribe to their topic', waiting)
  }

  /** Collections an idle node made to give its unused heap back (idle-trim.ts), read at each scrape. */
  idleTrims (count: () => number): void {
    this.readAtScrape('datanet_idle_trims', 'Full collections made while the node was idle, to give its unused heap back', count)
  }

  /** A gauge whose value is read from `read` at each scrape. */
  private readAtScrape (name: string, help: string, read: () => number): void {
    new Gauge({ name, help, registers: [this.registry], collect () { this.set(read()) } })
  }

  gossipResult (topic: string, result: string, code = ''): void {
    this.gossipMessages.inc({ topic, result, code })
  }
}
