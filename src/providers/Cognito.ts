/**
 * Amazon Cognito user pools. The issuer is `https://cognito-idp.<region>.amazonaws.com/<userPoolId>` and its key
 * set is at `<issuer>/.well-known/jwks.json` (no discovery). On top of the validator's checks:
 *
 * - `token_use` must be `id` or `access`, and the one asked for (`tokenUse`).
 * - The app client: an id token's `aud` must be one of `clientId`, an access token's `client_id` must be. Neither
 *   falls back on the other.
 * - An access token bound to a resource server (an `aud`, as Cognito writes one when the client asked for a
 *   `resource`, RFC 8707) must name one of `resource`: without it, such a token is refused, as a token meant for
 *   another API would be. An access token without `aud` is judged by its `client_id` alone.
 *
 * Principal: `name` from `cognito:username`, then `username`; `groups` from `cognito:groups`.
 *
 * @since 0.1.0
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import { strings } from "../internal/claims.js"
import { baseUrlExtra, checkedOnRead, hasSpaceOrControl, list } from "../internal/config.js"
import { jwksValidator, principalWith } from "../internal/provider.js"
import * as JwksCache from "../JwksCache.js"
import * as JwksSource from "../JwksSource.js"
import type { Claims } from "../Principal.js"
import { TokenValidationError } from "../TokenValidationError.js"
import * as TokenValidator from "../TokenValidator.js"

/**
 * @since 0.1.0
 * @category models
 * @example
 * ```ts
 * import * as Cognito from "effect-jwks/providers/Cognito"
 *
 * // One pool, two validators: id tokens for the web sign-in, access tokens for the API.
 * const validatorFor = (tokenUse: Cognito.TokenUse) =>
 *   Cognito.make({ userPoolId: "eu-west-1_AbCdEf123", clientId: "web-client", tokenUse })
 * ```
 */
export type TokenUse = "id" | "access"

/**
 * @since 0.1.0
 * @category models
 * @example
 * ```ts
 * import * as Cognito from "effect-jwks/providers/Cognito"
 *
 * const options: Cognito.Options = {
 *   userPoolId: "eu-west-1_AbCdEf123",
 *   clientId: ["web-client", "mobile-client"],
 *   tokenUse: "id",
 *   leeway: "5 seconds",
 *   cache: { strategy: "time", interval: "30 minutes" }
 * }
 * ```
 */
export interface Options
  extends Omit<TokenValidator.Options, "issuer" | "audience" | "allowAnyAudience" | "tokenTypes">
{
  /** The user pool, such as `eu-west-1_AbCdEf123`. */
  readonly userPoolId: string
  /** The pool's region. Default: the prefix of `userPoolId`, which it must equal when given. */
  readonly region?: string | undefined
  /** The app client id(s) the tokens must be for; `null` to accept tokens of any client of the pool. */
  readonly clientId: string | ReadonlyArray<string> | null
  /** The kind of token to accept; `null` for either. */
  readonly tokenUse: TokenUse | null
  /**
   * This API's resource server identifier(s) (RFC 8707), for access tokens bound to one: such a token's `aud` must
   * name one of them. Default: none, so every bound access token is refused.
   */
  readonly resource?: string | ReadonlyArray<string> | undefined
  /**
   * The base of the issuer, for a local emulator or another partition. Default
   * `https://cognito-idp.<region>.amazonaws.com`.
   */
  readonly endpoint?: string | undefined
  readonly cache?: JwksCache.Options | undefined
  readonly http?: JwksSource.HttpOptions | undefined
}

/**
 * @since 0.1.0
 * @category defaults
 * @example
 * ```ts
 * import * as Cognito from "effect-jwks/providers/Cognito"
 *
 * console.log(Cognito.defaults.groups) // "cognito:groups": the claim Principal.groups comes from
 * ```
 */
export const defaults = {
  username: ["cognito:username", "username"] as ReadonlyArray<string>,
  groups: "cognito:groups"
} as const

const userPoolIdPattern = /^([a-z]{2}(?:-[a-z]+)+-\d{1,2})_[0-9A-Za-z]{1,52}$/
const regionPattern = /^[a-z]{2}(?:-[a-z]+)+-\d{1,2}$/

/**
 * Where a pool's tokens come from.
 *
 * @since 0.1.0
 * @category models
 * @example
 * ```ts
 * import { Either } from "effect"
 * import * as JwksSource from "effect-jwks/JwksSource"
 * import * as Cognito from "effect-jwks/providers/Cognito"
 *
 * const pool: Cognito.Endpoints = Either.getOrThrow(Cognito.endpoints({ userPoolId: "eu-west-1_AbCdEf123" }))
 * // The pool's key set as a source of your own, for a cache shared by several validators.
 * const SourceLive = JwksSource.layerHttp(pool.jwksUri)
 * ```
 */
export interface Endpoints {
  readonly region: string
  /** `${endpoint}/${userPoolId}` */
  readonly issuer: string
  /** `${issuer}/.well-known/jwks.json` */
  readonly jwksUri: string
}

/**
 * Checks the pool id (and the region, when given) and derives the issuer and key set URL. A bad option is a
 * `ConfigError` naming it.
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * ```ts
 * import * as Cognito from "effect-jwks/providers/Cognito"
 *
 * // A local emulator: Either.right({ region: "us-east-1", issuer: "http://localhost:4566/us-east-1_Local123", ... })
 * const urls = Cognito.endpoints({ userPoolId: "us-east-1_Local123", endpoint: "http://localhost:4566" })
 * ```
 */
export const endpoints = (
  options: Pick<Options, "userPoolId" | "region" | "endpoint">
): Either.Either<Endpoints, ConfigError.ConfigError> => {
  const bad = (path: string, message: string) => Either.left(ConfigError.InvalidData([path], message))
  const match = typeof options.userPoolId === "string" ? userPoolIdPattern.exec(options.userPoolId) : null
  if (match === null) return bad("userPoolId", "expected a user pool id such as eu-west-1_AbCdEf123")
  const poolRegion = match[1]!
  if (options.region !== undefined) {
    if (typeof options.region !== "string" || !regionPattern.test(options.region)) {
      return bad("region", "expected an AWS region such as eu-west-1")
    }
    if (options.region !== poolRegion) {
      return bad("region", `the region ${options.region} is not the pool's region ${poolRegion}`)
    }
  }
  if (options.endpoint !== undefined && typeof options.endpoint !== "string") {
    return bad("endpoint", "expected an http(s) URL")
  }
  // The issuer is made from it and compared with tokens exactly: `new URL` below would drop a stray newline.
  if (options.endpoint !== undefined && hasSpaceOrControl(options.endpoint)) {
    return bad("endpoint", "the endpoint contains white space, control or invisible characters")
  }
  const base = (options.endpoint ?? `https://cognito-idp.${poolRegion}.amazonaws.com`).replace(/\/+$/, "")
  const url = (() => {
    try {
      return new URL(base)
    } catch {
      return undefined
    }
  })()
  if (url === undefined || (url.protocol !== "https:" && url.protocol !== "http:")) {
    return bad("endpoint", "expected an http(s) URL")
  }
  // The pool's path is appended to it: after a query or a fragment it would be no path.
  const extra = baseUrlExtra(base, url)
  if (extra !== undefined) return bad("endpoint", `expected an http(s) URL without ${extra}`)
  const issuer = `${base}/${options.userPoolId}`
  return Either.right({ region: poolRegion, issuer, jwksUri: `${issuer}/.well-known/jwks.json` })
}

/**
 * An option of one identifier or a list of them (`clientId`, `resource`), as a set; `null` or `undefined` (whichever
 * the option allows for "none") as `undefined`. Every item must be a non-empty string: one of another type (parsed
 * JSON's number) is refused, not dropped from the list.
 */
const idSet = (
  value: unknown,
  path: string,
  expected: string
): Either.Either<ReadonlySet<string> | undefined, ConfigError.ConfigError> => {
  const ids: ReadonlyArray<unknown> = typeof value === "string" ? [value] : Array.isArray(value) ? value : []
  return ids.length === 0 || ids.some((id) => typeof id !== "string" || id.length === 0)
    ? Either.left(ConfigError.InvalidData([path], expected))
    : Either.right(new Set(ids as ReadonlyArray<string>))
}

const checkClient = (clientId: Options["clientId"]) =>
  clientId === null
    ? Either.right(undefined)
    : idSet(clientId, "clientId", "expected the app client id(s), or null to accept any client")

const checkResource = (resource: Options["resource"]) =>
  resource === undefined
    ? Either.right(undefined)
    : idSet(resource, "resource", "expected this API's resource server identifier(s)")

const checkTokenUse = (tokenUse: Options["tokenUse"]): Either.Either<TokenUse | null, ConfigError.ConfigError> =>
  tokenUse === null || tokenUse === "id" || tokenUse === "access"
    ? Either.right(tokenUse)
    : Either.left(ConfigError.InvalidData(["tokenUse"], "expected \"id\", \"access\" or null (either)"))

const refuse = (reason: TokenValidationError["reason"], description: string) =>
  Exit.fail(new TokenValidationError({ reason, description }))

/**
 * Builds a validator for a Cognito user pool: a key cache over the pool's key set, the validator's checks with the
 * pool as issuer, then `token_use` and the app client (see the module's description), then the `check` option.
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import * as Cognito from "effect-jwks/providers/Cognito"
 *
 * const program = Effect.gen(function*() {
 *   const validator = yield* Cognito.make({ userPoolId: "eu-west-1_AbCdEf123", clientId: "abc", tokenUse: "access" })
 *   return yield* validator.validate("eyJ...")
 * })
 * ```
 */
export const make = (
  options: Options
): Effect.Effect<TokenValidator.Service, ConfigError.ConfigError, HttpClient.HttpClient | Scope.Scope> =>
  Effect.gen(function*() {
    const urls = yield* endpoints(options)
    const clientIds = yield* checkClient(options.clientId)
    const tokenUse = yield* checkTokenUse(options.tokenUse)
    const resources = yield* checkResource(options.resource)
    yield* JwksSource.checkHttpOptions(options.http, ["http"])
    // Wrapped below, where the validator's own check of it would see only the wrapper.
    if (options.check !== undefined && typeof options.check !== "function") {
      return yield* Effect.fail(
        ConfigError.InvalidData(["check"], "expected a function from the claims to an effect")
      )
    }
    const {
      cache,
      check,
      clientId: _clientId,
      endpoint: _endpoint,
      http,
      resource: _resource,
      principal: principalClaims,
      region: _region,
      tokenUse: _tokenUse,
      userPoolId: _userPoolId,
      ...validator
    } = options
    /** `token_use`, then the app client on the claim Cognito puts it in for each kind of token, then yours. */
    const checkCognito = (
      claims: Claims,
      header: TokenValidator.Header
    ): Effect.Effect<void, string | TokenValidationError> => {
      // Exits, not effects: decided at once, so a validation from memory needs no fiber (see `toPromise`).
      const use = claims.token_use
      if (use !== "id" && use !== "access") {
        return refuse("TokenType", "the token has no Cognito token_use of id or access")
      }
      if (tokenUse !== null && use !== tokenUse) {
        return refuse("TokenType", `expected a Cognito ${tokenUse} token, got ${use}`)
      }
      if (clientIds !== undefined) {
        const presented = use === "id" ? strings(claims.aud) : strings(claims.client_id)
        if (!presented.some((id) => clientIds.has(id))) {
          return refuse(
            "AudienceMismatch",
            use === "id"
              ? "the id token's aud is not an allowed app client"
              : "the access token's client_id is not an allowed app client"
          )
        }
      }
      // Bound to a resource server (RFC 8707): to this API's only.
      if (use === "access" && claims.aud !== undefined && !strings(claims.aud).some((aud) => resources?.has(aud))) {
        return refuse(
          "AudienceMismatch",
          resources === undefined
            ? "the access token is bound to a resource server (aud), and no resource is configured"
            : "the access token is bound to another resource server"
        )
      }
      return check === undefined ? Exit.void : check(claims, header)
    }

    const source = yield* JwksSource.http(urls.jwksUri, http)
    return yield* jwksValidator(source, cache, {
      ...validator,
      issuer: urls.issuer,
      // The app client is checked by checkCognito, on the claim Cognito puts it in for each kind of token.
      allowAnyAudience: true,
      check: checkCognito,
      principal: principalWith(principalClaims, defaults)
    })
  })

/**
 * The `TokenValidator` of a Cognito user pool.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * ```ts
 * import { FetchHttpClient } from "@effect/platform"
 * import { Layer } from "effect"
 * import * as Cognito from "effect-jwks/providers/Cognito"
 *
 * const ValidatorLive = Cognito.layer({ userPoolId: "eu-west-1_AbCdEf123", clientId: "abc", tokenUse: "id" })
 *   .pipe(Layer.provide(FetchHttpClient.layer))
 * ```
 */
export const layer = (
  options: Options
): Layer.Layer<TokenValidator.TokenValidator, ConfigError.ConfigError, HttpClient.HttpClient> =>
  Layer.scoped(TokenValidator.TokenValidator, make(options))

/**
 * The options from configuration (by default the environment): `COGNITO_USER_POOL_ID`, `COGNITO_CLIENT_ID`
 * (comma-separated for several) and `COGNITO_TOKEN_USE` (`id`, `access` or `any`) are required; `COGNITO_REGION`,
 * `COGNITO_ENDPOINT` and `COGNITO_RESOURCE` (comma-separated for several) are optional; the cache's `JWKS_CACHE_*`
 * settings go under `cache`. Skipping the client check (`clientId: null`) is possible in code only. Values are checked
 * as they are read, a refused one named by its variable (`COGNITO_REGION`, a region other than the pool's, say).
 *
 * @since 0.1.0
 * @category config
 * @example
 * ```ts
 * import { ConfigProvider, Effect } from "effect"
 * import * as Cognito from "effect-jwks/providers/Cognito"
 *
 * const provider = ConfigProvider.fromJson({
 *   COGNITO_USER_POOL_ID: "eu-west-1_AbCdEf123",
 *   COGNITO_CLIENT_ID: "web-client, mobile-client",
 *   COGNITO_TOKEN_USE: "any"
 * })
 * const options = Effect.runSync(Effect.withConfigProvider(Cognito.config, provider))
 * // { userPoolId: "eu-west-1_AbCdEf123", clientId: ["web-client", "mobile-client"], tokenUse: null, ... }
 * ```
 */
export const config: Config.Config<Options> = checkedOnRead(
  Config.all({
    userPoolId: Config.string("COGNITO_USER_POOL_ID"),
    region: Config.option(Config.string("COGNITO_REGION")),
    clientId: list("COGNITO_CLIENT_ID"),
    tokenUse: Config.literal("id", "access", "any")("COGNITO_TOKEN_USE"),
    endpoint: Config.option(Config.string("COGNITO_ENDPOINT")),
    resource: Config.option(list("COGNITO_RESOURCE")),
    cache: JwksCache.config
  }).pipe(
    Config.map((read): Options => ({
      userPoolId: read.userPoolId,
      region: Option.getOrUndefined(read.region),
      clientId: read.clientId,
      tokenUse: read.tokenUse === "any" ? null : read.tokenUse,
      endpoint: Option.getOrUndefined(read.endpoint),
      resource: Option.getOrUndefined(read.resource),
      cache: read.cache
    }))
  ),
  { userPoolId: ["COGNITO_USER_POOL_ID"], region: ["COGNITO_REGION"], endpoint: ["COGNITO_ENDPOINT"] },
  endpoints
)

/**
 * The `TokenValidator` of a Cognito user pool, its options read through `Config` (by default {@link config}).
 *
 * @since 0.1.0
 * @category layers
 * @example
 * ```ts
 * import { FetchHttpClient } from "@effect/platform"
 * import { Layer } from "effect"
 * import * as Cognito from "effect-jwks/providers/Cognito"
 *
 * // COGNITO_USER_POOL_ID=eu-west-1_AbCdEf123 COGNITO_CLIENT_ID=abc123 COGNITO_TOKEN_USE=access
 * const ValidatorLive = Cognito.layerConfig().pipe(Layer.provide(FetchHttpClient.layer))
 * ```
 */
export const layerConfig = (
  options: Config.Config.Wrap<Options> = config
): Layer.Layer<TokenValidator.TokenValidator, ConfigError.ConfigError, HttpClient.HttpClient> =>
  Layer.scoped(TokenValidator.TokenValidator, Effect.flatMap(Config.unwrap(options), make))
