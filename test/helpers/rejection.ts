import * as assert from 'uvu/assert'
import { DatanetError } from '../../src/errors.ts'

/** The DatanetError a promise rejects with; fails the test when it resolves or rejects with anything else. */
export async function datanetRejection (promise: Promise<unknown>): Promise<DatanetError> {
  try {
    await promise
  } catch (err) {
    assert.instance(err, DatanetError)
    return err as DatanetError
  }
  assert.unreachable('expected the promise to reject')
  throw new Error('unreachable')
}
