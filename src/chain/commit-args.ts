/**
 * The arguments of DatanetRegistry.commitVersion, built from a version's certificate: pure
 * (no provider, no I/O), so the anchor service, the tests and the gas bench share one
 * encoding. The contract takes
 *
 *   commitVersion(bytes32 datanetId, uint32 round, VersionHeader header,
 *                 uint256[] members, Signature[] signatures)
 *
 * where `members` is the active set packed one word per validator,
 * `uint256(uint160(address)) << 96 | stake`, sorted ascending (so by address), checked
 * against the hash the contract holds; and each `Signature {uint256 index; bytes32 r;
 * bytes32 vs}` is a precommit in ERC-2098 compact form naming its signer's index in
 * `members`, indices strictly increasing.
 *
 *   await contract.commitVersion(...commitVersionArgs({ datanetId, round, header, signatures, validators }))
 */
import { Signature, getAddress, keccak256, toBeHex } from 'ethers'
import { DatanetError } from '../errors.ts'

export const CommitArgsErrorCode = {
  BAD_VALIDATOR_SET: 'COMMIT_ARGS_ERROR_BAD_VALIDATOR_SET',
  BAD_SIGNATURE: 'COMMIT_ARGS_ERROR_BAD_SIGNATURE'
} as const

/** Stakes are held in 96 bits on chain. */
export const MAX_STAKE = (1n << 96n) - 1n

/** The header a precommit signs, as src/consensus/version.ts `headerOf` gives it (bigints accepted too). */
export interface CommitHeaderInput {
  height: number | bigint
  parent: string
  datasetRoot: string
  recordCount: number | bigint
  attributionRoot: string
  totalAttributed: string | bigint
  validatorSetHash: string
  version: string
}

/** One validator of the active set, with its stake in wei, as the contract holds it (any order). */
export interface ValidatorStakeInput {
  address: string
  stake: bigint
}

/** A precommit over the header: the signer's address and its 65-byte signature (0x r s v). */
export interface SignedPrecommitInput {
  signer: string
  signature: string
}

export interface CommitVersionInput {
  /** 0x bytes32: the datanet id (the manifest CID's digest). */
  datanetId: string
  /** The round whose precommits form the certificate. */
  round: number
  header: CommitHeaderInput
  /** The certificate's precommits; signers outside `validators` and repeated signers are dropped. */
  signatures: readonly SignedPrecommitInput[]
  /** The active set as the contract holds it (`validatorsOf`); the order does not matter. */
  validators: readonly ValidatorStakeInput[]
}

/** The header tuple as the ABI takes it (integers as bigints). */
export interface CommitHeaderTuple {
  height: bigint
  parent: string
  datasetRoot: string
  recordCount: bigint
  attributionRoot: string
  totalAttributed: bigint
  validatorSetHash: string
  version: string
}

/** The contract's `Signature` struct: index into the members, ERC-2098 compact signature. */
export interface CommitSignatureTuple {
  index: bigint
  r: string
  vs: string
}

/** commitVersion's arguments, in order. */
export type CommitVersionArgs = [
  datanetId: string,
  round: number,
  header: CommitHeaderTuple,
  members: bigint[],
  signatures: CommitSignatureTuple[]
]

/** One packed member: `address << 96 | stake`. */
export function packMember (address: string, stake: bigint): bigint {
  if (stake <= 0n || stake > MAX_STAKE) {
    throw new DatanetError({ code: CommitArgsErrorCode.BAD_VALIDATOR_SET }, `stake of ${address} out of range (1 .. 2^96-1 wei): ${stake}`, 'usage')
  }
  let checked: string
  try {
    checked = getAddress(address)
  } catch (err) {
    throw new DatanetError({ code: CommitArgsErrorCode.BAD_VALIDATOR_SET }, `not an address: ${address}`, 'usage', { cause: err })
  }
  return (BigInt(checked) << 96n) | stake
}

/** The active set packed and sorted as commitVersion takes it (ascending, so by address). Throws on a repeated address. */
export function packedMembers (validators: readonly ValidatorStakeInput[]): bigint[] {
  if (validators.length === 0) throw new DatanetError({ code: CommitArgsErrorCode.BAD_VALIDATOR_SET }, 'the active set is empty', 'usage')
  const members = validators.map(v => packMember(v.address, v.stake)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
  for (let i = 1; i < members.length; i++) {
    if ((members[i] as bigint) >> 96n === (members[i - 1] as bigint) >> 96n) {
      throw new DatanetError({ code: CommitArgsErrorCode.BAD_VALIDATOR_SET }, `validator ${getAddress(toBeHex((members[i] as bigint) >> 96n, 20))} listed twice`, 'usage')
    }
  }
  return members
}

/** The hash the contract holds for a set (`activeSet(datanetId)`'s second result): keccak256 over the sorted packed members. */
export function activeSetHash (validators: readonly ValidatorStakeInput[]): string {
  return keccak256('0x' + packedMembers(validators).map(m => toBeHex(m, 32).slice(2)).join(''))
}

/** A 65-byte signature in ERC-2098 compact form. */
export function compactSignature (signature: string): { r: string, vs: string } {
  let sig: Signature
  try {
    sig = Signature.from(signature)
  } catch (err) {
    throw new DatanetError({ code: CommitArgsErrorCode.BAD_SIGNATURE }, `not a canonical 65-byte signature: ${signature}`, 'usage', { cause: err })
  }
  return { r: sig.r, vs: sig.yParityAndS }
}

/**
 * commitVersion's arguments: the set packed and sorted, the signatures of its members
 * (each signer once) in the set's order with their indices, compact. Whether they hold the
 * threshold is the contract's check (InsufficientStake). Signatures are not verified here.
 */
export function commitVersionArgs (input: CommitVersionInput): CommitVersionArgs {
  const members = packedMembers(input.validators)
  const indexOf = new Map<string, number>()
  members.forEach((m, i) => indexOf.set(toBeHex(m >> 96n, 20).toLowerCase(), i))
  const chosen = new Map<number, SignedPrecommitInput>()
  for (const s of input.signatures) {
    const index = indexOf.get(s.signer.toLowerCase())
    if (index === undefined || chosen.has(index)) continue
    chosen.set(index, s)
  }
  const signatures = [...chosen.entries()]
    .sort(([a], [b]) => a - b)
    .map(([index, s]) => ({ index: BigInt(index), ...compactSignature(s.signature) }))
  return [input.datanetId, input.round, headerTuple(input.header), members, signatures]
}

/** The header as the ABI takes it. */
export function headerTuple (h: CommitHeaderInput): CommitHeaderTuple {
  return {
    height: BigInt(h.height),
    parent: h.parent,
    datasetRoot: h.datasetRoot,
    recordCount: BigInt(h.recordCount),
    attributionRoot: h.attributionRoot,
    totalAttributed: BigInt(h.totalAttributed),
    validatorSetHash: h.validatorSetHash,
    version: h.version
  }
}
