/**
 * What tallies cost a height: a datanet whose fees have reached `accounts` contributors
 * makes `heights` versions without inference events after the one that paid them, each
 * built by a proposer, checked by a validator and finalized by both
 * (node/services/consensus/versions.ts over level stores).
 *
 * Baseline, measured in the same run: the tally work each height did until 2026-12-07 —
 * per node, the tallies read and decoded for the build or check and again to finalize, the
 * tree of every account built (by the proposer to build, by the validator to check), and
 * a copy of every account encoded and stored.
 *
 * Usage: scripts/run.sh node scripts/bench/version-tallies.ts [accounts=10000] [heights=20]
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 as sha256Hasher } from 'multiformats/hashes/sha2'
import { getBytes, keccak256 } from 'ethers'
import { keccak } from '../../src/codec/hash.ts'
import { tallyRoot, talliesFromJSON, talliesToJSON, type Tallies } from '../../src/attribution/tallies.ts'
import { StateDatabase, type InferenceEntry } from '../../src/storage/state-db.ts'
import { DatanetVersions, type InferenceSource } from '../../node/services/consensus/versions.ts'
import { createLogger } from '../../node/logger.ts'
import { binding, contribution, datanet, memoryHelia, wallets } from '../../test/helpers/versions-world.ts'

const accounts = Number(process.argv[2] ?? 10_000)
const heights = Number(process.argv[3] ?? 20)
const logger = createLogger({ level: 'silent', format: 'json' })

const d = await datanet()
const helia = memoryHelia()
const shares = Array.from({ length: accounts }, (_, i) => ({ address: '0x' + (i + 1).toString(16).padStart(40, '0'), amount: String(1000 + i) }))
const cid = CID.create(1, raw.code, await sha256Hasher.digest(new TextEncoder().encode('event'))).toString()
const live: InferenceEntry[] = []
const source: InferenceSource = {
  pending: async () => live.filter(e => e.included === null),
  ensure: async (_d, c) => live.find(e => e.cid === c),
  markIncluded: async (cids, height) => { for (const e of live) if (cids.includes(e.cid)) e.included = height }
}
const dir = mkdtempSync(join(tmpdir(), 'bench-version-tallies-'))
const stores = [new StateDatabase(join(dir, 'proposer')), new StateDatabase(join(dir, 'validator'))]
try {
  for (const db of stores) await db.open()
  const [proposer, validator] = stores.map(db => new DatanetVersions({ db, helia, binding, logger, inferences: source }, d, logger)) as [DatanetVersions, DatanetVersions]
  for (const v of [proposer, validator]) await v.load()
  let eventMs = 0
  const perHeight: number[] = []
  for (let h = 1; h <= heights + 2; h++) {
    if (h === 2) live.push({ cid, datanet: d.id, eventId: '0x' + '11'.repeat(32), model: 'm', version: 1, operator: wallets[0]!.address, nonce: '1', fee: '1', shares, resultHash: '0x', receivedAt: 1, included: null })
    for (const [i, db] of stores.entries()) await contribution(db, helia, d, [`line ${h}`], i === 0 ? wallets.slice(0, 3) : [])
    const t = performance.now()
    const value = await proposer.build(h, d.validators, wallets[0]!.address, h)
    if (value === undefined) throw new Error(`nothing to build at ${h}`)
    const why = await validator.problem(value, d.validators)
    if (why !== undefined) throw new Error(`version ${h}: ${why}`)
    for (const v of [proposer, validator]) await v.finalize(0, value, [], h)
    const ms = performance.now() - t
    if (h === 2) eventMs = ms
    if (h > 2) perHeight.push(ms)
  }
  // the baseline's per-height work, on the same tallies
  const json = talliesToJSON(talliesFromJSON((await stores[0]!.tallies.at(d.id, 2))?.tallies ?? []))
  const bytes = Buffer.byteLength(JSON.stringify(json))
  let t = performance.now()
  const tallies: Tallies = talliesFromJSON(JSON.parse(JSON.stringify(json)))
  const decodeMs = performance.now() - t
  t = performance.now()
  tallyRoot(tallies)
  const treeMs = performance.now() - t
  t = performance.now()
  JSON.stringify(talliesToJSON(tallies))
  const encodeMs = performance.now() - t
  const baselineMs = 2 * (2 * decodeMs) + 2 * treeMs + 2 * encodeMs
  // keccak of 64 bytes, as the tree hashes (3 a leaf): ethers' (the tree's until 2026-12-07) and @noble/hashes'
  const block = new Uint8Array(64).fill(7)
  const n = 50_000
  t = performance.now()
  for (let i = 0; i < n; i++) getBytes(keccak256(block))
  const ethersUs = (performance.now() - t) * 1000 / n
  t = performance.now()
  for (let i = 0; i < n; i++) keccak(block)
  const nobleUs = (performance.now() - t) * 1000 / n
  perHeight.sort((a, b) => a - b)
  const median = perHeight[Math.floor(perHeight.length / 2)] as number
  const f = (ms: number): string => `${ms.toFixed(1)} ms`
  console.log(`node ${process.version}; tallies of ${accounts.toLocaleString('en')} accounts; ${heights} heights without events after the one that paid them (a proposer and a validator)`)
  console.log(`baseline  tally work a height paid until 2026-12-07: ${f(baselineMs)} (2 trees of ${f(treeMs)}, 4 decodes of ${f(decodeMs)}, 2 copies of ${(bytes / 1024).toFixed(0)} KB stored, ${f(encodeMs)} each)`)
  console.log(`now       a height without events, all of it (build, check, finalize ×2): median ${f(median)} — ${(baselineMs / median).toFixed(1)}× less than the baseline's tally work alone; tallies stored: 0 bytes`)
  console.log(`          the height with the event (one tree, one copy stored by each): ${f(eventMs)}`)
  console.log(`keccak    64 B: ethers ${ethersUs.toFixed(2)} µs, @noble/hashes ${nobleUs.toFixed(2)} µs (${(ethersUs / nobleUs).toFixed(2)}×)`)
} finally {
  for (const db of stores) await db.close()
  rmSync(dir, { recursive: true, force: true })
}
