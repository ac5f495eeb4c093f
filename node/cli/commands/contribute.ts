import { createReadStream, statSync } from 'node:fs'
import { basename } from 'node:path'
import { Readable, Transform } from 'node:stream'
import { Command, Option } from 'commander'
import cliProgress from 'cli-progress'
import { formatOfFileName, UPLOAD_FORMATS, type UploadFormat } from '../../../src/contribution/parse.ts'
import { DatanetError } from '../../../src/errors.ts'
import { ApiClient } from '../client.ts'
import { CliErrorCode, resolveApiUrl, resolveToken, usageError, withGlobalOptions, type GlobalOptions } from '../context.ts'
import { print, table } from '../output.ts'
import { readKeyFile } from '../context.ts'
import type { Wallet } from 'ethers'
import type { ContributeResult, ContributionView, DraftResult } from '../../services/contributions.ts'

interface ContributeOptions extends GlobalOptions {
  datanet: string
  keyFile?: string
  keyPasswordFile?: string
  format?: UploadFormat
  skipInvalid?: boolean
  wait?: boolean
  timeout: string
}

const CONTENT_TYPE: Record<UploadFormat, string> = { jsonl: 'application/x-ndjson', csv: 'text/csv', text: 'text/plain' }
/** Files at least this large get a progress bar on a TTY. */
const PROGRESS_MIN_BYTES = 8 * 1024 * 1024

interface Refusal {
  error: { code: string, message: string, invalid?: Array<{ line: number, error: string }>, invalidCount?: number }
}

/** How long `contribute` retries an upload a busy node refuses (503 CONTRIBUTION_ERROR_BUSY). */
const BUSY_RETRY_MS = 5 * 60_000
const BUSY = 'CONTRIBUTION_ERROR_BUSY'

/** One POST of the file, streamed (with a progress bar on a TTY for large files). */
async function send (api: string, token: string, datanet: string, file: string, size: number, format: UploadFormat, query: URLSearchParams, opts: ContributeOptions): Promise<Response> {
  const bar = process.stderr.isTTY === true && opts.json !== true && size >= PROGRESS_MIN_BYTES
    ? new cliProgress.SingleBar({ format: `${basename(file)} [{bar}] {percentage}% {value}/{total} MiB`, stream: process.stderr }, cliProgress.Presets.shades_classic)
    : undefined
  let sent = 0
  bar?.start(Math.ceil(size / 1048576), 0)
  const counted = createReadStream(file).pipe(new Transform({
    transform (chunk: Buffer, _enc, done) {
      sent += chunk.length
      bar?.update(Math.floor(sent / 1048576))
      done(null, chunk)
    }
  }))
  try {
    return await fetch(`${api}/v1/datanets/${encodeURIComponent(datanet)}/contributions?${query.toString()}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': CONTENT_TYPE[format] },
      body: Readable.toWeb(counted) as unknown as ReadableStream,
      duplex: 'half'
    } as RequestInit)
  } catch (err) {
    throw new DatanetError({ code: CliErrorCode.API_UNREACHABLE }, `cannot reach the node's API at ${api}`, 'failure', { cause: err })
  } finally {
    bar?.stop()
  }
}

/** The node's refusal as one error (and, before it, file:line: error for each invalid record it listed). */
function refusalError (file: string, res: Response, { error }: Refusal): never {
  for (const bad of error.invalid ?? []) process.stderr.write(`${file}:${bad.line}: ${bad.error}\n`)
  const listed = error.invalid?.length ?? 0
  if ((error.invalidCount ?? 0) > listed) process.stderr.write(`${file}: … and ${(error.invalidCount ?? 0) - listed} more invalid records\n`)
  throw new DatanetError({ code: error.code }, `${file}: ${error.message}${error.invalid !== undefined ? ' (refused whole; --skip-invalid drops invalid records)' : ''}`, res.status === 422 || res.status === 400 ? 'usage' : 'failure')
}

async function upload (api: string, token: string, datanet: string, file: string, opts: ContributeOptions, signer: Wallet | undefined): Promise<ContributeResult> {
  const format = opts.format ?? formatOfFileName(file)
  if (format === undefined) throw usageError(`${file}: cannot tell the format from the name; pass --format ${UPLOAD_FORMATS.join('|')}`)
  let size: number
  try {
    size = statSync(file).size
  } catch (err) {
    throw usageError(`${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`)
  }
  const query = new URLSearchParams({ format, filename: basename(file) })
  if (opts.skipInvalid === true) query.set('skipInvalid', 'true')
  if (signer !== undefined) query.set('contributor', signer.address)
  // a node whose datanet has too many contributions waiting answers 503 BUSY: come back as it says, for a while
  const deadline = Date.now() + BUSY_RETRY_MS
  let res: Response
  for (;;) {
    res = await send(api, token, datanet, file, size, format, query, opts)
    if (res.status !== 503 || Date.now() > deadline) break
    const refusal = await res.json().catch(() => undefined) as Refusal | undefined
    if (refusal?.error.code !== BUSY) return refusalError(file, res, refusal ?? { error: { code: 'API_ERROR_UNAVAILABLE', message: `the node answered ${res.status}` } })
    const waitS = Math.min(30, Math.max(0.1, Number(res.headers.get('retry-after') ?? 2) || 2))
    process.stderr.write(`datanet: ${refusal.error.message}; retrying in ${waitS} s\n`)
    await new Promise(resolve => setTimeout(resolve, waitS * 1000))
  }
  const json = await res.json() as ContributeResult | Refusal | DraftResult
  if (res.status === 202 && signer !== undefined) {
    // The node built the contribution; the contributor's key signs it here, never leaving this machine.
    const draft = json as DraftResult
    const { chainId, ...domain } = draft.typedData.domain
    const signature = await signer.signTypedData({ ...domain, chainId: BigInt(chainId as number) }, draft.typedData.types, draft.typedData.value)
    const client = new ApiClient({ url: api, token })
    return await client.post<ContributeResult>(`/v1/datanets/${encodeURIComponent(datanet)}/contributions/drafts/${draft.draft}`, { signature })
  }
  if (res.ok) return json as ContributeResult
  return refusalError(file, res, json as Refusal)
}

/**
 * Waits until the contribution is decided and, when accepted, in a final version (DESIGN §6
 * `--wait`), saying where it is on a TTY as it goes.
 */
async function waitFinal (client: ApiClient, datanet: string, cid: string, timeoutMs: number, tty: boolean): Promise<ContributionView> {
  const deadline = Date.now() + timeoutMs
  let said = ''
  const say = (line: string): void => {
    if (!tty || line === said) return
    process.stderr.write(`\r\x1b[2K${line}`)
    said = line
  }
  try {
    for (;;) {
      const view = await client.get<ContributionView>(`/v1/datanets/${encodeURIComponent(datanet)}/contributions/${cid}`)
      if (view.status === 'rejected' || view.version !== null) return view
      say(view.status === 'pending'
        ? `${cid}: waiting for verdicts (${view.verdicts.length} so far)`
        : `${cid}: accepted (score ${String(view.score)}), waiting for a final version`)
      if (Date.now() > deadline) {
        throw new DatanetError({ code: 'CLI_ERROR_TIMEOUT' }, `contribution ${cid} is ${view.status === 'pending' ? 'still pending' : 'accepted but in no final version yet'} after ${timeoutMs / 1000} s`, 'failure')
      }
      await new Promise(resolve => setTimeout(resolve, 500))
    }
  } finally {
    if (said !== '') process.stderr.write('\r\x1b[2K')
  }
}

export function registerContributeCommand (program: Command): void {
  withGlobalOptions(program.command('contribute'))
    .description('contribute JSONL, CSV (header row) or text files; one contribution per file; prints each contribution CID')
    .requiredOption('--datanet <id>', 'datanet id')
    .argument('<files...>', 'files to contribute')
    .addOption(new Option('--format <format>', 'the files\' format (default: from the file name)').choices(UPLOAD_FORMATS))
    .option('--skip-invalid', 'drop schema-invalid records instead of refusing the file')
    .option('--key-file <keystore>', 'sign as another account: its v3 JSON keystore (default: the node\'s own key)')
    .option('--key-password-file <file>', 'the password of --key-file (else DATANET_PASSWORD)')
    .option('--wait', 'wait until each contribution is decided and, if accepted, in a final version; a rejection exits 1 with its reasons')
    .option('--timeout <seconds>', 'how long --wait waits', '300')
    .action(async (files: string[], opts: ContributeOptions) => {
      const api = resolveApiUrl(opts)
      const token = resolveToken(opts)
      const client = new ApiClient({ url: api, token })
      const timeoutMs = Number(opts.timeout) * 1000
      if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw usageError(`--timeout: expected seconds, got "${opts.timeout}"`)
      let signer: Wallet | undefined
      if (opts.keyFile !== undefined) signer = await readKeyFile(opts.keyFile, opts.keyPasswordFile)
      const results: Array<ContributeResult & { file: string, version?: number | null, reasons?: string[] }> = []
      for (const file of files) {
        const result: ContributeResult & { file: string, version?: number | null, reasons?: string[] } = { ...(await upload(api, token, opts.datanet, file, opts, signer)), file }
        if (opts.wait === true) {
          const view = await waitFinal(client, opts.datanet, result.cid, timeoutMs, process.stderr.isTTY === true && opts.json !== true)
          result.status = view.status
          result.version = view.version
          if (view.status === 'rejected') result.reasons = [...new Set(view.verdicts.filter(v => !v.accept).flatMap(v => v.reasons))]
        }
        if (opts.json !== true) {
          const notes = [result.duplicates > 0 ? `${result.duplicates} duplicate records dropped` : '', result.skippedInvalid > 0 ? `${result.skippedInvalid} invalid records skipped` : ''].filter(n => n !== '')
          if (notes.length > 0) process.stderr.write(`${file}: ${notes.join(', ')}\n`)
        }
        results.push(result)
      }
      print(opts.json, results.length === 1 ? results[0] : results, () => results.length === 1
        ? (results[0] as ContributeResult).cid
        : table(['file', 'cid', 'records', 'status', ...(opts.wait === true ? ['version'] : [])], results.map(r => [r.file, r.cid, String(r.recordCount), r.status, ...(opts.wait === true ? [String(r.version ?? '-')] : [])])))
      if (opts.wait === true && opts.json !== true && results.length === 1 && results[0]?.status === 'accepted') process.stderr.write(`${results[0].file}: accepted, in version ${String(results[0].version)}\n`)
      const rejected = results.filter(r => r.status === 'rejected')
      for (const r of rejected) process.stderr.write(`${r.file}: contribution ${r.cid} rejected: ${(r.reasons ?? []).join(', ') || 'no reasons given'}\n`)
      if (rejected.length > 0) process.exitCode = 1
    })
}

export function registerContributionCommand (program: Command): void {
  const contribution = program.command('contribution').description('contributions')
  withGlobalOptions(contribution.command('show'))
    .description('a contribution: status, verdicts, version')
    .argument('<cid>', 'contribution CID')
    .action(async (cid: string, opts: GlobalOptions) => {
      const client = new ApiClient({ url: resolveApiUrl(opts) })
      const v = await client.get<ContributionView>(`/v1/contributions/${encodeURIComponent(cid)}`)
      print(opts.json, v, () => [
        `cid          ${v.cid}`,
        `datanet      ${v.datanet}`,
        `status       ${v.status}${v.score !== null ? ` (score ${v.score})` : ''}`,
        `version      ${v.version ?? '-'}`,
        `contributor  ${v.contributor}`,
        `records      ${v.recordCount} in ${v.shards.length} shard${v.shards.length === 1 ? '' : 's'} (${v.byteSize} bytes)`,
        '',
        v.verdicts.length === 0 ? 'no verdicts yet' : table(['validator', 'verdict', 'score', 'reasons'], v.verdicts.map(x => [x.validator, x.accept ? 'accept' : 'reject', String(x.score), x.reasons.join(', ') || '-']))
      ].join('\n'))
    })
}
