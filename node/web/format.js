// Formatting helpers: wei amounts, addresses, times and each contributor's colour.

const WEI = 10n ** 18n

/** Wei (a decimal string) as ETH with at most `digits` decimals, never through a float. */
export function eth (wei, digits = 6) {
  let v
  try { v = BigInt(wei) } catch { return String(wei) }
  const sign = v < 0n ? '-' : ''
  if (v < 0n) v = -v
  const whole = v / WEI
  let frac = (v % WEI).toString().padStart(18, '0').slice(0, digits).replace(/0+$/, '')
  if (frac === '' && v % WEI !== 0n) frac = '0'.repeat(digits - 1) + '1' // show that it is not zero
  return `${sign}${whole}${frac === '' ? '' : '.' + frac} ETH`
}

/** A long hex string cut to its start and end; the whole is in the title. */
export function short (hex, head = 8, tail = 4) {
  if (typeof hex !== 'string') return ''
  return hex.length <= head + tail + 1 ? hex : `${hex.slice(0, head)}…${hex.slice(-tail)}`
}

export function time (ms) {
  if (typeof ms !== 'number' || ms <= 0) return '–'
  return new Date(ms).toISOString().replace('T', ' ').slice(0, 19) + ' UTC'
}

export function ago (ms, now = Date.now()) {
  if (typeof ms !== 'number' || ms <= 0) return 'never'
  const s = Math.max(0, Math.round((now - ms) / 1000))
  if (s < 60) return `${s} s ago`
  if (s < 3600) return `${Math.round(s / 60)} min ago`
  return `${Math.round(s / 3600)} h ago`
}

/** Twelve hues far enough apart to tell contributors apart side by side. */
const HUES = [210, 30, 130, 300, 0, 175, 55, 260, 90, 330, 150, 235]
const slots = new Map()

function hashOf (address) {
  let h = 0x811c9dc5 // FNV-1a over the lower-case address
  for (const ch of String(address).toLowerCase()) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0
  return h
}

/**
 * Gives the known contributors distinct colours: in address order, each takes its hashed
 * slot or the next free one. Call with every address a page shows (tallies, contributions).
 */
export function knowContributors (addresses) {
  for (const a of [...new Set(addresses.map(x => String(x).toLowerCase()))].sort()) {
    if (slots.has(a)) continue
    const taken = new Set(slots.values())
    let slot = hashOf(a) % HUES.length
    for (let i = 0; i < HUES.length && taken.has(slot); i++) slot = (slot + 1) % HUES.length
    slots.set(a, slot)
  }
}

/** A light background (dark text on it keeps a contrast above 7:1) and a stronger edge colour, the same on every page. */
export function colourOf (address) {
  const a = String(address).toLowerCase()
  const h = HUES[slots.get(a) ?? hashOf(a) % HUES.length]
  return { background: `hsl(${h} 85% 86%)`, edge: `hsl(${h} 70% 32%)` }
}

/** Share of `part` in `whole` (decimal strings) as a number in [0, 1]. */
export function ratio (part, whole) {
  const w = BigInt(whole)
  if (w === 0n) return 0
  return Number((BigInt(part) * 10000n) / w) / 10000
}

/** The text normalisation the node applies before attribution (src/attribution/normalize.ts). */
export function normalizeText (text) {
  let out = text.isWellFormed?.() === false ? text.toWellFormed() : text
  out = out.replace(/[\u200B-\u200D\u2060\uFEFF]/g, '').replace(/\r\n?/g, '\n')
  return out.normalize('NFC')
}
