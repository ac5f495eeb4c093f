/**
 * Crash-fault soak (test/helpers/soak.ts) for as long as asked:
 *
 *   bash scripts/run.sh node scripts/soak.ts --cycles 500 [--validators 4] [--nodes 1] [--seed S]
 *       [--every 10] [--budget-s S] [--after-ack 50] [--up-ms 500-3000] [--down-ms 300-2500] [--send-ms 150-600]
 *       [--devnet] [--chain] [--no-wait] [--equivocate] [--keep]
 *
 * --after-ack P: P% of the kills hit the validator that just acknowledged a contribution,
 * right after its 201 (default 0: random moments).
 * --chain runs it as the operator did: `datanet devnet` (anvil, the registry, the devnet's
 * datanet with its genesis set on chain); --devnet keeps the chainless cluster but uses the
 * devnet's consensus timeouts; --no-wait kills the next validator without waiting for the
 * last one to be back (the operator's pace: 40 kills in 2.5 minutes); --equivocate makes
 * validator-0 byzantine (DATANET_FAULT=equivocate), to see the evidence invariant fail.
 *
 * Each cycle kill -9s a random validator and restarts it exactly as it was started. Prints a
 * line every --every cycles and a final line (acknowledged / final / lost / evidence /
 * time); exits 1 on any violated invariant, printing the violations and the nodes' log
 * lines about invalid proposals and evidence. The network's directory is kept on failure
 * (or with --keep).
 */
import { parseArgs } from 'node:util'
import { runSoak, startClusterNetwork, startDevnetNetwork, summaryLine, SOAK_CONSENSUS, type SoakConsensus } from '../test/helpers/soak.ts'

const { values } = parseArgs({
  options: {
    cycles: { type: 'string', default: '100' },
    validators: { type: 'string', default: '4' },
    nodes: { type: 'string', default: '1' },
    seed: { type: 'string' },
    every: { type: 'string', default: '10' },
    'budget-s': { type: 'string' },
    'up-ms': { type: 'string' },
    'down-ms': { type: 'string' },
    'send-ms': { type: 'string' },
    'after-ack': { type: 'string' },
    'liveness-ms': { type: 'string' },
    'settle-ms': { type: 'string' },
    devnet: { type: 'boolean', default: false },
    chain: { type: 'boolean', default: false },
    equivocate: { type: 'boolean', default: false },
    'no-wait': { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false }
  }
})

function usage (code: number): never {
  process.stderr.write('usage: node scripts/soak.ts --cycles N [--validators 4] [--nodes 1] [--seed S] [--every 10] [--budget-s S] [--after-ack PERCENT] [--up-ms A-B] [--down-ms A-B] [--send-ms A-B]\n' +
    '       [--liveness-ms MS] [--settle-ms MS] [--devnet (the devnet\'s consensus timeouts)] [--chain (a devnet with anvil and the registry)]\n' +
    '       [--equivocate (validator-0 signs conflicting prevotes: the harness must report evidence)] [--no-wait (next kill without waiting for the restart)] [--keep]\n')
  process.exit(code)
}

const int = (name: string, raw: string | undefined, min: number): number | undefined => {
  if (raw === undefined) return undefined
  const n = Number(raw)
  if (!Number.isSafeInteger(n) || n < min) { process.stderr.write(`--${name}: expected an integer >= ${min}, got "${raw}"\n`); usage(2) }
  return n
}
const range = (name: string, raw: string | undefined): [number, number] | undefined => {
  if (raw === undefined) return undefined
  const m = /^(\d+)-(\d+)$/.exec(raw)
  if (m === null || Number(m[1]) > Number(m[2])) { process.stderr.write(`--${name}: expected MIN-MAX in ms, got "${raw}"\n`); usage(2) }
  return [Number(m[1]), Number(m[2])]
}

if (values.help) usage(0)
const cycles = int('cycles', values.cycles, 1) as number
const validators = int('validators', values.validators, 1) as number
const nodes = int('nodes', values.nodes, 0) as number
const every = int('every', values.every, 1) as number
const seed = int('seed', values.seed, 0) ?? Math.floor(Math.random() * 2 ** 31)
/** --devnet: config/devnet-manifest.json's timeouts, as the operator's devnet runs. */
const DEVNET_CONSENSUS: SoakConsensus = { versionIntervalMs: 2000, proposeTimeoutMs: 2000, prevoteTimeoutMs: 1000, precommitTimeoutMs: 1000, timeoutDeltaMs: 500 }

const log = (line: string): void => { process.stdout.write(`${line}\n`) }
const net = values.chain
  ? await startDevnetNetwork({ validators, nodes, log })
  : await startClusterNetwork({ validators, nodes, consensus: values.devnet ? DEVNET_CONSENSUS : SOAK_CONSENSUS, equivocator: values.equivocate })
const stopOnSignal = (): void => { void net.stop(true).finally(() => process.exit(130)) }
process.once('SIGINT', stopOnSignal)
process.once('SIGTERM', stopOnSignal)
const summary = await runSoak(net, {
  cycles,
  seed,
  budgetMs: (int('budget-s', values['budget-s'], 1) ?? Number.POSITIVE_INFINITY) * 1000,
  upMs: range('up-ms', values['up-ms']),
  downMs: range('down-ms', values['down-ms']),
  sendEveryMs: range('send-ms', values['send-ms']),
  afterAckShare: values['after-ack'] === undefined ? undefined : Number(values['after-ack']) / 100,
  livenessMs: int('liveness-ms', values['liveness-ms'], 1),
  settleMs: int('settle-ms', values['settle-ms'], 1),
  readyBeforeNext: !values['no-wait'],
  keep: values.keep,
  keepOnFailure: true,
  log,
  onCycle: (cycle, p) => { if (cycle % every === 0 || cycle === cycles) log(`cycle ${cycle}/${cycles}: kills ${p.kills}, acknowledged ${p.acknowledged}, height ${p.height}, ${p.seconds.toFixed(0)} s`) }
})
log(summaryLine(summary))
for (const v of summary.violations) log(`VIOLATION ${v}`)
for (const l of summary.logLines) log(l)
process.exit(summary.violations.length > 0 ? 1 : 0)
