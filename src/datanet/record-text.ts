/** A record's text (what attribution indexes): its `text` field, a JSON string record itself, or its canonical JSON. */
export function recordText (bytes: Uint8Array): string {
  let value: unknown
  try {
    value = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'))
  } catch {}
  return recordTextOf(value, bytes)
}

/** `recordText` of a record whose parsed value is at hand: the same text without parsing its bytes again. */
export function recordTextOf (value: unknown, bytes: Uint8Array): string {
  if (typeof value === 'string') return value
  if (typeof value === 'object' && value !== null && typeof (value as { text?: unknown }).text === 'string') return (value as { text: string }).text
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')
}
