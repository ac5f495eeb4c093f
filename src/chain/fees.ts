/**
 * EIP-1559 fees for a transaction and for its replacements: pure (no provider, no clock),
 * so the schedule is unit-tested and the send loop (src/chain/transactions.ts) only asks.
 */

/** An EIP-1559 transaction's fees, in wei. */
export interface Fees {
  maxFeePerGas: bigint
  maxPriorityFeePerGas: bigint
}

/**
 * A replacement must raise both fees by this factor (9/8, +12.5%). geth's pool asks +10%
 * (`txpool.pricebump`); other clients ask more, and 12.5% is also one block's largest base
 * fee rise, so a replacement keeps pace with a base fee climbing every block.
 */
export const BUMP_NUMERATOR = 9n
export const BUMP_DENOMINATOR = 8n

const ceilDiv = (a: bigint, b: bigint): bigint => (a + b - 1n) / b

/** The least fees a pool takes as a replacement of `prev`: both raised by 12.5%, rounded up. */
export function minReplacement (prev: Fees): Fees {
  return {
    maxFeePerGas: ceilDiv(prev.maxFeePerGas * BUMP_NUMERATOR, BUMP_DENOMINATOR),
    maxPriorityFeePerGas: ceilDiv(prev.maxPriorityFeePerGas * BUMP_NUMERATOR, BUMP_DENOMINATOR)
  }
}

/**
 * What the market asks now: the tip the node suggests and twice the latest base fee on top
 * (room for six full blocks of base fee rises), as ethers' getFeeData does. A chain without
 * a base fee (legacy) pays its gas price in both.
 */
export function marketFees (baseFeePerGas: bigint | null, priorityFee: bigint, gasPrice: bigint): Fees {
  if (baseFeePerGas === null) return { maxFeePerGas: gasPrice, maxPriorityFeePerGas: gasPrice }
  return { maxFeePerGas: 2n * baseFeePerGas + priorityFee, maxPriorityFeePerGas: priorityFee }
}

/** The first send's fees: the market's, capped (the tip never above the fee cap). */
export function firstFees (market: Fees, cap: bigint): Fees {
  const maxFeePerGas = market.maxFeePerGas < cap ? market.maxFeePerGas : cap
  const tip = market.maxPriorityFeePerGas < maxFeePerGas ? market.maxPriorityFeePerGas : maxFeePerGas
  return { maxFeePerGas, maxPriorityFeePerGas: tip }
}

/**
 * The fees of the next replacement of a send with `prev`: at least +12.5% on both, and the
 * market's when that is more (after a base fee jump one replacement catches up rather than
 * climbing 12.5% a step), capped by `cap`. Undefined when even the least replacement would
 * pass the cap: the send waits at the fees it has.
 */
export function replacementFees (prev: Fees, market: Fees, cap: bigint): Fees | undefined {
  const least = minReplacement(prev)
  if (least.maxFeePerGas > cap || least.maxPriorityFeePerGas > cap) return undefined
  const want = market.maxFeePerGas > least.maxFeePerGas ? market.maxFeePerGas : least.maxFeePerGas
  const maxFeePerGas = want < cap ? want : cap
  const wantTip = market.maxPriorityFeePerGas > least.maxPriorityFeePerGas ? market.maxPriorityFeePerGas : least.maxPriorityFeePerGas
  const tip = wantTip < maxFeePerGas ? wantTip : maxFeePerGas
  if (tip < least.maxPriorityFeePerGas) return undefined
  return { maxFeePerGas, maxPriorityFeePerGas: tip }
}
