import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { pino } from 'pino'
import { ApiServer, type ApiRoutes } from '../../node/api/server.ts'
import { DatanetError, type ErrorKind } from '../../src/errors.ts'
import type { FastifyInstance } from 'fastify'

const TOKEN = 'a'.repeat(64)
let posts = 0

const routes: ApiRoutes = {
  register (app: FastifyInstance) {
    app.get('/v1/x', async () => ({ ok: 'get' }))
    app.post('/v1/x', async (request) => {
      posts++
      return { ok: 'post', body: request.body ?? null }
    })
    app.post('/v1/datanets/:id/attribution', async () => ({ ok: 'preview' }))
    app.post('/v1/datanets/:id/claim', async () => ({ ok: 'claim' }))
    app.get('/v1/fail/:kind', async (request) => {
      const { kind } = request.params as { kind: ErrorKind }
      throw new DatanetError({ code: `TEST_ERROR_${kind.toUpperCase()}` }, `failed as ${kind}`, kind)
    })
    app.get('/v1/crash', async () => {
      throw new Error('an unexpected bug')
    })
  }
}

const server = new ApiServer({
  host: '127.0.0.1',
  port: 0,
  token: TOKEN,
  bodyLimitBytes: 1024,
  logger: pino({ level: 'silent' }),
  routes: [routes]
})

interface ErrorBody { error: { code: string, message: string } }

test.after(async () => { await server.app.close() })

test('GET without a token is allowed', async () => {
  const res = await server.app.inject({ method: 'GET', url: '/v1/x' })
  assert.is(res.statusCode, 200)
  assert.equal(res.json(), { ok: 'get' })
})

test('HEAD and OPTIONS without a token are not refused as unauthorised', async () => {
  const head = await server.app.inject({ method: 'HEAD', url: '/v1/x' })
  assert.is(head.statusCode, 200)
  const options = await server.app.inject({ method: 'OPTIONS', url: '/v1/x' })
  assert.is.not(options.statusCode, 401)
})

test('POST without a token is 401 API_ERROR_UNAUTHORIZED and the route does not run', async () => {
  const before = posts
  const res = await server.app.inject({ method: 'POST', url: '/v1/x', payload: { a: 1 } })
  assert.is(res.statusCode, 401)
  assert.is((res.json() as ErrorBody).error.code, 'API_ERROR_UNAUTHORIZED')
  assert.is(posts, before)
})

test('POST with a wrong token is 401', async () => {
  const before = posts
  for (const authorization of [`Bearer ${'b'.repeat(64)}`, `Bearer ${TOKEN}x`, 'Bearer short', `Basic ${TOKEN}`, TOKEN, 'Bearer ', `Bearer ${TOKEN} extra`]) {
    const res = await server.app.inject({ method: 'POST', url: '/v1/x', headers: { authorization }, payload: { a: 1 } })
    assert.is(res.statusCode, 401, authorization)
    assert.is((res.json() as ErrorBody).error.code, 'API_ERROR_UNAUTHORIZED')
  }
  assert.is(posts, before)
})

test('POST with Authorization: Bearer <token> is 200', async () => {
  const before = posts
  const res = await server.app.inject({ method: 'POST', url: '/v1/x', headers: { authorization: `Bearer ${TOKEN}` }, payload: { a: 1 } })
  assert.is(res.statusCode, 200)
  assert.equal(res.json(), { ok: 'post', body: { a: 1 } })
  assert.is(posts, before + 1)
  const lower = await server.app.inject({ method: 'POST', url: '/v1/x', headers: { authorization: `bearer ${TOKEN}` } })
  assert.is(lower.statusCode, 200, 'the scheme is case-insensitive')
})

test('the attribution preview is open to POST without a token; its neighbours are not', async () => {
  const preview = await server.app.inject({ method: 'POST', url: '/v1/datanets/d1/attribution', payload: { text: 'x' } })
  assert.is(preview.statusCode, 200)
  assert.equal(preview.json(), { ok: 'preview' })
  const claim = await server.app.inject({ method: 'POST', url: '/v1/datanets/d1/claim' })
  assert.is(claim.statusCode, 401)
  // a path that only looks like the preview's is matched by its own route, or none
  const lookalike = await server.app.inject({ method: 'POST', url: '/v1/datanets/d1/attribution/../claim' })
  assert.is.not(lookalike.statusCode, 200)
})

test('other write methods need the token too', async () => {
  for (const method of ['PUT', 'DELETE', 'PATCH'] as const) {
    const res = await server.app.inject({ method, url: '/v1/x' })
    assert.is(res.statusCode, 401, method)
  }
})

test('an unknown route is 404 API_ERROR_NOT_FOUND naming the path without its query', async () => {
  const res = await server.app.inject({ method: 'GET', url: '/v1/nope?secret=1' })
  assert.is(res.statusCode, 404)
  const body = res.json() as ErrorBody
  assert.is(body.error.code, 'API_ERROR_NOT_FOUND')
  assert.ok(body.error.message.includes('/v1/nope'))
  assert.not.ok(body.error.message.includes('secret'))
})

test('a DatanetError of kind usage is 400 with its code', async () => {
  const res = await server.app.inject({ method: 'GET', url: '/v1/fail/usage' })
  assert.is(res.statusCode, 400)
  assert.equal(res.json(), { error: { code: 'TEST_ERROR_USAGE', message: 'failed as usage' } })
})

test('a DatanetError of kind not_found is 404 with its code', async () => {
  const res = await server.app.inject({ method: 'GET', url: '/v1/fail/not_found' })
  assert.is(res.statusCode, 404)
  assert.is((res.json() as ErrorBody).error.code, 'TEST_ERROR_NOT_FOUND')
})

test('other kinds map to their status', async () => {
  const expected: Array<[ErrorKind, number]> = [['unauthorized', 401], ['conflict', 409], ['unavailable', 503], ['failure', 500]]
  for (const [kind, status] of expected) {
    const res = await server.app.inject({ method: 'GET', url: `/v1/fail/${kind}` })
    assert.is(res.statusCode, status, kind)
    assert.is((res.json() as ErrorBody).error.code, `TEST_ERROR_${kind.toUpperCase()}`)
  }
})

test('an unexpected error is 500 API_ERROR_INTERNAL', async () => {
  const res = await server.app.inject({ method: 'GET', url: '/v1/crash' })
  assert.is(res.statusCode, 500)
  assert.is((res.json() as ErrorBody).error.code, 'API_ERROR_INTERNAL')
})

test('a malformed JSON body is 400 API_ERROR_BAD_REQUEST', async () => {
  const res = await server.app.inject({
    method: 'POST',
    url: '/v1/x',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    payload: '{"a": '
  })
  assert.is(res.statusCode, 400)
  assert.is((res.json() as ErrorBody).error.code, 'API_ERROR_BAD_REQUEST')
})

test('a body over the limit is refused with a 4xx API_ERROR_BAD_REQUEST', async () => {
  const res = await server.app.inject({
    method: 'POST',
    url: '/v1/x',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    payload: JSON.stringify({ a: 'x'.repeat(2048) })
  })
  assert.is(res.statusCode, 413)
  assert.is((res.json() as ErrorBody).error.code, 'API_ERROR_BAD_REQUEST')
})

test('application/octet-stream bodies arrive as bytes', async () => {
  const res = await server.app.inject({
    method: 'POST',
    url: '/v1/x',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/octet-stream' },
    payload: Buffer.from([1, 2, 3])
  })
  assert.is(res.statusCode, 200)
  assert.equal((res.json() as { body: unknown }).body, { type: 'Buffer', data: [1, 2, 3] })
})

test.run()
