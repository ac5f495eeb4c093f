import type { Repository } from '../storage/repository.ts'
import type { OutboxEntry } from '../storage/state-db.ts'
import type { HeldMessage, OutboxStore } from './gossip.ts'

/** The gossip outbox kept in the state database's `outbox` sublevel. */
export function levelOutboxStore (repo: Repository<string, OutboxEntry>): OutboxStore {
  return {
    put: async (id, m) => { await repo.put(id, { topic: m.topic, data: Buffer.from(m.data).toString('base64'), at: m.at }) },
    delete: async id => { await repo.delete(id) },
    all: async () => {
      const out: Array<[string, HeldMessage]> = []
      for await (const [id, e] of repo.entries()) out.push([id, { topic: e.topic, data: new Uint8Array(Buffer.from(e.data, 'base64')), at: e.at }])
      return out
    }
  }
}
