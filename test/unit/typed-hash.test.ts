/**
 * The compiled EIP-712 digests (src/codec/typed-hash.ts) against ethers'
 * TypedDataEncoder.hash, the reference, for every type set the node signs: seeded random
 * values at the edges of each field's range, and malformed ones (out of range, wrong
 * types, bad checksums, missing fields), where both must give the same digest or both
 * throw.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { TypedDataEncoder, Wallet, hexlify, type TypedDataDomain, type TypedDataField } from 'ethers'
import { typedHasher } from '../../src/codec/typed-hash.ts'
import { VOTE_TYPES, PROPOSAL_TYPES } from '../../src/consensus/version.ts'
import { VERDICT_TYPES } from '../../src/contribution/verdict.ts'
import { CONTRIBUTION_TYPES } from '../../src/contribution/contribution.ts'
import { MODEL_TYPES } from '../../src/inference/model-record.ts'
import { INFERENCE_TYPES } from '../../src/inference/event.ts'
import { ANNOUNCEMENT_TYPES } from '../../src/network/announce.ts'
import { datanetDomain } from '../../src/codec/eip712.ts'

type Types = Record<string, TypedDataField[]>

/** xorshift: the same cases every run. */
function rng (seed: number): () => number {
  let x = seed >>> 0 || 1
  return () => {
    x ^= x << 13; x >>>= 0
    x ^= x >>> 17
    x ^= x << 5; x >>>= 0
    return x / 2 ** 32
  }
}

const ADDRESS = new Wallet('0x' + '42'.repeat(32)).address

function valueOf (type: string, types: Types, r: () => number, malformed: boolean): unknown {
  const pick = <T>(xs: T[]): T => xs[Math.floor(r() * xs.length)] as T
  const bytes = (n: number): string => hexlify(Uint8Array.from({ length: n }, () => Math.floor(r() * 256)))
  const m = /^(u?)int(\d+)$/.exec(type)
  if (m !== null) {
    const bits = BigInt(m[2] as string)
    const signed = m[1] === ''
    const max = signed ? (1n << (bits - 1n)) - 1n : (1n << bits) - 1n
    const min = signed ? -(1n << (bits - 1n)) : 0n
    const good = [0, 1, Math.floor(r() * 2 ** 31), max, min, max > BigInt(Number.MAX_SAFE_INTEGER) ? BigInt(Number.MAX_SAFE_INTEGER) : max]
    const n = pick(good)
    const asIs = typeof n === 'bigint' && n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? pick([n, Number(n), n.toString()]) : pick([n, n.toString()])
    if (!malformed) return asIs
    return pick([max + 1n, min - 1n, '0x10', '007', '', 1.5, null, undefined, true, 'abc', -0, Number.MAX_SAFE_INTEGER + 2])
  }
  if (type === 'bytes32') return malformed ? pick([bytes(31), bytes(33), bytes(32).toUpperCase(), bytes(32).slice(2), 42, null]) : pick([bytes(32), bytes(32).replace(/[a-f]/g, c => c.toUpperCase()).replace('0X', '0x')])
  if (type === 'address') {
    const lower = ADDRESS.toLowerCase()
    return malformed ? pick([ADDRESS.slice(0, -1), lower.replace('a', 'A'), '0x' + ADDRESS.slice(2).toUpperCase(), lower.slice(2), 7, null]) : pick([ADDRESS, lower, hexlify(Uint8Array.from({ length: 20 }, () => Math.floor(r() * 256)))])
  }
  if (type === 'bool') return malformed ? pick([1, 0, 'true', null]) : r() < 0.5
  if (type === 'string') return malformed ? pick([1, null, ['a']]) : pick(['', 'plain', 'ünïcødé ✓ 🙂', 'a'.repeat(200)])
  if (type === 'string[]') return malformed ? pick([['a', 1], 'a', null]) : Array.from({ length: Math.floor(r() * 4) }, (_, i) => pick(['x', '', `reason ${i}`, '✓']))
  const fields = types[type]
  if (fields === undefined) throw new Error(`no generator for ${type}`)
  const out: Record<string, unknown> = {}
  // malformed: one field malformed (or missing, or the struct not an object)
  const bad = malformed ? Math.floor(r() * (fields.length + 1)) : -1
  if (bad === fields.length) return pick([null, 'struct', 3])
  fields.forEach((f, i) => {
    if (i === bad && r() < 0.2) return
    out[f.name] = valueOf(f.type, types, r, i === bad)
  })
  return out
}

function reference (domain: TypedDataDomain, types: Types, value: unknown): string {
  try { return TypedDataEncoder.hash(domain, types, value as Record<string, unknown>) } catch (err) { return `throws: ${(err as Error).message.split(' (')[0] ?? ''}` }
}

function compiled (hash: ReturnType<typeof typedHasher>, domain: TypedDataDomain, value: unknown): string {
  try { return hash(domain, value as Record<string, unknown>) } catch (err) { return `throws: ${(err as Error).message.split(' (')[0] ?? ''}` }
}

const sets: Array<[string, Types]> = [
  ['Vote', VOTE_TYPES], ['Proposal', PROPOSAL_TYPES], ['Verdict', VERDICT_TYPES],
  ['Contribution', CONTRIBUTION_TYPES], ['Model', MODEL_TYPES], ['Inference', INFERENCE_TYPES], ['Announcement', ANNOUNCEMENT_TYPES]
]

for (const [name, types] of sets) {
  test(`${name}: the compiled digest is ethers' for 600 seeded values, well-formed and malformed, under several domains`, () => {
    const r = rng(name.length * 7919 + 17)
    const hash = typedHasher(types)
    const primary = TypedDataEncoder.from(types).primaryType
    const domains = [
      datanetDomain({ chainId: 31337, registry: ADDRESS, datanet: '0x' + '11'.repeat(32) }),
      datanetDomain({ chainId: 1, registry: null, datanet: null }),
      { name: 'datanet', version: '1', chainId: 31337n, verifyingContract: ADDRESS.toLowerCase(), salt: '0x' + '22'.repeat(32) },
      // two domains whose fields joined naively would read alike
      { name: 'a|b', version: 'c', chainId: 5 },
      { name: 'a', version: 'b|c', chainId: 5 }
    ]
    let same = 0
    let threw = 0
    for (let i = 0; i < 600; i++) {
      const domain = domains[i % domains.length] as TypedDataDomain
      const value = valueOf(primary, types, r, i % 3 === 2)
      const want = reference(domain, types, value)
      assert.is(compiled(hash, domain, value), want, `case ${i}: ${JSON.stringify(value, (_, v: unknown) => typeof v === 'bigint' ? `${v}n` : v)}`)
      if (want.startsWith('throws')) threw++; else same++
    }
    // both kinds were exercised
    assert.ok(same > 300 && threw > 50, `${same} digests, ${threw} refusals`)
  })
}

test.run()
