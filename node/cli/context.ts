import type { Command } from 'commander'
import type { Wallet } from 'ethers'
import { decryptKeystore } from '../../src/storage/keystore.ts'
import { existsSync, readFileSync } from 'node:fs'
import { DatanetError } from '../../src/errors.ts'
import { dataDirPaths, readApiToken } from '../../src/storage/data-dir.ts'
import { expandHome, loadConfig } from '../config/load.ts'

/** Options every command takes (DESIGN §6). */
export interface GlobalOptions {
  json?: boolean
  api?: string
  tokenFile?: string
  dataDir?: string
}

export const CliErrorCode = {
  USAGE: 'CLI_ERROR_USAGE',
  API_UNREACHABLE: 'CLI_ERROR_API_UNREACHABLE',
  API: 'CLI_ERROR_API'
} as const

export function usageError (message: string): DatanetError {
  return new DatanetError({ code: CliErrorCode.USAGE }, message, 'usage')
}

/** The data directory: --data-dir, else DATANET_DATA_DIR, else the configured default. */
export function resolveDataDir (flag: string | undefined): string {
  if (flag !== undefined) return expandHome(flag)
  if (process.env.DATANET_DATA_DIR !== undefined) return expandHome(process.env.DATANET_DATA_DIR)
  return loadConfig({}).dataDir
}

/** The keystore password: from --password-file, else DATANET_PASSWORD; never from the command line. */
export function readPassword (passwordFile: string | undefined): string | undefined {
  if (passwordFile !== undefined) {
    let text: string
    try {
      text = readFileSync(passwordFile, 'utf8')
    } catch (err) {
      throw usageError(`cannot read the password file ${passwordFile}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`)
    }
    const password = text.replace(/\r?\n$/, '')
    if (password === '') throw usageError(`the password file ${passwordFile} is empty`)
    return password
  }
  const env = process.env.DATANET_PASSWORD
  return env === undefined || env === '' ? undefined : env
}

/** Which node to talk to: --api, else DATANET_API, else the URL the local daemon wrote, else the configured port. */
export function resolveApiUrl (opts: GlobalOptions): string {
  const explicit = opts.api ?? process.env.DATANET_API
  if (explicit !== undefined) {
    try {
      return new URL(explicit).toString().replace(/\/$/, '')
    } catch {
      throw usageError(`--api: not a URL: ${explicit}`)
    }
  }
  const dir = resolveDataDir(opts.dataDir)
  const info = dataDirPaths(dir).apiInfo
  if (existsSync(info)) {
    try {
      return (JSON.parse(readFileSync(info, 'utf8')) as { url: string }).url
    } catch {}
  }
  const config = loadConfig({})
  return `http://127.0.0.1:${config.api.port}`
}

export function resolveToken (opts: GlobalOptions): string {
  const file = opts.tokenFile ?? process.env.DATANET_TOKEN_FILE ?? dataDirPaths(resolveDataDir(opts.dataDir)).apiToken
  return readApiToken(file)
}

/** Adds the options every command takes (DESIGN §6). */
export function withGlobalOptions (cmd: Command): Command {
  return cmd
    .option('--json', 'machine-readable output')
    .option('--api <url>', 'the node to talk to (default: the local one)')
    .option('--token-file <file>', "that node's API token, for write calls (default: the local data directory's)")
    .option('--data-dir <dir>', 'the data directory (default: ~/.datanet)')
}


/** An Ethereum key from a v3 JSON keystore file, its password from `passwordFile` or DATANET_PASSWORD. */
export async function readKeyFile (file: string, passwordFile: string | undefined, what = '--key-file'): Promise<Wallet> {
  const password = readPassword(passwordFile)
  if (password === undefined) throw usageError(`${what} needs its password: --key-password-file FILE or DATANET_PASSWORD`)
  let json: string
  try {
    json = readFileSync(file, 'utf8')
  } catch (err) {
    throw usageError(`${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`)
  }
  return await decryptKeystore(json, password)
}
