// The explorer's shell: header, live status, announcements and the hash router.
import { render } from 'preact'
import { useEffect, useState } from 'preact/hooks'
import { html, setAnnouncer } from './ui.js'
import { onStatus } from './live.js'
import { DatanetList } from './pages.js'
import { DatanetPage, TABS } from './datanet.js'

/** `#/` → the list; `#/d/<id>[/<tab>]` → one datanet. Other hashes (in-page anchors) keep the current page. */
function parseRoute (hash) {
  const m = /^#\/d\/([^/]+)(?:\/([a-z]+))?$/.exec(hash)
  if (m !== null) {
    const tab = TABS.some(t => t.id === m[2]) ? m[2] : 'versions'
    return { page: 'datanet', id: decodeURIComponent(m[1]), tab }
  }
  return { page: 'list' }
}

function useRoute () {
  const [route, setRoute] = useState(() => parseRoute(location.hash))
  useEffect(() => {
    const on = () => { if (location.hash === '' || location.hash.startsWith('#/')) setRoute(parseRoute(location.hash)) }
    addEventListener('hashchange', on)
    return () => removeEventListener('hashchange', on)
  }, [])
  return route
}

function LiveStatus () {
  const [status, setStatus] = useState('connecting')
  useEffect(() => onStatus(setStatus), [])
  const label = { live: 'Live', connecting: 'Connecting…', reconnecting: 'Reconnecting…', closed: 'Offline' }[status] ?? status
  return html`<span class=${`live live-${status}`} data-live=${status}><span class="dot" aria-hidden="true"></span>${label}</span>`
}

/** Announcements of live updates, read out by screen readers (aria-live) and shown as the last event. */
function Announcer () {
  const [message, setMessage] = useState('')
  useEffect(() => { setAnnouncer(setMessage); return () => setAnnouncer(() => {}) }, [])
  return html`<p class="announcer" role="status" aria-live="polite" aria-atomic="true" id="announcer">${message}</p>`
}

function App () {
  const route = useRoute()
  // a new page moves focus to its heading, so keyboard and screen-reader users start there
  useEffect(() => { document.querySelector('main h1')?.focus() }, [route.page, route.id])
  const skip = (e) => { e.preventDefault(); document.getElementById('main')?.focus() }
  return html`
    <a class="skip" href="#main" onClick=${skip}>Skip to content</a>
    <header class="site">
      <a class="brand" href="#/">datanet explorer</a>
      <nav aria-label="Site"><a href="#/">Datanets</a></nav>
      <${LiveStatus} />
    </header>
    <${Announcer} />
    <main id="main" tabindex="-1">
      ${route.page === 'datanet'
        ? html`<${DatanetPage} key=${route.id} id=${route.id} tab=${route.tab} />`
        : html`<${DatanetList} />`}
    </main>
    <footer class="site"><p>Read-only view of this node's API (<a href="/v1/datanets">/v1</a>). Writes need the node's token and the CLI.</p></footer>
  `
}

render(html`<${App} />`, document.getElementById('app'))
