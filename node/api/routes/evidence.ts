import type { StateDatabase } from '../../../src/storage/state-db.ts'
import type { DatanetService } from '../../services/datanets.ts'
import type { ApiRoutes } from '../server.ts'
import type { FastifyInstance } from 'fastify'

export interface EvidenceRoutesDeps {
  db: StateDatabase
  datanets: DatanetService
}

/** One piece of equivocation evidence this node keeps: whose two votes, where. */
export interface EvidenceView {
  validator: string
  height: number
  round: number
  type: string
  /** What the chain service did with it (a tx hash, a revert name), null while not sent. */
  submitted: string | null
}

/** Equivocation evidence kept for a datanet, read-only (the level db cannot be opened while the daemon runs). */
export function evidenceRoutes ({ db, datanets }: EvidenceRoutesDeps): ApiRoutes {
  return {
    register (app: FastifyInstance) {
      app.get('/v1/datanets/:id/evidence', async (request): Promise<EvidenceView[]> => {
        const { id } = request.params as { id: string }
        datanets.require(id)
        const out: EvidenceView[] = []
        // keyed `<datanet>/<height>/<round>/<type>/<validator>`
        for await (const [key, value] of db.evidence.entries({ gte: `${id}/`, lt: `${id}/\uffff` })) {
          const [, height, round, type, validator] = key.split('/')
          out.push({ validator: validator ?? '', height: Number(height), round: Number(round), type: type ?? '', submitted: typeof value.submitted === 'string' ? value.submitted : null })
        }
        return out
      })
    }
  }
}
