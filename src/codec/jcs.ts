import canonicalizeJson from 'canonicalize'

const encoder = new TextEncoder()

/**
 * RFC 8785 (JCS) canonical JSON: sorted keys, no whitespace, ECMAScript number form.
 * Returns undefined for values JSON cannot hold (undefined, functions, non-finite numbers).
 */
export function canonicalJson (value: unknown): string | undefined {
  try {
    return (canonicalizeJson as unknown as (v: unknown) => string | undefined)(value)
  } catch {
    return undefined
  }
}

export function canonicalBytes (value: unknown): Uint8Array | undefined {
  const text = canonicalJson(value)
  return text === undefined ? undefined : encoder.encode(text)
}
