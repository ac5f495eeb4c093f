import { Contract, ContractFactory, JsonRpcProvider, Network, NonceManager, Wallet, parseEther, type Signer } from 'ethers'
import { registryArtifact } from '../../src/chain/registry-client.ts'
import { encodeCbor } from '../../src/codec/cbor.ts'
import { sha256, toHex } from '../../src/codec/hash.ts'
import { datanetDigest, parseManifest, type Manifest } from '../../src/datanet/manifest.ts'

/** The first account of anvil's dev mnemonic (funded with 10,000 ETH): the devnet's deployer. */
export const ANVIL_DEPLOYER_KEY = '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80'

export interface RegistryParams {
  thresholdNumerator: number
  thresholdDenominator: number
  minStake: bigint
  unbondingDelaySeconds: number
}

export const DEFAULT_REGISTRY_PARAMS: RegistryParams = { thresholdNumerator: 2, thresholdDenominator: 3, minStake: parseEther('1'), unbondingDelaySeconds: 60 }

/** A signer on a local chain, with one nonce sequence for the sends of a setup. */
export function localSigner (rpcUrl: string, chainId: number, key = ANVIL_DEPLOYER_KEY): { provider: JsonRpcProvider, signer: NonceManager } {
  const network = Network.from(chainId)
  const provider = new JsonRpcProvider(rpcUrl, network, { staticNetwork: network, polling: false, cacheTimeout: -1 })
  return { provider, signer: new NonceManager(new Wallet(key, provider)) }
}

/** Deploys the registry; resolves with its address and deployment block. */
export async function deployRegistry (signer: Signer): Promise<{ address: string, block: number }> {
  const { abi, bytecode } = registryArtifact()
  const contract = await new ContractFactory(abi, bytecode, signer).deploy()
  const receipt = await contract.deploymentTransaction()?.wait()
  if (receipt == null) throw new Error('registry deployment has no receipt')
  return { address: await contract.getAddress(), block: receipt.blockNumber }
}

/**
 * Registers a datanet: the contract reads the genesis validators, their stakes and the anchor
 * interval from the manifest's bytes and keys it by their sha2-256, so the registration is the
 * manifest's own (this pays the stakes).
 */
export async function registerDatanet (signer: Signer, registry: string, datanetId: string, manifest: Manifest, params: RegistryParams = DEFAULT_REGISTRY_PARAMS): Promise<string> {
  const bytes = encodeCbor(manifest)
  if (toHex(sha256(bytes)) !== datanetDigest(datanetId)) throw new Error(`the manifest given is not datanet ${datanetId}'s`)
  const contract = new Contract(registry, registryArtifact().abi, signer)
  const total = manifest.validators.reduce((a, v) => a + BigInt(v.stake), 0n)
  const tx = await contract.getFunction('createDatanet').send(bytes, registryParams(params, manifest.anchorInterval), { value: total })
  const receipt = await tx.wait()
  if (receipt === null || receipt.status !== 1) throw new Error('createDatanet failed')
  return receipt.hash
}

/** The contract's `Params` tuple. */
export function registryParams (params: RegistryParams, anchorInterval: number): { thresholdNumerator: number, thresholdDenominator: number, minStake: bigint, unbondingDelay: number, anchorInterval: number } {
  return { thresholdNumerator: params.thresholdNumerator, thresholdDenominator: params.thresholdDenominator, minStake: params.minStake, unbondingDelay: params.unbondingDelaySeconds, anchorInterval }
}

/**
 * A minimal manifest for a genesis set (tests and benchmarks that register datanets directly):
 * its dag-cbor bytes, which `createDatanet` takes, and its digest, the datanet's key on chain.
 */
export function genesisManifest (validators: ReadonlyArray<{ address: string, stake: bigint }>, opts: { anchorInterval?: number, nonce?: string } = {}): { manifest: Manifest, bytes: Uint8Array, digest: string } {
  const manifest = parseManifest({
    name: 'genesis',
    license: 'CC0-1.0',
    recordSchema: { type: 'object' },
    anchorInterval: opts.anchorInterval ?? 1,
    nonce: opts.nonce ?? '',
    validators: validators.map(v => ({ address: v.address, stake: v.stake.toString() }))
  })
  const bytes = encodeCbor(manifest)
  return { manifest, bytes, digest: toHex(sha256(bytes)) }
}

/** Sends each address `amount` wei (so nodes can pay gas and stake). */
export async function fundAccounts (signer: Signer, addresses: readonly string[], amount: bigint): Promise<void> {
  const txs = []
  for (const to of addresses) txs.push(await signer.sendTransaction({ to, value: amount }))
  await Promise.all(txs.map(async tx => await tx.wait()))
}

