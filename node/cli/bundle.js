// The bundled CLI in node/build/ (made by scripts/build.ts): a few files instead of ~1,700
// modules, each of which Node resolves (package.json lookups, stats, realpaths) and reads
// at every start. Used only while none of its inputs is newer than it, so an edited source
// is never run from a stale bundle. JavaScript, not TypeScript: main.js loads it before the
// compile cache is on.
import { readFileSync, statSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

export const BUILD_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../build')

/**
 * The entries of the bundle in `buildDir` (name → file URL) when it is complete and no
 * input has changed since it was built; else undefined (the caller runs the sources).
 * `DATANET_BUNDLE=0` forces the sources (stack traces that name source lines, or a baseline
 * to compare).
 * @param {string} [buildDir]
 * @param {{ honourEnv?: boolean }} [opts]
 * @returns {Record<string, string> | undefined}
 */
export function freshBundle (buildDir = BUILD_DIR, { honourEnv = true } = {}) {
  if (honourEnv && process.env.DATANET_BUNDLE === '0') return undefined
  let manifest
  try {
    manifest = JSON.parse(readFileSync(join(buildDir, 'manifest.json'), 'utf8'))
  } catch {
    return undefined
  }
  const entries = manifest?.entries
  if (typeof entries !== 'object' || entries === null || !Array.isArray(manifest.inputs) || typeof manifest.builtAt !== 'number') return undefined
  const root = resolve(buildDir, String(manifest.root ?? '../..'))
  for (const input of manifest.inputs) {
    try {
      // >=: a file written in the build's first millisecond may not be in it
      if (statSync(join(root, String(input))).mtimeMs >= manifest.builtAt) return undefined
    } catch {
      return undefined
    }
  }
  const urls = {}
  for (const [name, file] of Object.entries(entries)) {
    try {
      statSync(join(buildDir, String(file)))
    } catch {
      return undefined
    }
    urls[name] = pathToFileURL(join(buildDir, String(file))).href
  }
  return urls
}
