import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { Wallet } from 'ethers'
import {
  DATA_DIR_FORMAT, DataDirErrorCode, DataDirLock, dataDirPaths, initDataDir, loadLibp2pKey, loadWallet,
  readApiToken, readDataDirMeta, writeFileAtomic, type InitResult
} from '../../src/storage/data-dir.ts'
import { DatanetError } from '../../src/errors.ts'
import { tempDir } from '../helpers/tmp.ts'
import { withDeadline } from '../helpers/wait.ts'
import { datanetRejection } from '../helpers/rejection.ts'

const PASSWORD = 'data-dir-test-password'
const ETH_KEY = '0x' + '59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d'

const root = tempDir('datanet-datadir-')
/** One initialised data directory shared by the tests (initDataDir costs a scrypt run). */
const shared = join(root.dir, 'shared')
let init: InitResult | undefined
let fresh = 0
const newDir = (): string => join(root.dir, `d${fresh++}`)

test.before(async () => {
  init = await initDataDir(shared, { password: PASSWORD, ethPrivateKey: ETH_KEY })
})

test.after(() => { root.remove() })

function initResult (): InitResult {
  if (init === undefined) throw new Error('not initialised')
  return init
}

function syncError (fn: () => unknown): DatanetError {
  try {
    fn()
  } catch (err) {
    assert.instance(err, DatanetError)
    return err as DatanetError
  }
  assert.unreachable('expected an error')
  throw new Error('unreachable')
}

const mode = (path: string): number => statSync(path).mode & 0o777

/** Runs a short-lived process to its end and returns its (now dead) pid. */
async function deadPid (): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' })
  const pid = child.pid
  if (pid === undefined) throw new Error('no pid')
  await withDeadline(new Promise(resolve => child.once('exit', resolve)), 5000, 'a short process to exit')
  return pid
}

test('initDataDir creates keys, keystore and token with mode 0600, and datanet.json with format 1', () => {
  const paths = dataDirPaths(shared)
  const result = initResult()
  for (const file of [paths.libp2pKey, paths.keystore, paths.apiToken]) {
    assert.ok(existsSync(file), file)
    assert.is(mode(file), 0o600, `${file} mode ${mode(file).toString(8)}`)
  }
  assert.is(paths.libp2pKey, join(shared, 'keys', 'libp2p.key'))
  assert.is(paths.keystore, join(shared, 'keys', 'keystore.json'))
  assert.is(paths.apiToken, join(shared, 'api-token'))
  assert.is(mode(join(shared, 'keys')) & 0o077, 0, 'the keys directory is private')

  const meta = JSON.parse(readFileSync(paths.meta, 'utf8')) as Record<string, unknown>
  assert.is(meta.format, 1)
  assert.is(DATA_DIR_FORMAT, 1)
  assert.is(meta.peerId, result.peerId)
  assert.is(meta.address, result.address)
  assert.ok(!Number.isNaN(Date.parse(String(meta.createdAt))))
  assert.is(result.dataDir, shared)
  assert.is(result.created, true)
  // no temp files left behind by the atomic writes
  const leftovers = [...readdirSync(shared), ...readdirSync(join(shared, 'keys'))].filter(f => f.endsWith('.tmp'))
  assert.equal(leftovers, [])
})

test('initDataDir uses an imported Ethereum key, and a valid libp2p peer id', () => {
  const result = initResult()
  assert.is(result.address, new Wallet(ETH_KEY).address)
  assert.is(peerIdFromString(result.peerId).type, 'Ed25519')
})

test('the API token is 32 random bytes in hex; readApiToken trims it', () => {
  const text = readFileSync(dataDirPaths(shared).apiToken, 'utf8')
  assert.match(text, /^[0-9a-f]{64}\n$/)
  assert.is(readApiToken(dataDirPaths(shared).apiToken), text.trim())
})

test('readApiToken of a missing or empty file is API_ERROR_NO_TOKEN', () => {
  const dir = newDir()
  mkdirSync(dir)
  assert.is(syncError(() => readApiToken(join(dir, 'none'))).code, 'API_ERROR_NO_TOKEN')
  writeFileSync(join(dir, 'empty'), '  \n')
  assert.is(syncError(() => readApiToken(join(dir, 'empty'))).code, 'API_ERROR_NO_TOKEN')
})

test('initDataDir twice is DATA_DIR_ERROR_ALREADY_INITIALISED and changes nothing', async () => {
  const before = readFileSync(dataDirPaths(shared).meta, 'utf8')
  const keyBefore = readFileSync(dataDirPaths(shared).libp2pKey)
  const e = await datanetRejection(initDataDir(shared, { password: PASSWORD }))
  assert.is(e.code, DataDirErrorCode.ALREADY_INITIALISED)
  assert.is(e.code, 'DATA_DIR_ERROR_ALREADY_INITIALISED')
  assert.is(e.kind, 'usage')
  assert.is(readFileSync(dataDirPaths(shared).meta, 'utf8'), before)
  assert.equal(readFileSync(dataDirPaths(shared).libp2pKey), keyBefore)
})

test('initDataDir with an empty password is DATA_DIR_ERROR_NO_PASSWORD and writes nothing', async () => {
  const dir = newDir()
  const e = await datanetRejection(initDataDir(dir, { password: '' }))
  assert.is(e.code, DataDirErrorCode.NO_PASSWORD)
  assert.not.ok(existsSync(dir))
})

test('readDataDirMeta of the initialised directory', () => {
  const meta = readDataDirMeta(shared)
  assert.is(meta.format, 1)
  assert.is(meta.peerId, initResult().peerId)
  assert.is(meta.address, initResult().address)
})

test('readDataDirMeta of an empty or missing directory is DATA_DIR_ERROR_NOT_INITIALISED', () => {
  const dir = newDir()
  mkdirSync(dir)
  const e = syncError(() => readDataDirMeta(dir))
  assert.is(e.code, DataDirErrorCode.NOT_INITIALISED)
  assert.is(e.code, 'DATA_DIR_ERROR_NOT_INITIALISED')
  assert.is(e.kind, 'usage')
  assert.is(syncError(() => readDataDirMeta(join(dir, 'nope'))).code, DataDirErrorCode.NOT_INITIALISED)
})

test('a datanet.json from a newer format is DATA_DIR_ERROR_NEWER_FORMAT', () => {
  const dir = newDir()
  mkdirSync(dir)
  writeFileSync(join(dir, 'datanet.json'), JSON.stringify({ format: 99, createdAt: '', peerId: '', address: '' }))
  const e = syncError(() => readDataDirMeta(dir))
  assert.is(e.code, DataDirErrorCode.NEWER_FORMAT)
  assert.is(e.code, 'DATA_DIR_ERROR_NEWER_FORMAT')
  assert.is(e.kind, 'usage')
})

test('a datanet.json that is not JSON or has no valid format is DATA_DIR_ERROR_CORRUPT', () => {
  for (const text of ['{not json', '{}', '{"format": 0}', '{"format": "1"}', '{"format": 1.5}']) {
    const dir = newDir()
    mkdirSync(dir)
    writeFileSync(join(dir, 'datanet.json'), text)
    assert.is(syncError(() => readDataDirMeta(dir)).code, DataDirErrorCode.CORRUPT, text)
  }
})

test('writeFileAtomic writes the content with the mode and leaves no temp file', () => {
  const dir = newDir()
  mkdirSync(dir)
  const file = join(dir, 'f')
  writeFileAtomic(file, 'one')
  assert.is(readFileSync(file, 'utf8'), 'one')
  assert.is(mode(file), 0o600)
  writeFileAtomic(file, new Uint8Array([1, 2, 3]), 0o644)
  assert.equal([...readFileSync(file)], [1, 2, 3])
  assert.equal(readdirSync(dir), ['f'])
})

test('DataDirLock: acquire writes our pid; release removes the file', () => {
  const dir = newDir()
  mkdirSync(dir)
  const lock = new DataDirLock(dir)
  assert.is(lock.path, join(dir, 'node.lock'))
  lock.acquire()
  try {
    assert.is(readFileSync(lock.path, 'utf8').trim(), String(process.pid))
  } finally {
    lock.release()
  }
  assert.not.ok(existsSync(lock.path))
  lock.release() // a second release is harmless
  // and it can be taken again
  lock.acquire()
  assert.ok(existsSync(lock.path))
  lock.release()
  assert.not.ok(existsSync(lock.path))
})

test('DataDirLock: a lock held by another live process is DATA_DIR_ERROR_LOCKED', async () => {
  const dir = newDir()
  mkdirSync(dir)
  const holder = spawn('sleep', ['30'], { stdio: 'ignore' })
  try {
    const pid = holder.pid
    if (pid === undefined) throw new Error('no pid')
    writeFileSync(join(dir, 'node.lock'), `${pid}\n`)
    const lock = new DataDirLock(dir)
    const e = syncError(() => { lock.acquire() })
    assert.is(e.code, DataDirErrorCode.LOCKED)
    assert.is(e.code, 'DATA_DIR_ERROR_LOCKED')
    assert.is(e.kind, 'usage')
    assert.ok(e.message.includes(String(pid)), e.message)
    assert.is(readFileSync(join(dir, 'node.lock'), 'utf8').trim(), String(pid), 'the holder\'s lock is untouched')
    lock.release() // not held: must not remove the other process's lock
    assert.ok(existsSync(join(dir, 'node.lock')))
  } finally {
    holder.kill('SIGKILL')
  }
})

test('DataDirLock: the parent process counts as a live holder', () => {
  const dir = newDir()
  mkdirSync(dir)
  writeFileSync(join(dir, 'node.lock'), `${process.ppid}\n`)
  assert.is(syncError(() => { new DataDirLock(dir).acquire() }).code, DataDirErrorCode.LOCKED)
})

test('DataDirLock: a lock left by a dead process is taken over', async () => {
  const dir = newDir()
  mkdirSync(dir)
  const pid = await deadPid()
  writeFileSync(join(dir, 'node.lock'), `${pid}\n`)
  const lock = new DataDirLock(dir)
  lock.acquire()
  assert.is(readFileSync(lock.path, 'utf8').trim(), String(process.pid))
  lock.release()
  assert.not.ok(existsSync(lock.path))
})

test('DataDirLock: a fresh empty lock file (a holder mid-write) is refused; an old one is taken over', () => {
  const dir = newDir()
  mkdirSync(dir)
  const path = join(dir, 'node.lock')
  writeFileSync(path, '')
  assert.is(syncError(() => { new DataDirLock(dir).acquire() }).code, DataDirErrorCode.LOCKED)

  const old = new Date(Date.now() - 60_000)
  utimesSync(path, old, old)
  const lock = new DataDirLock(dir)
  lock.acquire()
  assert.is(readFileSync(path, 'utf8').trim(), String(process.pid))
  lock.release()
})

test('loadLibp2pKey gives the peer id recorded in datanet.json', async () => {
  const key = await loadLibp2pKey(shared)
  assert.is(key.type, 'Ed25519')
  assert.is(peerIdFromPrivateKey(key).toString(), readDataDirMeta(shared).peerId)
})

test('loadLibp2pKey of a directory without a key is DATA_DIR_ERROR_CORRUPT', async () => {
  const dir = newDir()
  mkdirSync(dir)
  assert.is((await datanetRejection(loadLibp2pKey(dir))).code, DataDirErrorCode.CORRUPT)
})

test('loadWallet without a password is DATA_DIR_ERROR_NO_PASSWORD', async () => {
  const e = await datanetRejection(loadWallet(shared, undefined))
  assert.is(e.code, DataDirErrorCode.NO_PASSWORD)
  assert.is(e.code, 'DATA_DIR_ERROR_NO_PASSWORD')
  assert.is(e.kind, 'usage')
  assert.is((await datanetRejection(loadWallet(shared, ''))).code, DataDirErrorCode.NO_PASSWORD)
})

test('loadWallet of a directory without a keystore is DATA_DIR_ERROR_CORRUPT', async () => {
  const dir = newDir()
  mkdirSync(dir)
  assert.is((await datanetRejection(loadWallet(dir, PASSWORD))).code, DataDirErrorCode.CORRUPT)
})

test('loadWallet with the right password gives the address in datanet.json', async () => {
  const wallet = await loadWallet(shared, PASSWORD)
  assert.is(wallet.address, readDataDirMeta(shared).address)
  assert.is(wallet.privateKey, ETH_KEY)
})

test('loadWallet with a wrong password is KEYSTORE_ERROR_WRONG_PASSWORD', async () => {
  const e = await datanetRejection(loadWallet(shared, 'not-it'))
  assert.is(e.code, 'KEYSTORE_ERROR_WRONG_PASSWORD')
  assert.is(e.kind, 'usage')
})

test.run()
