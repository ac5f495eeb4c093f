/**
 * The house rule (DESIGN §2), checked: the pure core (consensus, attribution, merkle,
 * codec, contribution rules) never imports I/O — libp2p, Helia, level, ethers providers,
 * node:fs/net/timers — nor touches `process` or timers. Exits 1 listing each violation.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
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
  [/(^|[^.\w])Math\.random\s*\(/, 'randomness']
]
/** Relative imports may not reach into the I/O layers either. */
const FORBIDDEN_RELATIVE = /(^|\/)(network|storage|chain)\/|(^|\/)node\//

export interface Violation { file: string, line: number, what: string }

function sourceFiles (dir: string): string[] {
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

export function checkPurity (root: string, dirs: string[] = PURE_DIRS): Violation[] {
  const violations: Violation[] = []
  for (const dir of dirs) {
    for (const file of sourceFiles(join(root, dir))) {
      const rel = relative(root, file)
      const lines = codeOnly(readFileSync(file, 'utf8')).split('\n')
      lines.forEach((line, i) => {
        const at = { file: rel, line: i + 1 }
        for (const m of line.matchAll(/(?:from\s+|import\s*\(\s*|require\s*\(\s*|^\s*import\s+)['"]([^'"]+)['"]/g)) {
          const spec = m[1] as string
          if (spec.startsWith('.')) {
            if (FORBIDDEN_RELATIVE.test(spec)) violations.push({ ...at, what: `imports ${spec} (an I/O layer)` })
            continue
          }
          for (const [re, what] of FORBIDDEN_MODULES) if (re.test(spec)) violations.push({ ...at, what: `imports ${spec} (${what})` })
        }
        if (FORBIDDEN_NAMES.test(line)) violations.push({ ...at, what: 'uses an ethers provider' })
        for (const [re, what] of FORBIDDEN_GLOBALS) if (re.test(line)) violations.push({ ...at, what: `uses ${what}` })
      })
    }
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
