/**
 * Runs the deterministic consensus simulation (test/sim/harness.ts: the node's
 * ConsensusDriver on real versions) over many seeds.
 *
 *   node scripts/sim-consensus.ts --seeds 1000 [--from 0] [--validators 7] [--heights 5]
 *       prints each failing seed with the violated invariant; exits 1 if any failed.
 *   node scripts/sim-consensus.ts --replay SEED [same options]
 *       runs one seed and prints its full event trace (identical from run to run).
 *
 * Options: --scenario random|attack|lock-attack|forged-valid-round|bogus-header|invalid|flood|torn
 * (default random: random faults; attack: equivocation and partitions; the others: one
 * attack each, see targetedScenario), --broken NAME (a broken variant, to see the
 * invariants catch it: lock-forgetting, trust-valid-round, by-version-id, accept-all,
 * unbounded, send-before-persist, amnesia; `--broken target`: the one the scenario targets),
 * --max-loss P (default 0.3), --quiet.
 */
import { parseArgs } from 'node:util'
import { BROKEN, CATCHES, TARGETED, randomScenario, runScenario, targetedScenario, type BrokenName, type RunOptions, type Scenario, type SimResult, type TargetedName } from '../test/sim/harness.ts'

const { values } = parseArgs({
  options: {
    seeds: { type: 'string' },
    from: { type: 'string', default: '0' },
    validators: { type: 'string' },
    heights: { type: 'string' },
    replay: { type: 'string' },
    scenario: { type: 'string', default: 'random' },
    broken: { type: 'string' },
    'max-loss': { type: 'string' },
    quiet: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false }
  }
})

function usage (code: number): never {
  process.stderr.write(`usage: node scripts/sim-consensus.ts --seeds N [--from S] [--validators N] [--heights H] [--scenario random|attack|${TARGETED.join('|')}] [--broken NAME|target]\n` +
    '       node scripts/sim-consensus.ts --replay SEED [same options]\n')
  process.exit(code)
}

if (values.help) usage(0)

function int (name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined
  const n = Number(text)
  if (!Number.isSafeInteger(n) || n < 0) {
    process.stderr.write(`--${name} wants a non-negative integer, got ${text}\n`)
    usage(2)
  }
  return n
}

const validators = int('validators', values.validators)
const heights = int('heights', values.heights)
const maxLoss = values['max-loss'] === undefined ? undefined : Number(values['max-loss'])
if (validators !== undefined && validators < 1) usage(2)
if (maxLoss !== undefined && !(maxLoss >= 0 && maxLoss < 1)) usage(2)
const kind = values.scenario
const targeted = (TARGETED as readonly string[]).includes(kind) ? kind as TargetedName : undefined
if (kind !== 'random' && kind !== 'attack' && targeted === undefined) usage(2)
let broken: BrokenName | undefined
if (values.broken !== undefined) {
  const name = values.broken === 'target' ? (targeted !== undefined ? CATCHES[targeted] : 'lock-forgetting') : values.broken
  if (!(name in BROKEN)) { process.stderr.write(`--broken: one of ${Object.keys(BROKEN).join(', ')}\n`); usage(2) }
  broken = name as BrokenName
}

function build (seed: number): { scenario: Scenario, options: RunOptions } {
  if (targeted !== undefined) return targetedScenario(targeted, seed)
  const opts: Parameters<typeof randomScenario>[1] = { attack: kind === 'attack' }
  if (validators !== undefined) opts.validators = validators
  if (heights !== undefined) opts.heights = heights
  if (maxLoss !== undefined) opts.maxLoss = maxLoss
  return { scenario: randomScenario(seed, opts), options: {} }
}

function run (seed: number, trace: 'full' | 'tail' | 'off'): SimResult {
  const { scenario, options } = build(seed)
  return runScenario(scenario, { ...options, ...(broken !== undefined ? BROKEN[broken] : {}), trace })
}

function summary (r: SimResult): string {
  const s = r.stats
  return `seed ${r.seed}: ${r.ok ? 'ok' : `VIOLATION ${r.violation?.invariant}`} — ${s.simulatedMs} ms simulated, ${s.events} events, ${s.handled} driver calls, ` +
    `${s.sent} sent / ${s.dropped} dropped / ${s.refused} refused, max round ${s.maxRound}, ${s.crashes} crashes (torn ${JSON.stringify(s.torn)}), ` +
    `${s.evidence} evidence, ${s.synced} synced, book <= ${s.maxBook}, good from ${s.goodFromMs} ms`
}

if (values.replay !== undefined) {
  const seed = int('replay', values.replay) as number
  const r = run(seed, 'full')
  process.stdout.write(r.trace.join('\n') + '\n')
  process.stdout.write(summary(r) + '\n')
  if (r.violation !== undefined) process.stdout.write(`${r.violation.invariant} at ${r.violation.timeMs} ms: ${r.violation.message}\n`)
  process.exitCode = r.ok ? 0 : 1
} else {
  const count = int('seeds', values.seeds)
  if (count === undefined) usage(2)
  const from = int('from', values.from) as number
  let failed = 0
  const started = process.hrtime.bigint()
  for (let seed = from; seed < from + count; seed++) {
    const r = run(seed, 'off')
    if (!r.ok) {
      failed++
      process.stdout.write(`FAIL ${summary(r)}\n  ${r.violation?.invariant}: ${r.violation?.message}\n  replay: node scripts/sim-consensus.ts --replay ${seed}` +
        `${kind !== 'random' ? ` --scenario ${kind}` : ''}${validators !== undefined ? ` --validators ${validators}` : ''}${heights !== undefined ? ` --heights ${heights}` : ''}` +
        `${maxLoss !== undefined ? ` --max-loss ${maxLoss}` : ''}${broken !== undefined ? ` --broken ${broken}` : ''}\n`)
    } else if (!values.quiet && process.stderr.isTTY) {
      process.stderr.write(`\r${seed - from + 1}/${count} seeds, ${failed} failed`)
    }
  }
  if (!values.quiet && process.stderr.isTTY) process.stderr.write('\n')
  const secs = Number(process.hrtime.bigint() - started) / 1e9
  process.stdout.write(`${count - failed} passed, ${failed} failed (seeds ${from}..${from + count - 1}, ${secs.toFixed(1)} s)\n`)
  process.exitCode = failed > 0 ? 1 : 0
}
