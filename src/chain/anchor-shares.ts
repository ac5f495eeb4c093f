/**
 * Anchor shares: a validator's BLS signature over the precommit of a final version at an
 * anchor height (src/chain/bls.ts), gossiped so that whoever anchors can send one aggregate
 * signature (DatanetRegistry.commitVersionBls) instead of one ECDSA signature per signer.
 *
 * A share is bound to its validator by an ECDSA signature over (the precommit's digest, the
 * BLS bytes) under the datanet's EIP-712 domain: checking it costs a recovery, not a pairing,
 * and nobody can pass another BLS value off as a validator's. The BLS value itself is checked
 * only in aggregate, when anchoring (a bad one is then found and left out).
 *
 * An honest validator shares only versions final here, with their certificate checked, so a
 * share never helps anchor what is not final: at most one header is final per height unless
 * a third of the stake is faulty. Pure: values in, values out; the pool is bounded.
 */
import type { TypedDataDomain } from 'ethers'
import { typedHasher } from '../codec/typed-hash.ts'

const SHARE_TYPES = {
  AnchorShare: [
    { name: 'precommit', type: 'bytes32' },
    { name: 'bls', type: 'bytes' }
  ]
}
const shareHash = typedHasher(SHARE_TYPES)

/** The digest a share's ECDSA signature signs: the precommit's digest and the 48-byte BLS signature. */
export function shareDigest (domain: TypedDataDomain, precommitDigest: string, bls: string): string {
  return shareHash(domain, { precommit: precommitDigest, bls })
}

/** One share as the pool holds it: checked signer, the round and header id it signs, the BLS signature (0x hex, 48 bytes). */
export interface AnchorShare {
  validator: string
  round: number
  headerId: string
  bls: string
}

/** Heights a datanet's pool keeps shares for at most (anchors land within a few intervals). */
const MAX_HEIGHTS = 16

/**
 * Shares received, per datanet and height: one per validator, round and header (the first
 * kept; a validator that sends another for the same round and header changes nothing).
 * The most recent MAX_HEIGHTS heights a datanet has shares for are kept, and each height
 * holds at most `maxPerHeight` (a few rounds of the set's size).
 */
export class AnchorSharePool {
  private readonly byDatanet = new Map<string, Map<number, Map<string, AnchorShare>>>()
  private readonly maxPerHeight: number

  constructor (maxPerHeight = 1024) {
    this.maxPerHeight = maxPerHeight
  }

  /** Whether the share was new. */
  add (datanet: string, height: number, share: AnchorShare): boolean {
    let heights = this.byDatanet.get(datanet)
    if (heights === undefined) this.byDatanet.set(datanet, heights = new Map())
    let shares = heights.get(height)
    if (shares === undefined) {
      if (heights.size >= MAX_HEIGHTS) {
        const lowest = Math.min(...heights.keys())
        if (height < lowest) return false
        heights.delete(lowest)
      }
      heights.set(height, shares = new Map())
    }
    const key = `${share.validator.toLowerCase()}/${share.round}/${share.headerId}`
    if (shares.has(key) || shares.size >= this.maxPerHeight) return false
    shares.set(key, { ...share, validator: share.validator.toLowerCase() })
    return true
  }

  /** The shares of `height` over (round, headerId), one per validator. */
  of (datanet: string, height: number, round: number, headerId: string): AnchorShare[] {
    const shares = this.byDatanet.get(datanet)?.get(height)
    if (shares === undefined) return []
    return [...shares.values()].filter(s => s.round === round && s.headerId === headerId)
  }

  /** Leaves a share out of `height` (its BLS signature did not verify). */
  drop (datanet: string, height: number, share: AnchorShare): void {
    this.byDatanet.get(datanet)?.get(height)?.delete(`${share.validator}/${share.round}/${share.headerId}`)
  }

  /** Forgets the heights up to `height` (anchored). */
  forget (datanet: string, height: number): void {
    const heights = this.byDatanet.get(datanet)
    if (heights === undefined) return
    for (const h of heights.keys()) if (h <= height) heights.delete(h)
  }
}
