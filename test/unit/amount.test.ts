import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { parseAmount } from '../../node/cli/amount.ts'
import { DatanetError } from '../../src/errors.ts'

test('amounts: a bare number is in the given unit, a suffix overrides it', () => {
  assert.is(parseAmount('10'), 10n * 10n ** 18n)
  assert.is(parseAmount('1.5eth'), 15n * 10n ** 17n)
  assert.is(parseAmount('2 gwei'), 2_000_000_000n)
  assert.is(parseAmount('1000wei'), 1000n)
  assert.is(parseAmount('1000', '--fee', 'wei'), 1000n)
  assert.is(parseAmount('0.01ETH', '--fee', 'wei'), 10n ** 16n)
})

test('amounts: bad ones are usage errors naming the flag', () => {
  for (const [text, why] of [['', 'expected'], ['-1', 'expected'], ['1.5.2', 'expected'], ['3 dollars', 'unknown unit'], ['0', 'more than zero'], ['1.5', 'whole number']] as const) {
    try {
      parseAmount(text, '--stake', text === '1.5' ? 'wei' : 'eth')
      assert.unreachable(`"${text}" should be refused`)
    } catch (err) {
      assert.instance(err, DatanetError)
      assert.is((err as DatanetError).kind, 'usage')
      assert.match((err as Error).message, '--stake')
      assert.match((err as Error).message, why)
    }
  }
})

test.run()
