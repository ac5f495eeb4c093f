import { readFileSync } from 'node:fs'
import { isAbsolute, resolve } from 'node:path'
import { dataDirPaths } from '../../src/storage/data-dir-layout.ts'
import { prefetchScryptKey, type ScryptParams } from '../../src/storage/keystore-kdf.ts'

/**
 * `datanet node start` waits for its keystore's scrypt (~0.8 s of one core) before it is
 * ready; begun when the daemon gets to it, after the CLI and the node's modules have loaded,
 * it was most of a cold start's wall time. main.js calls this first: when the command line
 * names the data directory (--data-dir) and the password (--password-file or
 * DATANET_PASSWORD), the derivation starts at once on the thread pool. The daemon's
 * decryption takes it only for the same keystore and password (keystore-kdf.ts), so a guess
 * that turns out wrong costs a core for a while, never a wrong key. A data directory from a
 * config file or a default is not guessed.
 */
export function prefetchKeystore (args: readonly string[], env: NodeJS.ProcessEnv = process.env): boolean {
  try {
    const dataDir = flag(args, '--data-dir')
    if (dataDir === undefined || dataDir.startsWith('~')) return false
    const passwordFile = flag(args, '--password-file')
    // as readPassword (node/cli/context.ts) reads it: one trailing newline dropped
    const password = passwordFile !== undefined ? readFileSync(passwordFile, 'utf8').replace(/\r?\n$/, '') : env.DATANET_PASSWORD
    if (password === undefined || password === '') return false
    const ks = JSON.parse(readFileSync(dataDirPaths(isAbsolute(dataDir) ? dataDir : resolve(dataDir)).keystore, 'utf8')) as { crypto?: { kdf?: unknown, kdfparams?: ScryptParams }, Crypto?: { kdf?: unknown, kdfparams?: ScryptParams } }
    const c = ks.crypto ?? ks.Crypto
    if (c?.kdf !== 'scrypt' || c.kdfparams === undefined) return false
    return prefetchScryptKey(c.kdfparams, password)
  } catch {
    // the daemon reads these again and reports what is wrong with them
    return false
  }
}

/** The value of `--name value` or `--name=value`, the last one given (as commander takes it). */
function flag (args: readonly string[], name: string): string | undefined {
  let value: string | undefined
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string
    if (a === '--') break
    if (a === name && i + 1 < args.length) value = args[++i]
    else if (a.startsWith(`${name}=`)) value = a.slice(name.length + 1)
  }
  return value
}
