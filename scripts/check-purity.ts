/**
 * The house rule (DESIGN §2), checked: the pure core (consensus, attribution, merkle,
 * codec, contribution rules, model, inference) never imports I/O — libp2p, Helia, level,
 * ethers providers, node:fs/net/timers — nor touches `process`, timers, clocks or
 * randomness. Transitively: a file is pure only if every file it imports is, so any file a
 * pure one imports (wherever it lives) is checked by the same rules. Exits 1 listing each
 * violation.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

export const PURE_DIRS = ['src/consensus', 'src/attribution', 'src/merkle', 'src/codec', 'src/contribution/rules', 'src/model', 'src/inference']

const FORBIDDEN_MODULES: Array<[RegExp, string]> = [
  [/^(libp2p|@libp2p\/|@chainsafe\/libp2p-)/, 'libp2p'],
  [/^(helia|@helia\/|blockstore-|datastore-|interface-blockstore|interface-datastore)/, 'Helia'],
  [/^(level|classic-level|abstract-level|browser-level)$/, 'level'],
  [/^(node:)?(fs|fs\/promises|net|dgram|http|https|http2|child_process|timers|timers\/promises|worker_threads|cluster|readline|tls|os)$/, 'I/O'],
  [/^(pino|fastify|prom-client|commander)/, 'the node layer'],
  [/^ethers\/providers/, 'an ethers provider']
]
const FORBIDDEN_NAMES = /\b(JsonRpcProvider|WebSocketProvider|BrowserProvider|FallbackProvider|getDefaultProvider)\b/
const FORBIDDEN_GLOBALS: Array<[RegExp, string]> = [
  [/(^|[^.\w])process\s*\./, 'process'],
  [/(^|[^.\w])(setTimeout|setInterval|setImmediate)\s*\(/, 'a timer'],
  [/(^|[^.\w])Date\.now\s*\(/, 'the clock'],
  [/(^|[^.\w])new\s+Date\s*\(\s*\)/, 'the clock'],
  [/(^|[^.\w])performance\s*\.\s*now\s*\(/, 'the clock'],
  [/(^|[^.\w])Math\.random\s*\(/, 'randomness'],
  [/(^|[^.\w])(randomBytes|randomUUID|randomInt|getRandomValues)\s*\(/, 'randomness']
]
/** Relative imports may not reach into the I/O layers either. */
const FORBIDDEN_RELATIVE = /(^|\/)(network|storage|chain)\/|(^|\/)node\//

export interface Violation { file: string, line: number, what: string }

/** Every .ts/.js/.mjs file under `dir` (none when it is missing). */
export function sourceFiles (dir: string): string[] {
  if (!existsSync(dir)) return []
  return readdirSync(dir).flatMap(name => {
    const full = join(dir, name)
    if (statSync(full).isDirectory()) return sourceFiles(full)
    return /\.(ts|js|mjs)$/.test(name) ? [full] : []
  })
}

/**
 * Blanks comments and the contents of string and template literals in one pass (so a
 * "//" inside a string or a quote inside a comment cannot hide code), keeping newlines
 * so line numbers stay right. Import specifiers are kept, marked by their quotes.
 */
export function codeOnly (text: string): string {
  let out = ''
  let i = 0
  const n = text.length
  const blank = (s: string): string => s.replace(/[^\n]/g, ' ')
  while (i < n) {
    const c = text[i] as string
    const next = text[i + 1]
    if (c === '/' && next === '/') {
      const end = text.indexOf('\n', i)
      const stop = end === -1 ? n : end
      out += blank(text.slice(i, stop))
      i = stop
    } else if (c === '/' && next === '*') {
      const end = text.indexOf('*/', i + 2)
      const stop = end === -1 ? n : end + 2
      out += blank(text.slice(i, stop))
      i = stop
    } else if (c === '"' || c === "'" || c === '`') {
      let j = i + 1
      while (j < n && text[j] !== c && !(c !== '`' && text[j] === '\n')) j += text[j] === '\\' ? 2 : 1
      const body = text.slice(i + 1, Math.min(j, n))
      // Keep a specifier right after `from` / `import(` / `require(`: that is what is checked.
      const before = out.slice(-12)
      const keep = c !== '`' && /(from\s*|import\s*\(\s*|require\s*\(\s*|import\s+)$/.test(before)
      out += c + (keep ? body : blank(body)) + (j < n ? c : '')
      i = j + 1
    } else {
      out += c
      i++
    }
  }
  return out
}

/** Where a relative import lands: the file itself, or with `.ts` / `/index.ts`; undefined when not a source file here. */
function resolveImport (from: string, spec: string): string | undefined {
  const base = resolve(dirname(from), spec)
  for (const candidate of [base, `${base}.ts`, join(base, 'index.ts')]) {
    if (existsSync(candidate) && statSync(candidate).isFile() && /\.(ts|js|mjs)$/.test(candidate)) return candidate
  }
  return undefined
}

export function checkPurity (root: string, dirs: string[] = PURE_DIRS): Violation[] {
  const violations: Violation[] = []
  // every file of the pure folders, then every file they import, with who pulled it in
  const queue: Array<{ file: string, via?: string }> = dirs.flatMap(dir => sourceFiles(join(root, dir)).map(file => ({ file })))
  const seen = new Set(queue.map(q => q.file))
  while (queue.length > 0) {
    const { file, via } = queue.shift() as { file: string, via?: string }
    const rel = relative(root, file)
    const suffix = via === undefined ? '' : ` (pure because ${via} imports it)`
    const lines = codeOnly(readFileSync(file, 'utf8')).split('\n')
    lines.forEach((line, i) => {
      const at = { file: rel, line: i + 1 }
      for (const m of line.matchAll(/(?:from\s+|import\s*\(\s*|require\s*\(\s*|^\s*import\s+)['"]([^'"]+)['"]/g)) {
        const spec = m[1] as string
        if (spec.startsWith('.')) {
          if (FORBIDDEN_RELATIVE.test(spec)) violations.push({ ...at, what: `imports ${spec} (an I/O layer)${suffix}` })
          const target = resolveImport(file, spec)
          if (target !== undefined && !seen.has(target)) {
            seen.add(target)
            queue.push({ file: target, via: rel })
          }
          continue
        }
        for (const [re, what] of FORBIDDEN_MODULES) if (re.test(spec)) violations.push({ ...at, what: `imports ${spec} (${what})${suffix}` })
      }
      if (FORBIDDEN_NAMES.test(line)) violations.push({ ...at, what: `uses an ethers provider${suffix}` })
      for (const [re, what] of FORBIDDEN_GLOBALS) if (re.test(line)) violations.push({ ...at, what: `uses ${what}${suffix}` })
    })
  }
  return violations
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const root = join(import.meta.dirname, '..')
  const violations = checkPurity(root)
  for (const v of violations) process.stderr.write(`${v.file}:${v.line}: pure module ${v.what}\n`)
  process.stdout.write(violations.length === 0 ? `purity: ${PURE_DIRS.join(', ')} import no I/O\n` : `purity: ${violations.length} violation(s)\n`)
  process.exitCode = violations.length === 0 ? 0 : 1
}
