/**
 * Typed errors: every failure the node can report carries a stable `code` (tests and
 * metrics use it, never the message) and a `kind` that decides the CLI exit code and
 * the HTTP status.
 */

/** usage: bad input or configuration (exit 2, HTTP 400); failure: the operation failed (exit 1, HTTP 500). */
export type ErrorKind = 'usage' | 'failure' | 'not_found' | 'unauthorized' | 'conflict' | 'unavailable'

export interface ErrorType {
  code: string
}

export class DatanetError<T extends ErrorType = ErrorType> extends Error {
  readonly type: T
  readonly kind: ErrorKind

  constructor (type: T, message: string, kind: ErrorKind = 'failure', options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'DatanetError'
    this.type = type
    this.kind = kind
  }

  get code (): string {
    return this.type.code
  }
}

export function isDatanetError (err: unknown): err is DatanetError {
  return err instanceof DatanetError
}

/** The exit code a CLI process ends with for this error (DESIGN §6: 1 operation failed, 2 bad usage or input). */
export function exitCodeOf (err: unknown): 1 | 2 {
  return isDatanetError(err) && err.kind === 'usage' ? 2 : 1
}

/** The HTTP status that fits an error. */
export function httpStatusOf (err: unknown): number {
  if (!isDatanetError(err)) return 500
  switch (err.kind) {
    case 'usage': return 400
    case 'unauthorized': return 401
    case 'not_found': return 404
    case 'conflict': return 409
    case 'unavailable': return 503
    default: return 500
  }
}

/** One line for a human: the message, plus the cause's message when it adds something. */
export function describeError (err: unknown): string {
  if (err instanceof Error) {
    const cause = err.cause instanceof Error && !err.message.includes(err.cause.message) ? `: ${err.cause.message}` : ''
    return `${err.message}${cause}`.replace(/\s*\n\s*/g, ' ')
  }
  return String(err)
}

/** A schema failure's issues as one line: `path: message; …` (`root` names the empty path). */
export function describeIssues (issues: ReadonlyArray<{ path: ReadonlyArray<PropertyKey>, message: string }>, root: string): string {
  return issues.map(i => `${i.path.length === 0 ? root : i.path.map(String).join('.')}: ${i.message}`).join('; ')
}
