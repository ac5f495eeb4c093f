/**
 * One InferenceService over a real level store, with fakes for what it reaches beyond it
 * (Helia, the gossip router, the chain view, the attribution index); and a second signer
 * that produces other valid signatures over the same digest (a different nonce k).
 */
import { join } from 'node:path'
import { Wallet, getBytes } from 'ethers'
import { pino } from 'pino'
import { cidOf } from '../../src/codec/cbor.ts'
import { toHex } from '../../src/codec/hash.ts'
import {
  encodeInferenceEvent, inferenceEventCid, inferenceEventId, signInferenceEvent, type InferenceEvent, type UnsignedInferenceEvent
} from '../../src/inference/event.ts'
import { GossipValidationError, type TopicHandler } from '../../src/network/gossip.ts'
import { StateDatabase, type ModelEntry } from '../../src/storage/state-db.ts'
import { InferenceService } from '../../node/services/inferences.ts'
import { ModelService } from '../../node/services/models.ts'
import { topics } from '../../src/network/topics.ts'
import type { AttributionService } from '../../node/services/attribution.ts'
import type { ChainService } from '../../node/services/chain.ts'
import type { FollowedDatanet } from '../../node/services/datanets.ts'
import type { GossipRouter } from '../../src/network/gossip.ts'
import type { Helia } from '@helia/interface'
import type { CID } from 'multiformats/cid'
import { tempDir } from './tmp.ts'
import { memoryPins } from './memory-pins.ts'

// ---- a second ECDSA signature over one digest (secp256k1 in bigints; tests only) ---------

const P = 2n ** 256n - 2n ** 32n - 977n
const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n
const G: Point = [0x79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798n, 0x483ada7726a3c4655da4fbfc0e1108a8fd17b448a68554199c47d08ffb10d4b8n]
type Point = [bigint, bigint] | null

const mod = (a: bigint, m: bigint): bigint => ((a % m) + m) % m
function inv (a: bigint, m: bigint): bigint {
  let [r0, r1, t0, t1] = [mod(a, m), m, 1n, 0n]
  while (r1 !== 0n) { const q = r0 / r1;[r0, r1, t0, t1] = [r1, r0 - q * r1, t1, t0 - q * t1] }
  return mod(t0, m)
}
function add (a: Point, b: Point): Point {
  if (a === null) return b
  if (b === null) return a
  if (a[0] === b[0] && mod(a[1] + b[1], P) === 0n) return null
  const l = a[0] === b[0] ? mod(3n * a[0] * a[0] * inv(2n * a[1], P), P) : mod((b[1] - a[1]) * inv(b[0] - a[0], P), P)
  const x = mod(l * l - a[0] - b[0], P)
  return [x, mod(l * (a[0] - x) - a[1], P)]
}
function mul (k: bigint, p: Point): Point {
  let out: Point = null
  for (let q = p; k > 0n; k >>= 1n, q = add(q, q)) if ((k & 1n) === 1n) out = add(out, q)
  return out
}

/** A valid low-s signature over `digest` with the nonce `k` of our choosing: what an operator can always make. */
export function signWithK (wallet: Wallet, digest: string, k: bigint): Uint8Array {
  const d = BigInt(wallet.privateKey)
  const R = mul(k, G) as [bigint, bigint]
  const r = mod(R[0], N)
  let s = mod(inv(k, N) * (BigInt(digest) + r * d), N)
  let parity = Number(R[1] & 1n)
  if (s > N / 2n) { s = N - s; parity ^= 1 }
  const hex = r.toString(16).padStart(64, '0') + s.toString(16).padStart(64, '0')
  return new Uint8Array([...getBytes('0x' + hex), 27 + parity])
}

// ---- the service and its fakes -----------------------------------------------------------

export const BINDING = { chainId: 31337, registry: '0x' + '12'.repeat(20) }

export interface FakeHelia {
  blocks: Map<string, Uint8Array>
  /** Blocks a peer would serve (a fetch that is not local finds them here). */
  network: Map<string, Uint8Array>
  helia: Helia
}

/** A blockstore over a map: a block missing locally comes from `network`, or waits until the caller's signal aborts. */
export function fakeHelia (): FakeHelia {
  const blocks = new Map<string, Uint8Array>()
  const network = new Map<string, Uint8Array>()
  const helia = {
    ...memoryPins(),
    blockstore: {
      async * get (cid: CID, opts: { signal?: AbortSignal, offline?: boolean } = {}): AsyncGenerator<Uint8Array> {
        const local = blocks.get(cid.toString())
        if (local !== undefined) { yield local; return }
        const remote = network.get(cid.toString())
        if (remote !== undefined && opts.offline !== true) { blocks.set(cid.toString(), remote); yield remote; return }
        if (opts.offline === true) throw new Error(`block ${cid.toString()} not found offline`)
        // nobody has it: bitswap waits until the caller gives up
        await new Promise((_resolve, reject) => {
          if (opts.signal === undefined) return
          if (opts.signal.aborted) { reject(opts.signal.reason); return }
          opts.signal.addEventListener('abort', () => { reject(opts.signal?.reason) }, { once: true })
        })
      },
      async put (cid: CID, bytes: Uint8Array): Promise<CID> { blocks.set(cid.toString(), bytes); return cid },
      async has (cid: CID): Promise<boolean> { return blocks.has(cid.toString()) }
    },
  }
  return { blocks, network, helia: helia as unknown as Helia }
}

export interface FakeChain {
  paid: Map<string, { payer: string, amount: bigint }>
  /** What refresh() waits on (resolved at once unless a test replaces it). */
  refreshDelay: () => Promise<void>
  refreshes: number
  chain: ChainService
}

export function fakeChain (): FakeChain {
  const fake: FakeChain = {
    paid: new Map(),
    refreshDelay: async () => {},
    refreshes: 0,
    chain: undefined as unknown as ChainService
  }
  fake.chain = {
    inferencePaid: (_d: FollowedDatanet, eventId: string) => fake.paid.get(eventId.toLowerCase()),
    refresh: async () => { fake.refreshes++; await fake.refreshDelay() }
  } as unknown as ChainService
  return fake
}

export interface Fixture {
  service: InferenceService
  db: StateDatabase
  d: FollowedDatanet
  model: ModelEntry
  operator: Wallet
  helia: FakeHelia
  chain: FakeChain
  handlers: Map<string, TopicHandler<unknown>>
  published: Array<{ topic: string, data: Uint8Array }>
  pendingCalls: number
  /** What the fake attribution waits on before answering (at once unless a test replaces it). */
  attributeDelay: () => Promise<void>
  eventHandler: () => TopicHandler<unknown>
  modelHandler: () => TopicHandler<unknown>
  /** A fresh unsigned event on the fixture's model, its fee escrowed on the fake chain. */
  unsigned: (n: number, opts?: { escrow?: boolean }) => UnsignedInferenceEvent
  /** Signed by the operator, and a twin: the same event signed again with another k. */
  twins: (u: UnsignedInferenceEvent) => Promise<{ a: InferenceEvent, b: InferenceEvent, aCid: string, bCid: string, eventId: string }>
  /** A new service over the same store and fakes, as after a restart. */
  restart: () => void
  close: () => Promise<void>
}

const OPERATOR_KEY = '0x' + '5a'.repeat(32)

export async function inferenceFixture (): Promise<Fixture> {
  const tmp = tempDir('datanet-inference-')
  const db = new StateDatabase(join(tmp.dir, 'state'))
  await db.open()
  const datanet = (await cidOf(new TextEncoder().encode('datanet'))).toString()
  const d = { id: datanet, digest: '0x' + '00'.repeat(32) } as unknown as FollowedDatanet
  const model: ModelEntry = {
    id: (await cidOf(new TextEncoder().encode('model'))).toString(),
    datanet,
    version: 1,
    kind: 'ngram-v1',
    artifact: (await cidOf(new TextEncoder().encode('artifact'))).toString(),
    operator: new Wallet(OPERATOR_KEY).address,
    createdAt: 1
  }
  await db.models.put(model)
  const operator = new Wallet(OPERATOR_KEY)
  const helia = fakeHelia()
  const chain = fakeChain()
  const handlers = new Map<string, TopicHandler<unknown>>()
  const published: Array<{ topic: string, data: Uint8Array }> = []
  const router = {
    register: (h: TopicHandler<unknown>) => { handlers.set(h.topic, h) },
    publish: async (topic: string, data: Uint8Array) => { published.push({ topic, data }); return 1 }
  } as unknown as GossipRouter
  const attribution = {
    attribute: async (_d: FollowedDatanet, _h: number, _output: string, _prompt: string | null, fee: bigint) => {
      await fixture.attributeDelay()
      return { contributors: [{ address: '0x' + 'c1'.repeat(20), amount: (fee / 2n).toString() }], basePool: '0', resultHash: '0x' + 'ab'.repeat(32) }
    },
    weightsByContributor: async () => new Map<string, bigint>()
  } as unknown as AttributionService
  const fixture: Fixture = {
    service: undefined as unknown as InferenceService,
    db,
    d,
    model,
    operator,
    helia,
    chain,
    handlers,
    published,
    pendingCalls: 0,
    attributeDelay: async () => {},
    eventHandler: () => handlers.get(topics.inferences(datanet)) as TopicHandler<unknown>,
    modelHandler: () => handlers.get(topics.models(datanet)) as TopicHandler<unknown>,
    unsigned: (n, opts = {}) => {
      const u: UnsignedInferenceEvent = {
        datanet, model: model.id, version: 1, prompt: `prompt ${n}`, output: `output ${n}`,
        fee: '1000', nonce: toHex(new Uint8Array(32).fill(n)), operator: operator.address, timestamp: 1_700_000_000_000 + n
      }
      if (opts.escrow !== false) chain.paid.set(inferenceEventId(BINDING, u).toLowerCase(), { payer: operator.address.toLowerCase(), amount: 1000n })
      return u
    },
    twins: async (u) => {
      const a = await signInferenceEvent(operator, BINDING, u)
      const eventId = inferenceEventId(BINDING, u)
      const b = { ...u, signature: signWithK(operator, eventId, 0x1234567890abcdefn) }
      return { a, b, aCid: (await inferenceEventCid(encodeInferenceEvent(a))).toString(), bCid: (await inferenceEventCid(encodeInferenceEvent(b))).toString(), eventId }
    },
    restart: () => { fixture.service.stop(); start() },
    close: async () => { fixture.service.stop(); await db.close(); tmp.remove() }
  }
  const start = (): void => {
    handlers.clear()
    fixture.service = new InferenceService({
      db,
      helia: helia.helia,
      router,
      chain: chain.chain,
      attribution,
      models: new ModelService({ db, helia: helia.helia, router, wallet: operator as unknown as Wallet, binding: BINDING, logger: pino({ level: 'silent' }) }),
      wallet: operator as unknown as Wallet,
      binding: BINDING,
      logger: pino({ level: 'silent' }),
      onPending: () => { fixture.pendingCalls++ }
    })
    fixture.service.follow(d)
  }
  start()
  return fixture
}

/** Makes a node's peers able to serve an event's bytes (as bitswap would), by its CID. */
export async function serve (f: Fixture, e: InferenceEvent): Promise<string> {
  const bytes = encodeInferenceEvent(e)
  const cid = (await inferenceEventCid(bytes)).toString()
  f.helia.network.set(cid, bytes)
  return cid
}

/** What the inference topic's gossip validator decides for an event: 'accept', or the action and code it throws. */
export async function gossipVerdict (f: Fixture, e: InferenceEvent): Promise<string> {
  const h = f.eventHandler()
  try {
    await h.validate(h.decode(encodeInferenceEvent(e)), {} as never)
    return 'accept'
  } catch (err) {
    if (err instanceof GossipValidationError) return `${err.action} ${err.code}`
    throw err
  }
}
