/**
 * Where a key set comes from: a JWKS URL over HTTP, or a fixed set. The cache asks its source for the published set
 * whenever it refreshes; the source itself keeps no keys.
 *
 * @since 0.1.0
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { decodeDuration, maxTimerMillis } from "./internal/config.js"
import { displayUrl, fetchJson, type FetchOptions } from "./internal/fetchJson.js"
import { JsonWebKeySet } from "./Jwk.js"
import { JwksError } from "./JwksError.js"

/**
 * @since 0.1.0
 * @category models
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import type * as JwksSource from "effect-jwks/JwksSource"
 *
 * // Any source, with each fetch logged.
 * const logged = (source: JwksSource.Service): JwksSource.Service => ({
 *   ...source,
 *   fetch: source.fetch.pipe(Effect.tap((set) => Effect.logDebug(`${source.name}: ${set.keys.length} keys`)))
 * })
 * ```
 */
export interface Service {
  /**
   * A short label for logs, metrics (the `source` tag), errors and spans: the URL (its user info and query redacted),
   * or `static`. A source of your own (`make`) is named as you say: keep credentials out of that name.
   */
  readonly name: string
  /**
   * Fetches the published set, schema-checked but not yet imported. It must end: the cache's callers wait for it, and
   * one that never does holds every refresh (the sources of this module are bounded: by `timeout`).
   */
  readonly fetch: Effect.Effect<JsonWebKeySet, JwksError>
}

/**
 * @since 0.1.0
 * @category tags
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import * as JwksCache from "effect-jwks/JwksCache"
 * import * as JwksSource from "effect-jwks/JwksSource"
 *
 * declare const vault: JwksSource.Service // from JwksSource.make, say
 * const CacheLive = JwksCache.layer().pipe(Layer.provide(Layer.succeed(JwksSource.JwksSource, vault)))
 * ```
 */
export class JwksSource extends Context.Tag("effect-jwks/JwksSource")<JwksSource, Service>() {}

/**
 * Limits on one HTTP exchange with the identity provider.
 *
 * @since 0.1.0
 * @category models
 * @example
 * ```ts
 * import * as JwksSource from "effect-jwks/JwksSource"
 *
 * const options: JwksSource.HttpOptions = { timeout: "2 seconds", maxBytes: 64 * 1024 }
 * const source = JwksSource.http("https://idp.example/.well-known/jwks.json", options)
 * ```
 */
export interface HttpOptions {
  /**
   * The whole exchange, from request to the last byte of the body (for a background refresh, with the turns it gives
   * the event loop between its steps). Default 5 seconds.
   */
  readonly timeout?: Duration.DurationInput | undefined
  /**
   * A longer body is refused as `TooLarge`, without reading past the limit. Default 512 KiB. An uncompressed body
   * (no `content-encoding`) with a plain decimal `content-length` within the limit is read whole: the platform's
   * clients end it at that length (HTTP framing), but an `HttpClient` of your own that does not (one that unpacks a
   * compressed body and drops its `content-encoding`, keeping the compressed length) delivers all of it before it is
   * refused.
   */
  readonly maxBytes?: number | undefined
}

/**
 * @since 0.1.0
 * @category defaults
 * @example
 * ```ts
 * import * as JwksSource from "effect-jwks/JwksSource"
 *
 * console.log(JwksSource.httpDefaults.maxBytes) // 524288: a larger body is refused as TooLarge
 * ```
 */
export const httpDefaults = {
  timeout: Duration.seconds(5),
  maxBytes: 512 * 1024
} as const

/**
 * A timeout in milliseconds (`Infinity` for `Duration.infinity`), `NaN` for what is no duration, a negative one too.
 */
const timeoutMillis = (input: unknown): number =>
  Option.match(decodeDuration(input), { onNone: () => Number.NaN, onSome: Duration.toMillis })

/** Timers take whole milliseconds up to 2^31 - 1 (about 24.8 days); Effect's clock treats a longer delay as never. */
const isTimerMillis = (millis: number): boolean => millis >= 1 && millis <= maxTimerMillis

/**
 * @internal
 * The options with their defaults, checked: a timeout from 1 ms to 2^31 - 1 ms (what timers can keep) and a `maxBytes`
 * that is a positive whole number. Anything else (a typo like "five seconds", `NaN`, `Infinity`, "30 days") is a
 * `ConfigError` at `path`: an unreadable timeout would die, and the others would silently lift a limit.
 */
export const checkHttpOptions = (
  options: HttpOptions | undefined,
  path: ReadonlyArray<string> = []
): Either.Either<FetchOptions, ConfigError.ConfigError> => {
  // A string or a number (`http: "3 seconds"` meant as the timeout) would fall back to the defaults unseen.
  if (options !== undefined && (typeof options !== "object" || options === null)) {
    return Either.left(ConfigError.InvalidData([...path], "expected the HTTP options ({ timeout, maxBytes })"))
  }
  const millis = timeoutMillis(options?.timeout ?? httpDefaults.timeout)
  if (!isTimerMillis(millis)) {
    return Either.left(
      ConfigError.InvalidData(
        [...path, "timeout"],
        "expected a duration from 1 millisecond to 2^31 - 1 (about 24.8 days)"
      )
    )
  }
  const maxBytes = options?.maxBytes ?? httpDefaults.maxBytes
  if (!Number.isSafeInteger(maxBytes) || maxBytes <= 0) {
    return Either.left(ConfigError.InvalidData([...path, "maxBytes"], `expected a positive whole number of bytes`))
  }
  return Either.right({ timeout: Duration.millis(millis), maxBytes })
}

/**
 * A source that GETs the key set from `url` with the app's `HttpClient`. Each failure is a `JwksError` with its own
 * reason: `Unreachable`, `Timeout`, `HttpStatus` (anything but 200; redirects are not followed, and an answer for
 * another URL, from a client that follows them itself, is refused: for a client object of the app's own, not made by
 * `HttpClient.make`, another origin or path), `TooLarge`, `InvalidJson`, `InvalidShape`. A
 * `timeout` outside 1 ms to 2^31 - 1 ms (about 24.8 days), or a `maxBytes` that is not a positive whole number, is a
 * `ConfigError` naming it.
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * ```ts
 * import { FetchHttpClient } from "@effect/platform"
 * import { Effect } from "effect"
 * import * as JwksSource from "effect-jwks/JwksSource"
 *
 * const program = JwksSource.http("https://idp.example/.well-known/jwks.json").pipe(
 *   Effect.flatMap((source) => source.fetch),
 *   Effect.provide(FetchHttpClient.layer)
 * )
 * ```
 */
export const http = (
  url: string | URL,
  options?: HttpOptions
): Effect.Effect<Service, ConfigError.ConfigError, HttpClient.HttpClient> =>
  Effect.flatMap(
    checkHttpOptions(options),
    (checked) => Effect.map(HttpClient.HttpClient, (client) => fromHttpClient(client, url.toString(), checked))
  )

/**
 * @internal
 */
export const fromHttpClient = (client: HttpClient.HttpClient, url: string, options: FetchOptions): Service => {
  const name = displayUrl(url)
  return {
    name,
    fetch: fetchJson(client, url, JsonWebKeySet, options).pipe(
      Effect.withSpan("JwksSource.fetch", { attributes: { "jwks.url": name } })
    )
  }
}

/**
 * @since 0.1.0
 * @category layers
 * @example
 * ```ts
 * import { FetchHttpClient } from "@effect/platform"
 * import { Layer } from "effect"
 * import * as JwksSource from "effect-jwks/JwksSource"
 *
 * const SourceLive = JwksSource.layerHttp("https://idp.example/.well-known/jwks.json", { timeout: "3 seconds" }).pipe(
 *   Layer.provide(FetchHttpClient.layer)
 * )
 * ```
 */
export const layerHttp = (
  url: string | URL,
  options?: HttpOptions
): Layer.Layer<JwksSource, ConfigError.ConfigError, HttpClient.HttpClient> =>
  Layer.effect(JwksSource, http(url, options))

/**
 * A source that always answers with the given set: for tests and for apps whose keys are configured, not fetched.
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * ```ts
 * import * as JwksSource from "effect-jwks/JwksSource"
 *
 * const source = JwksSource.fromKeySet({
 *   keys: [{
 *     kty: "EC",
 *     crv: "P-256",
 *     x: "v-mezdnIzNMxOsi7ooRlhHppo0iGyz6ThQmwMKJPuHA",
 *     y: "p4lSznITaYO5k5BQOGGSrRY7NWZq5Yc6vw201SUM5Ak",
 *     kid: "k1"
 *   }]
 * })
 * ```
 */
export const fromKeySet = (jwks: JsonWebKeySet): Service => ({
  name: "static",
  fetch: Effect.succeed(jwks)
})

/**
 * The {@link fromKeySet} source as a layer: for tests, and for apps whose keys are configured.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import * as JwksCache from "effect-jwks/JwksCache"
 * import * as JwksSource from "effect-jwks/JwksSource"
 *
 * declare const jwks: { readonly keys: ReadonlyArray<unknown> }
 * const CacheTest = JwksCache.layer({ backgroundRefresh: false }).pipe(Layer.provide(JwksSource.layerStatic(jwks)))
 * ```
 */
export const layerStatic = (jwks: JsonWebKeySet): Layer.Layer<JwksSource> => Layer.succeed(JwksSource, fromKeySet(jwks))

/**
 * A source from a function, for anything else (a file, a secret store). Its failures must already be `JwksError`s. A
 * fetch that takes longer than `timeout` (default 30 seconds; `Duration.infinity` for none, when the function bounds
 * itself) is cut, and fails with `Timeout`: a hung read would otherwise hold every refresh of the cache. A `timeout`
 * outside 1 ms to what timers keep (2^31 - 1 ms, about 24.8 days), as `http` takes it, throws as the source is built.
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import * as Jwk from "effect-jwks/Jwk"
 * import { JwksError } from "effect-jwks/JwksError"
 * import * as JwksSource from "effect-jwks/JwksSource"
 * import { readFile } from "node:fs/promises"
 *
 * const path = "/etc/keys/jwks.json"
 * const source = JwksSource.make(path, Effect.tryPromise(() => readFile(path, "utf8")).pipe(
 *   Effect.flatMap(Schema.decode(Schema.parseJson(Jwk.JsonWebKeySet))),
 *   Effect.mapError((cause) =>
 *     new JwksError({ reason: cause._tag === "ParseError" ? "InvalidShape" : "Unreachable", source: path, cause })
 *   )
 * ), { timeout: "5 seconds" })
 * ```
 */
export const make = (
  name: string,
  fetch: Effect.Effect<JsonWebKeySet, JwksError>,
  options?: { readonly timeout?: Duration.DurationInput | undefined }
): Service => {
  const millis = timeoutMillis(options?.timeout ?? makeDefaults.timeout)
  // Past what timers keep, Effect's clock would never fire it: refused, as `http` refuses it, not silently unbounded.
  if (!(isTimerMillis(millis) || millis === Number.POSITIVE_INFINITY)) {
    throw new TypeError(
      `JwksSource.make: timeout must be a duration from 1 ms to 2^31 - 1 ms (or Duration.infinity), got ${
        String(options?.timeout)
      }`
    )
  }
  if (millis === Number.POSITIVE_INFINITY) return { name, fetch }
  const duration = Duration.millis(millis)
  return {
    name,
    fetch: Effect.timeoutFail(fetch, {
      duration,
      onTimeout: () =>
        new JwksError({ reason: "Timeout", source: name, description: `no answer within ${Duration.format(duration)}` })
    })
  }
}

/** The default `timeout` of {@link make}'s sources. */
const makeDefaults = { timeout: Duration.seconds(30) }
