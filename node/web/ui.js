// What every page shares: the htm template tag, data loading and announcements.
import { h } from 'preact'
import { useEffect, useRef, useState } from 'preact/hooks'
import htm from 'htm'

export const html = htm.bind(h)

/**
 * Loads `load()` now and whenever a value in `deps` changes; a response that arrives after
 * a newer request started is dropped, so a slow old one never overwrites fresher data.
 * Keeps the last data while reloading (no flicker on live updates).
 */
export function useResource (load, deps) {
  const [state, setState] = useState({ data: undefined, error: undefined, loading: true })
  const seq = useRef(0)
  const shown = useRef(0)
  useEffect(() => {
    const mine = ++seq.current
    setState(s => ({ ...s, loading: true }))
    // any answer newer than the one shown is shown: with "the latest request only", a busy
    // datanet whose events outpaced the answers left the page loading for ever
    load().then(
      data => { if (mine > shown.current) { shown.current = mine; setState({ data, error: undefined, loading: mine !== seq.current }) } },
      error => { if (mine === seq.current) setState(s => ({ data: s.data, error, loading: false })) }
    )
  }, deps)
  return state
}

/** The data of a resource, or its loading/error state as a message. */
export function Loaded ({ resource, what, children }) {
  if (resource.data !== undefined) {
    return html`${resource.error !== undefined ? html`<p class="error" role="alert">Could not refresh ${what}: ${resource.error.message}</p>` : null}${children(resource.data)}`
  }
  if (resource.error !== undefined) return html`<p class="error" role="alert">Could not load ${what}: ${resource.error.message}</p>`
  return html`<p class="loading" aria-busy="true">Loading ${what}…</p>`
}

let announceTo = () => {}
/** Says a live update out loud (the aria-live region in app.js) and shows it as the last event. */
export function announce (text) { announceTo(text) }
export function setAnnouncer (fn) { announceTo = fn }
