/**
 * Any OpenID Connect provider (Keycloak, Auth0, Okta, Google, Dex, ...): the issuer's key set found through OIDC
 * discovery, or at a configured JWKS URL, and tokens checked against the issuer and audience.
 *
 * Discovery is lazy: it runs inside the key source, on the first key fetch, so an app boots while its identity
 * provider is down (its first validations answer `JwksError` until the provider is back). Its result is kept after
 * the first success; a failed discovery is tried again at the next key fetch, under the cache's backoff. While key
 * fetches from the discovered `jwks_uri` fail, discovery is asked again at most once every 5 minutes, and once an hour
 * while they succeed (see {@link discoverySource}).
 *
 * The issuer is one string, compared exactly. Google's id tokens may say `accounts.google.com` as well as
 * `https://accounts.google.com`: to take both, make a `JwksCache` over `discoverySource("https://accounts.google.com")`
 * and give it to `TokenValidator.make(TokenValidator.fromCache(cache), { issuer: [both], ... })`. Its id tokens carry
 * no `nonce` or `at_hash` unless the sign-in asked for one, so `classify` calls them `unknown`: a validator of Google
 * sign-ins that sets `tokenTypes` names `"unknown"` too.
 *
 * @since 0.1.0
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import { baseUrlExtra, checkedOnRead, hasSpaceOrControl, list } from "../internal/config.js"
import { displayUrl, fetchJson } from "../internal/fetchJson.js"
import { printable } from "../internal/printable.js"
import { jwksValidator } from "../internal/provider.js"
import * as JwksCache from "../JwksCache.js"
import { JwksError } from "../JwksError.js"
import * as JwksSource from "../JwksSource.js"
import * as TokenValidator from "../TokenValidator.js"

/**
 * @since 0.1.0
 * @category models
 * @example
 * ```ts
 * import * as Oidc from "effect-jwks/providers/Oidc"
 *
 * // Auth0: its issuer ends with a slash, and its access tokens are RFC 9068 (`typ: at+jwt`).
 * const options: Oidc.Options = {
 *   issuer: "https://example.eu.auth0.com/",
 *   audience: "https://api.example.com",
 *   tokenTypes: ["access"],
 *   cache: { maxStale: "6 hours" },
 *   http: { timeout: "2 seconds" }
 * }
 * ```
 */
export interface Options extends Omit<TokenValidator.Options, "issuer"> {
  /** The issuer, exactly as it appears in `iss` and in the discovery document. */
  readonly issuer: string
  /** The key set's URL: skips discovery. */
  readonly jwksUri?: string | URL | undefined
  /** Where the discovery document is. Default `${issuer}/.well-known/openid-configuration` (no trailing slash). */
  readonly discoveryUrl?: string | URL | undefined
  readonly cache?: JwksCache.Options | undefined
  /** Limits on each HTTP exchange (discovery and key set alike). */
  readonly http?: JwksSource.HttpOptions | undefined
}

/**
 * Options of {@link discoverySource}.
 *
 * @since 0.1.0
 * @category models
 * @example
 * ```ts
 * import * as Oidc from "effect-jwks/providers/Oidc"
 *
 * // Azure AD B2C: the discovery document is per user flow, not at the default path.
 * const options: Oidc.DiscoveryOptions = {
 *   discoveryUrl: "https://corp.b2clogin.com/corp.onmicrosoft.com/B2C_1_signin/v2.0/.well-known/openid-configuration"
 * }
 * ```
 */
export interface DiscoveryOptions {
  /** Default {@link discoveryUrlOf}`(issuer)`. */
  readonly discoveryUrl?: string | URL | undefined
  readonly http?: JwksSource.HttpOptions | undefined
}

const loopbackHosts: ReadonlySet<string> = new Set(["127.0.0.1", "localhost", "[::1]"])

const parseUrl = (value: string): URL | undefined => {
  try {
    return new URL(value)
  } catch {
    return undefined
  }
}

const isKeySetUrl = (value: string): boolean => {
  const url = parseUrl(value)
  return url !== undefined &&
    (url.protocol === "https:" || (url.protocol === "http:" && loopbackHosts.has(url.hostname)))
}

/** A discovery document whose `jwks_uri` passes `accepts`. */
const documentOf = (accepts: (jwksUri: string) => boolean, rule: string) =>
  Schema.Struct({
    issuer: Schema.String,
    jwks_uri: Schema.String.pipe(Schema.maxLength(2048), Schema.filter(accepts, { message: () => rule }))
  })

/**
 * The members of a discovery document (OpenID Connect Discovery 1.0, section 3) this library reads; any other
 * member is ignored. `jwks_uri` must be an `https` URL, or `http` on a loopback host (`127.0.0.1`, `localhost`,
 * `[::1]`) for local development. (`discoverySource` also takes an `http` one on the origin of a discovery document it
 * fetched over plain http: see there.)
 *
 * @since 0.1.0
 * @category schemas
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import * as Oidc from "effect-jwks/providers/Oidc"
 *
 * // A deployment check: does the IdP's discovery document pass the rules this library applies to it?
 * const response = await fetch(Oidc.discoveryUrlOf("https://idp.example/realms/main"))
 * const document: Oidc.DiscoveryDocument = Schema.decodeUnknownSync(Oidc.DiscoveryDocument)(await response.json())
 * console.log(document.jwks_uri)
 * ```
 */
export const DiscoveryDocument = documentOf(isKeySetUrl, "jwks_uri must be an https URL (or http on a loopback host)")

/**
 * @since 0.1.0
 * @category models
 */
export type DiscoveryDocument = typeof DiscoveryDocument.Type

/**
 * The discovery document as fetched from `url`: from an `http` URL (a development setup's `http://keycloak:8080`), a
 * `jwks_uri` on that same origin may be `http` too. Whoever could rewrite a document sent in the clear could name an
 * `https` address of their own as well: refusing its `http` sibling would protect nothing, and break the setup.
 */
const discoveryDocumentFrom = (url: string) => {
  const from = parseUrl(url)
  if (from === undefined || from.protocol !== "http:") return DiscoveryDocument
  return documentOf(
    (value) => isKeySetUrl(value) || parseUrl(value)?.origin === from.origin,
    "jwks_uri must be an https URL (or http on a loopback host or on the origin of a discovery document fetched over http)"
  )
}

/**
 * The default discovery URL of an issuer: `${issuer}/.well-known/openid-configuration`, without doubling a trailing
 * slash.
 *
 * @since 0.1.0
 * @category utils
 * @example
 * ```ts
 * import * as Oidc from "effect-jwks/providers/Oidc"
 *
 * Oidc.discoveryUrlOf("https://example.eu.auth0.com/")
 * // "https://example.eu.auth0.com/.well-known/openid-configuration": the trailing slash is not doubled
 * ```
 */
export const discoveryUrlOf = (issuer: string): string =>
  `${issuer.replace(/\/+$/, "")}/.well-known/openid-configuration`

/** Text of a discovery document (or a URL) for an error message: controls escaped, cut to 200 characters. */
const excerpt = (text: string): string => printable(text, 200)

/**
 * A key source that finds the key set through OIDC discovery. The discovery document is fetched on the first key fetch,
 * not before, and kept after the first success; until then each key fetch tries discovery again. While key fetches from
 * the discovered `jwks_uri` fail (HTTP, or an empty set; not the import of a set), a key fetch asks discovery again, at
 * most once every 5 minutes, and falls back to the known `jwks_uri` if discovery fails too; while they succeed, a key
 * fetch asks discovery again once an hour (a discovery that fails then changes nothing; either fallback is logged as a
 * warning, module `Oidc`): an IdP that fixed or moved its `jwks_uri` is followed without a restart (within the hour
 * when the old address still answers with the old keys), and an outage of the key endpoint costs at most one discovery
 * request per 5 minutes; a discovery answered with a `Retry-After` (429, 503) fails that fetch instead, so that the
 * cache waits as asked. Each request has the `http` timeout of its own: a fetch that asks discovery first may take two.
 * A document whose `issuer` is not `issuer` exactly fails with a `JwksError` of reason `IssuerMismatch` (OpenID Connect
 * Discovery 1.0, section 4.3), one whose `jwks_uri` breaks {@link DiscoveryDocument}'s rule with reason `InvalidShape`
 * (from a document fetched over plain http, an `http` `jwks_uri` on its own origin is taken: a Docker Compose
 * `http://keycloak:8080`); its other failures are those of any fetch (`Unreachable`, `HttpStatus`, `InvalidShape`,
 * ...), with the discovery URL as their source. An `issuer` that is not a URL or holds white space, control or
 * invisible characters (or, without `discoveryUrl`, is not an http(s) URL, or has a query, a fragment or a user name),
 * a `discoveryUrl` that is not an http(s) URL, or `http` limits out of range, are a `ConfigError`.
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import * as JwksCache from "effect-jwks/JwksCache"
 * import * as Oidc from "effect-jwks/providers/Oidc"
 *
 * const cache = Effect.flatMap(Oidc.discoverySource("https://idp.example/realms/main"), (source) =>
 *   JwksCache.make(source, { strategy: "time", interval: "10 minutes" }))
 * ```
 */
export const discoverySource = (
  issuer: string,
  options?: DiscoveryOptions
): Effect.Effect<JwksSource.Service, ConfigError.ConfigError, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    yield* checkIssuer(issuer, options?.discoveryUrl === undefined)
    yield* checkUrl("discoveryUrl", options?.discoveryUrl)
    const http = yield* JwksSource.checkHttpOptions(options?.http, ["http"])
    const client = yield* HttpClient.HttpClient
    const url = (options?.discoveryUrl ?? discoveryUrlOf(issuer)).toString()
    const shown = displayUrl(url)
    /** The discovered key source; whether a key fetch from it failed since; when discovery was last asked. */
    const state = yield* Ref.make<{
      readonly source: JwksSource.Service | undefined
      readonly failing: boolean
      readonly askedAt: number
    }>({ source: undefined, failing: false, askedAt: 0 })

    const discover = fetchJson(client, url, discoveryDocumentFrom(url), http).pipe(
      Effect.filterOrFail(
        (document) => document.issuer === issuer,
        (document) =>
          new JwksError({
            reason: "IssuerMismatch",
            source: shown,
            description: `the discovery document names the issuer ${excerpt(document.issuer)}, not ${issuer}`
          })
      ),
      Effect.map((document) => JwksSource.fromHttpClient(client, document.jwks_uri, http)),
      Effect.tap((source) =>
        Effect.zipRight(
          Effect.flatMap(Clock.currentTimeMillis, (askedAt) => Ref.set(state, { source, failing: false, askedAt })),
          Effect.logDebug("OIDC discovery completed").pipe(Effect.annotateLogs({ jwks_uri: source.name }))
        )
      ),
      Effect.withSpan("Oidc.discover", { attributes: { "oidc.discovery_url": shown } }),
      Effect.annotateLogs({ module: "Oidc", discovery: shown })
    )

    /**
     * The key source to fetch from: discovered at the first fetch; discovered again, at most once per
     * `rediscoverEvery` while fetches from it fail, else once per `rediscoverAnyway` (an IdP that fixed or moved its
     * `jwks_uri` is followed), falling back to it when discovery fails too (but for a `Retry-After` while it fails).
     */
    const current = Effect.flatMap(Clock.currentTimeMillis, (now) =>
      Effect.flatten(Ref.modify(state, (s) => {
        const { askedAt, failing, source } = s
        if (source === undefined) return [discover, s]
        // A clock stepped back (an NTP correction) counts as time gone by, not as a wait as long as the step; a
        // caller that read the clock a moment before another's claim is not such a step.
        const since = Math.abs(now - askedAt)
        if (since < Duration.toMillis(failing ? rediscoverEvery : rediscoverAnyway)) {
          return [Effect.succeed(source), s]
        }
        // Claimed in the same step as the check: concurrent callers of a source used directly ask once. A discovery
        // refused with a `Retry-After` (429, 503) while the known jwks_uri fails is the IdP asking for a pause: its
        // answer, not a request to that jwks_uri, is this fetch's, so the cache holds its next fetch back as asked. A
        // routine discovery that fails leaves the known jwks_uri, which answers, in use: said in a warning (the
        // cache logs only its key fetches, and this one may succeed).
        return [
          Effect.catchAll(
            discover,
            (error) =>
              failing && error.retryAfter !== undefined ? error : Effect.as(
                Effect.logWarning("OIDC rediscovery failed; the known jwks_uri stays in use", Cause.fail(error)).pipe(
                  Effect.annotateLogs({ module: "Oidc", discovery: shown, jwks_uri: source.name })
                ),
                source
              )
          ),
          { ...s, askedAt: now }
        ]
      })))

    return JwksSource.make(
      shown,
      Effect.flatMap(current, (source) =>
        Effect.tapBoth(source.fetch, {
          onFailure: () => Ref.update(state, (s) => s.source === source ? { ...s, failing: true } : s),
          // An empty set is a failure too (the cache refuses it): an IdP that moved its keys may leave one behind.
          onSuccess: (set) =>
            Ref.update(state, (s) => s.source === source ? { ...s, failing: set.keys.length === 0 } : s)
        })),
      // Each request (discovery, keys) has the `http` timeout of its own.
      { timeout: Duration.infinity }
    )
  })

/** How often a key source whose fetches fail may send discovery to the IdP again. */
const rediscoverEvery = Duration.minutes(5)

/**
 * How often discovery is asked again while the key source answers: a `jwks_uri` that moved while the old address
 * still serves the old keys (a CDN copy, a legacy endpoint) shows no failure to follow.
 */
const rediscoverAnyway = Duration.hours(1)

const checkUrl = (path: string, value: string | URL | undefined): Either.Either<void, ConfigError.ConfigError> => {
  if (value === undefined) return Either.void
  if (typeof value !== "string" && !(value instanceof URL)) {
    return Either.left(ConfigError.InvalidData([path], "expected an http(s) URL"))
  }
  const url = parseUrl(value.toString())
  return url !== undefined && (url.protocol === "https:" || url.protocol === "http:")
    ? Either.void
    : Either.left(
      ConfigError.InvalidData([path], `expected an http(s) URL, got ${excerpt(displayUrl(value.toString()))}`)
    )
}

/**
 * The issuer is a URL without white space; an http(s) one when discovery is found from it (`discovered`): one written
 * without its scheme (`keycloak:8080/realms/main`) still parses, with `keycloak:` as the scheme, and every fetch
 * would fail.
 */
const checkIssuer = (issuer: string, discovered: boolean): Either.Either<void, ConfigError.ConfigError> => {
  const url = typeof issuer === "string" ? parseUrl(issuer) : undefined
  if (url === undefined) return Either.left(ConfigError.InvalidData(["issuer"], "expected the issuer's URL"))
  // `new URL` trims spaces and drops tabs and newlines, but tokens and the discovery document are compared with the
  // issuer exactly: an `OIDC_ISSUER` with a stray newline would pass here and then refuse every token.
  if (hasSpaceOrControl(issuer)) {
    return Either.left(
      ConfigError.InvalidData(["issuer"], "the issuer contains white space, control or invisible characters")
    )
  }
  if (!discovered) return Either.void
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    return Either.left(
      ConfigError.InvalidData(
        ["issuer"],
        `expected an http(s) URL to discover from, got ${excerpt(displayUrl(issuer))} (or give jwksUri or discoveryUrl)`
      )
    )
  }
  // An issuer has none (OpenID Connect Discovery 1.0, section 2; RFC 8414): the well-known path appended to one with a
  // fragment would land inside it, and discovery would ask the issuer's own page.
  const extra = baseUrlExtra(issuer, url)
  return extra === undefined
    ? Either.void
    : Either.left(ConfigError.InvalidData(["issuer"], `an issuer to discover from has no ${extra.slice(2)}`))
}

const checkOptions = (options: Options): Either.Either<void, ConfigError.ConfigError> =>
  Either.gen(function*() {
    yield* checkIssuer(options.issuer, options.jwksUri === undefined && options.discoveryUrl === undefined)
    if (options.jwksUri !== undefined && options.discoveryUrl !== undefined) {
      return yield* Either.left(
        ConfigError.InvalidData(["jwksUri"], "give jwksUri (no discovery) or discoveryUrl, not both")
      )
    }
    yield* checkUrl("jwksUri", options.jwksUri)
    yield* checkUrl("discoveryUrl", options.discoveryUrl)
    yield* JwksSource.checkHttpOptions(options.http, ["http"])
  })

/**
 * Builds a validator for an OIDC issuer: a key cache over its discovered (or configured) key set, and the
 * validator's checks with `iss` equal to `issuer`. The cache's background fiber lives in the current scope.
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import * as Oidc from "effect-jwks/providers/Oidc"
 *
 * const program = Effect.gen(function*() {
 *   const validator = yield* Oidc.make({ issuer: "https://idp.example/realms/main", audience: "my-api" })
 *   return yield* validator.validate("eyJ...")
 * })
 * ```
 */
export const make = (
  options: Options
): Effect.Effect<TokenValidator.Service, ConfigError.ConfigError, HttpClient.HttpClient | Scope.Scope> =>
  Effect.gen(function*() {
    yield* checkOptions(options)
    const { cache, discoveryUrl, http, issuer, jwksUri, ...validator } = options
    const source = jwksUri !== undefined
      ? yield* JwksSource.http(jwksUri, http)
      : yield* discoverySource(issuer, { discoveryUrl, http })
    return yield* jwksValidator(source, cache, { ...validator, issuer })
  })

/**
 * The `TokenValidator` of an OIDC issuer.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * ```ts
 * import { FetchHttpClient } from "@effect/platform"
 * import { Layer } from "effect"
 * import * as Oidc from "effect-jwks/providers/Oidc"
 *
 * const ValidatorLive = Oidc.layer({ issuer: "https://idp.example/realms/main", audience: "my-api" }).pipe(
 *   Layer.provide(FetchHttpClient.layer)
 * )
 * ```
 */
export const layer = (
  options: Options
): Layer.Layer<TokenValidator.TokenValidator, ConfigError.ConfigError, HttpClient.HttpClient> =>
  Layer.scoped(TokenValidator.TokenValidator, make(options))

/**
 * The options from configuration (by default the environment): `OIDC_ISSUER` and `OIDC_AUDIENCE` (comma-separated
 * for several) are required; `OIDC_JWKS_URI` and `OIDC_DISCOVERY_URL` are optional; the cache's `JWKS_CACHE_*`
 * settings (see `JwksCache.config`) go under `cache`. Each value is checked alone as it is read, a refused one named
 * by its variable (`OIDC_ISSUER`, an issuer with a stray space, say); `make` checks them together.
 *
 * @since 0.1.0
 * @category config
 * @example
 * ```ts
 * import { Config } from "effect"
 * import * as Oidc from "effect-jwks/providers/Oidc"
 *
 * // Issuer and audience from the environment; rules that are not deployment settings stay in code.
 * const ValidatorLive = Oidc.layerConfig(
 *   Config.map(Oidc.config, (options): Oidc.Options => ({ ...options, tokenTypes: ["access"], leeway: "30 seconds" }))
 * )
 * ```
 */
export const config: Config.Config<Options> = checkedOnRead(
  Config.all({
    issuer: Config.string("OIDC_ISSUER"),
    audience: list("OIDC_AUDIENCE"),
    jwksUri: Config.option(Config.string("OIDC_JWKS_URI")),
    discoveryUrl: Config.option(Config.string("OIDC_DISCOVERY_URL")),
    cache: JwksCache.config
  }).pipe(
    Config.map((read): Options => ({
      issuer: read.issuer,
      audience: read.audience,
      jwksUri: Option.getOrUndefined(read.jwksUri),
      discoveryUrl: Option.getOrUndefined(read.discoveryUrl),
      cache: read.cache
    }))
  ),
  { issuer: ["OIDC_ISSUER"], jwksUri: ["OIDC_JWKS_URI"], discoveryUrl: ["OIDC_DISCOVERY_URL"] },
  // Each value alone: the code may add to them (a `jwksUri` for an issuer that is not an http(s) URL), and `make`
  // checks them together.
  (options) =>
    Either.all([
      checkIssuer(options.issuer, false),
      checkUrl("jwksUri", options.jwksUri),
      checkUrl("discoveryUrl", options.discoveryUrl)
    ])
)

/**
 * The `TokenValidator` of an OIDC issuer, its options read through `Config` (by default {@link config}).
 *
 * @since 0.1.0
 * @category layers
 * @example
 * ```ts
 * import { FetchHttpClient } from "@effect/platform"
 * import { Config, Layer } from "effect"
 * import * as Oidc from "effect-jwks/providers/Oidc"
 *
 * // OIDC_ISSUER=https://idp.example/realms/main OIDC_AUDIENCE=my-api
 * const ValidatorLive = Oidc.layerConfig().pipe(Layer.provide(FetchHttpClient.layer))
 * const Custom = Oidc.layerConfig({ issuer: Config.string("ISSUER"), audience: Config.succeed("my-api") })
 * ```
 */
export const layerConfig = (
  options: Config.Config.Wrap<Options> = config
): Layer.Layer<TokenValidator.TokenValidator, ConfigError.ConfigError, HttpClient.HttpClient> =>
  Layer.scoped(TokenValidator.TokenValidator, Effect.flatMap(Config.unwrap(options), make))
