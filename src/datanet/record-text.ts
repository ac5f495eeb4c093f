/** A record's text (what attribution indexes): its `text` field, a JSON string record itself, or its canonical JSON. */
export function recordText (bytes: Uint8Array): string {
  const json = Buffer.from(bytes).toString('utf8')
  try {
    const value = JSON.parse(json) as unknown
    if (typeof value === 'string') return value
    if (typeof value === 'object' && value !== null && typeof (value as { text?: unknown }).text === 'string') return (value as { text: string }).text
  } catch {}
  return json
}
