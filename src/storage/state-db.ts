import { ClassicLevel } from 'classic-level'
import { DatanetError } from '../errors.ts'
import { Repository, jsonCodec, type Bytes, type StateDb } from './repository.ts'

/** What this node learnt of another node from its announcements. */
export interface PeerRecord {
  peerId: string
  /** The peer's Ethereum address, as it signed its announcement. */
  address: string
  multiaddrs: string[]
  agentVersion: string
  datanets: string[]
  /** The latest announcement's own timestamp (the peer's clock, ms since the epoch). */
  announcedAt: number
}

/** Node-local facts that outlive a restart. */
export interface NodeFacts {
  starts: number
  firstStartedAt: string
  lastStartedAt: string
}

/** The node's state database: a classic-level store holding one repository per entity. */
export class StateDatabase {
  readonly db: StateDb
  readonly peers: Repository<string, PeerRecord>
  readonly facts: Repository<string, NodeFacts>

  constructor (path: string) {
    this.db = new ClassicLevel<Bytes, Bytes>(path, { keyEncoding: 'view', valueEncoding: 'view' })
    this.peers = new Repository(this.db, 'peers', jsonCodec<PeerRecord>())
    this.facts = new Repository(this.db, 'facts', jsonCodec<NodeFacts>())
  }

  async open (): Promise<void> {
    try {
      await this.db.open()
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause
      if ((err as { code?: string }).code === 'LEVEL_LOCKED' || cause?.code === 'LEVEL_LOCKED') {
        throw new DatanetError({ code: 'STATE_DB_ERROR_LOCKED' }, `state database ${this.db.location} is locked by another process`, 'usage', { cause: err })
      }
      throw new DatanetError({ code: 'STATE_DB_ERROR_OPEN' }, `cannot open the state database ${this.db.location}`, 'failure', { cause: err })
    }
  }

  async close (): Promise<void> {
    await this.db.close()
  }
}
