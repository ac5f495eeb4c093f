/**
 * Text normalisation N(text) of span-sa-v1 (ATTRIBUTION.md §2), applied identically to
 * records (when they enter the index) and to outputs and prompts:
 *
 * 1. lone UTF-16 surrogates → U+FFFD (`toWellFormed`), which the tokenizer's UTF-8
 *    encoder would do anyway, made explicit so N's output is always well-formed;
 * 2. delete the zero-width characters U+200B–U+200D, U+2060, U+FEFF;
 * 3. CRLF and lone CR → LF;
 * 4. NFC (the ICU bundled with the pinned Node major).
 *
 * No case folding and no whitespace collapsing: both would change the BPE tokens.
 *
 * Departures from ATTRIBUTION.md §2, on purpose:
 * - no unassigned-code-point table: replacing code points unassigned in a pinned Unicode
 *   version with U+FFFD needs a shipped range table, not written yet. Until it is, N
 *   follows the Unicode version of the pinned Node's ICU (a Node major bump that moves
 *   the Unicode version is a spec change, as the pinned Node major already is);
 * - the deletions run before NFC, not after: deleting a zero-width character can bring
 *   a base letter and a combining mark together ("e\u200B\u0301"), and only composing
 *   after the deletion makes N idempotent (N(N(x)) = N(x)), which records normalised at
 *   ingestion and normalised again here rely on. CR/LF are starters NFC never creates
 *   or removes, so their step commutes with NFC.
 */

/** Names the normalisation in the spec id; change it whenever N changes. */
export const NORMALIZER_ID = 'datanet-n1:wellformed,strip[200B-200D,2060,FEFF],crlf-cr->lf,nfc'

const ZERO_WIDTH = /[\u200B-\u200D\u2060\uFEFF]/g
const HAS_ZERO_WIDTH = /[\u200B-\u200D\u2060\uFEFF]/
const CARRIAGE_RETURN = /\r\n?/g

export function normalizeText (text: string): string {
  let out = text.isWellFormed() ? text : text.toWellFormed()
  if (HAS_ZERO_WIDTH.test(out)) out = out.replace(ZERO_WIDTH, '')
  if (out.includes('\r')) out = out.replace(CARRIAGE_RETURN, '\n')
  return out.normalize('NFC')
}
