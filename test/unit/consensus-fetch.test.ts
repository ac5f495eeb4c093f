/**
 * A proposal vouching for a contribution this node lacks (a restarted node missed its
 * gossip) is judged once the contribution is fetched, and the fetch runs off the consensus
 * queue: however slow it is, the node's votes, timeouts and catch-up go on (its propose
 * timeout alone waits for the fetch, at most 10 s). On `0fbec52` the fetch ran on the
 * queue: a restarted validator's queue was held up to 120 s by one contribution, and it
 * handled no vote meanwhile.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Wallet } from 'ethers'
import { join } from 'node:path'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { encodeCbor, decodeCbor } from '../../src/codec/cbor.ts'
import { signingDomain } from '../../src/codec/eip712.ts'
import { encodeVerdict, signVerdict } from '../../src/contribution/verdict.ts'
import { nilHeader, proposalDigest, validatorSetHash, versionValue, voteDigest, type Version } from '../../src/consensus/version.ts'
import { topics } from '../../src/network/topics.ts'
import { StateDatabase } from '../../src/storage/state-db.ts'
import { ConsensusService } from '../../node/services/consensus/index.ts'
import { createLogger } from '../../node/logger.ts'
import { tempDir } from '../helpers/tmp.ts'
import { waitFor } from '../helpers/wait.ts'
import { fourValidators } from '../helpers/validators.ts'
import type { GossipRouter, TopicHandler } from '../../src/network/gossip.ts'
import type { Helia } from '@helia/interface'
import { memoryPins } from '../helpers/memory-pins.ts'

const binding = { chainId: 31337, registry: null }

/** Peers that never deliver a block: each fetch waits for its caller's deadline. */
function silentPeers (): Helia {
  return {
    blockstore: {
      has: async () => false,
      get: async function * (_cid: CID, options: { signal?: AbortSignal } = {}): AsyncGenerator<Uint8Array> {
        await new Promise((_resolve, reject) => { options.signal?.addEventListener('abort', () => { reject(options.signal?.reason as Error) }, { once: true }) })
        yield new Uint8Array()
      }
    },
    ...memoryPins()
  } as unknown as Helia
}

test('a proposal whose contribution cannot be fetched yet does not hold the queue: the others\' nil precommits move the node to round 1', async () => {
  const { d, wallets, proposer: proposerOf } = await fourValidators('fetch', { propose: 300, vote: 300 })
  const proposer = wallets.find(w => w.address === proposerOf(1, 0)) as Wallet
  const self = wallets.find(w => w.address !== proposer.address) as Wallet
  const domain = signingDomain(binding, d.id)

  // a contribution this node never saw, accepted by three validators
  const contribution = CID.create(1, 0x71, await sha256.digest(new TextEncoder().encode('missed while down')))
  const verdicts = await Promise.all(wallets.slice(0, 3).map(async w => encodeVerdict(await signVerdict(w, binding, {
    datanet: d.id, contribution, validator: w.address, accept: true, score: 100, reasons: [], timestamp: 1
  }))))
  const version: Version = {
    datanet: d.id, height: 1, parent: null, contributions: [{ cid: contribution, verdicts }], rejected: [], inferences: [],
    datasetRoot: new Uint8Array(32), recordCount: 1, attributionRoot: new Uint8Array(32), totalAttributed: '0',
    validatorSetHash: validatorSetHash(d.validators.validators), proposer: proposer.address, timestamp: 1
  }
  const value = await versionValue(version)
  const signature = proposer.signingKey.sign(proposalDigest(domain, 1, 0, -1, value.id)).serialized
  const wire = encodeCbor({ kind: 'proposal', height: 1, round: 0, validRound: -1, version: value.bytes, signature: Buffer.from(signature.slice(2), 'hex'), sentAt: 1 })
  // the three others gave up on round 0: their precommits for nil
  const others = wallets.filter(w => w.address !== self.address)
  const precommits = others.map(w => encodeCbor({
    kind: 'vote', type: 'precommit', round: 0, header: nilHeader(1),
    signature: Buffer.from(w.signingKey.sign(voteDigest(domain, 'precommit', 0, nilHeader(1))).serialized.slice(2), 'hex'), sentAt: 1
  }))

  const sent: Array<Record<string, unknown>> = []
  const router = {
    register: (h: TopicHandler<unknown>) => {
      if (h.topic !== topics.consensus(d.id)) return
      void (async () => {
        for (const bytes of [wire, ...precommits]) { const msg = h.decode(bytes); await h.validate(msg, {} as never); await h.handle(msg, {} as never) }
      })()
    },
    publish: async (_topic: string, data: Uint8Array) => { sent.push(decodeCbor<Record<string, unknown>>(data)); return 1 },
    subscribers: () => []
  } as unknown as GossipRouter

  const tmp = tempDir()
  const db = new StateDatabase(join(tmp.dir, 'state'))
  await db.open()
  const service = new ConsensusService({ db, helia: silentPeers(), router, sync: {} as never, wallet: self, binding, logger: createLogger({ level: 'silent', format: 'json' }) })
  try {
    await service.follow(d)
    service.poke(d.id)
    await waitFor(() => (service.status(d.id)?.round ?? 0) >= 1 ? true : undefined, {
      timeoutMs: 4_000, what: 'round 1 while the proposal\'s contribution is being fetched (the queue held by the fetch)'
    })
    assert.is(service.status(d.id)?.lastFinal, 0, 'nothing final without the contribution')
  } finally {
    await service.stop()
    await db.close()
    tmp.remove()
  }
})

test.run()
