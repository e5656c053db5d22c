/**
 * @internal
 * Text that others chose (a token's `kid`, a key set's, a discovery document's `issuer`, a URL) as a log line, a span
 * attribute or an error message may show it.
 */

/**
 * What could end a log line or pass for another, reorder what a reader sees or hide from it, or that a strict UTF-8
 * sink refuses: C0 and C1 controls, DEL, the Unicode line and paragraph separators, every invisible format character
 * (`Cf`: bidirectional marks, embeddings, overrides and isolates; zero-width spaces and joiners; the byte order mark;
 * the soft hyphen; the tag characters, which can spell a hidden text) and every other character Unicode says to show
 * as nothing (`Default_Ignorable_Code_Point`: variation selectors, fillers), and a surrogate without its pair; and the
 * backslash and the double quote, so that an escape cannot be told from text that spells one, nor a quoted value end
 * early.
 */
const unprintable = /[\p{Cc}\p{Cf}\p{Default_Ignorable_Code_Point}\u0022\u005c\u2028\u2029]|\p{Cs}/gu

/** `\uXXXX` for each UTF-16 unit of `character` (a tag character is two). */
const escape = (character: string): string =>
  Array.from(
    { length: character.length },
    (_, i) => `\\u${character.charCodeAt(i).toString(16).padStart(4, "0")}`
  ).join("")

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
