// The attribution preview: paste any text, see which contributors' records it repeats.
import { useState } from 'preact/hooks'
import { html } from './ui.js'
import { api } from './api.js'
import { colourOf, eth, normalizeText, short } from './format.js'

/**
 * The text cut into plain and attributed pieces. Spans carry their text after the node's
 * normalisation, so they are found in the normalised input, in order.
 */
export function pieces (text, result) {
  const contributorOf = new Map(result.records.map(r => [r.recordIndex, r.contributor]))
  const norm = normalizeText(text)
  const out = []
  let at = 0
  for (const span of [...result.spans].sort((a, b) => a.start - b.start)) {
    const i = norm.indexOf(span.text, at)
    if (i < 0 || span.text === '') continue
    // a token often starts with a space: leave it outside the highlight
    const lead = span.text.length - span.text.trimStart().length
    if (i + lead > at) out.push({ text: norm.slice(at, i + lead) })
    const contributors = [...new Set(span.records.map(r => contributorOf.get(r)).filter(c => c !== undefined))]
    out.push({ text: span.text.slice(lead), span, contributors })
    at = i + span.text.length
  }
  if (at < norm.length) out.push({ text: norm.slice(at) })
  return out
}

function Highlighted ({ text, result }) {
  return html`<p class="attributed" data-testid="attributed-text">${pieces(text, result).map(p => {
    if (p.span === undefined) return p.text
    if (p.span.common || p.contributors.length === 0) return html`<mark class="common" title="a common phrase: credited to nobody">${p.text}</mark>`
    const who = p.contributors[0]
    const c = colourOf(who)
    const label = `from ${p.contributors.join(', ')}: record${p.span.records.length === 1 ? '' : 's'} ${p.span.records.join(', ')}`
    return html`<mark data-contributor=${who} style=${`background:${c.background};box-shadow:inset 0 -3px 0 ${c.edge}`} title=${label}>${p.text}<span class="sr-only"> (${label})</span></mark>`
  })}</p>`
}

function Result ({ text, result }) {
  const credited = result.spans.filter(s => !s.common).length
  const pct = result.coverage.den === 0 ? 0 : (100 * result.coverage.num / result.coverage.den)
  return html`
    <div class="result" data-version=${result.version}>
      <h3>Spans in version ${result.version}</h3>
      <${Highlighted} text=${text} result=${result} />
      <p>${credited} attributed span${credited === 1 ? '' : 's'}, coverage ${pct.toFixed(1)}%. As an inference paying ${eth(result.fee)}: ${eth(result.paid)} to contributors, ${eth(result.basePool)} to the base pool.</p>
      ${result.contributors.length === 0 ? html`<p>No contributor's record is repeated here.</p>` : html`
        <h3>Contributors</h3>
        <ul class="legend">
          ${result.contributors.map(c => {
            const col = colourOf(c.address)
            return html`<li data-contributor=${c.address} data-amount=${c.amount}><span class="swatch" style=${`background:${col.background};border-color:${col.edge}`} aria-hidden="true"></span><code title=${c.address}>${short(c.address, 10, 6)}</code> <strong>${eth(c.amount)}</strong></li>`
          })}
        </ul>`}
    </div>`
}

export function AttributionView ({ id }) {
  const [text, setText] = useState('')
  const [state, setState] = useState({ status: 'idle' })
  const submit = async (e) => {
    e.preventDefault()
    if (text.trim() === '') { setState({ status: 'error', message: 'Paste some text first.' }); return }
    setState({ status: 'busy' })
    try {
      setState({ status: 'done', text, result: await api.attribute(id, text) })
    } catch (err) {
      setState({ status: 'error', message: err.message })
    }
  }
  return html`
    <p>Paste any text, for example a model's answer: the spans it shares with this datanet's records are shown in each contributor's colour, with what they would earn if it were an inference.</p>
    <form class="attribute" onSubmit=${submit}>
      <label for="attr-text">Text to attribute</label>
      <textarea id="attr-text" name="text" rows="6" value=${text} onInput=${e => setText(e.currentTarget.value)} aria-describedby="attr-help"></textarea>
      <p id="attr-help" class="muted">Spans of at least the datanet's minimum length count; common phrases earn nothing.</p>
      <button type="submit" disabled=${state.status === 'busy'}>${state.status === 'busy' ? 'Attributing…' : 'Attribute'}</button>
    </form>
    <div aria-live="polite">
      ${state.status === 'error' ? html`<p class="error" role="alert">${state.message}</p>` : null}
      ${state.status === 'done' ? html`<${Result} text=${state.text} result=${state.result} />` : null}
    </div>`
}
