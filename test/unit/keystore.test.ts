import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createCipheriv, pbkdf2Sync, randomBytes } from 'node:crypto'
import { Wallet, encryptKeystoreJson, keccak256 } from 'ethers'
import { decryptKeystore, encryptKeystore, KeystoreErrorCode } from '../../src/storage/keystore.ts'
import { datanetRejection } from '../helpers/rejection.ts'

// A fixed key so failures are reproducible.
const PRIVATE_KEY = '0x' + '4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318'
const ADDRESS = new Wallet(PRIVATE_KEY).address
const PASSWORD = 'correct horse battery staple'

/** One keystore written by our encryptKeystore (scrypt N = 2^17, ~0.5 s): shared by the tests below. */
let ours: string | undefined
async function oursKeystore (): Promise<string> {
  ours ??= await encryptKeystore(PRIVATE_KEY, PASSWORD)
  return ours
}

/** A keystore written by ethers with a cheap scrypt cost. */
async function ethersKeystore (password = PASSWORD, privateKey = PRIVATE_KEY): Promise<string> {
  const w = new Wallet(privateKey)
  return await encryptKeystoreJson({ address: w.address, privateKey: w.privateKey }, password, { scrypt: { N: 1024 } })
}

type Section = { ciphertext: string, kdfparams: Record<string, unknown> }
/** The crypto section of a parsed keystore (ethers writes "Crypto", geth "crypto"). */
function section (ks: { Crypto?: Section, crypto?: Section }): Section {
  const c = ks.Crypto ?? ks.crypto
  if (c === undefined) throw new Error('no crypto section')
  return c
}

test('encryptKeystore writes a v3 scrypt keystore at ethers\' default strength', async () => {
  const ks = JSON.parse(await oursKeystore()) as { version: number, address: string, Crypto?: { kdf: string, cipher: string, kdfparams: { n: number } }, crypto?: { kdf: string, cipher: string, kdfparams: { n: number } } }
  const c = ks.crypto ?? ks.Crypto
  assert.ok(c !== undefined)
  assert.is(ks.version, 3)
  assert.is(c.kdf, 'scrypt')
  assert.is(c.cipher, 'aes-128-ctr')
  assert.is(c.kdfparams.n, 1 << 17)
  assert.is(ks.address.toLowerCase().replace(/^0x/, ''), ADDRESS.toLowerCase().slice(2))
  assert.not.ok(JSON.stringify(ks).includes(PRIVATE_KEY.slice(2)), 'the private key is not in the clear')
})

test('round trip: decryptKeystore opens what encryptKeystore wrote', async () => {
  const wallet = await decryptKeystore(await oursKeystore(), PASSWORD)
  assert.is(wallet.address, ADDRESS)
  assert.is(wallet.privateKey, PRIVATE_KEY)
})

test('a wrong password is KEYSTORE_ERROR_WRONG_PASSWORD (usage)', async () => {
  const e = await datanetRejection(decryptKeystore(await oursKeystore(), 'not the password'))
  assert.is(e.code, KeystoreErrorCode.WRONG_PASSWORD)
  assert.is(e.code, 'KEYSTORE_ERROR_WRONG_PASSWORD')
  assert.is(e.kind, 'usage')
})

test('ethers decrypts a keystore written by encryptKeystore', async () => {
  // ethers' scrypt is pure JS: slow at N = 2^17, so this is the only such test.
  const wallet = await Wallet.fromEncryptedJson(await oursKeystore(), PASSWORD)
  assert.is(wallet.address, ADDRESS)
  assert.is(wallet.privateKey, PRIVATE_KEY)
})

test('decryptKeystore opens a keystore written by ethers', async () => {
  const json = await ethersKeystore()
  const wallet = await decryptKeystore(json, PASSWORD)
  assert.is(wallet.address, ADDRESS)
  assert.is(wallet.privateKey, PRIVATE_KEY)

  const e = await datanetRejection(decryptKeystore(json, 'wrong'))
  assert.is(e.code, KeystoreErrorCode.WRONG_PASSWORD)
})

test('decryptKeystore and ethers agree for a random key', async () => {
  const random = Wallet.createRandom()
  const json = await encryptKeystoreJson({ address: random.address, privateKey: random.privateKey }, 'pw', { scrypt: { N: 1024 } })
  const mine = await decryptKeystore(json, 'pw')
  const theirs = await Wallet.fromEncryptedJson(json, 'pw')
  assert.is(mine.privateKey, random.privateKey)
  assert.is(mine.privateKey, theirs.privateKey)
})

test('passwords are NFKC-normalised as ethers does', async () => {
  const composed = 'caf\u00e9-\u2460' // é and circled digit one
  const decomposed = 'cafe\u0301-1' // e + combining acute; NFKC(①) = 1
  const json = await ethersKeystore(composed)
  const wallet = await decryptKeystore(json, decomposed)
  assert.is(wallet.address, ADDRESS)
})

test('the crypto section may be named "crypto" or "Crypto"; the address may lack 0x', async () => {
  const ks = JSON.parse(await ethersKeystore()) as Record<string, unknown>
  const cryptoSection = ks.Crypto ?? ks.crypto
  delete ks.Crypto
  delete ks.crypto
  const lower = { ...ks, crypto: cryptoSection, address: String(ks.address).replace(/^0x/, '') }
  const upper = { ...ks, Crypto: cryptoSection, address: '0x' + String(ks.address).replace(/^0x/, '') }
  assert.is((await decryptKeystore(JSON.stringify(lower), PASSWORD)).address, ADDRESS)
  assert.is((await decryptKeystore(JSON.stringify(upper), PASSWORD)).address, ADDRESS)
  const noAddress = { ...ks, crypto: cryptoSection }
  delete (noAddress as Record<string, unknown>).address
  assert.is((await decryptKeystore(JSON.stringify(noAddress), PASSWORD)).address, ADDRESS)
})

test('a keystore whose stated address is not its key is KEYSTORE_ERROR_MALFORMED', async () => {
  const ks = JSON.parse(await ethersKeystore()) as Record<string, unknown>
  ks.address = Wallet.createRandom().address
  const e = await datanetRejection(decryptKeystore(JSON.stringify(ks), PASSWORD))
  assert.is(e.code, KeystoreErrorCode.MALFORMED)
})

test('a tampered ciphertext fails the MAC: KEYSTORE_ERROR_WRONG_PASSWORD', async () => {
  const ks = JSON.parse(await ethersKeystore()) as { Crypto?: Section, crypto?: Section }
  const ct = section(ks).ciphertext
  section(ks).ciphertext = (ct[0] === '0' ? '1' : '0') + ct.slice(1)
  const e = await datanetRejection(decryptKeystore(JSON.stringify(ks), PASSWORD))
  assert.is(e.code, KeystoreErrorCode.WRONG_PASSWORD)
})

test('malformed input is KEYSTORE_ERROR_MALFORMED (usage)', async () => {
  for (const json of ['not json at all', '', 'null', '42', '{}', '{"crypto": null}', '{"crypto": "x"}', '[]']) {
    const e = await datanetRejection(decryptKeystore(json, PASSWORD))
    assert.is(e.code, KeystoreErrorCode.MALFORMED, json)
    assert.is(e.kind, 'usage')
  }
})

test('bad scrypt parameters are KEYSTORE_ERROR_MALFORMED', async () => {
  const ks = JSON.parse(await ethersKeystore()) as { Crypto?: Section, crypto?: Section }
  for (const [key, value] of [['dklen', 16], ['n', 'many'], ['r', 1.5], ['p', null], ['n', 3000], ['n', 2 ** 40], ['salt', 'zz'], ['salt', undefined]] as const) {
    const copy = structuredClone(ks)
    section(copy).kdfparams[key] = value
    const e = await datanetRejection(decryptKeystore(JSON.stringify(copy), PASSWORD))
    assert.is(e.code, KeystoreErrorCode.MALFORMED, `${key}=${String(value)}`)
  }
})

test('missing kdfparams, mac, iv or ciphertext are KEYSTORE_ERROR_MALFORMED, never a raw TypeError', async () => {
  const ks = JSON.parse(await ethersKeystore()) as { Crypto?: Record<string, unknown>, crypto?: Record<string, unknown> }
  for (const key of ['kdfparams', 'mac', 'cipherparams', 'ciphertext']) {
    const copy = structuredClone(ks)
    delete (copy.Crypto ?? copy.crypto as Record<string, unknown>)[key]
    const e = await datanetRejection(decryptKeystore(JSON.stringify(copy), PASSWORD))
    assert.is(e.code, KeystoreErrorCode.MALFORMED, key)
  }
})

/** A v3 keystore with the pbkdf2 KDF, built by hand as geth writes them. */
function pbkdf2Keystore (privateKey: string, password: string): string {
  const salt = randomBytes(32)
  const iv = randomBytes(16)
  const c = 1024
  const derived = pbkdf2Sync(Buffer.from(password, 'utf8'), salt, c, 32, 'sha256')
  const cipher = createCipheriv('aes-128-ctr', derived.subarray(0, 16), iv)
  const ciphertext = Buffer.concat([cipher.update(Buffer.from(privateKey.slice(2), 'hex')), cipher.final()])
  const mac = keccak256(Buffer.concat([derived.subarray(16, 32), ciphertext])).slice(2)
  return JSON.stringify({
    version: 3,
    id: '3198bc9c-6672-5ab3-d995-4942343ae5b6',
    address: new Wallet(privateKey).address.slice(2).toLowerCase(),
    crypto: {
      cipher: 'aes-128-ctr',
      cipherparams: { iv: iv.toString('hex') },
      ciphertext: ciphertext.toString('hex'),
      kdf: 'pbkdf2',
      kdfparams: { c, dklen: 32, prf: 'hmac-sha256', salt: salt.toString('hex') },
      mac
    }
  })
}

test('a keystore with another KDF (pbkdf2) decrypts through ethers; a wrong password is WRONG_PASSWORD', async () => {
  const json = pbkdf2Keystore(PRIVATE_KEY, PASSWORD)
  const wallet = await decryptKeystore(json, PASSWORD)
  assert.is(wallet.address, ADDRESS)
  assert.is(wallet.privateKey, PRIVATE_KEY)
  const e = await datanetRejection(decryptKeystore(json, 'wrong'))
  assert.is(e.code, KeystoreErrorCode.WRONG_PASSWORD)
})

test.run()
