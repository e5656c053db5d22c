/**
 * @internal
 * What every JWKS-backed provider does: a cache over its source, and a validator over the cache. The validator's
 * options are checked first, so that a refused configuration never starts a cache (which fetches at once).
 */
import * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type * as Scope from "effect/Scope"
import * as Jwk from "../Jwk.js"
import * as JwksCache from "../JwksCache.js"
import type * as JwksSource from "../JwksSource.js"
import * as TokenValidator from "../TokenValidator.js"

/** @internal */
export const jwksValidator = (
  source: JwksSource.Service,
  cache: JwksCache.Options | undefined,
  validator: TokenValidator.Options
): Effect.Effect<TokenValidator.Service, ConfigError.ConfigError, Scope.Scope> =>
  Effect.gen(function*() {
    yield* TokenValidator.checkOptions(validator)
    yield* keySetAlgorithms(validator)
    if (cache !== undefined && (typeof cache !== "object" || cache === null)) {
      return yield* Effect.fail(ConfigError.InvalidData(["cache"], "expected the cache's options (JwksCache.Options)"))
    }
    // Before the cache starts, what `TokenValidator.make` refuses after: an algorithm the cache keeps no keys for.
    const kept: unknown = cache?.algorithms
    if (Array.isArray(kept)) yield* TokenValidator.allowsOnly(kept, validator, "the cache keeps keys for")
    // Named where the app wrote them, as `http` options are: `cache.interval`, not `interval`.
    const keys = yield* Effect.mapError(JwksCache.make(source, cache), ConfigError.prefixed(["cache"]))
    return yield* TokenValidator.make(TokenValidator.fromCache(keys), validator)
  })

/**
 * @internal
 * The algorithms of a validator over a key set: every one a key set can verify. An `HS*` among them is refused, not
 * ignored: `TokenValidator.multi` routes a token by the algorithms a validator allows, so a key-set validator that
 * named `HS256` beside a shared secret's (a migration) would take the secret's tokens, to refuse every one.
 */
export const keySetAlgorithms = (
  validator: TokenValidator.Options
): Either.Either<ReadonlyArray<Jwk.Algorithm>, ConfigError.ConfigError> => {
  const algorithms: ReadonlyArray<string> = validator.algorithms ?? TokenValidator.defaults.algorithms
  const hmac = algorithms.find((alg) => !Jwk.isAlgorithm(alg))
  if (hmac === undefined && algorithms.length > 0) return Either.right(algorithms as ReadonlyArray<Jwk.Algorithm>)
  const advice = "HS* are SharedSecret's: give it a validator of its own, under TokenValidator.multi"
  return Either.left(
    ConfigError.InvalidData(
      ["algorithms"],
      `expected algorithms a key set can verify, got ${hmac ?? "none"} (${advice})`
    )
  )
}

/**
 * @internal
 * A provider's principal claims: the app's, each left out defaulting to the provider's own. Anything but an object
 * (`null`, a string, from parsed JSON), or a member of the wrong type, is passed on as given, for the validator's check
 * to refuse it by name.
 */
export const principalWith = (
  principal: TokenValidator.Options["principal"],
  defaults: { readonly username: ReadonlyArray<string>; readonly groups: string }
): TokenValidator.Options["principal"] =>
  principal === undefined || (typeof principal === "object" && principal !== null)
    ? {
      // Only a member left out takes the default: `null` (parsed JSON) goes on, to be refused by name.
      username: principal?.username === undefined ? defaults.username : principal.username,
      groups: principal?.groups === undefined ? defaults.groups : principal.groups
    }
    : principal
