import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { DatanetError } from '../../../src/errors.ts'
import type { ApiRoutes } from '../server.ts'
import type { FastifyInstance } from 'fastify'

export const WebErrorCode = {
  MISSING_FILE: 'WEB_ERROR_MISSING_FILE'
} as const

const HTML = 'text/html; charset=utf-8'
const JS = 'text/javascript; charset=utf-8'
const CSS = 'text/css; charset=utf-8'

const WEB_DIR = new URL('../../web/', import.meta.url)
const web = (name: string): string => fileURLToPath(new URL(name, WEB_DIR))
/** The ESM build a package's `import` condition names: what the browser's import map points at. */
const vendored = (specifier: string): string => fileURLToPath(import.meta.resolve(specifier))

/**
 * Every file the explorer serves, by URL path: a fixed allow-list, so no request path is
 * ever joined onto a directory (no traversal to find).
 */
export function explorerFiles (): ReadonlyMap<string, { file: string, type: string }> {
  return new Map([
    ['/', { file: web('index.html'), type: HTML }],
    ['/web/style.css', { file: web('style.css'), type: CSS }],
    ...['app.js', 'ui.js', 'api.js', 'format.js', 'live.js', 'pages.js', 'datanet.js', 'attribution.js', 'chart.js'].map(name =>
      [`/web/${name}`, { file: web(name), type: JS }] as const),
    ['/vendor/preact.mjs', { file: vendored('preact'), type: JS }],
    ['/vendor/preact-hooks.mjs', { file: vendored('preact/hooks'), type: JS }],
    ['/vendor/htm.mjs', { file: vendored('htm'), type: JS }]
  ])
}

/**
 * The page's content security policy: scripts from this origin only, plus the inline import
 * map by its hash; style attributes allowed (the contributors' colours are set inline).
 */
export function explorerCsp (html: string): string {
  const map = /<script type="importmap">([\s\S]*?)<\/script>/.exec(html)?.[1]
  const scripts = ["'self'", ...(map === undefined ? [] : [`'sha256-${createHash('sha256').update(map).digest('base64')}'`])]
  return [
    "default-src 'self'", `script-src ${scripts.join(' ')}`, "style-src 'self' 'unsafe-inline'", "img-src 'self' data:",
    "connect-src 'self'", "object-src 'none'", "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'"
  ].join('; ')
}

/** `GET /`: the explorer (DESIGN §6), a read-only web app over the open GET routes. */
export function webRoutes (): ApiRoutes {
  return {
    register (app: FastifyInstance) {
      // read once on first use: small files that only change with the node's own code
      const cache = new Map<string, Buffer>()
      for (const [path, { file, type }] of explorerFiles()) {
        app.get(path, async (_request, reply) => {
          let body = cache.get(file)
          if (body === undefined) {
            try {
              body = await readFile(file)
            } catch (err) {
              throw new DatanetError({ code: WebErrorCode.MISSING_FILE }, `the explorer's file ${file} is missing from this install`, 'failure', { cause: err })
            }
            cache.set(file, body)
          }
          if (type === HTML) void reply.header('content-security-policy', explorerCsp(body.toString('utf8')))
          return await reply
            .type(type)
            .header('x-content-type-options', 'nosniff')
            .header('cache-control', 'no-cache')
            .send(body)
        })
      }
    }
  }
}
