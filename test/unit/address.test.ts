import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Wallet, getAddress } from 'ethers'
import { checksumAddress, isChecksummedAddress } from '../../src/codec/address.ts'

const answer = (f: () => string): string => { try { return f() } catch (err) { return `throws ${(err as Error).message.slice(0, 20)}` } }

/** The same address with the case of its first letter flipped: a wrong EIP-55 checksum. */
function caseFlipped (a: string): string {
  const i = [...a.slice(2)].findIndex(ch => /[a-fA-F]/.test(ch)) + 2
  const ch = a.charAt(i)
  return a.slice(0, i) + (ch === ch.toUpperCase() ? ch.toLowerCase() : ch.toUpperCase()) + a.slice(i + 1)
}

test('checksumAddress answers as ethers getAddress does, before and after it is memoized', () => {
  for (let i = 0; i < 20; i++) {
    const a = Wallet.createRandom().address
    const forms = [a, caseFlipped(a), a.toLowerCase(), '0x' + a.slice(2).toUpperCase(), a.slice(0, -1) + (a.endsWith('0') ? '1' : '0'), a.slice(0, 41)]
    for (let round = 0; round < 2; round++) {
      for (const f of forms) assert.is(answer(() => checksumAddress(f)), answer(() => getAddress(f)), f)
    }
  }
})

test('a wrongly checksummed address is refused even once its right form is memoized', () => {
  const a = Wallet.createRandom().address
  const wrong = caseFlipped(a)
  assert.ok(isChecksummedAddress(a))
  assert.ok(isChecksummedAddress(a))
  assert.not.ok(isChecksummedAddress(wrong), 'a wrong checksum passed')
  assert.ok(isChecksummedAddress(a.toLowerCase()) === (a.toLowerCase() === a))
  assert.not.ok(isChecksummedAddress(42))
  assert.not.ok(isChecksummedAddress(a + '00'))
})

test.run()
