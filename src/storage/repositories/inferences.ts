import { jsonCodec, type StateDb } from '../repository.ts'
import type { InferenceEntry } from '../state-db.ts'
import { IndexedRepository } from './indexed.ts'

/**
 * Verified inference events by CID, indexed by datanet while no version includes them:
 * what a proposal may still include, read without walking every event ever paid for.
 */
export class InferenceRepository extends IndexedRepository<InferenceEntry> {
  constructor (db: StateDb) {
    super(db, 'inferences', jsonCodec<InferenceEntry>(), 'inferences-unincluded',
      (cid, e) => ({ key: `${e.datanet}/${cid}`, member: e.included === null }))
  }

  /** A datanet's events that no version includes yet, in CID order. */
  unincluded (datanet: string): AsyncGenerator<InferenceEntry> {
    return this.indexed(`${datanet}/`, k => k.slice(datanet.length + 1))
  }
}
