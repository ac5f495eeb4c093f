import { scrypt as scryptCb, type BinaryLike, type ScryptOptions } from 'node:crypto'

/**
 * The keystore's key derivation (scrypt in node:crypto: native, on the thread pool), apart
 * from keystore.ts so that `node start` can begin it before the key libraries load
 * (node/cli/keystore-prefetch.ts): at N = 2^17 it is ~0.8 s of one core, the largest
 * single cost of a start.
 */

export interface ScryptParams { n: number, r: number, p: number, dklen: number, salt: string }

/** Largest scrypt cost accepted when reading (geth's "standard" is 2^18). */
export const MAX_SCRYPT_N = 1 << 20

export function isHex (v: unknown, bytes?: number): v is string {
  return typeof v === 'string' && v.length % 2 === 0 && /^[0-9a-fA-F]*$/.test(v) && (bytes === undefined ? v.length > 0 : v.length === bytes * 2)
}

/** Whether the cost parameters are ones a keystore writer would use; n bounded so a hostile file cannot ask for terabytes. */
export function scryptCostOk (params: Partial<ScryptParams> | undefined): boolean {
  const { n, r, p, dklen } = params ?? {}
  return [n, r, p, dklen].every(v => Number.isSafeInteger(v) && (v as number) > 0) && (dklen as number) >= 32 &&
    ((n as number) & ((n as number) - 1)) === 0 && (n as number) <= MAX_SCRYPT_N && (r as number) <= 32 && (p as number) <= 16
}

function scrypt (password: BinaryLike, salt: BinaryLike, keylen: number, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scryptCb(password, salt, keylen, options, (err, key) => { err == null ? resolve(key) : reject(err) })
  })
}

function run (params: ScryptParams, password: string): Promise<Buffer> {
  return scrypt(Buffer.from(password.normalize('NFKC'), 'utf8'), Buffer.from(params.salt, 'hex'), params.dklen, {
    N: params.n, r: params.r, p: params.p, maxmem: 256 * params.n * params.r + 64 * 1024 * 1024
  })
}

interface Prefetched { params: ScryptParams, password: string, key: Promise<Buffer> }
let prefetched: Prefetched | undefined

/** Counts for tests and the start-up log: derivations run, and those taken from a prefetch. */
export const kdfStats = { derived: 0, prefetchTaken: 0 }

/**
 * Begins deriving a keystore's key ahead of its decryption. The result is held for the one
 * `deriveScryptKey` call with the same parameters and password, which takes it; any other
 * call derives its own. Parameters a reader would refuse start nothing.
 */
export function prefetchScryptKey (params: ScryptParams, password: string): boolean {
  if (!scryptCostOk(params) || !isHex(params.salt)) return false
  const key = run(params, password)
  key.catch(() => {})
  kdfStats.derived++
  prefetched = { params: { ...params }, password, key }
  return true
}

/** Derives the key of checked scrypt parameters (`scryptCostOk`, hex salt): the prefetched derivation when it was of the same keystore and password, else a new one. */
export async function deriveScryptKey (params: ScryptParams, password: string): Promise<Buffer> {
  const pre = prefetched
  prefetched = undefined
  if (pre !== undefined && pre.password === password && pre.params.salt.toLowerCase() === params.salt.toLowerCase() &&
    pre.params.n === params.n && pre.params.r === params.r && pre.params.p === params.p && pre.params.dklen === params.dklen) {
    kdfStats.prefetchTaken++
    return await pre.key
  }
  kdfStats.derived++
  return await run(params, password)
}
