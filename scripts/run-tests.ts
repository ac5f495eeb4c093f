/**
 * Runs every test and ends with one line "N passed, N failed" computed from the run:
 * the type check, the purity rule and the one-writer rule (one check each), uvu unit tests in one process,
 * and each integration test file in a process of its own with a deadline, so a hung
 * test fails instead of hanging CI. Usage: node scripts/run-tests.ts [kind...]
 */
import { spawn } from 'node:child_process'
import { existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'

const root = join(import.meta.dirname, '..')
const uvuBin = join(root, 'node_modules/uvu/bin.js')

interface Outcome { name: string, passed: number, failed: number, skipped: number, ms: number, why?: string[], crashedFirst?: string[] }

const ANSI = /\u001b\[[0-9;]*m/g

function run (cmd: string, args: string[], timeoutMs: number, env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null, output: string, timedOut: boolean }> {
  return new Promise(resolve => {
    const child = spawn(cmd, args, { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
    let output = ''
    const onData = (b: Buffer): void => { const s = b.toString(); output += s; process.stdout.write(s) }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      // the whole group: the test and every daemon it started
      try { process.kill(-(child.pid as number), 'SIGKILL') } catch {}
    }, timeoutMs)
    child.on('close', code => {
      clearTimeout(timer)
      resolve({ code, output, timedOut })
    })
  })
}

function uvuCounts (output: string): { total: number, passed: number, skipped: number } | undefined {
  const text = output.replace(ANSI, '')
  const total = /Total:\s+(\d+)/.exec(text)
  const passed = /Passed:\s+(\d+)/.exec(text)
  const skipped = /Skipped:\s+(\d+)/.exec(text)
  if (total === null || passed === null) return undefined
  return { total: Number(total[1]), passed: Number(passed[1]), skipped: Number(skipped?.[1] ?? 0) }
}

/** The failed tests' titles and the first line of each one's error, for the end of the log. */
function failures (output: string, max = 3): string[] {
  const lines = output.replace(ANSI, '').split('\n')
  const out: string[] = []
  lines.forEach((line, i) => {
    const title = /^\s*FAIL\s+"(.*)"\s*$/.exec(line)?.[1]
    if (title === undefined) return
    const message = lines.slice(i + 1).find(l => l.trim() !== '')?.trim() ?? ''
    out.push(`"${title}": ${message.slice(0, 400)}`)
  })
  return out.length > max ? [...out.slice(0, max), `… and ${out.length - max} more`] : out
}

/**
 * A uvu run; one that died before its summary (not a timeout, not a failed assertion) is run
 * once more, and the crash is reported at the end of the log either way: CI once died in
 * the unit group with nothing but "exited with 1", and 15 runs here did not reproduce it.
 */
async function uvu (name: string, dir: string, pattern: string, timeoutMs: number): Promise<Outcome> {
  const first = await uvuOnce(name, dir, pattern, timeoutMs)
  if (first.crashed !== true) return first
  process.stdout.write(`\n${name}: died before its summary; running it once more\n`)
  const again = await uvuOnce(name, dir, pattern, timeoutMs)
  return { ...again, ms: first.ms + again.ms, crashedFirst: first.why }
}

async function uvuOnce (name: string, dir: string, pattern: string, timeoutMs: number): Promise<Outcome & { crashed?: boolean }> {
  const t0 = Date.now()
  const { code, output, timedOut } = await run(process.execPath, [...process.execArgv, uvuBin, dir, pattern], timeoutMs)
  const counts = uvuCounts(output)
  const ms = Date.now() - t0
  if (counts === undefined) {
    const why = timedOut ? `timed out after ${timeoutMs} ms` : `exited with ${code} before uvu's summary`
    process.stdout.write(`\n${name}: ${why}\n`)
    return { name, passed: 0, failed: 1, skipped: 0, ms, why: [why, ...failures(output), ...lastWords(output)], crashed: !timedOut }
  }
  let failed = counts.total - counts.passed - counts.skipped
  if (failed === 0 && (code !== 0 || timedOut)) failed = 1
  return { name, passed: counts.passed, failed, skipped: counts.skipped, ms, why: failed > 0 ? failures(output) : undefined }
}

async function check (name: string, args: string[], timeoutMs: number): Promise<Outcome> {
  const t0 = Date.now()
  process.stdout.write(`\n== ${name}\n`)
  const { code } = await run(args[0] as string, args.slice(1), timeoutMs)
  return { name, passed: code === 0 ? 1 : 0, failed: code === 0 ? 0 : 1, skipped: 0, ms: Date.now() - t0 }
}

function testFiles (dir: string): string[] {
  const full = join(root, dir)
  if (!existsSync(full)) return []
  return readdirSync(full).filter(f => f.endsWith('.test.ts')).sort()
}

/**
 * A process that died before its summary: the file it was in and its last lines (the crash's
 * trace), so the end of the log says where and why.
 */
function lastWords (output: string, max = 12): string[] {
  const lines = output.replace(ANSI, '').split('\n').map(l => l.trimEnd()).filter(l => l.trim() !== '')
  const file = [...lines].reverse().map(l => /([\w.-]+\.test\.ts)/.exec(l)?.[1]).find(f => f !== undefined)
  return [...(file !== undefined ? [`last file started: ${file}`] : []), ...lines.slice(-max).map(l => l.slice(0, 300))]
}

const kinds = process.argv.slice(2)
const want = (kind: string): boolean => kinds.length === 0 || kinds.includes(kind)
const outcomes: Outcome[] = []

if (want('typecheck')) outcomes.push(await check('typecheck', [process.execPath, join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json', '--noEmit'], 300_000))
if (want('purity')) outcomes.push(await check('purity', [process.execPath, ...process.execArgv, join(root, 'scripts/check-purity.ts')], 60_000))
if (want('writers')) outcomes.push(await check('writers', [process.execPath, ...process.execArgv, join(root, 'scripts/check-writers.ts')], 60_000))
for (const kind of ['unit', 'sim']) {
  if (want(kind) && testFiles(`test/${kind}`).length > 0) {
    process.stdout.write(`\n== ${kind}\n`)
    outcomes.push(await uvu(kind, `test/${kind}`, '\\.test\\.ts$', 600_000))
  }
}
for (const kind of ['integration', 'chain', 'e2e']) {
  if (!want(kind)) continue
  for (const file of testFiles(`test/${kind}`)) {
    process.stdout.write(`\n== ${kind}/${file}\n`)
    const escaped = file.replace(/[.]/g, '\\.')
    outcomes.push(await uvu(`${kind}/${file}`, `test/${kind}`, `^${escaped}$`, 900_000))
  }
}

process.stdout.write('\n')
for (const o of outcomes) {
  process.stdout.write(`${o.failed > 0 ? 'FAIL' : 'ok  '}  ${o.name.padEnd(40)} ${String(o.passed).padStart(4)} passed ${String(o.failed).padStart(3)} failed  ${(o.ms / 1000).toFixed(1)}s\n`)
}
// what failed, again at the end: a CI page often shows only the log's last lines
for (const o of outcomes.filter(o => o.failed > 0 && o.why !== undefined && o.why.length > 0)) {
  process.stdout.write(`\n${o.name}:\n${(o.why ?? []).map(w => `  ${w}`).join('\n')}\n`)
}
// a crash the rerun did not repeat is still a bug to find: said at the end, where CI shows it
for (const o of outcomes.filter(o => o.crashedFirst !== undefined)) {
  process.stdout.write(`\n${o.name}: CRASHED on its first run (${o.failed > 0 ? 'and failed again' : 'passed when run again'}):\n${(o.crashedFirst ?? []).map(w => `  ${w}`).join('\n')}\n`)
}
const passed = outcomes.reduce((n, o) => n + o.passed, 0)
const failed = outcomes.reduce((n, o) => n + o.failed, 0)
const skipped = outcomes.reduce((n, o) => n + o.skipped, 0)
process.stdout.write(`${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ''}\n`)
process.exitCode = failed > 0 ? 1 : 0
