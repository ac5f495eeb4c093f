import { Command } from 'commander'
import { formatEther } from 'ethers'
import { parseAmount } from '../amount.ts'
import { ApiClient } from '../client.ts'
import { chatCompletionText } from '../openai-endpoint.ts'
import { resolveApiUrl, resolveToken, usageError, withGlobalOptions, type GlobalOptions } from '../context.ts'
import { print, table } from '../output.ts'
import type { ModelEntry } from '../../../src/storage/state-db.ts'

interface Opts extends GlobalOptions {
  datanet?: string
  version?: string
  fee?: string
  prompt?: string
  model?: string
  kind?: string
  artifact?: string
  maxWords?: string
  contributor?: string
  endpoint?: string
  apiKey?: string
}

interface Attribution {
  version: number
  spans: Array<{ start: number, end: number, text: string, records: number[], common: boolean }>
  contributors: Array<{ address: string, amount: string }>
  fee: string
  dataPool: string
  paid: string
  basePool: string
  coverage: { num: number, den: number }
}

interface Tally { address: string, amount: string, cumulativeAmount: string, claimed: string, claimable: string, anchoredHeight: number | null, height: number, proof: string[] }

const enc = encodeURIComponent
const height = (text: string | undefined, what: string): number | undefined => {
  if (text === undefined) return undefined
  if (!/^[1-9][0-9]*$/.test(text)) throw usageError(`${what}: expected a height (a positive integer), got "${text}"`)
  return Number(text)
}
const eth = (wei: string): string => `${formatEther(wei)} ETH`

/** The spans and shares of an attribution, for a human. */
export function describeAttribution (a: Pick<Attribution, 'spans' | 'contributors' | 'paid' | 'basePool' | 'coverage' | 'fee'>): string {
  const spans = a.spans.filter(s => !s.common)
  const pct = a.coverage.den === 0 ? 0 : Math.round(1000 * a.coverage.num / a.coverage.den) / 10
  return [
    `coverage ${pct}% · ${spans.length} attributed span(s)${a.spans.length > spans.length ? `, ${a.spans.length - spans.length} common` : ''}`,
    ...spans.map(s => `  "${s.text.length > 70 ? `${s.text.slice(0, 67)}...` : s.text}"  → record(s) ${s.records.join(', ')}`),
    a.contributors.length === 0
      ? 'no contributor credited'
      : table(['contributor', 'share'], a.contributors.map(c => [c.address, eth(c.amount)])),
    `fee ${eth(a.fee)}: ${eth(a.paid)} to span contributors, ${eth(a.basePool)} to the base pool`
  ].join('\n')
}

/** The datanet a model belongs to, among those the node follows. */
async function datanetOfModel (client: ApiClient, model: string): Promise<string> {
  for (const d of await client.get<Array<{ id: string }>>('/v1/datanets')) {
    const models = await client.get<ModelEntry[]>(`/v1/datanets/${enc(d.id)}/models`)
    if (models.some(m => m.id === model)) return d.id
  }
  throw usageError(`model ${model} is not known to this node (datanet model list --datanet ID)`)
}

/**
 * The datanet an external model's event goes to: --datanet, else the one the model name
 * names (a datanet model's id, or `datanet/model`), else the node's only datanet.
 */
async function datanetForExternal (client: ApiClient, model: string): Promise<string> {
  const followed = await client.get<Array<{ id: string }>>('/v1/datanets')
  const slash = model.indexOf('/')
  if (slash > 0 && followed.some(d => d.id === model.slice(0, slash))) return model.slice(0, slash)
  try { return await datanetOfModel(client, model) } catch {}
  if (followed.length === 1) return (followed[0] as { id: string }).id
  throw usageError(`which datanet attributes model ${model}'s output? --datanet ID (the node follows ${followed.length})`)
}

export function registerAttributionCommands (program: Command): void {
  withGlobalOptions(program.command('attribute'))
    .description('attribution preview of any text, as if it were an inference output paying --fee')
    .requiredOption('--datanet <id>', 'datanet id')
    .option('--version <height>', 'against this dataset version (default: the latest)')
    .option('--fee <wei>', 'the fee in wei (or with a unit: 0.5eth, 2gwei); default 10^18 wei')
    .option('--prompt <text>', 'the prompt (spans it contains earn nothing)')
    .argument('<text>', 'the text to attribute')
    .action(async (text: string, opts: Opts) => {
      const body: Record<string, unknown> = { text }
      const v = height(opts.version, '--version')
      if (v !== undefined) body.version = v
      if (opts.fee !== undefined) body.fee = parseAmount(opts.fee, '--fee', 'wei').toString()
      if (opts.prompt !== undefined) body.prompt = opts.prompt
      const client = new ApiClient({ url: resolveApiUrl(opts), token: resolveToken(opts) })
      const a = await client.post<Attribution>(`/v1/datanets/${enc(opts.datanet ?? '')}/attribution`, body)
      print(opts.json, a, () => `version ${a.version}\n${describeAttribution(a)}`)
    })

  const model = program.command('model').description('models and the dataset version each was trained on')
  withGlobalOptions(model.command('train'))
    .description('trains the reference n-gram model on a dataset version and registers it')
    .requiredOption('--datanet <id>', 'datanet id')
    .requiredOption('--version <height>', 'dataset version to train on')
    .action(async (opts: Opts) => {
      const client = new ApiClient({ url: resolveApiUrl(opts), token: resolveToken(opts) })
      const m = await client.post<ModelEntry>(`/v1/datanets/${enc(opts.datanet ?? '')}/models`, { version: height(opts.version, '--version'), train: true })
      print(opts.json, m, () => `model ${m.id}\n  ${m.kind}, trained on version ${m.version}, artifact ${m.artifact}, operator ${m.operator}`)
    })
  withGlobalOptions(model.command('register'))
    .description('registers a model trained elsewhere (its artifact already in the node\'s blockstore or on the network)')
    .requiredOption('--datanet <id>', 'datanet id')
    .requiredOption('--version <height>', 'dataset version it was trained on')
    .requiredOption('--artifact <cid>', 'the artifact\'s CID')
    .option('--kind <name>', 'what the artifact is', 'ngram-v1')
    .action(async (opts: Opts) => {
      const client = new ApiClient({ url: resolveApiUrl(opts), token: resolveToken(opts) })
      const m = await client.post<ModelEntry>(`/v1/datanets/${enc(opts.datanet ?? '')}/models`, { version: height(opts.version, '--version'), kind: opts.kind, artifact: opts.artifact })
      print(opts.json, m, () => `model ${m.id} registered (version ${m.version})`)
    })
  withGlobalOptions(model.command('list'))
    .description('the models of a datanet')
    .requiredOption('--datanet <id>', 'datanet id')
    .action(async (opts: Opts) => {
      const client = new ApiClient({ url: resolveApiUrl(opts) })
      const list = await client.get<ModelEntry[]>(`/v1/datanets/${enc(opts.datanet ?? '')}/models`)
      print(opts.json, list, () => list.length === 0 ? 'no model yet' : table(['model', 'kind', 'version', 'operator'], list.map(m => [m.id, m.kind, String(m.version), m.operator])))
    })

  withGlobalOptions(program.command('infer'))
    .description('runs a model, escrows the fee, posts the inference event; prints the output and its attribution')
    .requiredOption('--model <id>', 'model id (with --endpoint: the model name that server knows)')
    .option('--datanet <id>', 'the model\'s datanet (default: looked up)')
    .option('--endpoint <url>', 'an OpenAI-compatible server (base URL, e.g. http://host:8000/v1) generates the output; the node attributes it, escrows the fee and posts the event')
    .option('--api-key <key>', 'the --endpoint server\'s API key (default: $OPENAI_API_KEY)')
    .option('--fee <wei>', 'the fee in wei (or with a unit: 0.01eth); default 0.01 ETH')
    .option('--max-words <n>', 'output length in words (default 40)')
    .argument('<prompt>', 'the prompt')
    .action(async (prompt: string, opts: Opts) => {
      const fee = opts.fee === undefined ? undefined : parseAmount(opts.fee, '--fee', 'wei').toString()
      let maxWords: number | undefined
      if (opts.maxWords !== undefined) {
        if (!/^[1-9][0-9]{0,2}$/.test(opts.maxWords)) throw usageError(`--max-words: expected 1..999, got "${opts.maxWords}"`)
        maxWords = Number(opts.maxWords)
      }
      const client = new ApiClient({ url: resolveApiUrl(opts), token: resolveToken(opts) })
      const model = opts.model ?? ''
      let body: Record<string, unknown>
      let datanet: string
      if (opts.endpoint !== undefined) {
        if (!/^https?:\/\//.test(opts.endpoint)) throw usageError(`--endpoint: expected an http(s) URL, got "${opts.endpoint}"`)
        datanet = opts.datanet ?? await datanetForExternal(client, model)
        // words → tokens: the inverse of the node's own max_tokens → maxWords (a token is about 3/4 of a word)
        const output = await chatCompletionText({ endpoint: opts.endpoint, model, prompt, apiKey: opts.apiKey ?? process.env.OPENAI_API_KEY, maxTokens: maxWords === undefined ? undefined : Math.ceil(4 * maxWords / 3) })
        body = { external: { endpoint: opts.endpoint, model }, prompt, output }
      } else {
        datanet = opts.datanet ?? await datanetOfModel(client, model)
        body = { model, prompt }
        if (maxWords !== undefined) body.maxWords = maxWords
      }
      if (fee !== undefined) body.fee = fee
      const r = await client.post<{ cid: string, eventId: string, model: string, output: string, escrow: { txHash: string }, attribution: Attribution }>(`/v1/datanets/${enc(datanet)}/inferences`, body)
      const source = opts.endpoint === undefined ? '' : ` (${model} at ${opts.endpoint}, external model ${r.model})`
      print(opts.json, r, () => [`${prompt} ${r.output}`, '', `event ${r.cid}${source} (fee escrowed in ${r.escrow.txHash})`, describeAttribution(r.attribution)].join('\n'))
    })

  withGlobalOptions(program.command('tallies'))
    .description('cumulative attribution per contributor, claimed and claimable')
    .requiredOption('--datanet <id>', 'datanet id')
    .option('--contributor <address>', 'one contributor, with its claim proof')
    .action(async (opts: Opts) => {
      const client = new ApiClient({ url: resolveApiUrl(opts) })
      const base = `/v1/datanets/${enc(opts.datanet ?? '')}/tallies`
      if (opts.contributor !== undefined) {
        const t = await client.get<Tally>(`${base}/${enc(opts.contributor)}`)
        print(opts.json, t, () => [
          `${t.address}: ${eth(t.amount)} attributed as of version ${t.height}`,
          `  anchored (version ${t.anchoredHeight ?? '-'}): ${eth(t.cumulativeAmount)}; claimed ${eth(t.claimed)}; claimable ${eth(t.claimable)}`
        ].join('\n'))
        return
      }
      const all = await client.get<{ height: number, anchoredHeight: number | null, total: string, tallies: Tally[] }>(base)
      print(opts.json, all, () => all.tallies.length === 0
        ? `nothing attributed yet (version ${all.height})`
        : `version ${all.height} (anchored: ${all.anchoredHeight ?? '-'}), ${eth(all.total)} attributed\n` +
          table(['contributor', 'attributed', 'anchored', 'claimed', 'claimable'], all.tallies.map(t => [t.address, eth(t.amount), eth(t.cumulativeAmount), eth(t.claimed), eth(t.claimable)])))
    })

  withGlobalOptions(program.command('claim'))
    .description('claims on-chain what the node\'s account is owed (as of the last anchored version)')
    .requiredOption('--datanet <id>', 'datanet id')
    .action(async (opts: Opts) => {
      const client = new ApiClient({ url: resolveApiUrl(opts), token: resolveToken(opts) })
      const r = await client.post<Tally & { paid: string, txHash: string, block: number }>(`/v1/datanets/${enc(opts.datanet ?? '')}/claim`)
      print(opts.json, r, () => `claimed ${eth(r.paid)} for ${r.address} (tx ${r.txHash}, block ${r.block}); ${eth(r.claimed)} claimed in all`)
    })
}
