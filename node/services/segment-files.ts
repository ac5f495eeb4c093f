/**
 * Attribution index segment files, written whole under a temporary name and renamed, so a
 * reader never sees half of one. Not synced: a segment lost in a crash is rebuilt from the
 * dataset. The worker threads write the large segments so; the main thread appends its
 * small ones to the datanet's pack (segment-pack.ts), and writes here only a segment too
 * large for it.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'

export function writeSegmentFileSync (file: string, bytes: Uint8Array): void {
  mkdirSync(dirname(file), { recursive: true })
  writeFileSync(`${file}.tmp`, bytes)
  renameSync(`${file}.tmp`, file)
}
