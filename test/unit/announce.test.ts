import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { topics } from '../../src/network/topics.ts'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { Wallet } from 'ethers'
import { pino } from 'pino'
import { AnnounceService, decodeAnnouncement, signAnnouncement, type AnnounceOptions, type NodeAnnouncement } from '../../src/network/announce.ts'
import { GossipValidationError, type GossipContext } from '../../src/network/gossip.ts'
import { encodeCbor } from '../../src/codec/cbor.ts'
import { StateDatabase } from '../../src/storage/state-db.ts'
import { tempDir } from '../helpers/tmp.ts'
import type { DomainBinding } from '../../src/codec/eip712.ts'
import type { PeerId } from '@libp2p/interface'

const NOW = 1_750_000_000_000
const BINDING: DomainBinding = { chainId: 31337, registry: null, datanet: null }
const wallet = new Wallet('0x' + '8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba')

const tmp = tempDir('datanet-announce-')
const db = new StateDatabase(join(tmp.dir, 'state'))
let peerId: PeerId
let otherPeer: PeerId

test.before(async () => {
  peerId = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
  otherPeer = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
  await db.open()
})

test.after(async () => {
  await db.close()
  tmp.remove()
})

function service (opts: Partial<AnnounceOptions> = {}): AnnounceService {
  return new AnnounceService({
    router: {} as never,
    db: {} as never,
    wallet: {} as never,
    binding: BINDING,
    peerId: '',
    intervalMs: 1000,
    agentVersion: '',
    multiaddrs: () => [],
    datanets: () => [],
    logger: pino({ level: 'silent' }),
    now: () => NOW,
    ...opts
  })
}

const ctx = (publisher: PeerId = peerId): GossipContext => ({ publisher, propagationSource: publisher, msgId: 'm' })

async function announcement (overrides: { timestamp?: number, binding?: DomainBinding, signer?: Wallet, peerId?: string } = {}): Promise<NodeAnnouncement> {
  return await signAnnouncement(overrides.signer ?? wallet, overrides.binding ?? BINDING, {
    peerId: overrides.peerId ?? peerId.toString(),
    multiaddrs: [`/ip4/127.0.0.1/tcp/7400/p2p/${peerId.toString()}`],
    agentVersion: 'datanet/0.1.0',
    datanets: ['0x' + '00'.repeat(32)],
    timestamp: overrides.timestamp ?? NOW - 1000
  })
}

function gossipError (fn: () => unknown): GossipValidationError {
  try {
    fn()
  } catch (err) {
    assert.instance(err, GossipValidationError)
    return err as GossipValidationError
  }
  assert.unreachable('expected a GossipValidationError')
  throw new Error('unreachable')
}

function expectVerdict (fn: () => unknown, action: 'reject' | 'ignore', code: string): void {
  const e = gossipError(fn)
  assert.is(e.action, action, `${e.code}: ${e.message}`)
  assert.is(e.code, code)
}

test('signAnnouncement signs with the wallet\'s address; dag-cbor round trip keeps every field', async () => {
  const a = await announcement()
  assert.is(a.address, wallet.address)
  assert.match(a.signature, /^0x[0-9a-f]{130}$/)
  const decoded = decodeAnnouncement(encodeCbor(a))
  assert.equal(decoded, a)
})

test('validate accepts a good announcement whose peer id is its publisher', async () => {
  const a = await announcement()
  service().validate(decodeAnnouncement(encodeCbor(a)), ctx())
})

test('validate rejects an announcement naming another peer than its publisher: ANNOUNCE_ERROR_WRONG_PEER', async () => {
  const a = await announcement()
  expectVerdict(() => { service().validate(a, ctx(otherPeer)) }, 'reject', 'ANNOUNCE_ERROR_WRONG_PEER')
})

test('validate rejects a field altered after signing: ANNOUNCE_ERROR_BAD_SIGNATURE', async () => {
  const a = await announcement()
  const s = service()
  expectVerdict(() => { s.validate({ ...a, agentVersion: 'evil/1.0' }, ctx()) }, 'reject', 'ANNOUNCE_ERROR_BAD_SIGNATURE')
  expectVerdict(() => { s.validate({ ...a, multiaddrs: ['/ip4/6.6.6.6/tcp/1'] }, ctx()) }, 'reject', 'ANNOUNCE_ERROR_BAD_SIGNATURE')
  expectVerdict(() => { s.validate({ ...a, datanets: [] }, ctx()) }, 'reject', 'ANNOUNCE_ERROR_BAD_SIGNATURE')
  expectVerdict(() => { s.validate({ ...a, timestamp: a.timestamp + 1 }, ctx()) }, 'reject', 'ANNOUNCE_ERROR_BAD_SIGNATURE')
  expectVerdict(() => { s.validate({ ...a, address: Wallet.createRandom().address }, ctx()) }, 'reject', 'ANNOUNCE_ERROR_BAD_SIGNATURE')
  // the original still passes: the checks above failed because of the alterations
  s.validate(a, ctx())
})

test('validate rejects a peer id swapped in after signing (publisher matches the new id)', async () => {
  const a = await announcement()
  expectVerdict(() => { service().validate({ ...a, peerId: otherPeer.toString() }, ctx(otherPeer)) }, 'reject', 'ANNOUNCE_ERROR_BAD_SIGNATURE')
})

test('validate rejects an announcement signed for another chain: ANNOUNCE_ERROR_BAD_SIGNATURE', async () => {
  const a = await announcement({ binding: { chainId: 1, registry: null, datanet: null } })
  expectVerdict(() => { service().validate(a, ctx()) }, 'reject', 'ANNOUNCE_ERROR_BAD_SIGNATURE')
  // and one signed for another registry
  const b = await announcement({ binding: { chainId: 31337, registry: '0x' + '12'.repeat(20), datanet: null } })
  expectVerdict(() => { service().validate(b, ctx()) }, 'reject', 'ANNOUNCE_ERROR_BAD_SIGNATURE')
})

test('validate rejects a malformed signature: ANNOUNCE_ERROR_BAD_SIGNATURE', async () => {
  const a = await announcement()
  expectVerdict(() => { service().validate({ ...a, signature: '0x1234' }, ctx()) }, 'reject', 'ANNOUNCE_ERROR_BAD_SIGNATURE')
})

test('validate ignores an announcement dated more than 60 s ahead: ANNOUNCE_ERROR_FUTURE', async () => {
  const future = await announcement({ timestamp: NOW + 60_001 })
  expectVerdict(() => { service().validate(future, ctx()) }, 'ignore', 'ANNOUNCE_ERROR_FUTURE')
  const edge = await announcement({ timestamp: NOW + 60_000 })
  service().validate(edge, ctx())
})

test('decodeAnnouncement rejects garbage bytes: ANNOUNCE_ERROR_MALFORMED', () => {
  for (const bytes of [new Uint8Array([0xff, 0x00, 0x13]), new Uint8Array(), new TextEncoder().encode('{"peerId":"x"}')]) {
    expectVerdict(() => decodeAnnouncement(bytes), 'reject', 'ANNOUNCE_ERROR_MALFORMED')
  }
})

test('decodeAnnouncement rejects non-objects and missing or malformed fields: ANNOUNCE_ERROR_MALFORMED', async () => {
  const a = await announcement()
  const variants: unknown[] = [
    null, 5, 'text', [a],
    { peerId: a.peerId },
    { ...a, signature: undefined },
    { ...a, address: 'not-an-address' },
    { ...a, address: '0x1234' },
    { ...a, multiaddrs: 'one' },
    { ...a, multiaddrs: [1, 2] },
    { ...a, multiaddrs: Array.from({ length: 33 }, (_, i) => `/ip4/10.0.0.${i}/tcp/1`) },
    { ...a, datanets: ['x'.repeat(513)] },
    { ...a, agentVersion: 7 },
    { ...a, timestamp: -1 },
    { ...a, timestamp: 1.5 },
    { ...a, timestamp: '1' },
    { ...a, peerId: 'p'.repeat(513) }
  ]
  for (const v of variants) {
    const clean = v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).filter(([, x]) => x !== undefined))
      : v
    expectVerdict(() => decodeAnnouncement(encodeCbor(clean)), 'reject', 'ANNOUNCE_ERROR_MALFORMED')
  }
  // the unaltered announcement decodes, so each variant failed for its own change
  decodeAnnouncement(encodeCbor(a))
})

test('after handle(), the same announcement is stale (ANNOUNCE_ERROR_STALE) and the peer is stored', async () => {
  const s = service({ db })
  const a = await announcement({ timestamp: NOW - 500 })
  s.validate(a, ctx())
  await s.handle(a)
  expectVerdict(() => { s.validate(a, ctx()) }, 'ignore', 'ANNOUNCE_ERROR_STALE')
  const older = await announcement({ timestamp: NOW - 10_000 })
  expectVerdict(() => { s.validate(older, ctx()) }, 'ignore', 'ANNOUNCE_ERROR_STALE')

  const record = await db.peers.get(peerId.toString())
  assert.equal(record, {
    peerId: peerId.toString(),
    address: wallet.address,
    multiaddrs: a.multiaddrs,
    agentVersion: a.agentVersion,
    datanets: a.datanets,
    announcedAt: a.timestamp
  })

  const newer = await announcement({ timestamp: NOW - 100 })
  s.validate(newer, ctx())
  await s.handle(newer)
  assert.is((await db.peers.get(peerId.toString()))?.announcedAt, NOW - 100)

  // handling an older one (e.g. two in flight) never rolls the record back
  await s.handle(a)
  assert.is((await db.peers.get(peerId.toString()))?.announcedAt, NOW - 100)
})

test('staleness is per peer', async () => {
  const s = service({ db })
  const other = new Wallet('0x' + '0dbbe8e4ae425a6d2687f1a7e3ba17bc98c673636790f1b8ad91193c05875ef1')
  const mine = await announcement({ timestamp: NOW - 50 })
  await s.handle(mine)
  const theirs = await announcement({ signer: other, peerId: otherPeer.toString(), timestamp: NOW - 60 })
  s.validate(theirs, ctx(otherPeer))
})

test('start() remembers the latest announcements already in the database', async () => {
  const registered: unknown[] = []
  const published: Array<{ topic: string, data: Uint8Array }> = []
  const router = {
    register: (h: unknown) => { registered.push(h) },
    publish: async (topic: string, data: Uint8Array) => { published.push({ topic, data }); return 0 }
  }
  await db.peers.put(otherPeer.toString(), {
    peerId: otherPeer.toString(), address: wallet.address, multiaddrs: [], agentVersion: 'x', datanets: [], announcedAt: NOW - 200
  })
  const s = service({ db, router: router as never, wallet, peerId: peerId.toString() })
  await s.start()
  try {
    assert.equal(registered, [s])
    const replay = await announcement({ peerId: otherPeer.toString(), timestamp: NOW - 200 })
    expectVerdict(() => { s.validate(replay, ctx(otherPeer)) }, 'ignore', 'ANNOUNCE_ERROR_STALE')
  } finally {
    s.stop()
  }
})

test('announce() publishes a signed announcement that another node accepts', async () => {
  const published: Array<{ topic: string, data: Uint8Array }> = []
  const router = { publish: async (topic: string, data: Uint8Array) => { published.push({ topic, data }); return 3 } }
  const many = Array.from({ length: 40 }, (_, i) => `/ip4/10.0.0.${i}/tcp/7400`)
  const s = service({
    router: router as never,
    wallet,
    peerId: peerId.toString(),
    agentVersion: 'datanet/9',
    multiaddrs: () => many,
    datanets: () => ['d1', 'd2']
  })
  assert.is(await s.announce(), 3)
  assert.is(published.length, 1)
  const sent = published[0]
  assert.ok(sent !== undefined)
  assert.is(sent.topic, topics.announce)
  const a = decodeAnnouncement(sent.data)
  assert.is(a.peerId, peerId.toString())
  assert.is(a.address, wallet.address)
  assert.is(a.agentVersion, 'datanet/9')
  assert.equal(a.datanets, ['d1', 'd2'])
  assert.equal(a.multiaddrs, many.slice(0, 32), 'capped at 32 addresses')
  assert.is(a.timestamp, NOW)
  service().validate(a, ctx())
})

test.run()
