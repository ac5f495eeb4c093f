/**
 * The node's event bus (node/events.ts) and `GET /v1/events` (DESIGN §6), which was in the
 * design's route table but not served: server-sent events per datanet and type, and a stop
 * of the API that ends open streams instead of waiting for them.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { pino } from 'pino'
import { ApiServer } from '../../node/api/server.ts'
import { eventRoutes } from '../../node/api/routes/events.ts'
import { NodeEvents } from '../../node/events.ts'
import { waitFor, withDeadline } from '../helpers/wait.ts'

test('a listener that throws is logged, the others still run, and unsubscribing works', () => {
  const events = new NodeEvents(pino({ level: 'silent' }))
  const seen: string[] = []
  events.on('work', () => { throw new Error('a bug') })
  const off = events.on('work', e => { seen.push(e.datanet) })
  events.emit('work', { datanet: 'd1' })
  off()
  events.emit('work', { datanet: 'd2' })
  assert.equal(seen, ['d1'])
  assert.is(events.listenerCount('work'), 1)
})

/** Reads server-sent events from a response body until `count` have come. */
async function read (body: ReadableStream<Uint8Array>, count: number): Promise<Array<{ event: string, data: Record<string, unknown> }>> {
  const reader = body.getReader()
  const decoder = new TextDecoder()
  let text = ''
  const out: Array<{ event: string, data: Record<string, unknown> }> = []
  while (out.length < count) {
    const { value, done } = await reader.read()
    if (done) break
    text += decoder.decode(value, { stream: true })
    let end: number
    while ((end = text.indexOf('\n\n')) !== -1) {
      const block = text.slice(0, end)
      text = text.slice(end + 2)
      const event = /^event: (.*)$/m.exec(block)?.[1]
      const data = /^data: (.*)$/m.exec(block)?.[1]
      if (event !== undefined && data !== undefined) out.push({ event, data: JSON.parse(data) as Record<string, unknown> })
    }
  }
  reader.releaseLock()
  return out
}

test('GET /v1/events streams the public events, filtered by datanet and type; the API stop ends the stream', async () => {
  const events = new NodeEvents()
  const server = new ApiServer({ host: '127.0.0.1', port: 0, token: 'b'.repeat(64), bodyLimitBytes: 1024, logger: pino({ level: 'silent' }), routes: [eventRoutes({ events })] })
  const url = await server.start()
  try {
    const bad = await fetch(`${url}/v1/events?types=version,nonsense`)
    assert.is(bad.status, 400)
    assert.match(((await bad.json()) as { error: { message: string } }).error.message, /nonsense/)

    const all = await fetch(`${url}/v1/events?datanet=dA`)
    assert.is(all.status, 200)
    assert.match(all.headers.get('content-type') ?? '', /^text\/event-stream/)
    const some = await fetch(`${url}/v1/events?types=anchor`)
    await waitFor(() => events.listenerCount('anchor') === 2 || undefined, { timeoutMs: 2000, what: 'both streams subscribed' })
    events.emit('contribution', { datanet: 'dB', cid: 'c0', contributor: '0x', recordCount: 1, origin: 'local' })
    events.emit('contribution', { datanet: 'dA', cid: 'c1', contributor: '0x', recordCount: 2, origin: 'gossip' })
    events.emit('work', { datanet: 'dA' })
    events.emit('version', { datanet: 'dA', height: 1, cid: 'v1', recordCount: 2, datasetRoot: '0x1', attributionRoot: '0x2', contributions: 1 })
    events.emit('anchor', { datanet: 'dB', height: 1, txHash: '0xabc', block: 9 })
    const got = await withDeadline(read(all.body as ReadableStream<Uint8Array>, 2), 5000, 'two events on the dA stream')
    assert.equal(got.map(e => [e.event, e.data.cid]), [['contribution', 'c1'], ['version', 'v1']], 'only dA, and no internal events')
    const anchors = await withDeadline(read(some.body as ReadableStream<Uint8Array>, 1), 5000, 'the anchor')
    assert.equal(anchors.map(e => [e.event, e.data.txHash]), [['anchor', '0xabc']])
  } finally {
    // with both streams still open: the stop must end them, not wait for them
    await withDeadline(server.stop(), 5000, 'the API stop with open event streams')
  }
  assert.is(events.listenerCount('contribution'), 0, 'the streams unsubscribed')
  assert.is(events.listenerCount('anchor'), 0)
})

test.run()
