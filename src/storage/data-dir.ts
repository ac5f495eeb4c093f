import { randomBytes } from 'node:crypto'
import { closeSync, constants, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync, fsyncSync } from 'node:fs'
import { join } from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { Wallet } from 'ethers'
import { DatanetError } from '../errors.ts'
import { decryptKeystore, encryptKeystore } from './keystore.ts'
import { dataDirPaths } from './data-dir-layout.ts'
import type { PrivateKey } from '@libp2p/interface'

/** The on-disk layout version this code reads and writes. Bump on any incompatible change. */
export const DATA_DIR_FORMAT = 1

export const DataDirErrorCode = {
  NOT_INITIALISED: 'DATA_DIR_ERROR_NOT_INITIALISED',
  ALREADY_INITIALISED: 'DATA_DIR_ERROR_ALREADY_INITIALISED',
  NEWER_FORMAT: 'DATA_DIR_ERROR_NEWER_FORMAT',
  LOCKED: 'DATA_DIR_ERROR_LOCKED',
  CORRUPT: 'DATA_DIR_ERROR_CORRUPT',
  NO_PASSWORD: 'DATA_DIR_ERROR_NO_PASSWORD'
} as const

function dataDirError (code: typeof DataDirErrorCode[keyof typeof DataDirErrorCode], message: string, cause?: unknown): DatanetError {
  return new DatanetError({ code }, message, 'usage', { cause })
}

export { dataDirPaths, type DataDirPaths } from './data-dir-layout.ts'

export interface DataDirMeta {
  format: number
  createdAt: string
  peerId: string
  address: string
}

/** Writes a file atomically (temp + fsync + rename) so a crash never leaves half a key. */
export function writeFileAtomic (path: string, data: string | Uint8Array, mode = 0o600): void {
  const tmp = `${path}.${process.pid}.tmp`
  const fd = openSync(tmp, 'w', mode)
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  renameSync(tmp, path)
}

export interface InitOptions {
  password: string
  /** Import this Ethereum private key instead of generating one. */
  ethPrivateKey?: string
}

export interface InitResult {
  dataDir: string
  peerId: string
  address: string
  created: boolean
}

/**
 * Creates a data directory: libp2p Ed25519 key (0600), encrypted Ethereum keystore,
 * API token (0600) and the format marker, written last so a half-made directory is
 * never mistaken for a complete one.
 */
export async function initDataDir (dir: string, options: InitOptions): Promise<InitResult> {
  const paths = dataDirPaths(dir)
  if (existsSync(paths.meta)) {
    throw dataDirError(DataDirErrorCode.ALREADY_INITIALISED, `data directory ${dir} is already initialised`)
  }
  if (options.password === '') throw dataDirError(DataDirErrorCode.NO_PASSWORD, 'the keystore password must not be empty')
  mkdirSync(join(dir, 'keys'), { recursive: true, mode: 0o700 })

  const libp2pKey = await generateKeyPair('Ed25519')
  writeFileAtomic(paths.libp2pKey, privateKeyToProtobuf(libp2pKey))
  const wallet = options.ethPrivateKey !== undefined ? new Wallet(options.ethPrivateKey) : Wallet.createRandom()
  writeFileAtomic(paths.keystore, await encryptKeystore(wallet.privateKey, options.password))
  writeFileAtomic(paths.apiToken, randomBytes(32).toString('hex') + '\n')

  const meta: DataDirMeta = {
    format: DATA_DIR_FORMAT,
    createdAt: new Date().toISOString(),
    peerId: peerIdFromPrivateKey(libp2pKey).toString(),
    address: wallet.address
  }
  writeFileAtomic(paths.meta, JSON.stringify(meta, null, 2) + '\n', 0o644)
  return { dataDir: dir, peerId: meta.peerId, address: meta.address, created: true }
}

/** Reads and checks the format marker: refuses a missing directory or one from a newer format. */
export function readDataDirMeta (dir: string): DataDirMeta {
  const paths = dataDirPaths(dir)
  if (!existsSync(paths.meta)) {
    throw dataDirError(DataDirErrorCode.NOT_INITIALISED, `data directory ${dir} is not initialised: run \`datanet init --data-dir ${dir}\` first`)
  }
  let meta: DataDirMeta
  try {
    meta = JSON.parse(readFileSync(paths.meta, 'utf8')) as DataDirMeta
  } catch (err) {
    throw dataDirError(DataDirErrorCode.CORRUPT, `data directory ${dir}: ${paths.meta} is not valid JSON`, err)
  }
  if (!Number.isInteger(meta.format) || meta.format < 1) {
    throw dataDirError(DataDirErrorCode.CORRUPT, `data directory ${dir}: ${paths.meta} has no valid format number`)
  }
  if (meta.format > DATA_DIR_FORMAT) {
    throw dataDirError(DataDirErrorCode.NEWER_FORMAT, `data directory ${dir} has format ${meta.format}, newer than this datanet supports (${DATA_DIR_FORMAT}): upgrade datanet`)
  }
  return meta
}

function pidAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** An exclusive lock on a data directory, held by the running daemon. */
export class DataDirLock {
  readonly path: string
  private held = false

  constructor (dir: string) {
    this.path = dataDirPaths(dir).lock
  }

  /**
   * Takes the lock. A lock file left by a process that no longer runs (kill -9, power
   * loss) is stale and taken over; one held by a live process is refused.
   */
  acquire (): void {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const fd = openSync(this.path, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, 0o644)
        writeSync(fd, `${process.pid}\n`)
        fsyncSync(fd)
        closeSync(fd)
        this.held = true
        return
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      }
      const holder = Number.parseInt(readFileSafe(this.path) ?? '', 10)
      if (Number.isInteger(holder) && (holder === process.pid || pidAlive(holder))) {
        throw dataDirError(DataDirErrorCode.LOCKED, `data directory ${this.path.slice(0, -'/node.lock'.length)} is in use by another datanet process (pid ${holder})`)
      }
      // Stale: its holder is gone. An empty file is a crash between create and write.
      const age = Date.now() - (statSafe(this.path) ?? 0)
      if (!Number.isInteger(holder) && age < 2000) continue
      rmSync(this.path, { force: true })
    }
    throw dataDirError(DataDirErrorCode.LOCKED, `cannot take the lock ${this.path}`)
  }

  release (): void {
    if (!this.held) return
    this.held = false
    if (Number.parseInt(readFileSafe(this.path) ?? '', 10) === process.pid) rmSync(this.path, { force: true })
  }
}

function readFileSafe (path: string): string | undefined {
  try { return readFileSync(path, 'utf8') } catch { return undefined }
}
function statSafe (path: string): number | undefined {
  try { return statSync(path).mtimeMs } catch { return undefined }
}

export async function loadLibp2pKey (dir: string): Promise<PrivateKey> {
  const path = dataDirPaths(dir).libp2pKey
  try {
    return privateKeyFromProtobuf(readFileSync(path))
  } catch (err) {
    throw dataDirError(DataDirErrorCode.CORRUPT, `cannot read the libp2p key ${path}`, err)
  }
}

export async function loadWallet (dir: string, password: string | undefined): Promise<Wallet> {
  const path = dataDirPaths(dir).keystore
  if (password === undefined || password === '') {
    throw dataDirError(DataDirErrorCode.NO_PASSWORD, 'no keystore password: pass --password-file FILE or set DATANET_PASSWORD')
  }
  let json: string
  try {
    json = readFileSync(path, 'utf8')
  } catch (err) {
    throw dataDirError(DataDirErrorCode.CORRUPT, `cannot read the keystore ${path}`, err)
  }
  return await decryptKeystore(json, password)
}

export function readApiToken (path: string): string {
  const token = readFileSafe(path)?.trim()
  if (token === undefined || token === '') {
    throw new DatanetError({ code: 'API_ERROR_NO_TOKEN' }, `cannot read an API token from ${path}`, 'usage')
  }
  return token
}
