/**
 * One contribution of N small records made final on a validator's store and caught up by
 * another store, in this process (the test runs it in a small heap: one batch of such a
 * version held ~8 buffers a record, and every node of `big.ts` reached its heap limit).
 * Prints the two stores' record counts and roots as JSON.
 *
 *   node --max-old-space-size=M test/helpers/large-version.ts N DIR
 */
import { join } from 'node:path'
import { createLogger } from '../../node/logger.ts'
import { DatanetVersions } from '../../node/services/consensus/versions.ts'
import { StateDatabase } from '../../src/storage/state-db.ts'
import { binding, contribution, datanet, memoryHelia, wallets } from './versions-world.ts'

const records = Number(process.argv[2])
const dir = process.argv[3] as string
const logger = createLogger({ level: 'silent', format: 'json' })
const d = await datanet()
const helia = memoryHelia()
// shards of ~8,000 records, as ingest packs records of ~120 B into 1 MiB shards
const lines = (from: number, to: number): string[] => Array.from({ length: to - from }, (_, i) => `record ${from + i} of the large contribution`)

const validator = new StateDatabase(join(dir, 'validator'))
await validator.open()
await contribution(validator, helia, d, lines(0, records), wallets.slice(0, 3), 'accepted', undefined, 8_000)
const made = new DatanetVersions({ db: validator, helia, binding, logger }, d, logger)
await made.load()
const value = await made.build(1, d.validators, wallets[0]!.address, 1)
if (value === undefined) throw new Error('nothing to propose')
process.stderr.write('checking the proposal\n')
if (await made.problem(value, d.validators) !== undefined) throw new Error('the proposal does not check')
process.stderr.write('finalizing it\n')
await made.finalize(0, value, [], 1)
process.stderr.write('catching it up on another store\n')
await validator.close()

const late = new StateDatabase(join(dir, 'late'))
await late.open()
await contribution(late, helia, d, lines(0, records), [], 'accepted', undefined, 8_000)
const caught = new DatanetVersions({ db: late, helia, binding, logger }, d, logger)
await caught.load()
const { applied, problem } = await caught.finalizeRange([{ round: 0, value, certificate: [] }], () => d.validators, 2)
await late.close()
process.stdout.write(JSON.stringify({ final: made.last?.recordCount, caughtUp: applied[0]?.recordCount, problem, sameRoot: made.last?.datasetRoot === caught.last?.datasetRoot }) + '\n')
