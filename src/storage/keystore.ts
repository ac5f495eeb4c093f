import { createDecipheriv, scrypt as scryptCb, timingSafeEqual, type BinaryLike, type ScryptOptions } from 'node:crypto'
import { Wallet, getAddress, keccak256, encryptKeystoreJson } from 'ethers'
import { DatanetError } from '../errors.ts'

export const KeystoreErrorCode = {
  WRONG_PASSWORD: 'KEYSTORE_ERROR_WRONG_PASSWORD',
  MALFORMED: 'KEYSTORE_ERROR_MALFORMED'
} as const
export type KeystoreErrorCode = typeof KeystoreErrorCode[keyof typeof KeystoreErrorCode]

/** scrypt cost of new keystores; ethers' default (N = 2^17), the usual Web3 Secret Storage strength. */
const SCRYPT_N = 1 << 17

function scrypt (password: BinaryLike, salt: BinaryLike, keylen: number, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scryptCb(password, salt, keylen, options, (err, key) => { err == null ? resolve(key) : reject(err) })
  })
}

/** Encrypts a private key into a Web3 Secret Storage (v3) JSON keystore, as ethers writes them. */
export async function encryptKeystore (privateKey: string, password: string): Promise<string> {
  const wallet = new Wallet(privateKey)
  return await encryptKeystoreJson({ address: wallet.address, privateKey: wallet.privateKey }, password, { scrypt: { N: SCRYPT_N } })
}

interface ScryptKeystore {
  address?: string
  crypto: {
    cipher: string
    ciphertext: string
    cipherparams: { iv: string }
    kdf: string
    kdfparams: { n: number, r: number, p: number, dklen: number, salt: string }
    mac: string
  }
}

/** Largest scrypt cost accepted when reading (geth's "standard" is 2^18). */
const MAX_SCRYPT_N = 1 << 20

function isHex (v: unknown, bytes?: number): v is string {
  return typeof v === 'string' && v.length % 2 === 0 && /^[0-9a-fA-F]*$/.test(v) && (bytes === undefined ? v.length > 0 : v.length === bytes * 2)
}

function malformed (why: string): DatanetError {
  return new DatanetError({ code: KeystoreErrorCode.MALFORMED }, `keystore is malformed: ${why}`, 'usage')
}

function parseKeystore (json: string): ScryptKeystore {
  let ks: unknown
  try {
    ks = JSON.parse(json)
  } catch {
    throw malformed('not JSON')
  }
  const c = (ks as { crypto?: unknown, Crypto?: unknown })?.crypto ?? (ks as { Crypto?: unknown })?.Crypto
  if (typeof c !== 'object' || c === null) throw malformed('no crypto section')
  return { ...(ks as object), crypto: c } as ScryptKeystore
}

/**
 * Decrypts a v3 keystore. scrypt runs in node:crypto (native, off the main thread)
 * rather than ethers' pure-JS scrypt, which takes seconds at N = 2^17 and would
 * dominate the node's start-up. Keystores with another KDF go through ethers.
 */
export async function decryptKeystore (json: string, password: string): Promise<Wallet> {
  const ks = parseKeystore(json)
  const { crypto: c } = ks
  if (c.kdf !== 'scrypt' || c.cipher !== 'aes-128-ctr') {
    try {
      const w = await Wallet.fromEncryptedJson(json, password)
      return new Wallet(w.privateKey)
    } catch (err) {
      throw new DatanetError({ code: KeystoreErrorCode.WRONG_PASSWORD }, 'cannot decrypt the keystore: wrong password', 'usage', { cause: err })
    }
  }
  const { n, r, p, dklen, salt } = c.kdfparams ?? {} as Partial<ScryptKeystore['crypto']['kdfparams']>
  // [MALFORMED] scrypt parameters a keystore writer would use; n bounded so a hostile file cannot ask for terabytes
  if (![n, r, p, dklen].every(v => Number.isSafeInteger(v) && (v as number) > 0) || (dklen as number) < 32 ||
    ((n as number) & ((n as number) - 1)) !== 0 || (n as number) > MAX_SCRYPT_N || (r as number) > 32 || (p as number) > 16) {
    throw malformed('bad scrypt parameters')
  }
  if (!isHex(salt) || !isHex(c.ciphertext) || !isHex(c.mac, 32) || !isHex(c.cipherparams?.iv, 16)) throw malformed('salt, ciphertext, mac or iv is not hex of the right length')
  let derived: Buffer
  try {
    derived = await scrypt(Buffer.from(password.normalize('NFKC'), 'utf8'), Buffer.from(salt, 'hex'), dklen as number, {
      N: n as number, r: r as number, p: p as number, maxmem: 256 * (n as number) * (r as number) + 64 * 1024 * 1024
    })
  } catch (err) {
    throw new DatanetError({ code: KeystoreErrorCode.MALFORMED }, 'keystore is malformed: scrypt refused its parameters', 'usage', { cause: err })
  }
  const ciphertext = Buffer.from(c.ciphertext, 'hex')
  const mac = Buffer.from(keccak256(Buffer.concat([derived.subarray(16, 32), ciphertext])).slice(2), 'hex')
  const expected = Buffer.from(c.mac, 'hex')
  if (expected.length !== mac.length || !timingSafeEqual(mac, expected)) {
    throw new DatanetError({ code: KeystoreErrorCode.WRONG_PASSWORD }, 'cannot decrypt the keystore: wrong password', 'usage')
  }
  const decipher = createDecipheriv('aes-128-ctr', derived.subarray(0, 16), Buffer.from(c.cipherparams.iv, 'hex'))
  const privateKey = Buffer.concat([decipher.update(ciphertext), decipher.final()])
  const wallet = new Wallet('0x' + privateKey.toString('hex'))
  if (ks.address !== undefined && getAddress(ks.address.startsWith('0x') ? ks.address : `0x${ks.address}`) !== wallet.address) {
    throw malformed('the decrypted key does not match the stated address')
  }
  return wallet
}
