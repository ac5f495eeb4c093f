/**
 * Bundles the CLI and daemon (node/cli/program.ts and what it imports, dependencies
 * included) into node/build/ with esbuild: a start then reads a few files instead of
 * resolving and reading ~1,700 modules (half of a cold start went to Node's resolver).
 * node/cli/main.js runs the bundle only while it is fresh (node/cli/bundle.js), else the
 * sources, so the bundle is an optimisation and never a second truth.
 *
 *   node scripts/build.ts             build
 *   node scripts/build.ts --if-stale  build only when the bundle is missing or stale (setup)
 *
 * What stays outside the bundle, and why:
 * - classic-level: a native addon found through its own directory (node-gyp-build).
 * - tiny-secp256k1: reads its WebAssembly file beside its own module (import.meta.url).
 * - worker threads (`new Worker(new URL('./x.ts', import.meta.url))`): they run the
 *   sources, found through each file's own URL (below).
 */
import { existsSync } from 'node:fs'
import { readFile, readdir, rm, writeFile, rename } from 'node:fs/promises'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Plugin } from 'esbuild'
import { BUILD_DIR, freshBundle } from '../node/cli/bundle.js'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
/** What main.js loads: the CLI, and the keystore prefetch it starts first for `node start`. */
const ENTRIES = { program: join(root, 'node/cli/program.ts'), 'keystore-prefetch': join(root, 'node/cli/keystore-prefetch.ts') }

/** Our own files keep their own `import.meta.url`: config, web assets, contract artifacts and workers are found next to the source, wherever the bundle is. */
const ownUrls: Plugin = {
  name: 'own-import-meta-url',
  setup (b) {
    b.onLoad({ filter: /\.(ts|js)$/ }, async args => {
      if (args.path.includes(`${join('/', 'node_modules', '/')}`) || !args.path.startsWith(root)) return undefined
      let text = await readFile(args.path, 'utf8')
      if (args.path === join(root, 'src/storage/helia.ts')) text = heliaStatic(text)
      text = text.replaceAll('import.meta.url', `new URL(${JSON.stringify(relative(BUILD_DIR, args.path))}, import.meta.url).href`)
      return { contents: text, loader: args.path.endsWith('.ts') ? 'ts' : 'js' }
    })
  }
}

/**
 * src/storage/helia.ts loads Helia's class module at run time (the package index pulls
 * WebRTC, the DHT and more); the package exports no path to it, so the bundle imports the
 * file itself. Fails the build if the source no longer has the lookup.
 */
function heliaStatic (text: string): string {
  const lookup = /const heliaModule = [^\n]+\nconst \{ Helia: HeliaClass \} = await import\(heliaModule\)[^\n]+\n/
  if (!lookup.test(text)) throw new Error('src/storage/helia.ts: the run-time lookup of Helia\'s class module changed; update scripts/build.ts')
  const file = join(root, 'node_modules/helia/dist/src/helia.js')
  return text.replace(lookup, `import { Helia as HeliaClass } from ${JSON.stringify(file)}\n`)
}

export async function buildBundle (): Promise<{ files: number, inputs: number, ms: number }> {
  const started = Date.now()
  // loaded here: `--if-stale` (every setup) decides without it
  const { build } = await import('esbuild')
  const result = await build({
    entryPoints: ENTRIES,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node22',
    absWorkingDir: root,
    outdir: BUILD_DIR,
    // every name hashed: a build never overwrites a chunk a running node may still import lazily
    entryNames: '[name]-[hash]',
    chunkNames: '[name]-[hash]',
    splitting: true,
    external: ['classic-level', 'tiny-secp256k1'],
    metafile: true,
    logLevel: 'warning',
    legalComments: 'none',
    // identifiers kept: profiles and stack traces name our functions
    minifyWhitespace: true,
    minifySyntax: true,
    // CommonJS dependencies call require() for Node's modules
    banner: { js: 'import { createRequire as __datanetRequire } from \'node:module\'; const require = __datanetRequire(import.meta.url);' },
    plugins: [ownUrls]
  })
  const outputs = Object.keys(result.metafile.outputs).map(o => relative(BUILD_DIR, resolve(root, o)))
  const entries: Record<string, string> = {}
  for (const [name, source] of Object.entries(ENTRIES)) {
    const out = Object.entries(result.metafile.outputs).find(([, o]) => o.entryPoint !== undefined && resolve(root, o.entryPoint) === source)?.[0]
    if (out === undefined) throw new Error(`esbuild wrote no entry for ${name}`)
    entries[name] = relative(BUILD_DIR, resolve(root, out))
  }
  const inputs = Object.keys(result.metafile.inputs).map(i => relative(root, resolve(root, i))).filter(i => !i.startsWith('node_modules/') && !i.startsWith('..'))
  // an install changes node_modules, and npm rewrites its record of it at each one (when it keeps one)
  inputs.push('package-lock.json', 'scripts/build.ts')
  if (existsSync(join(root, 'node_modules/.package-lock.json'))) inputs.push('node_modules/.package-lock.json')
  const previous = await readManifest()
  const manifest = { builtAt: started, root: relative(BUILD_DIR, root), entries, outputs, inputs }
  // the manifest last and by rename: a reader sees the old bundle or the whole new one
  await writeFile(join(BUILD_DIR, 'manifest.json.tmp'), JSON.stringify(manifest, null, 1))
  await rename(join(BUILD_DIR, 'manifest.json.tmp'), join(BUILD_DIR, 'manifest.json'))
  // keep this build's files and the one before (a node started from it may still load a lazy chunk)
  const keep = new Set(['manifest.json', ...outputs, ...(previous?.outputs ?? [])])
  for (const f of await readdir(BUILD_DIR)) if (!keep.has(f)) await rm(join(BUILD_DIR, f), { force: true })
  return { files: outputs.length, inputs: inputs.length, ms: Date.now() - started }
}

async function readManifest (): Promise<{ outputs: string[] } | undefined> {
  try {
    const m = JSON.parse(await readFile(join(BUILD_DIR, 'manifest.json'), 'utf8')) as { outputs?: unknown }
    return Array.isArray(m.outputs) ? { outputs: m.outputs.map(String) } : undefined
  } catch {
    return undefined
  }
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  if (process.argv.includes('--if-stale') && freshBundle(BUILD_DIR, { honourEnv: false }) !== undefined) process.exit(0)
  const { files, inputs, ms } = await buildBundle()
  process.stderr.write(`datanet: bundled the node into ${relative(root, BUILD_DIR)}/ (${files} files from ${inputs} of our sources, ${ms} ms)\n`)
}
