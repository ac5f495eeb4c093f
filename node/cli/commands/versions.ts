import { Command } from 'commander'
import { ApiClient } from '../client.ts'
import { resolveApiUrl, usageError, withGlobalOptions, type GlobalOptions } from '../context.ts'
import { print, table } from '../output.ts'
import type { RecordProof } from '../../services/record-proofs.ts'
import type { VersionEntry } from '../../../src/storage/state-db.ts'

interface DatanetOption extends GlobalOptions {
  datanet: string
  version?: string
}

type VersionJson = Omit<VersionEntry, 'frontier'>

export function registerVersionCommands (program: Command): void {
  withGlobalOptions(program.command('versions'))
    .description('a datanet\'s final versions, newest first')
    .requiredOption('--datanet <id>', 'datanet id')
    .action(async (opts: DatanetOption) => {
      const client = new ApiClient({ url: resolveApiUrl(opts) })
      const list = await client.get<VersionJson[]>(`/v1/datanets/${encodeURIComponent(opts.datanet)}/versions`)
      print(opts.json, list, () => list.length === 0 ? 'no final version yet' : table(
        ['height', 'records', 'contributions', 'dataset root', 'anchor'],
        list.map(v => [String(v.height), String(v.recordCount), String(v.contributions.length), v.datasetRoot, v.anchor === null ? '-' : `${v.anchor.txHash} @${v.anchor.block}`])
      ))
    })

  const version = program.command('version').description('one version')
  withGlobalOptions(version.command('show'))
    .description('one version with its certificate and anchor')
    .requiredOption('--datanet <id>', 'datanet id')
    .argument('<height>', 'version height')
    .action(async (height: string, opts: DatanetOption) => {
      if (!/^\d+$/.test(height)) throw usageError(`height: expected a positive integer, got "${height}"`)
      const client = new ApiClient({ url: resolveApiUrl(opts) })
      const v = await client.get<VersionJson>(`/v1/datanets/${encodeURIComponent(opts.datanet)}/versions/${height}`)
      print(opts.json, v, () => [
        `height            ${v.height} (round ${v.round})`,
        `version           ${v.cid}`,
        `parent            ${v.parent ?? '-'}`,
        `dataset root      ${v.datasetRoot} (${v.recordCount} records)`,
        `attribution root  ${v.attributionRoot} (${v.totalAttributed} wei attributed)`,
        `contributions     ${v.contributions.join('\n                  ') || '-'}`,
        `anchor            ${v.anchor === null ? '-' : `${v.anchor.txHash} in block ${v.anchor.block}`}`,
        `certificate       ${v.certificate.map(c => c.validator).join('\n                  ')}`
      ].join('\n'))
    })

  withGlobalOptions(program.command('proof'))
    .description('inclusion proof of a record against a version\'s dataset root')
    .requiredOption('--datanet <id>', 'datanet id')
    .option('--version <height>', 'against this version (default: the latest)')
    .argument('<recordHash>', 'the record\'s sha256 (0x…)')
    .action(async (hash: string, opts: DatanetOption) => {
      const client = new ApiClient({ url: resolveApiUrl(opts) })
      const query = opts.version !== undefined ? `?version=${encodeURIComponent(opts.version)}` : ''
      const p = await client.get<RecordProof>(`/v1/datanets/${encodeURIComponent(opts.datanet)}/records/${encodeURIComponent(hash)}/proof${query}`)
      print(opts.json, p, () => [
        `record        ${p.recordHash} (position ${p.position} of ${p.recordCount})`,
        `version       ${p.version} ${p.versionCid}`,
        `dataset root  ${p.datasetRoot}`,
        `proof         ${p.proof.join('\n              ') || '(the record is the only leaf)'}`
      ].join('\n'))
    })
}
