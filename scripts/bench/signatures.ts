/**
 * Signature checks of known signers (votes, verdicts, announcements come from a few keys
 * over and over): src/codec/signer.ts's recoverSigner with the signer's key known, against
 * ethers' recoverAddress on the same signatures in the same run (the baseline). And the
 * EIP-712 digest each check starts from: src/codec/typed-hash.ts's compiled vote digest
 * against ethers' TypedDataEncoder.hash on the same votes.
 *
 *   bash scripts/run.sh node scripts/bench/signatures.ts [N=2000]
 */
import { randomBytes } from 'node:crypto'
import { TypedDataEncoder, Wallet, hexlify, recoverAddress } from 'ethers'
import { forgetSigners, recoverSigner } from '../../src/codec/signer.ts'
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
for (const w of wallets) { const d = hexlify(randomBytes(32)); recoverSigner(d, w.signingKey.sign(d).serialized, w.address) }

function rate (f: (x: typeof items[number]) => string): number {
  const t0 = performance.now()
  for (const x of items) if (f(x) !== x.address) throw new Error('wrong signer')
  return n / ((performance.now() - t0) / 1000)
}
const base = rate(x => recoverAddress(x.digest, x.sig))
const known = rate(x => recoverSigner(x.digest, x.sig, x.address))
const again = rate(x => recoverSigner(x.digest, x.sig, x.address))
forgetSigners()
const cold = rate(x => recoverSigner(x.digest, x.sig))
console.log(`baseline  ethers recoverAddress:                 ${base.toFixed(0).padStart(8)} signatures/s`)
console.log(`recoverSigner, nothing known (no claim):          ${cold.toFixed(0).padStart(8)} signatures/s  ratio ${(cold / base).toFixed(2)}`)
console.log(`recoverSigner, signer's key known:               ${known.toFixed(0).padStart(8)} signatures/s  ratio ${(known / base).toFixed(2)}`)
console.log(`recoverSigner, the same signature again:         ${again.toFixed(0).padStart(8)} signatures/s  ratio ${(again / base).toFixed(2)}`)

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
