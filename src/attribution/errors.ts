import { DatanetError } from '../errors.ts'

/** Failure codes of the attribution pipeline (src/attribution); tests and metrics use these, never the message. */
export const AttributionErrorCode = {
  /** Parameters out of range or not integers. */
  BAD_PARAMS: 'ATTRIBUTION_ERROR_BAD_PARAMS',
  /** A record handed to the index is malformed: recordIndex, contributor or text. */
  BAD_RECORD: 'ATTRIBUTION_ERROR_BAD_RECORD',
  /** Records out of recordIndex order, or a segment that does not continue the index. */
  OUT_OF_ORDER: 'ATTRIBUTION_ERROR_OUT_OF_ORDER',
  /** Persisted segment bytes that do not decode to a consistent segment. */
  BAD_SEGMENT: 'ATTRIBUTION_ERROR_BAD_SEGMENT',
  /** A fee, event id or prompt that is not of the expected form. */
  BAD_INPUT: 'ATTRIBUTION_ERROR_BAD_INPUT',
  /** The tokenizer's vocabulary does not hash to the pinned value. */
  TOKENIZER_MISMATCH: 'ATTRIBUTION_ERROR_TOKENIZER_MISMATCH'
} as const

export type AttributionErrorCodeValue = typeof AttributionErrorCode[keyof typeof AttributionErrorCode]

export class AttributionError extends DatanetError<{ code: AttributionErrorCodeValue }> {
  constructor (code: AttributionErrorCodeValue, message: string) {
    super({ code }, message, code === AttributionErrorCode.TOKENIZER_MISMATCH || code === AttributionErrorCode.BAD_SEGMENT ? 'failure' : 'usage')
    this.name = 'AttributionError'
  }
}
