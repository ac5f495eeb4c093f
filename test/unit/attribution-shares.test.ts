import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { AbiCoder, keccak256 } from 'ethers'
import { validateAttributionParams, attributionParamsFromManifest, defaultAttributionParams } from '../../src/attribution/params.ts'
import { computeShares, resultHash } from '../../src/attribution/shares.ts'
import { attributionSpec, specId } from '../../src/attribution/spec.ts'
import { bitLength, idiv, ilog2q8, tokenWeight } from '../../src/attribution/weights.ts'
import { prng, randomInt } from '../fixtures/attribution/prng.ts'

/** ilog2q8 from the binary digits, with BigInt. */
function referenceIlog2q8 (x: bigint): number {
  if (x === 0n) return 0
  const bits = x.toString(2)
  return 256 * (bits.length - 1) + parseInt((bits.slice(1) + '00000000').slice(0, 8), 2)
}

test('ilog2q8: the values of the worked example, and agreement with a BigInt reference up to 2^53', () => {
  assert.is(ilog2q8(1), 0)
  assert.is(ilog2q8(0), 0)
  assert.is(ilog2q8(192), 1920)
  assert.is(ilog2q8(256), 2048)
  assert.is(ilog2q8(512), 2304)
  assert.is(ilog2q8(257), 2049)
  assert.is(ilog2q8(511), 2303)
  const r = prng(3)
  for (let i = 0; i < 20000; i++) {
    const bitsWanted = 1 + randomInt(r, 53)
    let x = 0n
    for (let b = 0; b < bitsWanted; b++) x = (x << 1n) | BigInt(randomInt(r, 2))
    assert.is(ilog2q8(Number(x)), referenceIlog2q8(x), x.toString())
  }
  assert.is(ilog2q8(Number.MAX_SAFE_INTEGER), referenceIlog2q8(BigInt(Number.MAX_SAFE_INTEGER)))
  assert.throws(() => ilog2q8(-1))
  assert.throws(() => ilog2q8(1.5))
  assert.is(bitLength(2 ** 40), 41)
})

test('idiv is exact floor division, and token weights fall with frequency and stop at W_CAP', () => {
  const r = prng(8)
  for (let i = 0; i < 20000; i++) {
    const a = randomInt(r, 2 ** 52)
    const b = 1 + randomInt(r, 2 ** (1 + randomInt(r, 40)))
    assert.is(BigInt(idiv(a, b)), BigInt(a) / BigInt(b), `${a} / ${b}`)
  }
  let previous = Infinity
  for (const count of [0, 1, 10, 100, 1000, 10_000, 99_999]) {
    const w = tokenWeight(count, 100_000, 1_000_000)
    assert.ok(w <= previous)
    previous = w
  }
  assert.is(tokenWeight(0, 2 ** 30, 4096), 4096, 'capped')
  assert.is(tokenWeight(5, 0, 4096), 0, 'empty index')
})

test('money: Σ contributors + basePool = dataPool exactly, no record above the cap, on 3000 random cases', () => {
  const r = prng(11)
  for (let it = 0; it < 3000; it++) {
    const fee = BigInt(randomInt(r, 2 ** 30)) * BigInt(randomInt(r, 2 ** 30)) * BigInt(1 + randomInt(r, 1000))
    const totalWeight = 1 + randomInt(r, 2_000_000)
    const records: Array<{ recordIndex: number, contributor: string, units: number }> = []
    let left = randomInt(r, totalWeight + 1)
    for (let i = 0; i < 1 + randomInt(r, 20) && left > 0; i++) {
      const units = 1 + randomInt(r, left)
      left -= units
      records.push({ recordIndex: i * 3, contributor: '0x' + String(randomInt(r, 5)).repeat(40), units })
    }
    const dataBps = randomInt(r, 10_001)
    const recordCapBps = randomInt(r, 10_001)
    const s = computeShares({ fee, dataBps, recordCapBps, totalWeight, records })
    assert.is(s.dataPool, fee * BigInt(dataBps) / 10_000n)
    const sum = s.contributors.reduce((a, c) => a + c.amount, 0n)
    assert.is(sum, s.paid)
    assert.is(sum + s.basePool, s.dataPool, 'exact')
    assert.ok(s.paid <= s.attributed && s.attributed <= s.dataPool)
    assert.ok(s.basePool >= 0n)
    for (const rec of s.records) assert.ok(rec.amount <= s.recordCap && rec.amount >= 0n)
    for (let i = 1; i < s.contributors.length; i++) assert.ok((s.contributors[i - 1]?.address as string) < (s.contributors[i]?.address as string))
    assert.ok(s.contributors.every(c => c.amount > 0n))
  }
})

test('money: a near-verbatim copy of one record is capped at RECORD_CAP_BPS of the pool; the rest goes to the base pool', () => {
  const s = computeShares({ fee: 10n ** 18n, dataBps: 6000, recordCapBps: 2500, totalWeight: 1000, records: [{ recordIndex: 1, contributor: '0x' + 'a'.repeat(40), units: 990 }] })
  assert.is(s.dataPool, 6n * 10n ** 17n)
  assert.is(s.attributed, 594n * 10n ** 15n)
  assert.is(s.paid, 15n * 10n ** 16n)
  assert.is(s.basePool, 45n * 10n ** 16n)
})

test('money: rounding dust goes to the base pool, and nothing is paid when nothing is covered', () => {
  const c = (x: string): string => '0x' + x.repeat(40)
  const s = computeShares({ fee: 10n, dataBps: 10_000, recordCapBps: 10_000, totalWeight: 3, records: [{ recordIndex: 0, contributor: c('a'), units: 1 }, { recordIndex: 1, contributor: c('b'), units: 1 }] })
  // attributed = 10·2/3 = 6; each 6·1/2 = 3; dust 10 − 6 = 4.
  assert.equal(s.contributors.map(x => x.amount), [3n, 3n])
  assert.is(s.basePool, 4n)
  const none = computeShares({ fee: 10n ** 18n, dataBps: 6000, recordCapBps: 2500, totalWeight: 0, records: [] })
  assert.is(none.paid, 0n)
  assert.is(none.basePool, none.dataPool)
  assert.throws(() => computeShares({ fee: -1n, dataBps: 1, recordCapBps: 1, totalWeight: 1, records: [] }))
})

test('resultHash is keccak256 of abi.encode(eventId, specId, indexHash, sorted (address, amount)[])', () => {
  const e = '0x' + '01'.repeat(32)
  const s = '0x' + '02'.repeat(32)
  const i = '0x' + '03'.repeat(32)
  const shares = [{ address: '0x' + 'a'.repeat(40), amount: 5n }, { address: '0x' + 'b'.repeat(40), amount: 7n }]
  const expected = keccak256(AbiCoder.defaultAbiCoder().encode(['bytes32', 'bytes32', 'bytes32', '(address,uint256)[]'], [e, s, i, [['0x' + 'a'.repeat(40), 5n], ['0x' + 'b'.repeat(40), 7n]]]))
  assert.is(resultHash(e, s, i, shares), expected)
  assert.is.not(resultHash(e, s, i, [shares[0] as typeof shares[0], { ...(shares[1] as typeof shares[0]), amount: 8n }]), expected)
  assert.is.not(resultHash('0x' + '09'.repeat(32), s, i, shares), expected)
  assert.throws(() => resultHash(e, s, i, [...shares].reverse()), /sorted/)
  // Random lists, amounts up to 2^256 − 1, against ethers' AbiCoder.
  const r = prng(17)
  for (let it = 0; it < 100; it++) {
    const addresses = [...new Set(Array.from({ length: randomInt(r, 8) }, () => '0x' + Array.from({ length: 40 }, () => '0123456789abcdef'[randomInt(r, 16)]).join('')))].sort()
    const list = addresses.map((address, j) => ({ address, amount: j === 0 ? (1n << 256n) - 1n : BigInt(randomInt(r, 2 ** 40)) ** BigInt(1 + randomInt(r, 6)) }))
    const reference = keccak256(AbiCoder.defaultAbiCoder().encode(['bytes32', 'bytes32', 'bytes32', '(address,uint256)[]'], [e, s, i, list.map(c => [c.address, c.amount])]))
    assert.is(resultHash(e, s, i, list), reference)
  }
  assert.throws(() => resultHash(e, s, i, [{ address: '0x' + 'a'.repeat(40), amount: 1n << 256n }]), /uint256/)
})

test('parameters: defaults, validation, the manifest mapping, and the spec id changes with each', () => {
  assert.equal(validateAttributionParams(), defaultAttributionParams)
  assert.ok(Object.isFrozen(validateAttributionParams({ minSpan: 8 })))
  const bad: Array<Record<string, unknown>> = [{ minSpan: 0 }, { minSpan: 300 }, { dataBps: 10_001 }, { cScan: 1.5 }, { wCap: -1 }, { bogus: 1 }, { dMax: '16' }]
  for (const input of bad) {
    try {
      validateAttributionParams(input as never)
      assert.unreachable(JSON.stringify(input))
    } catch (err) {
      assert.is((err as { code?: string }).code, 'ATTRIBUTION_ERROR_BAD_PARAMS', JSON.stringify(input))
    }
  }
  assert.equal(attributionParamsFromManifest({ attribution: { minSpanTokens: 10, maxSpanTokens: 128, commonRecordLimit: 8, recordCapBps: 3000 }, rewardSplit: { contributorsBps: 5000 } }),
    { ...defaultAttributionParams, minSpan: 10, maxSpan: 128, dMax: 8, recordCapBps: 3000, dataBps: 5000 })
  const base = specId(validateAttributionParams())
  assert.match(base, /^0x[0-9a-f]{64}$/)
  assert.is(specId(validateAttributionParams()), base, 'deterministic')
  const seen = new Set([base])
  for (const key of Object.keys(defaultAttributionParams) as Array<keyof typeof defaultAttributionParams>) {
    const id = specId(validateAttributionParams({ [key]: defaultAttributionParams[key] + 1 }))
    assert.not.ok(seen.has(id), key)
    seen.add(id)
  }
  const spec = attributionSpec(validateAttributionParams())
  assert.is(spec.name, 'span-sa-v2')
  assert.equal(spec.tokenizer, { pkg: 'gpt-tokenizer', version: '4.0.0', encoding: 'cl100k_base', ranksSha256: '223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7' })
})

test.run()
