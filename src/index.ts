/**
 * effect-jwks: validate JWTs against an identity provider's JSON Web Key Set, with a key cache that never makes a
 * request wait for the provider while its keys are warm.
 *
 * @since 0.1.0
 * @example
 * ```ts
 * import { FetchHttpClient } from "@effect/platform"
 * import { Effect, Layer } from "effect"
 * import { Oidc, TokenValidator } from "effect-jwks"
 *
 * const ValidatorLive = Oidc.layer({ issuer: "https://idp.example/realms/main", audience: "my-api" }).pipe(
 *   Layer.provide(FetchHttpClient.layer)
 * )
 * const subjects = Effect.forEach(["eyJ...", "eyJ..."], (token) =>
 *   Effect.map(TokenValidator.validate(token), (principal) => principal.id))
 * // Provided once, around all the validations: they share one key cache (see the README).
 * const program = Effect.provide(subjects, ValidatorLive)
 * ```
 */

/**
 * @since 0.1.0
 */
export * as CacheStrategy from "./CacheStrategy.js"

/**
 * @since 0.1.0
 */
export * as HttpAuth from "./HttpAuth.js"

/**
 * @since 0.1.0
 */
export * as Jwk from "./Jwk.js"

/**
 * @since 0.1.0
 */
export * as JwksCache from "./JwksCache.js"

/**
 * @since 0.1.0
 */
export * as JwksError from "./JwksError.js"

/**
 * @since 0.1.0
 */
export * as JwksMetrics from "./JwksMetrics.js"

/**
 * @since 0.1.0
 */
export * as JwksSource from "./JwksSource.js"

/**
 * @since 0.1.0
 */
export * as Principal from "./Principal.js"

/**
 * @since 0.1.0
 */
export * as TokenValidationError from "./TokenValidationError.js"

/**
 * @since 0.1.0
 */
export * as TokenValidator from "./TokenValidator.js"

/**
 * @since 0.1.0
 */
export * as Cognito from "./providers/Cognito.js"

/**
 * @since 0.1.0
 */
export * as EntraId from "./providers/EntraId.js"

/**
 * @since 0.1.0
 */
export * as Oidc from "./providers/Oidc.js"

/**
 * @since 0.1.0
 */
export * as SharedSecret from "./providers/SharedSecret.js"

/**
 * @since 0.1.0
 */
export * as Static from "./providers/Static.js"
