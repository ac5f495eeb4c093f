/**
 * The keystore key main.js derives ahead of `node start` (node/cli/keystore-prefetch.ts,
 * src/storage/keystore-kdf.ts): taken only for the same keystore and password, once; a
 * wrong guess never yields a wrong key or a wrong verdict, and parameters a reader would
 * refuse start nothing.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { Wallet, encryptKeystoreJson } from 'ethers'
import { dataDirPaths } from '../../src/storage/data-dir-layout.ts'
import { loadWallet } from '../../src/storage/data-dir.ts'
import { KeystoreErrorCode } from '../../src/storage/keystore.ts'
import { kdfStats } from '../../src/storage/keystore-kdf.ts'
import { prefetchKeystore } from '../../node/cli/keystore-prefetch.ts'
import { datanetRejection } from '../helpers/rejection.ts'

const PRIVATE_KEY = '0x' + '4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318'
const ADDRESS = new Wallet(PRIVATE_KEY).address
const PASSWORD = 'correct horse battery staple'

/** A data directory holding only a keystore (cheap scrypt) and a password file ending in a newline. */
async function dataDir (opts: { n?: number } = {}): Promise<{ dir: string, passwordFile: string, done: () => void }> {
  const dir = mkdtempSync(join(tmpdir(), 'datanet-prefetch-'))
  mkdirSync(join(dir, 'keys'))
  const json = await encryptKeystoreJson({ address: ADDRESS, privateKey: PRIVATE_KEY }, PASSWORD, { scrypt: { N: 1024 } })
  const ks = JSON.parse(json) as { Crypto: { kdfparams: { n: number } } }
  if (opts.n !== undefined) ks.Crypto.kdfparams.n = opts.n
  writeFileSync(dataDirPaths(dir).keystore, JSON.stringify(ks))
  const passwordFile = join(dir, 'password')
  writeFileSync(passwordFile, `${PASSWORD}\n`)
  return { dir, passwordFile, done: () => { rmSync(dir, { recursive: true, force: true }) } }
}

function counts (): { derived: number, taken: number } {
  return { derived: kdfStats.derived, taken: kdfStats.prefetchTaken }
}

test('the key derived ahead is the one the daemon takes: one scrypt for the start', async () => {
  const d = await dataDir()
  try {
    const before = counts()
    assert.ok(prefetchKeystore(['--data-dir', d.dir, '--password-file', d.passwordFile, '--api-port', '0']))
    const wallet = await loadWallet(d.dir, PASSWORD)
    assert.is(wallet.address, ADDRESS)
    assert.equal(counts(), { derived: before.derived + 1, taken: before.taken + 1 })
    // taken once: a second decryption derives its own
    assert.is((await loadWallet(d.dir, PASSWORD)).address, ADDRESS)
    assert.equal(counts(), { derived: before.derived + 2, taken: before.taken + 1 })
  } finally { d.done() }
})

test('the --flag=value form, a relative path and DATANET_PASSWORD are read as commander and the daemon read them', async () => {
  const d = await dataDir()
  try {
    const before = counts()
    assert.ok(prefetchKeystore([`--data-dir=${relative(process.cwd(), d.dir)}`], { DATANET_PASSWORD: PASSWORD }))
    assert.is((await loadWallet(d.dir, PASSWORD)).address, ADDRESS)
    assert.is(counts().taken, before.taken + 1)
  } finally { d.done() }
})

test('a prefetch with another password is not taken: the right password still decrypts, a wrong one is still refused', async () => {
  const d = await dataDir()
  try {
    const before = counts()
    assert.ok(prefetchKeystore(['--data-dir', d.dir], { DATANET_PASSWORD: 'not it' }))
    assert.is((await loadWallet(d.dir, PASSWORD)).address, ADDRESS)
    assert.is(counts().taken, before.taken)
    // the reverse: the right password guessed ahead, the daemon given a wrong one
    assert.ok(prefetchKeystore(['--data-dir', d.dir, '--password-file', d.passwordFile]))
    const err = await datanetRejection(loadWallet(d.dir, 'not it'))
    assert.is(err.type.code, KeystoreErrorCode.WRONG_PASSWORD)
    assert.is(counts().taken, before.taken)
  } finally { d.done() }
})

test('a prefetch of another keystore is not taken', async () => {
  const a = await dataDir()
  const b = await dataDir()
  try {
    const before = counts()
    assert.ok(prefetchKeystore(['--data-dir', a.dir, '--password-file', a.passwordFile]))
    assert.is((await loadWallet(b.dir, PASSWORD)).address, ADDRESS)
    assert.is(counts().taken, before.taken)
  } finally { a.done(); b.done() }
})

test('nothing starts without an explicit data dir and password, or for a cost a reader refuses', async () => {
  const d = await dataDir({ n: 1 << 30 })
  try {
    const before = counts()
    assert.not.ok(prefetchKeystore(['--config', 'devnet', '--password-file', d.passwordFile]))
    assert.not.ok(prefetchKeystore(['--data-dir', '~/x', '--password-file', d.passwordFile]))
    assert.not.ok(prefetchKeystore(['--data-dir', d.dir], {}))
    assert.not.ok(prefetchKeystore(['--data-dir', join(d.dir, 'absent'), '--password-file', d.passwordFile]))
    assert.not.ok(prefetchKeystore(['--data-dir', d.dir, '--password-file', d.passwordFile]))
    assert.equal(counts(), before)
    const err = await datanetRejection(loadWallet(d.dir, PASSWORD))
    assert.is(err.type.code, KeystoreErrorCode.MALFORMED)
  } finally { d.done() }
})

test.run()
