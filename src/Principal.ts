/**
 * Who a validated token speaks for.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as Equal from "effect/Equal"
import * as Hash from "effect/Hash"

/**
 * What kind of token it was: `refresh` when any claim marks one, else from a `token_use` of `id` or `access`, else from
 * `typ` and the other claims (see `TokenValidator.classify`).
 *
 * @since 0.1.0
 * @category models
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import type * as Principal from "effect-jwks/Principal"
 * import * as TokenValidator from "effect-jwks/TokenValidator"
 *
 * // A sign-in page takes id tokens; the API, access tokens.
 * const routeFor = (type: Principal.TokenType) => type === "id" ? "/session" : type === "access" ? "/api" : undefined
 * const route = Effect.map(TokenValidator.validate("eyJ..."), (principal) => routeFor(principal.tokenType))
 * ```
 */
export type TokenType = "id" | "access" | "refresh" | "unknown"

/**
 * The claims of a verified token, as they were in it.
 *
 * @since 0.1.0
 * @category models
 * @example
 * ```ts
 * import type * as Principal from "effect-jwks/Principal"
 *
 * // A claim of the IdP's own (`principal.claims`): `unknown` until its type is checked.
 * const tenantOf = (claims: Principal.Claims): string | undefined =>
 *   typeof claims.tenant === "string" ? claims.tenant : undefined
 * ```
 */
export type Claims = Readonly<Record<string, unknown>>

/**
 * The subject of a verified token, with the identity and authorization facts apps most often need, and every
 * verified claim for the rest.
 *
 * @since 0.1.0
 * @category models
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import * as TokenValidator from "effect-jwks/TokenValidator"
 *
 * const program = Effect.gen(function*() {
 *   const principal = yield* TokenValidator.validate("eyJ...")
 *   if (principal.groups.includes("admin")) console.log(`${principal.name ?? principal.id} is an admin`)
 * })
 * ```
 */
export class Principal extends Data.Class<{
  /**
   * `sub`, else the client id (machine-to-machine tokens), else `""` (a token that names neither: all such tokens share
   * it, so add `requiredClaims: ["sub"]` if you key sessions or limits by `id`).
   */
  readonly id: string
  /** The username claim (with the provider's fallbacks), else `email`; never an email the token says is unverified. */
  readonly name: string | undefined
  /**
   * The `email` claim, unless the token says it was not verified (`email_verified: false`, or `"false"` in any case as
   * Cognito has sent it: an address anyone may have typed at sign-up; it stays in `claims`). Not unique, and some IdPs
   * let users change it: key accounts by `id`.
   */
  readonly email: string | undefined
  /** From the groups claim (a string or an array of them), empty names left out. */
  readonly groups: ReadonlyArray<string>
  /** From `scope` (space separated, or an array), else `scp` (the same), empty names left out. */
  readonly scopes: ReadonlyArray<string>
  readonly tokenType: TokenType
  /** `client_id`, else `azp`, else `appid` (Entra ID v1.0), else `cid` (Okta). */
  readonly clientId: string | undefined
  /**
   * True for a client acting on its own behalf (client credentials), not for a user: an `idtyp` of `app` (Entra ID)
   * or a `gty` of `client-credentials` (Auth0); else, for an access token, a `sub` that is the client id or none (RFC
   * 9068, Okta), or a `sub` that is the `oid` without `scp` (Entra ID without its optional `idtyp`); for a token of no
   * known kind, a `sub` that is the client id (a Google service account's identity token). Not a Keycloak
   * service account, whose token names a user (`service-account-<client>`, a name a person could hold elsewhere): to
   * tell one, read a claim your realm maps for service accounts from `claims`.
   */
  readonly isMachine: boolean
  readonly issuer: string
  readonly expiresAt: Date
  readonly claims: Claims
}> {
  /**
   * @since 0.1.0
   */
  hasGroup(group: string): boolean {
    return this.groups.includes(group)
  }

  /**
   * @since 0.1.0
   */
  hasScope(scope: string): boolean {
    return this.scopes.includes(scope)
  }

  /**
   * Equal when every field is, the lists, `expiresAt` and `claims` by their contents: two validations of one token
   * give equal Principals, whether or not the verified-token cache remembered it (which shares its lists).
   *
   * @since 0.1.0
   */
  [Equal.symbol](that: Equal.Equal): boolean {
    return that instanceof Principal && sameContent(this, that)
  }

  /**
   * @since 0.1.0
   */
  [Hash.symbol](): number {
    // Not cached on the object: a Principal an app froze stays hashable.
    return Hash.combine(Hash.string(this.id))(Hash.number(this.expiresAt.getTime()))
  }
}

/**
 * Whether two values hold the same: plain objects and arrays member by member (their enumerable own keys), and so two
 * values whose equality is `Data`'s own (which compares plain lists by reference); any other object by its own
 * `Equal` (dates by time, a `HashSet` by its members; a `Redacted`, or a class comparing a hidden field, is taken at its
 * word). A loop over a list of pairs, not a recursion: a token's claims may nest thousands of levels deep within the
 * size cap (and an app's own Principal may hold a cycle, whose pairs seen again are taken as the same).
 */
const sameContent = (a: object, b: object): boolean => {
  const pairs: Array<readonly [unknown, unknown]> = [[{ ...a }, { ...b }]]
  const seen = new Map<object, Set<object>>()
  for (let pair = pairs.pop(); pair !== undefined; pair = pairs.pop()) {
    const [x, y] = pair
    if (x === y || (x !== x && y !== y)) continue // NaN, as an app's claims may hold it, is itself
    if (typeof x !== "object" || typeof y !== "object" || x === null || y === null) return false
    if (seen.get(x)?.has(y) === true) continue
    seen.set(x, (seen.get(x) ?? new Set()).add(y))
    if (Array.isArray(x) || Array.isArray(y)) {
      if (!Array.isArray(x) || !Array.isArray(y) || x.length !== y.length) return false
      for (let i = 0; i < x.length; i++) pairs.push([x[i], y[i]])
      continue
    }
    // Never `Equal.equals` on these: `Data`'s own equality and hash recurse (and cache a hash on the value).
    const members = (isPlain(x) && isPlain(y) && !Equal.isEqual(x) && !Equal.isEqual(y)) ||
      (hasDataEquality(x) && hasDataEquality(y))
    if (!members) {
      if (isPlain(x) !== isPlain(y) || !Equal.equals(x, y)) return false
      continue
    }
    const keys = Object.keys(x)
    if (keys.length !== Object.keys(y).length) return false
    for (const key of keys) {
      if (!Object.prototype.propertyIsEnumerable.call(y, key)) return false
      pairs.push([(x as Record<string, unknown>)[key], (y as Record<string, unknown>)[key]])
    }
  }
  return true
}

/** `Data`'s structural equality, as `Data.struct` and `Data.Class` values have it unless they define their own. */
const dataEquality: unknown = (Data.struct({}) as unknown as Equal.Equal)[Equal.symbol]

const hasDataEquality = (value: object): boolean =>
  Equal.isEqual(value) && (value as unknown as Equal.Equal)[Equal.symbol] === dataEquality

const isPlain = (value: object): boolean => {
  const prototype: unknown = Object.getPrototypeOf(value)
  return prototype === Object.prototype || prototype === null
}
