import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { getAddress } from 'ethers'
import { CID } from 'multiformats/cid'
import { datanetDigest, encodeManifest, genesisValidatorSet, parseManifest, stakeOf, type Manifest } from '../../src/datanet/manifest.ts'
import { compileRecordSchema } from '../../src/datanet/record-schema.ts'
import { DatanetError } from '../../src/errors.ts'

const V1 = '0x' + 'cd'.repeat(20)
const V2 = '0x' + '1f'.repeat(20)
const V3 = '0x' + 'a0'.repeat(20)

const SCHEMA = { type: 'object', required: ['text'], properties: { text: { type: 'string', minLength: 1 } } }

/** A minimal manifest input: every defaulted field omitted. */
function input (overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: 'test datanet',
    license: 'CC-BY-4.0',
    recordSchema: SCHEMA,
    validators: [{ address: V1, stake: '100' }, { address: V2, stake: '50' }],
    ...overrides
  }
}

/** The same manifest with every default spelt out. */
function spelt (): Record<string, unknown> {
  return {
    version: 1,
    name: 'test datanet',
    description: '',
    license: 'CC-BY-4.0',
    recordSchema: SCHEMA,
    textMode: 'line',
    shardSize: 1048576,
    limits: { maxRecordBytes: 65536, maxRecordsPerContribution: 20_000_000, maxContributionBytes: 4 * 1024 * 1024 * 1024 },
    consensus: { proposeTimeoutMs: 3000, prevoteTimeoutMs: 1000, precommitTimeoutMs: 1000, timeoutDeltaMs: 500, versionIntervalMs: 5000 },
    anchorInterval: 1,
    attribution: { minSpanTokens: 12, maxSpanTokens: 256, commonRecordLimit: 16, recordCapBps: 2500 },
    rewardSplit: { contributorsBps: 6000, validatorsBps: 2000, modelOwnerBps: 1500, treasuryBps: 500 },
    validators: [{ address: V1, stake: '100' }, { address: V2, stake: '50' }],
    nonce: ''
  }
}

function manifestError (value: unknown): DatanetError {
  try {
    parseManifest(value)
  } catch (err) {
    assert.instance(err, DatanetError, `expected a DatanetError, got ${String(err)}`)
    const e = err as DatanetError
    assert.is(e.code, 'MANIFEST_ERROR_INVALID')
    assert.is(e.kind, 'usage')
    return e
  }
  assert.unreachable('expected parseManifest to throw')
  throw new Error('unreachable')
}

/** parseManifest fails and the message names `path`. */
function failsAt (value: unknown, path: string, detail?: RegExp): void {
  const e = manifestError(value)
  assert.ok(e.message.includes(`${path}: `), `"${e.message}" names ${path}`)
  if (detail !== undefined) assert.match(e.message, detail)
}

// -- defaults -------------------------------------------------------------------------

test('parseManifest fills every default', () => {
  const m = parseManifest(input())
  assert.is(m.version, 1)
  assert.is(m.description, '')
  assert.is(m.textMode, 'line')
  assert.is(m.shardSize, 1048576)
  assert.equal(m.limits, { maxRecordBytes: 65536, maxRecordsPerContribution: 20_000_000, maxContributionBytes: 4294967296 })
  assert.equal(m.consensus, { proposeTimeoutMs: 3000, prevoteTimeoutMs: 1000, precommitTimeoutMs: 1000, timeoutDeltaMs: 500, versionIntervalMs: 5000 })
  assert.is(m.anchorInterval, 1)
  assert.equal(m.attribution, { minSpanTokens: 12, maxSpanTokens: 256, commonRecordLimit: 16, recordCapBps: 2500 })
  assert.equal(m.rewardSplit, { contributorsBps: 6000, validatorsBps: 2000, modelOwnerBps: 1500, treasuryBps: 500 })
  const split = m.rewardSplit
  assert.is(split.contributorsBps + split.validatorsBps + split.modelOwnerBps + split.treasuryBps, 10_000)
  assert.is(m.nonce, '')
  assert.equal(m, parseManifest(spelt()), 'defaults omitted and spelt out parse alike')
})

test('a partly given nested object keeps the rest of its defaults', () => {
  const m = parseManifest(input({ limits: { maxRecordBytes: 1000 }, rewardSplit: { contributorsBps: 6500, treasuryBps: 0 } }))
  assert.equal(m.limits, { maxRecordBytes: 1000, maxRecordsPerContribution: 20_000_000, maxContributionBytes: 4294967296 })
  assert.equal(m.rewardSplit, { contributorsBps: 6500, validatorsBps: 2000, modelOwnerBps: 1500, treasuryBps: 0 })
})

test('parsing a parsed manifest changes nothing', () => {
  const m = parseManifest(input({ textMode: 'paragraph', shardSize: 4096, limits: { maxRecordBytes: 512 } }))
  assert.equal(parseManifest(JSON.parse(JSON.stringify(m))), m)
})

// -- ids ------------------------------------------------------------------------------

test('the datanet id is the same with defaults omitted or spelt out', async () => {
  const a = await encodeManifest(parseManifest(input()))
  const b = await encodeManifest(parseManifest(spelt()))
  assert.is(a.id, b.id)
  assert.equal(a.bytes, b.bytes)
  assert.is(a.digest, b.digest)
  // Key order of the input does not matter either.
  const reordered = Object.fromEntries(Object.entries(spelt()).reverse())
  assert.is((await encodeManifest(parseManifest(reordered))).id, a.id)
})

test('the datanet id changes when any field changes', async () => {
  const base = (await encodeManifest(parseManifest(input()))).id
  const variants: Array<[string, Record<string, unknown>]> = [
    ['nonce', input({ nonce: 'x' })],
    ['a stake', input({ validators: [{ address: V1, stake: '101' }, { address: V2, stake: '50' }] })],
    ['an address', input({ validators: [{ address: V1, stake: '100' }, { address: V3, stake: '50' }] })],
    ['a validator more', input({ validators: [{ address: V1, stake: '100' }, { address: V2, stake: '50' }, { address: V3, stake: '1' }] })],
    ['name', input({ name: 'test datanet 2' })],
    ['description', input({ description: 'x' })],
    ['license', input({ license: 'MIT' })],
    ['recordSchema', input({ recordSchema: { type: 'object' } })],
    ['textMode', input({ textMode: 'paragraph' })],
    ['shardSize', input({ shardSize: 1048575 })],
    ['limits', input({ limits: { maxRecordBytes: 1000 } })],
    ['consensus', input({ consensus: { proposeTimeoutMs: 3001 } })],
    ['anchorInterval', input({ anchorInterval: 2 })],
    ['attribution', input({ attribution: { recordCapBps: 2501 } })],
    ['rewardSplit', input({ rewardSplit: { contributorsBps: 5999, treasuryBps: 501 } })]
  ]
  const ids = new Set([base])
  for (const [what, value] of variants) {
    const id = (await encodeManifest(parseManifest(value))).id
    assert.is.not(id, base, what)
    ids.add(id)
  }
  assert.is(ids.size, variants.length + 1, 'every variant has its own id')
})

test('the digest is 0x + 64 hex, the sha2-256 of the manifest CID, and equals datanetDigest(id)', async () => {
  const e = await encodeManifest(parseManifest(input()))
  assert.match(e.digest, /^0x[0-9a-f]{64}$/)
  assert.is(datanetDigest(e.id), e.digest)
  const cid = CID.parse(e.id)
  assert.is(cid.version, 1)
  assert.is(cid.code, 0x71, 'dag-cbor')
  assert.is(cid.multihash.code, 0x12, 'sha2-256')
  assert.ok(cid.equals(e.cid))
  assert.is(e.id, e.cid.toString())
  assert.equal(e.manifest, parseManifest(input()))
  const other = await encodeManifest(parseManifest(input({ nonce: '1' })))
  assert.is.not(datanetDigest(other.id), e.digest)
})

test('datanetDigest throws for something that is not a CID', () => {
  assert.throws(() => datanetDigest('not a cid'))
})

// -- errors ---------------------------------------------------------------------------

test('an unknown key is refused, at the root and nested', () => {
  failsAt(input({ bogus: 1 }), '(root)', /bogus/)
  failsAt(input({ limits: { maxRecordBytez: 1 } }), 'limits', /maxRecordBytez/)
  failsAt(input({ validators: [{ address: V1, stake: '1', weight: 2 }] }), 'validators.0', /weight/)
})

test('an empty name, a missing license, a non-object input are refused', () => {
  failsAt(input({ name: '' }), 'name')
  const { license: _license, ...noLicense } = input()
  failsAt(noLicense, 'license')
  manifestError(null)
  manifestError('manifest')
  manifestError([])
})

test('no validators is refused', () => {
  failsAt(input({ validators: [] }), 'validators')
  const { validators: _v, ...none } = input()
  failsAt(none, 'validators')
})

test('a duplicate validator is refused, even spelt in another case', () => {
  failsAt(input({ validators: [{ address: V1, stake: '1' }, { address: V1, stake: '2' }] }), 'validators.1.address', /duplicate/)
  const upper = '0x' + V1.slice(2).toUpperCase()
  failsAt(input({ validators: [{ address: V1, stake: '1' }, { address: upper, stake: '2' }] }), 'validators.1.address', /duplicate/)
  failsAt(input({ validators: [{ address: V2, stake: '1' }, { address: getAddress(V1), stake: '1' }, { address: V1, stake: '2' }] }), 'validators.2.address', /duplicate/)
})

test('a bad stake is refused', () => {
  for (const stake of ['0', '-1', '1.5', '01', '', ' 1', '1e3', 5, 5n, null]) {
    failsAt(input({ validators: [{ address: V1, stake }] }), 'validators.0.stake')
  }
  // up to 78 digits is fine
  assert.is(parseManifest(input({ validators: [{ address: V1, stake: '9'.repeat(78) }] })).validators[0]?.stake, '9'.repeat(78))
  failsAt(input({ validators: [{ address: V1, stake: '1' + '0'.repeat(78) }] }), 'validators.0.stake')
})

test('a malformed address is refused', () => {
  for (const address of ['0x1234', V1.slice(2), V1 + '00', '0x' + 'zz'.repeat(20), 42]) {
    failsAt(input({ validators: [{ address, stake: '1' }] }), 'validators.0.address')
  }
})

test('a mixed-case address with a wrong checksum is a MANIFEST_ERROR_INVALID naming its path', () => {
  // getAddress(V) checksums; flipping the case of one letter breaks the checksum.
  const good = getAddress(V1)
  const i = good.slice(2).search(/[a-f]/) + 2
  const bad = good.slice(0, i) + (good[i] as string).toUpperCase() + good.slice(i + 1)
  assert.is.not(bad, good)
  failsAt(input({ validators: [{ address: bad, stake: '1' }] }), 'validators.0.address')
})

test('a reward split that does not add up to 10000 is refused', () => {
  failsAt(input({ rewardSplit: { treasuryBps: 600 } }), 'rewardSplit', /10000/)
  failsAt(input({ rewardSplit: { contributorsBps: 0, validatorsBps: 0, modelOwnerBps: 0, treasuryBps: 0 } }), 'rewardSplit')
  failsAt(input({ rewardSplit: { contributorsBps: 10001, validatorsBps: 0, modelOwnerBps: 0, treasuryBps: -1 } }), 'rewardSplit.contributorsBps')
  assert.ok(parseManifest(input({ rewardSplit: { contributorsBps: 10000, validatorsBps: 0, modelOwnerBps: 0, treasuryBps: 0 } })))
})

test('maxRecordBytes over shardSize is refused; equal is fine', () => {
  failsAt(input({ shardSize: 1024, limits: { maxRecordBytes: 1025 } }), 'limits.maxRecordBytes', /1024/)
  failsAt(input({ shardSize: 2048 }), 'limits.maxRecordBytes', /2048/)
  assert.is(parseManifest(input({ shardSize: 1024, limits: { maxRecordBytes: 1024 } })).limits.maxRecordBytes, 1024)
})

test('other out-of-range parameters name their path', () => {
  failsAt(input({ shardSize: 1023, limits: { maxRecordBytes: 16 } }), 'shardSize')
  failsAt(input({ shardSize: 1024.5, limits: { maxRecordBytes: 16 } }), 'shardSize')
  failsAt(input({ textMode: 'word' }), 'textMode')
  failsAt(input({ version: 2 }), 'version')
  failsAt(input({ attribution: { minSpanTokens: 300 } }), 'attribution.minSpanTokens')
  failsAt(input({ recordSchema: 'schema' }), 'recordSchema')
})

test('several problems are all reported', () => {
  const e = manifestError(input({ name: '', rewardSplit: { treasuryBps: 1 } }))
  assert.ok(e.message.includes('name: '), e.message)
  assert.ok(e.message.includes('rewardSplit: '), e.message)
})

// -- validators -----------------------------------------------------------------------

test('addresses come out checksummed', () => {
  const m = parseManifest(input({ validators: [{ address: V1, stake: '1' }, { address: '0x' + V2.slice(2).toUpperCase(), stake: '2' }] }))
  assert.is(m.validators[0]?.address, getAddress(V1))
  assert.is(m.validators[1]?.address, getAddress(V2))
  assert.is.not(m.validators[0]?.address, V1)
})

test('genesisValidatorSet sorts by address and totals the stake as a bigint', () => {
  const m: Manifest = parseManifest(input({
    validators: [{ address: V1, stake: '100' }, { address: V3, stake: '1' + '0'.repeat(30) }, { address: V2, stake: '50' }]
  }))
  const set = genesisValidatorSet(m)
  assert.equal(set.validators.map(v => v.address), [getAddress(V2), getAddress(V3), getAddress(V1)])
  assert.equal(set.validators.map(v => v.stake), [50n, 10n ** 30n, 100n])
  assert.is(typeof set.total, 'bigint')
  assert.is(set.total, 10n ** 30n + 150n)
  // input order does not matter
  const m2 = parseManifest(input({
    validators: [{ address: V2, stake: '50' }, { address: V1, stake: '100' }, { address: V3, stake: '1' + '0'.repeat(30) }]
  }))
  assert.equal(genesisValidatorSet(m2), set)
})

test('stakeOf is case-insensitive and undefined for a stranger', () => {
  const set = genesisValidatorSet(parseManifest(input()))
  assert.is(stakeOf(set, V1), 100n)
  assert.is(stakeOf(set, getAddress(V1)), 100n)
  assert.is(stakeOf(set, '0x' + V1.slice(2).toUpperCase()), 100n)
  assert.is(stakeOf(set, V2), 50n)
  assert.is(stakeOf(set, V3), undefined)
})

// -- record schema --------------------------------------------------------------------

test('compileRecordSchema: undefined for a valid record, one line naming the instance path otherwise', () => {
  const validate = compileRecordSchema({
    type: 'object',
    required: ['text'],
    additionalProperties: false,
    properties: { text: { type: 'string', minLength: 1 }, meta: { type: 'object', properties: { n: { type: 'integer' } } }, at: { type: 'string', format: 'date-time' } }
  })
  assert.is(validate({ text: 'hello' }), undefined)
  assert.is(validate({ text: 'hello', meta: { n: 3 }, at: '2024-01-01T00:00:00Z' }), undefined)
  const cases: Array<[unknown, RegExp]> = [
    [{ text: 5 }, /^\/text .*string/],
    [{ text: '' }, /^\/text /],
    [{ text: 'x', meta: { n: 'three' } }, /^\/meta\/n .*integer/],
    [{ text: 'x', at: 'yesterday' }, /^\/at .*date-time/],
    [{}, /^\(record\) .*text/],
    [{ text: 'x', extra: 1 }, /^\(record\) .*\(extra\)$/],
    ['a string', /^\(record\) .*object/]
  ]
  for (const [record, pattern] of cases) {
    const message = validate(record)
    assert.type(message, 'string', JSON.stringify(record))
    assert.match(message as string, pattern)
    assert.not.match(message as string, /\n/)
  }
})

test('compileRecordSchema caches: the same function for the same schema', () => {
  const schema = { type: 'object', required: ['caching'] }
  const a = compileRecordSchema(schema)
  assert.is(compileRecordSchema(schema), a)
  assert.is(compileRecordSchema(JSON.parse(JSON.stringify(schema))), a)
  assert.is.not(compileRecordSchema({ type: 'object', required: ['other'] }), a)
})

test('compileRecordSchema throws MANIFEST_ERROR_INVALID for an invalid schema', () => {
  for (const schema of [{ type: 'nope' }, { type: 'object', required: 'text' }, { $ref: '#/$defs/missing' }]) {
    try {
      compileRecordSchema(schema)
      assert.unreachable(`expected ${JSON.stringify(schema)} to be refused`)
    } catch (err) {
      assert.instance(err, DatanetError)
      assert.is((err as DatanetError).code, 'MANIFEST_ERROR_INVALID')
      assert.is((err as DatanetError).kind, 'usage')
      assert.match((err as DatanetError).message, /recordSchema/)
    }
  }
})

test('two record schemas with the same $id (or one schema with its keys reordered) both compile', () => {
  const id = 'https://example.com/datanet-test/record.schema.json'
  const a = compileRecordSchema({ $id: id, type: 'object', required: ['a'] })
  assert.is(a({ a: 1 }), undefined)
  // The same schema as decoded from dag-cbor (sorted keys): equal in meaning, different in JSON.stringify.
  let reordered: ReturnType<typeof compileRecordSchema> | undefined
  assert.not.throws(() => { reordered = compileRecordSchema({ required: ['a'], type: 'object', $id: id }) }, 'same schema, other key order')
  assert.is(reordered?.({ a: 1 }), undefined)
  // Another datanet's schema that happens to reuse the $id.
  let other: ReturnType<typeof compileRecordSchema> | undefined
  assert.not.throws(() => { other = compileRecordSchema({ $id: id, type: 'object', required: ['b'] }) }, 'other schema, same $id')
  assert.type(other?.({ a: 1 }), 'string')
  assert.is(other?.({ b: 1 }), undefined)
})

test.run()
