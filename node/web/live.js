// The node's event stream (GET /v1/events, server-sent events) shared by every page.

export const EVENT_TYPES = ['contribution', 'verdict', 'decided', 'version', 'anchor', 'inference']

const listeners = new Set()
const statusListeners = new Set()
let source
let status = 'connecting'

function setStatus (s) {
  status = s
  for (const l of statusListeners) l(s)
}

/** Opens the stream once; EventSource reconnects by itself after a drop. */
function connect () {
  if (source !== undefined) return
  source = new EventSource('/v1/events')
  source.onopen = () => setStatus('live')
  source.onerror = () => setStatus(source.readyState === EventSource.CLOSED ? 'closed' : 'reconnecting')
  for (const type of EVENT_TYPES) {
    source.addEventListener(type, (e) => {
      let data
      try { data = JSON.parse(e.data) } catch { return }
      for (const l of listeners) l(type, data)
    })
  }
}

/** Calls `listener(type, data)` for every event; returns the unsubscribe. */
export function onEvent (listener) {
  connect()
  listeners.add(listener)
  return () => listeners.delete(listener)
}

export function onStatus (listener) {
  connect()
  statusListeners.add(listener)
  listener(status)
  return () => statusListeners.delete(listener)
}
