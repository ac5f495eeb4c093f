/**
 * Helia's pin records in memory, for fake Helias: the datastore that node/services/blocks.ts
 * pinMany writes Helia's records into, Helia's isPinned over it, and the codecs its walk
 * decodes blocks with.
 */
import * as dagCbor from '@ipld/dag-cbor'
import * as cborg from 'cborg'
import type { Key } from 'interface-datastore'
import { base36 } from 'multiformats/bases/base36'
import type { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'

export interface MemoryPins {
  /** Every record by key (`/pin/…`, `/pinned-block/…`). */
  records: Map<string, Uint8Array>
  datastore: {
    get: (key: Key) => Promise<Uint8Array>
    has: (key: Key) => Promise<boolean>
    put: (key: Key, value: Uint8Array) => Promise<Key>
    batch: () => { put: (key: Key, value: Uint8Array) => void, delete: (key: Key) => void, commit: () => Promise<void> }
  }
  getCodec: (code: number) => Promise<typeof raw | typeof dagCbor>
  pins: { isPinned: (cid: CID) => Promise<boolean> }
  /** A root's pin (its depth), if pinned. */
  pinOf: (cid: CID) => { depth: number } | undefined
  /** The roots that pin a block, as CID strings of their bytes. */
  pinnersOf: (cid: CID) => number
}

export function memoryPins (): MemoryPins {
  const records = new Map<string, Uint8Array>()
  const blockKey = (cid: CID): string => `/pinned-block/${base36.encode(cid.multihash.bytes)}`
  return {
    records,
    datastore: {
      async get (key) {
        const value = records.get(key.toString())
        if (value === undefined) throw Object.assign(new Error(`${key.toString()} not found`), { name: 'NotFoundError' })
        return value
      },
      async has (key) { return records.has(key.toString()) },
      async put (key, value) { records.set(key.toString(), value); return key },
      batch () {
        const ops: Array<() => void> = []
        return {
          put (key, value) { ops.push(() => { records.set(key.toString(), value) }) },
          delete (key) { ops.push(() => { records.delete(key.toString()) }) },
          async commit () { for (const op of ops) op() }
        }
      }
    },
    getCodec: async code => code === raw.code ? raw : dagCbor,
    pins: { async isPinned (cid) { return records.has(blockKey(cid)) } },
    pinOf (cid) {
      const value = records.get(`/pin/${cid.toString(base36)}`)
      return value === undefined ? undefined : cborg.decode(value) as { depth: number }
    },
    pinnersOf (cid) {
      const value = records.get(blockKey(cid))
      return value === undefined ? 0 : (cborg.decode(value) as { pinCount: number }).pinCount
    }
  }
}
