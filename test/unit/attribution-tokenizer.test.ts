import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { TOKENIZER, VOCAB_SIZE, decodeTokens, isWordStartToken, ranksSha256, tokenize, tokenizeReference, verifyTokenizer, wordStartFlags } from '../../src/attribution/tokenizer.ts'
import { prng, randomInt } from '../fixtures/attribution/prng.ts'

const root = join(import.meta.dirname, '../..')

test('the installed gpt-tokenizer is the pinned version, and its vocabulary hashes to the pinned value', () => {
  const pkg = JSON.parse(readFileSync(join(root, 'node_modules/gpt-tokenizer/package.json'), 'utf8')) as { version: string }
  assert.is(pkg.version, TOKENIZER.version)
  assert.is(ranksSha256(), TOKENIZER.ranksSha256)
  verifyTokenizer()
  // The pinned value is also the hash of the tiktoken file the package ships.
  const file = readFileSync(join(root, 'node_modules/gpt-tokenizer/data/cl100k_base.tiktoken'))
  assert.is(createHash('sha256').update(file).digest('hex'), TOKENIZER.ranksSha256)
  assert.is(VOCAB_SIZE, 100256)
})

test('cl100k ids of a known sentence', () => {
  assert.equal(Array.from(tokenize('The quick brown fox')), [791, 4062, 14198, 39935])
  assert.equal(Array.from(tokenize('hello world')), [15339, 1917])
  assert.equal(Array.from(tokenize('')), [])
})

// tokenize splits text with the encoder's pattern and encodes each piece once (a memo of
// pieces): it must equal the encoder on the whole text, whatever the text.
const PARTS = ['the', ' The', 'ka', 'lo', 'mi', "'s", "'S", "'ll", "'LL", "'ve", "'re", "'d", "'m", "'t", "'x", "'", 'don', "n't",
  ' ', '  ', '   ', '\t', '\n', '\r\n', '\r', '\n\n', ' \n', '\u00a0', '1', '12', '123', '1234', '3.14', ',', '.', '...', '!?', '--', '"', '(', ')',
  'é', 'über', 'Straße', 'naïve', '日本語', '中文', 'кот', 'ελληνικά', 'مرحبا', '😀', '👍🏽', '\u200b', '<|endoftext|>', '#', '@x', 'https://a.b/c?d=1', '\u0301']

function * texts (seed: number, count: number): Generator<string> {
  const r = prng(seed)
  for (let i = 0; i < count; i++) {
    let text = ''
    const n = 1 + randomInt(r, 40)
    for (let j = 0; j < n; j++) text += PARTS[randomInt(r, PARTS.length)] as string
    yield text
  }
}

test('tokenize equals the encoder on the whole text: 3,000 seeded texts of words, digits, punctuation, contractions, whitespace runs and scripts', () => {
  for (const text of texts(14, 3000)) {
    assert.equal(Array.from(tokenize(text)), tokenizeReference(text), JSON.stringify(text))
  }
  // longer than the ids buffer the tokenizer starts with (4,096), and a short text after it
  const long = Array.from(texts(15, 2000)).join(' ')
  const ids = tokenize(long)
  assert.ok(ids.length > 4096, `${ids.length} ids`)
  assert.equal(Array.from(ids), tokenizeReference(long))
  assert.equal(Array.from(tokenize('a b')), tokenizeReference('a b'))
  // and again, now that every piece is memoized
  for (const text of texts(14, 300)) assert.equal(Array.from(tokenize(text)), tokenizeReference(text), JSON.stringify(text))
})

test('special tokens are plain text: "<|endoftext|>" never becomes the special token 100257', () => {
  for (const s of ['<|endoftext|>', 'a <|endoftext|> b', '<|fim_prefix|><|im_start|>']) {
    const ids = Array.from(tokenize(s))
    assert.ok(ids.length > 1, s)
    assert.ok(ids.every(id => id < VOCAB_SIZE), s)
    assert.is(decodeTokens(ids), s)
  }
})

test('word starts: tokens beginning with a space or a newline, and the first token', () => {
  const ids = tokenize('Hello, world!\nNew line  two\n\nend')
  const flags = wordStartFlags(ids)
  const pieces = Array.from(ids, id => decodeTokens([id]))
  pieces.forEach((piece, i) => {
    const expected = i === 0 || piece.startsWith(' ') || piece.startsWith('\n')
    assert.is(flags[i] === 1, expected, `token ${i} ${JSON.stringify(piece)}`)
  })
  assert.ok(flags.some(f => f === 0), 'some tokens continue a word')
  assert.is(flags[0], 1)
  // Table lookups agree with decoding, for a sample of the vocabulary.
  for (let id = 0; id < VOCAB_SIZE; id += 97) {
    const bytes = Buffer.from(decodeTokens([id]), 'utf8')
    const startsWord = bytes[0] === 0x20 || bytes[0] === 0x0a
    if (bytes.length > 0 && bytes[0] !== 0xef) assert.is(isWordStartToken(id), startsWord, `id ${id}`)
  }
  assert.ok(isWordStartToken(tokenize(' the')[0] as number))
  assert.ok(isWordStartToken(tokenize('\n')[0] as number))
  assert.not.ok(isWordStartToken(tokenize('the')[0] as number))
  assert.not.ok(isWordStartToken(tokenize('\t')[0] as number))
})

test('decode(tokenize(x)) gives x back for normalised text', () => {
  for (const s of ['Grüße aus Köln', '日本語のテキスト', 'emoji 🎉 and ZWJ 👩‍🔬', 'tabs\tand  spaces\n\n']) {
    assert.is(decodeTokens(tokenize(s)), s)
  }
})

test.run()
