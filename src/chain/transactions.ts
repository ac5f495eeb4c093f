import { DatanetError } from '../errors.ts'
import { firstFees, replacementFees, type Fees } from './fees.ts'

export const TxErrorCode = {
  /** No receipt in time; the sends stay pending and the next send of the client replaces them. */
  TIMEOUT: 'CHAIN_ERROR_TIMEOUT',
  /** The nonce was used by a transaction that is not this call's (an earlier call, or another process with the key). */
  NONCE_TAKEN: 'CHAIN_ERROR_NONCE_TAKEN'
} as const

/** A receipt as the send loop reads it. */
export interface MinedReceipt {
  hash: string
  blockNumber: number
  status: number | null
  gasUsed: bigint
}

/** What the send loop needs from the chain: the registry client's provider and signer, or a fake in tests. */
export interface TxChain {
  now: () => number
  sleep: (ms: number) => Promise<void>
  /** The fees the chain asks now. */
  marketFees: () => Promise<Fees>
  /** The sender's mined transaction count: the lowest nonce not yet in a block. */
  minedNonce: () => Promise<number>
  blockNumber: () => Promise<number>
  receipt: (hash: string) => Promise<MinedReceipt | null>
  /** Signs this call with the nonce and fees and broadcasts it; resolves with the hash, throws the node's error. */
  broadcast: (nonce: number, fees: Fees) => Promise<string>
}

/**
 * One nonce's sends: what the client keeps between calls, so a call that gave up waiting
 * leaves its pending sends to be replaced (same nonce, higher fees) rather than queued behind.
 */
export interface NonceSends {
  nonce: number
  /** The fees of the last send tried (accepted or refused as too low): the next one bumps from them. */
  fees: Fees | undefined
  /** Every hash broadcast with this nonce, with the call it carries (`LandOptions.call`). */
  hashes: Array<{ hash: string, call: string }>
}

export interface LandOptions {
  /** What identifies the call (its target, data and value): a mined send of another call is not this call's. */
  call: string
  /** Time without a receipt after which the send is replaced with higher fees. */
  bumpAfterMs: number
  /** No send pays more than this per gas. */
  maxFeePerGas: bigint
  /** Blocks on top of the receipt's before it counts (a reorg that drops it before then has it resent). */
  confirmations: number
  /** How long to wait for a first receipt before a transient CHAIN_ERROR_TIMEOUT. */
  timeoutMs: number
  pollMs: number
  onSend?: (sent: { hash: string, nonce: number, fees: Fees, replacement: boolean }) => void
}

const errorText = (err: unknown): string => {
  const e = err as { message?: string, info?: { error?: { message?: string } }, error?: { message?: string } }
  return `${e?.message ?? String(err)} ${e?.info?.error?.message ?? ''} ${e?.error?.message ?? ''}`
}

/** The pool already has this very transaction. */
export const isAlreadyKnown = (err: unknown): boolean => /already (known|imported)|known transaction/i.test(errorText(err))
/** The nonce is in a block already: one of ours was mined (or someone else's). */
export const isNonceUsed = (err: unknown): boolean => (err as { code?: string })?.code === 'NONCE_EXPIRED' || /nonce too low|nonce has already been used/i.test(errorText(err))
/** Refused for its fees: under the base fee or the pool's minimum, or not enough above the send it replaces. */
export const isUnderpriced = (err: unknown): boolean => (err as { code?: string })?.code === 'REPLACEMENT_UNDERPRICED' || /underpriced|fee too low|less than (the )?block base fee|fee cap.*(less|lower) than/i.test(errorText(err))

/**
 * Lands one call under `sends.nonce`: sends it (or, when sends of an earlier call are
 * pending under that nonce, replaces them), replaces it with fees raised by at least
 * 12.5% whenever `bumpAfterMs` passes without a receipt, up to `maxFeePerGas`, and returns
 * the receipt of whichever of the call's sends is mined once it has `confirmations` blocks
 * on top. A send refused because the nonce is used or a pending one pays more is not an
 * error: the receipts show which was mined. A receipt that disappears (a reorg) puts the
 * call back to being sent. Mutates `sends` so a caller that gets the timeout can resume.
 */
export async function landTransaction (chain: TxChain, sends: NonceSends, opts: LandOptions): Promise<MinedReceipt> {
  const deadline = chain.now() + opts.timeoutMs
  // sends of an earlier call under this nonce: replace them at once
  let lastSendAt = -Infinity
  let nonceTakenSince: number | undefined
  let wasMined = false
  for (;;) {
    const head = await chain.blockNumber()
    let mined: { receipt: MinedReceipt, ours: boolean } | undefined
    for (const s of sends.hashes) {
      const receipt = await chain.receipt(s.hash)
      if (receipt !== null) { mined = { receipt, ours: s.call === opts.call }; break }
    }
    if (mined !== undefined) {
      if (!mined.ours) throw new DatanetError({ code: TxErrorCode.NONCE_TAKEN }, `nonce ${sends.nonce} went to an earlier call's transaction (${mined.receipt.hash})`, 'unavailable')
      wasMined = true
      if (head - mined.receipt.blockNumber >= opts.confirmations) return mined.receipt
    } else {
      if (wasMined) {
        // its block was reorged away: send again now
        wasMined = false
        lastSendAt = -Infinity
      }
      const now = chain.now()
      if (await chain.minedNonce() > sends.nonce) {
        // used, by none of our hashes (or its receipt is not served yet): give receipts a moment
        nonceTakenSince ??= now
        if (now - nonceTakenSince > Math.max(3 * opts.pollMs, 2000)) throw new DatanetError({ code: TxErrorCode.NONCE_TAKEN }, `nonce ${sends.nonce} was used by a transaction not sent by this call`, 'unavailable')
      } else {
        nonceTakenSince = undefined
        if (now - lastSendAt >= opts.bumpAfterMs) {
          if (await trySend(chain, sends, opts)) lastSendAt = chain.now()
        }
      }
      if (chain.now() >= deadline) {
        throw new DatanetError({ code: TxErrorCode.TIMEOUT }, `no receipt for nonce ${sends.nonce} within ${opts.timeoutMs} ms (${sends.hashes.length} sends, last fees ${feesText(sends.fees)})`, 'unavailable')
      }
    }
    await chain.sleep(opts.pollMs)
  }
}

/** One send or replacement; true when something was tried (sent, or refused for its fees). */
async function trySend (chain: TxChain, sends: NonceSends, opts: LandOptions): Promise<boolean> {
  const market = await chain.marketFees()
  const fees = sends.fees === undefined
    ? firstFees(market, opts.maxFeePerGas)
    // at the cap the last send is broadcast again (a pool may have dropped it under a base fee
    // spike); with nothing accepted yet, the market's fees up to the cap
    : replacementFees(sends.fees, market, opts.maxFeePerGas) ?? (sends.hashes.length > 0 ? sends.fees : firstFees(market, opts.maxFeePerGas))
  return await trySendAt(chain, sends, fees, opts)
}

async function trySendAt (chain: TxChain, sends: NonceSends, fees: Fees, opts: LandOptions): Promise<boolean> {
  const replacement = sends.hashes.length > 0
  try {
    const hash = await chain.broadcast(sends.nonce, fees)
    sends.fees = fees
    if (!sends.hashes.some(s => s.hash === hash)) {
      sends.hashes.push({ hash, call: opts.call })
      opts.onSend?.({ hash, nonce: sends.nonce, fees, replacement })
    }
    return true
  } catch (err) {
    // refused as known, mined or outbid: the receipts tell the rest
    if (isAlreadyKnown(err) || isNonceUsed(err)) return true
    if (isUnderpriced(err)) {
      // bump from what was refused: climbs over a pending send we do not know (from before a restart)
      sends.fees = fees
      return true
    }
    throw err
  }
}

function feesText (fees: Fees | undefined): string {
  return fees === undefined ? 'none' : `${fees.maxFeePerGas}/${fees.maxPriorityFeePerGas} wei`
}
