// Tallies as inline SVG bars: attributed, of it anchored on chain, of that claimed.
import { html } from './ui.js'
import { colourOf, eth, ratio, short } from './format.js'

// in viewBox units: the chart is at most 36rem wide, so its text stays legible from a phone up
const ROW = 32
const LABEL = 128
const WIDTH = 480

export function TallyChart ({ rows }) {
  const max = rows.reduce((m, r) => (BigInt(r.amount) > m ? BigInt(r.amount) : m), 1n).toString()
  const span = WIDTH - LABEL - 10
  const height = rows.length * ROW + 24
  const summary = rows.map(r => `${r.address}: ${eth(r.amount)} attributed, ${eth(r.cumulativeAmount)} anchored, ${eth(r.claimed)} claimed`).join('; ')
  return html`
    <figure class="chart">
      <svg viewBox=${`0 0 ${WIDTH} ${height}`} role="img" aria-labelledby="chart-title chart-desc" preserveAspectRatio="xMinYMin meet">
        <title id="chart-title">Attributed per contributor</title>
        <desc id="chart-desc">${summary}</desc>
        ${rows.map((r, i) => {
          const y = i * ROW
          const c = colourOf(r.address)
          const w = part => Math.max(0, ratio(part, max) * span)
          return html`
            <g class="bar" data-address=${r.address}>
              <text x="0" y=${y + 20} class="chart-label">${short(r.address, 8, 4)}</text>
              <rect x=${LABEL} y=${y + 6} width=${Math.max(1, w(r.amount))} height="20" fill=${c.background} stroke=${c.edge} />
              <rect x=${LABEL} y=${y + 12} width=${w(r.cumulativeAmount)} height="8" fill=${c.edge} opacity="0.55" />
              <rect x=${LABEL} y=${y + 14} width=${w(r.claimed)} height="4" fill="#111" />
            </g>`
        })}
        <text x=${LABEL} y=${height - 4} class="chart-axis">0</text>
        <text x=${WIDTH - 10} y=${height - 4} text-anchor="end" class="chart-axis">${eth(max, 4)}</text>
      </svg>
      <figcaption>Bars: attributed (light), anchored on chain (middle band), claimed (dark line).</figcaption>
    </figure>`
}
