import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { DatanetError } from '../../src/errors.ts'
import { faultsFromEnv } from '../../node/services/faults.ts'

test('faults come from the environment only where the CLI asks, and are checked there', () => {
  assert.equal(faultsFromEnv({}), { fault: undefined, floodCount: undefined, floodBytes: undefined })
  assert.equal(faultsFromEnv({ DATANET_FAULT: 'proposal-flood', DATANET_FAULT_FLOOD: '3', DATANET_FAULT_FLOOD_BYTES: '0' }), { fault: 'proposal-flood', floodCount: 3, floodBytes: 0 })
  for (const env of [{ DATANET_FAULT: 'equivocat' }, { DATANET_FAULT_FLOOD: '0' }, { DATANET_FAULT_FLOOD_BYTES: '1.5' }]) {
    try {
      faultsFromEnv(env)
      assert.unreachable(JSON.stringify(env))
    } catch (err) {
      assert.instance(err, DatanetError)
      assert.is((err as DatanetError).code, 'CONFIG_ERROR_FAULT')
    }
  }
})

test.run()
