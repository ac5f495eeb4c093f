/**
 * Checking a version's certificate: the precommits of one round over its header, from
 * distinct members of the set of its height holding >= 2/3 of the stake (what the
 * contract's commitVersion accepts).
 */
import { stakeOf, type ValidatorSet } from '../datanet/manifest.ts'
import { hasTwoThirds } from './quorum.ts'

export interface CertificateSignature { validator: string, signature: string }

/** Undefined when the certificate holds; otherwise why not. `recover` maps a signature over `digest` to its signer. */
export function certificateProblem (
  set: ValidatorSet, digest: string, certificate: readonly CertificateSignature[], recover: (digest: string, signature: string, claimed: string) => string | undefined
): string | undefined {
  let stake = 0n
  const signers = new Set<string>()
  for (const c of certificate) {
    if (typeof c?.signature !== 'string' || typeof c.validator !== 'string') return 'malformed certificate entry'
    const signer = recover(digest, c.signature, c.validator)
    if (signer === undefined || signer !== c.validator) return 'signature does not recover to its validator'
    const s = stakeOf(set, signer)
    if (s === undefined) return `${signer} is not a validator at this height`
    if (signers.has(signer.toLowerCase())) return `two precommits of ${signer}`
    signers.add(signer.toLowerCase())
    stake += s
  }
  return hasTwoThirds(stake, set.total) ? undefined : 'precommits under 2/3 of the stake'
}
