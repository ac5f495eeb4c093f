import { Command } from 'commander'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { formatEther, getAddress, isAddress } from 'ethers'
import { askControl, serveControl, type DevnetNodeStatus, type NodeAction } from '../../devnet/control.ts'
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
  if (file.datanet === null) return
  const seen = new Map<number, boolean>()
  let at = 0
  while (!signal.aborted) {
    // the first validator that answers: one may be down for a drill
    const node = file.nodes[at % file.nodes.length] as DevnetFile['nodes'][number]
    try {
      const res = await fetch(`${node.apiUrl}/v1/datanets/${file.datanet}/versions`, { signal: AbortSignal.timeout(5000) })
      const list = await res.json() as Array<{ height: number, recordCount: number, contributions: string[], attributionRoot: string, totalAttributed: string, anchor: { txHash: string, block: number } | null }>
      for (const v of [...list].reverse()) {
        if (!seen.has(v.height)) say(`version ${v.height} final: ${v.recordCount} records, ${v.contributions.length} new contribution(s), ${v.totalAttributed} wei attributed`)
        if (v.anchor !== null && seen.get(v.height) !== true) say(`version ${v.height} anchored: tx ${v.anchor.txHash} in block ${v.anchor.block}`)
        seen.set(v.height, v.anchor !== null)
      }
    } catch {
      at++
    }
    await new Promise(resolve => setTimeout(resolve, 1000).unref())
  }
}

function count (flag: string, value: string, min: number): number {
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > 64) throw usageError(`--${flag}: expected an integer from ${min} to 64, got "${value}"`)
  return Number(value)
}

export function registerDevnetCommand (program: Command): void {
  const devnetCommand = withGlobalOptions(program.command('devnet'))
  // --dir after a subcommand is its own; before it, the devnet command's (default .devnet)
  const dirOf = (opts: { dir?: string }): string => opts.dir ?? (devnetCommand.opts() as { dir: string }).dir
  withGlobalOptions(devnetCommand.command('fund'))
    .description('sends ETH on the devnet\'s chain to an address (from anvil\'s funded dev account), e.g. a newcomer\'s node before `validator join`')
    .argument('<address>', 'the account to fund')
    .option('--amount <eth>', 'how much, in ETH', '100')
    .option('--dir <dir>', 'the devnet\'s directory (default .devnet)')
    .action(async (address: string, opts: GlobalOptions & { amount: string, dir?: string }) => {
      const dir = dirOf(opts)
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
  withGlobalOptions(devnetCommand.command('status'))
    .description('the running devnet\'s nodes: up or down, pid, height')
    .option('--dir <dir>', 'the devnet\'s directory (default .devnet)')
    .action(async (opts: GlobalOptions & { dir?: string }) => {
      const { nodes } = await askControl<{ nodes: DevnetNodeStatus[] }>(dirOf(opts), 'GET', '/status')
      print(opts.json, { nodes }, () => table(['name', 'role', 'state', 'pid', 'height'], nodes.map(n => [n.name, n.role, n.state, String(n.pid ?? '-'), String(n.height ?? '-')])))
    })
  const drills: Array<[NodeAction, string]> = [
    ['stop', 'stop one node gracefully (SIGTERM); the devnet goes on'],
    ['start', 'start a stopped node again, with its data, ports and peers'],
    ['kill', 'kill one node with SIGKILL (kill -9), for a fault drill']
  ]
  for (const [action, description] of drills) {
    withGlobalOptions(devnetCommand.command(action))
      .description(description)
      .argument('<name>', 'the node, as in devnet.json (validator-0, node-0, …)')
      .option('--dir <dir>', 'the devnet\'s directory (default .devnet)')
      .action(async (name: string, opts: GlobalOptions & { dir?: string }) => {
        const n = await askControl<DevnetNodeStatus>(dirOf(opts), 'POST', `/nodes/${encodeURIComponent(name)}/${action}`)
        print(opts.json, n, () => `${n.name} ${n.state}${n.pid === null ? '' : ` (pid ${n.pid})`}`)
      })
  }
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

      // Ctrl-C, SIGTERM (a process manager), SIGHUP (the terminal closed), or the parent gone
      // (`npm run devnet` stopped: npm's shell dies without passing the signal on): each stops
      // everything this devnet started. A second signal forces the exit.
      let requestStop: (why: string) => void = () => {}
      const stopRequested = new Promise<string>(resolve => { requestStop = resolve })
      let signalled = false
      const onSignal = (why: string): void => {
        if (signalled) process.exit(130)
        signalled = true
        say(`stopping the devnet (${why})…`)
        requestStop(why)
        void devnet.stop()
      }
      for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => { onSignal(signal) })
      const parent = process.ppid
      const parentWatch = setInterval(() => { if (process.ppid !== parent) onSignal('its parent process exited') }, 500)
      parentWatch.unref()

      const file = await devnet.start()
      print(opts.json, file, () => table(
        ['role', 'address', 'peer id', 'api', 'log'],
        file.nodes.map(n => [n.role, n.address, n.peerId, n.apiUrl, n.logFile])
      ) + `\n\nwrote ${devnet.file}${file.chain === null ? '' : `\nchain ${file.chain.rpcUrl} (id ${file.chain.chainId}), registry ${file.chain.registry}, datanet ${file.datanet}\njoin as a validator: datanet init --data-dir D; datanet node start --data-dir D --config ${devnet.connectFile}; datanet validator join --datanet ${file.datanet} --stake 10`}\nexplorer: ${file.nodes[0]?.apiUrl ?? '-'}/ (every node serves one at its api url)\nfault drills: datanet devnet status | stop NAME | kill NAME | start NAME --dir ${opts.dir}\nCtrl-C stops every node`)
      const live = new AbortController()
      void watchVersions(file, say, live.signal)
      devnet.monitor((name, code, requested) => {
        if (requested === 'kill') say(`${name} killed (kill -9)`)
        else if (requested === 'stop') say(`${name} stopped`)
        else say(`${name} exited (${code === -1 ? 'killed by a signal' : `code ${String(code)}`}); the others go on: datanet devnet start ${name} --dir ${opts.dir} brings it back (its log: ${devnet.logFile(name) ?? '-'})`)
      })
      const closeControl = await serveControl(devnet.dir, devnet)
      if (opts.demo === true) {
        try {
          const summary = await runDemo(file, say)
          if (opts.json === true) process.stdout.write(JSON.stringify({ summary }) + '\n')
          else process.stdout.write(describeSummary(summary) + '\n\nthe devnet keeps running; Ctrl-C stops it\n')
        } catch (err) {
          live.abort()
          await closeControl()
          await devnet.stop()
          throw err
        }
      }
      await stopRequested
      clearInterval(parentWatch)
      live.abort()
      await closeControl()
      await devnet.stop()
      say('devnet stopped')
    })
}
