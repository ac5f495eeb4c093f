import { readFileSync } from 'node:fs'
import { Contract, FetchRequest, Network, type JsonRpcProvider, getBytes, hexlify, keccak256, parseUnits, type InterfaceAbi, type Log, type Signer, type TransactionReceipt } from 'ethers'
import { DatanetError } from '../errors.ts'
import type { Fees } from './fees.ts'
import type { RegistryEvent } from './registry-state.ts'
import { FailoverJsonRpcProvider } from './rpc-endpoints.ts'
import { TxErrorCode, landTransaction, type NonceSends, type TxChain } from './transactions.ts'

export const ChainErrorCode = {
  RPC: 'CHAIN_ERROR_RPC',
  WRONG_CHAIN: 'CHAIN_ERROR_WRONG_CHAIN_ID',
  NO_REGISTRY: 'CHAIN_ERROR_NO_REGISTRY',
  REVERTED: 'CHAIN_ERROR_REVERTED',
  NO_SIGNER: 'CHAIN_ERROR_NO_SIGNER',
  TIMEOUT: TxErrorCode.TIMEOUT,
  NONCE_TAKEN: TxErrorCode.NONCE_TAKEN,
  FUNDS: 'CHAIN_ERROR_FUNDS'
} as const

interface Artifact { abi: InterfaceAbi, bytecode: string, deployedBytecode: string }

let artifact: Artifact | undefined
/** The compiled registry (checked in, kept in sync with the source by a test). */
export function registryArtifact (): Artifact {
  artifact ??= JSON.parse(readFileSync(new URL('./artifacts/DatanetRegistry.json', import.meta.url), 'utf8')) as Artifact
  return artifact
}

/** The custom error a revert carries, as `Name(arg, ...)`, or undefined when it is not a revert of ours. */
export function revertOf (err: unknown): { name: string, text: string } | undefined {
  const e = err as { revert?: { name: string, args: unknown[] } | null, data?: string, info?: { error?: { data?: string } }, error?: { data?: string } }
  if (e?.revert != null) return { name: e.revert.name, text: `${e.revert.name}(${[...e.revert.args].map(String).join(', ')})` }
  const data = e?.data ?? e?.info?.error?.data ?? e?.error?.data
  if (typeof data === 'string' && data.length >= 10) {
    try {
      const contract = new Contract('0x0000000000000000000000000000000000000000', registryArtifact().abi)
      const parsed = contract.interface.parseError(data)
      if (parsed !== null) return { name: parsed.name, text: `${parsed.name}(${[...parsed.args].map(String).join(', ')})` }
    } catch {}
  }
  return undefined
}

/** True for failures worth retrying: the RPC is down or slow, or the transaction was dropped. */
export function isTransient (err: unknown): boolean {
  if (revertOf(err) !== undefined) return false
  if (err instanceof DatanetError) return err.code === ChainErrorCode.TIMEOUT || err.code === ChainErrorCode.RPC || err.code === ChainErrorCode.NONCE_TAKEN
  const code = (err as { code?: string }).code
  return code === undefined || ['NETWORK_ERROR', 'TIMEOUT', 'SERVER_ERROR', 'UNKNOWN_ERROR', 'NONCE_EXPIRED', 'REPLACEMENT_UNDERPRICED', 'TRANSACTION_REPLACED', 'ECONNREFUSED', 'ECONNRESET'].includes(code)
}

export interface RegistryClientOptions {
  /** One RPC URL, or several of the same chain tried in order (failover). */
  rpcUrl: string | readonly string[]
  chainId: number
  registry: string
  signer?: Signer
  /** How long a send waits for a first receipt before a transient CHAIN_ERROR_TIMEOUT (its sends stay pending: the next send replaces them). */
  receiptTimeoutMs?: number
  /** Blocks on top of a send's block before `send` returns (0: at its receipt). */
  confirmations?: number
  /** Time without a receipt after which a send is replaced with fees raised by ≥ 12.5%. */
  feeBumpAfterMs?: number
  /** The most a send pays per gas, in wei. */
  maxFeePerGas?: bigint
  /** A request with no answer in this time counts as its RPC URL being down. */
  rpcTimeoutMs?: number
  /** How often a send polls for its receipt. */
  pollMs?: number
  /** Requests moved to another RPC URL. */
  onRpcSwitch?: (from: string, to: string, err: unknown) => void
  /** A transaction was broadcast (a replacement: same nonce, higher fees). */
  onSend?: (sent: { method: string, hash: string, nonce: number, fees: Fees, replacement: boolean }) => void
}

/** Defaults for a send: a quiet chain (the node's config sets its own). */
export const SEND_DEFAULTS = { receiptTimeoutMs: 60_000, confirmations: 0, feeBumpAfterMs: 30_000, maxFeePerGas: parseUnits('500', 'gwei'), rpcTimeoutMs: 10_000, pollMs: 250 } as const

export interface SentTx { txHash: string, block: number, gasUsed: bigint }

const byteArray = (x: unknown): string => hexlify(getBytes(x as string))

/**
 * The registry over ethers: reads (blocks, logs, views) and writes with one nonce
 * sequence per client, so concurrent sends never collide, and reverts named by the
 * contract's custom error.
 */
export class RegistryClient {
  readonly provider: FailoverJsonRpcProvider
  readonly contract: Contract
  readonly address: string
  private readonly signer: Signer | undefined
  private readonly opts: RegistryClientOptions
  private readonly chainId: number
  private sending: Promise<unknown> = Promise.resolve()
  /** The sends of the last nonce not known to be mined: a later send replaces them, never queues behind. */
  private pendingSends: NonceSends | undefined

  private constructor (opts: RegistryClientOptions) {
    const network = Network.from(opts.chainId)
    const urls = typeof opts.rpcUrl === 'string' ? [opts.rpcUrl] : [...opts.rpcUrl]
    // staticNetwork: no chain id probing on every request (and no endless retries while the RPC is down);
    // cacheTimeout -1: ethers would otherwise answer the block number from a 250 ms cache, and a
    // poll right after a send would miss the send's block
    this.provider = new FailoverJsonRpcProvider(urls, network, { staticNetwork: network, batchMaxCount: 1, polling: false, cacheTimeout: -1 }, {
      timeoutMs: opts.rpcTimeoutMs ?? SEND_DEFAULTS.rpcTimeoutMs,
      onSwitch: (from, to, err) => opts.onRpcSwitch?.(urls[from] as string, urls[to] as string, err)
    })
    this.address = opts.registry
    this.signer = opts.signer?.connect(this.provider)
    this.contract = new Contract(opts.registry, registryArtifact().abi, this.signer ?? this.provider)
    this.opts = opts
    this.chainId = opts.chainId
  }

  /**
   * Connects and checks that the RPC serves the configured chain and the registry has code
   * there. With several URLs, each that answers must serve the configured chain (one down
   * now is tried again later); at least one must answer.
   */
  static async connect (opts: RegistryClientOptions): Promise<RegistryClient> {
    const client = new RegistryClient(opts)
    const urls = client.provider.urls
    let reachable = 0
    let lastError: unknown
    for (const url of urls) {
      let chainId: number
      try {
        chainId = await chainIdAt(url, opts.rpcTimeoutMs ?? SEND_DEFAULTS.rpcTimeoutMs)
      } catch (err) {
        lastError = err
        continue
      }
      reachable++
      if (chainId !== opts.chainId) {
        client.destroy()
        throw new DatanetError({ code: ChainErrorCode.WRONG_CHAIN }, `the chain RPC at ${url} serves chain id ${chainId}, but the config says chain.chainId ${opts.chainId}`, 'usage')
      }
    }
    if (reachable === 0) {
      client.destroy()
      throw new DatanetError({ code: ChainErrorCode.RPC }, `cannot reach the chain RPC at ${urls.join(', ')}`, 'unavailable', { cause: lastError })
    }
    const code = await client.provider.getCode(opts.registry)
    if (code === '0x') {
      client.destroy()
      throw new DatanetError({ code: ChainErrorCode.NO_REGISTRY }, `no contract at chain.registry ${opts.registry} on chain ${opts.chainId}`, 'usage')
    }
    return client
  }

  destroy (): void {
    this.provider.destroy()
  }

  async blockNumber (): Promise<number> {
    return await this.provider.getBlockNumber()
  }

  async blockHash (n: number): Promise<string | undefined> {
    return (await this.provider.getBlock(n))?.hash ?? undefined
  }

  /** The registry's events in [from, to], decoded, in log order. */
  async events (from: number, to: number): Promise<RegistryEvent[]> {
    const logs = await this.provider.getLogs({ address: this.address, fromBlock: from, toBlock: to })
    const out: RegistryEvent[] = []
    for (const log of logs) {
      const e = this.decodeLog(log)
      if (e !== undefined) out.push(e)
    }
    return out.sort((a, b) => a.block - b.block || a.logIndex - b.logIndex)
  }

  private decodeLog (log: Log): RegistryEvent | undefined {
    const parsed = this.contract.interface.parseLog({ topics: [...log.topics], data: log.data })
    if (parsed === null) return undefined
    const a = parsed.args
    const base = { datanetId: String(a.getValue('datanetId')).toLowerCase(), block: log.blockNumber, logIndex: log.index, txHash: log.transactionHash }
    const addr = (name: string): string => String(a.getValue(name)).toLowerCase()
    const big = (name: string): bigint => BigInt(a.getValue(name) as bigint)
    switch (parsed.name) {
      case 'DatanetCreated': {
        const validators = [...(a.getValue('validators') as string[])]
        const stakes = [...(a.getValue('stakes') as bigint[])]
        const params = a.getValue('params') as { anchorInterval: bigint }
        return { ...base, kind: 'created', validators: validators.map((v, i) => ({ address: v.toLowerCase(), stake: BigInt(stakes[i] ?? 0n) })), anchorInterval: Number(params.anchorInterval) }
      }
      case 'ValidatorJoinRequested': return { ...base, kind: 'join-requested', validator: addr('validator'), stake: big('stake'), peerId: byteArray(a.getValue('peerId')) }
      case 'ValidatorLeaveRequested': return { ...base, kind: 'leave-requested', validator: addr('validator') }
      case 'ValidatorActivated': return { ...base, kind: 'activated', validator: addr('validator'), stake: big('stake'), height: Number(a.getValue('height')) }
      case 'ValidatorDeactivated': return { ...base, kind: 'deactivated', validator: addr('validator'), height: Number(a.getValue('height')), unlockAt: Number(a.getValue('unlockAt')) }
      case 'StakeWithdrawn': return { ...base, kind: 'withdrawn', validator: addr('validator'), amount: big('amount') }
      case 'VersionCommitted': {
        // the header travels whole or as separate fields, depending on the contract build
        const header = (parsed.fragment.inputs.some(i => i.name === 'header') ? a.getValue('header') : a) as { getValue?: (k: string) => unknown } & Record<string, unknown>
        const field = (k: string): unknown => typeof header.getValue === 'function' ? header.getValue(k) : header[k]
        return {
          ...base,
          kind: 'committed',
          height: Number(a.getValue('height')),
          version: String(a.getValue('version')).toLowerCase(),
          datasetRoot: String(field('datasetRoot')).toLowerCase(),
          attributionRoot: String(field('attributionRoot')).toLowerCase(),
          totalAttributed: BigInt(field('totalAttributed') as bigint)
        }
      }
      case 'Funded': return { ...base, kind: 'funded', amount: big('amount'), totalFunded: big('totalFunded') }
      case 'Claimed': return { ...base, kind: 'claimed', account: addr('account'), amount: big('amount'), cumulativeAmount: big('cumulativeAmount') }
      case 'InferencePaid': return { ...base, kind: 'inference-paid', eventId: String(a.getValue('eventId')).toLowerCase(), payer: addr('payer'), amount: big('amount') }
      case 'Slashed': return { ...base, kind: 'slashed', validator: addr('validator'), amount: big('amount') }
      default: return undefined
    }
  }

  async view<T> (method: string, args: unknown[]): Promise<T> {
    return await this.contract.getFunction(method).staticCall(...args) as T
  }

  /** The gas a transaction would use now; a revert throws CHAIN_ERROR_REVERTED naming the contract's error. */
  async estimate (method: string, args: unknown[]): Promise<bigint> {
    try {
      return await this.contract.getFunction(method).estimateGas(...args, this.signer === undefined ? {} : { from: await this.signer.getAddress() })
    } catch (err) {
      const revert = revertOf(err)
      if (revert !== undefined) throw reverted(method, revert)
      throw err
    }
  }

  /** The RPC URL requests go to now. */
  get rpcUrl (): string {
    return this.provider.activeUrl
  }

  /**
   * Sends a transaction and waits until it has `confirmations` blocks on top. Sends are
   * serialised per client (one nonce sequence); a revert (estimated before sending) throws
   * CHAIN_ERROR_REVERTED naming the contract's custom error. A send with no receipt after
   * `feeBumpAfterMs` is replaced (same nonce, fees +12.5% or the market's, up to
   * `maxFeePerGas`); one reorged away is sent again. No receipt within `receiptTimeoutMs`
   * throws a transient CHAIN_ERROR_TIMEOUT, and the sends stay pending: the next send of
   * this client takes their nonce and replaces them, rather than queueing behind them.
   */
  async send (method: string, args: unknown[], opts: { value?: bigint } = {}): Promise<SentTx> {
    if (this.signer === undefined) throw new DatanetError({ code: ChainErrorCode.NO_SIGNER }, 'this chain client has no key to send with', 'usage')
    const signer = this.signer
    const task = this.sending.then(async () => {
      const fn = this.contract.getFunction(method)
      const overrides = opts.value === undefined ? {} : { value: opts.value }
      const from = await signer.getAddress()
      let call: { to: string, data: string, value: bigint, gasLimit: bigint }
      try {
        const populated = await fn.populateTransaction(...args, overrides)
        // estimated before any send, so a revert is named and nothing is paid for it
        const gas = await fn.estimateGas(...args, overrides)
        call = { to: populated.to, data: populated.data, value: opts.value ?? 0n, gasLimit: gas + gas / 5n }
      } catch (err) {
        const revert = revertOf(err)
        if (revert !== undefined) throw reverted(method, revert)
        if ((err as { code?: string }).code === 'INSUFFICIENT_FUNDS') throw new DatanetError({ code: ChainErrorCode.FUNDS }, `${from} cannot pay for ${method}${opts.value === undefined ? '' : ` (${opts.value} wei)`} and its gas`, 'conflict')
        throw err
      }
      const sends = await this.nonceSends(from)
      this.pendingSends = sends
      let receipt
      try {
        receipt = await landTransaction(this.txChain(signer, call, method), sends, {
          call: `${call.to.toLowerCase()}:${call.data}:${call.value}`,
          bumpAfterMs: this.opts.feeBumpAfterMs ?? SEND_DEFAULTS.feeBumpAfterMs,
          maxFeePerGas: this.opts.maxFeePerGas ?? SEND_DEFAULTS.maxFeePerGas,
          confirmations: this.opts.confirmations ?? SEND_DEFAULTS.confirmations,
          timeoutMs: this.opts.receiptTimeoutMs ?? SEND_DEFAULTS.receiptTimeoutMs,
          pollMs: this.opts.pollMs ?? SEND_DEFAULTS.pollMs,
          onSend: sent => this.opts.onSend?.({ method, ...sent })
        })
      } catch (err) {
        // nothing of ours pending under the nonce: the next send starts afresh
        if (sends.hashes.length === 0 || (err as { code?: string }).code === ChainErrorCode.NONCE_TAKEN) this.pendingSends = undefined
        if ((err as { code?: string }).code === 'INSUFFICIENT_FUNDS') throw new DatanetError({ code: ChainErrorCode.FUNDS }, `${from} cannot pay for ${method}${opts.value === undefined ? '' : ` (${opts.value} wei)`} and its gas`, 'conflict')
        throw err
      }
      this.pendingSends = undefined
      if (receipt.status !== 1) throw new DatanetError({ code: ChainErrorCode.REVERTED }, `${method} reverted (${receipt.hash})`, 'conflict')
      return { txHash: receipt.hash, block: receipt.blockNumber, gasUsed: receipt.gasUsed }
    })
    this.sending = task.catch(() => {})
    return await task
  }

  /**
   * The nonce a send takes: that of our sends still pending (to replace them), else the
   * chain's next. Only this client's own sends are known: a transaction left pending by an
   * earlier process with the same key is queued behind, not replaced.
   */
  private async nonceSends (from: string): Promise<NonceSends> {
    const pending = this.pendingSends
    if (pending !== undefined && await this.provider.getTransactionCount(from, 'latest') <= pending.nonce) return pending
    return { nonce: await this.provider.getTransactionCount(from, 'pending'), fees: undefined, hashes: [] }
  }

  /** The send loop's view of the chain, for one call. */
  private txChain (signer: Signer, call: { to: string, data: string, value: bigint, gasLimit: bigint }, method: string): TxChain {
    const provider = this.provider
    return {
      now: () => Date.now(),
      sleep: async ms => { await new Promise(resolve => setTimeout(resolve, ms)) },
      marketFees: async () => {
        const f = await provider.getFeeData()
        if (f.maxFeePerGas === null || f.maxPriorityFeePerGas === null) return { maxFeePerGas: f.gasPrice ?? 0n, maxPriorityFeePerGas: f.gasPrice ?? 0n }
        return { maxFeePerGas: f.maxFeePerGas, maxPriorityFeePerGas: f.maxPriorityFeePerGas }
      },
      minedNonce: async () => await provider.getTransactionCount(await signer.getAddress(), 'latest'),
      blockNumber: async () => await provider.getBlockNumber(),
      receipt: async hash => {
        const r = await provider.getTransactionReceipt(hash)
        return r === null ? null : { hash: r.hash, blockNumber: r.blockNumber, status: r.status, gasUsed: r.gasUsed }
      },
      broadcast: async (nonce, fees) => {
        const signed = await signer.signTransaction({ ...call, nonce, chainId: this.chainId, type: 2, ...fees })
        try {
          await provider.send('eth_sendRawTransaction', [signed])
        } catch (err) {
          const revert = revertOf(err)
          if (revert !== undefined) throw reverted(method, revert)
          throw err
        }
        return keccak256(signed)
      }
    }
  }
}

/** The chain id one URL serves (each URL asked on its own, so a wrong fallback is caught at start). */
async function chainIdAt (url: string, timeoutMs: number): Promise<number> {
  const request = new FetchRequest(url)
  request.timeout = timeoutMs
  request.setThrottleParams({ maxAttempts: 1 })
  request.body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_chainId', params: [] })
  request.setHeader('content-type', 'application/json')
  const response = await request.send()
  response.assertOk()
  const body = response.bodyJson as { result?: string }
  if (typeof body.result !== 'string') throw new Error(`${url} gave no chain id`)
  return Number(body.result)
}

/**
 * Polls for a transaction's receipt until `timeoutMs` (a transient CHAIN_ERROR_TIMEOUT then:
 * the caller decides whether to resend). Not ethers' `tx.wait`: on a chain that mines at
 * intervals that subscribes to blocks, and destroying the provider afterwards rejected the
 * subscription's request in flight with no one to catch it (a crash after the work was done).
 */
export async function waitForReceipt (provider: JsonRpcProvider, hash: string, timeoutMs: number, what: string, pollMs = 250): Promise<TransactionReceipt> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const receipt = await provider.getTransactionReceipt(hash)
    if (receipt !== null) return receipt
    if (Date.now() >= deadline) throw new DatanetError({ code: ChainErrorCode.TIMEOUT }, `no receipt for ${what} within ${timeoutMs} ms`, 'unavailable')
    await new Promise(resolve => setTimeout(resolve, pollMs))
  }
}

/** A revert as the user sees it: the custom error by name, with its arguments (ethers' error adds nothing to that). */
function reverted (method: string, revert: { name: string, text: string }): DatanetError {
  return new DatanetError({ code: ChainErrorCode.REVERTED, revert: revert.name } as { code: string }, `${method} reverted: ${revert.text}`, 'conflict')
}

/** The name of the contract error a DatanetError from `send` carries, if any. */
export function revertName (err: unknown): string | undefined {
  return ((err as { type?: { revert?: string } }).type?.revert) ?? revertOf(err)?.name
}
