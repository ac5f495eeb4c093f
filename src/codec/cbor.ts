import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'

/** Deterministic dag-cbor: the encoding of every protocol object (DESIGN §3). */
export function encodeCbor (value: unknown): Uint8Array {
  return dagCbor.encode(value)
}

export function decodeCbor<T = unknown> (bytes: Uint8Array): T {
  return dagCbor.decode<T>(bytes)
}

/** The CID (dag-cbor, sha2-256) that names an encoded object. */
export async function cidOf (bytes: Uint8Array): Promise<CID> {
  return CID.createV1(dagCbor.code, await sha256.digest(bytes))
}
