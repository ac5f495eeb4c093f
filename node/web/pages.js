// The front page: this node and the datanets it follows.
import { useEffect, useState } from 'preact/hooks'
import { html, Loaded, useResource } from './ui.js'
import { api } from './api.js'
import { onEvent } from './live.js'
import { short } from './format.js'

function NodeSummary ({ node }) {
  const chain = node.chain
  return html`
    <section aria-labelledby="node-h" class="card">
      <h2 id="node-h">This node</h2>
      <dl class="facts">
        <div><dt>Peer id</dt><dd><code title=${node.peerId}>${short(node.peerId, 12, 6)}</code></dd></div>
        <div><dt>Address</dt><dd><code title=${node.address}>${short(node.address, 10, 6)}</code></dd></div>
        <div><dt>Peers</dt><dd data-field="peers">${node.peers.length}</dd></div>
        <div><dt>Chain</dt><dd>${chain === null ? 'none' : html`id ${chain.chainId}, block ${chain.block ?? '–'}`}</dd></div>
        <div><dt>Version</dt><dd>${node.version}</dd></div>
      </dl>
    </section>`
}

export function DatanetList () {
  // a new version changes nothing here but the node's height: reload the node only then
  const [tick, setTick] = useState(0)
  useEffect(() => onEvent((type) => { if (type === 'version' || type === 'anchor') setTick(t => t + 1) }), [])
  const datanets = useResource(() => api.datanets(), [])
  const node = useResource(() => api.node(), [tick])
  return html`
    <h1 tabindex="-1">Datanets</h1>
    <${Loaded} resource=${datanets} what="the datanets">${list => list.length === 0
      ? html`<p>This node follows no datanet yet. Create one with <code>datanet datanet create --manifest FILE</code>.</p>`
      : html`
        <ul class="datanets" data-count=${list.length}>
          ${list.map(d => html`
            <li class="card" data-datanet=${d.id}>
              <h2><a href=${`#/d/${encodeURIComponent(d.id)}`}>${d.name}</a></h2>
              ${d.manifest?.description ? html`<p>${d.manifest.description}</p>` : null}
              <dl class="facts">
                <div><dt>Id</dt><dd><code class="id">${d.id}</code></dd></div>
                <div><dt>License</dt><dd>${d.license}</dd></div>
                <div><dt>Validators</dt><dd>${d.validators.length}</dd></div>
              </dl>
            </li>`)}
        </ul>`}
    <//>
    <${Loaded} resource=${node} what="this node">${n => html`<${NodeSummary} node=${n} />`}<//>
  `
}
