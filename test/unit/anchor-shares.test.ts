/**
 * Anchor shares (src/chain/anchor-shares.ts) as gossip brings them: the shares topic's
 * checks (node/services/consensus/inbound.ts) keep a share only when a validator of its height
 * signed it (a recovery, not a pairing), and the pool a node keeps them in is bounded. Shares
 * have their own topic, so nodes of a version before them never see one; a kind of message
 * a node does not know is ignored, not held against its sender.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Wallet, keccak256, toUtf8Bytes } from 'ethers'
import { AnchorSharePool, shareDigest, type AnchorShare } from '../../src/chain/anchor-shares.ts'
import { blsSecretKey, signDigest } from '../../src/chain/bls.ts'
import { encodeCbor } from '../../src/codec/cbor.ts'
import { datanetDomain } from '../../src/codec/eip712.ts'
import { fromHex } from '../../src/codec/hash.ts'
import { voteDigest, type VersionHeader } from '../../src/consensus/version.ts'
import { headerId, type WireShare } from '../../src/consensus/wire.ts'
import { GossipValidationError, type GossipContext } from '../../src/network/gossip.ts'
import { consensusTopicHandlers, type InboundMessage } from '../../node/services/consensus/inbound.ts'
import { ConsensusService } from '../../node/services/consensus/index.ts'
import { createLogger } from '../../node/logger.ts'
import { decodeCbor } from '../../src/codec/cbor.ts'
import { topics } from '../../src/network/topics.ts'
import { fourValidators } from '../helpers/validators.ts'
import { tempDir } from '../helpers/tmp.ts'
import { StateDatabase } from '../../src/storage/state-db.ts'
import { join } from 'node:path'
import type { GossipRouter, TopicHandler } from '../../src/network/gossip.ts'

const validator = new Wallet(keccak256(toUtf8Bytes('share validator')))
const outsider = new Wallet(keccak256(toUtf8Bytes('share outsider')))
const domain = datanetDomain({ chainId: 31337, registry: '0x' + '11'.repeat(20), datanet: '0x' + '22'.repeat(32) })
const h32 = (s: string): string => keccak256(toUtf8Bytes(s))
const header: VersionHeader = { height: 4, parent: h32('p'), datasetRoot: h32('d'), recordCount: 3, attributionRoot: h32('a'), totalAttributed: '0', validatorSetHash: h32('s'), version: h32('v') }

function share (signer: Wallet, opts: { blsOf?: Wallet, header?: VersionHeader } = {}): WireShare {
  const hd = opts.header ?? header
  const precommit = voteDigest(domain, 'precommit', 1, hd)
  const bls = signDigest(blsSecretKey((opts.blsOf ?? signer).privateKey), precommit)
  return { kind: 'share', round: 1, header: hd, bls: fromHex(bls, 48), signature: fromHex(signer.signingKey.sign(shareDigest(domain, precommit, bls)).serialized, 65), sentAt: 0 }
}

/** The handler's verdict on a wire message: the share kept, or the gossip action and code. */
async function verdict (wire: unknown, current = 5, final?: { round: number, headerId: string }, handler = shareHandler(current, final)): Promise<{ kept?: { height: number, share: AnchorShare }, action?: string, code?: string }> {
  const ctx = {} as GossipContext
  try {
    const msg: InboundMessage = handler.decode(encodeCbor(wire))
    await handler.validate(msg, ctx)
    await handler.handle(msg, ctx)
  } catch (err) {
    if (!(err instanceof GossipValidationError)) throw err
    return { action: err.action, code: err.code }
  }
  return { kept: takeKept(handler) }
}

const keptBy = new WeakMap<object, Array<{ height: number, share: AnchorShare }>>()
const takeKept = (handler: object): { height: number, share: AnchorShare } | undefined => keptBy.get(handler)?.shift()

type Handler = TopicHandler<InboundMessage>

/**
 * The shares topic's handler of a node at `current` (or its consensus topic's), with `final`
 * the version final here at the shares' height (none: not final yet).
 */
function shareHandler (current: number, final?: { round: number, headerId: string }, topic: 'shares' | 'consensus' = 'shares'): Handler {
  const kept: Array<{ height: number, share: AnchorShare }> = []
  const [consensus, shares] = consensusTopicHandlers({
    datanet: 'bafy-test', domain,
    driver: { height: current, round: 0, limits: { maxAhead: 8, futureRounds: 2 } } as never,
    setup: () => undefined,
    setFor: () => ({ validators: [{ address: validator.address, stake: 1n }], total: 1n }),
    onBehind: () => {},
    deliver: async () => {},
    onShare: (height, s) => { kept.push({ height, share: s }) },
    finalAt: async () => final
  })
  const handler = topic === 'shares' ? shares : consensus
  keptBy.set(handler, kept)
  return handler
}

test('a share signed by a validator of its height is kept; by anyone else, or with its BLS bytes swapped, it is rejected', async () => {
  const good = await verdict(share(validator))
  assert.is(good.kept?.height, 4)
  assert.is(good.kept?.share.validator, validator.address)
  assert.is(good.kept?.share.round, 1)
  assert.equal(await verdict(share(outsider)), { action: 'reject', code: 'CONSENSUS_ERROR_NOT_VALIDATOR' })
  // a relay puts other BLS bytes under the validator's ECDSA signature
  const swapped = { ...share(validator), bls: share(validator, { blsOf: outsider }).bls }
  assert.equal(await verdict(swapped), { action: 'reject', code: 'CONSENSUS_ERROR_NOT_VALIDATOR' })
})

test('malformed shares are rejected before any signature check; shares of heights long past are ignored', async () => {
  assert.equal(await verdict({ ...share(validator), bls: new Uint8Array(47) }), { action: 'reject', code: 'CONSENSUS_ERROR_MALFORMED' })
  assert.equal(await verdict(share(validator, { header: { ...header, version: '0x' + '00'.repeat(32) } })), { action: 'reject', code: 'CONSENSUS_ERROR_MALFORMED' })
  assert.equal(await verdict(share(validator), 4 + 1000), { action: 'ignore', code: 'CONSENSUS_ERROR_STALE' })
})

test('a share of a final height must be of its final header (else rejected) and round (else ignored); of a height not final here, two per validator', async () => {
  const final = { round: 1, headerId: headerId(header) }
  assert.is((await verdict(share(validator), 5, final)).kept?.height, 4)
  const other = { ...header, datasetRoot: h32('another root') }
  assert.equal(await verdict(share(validator, { header: other }), 5, final), { action: 'reject', code: 'CONSENSUS_ERROR_SHARE_NOT_FINAL' })
  assert.equal(await verdict(share(validator), 5, { ...final, round: 0 }), { action: 'ignore', code: 'CONSENSUS_ERROR_SHARE_ROUND' })
  const handler = shareHandler(4)
  assert.ok((await verdict(share(validator, { header: other }), 4, undefined, handler)).kept !== undefined)
  assert.ok((await verdict(share(validator), 4, undefined, handler)).kept !== undefined)
  assert.equal(await verdict(share(validator, { header: { ...header, datasetRoot: h32('a third') } }), 4, undefined, handler), { action: 'ignore', code: 'CONSENSUS_ERROR_SHARE_FLOOD' })
})

test('shares have a topic of their own: a share there and, from a node of the release before, on the consensus topic get the same checks', async () => {
  for (const topic of ['shares', 'consensus'] as const) {
    assert.is((await verdict(share(validator), 5, undefined, shareHandler(5, undefined, topic))).kept?.share.validator, validator.address, topic)
    assert.equal(await verdict(share(outsider), 5, undefined, shareHandler(5, undefined, topic)), { action: 'reject', code: 'CONSENSUS_ERROR_NOT_VALIDATOR' }, topic)
  }
  const [consensus, shares] = consensusTopicHandlers({} as never)
  assert.is(shares.topic, topics.shares('undefined'))
  assert.is(consensus.topic, topics.consensus('undefined'))
  // a vote or proposal has no business on the shares topic
  assert.equal(await verdict({ kind: 'vote', type: 'prevote', round: 0, header, signature: new Uint8Array(65), sentAt: 0 }), { action: 'reject', code: 'CONSENSUS_ERROR_MALFORMED' })
})

test('a kind of message this version does not know (a later version\'s) is ignored, not rejected: its honest sender keeps its score', async () => {
  const later = { kind: 'evidence', height: 4, signature: new Uint8Array(65), sentAt: 0 }
  for (const topic of ['shares', 'consensus'] as const) {
    assert.equal(await verdict(later, 5, undefined, shareHandler(5, undefined, topic)), { action: 'ignore', code: 'CONSENSUS_ERROR_UNKNOWN_KIND' }, topic)
  }
  // what is no message at all is still rejected
  assert.equal(await verdict({ kind: 42 }, 5, undefined, shareHandler(5, undefined, 'consensus')), { action: 'reject', code: 'CONSENSUS_ERROR_MALFORMED' })
  assert.equal(await verdict('share', 5, undefined, shareHandler(5, undefined, 'consensus')), { action: 'reject', code: 'CONSENSUS_ERROR_MALFORMED' })
})

test('a validator gossips its anchor shares on the shares topic, never on the consensus topic that nodes before shares reject', async () => {
  const { d, wallets } = await fourValidators('shares-topic', { propose: 60_000, vote: 60_000 })
  const sent: Array<{ topic: string, kind: unknown }> = []
  const registered: string[] = []
  const router = {
    register: (h: Handler) => { registered.push(h.topic) },
    publish: async (topic: string, data: Uint8Array) => { sent.push({ topic, kind: decodeCbor<{ kind: unknown }>(data).kind }); return 1 },
    subscribers: () => []
  } as unknown as GossipRouter
  const tmp = tempDir()
  const db = new StateDatabase(join(tmp.dir, 'state'))
  await db.open()
  const service = new ConsensusService({ db, helia: {} as never, router, sync: {} as never, wallet: wallets[0] as Wallet, binding: { chainId: 31337, registry: null }, logger: createLogger({ level: 'silent', format: 'json' }) })
  try {
    await service.follow(d)
    assert.ok(registered.includes(topics.shares(d.id)), 'the node listens on the shares topic')
    await service.publishShare(d.id, share(validator))
    assert.equal(sent.filter(m => m.kind === 'share'), [{ topic: topics.shares(d.id), kind: 'share' }])
  } finally {
    await service.stop()
    await db.close()
    tmp.remove()
  }
})

test('the pool keeps one share per validator, round and header, the newest heights only, and forgets anchored ones', () => {
  const pool = new AnchorSharePool(3)
  const s = (v: string, round = 0, headerId = 'h'): AnchorShare => ({ validator: v, round, headerId, bls: '0x' })
  assert.ok(pool.add('d', 2, s('0xA')))
  assert.not.ok(pool.add('d', 2, s('0xa')), 'the same validator, round and header again')
  assert.ok(pool.add('d', 2, s('0xa', 1)))
  assert.ok(pool.add('d', 2, s('0xb')))
  assert.not.ok(pool.add('d', 2, s('0xc')), 'a height holds maxPerHeight shares')
  assert.equal(pool.of('d', 2, 0, 'h').map(x => x.validator), ['0xa', '0xb'])
  for (let h = 3; h <= 18; h++) pool.add('d', h, s('0xa'))
  assert.is(pool.of('d', 2, 0, 'h').length, 0, 'the lowest height made room for the seventeenth')
  assert.not.ok(pool.add('d', 1, s('0xa')), 'a height below all kept once full')
  pool.drop('d', 17, s('0xa'))
  assert.is(pool.of('d', 17, 0, 'h').length, 0)
  pool.forget('d', 10)
  assert.is(pool.of('d', 10, 0, 'h').length, 0)
  assert.is(pool.of('d', 11, 0, 'h').length, 1)
})

test.run()
