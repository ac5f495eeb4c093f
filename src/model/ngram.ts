import { decodeCbor, encodeCbor } from '../codec/cbor.ts'
import { DatanetError } from '../errors.ts'
import { SplitMix32 } from './prng.ts'

/**
 * The reference model: a word-level n-gram language model (default n = 3, backing off to
 * shorter contexts down to unigrams), trained from a dataset version's record texts.
 * Everything about it is a function of its inputs only, byte for byte on every machine,
 * so any validator can retrain the model a version names and get the same bytes, and
 * any node can rerun an inference and get the same text. Pure: no I/O, no clock, no
 * ambient randomness.
 *
 * Tokens. A text is split on runs of whitespace (the fixed set WHITESPACE below, not
 * the engine's `\s`, whose Unicode tables could differ between engines); punctuation
 * stays attached to its word ("end." is one token), case is kept, nothing is normalised
 * except that lone UTF-16 surrogates become U+FFFD (so every token survives UTF-8).
 * Output joins words with one space, so a generated run of words is the record's text
 * up to whitespace: the verbatim reuse attribution looks for.
 *
 * Counts. Each record is one sequence, padded with n−1 boundary tokens in front and one
 * at the end. For every position and every context length k = 0 … n−1 the count of
 * (previous k tokens → token) goes up by one; unigrams (k = 0) never count the end
 * boundary. Counts do not depend on record order: the model is a function of the
 * multiset of records. Word ids follow the words' order (JS string order, i.e. UTF-16
 * code units), id 0 is the boundary, and the word → id Map is filled in id order. Each
 * context length has one table of flat typed arrays (NgramTable): contexts sorted by
 * their ids (looked up by binary search), continuations in walk order. Training is
 * linear in the tokens (radix sorts, no comparison sort of contexts).
 *
 * Generation. The context is the last n−1 tokens of boundary-padded prompt + output (an
 * empty prompt therefore starts like a record). The longest context seen in training
 * decides (backoff: n−1, …, 1, 0 words; a context with a word the model never saw is
 * unseen). The next word is drawn from that context's integer counts:
 * - `sample` (default): r uniform in [0, total) from a seeded splitmix32, then walk the
 *   continuations by count descending, then word order, until r falls in one; no floating
 *   point anywhere. Trained on distinct records most trigram contexts have one
 *   continuation, so output follows records verbatim and switches between records only
 *   where they share two words.
 * - `greedy`: the most frequent continuation; the seed only breaks ties among equally
 *   frequent ones. Reproduces the most common phrasing; may cycle on frequent loops.
 * Drawing the end boundary ends the text (the record it followed ended there); so does
 * `maxWords`. A fully unseen context falls back to unigrams, so any prompt generates.
 * The returned text is the continuation only, without the prompt.
 */

export const NgramErrorCode = {
  OPTIONS: 'MODEL_ERROR_OPTIONS',
  MALFORMED: 'MODEL_ERROR_MALFORMED'
} as const

export type NgramErrorCodeValue = typeof NgramErrorCode[keyof typeof NgramErrorCode]

export class NgramError extends DatanetError<{ code: NgramErrorCodeValue }> {
  constructor (code: NgramErrorCodeValue, message: string) {
    super({ code }, message, 'usage')
    this.name = 'NgramError'
  }
}

export interface NgramOptions {
  /** The order: contexts of up to n−1 words. 1 … MAX_NGRAM_ORDER. */
  n: number
}

export const defaultNgramOptions: Readonly<NgramOptions> = Object.freeze({ n: 3 })

export const MAX_NGRAM_ORDER = 8

export type SamplingStrategy = 'sample' | 'greedy'

export interface GenerateOptions {
  /** At most this many words (a non-negative safe integer). */
  maxWords: number
  /** Any safe integer. */
  seed: number
  /** Default 'sample'. */
  strategy?: SamplingStrategy
}

/**
 * The counts for one context length k, in flat typed arrays (a trained model has about
 * as many contexts as tokens, so no object per context). Context c has the ids
 * `contextIds[c·k … c·k+k−1]` and the continuations `ids/counts[offsets[c] … offsets[c+1]−1]`
 * in walk order (count descending, then id ascending; id 0 = end of record). Contexts are
 * in ascending lexicographic id order, so `findContext` is a binary search.
 */
export interface NgramTable {
  readonly k: number
  readonly size: number
  readonly contextIds: Uint32Array
  readonly offsets: Uint32Array
  readonly ids: Uint32Array
  /** Safe integers. */
  readonly counts: Float64Array
  /** Per context, the sum of its counts. */
  readonly totals: Float64Array
}

export interface NgramModel {
  readonly n: number
  /** vocab[0] is '' (the boundary token); words from 1 in ascending string order. */
  readonly vocab: readonly string[]
  /** word → id. */
  readonly index: ReadonlyMap<string, number>
  /** tables[k]: contexts of k tokens, k = 0 … n−1. */
  readonly tables: readonly NgramTable[]
}

export interface ModelStats {
  n: number
  /** Distinct words (the boundary not counted). */
  vocabularySize: number
  /** Word tokens trained on. */
  tokens: number
  /** Non-empty records trained on (null for n = 1, which does not keep record boundaries). */
  records: number | null
  /** Distinct contexts per context length k = 0 … n−1. */
  contexts: number[]
  /** Distinct (context, next token) pairs per context length. */
  ngrams: number[]
}

const BOUNDARY = 0

/** The whitespace a text splits on: ECMAScript's WhiteSpace and LineTerminator, spelled out. */
export const WHITESPACE = /[\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]+/
const HAS_WHITESPACE = new RegExp(WHITESPACE.source)

/** The model's tokens of a text: whitespace-separated words, punctuation attached. */
export function tokenize (text: string): string[] {
  return text.toWellFormed().split(WHITESPACE).filter(w => w.length > 0)
}

function options (message: string): NgramError {
  return new NgramError(NgramErrorCode.OPTIONS, message)
}

function malformed (message: string): NgramError {
  return new NgramError(NgramErrorCode.MALFORMED, `malformed model: ${message}`)
}

function checkOrder (n: unknown): number {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > MAX_NGRAM_ORDER) {
    throw options(`n must be an integer from 1 to ${MAX_NGRAM_ORDER}, got ${String(n)}`)
  }
  return n
}

const compareStrings = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)

function compareIds (a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < a.length && i < b.length; i++) {
    const d = (a[i] as number) - (b[i] as number)
    if (d !== 0) return d
  }
  return a.length - b.length
}

/** Collects a table's contexts in canonical order, then freezes them into typed arrays. */
class TableBuilder {
  readonly k: number
  private readonly contextIds: number[] = []
  private readonly offsets: number[] = [0]
  private readonly ids: number[] = []
  private readonly counts: number[] = []
  private readonly totals: number[] = []

  constructor (k: number) {
    this.k = k
  }

  /** Adds the next context; `ids`/`counts` already in walk order, `total` their sum. */
  add (ctx: readonly number[], ids: readonly number[], counts: readonly number[], total: number): void {
    for (const id of ctx) this.contextIds.push(id)
    for (let j = 0; j < ids.length; j++) {
      this.ids.push(ids[j] as number)
      this.counts.push(counts[j] as number)
    }
    this.offsets.push(this.ids.length)
    this.totals.push(total)
  }

  build (): NgramTable {
    return {
      k: this.k,
      size: this.totals.length,
      contextIds: Uint32Array.from(this.contextIds),
      offsets: Uint32Array.from(this.offsets),
      ids: Uint32Array.from(this.ids),
      counts: Float64Array.from(this.counts),
      totals: Float64Array.from(this.totals)
    }
  }
}

/** A stable counting sort of `rows` by `key[row]`, keys below `range`: one radix pass. */
function countingSort (rows: Uint32Array, key: Uint32Array, range: number): Uint32Array {
  const starts = new Uint32Array(range + 1)
  for (const r of rows) {
    const v = (key[r] as number) + 1
    starts[v] = (starts[v] as number) + 1
  }
  for (let v = 1; v <= range; v++) starts[v] = (starts[v] as number) + (starts[v - 1] as number)
  const out = new Uint32Array(rows.length)
  for (const r of rows) {
    const v = key[r] as number
    const at = starts[v] as number
    out[at] = r
    starts[v] = at + 1
  }
  return out
}

function sameContext (cols: readonly Uint32Array[], k: number, a: number, b: number): boolean {
  for (let c = 0; c < k; c++) if ((cols[c] as Uint32Array)[a] !== (cols[c] as Uint32Array)[b]) return false
  return true
}

/**
 * Trains the model on record texts (in the dataset version's canonical order; the
 * counts do not depend on it). Records with no words add nothing. Linear in the number
 * of tokens (radix sorts, no comparison sort). Throws MODEL_ERROR_OPTIONS for a bad `n`
 * or a text that is not a string.
 */
export function trainNgram (texts: Iterable<string>, opts: Partial<NgramOptions> = {}): NgramModel {
  const n = checkOrder(opts.n ?? defaultNgramOptions.n)

  // 1. Tokenise once, with provisional ids in first-seen order.
  const provisional = new Map<string, number>()
  const words: string[] = ['']
  const sequences: Uint32Array[] = []
  let i = 0
  for (const text of texts) {
    if (typeof text !== 'string') throw options(`record ${i} is not a string`)
    i++
    const tokens = tokenize(text)
    if (tokens.length === 0) continue
    const seq = new Uint32Array(tokens.length)
    tokens.forEach((w, j) => {
      let id = provisional.get(w)
      if (id === undefined) {
        id = words.length
        provisional.set(w, id)
        words.push(w)
      }
      seq[j] = id
    })
    sequences.push(seq)
  }

  // 2. Canonical ids: words in ascending string order from 1.
  const sortedWords = words.slice(1).sort(compareStrings)
  const vocab = ['', ...sortedWords]
  const index = new Map<string, number>()
  sortedWords.forEach((w, j) => index.set(w, j + 1))
  const remap = new Uint32Array(words.length)
  words.forEach((w, pid) => { remap[pid] = pid === 0 ? BOUNDARY : index.get(w) as number })

  // 3. Every position (each token and each record's end) as a window of n ids:
  //    window[n−1] is the token, window[n−1−k … n−2] its context of length k, the
  //    record padded with boundaries. Column j of all windows is columns[j].
  let positions = 0
  for (const seq of sequences) positions += seq.length + 1
  const columns = Array.from({ length: n }, () => new Uint32Array(positions))
  let p = 0
  for (const seq of sequences) {
    for (let pos = 0; pos <= seq.length; pos++, p++) {
      for (let j = 0; j < n; j++) {
        const at = pos - (n - 1) + j
        ;(columns[j] as Uint32Array)[p] = at < 0 || at >= seq.length ? BOUNDARY : remap[seq[at] as number] as number
      }
    }
  }

  // 4. Per context length, radix-sort the windows by (context, token) and count runs:
  //    contexts come out in canonical order, each one's tokens ascending.
  const tables = Array.from({ length: n }, (_, k) => {
    const cols = columns.slice(n - 1 - k)
    const next = cols[k] as Uint32Array
    let rows: Uint32Array = new Uint32Array(positions)
    let m = 0
    for (let r = 0; r < positions; r++) if (k > 0 || next[r] !== BOUNDARY) rows[m++] = r
    rows = rows.subarray(0, m)
    for (let c = k; c >= 0; c--) rows = countingSort(rows, cols[c] as Uint32Array, vocab.length)
    const table = new TableBuilder(k)
    const ids: number[] = []
    const counts: number[] = []
    let at = 0
    while (at < rows.length) {
      const first = rows[at] as number
      ids.length = 0
      counts.length = 0
      let total = 0
      while (at < rows.length && sameContext(cols, k, first, rows[at] as number)) {
        const id = next[rows[at] as number] as number
        let count = 0
        while (at < rows.length && next[rows[at] as number] === id && sameContext(cols, k, first, rows[at] as number)) {
          count++
          at++
        }
        ids.push(id)
        counts.push(count)
        total += count
      }
      const ctx: number[] = []
      for (let c = 0; c < k; c++) ctx.push((cols[c] as Uint32Array)[first] as number)
      if (ids.length === 1) {
        table.add(ctx, ids, counts, total)
      } else {
        // walk order: count descending; the stable sort keeps ids ascending among equals
        const order = ids.map((_, j) => j).sort((x, y) => (counts[y] as number) - (counts[x] as number))
        table.add(ctx, order.map(j => ids[j] as number), order.map(j => counts[j] as number), total)
      }
    }
    return table.build()
  })
  return { n, vocab, index, tables }
}

/** The number of context `ctx` (k = ctx.length ids) in `table`, or −1: a binary search. */
export function findContext (table: NgramTable, ctx: readonly number[]): number {
  const k = table.k
  if (ctx.length !== k) throw new RangeError(`expected a context of ${k} ids, got ${ctx.length}`)
  let lo = 0
  let hi = table.size
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    let d = 0
    for (let j = 0; j < k && d === 0; j++) d = (table.contextIds[mid * k + j] as number) - (ctx[j] as number)
    if (d === 0) return mid
    if (d < 0) lo = mid + 1
    else hi = mid
  }
  return -1
}

function choose (table: NgramTable, c: number, rng: SplitMix32, strategy: SamplingStrategy): number {
  const from = table.offsets[c] as number
  const to = table.offsets[c + 1] as number
  if (strategy === 'greedy') {
    const top = table.counts[from] as number
    let tied = 1
    while (from + tied < to && table.counts[from + tied] === top) tied++
    return table.ids[from + (tied === 1 ? 0 : rng.below(tied))] as number
  }
  let r = rng.below(table.totals[c] as number)
  for (let j = from; j < to; j++) {
    const count = table.counts[j] as number
    if (r < count) return table.ids[j] as number
    r -= count
  }
  /* c8 ignore next */
  throw new Error('unreachable: r < total')
}

/**
 * Continues `prompt` by up to `maxWords` words (see the module comment for the rule).
 * Returns the continuation only, words joined by single spaces ('' when nothing follows).
 * Throws MODEL_ERROR_OPTIONS for bad options.
 */
export function generate (model: NgramModel, prompt: string, opts: GenerateOptions): string {
  const { maxWords, seed } = opts
  const strategy = opts.strategy ?? 'sample'
  if (typeof prompt !== 'string') throw options('prompt must be a string')
  if (!Number.isSafeInteger(maxWords) || maxWords < 0) throw options(`maxWords must be a non-negative integer, got ${String(maxWords)}`)
  if (!Number.isSafeInteger(seed)) throw options(`seed must be a safe integer, got ${String(seed)}`)
  if (strategy !== 'sample' && strategy !== 'greedy') throw options(`strategy must be 'sample' or 'greedy', got ${String(strategy)}`)
  const { n, tables } = model
  // -1: a word the model never saw; no context containing it was seen.
  const history: number[] = []
  for (let j = 0; j < n - 1; j++) history.push(BOUNDARY)
  for (const w of tokenize(prompt)) history.push(model.index.get(w) ?? -1)
  const rng = new SplitMix32(seed)
  const out: string[] = []
  while (out.length < maxWords) {
    let table: NgramTable | undefined
    let c: number | undefined
    for (let k = n - 1; k >= 0 && c === undefined; k--) {
      const ctx = history.slice(history.length - k)
      if (k > 0 && ctx.includes(-1)) continue
      table = tables[k]
      const found = table === undefined ? -1 : findContext(table, ctx)
      if (found >= 0) c = found
    }
    if (table === undefined || c === undefined) break // an empty model
    const id = choose(table, c, rng, strategy)
    if (id === BOUNDARY) break
    out.push(model.vocab[id] as string)
    history.push(id)
  }
  return out.join(' ')
}

export function modelStats (model: NgramModel): ModelStats {
  const unigrams = model.tables[0]
  const bigrams = model.n >= 2 ? model.tables[1] : undefined
  const starts = bigrams === undefined ? -1 : findContext(bigrams, [BOUNDARY])
  return {
    n: model.n,
    vocabularySize: model.vocab.length - 1,
    tokens: unigrams !== undefined && unigrams.size > 0 ? unigrams.totals[0] as number : 0,
    records: bigrams === undefined ? null : starts < 0 ? 0 : bigrams.totals[starts] as number,
    contexts: model.tables.map(t => t.size),
    ngrams: model.tables.map(t => t.ids.length)
  }
}

// ---------------------------------------------------------------------------------------
// Serialization

const FORMAT = 'datanet/ngram'
const FORMAT_VERSION = 1

/**
 * dag-cbor `{format: 'datanet/ngram', v: 1, n, vocab, tables}`: `vocab` is the words
 * (ids 1…, the boundary implicit as 0); `tables[k]` is one flat integer array with, per
 * context in canonical order, its k ids, the number m of continuations, then m pairs
 * (id, count) in walk order. One model has one encoding.
 */
export function encodeModel (model: NgramModel): Uint8Array {
  const tables = model.tables.map((t) => {
    const flat: number[] = []
    for (let c = 0; c < t.size; c++) {
      for (let j = 0; j < t.k; j++) flat.push(t.contextIds[c * t.k + j] as number)
      const from = t.offsets[c] as number
      const to = t.offsets[c + 1] as number
      flat.push(to - from)
      for (let j = from; j < to; j++) flat.push(t.ids[j] as number, t.counts[j] as number)
    }
    return flat
  })
  return encodeCbor({ format: FORMAT, v: FORMAT_VERSION, n: model.n, vocab: model.vocab.slice(1), tables })
}

const isCount = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0

/**
 * Decodes `encodeModel` output, strictly: the exact shape, canonical order everywhere
 * (words, contexts, continuations), ids in range, positive counts, every word in the
 * unigram table. Throws MODEL_ERROR_MALFORMED.
 */
export function decodeModel (bytes: Uint8Array): NgramModel {
  let value: unknown
  try {
    value = decodeCbor(bytes)
  } catch (err) {
    throw malformed(`not dag-cbor (${err instanceof Error ? err.message : String(err)})`)
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Uint8Array) throw malformed('not a map')
  const keys = Object.keys(value).sort().join(',')
  if (keys !== 'format,n,tables,v,vocab') throw malformed(`expected keys {format, n, tables, v, vocab}, got {${keys}}`)
  const obj = value as Record<string, unknown>
  if (obj.format !== FORMAT) throw malformed('not a datanet n-gram model')
  if (obj.v !== FORMAT_VERSION) throw malformed(`unsupported version ${String(obj.v)}`)
  const n = obj.n
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > MAX_NGRAM_ORDER) throw malformed(`n must be 1 … ${MAX_NGRAM_ORDER}`)

  if (!Array.isArray(obj.vocab)) throw malformed('vocab is not an array')
  const vocab: string[] = ['']
  const index = new Map<string, number>()
  obj.vocab.forEach((w: unknown, j) => {
    if (typeof w !== 'string' || w.length === 0 || HAS_WHITESPACE.test(w) || w !== w.toWellFormed()) throw malformed(`vocab[${j}] is not a word`)
    if (j > 0 && !(w > (vocab[j] as string))) throw malformed(`vocab[${j}] is out of order`)
    vocab.push(w)
    index.set(w, j + 1)
  })
  const V = vocab.length - 1

  if (!Array.isArray(obj.tables) || obj.tables.length !== n) throw malformed(`expected ${n} tables`)
  const tables = (obj.tables as unknown[]).map((flat, k) => {
    if (!Array.isArray(flat)) throw malformed(`table ${k} is not an array`)
    const table = new TableBuilder(k)
    let at = 0
    let previous: number[] | null = null
    const take = (what: string): number => {
      if (at >= flat.length) throw malformed(`table ${k} ends inside a context`)
      const x: unknown = flat[at++]
      if (!isCount(x)) throw malformed(`table ${k}: ${what} is not a non-negative integer`)
      return x
    }
    while (at < flat.length) {
      const ctx: number[] = []
      for (let j = 0; j < k; j++) {
        const id = take('a context id')
        if (id > V) throw malformed(`table ${k}: context id ${id} out of range`)
        ctx.push(id)
      }
      if (previous !== null && compareIds(previous, ctx) >= 0) throw malformed(`table ${k}: contexts out of order or repeated`)
      previous = ctx
      const m = take('a continuation count')
      if (m < 1 || m > V + 1) throw malformed(`table ${k}: ${m} continuations`)
      const ids: number[] = []
      const counts: number[] = []
      const seen = new Set<number>()
      let total = 0
      for (let j = 0; j < m; j++) {
        const id = take('a token id')
        const count = take('a count')
        if (id > V || (k === 0 && id === BOUNDARY)) throw malformed(`table ${k}: token id ${id} out of range`)
        if (count < 1) throw malformed(`table ${k}: zero count`)
        if (seen.has(id)) throw malformed(`table ${k}: token ${id} repeated`)
        if (j > 0 && !(count < (counts[j - 1] as number) || (count === counts[j - 1] && id > (ids[j - 1] as number)))) {
          throw malformed(`table ${k}: continuations out of order`)
        }
        seen.add(id)
        ids.push(id)
        counts.push(count)
        total += count
        if (!Number.isSafeInteger(total)) throw malformed(`table ${k}: counts overflow`)
      }
      table.add(ctx, ids, counts, total)
    }
    return table.build()
  })
  const unigrams = tables[0] as NgramTable
  if ((unigrams.size === 0 ? 0 : unigrams.ids.length) !== V) throw malformed('vocab and unigram table disagree')
  return { n, vocab, index, tables }
}
