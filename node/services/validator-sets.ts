/**
 * The one answer to "which validator set decides height h" (issue 11): consensus, verdicts
 * and the API ask here (anchoring asks the chain service, the same source). With a chain the registry's state is the truth (the
 * set an anchor fixed for the heights after it); without one, the manifest's genesis set.
 */
import type { ValidatorSet } from '../../src/datanet/manifest.ts'
import type { FollowedDatanet } from './datanets.ts'

/** What the chain service answers (undefined until the chain fixes the set). */
export interface ChainSets {
  validatorSet: (d: FollowedDatanet, height: number) => ValidatorSet | undefined
  /** The registry's active set now: the set of the heights after its last anchor. */
  latestSet: (d: FollowedDatanet) => ValidatorSet | undefined
}

export class ValidatorSets {
  private readonly chain: ChainSets | undefined
  /** The last final height each datanet's consensus reported. */
  private readonly heads = new Map<string, number>()

  constructor (chain?: ChainSets) {
    this.chain = chain
  }

  /** The set that decides `height`. */
  at (d: FollowedDatanet, height: number): ValidatorSet | undefined {
    return this.chain === undefined ? d.validators : this.chain.validatorSet(d, height)
  }

  /** The height this node decides next. */
  nextHeight (d: FollowedDatanet): number {
    return (this.heads.get(d.id) ?? 0) + 1
  }

  /** The set deciding the next version: verdicts are given, checked and tallied under it. */
  deciding (d: FollowedDatanet): ValidatorSet | undefined {
    return this.at(d, this.nextHeight(d))
  }

  /** What the API shows: the deciding set, or the genesis set until the chain fixes one. */
  shown (d: FollowedDatanet): ValidatorSet {
    return this.deciding(d) ?? d.validators
  }

  /** The newest set known (the chain's active set), for gossip from validators of a set this node has not reached yet. */
  latest (d: FollowedDatanet): ValidatorSet | undefined {
    return this.chain === undefined ? d.validators : this.chain.latestSet(d)
  }

  /** Consensus reports each final height (and the last one loaded at start). */
  finalized (datanet: string, height: number): void {
    if (height > (this.heads.get(datanet) ?? 0)) this.heads.set(datanet, height)
  }
}
