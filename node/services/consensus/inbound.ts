/**
 * Gossip validation of a datanet's consensus messages: what may reach the driver. Checks
 * run from the message alone (signature, set of the height, bounds on heights and rounds
 * ahead), so gossipsub gets its verdict at once and a flood stops at the first hop.
 */
import { recoverSigner } from '../../../src/codec/signer.ts'
import type { TypedDataDomain } from 'ethers'
import { decodeCbor } from '../../../src/codec/cbor.ts'
import { bytesEqual, toHex } from '../../../src/codec/hash.ts'
import type { ConsensusDriver, DriverInbound, HeightSetup } from '../../../src/consensus/driver.ts'
import { shareDigest, type AnchorShare } from '../../../src/chain/anchor-shares.ts'
import { decodeVersion, proposalDigest, versionValue, voteDigest, voteSigner, type Version } from '../../../src/consensus/version.ts'
import { headerId, unknownKind, voteOfWire, wireProblem, type Wire, type WireShare } from '../../../src/consensus/wire.ts'
import { stakeOf, type ValidatorSet } from '../../../src/datanet/manifest.ts'
import { ignore, reject, type TopicHandler } from '../../../src/network/gossip.ts'
import { datanetTopicScoreParams, topics } from '../../../src/network/topics.ts'

export interface InboundContext {
  datanet: string
  domain: TypedDataDomain
  driver: Pick<ConsensusDriver, 'height' | 'round' | 'limits'>
  setup: (height: number) => HeightSetup | undefined
  setFor: (height: number) => ValidatorSet | undefined
  /** A message far ahead: this node is behind (catch-up). */
  onBehind: () => void
  /** A checked message, for the driver (in order, on the consensus queue). */
  deliver: (msg: DriverInbound) => Promise<void>
  /** A checked anchor share (its ECDSA signature by a validator of the height), for whoever anchors. */
  onShare?: (height: number, share: AnchorShare) => void
  /** The round and header id of the version final here at `height`, if it is. */
  finalAt?: (height: number) => Promise<{ round: number, headerId: string } | undefined>
}

export type InboundMessage = { wire: Wire, inbound?: DriverInbound, share?: { height: number, share: AnchorShare } }

/** Heights below ours an anchor share may be for (anchors land within a few intervals). */
const SHARE_WINDOW = 256
/** Shares a validator may send of one height not final here yet (one honest, one spare). */
const SHARES_AHEAD = 2

/**
 * The handlers of a datanet's consensus topic (proposals and votes) and of its anchor
 * shares' topic; shares from either go through the same checks and bounds.
 */
export function consensusTopicHandlers (c: InboundContext): [consensus: TopicHandler<InboundMessage>, shares: TopicHandler<InboundMessage>] {
  const checkShare = shareChecks(c)
  return [consensusTopicHandler(c, checkShare), {
    topic: topics.shares(c.datanet),
    kind: 'shares',
    scoreParams: datanetTopicScoreParams(),
    decode: (data: Uint8Array) => {
      const msg = decodeWire(data)
      // [REJECT] a proposal or vote on the shares' topic
      if (msg.wire.kind !== 'share') throw reject('CONSENSUS_ERROR_MALFORMED', `a ${msg.wire.kind} on the shares' topic`)
      return msg
    },
    validate: async (msg) => {
      if (msg.wire.kind === 'share') msg.share = await checkShare(msg.wire)
    },
    handle: async (msg) => {
      if (msg.share !== undefined) c.onShare?.(msg.share.height, msg.share.share)
    }
  }]
}

function decodeWire (data: Uint8Array): InboundMessage {
  let wire: Wire
  try { wire = decodeCbor<Wire>(data) } catch { throw reject('CONSENSUS_ERROR_MALFORMED', 'not dag-cbor') }
  // [IGNORE] a kind of a later version than this one: not a fault of its sender
  if (unknownKind(wire)) throw ignore('CONSENSUS_ERROR_UNKNOWN_KIND', 'a kind of message this version does not know')
  const problem = wireProblem(wire)
  // [REJECT] a well-formed proposal, vote or share
  if (problem !== undefined) throw reject('CONSENSUS_ERROR_MALFORMED', problem)
  return { wire }
}

/** Checks of an anchor share from gossip: what may reach the anchors (throws the gossip verdict). */
function shareChecks (c: InboundContext): (wire: WireShare) => Promise<NonNullable<InboundMessage['share']>> {
  const sharesAhead = new Map<string, number>()
  return async (wire) => {
    const current = c.driver.height
    const h = wire.header.height
    // [IGNORE] shares of heights long anchored, or not final anywhere we know of
    if (h < current - SHARE_WINDOW || h > current + c.driver.limits.maxAhead) throw ignore('CONSENSUS_ERROR_STALE', 'share outside the heights kept')
    const set = c.setFor(h)
    if (set === undefined) throw ignore('CONSENSUS_ERROR_SET_UNKNOWN', 'validator set of that height not known yet')
    const bls = toHex(wire.bls)
    let signer: string | undefined
    try { signer = recoverSigner(shareDigest(c.domain, voteDigest(c.domain, 'precommit', wire.round, wire.header), bls), toHex(wire.signature)) } catch { signer = undefined }
    // [REJECT] signed by a validator of the height
    if (signer === undefined || stakeOf(set, signer) === undefined) throw reject('CONSENSUS_ERROR_NOT_VALIDATOR', 'share not signed by a validator')
    const id = headerId(wire.header)
    const final = await c.finalAt?.(h)
    if (final !== undefined) {
      // [REJECT] an honest validator shares only the version final at the height: there is one
      if (id !== final.headerId) throw reject('CONSENSUS_ERROR_SHARE_NOT_FINAL', 'share of a header other than the final one')
      // [IGNORE] the certificate of another round than ours: of no use to this node's anchor
      if (wire.round !== final.round) throw ignore('CONSENSUS_ERROR_SHARE_ROUND', 'share of another round than this node\'s certificate')
    } else {
      // [IGNORE] not final here yet (peers finalize moments apart): a few per validator, not a flood
      const key = `${h}/${signer.toLowerCase()}`
      const n = sharesAhead.get(key) ?? 0
      if (n >= SHARES_AHEAD) throw ignore('CONSENSUS_ERROR_SHARE_FLOOD', 'too many shares of a height not final here')
      if (sharesAhead.size > 4096) sharesAhead.clear()
      sharesAhead.set(key, n + 1)
    }
    return { height: h, share: { validator: signer, round: wire.round, headerId: id, bls } }
  }
}

function consensusTopicHandler (c: InboundContext, checkShare: ReturnType<typeof shareChecks>): TopicHandler<InboundMessage> {
  const ahead = new AheadRounds(c.driver)
  return {
    topic: topics.consensus(c.datanet),
    kind: 'consensus',
    scoreParams: datanetTopicScoreParams(),
    // a peer that joins the datanet's consensus may be ahead: a node that was away asks it
    // for versions as soon as it is reachable, not at the next timer (catch-up throttles)
    onSubscribed: () => { c.onBehind() },
    decode: decodeWire,
    validate: async (msg) => {
      const { wire } = msg
      const current = c.driver.height
      const bytes = wire.kind === 'proposal' ? wire.version.length + 200 : 600
      if (wire.kind === 'proposal') {
        // [IGNORE] not for a height already final or far ahead
        if (wire.height < current) throw ignore('CONSENSUS_ERROR_STALE', 'proposal for a final height')
        if (wire.height > current + c.driver.limits.maxAhead) { c.onBehind(); throw ignore('CONSENSUS_ERROR_AHEAD', 'proposal far ahead') }
        let version: Version
        try { version = decodeVersion(wire.version) } catch (err) { throw reject('CONSENSUS_ERROR_MALFORMED', `proposal: ${(err as Error).message}`) }
        // [REJECT] for this datanet, and about the version it carries
        if (version.datanet !== c.datanet || version.height !== wire.height) throw reject('CONSENSUS_ERROR_WRONG_DATANET', 'proposal for another datanet or height')
        const value = await versionValue(version)
        if (!bytesEqual(value.bytes, wire.version)) throw reject('CONSENSUS_ERROR_MALFORMED', 'version not canonical')
        const setup = c.setup(wire.height)
        // [IGNORE] a height whose validator set the chain has not fixed for us yet
        if (setup === undefined) throw ignore('CONSENSUS_ERROR_SET_UNKNOWN', 'validator set of that height not known yet')
        const proposer = setup.proposer(wire.round)
        let signer: string | undefined
        try { signer = recoverSigner(proposalDigest(c.domain, wire.height, wire.round, wire.validRound, value.id), toHex(wire.signature)) } catch { signer = undefined }
        // [REJECT] signed by the proposer of (height, round)
        if (signer !== proposer) throw reject('CONSENSUS_ERROR_BAD_SIGNATURE', 'proposal not signed by the round\'s proposer')
        // [IGNORE] a proposer's proposals for rounds above ours: a few are kept (the driver's
        // catch-up rounds); the rest are not relayed, so a flood stops at the first hop
        if (!ahead.allowed(wire.height, proposer, wire.round)) throw ignore('CONSENSUS_ERROR_ROUND_AHEAD', 'too many proposals for rounds above ours')
        msg.inbound = { kind: 'proposal', proposal: { height: wire.height, round: wire.round, validRound: wire.validRound, value, proposer }, signature: toHex(wire.signature), bytes }
      } else if (wire.kind === 'share') {
        // from a node of the release before shares had their own topic
        msg.share = await checkShare(wire)
      } else {
        const parsed = voteOfWire(wire)
        if ('code' in parsed) throw reject(parsed.code, parsed.message)
        const h = wire.header.height
        if (h < current) throw ignore('CONSENSUS_ERROR_STALE', 'vote for a final height')
        if (h > current + c.driver.limits.maxAhead) { c.onBehind(); throw ignore('CONSENSUS_ERROR_AHEAD', 'vote far ahead') }
        const set = c.setFor(h)
        if (set === undefined) throw ignore('CONSENSUS_ERROR_SET_UNKNOWN', 'validator set of that height not known yet')
        const signer = voteSigner(c.domain, parsed.signed)
        // [REJECT] signed by a validator of the height
        if (signer === undefined || stakeOf(set, signer) === undefined) throw reject('CONSENSUS_ERROR_NOT_VALIDATOR', 'vote not signed by a validator')
        parsed.vote.validator = signer
        msg.inbound = { kind: 'vote', vote: parsed.signed, bytes }
      }
    },
    handle: async (msg) => {
      if (msg.inbound !== undefined) await c.deliver(msg.inbound)
      if (msg.share !== undefined) c.onShare?.(msg.share.height, msg.share.share)
    }
  }
}

/** Rounds above ours a proposer has proposed in, per height: bounded like the driver's catch-up rounds. */
class AheadRounds {
  private readonly byProposer = new Map<string, Set<number>>()
  private readonly driver: InboundContext['driver']

  constructor (driver: InboundContext['driver']) {
    this.driver = driver
  }

  allowed (height: number, proposer: string, round: number): boolean {
    const ours = height === this.driver.height ? (this.driver.round ?? 0) : 0
    if (round <= ours) return true
    const key = `${height}/${proposer.toLowerCase()}`
    let rounds = this.byProposer.get(key)
    if (rounds === undefined) {
      for (const k of this.byProposer.keys()) if (Number(k.split('/')[0]) < this.driver.height) this.byProposer.delete(k)
      this.byProposer.set(key, rounds = new Set())
    }
    for (const r of rounds) if (r <= ours) rounds.delete(r)
    if (rounds.has(round)) return true
    if (rounds.size >= this.driver.limits.futureRounds) return false
    rounds.add(round)
    return true
  }
}
