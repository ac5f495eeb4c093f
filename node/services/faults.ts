/**
 * Fault injection (DATANET_FAULT): one Byzantine behaviour switched on in an otherwise
 * honest node, as CometBFT's misbehaviors, so the same binary is tested honest and
 * dishonest. Never on unless configured. The consensus behaviours live in
 * `consensus/faults.ts`; this file names them all and holds the inference one.
 */
import { secp256k1 } from '@noble/curves/secp256k1.js'
import { randomBytes } from 'node:crypto'
import { DatanetError } from '../../src/errors.ts'
import { fromHex } from '../../src/codec/hash.ts'

export const FAULTS = ['equivocate', 'bogus-header', 'proposal-flood', 'twin-inference', 'bad-bls-share'] as const
export type Fault = typeof FAULTS[number]

/** DATANET_FAULT: undefined when unset; an unknown name is a usage error, never ignored. */
export function parseFault (value: string | undefined): Fault | undefined {
  if (value === undefined || value === '') return undefined
  const fault = FAULTS.find(f => f === value)
  if (fault === undefined) throw new DatanetError({ code: 'CONFIG_ERROR_FAULT' }, `DATANET_FAULT: unknown fault "${value}" (known: ${FAULTS.join(', ')})`, 'usage')
  return fault
}

/** The faults a node runs with (none by default): read from the environment at the CLI, passed in from there. */
export interface FaultOptions {
  fault?: Fault | undefined
  /** proposal-flood: proposals per round. */
  floodCount?: number | undefined
  /** proposal-flood: padding bytes per proposal. */
  floodBytes?: number | undefined
}

/** DATANET_FAULT, DATANET_FAULT_FLOOD and DATANET_FAULT_FLOOD_BYTES, checked. */
export function faultsFromEnv (env: NodeJS.ProcessEnv): FaultOptions {
  return { fault: parseFault(env.DATANET_FAULT), floodCount: faultNumber(env, 'DATANET_FAULT_FLOOD', 1), floodBytes: faultNumber(env, 'DATANET_FAULT_FLOOD_BYTES', 0) }
}

/** A number of a fault (DATANET_FAULT_FLOOD, DATANET_FAULT_FLOOD_BYTES): an integer >= `min`. */
export function faultNumber (env: NodeJS.ProcessEnv, name: string, min: number): number | undefined {
  const value = env[name]
  if (value === undefined || value === '') return undefined
  const n = Number(value)
  if (!Number.isSafeInteger(n) || n < min) throw new DatanetError({ code: 'CONFIG_ERROR_FAULT' }, `${name}: expected an integer >= ${min}, got "${value}"`, 'usage')
  return n
}

/**
 * `twin-inference`: a second canonical signature (v 27/28, low s) over the same digest,
 * from a random nonce instead of RFC 6979's: valid everywhere, different bytes, another CID.
 */
export function twinSignature (privateKey: string, digest: string): Uint8Array {
  const sig = secp256k1.sign(fromHex(digest, 32), fromHex(privateKey, 32), { prehash: false, lowS: true, format: 'recovered', extraEntropy: randomBytes(32) })
  // noble puts the recovery bit first; Ethereum's r ‖ s ‖ v puts it last, as 27/28
  const out = new Uint8Array(65)
  out.set(sig.subarray(1, 65), 0)
  out[64] = 27 + (sig[0] as number)
  return out
}
