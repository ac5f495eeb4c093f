/**
 * A served range of versions is checked as a whole before catch-up uses any of it
 * (src/consensus/range.ts, node/services/consensus/catch-up.ts), its certificates' signatures
 * together (src/codec/signer.ts verifyAll). The attacks: a range whose last
 * certificate is valid but whose middle was swapped (the parent link breaks), a range with
 * a bad certificate, a range that crosses a validator-set change with the old set's
 * certificates. Each is refused whole, its peer penalised, nothing applied.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { randomBytes } from 'node:crypto'
import { Wallet, hexlify } from 'ethers'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { signingDomain } from '../../src/codec/eip712.ts'
import { forgetSigners, recoverSigner, verifyAll, type SignedDigest } from '../../src/codec/signer.ts'
import { checkRange, rangePieces, type RangeVersion } from '../../src/consensus/range.ts'
import { MAX_VERSION_RECORDS } from '../../src/consensus/proposal.ts'
import { ZERO32, encodeVersion, headerOf, validatorSetHash, versionValue, voteDigest, type VersionValue } from '../../src/consensus/version.ts'
import type { ValidatorSet } from '../../src/datanet/manifest.ts'
import { contributionCid, encodeContribution, signContribution } from '../../src/contribution/contribution.ts'
import { CatchUp, type CatchUpOptions, type RangeItem } from '../../node/services/consensus/catch-up.ts'
import type { DatanetVersions } from '../../node/services/consensus/versions.ts'
import { MAX_BLOCK_BYTES_PER_RESPONSE, type SyncedVersion, type VersionSync } from '../../src/network/version-sync.ts'
import { createLogger } from '../../node/logger.ts'
import { waitFor } from '../helpers/wait.ts'

const DATANET = 'bafyreiecjjj7nbmvo3o5ev7bcg5v4bcgahhswmhwi25tzkf5lwky4dc76e'
const domain = signingDomain({ chainId: 31337, registry: null }, DATANET)
const logger = createLogger({ level: 'silent', format: 'json' })
const oldKeys = Array.from({ length: 4 }, (_, i) => new Wallet('0x' + (i + 21).toString(16).padStart(64, '0')))
const newKeys = Array.from({ length: 4 }, (_, i) => new Wallet('0x' + (i + 41).toString(16).padStart(64, '0')))
const setOf = (ws: Wallet[]): ValidatorSet => ({ validators: ws.map(w => ({ address: w.address, stake: 100n })), total: BigInt(ws.length) * 100n })
const OLD = setOf(oldKeys)
const NEW = setOf(newKeys)
const verify = (s: readonly SignedDigest[]): boolean => verifyAll(s)

/** A version after `parent` (a content-only version: no contributions, one inference CID so its shape is a version's). */
async function next (parent: VersionValue | undefined, set: ValidatorSet, salt = ''): Promise<VersionValue> {
  const height = (parent?.version.height ?? 0) + 1
  const event = CID.create(1, 0x71, await sha256.digest(new TextEncoder().encode(`event ${height}${salt}`)))
  return await versionValue({
    datanet: DATANET, height, parent: parent?.cid ?? null, contributions: [], rejected: [], inferences: [event],
    datasetRoot: ZERO32, recordCount: 0, attributionRoot: ZERO32, totalAttributed: '0',
    validatorSetHash: validatorSetHash(set.validators), proposer: set.validators[0]!.address, timestamp: height
  })
}

/** Precommits of `signers` over the value's header (3 of 4: a quorum). */
function certify (value: VersionValue, signers: Wallet[], round = 0): RangeVersion {
  const digest = voteDigest(domain, 'precommit', round, headerOf(value))
  return { value, round, certificate: signers.map(w => ({ validator: w.address, signature: w.signingKey.sign(digest).serialized })) }
}

/** A chain of `n` certified versions; heights above `changeAt` are decided by the new set. */
async function chain (n: number, changeAt = Infinity): Promise<RangeVersion[]> {
  const out: RangeVersion[] = []
  let parent: VersionValue | undefined
  for (let i = 0; i < n; i++) {
    const height = i + 1
    const keys = height > changeAt ? newKeys : oldKeys
    parent = await next(parent, height > changeAt ? NEW : OLD)
    out.push(certify(parent, keys.slice(0, 3)))
  }
  return out
}

const options = (changeAt = Infinity): Parameters<typeof checkRange>[1] => ({ datanet: DATANET, domain, setFor: h => (h > changeAt ? NEW : OLD), verify })

test('verifyAll agrees with recoverSigner: all good is true; one bad signature among many, or a flipped recovery bit, is false', () => {
  forgetSigners()
  const items: SignedDigest[] = []
  for (let i = 0; i < 100; i++) {
    const w = oldKeys[i % 4] as Wallet
    const digest = hexlify(randomBytes(32))
    items.push({ digest, signature: w.signingKey.sign(digest).serialized, signer: w.address })
  }
  assert.ok(verify(items), 'all good')
  for (const it of items) assert.is(recoverSigner(it.digest, it.signature), it.signer)
  forgetSigners()
  // warm the keys, then fresh signatures so none is memoized: every one is recovered
  for (const w of oldKeys) { const d = hexlify(randomBytes(32)); recoverSigner(d, w.signingKey.sign(d).serialized) }
  const fresh = items.map((it, i) => { const w = oldKeys[i % 4] as Wallet; const digest = hexlify(randomBytes(32)); return { digest, signature: w.signingKey.sign(digest).serialized, signer: w.address } })
  assert.ok(verify(fresh))
  const otherDigest = fresh.map((it, i) => i === 57 ? { ...it, digest: hexlify(randomBytes(32)) } : it)
  assert.not.ok(verify(otherDigest), 'a signature over another digest')
  const otherSigner = fresh.map((it, i) => i === 3 ? { ...it, signer: oldKeys[0]!.address } : it)
  assert.not.ok(verify(otherSigner), 'a signature named as another known signer\'s')
  const flipped = fresh.map((it, i) => {
    if (i !== 10) return it
    const v = parseInt(it.signature.slice(-2), 16)
    return { ...it, signature: it.signature.slice(0, -2) + (v === 27 ? '1c' : '1b') }
  })
  assert.not.ok(verify(flipped), 'the recovery bit flipped: recovers to someone else')
  const garbage = fresh.map((it, i) => i === 20 ? { ...it, signature: '0x' + 'ab'.repeat(65) } : it)
  assert.not.ok(verify(garbage), 'a malformed signature')
  const unknown = Wallet.createRandom()
  const d = hexlify(randomBytes(32))
  assert.not.ok(verify([...fresh, { digest: d, signature: unknown.signingKey.sign(d).serialized, signer: oldKeys[1]!.address }]), 'an unknown key\'s signature named as a known signer\'s')
})

test('an honest range is usable whole, across a validator-set change too', async () => {
  assert.equal(await checkRange(await chain(32), options()), { usable: 32 })
  assert.equal(await checkRange(await chain(32, 20), options(20)), { usable: 32 }, 'heights 21.. certified by the new set')
  // the set of heights past 25 is not known here yet: they wait, nothing is refused
  const range = await chain(32)
  assert.equal(await checkRange(range, { ...options(), setFor: h => (h > 25 ? undefined : OLD) }), { usable: 25 })
})

test('attack: the last certificate is valid, but a version in the middle was swapped: the link breaks and the range is refused', async () => {
  const range = await chain(32)
  // another version at height 10, even one carrying a valid certificate (only a quorum that
  // equivocates could sign one): version 11 does not link to it
  range[9] = certify(await next(range[8]!.value, OLD, 'forged'), oldKeys.slice(0, 3))
  const got = await checkRange(range, options())
  assert.equal(got, { problem: 'does not link to the version before it', height: 11 })
  // altered without a certificate of its own: refused as well
  const altered = await chain(32)
  const swapped = await next(altered[8]!.value, OLD, 'forged')
  altered[9] = { ...altered[9]!, value: swapped }
  assert.ok((await checkRange(altered, options())).problem !== undefined)
})

test('attack: a bad last certificate (a signature over another round, a non-member, too little stake) refuses the range', async () => {
  for (const [name, forge] of [
    ['a signature over another round', (r: RangeVersion) => ({ ...r, certificate: [...(r.certificate as Array<{ validator: string, signature: string }>).slice(0, 2), ...(certify(r.value, [oldKeys[2]!], 1).certificate as unknown[])] })],
    ['a non-member', (r: RangeVersion) => ({ ...r, certificate: [...(r.certificate as unknown[]).slice(0, 2), ...certify(r.value, [newKeys[0]!]).certificate as unknown[]] })],
    ['under 2/3 of the stake', (r: RangeVersion) => ({ ...r, certificate: (r.certificate as unknown[]).slice(0, 2) })],
    ['one signature twice', (r: RangeVersion) => ({ ...r, certificate: [...(r.certificate as unknown[]).slice(0, 2), (r.certificate as unknown[])[1]] })]
  ] as const) {
    const range = await chain(32)
    range[31] = forge(range[31]!)
    const got = await checkRange(range, options())
    assert.ok(got.problem !== undefined, name)
  }
})

test('attack: a range crossing a set change, certified past it by the old set, is refused', async () => {
  // the old set goes on signing heights the new set decides (as if nothing changed)
  const stale = await chain(32)
  assert.ok((await checkRange(stale, options(20))).problem !== undefined, 'old set\'s certificates past the change')
  // naming the new set but certified by the old one
  const range = await chain(32, 20)
  range[25] = certify(range[25]!.value, oldKeys.slice(0, 3))
  const got = await checkRange(range, options(20))
  assert.ok(got.problem !== undefined)
})

/** A block store in memory, counting what was put (the served blocks), for CatchUp's `helia`. */
function memoryBlocks (): { helia: never, stored: Map<string, Uint8Array> } {
  const stored = new Map<string, Uint8Array>()
  const blockstore = {
    has: async (cid: CID) => stored.has(cid.toString()),
    put: async (cid: CID, bytes: Uint8Array) => { stored.set(cid.toString(), bytes); return cid },
    putMany: async function * (blocks: Iterable<{ cid: CID, bytes: Uint8Array }>) { for (const { cid, bytes } of blocks) { stored.set(cid.toString(), bytes); yield cid } },
    get: async function * (cid: CID) { const b = stored.get(cid.toString()); if (b === undefined) throw new Error('not here'); yield b }
  }
  return { helia: { blockstore } as never, stored }
}

/** CatchUp over a fake peer serving `range` (and `blocks` of each height with it): what was applied, who was penalised, what was stored. */
async function catchUpFrom (served: SyncedVersion[], blocks: Map<number, Uint8Array[]> = new Map(), setFor: (height: number) => ValidatorSet | undefined = () => OLD, direct?: CatchUpOptions['blocks']): Promise<{ applied: number[], penalised: string[], stored: Map<string, Uint8Array>, batches: number[][] }> {
  const peer = '12D3KooWPe1ABz6gRTuXmoeZvQiWMGPmma3sbp9RQn15QP5VPJ1S'
  const applied: number[] = []
  const batches: number[][] = []
  const penalised: string[] = []
  const state = { nextHeight: 1, last: undefined as { cid: string } | undefined }
  let asked = 0
  const sync = {
    request: async (_: unknown, r: { from: number, to: number }) => {
      asked++
      const versions = served.filter(s => { const h = s.round as number; return h >= r.from && h <= r.to }).map(s => ({ ...s, round: 0 }))
      // as a peer serves them: the blocks of the versions served
      return { versions, blocks: served.filter(s => { const h = s.round as number; return h >= r.from && h <= r.to }).flatMap(s => blocks.get(s.round as number) ?? []) }
    }
  } as unknown as VersionSync
  // served[i].round carries the height for the fake's filter (set back to 0 when served)
  const { helia, stored } = memoryBlocks()
  const catchUp = new CatchUp({
    sync, helia, versions: state as unknown as DatanetVersions, domain, datanet: DATANET, logger,
    setFor, peers: () => [peer], blocks: direct,
    onQueue: async task => await task(),
    applyRange: async (items: readonly RangeItem[]) => {
      batches.push(items.map(i => i.value.version.height))
      for (const i of items) applied.push(i.value.version.height)
      const last = items[items.length - 1]!
      state.nextHeight = last.value.version.height + 1
      state.last = { cid: last.value.cid.toString() }
      return items.length
    },
    penalise: p => { penalised.push(p) }
  })
  catchUp.request()
  const usable = served.filter(s => setFor(s.round as number) !== undefined).length
  await waitFor(async () => asked > 0 && (penalised.length > 0 || applied.length === usable) ? true : undefined, { timeoutMs: 10_000, what: 'catch-up to finish or refuse' })
  if (penalised.length > 0) await waitFor(async () => applied.length === usable || undefined, { timeoutMs: 2000, what: 'the range applied' }).catch(() => {})
  return { applied, penalised, stored, batches }
}

const served = (range: RangeVersion[]): SyncedVersion[] => range.map(r => ({ version: encodeVersion(r.value.version), round: r.value.version.height, certificate: r.certificate as SyncedVersion['certificate'] }))

test('catch-up applies an honest range of 40 versions, and refuses a forged one whole, penalising its peer', async () => {
  const honest = await catchUpFrom(served((await chain(40)).map(r => certify(r.value, oldKeys.slice(0, 3)))))
  assert.equal(honest.applied, Array.from({ length: 40 }, (_, i) => i + 1))
  assert.equal(honest.penalised, [])
  const forged = (await chain(32)).map(r => certify(r.value, oldKeys.slice(0, 3)))
  forged[31] = { ...forged[31]!, certificate: (forged[31]!.certificate as unknown[]).slice(0, 2) }
  const refused = await catchUpFrom(served(forged))
  assert.equal(refused.applied, [], 'nothing of the forged range applied')
  assert.equal(refused.penalised.length, 1)
})

test('catch-up applies a range in pieces of at most MAX_VERSION_RECORDS records, each its own batch (two versions of 50,000 records in one batch took a node\'s heap over the edge)', async () => {
  /** Versions adding `adds[i]` records each, certified. */
  const grown = async (adds: number[]): Promise<RangeVersion[]> => {
    const out: RangeVersion[] = []
    let parent: VersionValue | undefined
    let count = 0
    for (const [i, n] of adds.entries()) {
      count += n
      parent = await versionValue({
        datanet: DATANET, height: i + 1, parent: parent?.cid ?? null, contributions: [], rejected: [], inferences: [],
        datasetRoot: ZERO32, recordCount: count, attributionRoot: ZERO32, totalAttributed: '0',
        validatorSetHash: validatorSetHash(OLD.validators), proposer: OLD.validators[0]!.address, timestamp: i + 1
      })
      out.push(certify(parent, oldKeys.slice(0, 3)))
    }
    return out
  }
  const big = await catchUpFrom(served(await grown([MAX_VERSION_RECORDS, MAX_VERSION_RECORDS, 10, 20, 3 * MAX_VERSION_RECORDS])))
  assert.equal(big.applied, [1, 2, 3, 4, 5])
  assert.equal(big.batches, [[1], [2], [3, 4], [5]], 'each piece adds at most the bound, or is one version alone')
  const small = await catchUpFrom(served(await grown(Array.from({ length: 12 }, () => 10))))
  assert.equal(small.batches, [Array.from({ length: 12 }, (_, i) => i + 1)], 'small versions still go in one batch')
  assert.equal(rangePieces((await grown([30_000, 30_000])), 0).map(p => p.length), [1, 1])
})

/** A signed contribution of `shards` raw blocks: its block, its CID, its shards. */
async function contributionWith (shards: Uint8Array[], n: number): Promise<{ cid: CID, bytes: Uint8Array, shards: Array<{ cid: CID, bytes: Uint8Array }> }> {
  const named = await Promise.all(shards.map(async bytes => ({ cid: CID.createV1(raw.code, await sha256.digest(bytes)), bytes })))
  const c = await signContribution(oldKeys[0]!, { chainId: 31337, registry: null }, {
    datanet: DATANET, contributor: oldKeys[0]!.address, shards: named.map(s => s.cid), recordCount: shards.length, byteSize: shards.reduce((a, b) => a + b.byteLength, 0),
    recordsRoot: new Uint8Array(32), nonce: n, timestamp: n
  })
  const bytes = encodeContribution(c)
  return { cid: await contributionCid(bytes), bytes, shards: named }
}

/** Versions 1…n, each including one of `made`, certified by the old set. */
async function rangeOf (made: ReadonlyArray<{ cid: CID }>): Promise<RangeVersion[]> {
  const range: RangeVersion[] = []
  let parent: VersionValue | undefined
  for (const [i, c] of made.entries()) {
    parent = await versionValue({
      datanet: DATANET, height: i + 1, parent: parent?.cid ?? null, contributions: [{ cid: c.cid, verdicts: [] }], rejected: [], inferences: [],
      datasetRoot: ZERO32, recordCount: 0, attributionRoot: ZERO32, totalAttributed: '0',
      validatorSetHash: validatorSetHash(OLD.validators), proposer: OLD.validators[0]!.address, timestamp: i + 1
    })
    range.push(certify(parent, oldKeys.slice(0, 3)))
  }
  return range
}

test('blocks served with a range are stored when the range vouches for them (contributions and their shards); a block it does not vouch for is dropped and its peer penalised', async () => {
  // two versions, each with one contribution of two shards
  const made = await Promise.all([1, 2].map(async n => await contributionWith([randomBytes(300), randomBytes(500)], n)))
  const range = await rangeOf(made)
  const blocksOf = new Map(made.map((c, i) => [i + 1, [c.bytes, ...c.shards.map(s => s.bytes)]]))
  const honest = await catchUpFrom(served(range), blocksOf)
  assert.equal(honest.applied, [1, 2])
  assert.equal(honest.penalised, [])
  for (const c of made) {
    assert.equal(honest.stored.get(c.cid.toString()), c.bytes, 'the contribution stored under its CID')
    for (const s of c.shards) assert.equal(honest.stored.get(s.cid.toString()), s.bytes, 'each shard stored under its CID')
  }
  // a block no version names, and a shard altered in one byte
  const altered = Uint8Array.from(made[1]!.shards[0]!.bytes)
  altered[0] = altered[0]! ^ 1
  const junk = await catchUpFrom(served(range), new Map([[1, [made[0]!.bytes, randomBytes(200)]], [2, [altered]]]))
  assert.equal(junk.applied, [1, 2], 'the certified range is still used')
  assert.ok(junk.penalised.length >= 1, 'the peer that sent junk is penalised')
  assert.equal(junk.stored.get(made[0]!.cid.toString()), made[0]!.bytes, 'what the range vouches for is kept')
  assert.is(junk.stored.size, 1, 'nothing else is stored')
  // version 2's set is not known here yet: its blocks are not junk (its peer keeps its score) but not stored either, unchecked
  const early = await catchUpFrom(served(range), blocksOf, h => (h === 1 ? OLD : undefined))
  assert.equal(early.applied, [1])
  assert.equal(early.penalised, [])
  assert.ok(early.stored.has(made[0]!.cid.toString()))
  assert.not.ok(early.stored.has(made[1]!.cid.toString()), 'a block of a version not checked yet was stored')
  for (const s of made[1]!.shards) assert.not.ok(early.stored.has(s.cid.toString()))
})

test('blocks a range names and did not bring are asked of the peer that served it (one copy, not one from every peer bitswap asks); forged ones cost it its score and are not stored', async () => {
  // two versions, each one contribution of three shards; the range comes without blocks
  const made = await Promise.all([1, 2].map(async n => await contributionWith([randomBytes(300), randomBytes(400), randomBytes(500)], n)))
  const range = await rangeOf(made)
  const held = new Map<string, Uint8Array>()
  for (const c of made) {
    held.set(c.cid.toString(), c.bytes)
    for (const s of c.shards) held.set(s.cid.toString(), s.bytes)
  }
  // the serving peer: at most two blocks a response (a byte bound), or one shard forged
  const server = (forge?: string): { requests: () => number, blocks: NonNullable<CatchUpOptions['blocks']> } => {
    let requests = 0
    return {
      requests: () => requests,
      blocks: {
        request: async (_peer, cids) => {
          requests++
          const out = cids.map(c => held.get(c.toString()))
          for (let i = 2; i < out.length; i++) out[i] = undefined
          const forged = out.filter((b, i) => b !== undefined && cids[i]!.toString() === forge).length
          return { blocks: out.map((b, i) => cids[i]!.toString() === forge ? undefined : b), forged }
        }
      }
    }
  }
  const honest = server()
  const got = await catchUpFrom(served(range), new Map(), () => OLD, honest.blocks)
  assert.equal(got.applied, [1, 2])
  assert.equal(got.penalised, [])
  assert.is(got.stored.size, 8, 'both contributions and their six shards, from the serving peer')
  for (const [cid, bytes] of held) assert.equal(got.stored.get(cid), bytes)
  assert.ok(honest.requests() >= 4, 'blocks a response left out were asked again')
  const forge = made[1]!.shards[2]!.cid.toString()
  const forging = await catchUpFrom(served(range), new Map(), () => OLD, server(forge).blocks)
  assert.ok(forging.penalised.length >= 1, 'the peer that sent a forged block is penalised')
  assert.not.ok(forging.stored.has(forge), 'the forged block is not stored')
  // without the block protocol the same range's blocks are bitswap's (none here): nothing stored
  const without = await catchUpFrom(served(range))
  assert.is(without.stored.size, 0)
})

test('a peer serves the blocks its versions vouch for when asked, contributions then their shards, within the response budget', async () => {
  // 8 versions, each one contribution of 3 shards of 100 KB: 2.4 MB in all, more than one response carries
  const made = await Promise.all(Array.from({ length: 8 }, async (_, i) => await contributionWith([randomBytes(100_000), randomBytes(100_000), randomBytes(100_000)], i + 1)))
  const { helia } = memoryBlocks()
  const bs = (helia as unknown as { blockstore: { put: (c: CID, b: Uint8Array) => Promise<CID> } }).blockstore
  const entries = new Map<number, { cid: string, round: number, certificate: []; contributions: string[] }>()
  for (const [i, c] of made.entries()) {
    await bs.put(c.cid, c.bytes)
    for (const s of c.shards) await bs.put(s.cid, s.bytes)
    const version = new TextEncoder().encode(`version ${i + 1}`)
    const vcid = CID.createV1(raw.code, await sha256.digest(version))
    await bs.put(vcid, version)
    entries.set(i + 1, { cid: vcid.toString(), round: 0, certificate: [], contributions: [c.cid.toString()] })
  }
  const catchUp = new CatchUp({
    sync: {} as never, helia, versions: { versionAt: async (h: number) => entries.get(h) } as unknown as DatanetVersions, domain, datanet: DATANET, logger,
    setFor: () => OLD, peers: () => [], onQueue: async task => await task(), applyRange: async () => 0
  })
  const plain = await catchUp.serve({ datanet: DATANET, from: 1, to: 8 })
  assert.is(plain.versions.length, 8)
  assert.is(plain.blocks.length, 0, 'no blocks unless asked')
  const withBlocks = await catchUp.serve({ datanet: DATANET, from: 1, to: 8, blocks: true })
  assert.is(withBlocks.versions.length, 8)
  const bytes = withBlocks.blocks.reduce((n, b) => n + b.byteLength, 0)
  assert.ok(bytes <= MAX_BLOCK_BYTES_PER_RESPONSE, `${bytes} bytes of blocks`)
  // in order: each contribution, then its shards, as many whole versions' worth as fit
  const expected = made.flatMap(c => [c.bytes, ...c.shards.map(s => s.bytes)])
  assert.ok(withBlocks.blocks.length >= 16 && withBlocks.blocks.length < expected.length, `${withBlocks.blocks.length} blocks`)
  withBlocks.blocks.forEach((b, i) => { assert.equal(b, expected[i], `block ${i}`) })
})

test.run()
