/**
 * The delaying TCP relay (test/helpers/delay-relay.ts) that stands in for wide-area links:
 * a stream keeps its byte order under jitter, a round trip takes at least twice the
 * one-way delay, byte counts add up, and closing either side closes the other.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { DelayRelay } from '../helpers/delay-relay.ts'
import { waitFor, withDeadline } from '../helpers/wait.ts'

/** A loopback server; `onSocket` decides what it does with each connection. */
async function server (onSocket: (s: Socket) => void): Promise<{ srv: Server, port: number }> {
  const srv = createServer({ allowHalfOpen: true }, onSocket)
  await new Promise<void>(resolve => srv.listen(0, '127.0.0.1', () => resolve()))
  const address = srv.address()
  return { srv, port: typeof address === 'object' && address !== null ? address.port : 0 }
}

async function dial (port: number): Promise<Socket> {
  const s = connect({ port, host: '127.0.0.1', noDelay: true })
  await new Promise<void>((resolve, reject) => { s.once('connect', resolve); s.once('error', reject) })
  return s
}

const echo = (s: Socket): void => { s.pipe(s) }
const pause = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

test('order is kept under jitter far larger than the gap between chunks', async () => {
  const { srv, port } = await server(echo)
  // the worst case, deterministically: delays alternate delay+jitter, delay-jitter
  let flip = false
  const relay = new DelayRelay({ target: { host: '127.0.0.1', port }, delayMs: 20, jitterMs: 15, random: () => (flip = !flip) ? 1 : 0 })
  await relay.start()
  const client = await dial(relay.port)
  const got: Buffer[] = []
  client.on('data', (b: Buffer) => got.push(b))
  const sent: Buffer[] = []
  for (let i = 0; i < 60; i++) {
    const chunk = Buffer.from(`<${i}>`)
    sent.push(chunk)
    client.write(chunk)
    // separate chunks on the wire: 1 ms apart, against 30 ms of jitter spread
    await pause(1)
  }
  const want = Buffer.concat(sent).toString()
  await waitFor(() => Buffer.concat(got).length >= want.length, { timeoutMs: 10_000, what: 'the echo' })
  assert.is(Buffer.concat(got).toString(), want)
  assert.is(relay.stats.bytesUp, want.length)
  assert.is(relay.stats.bytesDown, want.length)
  assert.is(relay.stats.connections, 1)
  client.destroy()
  await relay.stop()
  srv.close()
})

test('a round trip takes at least twice the one-way delay', async () => {
  const { srv, port } = await server(echo)
  const delayMs = 40
  const relay = new DelayRelay({ target: { host: '127.0.0.1', port }, delayMs, jitterMs: 5 })
  await relay.start()
  const client = await dial(relay.port)
  const rtts: number[] = []
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now()
    const back = new Promise<void>(resolve => client.once('data', () => resolve()))
    client.write('x')
    await withDeadline(back, 10_000, 'the echo of one byte')
    rtts.push(performance.now() - t0)
  }
  // each direction at least delay - jitter (less 1 ms of clock rounding); the upper bound only catches a hang
  for (const rtt of rtts) assert.ok(rtt >= 2 * (delayMs - 5) - 1, `RTT ${rtt.toFixed(1)} ms under ${2 * (delayMs - 5)} ms`)
  const sorted = [...rtts].sort((a, b) => a - b)
  assert.ok((sorted[2] as number) >= 2 * delayMs - 12, `median RTT ${(sorted[2] as number).toFixed(1)} ms`)
  assert.ok((sorted[2] as number) < 2 * delayMs + 2000, `median RTT ${(sorted[2] as number).toFixed(1)} ms`)
  client.destroy()
  await relay.stop()
  srv.close()
})

test('the target sees the relay: its remote port is one of the relay\'s upstream ports', async () => {
  const remotePorts: number[] = []
  const { srv, port } = await server(s => { remotePorts.push(s.remotePort as number); echo(s) })
  const relay = new DelayRelay({ target: { host: '127.0.0.1', port }, delayMs: 5 })
  await relay.start()
  const client = await dial(relay.port)
  await waitFor(() => remotePorts.length === 1 && relay.upstreamPorts.size === 1, { timeoutMs: 5000, what: 'the upstream connection' })
  assert.ok(relay.upstreamPorts.has(remotePorts[0] as number))
  assert.is.not(remotePorts[0], client.localPort)
  client.destroy()
  await relay.stop()
  srv.close()
})

test('closing either side closes the other, after the data sent before it', async () => {
  const accepted: Socket[] = []
  const received: Buffer[] = []
  const { srv, port } = await server(s => { accepted.push(s); s.on('data', (b: Buffer) => received.push(b)); s.on('error', () => {}) })
  const relay = new DelayRelay({ target: { host: '127.0.0.1', port }, delayMs: 30, jitterMs: 10 })
  await relay.start()

  // the client ends: the target gets the last bytes, then the end, then the close
  const a = await dial(relay.port)
  const targetA = await waitFor(() => accepted[0], { timeoutMs: 5000, what: 'the target to accept' })
  const targetEnded = new Promise<void>(resolve => targetA.once('end', () => resolve()))
  a.end('last words')
  await withDeadline(targetEnded, 5000, 'the end to reach the target')
  assert.is(Buffer.concat(received).toString(), 'last words')
  const aClosed = new Promise<void>(resolve => a.once('close', () => resolve()))
  const targetAClosed = new Promise<void>(resolve => targetA.once('close', () => resolve()))
  targetA.end()
  await withDeadline(aClosed, 5000, 'the client to close')
  await withDeadline(targetAClosed, 5000, 'the target to close')

  // the target is destroyed: the client's connection closes
  const b = await dial(relay.port)
  b.on('error', () => {})
  const targetB = await waitFor(() => accepted[1], { timeoutMs: 5000, what: 'the target to accept' })
  const bClosed = new Promise<void>(resolve => b.once('close', () => resolve()))
  targetB.destroy()
  await withDeadline(bClosed, 5000, 'the client to close after the target closed')

  // the client is destroyed: its FIN reaches the target, which closes in turn, and the relay holds no socket
  const c = await dial(relay.port)
  const targetC = await waitFor(() => accepted[2], { timeoutMs: 5000, what: 'the target to accept' })
  const cEnded = new Promise<void>(resolve => targetC.once('end', () => resolve()))
  c.destroy()
  await withDeadline(cEnded, 5000, 'the target to see the end after the client closed')
  targetC.end()
  await waitFor(() => relay.openSockets === 0, { timeoutMs: 5000, what: 'the relay to close both sockets' })

  // the target ends first, then the client answers and closes: its answer, still on the
  // delayed link when the client's socket is fully closed, is delivered, not dropped
  const d = connect({ port: relay.port, host: '127.0.0.1', allowHalfOpen: true })
  const targetD = await waitFor(() => accepted[3], { timeoutMs: 5000, what: 'the target to accept' })
  const dGotEnd = new Promise<void>(resolve => d.once('end', () => resolve()))
  const targetDEnded = new Promise<void>(resolve => targetD.once('end', () => resolve()))
  received.length = 0
  targetD.end()
  await withDeadline(dGotEnd, 5000, 'the client to see the target\'s end')
  d.end('an answer after the end')
  await withDeadline(targetDEnded, 5000, 'the client\'s end to reach the target')
  assert.is(Buffer.concat(received).toString(), 'an answer after the end')
  await waitFor(() => relay.openSockets === 0, { timeoutMs: 5000, what: 'the relay to close both sockets' })

  await relay.stop()
  srv.close()
})

test('stop drops open connections and refuses new ones', async () => {
  const { srv, port } = await server(echo)
  const relay = new DelayRelay({ target: { host: '127.0.0.1', port }, delayMs: 5 })
  await relay.start()
  const client = await dial(relay.port)
  client.on('error', () => {})
  const closed = new Promise<void>(resolve => client.once('close', () => resolve()))
  await relay.stop()
  await withDeadline(closed, 5000, 'the open connection to close')
  const refused = await dial(relay.port).then(s => { s.destroy(); return false }, () => true)
  assert.ok(refused, 'a connection after stop was accepted')
  srv.close()
})

test.run()
