import { replayRegistryLog, type DatanetChainState, type RegistryEvent } from './registry-state.ts'

/** Where the follower reads the chain (the registry client, or a fake in tests). */
export interface ChainSource {
  blockNumber: () => Promise<number>
  blockHash: (n: number) => Promise<string | undefined>
  events: (from: number, to: number) => Promise<RegistryEvent[]>
}

export interface Checkpoint {
  /** The last block read (and its events stored); startBlock - 1 before any. */
  block: number
  /** Hashes of recently read blocks, to find where a reorg forked. */
  hashes: Array<[number, string]>
}

/** Durable follower state: the events read so far and the checkpoint, written together. */
export interface FollowerStore {
  load: () => Promise<{ checkpoint: Checkpoint | undefined, events: RegistryEvent[] }>
  /** Atomically appends events and moves the checkpoint. */
  append: (events: readonly RegistryEvent[], checkpoint: Checkpoint) => Promise<void>
  /** Drops events above `block` (a reorg) and moves the checkpoint back. */
  rewind: (block: number, checkpoint: Checkpoint) => Promise<void>
}

export interface ChainFollowerOptions {
  source: ChainSource
  store: FollowerStore
  /** Blocks a block must have on top of it before its events count. */
  confirmations: number
  /** First block to read (the registry's deployment block, when known). */
  startBlock: number
  /** Largest block range per log query. */
  batchBlocks?: number
  onEvents?: (events: readonly RegistryEvent[]) => void
  onReorg?: (forkBlock: number, droppedEvents: number) => void
}

const KEEP_HASHES = 128

/**
 * Reads the registry's events from a checkpoint, only from blocks with enough
 * confirmations, and undoes what a reorg replaced. `poll()` does one step; the caller
 * schedules it (and logs its errors: an RPC outage only delays the next poll).
 */
export class ChainFollower {
  private readonly opts: ChainFollowerOptions
  private events: RegistryEvent[] = []
  private checkpoint: Checkpoint
  private states = new Map<string, DatanetChainState>()
  private head = -1

  constructor (opts: ChainFollowerOptions) {
    this.opts = opts
    this.checkpoint = { block: opts.startBlock - 1, hashes: [] }
  }

  async load (): Promise<void> {
    const { checkpoint, events } = await this.opts.store.load()
    if (checkpoint !== undefined) this.checkpoint = checkpoint
    this.events = events
    this.states = replayRegistryLog(events)
  }

  state (datanetId: string): DatanetChainState | undefined {
    return this.states.get(datanetId.toLowerCase())
  }

  /** The last block whose events are applied. */
  get block (): number {
    return this.checkpoint.block
  }

  /** The chain head seen at the last poll (-1 before any). */
  get headBlock (): number {
    return this.head
  }

  /** Reads what became confirmed since the last poll. Returns the number of new events. */
  async poll (): Promise<number> {
    const { source, confirmations } = this.opts
    this.head = await source.blockNumber()
    await this.detectReorg()
    const target = this.head - confirmations
    const batch = this.opts.batchBlocks ?? 2000
    let added = 0
    while (this.checkpoint.block < target) {
      const from = this.checkpoint.block + 1
      const to = Math.min(target, from + batch - 1)
      const events = await source.events(from, to)
      const hash = await source.blockHash(to)
      if (hash === undefined) break
      const hashes = [...this.checkpoint.hashes, [to, hash] as [number, string]].slice(-KEEP_HASHES)
      const checkpoint = { block: to, hashes }
      await this.opts.store.append(events, checkpoint)
      this.checkpoint = checkpoint
      // one by one: a spread of a busy range's events would overflow the stack
      for (const e of events) this.events.push(e)
      // an anchor's transaction lies in one block, so a batch never splits one
      replayRegistryLog(events, this.states)
      added += events.length
      if (events.length > 0) this.opts.onEvents?.(events)
    }
    return added
  }

  /** When a block we read is no longer on the chain, drops everything after the fork. */
  private async detectReorg (): Promise<void> {
    const known = this.checkpoint.hashes
    const last = known[known.length - 1]
    if (last === undefined || await this.opts.source.blockHash(last[0]) === last[1]) return
    let fork = this.opts.startBlock - 1
    for (let i = known.length - 2; i >= 0; i--) {
      const [n, hash] = known[i] as [number, string]
      if (await this.opts.source.blockHash(n) === hash) { fork = n; break }
    }
    const kept = this.events.filter(e => e.block <= fork)
    const dropped = this.events.length - kept.length
    const checkpoint = { block: fork, hashes: known.filter(([n]) => n <= fork) }
    await this.opts.store.rewind(fork, checkpoint)
    this.checkpoint = checkpoint
    this.events = kept
    this.states = replayRegistryLog(kept)
    this.opts.onReorg?.(fork, dropped)
  }
}
