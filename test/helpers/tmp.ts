import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'

/** A fresh temporary directory, and a function that removes it (unless KEEP_TEST_DIRS=1: logs to read after a run). */
export function tempDir (prefix = 'datanet-test-'): { dir: string, remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  return {
    dir,
    remove: () => {
      if (process.env.KEEP_TEST_DIRS === '1') { process.stderr.write(`kept ${dir}\n`); return }
      rmSync(dir, { recursive: true, force: true })
    }
  }
}

/** A fresh temporary directory for `fn`, removed after (as `tempDir`). */
export async function withTempDir (fn: (dir: string) => Promise<void>, prefix?: string): Promise<void> {
  const tmp = tempDir(prefix)
  try {
    await fn(tmp.dir)
  } finally {
    tmp.remove()
  }
}

/** A temporary source tree of `files` (path → text), for checks that read a project (purity, writers). */
export function tempProject (files: Record<string, string>, prefix = 'datanet-project-'): { dir: string, remove: () => void } {
  const tmp = tempDir(prefix)
  for (const [path, text] of Object.entries(files)) {
    const full = join(tmp.dir, path)
    mkdirSync(dirname(full), { recursive: true })
    writeFileSync(full, text)
  }
  return tmp
}
