import type { ZodError, ZodType } from 'zod'
import { DatanetError, describeIssues } from '../../src/errors.ts'

/** A request the API refuses as written (400). */
export function badRequest (message: string): DatanetError {
  return new DatanetError({ code: 'API_ERROR_BAD_REQUEST' }, message, 'usage')
}

/** A zod failure as one line: `where: path: message; …` (the path `where` itself when empty). */
export function invalid (where: 'body' | 'query', error: ZodError): DatanetError {
  return badRequest(`${where}: ${describeIssues(error.issues, where)}`)
}

/** A request's body or query as the schema reads it, or a 400 naming every problem. */
export function parseRequest<T> (schema: ZodType<T>, value: unknown, where: 'body' | 'query'): T {
  const result = schema.safeParse(value ?? {})
  if (!result.success) throw invalid(where, result.error)
  return result.data
}

/** A chain operation on a node without a chain (409). */
export function noChain (): DatanetError {
  return new DatanetError({ code: 'CHAIN_ERROR_NOT_CONFIGURED' }, 'this node has no chain configured (chain.rpcUrl and chain.registry)', 'conflict')
}
