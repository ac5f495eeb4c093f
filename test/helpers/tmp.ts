import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** A fresh temporary directory, and a function that removes it. */
export function tempDir (prefix = 'datanet-test-'): { dir: string, remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  return { dir, remove: () => { rmSync(dir, { recursive: true, force: true }) } }
}
