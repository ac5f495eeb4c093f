import { describeError, exitCodeOf } from '../../src/errors.ts'
import { loadConfig, type ConfigSources } from '../config/load.ts'
import { createLogger } from '../logger.ts'
import { loadWallet } from '../../src/storage/data-dir.ts'
import type { FaultOptions } from '../services/faults.ts'

export interface RunDaemonOptions {
  config: ConfigSources
  password: string | undefined
  faults?: FaultOptions
}

/**
 * Runs the daemon until SIGINT or SIGTERM. The first signal stops it in order; a second
 * forces the exit. Returns the exit code.
 */
export async function runDaemon (opts: RunDaemonOptions): Promise<number> {
  const config = loadConfig(opts.config)
  const logger = createLogger({ level: config.log.level, format: config.log.format })
  // scrypt (hundreds of ms, on the thread pool) runs while the node's modules load; the
  // node awaits it after its own checks, so their errors still come first
  const wallet = loadWallet(config.dataDir, opts.password)
  wallet.catch(() => {})
  const { DatanetNode } = await import('./datanet-node.ts')
  const node = new DatanetNode({ config, password: opts.password, logger, faults: opts.faults ?? {}, wallet })

  let stopping: Promise<void> | undefined
  let resolveDone: (code: number) => void = () => {}
  const done = new Promise<number>(resolve => { resolveDone = resolve })
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping !== undefined) {
      logger.warn({ signal }, 'second signal: forcing exit')
      process.exit(130)
    }
    logger.info({ signal }, 'stopping')
    stopping = node.stop().then(() => {
      logger.info('stopped')
      resolveDone(0)
    })
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)

  try {
    await node.start()
  } catch (err) {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    logger.debug({ err }, 'start failed')
    process.stderr.write(`datanet: ${describeError(err)}\n`)
    return exitCodeOf(err)
  }
  return await done
}
