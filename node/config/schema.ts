import { z } from 'zod'

const port = z.number().int().min(0).max(65535)
const multiaddr = z.string().regex(/^\/(ip4|ip6|dns|dns4|dns6)\//, 'expected a multiaddr such as /ip4/127.0.0.1/tcp/7400/p2p/12D3KooW...')
const address = z.string().regex(/^0x[0-9a-fA-F]{40}$/, 'expected a 0x-prefixed 20-byte hex address')
const host = z.string().min(1)
const rpcUrl = z.url({ protocol: /^(https?|wss?)$/ })

/**
 * The node's configuration. Defaults live in config/default.json (one source of defaults);
 * every key is required here so a merged config is always complete, and objects are
 * strict so a misspelt key is an error rather than silently ignored.
 */
export const nodeConfigSchema = z.strictObject({
  dataDir: z.string().min(1),
  log: z.strictObject({
    level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']),
    format: z.enum(['auto', 'json', 'pretty'])
  }),
  p2p: z.strictObject({
    host,
    port,
    announce: z.array(multiaddr),
    bootstrap: z.array(multiaddr.regex(/\/p2p\/\w+$/, 'expected a multiaddr ending in /p2p/<peer id>')),
    maxConnections: z.number().int().min(1).max(10_000),
    dialTimeoutMs: z.number().int().min(100),
    maxMessageBytes: z.number().int().min(1024).max(16 * 1024 * 1024),
    validationQueueSize: z.number().int().min(1),
    announceIntervalMs: z.number().int().min(100)
  }),
  api: z.strictObject({
    host,
    port,
    bodyLimitBytes: z.number().int().min(1024),
    /** Uploads to a datanet are refused (503, retry) while it has this many contributions open: backpressure. */
    maxOpenContributions: z.number().int().min(1),
    /** Large uploads whose per-record stage (parse, hash, text keys) may run on a worker thread at once; 0: on the main thread; null: the cores beyond two, at most 2. */
    ingestWorkers: z.number().int().min(0).max(64).nullable()
  }),
  chain: z.strictObject({
    rpcUrl: rpcUrl.nullable(),
    /** Further RPC URLs of the same chain: reads and sends move to the next when one is down. */
    rpcUrls: z.array(rpcUrl),
    /** A request with no answer in this time counts as its URL being down. */
    rpcTimeoutMs: z.number().int().min(100),
    chainId: z.number().int().min(1),
    registry: address.nullable(),
    /** Blocks on top of a block before its registry events count (0 on a local dev chain). */
    confirmations: z.number().int().min(0).max(1000),
    pollIntervalMs: z.number().int().min(50),
    /** The registry's deployment block: where the follower starts reading. */
    startBlock: z.number().int().min(0),
    /** Time without a receipt before the node's transaction is replaced (same nonce) with fees raised ≥ 12.5%. */
    feeBumpAfterMs: z.number().int().min(100),
    /** The most the node's transactions pay per gas, in gwei (replacements stop there). */
    maxFeePerGasGwei: z.number().positive().max(1_000_000),
    /** How anchors are signed: one BLS aggregate when cheaper (auto), never (ecdsa), whenever possible (bls). */
    anchorSignatures: z.enum(['auto', 'ecdsa', 'bls'])
  }).refine(c => c.rpcUrls.length === 0 || c.rpcUrl !== null, { message: 'fallback URLs need chain.rpcUrl (the first URL) set', path: ['rpcUrls'] }),
  datanets: z.array(z.string().min(1))
})

export type NodeConfig = z.infer<typeof nodeConfigSchema>
