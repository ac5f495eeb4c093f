/**
 * The consensus driver (src/consensus/driver.ts), fed by hand: what a Byzantine validator
 * can and cannot do to an honest one.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { ConsensusDriver, type ConsensusSigner, type DriverEffect, type HeightSetup } from '../../src/consensus/driver.ts'
import { headerOf, nilHeader, validatorSetHash, versionValue, type SignedVote, type Version, type VersionHeader, type VersionValue } from '../../src/consensus/version.ts'
import { headerId } from '../../src/consensus/wire.ts'
import type { Vote, VoteType } from '../../src/consensus/types.ts'

const ADDR = ['0x' + '1'.repeat(40), '0x' + '2'.repeat(40), '0x' + '3'.repeat(40), '0x' + '4'.repeat(40)]
const [A, B, C, D] = ADDR as [string, string, string, string]

/** A signature that names what was signed: the tests can tell which header a vote signed. */
const sig = (who: string, type: VoteType, round: number, header: VersionHeader): string => `${who}|${type}|${round}|${headerId(header)}`
const signer = (who: string): ConsensusSigner => ({
  address: who,
  signVote: (type, round, header) => sig(who, type, round, header),
  signProposal: (height, round, validRound, value) => `${who}|proposal|${height}|${round}|${validRound}|${value.id}`
})

const setup = (height = 1): HeightSetup => ({
  height,
  validators: ADDR.map(address => ({ address, power: 1n })),
  proposer: round => ADDR[(height + round) % 4] as string,
  timeouts: { proposeMs: 1000, prevoteMs: 1000, precommitMs: 1000, deltaMs: 100 }
})

async function value (height: number, n: number): Promise<VersionValue> {
  const version: Version = {
    datanet: 'd', height, parent: null, contributions: [], rejected: [], inferences: [], datasetRoot: new Uint8Array(32).fill(n),
    recordCount: n, attributionRoot: new Uint8Array(32), totalAttributed: '0', validatorSetHash: validatorSetHash([]), proposer: B, timestamp: n
  }
  return await versionValue(version)
}

function vote (who: string, type: VoteType, round: number, header: VersionHeader, height = 1): { kind: 'vote', vote: SignedVote, bytes: number } {
  const isNil = header.version === nilHeader(height).version
  const v: Vote = { type, height, round, valueId: isNil ? null : headerId(header), validator: who }
  return { kind: 'vote', vote: { vote: v, header, signature: sig(who, type, round, header) }, bytes: 600 }
}

/** Answers `validate` effects (valid unless `invalid`), and collects everything. */
function drive (d: ConsensusDriver, effects: DriverEffect[], all: DriverEffect[], invalid = new Set<string>()): void {
  for (const e of effects) {
    all.push(e)
    if (e.kind === 'validate') drive(d, d.validated(e.value, !invalid.has(e.value.id)), all, invalid)
  }
}

test('a vote whose header differs from its value\'s header never counts for it nor enters its certificate; the two votes are evidence', async () => {
  const d = new ConsensusDriver({ signer: signer(A) })
  const all: DriverEffect[] = []
  drive(d, d.open(setup()), all)
  const V = await value(1, 7)
  const h = headerOf(V)
  const proposer = setup().proposer(0)
  drive(d, d.receive({ kind: 'proposal', proposal: { height: 1, round: 0, validRound: -1, value: V, proposer }, signature: 'p', bytes: 1000 }), all)
  for (const who of [B, C, D]) drive(d, d.receive(vote(who, 'prevote', 0, h)), all)
  // A precommits V itself; B honestly; D with the same version id but a record count one off
  const bogus = { ...h, recordCount: h.recordCount + 1 }
  drive(d, d.receive(vote(B, 'precommit', 0, h)), all)
  drive(d, d.receive(vote(D, 'precommit', 0, bogus)), all)
  assert.not.ok(all.some(e => e.kind === 'decide'), 'A, B and a bogus D are not 2/3 for V: on main the bogus vote counted and entered the certificate')
  drive(d, d.receive(vote(C, 'precommit', 0, h)), all)
  const decide = all.find(e => e.kind === 'decide')
  assert.ok(decide !== undefined && decide.kind === 'decide')
  assert.is(decide.certificate.length, 3)
  for (const c of decide.certificate) assert.is(c.signature, sig(c.validator, 'precommit', 0, h), `${c.validator}'s certificate signature is over V's header`)
  // D's honest precommit too: two different votes for one (height, round, type)
  drive(d, d.receive(vote(D, 'precommit', 0, h)), all)
  const evidence = all.find(e => e.kind === 'evidence')
  assert.ok(evidence !== undefined && evidence.kind === 'evidence', 'two signed precommits of D are evidence, never an overwrite')
  assert.equal(new Set([evidence.first.header.recordCount, evidence.second.header.recordCount]), new Set([h.recordCount, h.recordCount + 1]))
})

test('a value refused as not valid yet (its contributions not fetched) is judged again when proposed again; a lasting refusal is not', async () => {
  for (const lasting of [false, true]) {
    const d = new ConsensusDriver({ signer: signer(A) })
    const all: DriverEffect[] = []
    drive(d, d.open(setup()), all)
    const V = await value(1, 9)
    const propose = (round: number): DriverEffect[] => d.receive({ kind: 'proposal', proposal: { height: 1, round, validRound: -1, value: V, proposer: setup().proposer(round) }, signature: `p${round}`, bytes: 1000 })
    const first = propose(0)
    assert.ok(first.some(e => e.kind === 'validate'), 'judged when first proposed')
    const refused = d.validated(V, false, lasting)
    const prevote = refused.find(e => e.kind === 'send-vote')
    assert.ok(prevote !== undefined && prevote.kind === 'send-vote' && prevote.vote.vote.valueId === null, 'prevotes nil in the round waiting for it')
    // round 1, the same value proposed again
    for (const who of [B, C, D]) d.receive(vote(who, 'prevote', 0, nilHeader(1)))
    drive(d, d.timeout(1, 'prevote', 0), all)
    for (const who of [B, C, D]) d.receive(vote(who, 'precommit', 0, nilHeader(1)))
    drive(d, d.timeout(1, 'precommit', 0), all)
    assert.is(d.round, 1)
    const again = propose(1)
    assert.is(again.some(e => e.kind === 'validate'), !lasting, lasting ? 'a lasting refusal is kept for the height' : 'judged again: on 0fbec52 the first refusal was kept for the height')
    if (!lasting) {
      // here now: the node prevotes it (the machine's own cached refusal is gone too)
      const vote = d.validated(V, true).find(e => e.kind === 'send-vote')
      assert.ok(vote !== undefined && vote.kind === 'send-vote' && vote.vote.vote.round === 1 && vote.vote.vote.valueId !== null, 'prevotes the value once it is here')
    }
  }
})

test('every signed message leaves after the persisted state that records it', async () => {
  const proposerOf0 = setup().proposer(0)
  const d = new ConsensusDriver({ signer: signer(proposerOf0) })
  const all: DriverEffect[] = []
  drive(d, d.open(setup()), all)
  const request = all.find(e => e.kind === 'request-value')
  assert.ok(request !== undefined, 'the proposer of round 0 is asked for a value')
  const V = await value(1, 3)
  const batch = d.value(0, V)
  const firstSend = batch.findIndex(e => e.kind === 'send-proposal' || e.kind === 'send-vote')
  const persist = batch.findIndex(e => e.kind === 'persist')
  assert.ok(persist >= 0 && persist < firstSend, 'persist comes before the proposal and the prevote')
  const state = (batch[persist] as Extract<DriverEffect, { kind: 'persist' }>).state
  assert.is(state.signed['0/prevote'], headerId(headerOf(V)), 'the persisted state already holds the prevote that follows')
  // restarted from that state, it never signs another round-0 prevote, whatever arrives
  const restarted = new ConsensusDriver({ signer: signer(proposerOf0) })
  const after: DriverEffect[] = []
  drive(restarted, restarted.open(setup(), state), after)
  const W = await value(1, 4)
  drive(restarted, restarted.timeout(1, 'propose', 0), after)
  drive(restarted, restarted.receive({ kind: 'proposal', proposal: { height: 1, round: 0, validRound: -1, value: W, proposer: proposerOf0 }, signature: 'p', bytes: 1 }), after)
  for (const e of after) {
    if (e.kind === 'send-vote' && e.vote.vote.validator === proposerOf0 && e.vote.vote.round === 0 && e.vote.vote.type === 'prevote') {
      assert.is(e.vote.vote.valueId, headerId(headerOf(V)), 'only the prevote signed before the crash')
    }
  }
})

test('a flood of 5,000 signed proposals and votes from one validator leaves the driver\'s state bounded', async () => {
  const d = new ConsensusDriver({ signer: signer(A) })
  const all: DriverEffect[] = []
  drive(d, d.open(setup()), all)
  const before = d.stats()
  for (let i = 0; i < 2500; i++) {
    const round = i + 1
    const V = await value(1, i % 250)
    const h = headerOf(V)
    // future rounds of this height, and later heights
    drive(d, d.receive(vote(D, i % 2 === 0 ? 'prevote' : 'precommit', round, h)), all)
    if (setup().proposer(round) === D) drive(d, d.receive({ kind: 'proposal', proposal: { height: 1, round, validRound: -1, value: V, proposer: D }, signature: 'p', bytes: 1 << 20 }), all)
    const later = 2 + (i % 5)
    drive(d, d.receive(vote(D, 'prevote', i, nilHeader(later), later)), all)
  }
  const s = d.stats()
  assert.ok(s.book <= before.book + 4, `votes kept: ${s.book}`)
  assert.ok(s.proposals <= 2 && s.values <= 2, `proposals ${s.proposals}, values ${s.values}`)
  assert.ok(s.futureMessages <= 2 * d.limits.futureMessagesPerSender, `future messages ${s.futureMessages}`)
  assert.ok(s.futureBytes <= 2 * d.limits.futureBytesPerHeight, `future bytes ${s.futureBytes}`)
  assert.is(d.state?.round, 0, 'one validator cannot move the round')
})

test('two different proposals of one proposer for a round: the second is kept as evidence, a third is dropped', async () => {
  const d = new ConsensusDriver({ signer: signer(A) })
  const all: DriverEffect[] = []
  drive(d, d.open(setup()), all)
  const proposer = setup().proposer(0)
  for (let n = 1; n <= 5; n++) drive(d, d.receive({ kind: 'proposal', proposal: { height: 1, round: 0, validRound: -1, value: await value(1, n), proposer }, signature: 'p', bytes: 1 }), all)
  assert.is(all.filter(e => e.kind === 'proposal-evidence').length, 1)
  assert.is(all.filter(e => e.kind === 'validate').length, 2, 'only two values are ever validated per round')
  assert.is(d.stats().proposals, 2)
})

test.run()
