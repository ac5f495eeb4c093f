import { Command, CommanderError } from 'commander'
import { DatanetError, describeError, exitCodeOf } from '../../src/errors.ts'
import { VERSION } from '../version.ts'
import { registerContributeCommand, registerContributionCommand } from './commands/contribute.ts'
import { registerDatanetCommand } from './commands/datanet.ts'
import { registerDevnetCommand } from './commands/devnet.ts'
import { registerInitCommand } from './commands/init.ts'
import { registerNodeCommand } from './commands/node.ts'
import { registerStatusCommand } from './commands/status.ts'
import { registerVersionCommands } from './commands/versions.ts'
import { registerValidatorCommand } from './commands/validator.ts'
import { registerAttributionCommands } from './commands/attribution.ts'
import { registerChainCommand } from './commands/chain.ts'

export function buildProgram (): Command {
  const program = new Command('datanet')
    .description('A peer-to-peer node for community datasets with open attribution')
    .version(VERSION)
    // program options only before a subcommand: `model train --version 1` is the dataset
    // version, not a request for the program's (which printed 0.1.0 and exited 0)
    .enablePositionalOptions()
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({ writeErr: s => process.stderr.write(s) })
  registerInitCommand(program)
  registerNodeCommand(program)
  registerStatusCommand(program)
  registerDatanetCommand(program)
  registerContributeCommand(program)
  registerContributionCommand(program)
  registerVersionCommands(program)
  registerValidatorCommand(program)
  registerAttributionCommands(program)
  registerChainCommand(program)
  registerDevnetCommand(program)
  const override = (cmd: Command): void => { cmd.exitOverride(); cmd.commands.forEach(override) }
  program.commands.forEach(override)
  return program
}

export async function main (argv: string[]): Promise<number> {
  const program = buildProgram()
  try {
    await program.parseAsync(argv, { from: 'user' })
    return typeof process.exitCode === 'number' ? process.exitCode : 0
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return 0
      // commander already printed the message
      return 2
    }
    process.stderr.write(`datanet: ${describeError(err)}\n`)
    if (!(err instanceof DatanetError) && process.env.DATANET_DEBUG === '1') process.stderr.write(`${(err as Error).stack ?? ''}\n`)
    return exitCodeOf(err)
  }
}
