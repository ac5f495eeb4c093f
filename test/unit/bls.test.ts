/**
 * src/chain/bls.ts: keys derived from a validator's secp256k1 key, precommit signatures, the
 * arguments of commitVersionBls and the EIP-2537 encoding (its agreement with the contract is
 * test/chain/bls-anchoring.test.ts's).
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Wallet, keccak256, toUtf8Bytes } from 'ethers'
import {
  BlsErrorCode, blsPublicKey, blsSecretKey, commitVersionBlsArgs, decodeG1, decodeG2, encodeG2, signDigest, verifyAggregate, verifyDigest
} from '../../src/chain/bls.ts'
import { DatanetError } from '../../src/errors.ts'

const wallets = [1, 2, 3, 4].map(i => new Wallet(keccak256(toUtf8Bytes(`bls unit ${i}`))))
const secrets = wallets.map(w => blsSecretKey(w.privateKey))
const keys = secrets.map(blsPublicKey)
const digest = keccak256(toUtf8Bytes('a precommit'))
const header = { height: 4, parent: digest, datasetRoot: digest, recordCount: 1, attributionRoot: digest, totalAttributed: '0', validatorSetHash: digest, version: digest }

function code (fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (err) {
    return err instanceof DatanetError ? err.code : `not a DatanetError: ${(err as Error).message}`
  }
  return undefined
}

test('a BLS key is derived from the secp256k1 key alone: the same key gives the same secret, another key another', () => {
  const w = wallets[0] as Wallet
  assert.equal(blsSecretKey(w.privateKey), blsSecretKey(w.privateKey))
  assert.equal(blsSecretKey(w.privateKey), blsSecretKey(Uint8Array.from(Buffer.from(w.privateKey.slice(2), 'hex'))))
  assert.is.not(keys[0], keys[1])
  assert.is((keys[0] as string).length, 2 + 512)
  assert.is(code(() => blsSecretKey('0x1234')), BlsErrorCode.BAD_KEY)
})

test('a precommit signature verifies under its key for its digest only; malformed input is false, not a throw', () => {
  const sig = signDigest(secrets[0] as Uint8Array, digest)
  assert.is(sig.length, 2 + 96)
  assert.ok(verifyDigest(sig, digest, keys[0] as string))
  assert.not.ok(verifyDigest(sig, keccak256(toUtf8Bytes('another')), keys[0] as string))
  assert.not.ok(verifyDigest(sig, digest, keys[1] as string))
  assert.not.ok(verifyDigest('0x' + '11'.repeat(48), digest, keys[0] as string))
  assert.not.ok(verifyDigest(sig, digest, '0x1234'))
})

test('points decode only from their padded encoding, on the curve and in the subgroup', () => {
  assert.is(encodeG2(decodeG2(keys[0] as string)), keys[0])
  const unpadded = '0x01' + (keys[0] as string).slice(4)
  assert.is(code(() => decodeG2(unpadded)), BlsErrorCode.BAD_KEY)
  const offCurve = '0x' + ('00'.repeat(16) + '11'.repeat(48)).repeat(4)
  assert.ok(code(() => decodeG2(offCurve)) !== undefined)
  assert.ok(code(() => decodeG1('0x' + ('00'.repeat(16) + '22'.repeat(48)).repeat(2))) !== undefined)
  assert.is(code(() => decodeG2('0x1234')), BlsErrorCode.BAD_KEY)
})

test('commitVersionBls arguments: outsiders and repeated signers dropped, the absent sorted, the aggregate the signers\'', () => {
  const outsider = new Wallet(keccak256(toUtf8Bytes('outsider')))
  const validators = wallets.map(w => ({ address: w.address, stake: 1n }))
  const signed = (i: number): { signer: string, signature: string } => ({ signer: (wallets[i] as Wallet).address, signature: signDigest(secrets[i] as Uint8Array, digest) })
  const args = commitVersionBlsArgs({
    datanetId: digest, round: 2, header, validators,
    signatures: [signed(2), signed(0), signed(0), { signer: outsider.address, signature: signDigest(blsSecretKey(outsider.privateKey), digest) }]
  })
  const absent = [wallets[1], wallets[3]].map(w => (w as Wallet).address).sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : 1))
  assert.equal(args[3], absent)
  assert.is(args[1], 2)
  assert.is(args[2].height, 4n)
  assert.ok(verifyAggregate(args[4], digest, [keys[0] as string, keys[2] as string]))
  assert.not.ok(verifyAggregate(args[4], digest, keys))
  assert.is(code(() => commitVersionBlsArgs({ datanetId: digest, round: 0, header, validators, signatures: [] })), BlsErrorCode.NO_SIGNERS)
  assert.is(code(() => commitVersionBlsArgs({ datanetId: digest, round: 0, header, validators, signatures: [{ signer: (wallets[0] as Wallet).address, signature: '0x12' }] })), BlsErrorCode.BAD_SIGNATURE)
})

test.run()
