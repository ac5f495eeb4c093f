import { spawnCli } from '../../node/devnet/node-process.ts'
import { withDeadline } from './wait.ts'

export interface CliResult { code: number | null, stdout: string, stderr: string }

/** Runs the datanet CLI to completion (bounded). */
export async function runCli (args: string[], opts: { env?: NodeJS.ProcessEnv, timeoutMs?: number } = {}): Promise<CliResult> {
  const child = spawnCli(args, { env: opts.env })
  let stdout = ''
  let stderr = ''
  child.stdout?.on('data', (b: Buffer) => { stdout += b.toString() })
  child.stderr?.on('data', (b: Buffer) => { stderr += b.toString() })
  const code = await withDeadline(new Promise<number | null>(resolve => child.once('close', resolve)), opts.timeoutMs ?? 60_000, `datanet ${args.join(' ')}`)
    .finally(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  return { code, stdout, stderr }
}
