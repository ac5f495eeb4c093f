import { Repository, jsonCodec, type StateDb } from '../repository.ts'

/** Two conflicting signed votes of one validator for one (height, round, type), as the consensus found them. */
export interface EvidenceEntry {
  datanet: string
  height: number
  round: number
  type: string
  validator: string
  /** The two votes (JSON of `SignedVote`). */
  first: unknown
  second: unknown
  /** What the chain service did with it (a tx hash, a revert name, `not slashable`); undefined while not sent. */
  submitted: string | undefined
}

interface StoredEvidence { first: unknown, second: unknown, submitted?: string }

/**
 * Equivocation evidence, keyed `<datanet>/<height>/<round>/<type>/<validator>`: kept by the
 * consensus (its one writer); what became of it on chain is the chain service's, in a
 * repository of its own beside it (entries of older databases carry it inline).
 */
export class EvidenceRepository {
  private readonly store: Repository<string, StoredEvidence>
  private readonly submissions: Repository<string, string>

  constructor (db: StateDb) {
    this.store = new Repository(db, 'evidence', jsonCodec<StoredEvidence>())
    this.submissions = new Repository(db, 'evidence-submitted', jsonCodec<string>())
  }

  /** Keeps a pair of conflicting votes (once per validator and step: a later pair replaces nothing new). */
  async keep (e: Omit<EvidenceEntry, 'submitted'>): Promise<void> {
    await this.store.put(keyOf(e), { first: e.first, second: e.second })
  }

  /** A datanet's evidence, in key order. */
  async of (datanet: string): Promise<EvidenceEntry[]> {
    const out: EvidenceEntry[] = []
    for await (const [key, value] of this.store.entries({ gte: `${datanet}/`, lt: `${datanet}/\uffff` })) {
      const [, height, round, type, validator] = key.split('/')
      out.push({ datanet, height: Number(height), round: Number(round), type: type ?? '', validator: validator ?? '', first: value.first, second: value.second, submitted: value.submitted })
    }
    const submitted = await this.submissions.getMany(out.map(keyOf))
    return out.map((e, i) => ({ ...e, submitted: submitted[i] ?? e.submitted }))
  }

  /** Records what the chain made of a piece of evidence (written by the chain service only). */
  async markSubmitted (e: Pick<EvidenceEntry, 'datanet' | 'height' | 'round' | 'type' | 'validator'>, outcome: string): Promise<void> {
    await this.submissions.put(keyOf(e), outcome)
  }
}

function keyOf (e: Pick<EvidenceEntry, 'datanet' | 'height' | 'round' | 'type' | 'validator'>): string {
  return `${e.datanet}/${e.height}/${e.round}/${e.type}/${e.validator}`
}
