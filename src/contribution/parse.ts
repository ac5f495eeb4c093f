/**
 * Upload parsing: the bytes of an uploaded file (JSONL, CSV or plain text, in whatever
 * chunks the transport delivers) become records, one item per record or per bad record,
 * in input order. A bad record never stops an upload; only options or a CSV header that
 * cannot name the columns do (DatanetError, kind 'usage').
 *
 * This is the hot path for 1 GB uploads, so the work is done on bytes: lines are found
 * with indexOf on LF (a UTF-8 LF byte is never part of another character), runs of
 * complete lines are decoded in one TextDecoder call and split, and only the unfinished
 * last line is kept between chunks. A character or CRLF split across chunks is therefore
 * always whole by the time it is decoded. Records are bounded in bytes, so memory is too.
 */
import { DatanetError } from '../errors.ts'

export type UploadFormat = 'jsonl' | 'csv' | 'text'
export type TextMode = 'line' | 'paragraph'

export interface ParseOptions {
  format: UploadFormat
  /** plain text: one record per line, or per paragraph (blocks separated by blank lines) */
  textMode: TextMode
  /** a record (a JSONL line, a CSV row, a text line/paragraph) longer than this many UTF-8 bytes is an error item, and memory stays bounded: the parser never holds more than about this much of one record */
  maxRecordBytes: number
}

/** One record or one error, in input order. line: 1-based line number where the record starts in the file. */
export type ParsedItem =
  | { line: number, value: Record<string, unknown> }
  | { line: number, error: string }

export const UPLOAD_FORMATS: readonly UploadFormat[] = Object.freeze(['jsonl', 'csv', 'text'] as const)

const FORMAT_OF_EXTENSION: ReadonlyMap<string, UploadFormat> = new Map([
  ['jsonl', 'jsonl'], ['ndjson', 'jsonl'], ['json-lines', 'jsonl'],
  ['csv', 'csv'],
  ['txt', 'text'], ['text', 'text'], ['md', 'text']
])

/** The format a file name implies: .jsonl/.ndjson/.json-lines → jsonl, .csv → csv, .txt/.text/.md → text; undefined otherwise */
export function formatOfFileName (name: string): UploadFormat | undefined {
  const ext = /\.([A-Za-z-]+)$/.exec(name)?.[1]
  return ext === undefined ? undefined : FORMAT_OF_EXTENSION.get(ext.toLowerCase())
}

/**
 * The records of an upload. Invalid UTF-8 is an error item ('invalid UTF-8') for the
 * record that holds it, never a thrown error: one bad line must not cost the rest of a
 * large upload. Line endings are LF or CRLF (a lone CR is content); a leading BOM is
 * dropped. Throws DatanetError PARSE_ERROR_OPTIONS or PARSE_ERROR_CSV_HEADER (usage).
 */
export async function * parseRecords (chunks: AsyncIterable<Uint8Array>, opts: ParseOptions): AsyncGenerator<ParsedItem> {
  checkOptions(opts)
  const out: ParsedItem[] = []
  const sink = recordSink(opts, out)
  const splitter = new LineSplitter(sink, opts.maxRecordBytes, opts.format === 'csv')
  for await (const chunk of chunks) {
    splitter.push(chunk)
    // Items are yielded per chunk: the synchronous work per chunk stays one tight loop.
    for (let i = 0; i < out.length; i++) yield out[i] as ParsedItem
    out.length = 0
  }
  splitter.end()
  sink.end()
  yield * out
}

function checkOptions (opts: ParseOptions): void {
  const bad = (message: string): DatanetError => new DatanetError({ code: 'PARSE_ERROR_OPTIONS' }, message, 'usage')
  if (!UPLOAD_FORMATS.includes(opts.format)) throw bad(`unknown upload format ${String(opts.format)}`)
  if (opts.format === 'text' && opts.textMode !== 'line' && opts.textMode !== 'paragraph') throw bad(`unknown text mode ${String(opts.textMode)}`)
  if (!Number.isSafeInteger(opts.maxRecordBytes) || opts.maxRecordBytes < 1) throw bad(`maxRecordBytes must be a positive integer, got ${opts.maxRecordBytes}`)
}

// ---------------------------------------------------------------------------------------
// Lines

type LineFault = 'overlong' | 'encoding'

/** Receives every line of the file, in order, numbered from 1. */
interface LineSink {
  text: (line: number, text: string) => void
  /**
   * A line whose text is not available: longer than maxRecordBytes (its bytes were
   * dropped as they came) or not UTF-8. oddQuotes: it held an odd number of '"' bytes,
   * which is all CSV needs to know where a quoted field, and so the row, ends.
   */
  fault: (line: number, fault: LineFault, oddQuotes: boolean) => void
}

const LF = 0x0a
const CR = 0x0d
const QUOTE = 0x22
const COMMA = 0x2c
const BOM = 0xfeff
/** The unfinished line may exceed the limit by its CR and, on line 1, a BOM (neither counts) before it is known to be too long. */
const SLACK = 4

class LineSplitter {
  private readonly decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })
  private readonly sink: LineSink
  private readonly max: number
  private readonly quotes: boolean
  /** The unfinished last line, in pieces. */
  private tail: Uint8Array[] = []
  private tailBytes = 0
  /** The unfinished line is already too long: its bytes are dropped as they come. */
  private skipping = false
  private skippedQuotes = 0
  /** The number of the next line to be delivered. */
  private lineNo = 1

  constructor (sink: LineSink, maxRecordBytes: number, countQuotes: boolean) {
    this.sink = sink
    this.max = maxRecordBytes
    this.quotes = countQuotes
  }

  push (chunk: Uint8Array): void {
    let pos = 0
    if (this.skipping || this.tailBytes > 0) {
      const nl = chunk.indexOf(LF)
      this.extend(chunk, 0, nl === -1 ? chunk.length : nl)
      if (nl === -1) return
      this.finishTail()
      pos = nl + 1
    }
    const last = chunk.lastIndexOf(LF)
    if (last >= pos) {
      this.lines(chunk, pos, last)
      pos = last + 1
    }
    if (pos < chunk.length) this.extend(chunk, pos, chunk.length)
  }

  /** The input ended: a last line without a final LF is still a line. */
  end (): void {
    if (this.skipping || this.tailBytes > 0) this.finishTail()
  }

  private extend (chunk: Uint8Array, start: number, end: number): void {
    if (this.skipping) {
      if (this.quotes) this.skippedQuotes += countQuoteBytes(chunk, start, end)
      return
    }
    if (this.tailBytes + end - start > this.max + SLACK) {
      this.skipping = true
      if (this.quotes) {
        for (const piece of this.tail) this.skippedQuotes += countQuoteBytes(piece, 0, piece.length)
        this.skippedQuotes += countQuoteBytes(chunk, start, end)
      }
      this.tail = []
      this.tailBytes = 0
      return
    }
    if (end > start) {
      // A copy (Buffer#slice would be a view), so the source may reuse its buffer.
      this.tail.push(new Uint8Array(chunk.subarray(start, end)))
      this.tailBytes += end - start
    }
  }

  private finishTail (): void {
    if (this.skipping) {
      this.sink.fault(this.lineNo++, 'overlong', (this.skippedQuotes & 1) === 1)
      this.skipping = false
      this.skippedQuotes = 0
      return
    }
    const bytes = concat(this.tail, this.tailBytes)
    this.tail = []
    this.tailBytes = 0
    this.lines(bytes, 0, bytes.length)
  }

  /**
   * Delivers the complete lines in buf[start, end), separated by LF (the LF that ends
   * the last one, if any, is at end). Lines within the limit are decoded in runs, one
   * TextDecoder call per run; a line over it is never decoded.
   */
  private lines (buf: Uint8Array, start: number, end: number): void {
    let runStart = start
    let runEnd = -1
    let lineNo = this.lineNo
    let i = start
    for (;;) {
      let nl = buf.indexOf(LF, i)
      if (nl === -1 || nl > end) nl = end
      let len = nl - i
      if (len > 0 && buf[nl - 1] === CR) len--
      if (lineNo === 1 && len >= 3 && buf[i] === 0xef && buf[i + 1] === 0xbb && buf[i + 2] === 0xbf) len -= 3
      if (len > this.max) {
        if (runEnd >= 0) this.decodeRun(buf, runStart, runEnd)
        this.sink.fault(this.lineNo++, 'overlong', this.quotes && (countQuoteBytes(buf, i, nl) & 1) === 1)
        runStart = nl + 1
        runEnd = -1
      } else {
        runEnd = nl
      }
      lineNo++
      if (nl >= end) break
      i = nl + 1
    }
    if (runEnd >= 0) this.decodeRun(buf, runStart, runEnd)
  }

  /** buf[start, end) is one or more whole lines, each within the limit. */
  private decodeRun (buf: Uint8Array, start: number, end: number): void {
    let text: string
    try {
      text = this.decoder.decode(buf.subarray(start, end))
    } catch {
      // Rare: find the line(s) at fault one by one.
      this.decodeEach(buf, start, end)
      return
    }
    if (text.indexOf('\n') === -1) {
      this.emit(text)
      return
    }
    for (const line of text.split('\n')) this.emit(line)
  }

  private decodeEach (buf: Uint8Array, start: number, end: number): void {
    let i = start
    for (;;) {
      let nl = buf.indexOf(LF, i)
      if (nl === -1 || nl > end) nl = end
      let text: string | undefined
      try {
        text = this.decoder.decode(buf.subarray(i, nl))
      } catch {
        this.sink.fault(this.lineNo++, 'encoding', this.quotes && (countQuoteBytes(buf, i, nl) & 1) === 1)
      }
      if (text !== undefined) this.emit(text)
      if (nl >= end) break
      i = nl + 1
    }
  }

  private emit (text: string): void {
    if (this.lineNo === 1 && text.charCodeAt(0) === BOM) text = text.slice(1)
    if (text.charCodeAt(text.length - 1) === CR) text = text.slice(0, -1)
    this.sink.text(this.lineNo++, text)
  }
}

function countQuoteBytes (buf: Uint8Array, start: number, end: number): number {
  // A view bounds the search: indexOf must not run past `end` into the rest of a chunk.
  const view = buf.subarray(start, end)
  let n = 0
  for (let i = view.indexOf(QUOTE); i !== -1; i = view.indexOf(QUOTE, i + 1)) n++
  return n
}

function countQuoteChars (text: string): number {
  let n = 0
  for (let i = text.indexOf('"'); i !== -1; i = text.indexOf('"', i + 1)) n++
  return n
}

function concat (pieces: Uint8Array[], total: number): Uint8Array {
  if (pieces.length === 1) return pieces[0] as Uint8Array
  const out = new Uint8Array(total)
  let at = 0
  for (const piece of pieces) {
    out.set(piece, at)
    at += piece.length
  }
  return out
}

// ---------------------------------------------------------------------------------------
// Records

interface RecordSink extends LineSink {
  end: () => void
}

const NON_BLANK = /\S/
const isBlank = (text: string): boolean => text.length === 0 || !NON_BLANK.test(text)

function faultMessage (fault: LineFault, max: number): string {
  return fault === 'overlong' ? `record is longer than ${max} bytes` : 'invalid UTF-8'
}

function recordSink (opts: ParseOptions, out: ParsedItem[]): RecordSink {
  switch (opts.format) {
    case 'jsonl': return jsonlSink(out, opts.maxRecordBytes)
    case 'csv': return csvSink(out, opts.maxRecordBytes)
    case 'text': return opts.textMode === 'line' ? textLineSink(out, opts.maxRecordBytes) : paragraphSink(out, opts.maxRecordBytes)
  }
}

function jsonlSink (out: ParsedItem[], max: number): RecordSink {
  return {
    text (line, text) {
      if (isBlank(text)) return
      let value: unknown
      try {
        value = JSON.parse(text)
      } catch (err) {
        out.push({ line, error: `invalid JSON: ${(err as Error).message}` })
        return
      }
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        out.push({ line, error: 'expected a JSON object' })
        return
      }
      out.push({ line, value: value as Record<string, unknown> })
    },
    fault (line, fault) { out.push({ line, error: faultMessage(fault, max) }) },
    end () {}
  }
}

function textLineSink (out: ParsedItem[], max: number): RecordSink {
  return {
    text (line, text) { if (!isBlank(text)) out.push({ line, value: { text } }) },
    fault (line, fault) { out.push({ line, error: faultMessage(fault, max) }) },
    end () {}
  }
}

/** Consecutive non-blank lines, joined with '\n'; one or more blank lines end a paragraph. */
function paragraphSink (out: ParsedItem[], max: number): RecordSink {
  let start = 0 // first line of the open paragraph; 0: none open
  let parts: string[] = []
  let bytes = 0
  let failed: string | undefined
  const close = (): void => {
    if (start === 0) return
    out.push(failed === undefined ? { line: start, value: { text: parts.join('\n') } } : { line: start, error: failed })
    start = 0
    parts = []
    bytes = 0
    failed = undefined
  }
  return {
    text (line, text) {
      if (isBlank(text)) {
        close()
        return
      }
      if (start === 0) start = line
      if (failed !== undefined) return
      bytes += (parts.length > 0 ? 1 : 0) + Buffer.byteLength(text, 'utf8')
      if (bytes > max) {
        // Keep nothing more of it, but read on to its end: the next paragraph is a record again.
        failed = faultMessage('overlong', max)
        parts = []
        return
      }
      parts.push(text)
    },
    fault (line, fault) {
      if (start === 0) start = line
      if (failed === undefined) {
        failed = faultMessage(fault, max)
        parts = []
      }
    },
    end: close
  }
}

/**
 * RFC 4180 CSV. A row ends at the first line end where the row holds an even number of
 * '"' (inside a quoted field they come in pairs, so an odd count means a field is still
 * open), which gives each row's first line and bounds it in bytes before it is split.
 * A line end inside a quoted field becomes '\n'. csv-parse is not used here: its record
 * limit counts characters, its errors end the stream, it does not report where a row
 * starts, and it parses about ten times slower than this.
 */
function csvSink (out: ParsedItem[], max: number): RecordSink {
  let header: string[] | undefined
  let protoColumn = false
  let start = 0 // first line of the open row; 0: none open
  let parts: string[] = []
  let bytes = -1 // of the open row once it spans lines; one line is bounded by the splitter
  let odd = false
  let failed: string | undefined

  const finish = (): void => {
    const line = start
    const text = parts.length === 1 ? parts[0] as string : parts.join('\n')
    const error = failed
    start = 0
    parts = []
    bytes = -1
    odd = false
    failed = undefined
    if (header === undefined) {
      header = csvHeader(line, text, error)
      protoColumn = header.includes('__proto__')
      return
    }
    if (error !== undefined) {
      out.push({ line, error })
      return
    }
    const fields = splitCsvRow(text)
    if (typeof fields === 'string') {
      out.push({ line, error: `invalid CSV: ${fields}` })
      return
    }
    if (fields.length !== header.length) {
      out.push({ line, error: `expected ${header.length} fields, got ${fields.length}` })
      return
    }
    if (protoColumn) {
      // A plain assignment to '__proto__' would set the prototype instead of a field.
      out.push({ line, value: Object.fromEntries(header.map((name, i) => [name, fields[i]])) })
      return
    }
    const value: Record<string, string> = {}
    for (let i = 0; i < fields.length; i++) value[header[i] as string] = fields[i] as string
    out.push({ line, value })
  }

  return {
    text (line, text) {
      if (start === 0) {
        if (text.length === 0) return
        start = line
      }
      if ((countQuoteChars(text) & 1) === 1) odd = !odd
      if (failed === undefined) {
        if (parts.length > 0) {
          if (bytes < 0) bytes = Buffer.byteLength(parts[0] as string, 'utf8')
          bytes += 1 + Buffer.byteLength(text, 'utf8')
        }
        if (bytes > max) {
          failed = faultMessage('overlong', max)
          parts = []
        } else {
          parts.push(text)
        }
      }
      if (!odd) finish()
    },
    fault (line, fault, oddQuotes) {
      if (start === 0) start = line
      if (oddQuotes) odd = !odd
      if (failed === undefined) {
        failed = faultMessage(fault, max)
        parts = []
      }
      if (!odd) finish()
    },
    end () {
      if (start === 0) return
      failed ??= 'invalid CSV: unterminated quoted field'
      finish()
    }
  }
}

/** Column names from the first row; throws unless it could be read and they are non-empty and unique. */
function csvHeader (line: number, row: string, error: string | undefined): string[] {
  const bad = (why: string): DatanetError => new DatanetError({ code: 'PARSE_ERROR_CSV_HEADER' }, `CSV header (line ${line}): ${why}`, 'usage')
  if (error !== undefined) throw bad(error)
  const names = splitCsvRow(row)
  if (typeof names === 'string') throw bad(names)
  const seen = new Set<string>()
  for (const [i, name] of names.entries()) {
    if (isBlank(name)) throw bad(`column ${i + 1} has no name`)
    if (seen.has(name)) throw bad(`column name "${name}" appears twice`)
    seen.add(name)
  }
  return names
}

/** The fields of one CSV row, or why it is malformed. */
function splitCsvRow (row: string): string[] | string {
  if (row.indexOf('"') === -1) return row.split(',')
  const fields: string[] = []
  const n = row.length
  let i = 0
  for (;;) {
    if (row.charCodeAt(i) === QUOTE) {
      let value = ''
      let from = i + 1
      for (;;) {
        const q = row.indexOf('"', from)
        if (q === -1) return 'unterminated quoted field'
        value += row.slice(from, q)
        if (row.charCodeAt(q + 1) !== QUOTE) {
          i = q + 1
          break
        }
        value += '"'
        from = q + 2
      }
      fields.push(value)
      if (i === n) return fields
      if (row.charCodeAt(i) !== COMMA) return `unexpected character after the closing quote of field ${fields.length}`
      i++
    } else {
      const comma = row.indexOf(',', i)
      const end = comma === -1 ? n : comma
      const field = row.slice(i, end)
      if (field.indexOf('"') !== -1) return `quote inside unquoted field ${fields.length + 1}`
      fields.push(field)
      if (comma === -1) return fields
      i = comma + 1
    }
  }
}
