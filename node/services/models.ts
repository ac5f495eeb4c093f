import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 as sha256Hasher } from 'multiformats/hashes/sha2'
import { cidOf, decodeCbor, encodeCbor } from '../../src/codec/cbor.ts'
import type { DomainBinding } from '../../src/codec/eip712.ts'
import { DatanetError } from '../../src/errors.ts'
import {
  EXTERNAL_MODEL_KIND, NGRAM_MODEL_KIND, decodeModelRecord, encodeExternalModelRef, encodeModelRecord, modelRecordCid, modelSigner, signModelRecord, type ModelRecord
} from '../../src/inference/model-record.ts'
import { decodeModel, encodeModel, trainNgram, type NgramModel } from '../../src/model/ngram.ts'
import { ignore, reject, type GossipRouter, type TopicHandler } from '../../src/network/gossip.ts'
import { datanetTopicScoreParams, topics } from '../../src/network/topics.ts'
import type { ModelEntry, StateDatabase } from '../../src/storage/state-db.ts'
import { versionRecords } from './attribution.ts'
import { getBlock, pin } from './blocks.ts'
import type { FollowedDatanet } from './datanets.ts'
import { InferenceErrorCode, fail } from './inferences.ts'
import type { Helia } from '@helia/interface'
import type { Wallet } from 'ethers'
import type { Logger } from '../logger.ts'

/** Bitswap moves blocks of up to 2 MiB: larger artifacts are stored as a list of 1 MiB chunks. */
const ARTIFACT_CHUNK = 1024 * 1024

export interface ModelServiceOptions {
  db: StateDatabase
  helia: Helia
  router: GossipRouter
  wallet: Wallet
  binding: Omit<DomainBinding, 'datanet'>
  logger: Logger
}

/**
 * A datanet's models: trained here or registered, signed by their operator, gossiped,
 * and loaded for inference. The one writer of the models repository.
 */
export class ModelService {
  private readonly opts: ModelServiceOptions
  private readonly loaded = new Map<string, NgramModel>()

  constructor (opts: ModelServiceOptions) {
    this.opts = opts
  }

  follow (d: FollowedDatanet): void {
    this.opts.router.register(this.handler(d))
  }

  /** Trains the reference n-gram model on version `height` of the dataset and registers it. */
  async train (d: FollowedDatanet, height: number): Promise<ModelEntry> {
    const texts: string[] = []
    let previous = 0
    const versions = await this.opts.db.versions.of(d.id)
    for (const entry of versions) {
      if (entry.height > height) break
      for (const r of await versionRecords(this.opts.db, this.opts.helia, d, entry, previous)) texts.push(r.text)
      previous = entry.recordCount
    }
    if (previous === 0 || versions.every(v => v.height !== height)) {
      throw fail(InferenceErrorCode.NO_VERSION, `datanet ${d.id} has no final version ${height} with records here`, 'not_found')
    }
    const model = trainNgram(texts)
    const artifact = await this.putArtifact(encodeModel(model))
    const entry = await this.register(d, { version: height, kind: NGRAM_MODEL_KIND, artifact: artifact.toString() })
    this.loaded.set(entry.id, model)
    this.opts.logger.info({ datanet: d.id, model: entry.id, version: height, records: texts.length }, 'model trained')
    return entry
  }

  /** Registers a model (trained here or elsewhere) under this node's key, and gossips it. */
  async register (d: FollowedDatanet, m: { version: number, kind: string, artifact: string }): Promise<ModelEntry> {
    let artifact: CID
    try { artifact = CID.parse(m.artifact) } catch { throw fail(InferenceErrorCode.BAD_REQUEST, `artifact: not a CID: ${m.artifact}`) }
    if ((await this.opts.db.versions.at(d.id, m.version)) === undefined) {
      throw fail(InferenceErrorCode.NO_VERSION, `datanet ${d.id} has no final version ${m.version}`, 'not_found')
    }
    const record = await signModelRecord(this.opts.wallet, this.opts.binding, { datanet: d.id, version: m.version, kind: m.kind, artifact: artifact.toString(), operator: this.opts.wallet.address, createdAt: Date.now() })
    const bytes = encodeModelRecord(record)
    const cid = await modelRecordCid(bytes)
    await this.opts.helia.blockstore.put(cid, bytes)
    await pin(this.opts.helia, cid)
    const entry = this.modelEntry(cid.toString(), record)
    await this.opts.db.models.put(entry)
    await this.opts.router.publish(topics.models(d.id), bytes).catch(() => 0)
    return entry
  }

  /**
   * This operator's record of an external model (an OpenAI-compatible server's model) on
   * the datanet's latest final version: the one registered before, else a new one. Its
   * artifact is the server's endpoint and model name, stored and pinned like any artifact.
   * No version trained it: the latest is the one whose records its output can copy most,
   * and like any model's, it is fixed in the record the event names.
   */
  async external (d: FollowedDatanet, ref: { endpoint: string, name: string }): Promise<ModelEntry> {
    const latest = await this.opts.db.versions.latest(d.id)
    if (latest === undefined) throw fail(InferenceErrorCode.NO_VERSION, `datanet ${d.id} has no final version yet to attribute against`, 'conflict')
    const artifact = await this.putArtifact(encodeExternalModelRef({ endpoint: ref.endpoint, model: ref.name }))
    const known = (await this.opts.db.models.of(d.id)).find(m =>
      m.kind === EXTERNAL_MODEL_KIND && m.artifact === artifact.toString() && m.version === latest.height && m.operator === this.opts.wallet.address)
    return known ?? await this.register(d, { version: latest.height, kind: EXTERNAL_MODEL_KIND, artifact: artifact.toString() })
  }

  async list (d: FollowedDatanet): Promise<ModelEntry[]> {
    return await this.opts.db.models.of(d.id)
  }

  private modelEntry (id: string, r: ModelRecord): ModelEntry {
    return { id, datanet: r.datanet, version: r.version, kind: r.kind, artifact: r.artifact, operator: r.operator, createdAt: r.createdAt }
  }

  /** A model's record: from the state db, else fetched (bitswap, until `signal` or 10 s) and verified. */
  async record (d: FollowedDatanet, id: string, signal?: AbortSignal): Promise<ModelEntry> {
    const known = await this.opts.db.models.get(id)
    if (known !== undefined) return known
    let cid: CID
    try { cid = CID.parse(id) } catch { throw fail(InferenceErrorCode.BAD_REQUEST, `model: not a CID: ${id}`) }
    let record: ModelRecord
    try {
      const timeout = AbortSignal.timeout(10_000)
      record = decodeModelRecord(await getBlock(this.opts.helia, cid, { signal: signal === undefined ? timeout : AbortSignal.any([signal, timeout]) }))
    } catch (err) {
      throw fail(InferenceErrorCode.UNKNOWN_MODEL, `model ${id} is not known and could not be fetched: ${(err as Error).message}`, 'not_found')
    }
    return await this.acceptModel(d, cid, record)
  }

  private async acceptModel (d: FollowedDatanet, cid: CID, record: ModelRecord): Promise<ModelEntry> {
    if (record.datanet !== d.id) throw fail(InferenceErrorCode.UNKNOWN_MODEL, `model ${cid.toString()} is for another datanet`)
    if (modelSigner(record, this.opts.binding) !== record.operator) throw fail(InferenceErrorCode.BAD_SIGNATURE, `model ${cid.toString()} is not signed by its operator`)
    const entry = this.modelEntry(cid.toString(), record)
    await this.opts.db.models.put(entry)
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

  async load (entry: ModelEntry): Promise<NgramModel> {
    const cached = this.loaded.get(entry.id)
    if (cached !== undefined) return cached
    const cid = CID.parse(entry.artifact)
    const signal = AbortSignal.timeout(60_000)
    let bytes = await getBlock(this.opts.helia, cid, { signal })
    if (cid.code !== raw.code) {
      const root = decodeCbor<{ chunks: CID[] }>(bytes)
      bytes = Buffer.concat(await Promise.all(root.chunks.map(async c => await getBlock(this.opts.helia, c, { signal }))))
    }
    const model = decodeModel(bytes)
    this.loaded.set(entry.id, model)
    return model
  }

  private handler (d: FollowedDatanet): TopicHandler<{ bytes: Uint8Array, record: ModelRecord }> {
    return {
      topic: topics.models(d.id),
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
          if (!(err instanceof DatanetError)) throw err
          // [REJECT] a record of another datanet, or not signed by its operator
          throw reject(err.code, err.message)
        }
        await this.opts.helia.blockstore.put(cid, msg.bytes)
      },
      handle: () => {}
    }
  }
}
