/**
 * @internal
 * A compact JWS read before anything about it is verified: its shape, its header and its claims as JSON, with the
 * limits that keep a junk token cheap to refuse. `TokenValidator` decides with these; nothing here looks at a key.
 */
import * as Either from "effect/Either"
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"

const NumericDate = Schema.Number.pipe(Schema.finite())
/** 9999-12-31T23:59:59Z: a later `exp` is no date a `Date` can hold, only a way to say "never". */
export const maxNumericDate = 253402300799
const StringOrStrings = Schema.Union(Schema.String, Schema.Array(Schema.String))

/** The protected header of a token (`TokenValidator.Header`). */
export const Header = Schema.Struct(
  {
    alg: Schema.String,
    kid: Schema.optional(Schema.String),
    typ: Schema.optional(Schema.String),
    crit: Schema.optional(Schema.Unknown),
    b64: Schema.optional(Schema.Unknown)
  },
  Schema.Record({ key: Schema.String, value: Schema.Unknown })
)
export type Header = typeof Header.Type

/** The registered claims this library reads, each with its type (`TokenValidator.RegisteredClaims`). */
export const RegisteredClaims = Schema.Struct(
  {
    iss: Schema.optional(Schema.String),
    sub: Schema.optional(Schema.String),
    aud: Schema.optional(StringOrStrings),
    exp: Schema.optional(NumericDate),
    nbf: Schema.optional(NumericDate),
    iat: Schema.optional(NumericDate),
    client_id: Schema.optional(Schema.String),
    azp: Schema.optional(Schema.String),
    token_use: Schema.optional(Schema.String)
  },
  Schema.Record({ key: Schema.String, value: Schema.Unknown })
)
export type RegisteredClaims = typeof RegisteredClaims.Type

// The signature may be empty here so that an unsigned (`alg: none`) token is refused for its algorithm.
export const compactJws = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*$/
const textDecoder = new TextDecoder("utf-8", { fatal: true })

const base64UrlValue = (code: number): number =>
  code >= 65 && code <= 90
    ? code - 65
    : code >= 97 && code <= 122
    ? code - 71
    : code >= 48 && code <= 57
    ? code + 4
    : code === 45
    ? 62
    : 63

/**
 * Whether a base64url segment, `text` from `start` to `end` (already known to use the alphabet), is in its one
 * canonical form: a possible length, and zero in the unused low bits of its last character. Decoders ignore those bits,
 * so without this check one signature has up to 16 spellings, and the token string would not be a stable identity (deny
 * lists, replay caches).
 */
export const isCanonicalBase64Url = (text: string, start: number, end: number): boolean => {
  const rest = (end - start) % 4
  if (rest === 0) return true
  if (rest === 1) return false
  return (base64UrlValue(text.charCodeAt(end - 1)) & (rest === 2 ? 0b1111 : 0b11)) === 0
}

/**
 * JSON text whose top-level value has no own `__proto__` member. Decoding the header or claims into a struct would
 * turn such a member into the prototype of the result, where its fields would pass for registered claims that were
 * never type-checked (an `exp` of `"never"`, say).
 */
const JsonWithoutProto = Schema.parseJson().pipe(
  Schema.filter((value) => !(Predicate.isObject(value) && Object.hasOwn(value, "__proto__")), {
    message: () => "a __proto__ member is not accepted"
  })
)
const decodeHeader = Schema.decodeUnknownEither(Schema.compose(JsonWithoutProto, Header, { strict: false }))

const isOptionalString = (value: unknown): boolean => value === undefined || typeof value === "string"
const isOptionalNumericDate = (value: unknown): boolean =>
  value === undefined || (typeof value === "number" && Number.isFinite(value))

/**
 * `Schema.is(RegisteredClaims)`, written out for a parsed JSON object. The schema's general decoder cost about 2 µs a
 * token, a tenth of an RS256 check (`bench/breakdown.ts`), on the one path where every microsecond shows; a property
 * test (`test/TokenValidator.property.test.ts`) holds the two to the same answer.
 */
const hasRegisteredClaimTypes = (claims: Readonly<Record<string, unknown>>): boolean =>
  isOptionalString(claims.iss) && isOptionalString(claims.sub) &&
  (isOptionalString(claims.aud) ||
    (Array.isArray(claims.aud) && claims.aud.every((aud) => typeof aud === "string"))) &&
  isOptionalNumericDate(claims.exp) && isOptionalNumericDate(claims.nbf) && isOptionalNumericDate(claims.iat) &&
  isOptionalString(claims.client_id) && isOptionalString(claims.azp) && isOptionalString(claims.token_use)

/** A payload's claims: a JSON object without an own `__proto__` member whose registered claims have their types. */
export const readClaims = (text: string): RegisteredClaims | undefined => {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return undefined
  }
  return Predicate.isRecord(value) && !Object.hasOwn(value, "__proto__") && hasRegisteredClaimTypes(value)
    ? value as RegisteredClaims
    : undefined
}

export const base64UrlText = (segment: string): string | undefined => {
  try {
    return textDecoder.decode(Buffer.from(segment, "base64url"))
  } catch {
    return undefined
  }
}

/**
 * A header segment's header, read before anything is verified: none for one that is no JSON object with an `alg`, or
 * that holds too much (see {@link maxHeaderValues}: refused unread).
 */
export const headerOf = (segment: string): Header | undefined => {
  const text = base64UrlText(segment)
  return text === undefined || holdsMore(text, maxHeaderValues, true)
    ? undefined
    : Either.getOrUndefined(decodeHeader(text))
}

/**
 * A compact token's claims, read before anything is verified (to route it, or for diagnostics): none for claims that
 * are not a JSON object of the right types, or that hold more than {@link maxUnverifiedClaimsContainers} objects and
 * lists (refused unread).
 */
export const claimsOf = (token: string): RegisteredClaims | undefined => {
  const first = token.indexOf(".")
  const last = token.lastIndexOf(".")
  if (first === -1 || token.indexOf(".", first + 1) !== last) return undefined
  const text = base64UrlText(token.slice(first + 1, last))
  return text === undefined || holdsMore(text, maxUnverifiedClaimsContainers, false) ? undefined : readClaims(text)
}

/**
 * How many objects and lists unverified claims, parsed to route a token (`multi`), may hold. Members and list items
 * are not counted here: real claims hold many (a Keycloak admin's roles of every realm), and their cost follows the
 * bytes, which the size cap bounds.
 */
const maxUnverifiedClaimsContainers = 1000

/**
 * Whether `token` takes more than `max` bytes in UTF-8. A token's characters are ASCII, one byte each, so its length
 * decides, except for a text with others in it: up to three bytes for each UTF-16 unit.
 */
export const isLongerThan = (token: string, max: number): boolean =>
  token.length > max || (token.length * 3 > max && Buffer.byteLength(token, "utf8") > max)

/**
 * How much a header may hold, counted by {@link holdsMore} with its members: each object and list, and each `:` and `,`
 * (a flat object of 32 members counts 64). A real one holds a handful (`alg`, `kid`, `typ`; a `jwk`, an `x5c` list:
 * about 25 at most); a thousand members or lists, nested or side by side, cost about 0.3 µs each to parse, decode and
 * freeze, before any signature is checked: a junk token that costs ten times a forged one.
 */
const maxHeaderValues = 64

/**
 * Whether JSON `text` holds more than `max` objects and lists (`{` and `[` outside strings), counting, with `members`,
 * each `:` and `,` outside strings too; in one pass.
 */
const holdsMore = (text: string, max: number, members: boolean): boolean => {
  let count = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    if (inString) {
      if (code === 92) i++ // a backslash: the next character is escaped
      else if (code === 34) inString = false
    } else if (code === 34) {
      inString = true
    } else if ((code === 123 || code === 91 || (members && (code === 58 || code === 44))) && ++count > max) {
      return true
    }
  }
  return false
}

/** Freezes a parsed JSON object and every object in it (`for...in`: no array of members to allocate). */
export const deepFreeze = <A extends object>(value: A): A => {
  // A loop over a stack of its own, not recursion: a header is frozen before anything about it is verified, and JSON
  // nested thousands deep (a few bytes a level) would otherwise overflow the call stack.
  // The stack is made only when a nested object turns up: flat claims and headers (most) allocate nothing here.
  let pending: Array<object> | undefined
  for (let next: object | undefined = Object.freeze(value); next !== undefined; next = pending?.pop()) {
    for (const key in next) {
      const member: unknown = (next as Record<string, unknown>)[key]
      if (typeof member === "object" && member !== null && !Object.isFrozen(member)) {
        ;(pending ??= []).push(Object.freeze(member))
      }
    }
  }
  return value
}
