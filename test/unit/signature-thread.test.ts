/**
 * Catch-up ranges' signatures checked on a worker thread (node/services/signature-thread.ts):
 * the same answers as verifyAll here, a forged signature refused there too, and no batch
 * left unanswered when the worker goes away.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { randomBytes } from 'node:crypto'
import { Wallet, hexlify } from 'ethers'
import { SignatureThread } from '../../node/services/signature-thread.ts'
import type { SignedDigest } from '../../src/codec/signer.ts'
import { waitFor } from '../helpers/wait.ts'

const signers = Array.from({ length: 3 }, () => new Wallet(hexlify(randomBytes(32))))

function batch (n: number): SignedDigest[] {
  return Array.from({ length: n }, (_, i) => {
    const w = signers[i % signers.length] as Wallet
    const digest = hexlify(randomBytes(32))
    return { digest, signature: w.signingKey.sign(digest).serialized, signer: w.address }
  })
}

/** The batch with item `i` signed by another key than it names. */
function forged (items: SignedDigest[], i: number): SignedDigest[] {
  const out = [...items]
  const item = out[i] as SignedDigest
  out[i] = { ...item, signature: new Wallet(hexlify(randomBytes(32))).signingKey.sign(item.digest).serialized }
  return out
}

/** A thread whose worker has started: batches go to it from now on. */
async function warm (): Promise<SignatureThread> {
  const thread = new SignatureThread({ minOffload: 4 })
  await waitFor(async () => (await thread.verify(batch(6))) && thread.stats.onWorker > 0 ? true : undefined, { timeoutMs: 20_000, intervalMs: 20, what: 'a batch checked on the worker' })
  return thread
}

test('batches are checked on the worker once it started; the first ones here, not waiting for it', async () => {
  const thread = new SignatureThread({ minOffload: 4 })
  try {
    assert.ok(await thread.verify(batch(96)), 'the first batch, here while the worker starts')
    assert.is(thread.stats.here, 1)
    await waitFor(async () => (await thread.verify(batch(96))) && thread.stats.onWorker > 0 ? true : undefined, { timeoutMs: 20_000, intervalMs: 20, what: 'a batch checked on the worker' })
    const here = thread.stats.here
    assert.ok(await thread.verify(batch(3)), 'a small batch')
    assert.is(thread.stats.here, here + 1, 'a small batch is checked here')
  } finally {
    await thread.stop()
  }
})

// A catching-up node asks for four ranges at once: all of them were checked on the main
// thread while the worker started (a profile: ~0.17 s of 600 versions' catch-up).
test('while the worker starts, the first batch is checked here and the next ones wait for it', async () => {
  const thread = new SignatureThread({ minOffload: 4 })
  try {
    const bad = forged(batch(96), 40)
    const answers = await Promise.all([thread.verify(batch(96)), thread.verify(batch(96)), thread.verify(bad), thread.verify(batch(96))])
    assert.equal(answers, [true, true, false, true])
    assert.is(thread.stats.here, 1)
    assert.is(thread.stats.onWorker, 3)
  } finally {
    await thread.stop()
  }
  // batches waiting for a worker that goes away before it is ready are answered here
  const again = new SignatureThread({ minOffload: 4 })
  const first = again.verify(batch(96))
  const waiting = Promise.all([again.verify(batch(96)), again.verify(forged(batch(96), 3))])
  await again.stop()
  assert.equal([await first, ...await waiting], [true, true, false])
})

test('attack: a batch with one forged signature is refused on the worker as it is here', async () => {
  const thread = await warm()
  try {
    const onWorker = thread.stats.onWorker
    const good = batch(96)
    for (const at of [0, 47, 95]) assert.is(await thread.verify(forged(good, at)), false, `a forged signature at ${at}`)
    // another signer than named, with a valid signature of its own
    const swapped = [...good]
    swapped[10] = { ...(good[10] as SignedDigest), signer: (good[11] as SignedDigest).signer }
    if (swapped[10]?.signer !== good[10]?.signer) assert.is(await thread.verify(swapped), false, 'a signature credited to another signer')
    assert.ok(await thread.verify(good), 'the unforged batch')
    assert.ok(thread.stats.onWorker >= onWorker + 4, `checked on the worker (${thread.stats.onWorker - onWorker} of 5)`)
  } finally {
    await thread.stop()
  }
})

test('a batch the worker has not answered when it goes away is answered here', async () => {
  const thread = await warm()
  const good = batch(96)
  const bad = forged(batch(96), 5)
  const answers = Promise.all([thread.verify(good), thread.verify(bad)])
  await thread.stop()
  assert.equal(await answers, [true, false])
  assert.ok(await thread.verify(batch(30)), 'after stop: here')
})

test.run()
