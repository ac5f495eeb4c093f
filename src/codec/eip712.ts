import { ZeroAddress, ZeroHash, type TypedDataDomain } from 'ethers'
import { CID } from 'multiformats/cid'
import { toHex } from './hash.ts'

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


/**
 * The domain of everything signed for one datanet (contributions, verdicts, votes, model
 * records, inference events): salt = the datanet id's 32-byte digest, the registry's key.
 */
export function signingDomain (binding: Omit<DomainBinding, 'datanet'>, datanetId: string): TypedDataDomain {
  return datanetDomain({ ...binding, datanet: toHex(CID.parse(datanetId).multihash.digest) })
}

/** What signs typed data: an ethers Wallet, or anything with the same method. */
export interface TypedDataSigner {
  address: string
  signTypedData: (domain: TypedDataDomain, types: Record<string, Array<{ name: string, type: string }>>, value: Record<string, unknown>) => Promise<string>
}
