/**
 * The multi-scalar multiplication behind batch signature checks (src/codec/signer.ts
 * shortMsm): for scalars below 2^bits it equals noble's pippenger (the reference) and the
 * sum of single multiplications, for any count and window; a scalar out of range is refused.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createHash } from 'node:crypto'
import { secp256k1 } from '@noble/curves/secp256k1.js'
import { pippenger } from '@noble/curves/abstract/curve.js'
import { shortMsm } from '../../src/codec/signer.ts'

const Point = secp256k1.Point

/** Deterministic bigints from a seed (a failure is reproducible). */
function seeded (seed: string): (bits: number) => bigint {
  let counter = 0
  return bits => {
    const h = createHash('sha512').update(`${seed}/${counter++}`).digest('hex')
    return BigInt('0x' + h) & ((1n << BigInt(bits)) - 1n)
  }
}

test('equals noble\'s pippenger and the sum of single multiplications, 0 to 300 points, edge scalars included', () => {
  const next = seeded('short-msm')
  for (const n of [0, 1, 2, 3, 7, 40, 129, 300]) {
    const points = Array.from({ length: n }, () => Point.BASE.multiply(next(250) + 1n))
    const scalars = Array.from({ length: n }, (_, i) => i === 0 ? 0n : i === 1 ? (1n << 128n) - 1n : i === 2 ? 1n : next(128))
    const ours = shortMsm(points, scalars, 128)
    const reference = n === 0 ? Point.ZERO : pippenger(Point, points, scalars)
    assert.ok(ours.equals(reference), `n = ${n}`)
    if (n <= 7) {
      let naive = Point.ZERO
      for (let i = 0; i < n; i++) naive = naive.add((points[i] as typeof Point.BASE).multiplyUnsafe(scalars[i] as bigint))
      assert.ok(ours.equals(naive), `n = ${n}, naive`)
    }
  }
})

test('other widths: 1, 64 and 256-bit scalars (full size below the group order)', () => {
  const next = seeded('short-msm-widths')
  for (const bits of [1, 64, 255]) {
    const points = Array.from({ length: 50 }, () => Point.BASE.multiply(next(250) + 1n))
    const scalars = points.map(() => next(bits))
    assert.ok(shortMsm(points, scalars, bits).equals(pippenger(Point, points, scalars)), `${bits} bits`)
  }
})

test('a scalar at or above 2^bits, or negative, is refused', () => {
  const P = Point.BASE
  assert.throws(() => shortMsm([P], [1n << 128n], 128), /not below 2\^128/)
  assert.throws(() => shortMsm([P], [-1n], 128), /not below/)
})

test.run()
