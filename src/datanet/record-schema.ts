import { Ajv2020 } from 'ajv/dist/2020.js'
import addFormats from 'ajv-formats'
import { canonicalJson } from '../codec/jcs.ts'
import { DatanetError } from '../errors.ts'
import { ManifestErrorCode } from './manifest.ts'

/** Checks one record; returns undefined when valid, else the first schema error as one line. */
export type RecordValidator = (record: unknown) => string | undefined

/** One Ajv per schema: a shared instance would refuse two datanets whose schemas share an `$id`. */
function newAjv (): Ajv2020 {
  const ajv = new Ajv2020({ allErrors: false, strict: false, validateFormats: true })
  ;(addFormats as unknown as (a: Ajv2020) => void)(ajv)
  return ajv
}

const cache = new Map<string, RecordValidator>()

/**
 * Compiles a datanet's record schema (JSON Schema 2020-12) once per schema. A schema that
 * does not compile makes the manifest invalid.
 */
export function compileRecordSchema (schema: Record<string, unknown>): RecordValidator {
  const key = canonicalJson(schema) ?? JSON.stringify(schema)
  const cached = cache.get(key)
  if (cached !== undefined) return cached
  let validate: ReturnType<Ajv2020['compile']>
  try {
    validate = newAjv().compile(schema)
  } catch (err) {
    throw new DatanetError({ code: ManifestErrorCode.INVALID }, `invalid manifest: recordSchema: ${(err as Error).message}`, 'usage', { cause: err })
  }
  const validator: RecordValidator = record => {
    if (validate(record)) return undefined
    const e = validate.errors?.[0]
    if (e === undefined) return 'does not match the record schema'
    return `${e.instancePath === '' ? '(record)' : e.instancePath} ${e.message ?? 'is invalid'}${e.params !== undefined && 'additionalProperty' in e.params ? ` (${String(e.params.additionalProperty)})` : ''}`
  }
  cache.set(key, validator)
  return validator
}
