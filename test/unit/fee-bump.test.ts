/**
 * The fee schedule of replacements (src/chain/fees.ts) and the send loop over a simulated
 * chain (src/chain/transactions.ts): virtual time, a pool that holds one transaction per
 * nonce and refuses as geth does, blocks mined every second.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { firstFees, minReplacement, replacementFees, type Fees } from '../../src/chain/fees.ts'
import { landTransaction, type MinedReceipt, type NonceSends, type TxChain } from '../../src/chain/transactions.ts'
import { DatanetError } from '../../src/errors.ts'

const GWEI = 1_000_000_000n
const fees = (max: bigint, tip: bigint): Fees => ({ maxFeePerGas: max * GWEI, maxPriorityFeePerGas: tip * GWEI })

test('a replacement raises both fees by at least 12.5%, rounded up', () => {
  assert.equal(minReplacement(fees(8n, 8n)), fees(9n, 9n))
  assert.equal(minReplacement({ maxFeePerGas: 7n, maxPriorityFeePerGas: 1n }), { maxFeePerGas: 8n, maxPriorityFeePerGas: 2n })
  const quiet = fees(2n, 1n)
  const next = replacementFees(quiet, quiet, 100n * GWEI) as Fees
  assert.ok(next.maxFeePerGas * 8n >= quiet.maxFeePerGas * 9n && next.maxPriorityFeePerGas * 8n >= quiet.maxPriorityFeePerGas * 9n)
})

test('after a base fee jump one replacement pays the market, not 12.5% a step', () => {
  assert.equal(replacementFees(fees(2n, 1n), fees(201n, 1n), 500n * GWEI), { maxFeePerGas: 201n * GWEI, maxPriorityFeePerGas: 1_125_000_000n })
})

test('the cap: fees stop at it; a replacement that cannot be 12.5% up under it is none', () => {
  assert.equal(firstFees(fees(900n, 2n), 500n * GWEI), fees(500n, 2n))
  assert.equal(firstFees(fees(3n, 5n), 3n * GWEI), fees(3n, 3n), 'the tip never above the fee cap')
  assert.equal(replacementFees(fees(400n, 2n), fees(900n, 2n), 500n * GWEI), { maxFeePerGas: 500n * GWEI, maxPriorityFeePerGas: 2_250_000_000n })
  assert.is(replacementFees(fees(460n, 2n), fees(900n, 2n), 500n * GWEI), undefined)
})

/** A chain in virtual time: one block a second at `baseFee`, a pool of one transaction per nonce. */
class SimChain {
  now = 0
  head = 10
  baseFee = 1n * GWEI
  minedNonce = 0
  pool = new Map<number, { hash: string, fees: Fees }>()
  receipts = new Map<string, MinedReceipt>()
  sent: Array<{ nonce: number, fees: Fees }> = []
  /** Runs before each block: lets a test change the world. */
  beforeBlock: (sim: SimChain) => void = () => {}

  mine (): void {
    this.beforeBlock(this)
    this.head++
    const tx = this.pool.get(this.minedNonce)
    if (tx !== undefined && tx.fees.maxFeePerGas >= this.baseFee) {
      this.receipts.set(tx.hash, { hash: tx.hash, blockNumber: this.head, status: 1, gasUsed: 21000n })
      this.pool.delete(this.minedNonce)
      this.minedNonce++
    }
  }

  /** Drops the last `depth` blocks' transactions (their nonces reopen; the pool does not get them back, as anvil). */
  reorg (depth: number): void {
    for (const [hash, r] of this.receipts) {
      if (r.blockNumber > this.head - depth) { this.receipts.delete(hash); this.minedNonce-- }
    }
  }

  io (): TxChain {
    return {
      now: () => this.now,
      sleep: async ms => {
        const before = Math.floor(this.now / 1000)
        this.now += ms
        for (let s = before; s < Math.floor(this.now / 1000); s++) this.mine()
      },
      marketFees: async () => ({ maxFeePerGas: 2n * this.baseFee + GWEI, maxPriorityFeePerGas: GWEI }),
      minedNonce: async () => this.minedNonce,
      blockNumber: async () => this.head,
      receipt: async hash => this.receipts.get(hash) ?? null,
      broadcast: async (nonce, f) => {
        if (nonce < this.minedNonce) throw Object.assign(new Error('nonce too low'), { code: 'NONCE_EXPIRED' })
        const old = this.pool.get(nonce)
        if (old !== undefined && (f.maxFeePerGas * 8n < old.fees.maxFeePerGas * 9n || f.maxPriorityFeePerGas * 8n < old.fees.maxPriorityFeePerGas * 9n)) {
          throw Object.assign(new Error('replacement transaction underpriced'), { code: 'REPLACEMENT_UNDERPRICED' })
        }
        const hash = `0x${nonce}-${f.maxFeePerGas}-${f.maxPriorityFeePerGas}`
        this.pool.set(nonce, { hash, fees: f })
        this.sent.push({ nonce, fees: f })
        return hash
      }
    }
  }
}

/** Sends carrying one send of `call` already in the pool, then mined by the next block. */
async function minedSend (sim: SimChain, call: string): Promise<NonceSends> {
  const sends = fresh()
  sends.fees = fees(3n, 1n)
  sends.hashes.push({ hash: await sim.io().broadcast(0, sends.fees), call })
  sim.mine()
  return sends
}

const OPTS = { call: 'anchor', bumpAfterMs: 3000, maxFeePerGas: 500n * GWEI, confirmations: 2, timeoutMs: 120_000, pollMs: 250 }
const fresh = (nonce = 0): NonceSends => ({ nonce, fees: undefined, hashes: [] })

test('stuck under a base fee that rose after the send: replaced under the same nonce, higher each time, and mined', async () => {
  const sim = new SimChain()
  sim.beforeBlock = s => { if (s.head === 10) s.baseFee = 100n * GWEI }
  const receipt = await landTransaction(sim.io(), fresh(), OPTS)
  assert.ok(sim.sent.length >= 2, 'replaced')
  assert.ok(sim.sent.every(s => s.nonce === 0), 'one nonce')
  for (let i = 1; i < sim.sent.length; i++) {
    const [a, b] = [sim.sent[i - 1]?.fees as Fees, sim.sent[i]?.fees as Fees]
    assert.ok(b.maxFeePerGas * 8n >= a.maxFeePerGas * 9n && b.maxPriorityFeePerGas * 8n >= a.maxPriorityFeePerGas * 9n, `send ${i} is ≥ 12.5% up on both`)
  }
  assert.ok(sim.head - receipt.blockNumber >= 2, 'returned with its confirmations')
})

test('fees never pass the cap; the send times out with its sends kept, to be resumed', async () => {
  const sim = new SimChain()
  sim.baseFee = 1000n * GWEI
  const sends = fresh()
  const err = await landTransaction(sim.io(), sends, { ...OPTS, timeoutMs: 60_000 }).catch((e: unknown) => e)
  assert.instance(err, DatanetError)
  assert.is((err as DatanetError).code, 'CHAIN_ERROR_TIMEOUT')
  assert.ok(sim.sent.every(s => s.fees.maxFeePerGas <= OPTS.maxFeePerGas))
  sim.baseFee = 100n * GWEI
  const receipt = await landTransaction(sim.io(), sends, OPTS)
  assert.ok(sends.hashes.some(h => h.hash === receipt.hash))
  assert.is(sim.minedNonce, 1)
})

test('a replacement refused because the earlier send was mined meanwhile: its receipt is the result', async () => {
  const sim = new SimChain()
  // the first send was in the pool; a block took it, but the first reads still show the
  // chain before that block, so the replacement goes out and is refused: nonce too low
  const sends = await minedSend(sim, 'anchor')
  const io = sim.io()
  let stale = 2
  const lagging: TxChain = { ...io, receipt: async h => (stale-- > 0 ? null : await io.receipt(h)), minedNonce: async () => (stale > 0 ? 0 : await io.minedNonce()) }
  let refused = 0
  const counting: TxChain = { ...lagging, broadcast: async (n, f) => await io.broadcast(n, f).catch((e: unknown) => { refused++; throw e }) }
  const receipt = await landTransaction(counting, sends, { ...OPTS, bumpAfterMs: 0 })
  assert.is(refused, 1, 'the replacement was refused')
  assert.is(receipt.hash, sends.hashes[0]?.hash)
  assert.is(sim.sent.length, 1, 'nothing else sent')
})

test('a reorg drops the send before its confirmations: sent again, mined once', async () => {
  const sim = new SimChain()
  let reorged = false
  sim.beforeBlock = s => {
    const mined = [...s.receipts.values()][0]
    if (!reorged && mined !== undefined && s.head === mined.blockNumber) { s.reorg(1); reorged = true }
  }
  const receipt = await landTransaction(sim.io(), fresh(), OPTS)
  assert.ok(reorged)
  assert.is(sim.minedNonce, 1)
  assert.ok(sim.sent.length >= 2, 'sent again after the reorg')
  assert.ok(sim.head - receipt.blockNumber >= 2)
})

test("a nonce taken by an earlier call's send: a transient error, not that call's receipt", async () => {
  const sim = new SimChain()
  const err = await landTransaction(sim.io(), await minedSend(sim, 'join'), OPTS).catch((e: unknown) => e)
  assert.is((err as DatanetError).code, 'CHAIN_ERROR_NONCE_TAKEN')
})

test.run()
