import { AttributionError, AttributionErrorCode } from './errors.ts'

/**
 * The parameters of span-sa-v2 (ATTRIBUTION.md §2). All integers; every one of them is
 * hashed into the spec id, so changing any is a new spec.
 */
export interface AttributionParams {
  /** MIN_SPAN: shortest span (tokens) that earns; also the prompt-window length. */
  readonly minSpan: number
  /** MAX_SPAN: longest match considered from one start (tokens). */
  readonly maxSpan: number
  /** C_SCAN: a span occurring more often than this is common without scanning its records. */
  readonly cScan: number
  /** D_MAX: a span held by more distinct records than this is common. */
  readonly dMax: number
  /** W_CAP: the largest weight of one token (q8 fixed point: 256 = one bit of rarity). */
  readonly wCap: number
  /** Share of the fee that forms the data pool (basis points). */
  readonly dataBps: number
  /** Most one record may take of one event's data pool (basis points). */
  readonly recordCapBps: number
  /** MAX_RECORD_TOKENS: most tokens one record counts for in the base pool's content weight. */
  readonly maxRecordTokens: number
}

/** Objects validateAttributionParams returned (and the defaults): frozen, so they stay valid. */
const validated = new WeakSet<AttributionParams>()

export const defaultAttributionParams: AttributionParams = Object.freeze({
  minSpan: 12,
  maxSpan: 256,
  cScan: 1000,
  dMax: 16,
  wCap: 4096,
  dataBps: 6000,
  recordCapBps: 2500,
  maxRecordTokens: 8192
})
validated.add(defaultAttributionParams)

/** Bounds (inclusive) of each parameter. */
const BOUNDS: Record<keyof AttributionParams, readonly [number, number]> = {
  minSpan: [1, 4096],
  maxSpan: [1, 4096],
  cScan: [1, 1_000_000],
  dMax: [1, 1_000_000],
  wCap: [0, 1 << 20],
  dataBps: [0, 10_000],
  recordCapBps: [0, 10_000],
  maxRecordTokens: [1, 1 << 20]
}

/**
 * Fills defaults, checks every value is an integer in bounds and minSpan ≤ maxSpan, and
 * returns a frozen object. Throws ATTRIBUTION_ERROR_BAD_PARAMS naming the parameter.
 */
export function validateAttributionParams (input: Partial<AttributionParams> = {}): AttributionParams {
  const out: Record<string, number> = {}
  for (const key of Object.keys(BOUNDS) as Array<keyof AttributionParams>) {
    const value = input[key] ?? defaultAttributionParams[key]
    const [min, max] = BOUNDS[key]
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
      throw new AttributionError(AttributionErrorCode.BAD_PARAMS, `attribution parameter ${key} must be an integer in [${min}, ${max}], got ${String(value)}`)
    }
    out[key] = value
  }
  for (const key of Object.keys(input)) {
    if (!(key in BOUNDS)) throw new AttributionError(AttributionErrorCode.BAD_PARAMS, `unknown attribution parameter ${key}`)
  }
  const params = out as unknown as AttributionParams
  if (params.minSpan > params.maxSpan) {
    throw new AttributionError(AttributionErrorCode.BAD_PARAMS, `attribution parameter minSpan (${params.minSpan}) must not exceed maxSpan (${params.maxSpan})`)
  }
  Object.freeze(params)
  validated.add(params)
  return params
}

/** `params` itself when validateAttributionParams made it, else a validated copy (throws on bad values). */
export function ensureAttributionParams (params: AttributionParams): AttributionParams {
  return validated.has(params) ? params : validateAttributionParams(params)
}

/** The manifest's attribution section and reward split (src/datanet/manifest.ts), as far as they name parameters. */
export interface ManifestAttributionFields {
  attribution?: { minSpanTokens?: number, maxSpanTokens?: number, commonRecordLimit?: number, recordCapBps?: number }
  rewardSplit?: { contributorsBps?: number }
}

/**
 * The parameters a datanet's manifest fixes ("parameters live in the manifest"):
 * minSpanTokens → minSpan, maxSpanTokens → maxSpan, commonRecordLimit → dMax,
 * recordCapBps, rewardSplit.contributorsBps → dataBps. cScan, wCap and maxRecordTokens are not in the
 * manifest yet and keep their defaults.
 */
export function attributionParamsFromManifest (manifest: ManifestAttributionFields): AttributionParams {
  const a = manifest.attribution ?? {}
  const input: Partial<Record<keyof AttributionParams, number>> = {}
  if (a.minSpanTokens !== undefined) input.minSpan = a.minSpanTokens
  if (a.maxSpanTokens !== undefined) input.maxSpan = a.maxSpanTokens
  if (a.commonRecordLimit !== undefined) input.dMax = a.commonRecordLimit
  if (a.recordCapBps !== undefined) input.recordCapBps = a.recordCapBps
  if (manifest.rewardSplit?.contributorsBps !== undefined) input.dataBps = manifest.rewardSplit.contributorsBps
  return validateAttributionParams(input)
}
