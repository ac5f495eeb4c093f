import { randomBytes } from 'node:crypto'
import { getAddress, type Wallet } from 'ethers'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 as sha256Hasher } from 'multiformats/hashes/sha2'
import { cidOf, decodeCbor, encodeCbor } from '../../src/codec/cbor.ts'
import { sha256, toHex } from '../../src/codec/hash.ts'
import { eventShares } from '../../src/attribution/settlement.ts'
import type { AttributionResult } from '../../src/attribution/index.ts'
import { DatanetError } from '../../src/errors.ts'
import {
  checkInferenceEvent, decodeInferenceEvent, encodeInferenceEvent, inferenceEventCid, inferenceEventId, inferenceEventJson, inferenceSigner, signInferenceEvent,
  type InferenceEvent, type UnsignedInferenceEvent
} from '../../src/inference/event.ts'
import { decodeModelRecord, encodeModelRecord, modelRecordCid, modelSigner, signModelRecord, type ModelRecord } from '../../src/inference/model-record.ts'
import { decodeModel, encodeModel, generate, trainNgram, type NgramModel } from '../../src/model/ngram.ts'
import { ignore, reject, type GossipRouter, type TopicHandler } from '../../src/network/gossip.ts'
import { datanetTopicScoreParams } from '../../src/network/topics.ts'
import type { DomainBinding } from '../../src/codec/eip712.ts'
import type { InferenceEntry, ModelEntry, StateDatabase } from '../../src/storage/state-db.ts'
import { getBlock, pin } from './blocks.ts'
import { versionRecords, type AttributionService } from './attribution.ts'
import type { ChainService } from './chain.ts'
import type { FollowedDatanet } from './datanets.ts'
import type { Helia } from '@helia/interface'
import type { Logger } from '../logger.ts'

export const inferenceTopic = (datanet: string): string => `/datanet/1/${datanet}/inferences`
export const modelTopic = (datanet: string): string => `/datanet/1/${datanet}/models`

export const InferenceErrorCode = {
  BAD_REQUEST: 'INFERENCE_ERROR_BAD_REQUEST',
  NO_CHAIN: 'INFERENCE_ERROR_NO_CHAIN',
  UNKNOWN_MODEL: 'INFERENCE_ERROR_UNKNOWN_MODEL',
  NO_VERSION: 'INFERENCE_ERROR_NO_VERSION',
  BAD_SIGNATURE: 'INFERENCE_ERROR_BAD_SIGNATURE',
  NO_ESCROW: 'INFERENCE_ERROR_NO_ESCROW',
  REPLAYED: 'INFERENCE_ERROR_REPLAYED_NONCE',
  NOT_FOUND: 'INFERENCE_ERROR_NOT_FOUND'
} as const

const MAX_TEXT_BYTES = 64 * 1024
const ARTIFACT_CHUNK = 1024 * 1024
/** How long a gossiped event may wait for its escrow to show up in our view of the chain. */
const ESCROW_WAIT_MS = 10_000

export interface InferenceServiceOptions {
  db: StateDatabase
  helia: Helia
  router: GossipRouter
  chain: ChainService | undefined
  attribution: AttributionService
  wallet: Wallet
  binding: Omit<DomainBinding, 'datanet'>
  logger: Logger
  /** A verified event waits for the next version. */
  onPending: (datanet: string) => void
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

function fail (code: string, message: string, kind: 'usage' | 'failure' | 'not_found' | 'conflict' | 'unavailable' = 'usage'): DatanetError {
  return new DatanetError({ code }, message, kind)
}

/**
 * Models and inference events (DESIGN §4 flow 5): trains and registers the reference
 * model, runs it, escrows the fee, signs and gossips the event; verifies others' events
 * (signature, model, escrow, nonce) and computes its own attribution of each, which the
 * consensus uses to include only events whose shares every validator recomputes.
 */
export class InferenceService {
  private readonly opts: InferenceServiceOptions
  private readonly models = new Map<string, NgramModel>()
  private readonly log: Logger

  constructor (opts: InferenceServiceOptions) {
    this.opts = opts
    this.log = opts.logger
  }

  follow (d: FollowedDatanet): void {
    this.opts.router.register(this.eventHandler(d))
    this.opts.router.register(this.modelHandler(d))
  }

  // ---- models ----------------------------------------------------------------------------

  /** Trains the reference n-gram model on version `height` of the dataset and registers it. */
  async train (d: FollowedDatanet, height: number): Promise<ModelEntry> {
    const texts: string[] = []
    let previous = 0
    for (const entry of await this.opts.db.versionsOf(d.id)) {
      if (entry.height > height) break
      for (const r of await versionRecords(this.opts.db, this.opts.helia, d, entry, previous)) texts.push(r.text)
      previous = entry.recordCount
    }
    if (previous === 0 || (await this.opts.db.versionsOf(d.id)).every(v => v.height !== height)) {
      throw fail(InferenceErrorCode.NO_VERSION, `datanet ${d.id} has no final version ${height} with records here`, 'not_found')
    }
    const model = trainNgram(texts)
    const artifact = await this.putArtifact(encodeModel(model))
    const entry = await this.register(d, { version: height, kind: 'ngram-v1', artifact: artifact.toString() })
    this.models.set(entry.id, model)
    this.log.info({ datanet: d.id, model: entry.id, version: height, records: texts.length }, 'model trained')
    return entry
  }

  /** Registers a model (trained here or elsewhere) under this node's key, and gossips it. */
  async register (d: FollowedDatanet, m: { version: number, kind: string, artifact: string }): Promise<ModelEntry> {
    let artifact: CID
    try { artifact = CID.parse(m.artifact) } catch { throw fail(InferenceErrorCode.BAD_REQUEST, `artifact: not a CID: ${m.artifact}`) }
    if ((await this.opts.db.versions.get(`${d.id}/${m.version.toString(16).padStart(16, '0')}`)) === undefined) {
      throw fail(InferenceErrorCode.NO_VERSION, `datanet ${d.id} has no final version ${m.version}`, 'not_found')
    }
    const record = await signModelRecord(this.opts.wallet, this.opts.binding, { datanet: d.id, version: m.version, kind: m.kind, artifact: artifact.toString(), operator: this.opts.wallet.address, createdAt: Date.now() })
    const bytes = encodeModelRecord(record)
    const cid = await modelRecordCid(bytes)
    await this.opts.helia.blockstore.put(cid, bytes)
    await pin(this.opts.helia, cid)
    const entry = this.modelEntry(cid.toString(), record)
    await this.opts.db.models.put(entry.id, entry)
    await this.opts.router.publish(modelTopic(d.id), bytes).catch(() => 0)
    return entry
  }

  async listModels (d: FollowedDatanet): Promise<ModelEntry[]> {
    return (await this.opts.db.models.values()).filter(m => m.datanet === d.id).sort((a, b) => a.createdAt - b.createdAt)
  }

  private modelEntry (id: string, r: ModelRecord): ModelEntry {
    return { id, datanet: r.datanet, version: r.version, kind: r.kind, artifact: r.artifact, operator: r.operator, createdAt: r.createdAt }
  }

  /** A model's record: from the state db, else fetched (bitswap) and verified. */
  async modelRecord (d: FollowedDatanet, id: string): Promise<ModelEntry> {
    const known = await this.opts.db.models.get(id)
    if (known !== undefined) return known
    let cid: CID
    try { cid = CID.parse(id) } catch { throw fail(InferenceErrorCode.BAD_REQUEST, `model: not a CID: ${id}`) }
    let record: ModelRecord
    try {
      record = decodeModelRecord(await getBlock(this.opts.helia, cid, { signal: AbortSignal.timeout(10_000) }))
    } catch (err) {
      throw fail(InferenceErrorCode.UNKNOWN_MODEL, `model ${id} is not known and could not be fetched: ${(err as Error).message}`, 'not_found')
    }
    return await this.acceptModel(d, cid, record)
  }

  private async acceptModel (d: FollowedDatanet, cid: CID, record: ModelRecord): Promise<ModelEntry> {
    if (record.datanet !== d.id) throw fail(InferenceErrorCode.UNKNOWN_MODEL, `model ${cid.toString()} is for another datanet`)
    if (modelSigner(record, this.opts.binding) !== record.operator) throw fail(InferenceErrorCode.BAD_SIGNATURE, `model ${cid.toString()} is not signed by its operator`)
    const entry = this.modelEntry(cid.toString(), record)
    await this.opts.db.models.put(entry.id, entry)
    return entry
  }

  private async putArtifact (bytes: Uint8Array): Promise<CID> {
    const put = async (chunk: Uint8Array): Promise<CID> => {
      const cid = CID.createV1(raw.code, await sha256Hasher.digest(chunk))
      await this.opts.helia.blockstore.put(cid, chunk)
      return cid
    }
    if (bytes.length <= ARTIFACT_CHUNK) {
      const cid = await put(bytes)
      await pin(this.opts.helia, cid)
      return cid
    }
    // bitswap moves blocks of up to 2 MiB: larger artifacts are a list of chunks
    const chunks: CID[] = []
    for (let at = 0; at < bytes.length; at += ARTIFACT_CHUNK) chunks.push(await put(bytes.subarray(at, at + ARTIFACT_CHUNK)))
    const root = encodeCbor({ chunks, size: bytes.length })
    const cid = await cidOf(root)
    await this.opts.helia.blockstore.put(cid, root)
    await pin(this.opts.helia, cid)
    return cid
  }

  private async loadModel (entry: ModelEntry): Promise<NgramModel> {
    const cached = this.models.get(entry.id)
    if (cached !== undefined) return cached
    const cid = CID.parse(entry.artifact)
    const signal = AbortSignal.timeout(60_000)
    let bytes = await getBlock(this.opts.helia, cid, { signal })
    if (cid.code !== raw.code) {
      const root = decodeCbor<{ chunks: CID[] }>(bytes)
      bytes = Buffer.concat(await Promise.all(root.chunks.map(async c => await getBlock(this.opts.helia, c, { signal }))))
    }
    const model = decodeModel(bytes)
    this.models.set(entry.id, model)
    return model
  }

  // ---- inference -------------------------------------------------------------------------

  /**
   * Runs a model on a prompt, escrows the fee on chain for the event's id, signs and
   * gossips the event; returns the output with this node's attribution of it.
   */
  async infer (d: FollowedDatanet, req: { model: string, prompt: string, fee: bigint, maxWords: number }): Promise<InferenceResult> {
    const chain = this.opts.chain
    if (chain === undefined) throw fail(InferenceErrorCode.NO_CHAIN, 'inference needs a chain to escrow its fee on (chain.rpcUrl and chain.registry)', 'conflict')
    if (Buffer.byteLength(req.prompt) > MAX_TEXT_BYTES) throw fail(InferenceErrorCode.BAD_REQUEST, `prompt: longer than ${MAX_TEXT_BYTES} bytes`)
    const entry = await this.modelRecord(d, req.model)
    const model = await this.loadModel(entry)
    const nonce = toHex(randomBytes(32))
    const seed = new DataView(sha256(Buffer.from(nonce.slice(2), 'hex')).buffer).getUint32(0)
    const output = generate(model, req.prompt, { maxWords: req.maxWords, seed })
    const unsigned: UnsignedInferenceEvent = {
      datanet: d.id, model: entry.id, version: entry.version, prompt: req.prompt, output,
      fee: req.fee.toString(), nonce, operator: this.opts.wallet.address, timestamp: Date.now()
    }
    const eventId = inferenceEventId(this.opts.binding, unsigned)
    const escrow = await chain.payInference(d, eventId, req.fee)
    const event = await signInferenceEvent(this.opts.wallet, this.opts.binding, unsigned)
    const stored = await this.accept(d, event, encodeInferenceEvent(event))
    await this.opts.router.publish(inferenceTopic(d.id), encodeInferenceEvent(event)).catch(() => 0)
    this.log.info({ datanet: d.id, event: stored.entry.cid, eventId, model: entry.id, fee: unsigned.fee }, 'inference event posted')
    return { cid: stored.entry.cid, eventId, model: entry.id, version: entry.version, output, fee: unsigned.fee, escrow: { txHash: escrow.txHash, block: escrow.block }, attribution: stored.result, shares: stored.entry.shares }
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
    const { entry } = await this.accept(d, event, bytes, ESCROW_WAIT_MS)
    await this.opts.router.publish(inferenceTopic(d.id), bytes).catch(() => 0)
    return entry
  }

  /**
   * Verifies an event (signature, datanet, model and its version, escrow on chain, nonce)
   * and stores it with this node's attribution. Throws a DatanetError naming the problem.
   */
  private async accept (d: FollowedDatanet, event: InferenceEvent, bytes: Uint8Array, escrowWaitMs = 0): Promise<{ entry: InferenceEntry, result: AttributionResult }> {
    const cid = await inferenceEventCid(bytes)
    const known = await this.opts.db.inferences.get(cid.toString())
    if (event.datanet !== d.id) throw fail(InferenceErrorCode.BAD_REQUEST, `the event is for datanet ${event.datanet}, not ${d.id}`)
    const signer = inferenceSigner(event, this.opts.binding)
    if (signer === undefined || signer !== getAddress(event.operator)) throw fail(InferenceErrorCode.BAD_SIGNATURE, 'the event is not signed by its operator')
    const model = await this.modelRecord(d, event.model)
    if (model.version !== event.version) throw fail(InferenceErrorCode.BAD_REQUEST, `model ${model.id} was trained on version ${model.version}, not ${event.version}`)
    if (known === undefined && await this.nonceUsed(event.operator, event.nonce)) throw fail(InferenceErrorCode.REPLAYED, `nonce ${event.nonce} of ${event.operator} was used before`, 'conflict')
    const eventId = inferenceEventId(this.opts.binding, event)
    const paid = await this.escrowOf(d, eventId, event.operator, escrowWaitMs)
    if (paid === undefined) throw fail(InferenceErrorCode.NO_ESCROW, `no fee escrowed on chain for event ${eventId}`, 'conflict')
    if (paid.amount !== BigInt(event.fee) || paid.payer !== event.operator.toLowerCase()) throw fail(InferenceErrorCode.NO_ESCROW, `the escrow for event ${eventId} is ${paid.amount} wei from ${paid.payer}, not ${event.fee} from ${event.operator}`)
    const result = await this.opts.attribution.attribute(d, event.version, event.output, event.prompt, BigInt(event.fee), eventId)
    if (result === undefined) throw fail(InferenceErrorCode.NO_VERSION, `version ${event.version} is not final here yet`, 'conflict')
    const counts = await this.opts.attribution.recordsByContributor(d, event.version)
    const shares = eventShares(result, counts).map(s => ({ address: s.address, amount: s.amount.toString() }))
    if (known !== undefined) return { entry: known, result }
    await this.opts.helia.blockstore.put(cid, bytes)
    await pin(this.opts.helia, cid)
    const entry: InferenceEntry = {
      cid: cid.toString(), datanet: d.id, eventId, model: event.model, version: event.version, operator: event.operator, nonce: event.nonce,
      fee: event.fee, shares, resultHash: result.resultHash, receivedAt: Date.now(), included: null
    }
    const used = await this.usedNonces()
    // checked again here: two events with one nonce may have been verified concurrently
    if (used.has(`${event.operator.toLowerCase()}/${event.nonce}`)) throw fail(InferenceErrorCode.REPLAYED, `nonce ${event.nonce} of ${event.operator} was used before`, 'conflict')
    used.add(`${event.operator.toLowerCase()}/${event.nonce}`)
    await this.opts.db.inferences.put(entry.cid, entry)
    this.opts.onPending(d.id)
    return { entry, result }
  }

  private async escrowOf (d: FollowedDatanet, eventId: string, operator: string, waitMs: number): Promise<{ payer: string, amount: bigint } | undefined> {
    const deadline = Date.now() + waitMs
    for (;;) {
      const paid = this.opts.chain?.inferencePaid(d, eventId, operator)
      if (paid !== undefined || Date.now() >= deadline) return paid
      await this.opts.chain?.refresh()
      if (this.opts.chain?.inferencePaid(d, eventId, operator) !== undefined) continue
      await new Promise(resolve => setTimeout(resolve, 250))
    }
  }

  /** Operators' used nonces (`operator/nonce`), read from the stored events once, then kept up to date. */
  private nonces: Promise<Set<string>> | undefined

  private async usedNonces (): Promise<Set<string>> {
    this.nonces ??= (async () => {
      const used = new Set<string>()
      for await (const [, e] of this.opts.db.inferences.entries()) used.add(`${e.operator.toLowerCase()}/${e.nonce}`)
      return used
    })()
    return await this.nonces
  }

  private async nonceUsed (operator: string, nonce: string): Promise<boolean> {
    return (await this.usedNonces()).has(`${operator.toLowerCase()}/${nonce}`)
  }

  /** Verified events not yet in a version, in CID order. */
  async pending (d: FollowedDatanet, limit: number): Promise<InferenceEntry[]> {
    const out: InferenceEntry[] = []
    for await (const [, e] of this.opts.db.inferences.entries()) if (e.datanet === d.id && e.included === null) out.push(e)
    return out.sort((a, b) => (a.cid < b.cid ? -1 : a.cid > b.cid ? 1 : 0)).slice(0, limit)
  }

  /** An event a proposal includes: known, or fetched by CID and verified. Undefined when it does not verify. */
  async ensure (d: FollowedDatanet, cid: string): Promise<InferenceEntry | undefined> {
    const known = await this.opts.db.inferences.get(cid)
    if (known !== undefined) return known
    try {
      const bytes = await getBlock(this.opts.helia, CID.parse(cid), { signal: AbortSignal.timeout(10_000) })
      const event = decodeInferenceEvent(bytes, MAX_TEXT_BYTES)
      return (await this.accept(d, event, bytes, ESCROW_WAIT_MS)).entry
    } catch (err) {
      this.log.warn({ datanet: d.id, event: cid, err: (err as Error).message }, 'an inference event a proposal includes does not verify here')
      return undefined
    }
  }

  async markIncluded (cids: readonly string[], height: number): Promise<void> {
    for (const cid of cids) {
      const e = await this.opts.db.inferences.get(cid)
      if (e !== undefined) await this.opts.db.inferences.put(cid, { ...e, included: height })
    }
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
      topic: inferenceTopic(d.id),
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
        // [REJECT] another datanet, a bad signature, a replayed nonce
        if (event.datanet !== d.id) throw reject('INFERENCE_ERROR_WRONG_DATANET', 'event for another datanet')
        const signer = inferenceSigner(event, this.opts.binding)
        if (signer === undefined || signer !== event.operator) throw reject('INFERENCE_ERROR_BAD_SIGNATURE', 'event not signed by its operator')
        try {
          await this.accept(d, event, msg.bytes, ESCROW_WAIT_MS)
        } catch (err) {
          const code = (err as DatanetError).code ?? 'INFERENCE_ERROR'
          // an unknown model or a version not final here yet may resolve later: not the sender's fault
          if (code === InferenceErrorCode.UNKNOWN_MODEL || code === InferenceErrorCode.NO_VERSION) throw ignore(code, (err as Error).message)
          throw reject(code, (err as Error).message)
        }
      },
      handle: () => {}
    }
  }

  private modelHandler (d: FollowedDatanet): TopicHandler<{ bytes: Uint8Array, record: ModelRecord }> {
    return {
      topic: modelTopic(d.id),
      kind: 'models',
      holdUntilSubscribed: true,
      scoreParams: datanetTopicScoreParams(),
      decode: (data: Uint8Array) => {
        try {
          return { bytes: data, record: decodeModelRecord(data) }
        } catch (err) {
          throw reject('MODEL_ERROR_MALFORMED', (err as Error).message)
        }
      },
      validate: async (msg) => {
        const cid = await modelRecordCid(msg.bytes)
        if (await this.opts.db.models.has(cid.toString())) throw ignore('MODEL_ERROR_KNOWN', 'model already known')
        try {
          await this.acceptModel(d, cid, msg.record)
        } catch (err) {
          throw reject((err as DatanetError).code ?? 'MODEL_ERROR', (err as Error).message)
        }
        await this.opts.helia.blockstore.put(cid, msg.bytes)
      },
      handle: () => {}
    }
  }
}
