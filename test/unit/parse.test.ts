import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { formatOfFileName, parseRecords, UPLOAD_FORMATS, type ParsedItem, type ParseOptions } from '../../src/contribution/parse.ts'
import { DatanetError } from '../../src/errors.ts'

type Opts = Partial<ParseOptions> & Pick<ParseOptions, 'format'>

/** Chunk sizes every small input is fed in: 1 byte splits every character and every CRLF. */
const SIZES = [1, 2, 3, 5, 7, 64, 65536]

async function * chunksOf (data: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size)
}

async function collect (source: AsyncIterable<Uint8Array>, opts: Opts): Promise<ParsedItem[]> {
  const items: ParsedItem[] = []
  for await (const item of parseRecords(source, { textMode: 'line', maxRecordBytes: 1 << 20, ...opts })) items.push(item)
  return items
}

/** The items of `input` parsed at every chunk size; fails unless all sizes agree. */
async function parseAll (input: string | Uint8Array, opts: Opts): Promise<ParsedItem[]> {
  const data = typeof input === 'string' ? Buffer.from(input, 'utf8') : input
  const first = await collect(chunksOf(data, SIZES[0] as number), opts)
  for (const size of SIZES.slice(1)) assert.equal(await collect(chunksOf(data, size), opts), first, `chunk size ${size}`)
  return first
}

async function rejection (promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise
  } catch (err) {
    return err
  }
  throw new Error('expected a rejection')
}

// -- JSONL --------------------------------------------------------------------------------

test('jsonl: one object per line, blank lines skipped but counted, LF and CRLF', async () => {
  const items = await parseAll('{"a":1}\r\n\n   \r\n{"b":"x y"}\n\t\n{"c":[1,2]}', { format: 'jsonl' })
  assert.equal(items, [
    { line: 1, value: { a: 1 } },
    { line: 4, value: { b: 'x y' } },
    { line: 6, value: { c: [1, 2] } }
  ])
})

test('jsonl: a value that is not an object is an error item; parsing goes on', async () => {
  const items = await parseAll('[1,2]\n42\nnull\n"s"\ntrue\n{"ok":true}\n', { format: 'jsonl' })
  assert.equal(items.slice(0, 5), [1, 2, 3, 4, 5].map(line => ({ line, error: 'expected a JSON object' })))
  assert.equal(items[5], { line: 6, value: { ok: true } })
  assert.is(items.length, 6)
})

test('jsonl: invalid JSON is an error item with the reason; the next line still parses', async () => {
  const items = await parseAll('{"a":1}\r\n{"a":\r\n{"b":2}\r\n', { format: 'jsonl' })
  assert.is(items.length, 3)
  assert.equal(items[0], { line: 1, value: { a: 1 } })
  const bad = items[1] as { line: number, error: string }
  assert.is(bad.line, 2)
  assert.match(bad.error, /^invalid JSON: .+/)
  assert.equal(items[2], { line: 3, value: { b: 2 } })
})

test('jsonl: "__proto__" stays an own field, not a prototype', async () => {
  const [item] = await parseAll('{"__proto__":{"x":1}}\n', { format: 'jsonl' })
  const value = (item as { value: Record<string, unknown> }).value
  assert.ok(Object.hasOwn(value, '__proto__'))
  assert.is(Object.getPrototypeOf(value), Object.prototype)
})

// -- Encoding -----------------------------------------------------------------------------

test('a leading BOM is dropped (even split over chunks); a later U+FEFF is content', async () => {
  const items = await parseAll('\uFEFF{"a":1}\n{"b":2}\n', { format: 'jsonl' })
  assert.equal(items, [{ line: 1, value: { a: 1 } }, { line: 2, value: { b: 2 } }])
  const text = await parseAll('\uFEFFfirst\n\uFEFFsecond\n', { format: 'text' })
  assert.equal(text, [{ line: 1, value: { text: 'first' } }, { line: 2, value: { text: '\uFEFFsecond' } }])
})

test('multi-byte characters split across chunks decode intact', async () => {
  const input = 'é€😀 façade\r\n{"k":"日本語 ✓"}\n'
  const text = await parseAll(input, { format: 'text' })
  assert.equal(text[0], { line: 1, value: { text: 'é€😀 façade' } })
  const data = Buffer.from('{"k":"日本語 😀"}\n{"k":"€"}')
  // every split position inside the 4-byte emoji and the 3-byte characters
  for (let cut = 1; cut < data.length; cut++) {
    const source = (async function * () { yield data.subarray(0, cut); yield data.subarray(cut) })()
    assert.equal(await collect(source, { format: 'jsonl' }), [
      { line: 1, value: { k: '日本語 😀' } },
      { line: 2, value: { k: '€' } }
    ], `cut at ${cut}`)
  }
})

test('invalid UTF-8 is an error item for its line only', async () => {
  const data = Buffer.concat([
    Buffer.from('good one\n'),
    Buffer.from([0x62, 0x61, 0x64, 0xff, 0x0a]), // "bad" + a byte that is never UTF-8
    Buffer.from('good two\n'),
    Buffer.from([0xe2, 0x82]) // a truncated 3-byte character at the end of the file
  ])
  const items = await parseAll(data, { format: 'text' })
  assert.equal(items, [
    { line: 1, value: { text: 'good one' } },
    { line: 2, error: 'invalid UTF-8' },
    { line: 3, value: { text: 'good two' } },
    { line: 4, error: 'invalid UTF-8' }
  ])
})

// -- Plain text ---------------------------------------------------------------------------

test('text lines: one record per non-blank line, CR removed, nothing else trimmed', async () => {
  const items = await parseAll('  padded  \r\n\r\n\t \nsecond\tline\r\n\nno final newline', { format: 'text', textMode: 'line' })
  assert.equal(items, [
    { line: 1, value: { text: '  padded  ' } },
    { line: 4, value: { text: 'second\tline' } },
    { line: 6, value: { text: 'no final newline' } }
  ])
})

test('text lines: a lone CR is content, not a line end', async () => {
  const items = await parseAll('a\rb\nc\r\r\n', { format: 'text' })
  assert.equal(items, [{ line: 1, value: { text: 'a\rb' } }, { line: 2, value: { text: 'c\r' } }])
})

test('text paragraphs: joined with \\n, separated by one or more blank lines, last one without newline', async () => {
  const input = '\n\nFirst para\r\nstill first\r\n\r\n\r\n  \r\nSecond\n\n\t\n\nThird line one\nthird line two'
  const items = await parseAll(input, { format: 'text', textMode: 'paragraph' })
  assert.equal(items, [
    { line: 3, value: { text: 'First para\nstill first' } },
    { line: 8, value: { text: 'Second' } },
    { line: 12, value: { text: 'Third line one\nthird line two' } }
  ])
})

test('text paragraphs: an invalid line spoils only its own paragraph', async () => {
  const data = Buffer.concat([Buffer.from('one\n\ntwo\n'), Buffer.from([0xc3, 0x28, 0x0a]), Buffer.from('two b\n\nthree\n')])
  const items = await parseAll(data, { format: 'text', textMode: 'paragraph' })
  assert.equal(items, [
    { line: 1, value: { text: 'one' } },
    { line: 3, error: 'invalid UTF-8' },
    { line: 7, value: { text: 'three' } }
  ])
})

// -- CSV ----------------------------------------------------------------------------------

test('csv: header names the columns, each row becomes column → string, empty lines skipped', async () => {
  const items = await parseAll('\nid,name,score\r\n1,ada,9.5\r\n\r\n2,,\r\n3,bob,7', { format: 'csv' })
  assert.equal(items, [
    { line: 3, value: { id: '1', name: 'ada', score: '9.5' } },
    { line: 5, value: { id: '2', name: '', score: '' } },
    { line: 6, value: { id: '3', name: 'bob', score: '7' } }
  ])
})

test('csv: quoted fields hold commas, doubled quotes and line ends; line is where the row starts', async () => {
  const input = [
    'id,note,tail',
    '1,"a, b","say ""hi"""',
    '2,"first',
    '',
    'third line",x',
    '3,"crlf\r\ninside",""',
    '4,plain,"multi',
    'line"'
  ].join('\r\n') + '\r\n'
  const items = await parseAll(input, { format: 'csv' })
  assert.equal(items, [
    { line: 2, value: { id: '1', note: 'a, b', tail: 'say "hi"' } },
    { line: 3, value: { id: '2', note: 'first\n\nthird line', tail: 'x' } },
    { line: 6, value: { id: '3', note: 'crlf\ninside', tail: '' } },
    { line: 8, value: { id: '4', note: 'plain', tail: 'multi\nline' } }
  ])
})

test('csv: a row with the wrong number of fields is an error item naming both counts', async () => {
  const items = await parseAll('a,b,c\n1,2\n1,2,3,4\n"x,y",2,3\n', { format: 'csv' })
  assert.equal(items, [
    { line: 2, error: 'expected 3 fields, got 2' },
    { line: 3, error: 'expected 3 fields, got 4' },
    { line: 4, value: { a: 'x,y', b: '2', c: '3' } }
  ])
})

test('csv: malformed quoting is an error item; an unterminated quote at the end too', async () => {
  const items = await parseAll('a,b\n"x"y,1\nok,2\n1,"never closed\n2,3\n', { format: 'csv' })
  assert.is(items.length, 3)
  assert.match((items[0] as { error: string }).error, /^invalid CSV: unexpected character after the closing quote/)
  assert.is(items[0]?.line, 2)
  assert.equal(items[1], { line: 3, value: { a: 'ok', b: '2' } })
  assert.equal(items[2], { line: 4, error: 'invalid CSV: unterminated quoted field' })
  const stray = await parseAll('a,b\nx"y"z,1\n', { format: 'csv' })
  assert.equal(stray, [{ line: 2, error: 'invalid CSV: quote inside unquoted field 1' }])
})

test('csv: a bad header throws PARSE_ERROR_CSV_HEADER (usage)', async () => {
  const headers = ['a,,c\n1,2,3\n', 'a,b,a\n1,2,3\n', ' \n1\n', '"a"x,b\n', 'a,"b\n']
  for (const input of headers) {
    const err = await rejection(collect(chunksOf(Buffer.from(input), 3), { format: 'csv' }))
    assert.instance(err, DatanetError, input)
    assert.is((err as DatanetError).code, 'PARSE_ERROR_CSV_HEADER', input)
    assert.is((err as DatanetError).kind, 'usage', input)
  }
  const dup = await rejection(collect(chunksOf(Buffer.from('x,y,x\n'), 64), { format: 'csv' }))
  assert.match((dup as Error).message, /"x" appears twice/)
})

test('csv: a header alone or an empty file gives no items', async () => {
  assert.equal(await parseAll('a,b\r\n', { format: 'csv' }), [])
  assert.equal(await parseAll('', { format: 'csv' }), [])
  assert.equal(await parseAll('', { format: 'jsonl' }), [])
})

test('csv: a "__proto__" column is an own field', async () => {
  const [item] = await parseAll('__proto__,b\n1,2\n', { format: 'csv' })
  const value = (item as { value: Record<string, unknown> }).value
  assert.ok(Object.hasOwn(value, '__proto__'))
  assert.is(value['__proto__'], '1')
  assert.is(Object.getPrototypeOf(value), Object.prototype)
})

// -- Record size --------------------------------------------------------------------------

const MB = 1 << 20

/** A 10 MB JSONL line in 64 KB chunks between two short ones, from one reused buffer. */
async function * hugeLine (peak: { arrayBuffers: number }): AsyncGenerator<Uint8Array> {
  yield Buffer.from('{"before":1}\n')
  const chunk = Buffer.alloc(64 * 1024, 'x')
  chunk[0] = 0x7b // '{'
  for (let sent = 0; sent < 10 * MB; sent += chunk.length) {
    yield chunk
    chunk.fill('x') // the source reuses its buffer: the parser must have copied what it kept
    peak.arrayBuffers = Math.max(peak.arrayBuffers, process.memoryUsage().arrayBuffers)
  }
  yield Buffer.from('}\r\n{"after":2}\n')
}

test('an overlong record is an error item, its bytes are not kept, and the next record parses', async () => {
  const before = process.memoryUsage().arrayBuffers
  const peak = { arrayBuffers: before }
  const items = await collect(hugeLine(peak), { format: 'jsonl', maxRecordBytes: MB })
  assert.equal(items, [
    { line: 1, value: { before: 1 } },
    { line: 2, error: `record is longer than ${MB} bytes` },
    { line: 3, value: { after: 2 } }
  ])
  // Holding the line would take 10 MB; the parser copies at most about 1 MB of it.
  assert.ok(peak.arrayBuffers - before < 3 * MB, `array buffers grew by ${peak.arrayBuffers - before} bytes`)
})

test('maxRecordBytes counts UTF-8 bytes, not characters, and not the line end', async () => {
  const opts: Opts = { format: 'text', maxRecordBytes: 6 }
  // 'ééé' is 3 characters, 6 bytes: fits; 'éééa' is 7 bytes: too long; CRLF does not count
  const items = await parseAll('ééé\r\néééa\r\n123456\nxyz\n1234567', opts)
  assert.equal(items, [
    { line: 1, value: { text: 'ééé' } },
    { line: 2, error: 'record is longer than 6 bytes' },
    { line: 3, value: { text: '123456' } },
    { line: 4, value: { text: 'xyz' } },
    { line: 5, error: 'record is longer than 6 bytes' }
  ])
  // the BOM does not count against line 1 either
  assert.equal(await parseAll('\uFEFF123456\n', opts), [{ line: 1, value: { text: '123456' } }])
})

test('overlong records in every format: skipped to the end of the record, line numbers kept', async () => {
  const long = 'y'.repeat(300)
  const lines = await parseAll(`a\n${long}\nb\n`, { format: 'text', maxRecordBytes: 100 })
  assert.equal(lines, [{ line: 1, value: { text: 'a' } }, { line: 2, error: 'record is longer than 100 bytes' }, { line: 3, value: { text: 'b' } }])

  // a paragraph of short lines that together exceed the limit
  const para = Array.from({ length: 20 }, () => 'short line').join('\n')
  const paragraphs = await parseAll(`intro\n\n${para}\n\n${long}\nmore\n\nend`, { format: 'text', textMode: 'paragraph', maxRecordBytes: 100 })
  assert.equal(paragraphs, [
    { line: 1, value: { text: 'intro' } },
    { line: 3, error: 'record is longer than 100 bytes' },
    { line: 24, error: 'record is longer than 100 bytes' },
    { line: 27, value: { text: 'end' } }
  ])

  // a CSV row of short lines that together exceed the limit
  const tall = await parseAll('a,b\n1,"aaaaaaaaaa\nbbbbbbbbbb\ncccccccccc"\n2,3\n', { format: 'csv', maxRecordBytes: 20 })
  assert.equal(tall, [{ line: 2, error: 'record is longer than 20 bytes' }, { line: 5, value: { a: '2', b: '3' } }])

  // a CSV row whose overlong quoted field spans lines and holds quotes: the row still ends where it should
  const csv = `a,b\n1,"${long}\n""${long}"" , ${long}"\n2,"x\ny"\n${long},z\n3,4\n`
  const rows = await parseAll(csv, { format: 'csv', maxRecordBytes: 100 })
  assert.equal(rows, [
    { line: 2, error: 'record is longer than 100 bytes' },
    { line: 4, value: { a: '2', b: 'x\ny' } },
    { line: 6, error: 'record is longer than 100 bytes' },
    { line: 7, value: { a: '3', b: '4' } }
  ])
})

test('an overlong CSV header throws', async () => {
  const err = await rejection(collect(chunksOf(Buffer.from(`${'h'.repeat(50)},b\n1,2\n`), 7), { format: 'csv', maxRecordBytes: 10 }))
  assert.is((err as DatanetError).code, 'PARSE_ERROR_CSV_HEADER')
  assert.match((err as Error).message, /longer than 10 bytes/)
})

test('a source may overwrite a chunk once it has been read', async () => {
  const data = Buffer.from('{"first":"é€"}\r\n{"second":2}\nno newline', 'utf8')
  for (const size of [1, 3, 8]) {
    async function * reusing (): AsyncGenerator<Uint8Array> {
      const buffer = Buffer.alloc(size)
      for (let i = 0; i < data.length; i += size) {
        const n = data.copy(buffer, 0, i, i + size)
        yield buffer.subarray(0, n)
        buffer.fill(0x3f) // '?'
      }
    }
    const items = await collect(reusing(), { format: 'text' })
    assert.equal(items.map(item => 'value' in item ? item.value['text'] : item.error), ['{"first":"é€"}', '{"second":2}', 'no newline'], `chunk size ${size}`)
  }
})

// -- Options, file names, streaming -------------------------------------------------------

test('bad options throw PARSE_ERROR_OPTIONS before any input is read', async () => {
  let read = false
  const source = (async function * () { read = true; yield Buffer.from('x\n') })()
  const bad: ParseOptions[] = [
    { format: 'text', textMode: 'line', maxRecordBytes: 0 },
    { format: 'text', textMode: 'line', maxRecordBytes: 1.5 },
    { format: 'xml' as never, textMode: 'line', maxRecordBytes: 10 },
    { format: 'text', textMode: 'words' as never, maxRecordBytes: 10 }
  ]
  for (const opts of bad) {
    const err = await rejection(parseRecords(source, opts).next())
    assert.is((err as DatanetError).code, 'PARSE_ERROR_OPTIONS', JSON.stringify(opts))
    assert.is((err as DatanetError).kind, 'usage')
  }
  assert.not.ok(read)
})

test('stopping early closes the source', async () => {
  let closed = false
  async function * source (): AsyncGenerator<Uint8Array> {
    try {
      for (let i = 0; ; i++) yield Buffer.from(`line ${i}\n`)
    } finally {
      closed = true
    }
  }
  const seen: ParsedItem[] = []
  for await (const item of parseRecords(source(), { format: 'text', textMode: 'line', maxRecordBytes: 100 })) {
    seen.push(item)
    if (seen.length === 3) break
  }
  assert.equal(seen.at(-1), { line: 3, value: { text: 'line 2' } })
  assert.ok(closed)
})

test('formatOfFileName maps extensions, case-insensitively', () => {
  const expected: Array<[string, ReturnType<typeof formatOfFileName>]> = [
    ['data.jsonl', 'jsonl'], ['DATA.NDJSON', 'jsonl'], ['x.json-lines', 'jsonl'],
    ['table.csv', 'csv'], ['dir/sub.dir/Table.CSV', 'csv'],
    ['notes.txt', 'text'], ['a.text', 'text'], ['README.md', 'text'],
    ['data.json', undefined], ['table.csv.gz', undefined], ['csv', undefined], ['noext', undefined], ['', undefined]
  ]
  for (const [name, format] of expected) assert.is(formatOfFileName(name), format, name)
})

test('UPLOAD_FORMATS lists each format once and is frozen', () => {
  assert.equal([...UPLOAD_FORMATS], ['jsonl', 'csv', 'text'])
  assert.ok(Object.isFrozen(UPLOAD_FORMATS))
})

test('200,000 JSONL lines generated on the fly: every one parsed, the last line number right', async () => {
  const total = 200_000
  async function * generate (): AsyncGenerator<Uint8Array> {
    const perChunk = 1000
    for (let start = 0; start < total; start += perChunk) {
      let text = ''
      for (let i = start; i < start + perChunk; i++) text += `{"i":${i},"name":"record ${i}","tags":["a","b"]}\r\n`
      yield Buffer.from(text)
    }
  }
  let count = 0
  let last: ParsedItem | undefined
  for await (const item of parseRecords(generate(), { format: 'jsonl', textMode: 'line', maxRecordBytes: 4096 })) {
    count++
    last = item
  }
  assert.is(count, total)
  assert.equal(last, { line: total, value: { i: total - 1, name: `record ${total - 1}`, tags: ['a', 'b'] } })
})

test.run()
