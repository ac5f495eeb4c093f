/**
 * The OpenAI-compatible inference (issue 15, item 5) end to end with a real anvil, through
 * the official `openai` client: each completion is an inference like `datanet infer`
 * (fee escrowed on chain, event signed, gossiped, attributed) with the attribution in an
 * extra field; streaming; /v1/completions; OpenAI-shaped errors that escrow nothing; and
 * `datanet infer --endpoint` with this node's own /v1 as the external server: the event of
 * an external model is verified by the validators (re-attributed) and enters a version.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import OpenAI from 'openai'
import { Contract, JsonRpcProvider, parseEther } from 'ethers'
import { registryArtifact } from '../../src/chain/registry-client.ts'
import { datanetDigest, encodeManifest, parseManifest } from '../../src/datanet/manifest.ts'
import { dataDirPaths } from '../../src/storage/data-dir.ts'
import { deployRegistry, fundAccounts, localSigner, registerDatanet } from '../../node/devnet/chain-setup.ts'
import { startAnvil, type Anvil } from '../../node/devnet/anvil.ts'
import { TestCluster, type TestNode } from '../helpers/cluster.ts'
import { runCli } from '../helpers/cli.ts'
import { hook, waitFor } from '../helpers/wait.ts'
import type { WireAttribution } from '../../node/api/openai-wire.ts'

const cluster = new TestCluster()
let anvil: Anvil | undefined
let provider: JsonRpcProvider | undefined
let registry = ''
let datanetId = ''
let validators: TestNode[] = []
let operator: TestNode
let modelId = ''

const RECORDS = [
  'The lighthouse keeper climbed the spiral stairs every evening to light the great lamp before the fishing boats returned.',
  'Honeybees communicate the distance and direction of flowers to their sisters through a waggle dance performed inside the hive.',
  'During the long winter the villagers gathered in the old mill to repair their nets and tell stories about the northern lights.',
  'Tidal pools along the rocky coast shelter anemones, hermit crabs and small fish that wait for the ocean to return at high tide.'
]
const FEE = parseEther('0.02').toString()

interface Json { [k: string]: unknown }
interface EventView { shares: Array<{ address: string, amount: string }>, resultHash: string, fee: string, eventId: string, model: string, included: number | null, event: { output: string, prompt: string, fee: string } }

async function api<T = Json> (node: TestNode, path: string, init: { method?: string, body?: unknown, token?: string | null } = {}): Promise<{ status: number, body: T }> {
  const headers: Record<string, string> = {}
  if (init.method === 'POST') headers['content-type'] = 'application/json'
  const token = init.token === undefined ? (init.method === 'POST' ? cluster.token(node) : null) : init.token
  if (token !== null) headers.authorization = `Bearer ${token}`
  const res = await fetch(`${node.daemon.apiUrl}${path}`, {
    method: init.method ?? 'GET', headers, body: init.method === 'POST' ? JSON.stringify(init.body ?? {}) : undefined, signal: AbortSignal.timeout(60_000)
  })
  return { status: res.status, body: await res.json() as T }
}

const client = (node: TestNode, apiKey = cluster.token(node)): OpenAI => new OpenAI({ baseURL: `${node.daemon.apiUrl}/v1`, apiKey, maxRetries: 0, timeout: 60_000 })
const registryContract = (): Contract => new Contract(registry, registryArtifact().abi, provider)
const escrowed = async (eventId: string): Promise<bigint> => await registryContract().getFunction('inferencePaid').staticCall(datanetDigest(datanetId), operator.address, eventId) as bigint
/** Transactions the operator has sent: an inference escrows with one, nothing else here sends any. */
const operatorTxs = async (): Promise<number> => await (provider as JsonRpcProvider).getTransactionCount(operator.address)

/** The operator's event as the node stores it, checked against an answer's `attribution`. */
async function checkAgainstEvent (a: WireAttribution, output: string, prompt: string): Promise<EventView> {
  const { status, body } = await api<EventView>(operator, `/v1/datanets/${datanetId}/inferences/${a.cid}`)
  assert.is(status, 200, JSON.stringify(body))
  assert.is(body.event.output, output, 'the event holds the text the client got')
  assert.is(body.event.prompt, prompt)
  assert.is(body.eventId, a.eventId)
  assert.is(body.resultHash, a.resultHash, 'the attribution returned is the one stored with the event')
  assert.equal(body.shares, a.shares)
  assert.is(body.fee, FEE)
  assert.is(a.fee, FEE)
  assert.is(await escrowed(a.eventId), BigInt(FEE), 'the fee is escrowed on chain for the event')
  // the spans are the attribution preview's of the same text
  const preview = await api<{ spans: unknown, contributors: unknown }>(operator, `/v1/datanets/${datanetId}/attribution`, { method: 'POST', body: { text: output, prompt, fee: FEE, version: a.version } })
  assert.equal(a.spans, preview.body.spans)
  assert.equal(a.contributors, preview.body.contributors)
  return body
}

test.before(hook(async () => {
  anvil = await startAnvil()
  const local = localSigner(anvil.url, anvil.chainId)
  provider = local.provider
  registry = (await deployRegistry(local.signer)).address
  const nodes = await cluster.create(4, ['--chain-rpc', anvil.url, '--registry', registry], { fastKeystore: true })
  validators = nodes.slice(0, 3)
  operator = nodes[3] as TestNode
  const manifest = parseManifest({
    name: 'openai', license: 'CC0-1.0',
    recordSchema: { type: 'object', required: ['text'], properties: { text: { type: 'string' } } },
    consensus: { versionIntervalMs: 1000, proposeTimeoutMs: 1500, prevoteTimeoutMs: 800, precommitTimeoutMs: 800, timeoutDeltaMs: 300 },
    anchorInterval: 1,
    attribution: { minSpanTokens: 8 },
    validators: validators.map(v => ({ address: v.address, stake: parseEther('1').toString() }))
  })
  datanetId = (await encodeManifest(manifest)).id
  await registerDatanet(local.signer, registry, datanetId, manifest, { thresholdNumerator: 2, thresholdDenominator: 3, minStake: parseEther('1'), unbondingDelaySeconds: 60 })
  await fundAccounts(local.signer, nodes.map(n => n.address), parseEther('10'))
  await cluster.startAll(cluster.nodes, 90_000)
  for (const n of cluster.nodes) {
    const r = await api(n, '/v1/datanets', { method: 'POST', body: manifest })
    assert.ok(r.status === 201 || r.status === 200, JSON.stringify(r.body))
  }
  for (const n of cluster.nodes) {
    await waitFor(async () => ((await api<{ subscribers: { verdicts: string[] } }>(n, `/v1/datanets/${datanetId}`)).body.subscribers.verdicts.length >= 3), { timeoutMs: 30_000, what: `${n.name} to see the others subscribed` })
  }
}))

test.after(hook(async () => {
  await cluster.teardown()
  provider?.destroy()
  await anvil?.stop()
}))

test('contribute, finalize, train the reference model; GET /v1/models lists it', async () => {
  const body = RECORDS.map(text => JSON.stringify({ text })).join('\n') + '\n'
  const res = await fetch(`${(validators[0] as TestNode).daemon.apiUrl}/v1/datanets/${datanetId}/contributions?format=jsonl`, {
    method: 'POST', headers: { authorization: `Bearer ${cluster.token(validators[0] as TestNode)}`, 'content-type': 'application/x-ndjson' }, body
  })
  assert.is(res.status, 201, await res.text())
  const v = await waitFor(async () => (await api<Array<{ height: number, recordCount: number, anchor: unknown }>>(operator, `/v1/datanets/${datanetId}/versions`)).body
    .find(v => v.recordCount === RECORDS.length && v.anchor !== null), { timeoutMs: 90_000, what: 'a final, anchored version with the records' })
  const trained = await api<{ id: string }>(operator, `/v1/datanets/${datanetId}/models`, { method: 'POST', body: { version: v.height, train: true } })
  assert.is(trained.status, 201, JSON.stringify(trained.body))
  modelId = trained.body.id
  const listed = await client(operator).models.list()
  assert.ok(listed.data.some(m => m.id === modelId && m.object === 'model'), JSON.stringify(listed.data))
})

test('attack first: without the token, with a wrong one, for an unknown model or with a bad body: OpenAI-shaped errors, nothing escrowed', async () => {
  const before = await operatorTxs()
  // no token at all: the node's write check, in OpenAI's error shape
  const bare = await api<{ error: { type: string, code: string } }>(operator, '/v1/chat/completions', { method: 'POST', token: null, body: { model: modelId, messages: [{ role: 'user', content: 'Honeybees communicate the' }] } })
  assert.is(bare.status, 401)
  assert.is(bare.body.error.type, 'authentication_error')
  const bareExternal = await api(operator, `/v1/datanets/${datanetId}/inferences`, { method: 'POST', token: null, body: { external: { endpoint: 'http://127.0.0.1:1/v1', model: 'x' }, prompt: 'p', output: 'o' } })
  assert.is(bareExternal.status, 401)

  const expectError = async (p: Promise<unknown>, status: number): Promise<InstanceType<typeof OpenAI.APIError>> => {
    try {
      await p
    } catch (err) {
      assert.instance(err, OpenAI.APIError)
      const e = err as InstanceType<typeof OpenAI.APIError>
      assert.is(e.status, status, e.message)
      return e
    }
    throw new Error(`expected HTTP ${status}`)
  }
  const wrong = await expectError(client(operator, 'not-the-token').chat.completions.create({ model: modelId, messages: [{ role: 'user', content: 'Honeybees communicate the' }] }), 401)
  assert.instance(wrong, OpenAI.AuthenticationError)
  await expectError(client(operator, 'not-the-token').completions.create({ model: modelId, prompt: 'Honeybees' }), 401)

  const unknown = await expectError(client(operator).chat.completions.create({ model: 'bafkreiaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', messages: [{ role: 'user', content: 'hi' }] }), 404)
  assert.instance(unknown, OpenAI.NotFoundError)
  assert.is(unknown.code, 'model_not_found')
  assert.is(unknown.type, 'invalid_request_error')
  await expectError(client(operator).completions.create({ model: `${datanetId}/nope`, prompt: 'hi' }), 404)

  const empty = await expectError(client(operator).chat.completions.create({ model: modelId, messages: [] }), 400)
  assert.instance(empty, OpenAI.BadRequestError)
  assert.is(empty.type, 'invalid_request_error')
  assert.match(empty.message, /messages/)
  const noMessages = await api<{ error: { message: string, type: string, code: string } }>(operator, '/v1/chat/completions', { method: 'POST', body: { model: modelId } })
  assert.is(noMessages.status, 400)
  assert.equal(Object.keys(noMessages.body.error).sort(), ['code', 'message', 'param', 'type'])
  const badFee = await api<{ error: { message: string } }>(operator, '/v1/completions', { method: 'POST', body: { model: modelId, prompt: 'Honeybees', fee: '-1' } })
  assert.is(badFee.status, 400)
  assert.match(badFee.body.error.message, /fee/)
  const notJson = await fetch(`${operator.daemon.apiUrl}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${cluster.token(operator)}`, 'content-type': 'application/json' }, body: '{"model":' })
  assert.is(notJson.status, 400)
  assert.ok(((await notJson.json()) as { error?: { type?: string } }).error?.type === 'invalid_request_error')

  // the endpoint is published in the external model's record: a URL with credentials is refused
  const secret = await api<{ error: { message: string } }>(operator, `/v1/datanets/${datanetId}/inferences`, { method: 'POST', body: { external: { endpoint: 'http://user:hunter2@127.0.0.1:1/v1', model: 'x' }, prompt: 'p', output: 'o' } })
  assert.is(secret.status, 400)
  assert.match(secret.body.error.message, /published/)

  assert.is(await operatorTxs(), before, 'no refused request escrowed anything')
})

test('chat completion: the output, its attribution (as the stored event has it), the fee escrowed, usage', async () => {
  const prompt = 'Honeybees communicate the'
  const params: OpenAI.Chat.ChatCompletionCreateParamsNonStreaming & { fee: string } = { model: modelId, messages: [{ role: 'user', content: prompt }], max_tokens: 40, fee: FEE }
  const before = await operatorTxs()
  const c = await client(operator).chat.completions.create(params)
  assert.is(c.object, 'chat.completion')
  assert.is(c.model, modelId)
  const content = c.choices[0]?.message.content ?? ''
  assert.ok(content.length > 0)
  const a = (c as unknown as { attribution: WireAttribution }).attribution
  assert.is(a.datanet, datanetId)
  assert.is(a.model, modelId)
  assert.ok(a.spans.some(s => !s.common), 'the reference model copies records: some span is attributed')
  assert.ok(a.contributors.length > 0 && a.contributors.every(x => x.address === (validators[0] as TestNode).address.toLowerCase()))
  await checkAgainstEvent(a, content, prompt)
  assert.is(await operatorTxs(), before + 1, 'one escrow transaction')
  assert.ok((c.usage?.prompt_tokens ?? 0) > 0 && (c.usage?.completion_tokens ?? 0) > 0)
  assert.is(c.usage?.total_tokens, (c.usage?.prompt_tokens ?? 0) + (c.usage?.completion_tokens ?? 0))
})

test('streaming chat completion: the chunks concatenate to the output, the last carries the attribution', async () => {
  const prompt = 'During the long winter the villagers'
  const params: OpenAI.Chat.ChatCompletionCreateParamsStreaming & { fee: string } = { model: modelId, messages: [{ role: 'system', content: 'Continue the text.' }, { role: 'user', content: prompt }], stream: true, fee: FEE }
  const stream = await client(operator).chat.completions.create(params)
  let text = ''
  let chunks = 0
  let last: (OpenAI.Chat.ChatCompletionChunk & { attribution?: WireAttribution }) | undefined
  for await (const chunk of stream) {
    chunks++
    assert.is(chunk.object, 'chat.completion.chunk')
    text += chunk.choices[0]?.delta.content ?? ''
    last = chunk
  }
  assert.ok(chunks > 2, `streamed in pieces (${chunks} chunks)`)
  assert.ok(text.length > 0)
  assert.ok(last?.choices[0]?.finish_reason === 'stop' || last?.choices[0]?.finish_reason === 'length')
  const a = last?.attribution
  assert.ok(a !== undefined, 'the last chunk carries the attribution')
  await checkAgainstEvent(a, text, 'Continue the text.\n' + prompt)
})

test('completions (the legacy endpoint), model named datanet/model', async () => {
  const prompt = 'The lighthouse keeper climbed'
  const params: OpenAI.CompletionCreateParamsNonStreaming & { fee: string } = { model: `${datanetId}/${modelId}`, prompt, max_tokens: 24, fee: FEE }
  const c = await client(operator).completions.create(params)
  assert.is(c.object, 'text_completion')
  const text = c.choices[0]?.text ?? ''
  assert.ok(text.length > 0)
  assert.ok(text.trim().split(/\s+/).length <= 18, 'max_tokens 24 → at most 18 words')
  await checkAgainstEvent((c as unknown as { attribution: WireAttribution }).attribution, text, prompt)
})

test('datanet infer --endpoint (this node\'s own /v1 as the external server): an external model\'s event, verified by the validators, enters a version', async () => {
  const prompt = 'Tidal pools along the rocky coast'
  const r = await runCli(['infer', '--json', '--api', operator.daemon.apiUrl, '--token-file', dataDirPaths(operator.dataDir).apiToken,
    '--endpoint', `${operator.daemon.apiUrl}/v1`, '--api-key', cluster.token(operator), '--model', modelId, '--fee', FEE, '--max-words', '30', prompt], { timeoutMs: 120_000 })
  assert.is(r.code, 0, r.stderr)
  const out = JSON.parse(r.stdout) as { cid: string, model: string, output: string, fee: string, shares: Array<{ address: string, amount: string }>, attribution: WireAttribution }
  assert.ok(out.output.length > 0)
  assert.is(out.fee, FEE)
  assert.is.not(out.model, modelId, 'the event names the external model, not the datanet model that happened to serve it')
  // the external model's record: kind external, its artifact the endpoint and model name
  const models = await api<Array<{ id: string, kind: string, operator: string }>>(operator, `/v1/datanets/${datanetId}/models`)
  assert.equal(models.body.find(m => m.id === out.model)?.kind, 'external')
  const paid = out.shares.reduce((s, x) => s + BigInt(x.amount), 0n)
  assert.ok(paid > 0n, 'the output copies records: contributors are paid')
  assert.is(await escrowed(out.attribution.eventId), BigInt(FEE))

  // every validator verified the event (no regeneration: it re-attributed the output) and agrees on its shares
  for (const v of validators) {
    const view = await waitFor(async () => { const x = await api<EventView>(v, `/v1/datanets/${datanetId}/inferences/${out.cid}`); return x.status === 200 ? x.body : undefined }, { timeoutMs: 30_000, what: `${v.name} to hold the external event` })
    assert.equal(view.shares, out.shares, `${v.name} attributes it alike`)
    assert.is(view.resultHash, out.attribution.resultHash)
  }
  // as for `datanet infer`: the event enters a version, anchored, with one tally root everywhere
  const height = await waitFor(async () => (await api<EventView>(operator, `/v1/datanets/${datanetId}/inferences/${out.cid}`)).body.included ?? undefined, { timeoutMs: 90_000, what: 'the external event included in a version' })
  const versions = await Promise.all(cluster.nodes.map(async n => await waitFor(async () => (await api<Array<{ height: number, anchor: unknown, attributionRoot: string }>>(n, `/v1/datanets/${datanetId}/versions`)).body
    .find(v => v.height === height && v.anchor !== null), { timeoutMs: 90_000, what: `${n.name}: version ${height} anchored` })))
  assert.is(new Set(versions.map(v => v.attributionRoot)).size, 1, 'every node computed the same tally root')
  assert.is.not(versions[0]?.attributionRoot, '0x' + '00'.repeat(32))
  const tallies = await Promise.all(cluster.nodes.map(async n => (await api<{ height: number, total: string }>(n, `/v1/datanets/${datanetId}/tallies`)).body))
  assert.ok(tallies.every(t => t.height >= height))
  // the tally counts the external event's shares: the contributor's tally at least them
  const contributor = await api<{ amount: string }>(validators[1] as TestNode, `/v1/datanets/${datanetId}/tallies/${(validators[0] as TestNode).address}`)
  assert.ok(BigInt(contributor.body.amount) >= paid)
})

test.run()
