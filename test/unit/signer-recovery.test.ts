/**
 * src/codec/signer.ts (libsecp256k1 in WebAssembly) answers exactly as ethers'
 * recoverAddress (noble) for every signature, also once a signer's key is known here and
 * for a signature seen before (the memo). The attack: a known signer's signature with its
 * recovery bit flipped recovers to another address, so it must not pass as the signer's
 * (a check against the known key alone would pass it, and the contract's ecrecover would not).
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { randomBytes } from 'node:crypto'
import { Signature, SigningKey, Wallet, hexlify, recoverAddress, type HDNodeWallet } from 'ethers'
import { forgetSigners, recoverSigner, signingKey } from '../../src/codec/signer.ts'

const wallets = Array.from({ length: 4 }, () => Wallet.createRandom())
const digest = (): string => hexlify(randomBytes(32))

/** recoverAddress's answer, or the fact that it threw. */
function reference (d: string, sig: string): string {
  try { return recoverAddress(d, sig) } catch { return 'throws' }
}
function ours (d: string, sig: string): string {
  try { return recoverSigner(d, sig) } catch { return 'throws' }
}

/** The same signature with the other recovery bit. */
function flipped (sig: string): string {
  const s = Signature.from(sig)
  return Signature.from({ r: s.r, s: s.s, yParity: s.yParity === 0 ? 1 : 0 }).serialized
}

test('a fresh signer is recovered; once seen, and for a signature seen before, the answer is the same', () => {
  forgetSigners()
  for (const w of wallets) {
    const d = digest()
    const sig = w.signingKey.sign(d).serialized
    assert.is(ours(d, sig), w.address)
    const d2 = digest()
    const sig2 = w.signingKey.sign(d2).serialized
    assert.is(ours(d2, sig2), w.address)
    assert.is(ours(d2, sig2), w.address)
  }
})

test('a known signer\'s signature over another digest is not the signer\'s; another\'s signature is the other\'s', () => {
  const [a, b] = wallets as [HDNodeWallet, HDNodeWallet]
  const d = digest()
  const sigB = b.signingKey.sign(d).serialized
  ours(digest(), a.signingKey.sign(digest()).serialized)
  assert.is(ours(d, sigB), b.address)
  const sigA = a.signingKey.sign(d).serialized
  const other = digest()
  assert.is(ours(other, sigA), reference(other, sigA))
  assert.is.not(ours(other, sigA), a.address)
})

test('attack: a known signer\'s signature with the recovery bit flipped is not the signer\'s', () => {
  for (const w of wallets) {
    const d = digest()
    const sig = w.signingKey.sign(d).serialized
    ours(d, sig)
    const bad = flipped(sig)
    const expected = reference(d, bad)
    assert.is.not(expected, w.address)
    assert.is(ours(d, bad), expected)
  }
})

test('random and malformed signatures: the same answer (or the same refusal) as recoverAddress', () => {
  const w = wallets[0] as HDNodeWallet
  ours(digest(), w.signingKey.sign(digest()).serialized)
  const cases: string[] = []
  for (let i = 0; i < 50; i++) cases.push(hexlify(randomBytes(64)) + (i % 2 === 0 ? '1b' : '1c'))
  cases.push('0x' + '00'.repeat(65), '0x' + 'ff'.repeat(65), '0x1234')
  // s above half the order: ethers refuses it, and so must we
  const s = Signature.from(w.signingKey.sign(digest()).serialized)
  const n = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n
  cases.push(s.r + (n - BigInt(s.s)).toString(16).padStart(64, '0') + (s.yParity === 0 ? '1c' : '1b'))
  for (const sig of cases) {
    const d = digest()
    assert.is(ours(d, sig), reference(d, sig), sig)
  }
})

test('signing in WebAssembly gives the very signatures ethers gives (RFC 6979, low s, the recovery bit), also through a Wallet', async () => {
  const n = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n
  const keys = [...Array.from({ length: 40 }, () => hexlify(randomBytes(32))), '0x' + (n - 1n).toString(16), '0x' + '00'.repeat(31) + '01']
  const parities = new Set<number>()
  for (const key of keys) {
    const theirs = new SigningKey(key)
    const mine = signingKey(key)
    assert.is(mine.publicKey, theirs.publicKey)
    for (let i = 0; i < 5; i++) {
      const d = digest()
      const sig = mine.sign(d)
      assert.is(sig.serialized, theirs.sign(d).serialized, `key ${key}, digest ${d}`)
      parities.add(sig.yParity)
    }
  }
  assert.equal([...parities].sort(), [0, 1], 'both recovery bits were seen')
  const key = keys[0] as string
  const domain = { name: 'datanet', version: '1', chainId: 31337 }
  const types = { Note: [{ name: 'text', type: 'string' }, { name: 'at', type: 'uint64' }] }
  const value = { text: 'hello', at: 42 }
  const wallet = new Wallet(signingKey(key))
  assert.is(wallet.address, new Wallet(key).address)
  assert.is(await wallet.signTypedData(domain, types, value), await new Wallet(key).signTypedData(domain, types, value))
  for (const bad of ['0x' + '00'.repeat(32), '0x' + n.toString(16), '0x1234']) {
    assert.throws(() => signingKey(bad), undefined, bad)
  }
  assert.throws(() => signingKey(key).sign('0x1234'))
})

test.run()
