/**
 * Signature checks (votes, verdicts, announcements, catch-up certificates):
 * src/codec/signer.ts's recoverSigner (libsecp256k1 in WebAssembly) against ethers'
 * recoverAddress (noble, in JavaScript) on the same signatures in the same run (the
 * baseline); a catch-up range's certificates by verifyAll against a batch check in noble
 * (one multi-scalar multiplication with random weights, what catch-up used before). And the
 * EIP-712 digest each check starts from: src/codec/typed-hash.ts's compiled vote digest
 * against ethers' TypedDataEncoder.hash on the same votes. And signing (votes, verdicts,
 * announcements): the node's signing key (libsecp256k1 in WebAssembly) against ethers'
 * SigningKey on the same digests, the signatures checked equal.
 *
 *   bash scripts/run.sh node scripts/bench/signatures.ts [N=2000]
 */
import { randomBytes } from 'node:crypto'
import { Signature, TypedDataEncoder, Wallet, hexlify, recoverAddress } from 'ethers'
import { secp256k1 } from '@noble/curves/secp256k1.js'
import { pippenger } from '@noble/curves/abstract/curve.js'
import { forgetSigners, recoverSigner, signingKey, verifyAll } from '../../src/codec/signer.ts'
import { datanetDomain } from '../../src/codec/eip712.ts'
import { VOTE_TYPES, voteDigest, type VersionHeader } from '../../src/consensus/version.ts'

const n = Number(process.argv[2] ?? 2000)
const wallets = Array.from({ length: 4 }, () => Wallet.createRandom())
const items = Array.from({ length: n }, (_, i) => {
  const w = wallets[i % wallets.length] as (typeof wallets)[number]
  const digest = hexlify(randomBytes(32))
  return { digest, sig: w.signingKey.sign(digest).serialized, address: w.address }
})
// each signer seen once
for (const w of wallets) { const d = hexlify(randomBytes(32)); recoverSigner(d, w.signingKey.sign(d).serialized) }

function rate (f: (x: typeof items[number]) => string): number {
  const t0 = performance.now()
  for (const x of items) if (f(x) !== x.address) throw new Error('wrong signer')
  return n / ((performance.now() - t0) / 1000)
}
const base = rate(x => recoverAddress(x.digest, x.sig))
const known = rate(x => recoverSigner(x.digest, x.sig))
const again = rate(x => recoverSigner(x.digest, x.sig))
forgetSigners()
const cold = rate(x => recoverSigner(x.digest, x.sig))
console.log(`baseline  ethers recoverAddress:                 ${base.toFixed(0).padStart(8)} signatures/s`)
console.log(`recoverSigner, nothing known:                    ${cold.toFixed(0).padStart(8)} signatures/s  ratio ${(cold / base).toFixed(2)}`)
console.log(`recoverSigner, signer's address known:           ${known.toFixed(0).padStart(8)} signatures/s  ratio ${(known / base).toFixed(2)}`)
console.log(`recoverSigner, the same signature again:         ${again.toFixed(0).padStart(8)} signatures/s  ratio ${(again / base).toFixed(2)}`)

// signing: the same digests signed by ethers' SigningKey and by the node's (checked equal)
const key = wallets[0] as (typeof wallets)[number]
const fast = signingKey(key.privateKey)
function signs (f: (digest: string) => string): { rate: number, all: string[] } {
  const t0 = performance.now()
  const all = items.map(x => f(x.digest))
  return { rate: n / ((performance.now() - t0) / 1000), all }
}
const ethersSigns = signs(d => key.signingKey.sign(d).serialized)
const wasmSigns = signs(d => fast.sign(d).serialized)
if (wasmSigns.all.some((s, i) => s !== ethersSigns.all[i])) throw new Error('a signature differs from ethers\'')
console.log(`baseline  ethers SigningKey.sign:                ${ethersSigns.rate.toFixed(0).padStart(8)} signatures/s`)
console.log(`signingKey(...).sign (WebAssembly):              ${wasmSigns.rate.toFixed(0).padStart(8)} signatures/s  ratio ${(wasmSigns.rate / ethersSigns.rate).toFixed(2)}`)

// digests: the same votes hashed by ethers and by the compiled hasher (checked equal)
const domain = datanetDomain({ chainId: 31337, registry: Wallet.createRandom().address, datanet: hexlify(randomBytes(32)) })
const headers: VersionHeader[] = Array.from({ length: n }, (_, i) => ({
  height: i + 1, parent: hexlify(randomBytes(32)), datasetRoot: hexlify(randomBytes(32)), recordCount: i * 64,
  attributionRoot: hexlify(randomBytes(32)), totalAttributed: (BigInt(i) * 10n ** 18n).toString(), validatorSetHash: hexlify(randomBytes(32)), version: hexlify(randomBytes(32))
}))
function digests (f: (h: VersionHeader, round: number) => string): { rate: number, all: string[] } {
  const t0 = performance.now()
  const all = headers.map((h, i) => f(h, i % 3))
  return { rate: n / ((performance.now() - t0) / 1000), all }
}
const ethersDigests = digests((h, round) => TypedDataEncoder.hash(domain, VOTE_TYPES, { voteType: 2, round, header: h }))
const compiled = digests((h, round) => voteDigest(domain, 'precommit', round, h))
if (compiled.all.some((d, i) => d !== ethersDigests.all[i])) throw new Error('the compiled vote digest differs from ethers\'')
console.log(`baseline  ethers TypedDataEncoder.hash (votes):  ${ethersDigests.rate.toFixed(0).padStart(8)} digests/s`)
console.log(`compiled vote digest (src/codec/typed-hash.ts):  ${compiled.rate.toFixed(0).padStart(8)} digests/s  ratio ${(compiled.rate / ethersDigests.rate).toFixed(2)}`)

// batches of a catch-up range (32 versions × 3 precommits of 4 known keys): verifyAll
// against a batch check as one noble pippenger over every point (catch-up's check in
// JavaScript before 2026-12-07 was this with 128-bit weights, ~1.6× faster), on the same
// signatures, both checked to accept them
const batchSize = 96
// fresh signatures (none in the memo of signatures seen) by the four signers, whose keys are known
const signed = Array.from({ length: n }, (_, i) => {
  const w = wallets[i % wallets.length] as (typeof wallets)[number]
  const digest = hexlify(randomBytes(32))
  return { digest, signature: w.signingKey.sign(digest).serialized, signer: w.address }
})
const z = (): bigint => BigInt(hexlify(randomBytes(16)))
// the signers' keys, known to the batch
const keyPoints = new Map(wallets.map(w => [w.address.toLowerCase(), secp256k1.Point.fromHex(w.signingKey.publicKey.slice(2))]))
function referenceBatch (batch: typeof signed): boolean {
  const { Fn } = secp256k1.Point
  const points = []
  const scalars = []
  let g = 0n
  const perKey = new Map<string, { key: InstanceType<typeof secp256k1.Point>, scalar: bigint }>()
  for (const item of batch) {
    const sig = Signature.from(item.signature)
    const e = Fn.create(BigInt(item.digest))
    const r = BigInt(sig.r)
    const w = Fn.inv(BigInt(sig.s))
    const weight = z() | 1n
    points.push(secp256k1.Point.fromHex((sig.yParity === 1 ? '03' : '02') + sig.r.slice(2)))
    scalars.push(weight)
    g = Fn.add(g, Fn.mul(weight, Fn.mul(e, w)))
    const id = item.signer.toLowerCase()
    const k = perKey.get(id) ?? { key: keyPoints.get(id) as InstanceType<typeof secp256k1.Point>, scalar: 0n }
    k.scalar = Fn.add(k.scalar, Fn.mul(weight, Fn.mul(r, w)))
    perKey.set(id, k)
  }
  points.push(secp256k1.Point.BASE)
  scalars.push(Fn.neg(g))
  for (const { key, scalar } of perKey.values()) { points.push(key); scalars.push(Fn.neg(scalar)) }
  return pippenger(secp256k1.Point, points, scalars).is0()
}
function batchRate (check: (b: typeof signed) => boolean): number {
  const t0 = performance.now()
  for (let i = 0; i < signed.length; i += batchSize) if (!check(signed.slice(i, i + batchSize))) throw new Error('a good batch refused')
  return signed.length / ((performance.now() - t0) / 1000)
}
// alternating, the second of each timed (the first warms the curve code both use)
batchRate(referenceBatch)
batchRate(verifyAll)
const refRate = batchRate(referenceBatch)
forgetSigners()
const ours = batchRate(verifyAll)
console.log(`baseline  one noble pippenger, full-size scalars: ${refRate.toFixed(0).padStart(7)} signatures/s (batches of ${batchSize})`)
console.log(`verifyAll (each recovered in WebAssembly):       ${ours.toFixed(0).padStart(8)} signatures/s  ratio ${(ours / refRate).toFixed(2)}`)
