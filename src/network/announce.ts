import type { Wallet } from 'ethers'
import { recoverSigner } from '../codec/signer.ts'
import { decodeCbor, encodeCbor } from '../codec/cbor.ts'
import { datanetDomain, type DomainBinding } from '../codec/eip712.ts'
import { ignore, reject, type GossipContext, type GossipRouter, type TopicHandler } from './gossip.ts'
import type { PeerRecord, StateDatabase } from '../storage/state-db.ts'
import type { Logger } from 'pino'
import { topics } from './topics.ts'
import { typedHasher } from '../codec/typed-hash.ts'


/** A node's signed statement of who it is: binds its libp2p peer id to its Ethereum address. */
export interface NodeAnnouncement {
  peerId: string
  address: string
  multiaddrs: string[]
  agentVersion: string
  datanets: string[]
  timestamp: number
  signature: string
}

export const ANNOUNCEMENT_TYPES = {
  NodeAnnouncement: [
    { name: 'peerId', type: 'string' },
    { name: 'account', type: 'address' },
    { name: 'multiaddrs', type: 'string[]' },
    { name: 'agentVersion', type: 'string' },
    { name: 'datanets', type: 'string[]' },
    { name: 'timestamp', type: 'uint64' }
  ]
}

/** Its EIP-712 digest, compiled once (src/codec/typed-hash.ts). */
const announcementHash = typedHasher(ANNOUNCEMENT_TYPES)

const MAX_LIST = 32
const MAX_STRING = 512
/** How far in the future an announcement's clock may be before it is ignored. */
const MAX_CLOCK_SKEW_MS = 60_000

function typedValue (a: Omit<NodeAnnouncement, 'signature'>): Record<string, unknown> {
  return { peerId: a.peerId, account: a.address, multiaddrs: a.multiaddrs, agentVersion: a.agentVersion, datanets: a.datanets, timestamp: a.timestamp }
}

export async function signAnnouncement (wallet: Wallet, binding: DomainBinding, body: Omit<NodeAnnouncement, 'signature' | 'address'>): Promise<NodeAnnouncement> {
  const unsigned = { ...body, address: wallet.address }
  const signature = await wallet.signTypedData(datanetDomain({ ...binding, datanet: null }), ANNOUNCEMENT_TYPES, typedValue(unsigned))
  return { ...unsigned, signature }
}

const isString = (v: unknown): v is string => typeof v === 'string' && v.length <= MAX_STRING
const isStringList = (v: unknown): v is string[] => Array.isArray(v) && v.length <= MAX_LIST && v.every(isString)

export function decodeAnnouncement (bytes: Uint8Array): NodeAnnouncement {
  let a: Partial<NodeAnnouncement>
  try {
    a = decodeCbor<Partial<NodeAnnouncement>>(bytes)
  } catch {
    throw reject('ANNOUNCE_ERROR_MALFORMED', 'announcement is not dag-cbor')
  }
  // [REJECT] every field present with its type and within its bounds
  if (typeof a !== 'object' || a === null || !isString(a.peerId) || !isString(a.address) || !/^0x[0-9a-fA-F]{40}$/.test(a.address) ||
    !isStringList(a.multiaddrs) || !isString(a.agentVersion) || !isStringList(a.datanets) ||
    !Number.isSafeInteger(a.timestamp) || (a.timestamp as number) < 0 || !isString(a.signature)) {
    throw reject('ANNOUNCE_ERROR_MALFORMED', 'announcement has missing or malformed fields')
  }
  return a as NodeAnnouncement
}

export interface AnnounceOptions {
  router: GossipRouter
  db: StateDatabase
  wallet: Wallet
  binding: DomainBinding
  peerId: string
  intervalMs: number
  agentVersion: string
  multiaddrs: () => string[]
  datanets: () => string[]
  /** Another node's announcement, verified and newer than the last one of that peer: who to keep connected to. */
  onPeer?: (peerId: string, multiaddrs: readonly string[]) => void
  logger: Logger
  now?: () => number
}

/**
 * Publishes this node's announcement every interval, and keeps what other nodes
 * announce in the peers repository.
 */
export class AnnounceService implements TopicHandler<NodeAnnouncement> {
  readonly topic = topics.announce
  readonly kind = 'announce'
  private timer: NodeJS.Timeout | undefined
  private readonly now: () => number
  /** Latest timestamp accepted per peer: anything not newer is a replay or stale. */
  private readonly latest = new Map<string, number>()

  private readonly opts: AnnounceOptions

  constructor (opts: AnnounceOptions) {
    this.opts = opts
    this.now = opts.now ?? Date.now
  }

  async start (): Promise<void> {
    for (const record of await this.opts.db.peers.values()) this.latest.set(record.peerId, record.announcedAt)
    this.opts.router.register(this)
    const tick = (): void => {
      this.announce().catch(err => this.opts.logger.warn({ err }, 'announcement failed'))
    }
    this.timer = setInterval(tick, this.opts.intervalMs)
    this.timer.unref()
    tick()
  }

  stop (): void {
    clearInterval(this.timer)
    this.timer = undefined
  }

  async announce (): Promise<number> {
    const announcement = await signAnnouncement(this.opts.wallet, this.opts.binding, {
      peerId: this.opts.peerId,
      multiaddrs: this.opts.multiaddrs().slice(0, MAX_LIST),
      agentVersion: this.opts.agentVersion,
      datanets: this.opts.datanets().slice(0, MAX_LIST),
      timestamp: this.now()
    })
    return await this.opts.router.publish(this.topic, encodeCbor(announcement))
  }

  decode (data: Uint8Array): NodeAnnouncement {
    return decodeAnnouncement(data)
  }

  validate (a: NodeAnnouncement, ctx: GossipContext): void {
    // [REJECT] the announced peer id is the peer that signed the gossip message
    if (a.peerId !== ctx.publisher.toString()) throw reject('ANNOUNCE_ERROR_WRONG_PEER', 'announcement names another peer than its publisher')
    // [IGNORE] not newer than the latest announcement accepted from this peer
    if (a.timestamp <= (this.latest.get(a.peerId) ?? -1)) throw ignore('ANNOUNCE_ERROR_STALE', 'announcement is not newer than the last one')
    // [IGNORE] not from the future beyond a small clock skew
    if (a.timestamp > this.now() + MAX_CLOCK_SKEW_MS) throw ignore('ANNOUNCE_ERROR_FUTURE', 'announcement is dated in the future')
    // [REJECT] the signature recovers to the announced address
    let signer: string
    try {
      signer = recoverSigner(announcementHash(datanetDomain({ ...this.opts.binding, datanet: null }), typedValue(a)), a.signature)
    } catch {
      throw reject('ANNOUNCE_ERROR_BAD_SIGNATURE', 'announcement signature is malformed')
    }
    if (signer.toLowerCase() !== a.address.toLowerCase()) throw reject('ANNOUNCE_ERROR_BAD_SIGNATURE', 'announcement is not signed by its address')
  }

  async handle (a: NodeAnnouncement): Promise<void> {
    if (a.timestamp <= (this.latest.get(a.peerId) ?? -1)) return
    this.latest.set(a.peerId, a.timestamp)
    const record: PeerRecord = {
      peerId: a.peerId,
      address: a.address,
      multiaddrs: a.multiaddrs,
      agentVersion: a.agentVersion,
      datanets: a.datanets,
      announcedAt: a.timestamp
    }
    await this.opts.db.peers.put(a.peerId, record)
    this.opts.onPeer?.(a.peerId, a.multiaddrs)
  }
}
