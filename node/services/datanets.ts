import { CID } from 'multiformats/cid'
import * as dagCbor from '@ipld/dag-cbor'
import { decodeCbor } from '../../src/codec/cbor.ts'
import { encodeManifest, genesisValidatorSet, parseManifest, type Manifest, type ValidatorSet } from '../../src/datanet/manifest.ts'
import { compileRecordSchema, type RecordValidator } from '../../src/datanet/record-schema.ts'
import { DatanetError } from '../../src/errors.ts'
import type { StateDatabase } from '../../src/storage/state-db.ts'
import type { Helia } from '@helia/interface'
import type { Logger } from '../logger.ts'

export const DatanetErrorCode = {
  NOT_FOUND: 'DATANET_ERROR_NOT_FOUND',
  BAD_ID: 'DATANET_ERROR_BAD_ID',
  FETCH: 'DATANET_ERROR_FETCH'
} as const

/** A datanet this node follows, with what the hot paths need precomputed. */
export interface FollowedDatanet {
  id: string
  digest: string
  manifest: Manifest
  /** Until the registry contract exists, the manifest's genesis validators (DESIGN §4 flow 7). */
  validators: ValidatorSet
  validateRecord: RecordValidator
}

export interface DatanetServiceOptions {
  db: StateDatabase
  helia: Helia
  /** Ids from the config: followed once their manifest is fetched from peers. */
  configured: readonly string[]
  logger: Logger
  /** Called once per datanet when the node starts following it. */
  onFollow: (datanet: FollowedDatanet) => Promise<void> | void
  fetchRetryMs?: number
}

/** Manifests: create, fetch by id over bitswap, follow, list. */
export class DatanetService {
  private readonly opts: DatanetServiceOptions
  private readonly followed = new Map<string, FollowedDatanet>()
  private readonly fetching = new Map<string, AbortController>()
  private running = false

  constructor (opts: DatanetServiceOptions) {
    this.opts = opts
  }

  async start (): Promise<void> {
    this.running = true
    for (const entry of await this.opts.db.datanets.values()) {
      await this.follow(entry.id, parseManifest(entry.manifest))
    }
    for (const id of this.opts.configured) {
      if (!this.followed.has(id)) this.fetchInBackground(id)
    }
  }

  stop (): void {
    this.running = false
    for (const controller of this.fetching.values()) controller.abort()
    this.fetching.clear()
  }

  get (id: string): FollowedDatanet | undefined {
    return this.followed.get(id)
  }

  require (id: string): FollowedDatanet {
    const d = this.followed.get(id)
    if (d === undefined) throw new DatanetError({ code: DatanetErrorCode.NOT_FOUND }, `this node does not follow datanet ${id}`, 'not_found')
    return d
  }

  list (): FollowedDatanet[] {
    return [...this.followed.values()]
  }

  /** Stores a manifest in Helia and follows it; the datanet id is the manifest's CID. */
  async create (input: unknown, source: 'created' | 'api' = 'created'): Promise<{ datanet: FollowedDatanet, created: boolean }> {
    const manifest = parseManifest(input)
    compileRecordSchema(manifest.recordSchema)
    const encoded = await encodeManifest(manifest)
    const existing = this.followed.get(encoded.id)
    if (existing !== undefined) return { datanet: existing, created: false }
    await this.opts.helia.blockstore.put(encoded.cid, encoded.bytes)
    await this.opts.db.datanets.put(encoded.id, { id: encoded.id, manifest, addedAt: Date.now(), source })
    return { datanet: await this.follow(encoded.id, manifest), created: true }
  }

  private async follow (id: string, manifest: Manifest): Promise<FollowedDatanet> {
    const encoded = await encodeManifest(manifest)
    const datanet: FollowedDatanet = {
      id,
      digest: encoded.digest,
      manifest,
      validators: genesisValidatorSet(manifest),
      validateRecord: compileRecordSchema(manifest.recordSchema)
    }
    this.followed.set(id, datanet)
    await this.opts.onFollow(datanet)
    this.opts.logger.info({ datanet: id, name: manifest.name, validators: manifest.validators.length }, 'following datanet')
    return datanet
  }

  /** Fetches a manifest by id from peers (bitswap), checks it, stores and follows it. */
  async fetch (id: string, signal?: AbortSignal): Promise<FollowedDatanet> {
    const have = this.followed.get(id)
    if (have !== undefined) return have
    let cid: CID
    try {
      cid = CID.parse(id)
    } catch (err) {
      throw new DatanetError({ code: DatanetErrorCode.BAD_ID }, `not a datanet id: ${id}`, 'usage', { cause: err })
    }
    if (cid.code !== dagCbor.code) throw new DatanetError({ code: DatanetErrorCode.BAD_ID }, `not a datanet id (a dag-cbor CID): ${id}`, 'usage')
    const chunks: Uint8Array[] = []
    for await (const chunk of this.opts.helia.blockstore.get(cid, { signal })) chunks.push(chunk)
    const manifest = parseManifest(decodeCbor(Buffer.concat(chunks)))
    const encoded = await encodeManifest(manifest)
    // A manifest that does not re-encode to its id was not written with the defaults spelt out.
    if (encoded.id !== id) throw new DatanetError({ code: DatanetErrorCode.FETCH }, `manifest ${id} is not in canonical form`, 'failure')
    await this.opts.db.datanets.put(id, { id, manifest, addedAt: Date.now(), source: 'config' })
    return await this.follow(id, manifest)
  }

  private fetchInBackground (id: string): void {
    const controller = new AbortController()
    this.fetching.set(id, controller)
    let failures = 0
    const attempt = async (): Promise<void> => {
      while (this.running && !controller.signal.aborted) {
        try {
          await this.fetch(id, AbortSignal.any([controller.signal, AbortSignal.timeout(5_000)]))
          this.fetching.delete(id)
          return
        } catch (err) {
          if (controller.signal.aborted) return
          if (err instanceof DatanetError && err.kind === 'usage') {
            this.opts.logger.error({ err, datanet: id }, 'cannot follow configured datanet')
            return
          }
          failures++
          // First miss is worth a warning; the retries that follow are not.
          this.opts.logger[failures === 1 ? 'warn' : 'debug']({ datanet: id, err: (err as Error).message }, 'manifest not found yet; retrying')
          await new Promise(resolve => setTimeout(resolve, this.opts.fetchRetryMs ?? 1000).unref())
        }
      }
    }
    void attempt()
  }
}
