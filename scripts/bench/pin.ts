/**
 * Pinning a final version (node/services/consensus/versions.ts `finalize`): the version
 * block alone (what the node does) beside the same run's recursive pin (what it did until
 * 2026-12-05), on Helia over the node's stores (flat-file blocks, level datastore).
 *
 * Each height adds a version linking its parent and C contributions, each linking one
 * 1 KB shard; contributions are pinned on their own first, as the node does. A recursive
 * pin walks the whole history through the parent links and rewrites every block's pin
 * record, so its cost grows with the height; the block alone does not.
 *
 * Then the contributions a caught-up range vouches for (catch-up.ts): R contributions of one
 * 1 KB shard pinned in one `pinMany` (Helia's records, read at once and written in one
 * batch: what the node does) beside the same run's Helia `pins.add` one contribution after
 * the other (~7 datastore operations each: what it did until 2026-12-06), in fresh stores.
 *
 * Usage: scripts/run.sh node scripts/bench/pin.ts [heights=40] [contributions=64] [range=1024]
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as dagCbor from '@ipld/dag-cbor'
import { FsBlockstore } from 'blockstore-fs'
import { LevelDatastore } from 'datastore-level'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import type { Helia } from '@helia/interface'
import type { HeliaInit } from 'helia'
import { pin, pinMany } from '../../node/services/blocks.ts'

const heights = Number(process.argv[2] ?? 40)
const perVersion = Number(process.argv[3] ?? 64)
const rangeSize = Number(process.argv[4] ?? 1024)

const heliaModule = new URL('./helia.js', import.meta.resolve('helia')).href
const { Helia: HeliaClass } = await import(heliaModule) as { Helia: new (init: HeliaInit & { name: string, version: string }) => Helia }

async function store (dir: string): Promise<{ helia: Helia, close: () => Promise<void> }> {
  const blockstore = new FsBlockstore(join(dir, 'blocks'))
  const datastore = new LevelDatastore(join(dir, 'datastore'))
  await blockstore.open()
  await datastore.open()
  const helia = new HeliaClass({ name: 'bench', version: '0', blockstore, datastore, codecs: [dagCbor, raw] })
  return { helia, close: async () => { await blockstore.close(); await datastore.close() } }
}

async function put (helia: Helia, codec: number, bytes: Uint8Array): Promise<CID> {
  const cid = CID.createV1(codec, await sha256.digest(bytes))
  await helia.blockstore.put(cid, bytes)
  return cid
}

/** Builds the chain in a fresh store, pinning each version with `depth`; ms per version pin, by height. */
async function run (depth: number | undefined): Promise<number[]> {
  const dir = mkdtempSync(join(tmpdir(), 'datanet-bench-pin-'))
  const { helia, close } = await store(dir)
  const times: number[] = []
  try {
    let parent: CID | null = null
    for (let h = 1; h <= heights; h++) {
      const contributions: CID[] = []
      for (let c = 0; c < perVersion; c++) {
        const shard = await put(helia, raw.code, new TextEncoder().encode(`{"text":"height ${h} contribution ${c} ${'x'.repeat(1000)}"}\n`))
        const contribution = await put(helia, dagCbor.code, dagCbor.encode({ height: h, index: c, shards: [shard] }))
        await pin(helia, contribution)
        contributions.push(contribution)
      }
      const version: CID = await put(helia, dagCbor.code, dagCbor.encode({ height: h, parent, contributions }))
      const t0 = performance.now()
      await pin(helia, version, undefined, depth)
      times.push(performance.now() - t0)
      parent = version
    }
  } finally {
    await close()
    rmSync(dir, { recursive: true, force: true })
  }
  return times
}

const alone = await run(0)
const recursive = await run(undefined)
const at = (t: number[], h: number): string => (t[h - 1] as number).toFixed(1)
const sum = (t: number[]): number => t.reduce((a, b) => a + b, 0)
console.log(`node ${process.version}; ${heights} versions of ${perVersion} contributions (1 shard each)`)
for (const h of [1, Math.ceil(heights / 4), Math.ceil(heights / 2), heights]) {
  console.log(`height ${String(h).padStart(3)}: version pinned alone ${at(alone, h)} ms; baseline recursive pin ${at(recursive, h)} ms (ratio ${(Number(at(recursive, h)) / Math.max(0.01, Number(at(alone, h)))).toFixed(0)}×)`)
}
console.log(`all ${heights} versions: alone ${sum(alone).toFixed(0)} ms, recursive ${sum(recursive).toFixed(0)} ms (ratio ${(sum(recursive) / Math.max(0.01, sum(alone))).toFixed(0)}×)`)

/** Pins `rangeSize` fresh contributions in a fresh store, by `how`; ms in all. */
async function range (how: 'batch' | 'helia'): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'datanet-bench-pin-'))
  const { helia, close } = await store(dir)
  try {
    const contributions: CID[] = []
    for (let c = 0; c < rangeSize; c++) {
      const shard = await put(helia, raw.code, new TextEncoder().encode(`{"text":"range contribution ${c} ${'x'.repeat(1000)}"}\n`))
      contributions.push(await put(helia, dagCbor.code, dagCbor.encode({ index: c, shards: [shard] })))
    }
    const t0 = performance.now()
    if (how === 'batch') {
      await pinMany(helia, contributions)
    } else {
      for (const cid of contributions) for await (const _ of helia.pins.add(cid)) { /* drain */ }
    }
    return performance.now() - t0
  } finally {
    await close()
    rmSync(dir, { recursive: true, force: true })
  }
}

const batched: number[] = []
const oneByOne: number[] = []
for (let i = 0; i < 3; i++) {
  batched.push(await range('batch'))
  oneByOne.push(await range('helia'))
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[1] as number
console.log(`a range's ${rangeSize} contributions (1 shard each), medians of 3 alternating: one pinMany ${median(batched).toFixed(0)} ms (${(rangeSize / median(batched) * 1000).toFixed(0)} contributions/s); baseline Helia pins.add one after the other ${median(oneByOne).toFixed(0)} ms (${(rangeSize / median(oneByOne) * 1000).toFixed(0)}/s; ratio ${(median(oneByOne) / median(batched)).toFixed(1)}×)`)
