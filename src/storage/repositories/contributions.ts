import { jsonCodec, type StateDb } from '../repository.ts'
import type { ContributionEntry } from '../state-db.ts'
import { IndexedRepository } from './indexed.ts'

/**
 * Contributions by CID, indexed by datanet while no version includes them (pending,
 * accepted-not-included and rejected ones: a rejection is never included). Proposal
 * building and re-gossip read the index: their cost follows what is still open, not every
 * contribution the node ever held.
 */
export class ContributionRepository extends IndexedRepository<ContributionEntry> {
  constructor (db: StateDb) {
    super(db, 'contributions', jsonCodec<ContributionEntry>(), 'contributions-unincluded',
      (cid, e) => ({ key: `${e.datanet}/${cid}`, member: e.version === null }))
  }

  /** A datanet's contributions that no version includes yet, in CID order. */
  unincluded (datanet: string): AsyncGenerator<ContributionEntry> {
    return this.indexed(`${datanet}/`, k => k.slice(datanet.length + 1))
  }
}
