/**
 * Checking a range of final versions served for catch-up (DESIGN §4 flow 8) before any of
 * it is used: the heights follow each other, each version links to the one before by its
 * CID, each names the set of its own height, and each carries a certificate of that set
 * (certificate.ts) — every certificate's signatures checked together, off the main thread.
 *
 * Why all of them, when the last certificate already vouches for the whole range through
 * the parent links: the certificates are stored and served on, and the chain service
 * submits them to the contract, so a node keeps the invariant that every certificate it
 * stores was checked (a peer could pair authentic versions with junk certificates).
 *
 * What a checked range buys: each version is vouched for by a quorum of its height's set
 * over its header, which names the version's CID. So its content — the verdicts it
 * carries included — is what honest validators checked before they precommitted it: the
 * node applying it need not check the verdict signatures again (the roots, which depend on
 * this node's own state, it still recomputes).
 */
import type { TypedDataDomain } from 'ethers'
import { checksumAddress } from '../codec/address.ts'
import type { ValidatorSet } from '../datanet/manifest.ts'
import { toHex } from '../codec/hash.ts'
import type { SignedDigest } from '../codec/signer.ts'
import { certificateProblem, type CertificateSignature } from './certificate.ts'
import { headerOf, validatorSetHash, voteDigest, type VersionValue } from './version.ts'
import { MAX_VERSION_RECORDS } from './proposal.ts'

/** A served version, decoded, with what came with it (unchecked). */
export interface RangeVersion {
  value: VersionValue
  round: unknown
  certificate: unknown
}

export interface RangeOptions {
  datanet: string
  domain: TypedDataDomain
  /** The set deciding a height; undefined while it is not known here. */
  setFor: (height: number) => ValidatorSet | undefined
  /** True only if every signature is its signer's (src/codec/signer.ts verifyAll; a node checks them on another thread). */
  verify: (signatures: readonly SignedDigest[]) => boolean | Promise<boolean>
}

/**
 * How much of a served range is checked: `usable` versions from its start (the rest wait
 * for their height's set to be known here), or the problem that refuses the whole range
 * (a peer that served it served something no quorum signed).
 */
export type RangeCheck = { usable: number, problem?: undefined } | { problem: string, height: number }

export async function checkRange (range: readonly RangeVersion[], o: RangeOptions): Promise<RangeCheck> {
  const signatures: SignedDigest[] = []
  const setHashes = new Map<ValidatorSet, string>()
  let usable = 0
  for (let i = 0; i < range.length; i++) {
    const { value, round, certificate } = range[i] as RangeVersion
    const v = value.version
    const refuse = (problem: string): RangeCheck => ({ problem, height: v.height })
    if (v.datanet !== o.datanet) return refuse('another datanet\'s version')
    if (i > 0) {
      const before = (range[i - 1] as RangeVersion).value
      if (v.height !== before.version.height + 1) return refuse('heights do not follow each other')
      // the link that makes the range one chain
      if (v.parent?.toString() !== before.cid.toString()) return refuse('does not link to the version before it')
    }
    if (!Number.isSafeInteger(round) || (round as number) < 0 || !Array.isArray(certificate)) return refuse('malformed round or certificate')
    const set = o.setFor(v.height)
    if (set === undefined) break
    let setHash = setHashes.get(set)
    if (setHash === undefined) { setHash = toHex(validatorSetHash(set.validators)); setHashes.set(set, setHash) }
    if (toHex(v.validatorSetHash) !== setHash) return refuse('names another validator set than its height\'s')
    const digest = voteDigest(o.domain, 'precommit', round as number, headerOf(value))
    // membership, stake and distinct signers now; the signatures, all at once below
    const why = certificateProblem(set, digest, certificate as CertificateSignature[], (d, signature, claimed) => {
      let signer: string
      try { signer = checksumAddress(claimed) } catch { return undefined }
      signatures.push({ digest: d, signature, signer })
      return signer
    })
    if (why !== undefined) return refuse(why)
    usable++
  }
  if (!await o.verify(signatures)) return { problem: 'a precommit signature does not verify', height: range[0]?.value.version.height ?? 0 }
  return { usable }
}

/**
 * A checked range cut into pieces that each add at most `max` records (a version alone may
 * add more), to be applied one synced batch each: applying a range holds its records in
 * memory, and a range of two versions of 50,000 records took a catching-up node's 256 MB
 * heap over the edge. `recordsBefore`: the dataset's size before the range's first version.
 */
export function rangePieces<T extends { value: VersionValue }> (items: readonly T[], recordsBefore: number, max = MAX_VERSION_RECORDS): T[][] {
  const pieces: T[][] = []
  let piece: T[] = []
  let added = 0
  let before = recordsBefore
  for (const item of items) {
    const adds = Math.max(0, item.value.version.recordCount - before)
    before = item.value.version.recordCount
    if (piece.length > 0 && added + adds > max) {
      pieces.push(piece)
      piece = []
      added = 0
    }
    piece.push(item)
    added += adds
  }
  if (piece.length > 0) pieces.push(piece)
  return pieces
}
