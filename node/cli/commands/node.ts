import { Command, Option } from 'commander'
import { runDaemon } from '../../daemon/run.ts'
import { faultsFromEnv } from '../../services/faults.ts'
import { readPassword, usageError, withGlobalOptions, type GlobalOptions } from '../context.ts'

interface StartOptions extends GlobalOptions {
  config?: string
  passwordFile?: string
  p2pPort?: string
  apiPort?: string
  bootstrap?: string[]
  chainRpc?: string
  registry?: string
  logLevel?: string
}

function portFlag (name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  if (!/^\d+$/.test(value) || Number(value) > 65535) throw usageError(`--${name}: expected a port number 0-65535, got "${value}"`)
  return Number(value)
}

export function registerNodeCommand (program: Command): void {
  const node = program.command('node').description('run the node daemon')
  withGlobalOptions(node.command('start'))
    .description('run the daemon until SIGINT/SIGTERM (flags override the config)')
    .option('--config <file>', 'config file, or a preset name from config/ (e.g. devnet)')
    .option('--password-file <file>', 'file holding the keystore password (else DATANET_PASSWORD)')
    .option('--p2p-port <port>', 'p2p TCP port')
    .option('--api-port <port>', 'HTTP API port')
    .option('--bootstrap <multiaddr...>', 'bootstrap peers (multiaddrs with /p2p/<peer id>)')
    .option('--chain-rpc <url>', 'EVM JSON-RPC URL')
    .option('--registry <address>', 'registry contract address')
    .addOption(new Option('--log-level <level>', 'log level').choices(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']))
    .action(async (opts: StartOptions) => {
      const flags: Record<string, unknown> = {
        dataDir: opts.dataDir,
        'p2p.port': portFlag('p2p-port', opts.p2pPort),
        'api.port': portFlag('api-port', opts.apiPort),
        'p2p.bootstrap': opts.bootstrap?.flatMap(b => b.split(',')).filter(b => b !== ''),
        'chain.rpcUrl': opts.chainRpc,
        'chain.registry': opts.registry,
        'log.level': opts.logLevel
      }
      const code = await runDaemon({
        config: { file: opts.config, env: process.env, flags },
        password: readPassword(opts.passwordFile),
        // fault injection for tests and drills: the one place the environment is read for it
        faults: faultsFromEnv(process.env)
      })
      process.exitCode = code
    })
}
