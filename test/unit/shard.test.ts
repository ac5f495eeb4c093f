import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createHash } from 'node:crypto'
import { CID } from 'multiformats/cid'
import { canonicalBytes, canonicalJson } from '../../src/codec/jcs.ts'
import { ShardPacker, decodeRecord, shardCid, splitShard } from '../../src/datanet/shard.ts'

const enc = new TextEncoder()
const bytes = (s: string): Uint8Array => enc.encode(s)
const sha = (b: Uint8Array): Uint8Array => new Uint8Array(createHash('sha256').update(b).digest())
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

function throwsCode (fn: () => unknown, code: string, what: string): void {
  try {
    fn()
  } catch (err) {
    assert.instance(err, Error, what)
    assert.is((err as Error).message, code, what)
    return
  }
  assert.unreachable(`${what}: expected ${code}`)
}

/** Records of varied sizes, as canonical bytes. */
function records (n: number): Uint8Array[] {
  return Array.from({ length: n }, (_, i) => canonicalBytes({ text: 'x'.repeat((i * 37) % 200), i, tag: i % 3 === 0 ? 'ü€😀' : 'a' }) as Uint8Array)
}

/** Packs records: every closed shard, then the flushed remainder. */
function pack (recs: Uint8Array[], shardSize: number): Uint8Array[] {
  const packer = new ShardPacker(shardSize)
  const shards: Uint8Array[] = []
  for (const r of recs) {
    const closed = packer.add(r)
    if (closed !== undefined) shards.push(closed)
  }
  const last = packer.flush()
  if (last !== undefined) shards.push(last)
  assert.is(packer.flush(), undefined, 'a second flush is empty')
  return shards
}

// -- canonical JSON -------------------------------------------------------------------

test('canonicalJson sorts keys (recursively) and drops whitespace', () => {
  assert.is(canonicalJson({ b: 1, a: 2 }), '{"a":2,"b":1}')
  assert.is(canonicalJson({ z: { y: [3, { d: 1, c: 2 }], x: null }, a: 'é' }), '{"a":"é","z":{"x":null,"y":[3,{"c":2,"d":1}]}}')
  assert.is(canonicalJson([1, 'two', true, null]), '[1,"two",true,null]')
  assert.is(canonicalJson({ 10: 'a', 9: 'b', B: 1, a: 2 }), '{"10":"a","9":"b","B":1,"a":2}', 'UTF-16 code unit order')
})

test('canonicalJson is stable for equal objects whatever their key order', () => {
  const a = { text: 'hello', meta: { lang: 'en', n: 1.5, tags: ['x', 'y'] }, id: 7 }
  const b = { id: 7, meta: { tags: ['x', 'y'], n: 1.5, lang: 'en' }, text: 'hello' }
  assert.is(canonicalJson(a), canonicalJson(b))
  assert.equal(canonicalBytes(a), canonicalBytes(b))
  assert.is(canonicalJson(JSON.parse(canonicalJson(a) as string)), canonicalJson(a), 'idempotent')
})

test('canonicalJson writes numbers in ECMAScript form', () => {
  assert.is(canonicalJson({ a: 1.0, b: 1e21, c: 0.000001, d: -0, e: 1e-7 }), '{"a":1,"b":1e+21,"c":0.000001,"d":0,"e":1e-7}')
})

test('canonicalJson returns undefined for NaN, Infinity and undefined', () => {
  for (const v of [Number.NaN, Infinity, -Infinity, undefined, { a: Number.NaN }, { a: [1, Infinity] }, 10n]) {
    assert.is(canonicalJson(v), undefined, String(v))
    assert.is(canonicalBytes(v), undefined, String(v))
  }
})

test('canonicalBytes is the UTF-8 of canonicalJson', () => {
  const v = { text: 'ü€😀' }
  assert.equal(canonicalBytes(v), bytes(canonicalJson(v) as string))
})

// -- packing --------------------------------------------------------------------------

test('ShardPacker never exceeds shardSize, keeps record order, and splitShard gives them back', () => {
  const recs = records(300)
  for (const shardSize of [256, 300, 1024, 4096]) {
    const shards = pack(recs, shardSize)
    assert.ok(shards.length > 1, `shardSize ${shardSize}: several shards`)
    for (const s of shards) {
      assert.ok(s.length <= shardSize, `shardSize ${shardSize}: shard of ${s.length}`)
      assert.ok(s.length > 0)
    }
    const back = shards.flatMap(s => splitShard(s))
    assert.is(back.length, recs.length)
    back.forEach((r, i) => {
      assert.is(hex(r.bytes), hex(recs[i] as Uint8Array), `shardSize ${shardSize}: record ${i}`)
      assert.is(hex(r.hash), hex(sha(recs[i] as Uint8Array)), `shardSize ${shardSize}: hash ${i}`)
    })
    const total = shards.reduce((n, s) => n + s.length, 0)
    assert.is(total, recs.reduce((n, r) => n + r.length + 1, 0), 'every byte is a record byte or its newline')
  }
})

test('ShardPacker closes a shard only when the next record would overflow it', () => {
  const r = bytes('{"a":"123456"}') // 14 bytes, 15 with its newline
  const packer = new ShardPacker(30)
  assert.is(packer.add(r), undefined)
  assert.is(packer.add(r), undefined, 'exactly full: 30 bytes')
  const closed = packer.add(r)
  assert.ok(closed !== undefined)
  assert.is(closed?.length, 30)
  assert.is(Buffer.from(closed as Uint8Array).toString(), '{"a":"123456"}\n{"a":"123456"}\n')
  const rest = packer.flush()
  assert.is(Buffer.from(rest as Uint8Array).toString(), '{"a":"123456"}\n')
  assert.is(packer.flush(), undefined)
})

test('ShardPacker flush of an empty packer is undefined; a record that cannot fit throws RangeError', () => {
  const packer = new ShardPacker(16)
  assert.is(packer.flush(), undefined)
  assert.not.throws(() => packer.add(bytes('{"a":"1234567"}'))) // 15 + newline = 16
  assert.throws(() => packer.add(bytes('{"a":"12345678"}')), (e: unknown) => e instanceof RangeError)
})

// -- splitting ------------------------------------------------------------------------

test('splitShard: hashes are sha256 of each line without its newline', () => {
  const shard = bytes('{"a":1}\n{"b":"ü"}\n')
  const recs = splitShard(shard)
  assert.is(recs.length, 2)
  assert.is(Buffer.from(recs[0]?.bytes as Uint8Array).toString(), '{"a":1}')
  assert.is(Buffer.from(recs[1]?.bytes as Uint8Array).toString(), '{"b":"ü"}')
  assert.is(hex(recs[0]?.hash as Uint8Array), hex(sha(bytes('{"a":1}'))))
  assert.is(hex(recs[1]?.hash as Uint8Array), hex(sha(bytes('{"b":"ü"}'))))
})

test('splitShard takes hashes kept from an earlier split of the shard (ShardHashes) when there is one a line, else hashes', () => {
  const shard = bytes('{"a":1}\n{"b":2}\n')
  const kept = splitShard(shard).map(r => r.hash)
  const again = splitShard(shard, kept)
  assert.ok(again.every((r, i) => r.hash === kept[i]), 'the kept hashes themselves, not hashed again')
  const short = splitShard(shard, kept.slice(0, 1))
  assert.is(hex(short[1]?.hash as Uint8Array), hex(sha(bytes('{"b":2}'))), 'a count that does not match: hashed')
  assert.ok(short[0]?.hash !== kept[0])
})

test('splitShard throws for an empty shard, a missing final newline, an empty line', () => {
  throwsCode(() => splitShard(new Uint8Array(0)), 'SHARD_ERROR_MALFORMED', 'empty')
  throwsCode(() => splitShard(bytes('{"a":1}')), 'SHARD_ERROR_MALFORMED', 'no newline')
  throwsCode(() => splitShard(bytes('{"a":1}\n{"b":2}')), 'SHARD_ERROR_MALFORMED', 'no final newline')
  throwsCode(() => splitShard(bytes('\n')), 'SHARD_ERROR_MALFORMED', 'only a newline')
  throwsCode(() => splitShard(bytes('{"a":1}\n\n{"b":2}\n')), 'SHARD_ERROR_MALFORMED', 'empty line inside')
  throwsCode(() => splitShard(bytes('\n{"a":1}\n')), 'SHARD_ERROR_MALFORMED', 'empty first line')
  throwsCode(() => splitShard(bytes('{"a":1}\n\n')), 'SHARD_ERROR_MALFORMED', 'empty last line')
})

// -- decoding records -----------------------------------------------------------------

test('decodeRecord accepts canonical lines', () => {
  assert.equal(decodeRecord(bytes('{"a":2,"b":1}')), { a: 2, b: 1 })
  assert.equal(decodeRecord(bytes('{}')), {})
  assert.equal(decodeRecord(bytes('{"n":[1,2.5,null],"text":"ü€😀"}')), { n: [1, 2.5, null], text: 'ü€😀' })
  for (const r of records(50)) assert.ok(decodeRecord(r))
})

test('decodeRecord throws SHARD_ERROR_NOT_CANONICAL for non-canonical JSON', () => {
  for (const line of ['{"b":1,"a":2}', '{"a": 2}', ' {"a":2}', '{"a":2} ', '{"a":1.0}', '{"a":1E2}', '{"a":"\\u0041"}', '{"a":1,"a":2}', '{"a":{"d":1,"c":2}}']) {
    throwsCode(() => decodeRecord(bytes(line)), 'SHARD_ERROR_NOT_CANONICAL', line)
  }
})

test('decodeRecord throws SHARD_ERROR_MALFORMED for non-objects, bad JSON and invalid UTF-8', () => {
  for (const line of ['[1,2]', '"text"', '42', 'null', 'true', '{"a":', '', 'not json']) {
    throwsCode(() => decodeRecord(bytes(line)), 'SHARD_ERROR_MALFORMED', line)
  }
  throwsCode(() => decodeRecord(Uint8Array.of(0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d)), 'SHARD_ERROR_MALFORMED', 'invalid UTF-8 in a string')
  throwsCode(() => decodeRecord(Uint8Array.of(0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xed, 0xa0, 0x80, 0x22, 0x7d)), 'SHARD_ERROR_MALFORMED', 'UTF-8 encoded surrogate')
})

test('decodeRecord refuses a line with a leading BOM: its bytes (and hash) are not the canonical ones', () => {
  const canonical = bytes('{"text":"a"}')
  const withBom = Uint8Array.of(0xef, 0xbb, 0xbf, ...canonical)
  assert.is.not(hex(sha(withBom)), hex(sha(canonical)))
  let code: string | undefined
  try {
    decodeRecord(withBom)
  } catch (err) {
    code = (err as Error).message
  }
  assert.ok(code === 'SHARD_ERROR_NOT_CANONICAL' || code === 'SHARD_ERROR_MALFORMED', `a BOM-prefixed line was accepted (code ${String(code)})`)
})

// -- CIDs -----------------------------------------------------------------------------

test('shardCid is a raw sha2-256 CIDv1 of the bytes, and stable', () => {
  const shard = bytes('{"a":1}\n{"b":2}\n')
  const cid = shardCid(shard)
  assert.is(cid.version, 1)
  assert.is(cid.code, 0x55)
  assert.is(cid.multihash.code, 0x12)
  assert.is(hex(cid.multihash.digest), hex(sha(shard)))
  assert.is(shardCid(new Uint8Array(shard)).toString(), cid.toString())
  assert.ok(CID.parse(cid.toString()).equals(cid))
  assert.match(cid.toString(), /^bafkrei/)
  assert.is.not(shardCid(bytes('{"a":1}\n')).toString(), cid.toString())
  // A known vector: the raw CID of the empty block.
  assert.is(shardCid(new Uint8Array(0)).toString(), 'bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku')
})

test.run()
