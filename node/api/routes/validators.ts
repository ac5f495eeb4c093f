import { z } from 'zod'
import { noChain, parseRequest } from '../errors.ts'
import type { SentTx } from '../../../src/chain/registry-client.ts'
import type { ChainService } from '../../services/chain.ts'
import type { DatanetService } from '../../services/datanets.ts'
import type { ValidatorSets } from '../../services/validator-sets.ts'
import type { ApiRoutes } from '../server.ts'
import type { FastifyInstance } from 'fastify'

export interface ValidatorRoutesDeps {
  datanets: DatanetService
  /** Undefined when the node has no chain configured. */
  chain: ChainService | undefined
  sets: ValidatorSets
}

const joinBody = z.strictObject({ stake: z.string().regex(/^[1-9][0-9]*$/, 'expected a positive integer amount of wei as a decimal string') })

const txJson = (tx: SentTx): Record<string, unknown> => ({ txHash: tx.txHash, block: tx.block, gasUsed: tx.gasUsed.toString() })

/** The validator set of a datanet (DESIGN §6 /validators), and this node's own join and leave. */
export function validatorRoutes ({ datanets, chain, sets }: ValidatorRoutesDeps): ApiRoutes {
  return {
    register (app: FastifyInstance) {
      app.get('/v1/datanets/:id/validators', async (request) => {
        const { id } = request.params as { id: string }
        const d = datanets.require(id)
        const manifestSet = {
          source: 'manifest',
          validators: d.validators.validators.map(v => ({ address: v.address, stake: v.stake.toString(), status: 'active', peerId: null, since: 0, unlockAt: null })),
          totalStake: d.validators.total.toString()
        }
        if (chain === undefined) return { ...manifestSet, chain: null }
        // a registration that is not the manifest's is ignored: the manifest's set decides
        if (chain.registration(d).status === 'mismatch') return { ...manifestSet, chain: { block: chain.block, ...chain.chainInfo(d) } }
        return { source: 'chain', validators: chain.validators(d), totalStake: sets.shown(d).total.toString(), chain: { block: chain.block, ...chain.chainInfo(d) } }
      })
      app.post('/v1/datanets/:id/validators/join', async (request) => {
        const { id } = request.params as { id: string }
        const d = datanets.require(id)
        if (chain === undefined) throw noChain()
        const { stake } = parseRequest(joinBody, request.body, 'body')
        return txJson(await chain.join(d, BigInt(stake)))
      })
      app.post('/v1/datanets/:id/validators/leave', async (request) => {
        const { id } = request.params as { id: string }
        const d = datanets.require(id)
        if (chain === undefined) throw noChain()
        return txJson(await chain.leave(d))
      })
      app.post('/v1/datanets/:id/validators/withdraw', async (request) => {
        const { id } = request.params as { id: string }
        const d = datanets.require(id)
        if (chain === undefined) throw noChain()
        return txJson(await chain.withdraw(d))
      })
    }
  }
}
