import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdirSync, writeFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'
import { CONFIG_ERROR, configDir, expandHome, loadConfig, resolveConfigFile } from '../../node/config/load.ts'
import { nodeConfigSchema } from '../../node/config/schema.ts'
import { DatanetError } from '../../src/errors.ts'
import { tempDir } from '../helpers/tmp.ts'

const tmp = tempDir('datanet-config-')
let fileCount = 0

/** Writes a config file (JSON value or raw text) into the temp dir and returns its path. */
function configFile (content: unknown, opts: { raw?: boolean, dir?: string } = {}): string {
  const dir = opts.dir ?? tmp.dir
  mkdirSync(dir, { recursive: true })
  const path = join(dir, `config-${fileCount++}.json`)
  writeFileSync(path, opts.raw === true ? String(content) : JSON.stringify(content))
  return path
}

/** Runs fn, which must throw a DatanetError, and returns that error. */
function configError (fn: () => unknown): DatanetError {
  try {
    fn()
  } catch (err) {
    assert.instance(err, DatanetError)
    const e = err as DatanetError
    assert.is(e.code, CONFIG_ERROR.code)
    assert.is(e.code, 'CONFIG_ERROR_INVALID')
    assert.is(e.kind, 'usage')
    return e
  }
  assert.unreachable('expected a configuration error')
  throw new Error('unreachable')
}

test.after(() => { tmp.remove() })

test('the defaults alone validate and are complete', () => {
  const config = loadConfig({ env: {} })
  assert.is(config.p2p.port, 7400)
  assert.is(config.p2p.host, '0.0.0.0')
  assert.is(config.api.port, 7401)
  assert.is(config.api.host, '127.0.0.1')
  assert.is(config.log.level, 'info')
  assert.is(config.chain.rpcUrl, null)
  assert.is(config.chain.chainId, 31337)
  assert.equal(config.datanets, [])
  assert.equal(config.p2p.bootstrap, [])
  assert.is(config.dataDir, join(homedir(), '.datanet'), '~ in the default is expanded')
  assert.ok(nodeConfigSchema.safeParse(config).success)
})

test('config/default.json passes the schema by itself', () => {
  const result = nodeConfigSchema.safeParse(JSON.parse(JSON.stringify(loadConfig({ env: {} }))))
  assert.ok(result.success)
})

test("the preset 'devnet' resolves to config/devnet.json and layers over the defaults", () => {
  assert.is(resolveConfigFile('devnet'), join(configDir, 'devnet.json'))
  const config = loadConfig({ file: 'devnet', env: {} })
  assert.is(config.p2p.host, '127.0.0.1')
  assert.is(config.p2p.port, 0)
  assert.is(config.api.port, 0)
  assert.is(config.log.format, 'json')
  assert.is(config.p2p.announceIntervalMs, 2000)
  // keys the preset leaves alone keep their defaults (deep merge, not replace)
  assert.is(config.p2p.maxConnections, 64)
  assert.is(config.api.host, '127.0.0.1')
  assert.is(config.api.bodyLimitBytes, 1073741824)
})

test('the chain presets: confirmations and polling for a chain with 2 s and with 12 s blocks, the rest default', () => {
  const fast = loadConfig({ file: 'chain-2s', env: {} })
  assert.equal([fast.chain.confirmations, fast.chain.pollIntervalMs], [6, 1000])
  const slow = loadConfig({ file: 'chain-12s', env: {} })
  assert.equal([slow.chain.confirmations, slow.chain.pollIntervalMs], [3, 4000])
  assert.is(slow.p2p.port, 7400)
  // the RPC and the registry are the operator's: flags or the environment
  assert.is(loadConfig({ file: 'chain-12s', env: { DATANET_CHAIN_RPC_URL: 'https://rpc.example/' } }).chain.rpcUrl, 'https://rpc.example/')
  // fee bumps: about five blocks without a receipt, and a cap
  assert.equal([fast.chain.feeBumpAfterMs, fast.chain.maxFeePerGasGwei], [10_000, 500])
  assert.equal([slow.chain.feeBumpAfterMs, slow.chain.maxFeePerGasGwei], [45_000, 200])
})

test('chain.rpcUrls: fallback URLs after chain.rpcUrl, from a file or a comma-separated environment variable; not without rpcUrl', () => {
  const env = { DATANET_CHAIN_RPC_URL: 'https://a.example/', DATANET_CHAIN_RPC_URLS: 'https://b.example/, http://10.0.0.2:8545' }
  assert.equal(loadConfig({ env }).chain.rpcUrls, ['https://b.example/', 'http://10.0.0.2:8545'])
  assert.equal(loadConfig({ env: {} }).chain.rpcUrls, [])
  const e = configError(() => loadConfig({ env: { DATANET_CHAIN_RPC_URLS: 'https://b.example/' } }))
  assert.ok(e.message.includes('chain.rpcUrls') && e.message.includes('chain.rpcUrl'), e.message)
  const bad = configError(() => loadConfig({ file: configFile({ chain: { rpcUrl: 'https://a.example/', rpcUrls: ['ftp://b.example/'] } }), env: {} }))
  assert.ok(bad.message.includes('chain.rpcUrls.0'), bad.message)
})

test('an unknown preset name, or a missing path, is a usage error naming it', () => {
  const e1 = configError(() => loadConfig({ file: 'no-such-preset', env: {} }))
  assert.ok(e1.message.includes('no-such-preset'))
  const e2 = configError(() => loadConfig({ file: join(tmp.dir, 'missing', 'x.json'), env: {} }))
  assert.ok(e2.message.includes(join(tmp.dir, 'missing', 'x.json')))
})

test('precedence: defaults < file < env < flags', () => {
  const file = configFile({ p2p: { port: 1111, maxConnections: 10 }, api: { port: 1112 }, log: { level: 'warn' } })

  const fromFile = loadConfig({ file, env: {} })
  assert.is(fromFile.p2p.port, 1111)
  assert.is(fromFile.api.port, 1112)
  assert.is(fromFile.p2p.maxConnections, 10)
  assert.is(fromFile.log.level, 'warn')
  assert.is(fromFile.p2p.host, '0.0.0.0', 'a key the file does not set keeps its default')

  const env = { DATANET_P2P_PORT: '2222', DATANET_LOG_LEVEL: 'debug' }
  const fromEnv = loadConfig({ file, env })
  assert.is(fromEnv.p2p.port, 2222, 'env beats the file')
  assert.is(fromEnv.log.level, 'debug')
  assert.is(fromEnv.api.port, 1112, 'the file still beats the defaults')

  const fromFlags = loadConfig({ file, env, flags: { 'p2p.port': 1234, 'log.level': 'error' } })
  assert.is(fromFlags.p2p.port, 1234, 'flags beat env')
  assert.is(fromFlags.log.level, 'error')
  assert.is(fromFlags.p2p.maxConnections, 10)
  assert.is(fromFlags.api.port, 1112)
})

test('a flag whose value is undefined does not override lower layers', () => {
  const config = loadConfig({ env: { DATANET_P2P_PORT: '2222' }, flags: { 'p2p.port': undefined, 'api.port': 9000 } })
  assert.is(config.p2p.port, 2222)
  assert.is(config.api.port, 9000)
})

test('env: camelCase keys map to SNAKE_CASE names, numbers are parsed', () => {
  const config = loadConfig({
    env: {
      DATANET_P2P_MAX_CONNECTIONS: '7',
      DATANET_P2P_DIAL_TIMEOUT_MS: '500',
      DATANET_API_BODY_LIMIT_BYTES: '4096',
      DATANET_CHAIN_CHAIN_ID: '1',
      DATANET_CHAIN_RPC_URL: 'http://127.0.0.1:8545',
      DATANET_CHAIN_REGISTRY: '0x' + 'ab'.repeat(20)
    }
  })
  assert.is(config.p2p.maxConnections, 7)
  assert.is(config.p2p.dialTimeoutMs, 500)
  assert.is(config.api.bodyLimitBytes, 4096)
  assert.is(config.chain.chainId, 1)
  assert.is(config.chain.rpcUrl, 'http://127.0.0.1:8545')
  assert.is(config.chain.registry, '0x' + 'ab'.repeat(20))
})

test('env: arrays are comma lists, trimmed; an empty value is an empty list', () => {
  const a = '/ip4/10.0.0.1/tcp/7400/p2p/12D3KooWA'
  const b = '/dns4/example.org/tcp/7400/p2p/12D3KooWB'
  const config = loadConfig({ env: { DATANET_P2P_BOOTSTRAP: `${a}, ${b}`, DATANET_DATANETS: 'one,two' } })
  assert.equal(config.p2p.bootstrap, [a, b])
  assert.equal(config.datanets, ['one', 'two'])

  const file = configFile({ datanets: ['from-file'] })
  assert.equal(loadConfig({ file, env: { DATANET_DATANETS: '' } }).datanets, [])
})

test('arrays from a higher layer replace, not append to, lower ones', () => {
  const file = configFile({ datanets: ['a', 'b', 'c'] })
  assert.equal(loadConfig({ file, env: { DATANET_DATANETS: 'z' } }).datanets, ['z'])
  assert.equal(loadConfig({ file, env: {}, flags: { datanets: ['y'] } }).datanets, ['y'])
})

test('env: a nullable key takes "" or "null" as null', () => {
  const file = configFile({ chain: { rpcUrl: 'http://localhost:8545' } })
  assert.is(loadConfig({ file, env: { DATANET_CHAIN_RPC_URL: '' } }).chain.rpcUrl, null)
  assert.is(loadConfig({ file, env: { DATANET_CHAIN_RPC_URL: 'null' } }).chain.rpcUrl, null)
})

test('env: a non-number for a number key is an error naming the variable', () => {
  const e = configError(() => loadConfig({ env: { DATANET_P2P_PORT: 'seven' } }))
  assert.ok(e.message.includes('DATANET_P2P_PORT'))
  const e2 = configError(() => loadConfig({ env: { DATANET_P2P_PORT: '' } }))
  assert.ok(e2.message.includes('DATANET_P2P_PORT'))
})

test('env: a number out of range names the variable and the key path', () => {
  const e = configError(() => loadConfig({ env: { DATANET_P2P_PORT: '70000' } }))
  assert.ok(e.message.includes('DATANET_P2P_PORT'))
  assert.ok(e.message.includes('p2p.port'))
})

test('an unknown DATANET_ variable is an error naming it', () => {
  const e = configError(() => loadConfig({ env: { DATANET_P2P_PROT: '1' } }))
  assert.ok(e.message.includes('DATANET_P2P_PROT'))
})

test('non-config DATANET_ variables and other variables are allowed and ignored', () => {
  const config = loadConfig({
    env: {
      DATANET_PASSWORD: 'secret',
      DATANET_API: 'http://127.0.0.1:1',
      DATANET_TOKEN_FILE: '/tmp/x',
      DATANET_ROOT: '/somewhere',
      DATANET_DEBUG: '1',
      HOME: '/home/x',
      PATH: '/bin',
      DATANET_P2P_PORT: undefined
    }
  })
  assert.is(config.p2p.port, 7400)
})

test('an unknown key in a file is a usage error naming the key path and the file', () => {
  const file = configFile({ p2p: { prot: 7400 } })
  const e = configError(() => loadConfig({ file, env: {} }))
  assert.ok(e.message.includes('p2p.prot'), e.message)
  assert.ok(e.message.includes(file), e.message)
})

test('an unknown top-level key in a file is named too', () => {
  const file = configFile({ p2pp: { port: 1 } })
  const e = configError(() => loadConfig({ file, env: {} }))
  assert.ok(e.message.includes('p2pp'), e.message)
  assert.ok(e.message.includes(file), e.message)
})

test('a bad value in a file names its path and the file', () => {
  const file = configFile({ p2p: { port: 70000 } })
  const e = configError(() => loadConfig({ file, env: {} }))
  assert.ok(e.message.includes('p2p.port'), e.message)
  assert.ok(e.message.includes(file), e.message)

  const file2 = configFile({ log: { level: 'loud' } })
  const e2 = configError(() => loadConfig({ file: file2, env: {} }))
  assert.ok(e2.message.includes('log.level'), e2.message)

  const file3 = configFile({ p2p: { bootstrap: ['not-a-multiaddr'] } })
  const e3 = configError(() => loadConfig({ file: file3, env: {} }))
  assert.ok(e3.message.includes('p2p.bootstrap'), e3.message)

  const file4 = configFile({ chain: { registry: '0x1234' } })
  const e4 = configError(() => loadConfig({ file: file4, env: {} }))
  assert.ok(e4.message.includes('chain.registry'), e4.message)
})

test('a bad flag value names the flag path', () => {
  const e = configError(() => loadConfig({ env: {}, flags: { 'p2p.port': -1 } }))
  assert.ok(e.message.includes('p2p.port'), e.message)
  assert.ok(e.message.includes('flag'), e.message)
  const e2 = configError(() => loadConfig({ env: {}, flags: { 'p2p.prot': 1 } }))
  assert.ok(e2.message.includes('p2p.prot'), e2.message)
})

test('a file whose JSON is invalid is a usage error naming the file', () => {
  const file = configFile('{ "p2p": { "port": 1, } ', { raw: true })
  const e = configError(() => loadConfig({ file, env: {} }))
  assert.ok(e.message.includes(file), e.message)
})

test('a file that is JSON but not an object is an error', () => {
  const file = configFile([1, 2, 3])
  const e = configError(() => loadConfig({ file, env: {} }))
  assert.ok(e.message.includes(file), e.message)
})

test('the result is deeply frozen', () => {
  const config = loadConfig({ env: { DATANET_DATANETS: 'a,b' } })
  assert.ok(Object.isFrozen(config))
  assert.ok(Object.isFrozen(config.p2p))
  assert.ok(Object.isFrozen(config.p2p.bootstrap))
  assert.ok(Object.isFrozen(config.datanets))
  assert.ok(Object.isFrozen(config.chain))
  assert.throws(() => { (config.p2p as { port: number }).port = 1 }, TypeError)
  assert.throws(() => { (config.datanets as string[]).push('c') }, TypeError)
  assert.is(config.p2p.port, 7400)
  assert.equal(config.datanets, ['a', 'b'])
})

test('each load is independent: freezing one result does not affect the next', () => {
  const a = loadConfig({ env: {}, flags: { 'p2p.port': 1 } })
  const b = loadConfig({ env: {} })
  assert.is(a.p2p.port, 1)
  assert.is(b.p2p.port, 7400)
  assert.is.not(a.p2p, b.p2p)
})

test("a relative dataDir in a file resolves against the file's directory", () => {
  const dir = join(tmp.dir, 'nested', 'conf')
  const file = configFile({ dataDir: 'node-data' }, { dir })
  const config = loadConfig({ file, env: {} })
  assert.is(config.dataDir, join(dir, 'node-data'))

  const up = configFile({ dataDir: '../sibling' }, { dir })
  assert.is(loadConfig({ file: up, env: {} }).dataDir, join(tmp.dir, 'nested', 'sibling'))
})

test('an absolute or ~ dataDir in a file is kept (with ~ expanded)', () => {
  const abs = join(tmp.dir, 'abs-data')
  assert.is(loadConfig({ file: configFile({ dataDir: abs }), env: {} }).dataDir, abs)
  assert.is(loadConfig({ file: configFile({ dataDir: '~/dn' }), env: {} }).dataDir, join(homedir(), 'dn'))
})

test('a relative dataDir from env or flags resolves against the working directory', () => {
  assert.is(loadConfig({ env: { DATANET_DATA_DIR: 'rel-env' } }).dataDir, resolve('rel-env'))
  assert.is(loadConfig({ env: {}, flags: { dataDir: 'rel-flag' } }).dataDir, resolve('rel-flag'))
})

test('expandHome', () => {
  assert.is(expandHome('~'), homedir())
  assert.is(expandHome('~/a/b'), join(homedir(), 'a', 'b'))
  assert.is(expandHome('/x/y'), '/x/y')
  assert.is(expandHome('rel'), resolve('rel'))
})

test.run()
