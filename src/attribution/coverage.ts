/**
 * Coverage assignment and units (ATTRIBUTION.md §2): each output token is credited to at
 * most one non-common span — among the spans covering it, the longest, ties to the
 * smaller start — unless the prompt echoes it. A span's units are the weights of the
 * tokens credited to it; they split equally across its distinct records, floor each,
 * the remainder to the smallest recordIndex (the earliest contribution).
 */
import type { Span } from './spans.ts'

/** owner[t] = index in `spans` of the span token t is credited to, or −1. */
export function assignCoverage (spans: readonly Span[], outputLength: number, echoed?: Uint8Array): Int32Array {
  const owner = new Int32Array(outputLength).fill(-1)
  const order: number[] = []
  for (let s = 0; s < spans.length; s++) if (!(spans[s] as Span).common) order.push(s)
  // Longest first, then smaller start; starts are distinct, so this is a total order.
  order.sort((a, b) => {
    const sa = spans[a] as Span
    const sb = spans[b] as Span
    return (sb.end - sb.start) - (sa.end - sa.start) || sa.start - sb.start
  })
  for (const s of order) {
    const span = spans[s] as Span
    for (let t = span.start; t < span.end; t++) {
      if (owner[t] === -1 && (echoed === undefined || echoed[t] === 0)) owner[t] = s
    }
  }
  return owner
}

/** Units per span: Σ weights of the tokens credited to it. */
export function spanUnits (spanCount: number, owner: Int32Array, weights: Uint32Array): number[] {
  const units = new Array<number>(spanCount).fill(0)
  for (let t = 0; t < owner.length; t++) {
    const s = owner[t] as number
    if (s >= 0) units[s] = (units[s] as number) + (weights[t] as number)
  }
  return units
}

/**
 * Per-record units over all spans, ascending recordIndex: each span's units split over
 * its records (ascending), floor(U / |R|) each, U mod |R| more to the first.
 */
export function recordUnits (spans: readonly Span[], units: readonly number[]): Array<{ recordIndex: number, units: number }> {
  const byRecord = new Map<number, number>()
  for (let s = 0; s < spans.length; s++) {
    const u = units[s] as number
    const records = (spans[s] as Span).records
    if (u === 0 || records.length === 0) continue
    const each = (u - (u % records.length)) / records.length
    const remainder = u - each * records.length
    records.forEach((r, i) => {
      byRecord.set(r, (byRecord.get(r) ?? 0) + each + (i === 0 ? remainder : 0))
    })
  }
  return [...byRecord.keys()].sort((a, b) => a - b).map(recordIndex => ({ recordIndex, units: byRecord.get(recordIndex) as number }))
}
