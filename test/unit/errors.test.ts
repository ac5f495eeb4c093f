import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { DatanetError, describeError, exitCodeOf, httpStatusOf, isDatanetError, type ErrorKind } from '../../src/errors.ts'

const err = (kind?: ErrorKind, message = 'boom', cause?: unknown): DatanetError =>
  new DatanetError({ code: 'TEST_ERROR_X' }, message, kind, cause === undefined ? undefined : { cause })

test('DatanetError carries code, kind, type and name; kind defaults to failure', () => {
  const e = err('usage')
  assert.instance(e, Error)
  assert.is(e.code, 'TEST_ERROR_X')
  assert.equal(e.type, { code: 'TEST_ERROR_X' })
  assert.is(e.kind, 'usage')
  assert.is(e.name, 'DatanetError')
  assert.is(err().kind, 'failure')
  assert.ok(isDatanetError(e))
  assert.not.ok(isDatanetError(new Error('x')))
  assert.not.ok(isDatanetError({ code: 'TEST_ERROR_X', kind: 'usage' }))
})

test('exitCodeOf: usage → 2, every other kind → 1, non-DatanetError → 1', () => {
  assert.is(exitCodeOf(err('usage')), 2)
  for (const kind of ['failure', 'not_found', 'unauthorized', 'conflict', 'unavailable'] as const) {
    assert.is(exitCodeOf(err(kind)), 1, kind)
  }
  assert.is(exitCodeOf(new Error('x')), 1)
  assert.is(exitCodeOf('a string'), 1)
  assert.is(exitCodeOf(undefined), 1)
  // duck-typed look-alikes are not DatanetErrors
  assert.is(exitCodeOf({ kind: 'usage' }), 1)
})

test('httpStatusOf maps each kind', () => {
  const expected: Array<[ErrorKind, number]> = [
    ['usage', 400],
    ['unauthorized', 401],
    ['not_found', 404],
    ['conflict', 409],
    ['unavailable', 503],
    ['failure', 500]
  ]
  for (const [kind, status] of expected) assert.is(httpStatusOf(err(kind)), status, kind)
  assert.is(httpStatusOf(new Error('x')), 500)
  assert.is(httpStatusOf(null), 500)
})

test('describeError appends the cause message when it adds something', () => {
  const e = err('failure', 'cannot open the state database', new Error('disk on fire'))
  assert.is(describeError(e), 'cannot open the state database: disk on fire')
})

test('describeError includes the cause message only once', () => {
  const e = err('failure', 'cannot read: disk on fire', new Error('disk on fire'))
  const text = describeError(e)
  assert.is(text, 'cannot read: disk on fire')
  assert.is(text.split('disk on fire').length - 1, 1)
})

test('describeError ignores a non-Error cause', () => {
  assert.is(describeError(err('failure', 'outer', 'a string cause')), 'outer')
})

test('describeError gives one line, even for multi-line messages and causes', () => {
  const e = err('failure', 'first line\n  second line', new Error('cause line 1\ncause line 2'))
  const text = describeError(e)
  assert.not.ok(text.includes('\n'), text)
  assert.is(text, 'first line second line: cause line 1 cause line 2')
})

test('describeError of plain errors and non-errors', () => {
  assert.is(describeError(new Error('plain')), 'plain')
  assert.is(describeError('just text'), 'just text')
  assert.is(describeError(42), '42')
  assert.is(describeError(undefined), 'undefined')
})

test.run()
