import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { pino } from 'pino'
import { ApiServer } from '../../node/api/server.ts'
import { explorerCsp, explorerFiles, webRoutes } from '../../node/api/routes/web.ts'

const server = new ApiServer({ host: '127.0.0.1', port: 0, token: 'a'.repeat(64), bodyLimitBytes: 1024, logger: pino({ level: 'silent' }), routes: [webRoutes()] })

test.after(async () => { await server.app.close() })

test('every allow-listed file exists and is served with its content type', async () => {
  for (const [path, { file, type }] of explorerFiles()) {
    const res = await server.app.inject({ method: 'GET', url: path })
    assert.is(res.statusCode, 200, path)
    assert.is(res.headers['content-type'], type, path)
    assert.is(res.headers['x-content-type-options'], 'nosniff', path)
    assert.is(res.body, readFileSync(file, 'utf8'), path)
  }
})

test('the vendored modules are the packages\' ESM builds', async () => {
  const preact = await server.app.inject({ method: 'GET', url: '/vendor/preact.mjs' })
  assert.match(preact.body, /export\s*\{/)
  const hooks = await server.app.inject({ method: 'GET', url: '/vendor/preact-hooks.mjs' })
  assert.match(hooks.body, /from\s*["']preact["']/, 'hooks import preact by the name the import map gives')
  const htm = await server.app.inject({ method: 'GET', url: '/vendor/htm.mjs' })
  assert.match(htm.body, /export\s*(default|\{)/)
})

test('paths outside the allow-list are 404, traversal included', async () => {
  for (const url of ['/web/../package.json', '/web/%2e%2e/package.json', '/web/..%2f..%2fpackage.json', '/vendor/../../package.json', '/web/', '/web/index.html', '/node_modules/preact/package.json', '/web/app.js/', '/vendor/preact.js']) {
    const res = await server.app.inject({ method: 'GET', url })
    assert.is(res.statusCode, 404, url)
    assert.is.not(res.headers['content-type'], 'text/javascript; charset=utf-8', url)
  }
})

test('the page\'s policy allows the import map by its hash and scripts from the node only', async () => {
  const res = await server.app.inject({ method: 'GET', url: '/' })
  const csp = String(res.headers['content-security-policy'])
  const map = /<script type="importmap">([\s\S]*?)<\/script>/.exec(res.body)?.[1]
  assert.ok(map !== undefined && map.includes('/vendor/preact.mjs'), 'index.html has the import map')
  assert.ok(csp.includes(`script-src 'self' 'sha256-${createHash('sha256').update(map).digest('base64')}'`), csp)
  assert.ok(csp.includes("object-src 'none'"))
  assert.is(explorerCsp('<p>no map</p>').includes("script-src 'self';"), true)
})

test.run()
