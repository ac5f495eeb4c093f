/**
 * A served range of versions is checked as a whole before catch-up uses any of it
 * (src/consensus/range.ts, node/services/consensus/catch-up.ts), its certificates' signatures
 * in one batch (src/codec/signer.ts verifyBatch). The attacks: a range whose last
 * certificate is valid but whose middle was swapped (the parent link breaks), a range with
 * a bad certificate, a range that crosses a validator-set change with the old set's
 * certificates. Each is refused whole, its peer penalised, nothing applied.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { randomBytes } from 'node:crypto'
import { Wallet, hexlify } from 'ethers'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { signingDomain } from '../../src/codec/eip712.ts'
import { forgetSigners, recoverSigner, verifyBatch, type SignedDigest } from '../../src/codec/signer.ts'
import { checkRange, type RangeVersion } from '../../src/consensus/range.ts'
import { ZERO32, encodeVersion, headerOf, validatorSetHash, versionValue, voteDigest, type VersionValue } from '../../src/consensus/version.ts'
import type { ValidatorSet } from '../../src/datanet/manifest.ts'
import { CatchUp, type RangeItem } from '../../node/services/consensus/catch-up.ts'
import type { DatanetVersions } from '../../node/services/consensus/versions.ts'
import type { SyncedVersion, VersionSync } from '../../src/network/version-sync.ts'
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
const weight = (): bigint => BigInt(hexlify(randomBytes(16)))
const verify = (s: readonly SignedDigest[]): boolean => verifyBatch(s, weight)

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

test('verifyBatch agrees with recoverSigner: all good is true; one bad signature among many, or a flipped recovery bit, is false', () => {
  forgetSigners()
  const items: SignedDigest[] = []
  for (let i = 0; i < 100; i++) {
    const w = oldKeys[i % 4] as Wallet
    const digest = hexlify(randomBytes(32))
    items.push({ digest, signature: w.signingKey.sign(digest).serialized, signer: w.address })
  }
  assert.ok(verify(items), 'all good (the first of each signer recovered, the rest in the batch)')
  for (const it of items) assert.is(recoverSigner(it.digest, it.signature, it.signer), it.signer)
  forgetSigners()
  // warm the keys, then fresh signatures so none is memoized: every one goes through the batch
  for (const w of oldKeys) { const d = hexlify(randomBytes(32)); recoverSigner(d, w.signingKey.sign(d).serialized, w.address) }
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
  assert.equal(checkRange(await chain(32), options()), { usable: 32 })
  assert.equal(checkRange(await chain(32, 20), options(20)), { usable: 32 }, 'heights 21.. certified by the new set')
  // the set of heights past 25 is not known here yet: they wait, nothing is refused
  const range = await chain(32)
  assert.equal(checkRange(range, { ...options(), setFor: h => (h > 25 ? undefined : OLD) }), { usable: 25 })
})

test('attack: the last certificate is valid, but a version in the middle was swapped: the link breaks and the range is refused', async () => {
  const range = await chain(32)
  // another version at height 10, even one carrying a valid certificate (only a quorum that
  // equivocates could sign one): version 11 does not link to it
  range[9] = certify(await next(range[8]!.value, OLD, 'forged'), oldKeys.slice(0, 3))
  const got = checkRange(range, options())
  assert.equal(got, { problem: 'does not link to the version before it', height: 11 })
  // altered without a certificate of its own: refused as well
  const altered = await chain(32)
  const swapped = await next(altered[8]!.value, OLD, 'forged')
  altered[9] = { ...altered[9]!, value: swapped }
  assert.ok(checkRange(altered, options()).problem !== undefined)
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
    const got = checkRange(range, options())
    assert.ok(got.problem !== undefined, name)
  }
})

test('attack: a range crossing a set change, certified past it by the old set, is refused', async () => {
  // the old set goes on signing heights the new set decides (as if nothing changed)
  const stale = await chain(32)
  assert.ok(checkRange(stale, options(20)).problem !== undefined, 'old set\'s certificates past the change')
  // naming the new set but certified by the old one
  const range = await chain(32, 20)
  range[25] = certify(range[25]!.value, oldKeys.slice(0, 3))
  const got = checkRange(range, options(20))
  assert.ok(got.problem !== undefined)
})

/** CatchUp over a fake peer serving `range`: what was applied, and who was penalised. */
async function catchUpFrom (served: SyncedVersion[]): Promise<{ applied: number[], penalised: string[] }> {
  const peer = '12D3KooWPe1ABz6gRTuXmoeZvQiWMGPmma3sbp9RQn15QP5VPJ1S'
  const applied: number[] = []
  const penalised: string[] = []
  const state = { nextHeight: 1, last: undefined as { cid: string } | undefined }
  let asked = 0
  const sync = { request: async (_: unknown, r: { from: number, to: number }) => { asked++; return served.filter(s => { const h = s.round as number; return h >= r.from && h <= r.to }).map(s => ({ ...s, round: 0 })) } } as unknown as VersionSync
  // served[i].round carries the height for the fake's filter (set back to 0 when served)
  const catchUp = new CatchUp({
    sync, helia: { blockstore: { has: async () => true } } as never, versions: state as unknown as DatanetVersions, domain, datanet: DATANET, logger,
    setFor: () => OLD, peers: () => [peer],
    onQueue: async task => await task(),
    applyRange: async (items: readonly RangeItem[]) => {
      for (const i of items) applied.push(i.value.version.height)
      const last = items[items.length - 1]!
      state.nextHeight = last.value.version.height + 1
      state.last = { cid: last.value.cid.toString() }
      return items.length
    },
    penalise: p => { penalised.push(p) }
  })
  catchUp.request()
  await waitFor(async () => asked > 0 && (penalised.length > 0 || applied.length === served.length) ? true : undefined, { timeoutMs: 10_000, what: 'catch-up to finish or refuse' })
  return { applied, penalised }
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

test.run()
