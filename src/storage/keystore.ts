import { createDecipheriv, timingSafeEqual } from 'node:crypto'
import { Wallet, getAddress, keccak256, encryptKeystoreJson } from 'ethers'
import { signingKey } from '../codec/signer.ts'
import { DatanetError } from '../errors.ts'
import { deriveScryptKey, isHex, scryptCostOk, type ScryptParams } from './keystore-kdf.ts'

export const KeystoreErrorCode = {
  WRONG_PASSWORD: 'KEYSTORE_ERROR_WRONG_PASSWORD',
  MALFORMED: 'KEYSTORE_ERROR_MALFORMED'
} as const
export type KeystoreErrorCode = typeof KeystoreErrorCode[keyof typeof KeystoreErrorCode]

/** scrypt cost of new keystores; ethers' default (N = 2^17), the usual Web3 Secret Storage strength. */
const SCRYPT_N = 1 << 17

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
    kdfparams: ScryptParams
    mac: string
  }
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
      return new Wallet(signingKey(w.privateKey))
    } catch (err) {
      throw new DatanetError({ code: KeystoreErrorCode.WRONG_PASSWORD }, 'cannot decrypt the keystore: wrong password', 'usage', { cause: err })
    }
  }
  const params = c.kdfparams
  // [MALFORMED] scrypt parameters a keystore writer would use
  if (!scryptCostOk(params)) throw malformed('bad scrypt parameters')
  if (!isHex(params.salt) || !isHex(c.ciphertext) || !isHex(c.mac, 32) || !isHex(c.cipherparams?.iv, 16)) throw malformed('salt, ciphertext, mac or iv is not hex of the right length')
  let derived: Buffer
  try {
    derived = await deriveScryptKey(params, password)
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
  const wallet = new Wallet(signingKey('0x' + privateKey.toString('hex')))
  if (ks.address !== undefined && getAddress(ks.address.startsWith('0x') ? ks.address : `0x${ks.address}`) !== wallet.address) {
    throw malformed('the decrypted key does not match the stated address')
  }
  return wallet
}
