import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Wallet } from 'ethers'
import { CID } from 'multiformats/cid'
import { encodeCbor } from '../../src/codec/cbor.ts'
import { toHex } from '../../src/codec/hash.ts'
import { datanetDomain } from '../../src/codec/eip712.ts'
import {
  ZERO32, decodeVersion, encodeVersion, headerOf, nilHeader, proposalDigest, validatorSetHash, versionValue, voteDigest, voteSigner,
  type Version
} from '../../src/consensus/version.ts'

const contribution = CID.parse('bafyreicy2vcg5uhenbesilamhuhfxsnhxcx5itx55rhgylkqwjxbyt7ffu')

function version (over: Partial<Version> = {}): Version {
  return {
    datanet: 'bafyreiey246m5q57cg5srz3rbhb5l5xmrjg5jcw5mdxnukkgnl5wune6bu',
    height: 1,
    parent: null,
    contributions: [{ cid: contribution, verdicts: [new Uint8Array([1, 2, 3])] }],
    rejected: [],
    inferences: [],
    datasetRoot: new Uint8Array(32).fill(1),
    recordCount: 10,
    attributionRoot: ZERO32,
    totalAttributed: '0',
    validatorSetHash: new Uint8Array(32).fill(2),
    proposer: '0x0000000000000000000000000000000000000001',
    timestamp: 1,
    ...over
  }
}

const domain = datanetDomain({ chainId: 31337, registry: null, datanet: toHex(new Uint8Array(32).fill(9)) })

test('a version round-trips through dag-cbor and its id is its CID digest', async () => {
  const v = version()
  const decoded = decodeVersion(encodeVersion(v))
  assert.equal(encodeVersion(decoded), encodeVersion(v))
  const value = await versionValue(v)
  assert.is(value.id, toHex(value.cid.multihash.digest))
  assert.is((await versionValue(version({ recordCount: 11 }))).id === value.id, false)
})

test('malformed versions are refused', () => {
  const good = version() as unknown as Record<string, unknown>
  for (const [key, bad] of [['height', 0], ['datasetRoot', new Uint8Array(31)], ['totalAttributed', '-1'], ['parent', 'x'], ['rejected', ['x']]] as const) {
    assert.throws(() => decodeVersion(encodeCbor({ ...good, [key]: bad })), undefined, key)
  }
  assert.throws(() => decodeVersion(encodeCbor({ ...good, extra: 1 })))
  const { proposer: _p, ...missing } = good
  assert.throws(() => decodeVersion(encodeCbor(missing)))
})

test('a signed vote recovers its validator; another round, type, header or domain does not', async () => {
  const wallet = Wallet.createRandom()
  const value = await versionValue(version())
  const header = headerOf(value)
  assert.is(header.version, value.id)
  assert.is(header.parent, toHex(ZERO32))
  const signature = wallet.signingKey.sign(voteDigest(domain, 'precommit', 2, header)).serialized
  const vote = { vote: { type: 'precommit' as const, height: 1, round: 2, valueId: value.id, validator: wallet.address }, header, signature }
  assert.is(voteSigner(domain, vote), wallet.address)
  assert.is.not(voteSigner(domain, { ...vote, vote: { ...vote.vote, round: 3 } }), wallet.address)
  assert.is.not(voteSigner(domain, { ...vote, vote: { ...vote.vote, type: 'prevote' } }), wallet.address)
  assert.is.not(voteSigner(domain, { ...vote, header: { ...header, recordCount: 11 } }), wallet.address)
  const otherChain = datanetDomain({ chainId: 1, registry: null, datanet: toHex(new Uint8Array(32).fill(9)) })
  assert.is.not(voteSigner(otherChain, vote), wallet.address)
  assert.is(voteSigner(domain, { ...vote, signature: '0x1234' }), undefined)
})

test('nil votes sign an all-zero header at their height; proposals sign (height, round, validRound, version)', async () => {
  const nil = nilHeader(7)
  assert.is(nil.height, 7)
  assert.is(nil.version, toHex(ZERO32))
  const value = await versionValue(version())
  assert.is.not(proposalDigest(domain, 1, 0, -1, value.id), proposalDigest(domain, 1, 0, 0, value.id))
  assert.is.not(voteDigest(domain, 'prevote', 0, nil), voteDigest(domain, 'prevote', 0, nilHeader(8)))
})

test('the validator-set hash depends on members and stakes, not on order or address case', () => {
  const a = { address: '0xAbCd000000000000000000000000000000000001', stake: 5n }
  const b = { address: '0x0000000000000000000000000000000000000002', stake: 7n }
  assert.equal(validatorSetHash([a, b]), validatorSetHash([b, { ...a, address: a.address.toLowerCase() }]))
  assert.not.equal(validatorSetHash([a, b]), validatorSetHash([a, { ...b, stake: 8n }]))
  assert.not.equal(validatorSetHash([a, b]), validatorSetHash([a]))
})

test.run()
