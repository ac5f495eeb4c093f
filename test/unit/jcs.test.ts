import { test } from 'uvu'
import * as assert from 'uvu/assert'
import canonicalize from 'canonicalize'
import { canonicalJson } from '../../src/codec/jcs.ts'

const reference = canonicalize as unknown as (v: unknown) => string | undefined

/** A seeded generator of JSON values, so a failure replays. */
function rng (seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (s + 0x6D2B79F5) >>> 0
    let t = s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const ALPHABET = ['a', 'b', 'Z', 'é', '€', '😀', '\u0000', '\n', '"', '\\', '\u2028', 'ꙮ', '\uffff', ' ']

function value (r: () => number, depth: number): unknown {
  const k = Math.floor(r() * (depth > 3 ? 4 : 7))
  const str = (): string => Array.from({ length: Math.floor(r() * 6) }, () => ALPHABET[Math.floor(r() * ALPHABET.length)]).join('')
  switch (k) {
    case 0: return null
    case 1: return r() < 0.5
    case 2: return [0, -0, 1, -1, 1.5, 1e21, 1e-7, 123456789.123, Number.MAX_SAFE_INTEGER, 2 ** 60, 5e-324, r() * 1e6 - 5e5][Math.floor(r() * 12)]
    case 3: return str()
    case 4: case 5: return Object.fromEntries(Array.from({ length: Math.floor(r() * 5) }, () => [str(), value(r, depth + 1)]))
    default: return Array.from({ length: Math.floor(r() * 4) }, () => value(r, depth + 1))
  }
}

test('matches the canonicalize package on 5,000 seeded random JSON values', () => {
  const r = rng(42)
  for (let i = 0; i < 5000; i++) {
    const v = value(r, 0)
    assert.is(canonicalJson(v), reference(v), `value #${i}: ${JSON.stringify(v)}`)
  }
})

test('sorts keys by UTF-16 code units and drops whitespace', () => {
  assert.is(canonicalJson({ b: 1, a: [true, null], '€': 'x', '😀': 1, Z: {} }), '{"Z":{},"a":[true,null],"b":1,"€":"x","😀":1}')
  assert.is(canonicalJson(JSON.parse('{ "x" : [ 1 , 2 ] }')), '{"x":[1,2]}')
})

test('values JSON cannot hold give undefined', () => {
  for (const v of [NaN, Infinity, -Infinity, undefined, () => 1, 1n, { a: NaN }, [undefined], { a: () => 1 }]) {
    assert.is(canonicalJson(v), undefined)
  }
})

test.run()
