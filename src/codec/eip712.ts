import { ZeroAddress, ZeroHash, type TypedDataDomain } from 'ethers'

/** What an EIP-712 domain binds: the chain, the registry contract and (where relevant) the datanet. */
export interface DomainBinding {
  chainId: number
  /** The registry contract; the zero address until one is configured. */
  registry: string | null
  /** The datanet's 32-byte manifest digest, or null for node-level messages. */
  datanet: string | null
}

/** The EIP-712 domain of every datanet signature, so none replays on another chain, contract or datanet. */
export function datanetDomain (binding: DomainBinding): TypedDataDomain {
  return {
    name: 'datanet',
    version: '1',
    chainId: binding.chainId,
    verifyingContract: binding.registry ?? ZeroAddress,
    salt: binding.datanet ?? ZeroHash
  }
}

