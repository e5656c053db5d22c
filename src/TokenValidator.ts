/**
 * The service apps call: `validate(token)` gives the `Principal` of a good token, a `TokenValidationError` (401) for
 * a bad one, or a `JwksError` (503) when no keys could be had to decide.
 *
 * The path of a token (`verify` below): size and shape checks, header checks (`alg` allow-list, `crit`), the key
 * from the cache by `kid` (`JwksCache.unsafeGet` while the set is fresh, else `JwksCache.get`; both end in
 * `Jwk.select`), the signature (`node:crypto`, through `Jwk.Key.verify`), the claims against the Effect `Clock`,
 * then the `Principal`. Nothing reaches a key or the network before the cheap checks pass. A token seen before
 * skips the signature and decoding while its key is still served (`tokenCache`). The token's parts (its shape, its
 * header and claims as JSON, the limits on them) are read by `internal/jws.ts`, which looks at no key.
 *
 * A validation that needs nothing but memory runs as plain synchronous code and returns an `Exit`; only a key
 * lookup that must wait, a custom check or a custom cache strategy builds effects. Callers outside Effect get the
 * same without a fiber through {@link toPromise}.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as DefaultServices from "effect/DefaultServices"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as FiberRef from "effect/FiberRef"
import * as FiberRefs from "effect/FiberRefs"
import * as Layer from "effect/Layer"
import type * as MetricLabel from "effect/MetricLabel"
import * as Micro from "effect/Micro"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as Runtime from "effect/Runtime"
import type * as Scope from "effect/Scope"
import * as Tracer from "effect/Tracer"
import { strings } from "./internal/claims.js"
import { decodeDuration } from "./internal/config.js"
import * as Jws from "./internal/jws.js"
import { Lru } from "./internal/lru.js"
import * as MemoryAnswers from "./internal/memoryAnswers.js"
import { printable, shownKid } from "./internal/printable.js"
import * as Jwk from "./Jwk.js"
import * as JwksCache from "./JwksCache.js"
import type { JwksError } from "./JwksError.js"
import * as JwksMetrics from "./JwksMetrics.js"
import { type Claims, Principal, type TokenType } from "./Principal.js"
import { TokenValidationError } from "./TokenValidationError.js"

/**
 * Every algorithm a validator may allow: those of key sets, plus the HMAC ones of a shared secret.
 *
 * @since 0.1.0
 * @category models
 * @example
 * ```ts
 * import * as TokenValidator from "effect-jwks/TokenValidator"
 *
 * // An IdP moving from RS256 to ES256: both, while tokens of the old key are still out.
 * const algorithms: ReadonlyArray<TokenValidator.SigningAlgorithm> = ["RS256", "ES256"]
 * const options: TokenValidator.Options = { issuer: "https://idp.example", audience: "my-api", algorithms }
 * ```
 */
export type SigningAlgorithm = Jwk.Algorithm | "HS256" | "HS384" | "HS512"

const knownAlgorithms: ReadonlySet<string> = new Set<SigningAlgorithm>([
  ...Jwk.Algorithm.literals,
  "HS256",
  "HS384",
  "HS512"
])

/**
 * A key that checks signatures: a `Jwk.Key`, or a shared secret.
 *
 * @since 0.1.0
 * @category models
 * @example
 * ```ts
 * import type * as TokenValidator from "effect-jwks/TokenValidator"
 * import { createPublicKey, verify } from "node:crypto"
 *
 * // One RSA public key of your own (from a PEM file), for RS256 only.
 * declare const pem: string
 * const publicKey = createPublicKey(pem)
 * const key: TokenValidator.VerificationKey = {
 *   verify: (alg, data, signature) => alg === "RS256" && verify("RSA-SHA256", data, publicKey, signature)
 * }
 * ```
 */
export interface VerificationKey {
  /** Whether `signature` is a valid JWS signature of `data` under `alg`; false for an alg the key does not do. */
  readonly verify: (alg: string, data: Uint8Array, signature: Uint8Array) => boolean
  /**
   * The issuer the key signs for, if it signs for one only: a token of another is refused as `IssuerMismatch`, however
   * its signature verifies (see `Jwk.signsFor`; the keys of a key set take it from their JWK's `issuer`).
   */
  readonly issuer?: string | undefined
}

/**
 * Where a validator gets its keys: a `JwksCache`, or a fixed key (a shared secret). The resolvers this library
 * builds (`fromCache`, the static and shared-secret providers) also answer from memory, so that a validation with a
 * fresh key set builds no effect; any other resolver, including one spread from ours, is asked through `get`, as is
 * one of ours whose `get` has been replaced in place (one whose `recordSuccess` alone has been replaced still answers
 * keys from memory, and runs that `recordSuccess`).
 *
 * @since 0.1.0
 * @category models
 * @example
 * ```ts
 * import { Effect, Option } from "effect"
 * import * as TokenValidator from "effect-jwks/TokenValidator"
 *
 * // One fixed key, whatever the token's kid.
 * declare const key: TokenValidator.VerificationKey
 * const keys: TokenValidator.KeyResolver = {
 *   get: (_kid, alg) => Effect.succeed(alg === "RS256" ? Option.some(key) : Option.none()),
 *   recordSuccess: Effect.void
 * }
 * const validator = TokenValidator.make(keys, { issuer: "https://idp.example", audience: "my-api" })
 * ```
 */
export interface KeyResolver {
  readonly get: (
    kid: string | undefined,
    alg: SigningAlgorithm
  ) => Effect.Effect<Option.Option<VerificationKey>, JwksError>
  /**
   * Called once per validation that passed every check, a remembered token's every use too (the cache's usage strategy
   * counts these).
   */
  readonly recordSuccess: Effect.Effect<void>
  /** What the key cache behind it is doing, if there is one. */
  readonly status?: Effect.Effect<JwksCache.Status> | undefined
  /**
   * The algorithms its keys can verify, if it knows them: {@link make} refuses a validator that allows another (as a
   * `ConfigError`). {@link multi} routes a token by the algorithms each validator allows, so one over a key set that
   * allowed `HS256` would take a shared secret's tokens, to refuse every one. Ours say: `fromCache` the cache's
   * `algorithms` option (every key-set algorithm by default), `Static.keyResolver` what its set's keys verify,
   * `SharedSecret.keyResolver` its HMAC algorithms. A resolver spread from one of ours keeps them: one of yours that
   * verifies others too (a secret of its own beside the cache) says so, or sets `undefined`.
   */
  readonly algorithms?: ReadonlyArray<SigningAlgorithm> | undefined
}

/**
 * Which issuers a validator accepts: one, a list, or a rule (multi-tenant issuers). A rule that reads the claims
 * should also say, with `accepts`, which `iss` values alone could be its own: {@link multi} routes a token by its
 * unverified `iss` before any claim is checked, and without `accepts` it asks `matches(iss, {})`.
 *
 * @since 0.1.0
 * @category models
 * @example
 * ```ts
 * import * as TokenValidator from "effect-jwks/TokenValidator"
 *
 * // One realm per tenant: the rule sees the (verified) claims too.
 * const issuer: TokenValidator.IssuerRule = {
 *   description: "https://idp.example/realms/<tenant>",
 *   matches: (iss, claims) => iss === `https://idp.example/realms/${String(claims.tenant)}`,
 *   accepts: (iss) => iss.startsWith("https://idp.example/realms/")
 * }
 * ```
 */
export type IssuerRule =
  | string
  | ReadonlyArray<string>
  | {
    readonly description: string
    readonly matches: (iss: string, claims: Claims) => boolean
    /** Whether a token with this `iss` could be one of ours, before its claims are verified. */
    readonly accepts?: ((iss: string) => boolean) | undefined
  }

/**
 * How claims become a `Principal`.
 *
 * @since 0.1.0
 * @category models
 * @example
 * ```ts
 * import * as TokenValidator from "effect-jwks/TokenValidator"
 *
 * // Keycloak with a "groups" mapper that writes `roles`: name from the e-mail address first.
 * const principal: TokenValidator.PrincipalClaims = { username: ["email", "preferred_username"], groups: "roles" }
 * ```
 */
export interface PrincipalClaims {
  /**
   * Tried in order for `name`; `email` is the last fallback. Default `preferred_username`, `username`, `name`. When the
   * token says its email is unverified (`email_verified: false`), neither `email` nor a claim holding that address
   * names the principal.
   */
  readonly username?: ReadonlyArray<string> | undefined
  /** Default `groups`. */
  readonly groups?: string | undefined
}

/**
 * @since 0.1.0
 * @category models
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import * as TokenValidator from "effect-jwks/TokenValidator"
 *
 * const options: TokenValidator.Options = {
 *   issuer: "https://idp.example/realms/main",
 *   audience: ["orders-api", "billing-api"],
 *   algorithms: ["RS256", "ES256"],
 *   leeway: "30 seconds",
 *   tokenTypes: ["access"],
 *   principal: { groups: "roles" },
 *   check: (claims) => claims.email_verified === true ? Effect.void : Effect.fail("the email is not verified")
 * }
 * ```
 */
export interface Options {
  /** Expected `iss`: one, a list, or a rule (multi-tenant issuers), compared exactly. Required. */
  readonly issuer: IssuerRule
  /**
   * Expected audience: the token's `aud` (string or array) must contain one of these; a token without `aud` is
   * matched on `client_id`, then `azp`. Required unless `allowAnyAudience` is set.
   */
  readonly audience?: string | ReadonlyArray<string> | undefined
  /** Skips the audience check when no `audience` is given. An explicit loosening: prefer naming the audience. */
  readonly allowAnyAudience?: boolean | undefined
  /** The allowed `alg` values. Default `["RS256"]`. `none` is never allowed. */
  readonly algorithms?: ReadonlyArray<SigningAlgorithm> | undefined
  /** Tolerated clock skew for `exp`, `nbf` and `iat`. Default 0. */
  readonly leeway?: Duration.DurationInput | undefined
  /** Longer tokens are refused before any other work. Default 16 KiB. */
  readonly maxTokenBytes?: number | undefined
  /** Claims that must be present (`exp` always is), whatever their value (`null` too): check values in `check`. */
  readonly requiredClaims?: ReadonlyArray<string> | undefined
  /** Accept only these token types (refresh tokens are refused whatever this says). Default: any other. */
  readonly tokenTypes?: ReadonlyArray<"id" | "access" | "unknown"> | undefined
  /**
   * Header `typ` values to accept (compared without case, with or without `application/`): an explicit loosening. By
   * default a token whose `typ` names another kind of JWT (`logout+jwt`, `secevent+jwt`, `dpop+jwt`, ...) is refused
   * as `TokenType`, whatever its claims: list one for an IdP that marks its access tokens with a type of its own. So
   * is a token with an `events` claim (a security event or a logout token, which may be typed just `JWT`), a `typ`
   * claim of `Logout` (Keycloak's) or an SD-JWT's digests (or `_sd_alg`), unless its header `typ` is listed here: a
   * back-channel logout endpoint lists the type its IdP gives logout tokens (`logout+jwt`; `JWT` for Keycloak before
   * 25, `at+jwt` for Duende IdentityServer 6), which lets such tokens of that type in.
   */
  readonly acceptTyp?: ReadonlyArray<string> | undefined
  /**
   * Accept tokens bound to a key of their holder (a `cnf` claim: DPoP, RFC 9449; a client certificate, RFC 8705) as
   * plain bearer tokens. By default they are refused as `TokenType`: this library does not check the proof of
   * possession that such a token is only good with, so accepting one would let whoever copied it use it. An explicit
   * loosening, for an app that checks the binding itself (in `check`, or before).
   */
  readonly allowBoundTokens?: boolean | undefined
  /**
   * A last check of your own on the verified claims. A failure refuses the token: a description becomes a
   * `CustomCheck` error, a `TokenValidationError` (for a more precise reason) is kept as it is. A check that answers
   * at once (`Effect.void`, `Effect.fail` of a description, any `Exit`) is decided without running an effect:
   * `toPromise` then needs no fiber for it. (`Effect.fail` of an object, a `TokenValidationError`, is an effect that
   * runs: `Exit.fail(error)` is decided at once.)
   */
  readonly check?: ((claims: Claims, header: Header) => Effect.Effect<void, string | TokenValidationError>) | undefined
  readonly principal?: PrincipalClaims | undefined
  /**
   * How many verified tokens to remember, so that a token seen again skips its signature check and decoding. Its
   * key must still be the one the cache serves for it, and the time checks, the custom check and the usage count
   * run again on every use. Default 1000; 0 turns it off.
   */
  readonly tokenCache?: number | undefined
}

/**
 * @since 0.1.0
 * @category defaults
 * @example
 * ```ts
 * import * as TokenValidator from "effect-jwks/TokenValidator"
 *
 * console.log(TokenValidator.defaults.maxTokenBytes) // 16384: longer tokens are refused as TooLarge
 * ```
 */
export const defaults = {
  algorithms: ["RS256"] as ReadonlyArray<SigningAlgorithm>,
  leeway: Duration.zero,
  maxTokenBytes: 16 * 1024,
  tokenCache: 1000,
  username: ["preferred_username", "username", "name"] as ReadonlyArray<string>,
  groups: "groups"
} as const

/**
 * The protected header of a token, as checked before any key is looked up.
 *
 * @since 0.1.0
 * @category schemas
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import type * as TokenValidator from "effect-jwks/TokenValidator"
 *
 * // A `check` hook that accepts RFC 9068 access tokens only, by the header's `typ`.
 * const check = (_claims: unknown, header: TokenValidator.Header) =>
 *   header.typ?.toLowerCase() === "at+jwt" ? Effect.void : Effect.fail("expected an at+jwt token")
 * const options: TokenValidator.Options = { issuer: "https://idp.example", audience: "my-api", check }
 * ```
 */
export const Header = Jws.Header

/**
 * @since 0.1.0
 * @category models
 */
export type Header = typeof Header.Type

/**
 * The registered claims this library reads, each checked for its type; any other claim passes through.
 *
 * @since 0.1.0
 * @category schemas
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import * as TokenValidator from "effect-jwks/TokenValidator"
 *
 * // Claims from elsewhere (an introspection answer), checked with the types applied to tokens.
 * declare const introspected: unknown
 * const decode = Schema.decodeUnknownSync(TokenValidator.RegisteredClaims)
 * const claims: TokenValidator.RegisteredClaims = decode(introspected)
 * const expiresAt = claims.exp === undefined ? undefined : new Date(claims.exp * 1000)
 * ```
 */
export const RegisteredClaims = Jws.RegisteredClaims

/**
 * @since 0.1.0
 * @category models
 */
export type RegisteredClaims = typeof RegisteredClaims.Type

/**
 * A validator. To wrap `validate` (a deny list by `jti`, say), build a new service (`{ ...validator, validate }`), or
 * put it in place: `toPromise` and `multi` run the `validate` a validator has when called. (A copy in `multi` has the
 * router's size cap of 64 KiB before its own, where one built by `make` has its own `maxTokenBytes` there too.)
 *
 * @since 0.1.0
 * @category models
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import type * as TokenValidator from "effect-jwks/TokenValidator"
 *
 * // Any validator, with each refusal logged.
 * const logged = (validator: TokenValidator.Service): TokenValidator.Service => ({
 *   ...validator,
 *   validate: (token) =>
 *     Effect.tapError(validator.validate(token), (e) => Effect.logInfo(`token refused: ${e._tag} ${e.reason}`))
 * })
 * ```
 */
export interface Service {
  readonly validate: (token: string) => Effect.Effect<Principal, TokenValidationError | JwksError>
  /** Whether this validator is the one for tokens from `iss` (multi-issuer routing). */
  readonly acceptsIssuer: (iss: string) => boolean
  /** The status of every key cache behind this validator (none for a shared secret or a static set). */
  readonly keyStatus: Effect.Effect<ReadonlyArray<JwksCache.Status>>
}

/**
 * @since 0.1.0
 * @category tags
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import * as TokenValidator from "effect-jwks/TokenValidator"
 *
 * declare const validator: TokenValidator.Service // from a provider's `make`, say
 * const ValidatorLive = Layer.succeed(TokenValidator.TokenValidator, validator)
 * const staleCaches = Effect.flatMap(TokenValidator.TokenValidator, (v) => v.keyStatus).pipe(
 *   Effect.map((statuses) => statuses.filter((status) => status.servingStale).length)
 * )
 * ```
 */
export class TokenValidator extends Context.Tag("effect-jwks/TokenValidator")<TokenValidator, Service>() {}

/**
 * Validates a token with the `TokenValidator` in context.
 *
 * @since 0.1.0
 * @category accessors
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import * as TokenValidator from "effect-jwks/TokenValidator"
 *
 * const program = TokenValidator.validate("eyJ...").pipe(
 *   Effect.map((principal) => principal.id),
 *   Effect.catchTags({
 *     TokenValidationError: (e) => Effect.succeed(`401 ${e.reason}`),
 *     JwksError: (e) => Effect.succeed(`503 ${e.reason}`)
 *   })
 * )
 * ```
 */
export const validate = (
  token: string
): Effect.Effect<Principal, TokenValidationError | JwksError, TokenValidator> =>
  Effect.flatMap(TokenValidator, (validator) => validator.validate(token))

// The fields are ours and well-typed, so the constructor's schema check is skipped: it cost ~45 µs a refusal
// (measured in bench/heap.ts), which a stream of junk tokens would pay in full.
const refusal = (reason: TokenValidationError["reason"], description: string, cause?: unknown) =>
  new TokenValidationError(cause === undefined ? { reason, description } : { reason, description, cause }, true)

/** A refusal, decided at once (an `Exit` is an effect that has already run). */
const fail = (reason: TokenValidationError["reason"], description: string): Exit.Exit<never, TokenValidationError> =>
  Exit.fail(refusal(reason, description))

type Outcome<A> = Effect.Effect<A, TokenValidationError | JwksError>

const isDecided = <A>(self: Outcome<A>): self is Exit.Exit<A, TokenValidationError | JwksError> => Exit.isExit(self)

/**
 * `Effect.flatMap`, except that an outcome already decided (an `Exit`) is continued at once. A validation that needs
 * nothing but memory (a fresh key set, no custom check) is then plain synchronous code from end to end: on Node such
 * a validation costs less than the effects it would otherwise build (see `bench/breakdown.ts`).
 */
const andThen = <A, B>(self: Outcome<A>, f: (a: A) => Outcome<B>): Outcome<B> =>
  isDecided(self) ? Exit.match(self, { onFailure: Exit.failCause, onSuccess: f }) : Effect.flatMap(self, f)

const checkFailure = (failure: string | TokenValidationError): TokenValidationError =>
  typeof failure === "string" ? new TokenValidationError({ reason: "CustomCheck", description: failure }) : failure

/**
 * The outcome of a `check` hook, decided at once when the hook answered with an `Exit` (`Effect.void` is one). A
 * `Micro` result looks like an `Exit` but is not one: it runs as an effect.
 */
const customCheck = (result: Effect.Effect<void, string | TokenValidationError>): Outcome<void> =>
  Exit.isExit(result) && !Micro.isMicro(result)
    ? Exit.mapError(result as Exit.Exit<void, string | TokenValidationError>, checkFailure)
    : Effect.mapError(result, checkFailure)

/** A token that passed every check once, and what it took to check it. */
interface Verified {
  readonly token: string
  readonly key: VerificationKey
  readonly header: Header
  readonly claims: RegisteredClaims
  readonly principal: Principal
}

/**
 * Where the verified-token cache files a token: the end of its signature (about 140 bits, that two signed tokens share
 * only by a chance too small to count; they would take turns in one slot). What a slot holds counts for a token only
 * if it is that very token. Hashing the whole token instead (a new string from every request, never hashed before)
 * cost about 1 µs for an RS256 token, more than half of what a remembered token's validation costs with this.
 */
const slotOf = (token: string): string => token.slice(-24)

/**
 * Reads a token's header without verifying anything: for routing and diagnostics only, never for a decision. A header
 * a validator refuses unread (more than 64 objects, lists, `:` and `,`: about 32 members) is none here too.
 *
 * @since 0.1.0
 * @category utils
 * @example
 * ```ts
 * import { Effect, Option } from "effect"
 * import * as TokenValidator from "effect-jwks/TokenValidator"
 *
 * declare const token: string
 * const kid = Option.flatMapNullable(TokenValidator.peekHeader(token), (header) => header.kid)
 * // For a log line only: nothing in the header is verified.
 * const logRefusal = Effect.logInfo("token refused").pipe(Effect.annotateLogs("kid", Option.getOrElse(kid, () => "-")))
 * ```
 */
export const peekHeader = (token: string): Option.Option<Header> => {
  if (typeof token !== "string") return Option.none()
  const dot = token.indexOf(".")
  return dot <= 0 ? Option.none() : Option.fromNullable(Jws.headerOf(token.slice(0, dot)))
}

/**
 * Reads a token's claims without verifying anything: for routing (`iss`) and diagnostics only. Claims of more than
 * 1,000 objects and lists are none, unread, as `multi` refuses them.
 *
 * @since 0.1.0
 * @category utils
 * @example
 * ```ts
 * import { Option } from "effect"
 * import * as TokenValidator from "effect-jwks/TokenValidator"
 *
 * declare const token: string
 * declare const validators: ReadonlyMap<string, TokenValidator.Service> // by issuer
 * const validator = TokenValidator.peekClaims(token).pipe(
 *   Option.flatMapNullable((claims) => claims.iss),
 *   Option.flatMapNullable((iss) => validators.get(iss))
 * )
 * ```
 */
export const peekClaims = (token: string): Option.Option<RegisteredClaims> => {
  // A header that was not there (`undefined`, from JavaScript) is no token, not a TypeError.
  return typeof token === "string" ? Option.fromNullable(Jws.claimsOf(token)) : Option.none()
}

/**
 * Whether an `events` claim is a security event's: a JSON object (RFC 8417, section 2.2), or one written as a JSON
 * string, as Sign in with Apple's server-to-server notifications carry it. An app's own claim of that name of another
 * shape (a list, say) is not.
 */
const isEventsClaim = (events: unknown): boolean => {
  if (typeof events === "string") {
    if (!events.trimStart().startsWith("{")) return false
    try {
      events = JSON.parse(events)
    } catch {
      return false
    }
  }
  return Predicate.isObject(events) && !Array.isArray(events)
}

/**
 * Whether claims hold an SD-JWT's digests below their top level (RFC 9901, sections 4.2.4.1 and 4.2.4.2): an `_sd` list
 * in a nested object, or a `{"...": digest}` item in a list. One pass over the containers, without recursion (the
 * claims' size is capped, their depth is not).
 */
const holdsDisclosures = (claims: Readonly<Record<string, unknown>>): boolean => {
  const pending: Array<unknown> = [claims]
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    if (Array.isArray(next)) {
      for (const item of next) {
        if (typeof item !== "object" || item === null) continue
        if (!Array.isArray(item) && Object.hasOwn(item, "...")) return true
        pending.push(item)
      }
    } else {
      const members = next as Readonly<Record<string, unknown>>
      if (next !== claims && Array.isArray(members._sd)) return true
      for (const key in members) {
        const member = members[key]
        if (typeof member === "object" && member !== null) pending.push(member)
      }
    }
  }
  return false
}

/**
 * A header `typ` as the media type it names (RFC 7515, section 4.1.9): in lower case, without the optional
 * `application/`, its parameters (`; charset=...`) or the white space around it, so that `dpop+jwt;v=1` is a DPoP
 * proof as `dpop+jwt` is.
 */
const mediaType = (typ: string): string => {
  const semicolon = typ.indexOf(";")
  const lower = (semicolon === -1 ? typ : typ.slice(0, semicolon)).trim().toLowerCase()
  return lower.startsWith("application/") ? lower.slice("application/".length) : lower
}

/**
 * What kind of token the claims describe: a refresh token when anything says so (a `token_use` of `refresh`, a `typ`
 * claim of `Refresh` or `Offline`, a `token_type` (Django REST framework Simple JWT) or `type` (Flask-JWT-Extended) of
 * `refresh`, a `tokenName` (ForgeRock / PingAM) of `refresh_token`, a `tokenType` (Casdoor) of `refresh-token`, in any
 * case), whatever else does; else a `token_use` of `id` or `access` (Cognito), else a `typ` of `at+jwt` (RFC 9068) or
 * `id_token+jwt`, or a `typ` claim (Keycloak's `Bearer` / `ID`), a `token_type` or `type` of `access` (or Casdoor's
 * `tokenType` of `access-token`), else `nonce` or `at_hash` mean an id token and `scope`, `scp`, `client_id`, an
 * `idtyp` of `app`, Entra ID's `azpacr` / `appidacr` or Auth0's `gty` of `client-credentials` an access token.
 *
 * @since 0.1.0
 * @category utils
 * @example
 * ```ts
 * import * as TokenValidator from "effect-jwks/TokenValidator"
 *
 * TokenValidator.classify({ token_use: "id" }, { alg: "RS256" }) // "id"
 * TokenValidator.classify({ scope: "read" }, { alg: "RS256", typ: "at+jwt" }) // "access"
 * TokenValidator.classify({ typ: "Refresh" }, { alg: "RS256" }) // "refresh"
 * ```
 */
export const classify = (claims: Claims, header: Header): TokenType => {
  const use = claims.token_use
  const claimTyp = lowerCase(claims.typ)
  // An app's own auth service's marker: Django REST framework Simple JWT's `token_type`, Flask-JWT-Extended's `type`.
  const tokenType = lowerCase(claims.token_type)
  const type = lowerCase(claims.type)
  // Casdoor's `tokenType`.
  const casdoorType = lowerCase(claims.tokenType)
  // A refresh token is never a bearer credential: a marker of one decides, whatever another says, in any case.
  // (ForgeRock / PingAM name their client-based tokens in `tokenName`.)
  if (
    lowerCase(use) === "refresh" || claimTyp === "refresh" || claimTyp === "offline" || tokenType === "refresh" ||
    type === "refresh" || lowerCase(claims.tokenName) === "refresh_token" || casdoorType === "refresh-token"
  ) return "refresh"
  if (use === "id" || use === "access") return use
  if (header.typ !== undefined) {
    const typ = mediaType(header.typ)
    if (typ === "at+jwt") return "access"
    // Not registered, but what an IdP that types its id tokens explicitly (Connect2id) writes.
    if (typ === "id_token+jwt") return "id"
  }
  if (claimTyp === "id") return "id"
  if (claimTyp === "bearer" || tokenType === "access" || type === "access" || casdoorType === "access-token") {
    return "access"
  }
  if (claims.nonce !== undefined || claims.at_hash !== undefined) return "id"
  // `azpacr` / `appidacr` (how the client authenticated): in Entra ID's access tokens only, app-only ones included; a
  // `gty` of `client-credentials`: Auth0's machine tokens, which carry no `scope` when the grant lists no permission.
  if (
    claims.scope !== undefined || claims.scp !== undefined || claims.client_id !== undefined ||
    claims.idtyp === "app" || claims.azpacr !== undefined || claims.appidacr !== undefined ||
    claims.gty === "client-credentials"
  ) return "access"
  return "unknown"
}

const lowerCase = (value: unknown): string | undefined => typeof value === "string" ? value.toLowerCase() : undefined

/**
 * A claim's names (groups, scopes): a string, or the strings of an array, empty ones left out (a name nobody can hold:
 * a guard given `""`, from configuration left unset, must not match). `spaced`: a string holds several, separated by
 * spaces (`scope`, RFC 8693 section 4.2; Entra's `scp`). Anything else: none.
 */
const namesOf = (value: unknown, spaced: boolean): ReadonlyArray<string> | undefined =>
  typeof value === "string"
    ? (spaced ? value.split(" ") : [value]).filter((name) => name.length > 0)
    : Array.isArray(value)
    ? value.filter((item): item is string => typeof item === "string" && item.length > 0)
    : undefined

const stringClaim = (value: unknown): string | undefined => typeof value === "string" ? value : undefined

/** The first of `names` whose claim is a non-empty string, other than `except` (compared without case). */
const firstString = (claims: Claims, names: ReadonlyArray<string>, except?: string): string | undefined => {
  for (const name of names) {
    const value = claims[name]
    if (typeof value === "string" && value.length > 0 && (except === undefined || value.toLowerCase() !== except)) {
      return value
    }
  }
  return undefined
}

const toPrincipal = (
  claims: RegisteredClaims,
  tokenType: TokenType,
  usernameClaims: ReadonlyArray<string>,
  groupsClaim: string
): Principal => {
  const clientId = claims.client_id ?? claims.azp ?? stringClaim(claims.appid) ?? stringClaim(claims.cid)
  // An address the token says was not verified (self sign-up: anyone may have typed it) is not shown as the
  // principal's: an app that links accounts by it would hand them over. (Cognito has sent the flag as a string.)
  const unverified = claims.email_verified === false ||
    (typeof claims.email_verified === "string" && claims.email_verified.toLowerCase() === "false")
  const email = typeof claims.email === "string" && !unverified ? claims.email : undefined
  // `scope` first, as a string or (Duende IdentityServer, Spring Authorization Server) an array; else `scp`.
  const scopes = namesOf(claims.scope, true) ?? namesOf(claims.scp, true) ?? []
  const isMachine = claims.idtyp === "app" || claims.gty === "client-credentials" ||
    // A token of no known kind whose subject is its client: a service account's identity token (Google's, for Pub/Sub
    // push or Cloud Run).
    (tokenType === "unknown" && clientId !== undefined && claims.sub === clientId) ||
    (tokenType === "access" && (
      (clientId !== undefined && (claims.sub === undefined || claims.sub === clientId)) ||
      // Entra ID, without its optional `idtyp`: an app's token has no `scp`, and its `sub` is its service principal's.
      (claims.scp === undefined && typeof claims.oid === "string" && claims.sub === claims.oid)
    ))
  // Its lists frozen: a remembered token's later uses share them (see `reuse`).
  return new Principal({
    id: claims.sub ?? clientId ?? "",
    // Nor by a username claim the app named `email`, when unverified (the docs' Keycloak example names it first), nor
    // by one that holds that address (Keycloak's "email as username", with self sign-up).
    name: unverified
      ? firstString(
        claims,
        usernameClaims.filter((name) => name !== "email"),
        typeof claims.email === "string" ? claims.email.toLowerCase() : undefined
      )
      : firstString(claims, usernameClaims) ?? email,
    email,
    groups: Object.freeze(namesOf(claims[groupsClaim], false) ?? []),
    scopes: Object.freeze(scopes),
    tokenType,
    clientId,
    isMachine,
    issuer: claims.iss ?? "",
    expiresAt: new Date((claims.exp ?? 0) * 1000),
    claims
  })
}

/**
 * A copy of a remembered token's `Principal` for one use: its frozen lists and claims shared, the object and its
 * `expiresAt` its own, so that no caller can change what a later one sees. (The object itself is not frozen: it is
 * this caller's alone.)
 */
const reuse = (principal: Principal): Principal => {
  // Its own fields copied straight from the one remembered (no object spread in between: this runs on every use).
  const copy = new Principal(principal)
  ;(copy as { expiresAt: Date }).expiresAt = new Date(principal.expiresAt.getTime())
  return copy
}

const issuerMatcher = (rule: IssuerRule): {
  readonly matches: (iss: string, claims: Claims) => boolean
  readonly accepts: (iss: string) => boolean
  readonly description: string
} => {
  if (typeof rule === "string") {
    const matches = (iss: string) => iss === rule
    return { matches, accepts: matches, description: rule }
  }
  if ("matches" in rule) {
    const accepts = rule.accepts === undefined
      ? (iss: string) => rule.matches(iss, {})
      : (iss: string) => rule.accepts!(iss)
    return { matches: (iss, claims) => rule.matches(iss, claims), accepts, description: rule.description }
  }
  const list = rule as ReadonlyArray<string>
  const matches = (iss: string) => list.includes(iss)
  return { matches, accepts: matches, description: list.join(", ") }
}

const isRule = (rule: Record<string, unknown>): boolean =>
  typeof rule.matches === "function" && typeof rule.description === "string" &&
  (rule.accepts === undefined || typeof rule.accepts === "function")

/**
 * Checks the options: an issuer, an audience (or `allowAnyAudience`), known algorithms without `none`, a positive
 * size cap, a leeway of zero or more, and each other option of its type. A bad option is a `ConfigError` naming it.
 * `make` runs it; providers run it before they start a cache.
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * ```ts
 * import { Either } from "effect"
 * import * as TokenValidator from "effect-jwks/TokenValidator"
 *
 * const checked = TokenValidator.checkOptions({ issuer: "https://idp.example", algorithms: ["RS256"] })
 * Either.isLeft(checked) // true: no audience, and allowAnyAudience is not set
 * ```
 */
export const checkOptions = (options: Options): Either.Either<void, ConfigError.ConfigError> => {
  const bad = (path: string, message: string) => Either.left(ConfigError.InvalidData([path], message))
  if (typeof options.issuer === "string" ? options.issuer.length === 0 : false) {
    return bad("issuer", "expected the issuer's URL")
  }
  if (Array.isArray(options.issuer)) {
    if (options.issuer.length === 0) return bad("issuer", "expected at least one issuer")
    if (!options.issuer.every((iss) => typeof iss === "string" && iss.length > 0)) {
      return bad("issuer", "expected issuer URLs")
    }
  } else if (
    typeof options.issuer !== "string" &&
    !(Predicate.isObject(options.issuer) && isRule(options.issuer as Record<string, unknown>))
  ) {
    return bad("issuer", "expected the issuer's URL, a list of them, or a rule with matches")
  }
  const audiences = options.audience === undefined
    ? []
    : typeof options.audience === "string"
    ? [options.audience]
    : options.audience
  // An empty name (an unset variable, say) would accept tokens with an empty `aud`, `client_id` or `azp`.
  if (!Array.isArray(audiences) || !audiences.every(isNonEmptyString)) {
    return bad("audience", "expected audience names, none of them empty")
  }
  if (audiences.length === 0 && options.allowAnyAudience !== true) {
    return bad("audience", "expected an audience (or allowAnyAudience: true to skip the check)")
  }
  const algorithms = options.algorithms ?? defaults.algorithms
  if (!Array.isArray(algorithms) || algorithms.length === 0) return bad("algorithms", "expected at least one algorithm")
  for (const alg of algorithms) {
    if (!knownAlgorithms.has(alg)) return bad("algorithms", `unknown or forbidden algorithm ${alg}`)
  }
  const maxTokenBytes = options.maxTokenBytes ?? defaults.maxTokenBytes
  if (!Number.isSafeInteger(maxTokenBytes) || maxTokenBytes < 1) {
    return bad("maxTokenBytes", "expected a whole number of at least 1")
  }
  const tokenCache = options.tokenCache ?? defaults.tokenCache
  if (!Number.isSafeInteger(tokenCache) || tokenCache < 0) {
    return bad("tokenCache", "expected a whole number of entries, 0 to turn it off")
  }
  // Duration.decode reads a negative or NaN leeway as zero, which would hide the mistake: refused.
  const leeway = options.leeway === undefined ? Option.some(Duration.zero) : decodeDuration(options.leeway)
  if (Option.isNone(leeway) || !Duration.isFinite(leeway.value)) {
    return bad("leeway", "expected a finite duration of zero or more")
  }
  // The options read on every token: of the wrong type (null from parsed JSON, a lone string), each would be a
  // defect or a misreading on every validation instead of one error at start-up.
  if (options.tokenTypes !== undefined) {
    if (!Array.isArray(options.tokenTypes) || options.tokenTypes.length === 0) {
      return bad("tokenTypes", "expected a list of at least one of id, access, unknown")
    }
    if (!options.tokenTypes.every((type) => type === "id" || type === "access" || type === "unknown")) {
      return bad("tokenTypes", "expected some of id, access, unknown (refresh tokens are never accepted)")
    }
  }
  if (options.requiredClaims !== undefined && !isListOf(options.requiredClaims, isNonEmptyString)) {
    return bad("requiredClaims", "expected a list of claim names")
  }
  if (options.acceptTyp !== undefined && !isListOf(options.acceptTyp, isNonEmptyString)) {
    return bad("acceptTyp", "expected a list of typ values")
  }
  if (options.allowBoundTokens !== undefined && typeof options.allowBoundTokens !== "boolean") {
    return bad("allowBoundTokens", "expected true or false")
  }
  if (options.check !== undefined && typeof options.check !== "function") {
    return bad("check", "expected a function from the claims to an effect")
  }
  if (options.principal !== undefined) {
    if (!Predicate.isObject(options.principal)) return bad("principal", "expected { username?, groups? }")
    const { groups, username } = options.principal
    if (username !== undefined && !isListOf(username, isNonEmptyString)) {
      return bad("principal", "expected username to be a list of claim names")
    }
    if (groups !== undefined && !isNonEmptyString(groups)) {
      return bad("principal", "expected groups to be a claim name")
    }
  }
  return Either.void
}

const isNonEmptyString = (value: unknown): value is string => typeof value === "string" && value.length > 0
const isListOf = (value: unknown, item: (value: unknown) => boolean): boolean =>
  Array.isArray(value) && value.every(item)

/**
 * The measured validation of each validator built by `make` (or `multi`), run outside any fiber by {@link toPromise},
 * with the `validate` it stands for: while the validator's `validate` is another (an app's put in place: a spy, a deny
 * list), that one is run instead.
 */
const measuredOf = new WeakMap<Service, {
  readonly validate: Service["validate"]
  readonly measured: (
    token: string,
    clock: Clock.Clock,
    labels: ReadonlyArray<MetricLabel.MetricLabel>
  ) => Outcome<Principal>
}>()

/** The size cap of each validator built by `make` (or `multi`), for {@link multi} to apply before it routes. */
const maxTokenBytesOf = new WeakMap<Service, number>()

/**
 * Whether a validator built by `make` (or `multi`) allows `alg` for a token of `iss`, by its `acceptsIssuer`: a copy
 * with a `validate` of the app's (a deny list) keeps it, so `multi` routes a token its issuer shares by its `alg`
 * through the copy too.
 */
const allowsOf = new WeakMap<Service["acceptsIssuer"], (iss: string, alg: string) => boolean>()

/**
 * The status effect of the key resolver behind each validator's `keyStatus` (a cache's own `status`), so that `multi`
 * reports a cache two validators share once. By `keyStatus`, which a copy of a validator keeps.
 */
const cacheStatusOf = new WeakMap<Service["keyStatus"], unknown>()

/** The validators under each `multi`, inner ones opened (see `multi`). */
const leavesOf = new WeakMap<Service, ReadonlyArray<Service>>()

/** Whether `validator` allows `alg` for a token of `iss`: one whose algorithms are not known may allow any. */
const allows = (validator: Service, iss: string, alg: string): boolean =>
  allowsOf.get(validator.acceptsIssuer)?.(iss, alg) ?? true

/** How many distinct headers a validator keeps decoded. */
const headerCacheSize = 64

/** Effect's built-in tracer: it keeps spans in memory for the fiber and exports none. */
const builtInTracer = Context.get(DefaultServices.liveServices, Tracer.Tracer)

/**
 * Whether a validation gets its span: tracing is on and a tracer other than the built-in one is installed (an
 * OpenTelemetry one, say). A span costs about a third of an RS256 check (`bench/breakdown.ts`), too much to pay for
 * one that nothing exports.
 */
const isTraced = (tracer: Tracer.Tracer, enabled: boolean): boolean => enabled && tracer !== builtInTracer

/**
 * Builds a validator over any key resolver (usually a `JwksCache`, through {@link fromCache}).
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import * as JwksCache from "effect-jwks/JwksCache"
 * import * as TokenValidator from "effect-jwks/TokenValidator"
 *
 * const program = Effect.gen(function*() {
 *   const keys = TokenValidator.fromCache(yield* JwksCache.JwksCache)
 *   const validator = yield* TokenValidator.make(keys, { issuer: "https://idp.example", audience: "my-api" })
 *   return yield* validator.validate("eyJ...")
 * })
 * ```
 */
export const make = (
  keys: KeyResolver,
  options: Options
): Effect.Effect<Service, ConfigError.ConfigError> =>
  Effect.map(Either.flatMap(checkOptions(options), () => verifiable(keys, options)), () => unsafeMake(keys, options))

/** Refuses a validator that allows an algorithm its keys cannot verify, when they say which they can. */
const verifiable = (keys: KeyResolver, options: Options): Either.Either<void, ConfigError.ConfigError> => {
  const algorithms: unknown = keys.algorithms
  return algorithms === undefined ? Either.void : allowsOnly(Array.isArray(algorithms) ? algorithms : [], options)
}

/**
 * Refuses options that allow an algorithm outside `can`: what a resolver's keys verify, or (`what`) what a cache keeps
 * keys for, which the providers check before their cache starts.
 *
 * @internal
 */
export const allowsOnly = (
  can: ReadonlyArray<unknown>,
  options: Options,
  what = "the keys can verify"
): Either.Either<void, ConfigError.ConfigError> => {
  const other = (options.algorithms ?? defaults.algorithms).find((alg) => !can.includes(alg))
  if (other === undefined) return Either.void
  const advice = other.startsWith("HS")
    ? " (HS* are SharedSecret's: give it a validator of its own, under TokenValidator.multi)"
    : ""
  return Either.left(
    ConfigError.InvalidData(
      ["algorithms"],
      `expected algorithms ${what} (${can.map(String).join(", ")}), got ${other}${advice}`
    )
  )
}

const unsafeMake = (keys: KeyResolver, options: Options): Service => {
  const allowed: ReadonlySet<string> = new Set(options.algorithms ?? defaults.algorithms)
  const maxTokenBytes = options.maxTokenBytes ?? defaults.maxTokenBytes
  const leeway = Duration.toSeconds(options.leeway ?? defaults.leeway)
  const issuer = issuerMatcher(options.issuer)
  const audiences: ReadonlySet<string> | undefined =
    options.allowAnyAudience === true && strings(options.audience).length === 0
      ? undefined
      : new Set(strings(options.audience))
  const required = options.requiredClaims ?? []
  const tokenTypes = options.tokenTypes
  const acceptTyp: ReadonlySet<string> = new Set((options.acceptTyp ?? []).map(mediaType))
  const allowBoundTokens = options.allowBoundTokens === true
  const usernameClaims = options.principal?.username ?? defaults.username
  const groupsClaim = options.principal?.groups ?? defaults.groups
  const remembered = new Lru<string, Verified>(options.tokenCache ?? defaults.tokenCache)
  const memory = MemoryAnswers.of(keys)
  const headers = new Map<string, Header>()
  const spanOptions = { attributes: { "jwt.issuer": issuer.description }, captureStackTrace: false } as const

  /** The claim checks; `fresh`: the token's first check, not a remembered token's later use. */
  const checkClaims = (
    claims: RegisteredClaims,
    header: Header,
    nowMillis: number,
    fresh: boolean
  ): TokenType | TokenValidationError => {
    const now = nowMillis / 1000
    if (claims.exp === undefined) return refusal("MissingClaim", "the token has no exp claim")
    if (claims.exp > Jws.maxNumericDate) return refusal("Malformed", "the token's exp is beyond any date")
    if (now >= claims.exp + leeway) return refusal("Expired", "the token has expired")
    if (claims.nbf !== undefined && now < claims.nbf - leeway) {
      return refusal("NotYetValid", "the token is not valid yet")
    }
    if (claims.iat !== undefined && now < claims.iat - leeway) {
      return refusal("NotYetValid", "the token was issued in the future")
    }
    if (claims.iss === undefined) return refusal("IssuerMismatch", "the token has no issuer")
    if (!issuer.matches(claims.iss, claims)) {
      return refusal("IssuerMismatch", `the token's issuer is not ${issuer.description}`)
    }
    if (audiences !== undefined) {
      const tokenAudiences = claims.aud !== undefined
        ? strings(claims.aud)
        : claims.client_id !== undefined
        ? [claims.client_id]
        : claims.azp !== undefined
        ? [claims.azp]
        : []
      if (!tokenAudiences.some((aud) => audiences.has(aud))) {
        return refusal("AudienceMismatch", "the token is not meant for this audience")
      }
    }
    for (const name of required) {
      if (!Object.hasOwn(claims, name)) return refusal("MissingClaim", `the token has no ${name} claim`)
    }
    // Explicit typing (RFC 8725, section 3.11): a `+jwt` type other than an access or id token's names another kind
    // of JWT (a logout token, a security event, a DPoP proof), never a bearer credential, whatever its claims suggest;
    // so does a `+sd-jwt` one (an SD-JWT verifiable credential, `dc+sd-jwt`, without its disclosures).
    const typ = header.typ === undefined ? undefined : mediaType(header.typ)
    if (
      typ !== undefined && (typ.endsWith("+jwt") || typ.endsWith("+sd-jwt")) && typ !== "at+jwt" &&
      typ !== "id_token+jwt" && !acceptTyp.has(typ)
    ) {
      return refusal("TokenType", `a token of type "${printable(header.typ!, 64)}" is not a bearer token`)
    }
    // The same kinds typed only `JWT`, or not at all (the header `typ` of a logout token is only recommended): an
    // `events` claim is what every security event token has (RFC 8417, section 2.2), a logout token too (OpenID
    // Connect Back-Channel Logout 1.0, section 2.4); Keycloak names its logout tokens in a `typ` claim.
    if (
      (isEventsClaim(claims.events) ||
        (typeof claims.typ === "string" && claims.typ.toLowerCase() === "logout")) &&
      (typ === undefined || !acceptTyp.has(typ))
    ) {
      return refusal("TokenType", "a security event or logout token is not a bearer token")
    }
    // An SD-JWT's signed part untyped (RFC 9901 makes its `typ` optional): known by `_sd_alg`, or digests in `_sd`,
    // here or in a nested object, or `{"...": digest}` in a list (RFC 9901 makes `_sd_alg` optional too). Looked for
    // in nested members on a token's first check only: a remembered token's claims are the same frozen object.
    if (
      (claims._sd_alg !== undefined || Array.isArray(claims._sd) || (fresh && holdsDisclosures(claims))) &&
      (typ === undefined || !acceptTyp.has(typ))
    ) {
      return refusal("TokenType", "an SD-JWT credential is not a bearer token")
    }
    // Sender-constrained (RFC 7800's `cnf`): good only with a proof of possession, which is not checked here.
    if (claims.cnf !== undefined && !allowBoundTokens) {
      return refusal("TokenType", "the token is bound to its holder's key (cnf), whose proof is not checked here")
    }
    const tokenType = classify(claims, header)
    if (tokenType === "refresh") return refusal("TokenType", "refresh tokens are not bearer credentials")
    if (tokenTypes !== undefined && !tokenTypes.includes(tokenType)) {
      return refusal("TokenType", `expected a token of type ${tokenTypes.join(" or ")}, got ${tokenType}`)
    }
    return tokenType
  }

  /**
   * The header, decoded once per distinct header segment (an issuer's tokens share a handful). It is shared by every
   * token with that segment, so it is frozen, nested members too. One of more than a few dozen values is
   * refused unread.
   */
  const readHeader = (segment: string): Header | undefined => {
    const known = headers.get(segment)
    if (known !== undefined) return known
    const decoded = Jws.headerOf(segment)
    if (decoded === undefined) return undefined
    // Forgotten all at once when full: a hit then costs one lookup, where an LRU would reorder on every hit.
    if (headers.size >= headerCacheSize) headers.clear()
    headers.set(segment, Jws.deepFreeze(decoded))
    return decoded
  }

  /** The checks that run on every use of a token, verified just now or remembered, then the usage count. */
  const accept = (claims: RegisteredClaims, header: Header, now: number, fresh: boolean): Outcome<TokenType> => {
    const tokenType = checkClaims(claims, header, now, fresh)
    if (tokenType instanceof TokenValidationError) return Exit.fail(tokenType)
    const checked = options.check === undefined ? Exit.void : customCheck(options.check(claims, header))
    // Only a token that passed every check counts for the usage strategy: neither forged nor merely expired
    // tokens, replayed by the thousand, can drive refreshes.
    return andThen(
      checked,
      () => memory?.recordSuccess() === true ? Exit.succeed(tokenType) : Effect.as(keys.recordSuccess, tokenType)
    )
  }

  /**
   * Continues with the key for `kid` and `alg` (`undefined` when none fits): at once from memory while the set is
   * fresh, else through `keys.get`, which may wait for a fetch, so the clock is read again after it.
   */
  const withKey = (
    kid: string | undefined,
    alg: SigningAlgorithm,
    now: number,
    f: (key: VerificationKey | undefined, now: number) => Outcome<Principal>
  ): Outcome<Principal> => {
    const ready = memory?.get(kid, alg, now)
    if (ready !== undefined) return f(ready, now)
    return Effect.flatMap(
      keys.get(kid, alg),
      (key) => Effect.flatMap(Clock.currentTimeMillis, (later) => f(Option.getOrUndefined(key), later))
    )
  }

  const verify = (token: string, now: number, span: Tracer.Span | undefined): Outcome<Principal> => {
    if (typeof token !== "string") return fail("Malformed", "the token is not a string")
    if (Jws.isLongerThan(token, maxTokenBytes)) {
      return fail("TooLarge", `the token is longer than ${maxTokenBytes} bytes`)
    }
    const seen = remembered.get(slotOf(token))
    if (seen !== undefined && seen.token === token) return verifyRemembered(token, seen, now, span)
    if (!Jws.compactJws.test(token)) return fail("Malformed", "the token is not a compact JWS")
    const first = token.indexOf(".")
    const last = token.lastIndexOf(".")
    if (
      !Jws.isCanonicalBase64Url(token, 0, first) || !Jws.isCanonicalBase64Url(token, first + 1, last) ||
      !Jws.isCanonicalBase64Url(token, last + 1, token.length)
    ) {
      return fail("Malformed", "the token is not in canonical base64url")
    }
    const header = readHeader(token.slice(0, first))
    if (header === undefined) return fail("Malformed", "the token's header is not a JSON object with an alg")
    if (header.alg === "none" || !allowed.has(header.alg)) {
      return fail("AlgorithmNotAllowed", `alg "${printable(header.alg, 16)}" is not allowed`)
    }
    if (header.crit !== undefined) return fail("Malformed", "the token has critical header extensions")
    if (header.b64 !== undefined && header.b64 !== true) {
      return fail("Malformed", "unencoded payloads (b64) are not accepted")
    }
    if (token.endsWith(".")) return fail("Malformed", "the token has no signature")
    const alg = header.alg as SigningAlgorithm
    span?.attribute("jwt.alg", alg)
    // A token without a kid has no `jwt.kid`: shown as "", it would read as one whose kid is empty.
    if (header.kid !== undefined) span?.attribute("jwt.kid", shownKid(header.kid))
    return withKey(
      header.kid,
      alg,
      now,
      (key, at) => key === undefined ? noMatchingKey() : verifyWith(token, first, last, header, key, at)
    )
  }

  const noMatchingKey = () => fail("NoMatchingKey", "no key of the set fits the token's kid and alg")

  /** The signature and claims of a token whose two dots are at `first` and `dot`, with its key. */
  const verifyWith = (
    token: string,
    first: number,
    dot: number,
    header: Header,
    key: VerificationKey,
    now: number
  ): Outcome<Principal> => {
    const signed = key.verify(
      header.alg,
      // latin1: the token is known to be base64url and dots, so each character is one byte. Small Buffers come from
      // Node's pool, where a TextEncoder allocates an ArrayBuffer of its own for every token (GC measured ~1 µs a
      // validation with it).
      Buffer.from(token.slice(0, dot), "latin1"),
      Buffer.from(token.slice(dot + 1), "base64url")
    )
    if (!signed) return fail("InvalidSignature", "the signature does not verify")
    const text = Jws.base64UrlText(token.slice(first + 1, dot))
    if (text === undefined) return fail("Malformed", "the claims are not UTF-8")
    const read = Jws.readClaims(text)
    if (read === undefined) return fail("Malformed", "the claims are not a JSON object of the right types")
    // A key of a set shared by many issuers (Entra ID's) that names the one it signs for. (Checked once: a remembered
    // token keeps its key, and a key whose label changes is a new key.)
    if (key.issuer !== undefined && !Jwk.signsFor(key.issuer, read)) {
      return fail("IssuerMismatch", "the token's key signs for another issuer")
    }
    // Frozen, nested members too: the check hook, the Principal and a remembered token share this one object, and
    // the time checks of every later use read it.
    const claims = Jws.deepFreeze(read)
    return andThen(accept(claims, header, now, true), (tokenType) => {
      const principal = toPrincipal(claims, tokenType, usernameClaims, groupsClaim)
      // Shared only once remembered: with the token cache off, the caller's is the one just built.
      if (remembered.capacity <= 0) return Exit.succeed(principal)
      remembered.set(slotOf(token), { token, key, header, claims, principal })
      return Exit.succeed(reuse(principal))
    })
  }

  /**
   * A remembered token, if its key is still the one the cache serves for it; else its signature and claims again, with
   * the key served now (if any).
   */
  const verifyRemembered = (token: string, seen: Verified, now: number, span: Tracer.Span | undefined) => {
    span?.attribute("jwt.alg", seen.header.alg)
    if (seen.header.kid !== undefined) span?.attribute("jwt.kid", shownKid(seen.header.kid))
    span?.attribute("jwt.remembered", true)
    return withKey(
      seen.header.kid,
      seen.header.alg as SigningAlgorithm,
      now,
      (key, at) => acceptRemembered(token, seen, key, at, span)
    )
  }

  const acceptRemembered = (
    token: string,
    seen: Verified,
    key: VerificationKey | undefined,
    now: number,
    span: Tracer.Span | undefined
  ): Outcome<Principal> => {
    if (key !== seen.key) {
      forget(token, seen)
      span?.attribute("jwt.remembered", false)
      // Verified anew with the key just looked up: looking the kid up again would count and log it twice (a second
      // unknown-kid refetch, or a second stale serve).
      return key === undefined
        ? noMatchingKey()
        : verifyWith(token, token.indexOf("."), token.lastIndexOf("."), seen.header, key, now)
    }
    const accepted = accept(seen.claims, seen.header, now, false)
    if (!isDecided(accepted)) {
      return Effect.map(
        Effect.tapError(accepted, () => Effect.sync(() => forget(token, seen))),
        () => reuse(seen.principal)
      )
    }
    if (Exit.isSuccess(accepted)) return Exit.succeed(reuse(seen.principal))
    forget(token, seen)
    return Exit.failCause(accepted.cause)
  }

  /**
   * Forgets a remembered token's entry, not one filed in its slot since (another token that ends alike, while this use
   * waited for its key or its check).
   */
  const forget = (token: string, seen: Verified) => remembered.delete(slotOf(token), seen)

  /**
   * `verify`, measured: its outcome and latency go to `JwksMetrics` (with `labels`, the caller's metric tags), and to
   * `span` when there is one, never the token. A validation that needs no effect is answered as an `Exit`.
   */
  const measured = (
    token: string,
    clock: Clock.Clock,
    labels: ReadonlyArray<MetricLabel.MetricLabel>,
    span: Tracer.Span | undefined
  ): Outcome<Principal> => {
    const started = clock.unsafeCurrentTimeNanos()
    const finish = (exit: Exit.Exit<Principal, TokenValidationError | JwksError>) => {
      const failure = Exit.isSuccess(exit)
        ? undefined
        : Cause.isFailType(exit.cause)
        ? exit.cause.error
        : Option.getOrUndefined(Cause.failureOption(exit.cause))
      // No answer: the caller went away first, or code of the app's (an issuer rule, the check hook) threw.
      const reason = Exit.isSuccess(exit)
        ? undefined
        : failure === undefined
        ? Cause.isInterruptedOnly(exit.cause) ? "interrupted" as const : "defect" as const
        : failure._tag === "TokenValidationError"
        ? failure.reason
        : "KeysUnavailable" as const
      // Counted first: a span of the app's tracer that throws still leaves the validation counted, once.
      JwksMetrics.unsafeRecordValidation(reason, Number(clock.unsafeCurrentTimeNanos() - started) / 1_000_000, labels)
      span?.attribute("outcome", reason ?? "success")
    }
    let outcome: Outcome<Principal>
    try {
      outcome = verify(token, clock.unsafeCurrentTimeMillis(), span)
    } catch (defect) {
      // User code runs inside (an issuer rule, the check hook): what it throws is a defect, as in any effect.
      outcome = Exit.die(defect)
    }
    if (isDecided(outcome)) {
      finish(outcome)
      return outcome
    }
    const waited = span === undefined ? outcome : Effect.withParentSpan(outcome, span)
    return Effect.onExit(waited, (exit) => Effect.sync(() => finish(exit)))
  }

  const validate = (token: string): Outcome<Principal> =>
    Effect.withFiberRuntime((fiber) => {
      const clock = Context.get(fiber.currentDefaultServices, Clock.Clock)
      const labels = fiber.getFiberRef(FiberRef.currentMetricLabels)
      return isTraced(fiber.currentTracer, fiber.getFiberRef(FiberRef.currentTracerEnabled))
        ? Effect.useSpan("TokenValidator.validate", spanOptions, (span) => measured(token, clock, labels, span))
        : measured(token, clock, labels, undefined)
    })

  const service: Service = {
    validate,
    acceptsIssuer: issuer.accepts,
    keyStatus: keys.status === undefined ? Effect.succeed([]) : Effect.map(keys.status, (status) => [status])
  }
  measuredOf.set(service, { validate, measured: (token, clock, labels) => measured(token, clock, labels, undefined) })
  maxTokenBytesOf.set(service, maxTokenBytes)
  allowsOf.set(service.acceptsIssuer, (_, alg) => allowed.has(alg))
  if (keys.status !== undefined) cacheStatusOf.set(service.keyStatus, keys.status)
  return service
}

/**
 * `validate` for callers outside Effect (an Express or Fastify app): a function from a token to a promise of its
 * `Principal`, rejected with the `TokenValidationError` or `JwksError` itself. It validates with the services of
 * `runtime` (its `Clock`, tracer and metric tags). A validation that needs nothing but memory (a fresh key set, no
 * custom check) is answered without starting a fiber, which would otherwise cost about as much as the rest of the
 * validation (`npm run bench:breakdown`); any other runs on `runtime`, as does every validation when a tracer is
 * installed (a span needs a fiber).
 *
 * @since 0.1.0
 * @category conversions
 * @example
 * ```ts
 * import { Effect, ManagedRuntime } from "effect"
 * import * as TokenValidator from "effect-jwks/TokenValidator"
 *
 * declare const runtime: ManagedRuntime.ManagedRuntime<TokenValidator.TokenValidator, never>
 * const validator = await runtime.runPromise(TokenValidator.TokenValidator)
 * const validate = TokenValidator.toPromise(await runtime.runtime())(validator)
 * const principal = await validate("eyJ...")
 * ```
 */
export const toPromise =
  <R>(runtime: Runtime.Runtime<R>) => (validator: Service): (token: string) => Promise<Principal> => {
    const runExit = Runtime.runPromiseExit(runtime)
    // The error itself, with a tracer or without: failed inside a span, Effect wraps it in a proxy that carries it.
    const settle = (exit: Exit.Exit<Principal, TokenValidationError | JwksError>): Promise<Principal> =>
      Exit.isSuccess(exit)
        ? Promise.resolve(exit.value)
        : Promise.reject(
          Cause.originalError(Cause.isFailType(exit.cause) ? exit.cause.error : Cause.squash(exit.cause))
        )
    const own = measuredOf.get(validator)
    const services = FiberRefs.getOrDefault(runtime.fiberRefs, DefaultServices.currentServices)
    const traced = isTraced(
      Context.get(services, Tracer.Tracer),
      FiberRefs.getOrDefault(runtime.fiberRefs, FiberRef.currentTracerEnabled)
    )
    const run = (token: string) => runExit(validateWith(validator, token)).then(settle)
    if (own === undefined || traced) return run
    const clock = Context.get(services, Clock.Clock)
    const labels = FiberRefs.getOrDefault(runtime.fiberRefs, FiberRef.currentMetricLabels)
    return (token) => {
      // A `validate` of the app's put in place (a spy, a deny list) is what validates.
      if (validator.validate !== own.validate) return run(token)
      const outcome = own.measured(token, clock, labels)
      return isDecided(outcome) ? settle(outcome) : runExit(outcome).then(settle)
    }
  }

/**
 * `validator.validate(token)`, where a `validate` of the app's (a deny list with a bug) that throws as it is called
 * gives a defect, as it would running as an effect: `toPromise` answers a rejected promise, never an exception.
 */
const validateWith = (
  validator: Service,
  token: string
): Effect.Effect<Principal, TokenValidationError | JwksError> => {
  try {
    return validator.validate(token)
  } catch (defect) {
    return Exit.die(defect)
  }
}

/**
 * A validator over the `JwksCache` in context.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * ```ts
 * import { FetchHttpClient } from "@effect/platform"
 * import { Layer } from "effect"
 * import * as JwksCache from "effect-jwks/JwksCache"
 * import * as JwksSource from "effect-jwks/JwksSource"
 * import * as TokenValidator from "effect-jwks/TokenValidator"
 *
 * const ValidatorLive = TokenValidator.layer({ issuer: "https://idp.example", audience: "my-api" }).pipe(
 *   Layer.provide(JwksCache.layer()),
 *   Layer.provide(JwksSource.layerHttp("https://idp.example/.well-known/jwks.json")),
 *   Layer.provide(FetchHttpClient.layer)
 * )
 * ```
 */
export const layer = (options: Options): Layer.Layer<TokenValidator, ConfigError.ConfigError, JwksCache.JwksCache> =>
  Layer.effect(TokenValidator, Effect.flatMap(JwksCache.JwksCache, (cache) => make(fromCache(cache), options)))

/**
 * A key cache as a key resolver. HMAC algorithms never reach the cache: a key set holds no symmetric keys, so such
 * a token simply has no matching key (and triggers no refetch).
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import * as JwksCache from "effect-jwks/JwksCache"
 * import * as TokenValidator from "effect-jwks/TokenValidator"
 *
 * // One cache (one key set, one refresh fiber) behind two validators with different rules.
 * const validators = Effect.gen(function*() {
 *   const keys = TokenValidator.fromCache(yield* JwksCache.JwksCache)
 *   const users = yield* TokenValidator.make(keys, { issuer: "https://idp.example", audience: "web" })
 *   const admins = yield* TokenValidator.make(keys, { issuer: "https://idp.example", audience: "admin", leeway: 0 })
 *   return { users, admins }
 * })
 * ```
 */
export const fromCache = (cache: JwksCache.Service): KeyResolver => {
  const answers = MemoryAnswers.answersFor(cache)
  return MemoryAnswers.register({
    get: (kid, alg) => isKeySetAlgorithm(alg) ? cache.get(kid, alg) : Effect.succeedNone,
    // Read when run: a `recordSuccess` the app puts on the cache later is the one that counts.
    recordSuccess: Effect.suspend(() => cache.recordSuccess),
    status: cache.status,
    // What its imports keep keys for: a validator that allows another could never verify a token of it.
    algorithms: cache.algorithms ?? Jwk.Algorithm.literals
  }, {
    // From memory only while the cache's `get` and `recordSuccess` are those its answers speak for: a copy of the
    // cache with a `get` of the app's (revoked kids refused), or one put in place, is asked through it.
    get: (kid, alg, now) => isKeySetAlgorithm(alg) && answers() ? cache.unsafeGet(kid, alg, now) : undefined,
    recordSuccess: () => answers() && cache.unsafeRecordSuccess()
  })
}

const isKeySetAlgorithm = (alg: SigningAlgorithm): alg is Jwk.Algorithm => !alg.startsWith("HS")

/**
 * One validator over several, routed by the token's (unverified) `iss`: the chosen validator's keys and rules do all
 * the verifying. Where several accept the issuer (one issuer's shared-secret and key-set validators, while it moves
 * from one to the other), the first that allows the token's `alg` is chosen, else the first (a validator not built by
 * `make` or `multi`, nor spread from one, may allow any). A token from an issuer none accepts is refused with
 * `IssuerMismatch`; one over the largest size cap of the validators is refused as `TooLarge`, and one whose claims hold
 * more than 1,000 objects and lists as `Malformed`, before its claims are parsed to route it. No other validator is
 * tried once one is chosen (two of one issuer with different audiences: the token goes to the first that allows its
 * `alg`). Every validator's `acceptsIssuer` is asked of each token's unverified `iss`: a rule of the app's that throws
 * there is a defect of every validation, whichever validator the token was for.
 *
 * @since 0.1.0
 * @category combinators
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import * as TokenValidator from "effect-jwks/TokenValidator"
 *
 * declare const cognito: TokenValidator.Service
 * declare const entra: TokenValidator.Service
 * const validator = TokenValidator.multi([cognito, entra])
 * ```
 */
export const multi = (validators: ReadonlyArray<Service>): Service => {
  // The validators under it, inner `multi`s opened, each once: what it accepts and allows is theirs, asked once each
  // (asked level by level, a tree sharing one inner `multi` would be asked exponentially often per token).
  const leaves = [...new Set(validators.flatMap((validator) => leavesOf.get(validator) ?? [validator]))]
  const byCache = new Map<unknown, Service["keyStatus"]>()
  for (const leaf of leaves) {
    const cache = cacheStatusOf.get(leaf.keyStatus) ?? leaf.keyStatus
    if (!byCache.has(cache)) byCache.set(cache, leaf.keyStatus)
  }
  const distinctStatus = [...byCache.values()]
  // Routing decodes the claims: the largest cap of the validators applies first (64 KiB when one was not built by
  // `make`), and the chosen validator's own after.
  const caps = validators.map((validator) => maxTokenBytesOf.get(validator) ?? 64 * 1024)
  const maxTokenBytes = caps.length === 0 ? defaults.maxTokenBytes : Math.max(...caps)
  const route = (token: string): Service | Exit.Exit<never, TokenValidationError> => {
    if (typeof token !== "string") return fail("Malformed", "the token is not a string")
    if (Jws.isLongerThan(token, maxTokenBytes)) {
      return fail("TooLarge", `the token is longer than ${maxTokenBytes} bytes`)
    }
    // Parsed unverified, so bounded first: thousands of nested arrays would cost ten times a signature check.
    const claims = Jws.claimsOf(token)
    if (claims === undefined) return fail("Malformed", "the token's claims are not readable")
    const iss = claims.iss
    // As a validator alone answers for a token without `iss`.
    if (iss === undefined) return fail("IssuerMismatch", "the token has no issuer")
    const accepting = validators.filter((candidate) => candidate.acceptsIssuer(iss))
    if (accepting.length <= 1) return accepting[0] ?? fail("IssuerMismatch", "no validator accepts the token's issuer")
    // A header a validator would refuse unread goes to the first, to be refused so.
    const dot = token.indexOf(".")
    const alg = dot <= 0 ? undefined : Jws.headerOf(token.slice(0, dot))?.alg
    if (alg === undefined) return accepting[0]!
    return accepting.find((candidate) => allows(candidate, iss, alg)) ?? accepting[0]!
  }
  /**
   * A token refused by the router itself is a validation too: counted as the chosen validator would count it. An
   * issuer rule that throws on the unverified `iss` is a defect, counted as one and answered as one (never a
   * synchronous throw).
   */
  const routeCounted = (
    token: string,
    clock: Clock.Clock,
    labels: ReadonlyArray<MetricLabel.MetricLabel>
  ): Service | Exit.Exit<never, TokenValidationError> => {
    const started = clock.unsafeCurrentTimeNanos()
    const millis = () => Number(clock.unsafeCurrentTimeNanos() - started) / 1_000_000
    let routed: Service | Exit.Exit<never, TokenValidationError>
    try {
      routed = route(token)
    } catch (defect) {
      JwksMetrics.unsafeRecordValidation("defect", millis(), labels)
      return Exit.die(defect)
    }
    if (Exit.isExit(routed) && Exit.isFailure(routed) && Cause.isFailType(routed.cause)) {
      JwksMetrics.unsafeRecordValidation(routed.cause.error.reason, millis(), labels)
    }
    return routed
  }
  const service: Service = {
    acceptsIssuer: (iss) => leaves.some((leaf) => leaf.acceptsIssuer(iss)),
    // One entry per cache behind it: a cache two validators share (or one validator listed twice) once.
    keyStatus: Effect.map(Effect.all(distinctStatus), (all) => all.flat()),
    validate: (token) =>
      Effect.withFiberRuntime((fiber) => {
        const clock = Context.get(fiber.currentDefaultServices, Clock.Clock)
        const routed = routeCounted(token, clock, fiber.getFiberRef(FiberRef.currentMetricLabels))
        if (!Exit.isExit(routed)) return routed.validate(token)
        if (!isTraced(fiber.currentTracer, fiber.getFiberRef(FiberRef.currentTracerEnabled))) return routed
        // A refusal by the router has its span, as any validation: no validator was chosen, so no issuer on it.
        return Effect.useSpan("TokenValidator.validate", { captureStackTrace: false }, (span) => {
          const cause = Exit.isFailure(routed) ? routed.cause : undefined
          span.attribute("outcome", cause !== undefined && Cause.isFailType(cause) ? cause.error.reason : "defect")
          return routed
        })
      })
  }
  // `toPromise` answers from memory through the chosen validator's own measured validation, when it has one.
  measuredOf.set(service, {
    validate: service.validate,
    measured: (token, clock, labels) => {
      const routed = routeCounted(token, clock, labels)
      if (Exit.isExit(routed)) return routed
      const own = measuredOf.get(routed)
      return own === undefined || routed.validate !== own.validate
        ? validateWith(routed, token)
        : own.measured(token, clock, labels)
    }
  })
  maxTokenBytesOf.set(service, maxTokenBytes)
  // What its validators of that issuer allow: a `multi` inside another routes by `alg` too.
  allowsOf.set(
    service.acceptsIssuer,
    (iss, alg) => leaves.some((leaf) => leaf.acceptsIssuer(iss) && allows(leaf, iss, alg))
  )
  leavesOf.set(service, leaves)
  return service
}

/**
 * One `TokenValidator` over several providers, routed by issuer as {@link multi} does. Each validator is built in
 * the layer's scope (their caches' background fibers with it), in order.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * ```ts
 * import * as TokenValidator from "effect-jwks/TokenValidator"
 * import * as Cognito from "effect-jwks/providers/Cognito"
 * import * as Oidc from "effect-jwks/providers/Oidc"
 *
 * const ValidatorLive = TokenValidator.layerMulti([
 *   Oidc.make({ issuer: "https://idp.example/realms/main", audience: "my-api" }),
 *   Cognito.make({ userPoolId: "eu-west-1_AbCdEf123", clientId: "my-client", tokenUse: "access" })
 * ])
 * ```
 */
export const layerMulti = <const Validators extends ReadonlyArray<Effect.Effect<Service, any, any>>>(
  validators: Validators
): Layer.Layer<
  TokenValidator,
  Effect.Effect.Error<Validators[number]>,
  Exclude<Effect.Effect.Context<Validators[number]>, Scope.Scope>
> =>
  Layer.scoped(
    TokenValidator,
    Effect.map(
      Effect.all(
        validators as ReadonlyArray<
          Effect.Effect<Service, Effect.Effect.Error<Validators[number]>, Effect.Effect.Context<Validators[number]>>
        >
      ),
      multi
    )
  )
