import { Command } from 'commander'
import { initDataDir } from '../../../src/storage/data-dir.ts'
import { readPassword, resolveDataDir, usageError, withGlobalOptions, type GlobalOptions } from '../context.ts'
import { print } from '../output.ts'
import { readFileSync } from 'node:fs'

interface InitOptions extends GlobalOptions {
  passwordFile?: string
  importKeyFile?: string
}

export function registerInitCommand (program: Command): void {
  withGlobalOptions(program.command('init'))
    .description('create a data directory: libp2p key, encrypted Ethereum keystore, API token')
    .option('--password-file <file>', 'file holding the keystore password (else DATANET_PASSWORD)')
    .option('--import-key-file <file>', 'file holding a 0x-prefixed Ethereum private key to use instead of a new one')
    .action(async (opts: InitOptions) => {
      const dataDir = resolveDataDir(opts.dataDir)
      const password = readPassword(opts.passwordFile)
      if (password === undefined) throw usageError('no keystore password: pass --password-file FILE or set DATANET_PASSWORD')
      let ethPrivateKey: string | undefined
      if (opts.importKeyFile !== undefined) {
        ethPrivateKey = readFileSync(opts.importKeyFile, 'utf8').trim()
        if (!/^0x[0-9a-fA-F]{64}$/.test(ethPrivateKey)) throw usageError(`${opts.importKeyFile}: expected a 0x-prefixed 32-byte hex private key`)
      }
      const result = await initDataDir(dataDir, { password, ethPrivateKey })
      print(opts.json, result, () => [
        `initialised ${result.dataDir}`,
        `peer id  ${result.peerId}`,
        `address  ${result.address}`
      ].join('\n'))
    })
}
