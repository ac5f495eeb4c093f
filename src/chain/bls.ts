/**
 * BLS signatures for anchoring (issue 14 item 9): a validator's BLS key, its proof of
 * possession, its precommit signature, their aggregate and the arguments of
 * DatanetRegistry.commitVersionBls. Pure: values in, values out.
 *
 * The scheme is the contract's (src/chain/DatanetRegistry.sol, library Bls12381): BLS12-381,
 * keys in G2 and signatures in G1 (the minimal-signature-size variant: hashing onto G1 is the
 * cheaper one on chain), IETF's proof-of-possession ciphersuites, points in EIP-2537's
 * encoding on chain. A validator's BLS secret is derived from its secp256k1 key (HKDF-SHA256
 * under a label of its own), so there is no second key to keep: the same keystore restores both.
 *
 * A precommit's BLS signature signs the same 32 bytes as its ECDSA signature: the vote's
 * EIP-712 digest (src/consensus/version.ts voteDigest).
 */
import { bls12_381 as bls } from '@noble/curves/bls12-381.js'
import { checksumAddress } from '../codec/address.ts'
import { hkdf } from '@noble/hashes/hkdf.js'
import { sha256 } from '@noble/hashes/sha2.js'
import { getBytes, hexlify } from 'ethers'
import { DatanetError } from '../errors.ts'
import { headerTuple, type CommitHeaderInput, type CommitHeaderTuple, type ValidatorStakeInput } from './commit-args.ts'

export const BlsErrorCode = {
  BAD_KEY: 'BLS_ERROR_BAD_KEY',
  BAD_SIGNATURE: 'BLS_ERROR_BAD_SIGNATURE',
  NO_SIGNERS: 'BLS_ERROR_NO_SIGNERS'
} as const

/** The contract's ciphersuites (BLS_SIG_DST, BLS_POP_DST). */
export const BLS_SIG_DST = 'BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_POP_'
export const BLS_POP_DST = 'BLS_POP_BLS12381G1_XMD:SHA-256_SSWU_RO_POP_'
const KEY_LABEL = new TextEncoder().encode('datanet BLS key v1')

type G1 = ReturnType<typeof bls.shortSignatures.hash>
type G2 = ReturnType<typeof bls.shortSignatures.getPublicKey>

/** A validator's BLS secret (32 bytes), derived from its secp256k1 private key (0x hex or bytes). */
export function blsSecretKey (ecdsaPrivateKey: string | Uint8Array): Uint8Array {
  const ikm = typeof ecdsaPrivateKey === 'string' ? getBytes(ecdsaPrivateKey) : ecdsaPrivateKey
  if (ikm.length !== 32) throw new DatanetError({ code: BlsErrorCode.BAD_KEY }, `a secp256k1 private key is 32 bytes, not ${ikm.length}`, 'usage')
  // 48 uniform bytes reduced mod r (noble's keygen), as IETF KeyGen does
  return bls.shortSignatures.keygen(hkdf(sha256, ikm, KEY_LABEL, new Uint8Array(0), 48)).secretKey
}

/** The public key of a secret, in the contract's 256-byte encoding (0x hex). */
export function blsPublicKey (secretKey: Uint8Array): string {
  return encodeG2(bls.shortSignatures.getPublicKey(secretKey))
}

/** The proof of possession `registerBlsKey(key, proof)` takes: a signature over owner || key. */
export function proveKeyPossession (secretKey: Uint8Array, owner: string): { key: string, proof: string } {
  const key = blsPublicKey(secretKey)
  const message = popMessage(owner, key)
  const proof = bls.shortSignatures.sign(bls.shortSignatures.hash(message, BLS_POP_DST), secretKey)
  return { key, proof: encodeG1(proof) }
}

function popMessage (owner: string, key: string): Uint8Array {
  const out = new Uint8Array(20 + 256)
  out.set(getBytes(checksumAddress(owner)), 0)
  out.set(getBytes(key), 20)
  return out
}

/** A precommit's BLS signature over its EIP-712 digest: 48 bytes, compressed (0x hex). */
export function signDigest (secretKey: Uint8Array, digest: string): string {
  return hexlify(bls.shortSignatures.sign(hashDigest(digest), secretKey).toBytes(true))
}

function hashDigest (digest: string): G1 {
  const bytes = getBytes(digest)
  if (bytes.length !== 32) throw new DatanetError({ code: BlsErrorCode.BAD_SIGNATURE }, `a vote digest is 32 bytes, not ${bytes.length}`, 'usage')
  return bls.shortSignatures.hash(bytes, BLS_SIG_DST)
}

/** Whether a compressed signature signs `digest` under a 256-byte key. False for anything malformed. */
export function verifyDigest (signature: string, digest: string, key: string): boolean {
  try {
    return bls.shortSignatures.verify(decodeSignature(signature), hashDigest(digest), decodeG2(key))
  } catch {
    return false
  }
}

/** A precommit's BLS signature: its signer and the 48-byte compressed signature. */
export interface BlsPrecommitInput {
  signer: string
  signature: string
}

export interface CommitVersionBlsInput {
  datanetId: string
  round: number
  header: CommitHeaderInput
  /** Precommit signatures; signers outside `validators` and repeated signers are dropped. */
  signatures: readonly BlsPrecommitInput[]
  /** The active set as the contract holds it (`validatorsOf`). */
  validators: readonly ValidatorStakeInput[]
}

/** commitVersionBls's arguments, in order. */
export type CommitVersionBlsArgs = [
  datanetId: string,
  round: number,
  header: CommitHeaderTuple,
  absent: string[],
  signature: string
]

/**
 * commitVersionBls's arguments: the members that did not sign, sorted ascending, and the sum of
 * the signatures of those that did (in EIP-2537's 128-byte encoding). Whether the signers hold
 * the threshold and whether each signature is valid are the contract's checks: a caller that
 * cannot vouch for every signature checks the aggregate first (`verifyAggregate`).
 */
export function commitVersionBlsArgs (input: CommitVersionBlsInput): CommitVersionBlsArgs {
  const members = new Set(input.validators.map(v => checksumAddress(v.address)))
  const chosen = new Map<string, G1>()
  for (const s of input.signatures) {
    const signer = checksumAddress(s.signer)
    if (!members.has(signer) || chosen.has(signer)) continue
    chosen.set(signer, decodeSignature(s.signature))
  }
  if (chosen.size === 0) throw new DatanetError({ code: BlsErrorCode.NO_SIGNERS }, 'no member of the active set signed', 'usage')
  const absent = [...members].filter(a => !chosen.has(a)).sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : 1))
  const aggregate = bls.shortSignatures.aggregateSignatures([...chosen.values()])
  return [input.datanetId, input.round, headerTuple(input.header), absent, encodeG1(aggregate)]
}

/** Whether an aggregate signature (128-byte encoding) signs `digest` under the keys (256-byte encodings) of its signers. */
export function verifyAggregate (aggregate: string, digest: string, keys: readonly string[]): boolean {
  try {
    const key = bls.shortSignatures.aggregatePublicKeys(keys.map(decodeG2))
    return bls.shortSignatures.verify(decodeG1(aggregate), hashDigest(digest), key)
  } catch {
    return false
  }
}

// ------------------------------------------------------------------ EIP-2537 encoding

const FP_HEX = 128 // 64 bytes: 16 zero bytes, then 48

function fp (x: bigint): string {
  return x.toString(16).padStart(FP_HEX, '0')
}

function readFp (hex: string, at: number): bigint {
  const word = hex.slice(at * FP_HEX, (at + 1) * FP_HEX)
  if (!/^0{32}/.test(word)) throw new DatanetError({ code: BlsErrorCode.BAD_KEY }, 'a field element has non-zero padding', 'usage')
  return BigInt('0x' + word)
}

/** A G1 point as 128 bytes: x || y. */
export function encodeG1 (point: G1): string {
  if (point.is0()) return '0x' + '0'.repeat(2 * FP_HEX)
  const a = point.toAffine()
  return '0x' + fp(a.x) + fp(a.y)
}

/** A G2 point as 256 bytes: x.c0 || x.c1 || y.c0 || y.c1. */
export function encodeG2 (point: G2): string {
  if (point.is0()) return '0x' + '0'.repeat(4 * FP_HEX)
  const a = point.toAffine()
  return '0x' + fp(a.x.c0) + fp(a.x.c1) + fp(a.y.c0) + fp(a.y.c1)
}

function body (hex: string, bytes: number): string {
  const h = hex.startsWith('0x') ? hex.slice(2) : hex
  if (h.length !== 2 * bytes || !/^[0-9a-fA-F]*$/.test(h)) {
    throw new DatanetError({ code: BlsErrorCode.BAD_KEY }, `expected ${bytes} bytes of hex`, 'usage')
  }
  return h
}

/** A G1 point from its 128-byte encoding, checked to be on the curve and in the subgroup. */
export function decodeG1 (hex: string): G1 {
  const h = body(hex, 128)
  const point = bls.G1.Point.fromAffine({ x: readFp(h, 0), y: readFp(h, 1) })
  if (!point.is0()) point.assertValidity()
  return point
}

/** A G2 point from its 256-byte encoding, checked to be on the curve and in the subgroup. */
export function decodeG2 (hex: string): G2 {
  const h = body(hex, 256)
  const Fp2 = bls.fields.Fp2
  const point = bls.G2.Point.fromAffine({
    x: Fp2.create({ c0: readFp(h, 0), c1: readFp(h, 1) }),
    y: Fp2.create({ c0: readFp(h, 2), c1: readFp(h, 3) })
  })
  if (!point.is0()) point.assertValidity()
  return point
}

function decodeSignature (hex: string): G1 {
  try {
    return bls.shortSignatures.Signature.fromHex(body(hex, 48))
  } catch (err) {
    throw new DatanetError({ code: BlsErrorCode.BAD_SIGNATURE }, `not a BLS signature (48 bytes, compressed G1): ${hex.slice(0, 20)}…`, 'usage', { cause: err })
  }
}
