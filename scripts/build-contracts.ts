/**
 * Compiles src/chain/DatanetRegistry.sol with solc-js (standard JSON, optimizer on) and
 * writes src/chain/artifacts/DatanetRegistry.json: {contractName, compiler, abi, bytecode,
 * deployedBytecode, sourceSha256}. Idempotent: the same source and compiler give the same
 * file, and the file is only rewritten when its content changes.
 *
 *   node scripts/build-contracts.ts
 */
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const require = createRequire(import.meta.url)

interface SolcOutputError { severity: string, formattedMessage: string }
interface SolcContract { abi: unknown[], evm: { bytecode: { object: string }, deployedBytecode: { object: string } } }
interface SolcOutput { errors?: SolcOutputError[], contracts?: Record<string, Record<string, SolcContract>> }
interface Solc { version: () => string, compile: (input: string, callbacks: { import: (path: string) => { contents: string } | { error: string } }) => string }

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const CONTRACT = 'DatanetRegistry'
export const SOURCE_PATH = join(root, 'src', 'chain', `${CONTRACT}.sol`)
export const ARTIFACT_PATH = join(root, 'src', 'chain', 'artifacts', `${CONTRACT}.json`)

function findImport (path: string): { contents: string } | { error: string } {
  if (!path.startsWith('@openzeppelin/')) return { error: `import outside @openzeppelin: ${path}` }
  try {
    return { contents: readFileSync(require.resolve(path), 'utf8') }
  } catch (err) {
    return { error: `cannot resolve ${path}: ${(err as Error).message}` }
  }
}

/** The registry compiled from `source` (the file's text by default): what the artifact holds. */
export function compileRegistry (source = readFileSync(SOURCE_PATH, 'utf8')): { compiler: string, abi: unknown[], bytecode: string, deployedBytecode: string } {
  const solc = require('solc') as Solc
  const sourceName = `src/chain/${CONTRACT}.sol`
  const input = {
    language: 'Solidity',
    sources: { [sourceName]: { content: source } },
    settings: {
      optimizer: { enabled: true, runs: 200 },
      evmVersion: 'cancun',
      metadata: { bytecodeHash: 'none' },
      outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] } }
    }
  }
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImport })) as SolcOutput
  const errors = (output.errors ?? []).filter(e => e.severity === 'error')
  for (const w of (output.errors ?? []).filter(e => e.severity !== 'error')) process.stderr.write(w.formattedMessage + '\n')
  if (errors.length > 0) throw new Error('solc failed:\n' + errors.map(e => e.formattedMessage).join('\n'))
  const contract = output.contracts?.[sourceName]?.[CONTRACT]
  if (contract === undefined) throw new Error(`solc produced no ${CONTRACT}`)
  return {
    compiler: `solc-js ${solc.version()}`,
    abi: contract.abi,
    bytecode: '0x' + contract.evm.bytecode.object,
    deployedBytecode: '0x' + contract.evm.deployedBytecode.object
  }
}

export function buildContracts (): { changed: boolean, path: string } {
  const source = readFileSync(SOURCE_PATH, 'utf8')
  const compiled = compileRegistry(source)
  const artifact = {
    contractName: CONTRACT,
    compiler: compiled.compiler,
    sourceSha256: createHash('sha256').update(source).digest('hex'),
    abi: compiled.abi,
    bytecode: compiled.bytecode,
    deployedBytecode: compiled.deployedBytecode
  }
  const text = JSON.stringify(artifact, null, 2) + '\n'
  if (existsSync(ARTIFACT_PATH) && readFileSync(ARTIFACT_PATH, 'utf8') === text) return { changed: false, path: ARTIFACT_PATH }
  mkdirSync(dirname(ARTIFACT_PATH), { recursive: true })
  writeFileSync(ARTIFACT_PATH, text)
  return { changed: true, path: ARTIFACT_PATH }
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { changed, path } = buildContracts()
  process.stdout.write(`${changed ? 'wrote' : 'unchanged'} ${path}\n`)
}
