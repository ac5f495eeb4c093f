import { z } from 'zod'
import { UPLOAD_FORMATS, type UploadFormat } from '../../../src/contribution/parse.ts'
import { badRequest, parseRequest } from '../errors.ts'
import { describeError, httpStatusOf, isDatanetError } from '../../../src/errors.ts'
import { topics } from '../../../src/network/topics.ts'
import { isChecksummedAddress } from '../../../src/codec/address.ts'
import type { ContributionService } from '../../services/contributions.ts'
import type { DatanetService, FollowedDatanet } from '../../services/datanets.ts'
import type { ValidatorSets } from '../../services/validator-sets.ts'
import type { ApiRoutes } from '../server.ts'
import type { FastifyInstance } from 'fastify'
import type { IncomingMessage } from 'node:http'

export interface DatanetRoutesDeps {
  datanets: DatanetService
  contributions: ContributionService
  /** Peers subscribed to a gossip topic, as this node knows them. */
  subscribers: (topic: string) => string[]
  /** The consensus in progress for a datanet. */
  consensus: (datanet: string) => unknown
  /** The set deciding each datanet's next version. */
  sets: ValidatorSets
  /** Its registration on chain (undefined: no chain configured). */
  registration?: (d: FollowedDatanet) => { status: 'none' | 'matches' | 'mismatch', problem: string | null }
}

/** The JSON a datanet is shown as; `validators` is the set deciding its next version (the genesis set until the chain fixes it). */
export function datanetJson (d: FollowedDatanet, sets: ValidatorSets): Record<string, unknown> {
  return {
    id: d.id,
    digest: d.digest,
    name: d.manifest.name,
    license: d.manifest.license,
    validators: sets.shown(d).validators.map(v => ({ address: v.address, stake: v.stake.toString() })),
    manifest: d.manifest
  }
}

const contributeQuery = z.strictObject({
  format: z.enum(UPLOAD_FORMATS as [UploadFormat, ...UploadFormat[]]).optional(),
  contributor: z.string().refine(isChecksummedAddress, 'expected an EIP-55 checksummed address').optional(),
  skipInvalid: z.enum(['true', 'false']).optional(),
  filename: z.string().max(500).optional()
})

const FORMAT_OF_TYPE: Record<string, UploadFormat> = {
  'application/x-ndjson': 'jsonl',
  'application/jsonl': 'jsonl',
  'application/jsonlines': 'jsonl',
  'text/csv': 'csv',
  'text/plain': 'text'
}

/** Datanets and their contributions (DESIGN §6). */
export function datanetRoutes ({ datanets, contributions, subscribers, consensus, sets, registration }: DatanetRoutesDeps): ApiRoutes {
  return {
    register (app: FastifyInstance) {
      app.get('/v1/datanets', async () => datanets.list().map(d => datanetJson(d, sets)))
      app.post('/v1/datanets', async (request, reply) => {
        if (typeof request.body !== 'object' || request.body === null) throw badRequest('body: expected a manifest as a JSON object')
        const { datanet, created } = await datanets.create(request.body, 'api')
        return await reply.code(created ? 201 : 200).send(datanetJson(datanet, sets))
      })
      app.get('/v1/datanets/:id', async (request) => {
        const { id } = request.params as { id: string }
        const d = datanets.require(id)
        const r = registration?.(d)
        return {
          ...datanetJson(d, sets),
          subscribers: { contributions: subscribers(topics.contributions(id)), verdicts: subscribers(topics.verdicts(id)) },
          consensus: consensus(id) ?? null,
          chain: r === undefined ? null : { registration: r.status, problem: r.problem }
        }
      })
      app.get('/v1/datanets/:id/contributions', async (request) => {
        const { id } = request.params as { id: string }
        return await contributions.list(id)
      })
      app.get('/v1/datanets/:id/contributions/:cid', async (request) => {
        const { id, cid } = request.params as { id: string, cid: string }
        return await contributions.view(cid, id)
      })
      app.post('/v1/datanets/:id/contributions/drafts/:draft', async (request, reply) => {
        const { id, draft } = request.params as { id: string, draft: string }
        const body = request.body as { signature?: unknown } | undefined
        if (typeof body?.signature !== 'string') throw badRequest('body: expected {"signature": "0x…"}')
        return await reply.code(201).send(await contributions.completeDraft(id, draft, body.signature))
      })
      app.get('/v1/contributions/:cid', async (request) => {
        const { cid } = request.params as { cid: string }
        return await contributions.view(cid)
      })

      // Uploads are streamed: the body is never buffered, whatever its size.
      void app.register(async (scope) => {
        scope.removeAllContentTypeParsers()
        scope.addContentTypeParser('*', (_request, payload, done) => { done(null, payload) })
        scope.post('/v1/datanets/:id/contributions', async (request, reply) => {
          const { id } = request.params as { id: string }
          const query = parseRequest(contributeQuery, request.query, 'query')
          const type = (request.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? ''
          const format = query.format ?? FORMAT_OF_TYPE[type]
          if (format === undefined) throw badRequest(`cannot tell the upload's format: pass ?format=${UPLOAD_FORMATS.join('|')} or a content type (application/x-ndjson, text/csv, text/plain)`)
          const body = request.body as IncomingMessage | undefined
          if (body === undefined || body === null) throw badRequest('body: expected the records to contribute')
          try {
            const result = await contributions.contribute(id, body, { format, skipInvalid: query.skipInvalid === 'true', contributor: query.contributor })
            return await reply.code('draft' in result ? 202 : 201).send(result)
          } catch (err) {
            // Refusals carry the details the CLI needs: which lines, how many duplicates.
            if (isDatanetError(err) && err.kind === 'usage') {
              body.resume()
              const details = (err.cause ?? {}) as Record<string, unknown>
              return await reply.code(httpStatusOf(err) === 400 ? 422 : httpStatusOf(err)).send({ error: { code: err.code, message: describeError(err), ...details } })
            }
            throw err
          }
        })
      })
    }
  }
}
