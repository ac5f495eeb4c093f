/**
 * A DelayRelay as a process of its own, so that it can run inside a network namespace
 * (`ip netns exec NS node delay-relay-main.ts …`): the host's link then adds the delay
 * to every connection made to it, as a wide-area link would. Prints `ready <port>` once
 * listening; SIGTERM stops it.
 *
 *   node test/helpers/delay-relay-main.ts LISTEN_HOST LISTEN_PORT TARGET_HOST TARGET_PORT DELAY_MS [JITTER_MS]
 */
import { DelayRelay } from './delay-relay.ts'

const [host, port, targetHost, targetPort, delayMs, jitterMs] = process.argv.slice(2)
const numbers = [port, targetPort, delayMs, jitterMs ?? '0'].map(Number)
if (host === undefined || targetHost === undefined || numbers.some(n => !Number.isInteger(n) || n < 0)) {
  process.stderr.write('usage: delay-relay-main.ts LISTEN_HOST LISTEN_PORT TARGET_HOST TARGET_PORT DELAY_MS [JITTER_MS]\n')
  process.exit(2)
}
const [listenPort, target, delay, jitter] = numbers as [number, number, number, number]
const relay = new DelayRelay({ host, port: listenPort, target: { host: targetHost, port: target }, delayMs: delay, jitterMs: jitter })
await relay.start()
process.stdout.write(`ready ${relay.port}\n`)
const stop = (): void => { void relay.stop().then(() => process.exit(0)) }
process.once('SIGTERM', stop)
process.once('SIGINT', stop)
