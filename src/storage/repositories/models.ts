import { Repository, jsonCodec, type StateDb } from '../repository.ts'
import type { ModelEntry } from '../state-db.ts'

/** Model records by id (their CID); written by the inference service only. */
export class ModelRepository {
  private readonly store: Repository<string, ModelEntry>

  constructor (db: StateDb) {
    this.store = new Repository(db, 'models', jsonCodec<ModelEntry>())
  }

  async get (id: string): Promise<ModelEntry | undefined> {
    return await this.store.get(id)
  }

  async has (id: string): Promise<boolean> {
    return await this.store.has(id)
  }

  async put (entry: ModelEntry): Promise<void> {
    await this.store.put(entry.id, entry)
  }

  /** A datanet's models, oldest first (models are few: one per training, not per record). */
  async of (datanet: string): Promise<ModelEntry[]> {
    return (await this.store.values()).filter(m => m.datanet === datanet).sort((a, b) => a.createdAt - b.createdAt)
  }
}
