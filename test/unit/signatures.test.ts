import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Wallet } from 'ethers'
import { CID } from 'multiformats/cid'
import { create as createDigest } from 'multiformats/hashes/digest'
import { encodeCbor } from '../../src/codec/cbor.ts'
import { sha256 } from '../../src/codec/hash.ts'
import { encodeManifest, parseManifest, type EncodedManifest } from '../../src/datanet/manifest.ts'
import { shardCid } from '../../src/datanet/shard.ts'
import {
  contributionCid, contributionSigner, decodeContribution, encodeContribution, shardsDigest, signContribution,
  type Contribution, type UnsignedContribution
} from '../../src/contribution/contribution.ts'
import { decodeVerdict, encodeVerdict, signVerdict, verdictCid, verdictSigner, type UnsignedVerdict, type Verdict } from '../../src/contribution/verdict.ts'
import type { DomainBinding } from '../../src/codec/eip712.ts'

type Binding = Omit<DomainBinding, 'datanet'>

const wallet = new Wallet('0x' + '8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba')
const other = new Wallet('0x' + '59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d')
const BINDING: Binding = { chainId: 31337, registry: null }
const REGISTRY = '0x5FbDB2315678afecb367f032d93F642f64180aa3'

const enc = new TextEncoder()
const SHARDS = [shardCid(enc.encode('{"text":"a"}\n{"text":"b"}\n')), shardCid(enc.encode('{"text":"c"}\n'))]

let A: EncodedManifest
let B: EncodedManifest

test.before(async () => {
  const base = { name: 'datanet A', license: 'MIT', recordSchema: { type: 'object' }, validators: [{ address: wallet.address, stake: '1' }] }
  A = await encodeManifest(parseManifest(base))
  B = await encodeManifest(parseManifest({ ...base, nonce: 'B' }))
})

function unsigned (overrides: Partial<UnsignedContribution> = {}): UnsignedContribution {
  return {
    datanet: A.id,
    contributor: wallet.address,
    shards: SHARDS,
    recordCount: 3,
    byteSize: 40,
    recordsRoot: sha256(enc.encode('root')),
    nonce: 12345,
    timestamp: 1_750_000_000_000,
    ...overrides
  }
}

async function signed (overrides: Partial<UnsignedContribution> = {}, binding: Binding = BINDING): Promise<Contribution> {
  return await signContribution(wallet, binding, unsigned(overrides))
}

/** Encodes a plain object as a contribution would be, with fields replaced or deleted (undefined). */
function encodeWith (c: Contribution, changes: Record<string, unknown>): Uint8Array {
  const obj: Record<string, unknown> = { ...c }
  for (const [k, v] of Object.entries(changes)) {
    if (v === undefined) delete obj[k]
    else obj[k] = v
  }
  return encodeCbor(obj)
}

function decodeFails (bytes: Uint8Array, maxShards: number, pattern: RegExp, what: string): void {
  try {
    decodeContribution(bytes, maxShards)
  } catch (err) {
    assert.match((err as Error).message, pattern, what)
    return
  }
  assert.unreachable(`${what}: expected decodeContribution to throw`)
}

// -- contributions --------------------------------------------------------------------

test('a signed contribution recovers to its signer under the same binding', async () => {
  const c = await signed()
  assert.is(c.signature.length, 65)
  assert.is(contributionSigner(c, BINDING), wallet.address)
  const withRegistry = await signed({}, { chainId: 8453, registry: REGISTRY })
  assert.is(contributionSigner(withRegistry, { chainId: 8453, registry: REGISTRY }), wallet.address)
  // A null registry is the zero address.
  assert.is(contributionSigner(c, { chainId: 31337, registry: '0x0000000000000000000000000000000000000000' }), wallet.address)
})

test('a signature for datanet A or chain X does not hold for datanet B or chain Y', async () => {
  const c = await signed()
  const chainY = contributionSigner(c, { chainId: 1, registry: null })
  assert.ok(chainY !== wallet.address, 'other chain')
  const regY = contributionSigner(c, { chainId: 31337, registry: REGISTRY })
  assert.ok(regY !== wallet.address, 'other registry')
  const onB = contributionSigner({ ...c, datanet: B.id }, BINDING)
  assert.ok(onB !== wallet.address, 'moved to datanet B')
  const withRegistry = await signed({}, { chainId: 31337, registry: REGISTRY })
  assert.ok(contributionSigner(withRegistry, BINDING) !== wallet.address, 'signed for a registry, checked without')
})

test('changing any signed field changes the recovered signer', async () => {
  const c = await signed()
  const changes: Array<[string, Partial<Contribution>]> = [
    ['recordCount', { recordCount: 4 }],
    ['byteSize', { byteSize: 41 }],
    ['a shard', { shards: [SHARDS[0] as CID, shardCid(enc.encode('{"text":"d"}\n'))] }],
    ['shard order', { shards: [SHARDS[1] as CID, SHARDS[0] as CID] }],
    ['a shard less', { shards: [SHARDS[0] as CID] }],
    ['recordsRoot', { recordsRoot: sha256(enc.encode('other root')) }],
    ['nonce', { nonce: 12346 }],
    ['timestamp', { timestamp: 1_750_000_000_001 }],
    ['contributor', { contributor: other.address }]
  ]
  for (const [what, change] of changes) {
    const signer = contributionSigner({ ...c, ...change }, BINDING)
    assert.ok(signer !== wallet.address, what)
  }
})

test('a contribution signed by someone else recovers to them, not to the stated contributor', async () => {
  const c = await signContribution(other, BINDING, unsigned())
  assert.is(contributionSigner(c, BINDING), other.address)
  assert.is.not(contributionSigner(c, BINDING), c.contributor)
})

test('an unusable signature recovers to undefined', async () => {
  const c = await signed()
  assert.is(contributionSigner({ ...c, signature: new Uint8Array(65) }, BINDING), undefined)
  assert.is(contributionSigner({ ...c, signature: new Uint8Array(3) }, BINDING), undefined)
})

test('shardsDigest is sha256 over the shard digests in order', () => {
  const expected = sha256(SHARDS[0]?.multihash.digest as Uint8Array, SHARDS[1]?.multihash.digest as Uint8Array)
  assert.equal(shardsDigest(SHARDS), expected)
  assert.not.equal(shardsDigest([SHARDS[1] as CID, SHARDS[0] as CID]), expected)
})

test('encodeContribution → decodeContribution round-trips; the bytes and the CID are stable', async () => {
  const c = await signed()
  const bytes = encodeContribution(c)
  const back = decodeContribution(bytes, 10)
  assert.is(back.datanet, c.datanet)
  assert.is(back.contributor, c.contributor)
  assert.equal(back.shards.map(s => s.toString()), c.shards.map(s => s.toString()))
  assert.is(back.recordCount, c.recordCount)
  assert.is(back.byteSize, c.byteSize)
  assert.equal(new Uint8Array(back.recordsRoot), new Uint8Array(c.recordsRoot))
  assert.is(back.nonce, c.nonce)
  assert.is(back.timestamp, c.timestamp)
  assert.equal(new Uint8Array(back.signature), c.signature)
  assert.is(contributionSigner(back, BINDING), wallet.address, 'the decoded contribution still verifies')
  assert.equal(encodeContribution(back), bytes, 're-encoding gives the same bytes')
  assert.equal(encodeContribution(await signed()), bytes, 'signing again gives the same bytes (deterministic signature)')
  const cid = await contributionCid(bytes)
  assert.is((await contributionCid(encodeContribution(back))).toString(), cid.toString())
  assert.is(cid.code, 0x71)
  assert.is(cid.multihash.code, 0x12)
  assert.is.not((await contributionCid(encodeContribution(await signed({ nonce: 1 })))).toString(), cid.toString())
})

test('decodeContribution refuses malformed contributions', async () => {
  const c = await signed()
  const manifestCid = A.cid
  const sha512Raw = CID.createV1(0x55, createDigest(0x13, new Uint8Array(64)))
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['missing nonce', { nonce: undefined }, /unexpected fields/],
    ['missing signature', { signature: undefined }, /unexpected fields/],
    ['extra field', { extra: 1 }, /unexpected fields/],
    ['datanet not a string', { datanet: 5 }, /datanet/],
    ['datanet not a CID', { datanet: 'nope' }, /datanet/],
    ['lower-case contributor', { contributor: wallet.address.toLowerCase() }, /contributor/],
    ['short contributor', { contributor: '0x1234' }, /contributor/],
    ['dag-cbor shard CID', { shards: [manifestCid] }, /shard/],
    ['sha2-512 shard CID', { shards: [sha512Raw] }, /shard/],
    ['shard as a string', { shards: [SHARDS[0]?.toString()] }, /shard/],
    ['no shards', { shards: [] }, /shards/],
    ['zero records', { recordCount: 0 }, /counts/],
    ['negative byteSize', { byteSize: -1 }, /counts/],
    ['fractional nonce', { nonce: 1.5 }, /counts/],
    ['timestamp as string', { timestamp: '1' }, /counts/],
    ['short recordsRoot', { recordsRoot: new Uint8Array(31) }, /recordsRoot/],
    ['64-byte signature', { signature: new Uint8Array(64) }, /signature/],
    ['signature as hex', { signature: '0x' + '00'.repeat(65) }, /signature/]
  ]
  for (const [what, changes, pattern] of cases) decodeFails(encodeWith(c, changes), 10, pattern, what)
  decodeFails(encodeCbor([1, 2]), 10, /fields|object/, 'an array')
  decodeFails(encodeCbor('x'), 10, /.+/, 'a string')
  decodeFails(Uint8Array.of(0xff, 0x00), 10, /dag-cbor/, 'not cbor')
})

test('decodeContribution enforces maxShards', async () => {
  const c = await signed()
  assert.not.throws(() => decodeContribution(encodeContribution(c), 2))
  decodeFails(encodeContribution(c), 1, /shards/, 'two shards, max one')
})

/** The address with the case of one letter flipped: a bad EIP-55 checksum. */
function badChecksum (good: string): string {
  const i = good.slice(2).search(/[a-fA-F]/) + 2
  const ch = good[i] as string
  return good.slice(0, i) + (ch === ch.toLowerCase() ? ch.toUpperCase() : ch.toLowerCase()) + good.slice(i + 1)
}

test('decodeContribution refuses a mixed-case contributor with a bad checksum', async () => {
  const c = await signed()
  decodeFails(encodeWith(c, { contributor: badChecksum(wallet.address) }), 10, /contributor|address/, 'bad checksum')
})

// -- verdicts -------------------------------------------------------------------------

let CONTRIBUTION: CID

test.before(async () => {
  CONTRIBUTION = await contributionCid(encodeContribution(await signContribution(wallet, BINDING, unsigned())))
})

function unsignedVerdict (overrides: Partial<UnsignedVerdict> = {}): UnsignedVerdict {
  return {
    datanet: A.id,
    contribution: CONTRIBUTION,
    validator: wallet.address,
    accept: true,
    score: 75,
    reasons: ['SOME_DUPLICATE_RECORDS'],
    timestamp: 1_750_000_000_000,
    ...overrides
  }
}

function verdictFails (v: Verdict, changes: Record<string, unknown>, pattern: RegExp, what: string): void {
  const obj: Record<string, unknown> = { ...v }
  for (const [k, val] of Object.entries(changes)) {
    if (val === undefined) delete obj[k]
    else obj[k] = val
  }
  try {
    decodeVerdict(encodeCbor(obj))
  } catch (err) {
    assert.match((err as Error).message, pattern, what)
    return
  }
  assert.unreachable(`${what}: expected decodeVerdict to throw`)
}

test('a signed verdict recovers to its validator; not on another chain, registry or datanet', async () => {
  const v = await signVerdict(wallet, BINDING, unsignedVerdict())
  assert.is(v.signature.length, 65)
  assert.is(verdictSigner(v, BINDING), wallet.address)
  assert.ok(verdictSigner(v, { chainId: 1, registry: null }) !== wallet.address, 'other chain')
  assert.ok(verdictSigner(v, { chainId: 31337, registry: REGISTRY }) !== wallet.address, 'other registry')
  assert.ok(verdictSigner({ ...v, datanet: B.id }, BINDING) !== wallet.address, 'datanet B')
  assert.is(verdictSigner({ ...v, signature: new Uint8Array(65) }, BINDING), undefined)
})

test('changing any signed verdict field changes the recovered signer', async () => {
  const v = await signVerdict(wallet, BINDING, unsignedVerdict())
  const otherCid = await contributionCid(encodeContribution(await signed({ nonce: 9 })))
  const changes: Array<[string, Partial<Verdict>]> = [
    ['contribution', { contribution: otherCid }],
    ['accept', { accept: false }],
    ['score', { score: 74 }],
    ['reasons', { reasons: [] }],
    ['another reason', { reasons: ['SOME_DUPLICATE_RECORDS', 'TOO_LARGE'] }],
    ['timestamp', { timestamp: 1 }],
    ['validator', { validator: other.address }]
  ]
  for (const [what, change] of changes) {
    assert.ok(verdictSigner({ ...v, ...change }, BINDING) !== wallet.address, what)
  }
  // A verdict signed by the other wallet recovers to it.
  const theirs = await signVerdict(other, BINDING, unsignedVerdict({ validator: other.address }))
  assert.is(verdictSigner(theirs, BINDING), other.address)
})

test('a verdict on a contribution of datanet A is not one on the same contribution in B', async () => {
  const onA = await signVerdict(wallet, BINDING, unsignedVerdict())
  const onB = await signVerdict(wallet, BINDING, unsignedVerdict({ datanet: B.id }))
  assert.not.equal(onA.signature, onB.signature)
  assert.is(verdictSigner(onB, BINDING), wallet.address)
})

test('encodeVerdict → decodeVerdict round-trips; bytes and CID are stable', async () => {
  const v = await signVerdict(wallet, BINDING, unsignedVerdict())
  const bytes = encodeVerdict(v)
  const back = decodeVerdict(bytes)
  assert.is(back.datanet, v.datanet)
  assert.is(back.contribution.toString(), v.contribution.toString())
  assert.is(back.validator, v.validator)
  assert.is(back.accept, true)
  assert.is(back.score, 75)
  assert.equal(back.reasons, ['SOME_DUPLICATE_RECORDS'])
  assert.is(back.timestamp, v.timestamp)
  assert.is(verdictSigner(back, BINDING), wallet.address)
  assert.equal(encodeVerdict(back), bytes)
  assert.equal(encodeVerdict(await signVerdict(wallet, BINDING, unsignedVerdict())), bytes)
  assert.is((await verdictCid(bytes)).toString(), (await verdictCid(encodeVerdict(back))).toString())
  // Edge values are fine.
  for (const edge of [{ score: 0, reasons: [], accept: false }, { score: 100, reasons: ['A', 'B_2'] }, { reasons: Array.from({ length: 16 }, (_, i) => `R${i}`) }]) {
    const e = await signVerdict(wallet, BINDING, unsignedVerdict(edge))
    assert.not.throws(() => decodeVerdict(encodeVerdict(e)), JSON.stringify(edge))
  }
})

test('decodeVerdict refuses malformed verdicts', async () => {
  const v = await signVerdict(wallet, BINDING, unsignedVerdict())
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['missing score', { score: undefined }, /unexpected fields/],
    ['extra field', { extra: true }, /unexpected fields/],
    ['datanet not a string', { datanet: 1 }, /datanet/],
    ['contribution as a string', { contribution: CONTRIBUTION.toString() }, /contribution/],
    ['lower-case validator', { validator: wallet.address.toLowerCase() }, /validator/],
    ['validator with a bad checksum', { validator: badChecksum(wallet.address) }, /validator|address/],
    ['accept as a number', { accept: 1 }, /accept/],
    ['score 101', { score: 101 }, /score/],
    ['score -1', { score: -1 }, /score/],
    ['score 1.5', { score: 1.5 }, /score/],
    ['reason lower_case', { reasons: ['lower_case'] }, /reasons/],
    ['reason starting with a digit', { reasons: ['1BAD'] }, /reasons/],
    ['empty reason', { reasons: [''] }, /reasons/],
    ['reason too long', { reasons: ['A'.repeat(65)] }, /reasons/],
    ['17 reasons', { reasons: Array.from({ length: 17 }, (_, i) => `R${i}`) }, /reasons/],
    ['reasons not an array', { reasons: 'TOO_LARGE' }, /reasons/],
    ['negative timestamp', { timestamp: -1 }, /timestamp/],
    ['64-byte signature', { signature: new Uint8Array(64) }, /signature/]
  ]
  for (const [what, changes, pattern] of cases) verdictFails(v, changes, pattern, what)
})

test.run()
