/**
 * The OpenAI wire format of the node's inference (POST /v1/chat/completions,
 * /v1/completions, GET /v1/models): request schemas and the mapping of an inference
 * result to completion objects and stream chunks. No I/O: values in, values out.
 */
import { z } from 'zod'
import type { AttributionResult } from '../../src/attribution/index.ts'
import type { ModelEntry } from '../../src/storage/state-db.ts'
import type { InferenceResult } from '../services/inferences.ts'

const wei = z.string().regex(/^(0|[1-9][0-9]{0,76})$/, 'expected wei as a decimal string')
const MAX_TEXT = 64 * 1024
/** The inference route's own bound on maxWords. */
export const MAX_WORDS = 1000

const contentPart = z.object({ type: z.string(), text: z.string().optional() })
const message = z.object({
  role: z.enum(['system', 'developer', 'user', 'assistant', 'tool', 'function']),
  content: z.union([z.string(), z.array(contentPart), z.null()]).optional()
})

/**
 * Fields OpenAI clients send that have no meaning here (temperature, top_p, …) are
 * accepted and ignored, as OpenAI-compatible servers do; the ones that would change the
 * answer's shape (n > 1, tools) are refused rather than silently ignored.
 */
const common = {
  model: z.string().min(1).max(512),
  stream: z.boolean().optional(),
  max_tokens: z.number().int().min(1).nullable().optional(),
  n: z.literal(1).nullable().optional(),
  /** Extra field: the fee in wei (default: the inference route's). */
  fee: wei.optional()
}

export const chatCompletionBody = z.object({
  ...common,
  messages: z.array(message).min(1).max(1024),
  max_completion_tokens: z.number().int().min(1).nullable().optional(),
  tools: z.undefined({ error: 'tools are not supported' }).optional()
})
export type ChatCompletionBody = z.infer<typeof chatCompletionBody>

export const completionBody = z.object({
  ...common,
  prompt: z.union([z.string().max(MAX_TEXT), z.tuple([z.string().max(MAX_TEXT)])])
})
export type CompletionBody = z.infer<typeof completionBody>

/** The chat's text as one prompt: each message's text parts, one message a line (roles dropped: the model is a text continuer). */
export function promptOfMessages (messages: ChatCompletionBody['messages']): string {
  return messages.map(m => typeof m.content === 'string'
    ? m.content
    : (m.content ?? []).filter(p => p.type === 'text').map(p => p.text ?? '').join('')).filter(t => t.length > 0).join('\n')
}

export function promptOfCompletion (body: CompletionBody): string {
  return typeof body.prompt === 'string' ? body.prompt : body.prompt[0]
}

/**
 * `max_tokens` → maxWords. The reference model emits whole words and a cl100k token is
 * about 3/4 of an English word, so max_tokens tokens hold about 3/4 · max_tokens words:
 * floor(3 · max_tokens / 4), at least 1, at most the route's MAX_WORDS; none given → `fallback`.
 * (A bound on the generation, not an exact token cap: `usage` reports the real count.)
 */
export function maxWordsOf (maxTokens: number | null | undefined, fallback: number): number {
  if (maxTokens === undefined || maxTokens === null) return fallback
  return Math.min(MAX_WORDS, Math.max(1, Math.floor(3 * maxTokens / 4)))
}

/** What the node's inference returns (InferenceService.infer). */
type InferenceAnswer = InferenceResult

/** The extra `attribution` field of a completion: this node's attribution, its event and escrow. */
export type WireAttribution = AttributionResult & {
  /** The inference event's CID (GET /v1/datanets/:datanet/inferences/:cid). */
  cid: string
  datanet: string
  model: string
  version: number
  escrow: { txHash: string, block: number }
  shares: Array<{ address: string, amount: string }>
}

export interface Usage { prompt_tokens: number, completion_tokens: number, total_tokens: number }

/** Token counts in cl100k_base, the attribution's own tokenizer (passed in: it loads lazily, services/attribution.ts). */
export function usageOf (prompt: string, output: string, tokenize: (text: string) => ArrayLike<number>): Usage {
  const p = prompt.length === 0 ? 0 : tokenize(prompt).length
  const c = output.length === 0 ? 0 : tokenize(output).length
  return { prompt_tokens: p, completion_tokens: c, total_tokens: p + c }
}

export function wireAttribution (datanet: string, r: InferenceAnswer): WireAttribution {
  return { ...r.attribution, cid: r.cid, datanet, model: r.model, version: r.version, escrow: r.escrow, shares: r.shares }
}

/** 'length' when the output used its whole word budget, else 'stop'. */
export function finishReason (output: string, maxWords: number): 'stop' | 'length' {
  return output.split(/\s+/).filter(w => w.length > 0).length >= maxWords ? 'length' : 'stop'
}

export interface Answer {
  datanet: string
  /** The model as the request named it (echoed back, as OpenAI does). */
  model: string
  prompt: string
  maxWords: number
  /** Seconds since the epoch. */
  created: number
  result: InferenceAnswer
  usage: Usage
}

/** The completion's id: the event's, so a client can find the event from it. */
const idOf = (prefix: string, a: Answer): string => `${prefix}-${a.result.cid}`

export function chatCompletion (a: Answer): Record<string, unknown> {
  return {
    id: idOf('chatcmpl', a),
    object: 'chat.completion',
    created: a.created,
    model: a.model,
    choices: [{ index: 0, message: { role: 'assistant', content: a.result.output, refusal: null }, logprobs: null, finish_reason: finishReason(a.result.output, a.maxWords) }],
    usage: a.usage,
    attribution: wireAttribution(a.datanet, a.result)
  }
}

export function textCompletion (a: Answer): Record<string, unknown> {
  return {
    id: idOf('cmpl', a),
    object: 'text_completion',
    created: a.created,
    model: a.model,
    choices: [{ index: 0, text: a.result.output, logprobs: null, finish_reason: finishReason(a.result.output, a.maxWords) }],
    usage: a.usage,
    attribution: wireAttribution(a.datanet, a.result)
  }
}

/** The output in word-sized pieces (each keeps the whitespace before it): they concatenate to the output. */
export function pieces (output: string): string[] {
  return output.match(/\s*\S+/g) ?? []
}

const frame = (data: unknown): string => `data: ${JSON.stringify(data)}\n\n`
export const DONE_FRAME = 'data: [DONE]\n\n'

/**
 * A chat completion as server-sent events: a role chunk, one chunk per word, a last chunk
 * with the finish reason, `usage` and `attribution`, then `data: [DONE]`.
 */
export function chatCompletionFrames (a: Answer): string[] {
  const base = { id: idOf('chatcmpl', a), object: 'chat.completion.chunk', created: a.created, model: a.model }
  const chunk = (delta: Record<string, unknown>, finish: string | null): Record<string, unknown> => ({ ...base, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] })
  return [
    frame(chunk({ role: 'assistant', content: '' }, null)),
    ...pieces(a.result.output).map(p => frame(chunk({ content: p }, null))),
    frame({ ...chunk({}, finishReason(a.result.output, a.maxWords)), usage: a.usage, attribution: wireAttribution(a.datanet, a.result) }),
    DONE_FRAME
  ]
}

export function textCompletionFrames (a: Answer): string[] {
  const base = { id: idOf('cmpl', a), object: 'text_completion', created: a.created, model: a.model }
  const chunk = (text: string, finish: string | null): Record<string, unknown> => ({ ...base, choices: [{ index: 0, text, logprobs: null, finish_reason: finish }] })
  return [
    ...pieces(a.result.output).map(p => frame(chunk(p, null))),
    frame({ ...chunk('', finishReason(a.result.output, a.maxWords)), usage: a.usage, attribution: wireAttribution(a.datanet, a.result) }),
    DONE_FRAME
  ]
}

/** GET /v1/models: the datanet models this node can run, as `datanet/model` ids resolve too. */
export function modelList (models: readonly ModelEntry[]): Record<string, unknown> {
  return {
    object: 'list',
    data: models.map(m => ({ id: m.id, object: 'model', created: Math.floor(m.createdAt / 1000), owned_by: m.operator, datanet: m.datanet, version: m.version, kind: m.kind }))
  }
}

export type OpenAiErrorType = 'invalid_request_error' | 'authentication_error' | 'server_error'

/** OpenAI's error body: `{ error: { message, type, code, param } }` (its types: an unknown model is an invalid request too). */
export function openAiError (status: number, message: string, code: string): { error: { message: string, type: OpenAiErrorType, code: string, param: null } } {
  const type: OpenAiErrorType = status === 401 ? 'authentication_error' : status < 500 ? 'invalid_request_error' : 'server_error'
  return { error: { message, type, code, param: null } }
}
