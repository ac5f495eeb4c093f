import { createRequire } from 'node:module'
import pino, { type Logger } from 'pino'
import type pinoPretty from 'pino-pretty'

export type { Logger }

export interface LoggerOptions {
  level: string
  format: 'auto' | 'json' | 'pretty'
  /** Where logs go; stdout by default. */
  destination?: NodeJS.WritableStream
}

/** JSON lines for machines, pretty on a TTY. pino-pretty runs in-process (no worker thread to keep alive). */
export function createLogger (opts: LoggerOptions): Logger {
  const destination = opts.destination ?? process.stdout
  const usePretty = opts.format === 'pretty' || (opts.format === 'auto' && (destination as NodeJS.WriteStream).isTTY === true)
  const base = { level: opts.level, base: { pid: process.pid }, serializers: { err: pino.stdSerializers.err } }
  if (usePretty) {
    // loaded only here: a daemon logging JSON to a file never needs its ~60 modules
    const pretty = createRequire(import.meta.url)('pino-pretty') as typeof pinoPretty
    return pino(base, pretty({ colorize: (destination as NodeJS.WriteStream).isTTY === true, destination, sync: true, ignore: 'pid,hostname' }))
  }
  return pino(base, destination as pino.DestinationStream)
}
