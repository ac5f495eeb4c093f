/**
 * Building and checking a proposed version (DESIGN §4 flow 3), behind small ports, so the
 * node and the simulator judge proposals with the same rules:
 *
 *  - a contribution is included with an accept certificate: accept verdicts, one per
 *    member of the validator set *of the including height*, holding >= 2/3 of its stake.
 *    Acceptance is re-judged against that set: verdicts of validators that left or were
 *    slashed do not count (and a certificate carrying one is invalid), so a contribution
 *    accepted under an earlier set waits until the current members' verdicts reach quorum;
 *  - the dataset root and record count recompute from the parent's tree and the included
 *    contributions' records (records already in the dataset are skipped);
 *  - the attribution root and total recompute from the parent's tallies and the included
 *    events' shares.
 */
import { CID } from 'multiformats/cid'
import { bytesEqual, bytesKey } from '../codec/hash.ts'
import { decodeVerdict, type Verdict } from '../contribution/verdict.ts'
import { stakeOf, type ValidatorSet } from '../datanet/manifest.ts'
import { MerkleFrontier } from '../merkle/tree.ts'
import { EMPTY_TALLY_ROOT, addShares, tallyRoot, totalOf, type Tallies } from '../attribution/tallies.ts'
import { hasTwoThirds } from './quorum.ts'
import { validatorSetHash, type Version } from './version.ts'

/** Contributions per version, at most: keeps a proposal well inside one gossip message. */
export const MAX_CONTRIBUTIONS = 64
/** Inference events per version, at most. */
export const MAX_INFERENCES = 256
/**
 * Records and bytes a version adds, at most, unless it holds one contribution (which cannot
 * be split): every node finalizes and indexes a version in one piece (one synced batch, one
 * index segment), so its memory grows with the version. Four accepted contributions of
 * 25,000 records of ~120 B made one version of 100,000 records, and it took every node's
 * 256 MB heap over the edge at the same point, again at each restart (scripts/bench/big.ts).
 * A contribution larger than these (a manifest allows up to its own limits) goes alone, and
 * its version is still finalized in one piece (README, "Faults and attacks": left open).
 */
export const MAX_VERSION_RECORDS = 50_000
export const MAX_VERSION_BYTES = 16 * 1024 * 1024

/** What a contribution declares of its size (signed, and checked against its records by validators). */
export interface ContributionSize { recordCount: number, byteSize: number }

/** Why contributions of these sizes do not fit one version, or undefined when they do. */
export function versionSizeProblem (sizes: readonly ContributionSize[]): string | undefined {
  if (sizes.length <= 1) return undefined
  let records = 0
  let bytes = 0
  for (const s of sizes) { records += s.recordCount; bytes += s.byteSize }
  if (records > MAX_VERSION_RECORDS) return `${records} records: a version of several contributions adds at most ${MAX_VERSION_RECORDS}`
  if (bytes > MAX_VERSION_BYTES) return `${bytes} bytes: a version of several contributions adds at most ${MAX_VERSION_BYTES}`
  return undefined
}

/** The longest prefix of `ordered` (at most MAX_CONTRIBUTIONS) that fits one version: the first always. */
export function fitVersion<T> (ordered: readonly T[], size: (item: T) => ContributionSize): T[] {
  const out: T[] = []
  let records = 0
  let bytes = 0
  for (const item of ordered) {
    const s = size(item)
    if (out.length >= MAX_CONTRIBUTIONS || (out.length > 0 && (records + s.recordCount > MAX_VERSION_RECORDS || bytes + s.byteSize > MAX_VERSION_BYTES))) break
    out.push(item)
    records += s.recordCount
    bytes += s.byteSize
  }
  return out
}

export interface StoredVerdict { validator: string, accept: boolean, bytes: Uint8Array }

/**
 * The accept certificate of a contribution under `set`: the accept verdicts of members,
 * one per validator, in address order; undefined while their stake is under 2/3.
 */
export function acceptCertificate (set: ValidatorSet, verdicts: readonly StoredVerdict[]): Uint8Array[] | undefined {
  const chosen = new Map<string, Uint8Array>()
  let stake = 0n
  for (const v of verdicts) {
    const key = v.validator.toLowerCase()
    const s = stakeOf(set, v.validator)
    if (!v.accept || s === undefined || chosen.has(key)) continue
    chosen.set(key, v.bytes)
    stake += s
  }
  if (!hasTwoThirds(stake, set.total)) return undefined
  return [...chosen.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([, b]) => b)
}

/**
 * Checks a carried accept certificate: every verdict well-formed, signed by its validator
 * (`signerOf`), an accept of this contribution on this datanet, from distinct members of
 * the set, together >= 2/3 of the stake. Returns the verdicts, or why not.
 */
export function checkAcceptCertificate (
  set: ValidatorSet, datanet: string, contribution: string, certificate: readonly Uint8Array[],
  signerOf: (v: Verdict) => string | undefined
): Verdict[] | string {
  let stake = 0n
  const signers = new Set<string>()
  const out: Verdict[] = []
  for (const bytes of certificate) {
    let verdict: Verdict
    try { verdict = decodeVerdict(bytes) } catch { return 'malformed verdict' }
    const signer = signerOf(verdict)
    if (signer === undefined || signer !== verdict.validator || !verdict.accept || verdict.contribution.toString() !== contribution || verdict.datanet !== datanet) return 'bad verdict'
    const s = stakeOf(set, signer)
    if (s === undefined) return `verdict of ${signer}, not a validator at this height`
    if (signers.has(signer.toLowerCase())) return 'two verdicts of one validator'
    signers.add(signer.toLowerCase())
    stake += s
    out.push(verdict)
  }
  if (!hasTwoThirds(stake, set.total)) return `contribution ${contribution} lacks an accept quorum`
  return out
}

/** What building or checking a version needs to read. */
export interface ProposalPorts {
  /**
   * A contribution's record hashes in order, a shard's at a time (a contribution may hold
   * millions: held at once, they and their copies exhausted a node's heap); throws when they
   * cannot be had.
   */
  recordHashes: (cid: CID) => AsyncIterable<Uint8Array[]>
  /** Which of these record hashes are already in the dataset (final versions). */
  inDataset: (hashes: readonly Uint8Array[]) => Promise<boolean[]>
}

/** What finalization takes from the appends as they happen. */
export interface AppendSink {
  /** Each inner node the appends complete (what finalization stores for proofs). */
  node?: (level: number, index: number, node: Uint8Array) => void
  /**
   * The records just appended, from position `start`, a shard's at a time; when given,
   * `added` is not kept (finalization writes them as they come, in bounded pieces).
   */
  records?: (hashes: Uint8Array[], start: number) => Promise<void>
}

/**
 * The parent's tree extended by the contributions' new records (duplicates skipped), and
 * those records unless `sink.records` takes them.
 */
export async function appendRecords (parent: MerkleFrontier, cids: readonly CID[], ports: ProposalPorts, sink: AppendSink = {}): Promise<{ tree: MerkleFrontier, added: Uint8Array[] }> {
  const tree = parent.clone()
  const seen = new Set<string>()
  const added: Uint8Array[] = []
  for (const cid of cids) {
    for await (const hashes of ports.recordHashes(cid)) {
      const known = await ports.inDataset(hashes)
      const start = tree.size
      const chunk: Uint8Array[] = []
      hashes.forEach((h, i) => {
        const key = bytesKey(h)
        if (known[i] === true || seen.has(key)) return
        seen.add(key)
        tree.append(h, sink.node)
        chunk.push(h)
      })
      if (sink.records !== undefined) {
        if (chunk.length > 0) await sink.records(chunk, start)
      } else {
        for (const h of chunk) added.push(h)
      }
    }
  }
  return { tree, added }
}

/** The cumulative tallies after the events' shares: one copy of the accounts for all of them, not one an event. */
export function talliesAfter (parent: Tallies, events: ReadonlyArray<{ shares: ReadonlyArray<{ address: string, amount: string }> }>): Tallies {
  if (events.length === 0) return parent
  return addShares(parent, events.flatMap(e => e.shares.map(s => ({ address: s.address, amount: BigInt(s.amount) }))))
}

/** What a version carries of its tallies: their root (the tree claims are proved against) and total. */
export interface Attribution { root: Uint8Array, total: string }

/** The attribution before any event. */
export const NO_ATTRIBUTION: Attribution = { root: EMPTY_TALLY_ROOT, total: '0' }

/** The attribution of `tallies`: a tree of every account, O(accounts). */
export function attributionOf (tallies: Tallies): Attribution {
  return { root: tallyRoot(tallies), total: totalOf(tallies).toString() }
}

/** The structural checks of a proposed version that need no I/O; undefined when it passes them. */
export function versionShapeProblem (v: Version, expect: { datanet: string, height: number, parent: string | null, set: ValidatorSet }): string | undefined {
  if (v.datanet !== expect.datanet || v.height !== expect.height) return 'datanet or height'
  if ((v.parent?.toString() ?? null) !== expect.parent) return 'parent'
  if (!bytesEqual(v.validatorSetHash, validatorSetHash(expect.set.validators))) return 'validator set'
  if (v.rejected.length !== 0) return 'rejected'
  if ((v.contributions.length === 0 && v.inferences.length === 0) || v.contributions.length > MAX_CONTRIBUTIONS || v.inferences.length > MAX_INFERENCES) return 'contribution or inference count'
  // contributions in the proposer's order, each once: a record in two of them belongs to the
  // first, so an honest proposer lists them as it accepted them (a CID, which its author can
  // grind, decides nothing)
  const included = new Set<string>()
  for (const c of v.contributions) {
    const cid = c.cid.toString()
    if (included.has(cid)) return 'a contribution twice'
    included.add(cid)
  }
  let previous = ''
  for (const c of v.inferences) {
    const cid = c.toString()
    if (cid <= previous) return 'inference events not sorted'
    previous = cid
  }
  return undefined
}

/**
 * Whether the version's roots are what the parent and its content give: `attribution` is
 * that of the tallies after its events (its parent's own when it has none).
 */
export function rootsProblem (v: Version, built: { tree: MerkleFrontier }, attribution: Attribution): string | undefined {
  if (!bytesEqual(v.attributionRoot, attribution.root) || v.totalAttributed !== attribution.total) return 'attribution root does not recompute'
  if (!bytesEqual(built.tree.root(), v.datasetRoot) || built.tree.size !== v.recordCount) return 'dataset root'
  return undefined
}
