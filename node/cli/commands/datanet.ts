import { readFileSync } from 'node:fs'
import { Command } from 'commander'
import { ApiClient } from '../client.ts'
import { resolveApiUrl, resolveToken, usageError, withGlobalOptions, type GlobalOptions } from '../context.ts'
import { print, table } from '../output.ts'
import { registerDatanetChainCommands } from './chain.ts'

interface DatanetJson {
  id: string
  digest: string
  name: string
  license: string
  validators: Array<{ address: string, stake: string }>
  manifest: Record<string, unknown>
  /** In `show` only: the registration on chain (null without a chain). */
  chain?: { registration: 'none' | 'matches' | 'mismatch', problem: string | null } | null
}

interface CreateOptions extends GlobalOptions {
  manifest: string
}

function describe (d: DatanetJson): string {
  return [
    `id          ${d.id}`,
    `name        ${d.name}`,
    `license     ${d.license}`,
    `digest      ${d.digest}`,
    `validators  ${d.validators.map(v => `${v.address} (stake ${v.stake})`).join('\n            ')}`,
    ...(d.chain == null ? [] : [`on chain    ${d.chain.registration === 'mismatch' ? `REFUSED: the registration is not this manifest's, ignored (${d.chain.problem ?? ''})` : d.chain.registration === 'matches' ? 'registered' : 'not registered yet'}`])
  ].join('\n')
}

export function registerDatanetCommand (program: Command): void {
  const datanet = program.command('datanet').description('datanets: create, list, show; register and fund on chain')

  withGlobalOptions(datanet.command('create'))
    .description('store a manifest and follow the datanet; prints its id (the manifest CID)')
    .requiredOption('--manifest <file>', 'the manifest, JSON')
    .action(async (opts: CreateOptions) => {
      let manifest: unknown
      try {
        manifest = JSON.parse(readFileSync(opts.manifest, 'utf8'))
      } catch (err) {
        throw usageError(`--manifest ${opts.manifest}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
      }
      const client = new ApiClient({ url: resolveApiUrl(opts), token: resolveToken(opts) })
      const d = await client.post<DatanetJson>('/v1/datanets', manifest)
      print(opts.json, d, () => d.id)
    })

  withGlobalOptions(datanet.command('list'))
    .description('the datanets this node follows')
    .action(async (opts: GlobalOptions) => {
      const client = new ApiClient({ url: resolveApiUrl(opts) })
      const list = await client.get<DatanetJson[]>('/v1/datanets')
      print(opts.json, list, () => list.length === 0 ? 'no datanets' : table(['id', 'name', 'license', 'validators'], list.map(d => [d.id, d.name, d.license, String(d.validators.length)])))
    })

  withGlobalOptions(datanet.command('show'))
    .description('one datanet: manifest and validators')
    .argument('<id>', 'datanet id')
    .action(async (id: string, opts: GlobalOptions) => {
      const client = new ApiClient({ url: resolveApiUrl(opts) })
      const d = await client.get<DatanetJson>(`/v1/datanets/${encodeURIComponent(id)}`)
      print(opts.json, d, () => describe(d))
    })

  registerDatanetChainCommands(datanet)
}
