import { z } from 'zod'
import { DatanetError } from '../../src/errors.ts'

export const EndpointErrorCode = {
  UNREACHABLE: 'CLI_ERROR_ENDPOINT_UNREACHABLE',
  FAILED: 'CLI_ERROR_ENDPOINT_FAILED',
  MALFORMED: 'CLI_ERROR_ENDPOINT_MALFORMED'
} as const

const reply = z.object({
  choices: z.array(z.object({ message: z.object({ content: z.string().nullable() }) })).min(1)
})

/** A chat completion's text from any OpenAI-compatible server (its base URL, …/v1), by plain fetch. */
export async function chatCompletionText (req: { endpoint: string, model: string, prompt: string, apiKey?: string, maxTokens?: number, timeoutMs?: number }): Promise<string> {
  const url = `${req.endpoint.replace(/\/+$/, '')}/chat/completions`
  const headers: Record<string, string> = { 'content-type': 'application/json' }
  if (req.apiKey !== undefined) headers.authorization = `Bearer ${req.apiKey}`
  const body: Record<string, unknown> = { model: req.model, messages: [{ role: 'user', content: req.prompt }], stream: false }
  if (req.maxTokens !== undefined) body.max_tokens = req.maxTokens
  let res: Response
  try {
    res = await fetch(url, { method: 'POST', headers, body: JSON.stringify(body), signal: AbortSignal.timeout(req.timeoutMs ?? 120_000) })
  } catch (err) {
    throw new DatanetError({ code: EndpointErrorCode.UNREACHABLE }, `cannot reach the OpenAI-compatible server at ${url}: ${(err as Error).message}`, 'failure', { cause: err })
  }
  const text = await res.text()
  if (!res.ok) {
    let message = text.slice(0, 500)
    try { message = (JSON.parse(text) as { error?: { message?: string } }).error?.message ?? message } catch {}
    throw new DatanetError({ code: EndpointErrorCode.FAILED }, `${url}: HTTP ${res.status}: ${message}`, res.status === 401 ? 'unauthorized' : 'failure')
  }
  let parsed: z.infer<typeof reply>
  try {
    parsed = reply.parse(JSON.parse(text))
  } catch (err) {
    throw new DatanetError({ code: EndpointErrorCode.MALFORMED }, `${url}: not a chat completion: ${(err as Error).message.slice(0, 300)}`, 'failure')
  }
  const content = parsed.choices[0]?.message.content ?? ''
  if (content.length === 0) throw new DatanetError({ code: EndpointErrorCode.MALFORMED }, `${url}: the completion has no text`, 'failure')
  return content
}
