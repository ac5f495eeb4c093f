/**
 * Reads of a LevelDB on the calling thread. classic-level's promise API sends each read to
 * the thread pool and back: ~28 µs of CPU on this machine against ~1.7 µs for `getSync` of a
 * key in the memtable or the block cache (scripts/bench/level-reads.ts). A validator made
 * ~50 single reads a version and a catching-up node ~13, most of a few bytes just written.
 * A read that misses the cache blocks this thread for one disk read; larger sets (the
 * record index at ingest: thousands of cold keys) still go in one batch to the thread pool.
 */
import type { AbstractLevel } from 'abstract-level'

/** Sets of at most this many keys are read here, one by one; larger ones in one batch elsewhere. */
export const SYNC_READ_KEYS = 16

/** One value (undefined when absent); a store still opening is waited for, as its promise API does. */
export async function readOne<F, K, V> (store: AbstractLevel<F, K, V>, key: K): Promise<V | undefined> {
  if (store.status !== 'open') return await store.get(key)
  return store.getSync(key)
}

/** Values in the order of `keys` (undefined where absent). */
export async function readMany<F, K, V> (store: AbstractLevel<F, K, V>, keys: K[]): Promise<Array<V | undefined>> {
  if (keys.length > SYNC_READ_KEYS || store.status !== 'open') return await store.getMany(keys)
  return keys.map(k => store.getSync(k))
}
