/**
 * The explorer (issue 15) in a real browser: Chromium driven by puppeteer-core against a
 * devnet (anvil, three validators, a plain node) that ran the demo, so every page has
 * something to show. Checks each page against the JSON API, a contribution arriving
 * without a reload (the SSE stream), the attribution view's highlights, and a phone-width
 * layout. EXPLORER_SCREENSHOTS=<dir> saves desktop and phone screenshots there.
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import puppeteer, { type Browser, type Page } from 'puppeteer-core'
import { Devnet, type DevnetFile, type DevnetNodeEntry } from '../../node/devnet/devnet.ts'
import { DEMO_DATASET, runDemo, type DemoSummary } from '../../node/devnet/demo.ts'
import { readApiToken } from '../../src/storage/data-dir.ts'
import { tempDir } from '../helpers/tmp.ts'
import { hook, waitFor, withDeadline } from '../helpers/wait.ts'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const SCREENSHOTS = process.env.EXPLORER_SCREENSHOTS
const DESKTOP = { width: 1280, height: 800 }
const PHONE = { width: 390, height: 844, isMobile: true, hasTouch: true, deviceScaleFactor: 1 }

const tmp = tempDir('datanet-explorer-')
let devnet: Devnet | undefined
let file: DevnetFile
let summary: DemoSummary
let browser: Browser | undefined
let page: Page
/** The node the browser looks at: the plain node (the demo's first contributor, its operator and claimer). */
let viewed: DevnetNodeEntry
let datanet = ''
const pageErrors: string[] = []

/** The browser's globals, for the functions puppeteer runs in the page (the project's lib has no DOM). */
interface PageGlobals {
  stillHere?: boolean
  innerWidth: number
  document: { documentElement: { scrollWidth: number }, body: { innerText: string } }
  getComputedStyle: (e: unknown) => { backgroundColor: string }
}

async function getJson<T> (path: string): Promise<T> {
  const res = await fetch(`${viewed.apiUrl}${path}`, { signal: AbortSignal.timeout(30_000) })
  if (!res.ok) throw new Error(`GET ${path}: ${res.status} ${await res.text()}`)
  return await res.json() as T
}

/** Opens a page of the explorer and waits until `selector` is in it. */
async function open (hash: string, selector: string): Promise<void> {
  await page.goto(`${viewed.apiUrl}/${hash}`, { waitUntil: 'domcontentloaded', timeout: 30_000 })
  try {
    await page.waitForSelector(selector, { timeout: 30_000 })
  } catch (err) {
    // say what the page showed instead (a loading line, an error), for the post-mortem
    const text = await page.evaluate(() => (globalThis as unknown as PageGlobals).document.body.innerText).catch(() => '(unreadable)')
    throw new Error(`${selector} not shown at /${hash} within 30 s; the page shows: ${text.replace(/\s+/g, ' ').slice(0, 400)}`, { cause: err })
  }
}

async function screenshot (name: string): Promise<void> {
  if (SCREENSHOTS === undefined) return
  mkdirSync(SCREENSHOTS, { recursive: true })
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`) as `${string}.png` })
}

test.before(hook(async () => {
  devnet = new Devnet({ dir: join(tmp.dir, 'net'), validators: 3, nodes: 1, log: () => {}, readyTimeoutMs: 180_000 })
  file = await withDeadline(devnet.start(), 240_000, 'the devnet to start')
  if (file.datanet === null) throw new Error('the devnet has no datanet')
  datanet = file.datanet
  viewed = file.nodes.find(n => n.role === 'node') as DevnetNodeEntry
  summary = await withDeadline(runDemo(file, () => {}), 600_000, 'the demo')
  const executablePath = execFileSync('bash', [join(ROOT, 'scripts/chromium.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 600_000 }).trim()
  browser = await puppeteer.launch({ executablePath, args: ['--no-sandbox', '--headless=new'], timeout: 60_000 })
  page = await browser.newPage()
  await page.setViewport(DESKTOP)
  page.on('pageerror', err => { pageErrors.push(String(err)) })
  page.on('console', msg => { if (msg.type() === 'error') pageErrors.push(msg.text()) })
}))

test.after(hook(async () => {
  try {
    await browser?.close()
  } finally {
    try {
      await devnet?.stop()
    } finally {
      if (process.env.KEEP_TEST_DIRS === '1') process.stderr.write(`kept ${tmp.dir}\n`)
      else tmp.remove()
    }
  }
}))

test('serves the app, the vendored preact and htm with their content types, and nothing outside its allow-list', async () => {
  const types: Record<string, string> = { '/': 'text/html', '/web/app.js': 'text/javascript', '/web/style.css': 'text/css', '/vendor/preact.mjs': 'text/javascript', '/vendor/preact-hooks.mjs': 'text/javascript', '/vendor/htm.mjs': 'text/javascript' }
  for (const [path, type] of Object.entries(types)) {
    const res = await fetch(`${viewed.apiUrl}${path}`)
    assert.is(res.status, 200, path)
    assert.ok(res.headers.get('content-type')?.startsWith(type), `${path}: ${res.headers.get('content-type')}`)
    assert.ok((await res.text()).length > 0, path)
    if (path === '/') assert.match(res.headers.get('content-security-policy') ?? '', /script-src 'self' 'sha256-/)
  }
  for (const path of ['/web/../package.json', '/web/%2e%2e/package.json', '/vendor/..%2fpackage.json', '/web/index.html/..', '/node_modules/preact/package.json', '/web/']) {
    const res = await fetch(`${viewed.apiUrl}${path}`)
    assert.is(res.status, 404, path)
  }
})

test('the front page lists the datanets GET /v1/datanets lists', async () => {
  const list = await getJson<Array<{ id: string, name: string, validators: unknown[] }>>('/v1/datanets')
  await open('', 'li[data-datanet]')
  const shown = await page.$$eval('li[data-datanet]', els => els.map(e => ({ id: e.getAttribute('data-datanet'), text: e.textContent ?? '' })))
  assert.equal(shown.map(s => s.id), list.map(d => d.id))
  for (const d of list) assert.ok(shown.find(s => s.id === d.id)?.text.includes(d.name), d.name)
  const peers = await page.$eval('[data-field="peers"]', e => e.textContent)
  assert.is(Number(peers), (await getJson<{ peers: unknown[] }>('/v1/node')).peers.length)
  await screenshot('desktop-datanets')
})

test('the versions page shows each version with its CID and anchor as GET /versions says', async () => {
  const versions = await getJson<Array<{ height: number, cid: string, anchor: { txHash: string, block: number } | null }>>(`/v1/datanets/${datanet}/versions`)
  const anchored = versions.find(v => v.anchor !== null)
  assert.ok(anchored !== undefined, 'the demo anchored a version')
  assert.ok(summary.anchors.some(a => a.txHash === anchored.anchor?.txHash))
  await open(`#/d/${datanet}/versions`, `li.version[data-height="${anchored.height}"] .anchor-tx`)
  const shown = await page.$eval(`li.version[data-height="${anchored.height}"]`, e => ({
    cid: e.querySelector('.cid')?.textContent,
    tx: e.querySelector('.anchor-tx')?.textContent,
    block: e.querySelector('.anchor-block')?.textContent
  }))
  assert.equal(shown, { cid: anchored.cid, tx: anchored.anchor?.txHash, block: String(anchored.anchor?.block) })
  // every version the API had is on the page (newer ones may have arrived since)
  const heights = await page.$$eval('li.version', els => els.map(e => Number(e.getAttribute('data-height'))))
  for (const v of versions) assert.ok(heights.includes(v.height), `version ${v.height}`)
  await screenshot('desktop-versions')
})

test('the validators page shows the set with stakes and statuses', async () => {
  const set = await getJson<{ validators: Array<{ address: string, stake: string, status: string }> }>(`/v1/datanets/${datanet}/validators`)
  await open(`#/d/${datanet}/validators`, 'tr.validator')
  const rows = await page.$$eval('tr.validator', els => els.map(e => e.getAttribute('data-address')))
  assert.equal(rows, set.validators.map(v => v.address))
  assert.is(rows.length, 3)
  assert.is(await page.$eval('[data-field="validator-count"]', e => e.textContent), '3')
  // this node is connected to every validator: all show as online
  await waitFor(async () => (await page.$$eval('tr.validator', els => els.filter(e => e.textContent?.includes('online')).length)) === 3,
    { timeoutMs: 30_000, what: 'every validator to show as online' })
  await screenshot('desktop-validators')
})

test('the models page shows the demo\'s model and its inferences', async () => {
  const inferences = await getJson<Array<{ cid: string }>>(`/v1/datanets/${datanet}/inferences`)
  assert.is(inferences.length, summary.inferences.length)
  await open(`#/d/${datanet}/models`, `tr.model[data-model="${summary.model}"]`)
  await page.waitForSelector('tr.inference', { timeout: 30_000 })
  const shown = await page.$$eval('tr.inference', els => els.map(e => e.getAttribute('data-cid')))
  assert.equal([...shown].sort(), summary.inferences.map(i => i.cid).sort())
})

test('the tallies page shows each contributor\'s tally and a bar for it', async () => {
  const list = await getJson<{ tallies: Array<{ address: string, amount: string, claimed: string }> }>(`/v1/datanets/${datanet}/tallies`)
  const claimer = list.tallies.find(t => t.address.toLowerCase() === summary.claim.address.toLowerCase())
  assert.ok(claimer !== undefined && BigInt(claimer.claimed) > 0n, 'the demo\'s claimer has claimed')
  await open(`#/d/${datanet}/tallies`, `tr.tally[data-address="${claimer.address}"]`)
  const row = await page.$eval(`tr.tally[data-address="${claimer.address}"]`, e => ({ amount: e.getAttribute('data-amount'), cells: [...e.querySelectorAll('td')].map(td => td.textContent) }))
  assert.is(row.amount, claimer.amount)
  assert.ok(row.cells[2] !== '0 ETH', `claimed is shown: ${row.cells.join(' | ')}`)
  assert.is(await page.$$eval('figure.chart g.bar', els => els.length), list.tallies.length)
  await screenshot('desktop-tallies')
})

test('a new contribution appears on the page without a reload (server-sent events)', async () => {
  await open(`#/d/${datanet}/contributions`, 'li.contribution')
  await page.waitForSelector('[data-live="live"]', { timeout: 30_000 })
  // a reload would lose this
  await page.evaluate(() => { (globalThis as unknown as PageGlobals).stillHere = true })
  const body = JSON.stringify({ text: `The explorer test contributes this sentence at ${Date.now()}, about tidal clocks in a harbour town.` }) + '\n'
  const res = await fetch(`${viewed.apiUrl}/v1/datanets/${datanet}/contributions?format=jsonl`, {
    method: 'POST',
    headers: { authorization: `Bearer ${readApiToken(viewed.tokenFile)}`, 'content-type': 'application/x-ndjson' },
    body
  })
  assert.is(res.status, 201)
  const { cid } = await res.json() as { cid: string }
  await page.waitForSelector(`li.contribution[data-cid="${cid}"]`, { timeout: 30_000 })
  // its verdicts and decision arrive on the stream as well
  await page.waitForSelector(`li.contribution[data-cid="${cid}"][data-status="accepted"]`, { timeout: 90_000 })
  assert.ok(await page.evaluate(() => (globalThis as unknown as PageGlobals).stillHere === true), 'the page was not reloaded')
  const announced = await page.$eval('#announcer', e => e.textContent ?? '')
  assert.ok(announced.length > 0, 'the update was announced in the aria-live region')
  const view = await getJson<{ status: string, verdicts: Array<{ validator: string }> }>(`/v1/datanets/${datanet}/contributions/${cid}`)
  assert.is(view.status, 'accepted')
  const verdicts = await page.$$eval(`li.contribution[data-cid="${cid}"] .verdicts li`, els => els.map(e => e.getAttribute('data-validator')))
  assert.ok(verdicts.length > 0 && verdicts.every(v => view.verdicts.some(x => x.validator === v)), 'the verdicts shown are the API\'s')
  await page.$eval(`li.contribution[data-cid="${cid}"] details`, e => { e.setAttribute('open', '') })
  await screenshot('desktop-contributions')
})

test('the attribution view highlights a passage copied from a contributed record in its contributor\'s colour', async () => {
  // the demo's first file (crafts) was contributed by the plain node
  const record = (JSON.parse(readFileSync(join(DEMO_DATASET, 'crafts.jsonl'), 'utf8').split('\n')[0] as string) as { text: string }).text
  const text = `Someone wrote that ${record} Nobody knows who.`
  await open(`#/d/${datanet}/attribution`, 'textarea#attr-text')
  // the textarea has a label, found by the accessible name
  assert.is(await page.$eval('label[for="attr-text"]', e => e.textContent), 'Text to attribute')
  await page.type('#attr-text', text)
  await page.keyboard.press('Tab')
  await page.keyboard.press('Enter') // the submit button, reached by keyboard
  await page.waitForSelector('mark[data-contributor]', { timeout: 60_000 })
  const marks = await page.$$eval('mark[data-contributor]', els => els.map(e => ({ who: e.getAttribute('data-contributor'), text: e.childNodes[0]?.textContent ?? '', background: (globalThis as unknown as PageGlobals).getComputedStyle(e).backgroundColor })))
  const mine = marks.filter(m => m.who?.toLowerCase() === viewed.address.toLowerCase())
  assert.ok(mine.length > 0, `a span is credited to ${viewed.address}: ${JSON.stringify(marks)}`)
  assert.ok(mine.every(m => record.includes(m.text.trim())), 'the highlighted text is from the record')
  // in the contributor's colour: the one of its swatch in the legend
  const swatch = await page.$eval(`.legend li[data-contributor="${mine[0]?.who ?? ''}"] .swatch`, e => (globalThis as unknown as PageGlobals).getComputedStyle(e).backgroundColor)
  assert.ok(mine.every(m => m.background === swatch && m.background !== 'rgba(0, 0, 0, 0)'), `highlighted in ${swatch}: ${JSON.stringify(mine)}`)
  // the legend's amounts are the API's
  const res = await fetch(`${viewed.apiUrl}/v1/datanets/${datanet}/attribution`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text }) })
  assert.is(res.status, 200, 'the preview needs no token')
  const api = await res.json() as { contributors: Array<{ address: string, amount: string }> }
  const legend = await page.$$eval('.legend li', els => els.map(e => ({ address: e.getAttribute('data-contributor'), amount: e.getAttribute('data-amount') })))
  assert.equal(legend, api.contributors)
  await page.$eval('.result', e => { e.scrollIntoView() })
  await screenshot('desktop-attribution')
})

test('on a phone-width screen nothing overflows sideways', async () => {
  // a page of its own, phone-sized before it loads: switching a loaded page to a mobile
  // viewport makes Chromium reload it, which raced the next hash navigation in loaded runs
  const desktop = page
  page = await (browser as Browser).newPage()
  page.on('pageerror', err => { pageErrors.push(String(err)) })
  page.on('console', msg => { if (msg.type() === 'error') pageErrors.push(msg.text()) })
  await page.setViewport(PHONE)
  try {
    for (const [tab, selector] of [['versions', 'li.version'], ['contributions', 'li.contribution'], ['tallies', 'tr.tally']] as const) {
      await open(`#/d/${datanet}/${tab}`, selector)
      const { scroll, width } = await page.evaluate(() => { const g = globalThis as unknown as PageGlobals; return { scroll: g.document.documentElement.scrollWidth, width: g.innerWidth } })
      assert.ok(scroll <= width + 1, `${tab}: the page is ${scroll} px wide on a ${width} px screen`)
      await screenshot(`phone-${tab}`)
    }
  } finally {
    await page.close()
    page = desktop
  }
})

test('the pages ran without script errors', () => {
  assert.equal(pageErrors, [])
})

test.run()
