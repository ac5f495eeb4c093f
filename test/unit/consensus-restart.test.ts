/**
 * A validator restarted after `kill -9` in the middle of a height must never sign a
 * second, different vote for a (height, round, type) it already voted in — even when a
 * proposal for that height arrives while it is still starting (the race that made an
 * honest validator equivocate under repeated kills: the message opened the height fresh
 * before the saved state was loaded).
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Wallet } from 'ethers'
import { join } from 'node:path'
import { encodeCbor, decodeCbor } from '../../src/codec/cbor.ts'
import { signingDomain } from '../../src/codec/eip712.ts'
import { fourValidators } from '../helpers/validators.ts'
import { proposerSchedule } from '../../src/consensus/machine.ts'
import { proposalDigest, validatorSetHash, versionValue, type Version } from '../../src/consensus/version.ts'
import { topics } from '../../src/network/topics.ts'
import { StateDatabase } from '../../src/storage/state-db.ts'
import { ConsensusService } from '../../node/services/consensus/index.ts'
import { createLogger } from '../../node/logger.ts'
import { tempDir } from '../helpers/tmp.ts'
import { waitFor } from '../helpers/wait.ts'
import type { FollowedDatanet } from '../../node/services/datanets.ts'
import type { GossipRouter, TopicHandler } from '../../src/network/gossip.ts'

const binding = { chainId: 31337, registry: null }

async function setup (): Promise<{ d: FollowedDatanet, wallets: Wallet[], self: Wallet }> {
  const { d, wallets, proposer } = await fourValidators('restart', { propose: 60_000, vote: 60_000 })
  // this node is not the proposer of (1, 0): the proposal comes from another validator
  const self = wallets.find(w => w.address !== proposer(1, 0)) as Wallet
  return { d, wallets, self }
}

/** A router that records what is published and, like a live network, delivers a message the moment a topic is registered. */
function fakeRouter (onRegister: (h: TopicHandler<unknown>) => Promise<void>): GossipRouter & { sent: Array<Record<string, unknown>> } {
  const sent: Array<Record<string, unknown>> = []
  return {
    sent,
    register: (h: TopicHandler<unknown>) => { void onRegister(h) },
    publish: async (_topic: string, data: Uint8Array) => { sent.push(decodeCbor<Record<string, unknown>>(data)); return 1 },
    subscribers: () => []
  } as unknown as GossipRouter & { sent: Array<Record<string, unknown>> }
}

test('a validator restarted mid-height resumes its votes before any message can open the height anew', async () => {
  const { d, wallets, self } = await setup()
  const tmp = tempDir()
  const db = new StateDatabase(join(tmp.dir, 'state'))
  await db.open()
  try {
    const domain = signingDomain(binding, d.id)
    const schedule = proposerSchedule(d.validators.validators.map(v => ({ address: v.address, power: v.stake })))
    const proposer = wallets.find(w => w.address === schedule(1, 0)) as Wallet
    // Before the crash, this validator had prevoted for some value X in round 0 (its state was saved).
    const X = '0x' + 'ab'.repeat(32)
    await db.consensus.put(d.id, {
      height: 1,
      state: { height: 1, round: 0, step: 'prevote', lockedValue: null, lockedRound: -1, validValue: null, validRound: -1, signed: { '0/prevote': X }, proposed: {} }
    })
    // The proposer's (invalid: empty) proposal for round 0 arrives while the node starts.
    const version: Version = {
      datanet: d.id, height: 1, parent: null, contributions: [], rejected: [], inferences: [], datasetRoot: new Uint8Array(32), recordCount: 0,
      attributionRoot: new Uint8Array(32), totalAttributed: '0', validatorSetHash: validatorSetHash(d.validators.validators), proposer: proposer.address, timestamp: 1
    }
    const value = await versionValue(version)
    const signature = proposer.signingKey.sign(proposalDigest(domain, 1, 0, -1, value.id)).serialized
    const wire = encodeCbor({ kind: 'proposal', height: 1, round: 0, validRound: -1, version: value.bytes, signature: Buffer.from(signature.slice(2), 'hex'), sentAt: 1 })
    let delivered = false
    const router = fakeRouter(async h => {
      if (h.topic !== topics.consensus(d.id)) return
      const msg = h.decode(wire)
      await h.validate(msg, {} as never)
      await h.handle(msg, {} as never)
      delivered = true
    })
    const service = new ConsensusService({
      db, helia: {} as never, router, sync: {} as never, wallet: self, binding, logger: createLogger({ level: 'silent', format: 'json' })
    })
    await service.follow(d)
    await waitFor(async () => delivered && service.status(d.id)?.step !== null ? true : undefined, { timeoutMs: 10_000, what: 'the proposal to be handled' })
    // the step that handles a message runs on the consensus queue: let it drain
    await waitFor(async () => (await db.consensus.get(d.id)) !== undefined ? true : undefined, { timeoutMs: 5000, what: 'state' })
    await service.stop()
    const prevotes = router.sent.filter(m => m.kind === 'vote' && m.type === 'prevote' && m.round === 0)
    for (const p of prevotes) {
      const header = p.header as { version: string }
      assert.unreachable(`signed a second round-0 prevote (for ${header.version}) after having prevoted ${X}`)
    }
    const saved = await db.consensus.get(d.id)
    assert.is((saved?.state as { signed: Record<string, string> }).signed['0/prevote'], X, 'the record of the vote signed is kept')
  } finally {
    await db.close()
    tmp.remove()
  }
})

test.run()
