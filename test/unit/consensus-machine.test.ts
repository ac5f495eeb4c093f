import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { HeightMachine, MAX_WORK_ALLOWANCE_MS, WORK_RECORDS_PER_S, proposerSchedule, quorum, timeoutMs, timeoutsForWork } from '../../src/consensus/machine.ts'
import type { ConsensusEffect, HeightConfig, Proposal, Validator, Vote } from '../../src/consensus/types.ts'

interface Val { id: string, invalid?: boolean }
const validators: Validator[] = ['0xa', '0xb', '0xc', '0xd'].map(address => ({ address, power: 10n }))
const schedule = proposerSchedule(validators)
const timeouts = { proposeMs: 1000, prevoteMs: 500, precommitMs: 500, deltaMs: 250 }

function config (self: string | undefined, height = 1): HeightConfig<Val> {
  return { height, validators, self, timeouts, proposer: r => schedule(height, r), idOf: v => v.id, isValid: v => v.invalid !== true }
}

const vote = (type: Vote['type'], validator: string, valueId: string | null, round = 0, height = 1): Vote => ({ type, height, round, valueId, validator })
const ofKind = <K extends ConsensusEffect<Val>['kind']>(effects: Array<ConsensusEffect<Val>>, kind: K): Array<Extract<ConsensusEffect<Val>, { kind: K }>> =>
  effects.filter((e): e is Extract<ConsensusEffect<Val>, { kind: K }> => e.kind === kind)

/** A validator that is not the proposer of round 0. */
function follower (round = 0): string {
  return (validators.find(v => v.address !== schedule(1, round)) as Validator).address
}

test('quorum: at least 2/3 decides, more than 1/3 skips rounds', () => {
  const q = quorum(validators)
  assert.is(q.total, 40n)
  assert.not.ok(q.hasTwoThirds(26n))
  assert.ok(q.hasTwoThirds(27n))
  assert.not.ok(q.hasOneThird(13n))
  assert.ok(q.hasOneThird(14n))
  assert.ok(quorum([{ address: 'x', power: 2n }, { address: 'y', power: 1n }]).hasTwoThirds(2n), 'exactly 2/3 is a quorum')
})

test('proposer schedule: stake-weighted, spread out, deterministic', () => {
  const skewed = proposerSchedule([{ address: '0xa', power: 3n }, { address: '0xb', power: 1n }])
  const counts = new Map<string, number>()
  for (let k = 0; k < 400; k++) counts.set(skewed(k, 0), (counts.get(skewed(k, 0)) ?? 0) + 1)
  assert.is(counts.get('0xa'), 300)
  assert.is(counts.get('0xb'), 100)
  assert.is(skewed(5, 2), skewed(7, 0), 'round r of height h is slot h + r')
  const equal = new Set(Array.from({ length: 4 }, (_, k) => schedule(k, 0)))
  assert.is(equal.size, 4, 'equal stakes: everyone proposes once per cycle')
})

test('timeouts grow with the round', () => {
  assert.is(timeoutMs(timeouts, 'propose', 0), 1000)
  assert.is(timeoutMs(timeouts, 'propose', 4), 2000)
})

test('the propose timeout allows for the records pending, bounded; the other steps do not change', () => {
  assert.is(timeoutsForWork(timeouts, 0), timeouts)
  const big = timeoutsForWork(timeouts, 10 * WORK_RECORDS_PER_S)
  assert.equal(big, { ...timeouts, proposeMs: timeouts.proposeMs + 10_000 })
  assert.is(timeoutMs(big, 'propose', 2), timeouts.proposeMs + 10_000 + 2 * timeouts.deltaMs)
  assert.is(timeoutsForWork(timeouts, 1e12).proposeMs, timeouts.proposeMs + MAX_WORK_ALLOWANCE_MS)
  for (const odd of [-5, Number.NaN, Number.POSITIVE_INFINITY]) assert.is(timeoutsForWork(timeouts, odd), timeouts)
})

test('happy path: proposal, 2/3 prevotes → lock and precommit, 2/3 precommits → decide with a certificate', () => {
  const self = follower()
  const m = new HeightMachine(config(self))
  const started = m.handle({ kind: 'start' })
  assert.equal(ofKind(started, 'schedule-timeout').map(e => e.step), ['propose'])
  const value = { id: 'v1' }
  const proposal: Proposal<Val> = { height: 1, round: 0, value, validRound: -1, proposer: schedule(1, 0) }
  const afterProposal = m.handle({ kind: 'proposal', proposal })
  assert.equal(ofKind(afterProposal, 'broadcast-vote').map(e => e.vote), [vote('prevote', self, 'v1')])
  const others = validators.map(v => v.address).filter(a => a !== self)
  m.handle({ kind: 'vote', vote: vote('prevote', others[0] as string, 'v1') })
  const locked = m.handle({ kind: 'vote', vote: vote('prevote', others[1] as string, 'v1') })
  assert.equal(ofKind(locked, 'broadcast-vote').map(e => e.vote), [vote('precommit', self, 'v1')])
  assert.is(m.state.lockedRound, 0)
  m.handle({ kind: 'vote', vote: vote('precommit', others[0] as string, 'v1') })
  const decided = m.handle({ kind: 'vote', vote: vote('precommit', others[1] as string, 'v1') })
  const d = ofKind(decided, 'decide')[0]
  assert.ok(d !== undefined)
  assert.is(d.value.id, 'v1')
  assert.is(d.certificate.length, 3)
  assert.is(m.state.step, 'decided')
})

test('the proposer asks for a value, then proposes it', () => {
  const m = new HeightMachine(config(schedule(1, 0)))
  const started = m.handle({ kind: 'start' })
  assert.equal(ofKind(started, 'request-value').map(e => e.round), [0])
  const proposed = m.handle({ kind: 'value', round: 0, value: { id: 'mine' } })
  assert.is(ofKind(proposed, 'broadcast-proposal')[0]?.proposal.value.id, 'mine')
  assert.is(ofKind(proposed, 'broadcast-vote')[0]?.vote.valueId, 'mine', 'and prevotes for it')
})

test('an invalid proposal gets a nil prevote; a proposal from the wrong proposer is ignored', () => {
  const self = follower()
  const m = new HeightMachine(config(self))
  m.handle({ kind: 'start' })
  const wrong = m.handle({ kind: 'proposal', proposal: { height: 1, round: 0, value: { id: 'x' }, validRound: -1, proposer: self } })
  assert.is(ofKind(wrong, 'broadcast-vote').length, 0)
  const bad = m.handle({ kind: 'proposal', proposal: { height: 1, round: 0, value: { id: 'bad', invalid: true }, validRound: -1, proposer: schedule(1, 0) } })
  assert.equal(ofKind(bad, 'broadcast-vote').map(e => e.vote.valueId), [null])
})

test('timeouts: propose → nil prevote, prevote → nil precommit, precommit → next round', () => {
  const self = follower()
  const m = new HeightMachine(config(self))
  m.handle({ kind: 'start' })
  assert.equal(ofKind(m.handle({ kind: 'timeout', step: 'propose', round: 0 }), 'broadcast-vote').map(e => [e.vote.type, e.vote.valueId]), [['prevote', null]])
  assert.equal(ofKind(m.handle({ kind: 'timeout', step: 'prevote', round: 0 }), 'broadcast-vote').map(e => [e.vote.type, e.vote.valueId]), [['precommit', null]])
  m.handle({ kind: 'timeout', step: 'precommit', round: 0 })
  assert.is(m.state.round, 1)
  assert.is(m.state.step, 'propose')
  assert.is(ofKind(m.handle({ kind: 'timeout', step: 'propose', round: 0 }), 'broadcast-vote').length, 0, 'a stale timeout does nothing')
})

test('a locked validator prevotes nil for another value, unless the proposal carries a later polka', () => {
  const self = follower()
  const others = validators.map(v => v.address).filter(a => a !== self)
  const m = new HeightMachine(config(self))
  m.handle({ kind: 'start' })
  m.handle({ kind: 'proposal', proposal: { height: 1, round: 0, value: { id: 'A' }, validRound: -1, proposer: schedule(1, 0) } })
  for (const o of others.slice(0, 2)) m.handle({ kind: 'vote', vote: vote('prevote', o, 'A') })
  assert.is(m.state.lockedValue?.id, 'A')
  // round 1: no decision; another value proposed fresh
  m.handle({ kind: 'timeout', step: 'precommit', round: 0 })
  const r1 = m.handle({ kind: 'proposal', proposal: { height: 1, round: 1, value: { id: 'B' }, validRound: -1, proposer: schedule(1, 1) } })
  if (schedule(1, 1) !== self) assert.equal(ofKind(r1, 'broadcast-vote').map(e => e.vote.valueId), [null], 'locked on A: nil for B')
})

test('restarting from the persisted state never signs a different vote for the same round and type', () => {
  const self = follower()
  const m = new HeightMachine(config(self))
  m.handle({ kind: 'start' })
  m.handle({ kind: 'proposal', proposal: { height: 1, round: 0, value: { id: 'A' }, validRound: -1, proposer: schedule(1, 0) } })
  const persisted = m.state
  assert.is(persisted.signed['0/prevote'], 'A')
  const restarted = new HeightMachine(config(self), persisted)
  const resumed = restarted.handle({ kind: 'start' })
  assert.equal(ofKind(resumed, 'broadcast-vote').map(e => e.vote.valueId), ['A'], 're-sends its prevote')
  const afterTimeout = restarted.handle({ kind: 'timeout', step: 'propose', round: 0 })
  assert.is(ofKind(afterTimeout, 'broadcast-vote').length, 0, 'the propose timeout no longer applies')
  const prevoteTimeout = restarted.handle({ kind: 'timeout', step: 'prevote', round: 0 })
  assert.equal(ofKind(prevoteTimeout, 'broadcast-vote').map(e => [e.vote.type, e.vote.valueId]), [['precommit', null]])
  assert.is(restarted.state.signed['0/prevote'], 'A')
})

test('conflicting votes of one validator are evidence; only the first counts', () => {
  const m = new HeightMachine(config(undefined))
  m.handle({ kind: 'start' })
  m.handle({ kind: 'vote', vote: vote('prevote', '0xb', 'A') })
  const e = m.handle({ kind: 'vote', vote: vote('prevote', '0xb', 'B') })
  const ev = ofKind(e, 'evidence')
  assert.is(ev.length, 1)
  assert.is(ev[0]?.first.valueId, 'A')
  assert.is(ev[0]?.second.valueId, 'B')
  assert.is(ofKind(m.handle({ kind: 'vote', vote: vote('prevote', '0xb', 'B') }), 'evidence').length, 0, 'reported once')
})

test('f+1 of the power in a later round makes a lagging validator join it', () => {
  const self = follower()
  const m = new HeightMachine(config(self))
  m.handle({ kind: 'start' })
  const others = validators.map(v => v.address).filter(a => a !== self)
  m.handle({ kind: 'vote', vote: vote('prevote', others[0] as string, null, 3) })
  assert.is(m.state.round, 0, '1/4 is not more than 1/3')
  m.handle({ kind: 'vote', vote: vote('prevote', others[1] as string, null, 3) })
  assert.is(m.state.round, 3)
})

test.run()
