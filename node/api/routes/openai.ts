import { Readable } from 'node:stream'
import { DatanetError, describeError, httpStatusOf, isDatanetError } from '../../../src/errors.ts'
import { NGRAM_MODEL_KIND } from '../../../src/inference/model-record.ts'
import { parseRequest } from '../errors.ts'
import {
  chatCompletion, chatCompletionBody, chatCompletionFrames, completionBody, maxWordsOf, modelList, openAiError, promptOfCompletion, promptOfMessages,
  textCompletion, textCompletionFrames, usageOf, type Answer
} from '../openai-wire.ts'
import { attributionLib } from '../../services/attribution.ts'
import { DEFAULT_INFERENCE_FEE, DEFAULT_MAX_WORDS } from './attribution.ts'
import type { DatanetService, FollowedDatanet } from '../../services/datanets.ts'
import type { InferenceService } from '../../services/inferences.ts'
import type { ModelService } from '../../services/models.ts'
import type { ModelEntry } from '../../../src/storage/state-db.ts'
import type { ApiRoutes } from '../server.ts'
import type { FastifyInstance, FastifyReply } from 'fastify'

export interface OpenAiRoutesDeps {
  datanets: DatanetService
  inferences: InferenceService
  models: ModelService
}

export const OpenAiErrorCode = {
  /** OpenAI's own code for an unknown model, which clients know. */
  MODEL_NOT_FOUND: 'model_not_found'
} as const

/**
 * The node's datanet models behind OpenAI's API (issue 15): a completion is an inference
 * exactly as POST /v1/datanets/:id/inferences makes one (fee escrowed, event signed and
 * gossiped), with this node's attribution in an extra `attribution` field. Writes: the
 * token check of every POST applies (the bearer token is what OpenAI clients send as apiKey).
 */
export function openAiRoutes ({ datanets, inferences, models }: OpenAiRoutesDeps): ApiRoutes {
  /** `model` is a model id (looked up among the followed datanets' models) or `datanet/model`. */
  async function resolve (name: string): Promise<{ d: FollowedDatanet, entry: ModelEntry }> {
    const slash = name.indexOf('/')
    const id = slash < 0 ? name : name.slice(slash + 1)
    const scoped = slash < 0 ? undefined : datanets.get(name.slice(0, slash))
    for (const d of slash < 0 ? datanets.list() : scoped === undefined ? [] : [scoped]) {
      const entry = (await models.list(d)).find(m => m.id === id && m.kind === NGRAM_MODEL_KIND)
      if (entry !== undefined) return { d, entry }
    }
    throw new DatanetError({ code: OpenAiErrorCode.MODEL_NOT_FOUND }, `The model '${name}' does not exist on this node (GET /v1/models lists them)`, 'not_found')
  }

  async function answer (reply: FastifyReply, body: { model: string, stream?: boolean, fee?: string }, prompt: string, maxWords: number, chat: boolean): Promise<FastifyReply> {
    const { d, entry } = await resolve(body.model)
    const result = await inferences.infer(d, { model: entry.id, prompt, fee: body.fee === undefined ? DEFAULT_INFERENCE_FEE : BigInt(body.fee), maxWords })
    const { tokenize } = await attributionLib()
    const a: Answer = { datanet: d.id, model: body.model, prompt, maxWords, created: Math.floor(Date.now() / 1000), result, usage: usageOf(prompt, result.output, tokenize) }
    if (body.stream !== true) return await reply.send(chat ? chatCompletion(a) : textCompletion(a))
    // the whole output exists before the first byte: an error is still a JSON error, and
    // the stream only paces the words out as a streaming client expects
    return await reply
      .header('content-type', 'text/event-stream; charset=utf-8')
      .header('cache-control', 'no-cache')
      .send(Readable.from(chat ? chatCompletionFrames(a) : textCompletionFrames(a)))
  }

  return {
    register (app: FastifyInstance) {
      void app.register(async scope => {
        // OpenAI clients read `{ error: { message, type, code } }`
        scope.setErrorHandler((err, request, reply) => {
          const status = isDatanetError(err)
            ? httpStatusOf(err)
            : (typeof (err as { statusCode?: number }).statusCode === 'number' ? (err as { statusCode: number }).statusCode : 500)
          const code = isDatanetError(err) ? err.code : status < 500 ? 'API_ERROR_BAD_REQUEST' : 'API_ERROR_INTERNAL'
          if (status >= 500) request.log.error({ err, url: request.url }, 'request failed')
          void reply.code(status).send(openAiError(status, describeError(err), code))
        })

        scope.get('/v1/models', async () => {
          const all = await Promise.all(datanets.list().map(async d => await models.list(d)))
          return modelList(all.flat().filter(m => m.kind === NGRAM_MODEL_KIND))
        })

        scope.post('/v1/chat/completions', async (request, reply) => {
          const body = parseRequest(chatCompletionBody, request.body, 'body')
          const prompt = promptOfMessages(body.messages)
          return await answer(reply, body, prompt, maxWordsOf(body.max_completion_tokens ?? body.max_tokens, DEFAULT_MAX_WORDS), true)
        })

        scope.post('/v1/completions', async (request, reply) => {
          const body = parseRequest(completionBody, request.body, 'body')
          return await answer(reply, body, promptOfCompletion(body), maxWordsOf(body.max_tokens, DEFAULT_MAX_WORDS), false)
        })
      })
    }
  }
}
