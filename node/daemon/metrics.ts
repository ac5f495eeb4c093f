import { Counter, type Registry } from 'prom-client'

/** The node's own metrics, beside libp2p's and the process's in the same registry. Labels are bounded. */
export class NodeMetrics {
  private readonly gossipMessages: Counter<'topic' | 'result' | 'code'>

  constructor (registry: Registry) {
    this.gossipMessages = new Counter({
      name: 'datanet_gossip_messages_total',
      help: 'Gossip messages by topic kind, validation result and error code',
      labelNames: ['topic', 'result', 'code'],
      registers: [registry]
    })
  }

  gossipResult (topic: string, result: string, code = ''): void {
    this.gossipMessages.inc({ topic, result, code })
  }
}
