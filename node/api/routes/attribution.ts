import { getAddress, isAddress } from 'ethers'
import { z } from 'zod'
import { TallyTree, talliesFromJSON, type Tallies } from '../../../src/attribution/tallies.ts'
import { toHex } from '../../../src/codec/hash.ts'
import { invalid, noChain } from '../errors.ts'
import { DatanetError } from '../../../src/errors.ts'
import { heightKeyOf, type StateDatabase } from '../../../src/storage/state-db.ts'
import type { AttributionService } from '../../services/attribution.ts'
import type { ChainService } from '../../services/chain.ts'
import type { DatanetService, FollowedDatanet } from '../../services/datanets.ts'
import type { InferenceService } from '../../services/inferences.ts'
import type { ApiRoutes } from '../server.ts'
import type { FastifyInstance } from 'fastify'

export interface AttributionRoutesDeps {
  db: StateDatabase
  datanets: DatanetService
  attribution: AttributionService
  inferences: InferenceService
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
  z.strictObject({ event: z.record(z.string(), z.unknown()) })
])

function parse<T> (schema: z.ZodType<T>, body: unknown): T {
  const r = schema.safeParse(body ?? {})
  if (!r.success) throw invalid('body', r.error)
  return r.data
}

/** Attribution preview, models, inference events, tallies and claims (DESIGN §6). */
export function attributionRoutes ({ db, datanets, attribution, inferences, chain }: AttributionRoutesDeps): ApiRoutes {
  const talliesAt = async (d: FollowedDatanet, height: number): Promise<Tallies> => {
    if (height === 0) return new Map()
    const json = await db.tallies.get(heightKeyOf(d.id, height))
    return json === undefined ? new Map() : talliesFromJSON(json)
  }
  const latestHeight = async (d: FollowedDatanet): Promise<number> => (await db.versionsOf(d.id, { reverse: true, limit: 1 }))[0]?.height ?? 0
  const address = (text: string): string => {
    if (!isAddress(text)) throw new DatanetError({ code: 'API_ERROR_BAD_REQUEST' }, `not an address: ${text}`, 'usage')
    return getAddress(text).toLowerCase()
  }

  /** One account's tally: the latest, and what the contract's root (the last anchor) lets it claim, with the proof. */
  const tallyOf = async (d: FollowedDatanet, account: string): Promise<Record<string, unknown>> => {
    const height = await latestHeight(d)
    const latest = (await talliesAt(d, height)).get(account) ?? 0n
    const anchored = chain?.anchoredAttribution(d)
    const anchoredTallies = anchored === undefined ? new Map<string, bigint>() : await talliesAt(d, anchored.height)
    const tree = new TallyTree(anchoredTallies)
    if (anchored !== undefined && toHex(tree.root) !== anchored.attributionRoot.toLowerCase()) {
      throw new DatanetError({ code: 'ATTRIBUTION_ERROR_ROOT_MISMATCH' }, `the tallies of version ${anchored.height} here do not give the anchored root`, 'failure')
    }
    const proof = tree.proof(account)
    const claimed = chain?.claimedOn(d, account) ?? 0n
    const cumulative = proof?.cumulativeAmount ?? 0n
    return {
      address: getAddress(account),
      amount: latest.toString(),
      height,
      anchoredHeight: anchored?.height ?? null,
      cumulativeAmount: cumulative.toString(),
      claimed: claimed.toString(),
      claimable: (cumulative > claimed ? cumulative - claimed : 0n).toString(),
      root: toHex(tree.root),
      proof: proof?.proof ?? []
    }
  }

  return {
    register (app: FastifyInstance) {
      app.post('/v1/datanets/:id/attribution', async (request) => {
        const { id } = request.params as { id: string }
        const d = datanets.require(id)
        const body = parse(previewBody, request.body)
        const version = body.version ?? attribution.latestHeight(d)
        if (version < 1) throw new DatanetError({ code: 'ATTRIBUTION_ERROR_NO_VERSION' }, `datanet ${id} has no final version yet`, 'conflict')
        const result = await attribution.attribute(d, version, body.text, body.prompt ?? null, body.fee === undefined ? ONE_ETH : BigInt(body.fee))
        if (result === undefined) throw new DatanetError({ code: 'ATTRIBUTION_ERROR_NO_VERSION' }, `datanet ${id} has no final version ${version} here`, 'not_found')
        return { version, ...result }
      })

      app.get('/v1/datanets/:id/models', async (request) => {
        const { id } = request.params as { id: string }
        return await inferences.listModels(datanets.require(id))
      })
      app.post('/v1/datanets/:id/models', async (request, reply) => {
        const { id } = request.params as { id: string }
        const d = datanets.require(id)
        const body = parse(modelBody, request.body)
        const entry = 'train' in body ? await inferences.train(d, body.version) : await inferences.register(d, body)
        return await reply.code(201).send(entry)
      })

      app.post('/v1/datanets/:id/inferences', async (request, reply) => {
        const { id } = request.params as { id: string }
        const d = datanets.require(id)
        const body = parse(inferBody, request.body)
        if ('event' in body) return await reply.code(201).send(await inferences.post(d, body.event))
        const result = await inferences.infer(d, { model: body.model, prompt: body.prompt, fee: body.fee === undefined ? ONE_ETH / 100n : BigInt(body.fee), maxWords: body.maxWords ?? 40 })
        return await reply.code(201).send(result)
      })
      app.get('/v1/datanets/:id/inferences/:cid', async (request) => {
        const { id, cid } = request.params as { id: string, cid: string }
        return await inferences.view(datanets.require(id), cid)
      })

      app.get('/v1/datanets/:id/tallies', async (request) => {
        const { id } = request.params as { id: string }
        const d = datanets.require(id)
        const height = await latestHeight(d)
        const tallies = await talliesAt(d, height)
        return {
          height,
          anchoredHeight: chain?.anchoredAttribution(d)?.height ?? null,
          total: [...tallies.values()].reduce((a, b) => a + b, 0n).toString(),
          tallies: await Promise.all([...tallies.keys()].map(async a => await tallyOf(d, a)))
        }
      })
      app.get('/v1/datanets/:id/tallies/:address', async (request) => {
        const { id, address: text } = request.params as { id: string, address: string }
        return await tallyOf(datanets.require(id), address(text))
      })

      app.post('/v1/datanets/:id/claim', async (request) => {
        const { id } = request.params as { id: string }
        const d = datanets.require(id)
        if (chain === undefined) throw noChain()
        // claim against the latest anchor there is, not the one the last poll saw
        await chain.refresh()
        const account = chain.address.toLowerCase()
        const tally = await tallyOf(d, account)
        if (BigInt(tally.claimable as string) === 0n) {
          throw new DatanetError({ code: 'CLAIM_ERROR_NOTHING' }, `nothing to claim for ${getAddress(account)}: ${String(tally.cumulativeAmount)} wei attributed as of the last anchor (version ${String(tally.anchoredHeight ?? '-')}), ${String(tally.claimed)} claimed`, 'conflict')
        }
        const tx = await chain.claim(d, getAddress(account), BigInt(tally.cumulativeAmount as string), tally.proof as string[])
        return { ...tally, paid: tally.claimable, claimed: tally.cumulativeAmount, claimable: '0', txHash: tx.txHash, block: tx.block }
      })
    }
  }
}
