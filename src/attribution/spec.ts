/**
 * The spec identity of span-sa-v2 (ATTRIBUTION.md §2):
 *
 *     specId = keccak256(JCS({name: "span-sa-v2", normalizer, tokenizer: {pkg, version,
 *                              encoding, ranksSha256}, params}))
 *
 * Every attribution names its specId; any change to the normaliser, the tokenizer or a
 * parameter is a new spec. keccak because the id is compared on-chain.
 */
import { keccak256 } from 'ethers'
import { sha256, toHex } from '../codec/hash.ts'
import { canonicalBytes } from '../codec/jcs.ts'
import { NORMALIZER_ID } from './normalize.ts'
import type { AttributionParams } from './params.ts'
import { TOKENIZER } from './tokenizer.ts'

/**
 * v2: the base pool is shared by content weight (normalized tokens of accepted records,
 * each capped at maxRecordTokens), no longer by record count, which rewarded splitting.
 */
export const SPEC_NAME = 'span-sa-v2'

export interface AttributionSpec {
  name: string
  normalizer: string
  tokenizer: { pkg: string, version: string, encoding: string, ranksSha256: string }
  params: AttributionParams
}

export function attributionSpec (params: AttributionParams): AttributionSpec {
  return {
    name: SPEC_NAME,
    normalizer: NORMALIZER_ID,
    tokenizer: { pkg: TOKENIZER.pkg, version: TOKENIZER.version, encoding: TOKENIZER.encoding, ranksSha256: TOKENIZER.ranksSha256 },
    params: { ...params }
  }
}

const specIds = new WeakMap<AttributionParams, string>()

/** specId of the spec with these (validated) parameters, `0x` + 64 hex digits. */
export function specId (params: AttributionParams): string {
  let id = specIds.get(params)
  if (id === undefined) {
    id = keccak256(canonicalBytes(attributionSpec(params)) as Uint8Array)
    specIds.set(params, id)
  }
  return id
}

/**
 * What a persisted index segment depends on: the normaliser and the tokenizer, not the
 * parameters. sha256 of JCS({name, normalizer, tokenizer}); a segment built under another
 * tokenization is refused when loaded.
 */
export const TOKENIZATION_ID: Uint8Array = sha256(canonicalBytes({
  // v2 changed the money, not the tokens: segments built under v1 stay valid
  name: 'span-sa-v1',
  normalizer: NORMALIZER_ID,
  tokenizer: { ...TOKENIZER }
}) as Uint8Array)

export const TOKENIZATION_ID_HEX: string = toHex(TOKENIZATION_ID)
