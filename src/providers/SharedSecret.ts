/**
 * Tokens signed with a shared secret (HMAC: `HS256`, `HS384`, `HS512`), as issued by an app's own auth service. No key
 * set, no cache, no network: the secret is imported once, when the validator is made, and every token is verified
 * against it (whatever its `kid`).
 *
 * Only HMAC algorithms are allowed here, and no key-set provider ever verifies an HMAC token (nor may a validator over
 * a key set name one among its algorithms), so a token cannot be moved from one kind of key to the other (algorithm
 * confusion). The secret must be
 * at least as long as the hash (32, 48 or 64 bytes, RFC 7518 section 3.2), and neither published key material in a
 * form a key is shared in (a PEM block, DER, an SSH public key, a JWK; a key's bare modulus or coordinate, base64url
 * text like any random secret, is not told apart) nor a pattern of at most 4 bytes repeated (white space around it
 * aside), nor white space alone.
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { createHmac, createPublicKey, createSecretKey, timingSafeEqual, X509Certificate } from "node:crypto"
import { checkedOnRead, isQuoted, list, literalList } from "../internal/config.js"
import * as MemoryAnswers from "../internal/memoryAnswers.js"
import * as TokenValidator from "../TokenValidator.js"

/**
 * @since 0.1.0
 * @category models
 * @example
 * ```ts
 * import * as SharedSecret from "effect-jwks/providers/SharedSecret"
 * import { randomBytes } from "node:crypto"
 *
 * // A test's secret, as long as the algorithm asks.
 * const algorithm: SharedSecret.Algorithm = "HS384"
 * const secret = randomBytes(SharedSecret.hashes[algorithm].minBytes)
 * const validator = SharedSecret.make({
 *   secret,
 *   algorithms: [algorithm],
 *   issuer: "https://auth.test",
 *   audience: "my-api"
 * })
 * ```
 */
export type Algorithm = "HS256" | "HS384" | "HS512"

/**
 * @since 0.1.0
 * @category models
 * @example
 * ```ts
 * import * as SharedSecret from "effect-jwks/providers/SharedSecret"
 *
 * const options: SharedSecret.Options = {
 *   secret: Buffer.from(process.env.JWT_SECRET_BASE64 ?? "", "base64"),
 *   algorithms: ["HS512"],
 *   issuer: "https://auth.example",
 *   audience: "my-api"
 * }
 * ```
 */
export interface Options extends Omit<TokenValidator.Options, "algorithms"> {
  /** The shared secret: text (its UTF-8 bytes are the key) or raw bytes. */
  readonly secret: Redacted.Redacted<string> | Uint8Array
  /** Default `["HS256"]`; HMAC algorithms only. */
  readonly algorithms?: ReadonlyArray<Algorithm> | undefined
}

/**
 * @since 0.1.0
 * @category defaults
 * @example
 * ```ts
 * import * as SharedSecret from "effect-jwks/providers/SharedSecret"
 *
 * console.log(SharedSecret.defaults.algorithms) // ["HS256"]
 * ```
 */
export const defaults = {
  algorithms: ["HS256"] as ReadonlyArray<Algorithm>
} as const

/**
 * The hash of each algorithm and the shortest secret it takes, in bytes.
 *
 * @since 0.1.0
 * @category models
 * @example
 * ```ts
 * import * as SharedSecret from "effect-jwks/providers/SharedSecret"
 * import { randomBytes } from "node:crypto"
 *
 * const secret = randomBytes(SharedSecret.hashes.HS512.minBytes) // 64 bytes, the least HS512 takes
 * ```
 */
export const hashes: { readonly [A in Algorithm]: { readonly hash: string; readonly minBytes: number } } = {
  HS256: { hash: "sha256", minBytes: 32 },
  HS384: { hash: "sha384", minBytes: 48 },
  HS512: { hash: "sha512", minBytes: 64 }
}

const isAlgorithm = (alg: unknown): alg is Algorithm => alg === "HS256" || alg === "HS384" || alg === "HS512"

const bad = (path: string, message: string) => ConfigError.InvalidData([path], message)

const secretBytes = (secret: Options["secret"]): Either.Either<Uint8Array<ArrayBuffer>, ConfigError.ConfigError> => {
  if (secret instanceof Uint8Array) return Either.right(new Uint8Array(secret))
  if (Redacted.isRedacted(secret)) {
    const value: unknown = Redacted.value(secret)
    if (typeof value === "string") return Either.right(new TextEncoder().encode(value) as Uint8Array<ArrayBuffer>)
  }
  return Either.left(bad("secret", "expected a Redacted string or a Uint8Array"))
}

/** Whether `parse` takes its input without throwing. */
const parses = (parse: () => unknown): boolean => {
  try {
    parse()
    return true
  } catch {
    return false
  }
}

/** Whether `der` is a public key (SPKI or PKCS #1) or an X.509 certificate. */
const isDerPublicKey = (der: Buffer): boolean =>
  parses(() => createPublicKey({ key: der, format: "der", type: "spki" })) ||
  parses(() => createPublicKey({ key: der, format: "der", type: "pkcs1" })) ||
  parses(() => new X509Certificate(der))

const isSpace = (c: number | undefined): boolean => c === 0x20 || (c !== undefined && c >= 0x09 && c <= 0x0d)
const isLowerAlnum = (c: number): boolean => (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39)
const isBase64Char = (c: number): boolean =>
  (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2b || c === 0x2f ||
  c === 0x2d || c === 0x5f || c === 0x3d

/**
 * Whether `view` from `start` is an OpenSSH public key: a key type (`ssh-ed25519`, `ecdsa-sha2-nistp256`,
 * `sk-ssh-ed25519@openssh.com`, a `-cert-v01@openssh.com` one), a space or tab, then the base64 of the key, which
 * starts with `AAAA` (the type's length). Matched byte by byte, without a copy.
 */
const isSshKeyAt = (view: Buffer, start: number): boolean => {
  let i = start
  while (i < view.length && (isLowerAlnum(view[i]!) || view[i] === 0x2d)) i++
  if (i === start || i - start > 64) return false
  if (view[i] === 0x40) { // "@domain"
    const domain = ++i
    while (i < view.length && (isLowerAlnum(view[i]!) || view[i] === 0x2d || view[i] === 0x2e)) i++
    if (i === domain) return false
  }
  const blanks = i
  while (view[i] === 0x20 || view[i] === 0x09) i++
  // Compared in place: an `indexOf` would search the rest of the secret from each of its blanks.
  if (i === blanks || view[i] !== 0x41 || view[i + 1] !== 0x41 || view[i + 2] !== 0x41 || view[i + 3] !== 0x41) {
    return false
  }
  // The key itself: 68 base64 characters for Ed25519's, the shortest (a passphrase's "word AAAA" is not one).
  let key = i
  while (key < view.length && isBase64Char(view[key]!)) key++
  return key - i >= 68
}

/**
 * Whether a line of `view` from `start` holds an OpenSSH public key, at its start or after a space or tab (an
 * `authorized_keys` line puts options first: `restrict,from="10.0.0.0/8" ssh-ed25519 AAAA...`; its file may begin
 * with `#` comments).
 */
const isSshKey = (view: Buffer, start: number): boolean => {
  let lineStart = true
  for (let i = start; i < view.length; i++) {
    const c = view[i]
    if (c === 0x0a || c === 0x0d) {
      lineStart = true
      continue
    }
    if ((lineStart || c === 0x20 || c === 0x09) && isSshKeyAt(view, lineStart && !isSpace(c) ? i : i + 1)) return true
    lineStart = false
  }
  return false
}

/**
 * Whether `view` from `start` to `end` is base64 or base64url text, padded or not, line breaks and spaces allowed
 * between (a PEM body without its armor), written as `\n` escapes too (one line of an env file), and how many
 * characters of the alphabet it has. Checked without a copy.
 */
const base64Length = (view: Buffer, start: number, end: number): number | undefined => {
  // Line breaks after the padding (a PEM body's last line), written as escapes too, are no part of it.
  for (;;) {
    if (end > start && isSpace(view[end - 1])) end--
    else if (end - 1 > start && view[end - 2] === 0x5c && (view[end - 1] === 0x6e || view[end - 1] === 0x72)) end -= 2
    else break
  }
  let padding = 0
  for (let i = end - 1; i >= start && view[i] === 0x3d && padding < 2; i--) padding++
  let count = 0
  for (let i = start; i < end - padding; i++) {
    const c = view[i]!
    if (isBase64Char(c) && c !== 0x3d) count++
    else if (c === 0x5c && (view[i + 1] === 0x6e || view[i + 1] === 0x72)) i++
    else if (!isSpace(c)) return undefined
  }
  return count
}

/** Whether `view[start..end)` is a DER public key or certificate written in base64 (see {@link base64Length}). */
const isBase64DerKey = (view: Buffer, start: number, end: number): boolean => {
  if ((base64Length(view, start, end) ?? 0) < 58) return false
  // Node's base64 decoder skips the line breaks; escaped ones are taken out first.
  const der = Buffer.from(view.toString("latin1", start, end).replace(/\\[nr]/g, ""), "base64")
  const isKey = isDerPublicKey(der)
  der.fill(0)
  return isKey
}

/**
 * The key material in a parsed JSON value, itself or found a few levels down (a set's `keys`, the array of keys
 * copied alone, a set under `jwks` as client metadata holds it, RFC 7591; a realm's `public_key`, as Keycloak's realm
 * endpoint answers): the `kty` values of its JWKs, and whether a string in it is a base64 DER key. The walk is bounded
 * by depth, and by a count of values far above any configuration's (the JSON has been parsed already: walking it costs
 * no more).
 */
const keyMaterialIn = (json: unknown): { readonly types: Set<unknown>; readonly der: boolean } => {
  const types = new Set<unknown>()
  let der = false
  let level: Array<unknown> = [json]
  let budget = 100_000
  for (let depth = 0; depth < 8 && level.length > 0; depth++) {
    const next: Array<unknown> = []
    for (let value of level) {
      if (budget-- <= 0) return { types, der }
      // JSON kept as a string inside JSON (a JWK stored double-encoded) is read too.
      if (typeof value === "string" && value.length <= 65_536 && /^\s*[[{]/.test(value)) {
        try {
          value = JSON.parse(value)
        } catch {
          continue
        }
      }
      if (typeof value === "string") {
        if (!der && value.length <= 65_536) {
          const text = Buffer.from(value, "latin1")
          der = isBase64DerKey(text, 0, text.length)
        }
        continue
      }
      if (typeof value !== "object" || value === null) continue
      if (!Array.isArray(value) && Object.hasOwn(value, "kty")) types.add((value as { readonly kty: unknown }).kty)
      for (const member of Array.isArray(value) ? value : Object.values(value)) {
        if (next.length >= budget) break
        next.push(member)
      }
    }
    level = next
  }
  return { types, der }
}

/**
 * The UTF-8 encodings of what JavaScript's `trim` removes beyond ASCII white space: the no-break space, the Unicode
 * spaces, the line and paragraph separators, and the byte order mark.
 */
const unicodeSpaces: ReadonlyArray<ReadonlyArray<number>> = [
  [0xc2, 0xa0],
  [0xe1, 0x9a, 0x80],
  ...Array.from({ length: 11 }, (_, i) => [0xe2, 0x80, 0x80 + i]),
  [0xe2, 0x80, 0xa8],
  [0xe2, 0x80, 0xa9],
  [0xe2, 0x80, 0xaf],
  [0xe2, 0x81, 0x9f],
  [0xe3, 0x80, 0x80],
  [0xef, 0xbb, 0xbf]
]

/** The length of the white space that starts at `at` (`forward`) or ends there, 0 if none. */
const spaceAt = (view: Uint8Array, at: number, forward: boolean): number => {
  if (isSpace(view[forward ? at : at - 1])) return 1
  for (const bytes of unicodeSpaces) {
    const from = forward ? at : at - bytes.length
    if (from >= 0 && bytes.every((byte, i) => view[from + i] === byte)) return bytes.length
  }
  return 0
}

/**
 * Whether `view[start..end)` is a pattern of at most 4 bytes repeated (a buffer never filled, `"ab"` over and over),
 * or nothing but white space (an empty range).
 */
const isRepeated = (view: Uint8Array, start: number, end: number): boolean => {
  for (let period = 1; period <= 4; period++) {
    let repeated = true
    for (let i = start + period; i < end && repeated; i++) repeated = view[i] === view[i - period]
    if (repeated) return true
  }
  return false
}

/**
 * Why `bytes` cannot be an HMAC secret, if it cannot: it is published key material (a PEM block, an SSH public key, a
 * JWK or JWK Set, alone or in JSON, a DER public key or certificate, or such DER in base64 text, as Keycloak shows a
 * realm's key or as a PEM body is without its armor; the text forms in quotes too), known to everyone, so that as an
 * HMAC key it lets anyone sign (RFC 8725, section 2.1), as when a setting that once held an IdP's public key moves to
 * `JWT_SECRET`; it is a symmetric JWK, whose secret is its `k`; or it is a pattern of at most 4 bytes repeated. Read
 * through a view of the bytes, not a copy (a small `Buffer` copy is cut from Node's shared pool, where zeroing the
 * secret after import would not reach it), except JSON and base64 text, read as text; a decoded copy is zeroed. Under
 * 58 characters of base64 hold no DER public key (the shortest, Ed25519's, 44 bytes, takes 59).
 */
const refusedSecret = (bytes: Uint8Array<ArrayBuffer>): string | undefined => {
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  // White space around it, as `trim` sees it: a UTF-8 byte order mark too (a file saved by an editor that writes one).
  let [start, end] = trimmed(view, 0, view.length)
  const refused = refusedText(view, start, end) ??
    (isDerPublicKey(view) ? published("a DER public key or certificate") : undefined) ??
    repeatedIn(view, start, end)
  if (refused !== undefined) return refused
  // The same text in quotes, as an env file read by a tool that keeps them hands it over (`docker --env-file` with
  // `JWT_SECRET="MIIBIjANBg..."`): an attacker with the public key guesses the quotes as easily.
  const quote = view[start]
  if (end - start >= 2 && (quote === 0x22 || quote === 0x27) && view[end - 1] === quote) {
    ;[start, end] = trimmed(view, start + 1, end - 1)
    return repeatedIn(view, start, end) ?? refusedText(view, start, end)
  }
  return undefined
}

/**
 * Not a measure of entropy (no test of bytes can tell a password from a random key), only the degenerate case: a
 * buffer never filled, a character or a few repeated, or white space alone, which anyone can guess (RFC 8725, section
 * 3.5).
 */
const repeatedIn = (view: Buffer, start: number, end: number): string | undefined =>
  view.length >= 32 && isRepeated(view, start, end)
    ? "the secret is a pattern of at most 4 bytes repeated: anyone could guess it"
    : undefined

const published = (kind: string) => `the secret is ${kind}: key material that is published, so anyone could sign`

/** `view[start..end)` without the white space around it, as `trim` sees it. */
const trimmed = (view: Buffer, start: number, end: number): readonly [number, number] => {
  for (let step; start < end && (step = spaceAt(view, start, true)) > 0;) start += step
  for (let step; end > start && (step = spaceAt(view, end, false)) > 0;) end -= step
  return [start, end]
}

/** Why the text `view[start..end)` is key material (see `refusedSecret`), if it is. */
const refusedText = (view: Buffer, start: number, end: number): string | undefined => {
  // PEM, and RFC 4716's SSH public key file (`ssh-keygen -e`), whose armor has four dashes.
  if (view.includes("-----BEGIN ", start, "latin1") || view.includes("---- BEGIN SSH2 PUBLIC KEY", start, "latin1")) {
    return published("a PEM block")
  }
  if (isSshKey(view, start)) return published("an SSH public key")
  // "{", "[" or a quote: JSON (or JSON kept as a JSON string), read as text.
  if (view[start] === 0x7b || view[start] === 0x5b || view[start] === 0x22) {
    let json: unknown
    try {
      json = JSON.parse(view.toString("utf8", start, end))
    } catch {
      json = undefined
    }
    const { der, types } = keyMaterialIn(json)
    if (types.has("oct")) return "the secret is a symmetric JWK: give its k, base64url-decoded, as the secret"
    const isSet = typeof json === "object" && json !== null && !Array.isArray(json) && Object.hasOwn(json, "keys")
    if (types.size > 0 || isSet) return published("a JWK")
    if (der) return published("JSON holding a DER public key or certificate in base64")
  }
  if (isBase64DerKey(view, start, end)) return published("a DER public key or certificate in base64")
  return undefined
}

/**
 * Checks the algorithms and the secret and imports the secret once, as a `node:crypto` secret `KeyObject`; HMACs are
 * compared in constant time. The raw copy is zeroed after import.
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * ```ts
 * import { Effect, Redacted } from "effect"
 * import * as SharedSecret from "effect-jwks/providers/SharedSecret"
 * import * as TokenValidator from "effect-jwks/TokenValidator"
 *
 * // What `make` does: the validator must allow the same HMAC algorithms as the resolver.
 * const program = Effect.gen(function*() {
 *   const algorithms = ["HS256"] as const
 *   const keys = yield* SharedSecret.keyResolver(Redacted.make("a secret of at least thirty-two bytes!"), algorithms)
 *   return yield* TokenValidator.make(keys, { issuer: "https://auth.example", audience: "my-api", algorithms })
 * })
 * ```
 */
export const keyResolver = (
  secret: Options["secret"],
  algorithms: ReadonlyArray<Algorithm> = defaults.algorithms
): Effect.Effect<TokenValidator.KeyResolver, ConfigError.ConfigError> =>
  Effect.flatMap(
    // Each run reads (and copies) the secret anew: one run's copy is zeroed when it is done.
    Effect.suspend(() => usableSecret(secret, algorithms)),
    (bytes) =>
      Effect.sync(() => resolverOf(bytes, new Set(algorithms))).pipe(Effect.ensuring(Effect.sync(() => bytes.fill(0))))
  )

/**
 * The secret's bytes, once the algorithms and the secret pass every check; a copy, for the caller to zero. A refused
 * secret's copy is zeroed here.
 */
const usableSecret = (
  secret: Options["secret"],
  algorithms: ReadonlyArray<Algorithm>
): Either.Either<Uint8Array<ArrayBuffer>, ConfigError.ConfigError> => {
  if (!Array.isArray(algorithms) || algorithms.length === 0) {
    return Either.left(bad("algorithms", "expected at least one of HS256, HS384, HS512"))
  }
  for (const alg of algorithms) {
    if (!isAlgorithm(alg)) {
      return Either.left(
        bad("algorithms", `a shared secret verifies HS256, HS384 or HS512 only, not ${String(alg).slice(0, 16)}`)
      )
    }
  }
  const read = secretBytes(secret)
  if (Either.isLeft(read)) return read
  const bytes = read.right
  let usable = false
  try {
    const refused = refusedSecret(bytes) ?? tooShort(bytes, algorithms)
    if (refused !== undefined) return Either.left(bad("secret", refused))
    usable = true
    return Either.right(bytes)
  } finally {
    if (!usable) bytes.fill(0)
  }
}

const tooShort = (bytes: Uint8Array, algorithms: ReadonlyArray<Algorithm>): string | undefined => {
  for (const alg of algorithms) {
    const { minBytes } = hashes[alg]
    if (bytes.length < minBytes) return `${alg} needs a secret of at least ${minBytes} bytes, got ${bytes.length}`
  }
  return undefined
}

const resolverOf = (bytes: Uint8Array<ArrayBuffer>, algorithms: ReadonlySet<Algorithm>): TokenValidator.KeyResolver => {
  const key = createSecretKey(bytes)
  const secret: TokenValidator.VerificationKey = {
    verify: (alg, data, signature) => {
      if (!algorithms.has(alg as Algorithm)) return false
      const expected = createHmac(hashes[alg as Algorithm].hash, key).update(data).digest()
      return expected.length === signature.length && timingSafeEqual(expected, signature)
    }
  }
  const found = Effect.succeed(Option.some(secret))
  const resolver: TokenValidator.KeyResolver = {
    get: () => found,
    recordSuccess: Effect.void,
    algorithms: Array.from(algorithms)
  }
  return MemoryAnswers.register(resolver, { get: () => secret, recordSuccess: () => true })
}

/**
 * Builds a validator for tokens signed with a shared secret. The issuer and audience are checked as
 * `TokenValidator` does (both required, unless `allowAnyAudience`).
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * ```ts
 * import { Effect, Redacted } from "effect"
 * import * as SharedSecret from "effect-jwks/providers/SharedSecret"
 *
 * const program = Effect.gen(function*() {
 *   const secret = Redacted.make("a secret of at least thirty-two bytes!")
 *   const validator = yield* SharedSecret.make({ secret, issuer: "https://auth.example", audience: "my-api" })
 *   return yield* validator.validate("eyJ...")
 * })
 * ```
 */
export const make = (options: Options): Effect.Effect<TokenValidator.Service, ConfigError.ConfigError> =>
  Effect.gen(function*() {
    const { secret, ...validator } = options
    const algorithms = options.algorithms ?? defaults.algorithms
    const keys = yield* keyResolver(secret, algorithms)
    return yield* TokenValidator.make(keys, { ...validator, algorithms })
  })

/**
 * The `TokenValidator` of a shared secret. It needs nothing: no `HttpClient`, no cache.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * ```ts
 * import { Redacted } from "effect"
 * import * as SharedSecret from "effect-jwks/providers/SharedSecret"
 *
 * const ValidatorLive = SharedSecret.layer({
 *   secret: Redacted.make(process.env.JWT_SECRET ?? ""),
 *   issuer: "https://auth.example",
 *   audience: "my-api"
 * })
 * ```
 */
export const layer = (options: Options): Layer.Layer<TokenValidator.TokenValidator, ConfigError.ConfigError> =>
  Layer.effect(TokenValidator.TokenValidator, make(options))

/**
 * The options from configuration (by default the environment): `JWT_SECRET` (read as a `Redacted`), `JWT_ISSUER`
 * and `JWT_AUDIENCE` (each comma-separated for several) are required; `JWT_ALGORITHMS` (comma-separated, of HS256,
 * HS384, HS512) is optional. Values are checked as they are read, a refused one named by its variable (`JWT_SECRET`, a
 * secret too short for an algorithm, say); so is what an env file's loader may leave around one (a CRLF file's `\r`,
 * the quotes `docker --env-file` keeps), which would be part of the key and refuse every token.
 *
 * @since 0.1.0
 * @category config
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import * as SharedSecret from "effect-jwks/providers/SharedSecret"
 * import * as TokenValidator from "effect-jwks/TokenValidator"
 * import * as Oidc from "effect-jwks/providers/Oidc"
 *
 * // Tokens of the app's own auth service, configured from the environment, next to those of an OIDC issuer.
 * const ValidatorLive = TokenValidator.layerMulti([
 *   Effect.flatMap(SharedSecret.config, SharedSecret.make),
 *   Oidc.make({ issuer: "https://idp.example/realms/main", audience: "my-api" })
 * ])
 * ```
 */
export const config: Config.Config<Options> = checkedOnRead(
  Config.all({
    secret: Config.redacted("JWT_SECRET"),
    issuer: list("JWT_ISSUER"),
    audience: list("JWT_AUDIENCE"),
    algorithms: Config.option(literalList("JWT_ALGORITHMS", ["HS256", "HS384", "HS512"] as const))
  }).pipe(
    Config.map((read): Options => ({
      secret: read.secret,
      issuer: read.issuer.length === 1 ? read.issuer[0]! : read.issuer,
      audience: read.audience,
      algorithms: Option.getOrUndefined(read.algorithms)
    }))
  ),
  { secret: ["JWT_SECRET"] },
  (options) =>
    Either.flatMap(
      envSecretQuirk(options.secret),
      () =>
        Either.map(usableSecret(options.secret, options.algorithms ?? defaults.algorithms), (bytes) => bytes.fill(0))
    )
)

/**
 * What an env file's loader may have left around a secret read from the environment: white space or a line break (a
 * `\r` from a file saved with CRLF endings), or the quotes of `JWT_SECRET="..."` (`docker --env-file` keeps them). Each
 * is part of the HMAC key as read, so every token would be refused; refused here instead, naming the variable. (Not
 * in `make`: a secret given in code is what the code says.)
 */
const envSecretQuirk = (secret: Options["secret"]): Either.Either<void, ConfigError.ConfigError> => {
  if (!Redacted.isRedacted(secret)) return Either.void
  const text: unknown = Redacted.value(secret)
  if (typeof text !== "string") return Either.void
  return text !== text.trim()
    ? Either.left(bad("secret", "the secret starts or ends with white space or a line break (a file saved with CRLF?)"))
    : isQuoted(text)
    ? Either.left(bad("secret", "the secret is wrapped in quotes (kept by the env file's loader?)"))
    : Either.void
}

/**
 * The `TokenValidator` of a shared secret, its options read through `Config` (by default {@link config}).
 *
 * @since 0.1.0
 * @category layers
 * @example
 * ```ts
 * import * as SharedSecret from "effect-jwks/providers/SharedSecret"
 *
 * // JWT_SECRET=... JWT_ISSUER=https://auth.example JWT_AUDIENCE=my-api JWT_ALGORITHMS=HS256,HS512
 * const ValidatorLive = SharedSecret.layerConfig()
 * ```
 */
export const layerConfig = (
  options: Config.Config.Wrap<Options> = config
): Layer.Layer<TokenValidator.TokenValidator, ConfigError.ConfigError> =>
  Layer.effect(TokenValidator.TokenValidator, Effect.flatMap(Config.unwrap(options), make))
