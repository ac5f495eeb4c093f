import { Command } from 'commander'
import { formatEther } from 'ethers'
import { parseAmount } from '../amount.ts'
import { ApiClient } from '../client.ts'
import { resolveApiUrl, resolveToken, withGlobalOptions, type GlobalOptions } from '../context.ts'
import { print, table } from '../output.ts'
import type { ValidatorView } from '../../services/chain.ts'

interface ValidatorOptions extends GlobalOptions {
  datanet: string
  stake?: string
}

interface ValidatorsJson {
  source: 'chain' | 'manifest'
  validators: ValidatorView[]
  totalStake: string
  chain: { block: number, registered: boolean, registration: 'none' | 'matches' | 'mismatch', problem: string | null, lastAnchor: { height: number, txHash: string, block: number } | null } | null
}

interface TxJson { txHash: string, block: number, gasUsed: string }

const path = (opts: ValidatorOptions, rest = ''): string => `/v1/datanets/${encodeURIComponent(opts.datanet)}/validators${rest}`

/** `datanet validator join|leave|withdraw|list` (DESIGN §6): the node's own stake, sent by its key. */
export function registerValidatorCommand (program: Command): void {
  const validator = program.command('validator').description('the validator set of a datanet, and this node joining or leaving it')

  withGlobalOptions(validator.command('join'))
    .description('stakes on-chain to become a validator; active after the next anchored version')
    .requiredOption('--datanet <id>', 'datanet id')
    .requiredOption('--stake <amount>', 'stake in ETH (1.5, 1.5eth, 2gwei, 1000wei)')
    .action(async (opts: ValidatorOptions) => {
      const stake = parseAmount(opts.stake ?? '', '--stake')
      const client = new ApiClient({ url: resolveApiUrl(opts), token: resolveToken(opts) })
      const tx = await client.post<TxJson>(path(opts, '/join'), { stake: stake.toString() })
      print(opts.json, tx, () => `join requested with ${formatEther(stake)} ETH staked (tx ${tx.txHash}, block ${tx.block}); active after the next anchored version`)
    })

  withGlobalOptions(validator.command('leave'))
    .description('leaves the set at the next anchored version; the stake unbonds after the datanet\'s delay')
    .requiredOption('--datanet <id>', 'datanet id')
    .action(async (opts: ValidatorOptions) => {
      const client = new ApiClient({ url: resolveApiUrl(opts), token: resolveToken(opts) })
      const tx = await client.post<TxJson>(path(opts, '/leave'))
      print(opts.json, tx, () => `leave requested (tx ${tx.txHash}, block ${tx.block}); out of the set after the next anchored version`)
    })

  withGlobalOptions(validator.command('withdraw'))
    .description('withdraws the stake once the unbonding delay has passed')
    .requiredOption('--datanet <id>', 'datanet id')
    .action(async (opts: ValidatorOptions) => {
      const client = new ApiClient({ url: resolveApiUrl(opts), token: resolveToken(opts) })
      const tx = await client.post<TxJson>(path(opts, '/withdraw'))
      print(opts.json, tx, () => `stake withdrawn (tx ${tx.txHash}, block ${tx.block})`)
    })

  withGlobalOptions(validator.command('list'))
    .description('the validator set: stakes and status')
    .requiredOption('--datanet <id>', 'datanet id')
    .action(async (opts: ValidatorOptions) => {
      const client = new ApiClient({ url: resolveApiUrl(opts) })
      const v = await client.get<ValidatorsJson>(path(opts))
      print(opts.json, v, () => [
        ...(v.chain?.problem == null ? [] : [`warning: the registration on chain is not this datanet's manifest and is ignored: ${v.chain.problem}`]),
        `source: ${v.source}${v.chain === null ? '' : ` (block ${v.chain.block}, last anchor ${v.chain.lastAnchor === null ? '-' : `height ${v.chain.lastAnchor.height} in ${v.chain.lastAnchor.txHash}`})`}`,
        table(['address', 'stake (ETH)', 'status', 'since', 'peer id'], v.validators.map(x => [x.address, formatEther(x.stake), x.status, String(x.since), x.peerId ?? '-']))
      ].join('\n'))
    })
}
