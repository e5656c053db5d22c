/**
 * @internal
 * What every JWKS-backed provider does: a cache over its source, and a validator over the cache. The validator's
 * options are checked first, so that a refused configuration never starts a cache (which fetches at once).
 */
import * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
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
    const algorithms: ReadonlyArray<string> = validator.algorithms ?? TokenValidator.defaults.algorithms
    if (!algorithms.some((alg) => (Jwk.Algorithm.literals as ReadonlyArray<string>).includes(alg))) {
      return yield* Effect.fail(ConfigError.InvalidData(
        ["algorithms"],
        "expected an algorithm a key set can verify (HS* are SharedSecret's)"
      ))
    }
    if (cache !== undefined && (typeof cache !== "object" || cache === null)) {
      return yield* Effect.fail(ConfigError.InvalidData(["cache"], "expected the cache's options (JwksCache.Options)"))
    }
    const keys = yield* JwksCache.make(source, cache)
    return yield* TokenValidator.make(TokenValidator.fromCache(keys), validator)
  })
