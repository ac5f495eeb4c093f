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
        return (await db.evidence.of(id)).map(e => ({ validator: e.validator, height: e.height, round: e.round, type: e.type, submitted: e.submitted ?? null }))
      })
    }
  }
}
