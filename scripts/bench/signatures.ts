/**
 * Signature checks of known signers (votes, verdicts, announcements come from a few keys
 * over and over): src/codec/signer.ts's recoverSigner with the signer's key known, against
 * ethers' recoverAddress on the same signatures in the same run (the baseline).
 *
 *   bash scripts/run.sh node scripts/bench/signatures.ts [N=2000]
 */
import { randomBytes } from 'node:crypto'
import { Wallet, hexlify, recoverAddress } from 'ethers'
import { forgetSigners, recoverSigner } from '../../src/codec/signer.ts'

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
