import { concatBytes, fromHex, toHex } from '../../../src/codec/hash.ts'
import { merkleProof, verifyProof } from '../../../src/merkle/tree.ts'
import { DatanetError } from '../../../src/errors.ts'
import { heightKey } from '../../../src/storage/repository.ts'
import { heightKeyOf, type StateDatabase, type VersionEntry } from '../../../src/storage/state-db.ts'
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

export interface RecordProof {
  recordHash: string
  version: number
  versionCid: string
  datasetRoot: string
  position: number
  recordCount: number
  proof: string[]
}

function notFound (message: string): DatanetError {
  return new DatanetError({ code: 'VERSION_ERROR_NOT_FOUND' }, message, 'not_found')
}


/** The inclusion proof of a record against a version's dataset root (the latest by default). */
export async function recordProof (db: StateDatabase, datanet: string, digestHex: string, recordHash: string, height?: number): Promise<RecordProof> {
  let hash: Uint8Array
  try {
    hash = fromHex(recordHash, 32)
  } catch {
    throw new DatanetError({ code: 'API_ERROR_BAD_REQUEST' }, `not a record hash (32 bytes of hex): ${recordHash}`, 'usage')
  }
  const digest = fromHex(digestHex, 32)
  const position = await db.dataset.get(concatBytes(digest, hash))
  if (position === undefined) throw notFound(`record ${recordHash} is in no final version of datanet ${datanet}`)
  const versions = await db.versionsOf(datanet)
  const version = height === undefined ? versions[versions.length - 1] : versions.find(v => v.height === height)
  if (version === undefined) throw notFound(`datanet ${datanet} has no version ${height ?? ''}`.trim())
  if (position >= version.recordCount) throw notFound(`record ${recordHash} was included after version ${version.height}`)
  // The leaves of the version's tree, in order (O(n): fine for proofs on demand at this scale).
  const leaves: Uint8Array[] = []
  for await (const [, leaf] of db.leaves.entries({ gte: concatBytes(digest, heightKey(0)), lt: concatBytes(digest, heightKey(version.recordCount)) })) leaves.push(leaf)
  const proof = merkleProof(leaves, position)
  if (!verifyProof(proof, fromHex(version.datasetRoot, 32), hash)) throw new Error('proof does not verify against the stored root')
  return { recordHash: toHex(hash), version: version.height, versionCid: version.cid, datasetRoot: version.datasetRoot, position, recordCount: version.recordCount, proof: proof.map(toHex) }
}

export function versionRoutes ({ db, datanets }: VersionRoutesDeps): ApiRoutes {
  return {
    register (app: FastifyInstance) {
      app.get('/v1/datanets/:id/versions', async (request) => {
        const { id } = request.params as { id: string }
        datanets.require(id)
        return (await db.versionsOf(id, { reverse: true })).map(versionJson)
      })
      app.get('/v1/datanets/:id/versions/:height', async (request) => {
        const { id, height } = request.params as { id: string, height: string }
        datanets.require(id)
        if (!/^\d+$/.test(height)) throw new DatanetError({ code: 'API_ERROR_BAD_REQUEST' }, `height: expected a positive integer, got "${height}"`, 'usage')
        const v = await db.versions.get(heightKeyOf(id, Number(height)))
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
