import { existsSync, readFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { dirname, isAbsolute, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { DatanetError } from '../../src/errors.ts'
import { nodeConfigSchema, type NodeConfig } from './schema.ts'
import type { z } from 'zod'

export const CONFIG_ERROR = { code: 'CONFIG_ERROR_INVALID' } as const

export const configDir = resolve(dirname(fileURLToPath(import.meta.url)), '../../config')

type Json = null | boolean | number | string | Json[] | { [key: string]: Json }
type JsonObject = { [key: string]: Json }

/** Environment variables that are not config keys but are read by the node. */
export const NON_CONFIG_ENV = new Set(['DATANET_PASSWORD', 'DATANET_API', 'DATANET_TOKEN_FILE', 'DATANET_ROOT', 'DATANET_BUNDLE', 'DATANET_DEBUG', 'DATANET_FAULT', 'DATANET_FAULT_FLOOD', 'DATANET_FAULT_FLOOD_BYTES'])

export interface ConfigSources {
  /** A config file path, or the name of a preset in config/ (e.g. "devnet"). */
  file?: string
  env?: Record<string, string | undefined>
  /** Flag values already mapped to config paths ("p2p.port" → 7400). */
  flags?: Record<string, unknown>
}

function isObject (v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function readJson (path: string, label: string): Json {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw new DatanetError(CONFIG_ERROR, `${label}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, 'usage')
  }
  try {
    return JSON.parse(text) as Json
  } catch (err) {
    throw new DatanetError(CONFIG_ERROR, `${label}: ${path} is not valid JSON: ${(err as Error).message}`, 'usage')
  }
}

/** The path of a config file: an existing file, or a preset name resolved in config/. */
export function resolveConfigFile (file: string): string {
  if (existsSync(file)) return resolve(file)
  const preset = join(configDir, `${file}.json`)
  if (!file.includes('/') && existsSync(preset)) return preset
  throw new DatanetError(CONFIG_ERROR, `config file ${file} does not exist (nor is it a preset in ${configDir})`, 'usage')
}

/** Deep-merges `layer` into `into`, recording which source set each path. Arrays replace. */
function mergeLayer (into: JsonObject, layer: JsonObject, source: string, origin: Map<string, string>, prefix = ''): void {
  for (const [key, value] of Object.entries(layer)) {
    const path = prefix === '' ? key : `${prefix}.${key}`
    const current = into[key]
    if (isObject(value) && isObject(current)) {
      mergeLayer(current, value, source, origin, path)
    } else {
      into[key] = structuredClone(value)
    }
    origin.set(path, source)
  }
}

const camelToSnake = (s: string): string => s.replace(/[A-Z]/g, c => `_${c}`).toUpperCase()

/** Every leaf of the defaults, as [path, env var name, default value]. */
function leaves (obj: JsonObject, prefix = ''): Array<[string, string, Json]> {
  const out: Array<[string, string, Json]> = []
  for (const [key, value] of Object.entries(obj)) {
    const path = prefix === '' ? key : `${prefix}.${key}`
    if (isObject(value)) out.push(...leaves(value, path))
    else out.push([path, `DATANET_${path.split('.').map(camelToSnake).join('_')}`, value])
  }
  return out
}

/** Turns an env string into the type of the key's default value. */
function parseEnvValue (name: string, raw: string, like: Json): Json {
  if (Array.isArray(like)) return raw.trim() === '' ? [] : raw.split(',').map(s => s.trim())
  if (typeof like === 'number') {
    const n = Number(raw)
    if (raw.trim() === '' || !Number.isFinite(n)) throw new DatanetError(CONFIG_ERROR, `environment ${name}: expected a number, got "${raw}"`, 'usage')
    return n
  }
  if (typeof like === 'boolean') {
    if (raw !== 'true' && raw !== 'false') throw new DatanetError(CONFIG_ERROR, `environment ${name}: expected true or false, got "${raw}"`, 'usage')
    return raw === 'true'
  }
  if (like === null && (raw === '' || raw === 'null')) return null
  return raw
}

function setPath (obj: JsonObject, path: string, value: Json): void {
  const keys = path.split('.')
  let cur = obj
  for (const key of keys.slice(0, -1)) {
    const next = cur[key]
    if (!isObject(next)) cur[key] = {}
    cur = cur[key] as JsonObject
  }
  cur[keys[keys.length - 1] as string] = value
}

function describeIssue (issue: z.core.$ZodIssue, origin: Map<string, string>): string {
  const path = issue.path.map(String).join('.')
  if (issue.code === 'unrecognized_keys') {
    const keys = issue.keys.map(k => (path === '' ? k : `${path}.${k}`))
    const source = origin.get(keys[0] as string) ?? 'config'
    return `${source}: unknown key ${keys.map(k => `"${k}"`).join(', ')}`
  }
  const source = origin.get(path) ?? 'config'
  return `${source}: ${path === '' ? '(root)' : path}: ${issue.message}`
}

/**
 * Builds the node's configuration: defaults < config file < DATANET_* env < flags,
 * validated once and frozen. Any error names its source, the key's path and the
 * expected form.
 */
export function loadConfig (sources: ConfigSources = {}): Readonly<NodeConfig> {
  const origin = new Map<string, string>()
  const defaults = readJson(join(configDir, 'default.json'), 'defaults')
  if (!isObject(defaults)) throw new DatanetError(CONFIG_ERROR, 'config/default.json must hold an object', 'usage')
  const merged: JsonObject = {}
  mergeLayer(merged, defaults, 'config/default.json', origin)

  if (sources.file !== undefined) {
    const path = resolveConfigFile(sources.file)
    const label = `config file ${path}`
    const layer = readJson(path, label)
    if (!isObject(layer)) throw new DatanetError(CONFIG_ERROR, `${label}: expected a JSON object`, 'usage')
    mergeLayer(merged, layer, label, origin)
    // A relative dataDir in a file is relative to that file, not to wherever the node was started.
    if (typeof layer.dataDir === 'string' && !layer.dataDir.startsWith('~') && !isAbsolute(layer.dataDir)) {
      merged.dataDir = resolve(dirname(path), layer.dataDir)
    }
  }

  const env = sources.env ?? {}
  const known = new Map(leaves(defaults).map(([path, name, like]) => [name, { path, like }]))
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith('DATANET_') || raw === undefined || NON_CONFIG_ENV.has(name)) continue
    const key = known.get(name)
    if (key === undefined) {
      throw new DatanetError(CONFIG_ERROR, `environment ${name}: not a configuration variable (known: ${[...known.keys()].join(', ')})`, 'usage')
    }
    const layer: JsonObject = {}
    setPath(layer, key.path, parseEnvValue(name, raw, key.like))
    mergeLayer(merged, layer, `environment ${name}`, origin)
  }

  for (const [path, value] of Object.entries(sources.flags ?? {})) {
    if (value === undefined) continue
    const layer: JsonObject = {}
    setPath(layer, path, value as Json)
    mergeLayer(merged, layer, `flag for ${path}`, origin)
  }

  const result = nodeConfigSchema.safeParse(merged)
  if (!result.success) {
    const lines = result.error.issues.map(issue => describeIssue(issue, origin))
    throw new DatanetError(CONFIG_ERROR, `invalid configuration: ${lines.join('; ')}`, 'usage')
  }
  const config = result.data
  config.dataDir = expandHome(config.dataDir)
  return deepFreeze(config)
}

export function expandHome (path: string): string {
  if (path === '~') return homedir()
  if (path.startsWith('~/')) return join(homedir(), path.slice(2))
  return resolve(path)
}

function deepFreeze<T> (value: T): Readonly<T> {
  if (typeof value === 'object' && value !== null) {
    for (const inner of Object.values(value)) deepFreeze(inner)
    Object.freeze(value)
  }
  return value
}
