/** The p-th percentile (0–100) of ascending `sorted` values, nearest rank. */
export function percentile (sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p / 100 * sorted.length) - 1))] as number
}
