/**
 * span-sa-v2 attribution (DESIGN.md §4 flow 5, ATTRIBUTION.md §2): from an output, its
 * prompt and a fee to integer shares per record and per contributor. Pure and
 * deterministic: every validator with the same index, inputs and parameters computes
 * the same result, byte for byte, and the same resultHash.
 */
import { AttributionError, AttributionErrorCode } from './errors.ts'
import type { CorpusIndex } from './corpus-index.ts'
import { assignCoverage, recordUnits, spanUnits } from './coverage.ts'
import { normalizeText } from './normalize.ts'
import { type AttributionParams, ensureAttributionParams } from './params.ts'
import { type PromptWindows, echoedTokens, promptWindows } from './prompt-echo.ts'
import { computeShares, resultHash } from './shares.ts'
import { specId } from './spec.ts'
import { findSpans } from './spans.ts'
import { VOCAB_SIZE, decodeTokens, tokenize, wordStartFlags } from './tokenizer.ts'
import { outputWeights } from './weights.ts'

export * from './errors.ts'
export * from './normalize.ts'
export * from './tokenizer.ts'
export * from './params.ts'
export * from './spec.ts'
export * from './suffix-array.ts'
export * from './corpus-index.ts'
export * from './segment-codec.ts'
export * from './spans.ts'
export * from './prompt-echo.ts'
export * from './coverage.ts'
export * from './weights.ts'
export * from './content-weight.ts'
export * from './record-coverage.ts'
export * from './shares.ts'

/** What the prompt is known as: its text, or the hashes of its MIN_SPAN-token windows (prompt-echo.ts). */
export type PromptInput = string | { windowHashes: readonly string[] } | null | undefined

export interface AttributeOptions {
  /** The inference event's id (bytes32 hex); zero for a preview. */
  eventId?: string
}

export interface AttributedSpan {
  /** Output token positions [start, end) after normalisation and tokenization. */
  start: number
  end: number
  text: string
  /** Occurrences in the dataset version. */
  count: number
  /** recordIndex of each record holding it; empty when common. */
  records: number[]
  common: boolean
  /** Weight of the output tokens credited to this span. */
  units: number
}

export interface AttributedRecord {
  recordIndex: number
  contributor: string
  units: number
  amount: string
}

export interface AttributionResult {
  specId: string
  indexHash: string
  eventId: string
  outputTokens: number
  spans: AttributedSpan[]
  /** Records with credited units, ascending recordIndex. */
  records: AttributedRecord[]
  /** Ascending address; amounts in wei as decimal strings. */
  contributors: Array<{ address: string, amount: string }>
  fee: string
  dataPool: string
  /** dataPool · ΣU / ΣW, before the per-record cap. */
  attributed: string
  /** What the contributors receive: Σ contributors' amounts. */
  paid: string
  /** dataPool − paid: to the datanet's base pool. */
  basePool: string
  /** α = ΣU / ΣW_all as integers. */
  coverage: { num: number, den: number }
  resultHash: string
}

export const ZERO_EVENT_ID = '0x' + '00'.repeat(32)
const BYTES32 = /^0x[0-9a-fA-F]{64}$/
const MAX_UINT256 = (1n << 256n) - 1n

function badInput (message: string): AttributionError {
  return new AttributionError(AttributionErrorCode.BAD_INPUT, message)
}

/** A fee as bigint wei from a bigint or a decimal string. */
export function parseFee (fee: bigint | string): bigint {
  let value: bigint
  if (typeof fee === 'bigint') value = fee
  else if (typeof fee === 'string' && /^[0-9]{1,78}$/.test(fee)) value = BigInt(fee)
  else throw badInput(`fee must be a non-negative integer (wei), got ${String(fee)}`)
  if (value < 0n || value > MAX_UINT256) throw badInput('fee must be in [0, 2^256)')
  return value
}

/** Normalises and tokenizes a prompt into its windows. */
function promptOf (prompt: PromptInput, minSpan: number): PromptWindows | undefined {
  if (prompt === undefined || prompt === null) return undefined
  if (typeof prompt === 'string') return promptWindows(tokenize(normalizeText(prompt)), minSpan)
  if (!Array.isArray(prompt.windowHashes) || !prompt.windowHashes.every(h => typeof h === 'string' && /^[0-9a-f]{16}$/.test(h))) {
    throw badInput('prompt window hashes must be 16 lowercase hex digits each')
  }
  return { hashes: new Set(prompt.windowHashes) }
}

/**
 * Attributes an output text: N, T, spans, prompt echo, coverage, units, shares, result
 * hash. `params` name the spec; anything validateAttributionParams did not return is
 * validated first (ATTRIBUTION_ERROR_BAD_PARAMS).
 */
export function attribute (index: CorpusIndex, output: string, prompt: PromptInput, fee: bigint | string, params: AttributionParams, options: AttributeOptions = {}): AttributionResult {
  if (typeof output !== 'string') throw badInput('output must be a string')
  const checked = ensureAttributionParams(params)
  return attributeTokens(index, tokenize(normalizeText(output)), promptOf(prompt, checked.minSpan), parseFee(fee), checked, options)
}

/** The same from an output already normalised and tokenized (cl100k ids) and what is known of the prompt. */
export function attributeTokens (index: CorpusIndex, output: Uint32Array, prompt: PromptWindows | undefined, fee: bigint, unchecked: AttributionParams, options: AttributeOptions = {}): AttributionResult {
  const params = ensureAttributionParams(unchecked)
  if (typeof fee !== 'bigint' || fee < 0n || fee > MAX_UINT256) throw badInput('fee must be a bigint in [0, 2^256)')
  const eventId = (options.eventId ?? ZERO_EVENT_ID).toLowerCase()
  if (!BYTES32.test(eventId)) throw badInput('eventId must be 32 bytes of hex')
  const L = output.length
  for (let t = 0; t < L; t++) if ((output[t] as number) >= VOCAB_SIZE) throw badInput(`output token ${output[t] as number} is not a cl100k id`)
  const wordStart = wordStartFlags(output)
  const spans = findSpans(index, output, wordStart, params)

  let echoed: Uint8Array | undefined
  if (prompt !== undefined && prompt.hashes.size > 0) {
    const creditable = new Uint8Array(L)
    for (const s of spans) if (!s.common) creditable.fill(1, s.start, s.end)
    echoed = echoedTokens(output, prompt, params.minSpan, creditable)
  }
  const owner = assignCoverage(spans, L, echoed)
  const weights = outputWeights(index, output, params.wCap)
  let totalWeight = 0
  for (let t = 0; t < L; t++) totalWeight += weights[t] as number
  const units = spanUnits(spans.length, owner, weights)
  const perRecord = recordUnits(spans, units).map(r => ({ ...r, contributor: index.contributorOf(r.recordIndex) as string }))
  const shares = computeShares({ fee, dataBps: params.dataBps, recordCapBps: params.recordCapBps, totalWeight, records: perRecord })
  let unitSum = 0
  for (const u of units) unitSum += u

  const id = specId(params)
  const indexHash = index.indexHash
  return {
    specId: id,
    indexHash,
    eventId,
    outputTokens: L,
    spans: spans.map((s, i) => ({
      start: s.start,
      end: s.end,
      text: decodeTokens(output.subarray(s.start, s.end)),
      count: s.count,
      records: s.records,
      common: s.common,
      units: units[i] as number
    })),
    records: shares.records.map(r => ({ recordIndex: r.recordIndex, contributor: r.contributor, units: r.units, amount: r.amount.toString() })),
    contributors: shares.contributors.map(c => ({ address: c.address, amount: c.amount.toString() })),
    fee: fee.toString(),
    dataPool: shares.dataPool.toString(),
    attributed: shares.attributed.toString(),
    paid: shares.paid.toString(),
    basePool: shares.basePool.toString(),
    coverage: { num: unitSum, den: totalWeight },
    resultHash: resultHash(eventId, id, indexHash, shares.contributors)
  }
}
