import { readFileSync } from 'node:fs'
import { Contract, JsonRpcProvider, Network, getBytes, hexlify, type InterfaceAbi, type Log, type Signer, type TransactionReceipt } from 'ethers'
import { DatanetError } from '../errors.ts'
import type { RegistryEvent } from './registry-state.ts'

export const ChainErrorCode = {
  RPC: 'CHAIN_ERROR_RPC',
  WRONG_CHAIN: 'CHAIN_ERROR_WRONG_CHAIN_ID',
  NO_REGISTRY: 'CHAIN_ERROR_NO_REGISTRY',
  REVERTED: 'CHAIN_ERROR_REVERTED',
  NO_SIGNER: 'CHAIN_ERROR_NO_SIGNER',
  TIMEOUT: 'CHAIN_ERROR_TIMEOUT',
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
  if (err instanceof DatanetError) return err.code === ChainErrorCode.TIMEOUT || err.code === ChainErrorCode.RPC
  const code = (err as { code?: string }).code
  return code === undefined || ['NETWORK_ERROR', 'TIMEOUT', 'SERVER_ERROR', 'UNKNOWN_ERROR', 'NONCE_EXPIRED', 'REPLACEMENT_UNDERPRICED', 'TRANSACTION_REPLACED', 'ECONNREFUSED', 'ECONNRESET'].includes(code)
}

export interface RegistryClientOptions {
  rpcUrl: string
  chainId: number
  registry: string
  signer?: Signer
  /** How long to wait for a receipt before treating the transaction as dropped. */
  receiptTimeoutMs?: number
}

export interface SentTx { txHash: string, block: number, gasUsed: bigint }

const byteArray = (x: unknown): string => hexlify(getBytes(x as string))

/**
 * The registry over ethers: reads (blocks, logs, views) and writes with one nonce
 * sequence per client, so concurrent sends never collide, and reverts named by the
 * contract's custom error.
 */
export class RegistryClient {
  readonly provider: JsonRpcProvider
  readonly contract: Contract
  readonly address: string
  private readonly signer: Signer | undefined
  private readonly receiptTimeoutMs: number
  private sending: Promise<unknown> = Promise.resolve()

  private constructor (opts: RegistryClientOptions) {
    const network = Network.from(opts.chainId)
    // staticNetwork: no chain id probing on every request (and no endless retries while the RPC is down);
    // cacheTimeout -1: ethers would otherwise answer the block number from a 250 ms cache, and a
    // poll right after a send would miss the send's block
    this.provider = new JsonRpcProvider(opts.rpcUrl, network, { staticNetwork: network, batchMaxCount: 1, polling: false, cacheTimeout: -1 })
    this.address = opts.registry
    this.signer = opts.signer?.connect(this.provider)
    this.contract = new Contract(opts.registry, registryArtifact().abi, this.signer ?? this.provider)
    this.receiptTimeoutMs = opts.receiptTimeoutMs ?? 60_000
  }

  /** Connects and checks that the RPC serves the configured chain and the registry has code there. */
  static async connect (opts: RegistryClientOptions): Promise<RegistryClient> {
    const client = new RegistryClient(opts)
    let chainId: number
    try {
      chainId = Number(await client.provider.send('eth_chainId', []))
    } catch (err) {
      client.destroy()
      throw new DatanetError({ code: ChainErrorCode.RPC }, `cannot reach the chain RPC at ${opts.rpcUrl}`, 'unavailable', { cause: err })
    }
    if (chainId !== opts.chainId) {
      client.destroy()
      throw new DatanetError({ code: ChainErrorCode.WRONG_CHAIN }, `the chain RPC at ${opts.rpcUrl} serves chain id ${chainId}, but the config says chain.chainId ${opts.chainId}`, 'usage')
    }
    const code = await client.provider.getCode(opts.registry)
    if (code === '0x') {
      client.destroy()
      throw new DatanetError({ code: ChainErrorCode.NO_REGISTRY }, `no contract at chain.registry ${opts.registry} on chain ${chainId}`, 'usage')
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

  /**
   * Sends a transaction and waits for its receipt. Sends are serialised per client (one
   * nonce sequence); a revert (estimated before sending) throws CHAIN_ERROR_REVERTED naming
   * the contract's custom error; a receipt that does not come in time throws a transient
   * CHAIN_ERROR_TIMEOUT (the caller decides whether to resend).
   */
  async send (method: string, args: unknown[], opts: { value?: bigint } = {}): Promise<SentTx> {
    if (this.signer === undefined) throw new DatanetError({ code: ChainErrorCode.NO_SIGNER }, 'this chain client has no key to send with', 'usage')
    const signer = this.signer
    const task = this.sending.then(async () => {
      const fn = this.contract.getFunction(method)
      let tx
      try {
        // Sends are serialised, so the chain's pending count is the next nonce: nothing kept
        // locally can drift after a failed or dropped send (ethers' NonceManager also leaves
        // a rejected promise behind when the RPC is down).
        const nonce = await this.provider.getTransactionCount(await signer.getAddress(), 'pending')
        tx = await fn.send(...args, { nonce, ...(opts.value === undefined ? {} : { value: opts.value }) })
      } catch (err) {
        const revert = revertOf(err)
        if (revert !== undefined) throw reverted(method, revert)
        if ((err as { code?: string }).code === 'INSUFFICIENT_FUNDS') throw new DatanetError({ code: ChainErrorCode.FUNDS }, `${await signer.getAddress()} cannot pay for ${method}${opts.value === undefined ? '' : ` (${opts.value} wei)`} and its gas`, 'conflict')
        throw err
      }
      const receipt = await waitForReceipt(this.provider, tx.hash, this.receiptTimeoutMs, `${method} (${tx.hash})`)
      if (receipt.status !== 1) throw new DatanetError({ code: ChainErrorCode.REVERTED }, `${method} reverted (${tx.hash})`, 'conflict')
      return { txHash: receipt.hash, block: receipt.blockNumber, gasUsed: receipt.gasUsed }
    })
    this.sending = task.catch(() => {})
    return await task
  }
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
