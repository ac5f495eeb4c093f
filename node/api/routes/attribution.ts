import { isAddress } from 'ethers'
import { z } from 'zod'
import { badRequest, noChain, parseRequest } from '../errors.ts'
import { DatanetError } from '../../../src/errors.ts'
import type { AttributionService } from '../../services/attribution.ts'
import type { ChainService } from '../../services/chain.ts'
import type { DatanetService } from '../../services/datanets.ts'
import type { TallyService } from '../../services/tallies.ts'
import type { InferenceService } from '../../services/inferences.ts'
import type { ModelService } from '../../services/models.ts'
import type { ApiRoutes } from '../server.ts'
import type { FastifyInstance } from 'fastify'

export interface AttributionRoutesDeps {
  datanets: DatanetService
  tallies: TallyService
  attribution: AttributionService
  inferences: InferenceService
  models: ModelService
  chain: ChainService | undefined
}

const wei = z.string().regex(/^(0|[1-9][0-9]{0,76})$/, 'expected wei as a decimal string')
const ONE_ETH = 10n ** 18n

const previewBody = z.strictObject({
  text: z.string().min(1).max(64 * 1024),
  prompt: z.string().max(64 * 1024).optional(),
  version: z.number().int().min(1).optional(),
  fee: wei.optional()
})
const modelBody = z.union([
  z.strictObject({ version: z.number().int().min(1), train: z.literal(true) }),
  z.strictObject({ version: z.number().int().min(1), kind: z.string().regex(/^[a-z0-9-]{1,32}$/), artifact: z.string().min(1) })
])
const inferBody = z.union([
  z.strictObject({ model: z.string().min(1), prompt: z.string().max(64 * 1024), fee: wei.optional(), maxWords: z.number().int().min(1).max(1000).optional() }),
  z.strictObject({ event: z.record(z.string(), z.unknown()) }),
  // an output an OpenAI-compatible server generated (`datanet infer --endpoint`): this node signs and escrows its event
  z.strictObject({
    external: z.strictObject({
      // the endpoint is published in the model record: never a URL with credentials in it
      endpoint: z.url({ protocol: /^https?$/ }).max(2048).refine(u => { const url = new URL(u); return url.username === '' && url.password === '' }, 'the endpoint is published: no user or password in it'),
      model: z.string().min(1).max(256)
    }),
    prompt: z.string().max(64 * 1024),
    output: z.string().min(1).max(64 * 1024),
    fee: wei.optional()
  })
])
/** What an inference pays when the request names no fee: 0.01 ETH. */
export const DEFAULT_INFERENCE_FEE = ONE_ETH / 100n
/** How long a preview waits for the index of a version just final (a large one takes minutes), then 503. */
const PREVIEW_WAIT_MS = 10_000
/** How many words an inference generates when the request does not say. */
export const DEFAULT_MAX_WORDS = 40


/** Attribution preview, models, inference events, tallies and claims (DESIGN §6). */
export function attributionRoutes ({ datanets, tallies, attribution, inferences, models, chain }: AttributionRoutesDeps): ApiRoutes {
  return {
    register (app: FastifyInstance) {
      app.post('/v1/datanets/:id/attribution', async (request) => {
        const { id } = request.params as { id: string }
        const d = datanets.require(id)
        const body = parseRequest(previewBody, request.body, 'body')
        const version = body.version ?? attribution.finalHeight(d)
        if (version < 1) throw new DatanetError({ code: 'ATTRIBUTION_ERROR_NO_VERSION' }, `datanet ${id} has no final version yet`, 'conflict')
        if (version <= attribution.finalHeight(d) && !await attribution.indexedWithin(d, version, PREVIEW_WAIT_MS)) {
          const failure = attribution.indexFailure(d, version)
          if (failure !== undefined) throw new DatanetError({ code: 'ATTRIBUTION_ERROR_INDEX_FAILED' }, `version ${version} of datanet ${id} is final, but this node could not build its attribution index (version ${failure.height}: ${failure.message}); it is tried again shortly and at each final version (see the node's log)`, 'unavailable')
          throw new DatanetError({ code: 'ATTRIBUTION_ERROR_INDEXING' }, `version ${version} of datanet ${id} is final; its attribution index is still being built: try again shortly`, 'unavailable')
        }
        const result = await attribution.attribute(d, version, body.text, body.prompt ?? null, body.fee === undefined ? ONE_ETH : BigInt(body.fee))
        if (result === undefined) throw new DatanetError({ code: 'ATTRIBUTION_ERROR_NO_VERSION' }, `datanet ${id} has no final version ${version} here`, 'not_found')
        return { version, ...result }
      })

      app.get('/v1/datanets/:id/models', async (request) => {
        const { id } = request.params as { id: string }
        return await models.list(datanets.require(id))
      })
      app.post('/v1/datanets/:id/models', async (request, reply) => {
        const { id } = request.params as { id: string }
        const d = datanets.require(id)
        const body = parseRequest(modelBody, request.body, 'body')
        const entry = 'train' in body ? await models.train(d, body.version) : await models.register(d, body)
        return await reply.code(201).send(entry)
      })

      app.post('/v1/datanets/:id/inferences', async (request, reply) => {
        const { id } = request.params as { id: string }
        const d = datanets.require(id)
        const body = parseRequest(inferBody, request.body, 'body')
        if ('event' in body) return await reply.code(201).send(await inferences.post(d, body.event))
        const fee = body.fee === undefined ? DEFAULT_INFERENCE_FEE : BigInt(body.fee)
        if ('external' in body) {
          return await reply.code(201).send(await inferences.inferExternal(d, { endpoint: body.external.endpoint, name: body.external.model, prompt: body.prompt, output: body.output, fee }))
        }
        const result = await inferences.infer(d, { model: body.model, prompt: body.prompt, fee, maxWords: body.maxWords ?? DEFAULT_MAX_WORDS })
        return await reply.code(201).send(result)
      })
      app.get('/v1/datanets/:id/inferences', async (request) => {
        const { id } = request.params as { id: string }
        return await inferences.list(datanets.require(id))
      })
      app.get('/v1/datanets/:id/inferences/:cid', async (request) => {
        const { id, cid } = request.params as { id: string, cid: string }
        return await inferences.view(datanets.require(id), cid)
      })

      app.get('/v1/datanets/:id/tallies', async (request) => {
        const { id } = request.params as { id: string }
        return await tallies.list(datanets.require(id))
      })
      app.get('/v1/datanets/:id/tallies/:address', async (request) => {
        const { id, address: text } = request.params as { id: string, address: string }
        if (!isAddress(text)) throw badRequest(`not an address: ${text}`)
        return await tallies.tallyOf(datanets.require(id), text)
      })

      app.post('/v1/datanets/:id/claim', async (request) => {
        const { id } = request.params as { id: string }
        const d = datanets.require(id)
        if (chain === undefined) throw noChain()
        return await tallies.claim(d, chain)
      })
    }
  }
}
