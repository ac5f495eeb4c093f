/**
 * Which merged segments a node keeps, and which segments make up the index of a version
 * (issue 14 item 5): aligned tiers. With fanout F, a level-k range covers the versions
 * [F^k·j + 1, F^k·(j + 1)]; it is merged once its last version is final. The index of
 * version h is the greedy cover of 1..h by the largest aligned ranges at hand that end
 * at or before h, then single versions — at most (F − 1) segments per level, so
 * O((F − 1)·log_F h) segments for every h, old or new; each token is re-sorted once per
 * level. Segments never depend on the newest height, so an old version's cover stays
 * valid as versions are added (models trained on old versions keep being queried).
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
 * re-sorted and stored once per level (log₂ h times), in the background and on disk.
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

/** The aligned ranges that end at `height`, smallest first: what becomes due once it is final. */
export function mergesEndingAt (height: number, fanout: number = DEFAULT_MERGE_FANOUT): HeightRange[] {
  checkFanout(fanout)
  const out: HeightRange[] = []
  for (let size = fanout; size <= height && height % size === 0; size *= fanout) out.push({ from: height - size + 1, to: height })
  return out
}

/**
 * Merges due once `finalHeight` is final: every aligned range ending by then that is
 * not at hand, smallest level first (so each can be built from the level below). O(h):
 * a node scans once, then adds `mergesEndingAt` each new height.
 */
export function dueMerges (finalHeight: number, has: (range: HeightRange) => boolean, fanout: number = DEFAULT_MERGE_FANOUT): HeightRange[] {
  checkFanout(fanout)
  const out: HeightRange[] = []
  for (let size = fanout; size <= finalHeight; size *= fanout) {
    for (let from = 1; from + size - 1 <= finalHeight; from += size) {
      const range = { from, to: from + size - 1 }
      if (!has(range)) out.push(range)
    }
  }
  return out
}
