/**
 * One writer per stored entity, checked: every write to a repository of the state
 * database (`db.<repository>.<write method>(`) outside `src/storage` must come from the
 * file that owns it. Other services ask the owner or listen to its events. Exits 1
 * listing each write from anywhere else.
 */
import { readFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { codeOnly, sourceFiles } from './check-purity.ts'

/**
 * Who writes what. Contributions are the one entity with three lifecycle stages in three
 * services (received; decided by the verdict tally; included by a final version): each goes
 * through the repository's locked `update` / `include`, so no stage loses another's write.
 */
export const WRITERS: Record<string, readonly string[]> = {
  facts: ['node/daemon/datanet-node.ts'],
  peers: ['src/network/announce.ts'],
  datanets: ['node/services/datanets.ts'],
  contributions: ['node/services/contributions.ts', 'node/services/verdicts.ts', 'node/services/consensus/versions.ts'],
  // the record index: claimed by an upload here or by a gossiped contribution's receipt
  records: ['node/services/contributions.ts', 'node/services/contribution-receiver.ts'],
  uploads: ['node/services/contributions.ts'],
  verdicts: ['node/services/verdicts.ts'],
  versions: ['node/services/consensus/versions.ts'],
  tallies: ['node/services/consensus/versions.ts'],
  dataset: ['node/services/consensus/versions.ts'],
  consensus: ['node/services/consensus/datanet-consensus.ts', 'node/services/consensus/versions.ts'],
  evidence: ['node/services/consensus/datanet-consensus.ts'],
  'evidence.markSubmitted': ['node/services/chain.ts'],
  anchors: ['node/services/chain.ts'],
  inferences: ['node/services/inferences.ts'],
  models: ['node/services/models.ts'],
  outbox: ['node/daemon/datanet-node.ts'],
  chain: ['src/storage/chain-store.ts']
}

const WRITE = /\bdb\.(\w+)\.(put|putOp|putMany|delete|delOp|write|keep|markSubmitted|update|include|claim|release|appendOps)\s*\(/g
const SCANNED = ['node', 'src']

export interface WriteViolation { file: string, line: number, what: string }

export function checkWriters (root: string, writers: Record<string, readonly string[]> = WRITERS): WriteViolation[] {
  const out: WriteViolation[] = []
  for (const file of SCANNED.flatMap(d => sourceFiles(join(root, d)))) {
    if (!file.endsWith('.ts')) continue
    const rel = relative(root, file).split('\\').join('/')
    if (rel.startsWith('src/storage/') && rel !== 'src/storage/chain-store.ts') continue
    codeOnly(readFileSync(file, 'utf8')).split('\n').forEach((line, i) => {
      for (const m of line.matchAll(WRITE)) {
        const repo = m[1] as string
        const method = m[2] as string
        const owners = writers[`${repo}.${method}`] ?? writers[repo]
        if (owners === undefined) out.push({ file: rel, line: i + 1, what: `writes db.${repo}, which has no declared writer` })
        else if (!owners.includes(rel)) out.push({ file: rel, line: i + 1, what: `writes db.${repo} (${method}), owned by ${owners.join(', ')}` })
      }
    })
  }
  return out
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const violations = checkWriters(join(import.meta.dirname, '..'))
  for (const v of violations) process.stderr.write(`${v.file}:${v.line}: ${v.what}\n`)
  process.stdout.write(violations.length === 0 ? `writers: each repository is written by its owner only\n` : `writers: ${violations.length} violation(s)\n`)
  process.exitCode = violations.length === 0 ? 0 : 1
}
