import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  DONE_FRAME, chatCompletion, chatCompletionBody, chatCompletionFrames, completionBody, finishReason, maxWordsOf, openAiError, pieces, promptOfMessages,
  textCompletionFrames, usageOf, type Answer
} from '../../node/api/openai-wire.ts'
import { tokenize } from '../../src/attribution/tokenizer.ts'
import type { AttributionResult } from '../../src/attribution/index.ts'

const attribution = { eventId: '0x' + '11'.repeat(32), fee: '100', spans: [], contributors: [], resultHash: '0x' + '22'.repeat(32) } as unknown as AttributionResult
const answer = (output: string, maxWords = 40): Answer => ({
  datanet: 'bafyd', model: 'bafym', prompt: 'the prompt', maxWords, created: 1_700_000_000,
  result: { cid: 'bafye', eventId: attribution.eventId, model: 'bafym', version: 3, output, fee: '100', escrow: { txHash: '0xabc', block: 7 }, attribution, shares: [{ address: '0x01', amount: '5' }] },
  usage: usageOf('the prompt', output, tokenize)
})

test('max_tokens → maxWords: 3/4 of the tokens, at least 1, at most 1000; none → the default', () => {
  assert.is(maxWordsOf(undefined, 40), 40)
  assert.is(maxWordsOf(null, 40), 40)
  assert.is(maxWordsOf(1, 40), 1)
  assert.is(maxWordsOf(24, 40), 18)
  assert.is(maxWordsOf(1_000_000, 40), 1000)
})

test('a chat\'s prompt: the messages\' text parts, a line each', () => {
  assert.is(promptOfMessages([{ role: 'system', content: 'Be brief.' }, { role: 'user', content: [{ type: 'text', text: 'Hello' }, { type: 'image_url' }, { type: 'text', text: ' there' }] }, { role: 'assistant', content: null }]), 'Be brief.\nHello there')
})

test('request bodies: OpenAI\'s extra fields pass, what changes the answer\'s shape does not', () => {
  assert.ok(chatCompletionBody.safeParse({ model: 'm', messages: [{ role: 'user', content: 'x' }], temperature: 0.2, top_p: 1, stream_options: { include_usage: true }, fee: '10' }).success)
  assert.not.ok(chatCompletionBody.safeParse({ model: 'm', messages: [] }).success)
  assert.not.ok(chatCompletionBody.safeParse({ model: 'm', messages: [{ role: 'user', content: 'x' }], n: 2 }).success)
  assert.not.ok(chatCompletionBody.safeParse({ model: 'm', messages: [{ role: 'user', content: 'x' }], fee: '1.5' }).success)
  assert.not.ok(chatCompletionBody.safeParse({ model: 'm', messages: [{ role: 'user', content: 'x' }], tools: [] }).success)
  assert.ok(completionBody.safeParse({ model: 'm', prompt: ['one'] }).success)
  assert.not.ok(completionBody.safeParse({ model: 'm', prompt: ['one', 'two'] }).success)
})

test('the completion object carries the output, usage and the attribution with its event', () => {
  const c = chatCompletion(answer('light the great lamp')) as { id: string, choices: Array<{ message: { content: string }, finish_reason: string }>, usage: { completion_tokens: number, total_tokens: number, prompt_tokens: number }, attribution: { cid: string, datanet: string, escrow: unknown, shares: unknown } }
  assert.is(c.id, 'chatcmpl-bafye')
  assert.is(c.choices[0]?.message.content, 'light the great lamp')
  assert.is(c.choices[0]?.finish_reason, 'stop')
  assert.is(c.usage.completion_tokens, 4)
  assert.is(c.usage.total_tokens, c.usage.prompt_tokens + 4)
  assert.is(c.attribution.cid, 'bafye')
  assert.is(c.attribution.datanet, 'bafyd')
  assert.equal(c.attribution.shares, [{ address: '0x01', amount: '5' }])
  assert.is(finishReason('a b c', 3), 'length')
})

test('stream frames: pieces concatenate to the output, the last chunk has the attribution, then [DONE]', () => {
  const output = ' light  the\ngreat lamp.'
  assert.is(pieces(output).join(''), output)
  for (const frames of [chatCompletionFrames(answer(output)), textCompletionFrames(answer(output))]) {
    assert.is(frames.at(-1), DONE_FRAME)
    const chunks = frames.slice(0, -1).map(f => { assert.ok(f.startsWith('data: ') && f.endsWith('\n\n')); return JSON.parse(f.slice(6)) as { choices: Array<{ delta?: { content?: string }, text?: string, finish_reason: string | null }>, attribution?: unknown } })
    assert.is(chunks.map(c => c.choices[0]?.delta?.content ?? c.choices[0]?.text ?? '').join(''), output)
    assert.ok(chunks.at(-1)?.attribution !== undefined)
    assert.ok(chunks.slice(0, -1).every(c => c.attribution === undefined && c.choices[0]?.finish_reason === null))
  }
})

test('errors in OpenAI\'s shape', () => {
  assert.equal(openAiError(404, 'no such model', 'model_not_found'), { error: { message: 'no such model', type: 'invalid_request_error', code: 'model_not_found', param: null } })
  assert.is(openAiError(401, 'x', 'y').error.type, 'authentication_error')
  assert.is(openAiError(500, 'x', 'y').error.type, 'server_error')
})

test.run()
