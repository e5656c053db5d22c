/**
 * A fixed key set, given in the configuration instead of fetched: for an issuer whose public keys are distributed
 * with the app, for air-gapped deployments, and for tests.
 *
 * The keys are imported once, when the validator is made, with the same rules as a fetched set (`Jwk.importKeySet`:
 * unusable keys skipped, symmetric keys refused, RSA at least 2048 bits unless `limits.minRsaBits` says less); a set
 * with no usable key is a `ConfigError`. There is no `JwksCache` behind it: a cache would bring a background fiber, a
 * refresh schedule and unknown-kid refetches that can never find anything new, so a plain `KeyResolver` over the
 * imported set does the same job with nothing running and no `Scope` needed. A token whose `kid` is not in the set is
 * refused at once (`NoMatchingKey`).
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { list, literalList } from "../internal/config.js"
import * as MemoryAnswers from "../internal/memoryAnswers.js"
import { keySetAlgorithms } from "../internal/provider.js"
import * as Jwk from "../Jwk.js"
import * as TokenValidator from "../TokenValidator.js"

/**
 * @since 0.1.0
 * @category models
 * @example
 * ```ts
 * import * as Static from "effect-jwks/providers/Static"
 *
 * declare const jwks: { readonly keys: ReadonlyArray<unknown> }
 * const options: Static.Options = {
 *   jwks,
 *   issuer: "https://auth.example",
 *   audience: "my-api",
 *   algorithms: ["RS256"],
 *   limits: { minRsaBits: 3072 }
 * }
 * ```
 */
export interface Options extends TokenValidator.Options {
  /** The key set, as it would be published: `{ keys: [...] }` of public JWKs. */
  readonly jwks: Jwk.JsonWebKeySet
  /** Import limits (`maxKeys`, `minRsaBits`, see `Jwk.ImportOptions`); the algorithms are the validator's. */
  readonly limits?: Omit<Jwk.ImportOptions, "algorithms"> | undefined
}

/**
 * A key resolver over an imported set: the key for a token's `kid` and `alg` (`Jwk.select`), never a refetch.
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import * as Jwk from "effect-jwks/Jwk"
 * import * as Static from "effect-jwks/providers/Static"
 * import * as TokenValidator from "effect-jwks/TokenValidator"
 *
 * declare const jwks: Jwk.JsonWebKeySet
 * const program = Effect.gen(function*() {
 *   const set = yield* Jwk.importKeySet(jwks, "partner-keys", { algorithms: ["ES256"], maxKeys: 4 })
 *   const options = { issuer: "https://partner.example", audience: "my-api", algorithms: ["ES256"] } as const
 *   return yield* TokenValidator.make(Static.keyResolver(set), options)
 * })
 * ```
 */
export const keyResolver = (set: Jwk.KeySet): TokenValidator.KeyResolver => {
  const select = (kid: string | undefined, alg: TokenValidator.SigningAlgorithm) =>
    Jwk.isAlgorithm(alg) ? Jwk.select(set, kid, alg) : undefined
  return MemoryAnswers.register({
    get: (kid, alg) => Effect.succeed(Option.fromNullable(select(kid, alg))),
    recordSuccess: Effect.void,
    // What its keys verify, as the set is fixed.
    algorithms: Jwk.Algorithm.literals.filter((alg) => set.keys.some((key) => key.algorithms.has(alg)))
  }, { get: select, recordSuccess: () => true })
}

/**
 * Builds a validator over a fixed key set. Keys for algorithms the validator does not allow are not imported, and an
 * algorithm it allows that no usable key of the set verifies is a `ConfigError` (see `TokenValidator.KeyResolver`'s
 * `algorithms`): allowing `["RS256", "ES256"]` over a set of RSA keys only is refused.
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import * as Static from "effect-jwks/providers/Static"
 *
 * const program = Effect.gen(function*() {
 *   const jwk = {
 *     kty: "EC",
 *     crv: "P-256",
 *     x: "v-mezdnIzNMxOsi7ooRlhHppo0iGyz6ThQmwMKJPuHA",
 *     y: "p4lSznITaYO5k5BQOGGSrRY7NWZq5Yc6vw201SUM5Ak",
 *     kid: "k1"
 *   }
 *   const jwks = { keys: [jwk] }
 *   const options = { jwks, issuer: "https://auth.example", audience: "my-api", algorithms: ["ES256"] as const }
 *   const validator = yield* Static.make(options)
 *   return yield* validator.validate("eyJ...")
 * })
 * ```
 */
export const make = (options: Options): Effect.Effect<TokenValidator.Service, ConfigError.ConfigError> =>
  Effect.gen(function*() {
    const { jwks: given, limits, ...validator } = options
    yield* TokenValidator.checkOptions(validator)
    yield* Jwk.checkImportOptions(limits, ["limits"])
    // Not fetched, so not yet schema-checked: a single JWK where the set belongs is a slip a JSON file makes easy.
    const jwks = yield* Effect.mapError(
      Schema.decodeUnknown(Jwk.JsonWebKeySet)(given),
      () => ConfigError.InvalidData(["jwks"], "expected a key set: { keys: [...] }")
    )
    const algorithms = yield* keySetAlgorithms(validator)
    const set = yield* Jwk.importKeySet(jwks, "static", { ...limits, algorithms }).pipe(
      Effect.mapError((error) => ConfigError.InvalidData(["jwks"], error.description ?? error.message))
    )
    return yield* TokenValidator.make(keyResolver(set), validator)
  })

/**
 * The `TokenValidator` of a fixed key set. It needs nothing: no `HttpClient`, no cache.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * ```ts
 * import * as Static from "effect-jwks/providers/Static"
 *
 * declare const jwks: { keys: ReadonlyArray<unknown> }
 * const ValidatorLive = Static.layer({ jwks, issuer: "https://auth.example", audience: "my-api" })
 * ```
 */
export const layer = (options: Options): Layer.Layer<TokenValidator.TokenValidator, ConfigError.ConfigError> =>
  Layer.effect(TokenValidator.TokenValidator, make(options))

const decodeJwks = Schema.decodeUnknownEither(Schema.parseJson(Jwk.JsonWebKeySet))

/**
 * The options from configuration (by default the environment): `JWT_JWKS` (the key set as JSON), `JWT_ISSUER` and
 * `JWT_AUDIENCE` (each comma-separated for several) are required; `JWT_ALGORITHMS` (comma-separated) is optional.
 * There are no cache settings: nothing is cached or refreshed.
 *
 * @since 0.1.0
 * @category config
 * @example
 * ```ts
 * import { Config } from "effect"
 * import * as Static from "effect-jwks/providers/Static"
 *
 * // The import limits are not read from the environment: add them in code.
 * const ValidatorLive = Static.layerConfig(
 *   Config.map(Static.config, (options): Static.Options => ({ ...options, limits: { minRsaBits: 3072 } }))
 * )
 * ```
 */
export const config: Config.Config<Options> = Config.all({
  jwks: Config.string("JWT_JWKS").pipe(
    Config.mapOrFail((text) =>
      Either.mapLeft(
        decodeJwks(text),
        () => ConfigError.InvalidData([], "expected a JSON key set: {\"keys\": [...]}")
      )
    )
  ),
  issuer: list("JWT_ISSUER"),
  audience: list("JWT_AUDIENCE"),
  algorithms: Config.option(literalList("JWT_ALGORITHMS", Jwk.Algorithm.literals))
}).pipe(
  Config.map((read): Options => ({
    jwks: read.jwks,
    issuer: read.issuer.length === 1 ? read.issuer[0]! : read.issuer,
    audience: read.audience,
    algorithms: Option.getOrUndefined(read.algorithms)
  }))
)

/**
 * The `TokenValidator` of a fixed key set, its options read through `Config` (by default {@link config}).
 *
 * @since 0.1.0
 * @category layers
 * @example
 * ```ts
 * import * as Static from "effect-jwks/providers/Static"
 *
 * // JWT_JWKS='{"keys":[...]}' JWT_ISSUER=https://auth.example JWT_AUDIENCE=my-api JWT_ALGORITHMS=ES256
 * const ValidatorLive = Static.layerConfig()
 * ```
 */
export const layerConfig = (
  options: Config.Config.Wrap<Options> = config
): Layer.Layer<TokenValidator.TokenValidator, ConfigError.ConfigError> =>
  Layer.effect(TokenValidator.TokenValidator, Effect.flatMap(Config.unwrap(options), make))
