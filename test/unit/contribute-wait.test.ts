/**
 * `datanet contribute --wait` against a node that answers as a real one would, step by
 * step: it returns only once the contribution is in a final version (not when it is
 * decided), and a rejection exits 1 naming the validators' reasons.
 */
import { createServer, type Server } from 'node:http'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { runCli } from '../helpers/cli.ts'
import { tempDir } from '../helpers/tmp.ts'

const CID = 'bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy'

/**
 * A node whose contribution goes through `states` one GET at a time (the last one stays);
 * the first `busy` uploads are refused as a busy node refuses them: 503 at once, the body unread.
 */
async function fakeNode (states: Array<{ status: string, version: number | null, reasons?: string[] }>, busy = 0): Promise<{ url: string, gets: () => number, posts: () => number, close: () => Promise<void> }> {
  let gets = 0
  let posts = 0
  const server: Server = createServer((req, res) => {
    res.setHeader('content-type', 'application/json')
    if (req.method === 'POST' && posts++ < busy) {
      res.statusCode = 503
      res.setHeader('retry-after', '1')
      res.end(JSON.stringify({ error: { code: 'CONTRIBUTION_ERROR_BUSY', message: 'datanet d has 256 contributions waiting for a version (at most 256): try again in a few seconds' } }))
      return
    }
    if (req.method === 'POST') {
      req.resume()
      req.on('end', () => {
        res.statusCode = 201
        res.end(JSON.stringify({ cid: CID, status: 'pending', recordCount: 1, byteSize: 10, shards: 1, duplicates: 0, skippedInvalid: 0 }))
      })
      return
    }
    const s = states[Math.min(gets++, states.length - 1)] as typeof states[number]
    res.end(JSON.stringify({
      cid: CID, datanet: 'd', status: s.status, score: s.status === 'rejected' ? 0 : 90, version: s.version, contributor: '0x', recordCount: 1, byteSize: 10, shards: [], recordsRoot: '0x', receivedAt: 1, decidedAt: null,
      verdicts: s.status === 'pending' ? [] : [{ validator: '0xv', accept: s.status !== 'rejected', score: 0, reasons: s.reasons ?? [], timestamp: 1, signature: '0x' }]
    }))
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', () => { resolve() }))
  const address = server.address() as { port: number }
  return { url: `http://127.0.0.1:${address.port}`, gets: () => gets, posts: () => posts, close: async () => { await new Promise(resolve => server.close(resolve)) } }
}

const tmp = tempDir('datanet-wait-')
const file = join(tmp.dir, 'r.txt')
writeFileSync(file, 'one record\n')
const token = join(tmp.dir, 'token')
writeFileSync(token, 'secret\n')

test('--wait waits past the decision for the final version, and --json carries it', async () => {
  const node = await fakeNode([{ status: 'pending', version: null }, { status: 'accepted', version: null }, { status: 'accepted', version: null }, { status: 'accepted', version: 7 }])
  try {
    const r = await runCli(['contribute', '--datanet', 'd', file, '--wait', '--json', '--api', node.url, '--token-file', token])
    assert.is(r.code, 0, r.stderr)
    assert.equal(JSON.parse(r.stdout).version, 7)
    assert.is(JSON.parse(r.stdout).status, 'accepted')
    assert.is(node.gets(), 4, 'it asked until the version came')
  } finally {
    await node.close()
  }
})

test('--wait on a rejected contribution exits 1 with the reasons', async () => {
  const node = await fakeNode([{ status: 'pending', version: null }, { status: 'rejected', version: null, reasons: ['NEAR_DUPLICATE_RECORDS'] }])
  try {
    const r = await runCli(['contribute', '--datanet', 'd', file, '--wait', '--api', node.url, '--token-file', token])
    assert.is(r.code, 1, r.stdout + r.stderr)
    assert.match(r.stderr, /rejected: NEAR_DUPLICATE_RECORDS/)
  } finally {
    await node.close()
  }
})

test('a busy node (503 CONTRIBUTION_ERROR_BUSY) is asked again after its Retry-After, with a line saying so', async () => {
  const node = await fakeNode([{ status: 'accepted', version: 3 }], 2)
  // large enough that the node answers before it could have read the body
  const big = join(tmp.dir, 'big.txt')
  writeFileSync(big, 'a record of some words\n'.repeat(100_000))
  try {
    const r = await runCli(['contribute', '--datanet', 'd', big, '--json', '--api', node.url, '--token-file', token])
    assert.is(r.code, 0, r.stderr)
    assert.is(JSON.parse(r.stdout).cid, CID)
    assert.is(node.posts(), 3, 'two refusals, then the upload')
    assert.is(r.stderr.match(/waiting for a version \(at most 256\)[^\n]*; retrying in 1 s/g)?.length, 2, r.stderr)
  } finally {
    await node.close()
  }
})

test.after(() => { tmp.remove() })
test.run()
