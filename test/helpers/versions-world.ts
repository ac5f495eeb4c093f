/**
 * A datanet's versions over a real level store and an in-memory block store, for the
 * tests of node/services/consensus/versions.ts (and the large-version script they run in a
 * small heap): a datanet of four validators, contributions stored as gossip brings them.
 */
import { Wallet } from 'ethers'
import { CID } from 'multiformats/cid'
import { toHex } from '../../src/codec/hash.ts'
import { encodeManifest, genesisValidatorSet, parseManifest } from '../../src/datanet/manifest.ts'
import { shardCid } from '../../src/datanet/shard.ts'
import { encodeVerdict, signVerdict } from '../../src/contribution/verdict.ts'
import type { StateDatabase } from '../../src/storage/state-db.ts'
import type { FollowedDatanet } from '../../node/services/datanets.ts'
import type { Helia } from '@helia/interface'

export const binding = { chainId: 31337, registry: null }
export const wallets = Array.from({ length: 4 }, (_, i) => new Wallet('0x' + (i + 11).toString(16).padStart(64, '0')))

export function memoryHelia (): Helia {
  const blocks = new Map<string, Uint8Array>()
  return {
    blockstore: {
      put: async (cid: CID, bytes: Uint8Array) => { blocks.set(cid.toString(), bytes); return cid },
      putMany: async function * (pairs: Iterable<{ cid: CID, bytes: Uint8Array }>) {
        for (const { cid, bytes } of pairs) { blocks.set(cid.toString(), bytes); yield cid }
      },
      get: async function * (cid: CID) {
        const b = blocks.get(cid.toString())
        if (b === undefined) throw new Error(`no block ${cid.toString()}`)
        yield b
      }
    },
    pins: { isPinned: async () => true, add: async function * () {} }
  } as unknown as Helia
}

export async function datanet (): Promise<FollowedDatanet> {
  const manifest = parseManifest({ name: 'versions', license: 'CC0-1.0', recordSchema: { type: 'object' }, validators: wallets.map(w => ({ address: w.address, stake: '100' })) })
  const e = await encodeManifest(manifest)
  return { id: e.id, digest: e.digest, manifest, validators: genesisValidatorSet(manifest), validateRecord: () => undefined as never }
}

/**
 * Stores a contribution of `lines` (shards of at most `shardRecords` records; its CID from
 * the first) with accept verdicts of `signers`.
 */
export async function contribution (db: StateDatabase, helia: Helia, d: FollowedDatanet, lines: string[], signers: Wallet[], status: 'pending' | 'accepted' = 'accepted', declared?: { recordCount: number, byteSize: number }, shardRecords = Infinity): Promise<string> {
  const shards: string[] = []
  let first: CID | undefined
  for (let i = 0; i < lines.length || i === 0; i += shardRecords) {
    const shard = new TextEncoder().encode(lines.slice(i, i + shardRecords).map(l => JSON.stringify({ text: l }) + '\n').join(''))
    const id = shardCid(shard)
    await helia.blockstore.put(id, shard)
    first ??= id
    shards.push(id.toString())
  }
  const cid = CID.create(1, 0x71, (first as CID).multihash).toString()
  await db.contributions.put(cid, {
    cid, datanet: d.id, contribution: { shards, ...declared }, status, score: 100, receivedAt: 1, decidedAt: 1, origin: 'gossip', version: null,
    facts: null
  })
  for (const w of signers) {
    const verdict = await signVerdict(w, binding, { datanet: d.id, contribution: CID.parse(cid), validator: w.address, accept: true, score: 100, reasons: [], timestamp: 1 })
    await db.verdicts.put({ contribution: cid, validator: w.address, accept: true, score: 100, reasons: [], timestamp: 1, signature: toHex(verdict.signature), bytes: toHex(encodeVerdict(verdict)) })
  }
  return cid
}
