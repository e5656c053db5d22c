/**
 * @internal
 * What every JWKS-backed provider does: a cache over its source, and a validator over the cache. The validator's
 * options are checked first, so that a refused configuration never starts a cache (which fetches at once).
 */
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as JwksCache from "../JwksCache.js"
import type * as JwksSource from "../JwksSource.js"
import * as TokenValidator from "../TokenValidator.js"

/** @internal */
export const jwksValidator = (
  source: JwksSource.Service,
  cache: JwksCache.Options | undefined,
  validator: TokenValidator.Options
): Effect.Effect<TokenValidator.Service, ConfigError.ConfigError, Scope.Scope> =>
  Effect.zipRight(
    TokenValidator.checkOptions(validator),
    Effect.flatMap(JwksCache.make(source, cache), (keys) =>
      TokenValidator.make(TokenValidator.fromCache(keys), validator))
  )
