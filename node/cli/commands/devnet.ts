import { Command } from 'commander'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { formatEther, getAddress, isAddress } from 'ethers'
import { Devnet, type DevnetFile } from '../../devnet/devnet.ts'
import { fundAccounts, localSigner } from '../../devnet/chain-setup.ts'
import { parseAmount } from '../amount.ts'
import { describeSummary, runDemo } from '../../devnet/demo.ts'
import { usageError, withGlobalOptions, type GlobalOptions } from '../context.ts'
import { print, table } from '../output.ts'

interface DevnetCliOptions extends GlobalOptions {
  validators: string
  nodes: string
  dir: string
  demo?: boolean
}

/**
 * A line per new final version and per anchor, read from the first validator's API until
 * `signal` aborts (the devnet's live view).
 */
async function watchVersions (file: DevnetFile, say: (line: string) => void, signal: AbortSignal): Promise<void> {
  const node = file.nodes.find(n => n.role === 'validator')
  if (node === undefined || file.datanet === null) return
  const seen = new Map<number, boolean>()
  while (!signal.aborted) {
    try {
      const res = await fetch(`${node.apiUrl}/v1/datanets/${file.datanet}/versions`, { signal: AbortSignal.timeout(5000) })
      const list = await res.json() as Array<{ height: number, recordCount: number, contributions: string[], attributionRoot: string, totalAttributed: string, anchor: { txHash: string, block: number } | null }>
      for (const v of [...list].reverse()) {
        if (!seen.has(v.height)) say(`version ${v.height} final: ${v.recordCount} records, ${v.contributions.length} new contribution(s), ${v.totalAttributed} wei attributed`)
        if (v.anchor !== null && seen.get(v.height) !== true) say(`version ${v.height} anchored: tx ${v.anchor.txHash} in block ${v.anchor.block}`)
        seen.set(v.height, v.anchor !== null)
      }
    } catch {}
    await new Promise(resolve => setTimeout(resolve, 1000).unref())
  }
}

function count (flag: string, value: string, min: number): number {
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > 64) throw usageError(`--${flag}: expected an integer from ${min} to 64, got "${value}"`)
  return Number(value)
}

export function registerDevnetCommand (program: Command): void {
  const devnetCommand = withGlobalOptions(program.command('devnet'))
  withGlobalOptions(devnetCommand.command('fund'))
    .description('sends ETH on the devnet\'s chain to an address (from anvil\'s funded dev account), e.g. a newcomer\'s node before `validator join`')
    .argument('<address>', 'the account to fund')
    .option('--amount <eth>', 'how much, in ETH', '100')
    .action(async (address: string, opts: GlobalOptions & { amount: string }) => {
      // --dir is the devnet command's own option (commander gives it to the parent)
      const dir = (devnetCommand.opts() as { dir: string }).dir
      if (!isAddress(address)) throw usageError(`not an address: ${address}`)
      const amount = parseAmount(opts.amount, '--amount')
      const file = join(dir, 'devnet.json')
      if (!existsSync(file)) throw usageError(`no devnet in ${dir} (${file} is missing): start one with datanet devnet --dir ${dir}`)
      const chain = (JSON.parse(readFileSync(file, 'utf8')) as DevnetFile).chain
      if (chain === null) throw usageError(`the devnet in ${dir} has no chain`)
      const { provider, signer } = localSigner(chain.rpcUrl, chain.chainId)
      try {
        await fundAccounts(signer, [getAddress(address)], amount)
        const balance = await provider.getBalance(address)
        print(opts.json, { address: getAddress(address), amount: amount.toString(), balance: balance.toString() }, () => `sent ${formatEther(amount)} ETH to ${getAddress(address)} (balance ${formatEther(balance)} ETH)`)
      } finally {
        provider.destroy()
      }
    })
  devnetCommand
    .description('run a local multi-node test network on loopback until Ctrl-C')
    .option('--validators <n>', 'validator nodes', '4')
    .option('--nodes <m>', 'plain nodes', '1')
    .option('--dir <dir>', 'where node data, logs and devnet.json go', '.devnet')
    .option('--demo', 'run the whole story against the network, narrated, and end with a summary')
    .action(async (opts: DevnetCliOptions) => {
      const validators = count('validators', opts.validators, 1)
      const nodes = count('nodes', opts.nodes, 0)
      // progress and narration go to stderr, so --json output on stdout stays machine-readable
      const say = (line: string): void => { process.stderr.write(`${line}\n`) }
      const devnet = new Devnet({ dir: opts.dir, validators, nodes, log: say })

      let signalled = false
      const onSignal = (): void => {
        if (signalled) process.exit(130)
        signalled = true
        say('stopping the devnet…')
        void devnet.stop()
      }
      process.on('SIGINT', onSignal)
      process.on('SIGTERM', onSignal)

      const file = await devnet.start()
      print(opts.json, file, () => table(
        ['role', 'address', 'peer id', 'api', 'log'],
        file.nodes.map(n => [n.role, n.address, n.peerId, n.apiUrl, n.logFile])
      ) + `\n\nwrote ${devnet.file}${file.chain === null ? '' : `\nchain ${file.chain.rpcUrl} (id ${file.chain.chainId}), registry ${file.chain.registry}, datanet ${file.datanet}\njoin as a validator: datanet init --data-dir D; datanet node start --data-dir D --config ${devnet.connectFile}; datanet validator join --datanet ${file.datanet} --stake 10`}\nCtrl-C stops every node`)
      const live = new AbortController()
      void watchVersions(file, say, live.signal)
      if (opts.demo === true) {
        try {
          const summary = await runDemo(file, say)
          if (opts.json === true) process.stdout.write(JSON.stringify({ summary }) + '\n')
          else process.stdout.write(describeSummary(summary) + '\n\nthe devnet keeps running; Ctrl-C stops it\n')
        } catch (err) {
          live.abort()
          await devnet.stop()
          throw err
        }
      }

      const crashed = await Promise.race([devnet.watch(), new Promise<undefined>(resolve => {
        process.once('SIGINT', () => resolve(undefined))
        process.once('SIGTERM', () => resolve(undefined))
      })])
      if (crashed !== undefined && !signalled) {
        await devnet.stop()
        throw new Error(`${crashed} exited unexpectedly: ${devnet.tail(crashed)}`)
      }
      live.abort()
      await devnet.stop()
      say('devnet stopped')
    })
}
