// One datanet: its versions, contributions, validators, models and inferences, tallies,
// and the attribution preview, kept fresh from the node's event stream.
import { useEffect, useMemo, useState } from 'preact/hooks'
import { announce, html, Loaded, useResource } from './ui.js'
import { api } from './api.js'
import { onEvent } from './live.js'
import { ago, colourOf, eth, knowContributors, short, time } from './format.js'
import { TallyChart } from './chart.js'
import { AttributionView } from './attribution.js'

export const TABS = [
  { id: 'versions', label: 'Versions' },
  { id: 'contributions', label: 'Contributions' },
  { id: 'validators', label: 'Validators' },
  { id: 'models', label: 'Models & inferences' },
  { id: 'tallies', label: 'Tallies' },
  { id: 'attribution', label: 'Attribution' }
]

/** Which resources each public event makes stale. */
const STALE = {
  contribution: ['contributions'],
  verdict: ['contributions'],
  decided: ['contributions'],
  version: ['versions', 'contributions', 'tallies', 'datanet'],
  anchor: ['versions', 'tallies', 'validators'],
  inference: ['inferences', 'tallies']
}

function describe (type, e) {
  switch (type) {
    case 'contribution': return `New contribution ${short(e.cid, 12, 6)} from ${short(e.contributor)}: ${e.recordCount} records`
    case 'decided': return `Contribution ${short(e.cid, 12, 6)} ${e.status}`
    case 'version': return `Version ${e.height} is final: ${e.recordCount} records`
    case 'anchor': return `Version ${e.height} anchored in block ${e.block}`
    case 'inference': return `Inference ${short(e.cid, 12, 6)} on model ${short(e.model, 12, 6)}, fee ${eth(e.fee)}`
    default: return undefined // verdicts are too many to read out one by one
  }
}

/** Reload counters per resource, bumped by the events of this datanet (coalesced over 250 ms). */
function useLiveTicks (id) {
  const [ticks, setTicks] = useState({})
  useEffect(() => {
    const stale = new Set()
    let timer
    const off = onEvent((type, e) => {
      if (e.datanet !== id) return
      for (const r of STALE[type] ?? []) stale.add(r)
      const said = describe(type, e)
      if (said !== undefined) announce(said)
      if (timer === undefined) {
        timer = setTimeout(() => {
          timer = undefined
          const bump = [...stale]
          stale.clear()
          setTicks(t => Object.fromEntries([...Object.entries(t), ...bump.map(r => [r, (t[r] ?? 0) + 1])]))
        }, 250)
      }
    })
    return () => { off(); clearTimeout(timer) }
  }, [id])
  return ticks
}

function Addr ({ address, label }) {
  if (typeof address !== 'string') return html`<span>–</span>`
  const c = colourOf(address)
  return html`<span class="addr" data-address=${address} title=${address}><span class="swatch" style=${`background:${c.background};border-color:${c.edge}`} aria-hidden="true"></span><code>${label ?? short(address, 8, 6)}</code></span>`
}

function Hash ({ value, head = 10, tail = 6 }) {
  return html`<code title=${value}>${short(value, head, tail)}</code>`
}

function Table ({ label, children }) {
  // a wide table scrolls inside its own region on a narrow screen, reachable by keyboard
  return html`<div class="scroll" role="region" aria-label=${label} tabindex="0"><table>${children}</table></div>`
}

// ---- versions ----------------------------------------------------------------------------

function Versions ({ versions }) {
  if (versions.length === 0) return html`<p>No final version yet.</p>`
  return html`
    <ol class="timeline" reversed aria-label="Versions, newest first">
      ${versions.map(v => html`
        <li class="version" data-height=${v.height} data-cid=${v.cid}>
          <h3>Version ${v.height}</h3>
          <dl class="facts">
            <div class="wide"><dt>CID</dt><dd><code class="cid">${v.cid}</code></dd></div>
            <div class="wide"><dt>Anchor</dt><dd>${v.anchor === null
              ? html`<span class="badge pending">not anchored</span>`
              : html`<span class="badge accepted">anchored</span> tx <code class="anchor-tx" title=${v.anchor.txHash}>${v.anchor.txHash}</code>, block <span class="anchor-block">${v.anchor.block}</span>`}</dd></div>
            <div><dt>Records</dt><dd>${v.recordCount}</dd></div>
            <div><dt>Contributions</dt><dd>${v.contributions.length}</dd></div>
            <div><dt>Final</dt><dd>${time(v.decidedAt)} (round ${v.round}, ${v.certificate.length} precommits)</dd></div>
            <div><dt>Dataset root</dt><dd><${Hash} value=${v.datasetRoot} /></dd></div>
            <div><dt>Attribution root</dt><dd><${Hash} value=${v.attributionRoot} /></dd></div>
            <div><dt>Attributed</dt><dd>${eth(v.totalAttributed)}</dd></div>
          </dl>
        </li>`)}
    </ol>`
}

// ---- contributions -----------------------------------------------------------------------

function Verdicts ({ verdicts }) {
  if (verdicts.length === 0) return html`<p class="muted">No verdict yet.</p>`
  return html`
    <ul class="verdicts">
      ${verdicts.map(v => html`
        <li data-validator=${v.validator}>
          <${Addr} address=${v.validator} />
          <span class=${`badge ${v.accept ? 'accepted' : 'rejected'}`}>${v.accept ? 'accept' : 'reject'}</span>
          score ${v.score.toFixed(2)}
          ${v.reasons.length > 0 ? html`<span class="reasons">— ${v.reasons.join('; ')}</span>` : null}
        </li>`)}
    </ul>`
}

function Contributions ({ contributions }) {
  if (contributions.length === 0) return html`<p>No contribution yet.</p>`
  return html`
    <ul class="contributions" aria-label="Contributions, newest first">
      ${contributions.map(c => html`
        <li class="card contribution" data-cid=${c.cid} data-status=${c.status}>
          <h3><code class="cid">${c.cid}</code></h3>
          <dl class="facts">
            <div><dt>Status</dt><dd><span class=${`badge ${c.status}`}>${c.status}</span></dd></div>
            <div><dt>Score</dt><dd>${c.score === null ? '–' : c.score.toFixed(2)}</dd></div>
            <div><dt>Contributor</dt><dd><${Addr} address=${c.contributor} /></dd></div>
            <div><dt>Records</dt><dd>${c.recordCount} (${c.byteSize} bytes)</dd></div>
            <div><dt>Version</dt><dd>${c.version ?? '–'}</dd></div>
            <div><dt>Received</dt><dd>${time(c.receivedAt)}</dd></div>
          </dl>
          <details>
            <summary>${c.verdicts.length} verdict${c.verdicts.length === 1 ? '' : 's'} (${c.verdicts.filter(v => v.accept).length} accept)</summary>
            <${Verdicts} verdicts=${c.verdicts} />
          </details>
        </li>`)}
    </ul>`
}

// ---- validators --------------------------------------------------------------------------

/** Live: the node itself, or a peer connected now that announced the address; and its last verdict seen. */
function liveness (address, node) {
  const a = address.toLowerCase()
  if (node?.address?.toLowerCase() === a) return { online: true, label: 'online (this node)' }
  if (node?.peers?.some(p => p.address?.toLowerCase() === a)) return { online: true, label: 'online (connected peer)' }
  return { online: false, label: 'not connected' }
}

function Validators ({ set, node, contributions }) {
  const lastVerdict = useMemo(() => {
    const m = new Map()
    for (const c of contributions ?? []) {
      for (const v of c.verdicts) {
        const a = v.validator.toLowerCase()
        if ((m.get(a) ?? 0) < v.timestamp) m.set(a, v.timestamp)
      }
    }
    return m
  }, [contributions])
  const chain = set.chain
  return html`
    <p>The set ${set.source === 'chain' ? 'on chain' : 'of the manifest'}: <strong data-field="validator-count">${set.validators.length}</strong> validators, total stake ${eth(set.totalStake)}.
      ${chain !== null && chain !== undefined ? html` Registry at block ${chain.block ?? '–'}; last anchor ${chain.lastAnchor === null ? 'none' : `version ${chain.lastAnchor.height}`}; funded ${eth(chain.totalFunded)}, claimed ${eth(chain.totalClaimed)}.` : null}</p>
    <${Table} label="Validators">
      <caption class="sr-only">Validators with stake, status and liveness</caption>
      <thead><tr><th scope="col">Validator</th><th scope="col">Stake</th><th scope="col">Status</th><th scope="col">Liveness</th><th scope="col">Last verdict</th></tr></thead>
      <tbody>
        ${set.validators.map(v => {
          const live = liveness(v.address, node)
          const last = lastVerdict.get(v.address.toLowerCase())
          return html`
            <tr class="validator" data-address=${v.address}>
              <th scope="row"><${Addr} address=${v.address} /></th>
              <td>${eth(v.stake)}</td>
              <td><span class=${`badge ${v.status === 'active' ? 'accepted' : 'pending'}`}>${v.status}</span></td>
              <td><span class=${`badge ${live.online ? 'accepted' : 'rejected'}`}>${live.label}</span></td>
              <td>${last === undefined ? 'none seen' : html`<span title=${time(last)}>${ago(last)}</span>`}</td>
            </tr>`
        })}
      </tbody>
    <//>`
}

// ---- models and inferences ---------------------------------------------------------------

function Models ({ models }) {
  if (models.length === 0) return html`<p>No model yet.</p>`
  return html`
    <${Table} label="Models">
      <thead><tr><th scope="col">Model</th><th scope="col">Kind</th><th scope="col">Trained on</th><th scope="col">Operator</th><th scope="col">Created</th></tr></thead>
      <tbody>${models.map(m => html`
        <tr class="model" data-model=${m.id}><th scope="row"><${Hash} value=${m.id} head=${12} /></th><td>${m.kind}</td><td>version ${m.version}</td><td><${Addr} address=${m.operator} /></td><td>${time(m.createdAt)}</td></tr>`)}
      </tbody>
    <//>`
}

function Inferences ({ inferences }) {
  if (inferences.length === 0) return html`<p>No inference yet.</p>`
  return html`
    <${Table} label="Inferences">
      <thead><tr><th scope="col">Event</th><th scope="col">Model</th><th scope="col">Fee</th><th scope="col">In version</th><th scope="col">Paid to contributors</th></tr></thead>
      <tbody>${inferences.map(i => html`
        <tr class="inference" data-cid=${i.cid}>
          <th scope="row"><${Hash} value=${i.cid} head=${12} /></th>
          <td><${Hash} value=${i.model} head=${12} /></td>
          <td>${eth(i.fee)}</td>
          <td>${i.included ?? 'pending'}</td>
          <td>${i.shares.length === 0 ? 'nobody' : html`<ul class="plain">${i.shares.map(s => html`<li><${Addr} address=${s.address} /> ${eth(s.amount)}</li>`)}</ul>`}</td>
        </tr>`)}
      </tbody>
    <//>`
}

// ---- tallies -----------------------------------------------------------------------------

function Tallies ({ list }) {
  const rows = [...list.tallies].sort((a, b) => (BigInt(b.amount) > BigInt(a.amount) ? 1 : BigInt(b.amount) < BigInt(a.amount) ? -1 : 0))
  return html`
    <p>At version ${list.height}: ${eth(list.total)} attributed in all; the chain's root is of version ${list.anchoredHeight ?? '–'}.</p>
    ${rows.length === 0 ? html`<p>Nothing attributed yet.</p>` : html`
      <${TallyChart} rows=${rows} />
      <${Table} label="Tallies">
        <caption class="sr-only">Tallies per contributor</caption>
        <thead><tr><th scope="col">Contributor</th><th scope="col">Attributed</th><th scope="col">Anchored</th><th scope="col">Claimed</th><th scope="col">Claimable</th></tr></thead>
        <tbody>${rows.map(t => html`
          <tr class="tally" data-address=${t.address} data-amount=${t.amount}>
            <th scope="row"><${Addr} address=${t.address} /></th>
            <td class="num">${eth(t.amount)}</td><td class="num">${eth(t.cumulativeAmount)}</td><td class="num">${eth(t.claimed)}</td><td class="num">${eth(t.claimable)}</td>
          </tr>`)}
        </tbody>
      <//>`}`
}

// ---- the page ----------------------------------------------------------------------------

export function DatanetPage ({ id, tab }) {
  const ticks = useLiveTicks(id)
  const datanet = useResource(() => api.datanet(id), [id, ticks.datanet])
  const versions = useResource(() => api.versions(id), [id, ticks.versions])
  const contributions = useResource(() => api.contributions(id), [id, ticks.contributions])
  const validators = useResource(() => api.validators(id), [id, ticks.validators])
  const node = useResource(() => api.node(), [ticks.versions, ticks.validators])
  const models = useResource(() => api.models(id), [id, ticks.versions])
  const inferences = useResource(() => api.inferences(id), [id, ticks.inferences, ticks.versions])
  const tallies = useResource(() => api.tallies(id), [id, ticks.tallies])
  // contributors get their colours from the whole set, before anything is drawn with them
  if (tallies.data !== undefined) knowContributors(tallies.data.tallies.map(t => t.address))
  if (contributions.data !== undefined) knowContributors(contributions.data.map(c => c.contributor))
  const base = `#/d/${encodeURIComponent(id)}`
  const name = datanet.data?.name ?? id
  return html`
    <nav aria-label="Breadcrumb" class="crumbs"><a href="#/">Datanets</a> › <span aria-current="page">${name}</span></nav>
    <h1 tabindex="-1">${name}</h1>
    <${Loaded} resource=${datanet} what="the datanet">${d => html`
      <p class="muted"><code class="id">${d.id}</code> · ${d.license}${d.manifest?.description ? ` · ${d.manifest.description}` : ''}${d.chain ? ` · registration: ${d.chain.registration}` : ''}</p>`}<//>
    <nav aria-label="Datanet sections" class="tabs">
      <ul>${TABS.map(t => html`<li><a href=${`${base}/${t.id}`} aria-current=${t.id === tab ? 'page' : undefined} data-tab=${t.id}>${t.label}</a></li>`)}</ul>
    </nav>
    <section aria-labelledby="section-h" class="section" data-section=${tab}>
      <h2 id="section-h">${TABS.find(t => t.id === tab)?.label}</h2>
      ${tab === 'versions' ? html`<${Loaded} resource=${versions} what="the versions">${v => html`<${Versions} versions=${v} />`}<//>` : null}
      ${tab === 'contributions' ? html`<${Loaded} resource=${contributions} what="the contributions">${c => html`<${Contributions} contributions=${c} />`}<//>` : null}
      ${tab === 'validators' ? html`<${Loaded} resource=${validators} what="the validators">${s => html`<${Validators} set=${s} node=${node.data} contributions=${contributions.data} />`}<//>` : null}
      ${tab === 'models' ? html`
        <h3>Models</h3>
        <${Loaded} resource=${models} what="the models">${m => html`<${Models} models=${m} />`}<//>
        <h3>Inferences</h3>
        <${Loaded} resource=${inferences} what="the inferences">${i => html`<${Inferences} inferences=${i} />`}<//>` : null}
      ${tab === 'tallies' ? html`<${Loaded} resource=${tallies} what="the tallies">${t => html`<${Tallies} list=${t} />`}<//>` : null}
      ${tab === 'attribution' ? html`<${AttributionView} id=${id} />` : null}
    </section>`
}
