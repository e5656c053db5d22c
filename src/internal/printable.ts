/**
 * @internal
 * Text that others chose (a token's `kid`, a key set's, a discovery document's `issuer`, a URL) as a log line, a span
 * attribute or an error message may show it.
 */

/**
 * What could end a log line or pass for another, reorder what a reader sees, or that a strict UTF-8 sink refuses: C0
 * and C1 controls, DEL, the Unicode line and paragraph separators, the bidirectional marks, embeddings, overrides and
 * isolates, and a surrogate without its pair; and the backslash, so that an escape cannot be told from text that
 * spells one.
 */
const unprintable =
  /[\u0000-\u001f\u005c\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g

const escape = (character: string): string => `\\u${character.charCodeAt(0).toString(16).padStart(4, "0")}`

/**
 * @internal
 * `text` with what {@link unprintable} matches written as `\uXXXX`, cut to `max` UTF-16 units (never between the two
 * halves of a character) with its full length said when cut.
 */
export const printable = (text: string, max = Number.POSITIVE_INFINITY): string => {
  if (text.length <= max) return text.replace(unprintable, escape)
  const end = /[\ud800-\udbff]/.test(text[max - 1] ?? "") ? max - 1 : max
  return `${text.slice(0, end).replace(unprintable, escape)}... (${text.length} characters)`
}

/**
 * @internal
 * A key id as every log line and span shows it: {@link printable}, cut to 64 characters (a token's kid is the
 * sender's choice, up to the token's size cap).
 */
export const shownKid = (kid: string): string => printable(kid, 64)
