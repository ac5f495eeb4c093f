/**
 * Records for the network benchmarks (finality.ts, big.ts): JSONL bodies of records of
 * about a given size whose text shares nothing long with any other record. (Records padded
 * with one repeated filler are near-duplicates of each other, and validators rightly reject
 * all but the first contribution: the first version of the finality benchmark waited for
 * them for ever.) Seeded: the same (uploader, contribution) gives the same body, so a
 * benchmark can rebuild a record later (to ask for its proof) without keeping it.
 */

/** A seeded stream of words. */
function words (seed: number): () => string {
  let x = seed >>> 0 || 1
  const syllables = ['ka', 'lo', 'mi', 'ne', 'ru', 'sa', 'ti', 'vo', 'ze', 'po', 'da', 'gu', 'he', 'ji', 'wa', 'qu']
  return () => {
    let w = ''
    for (let i = 0; i < 3; i++) {
      // xorshift32
      x ^= x << 13; x ^= x >>> 17; x ^= x << 5; x >>>= 0
      w += syllables[x & 15] as string
    }
    return w
  }
}

/** The texts of contribution `c` of uploader `u`: `records` of about `recordBytes` each (as JSON lines). */
export function recordTexts (u: number, c: number, records: number, recordBytes: number): string[] {
  const next = words(1 + u * 1_000_003 + c * 7919)
  const out: string[] = []
  for (let i = 0; i < records; i++) {
    let text = `u${u} c${c} r${i}`
    while (text.length < recordBytes - 14) text += ' ' + next()
    out.push(text)
  }
  return out
}

/** One contribution's JSONL body (recordTexts as `{"text": …}` lines). */
export function jsonlBody (u: number, c: number, records: number, recordBytes: number): string {
  let out = ''
  for (const text of recordTexts(u, c, records, recordBytes)) out += JSON.stringify({ text }) + '\n'
  return out
}
