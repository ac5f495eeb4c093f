import { fromHex, toHex } from '../../src/codec/hash.ts'
import { DatanetError } from '../../src/errors.ts'
import { leafHash, merkleProof, proofFromNodes, proofNodeRefs, verifyProof, type NodeRef } from '../../src/merkle/tree.ts'
import { type StateDatabase, type VersionEntry } from '../../src/storage/state-db.ts'

/** A record's inclusion proof against a version's dataset root (GET /v1/datanets/:id/records/:hash/proof). */
export interface RecordProof {
  recordHash: string
  version: number
  versionCid: string
  datasetRoot: string
  position: number
  recordCount: number
  proof: string[]
}

/** A version or record this node does not hold (404). */
export function notFound (message: string): DatanetError {
  return new DatanetError({ code: 'VERSION_ERROR_NOT_FOUND' }, message, 'not_found')
}

/**
 * The inclusion proof of a record against a version's dataset root (the latest by default).
 * The record's position is one lookup; the proof reads the O(log n) tree nodes it needs
 * (stored at finalization). Versions finalized before those nodes were stored (before
 * 2026-12-05) fall back to reading every leaf up to the version.
 */
export async function recordProof (db: StateDatabase, datanet: string, digestHex: string, recordHash: string, height?: number): Promise<RecordProof> {
  let hash: Uint8Array
  try {
    hash = fromHex(recordHash, 32)
  } catch {
    throw new DatanetError({ code: 'API_ERROR_BAD_REQUEST' }, `not a record hash (32 bytes of hex): ${recordHash}`, 'usage')
  }
  const digest = fromHex(digestHex, 32)
  const position = await db.dataset.positionOf(digest, hash)
  if (position === undefined) throw notFound(`record ${recordHash} is in no final version of datanet ${datanet}`)
  const version: VersionEntry | undefined = height === undefined
    ? await db.versions.latest(datanet)
    : await db.versions.at(datanet, height)
  if (version === undefined) throw notFound(`datanet ${datanet} has no version ${height ?? ''}`.trim())
  if (position >= version.recordCount) throw notFound(`record ${recordHash} was included after version ${version.height}`)
  const proof = await fromNodes(db, digest, position, version.recordCount) ?? await fromLeaves(db, digest, position, version.recordCount)
  if (!verifyProof(proof, fromHex(version.datasetRoot, 32), hash)) throw new Error('proof does not verify against the stored root')
  return { recordHash: toHex(hash), version: version.height, versionCid: version.cid, datasetRoot: version.datasetRoot, position, recordCount: version.recordCount, proof: proof.map(toHex) }
}

/** The proof from stored nodes, or undefined when one is missing (a version finalized before they were stored). */
async function fromNodes (db: StateDatabase, digest: Uint8Array, position: number, size: number): Promise<Uint8Array[] | undefined> {
  const refs = proofNodeRefs(position, size)
  const leaves = refs.filter(([level]) => level === 0)
  const inner = refs.filter(([level]) => level > 0)
  const [leafHashes, innerNodes] = await Promise.all([
    db.dataset.leavesAt(digest, leaves.map(([, i]) => i)),
    db.dataset.nodesAt(digest, inner)
  ])
  const nodes = new Map<string, Uint8Array>()
  const key = (ref: NodeRef): string => `${ref[0]}/${ref[1]}`
  for (let j = 0; j < leaves.length; j++) {
    const h = leafHashes[j]
    if (h === undefined) return undefined
    nodes.set(key(leaves[j] as NodeRef), leafHash(h))
  }
  for (let j = 0; j < inner.length; j++) {
    const n = innerNodes[j]
    if (n === undefined) return undefined
    nodes.set(key(inner[j] as NodeRef), n)
  }
  return proofFromNodes(position, size, ref => nodes.get(key(ref)) as Uint8Array)
}

async function fromLeaves (db: StateDatabase, digest: Uint8Array, position: number, size: number): Promise<Uint8Array[]> {
  return merkleProof(await db.dataset.leafRange(digest, size), position)
}
