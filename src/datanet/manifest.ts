import { getAddress } from 'ethers'
import { CID } from 'multiformats/cid'
import { z } from 'zod'
import { cidOf, encodeCbor } from '../codec/cbor.ts'
import { toHex } from '../codec/hash.ts'
import { DatanetError, describeIssues } from '../errors.ts'

export const ManifestErrorCode = {
  INVALID: 'MANIFEST_ERROR_INVALID'
} as const

const address = z.string().regex(/^0x[0-9a-fA-F]{40}$/, 'expected a 0x-prefixed 20-byte address').transform((a, ctx) => {
  try {
    return getAddress(a)
  } catch {
    ctx.addIssue({ code: 'custom', message: 'bad address checksum (mixed case that is not EIP-55)' })
    return z.NEVER
  }
})
const wei = z.string().regex(/^[1-9][0-9]{0,77}$/, 'expected a positive integer amount of wei as a decimal string')
const bps = z.number().int().min(0).max(10_000)

/**
 * A datanet's manifest (DESIGN §3). Omitted parameters take the defaults below, so the
 * stored manifest, and therefore the datanet id, always spells every parameter out.
 */
export const manifestSchema = z.strictObject({
  version: z.literal(1).default(1),
  name: z.string().min(1).max(100),
  description: z.string().max(10_000).default(''),
  /** SPDX identifier of the dataset's license. */
  license: z.string().min(1).max(200),
  /** JSON Schema (draft 2020-12) every record must satisfy. */
  recordSchema: z.record(z.string(), z.unknown()),
  /** How plain-text uploads become records: one per line or one per paragraph. */
  textMode: z.enum(['line', 'paragraph']).default('line'),
  /** Largest shard, in bytes. */
  shardSize: z.number().int().min(1024).max(2 * 1024 * 1024).default(1024 * 1024),
  limits: z.strictObject({
    maxRecordBytes: z.number().int().min(16).default(64 * 1024),
    maxRecordsPerContribution: z.number().int().min(1).default(20_000_000),
    maxContributionBytes: z.number().int().min(1).default(4 * 1024 * 1024 * 1024),
    /**
     * A record this much covered (basis points) by one record already in the dataset is a
     * near-duplicate (src/attribution/record-coverage.ts). Optional, unlike the rest, so
     * that manifests written before it keep their ids; absent, NEAR_DUPLICATE_COVERAGE_BPS.
     */
    nearDuplicateCoverageBps: z.number().int().min(1).max(10_000).optional()
  }).prefault({}),
  consensus: z.strictObject({
    proposeTimeoutMs: z.number().int().min(10).default(3000),
    prevoteTimeoutMs: z.number().int().min(10).default(1000),
    precommitTimeoutMs: z.number().int().min(10).default(1000),
    timeoutDeltaMs: z.number().int().min(0).default(500),
    versionIntervalMs: z.number().int().min(10).default(5000)
  }).prefault({}),
  /** Versions between two on-chain anchors. */
  anchorInterval: z.number().int().min(1).default(1),
  attribution: z.strictObject({
    minSpanTokens: z.number().int().min(1).default(12),
    maxSpanTokens: z.number().int().min(1).default(256),
    commonRecordLimit: z.number().int().min(1).default(16),
    recordCapBps: bps.default(2500)
  }).prefault({}),
  /** How a fee splits; the parts add up to 10,000 basis points. */
  rewardSplit: z.strictObject({
    contributorsBps: bps.default(6000),
    validatorsBps: bps.default(2000),
    modelOwnerBps: bps.default(1500),
    treasuryBps: bps.default(500)
  }).prefault({}),
  validators: z.array(z.strictObject({ address, stake: wei })).min(1).max(256),
  /** Free text that makes an otherwise identical manifest a different datanet. */
  nonce: z.string().max(100).default('')
}).superRefine((m, ctx) => {
  const split = m.rewardSplit
  if (split.contributorsBps + split.validatorsBps + split.modelOwnerBps + split.treasuryBps !== 10_000) {
    ctx.addIssue({ code: 'custom', path: ['rewardSplit'], message: 'the parts must add up to 10000 basis points' })
  }
  if (m.limits.maxRecordBytes > m.shardSize) {
    ctx.addIssue({ code: 'custom', path: ['limits', 'maxRecordBytes'], message: `must not exceed shardSize (${m.shardSize})` })
  }
  if (m.attribution.minSpanTokens > m.attribution.maxSpanTokens) {
    ctx.addIssue({ code: 'custom', path: ['attribution', 'minSpanTokens'], message: 'must not exceed maxSpanTokens' })
  }
  const seen = new Set<string>()
  m.validators.forEach((v, i) => {
    if (seen.has(v.address)) ctx.addIssue({ code: 'custom', path: ['validators', i, 'address'], message: `duplicate validator ${v.address}` })
    seen.add(v.address)
  })
})

/** The near-duplicate coverage threshold of a manifest that does not name one. */
export const NEAR_DUPLICATE_COVERAGE_BPS = 9000

export type ManifestInput = z.input<typeof manifestSchema>
export type Manifest = z.output<typeof manifestSchema>

/** Checks a manifest and fills in its defaults; every problem names its path. */
export function parseManifest (input: unknown): Manifest {
  const result = manifestSchema.safeParse(input)
  if (!result.success) {
    throw new DatanetError({ code: ManifestErrorCode.INVALID }, `invalid manifest: ${describeIssues(result.error.issues, '(root)')}`, 'usage')
  }
  return result.data
}

export interface EncodedManifest {
  manifest: Manifest
  bytes: Uint8Array
  cid: CID
  /** The datanet id: the manifest's CID. */
  id: string
  /** The 32-byte sha2-256 digest of the manifest: the contract's key for the datanet and the EIP-712 salt. */
  digest: string
}

export async function encodeManifest (manifest: Manifest): Promise<EncodedManifest> {
  const bytes = encodeCbor(manifest)
  const cid = await cidOf(bytes)
  return { manifest, bytes, cid, id: cid.toString(), digest: toHex(cid.multihash.digest) }
}

/** The 32-byte digest of a datanet id (the manifest CID). */
export function datanetDigest (id: string): string {
  return toHex(CID.parse(id).multihash.digest)
}

export interface ValidatorStake {
  address: string
  stake: bigint
}

export interface ValidatorSet {
  validators: readonly ValidatorStake[]
  total: bigint
}

/** The genesis validator set, sorted by address so every node iterates it alike. */
export function genesisValidatorSet (manifest: Manifest): ValidatorSet {
  const validators = manifest.validators
    .map(v => ({ address: v.address, stake: BigInt(v.stake) }))
    .sort((a, b) => (a.address.toLowerCase() < b.address.toLowerCase() ? -1 : 1))
  return { validators, total: validators.reduce((sum, v) => sum + v.stake, 0n) }
}

export function stakeOf (set: ValidatorSet, address: string): bigint | undefined {
  const lower = address.toLowerCase()
  return set.validators.find(v => v.address.toLowerCase() === lower)?.stake
}
