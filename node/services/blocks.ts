import type { Helia } from '@helia/interface'
import type { CID } from 'multiformats/cid'

/** A whole block's bytes (Helia 7's blockstore yields chunks). */
export async function getBlock (helia: Helia, cid: CID, options: { signal?: AbortSignal, offline?: boolean } = {}): Promise<Uint8Array> {
  const chunks: Uint8Array[] = []
  for await (const chunk of helia.blockstore.get(cid, options)) chunks.push(chunk)
  return chunks.length === 1 ? chunks[0] as Uint8Array : Buffer.concat(chunks)
}

/**
 * Pins a DAG (and fetches what is missing of it); Helia's pin is a generator to drain.
 * `depth` 0 pins the block alone: Helia walks every block it reaches and rewrites each
 * one's pin record, so a block whose links are pinned on their own (a version's parent and
 * contributions) must not walk them again.
 */
export async function pin (helia: Helia, cid: CID, signal?: AbortSignal, depth?: number): Promise<void> {
  if (await helia.pins.isPinned(cid, { signal })) return
  for await (const _ of helia.pins.add(cid, { signal, ...(depth === undefined ? {} : { depth }) })) { /* walk the DAG */ }
}

/**
 * Fetches blocks ahead of the reader: up to `concurrency` in flight, read back in order.
 * Bitswap asks every connected peer, so a contribution's shards come from whoever has them.
 */
export function prefetcher (helia: Helia, cids: readonly CID[], concurrency: number, signal: AbortSignal): (cid: CID) => Promise<Uint8Array> {
  const inflight = new Map<string, Promise<Uint8Array>>()
  let next = 0
  const fill = (): void => {
    while (next < cids.length && inflight.size < concurrency) {
      const cid = cids[next++] as CID
      const p = getBlock(helia, cid, { signal })
      p.catch(() => {})
      inflight.set(cid.toString(), p)
    }
  }
  return async (cid: CID): Promise<Uint8Array> => {
    fill()
    const key = cid.toString()
    const p = inflight.get(key) ?? getBlock(helia, cid, { signal })
    try {
      return await p
    } finally {
      inflight.delete(key)
      fill()
    }
  }
}
