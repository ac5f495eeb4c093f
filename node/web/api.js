// The node's JSON API, read-only except the attribution preview (a POST that writes nothing).

export class ApiError extends Error {
  constructor (status, code, message) {
    super(message)
    this.name = 'ApiError'
    this.status = status
    this.code = code
  }
}

async function call (method, path, body) {
  const res = await fetch(path, {
    method,
    headers: body === undefined ? { accept: 'application/json' } : { accept: 'application/json', 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body)
  })
  const json = await res.json().catch(() => null)
  if (!res.ok) throw new ApiError(res.status, json?.error?.code ?? 'HTTP_' + res.status, json?.error?.message ?? `${method} ${path}: HTTP ${res.status}`)
  return json
}

const d = id => `/v1/datanets/${encodeURIComponent(id)}`

export const api = {
  node: () => call('GET', '/v1/node'),
  datanets: () => call('GET', '/v1/datanets'),
  datanet: id => call('GET', d(id)),
  versions: id => call('GET', `${d(id)}/versions`),
  contributions: id => call('GET', `${d(id)}/contributions`),
  validators: id => call('GET', `${d(id)}/validators`),
  models: id => call('GET', `${d(id)}/models`),
  inferences: id => call('GET', `${d(id)}/inferences`),
  tallies: id => call('GET', `${d(id)}/tallies`),
  /** A preview: computes, stores nothing, so the node serves it without its token (node/api/auth.ts OPEN_POSTS). */
  attribute: (id, text) => call('POST', `${d(id)}/attribution`, { text })
}
