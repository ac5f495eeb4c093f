/**
 * Attribution index segment files, written whole under a temporary name and renamed, so a
 * reader never sees half of one. Not synced: a segment lost in a crash is rebuilt from the
 * dataset. The worker threads write them blocking; the main thread must not: a catching-up
 * node writes two files a version (its segment, a merge), and its blocking opens took a
 * quarter of its main thread beside its own synced writes (scripts/bench/catch-up.ts,
 * profiled: 1.1 s of 4.6).
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs'
import { mkdir, rename, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'

/** On a worker thread. */
export function writeSegmentFileSync (file: string, bytes: Uint8Array): void {
  mkdirSync(dirname(file), { recursive: true })
  writeFileSync(`${file}.tmp`, bytes)
  renameSync(`${file}.tmp`, file)
}

/** Directories made by this process: each call to the thread pool wakes a thread and then this one. */
const made = new Set<string>()

/** On the main thread. */
export async function writeSegmentFile (file: string, bytes: Uint8Array): Promise<void> {
  const dir = dirname(file)
  if (!made.has(dir)) {
    await mkdir(dir, { recursive: true })
    made.add(dir)
  }
  try {
    await writeFile(`${file}.tmp`, bytes)
  } catch (err) {
    // the directory was taken away since: made again
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    await mkdir(dir, { recursive: true })
    await writeFile(`${file}.tmp`, bytes)
  }
  await rename(`${file}.tmp`, file)
}
