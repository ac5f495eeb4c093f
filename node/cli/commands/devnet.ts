import { Command } from 'commander'
import { Devnet } from '../../devnet/devnet.ts'
import { usageError, withGlobalOptions, type GlobalOptions } from '../context.ts'
import { print, table } from '../output.ts'

interface DevnetCliOptions extends GlobalOptions {
  validators: string
  nodes: string
  dir: string
}

function count (flag: string, value: string, min: number): number {
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > 64) throw usageError(`--${flag}: expected an integer from ${min} to 64, got "${value}"`)
  return Number(value)
}

export function registerDevnetCommand (program: Command): void {
  withGlobalOptions(program.command('devnet'))
    .description('run a local multi-node test network on loopback until Ctrl-C')
    .option('--validators <n>', 'validator nodes', '4')
    .option('--nodes <m>', 'plain nodes', '1')
    .option('--dir <dir>', 'where node data, logs and devnet.json go', '.devnet')
    .action(async (opts: DevnetCliOptions) => {
      const validators = count('validators', opts.validators, 1)
      const nodes = count('nodes', opts.nodes, 0)
      const say = (line: string): void => { if (opts.json !== true) process.stderr.write(`${line}\n`) }
      const devnet = new Devnet({ dir: opts.dir, validators, nodes, log: say })

      let signalled = false
      const onSignal = (): void => {
        if (signalled) process.exit(130)
        signalled = true
        say('stopping the devnet…')
        void devnet.stop()
      }
      process.on('SIGINT', onSignal)
      process.on('SIGTERM', onSignal)

      const file = await devnet.start()
      print(opts.json, file, () => table(
        ['role', 'address', 'peer id', 'api', 'log'],
        file.nodes.map(n => [n.role, n.address, n.peerId, n.apiUrl, n.logFile])
      ) + `\n\nwrote ${devnet.file}; Ctrl-C stops every node`)

      const crashed = await Promise.race([devnet.watch(), new Promise<undefined>(resolve => {
        process.once('SIGINT', () => resolve(undefined))
        process.once('SIGTERM', () => resolve(undefined))
      })])
      if (crashed !== undefined && !signalled) {
        await devnet.stop()
        throw new Error(`${crashed} exited unexpectedly: ${devnet.tail(crashed)}`)
      }
      await devnet.stop()
      say('devnet stopped')
    })
}
