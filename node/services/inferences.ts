import { randomBytes } from 'node:crypto'
import { checksumAddress } from '../../src/codec/address.ts'
import type { Wallet } from 'ethers'
import { CID } from 'multiformats/cid'
import { sha256, toHex } from '../../src/codec/hash.ts'
import { eventShares } from '../../src/attribution/settlement.ts'
import type { AttributionResult } from '../../src/attribution/index.ts'
import { DatanetError } from '../../src/errors.ts'
import {
  checkInferenceEvent, decodeInferenceEvent, encodeInferenceEvent, inferenceEventCid, inferenceEventId, inferenceEventJson, inferenceSigner, signInferenceEvent,
  type InferenceEvent, type UnsignedInferenceEvent
} from '../../src/inference/event.ts'
import { NGRAM_MODEL_KIND } from '../../src/inference/model-record.ts'
import { generate } from '../../src/model/ngram.ts'
import { ignore, reject, type GossipRouter, type TopicHandler } from '../../src/network/gossip.ts'
import { datanetTopicScoreParams, topics } from '../../src/network/topics.ts'
import type { DomainBinding } from '../../src/codec/eip712.ts'
import { type InferenceEntry, type ModelEntry, type StateDatabase } from '../../src/storage/state-db.ts'
import { getBlock, pin } from './blocks.ts'
import type { AttributionService } from './attribution.ts'
import type { ChainService } from './chain.ts'
import type { ModelService } from './models.ts'
import type { FollowedDatanet } from './datanets.ts'
import { twinSignature, type Fault } from './faults.ts'
import type { Helia } from '@helia/interface'
import type { Logger } from '../logger.ts'


export const InferenceErrorCode = {
  BAD_REQUEST: 'INFERENCE_ERROR_BAD_REQUEST',
  NO_CHAIN: 'INFERENCE_ERROR_NO_CHAIN',
  UNKNOWN_MODEL: 'INFERENCE_ERROR_UNKNOWN_MODEL',
  NO_VERSION: 'INFERENCE_ERROR_NO_VERSION',
  BAD_SIGNATURE: 'INFERENCE_ERROR_BAD_SIGNATURE',
  NO_ESCROW: 'INFERENCE_ERROR_NO_ESCROW',
  ESCROW_MISMATCH: 'INFERENCE_ERROR_ESCROW_MISMATCH',
  REPLAYED: 'INFERENCE_ERROR_REPLAYED_NONCE',
  /** Another signature over an event already known (same event id, another CID). */
  TWIN: 'INFERENCE_ERROR_TWIN',
  NOT_FOUND: 'INFERENCE_ERROR_NOT_FOUND',
  /** Gossip only: not judged within the validation window. */
  VALIDATION_TIMEOUT: 'INFERENCE_ERROR_VALIDATION_TIMEOUT'
} as const

/** Gossip failures that are not provably the sender's fault: IGNOREd, not REJECTed. */
const IGNORED: ReadonlySet<string> = new Set([
  InferenceErrorCode.UNKNOWN_MODEL, InferenceErrorCode.NO_VERSION, InferenceErrorCode.NO_ESCROW, InferenceErrorCode.VALIDATION_TIMEOUT,
  // which of two events (or signatures) with one nonce came first differs between nodes
  InferenceErrorCode.REPLAYED, InferenceErrorCode.TWIN
])

const MAX_TEXT_BYTES = 64 * 1024
/** How long a posted event, or one a proposal includes, may wait for its escrow to show up in our view of the chain. */
const ESCROW_WAIT_MS = 10_000
/**
 * How long a gossip validator of ours may take. gossipsub keeps an unvalidated message in
 * its cache for 5 heartbeats of 1 s (it shifts once per heartbeat, so 4 s at worst): a
 * verdict after that neither relays the message nor costs its sender, so what cannot be
 * had within this is IGNOREd.
 */
export const GOSSIP_VALIDATION_MS = 2_000
const WAIT_MARGIN_MS = 300
/** An event ignored for want of its escrow is tried again off the gossip path, this long. */
const ESCROW_RETRY_MS = 120_000
const ESCROW_RETRY_EVERY_MS = 1_000
/** Events waiting for their escrow, at most (the oldest is dropped beyond it). */
const ESCROW_RETRY_MAX = 256
/** Chain refreshes asked for by validators are shared: at most one in flight. */
const REFRESH_GAP_MS = 250
/** A timestamp this far ahead of our clock is no clock's skew. */
const MAX_FUTURE_MS = 3_600_000

export interface InferenceServiceOptions {
  db: StateDatabase
  helia: Helia
  router: GossipRouter
  chain: ChainService | undefined
  attribution: AttributionService
  models: ModelService
  wallet: Wallet
  binding: Omit<DomainBinding, 'datanet'>
  logger: Logger
  /** A verified event waits for the next version. */
  /** An event verified and stored here, waiting for a version to include it. */
  onPending: (datanet: string, entry: InferenceEntry) => void
  /** `twin-inference` gossips a second signature over each own event first (DATANET_FAULT). */
  fault?: Fault
}

export interface InferenceResult {
  cid: string
  eventId: string
  model: string
  version: number
  output: string
  fee: string
  escrow: { txHash: string, block: number }
  attribution: AttributionResult
  shares: Array<{ address: string, amount: string }>
}

export function fail (code: string, message: string, kind: 'usage' | 'failure' | 'not_found' | 'conflict' | 'unavailable' = 'usage'): DatanetError {
  return new DatanetError({ code }, message, kind)
}

/** How an event is being verified: for admission (gossip, HTTP) or because a proposal includes it. */
interface AcceptOptions {
  /** How long to wait for the escrow to show up in our view of the chain. */
  escrowWaitMs: number
  /** Ends every wait (fetches, escrow) early: the gossip window. */
  signal?: AbortSignal
  /** Chain refreshes to wait for at most while the escrow is not seen (default: until escrowWaitMs). */
  escrowRefreshes?: number
  /**
   * 'proposal': a twin of a known event resolves to it and the nonce rule is not applied,
   * so that every validator judges a proposal alike whichever signature reached it first.
   */
  purpose: 'admission' | 'proposal'
}

/** Rejects with `onAbort()` when the signal aborts first. */
async function within<T> (p: Promise<T>, signal: AbortSignal, onAbort: () => Error): Promise<T> {
  if (signal.aborted) throw onAbort()
  let off = (): void => {}
  const aborted = new Promise<never>((_resolve, reject) => {
    const listener = (): void => { reject(onAbort()) }
    signal.addEventListener('abort', listener, { once: true })
    off = () => { signal.removeEventListener('abort', listener) }
  })
  try {
    return await Promise.race([p, aborted])
  } finally {
    off()
  }
}

/**
 * Models and inference events (DESIGN §4 flow 5): trains and registers the reference
 * model, runs it, escrows the fee, signs and gossips the event; verifies others' events
 * (signature, model, escrow, nonce) and computes its own attribution of each, which the
 * consensus uses to include only events whose shares every validator recomputes.
 */
export class InferenceService {
  private readonly opts: InferenceServiceOptions
  private readonly log: Logger

  constructor (opts: InferenceServiceOptions) {
    this.opts = opts
    this.log = opts.logger
  }

  follow (d: FollowedDatanet): void {
    this.opts.router.register(this.eventHandler(d))
  }

  // ---- inference -------------------------------------------------------------------------

  /**
   * Runs a model on a prompt, escrows the fee on chain for the event's id, signs and
   * gossips the event; returns the output with this node's attribution of it.
   */
  async infer (d: FollowedDatanet, req: { model: string, prompt: string, fee: bigint, maxWords: number }): Promise<InferenceResult> {
    const chain = this.needChain()
    if (Buffer.byteLength(req.prompt) > MAX_TEXT_BYTES) throw fail(InferenceErrorCode.BAD_REQUEST, `prompt: longer than ${MAX_TEXT_BYTES} bytes`)
    const entry = await this.opts.models.record(d, req.model)
    // an external model's record names a server, not an artifact this node can run
    if (entry.kind !== NGRAM_MODEL_KIND) throw fail(InferenceErrorCode.BAD_REQUEST, `model ${entry.id} is a ${entry.kind} model: this node cannot run it (post its output with \`datanet infer --endpoint\`)`)
    const model = await this.opts.models.load(entry)
    const nonce = toHex(randomBytes(32))
    const seed = new DataView(sha256(Buffer.from(nonce.slice(2), 'hex')).buffer).getUint32(0)
    const output = generate(model, req.prompt, { maxWords: req.maxWords, seed })
    return await this.publishOwn(d, chain, entry, { prompt: req.prompt, output, fee: req.fee, nonce })
  }

  /**
   * Posts, as this node's event, an output an external OpenAI-compatible server generated.
   * The event names a model record of kind `external` (the server's endpoint and model name,
   * signed by this operator) trained on the datanet's latest final version. Validators treat
   * it like any event: they never regenerate an output (not even the reference model's),
   * they re-attribute the posted output text against the event's version, which is all the
   * attribution depends on, so every validator computes the same shares for it.
   */
  async inferExternal (d: FollowedDatanet, req: { endpoint: string, name: string, prompt: string, output: string, fee: bigint }): Promise<InferenceResult> {
    const chain = this.needChain()
    for (const k of ['prompt', 'output'] as const) {
      if (Buffer.byteLength(req[k]) > MAX_TEXT_BYTES) throw fail(InferenceErrorCode.BAD_REQUEST, `${k}: longer than ${MAX_TEXT_BYTES} bytes`)
    }
    const entry = await this.opts.models.external(d, { endpoint: req.endpoint, name: req.name })
    return await this.publishOwn(d, chain, entry, { prompt: req.prompt, output: req.output, fee: req.fee, nonce: toHex(randomBytes(32)) })
  }

  private needChain (): ChainService {
    const chain = this.opts.chain
    if (chain === undefined) throw fail(InferenceErrorCode.NO_CHAIN, 'inference needs a chain to escrow its fee on (chain.rpcUrl and chain.registry)', 'conflict')
    return chain
  }

  /** Escrows the fee for an event of this node's, signs, stores and gossips it. */
  private async publishOwn (d: FollowedDatanet, chain: ChainService, entry: ModelEntry, e: { prompt: string, output: string, fee: bigint, nonce: string }): Promise<InferenceResult> {
    const unsigned: UnsignedInferenceEvent = {
      datanet: d.id, model: entry.id, version: entry.version, prompt: e.prompt, output: e.output,
      fee: e.fee.toString(), nonce: e.nonce, operator: this.opts.wallet.address, timestamp: Date.now()
    }
    const eventId = inferenceEventId(this.opts.binding, unsigned)
    const escrow = await chain.payInference(d, eventId, e.fee)
    const event = await signInferenceEvent(this.opts.wallet, this.opts.binding, unsigned)
    if (this.opts.fault === 'twin-inference') {
      // the network learns the twin first; this node keeps the original
      const twin: InferenceEvent = { ...event, signature: twinSignature(this.opts.wallet.privateKey, eventId) }
      this.log.warn({ datanet: d.id, eventId }, 'fault injection: gossiping a twin of the event before the event')
      await this.opts.router.publish(topics.inferences(d.id), encodeInferenceEvent(twin)).catch(() => 0)
    }
    const stored = await this.accept(d, event, encodeInferenceEvent(event), { escrowWaitMs: 0, purpose: 'admission' })
    await this.opts.router.publish(topics.inferences(d.id), encodeInferenceEvent(event)).catch(() => 0)
    this.log.info({ datanet: d.id, event: stored.entry.cid, eventId, model: entry.id, kind: entry.kind, fee: unsigned.fee }, 'inference event posted')
    return { cid: stored.entry.cid, eventId, model: entry.id, version: entry.version, output: e.output, fee: unsigned.fee, escrow: { txHash: escrow.txHash, block: escrow.block }, attribution: stored.result, shares: stored.entry.shares }
  }

  /** Posts an event signed elsewhere (its operator escrowed the fee): verified, stored, gossiped. */
  async post (d: FollowedDatanet, json: Record<string, unknown>): Promise<InferenceEntry> {
    let event: InferenceEvent
    try {
      const sig = json.signature
      event = checkInferenceEvent({ ...json, signature: typeof sig === 'string' && /^0x[0-9a-fA-F]{130}$/.test(sig) ? new Uint8Array(Buffer.from(sig.slice(2), 'hex')) : sig }, MAX_TEXT_BYTES)
    } catch (err) {
      throw fail(InferenceErrorCode.BAD_REQUEST, `inference event: ${(err as Error).message}`)
    }
    const bytes = encodeInferenceEvent(event)
    // its operator has just paid the escrow: give our view of the chain a moment to see it
    const { entry } = await this.accept(d, event, bytes, { escrowWaitMs: ESCROW_WAIT_MS, purpose: 'admission' })
    await this.opts.router.publish(topics.inferences(d.id), bytes).catch(() => 0)
    return entry
  }

  /**
   * Verifies an event (signature, datanet, model and its version, escrow on chain, nonce)
   * and stores it with this node's attribution. Throws a DatanetError naming the problem.
   * Events are one per event id: a second signature over a known event (a twin) is refused
   * for admission, and for a proposal stands for the event already known.
   */
  private async accept (d: FollowedDatanet, event: InferenceEvent, bytes: Uint8Array, opts: AcceptOptions): Promise<{ entry: InferenceEntry, result: AttributionResult }> {
    const cid = await inferenceEventCid(bytes)
    const known = await this.opts.db.inferences.get(cid.toString())
    if (event.datanet !== d.id) throw fail(InferenceErrorCode.BAD_REQUEST, `the event is for datanet ${event.datanet}, not ${d.id}`)
    const signer = inferenceSigner(event, this.opts.binding)
    if (signer === undefined || signer !== checksumAddress(event.operator)) throw fail(InferenceErrorCode.BAD_SIGNATURE, 'the event is not signed by its operator')
    const eventId = inferenceEventId(this.opts.binding, event)
    // [twin] another signature over a known event (ensure resolves twins before this)
    const twin = known === undefined ? await this.twinOf(eventId, cid.toString()) : undefined
    if (twin !== undefined) throw this.twinError(cid.toString(), eventId, twin.cid)
    const model = await this.opts.models.record(d, event.model, opts.signal)
    if (model.version !== event.version) throw fail(InferenceErrorCode.BAD_REQUEST, `model ${model.id} was trained on version ${model.version}, not ${event.version}`)
    // admission only: which of two events with one nonce came first differs between nodes
    const nonceRule = known === undefined && opts.purpose === 'admission'
    if (nonceRule && await this.nonceUsed(event.operator, event.nonce)) throw fail(InferenceErrorCode.REPLAYED, `nonce ${event.nonce} of ${event.operator} was used before`, 'conflict')
    const paid = await this.escrowOf(d, eventId, event.operator, opts.escrowWaitMs, opts.signal, opts.escrowRefreshes)
    if (paid === undefined) throw fail(InferenceErrorCode.NO_ESCROW, `no fee escrowed on chain for event ${eventId}`, 'conflict')
    // the registry takes one escrow per event id: one of another amount or payer never changes
    if (paid.amount !== BigInt(event.fee) || paid.payer !== event.operator.toLowerCase()) throw fail(InferenceErrorCode.ESCROW_MISMATCH, `the escrow for event ${eventId} is ${paid.amount} wei from ${paid.payer}, not ${event.fee} from ${event.operator}`)
    const { result, shares } = await this.attributed(d, event, eventId)
    if (known !== undefined) return { entry: known, result }
    const entry: InferenceEntry = {
      cid: cid.toString(), datanet: d.id, eventId, model: event.model, version: event.version, operator: event.operator, nonce: event.nonce,
      fee: event.fee, shares, resultHash: result.resultHash, receivedAt: Date.now(), included: null
    }
    // checked again, with no await until the index holds it: a twin or an event with this
    // nonce may have been verified concurrently
    const index = await this.index()
    const first = index.byEventId.get(eventId)
    if (first !== undefined && first !== entry.cid) {
      const stored = await this.entryOf(first)
      if (opts.purpose === 'proposal' && stored !== undefined) return { entry: stored, result }
      throw this.twinError(entry.cid, eventId, first)
    }
    const nonceKey = `${event.operator.toLowerCase()}/${event.nonce}`
    if (nonceRule && index.nonces.has(nonceKey)) throw fail(InferenceErrorCode.REPLAYED, `nonce ${event.nonce} of ${event.operator} was used before`, 'conflict')
    index.byEventId.set(eventId, entry.cid)
    index.nonces.add(nonceKey)
    this.storing.set(entry.cid, entry)
    try {
      await this.opts.helia.blockstore.put(cid, bytes)
      await pin(this.opts.helia, cid)
      await this.opts.db.inferences.put(entry.cid, entry)
    } catch (err) {
      index.byEventId.delete(eventId)
      throw err
    } finally {
      this.storing.delete(entry.cid)
    }
    this.opts.onPending(d.id, entry)
    return { entry, result }
  }

  private twinError (cid: string, eventId: string, first: string): DatanetError {
    return fail(InferenceErrorCode.TWIN, `inference event ${cid} is another signature over event ${eventId}, known here as ${first}`, 'conflict')
  }

  /** This node's attribution of an event, and the shares it pays. */
  private async attributed (d: FollowedDatanet, event: InferenceEvent, eventId: string): Promise<{ result: AttributionResult, shares: InferenceEntry['shares'] }> {
    const result = await this.opts.attribution.attribute(d, event.version, event.output, event.prompt, BigInt(event.fee), eventId)
    if (result === undefined) throw fail(InferenceErrorCode.NO_VERSION, `version ${event.version} is not final here yet`, 'conflict')
    const weights = await this.opts.attribution.weightsByContributor(d, event.version)
    return { result, shares: eventShares(result, weights).map(s => ({ address: s.address, amount: s.amount.toString() })) }
  }

  /** The stored entry of another CID with this event id, if any. */
  private async twinOf (eventId: string, cid: string): Promise<InferenceEntry | undefined> {
    const first = (await this.index()).byEventId.get(eventId)
    return first === undefined || first === cid ? undefined : await this.entryOf(first)
  }

  private async entryOf (cid: string): Promise<InferenceEntry | undefined> {
    return this.storing.get(cid) ?? await this.opts.db.inferences.get(cid)
  }

  /** Entries being written (indexed already, not yet readable from the store). */
  private readonly storing = new Map<string, InferenceEntry>()

  /** Chain refreshes asked for by validators: one in flight, shared. */
  private refreshing: Promise<void> | undefined
  private refreshedAt = 0

  private async refresh (): Promise<void> {
    this.refreshing ??= (async () => {
      const wait = this.refreshedAt + REFRESH_GAP_MS - Date.now()
      if (wait > 0) await new Promise(resolve => setTimeout(resolve, wait))
      try {
        await this.opts.chain?.refresh()
      } finally {
        this.refreshedAt = Date.now()
        this.refreshing = undefined
      }
    })()
    await this.refreshing
  }

  private async escrowOf (d: FollowedDatanet, eventId: string, operator: string, waitMs: number, signal?: AbortSignal, refreshes = Infinity): Promise<{ payer: string, amount: bigint } | undefined> {
    const deadline = AbortSignal.timeout(Math.max(waitMs, 1))
    const stop = signal === undefined ? deadline : AbortSignal.any([signal, deadline])
    for (let n = 0; ; n++) {
      const paid = this.opts.chain?.inferencePaid(d, eventId, operator)
      if (paid !== undefined || waitMs === 0 || stop.aborted || n >= refreshes || this.opts.chain === undefined) return paid
      // a chain RPC that hangs must not hold us past the deadline
      try {
        await within(this.refresh(), stop, () => new Error('deadline'))
      } catch {
        return this.opts.chain?.inferencePaid(d, eventId, operator)
      }
    }
  }

  /**
   * What the stored events already claim: each event id's first CID, and operators' used
   * nonces (`operator/nonce`); read from the store once, then kept up to date.
   */
  private indexed: Promise<{ byEventId: Map<string, string>, nonces: Set<string> }> | undefined

  private async index (): Promise<{ byEventId: Map<string, string>, nonces: Set<string> }> {
    this.indexed ??= (async () => {
      const byEventId = new Map<string, string>()
      const nonces = new Set<string>()
      for await (const [, e] of this.opts.db.inferences.entries()) {
        nonces.add(`${e.operator.toLowerCase()}/${e.nonce}`)
        // in CID order: the smallest stands for its event if an older store holds twins
        if (!byEventId.has(e.eventId)) byEventId.set(e.eventId, e.cid)
      }
      return { byEventId, nonces }
    })()
    return await this.indexed
  }

  private async nonceUsed (operator: string, nonce: string): Promise<boolean> {
    return (await this.index()).nonces.has(`${operator.toLowerCase()}/${nonce}`)
  }

  /** Verified events not yet in a version, in CID order; one per event id (the CID the node knows it by). */
  async pending (d: FollowedDatanet, limit: number): Promise<InferenceEntry[]> {
    const { byEventId } = await this.index()
    const out: InferenceEntry[] = []
    for await (const e of this.opts.db.inferences.unincluded(d.id)) {
      if (out.length >= limit) break
      // a twin an older store kept: its event is the first CID's, included or not
      if (byEventId.get(e.eventId) === e.cid) out.push(e)
    }
    return out
  }

  /**
   * An event a proposal includes: known, or fetched by CID and verified. Undefined when it
   * does not verify. A twin of a known event is that event: the entry returned is the
   * known one (its `cid` is the first CID seen here, its `included` the event's).
   */
  async ensure (d: FollowedDatanet, cid: string): Promise<InferenceEntry | undefined> {
    const known = await this.opts.db.inferences.get(cid)
    if (known !== undefined) return known
    try {
      const parsed = CID.parse(cid)
      const bytes = await getBlock(this.opts.helia, parsed, { signal: AbortSignal.timeout(10_000) })
      const event = decodeInferenceEvent(bytes, MAX_TEXT_BYTES)
      const signer = inferenceSigner(event, this.opts.binding)
      if (event.datanet !== d.id || signer === undefined || signer !== checksumAddress(event.operator)) throw fail(InferenceErrorCode.BAD_SIGNATURE, 'the event is not signed by its operator')
      // the operator signed this event's content: the same event as the one known here
      const twin = await this.twinOf(inferenceEventId(this.opts.binding, event), cid)
      const entry = twin ?? (await this.accept(d, event, bytes, { escrowWaitMs: ESCROW_WAIT_MS, purpose: 'proposal' })).entry
      // a twin: keep its bytes, which a final version may name (markIncluded reads them)
      if (entry.cid !== cid) await this.opts.helia.blockstore.put(parsed, bytes)
      return entry
    } catch (err) {
      this.log.warn({ datanet: d.id, event: cid, err: (err as Error).message }, 'an inference event a proposal includes does not verify here')
      return undefined
    }
  }

  /** Marks events included, by event id: a twin's CID marks the event known here under another. */
  async markIncluded (cids: readonly string[], height: number): Promise<void> {
    for (const cid of cids) {
      const key = (await this.opts.db.inferences.has(cid)) ? cid : await this.firstCidOfTwin(cid)
      const e = key === undefined ? undefined : await this.opts.db.inferences.get(key)
      // an event is in one version: the first that included it
      if (e === undefined || (e.included !== null && e.included !== height)) continue
      await this.opts.db.inferences.put(e.cid, { ...e, included: height })
      if (key !== cid) await pin(this.opts.helia, CID.parse(cid)).catch(() => {})
    }
  }

  /** The CID this node knows a twin's event by, from the twin's bytes (kept by ensure). */
  private async firstCidOfTwin (cid: string): Promise<string | undefined> {
    try {
      const event = decodeInferenceEvent(await getBlock(this.opts.helia, CID.parse(cid), { offline: true }), MAX_TEXT_BYTES)
      return (await this.index()).byEventId.get(inferenceEventId(this.opts.binding, event))
    } catch (err) {
      this.log.warn({ event: cid, err: (err as Error).message }, 'an included inference event is not known here')
      return undefined
    }
  }

  /** A datanet's verified inference events, newest first (the explorer's list; a scan, as contributions' is). */
  async list (d: FollowedDatanet, limit = 100): Promise<InferenceEntry[]> {
    const out: InferenceEntry[] = []
    for await (const [, e] of this.opts.db.inferences.entries()) if (e.datanet === d.id) out.push(e)
    return out.sort((a, b) => b.receivedAt - a.receivedAt).slice(0, limit)
  }

  async view (d: FollowedDatanet, cid: string): Promise<Record<string, unknown>> {
    const e = await this.opts.db.inferences.get(cid)
    if (e === undefined || e.datanet !== d.id) throw fail(InferenceErrorCode.NOT_FOUND, `inference event ${cid} is not known to this node`, 'not_found')
    const event = decodeInferenceEvent(await getBlock(this.opts.helia, CID.parse(cid), { offline: true }), MAX_TEXT_BYTES)
    return { ...e, event: inferenceEventJson(event) }
  }

  // ---- gossip ----------------------------------------------------------------------------

  private eventHandler (d: FollowedDatanet): TopicHandler<{ bytes: Uint8Array, event?: InferenceEvent }> {
    return {
      topic: topics.inferences(d.id),
      kind: 'inferences',
      holdUntilSubscribed: true,
      scoreParams: datanetTopicScoreParams(),
      decode: (data: Uint8Array) => {
        if (data.length > 3 * MAX_TEXT_BYTES) throw reject('INFERENCE_ERROR_OVERSIZE', 'event too large')
        try {
          return { bytes: data, event: decodeInferenceEvent(data, MAX_TEXT_BYTES) }
        } catch (err) {
          throw reject('INFERENCE_ERROR_MALFORMED', (err as Error).message)
        }
      },
      validate: async (msg) => {
        const event = msg.event as InferenceEvent
        const cid = (await inferenceEventCid(msg.bytes)).toString()
        // [IGNORE] already known
        if (await this.opts.db.inferences.has(cid)) throw ignore('INFERENCE_ERROR_KNOWN', 'event already known')
        // [REJECT] another datanet, a bad signature, a timestamp no clock's skew explains
        if (event.datanet !== d.id) throw reject('INFERENCE_ERROR_WRONG_DATANET', 'event for another datanet')
        const signer = inferenceSigner(event, this.opts.binding)
        if (signer === undefined || signer !== event.operator) throw reject('INFERENCE_ERROR_BAD_SIGNATURE', 'event not signed by its operator')
        if (event.timestamp > Date.now() + MAX_FUTURE_MS) throw reject('INFERENCE_ERROR_FUTURE', `event timestamp ${event.timestamp} is more than an hour ahead`)
        // [IGNORE] another signature over a known event: its relayer cannot know which came first
        const eventId = inferenceEventId(this.opts.binding, event)
        const twin = await this.twinOf(eventId, cid)
        if (twin !== undefined) throw ignore(InferenceErrorCode.TWIN, `another signature over event ${eventId}, known here as ${twin.cid}`)
        // everything below is bounded by the window; what cannot be had in it is IGNOREd
        // waits (chain, fetch) end a little before the window, so they can say what was missing
        const waits = AbortSignal.timeout(GOSSIP_VALIDATION_MS - WAIT_MARGIN_MS)
        const window = AbortSignal.timeout(GOSSIP_VALIDATION_MS)
        try {
          const timeout = (): Error => fail(InferenceErrorCode.VALIDATION_TIMEOUT, `not judged within ${GOSSIP_VALIDATION_MS} ms`)
          // one shared chain refresh at most: an unpaid event costs little, and one whose
          // escrow our view shows later is stored then (retryLater)
          await within(this.accept(d, event, msg.bytes, { escrowWaitMs: GOSSIP_VALIDATION_MS, escrowRefreshes: 1, signal: waits, purpose: 'admission' }), window, timeout)
        } catch (err) {
          // our own failure (store, blockstore) is not the sender's: the router ignores it
          if (!(err instanceof DatanetError)) throw err
          const code = err.code
          // our chain view may lag the relayer's: try again off the gossip path
          if (code === InferenceErrorCode.NO_ESCROW) this.retryLater(d, event, msg.bytes)
          if (IGNORED.has(code)) throw ignore(code, err.message)
          throw reject(code, err.message)
        }
      },
      handle: () => {},
      // a validation may wait on the chain or a fetch for up to the window: others go on meanwhile
      concurrency: 8
    }
  }

  // ---- events waiting for their escrow -----------------------------------------------

  /** Events gossip ignored because our chain view lacked their escrow, by CID. */
  private readonly awaitingEscrow = new Map<string, { d: FollowedDatanet, event: InferenceEvent, bytes: Uint8Array, until: number }>()
  private retryTimer: NodeJS.Timeout | undefined

  private retryLater (d: FollowedDatanet, event: InferenceEvent, bytes: Uint8Array): void {
    void inferenceEventCid(bytes).then(cid => {
      const key = cid.toString()
      if (this.awaitingEscrow.has(key)) return
      if (this.awaitingEscrow.size >= ESCROW_RETRY_MAX) this.awaitingEscrow.delete(this.awaitingEscrow.keys().next().value as string)
      this.awaitingEscrow.set(key, { d, event, bytes, until: Date.now() + ESCROW_RETRY_MS })
      this.retryTimer ??= setInterval(() => { void this.retryEscrows() }, ESCROW_RETRY_EVERY_MS)
      this.retryTimer.unref()
    })
  }

  private retrying = false

  /** Stores the waiting events whose escrow the chain service's own polling has since seen. */
  private async retryEscrows (): Promise<void> {
    if (this.retrying) return
    this.retrying = true
    try {
      for (const [cid, w] of [...this.awaitingEscrow]) {
        if (this.opts.chain?.inferencePaid(w.d, inferenceEventId(this.opts.binding, w.event), w.event.operator) === undefined && Date.now() < w.until) continue
        this.awaitingEscrow.delete(cid)
        try {
          await this.accept(w.d, w.event, w.bytes, { escrowWaitMs: 0, purpose: 'admission' })
          this.log.debug({ datanet: w.d.id, event: cid }, 'inference event stored once its escrow showed')
        } catch (err) {
          this.log.debug({ datanet: w.d.id, event: cid, err: (err as Error).message }, 'inference event waiting for its escrow dropped')
        }
      }
    } finally {
      this.retrying = false
      if (this.awaitingEscrow.size === 0) this.stopRetries()
    }
  }

  private stopRetries (): void {
    clearInterval(this.retryTimer)
    this.retryTimer = undefined
  }

  /** Stops retrying events that wait for their escrow. */
  stop (): void {
    this.awaitingEscrow.clear()
    this.stopRetries()
  }

}
