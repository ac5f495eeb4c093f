/**
 * Crash faults, CometBFT-e2e style (test/helpers/soak.ts): 4 validators and 1 plain node
 * as real daemons, contributions sent steadily to all of them, a random validator killed
 * with SIGKILL and restarted exactly as before, cycle after cycle (at most f = 1 down);
 * then the invariants. The long run is scripts/soak.ts.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Soak, startClusterNetwork, summaryLine, type SoakNetwork, type SoakSummary } from '../helpers/soak.ts'
import { hook } from '../helpers/wait.ts'

const SEED = Number(process.env.SOAK_SEED ?? 20261204)
let net: SoakNetwork | undefined
let summary: SoakSummary

test.before(hook(async () => {
  net = await startClusterNetwork({ validators: 4, nodes: 1 })
  summary = await new Soak(net, {
    seed: SEED,
    cycles: 16,
    // a restart takes 5 s on an idle 2-core machine and 30 s on a loaded one: then fewer
    // cycles, and the file stays bounded (no new cycle after 60 s, once 3 ran)
    budgetMs: 60_000,
    minCycles: 3,
    // half the kills hit the validator that just acknowledged a contribution, right after
    // its 201; the others come at random moments
    afterAckShare: 0.5,
    upMs: [200, 1000],
    downMs: [100, 800],
    livenessMs: 30_000,
    settleMs: 30_000,
    log: line => { process.stderr.write(`${line}\n`) }
  }).run()
  process.stderr.write(`soak: ${summaryLine(summary)}\n`)
  for (const v of summary.violations) process.stderr.write(`soak: VIOLATION ${v}\n`)
  for (const l of summary.logLines) process.stderr.write(`soak: ${l}\n`)
}))

test.after(hook(async () => {
  // KEEP_TEST_DIRS=1 keeps the nodes' logs and data directories
  await net?.stop(false)
}))

/** The violation of one invariant, with the log lines that explain it. */
const why = (prefix: string): string => [...summary.violations.filter(v => v.startsWith(prefix)), ...summary.logLines].join('\n')

test('the soak killed and restarted validators while contributions were acknowledged', () => {
  assert.ok(summary.kills >= 3, `only ${summary.kills} kills`)
  assert.ok(summary.acknowledged >= 20, `only ${summary.acknowledged} contributions acknowledged`)
})

test('no acknowledged contribution is lost: each is in a final version on every node', () => {
  assert.is(summary.lost, 0, why('lost'))
  assert.is(summary.final, summary.acknowledged)
})

test('no equivocation evidence: a crash never makes an honest validator sign two votes', () => {
  assert.is(summary.evidence, 0, why('evidence'))
})

test('agreement: every node holds the same version at every height', () => {
  assert.equal(summary.disagreements, [], why('agreement'))
  assert.is(new Set(Object.values(summary.heights)).size, 1, `heights ${JSON.stringify(summary.heights)}`)
})

test('liveness: after every restart the validator catches up and a new version is final within 30 s', () => {
  assert.equal(summary.lagging, [], why('catch-up'))
  assert.equal(summary.stalls, [], why('liveness'))
})

test.run()
