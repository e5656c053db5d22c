/**
 * Microsoft Entra ID (Azure AD), v2.0 tokens. Keys come from the tenant's OIDC discovery document; the issuer is
 * `${authority}/${tid}/v2.0`, where `tid` is the token's tenant claim.
 *
 * - **Single tenant** (`tenantId` a GUID): `iss` must be `${authority}/${tenantId}/v2.0` and `tid` the tenant.
 * - **Multi-tenant** (`common` or `organizations`): the discovery document's issuer is the template
 *   `${authority}/{tenantid}/v2.0`. A token is accepted when `tid` is a GUID, `iss` is the template with that `tid`
 *   in it, and `tid` is one of `allowedTenants` when they are given (`organizations` also refuses the personal
 *   Microsoft accounts tenant).
 * - **Personal accounts** (`consumers`): the single tenant {@link consumersTenantId}.
 *
 * Each key of the set may name the issuer it signs for (the multi-tenant sets label theirs: the `{tenantid}` template,
 * or one tenant's issuer, as the personal accounts tenant's keys): a token is refused as `IssuerMismatch` unless its
 * `iss` is its key's issuer, with its `tid` in the template (see `Jwk.signsFor`). A key of the personal accounts
 * tenant thus never signs a work tenant's token, whatever `allowedTenants` says.
 *
 * v1.0 tokens (`iss` `https://sts.windows.net/...`) are refused as issuer mismatches. A v2.0 access token's `aud` is
 * the API's client id (its application id, a GUID), never its app ID URI (`api://...`, the `aud` of v1.0 tokens): the
 * client id is the `audience` to give. Id tokens pass too unless `tokenTypes` says otherwise: an API whose app
 * registration also signs users in (its id tokens then carry the API's client id as `aud`) sets
 * `tokenTypes: ["access"]`.
 *
 * Principal: `id` is `sub` (pairwise: one value per user and app; the user's object id is `claims.oid`); `name` from
 * `preferred_username`, then `name`; `groups` from the `groups` claim (group object ids) and never from `roles`, so
 * that a token without a `groups` claim (no group claims configured, or a groups overage) does not silently turn app
 * role names into groups; pass `principal: { groups: "roles" }` to authorize on app roles. App-only tokens (an
 * `idtyp` of `app`, or, without that optional claim, no `scp` and a `sub` that is the `oid`) are machine principals'
 * access tokens.
 *
 * @since 0.1.0
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import { baseUrlExtra, checkedOnRead, hasSpaceOrControl, list } from "../internal/config.js"
import { jwksValidator, principalWith } from "../internal/provider.js"
import * as JwksCache from "../JwksCache.js"
import type * as JwksSource from "../JwksSource.js"
import type { Claims } from "../Principal.js"
import * as TokenValidator from "../TokenValidator.js"
import * as Oidc from "./Oidc.js"

/**
 * @since 0.1.0
 * @category models
 * @example
 * ```ts
 * import * as EntraId from "effect-jwks/providers/EntraId"
 *
 * const options: EntraId.Options = {
 *   tenantId: "organizations",
 *   audience: "0f6b3a2c-5d41-4e8b-9c7a-2f1e0d9c8b7a",
 *   allowedTenants: ["6f1c0b4e-0000-4000-8000-000000000001"],
 *   principal: { groups: "roles" }
 * }
 * ```
 */
export interface Options extends Omit<TokenValidator.Options, "issuer" | "audience" | "allowAnyAudience"> {
  /** A tenant GUID (single tenant), or `common` / `organizations` (multi-tenant), or `consumers`. */
  readonly tenantId: string
  /**
   * The client id (application id) of the API's app registration: the `aud` of its v2.0 access tokens. (Its app ID
   * URI, `api://...`, is the `aud` of v1.0 tokens only, which this provider refuses: given alone, every token fails
   * as `AudienceMismatch`.)
   */
  readonly audience: string | ReadonlyArray<string>
  /** Multi-tenant only: the tenant GUIDs to accept. Default: any tenant. */
  readonly allowedTenants?: ReadonlyArray<string> | undefined
  /**
   * Default `https://login.microsoftonline.com`; another cloud's (or a test's) login host. The host alone: MSAL's
   * authority, which names the tenant too, is refused (the tenant goes in `tenantId`).
   */
  readonly authority?: string | undefined
  readonly cache?: JwksCache.Options | undefined
  readonly http?: JwksSource.HttpOptions | undefined
}

/**
 * @since 0.1.0
 * @category defaults
 * @example
 * ```ts
 * import * as EntraId from "effect-jwks/providers/EntraId"
 *
 * console.log(EntraId.defaults.authority) // "https://login.microsoftonline.com"
 * ```
 */
export const defaults = {
  authority: "https://login.microsoftonline.com",
  username: ["preferred_username", "name"] as ReadonlyArray<string>,
  groups: "groups"
} as const

/**
 * The tenant of personal Microsoft accounts: the `tid` of every `consumers` token.
 *
 * @since 0.1.0
 * @category constants
 * @example
 * ```ts
 * import type { Principal } from "effect-jwks/Principal"
 * import * as EntraId from "effect-jwks/providers/EntraId"
 *
 * const isPersonalAccount = (principal: Principal) => principal.claims.tid === EntraId.consumersTenantId
 * ```
 */
export const consumersTenantId = "9188040d-6c67-4c5b-b112-36a304b66dad"

const guidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/**
 * Whether `value` is a GUID (the form of a tenant id).
 *
 * @since 0.1.0
 * @category utils
 * @example
 * ```ts
 * import * as EntraId from "effect-jwks/providers/EntraId"
 *
 * EntraId.isGuid("6f1c0b4e-0000-4000-8000-000000000001") // true
 * EntraId.isGuid("contoso.onmicrosoft.com") // false: use the tenant's GUID, not a domain
 * ```
 */
export const isGuid = (value: unknown): value is string => typeof value === "string" && guidPattern.test(value)

/**
 * Where a tenant's tokens and keys come from, and the rule its issuers follow.
 *
 * @since 0.1.0
 * @category models
 * @example
 * ```ts
 * import { Either } from "effect"
 * import * as EntraId from "effect-jwks/providers/EntraId"
 * import * as TokenValidator from "effect-jwks/TokenValidator"
 *
 * // Entra's issuer rule, for a validator over a key resolver of your own.
 * const tenancy: EntraId.Tenancy = Either.getOrThrow(
 *   EntraId.tenancy({ tenantId: "organizations", allowedTenants: ["6f1c0b4e-0000-4000-8000-000000000001"] })
 * )
 * declare const keys: TokenValidator.KeyResolver
 * const validator = TokenValidator.make(keys, {
 *   issuer: tenancy.issuer,
 *   audience: "0f6b3a2c-5d41-4e8b-9c7a-2f1e0d9c8b7a"
 * })
 * ```
 */
export interface Tenancy {
  readonly authority: string
  readonly discoveryUrl: string
  /** The `issuer` the discovery document must name: the tenant's issuer, or the `{tenantid}` template. */
  readonly discoveryIssuer: string
  /** `iss` against `tid` and the allowed tenants, for `TokenValidator`. */
  readonly issuer: Exclude<TokenValidator.IssuerRule, string | ReadonlyArray<string>>
  /** Whether an `iss` alone could be one of ours (multi-issuer routing, before the claims are verified). */
  readonly acceptsIssuer: (iss: string) => boolean
}

/**
 * Checks `tenantId`, `allowedTenants` and `authority` and derives the discovery URL and issuer rule. A bad option
 * is a `ConfigError` naming it.
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * ```ts
 * import { Either } from "effect"
 * import * as EntraId from "effect-jwks/providers/EntraId"
 *
 * const tenancy = Either.getOrThrow(EntraId.tenancy({ tenantId: "organizations" }))
 * tenancy.discoveryUrl // "https://login.microsoftonline.com/organizations/v2.0/.well-known/openid-configuration"
 * tenancy.acceptsIssuer("https://login.microsoftonline.com/6f1c0b4e-0000-4000-8000-000000000001/v2.0") // true
 * ```
 */
export const tenancy = (
  options: Pick<Options, "tenantId" | "allowedTenants" | "authority">
): Either.Either<Tenancy, ConfigError.ConfigError> => {
  const bad = (path: string, message: string) => Either.left(ConfigError.InvalidData([path], message))
  if (options.authority !== undefined && typeof options.authority !== "string") {
    return bad("authority", "expected an http(s) URL such as https://login.microsoftonline.com")
  }
  // The issuer is made from it and compared with tokens exactly: `new URL` below would drop a stray newline.
  if (options.authority !== undefined && hasSpaceOrControl(options.authority)) {
    return bad("authority", "the authority contains white space, control or invisible characters")
  }
  const authority = (options.authority ?? defaults.authority).replace(/\/+$/, "")
  const url = (() => {
    try {
      return new URL(authority)
    } catch {
      return undefined
    }
  })()
  if (url === undefined || (url.protocol !== "https:" && url.protocol !== "http:")) {
    return bad("authority", "expected an http(s) URL such as https://login.microsoftonline.com")
  }
  // The login host alone: the tenant and `v2.0` are appended to it. (MSAL's authority names the tenant too: given
  // here, the tenant would be in the discovery URL twice, and every validation fail for want of keys.)
  const extra = baseUrlExtra(authority, url) ?? (url.pathname === "/" ? undefined : "a path")
  if (extra !== undefined) {
    return bad(
      "authority",
      `expected the login host alone, such as https://login.microsoftonline.com, without ${extra} (the tenant goes in tenantId)`
    )
  }
  if (typeof options.tenantId !== "string") return bad("tenantId", "expected a tenant GUID")
  const tenantId = options.tenantId.toLowerCase()
  const multi = tenantId === "common" || tenantId === "organizations"
  if (!multi && tenantId !== "consumers" && !isGuid(tenantId)) {
    return bad("tenantId", "expected a tenant GUID, or common, organizations or consumers")
  }
  if (options.allowedTenants !== undefined) {
    if (!multi) return bad("allowedTenants", "only a common or organizations tenantId takes allowedTenants")
    if (!Array.isArray(options.allowedTenants)) return bad("allowedTenants", "expected a list of tenant GUIDs")
    if (options.allowedTenants.length === 0) {
      return bad("allowedTenants", "expected at least one tenant GUID (leave it out to accept any tenant)")
    }
    const notGuid = options.allowedTenants.findIndex((tenant): boolean => !isGuid(tenant))
    if (notGuid !== -1) {
      return bad("allowedTenants", `expected tenant GUIDs, got ${String(options.allowedTenants[notGuid]).slice(0, 64)}`)
    }
    if (
      tenantId === "organizations" &&
      options.allowedTenants.some((tenant) => tenant.toLowerCase() === consumersTenantId)
    ) {
      return bad(
        "allowedTenants",
        "organizations refuses the personal Microsoft accounts tenant; use common to accept personal accounts"
      )
    }
  }
  const single = multi ? undefined : tenantId === "consumers" ? consumersTenantId : tenantId
  const allowed: ReadonlySet<string> | undefined = single !== undefined
    ? new Set([single])
    : options.allowedTenants !== undefined
    ? new Set(options.allowedTenants.map((tenant) => tenant.toLowerCase()))
    : undefined
  const tenantAllowed = (tid: string): boolean => {
    const lower = tid.toLowerCase()
    if (tenantId === "organizations" && lower === consumersTenantId) return false
    return allowed === undefined || allowed.has(lower)
  }
  const prefix = `${authority}/`
  const suffix = "/v2.0"
  const issuerOf = (tid: string) => `${prefix}${tid}${suffix}`
  const template = issuerOf("{tenantid}")
  const acceptsIssuer = (iss: string): boolean => {
    if (!iss.startsWith(prefix) || !iss.endsWith(suffix)) return false
    const tid = iss.slice(prefix.length, iss.length - suffix.length)
    return isGuid(tid) && tenantAllowed(tid)
  }
  return Either.right({
    authority,
    discoveryUrl: Oidc.discoveryUrlOf(`${prefix}${tenantId}${suffix}`),
    discoveryIssuer: single === undefined ? template : issuerOf(single),
    issuer: {
      description: single === undefined
        ? `${template} for ${allowed === undefined ? "a tenant" : "an allowed tenant"}`
        : issuerOf(single),
      matches: (iss: string, claims: Claims) =>
        isGuid(claims.tid) && tenantAllowed(claims.tid) && iss === issuerOf(claims.tid),
      accepts: acceptsIssuer
    },
    acceptsIssuer
  })
}

/**
 * Builds a validator for an Entra ID tenant (or for many): a key cache over the keys of the tenant's discovery
 * document, and the validator's checks with the tenant's issuer rule and `audience`.
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import * as EntraId from "effect-jwks/providers/EntraId"
 *
 * const program = Effect.gen(function*() {
 *   const validator = yield* EntraId.make({
 *     tenantId: "common",
 *     audience: "0f6b3a2c-5d41-4e8b-9c7a-2f1e0d9c8b7a", // the API's client id
 *     allowedTenants: ["3f2b1c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"],
 *     tokenTypes: ["access"]
 *   })
 *   return yield* validator.validate("eyJ...")
 * })
 * ```
 */
export const make = (
  options: Options
): Effect.Effect<TokenValidator.Service, ConfigError.ConfigError, HttpClient.HttpClient | Scope.Scope> =>
  Effect.gen(function*() {
    const resolved = yield* tenancy(options)
    const {
      allowedTenants: _allowedTenants,
      authority: _authority,
      cache,
      http,
      principal,
      tenantId: _tenantId,
      ...validator
    } = options
    const source = yield* Oidc.discoverySource(resolved.discoveryIssuer, { discoveryUrl: resolved.discoveryUrl, http })
    return yield* jwksValidator(source, cache, {
      ...validator,
      issuer: resolved.issuer,
      principal: principalWith(principal, defaults)
    })
  })

/**
 * The `TokenValidator` of an Entra ID tenant.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * ```ts
 * import { FetchHttpClient } from "@effect/platform"
 * import { Layer } from "effect"
 * import * as EntraId from "effect-jwks/providers/EntraId"
 *
 * const ValidatorLive = EntraId.layer({
 *   tenantId: "6f1c0b4e-0000-4000-8000-000000000001",
 *   audience: "0f6b3a2c-5d41-4e8b-9c7a-2f1e0d9c8b7a" // the API's client id
 * }).pipe(Layer.provide(FetchHttpClient.layer))
 * ```
 */
export const layer = (
  options: Options
): Layer.Layer<TokenValidator.TokenValidator, ConfigError.ConfigError, HttpClient.HttpClient> =>
  Layer.scoped(TokenValidator.TokenValidator, make(options))

/**
 * The options from configuration (by default the environment): `ENTRA_TENANT_ID` and `ENTRA_AUDIENCE`
 * (comma-separated for several) are required; `ENTRA_ALLOWED_TENANTS` (comma-separated) and `ENTRA_AUTHORITY` are
 * optional; the cache's `JWKS_CACHE_*` settings go under `cache`. Values are checked as they are read, a refused one
 * named by its variable (`ENTRA_TENANT_ID`, a tenant that is not a GUID, say).
 *
 * @since 0.1.0
 * @category config
 * @example
 * ```ts
 * import { Config } from "effect"
 * import * as EntraId from "effect-jwks/providers/EntraId"
 *
 * // ORDERS_ENTRA_TENANT_ID=<guid> ORDERS_ENTRA_AUDIENCE=<the API's client id> (ORDERS_JWKS_CACHE_* for its cache)
 * const OrdersValidator = EntraId.layerConfig(Config.nested(EntraId.config, "ORDERS"))
 * ```
 */
export const config: Config.Config<Options> = checkedOnRead(
  Config.all({
    tenantId: Config.string("ENTRA_TENANT_ID"),
    audience: list("ENTRA_AUDIENCE"),
    allowedTenants: Config.option(list("ENTRA_ALLOWED_TENANTS")),
    authority: Config.option(Config.string("ENTRA_AUTHORITY")),
    cache: JwksCache.config
  }).pipe(
    Config.map((read): Options => ({
      tenantId: read.tenantId,
      audience: read.audience,
      allowedTenants: Option.getOrUndefined(read.allowedTenants),
      authority: Option.getOrUndefined(read.authority),
      cache: read.cache
    }))
  ),
  { tenantId: ["ENTRA_TENANT_ID"], allowedTenants: ["ENTRA_ALLOWED_TENANTS"], authority: ["ENTRA_AUTHORITY"] },
  tenancy
)

/**
 * The `TokenValidator` of an Entra ID tenant, its options read through `Config` (by default {@link config}).
 *
 * @since 0.1.0
 * @category layers
 * @example
 * ```ts
 * import { FetchHttpClient } from "@effect/platform"
 * import { Layer } from "effect"
 * import * as EntraId from "effect-jwks/providers/EntraId"
 *
 * // ENTRA_TENANT_ID=common ENTRA_AUDIENCE=<the API's client id> ENTRA_ALLOWED_TENANTS=<guid>,<guid>
 * const ValidatorLive = EntraId.layerConfig().pipe(Layer.provide(FetchHttpClient.layer))
 * ```
 */
export const layerConfig = (
  options: Config.Config.Wrap<Options> = config
): Layer.Layer<TokenValidator.TokenValidator, ConfigError.ConfigError, HttpClient.HttpClient> =>
  Layer.scoped(TokenValidator.TokenValidator, Effect.flatMap(Config.unwrap(options), make))
