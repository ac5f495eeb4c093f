import { Command } from 'commander'
import { ApiClient } from '../client.ts'
import { resolveApiUrl, withGlobalOptions, type GlobalOptions } from '../context.ts'
import { print } from '../output.ts'
import type { NodeInfo } from '../../api/routes/node.ts'

export function registerStatusCommand (program: Command): void {
  withGlobalOptions(program.command('status'))
    .description('the node: peer id, addresses, peers, datanets, chain, height')
    .action(async (opts: GlobalOptions) => {
      const client = new ApiClient({ url: resolveApiUrl(opts) })
      const info = await client.get<NodeInfo>('/v1/node')
      print(opts.json, info, () => [
        `peer id    ${info.peerId}`,
        `address    ${info.address}`,
        `version    ${info.version}`,
        `api        ${client.url}`,
        'listening  ' + (info.addresses.join('\n           ') || '-'),
        `peers      ${info.peers.length}` + info.peers.map(p => `\n           ${p.peerId}${p.address !== null ? ` (${p.address})` : ''}`).join(''),
        `datanets   ${info.datanets.length === 0 ? '-' : info.datanets.join(', ')}`,
        `chain      ${info.chain === null ? '-' : `${info.chain.rpcUrl} (chain id ${info.chain.chainId}, registry ${info.chain.registry ?? '-'})`}`,
        `height     ${info.height ?? '-'}`
      ].join('\n'))
    })
}
