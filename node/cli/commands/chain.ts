import type { Command } from 'commander'
import { readFileSync, writeFileSync } from 'node:fs'
import { ContractFactory, JsonRpcProvider, Network, type Wallet } from 'ethers'
import { encodeCbor } from '../../../src/codec/cbor.ts'
import { datanetDigest, encodeManifest, parseManifest, type Manifest } from '../../../src/datanet/manifest.ts'
import { ChainErrorCode, RegistryClient, registryArtifact, revertOf, waitForReceipt, type SentTx } from '../../../src/chain/registry-client.ts'
import { DatanetError } from '../../../src/errors.ts'
import { dataDirPaths } from '../../../src/storage/data-dir.ts'
import { loadConfig } from '../../config/load.ts'
import { DEFAULT_REGISTRY_PARAMS, registryParams } from '../../devnet/chain-setup.ts'
import { parseAmount } from '../amount.ts'
import { ApiClient } from '../client.ts'
import { readKeyFile, resolveApiUrl, resolveDataDir, usageError, withGlobalOptions, type GlobalOptions } from '../context.ts'
import { print } from '../output.ts'

/** Options of the commands that send transactions from this machine (not through a node). */
interface ChainOptions extends GlobalOptions {
  rpc?: string
  keyFile?: string
  keyPasswordFile?: string
  confirmations: string
}

interface RegistryOptions extends ChainOptions {
  registry?: string
}

function withChainOptions (cmd: Command): Command {
  return withGlobalOptions(cmd)
    .option('--rpc <url>', 'the chain\'s JSON-RPC URL (default: the config\'s chain.rpcUrl)')
    .option('--key-file <keystore>', 'the account that sends and pays: a v3 JSON keystore (default: the data directory\'s key)')
    .option('--key-password-file <file>', 'its password (else DATANET_PASSWORD)')
    .option('--confirmations <n>', 'blocks on top of the transaction\'s before it counts', '1')
}

function withRegistryOptions (cmd: Command): Command {
  return withChainOptions(cmd).option('--registry <address>', 'the registry (default: the config\'s chain.registry)')
}

function confirmationsOf (text: string): number {
  const n = Number(text)
  if (!Number.isInteger(n) || n < 0 || n > 1000) throw usageError(`--confirmations: expected 0 to 1000, got "${text}"`)
  return n
}

function rpcOf (opts: ChainOptions): string {
  const url = opts.rpc ?? loadConfig({}).chain.rpcUrl
  if (url === null || url === undefined) throw usageError('no chain: pass --rpc URL (or set chain.rpcUrl in the config)')
  try {
    return new URL(url).toString()
  } catch {
    throw usageError(`--rpc: not a URL: ${url}`)
  }
}

async function signerOf (opts: ChainOptions): Promise<Wallet> {
  if (opts.keyFile !== undefined) return await readKeyFile(opts.keyFile, opts.keyPasswordFile)
  return await readKeyFile(dataDirPaths(resolveDataDir(opts.dataDir)).keystore, opts.keyPasswordFile, 'the data directory\'s keystore (run datanet init, or pass --key-file)')
}

/** The chain the RPC serves (its id), or a clear error when it cannot be reached. */
async function chainIdOf (rpc: string): Promise<number> {
  const provider = new JsonRpcProvider(rpc, undefined, { batchMaxCount: 1, polling: false })
  try {
    return Number(await provider.send('eth_chainId', []))
  } catch (err) {
    throw new DatanetError({ code: ChainErrorCode.RPC }, `cannot reach the chain RPC at ${rpc}`, 'unavailable', { cause: err })
  } finally {
    provider.destroy()
  }
}

async function connect (opts: RegistryOptions): Promise<{ client: RegistryClient, rpc: string, chainId: number }> {
  const rpc = rpcOf(opts)
  const registry = opts.registry ?? loadConfig({}).chain.registry
  if (registry === null || registry === undefined) throw usageError('no registry: pass --registry ADDRESS (or set chain.registry in the config)')
  if (!/^0x[0-9a-fA-F]{40}$/.test(registry)) throw usageError(`--registry: not an address: ${registry}`)
  const chainId = await chainIdOf(rpc)
  const signer = await signerOf(opts)
  const client = await RegistryClient.connect({ rpcUrl: rpc, chainId, registry, signer })
  return { client, rpc, chainId }
}

/** Waits (at most 10 minutes) until the chain's head is at least `block`. */
async function waitForBlock (provider: JsonRpcProvider, block: number): Promise<void> {
  const deadline = Date.now() + 10 * 60_000
  while (await provider.getBlockNumber() < block) {
    if (Date.now() > deadline) throw new DatanetError({ code: ChainErrorCode.TIMEOUT }, `the chain did not reach block ${block} in 10 minutes`, 'unavailable')
    await new Promise(resolve => setTimeout(resolve, 500))
  }
}

/** Waits until `confirmations` blocks sit on top of the transaction's block (counting its own). */
async function confirmed (client: RegistryClient, tx: SentTx, confirmations: number): Promise<void> {
  if (confirmations > 1) await waitForBlock(client.provider, tx.block + confirmations - 1)
}

/** The manifest of a datanet: from --manifest, else from the node that follows it. */
async function manifestOf (opts: { datanet?: string, manifest?: string } & GlobalOptions): Promise<{ id: string, manifest: Manifest }> {
  let input: unknown
  if (opts.manifest !== undefined) {
    try {
      input = JSON.parse(readFileSync(opts.manifest, 'utf8'))
    } catch (err) {
      throw usageError(`--manifest ${opts.manifest}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
    }
  } else if (opts.datanet !== undefined) {
    const client = new ApiClient({ url: resolveApiUrl(opts) })
    input = (await client.get<{ manifest: unknown }>(`/v1/datanets/${encodeURIComponent(opts.datanet)}`)).manifest
  } else {
    throw usageError('which datanet: --datanet ID (a datanet the node follows) or --manifest FILE')
  }
  const manifest = parseManifest(input)
  const { id } = await encodeManifest(manifest)
  if (opts.datanet !== undefined && id !== opts.datanet) throw usageError(`the manifest is datanet ${id}, not ${opts.datanet}`)
  return { id, manifest }
}

export function registerChainCommand (program: Command): void {
  const chain = program.command('chain').description('the registry contract on an EVM chain')
  withChainOptions(chain.command('deploy'))
    .description('deploy the registry from the checked-in artifact; prints its address and block, and the config that points a node at it')
    .option('--write-config <file>', 'also write that config snippet (JSON) to a file')
    .action(async (opts: ChainOptions & { writeConfig?: string }) => {
      const confirmations = confirmationsOf(opts.confirmations)
      const rpc = rpcOf(opts)
      const chainId = await chainIdOf(rpc)
      const network = Network.from(chainId)
      const provider = new JsonRpcProvider(rpc, network, { staticNetwork: network, batchMaxCount: 1, polling: false, cacheTimeout: -1 })
      try {
        const signer = (await signerOf(opts)).connect(provider)
        const artifact = registryArtifact()
        let address: string
        let block: number
        let txHash: string
        try {
          const contract = await new ContractFactory(artifact.abi, artifact.bytecode, signer).deploy()
          const sent = contract.deploymentTransaction()
          if (sent === null) throw new Error('the deployment sent no transaction')
          const receipt = await waitForReceipt(provider, sent.hash, 10 * 60_000, `the deployment (${sent.hash})`)
          if (receipt.status !== 1) throw new DatanetError({ code: ChainErrorCode.REVERTED }, 'the deployment reverted', 'failure')
          address = await contract.getAddress()
          block = receipt.blockNumber
          txHash = receipt.hash
          await waitForBlock(provider, block + Math.max(1, confirmations) - 1)
        } catch (err) {
          const revert = revertOf(err)
          if (revert !== undefined) throw new DatanetError({ code: ChainErrorCode.REVERTED }, `the deployment reverted: ${revert.text}`, 'failure', { cause: err })
          if ((err as { code?: string }).code === 'INSUFFICIENT_FUNDS') throw new DatanetError({ code: ChainErrorCode.FUNDS }, `${signer.address} cannot pay for the deployment and its gas on chain ${chainId}`, 'conflict')
          throw err
        }
        // what is on chain is what the artifact says, not what a proxy or a reorg left
        const code = (await provider.getCode(address)).toLowerCase()
        const expected = `0x${artifact.deployedBytecode.replace(/^0x/, '')}`.toLowerCase()
        if (code !== expected) throw new DatanetError({ code: 'CHAIN_ERROR_CODE_MISMATCH' }, `the code at ${address} is not the artifact's deployed bytecode`, 'failure')
        const config = { chain: { rpcUrl: rpc.replace(/\/$/, ''), chainId, registry: address, startBlock: block } }
        if (opts.writeConfig !== undefined) writeFileSync(opts.writeConfig, JSON.stringify(config, null, 2) + '\n')
        print(opts.json, { address, block, txHash, chainId, deployer: signer.address, config }, () => [
          `registry ${address} on chain ${chainId}, block ${block} (tx ${txHash})`,
          `point a node at it (config file, or --chain-rpc ${config.chain.rpcUrl} --registry ${address}):`,
          JSON.stringify(config, null, 2)
        ].join('\n'))
      } finally {
        provider.destroy()
      }
    })
}

/** `datanet datanet register` and `datanet datanet fund`, beside create/list/show. */
export function registerDatanetChainCommands (datanet: Command): void {
  withRegistryOptions(datanet.command('register'))
    .description('register a datanet on the registry from its manifest: its genesis validators, their stakes (paid by the sender) and anchor interval')
    .option('--datanet <id>', 'a datanet the node follows (its manifest is read from the node)')
    .option('--manifest <file>', 'or the manifest file itself')
    .option('--min-stake <amount>', 'the smallest stake a joining validator puts up (at most the smallest genesis stake; default 1eth or that)')
    .option('--unbonding-delay <seconds>', 'how long a leaving validator\'s stake stays slashable', '604800')
    .action(async (opts: RegistryOptions & { datanet?: string, manifest?: string, minStake?: string, unbondingDelay: string }) => {
      const confirmations = confirmationsOf(opts.confirmations)
      const { id, manifest } = await manifestOf(opts)
      const unbonding = Number(opts.unbondingDelay)
      if (!Number.isInteger(unbonding) || unbonding < 1) throw usageError(`--unbonding-delay: expected whole seconds, at least 1, got "${opts.unbondingDelay}"`)
      const stakes = manifest.validators.map(v => BigInt(v.stake))
      const smallest = stakes.reduce((a, b) => (b < a ? b : a))
      const minStake = opts.minStake === undefined ? (DEFAULT_REGISTRY_PARAMS.minStake < smallest ? DEFAULT_REGISTRY_PARAMS.minStake : smallest) : parseAmount(opts.minStake, '--min-stake')
      if (minStake > smallest) throw usageError(`--min-stake: at most the smallest genesis stake (${smallest} wei)`)
      const { client, chainId } = await connect(opts)
      try {
        const digest = datanetDigest(id)
        const registered = await client.view<[string[], bigint[]]>('validatorsOf', [digest]).catch((err: unknown) => {
          if (revertOf(err)?.name === 'UnknownDatanet') return undefined
          throw err
        })
        if (registered !== undefined) {
          // our registry reads the set from the manifest; another contract may not have
          const same = registered[0].length === manifest.validators.length && manifest.validators.every(v => registered[0].some((a, i) => a.toLowerCase() === v.address.toLowerCase() && registered[1][i] === BigInt(v.stake)))
          if (!same) throw new DatanetError({ code: 'CHAIN_ERROR_REGISTRATION_MISMATCH' }, `datanet ${id} is registered on chain ${chainId} with another genesis set than its manifest's: nodes ignore that registration`, 'conflict')
          print(opts.json, { datanet: id, digest, registered: true, already: true, chainId, registry: client.address }, () => `datanet ${id} is already registered on ${client.address} (chain ${chainId}) as its manifest says`)
          return
        }
        const total = stakes.reduce((a, b) => a + b, 0n)
        const tx = await client.send('createDatanet', [encodeCbor(manifest), registryParams({ ...DEFAULT_REGISTRY_PARAMS, minStake, unbondingDelaySeconds: unbonding }, manifest.anchorInterval)], { value: total })
        await confirmed(client, tx, confirmations)
        print(opts.json, { datanet: id, digest, registered: true, already: false, chainId, registry: client.address, txHash: tx.txHash, block: tx.block, stakes: total.toString(), gasUsed: tx.gasUsed.toString() }, () =>
          `datanet ${id} registered on ${client.address} (chain ${chainId}), block ${tx.block} (tx ${tx.txHash}); ${manifest.validators.length} genesis validators, ${total} wei staked`)
      } finally {
        client.destroy()
      }
    })

  withRegistryOptions(datanet.command('fund'))
    .description('add to a datanet\'s reward pool on chain')
    .requiredOption('--datanet <id>', 'datanet id')
    .requiredOption('--amount <amount>', 'how much (e.g. 2eth, 500gwei; a bare number is in ether)')
    .action(async (opts: RegistryOptions & { datanet: string, amount: string }) => {
      const confirmations = confirmationsOf(opts.confirmations)
      const amount = parseAmount(opts.amount, '--amount')
      let digest: string
      try {
        digest = datanetDigest(opts.datanet)
      } catch {
        throw usageError(`--datanet: not a datanet id (a manifest CID): ${opts.datanet}`)
      }
      const { client, chainId } = await connect(opts)
      try {
        const tx = await client.send('fund', [digest], { value: amount })
        await confirmed(client, tx, confirmations)
        print(opts.json, { datanet: opts.datanet, amount: amount.toString(), chainId, registry: client.address, txHash: tx.txHash, block: tx.block }, () =>
          `funded datanet ${opts.datanet} with ${amount} wei on ${client.address} (chain ${chainId}), block ${tx.block} (tx ${tx.txHash})`)
      } finally {
        client.destroy()
      }
    })
}
