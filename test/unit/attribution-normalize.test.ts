import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { normalizeText } from '../../src/attribution/normalize.ts'
import { prng, randomInt } from '../fixtures/attribution/prng.ts'

test('NFC: decomposed and composed forms normalise to the same composed text', () => {
  assert.is(normalizeText('cafe\u0301'), 'caf\u00e9')
  assert.is(normalizeText('caf\u00e9'), 'caf\u00e9')
  assert.is(normalizeText('\u212b'), '\u00c5', 'ANGSTROM SIGN → A WITH RING')
  assert.is(normalizeText('\u1100\u1161'), '\uac00', 'Hangul jamo compose')
})

test('line endings: CRLF and lone CR become LF; LF stays', () => {
  assert.is(normalizeText('a\r\nb\rc\nd'), 'a\nb\nc\nd')
  assert.is(normalizeText('\r\r\n\n'), '\n\n\n')
})

test('zero-width characters U+200B–U+200D, U+2060, U+FEFF are deleted, nothing else', () => {
  assert.is(normalizeText('\ufeffa\u200bb\u200cc\u200dd\u2060e'), 'abcde')
  // Neighbours of the deleted range stay: U+200A (hair space), U+200E (LRM), U+205F, U+2061.
  assert.is(normalizeText('a\u200ab\u200ec\u205fd\u2061e'), 'a\u200ab\u200ec\u205fd\u2061e')
})

test('no case folding, no whitespace collapsing', () => {
  assert.is(normalizeText('Hello  World\t\t!  '), 'Hello  World\t\t!  ')
})

test('lone surrogates become U+FFFD; a valid pair stays', () => {
  assert.is(normalizeText('a\ud800b'), 'a\ufffdb')
  assert.is(normalizeText('\udc00'), '\ufffd')
  assert.is(normalizeText('\ud83d\ude00'), '\ud83d\ude00')
})

test('deletion happens before composition: a zero-width character between a letter and its accent', () => {
  // Deleting U+200B brings e and U+0301 together; composing after the deletion gives é.
  assert.is(normalizeText('e\u200b\u0301'), '\u00e9')
})

test('N is idempotent on random strings drawn from the tricky characters', () => {
  const pieces = ['a', 'e', 'A', '\u0301', '\u0308', '\u0323', '\r', '\n', '\r\n', '\u200b', '\u200c', '\u200d', '\u2060', '\ufeff', '\ud800', '\udc00', '\ud83d\ude00', '\u1100', '\u1161', '\u11a8', '\u212b', ' ', 'ﬁ']
  const r = prng(5)
  for (let it = 0; it < 2000; it++) {
    const s = Array.from({ length: randomInt(r, 12) }, () => pieces[randomInt(r, pieces.length)]).join('')
    const once = normalizeText(s)
    assert.is(normalizeText(once), once, JSON.stringify(s))
    assert.not.ok(/[\u200b-\u200d\u2060\ufeff\r]/.test(once), JSON.stringify(s))
    assert.ok(once.isWellFormed())
    assert.is(once, once.normalize('NFC'))
  }
})

test.run()
