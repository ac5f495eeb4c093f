/**
 * Which merged segments a node keeps, and which segments make up the index of a version
 * (issue 14 item 5): aligned tiers. With fanout F, a level-k range covers the versions
 * [F^k·j + 1, F^k·(j + 1)]. The index of version h is the greedy cover of 1..h by the
 * largest aligned ranges at hand that end at or before h, then single versions — at most
 * (F − 1) segments per level, so O((F − 1)·log_F h) segments for every h, old or new.
 * Segments never depend on the newest height, so an old version's cover stays valid as
 * versions are added (models trained on old versions keep being queried).
 *
 * Only the largest aligned range ending at each height is merged, once that height is
 * final: every range of a cover is one (a range of the cover of h at level j ends at a
 * height whose base-F digit at level j is not 0), and a smaller aligned range ending at
 * the same height starts inside the larger one, so no cover takes it once the larger is at
 * hand. Merging those too, each from the one below, re-sorted about twice the tokens for
 * the same covers (1,024 versions: 10 against 5.5 re-sorts a token; a merge costs its
 * tokens whatever its parts).
 *
 * Pure: heights in, ranges out; the node decides where segments live.
 */

/** Versions [from, to], inclusive; heights start at 1. */
export interface HeightRange {
  readonly from: number
  readonly to: number
}

/**
 * F = 2: at most log₂ h segments (10 below 1,024 versions) — lookups cost about the same
 * per segment whatever its size, so fewer segments is what keeps them flat; each token is
 * re-sorted and stored ~(log₂ h)/2 times, in the background and on disk.
 * F = 4 stores and re-sorts half as often but keeps up to 3 segments per level (15 below
 * 1,024), measured ~1.2–1.9× slower per lookup (scripts/bench/attribution-versions.ts).
 */
export const DEFAULT_MERGE_FANOUT = 2

function checkFanout (fanout: number): void {
  if (!Number.isSafeInteger(fanout) || fanout < 2) throw new RangeError(`merge fanout must be an integer ≥ 2, got ${String(fanout)}`)
}

/** Does `range` span more than one version and sit on its level's grid? */
export function isMergeRange (range: HeightRange, fanout: number = DEFAULT_MERGE_FANOUT): boolean {
  checkFanout(fanout)
  const size = range.to - range.from + 1
  if (range.from < 1 || size < fanout) return false
  let s = fanout
  while (s < size) s *= fanout
  return s === size && (range.from - 1) % size === 0
}

/**
 * The greedy cover of versions [from, to]: at each step the largest aligned range
 * starting there, ending by `to`, that `has` (a single version always does).
 */
export function coverRange (from: number, to: number, has: (range: HeightRange) => boolean, fanout: number = DEFAULT_MERGE_FANOUT): HeightRange[] {
  checkFanout(fanout)
  const out: HeightRange[] = []
  let at = from
  while (at <= to) {
    let best = 1
    // sizes grow by F while `at` stays on their grid and the range fits
    for (let size = fanout; (at - 1) % size === 0 && at + size - 1 <= to; size *= fanout) {
      if (has({ from: at, to: at + size - 1 })) best = size
    }
    out.push({ from: at, to: at + best - 1 })
    at += best
  }
  return out
}

/** The segments of version h's index: the cover of 1..h. */
export function coverOf (height: number, has: (range: HeightRange) => boolean, fanout: number = DEFAULT_MERGE_FANOUT): HeightRange[] {
  return coverRange(1, height, has, fanout)
}

/** What a merged range is made from: its own cover by smaller ranges at hand. */
export function mergeParts (range: HeightRange, has: (range: HeightRange) => boolean, fanout: number = DEFAULT_MERGE_FANOUT): HeightRange[] {
  return coverRange(range.from, range.to, r => (r.from !== range.from || r.to !== range.to) && has(r), fanout)
}

/** The merge that becomes due once `height` is final: the largest aligned range ending there (none unless F divides it). */
export function mergeEndingAt (height: number, fanout: number = DEFAULT_MERGE_FANOUT): HeightRange | undefined {
  checkFanout(fanout)
  let size = 1
  while (size * fanout <= height && height % (size * fanout) === 0) size *= fanout
  return size === 1 ? undefined : { from: height - size + 1, to: height }
}

/**
 * Merges due once `finalHeight` is final: for each height by then, the largest aligned
 * range ending there, when not at hand; in height order (a merge's parts are the ranges
 * before it, at hand by then). O(h): a node scans once, then adds `mergeEndingAt` each
 * new height.
 */
export function dueMerges (finalHeight: number, has: (range: HeightRange) => boolean, fanout: number = DEFAULT_MERGE_FANOUT): HeightRange[] {
  checkFanout(fanout)
  const out: HeightRange[] = []
  for (let height = fanout; height <= finalHeight; height += fanout) {
    const range = mergeEndingAt(height, fanout) as HeightRange
    if (!has(range)) out.push(range)
  }
  return out
}
