import { createServer, type Server } from 'node:net'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { freePort, spawnCli } from '../../node/devnet/node-process.ts'
import { TestCluster, type TestNode } from '../helpers/cluster.ts'
import { withDeadline, hook } from '../helpers/wait.ts'

const cluster = new TestCluster()
let node: TestNode

test.before(hook(async () => {
  [node] = await cluster.create(1) as [TestNode]
}))

test.after(hook(async () => {
  await cluster.teardown()
}))

/** Runs `datanet node start` for this data directory and returns how it ended. */
async function start (args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null, stderr: string }> {
  const child = spawnCli(['node', 'start', '--data-dir', node.dataDir, '--config', 'devnet', ...args], { env })
  let stderr = ''
  child.stderr?.on('data', (b: Buffer) => { stderr += b.toString() })
  child.stdout?.resume()
  const code = await withDeadline(new Promise<number | null>(resolve => child.once('exit', resolve)), 30_000, 'the daemon to refuse to start')
    .finally(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  return { code, stderr }
}

function assertOneLine (stderr: string, pattern: RegExp): void {
  const lines = stderr.trim().split('\n')
  assert.is(lines.length, 1, `one line on stderr, got: ${stderr}`)
  assert.match(lines[0] as string, /^datanet: /)
  assert.match(lines[0] as string, pattern)
  assert.not.match(stderr, /\n\s+at /, 'no stack trace')
}

const pw = (): string[] => ['--password-file', cluster.passwordFile]

async function listenOn (port: number): Promise<Server> {
  const srv = createServer()
  await new Promise<void>(resolve => srv.listen(port, '127.0.0.1', resolve))
  return srv
}

test('a bad config file: one clear line naming the key, exit 2', async () => {
  const file = join(cluster.root.dir, 'bad.json')
  writeFileSync(file, JSON.stringify({ p2p: { port: 'seven' } }))
  const { code, stderr } = await start([...pw(), '--config', file])
  assert.is(code, 2)
  assertOneLine(stderr, /p2p\.port/)
})

test('a bad environment value: exit 2 naming the variable', async () => {
  const { code, stderr } = await start(pw(), { DATANET_API_PORT: 'x' })
  assert.is(code, 2)
  assertOneLine(stderr, /DATANET_API_PORT/)
})

test('a missing keystore password: exit 2', async () => {
  const { code, stderr } = await start([], { DATANET_PASSWORD: '' })
  assert.is(code, 2)
  assertOneLine(stderr, /password/)
})

test('a wrong keystore password: exit 2', async () => {
  const { code, stderr } = await start([], { DATANET_PASSWORD: 'not-the-password' })
  assert.is(code, 2)
  assertOneLine(stderr, /wrong password/)
})

test('a taken p2p port: exit 1', async () => {
  const port = await freePort()
  const srv = await listenOn(port)
  try {
    const { code, stderr } = await start([...pw(), '--p2p-port', String(port), '--api-port', String(await freePort())])
    assert.is(code, 1)
    assertOneLine(stderr, new RegExp(`${port}.*in use`))
  } finally {
    srv.close()
  }
})

test('a taken API port: exit 1', async () => {
  const port = await freePort()
  const srv = await listenOn(port)
  try {
    const { code, stderr } = await start([...pw(), '--api-port', String(port)])
    assert.is(code, 1)
    assertOneLine(stderr, new RegExp(`${port}.*in use`))
  } finally {
    srv.close()
  }
})

test('a data directory locked by a running daemon: exit 2, and the running one is unharmed', async () => {
  node.daemon.start()
  await node.daemon.waitReady()
  const { code, stderr } = await start([...pw(), '--p2p-port', '0', '--api-port', '0'])
  assert.is(code, 2)
  assertOneLine(stderr, /in use by another datanet process/)
  const res = await fetch(`${node.daemon.apiUrl}/v1/health`)
  assert.is(res.status, 200)
  assert.is(await node.daemon.stop(), 0)
})

test('a data directory from a newer format: exit 2', async () => {
  const metaFile = join(node.dataDir, 'datanet.json')
  const { readFileSync } = await import('node:fs')
  const original = readFileSync(metaFile, 'utf8')
  writeFileSync(metaFile, JSON.stringify({ ...JSON.parse(original), format: 99 }))
  try {
    const { code, stderr } = await start(pw())
    assert.is(code, 2)
    assertOneLine(stderr, /format 99/)
  } finally {
    writeFileSync(metaFile, original)
  }
})

test.run()
