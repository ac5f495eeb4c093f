import type { Checkpoint, FollowerStore } from '../chain/follower.ts'
import type { RegistryEvent } from '../chain/registry-state.ts'
import type { Repository } from './repository.ts'

const CHECKPOINT = 'checkpoint'
const LOG = 'log/'
const logKey = (e: { block: number, logIndex: number }): string => `${LOG}${e.block.toString(16).padStart(12, '0')}/${e.logIndex.toString(16).padStart(8, '0')}`

// bigints as tagged decimal strings: JSON has no integers that large
const encode = (e: RegistryEvent): Record<string, unknown> => JSON.parse(JSON.stringify(e, (_k, v: unknown) => typeof v === 'bigint' ? `n:${v.toString()}` : v)) as Record<string, unknown>
const decode = (json: Record<string, unknown>): RegistryEvent => JSON.parse(JSON.stringify(json), (_k, v: unknown) => typeof v === 'string' && /^n:\d+$/.test(v) ? BigInt(v.slice(2)) : v) as RegistryEvent

/** The chain follower's log and checkpoint in the state database, each step one atomic batch. */
export function levelFollowerStore (repo: Repository<string, Record<string, unknown>>): FollowerStore {
  return {
    async load () {
      const checkpoint = await repo.get(CHECKPOINT) as Checkpoint | undefined
      const events: RegistryEvent[] = []
      for await (const [, value] of repo.entries({ gte: LOG, lt: 'log0' })) events.push(decode(value))
      return { checkpoint, events }
    },
    async append (events, checkpoint) {
      await repo.write([...events.map(e => [logKey(e), encode(e)] as [string, Record<string, unknown>]), [CHECKPOINT, checkpoint as unknown as Record<string, unknown>]])
    },
    async rewind (block, checkpoint) {
      const drop: string[] = []
      for await (const [key] of repo.entries({ gte: logKey({ block: block + 1, logIndex: 0 }), lt: 'log0' })) drop.push(key)
      await repo.write([[CHECKPOINT, checkpoint as unknown as Record<string, unknown>]], drop)
    }
  }
}
