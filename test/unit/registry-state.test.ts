/**
 * The registry log fold (src/chain/registry-state.ts) on the rules the contract enforces
 * against outsiders: the chain's anchor interval, slashed members leaving at the next anchor,
 * and inference escrows counted per payer.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { activeSet, anchorIntervalOf, inferenceEscrow, registrationProblem, replayRegistryLog, setForHeight, type DatanetChainState, type RegistryEvent } from '../../src/chain/registry-state.ts'

const D = '0x' + 'dd'.repeat(32)
const A = '0x' + 'aa'.repeat(20)
const B = '0x' + 'bb'.repeat(20)
const C = '0x' + 'cc'.repeat(20)
const EVENT = '0x' + 'ee'.repeat(32)

type Body = RegistryEvent extends infer T ? T extends RegistryEvent ? Omit<T, 'datanetId' | 'block' | 'logIndex' | 'txHash'> : never : never

/** One transaction per entry, one block each. */
function fold (txs: Body[][]): DatanetChainState {
  const events = txs.flatMap((tx, block) => tx.map((e, i) => ({ ...e, datanetId: D, block, logIndex: i, txHash: `tx${block}` }) as RegistryEvent))
  const state = replayRegistryLog(events).get(D)
  if (state === undefined) throw new Error('no state')
  return state
}

const created: Body = { kind: 'created', validators: [{ address: A, stake: 4n }, { address: B, stake: 1n }, { address: C, stake: 1n }], anchorInterval: 2 }
const commit = (height: number): Body => ({ kind: 'committed', height, version: '0x01', datasetRoot: '0x', attributionRoot: '0x', totalAttributed: 0n })

test('the interval is the chain\'s, whatever the manifest says', () => {
  const state = fold([[created]])
  assert.is(state.anchorInterval, 2)
  assert.is(anchorIntervalOf(state, 5), 2)
  assert.is(anchorIntervalOf(fold([[{ ...created, anchorInterval: undefined }]]), 5), 5, 'a log that does not say: the manifest\'s')
  assert.is(anchorIntervalOf(undefined, 3), 3)
})

test('a slashed member keeps its weight in the set until the next anchor removes it', () => {
  const before = fold([[created], [{ kind: 'slashed', validator: A, amount: 4n }]])
  assert.is(before.validators.get(A)?.status, 'slashed')
  assert.is(before.validators.get(A)?.stake, 0n, 'the stake is burned')
  assert.equal(activeSet(before), [{ address: A, stake: 4n }, { address: B, stake: 1n }, { address: C, stake: 1n }], 'the contract\'s set until the anchor')
  const after = fold([[created], [{ kind: 'slashed', validator: A, amount: 4n }], [commit(2), { kind: 'deactivated', validator: A, height: 2, unlockAt: 0 }]])
  assert.is(after.validators.get(A)?.status, 'slashed')
  assert.equal(activeSet(after).map(v => v.address), [B, C])
  assert.equal(setForHeight(after, 2, 2)?.map(v => v.address), [A, B, C], 'heights up to the anchor: the set that decided them')
  assert.equal(setForHeight(after, 3, 2)?.map(v => v.address), [B, C])
})

test('an inference escrow counts for its payer only', () => {
  const state = fold([[created], [{ kind: 'inference-paid', eventId: EVENT, payer: C, amount: 1n }], [{ kind: 'inference-paid', eventId: EVENT.toUpperCase().replace('0X', '0x'), payer: B, amount: 7n }]])
  assert.equal(inferenceEscrow(state, EVENT, B), { payer: B, amount: 7n, block: 2 })
  assert.equal(inferenceEscrow(state, EVENT, C.toUpperCase().replace('0X', '0x')), { payer: C, amount: 1n, block: 1 })
  assert.is(inferenceEscrow(state, EVENT, A), undefined)
  assert.is(state.totalFunded, 8n)
})

test('a registration is the manifest\'s datanet only with its genesis set and interval (issue 12: id squatting)', () => {
  const terms = { anchorInterval: 2, validators: [{ address: '0x' + 'AA'.repeat(20), stake: '4' }, { address: B, stake: '1' }, { address: C, stake: 1n }] }
  assert.is(registrationProblem(undefined, terms), undefined, 'nothing registered yet')
  assert.is(registrationProblem(fold([[created]]), terms), undefined, 'the same set in any order and case')
  const squatter = '0x' + '5a'.repeat(20)
  assert.match(registrationProblem(fold([[{ kind: 'created', validators: [{ address: squatter, stake: 1n }], anchorInterval: 2 }]]), terms) ?? '', new RegExp(`genesis set.*${squatter} is not in the manifest.*is missing`))
  assert.match(registrationProblem(fold([[{ ...created, validators: [{ address: A, stake: 1n }, { address: B, stake: 1n }, { address: C, stake: 1n }] } as Body]]), terms) ?? '', /staked 1 wei, the manifest says 4/)
  assert.match(registrationProblem(fold([[{ ...created, anchorInterval: 65535 } as Body]]), terms) ?? '', /every 65535 versions, the manifest every 2/)
})

test.run()
