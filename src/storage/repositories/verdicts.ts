import { Repository, jsonCodec, type StateDb } from '../repository.ts'
import type { VerdictEntry } from '../state-db.ts'

/**
 * Verdicts as received, keyed `<contribution cid>/<validator address>` so one
 * contribution's verdicts are one range. Written only by the verdicts service.
 */
export class VerdictRepository {
  private readonly store: Repository<string, VerdictEntry>

  constructor (db: StateDb) {
    this.store = new Repository(db, 'verdicts', jsonCodec<VerdictEntry>())
  }

  async get (contribution: string, validator: string): Promise<VerdictEntry | undefined> {
    return await this.store.get(`${contribution}/${validator}`)
  }

  async has (contribution: string, validator: string): Promise<boolean> {
    return await this.store.has(`${contribution}/${validator}`)
  }

  /** Every verdict on one contribution. */
  async of (contribution: string): Promise<VerdictEntry[]> {
    const out: VerdictEntry[] = []
    for await (const [, v] of this.store.entries({ gte: `${contribution}/`, lt: `${contribution}/\uffff` })) out.push(v)
    return out
  }

  /** Which of these (contribution, validator) pairs have a verdict, in one read. */
  async hasMany (pairs: ReadonlyArray<readonly [contribution: string, validator: string]>): Promise<boolean[]> {
    return (await this.store.getMany(pairs.map(([c, v]) => `${c}/${v}`))).map(e => e !== undefined)
  }

  async put (entry: VerdictEntry): Promise<void> {
    await this.store.put(`${entry.contribution}/${entry.validator}`, entry)
  }

  /** Many verdicts in one batch (a caught-up range's). */
  async putMany (entries: readonly VerdictEntry[]): Promise<void> {
    await this.store.putMany(entries.map(e => [`${e.contribution}/${e.validator}`, e]))
  }
}
