/**
 * Block fetches from peers (node/services/blocks.ts getBlock): a want bitswap lost costs
 * one attempt, not the caller's whole deadline. Found by the soak: a restarted validator's
 * catch-up waited 30 s for one contribution whose peers all held it.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import type { Helia } from '@helia/interface'
import { getBlock } from '../../node/services/blocks.ts'

// AbortSignal.timeout's timers do not hold the process open; a daemon's sockets do
let alive: NodeJS.Timeout | undefined
test.before(() => { alive = setInterval(() => {}, 1000) })
test.after(() => { clearInterval(alive) })

const BYTES = new TextEncoder().encode('a shard')
const CID_OF = CID.create(1, raw.code, await sha256.digest(BYTES))

/** A blockstore whose answers are scripted per call: 'lost' waits for the caller's abort, 'ok' yields the block, an Error is thrown. */
function scripted (answers: Array<'lost' | 'ok' | Error>): { helia: Helia, calls: () => number, signals: Array<AbortSignal | undefined> } {
  let calls = 0
  const signals: Array<AbortSignal | undefined> = []
  const get = async function * (_cid: CID, options: { signal?: AbortSignal } = {}): AsyncGenerator<Uint8Array> {
    signals.push(options.signal)
    const answer = answers[Math.min(calls++, answers.length - 1)]
    if (answer instanceof Error) throw answer
    if (answer === 'lost') {
      await new Promise((_resolve, reject) => {
        options.signal?.addEventListener('abort', () => { reject(options.signal?.reason as Error) }, { once: true })
      })
    }
    yield BYTES
  }
  return { helia: { blockstore: { get } } as unknown as Helia, calls: () => calls, signals }
}

test('a lost want is sent again: the block arrives after one attempt, long before the caller\'s deadline', async () => {
  const { helia, calls } = scripted(['lost', 'ok'])
  const t0 = Date.now()
  const bytes = await getBlock(helia, CID_OF, { signal: AbortSignal.timeout(5_000), attemptMs: 200 })
  assert.equal(bytes, BYTES)
  assert.is(calls(), 2)
  assert.ok(Date.now() - t0 < 4_000, `took ${Date.now() - t0} ms`)
})

test('the caller\'s deadline ends the fetch: attempts stop with it', async () => {
  const { helia, calls, signals } = scripted(['lost'])
  const t0 = Date.now()
  const deadline = AbortSignal.timeout(700)
  const err = await getBlock(helia, CID_OF, { signal: deadline, attemptMs: 100 }).then(() => undefined, (e: unknown) => e as Error)
  assert.ok(err !== undefined, 'resolved without the block')
  assert.ok(deadline.aborted, 'gave up before the caller\'s deadline')
  assert.ok(calls() >= 2, `only ${calls()} attempt`)
  // the fetch has settled, so its loop is over; and no attempt is left waiting
  assert.ok(signals.every(s => s?.aborted === true), 'an attempt still outstanding after the deadline')
  assert.ok(Date.now() - t0 < 3_000)
})

test('an error that is not an attempt\'s limit is the caller\'s at once (no retry)', async () => {
  const { helia, calls } = scripted([new Error('not a block')])
  const err = await getBlock(helia, CID_OF, { signal: AbortSignal.timeout(5_000), attemptMs: 100 }).then(() => undefined, (e: unknown) => e as Error)
  assert.is(err?.message, 'not a block')
  assert.is(calls(), 1)
})

test('offline reads are not retried', async () => {
  const { helia, calls } = scripted([new Error('not here')])
  const err = await getBlock(helia, CID_OF, { offline: true }).then(() => undefined, (e: unknown) => e as Error)
  assert.is(err?.message, 'not here')
  assert.is(calls(), 1)
})

test.run()
