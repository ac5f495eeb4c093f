import { DatanetError } from '../../../src/errors.ts'
import { type StateDatabase, type VersionEntry } from '../../../src/storage/state-db.ts'
import { notFound, recordProof } from '../../services/record-proofs.ts'
import type { DatanetService } from '../../services/datanets.ts'
import type { ApiRoutes } from '../server.ts'
import type { FastifyInstance } from 'fastify'

export interface VersionRoutesDeps {
  db: StateDatabase
  datanets: DatanetService
}

/** DESIGN §6 version fields: height, datasetRoot, attributionRoot, anchor. */
export function versionJson (v: VersionEntry): Record<string, unknown> {
  const { frontier: _f, ...rest } = v
  return rest
}

export function versionRoutes ({ db, datanets }: VersionRoutesDeps): ApiRoutes {
  return {
    register (app: FastifyInstance) {
      app.get('/v1/datanets/:id/versions', async (request) => {
        const { id } = request.params as { id: string }
        datanets.require(id)
        return (await db.versions.of(id, { reverse: true })).map(versionJson)
      })
      app.get('/v1/datanets/:id/versions/:height', async (request) => {
        const { id, height } = request.params as { id: string, height: string }
        datanets.require(id)
        if (!/^\d+$/.test(height)) throw new DatanetError({ code: 'API_ERROR_BAD_REQUEST' }, `height: expected a positive integer, got "${height}"`, 'usage')
        const v = await db.versions.at(id, Number(height))
        if (v === undefined) throw notFound(`datanet ${id} has no version ${height}`)
        return versionJson(v)
      })
      app.get('/v1/datanets/:id/records/:hash/proof', async (request) => {
        const { id, hash } = request.params as { id: string, hash: string }
        const { version } = (request.query ?? {}) as { version?: string }
        const d = datanets.require(id)
        if (version !== undefined && !/^\d+$/.test(version)) throw new DatanetError({ code: 'API_ERROR_BAD_REQUEST' }, `version: expected a height, got "${version}"`, 'usage')
        return await recordProof(db, id, d.digest, hash, version === undefined ? undefined : Number(version))
      })
    }
  }
}
