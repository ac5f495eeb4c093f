/**
 * The house rule (DESIGN §2), checked: the pure core (consensus, attribution, merkle,
 * codec, contribution rules) never imports I/O — libp2p, Helia, level, ethers providers,
 * node:fs/net/timers — nor touches `process` or timers. Exits 1 listing each violation.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

export const PURE_DIRS = ['src/consensus', 'src/attribution', 'src/merkle', 'src/codec', 'src/contribution/rules']

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

/** Removes comments and string contents, keeping line numbers, so only code is checked. */
function codeOnly (text: string): string {
  return text
    .replace(/\/\*[\s\S]*?\*\//g, m => m.replace(/[^\n]/g, ' '))
    .replace(/\/\/[^\n]*/g, '')
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
        const code = line.replace(/(['"`])(?:\\.|(?!\1).)*\1/g, '""')
        for (const [re, what] of FORBIDDEN_GLOBALS) if (re.test(code)) violations.push({ ...at, what: `uses ${what}` })
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
