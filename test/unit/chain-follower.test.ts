import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { join } from 'node:path'
import { ChainFollower, type ChainSource, type Checkpoint, type FollowerStore } from '../../src/chain/follower.ts'
import { activeSet, replayRegistryLog, setForHeight, type RegistryEvent } from '../../src/chain/registry-state.ts'
import { levelFollowerStore } from '../../src/storage/chain-store.ts'
import { StateDatabase } from '../../src/storage/state-db.ts'
import { tempDir } from '../helpers/tmp.ts'
import { hook } from '../helpers/wait.ts'

const D = '0x' + 'dd'.repeat(32)
const A = '0x' + 'aa'.repeat(20)
const B = '0x' + 'bb'.repeat(20)
const C = '0x' + 'cc'.repeat(20)

type Body = RegistryEvent extends infer T ? T extends RegistryEvent ? Omit<T, 'datanetId' | 'block' | 'logIndex' | 'txHash'> : never : never

/** A fake chain: blocks with a hash (a fork tag) and events. */
class FakeChain implements ChainSource {
  blocks: Array<{ hash: string, events: RegistryEvent[] }> = [{ hash: 'g', events: [] }]
  down = false

  mine (events: Body[] = [], tx = `tx${this.blocks.length}`, fork = ''): number {
    const block = this.blocks.length
    this.blocks.push({ hash: `h${block}${fork}`, events: events.map((e, i) => ({ ...e, datanetId: D, block, logIndex: i, txHash: tx }) as RegistryEvent) })
    return block
  }

  /** Replaces every block from `from` on (a reorg). */
  reorg (from: number): void {
    this.blocks = this.blocks.slice(0, from)
  }

  async blockNumber (): Promise<number> {
    if (this.down) throw new Error('ECONNREFUSED')
    return this.blocks.length - 1
  }

  async blockHash (n: number): Promise<string | undefined> {
    if (this.down) throw new Error('ECONNREFUSED')
    return this.blocks[n]?.hash
  }

  async events (from: number, to: number): Promise<RegistryEvent[]> {
    if (this.down) throw new Error('ECONNREFUSED')
    return this.blocks.slice(from, to + 1).flatMap(b => b.events)
  }
}

function memoryStore (): FollowerStore & { events: RegistryEvent[], checkpoint: Checkpoint | undefined } {
  const s = {
    events: [] as RegistryEvent[],
    checkpoint: undefined as Checkpoint | undefined,
    async load () { return { checkpoint: s.checkpoint, events: [...s.events] } },
    async append (events: readonly RegistryEvent[], checkpoint: Checkpoint) { s.events.push(...events); s.checkpoint = checkpoint },
    async rewind (block: number, checkpoint: Checkpoint) { s.events = s.events.filter(e => e.block <= block); s.checkpoint = checkpoint }
  }
  return s
}

const created: Body = { kind: 'created', validators: [{ address: B, stake: 2n }, { address: A, stake: 1n }] }

test('the set of a height is the genesis set until the anchor that starts its interval', () => {
  const chain = new FakeChain()
  chain.mine([created])
  chain.mine([{ kind: 'join-requested', validator: C, stake: 5n, peerId: '0x' }])
  chain.mine([
    { kind: 'committed', height: 2, version: '0x01', datasetRoot: '0x02', attributionRoot: '0x03', totalAttributed: 0n },
    { kind: 'activated', validator: C, stake: 5n, height: 2 }
  ])
  const state = replayRegistryLog(chain.blocks.flatMap(b => b.events)).get(D)
  assert.ok(state !== undefined)
  const addrs = (h: number): string[] | undefined => setForHeight(state, h, 2)?.map(v => v.address)
  assert.equal(addrs(1), [A, B])
  assert.equal(addrs(2), [A, B])
  assert.equal(addrs(3), [A, B, C], 'the join counts from the height after the anchor')
  assert.equal(addrs(4), [A, B, C])
  assert.is(addrs(5), undefined, 'height 5 waits for the anchor of height 4')
  assert.equal(activeSet(state).map(v => v.stake), [1n, 2n, 5n])
})

test('leaves, slashing and withdrawals change the set as the contract does', () => {
  const chain = new FakeChain()
  chain.mine([{ kind: 'created', validators: [{ address: A, stake: 1n }, { address: B, stake: 1n }, { address: C, stake: 1n }] }])
  chain.mine([{ kind: 'leave-requested', validator: A }])
  chain.mine([{ kind: 'slashed', validator: B, amount: 1n }])
  chain.mine([
    { kind: 'committed', height: 1, version: '0x01', datasetRoot: '0x', attributionRoot: '0x', totalAttributed: 0n },
    { kind: 'deactivated', validator: A, height: 1, unlockAt: 99 },
    // a slashed member leaves the set at the next anchor, like a leave
    { kind: 'deactivated', validator: B, height: 1, unlockAt: 0 }
  ])
  const state = replayRegistryLog(chain.blocks.flatMap(b => b.events)).get(D)
  assert.ok(state !== undefined)
  assert.equal(setForHeight(state, 1, 1)?.map(v => v.address), [A, B, C], 'genesis')
  assert.equal(setForHeight(state, 2, 1)?.map(v => v.address), [C])
  assert.is(state.validators.get(A)?.status, 'unbonding')
  assert.is(state.validators.get(A)?.unlockAt, 99)
  assert.is(state.validators.get(B)?.status, 'slashed')
  chain.mine([{ kind: 'withdrawn', validator: A, amount: 1n }])
  const later = replayRegistryLog(chain.blocks.flatMap(b => b.events)).get(D)
  assert.is(later?.validators.has(A), false)
})

test('reads only confirmed blocks, resumes from the checkpoint, and survives an outage', async () => {
  const chain = new FakeChain()
  chain.mine([created])
  chain.mine([{ kind: 'funded', amount: 10n, totalFunded: 10n }])
  chain.mine()
  const store = memoryStore()
  const f = new ChainFollower({ source: chain, store, confirmations: 1, startBlock: 0 })
  await f.load()
  await f.poll()
  assert.is(f.block, 2, 'the head block waits for one confirmation')
  assert.is(f.state(D)?.totalFunded, 10n)
  chain.mine([{ kind: 'funded', amount: 5n, totalFunded: 15n }])
  chain.down = true
  await f.poll().then(() => assert.unreachable('the outage should surface'), (err: Error) => assert.match(err.message, 'ECONNREFUSED'))
  chain.down = false
  chain.mine()
  // a new follower over the same store: a restart
  const g = new ChainFollower({ source: chain, store, confirmations: 1, startBlock: 0 })
  await g.load()
  assert.is(g.state(D)?.totalFunded, 10n)
  await g.poll()
  assert.is(g.state(D)?.totalFunded, 15n)
  assert.is(store.events.filter(e => e.kind === 'funded').length, 2, 'nothing read twice')
})

test('a busy block range (200,000 events in one query) is read: its events were spread as call arguments and overflowed the stack', async () => {
  const chain = new FakeChain()
  chain.mine([created])
  chain.mine(Array.from({ length: 200_000 }, (_, i) => ({ kind: 'funded', amount: 1n, totalFunded: BigInt(i + 1) }) as Body))
  chain.mine()
  // a store that appends without a spread of its own
  const store = memoryStore()
  store.append = async (events, checkpoint) => { for (const e of events) store.events.push(e); store.checkpoint = checkpoint }
  const f = new ChainFollower({ source: chain, store, confirmations: 1, startBlock: 0 })
  await f.load()
  await f.poll()
  assert.is(f.block, 2)
  assert.is(f.state(D)?.totalFunded, 200_000n)
})

test('a reorg drops the events of replaced blocks and reads the new branch', async () => {
  const chain = new FakeChain()
  chain.mine([created])
  chain.mine([{ kind: 'funded', amount: 10n, totalFunded: 10n }])
  const store = memoryStore()
  const reorgs: Array<[number, number]> = []
  const f = new ChainFollower({ source: chain, store, confirmations: 0, startBlock: 0, batchBlocks: 1, onReorg: (fork, dropped) => reorgs.push([fork, dropped]) })
  await f.load()
  await f.poll()
  assert.is(f.state(D)?.totalFunded, 10n)
  chain.reorg(2)
  chain.mine([{ kind: 'funded', amount: 7n, totalFunded: 7n }], 'txB', 'b')
  chain.mine([], 'txC', 'b')
  await f.poll()
  assert.equal(reorgs, [[1, 1]])
  assert.is(f.state(D)?.totalFunded, 7n)
  assert.equal(store.events.map(e => e.txHash), ['tx1', 'txB'])
})

const tmp = tempDir('datanet-chain-store-')
const db = new StateDatabase(join(tmp.dir, 'state'))
test.before(hook(async () => { await db.open() }))
test.after(hook(async () => { await db.close(); tmp.remove() }))

test('the level store keeps events (bigints too) and the checkpoint across a reopen, and rewinds', async () => {
  const chain = new FakeChain()
  chain.mine([created])
  chain.mine([{ kind: 'funded', amount: 10n ** 30n, totalFunded: 10n ** 30n }])
  const store = levelFollowerStore(db.chain)
  const f = new ChainFollower({ source: chain, store, confirmations: 0, startBlock: 0 })
  await f.load()
  await f.poll()
  const loaded = await store.load()
  assert.is(loaded.checkpoint?.block, 2)
  assert.equal(loaded.events.map(e => e.kind), ['created', 'funded'])
  assert.is((loaded.events[1] as { totalFunded: bigint }).totalFunded, 10n ** 30n)
  await store.rewind(1, { block: 1, hashes: [] })
  const after = await store.load()
  assert.equal(after.events.map(e => e.kind), ['created'])
  assert.is(after.checkpoint?.block, 1)
})

test.run()
