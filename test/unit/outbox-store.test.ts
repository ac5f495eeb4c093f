import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { join } from 'node:path'
import { levelOutboxStore } from '../../src/network/outbox-store.ts'
import { StateDatabase } from '../../src/storage/state-db.ts'
import { tempDir } from '../helpers/tmp.ts'

const tmp = tempDir('datanet-outbox-')
const dbPath = join(tmp.dir, 'state')

test.after(() => { tmp.remove() })

test('the level outbox store keeps held messages across a close and reopen, byte for byte, until deleted', async () => {
  const data = new Uint8Array([0, 1, 2, 250, 255, 10])
  let db = new StateDatabase(dbPath)
  await db.open()
  await levelOutboxStore(db.outbox).put('id-1', { topic: '/datanet/1/x/contributions', data, at: 1234 })
  await levelOutboxStore(db.outbox).put('id-2', { topic: '/datanet/1/x/contributions', data: new Uint8Array([7]), at: 1235 })
  await db.close()

  db = new StateDatabase(dbPath)
  await db.open()
  const store = levelOutboxStore(db.outbox)
  const all = await store.all()
  assert.equal(all.map(([id, m]) => [id, m.topic, [...m.data], m.at]), [
    ['id-1', '/datanet/1/x/contributions', [...data], 1234],
    ['id-2', '/datanet/1/x/contributions', [7], 1235]
  ])
  await store.delete('id-1')
  assert.equal((await store.all()).map(([id]) => id), ['id-2'])
  await db.close()
})

test.run()
