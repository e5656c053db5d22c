/**
 * The error of the key side: the JSON Web Key Set could not be had. An HTTP integration answers it with 503, since
 * the token may well be good and only our keys are missing.
 *
 * @since 0.1.0
 */
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"

/**
 * @since 0.1.0
 * @category type ids
 * @example
 * ```ts
 * import { Predicate } from "effect"
 * import * as JwksError from "effect-jwks/JwksError"
 *
 * // The brand `isJwksError` checks: one symbol (`Symbol.for`) for every copy of this library in the process.
 * declare const failure: unknown
 * const keysMissing = Predicate.hasProperty(failure, JwksError.TypeId)
 * ```
 */
export const TypeId: unique symbol = Symbol.for("effect-jwks/JwksError")

/**
 * @since 0.1.0
 * @category type ids
 */
export type TypeId = typeof TypeId

/**
 * Why the keys could not be had.
 *
 * - `Unreachable`: the request did not get an answer (connection refused, DNS, reset), the fetch failed otherwise (an
 *   `HttpClient` or source of the app's that died or failed with something else), or the cache is closed.
 * - `Timeout`: no complete answer within the source's timeout.
 * - `HttpStatus`: the answer had a status other than 200.
 * - `TooLarge`: the body was larger than the source's size cap.
 * - `InvalidJson`: the body was not JSON.
 * - `InvalidShape`: the JSON was not a key set (or not a discovery document), or the set had more keys than the import
 *   takes (`Jwk.ImportOptions.maxKeys`: 100 for a cache).
 * - `EmptyKeySet`: the set had no key that this library can verify with (and the cache's `algorithms` allow).
 * - `IssuerMismatch`: a discovery document named another issuer than the one configured.
 * - `Stale`: the last good keys are older than `maxStale` allows and no fresh ones could be had.
 *
 * @since 0.1.0
 * @category models
 * @example
 * ```ts
 * import type * as JwksError from "effect-jwks/JwksError"
 *
 * // Whether to page someone: the provider is down (or the app closed its cache), or publishes something we cannot use.
 * const alert = (reason: JwksError.Reason): "network" | "provider" => {
 *   switch (reason) {
 *     case "Unreachable":
 *     case "Timeout":
 *       return "network"
 *     default:
 *       return "provider"
 *   }
 * }
 * ```
 */
export const Reason = Schema.Literal(
  "Unreachable",
  "Timeout",
  "HttpStatus",
  "TooLarge",
  "InvalidJson",
  "InvalidShape",
  "EmptyKeySet",
  "IssuerMismatch",
  "Stale"
)

/**
 * @since 0.1.0
 * @category models
 */
export type Reason = typeof Reason.Type

/**
 * The key set could not be fetched, decoded or used.
 *
 * @since 0.1.0
 * @category errors
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { JwksError } from "effect-jwks/JwksError"
 *
 * const program = Effect.fail(new JwksError({ reason: "Timeout", source: "https://idp.example/jwks" })).pipe(
 *   Effect.catchTag("JwksError", (e) => Effect.log(e.message)) // "Timeout (https://idp.example/jwks)"
 * )
 * ```
 */
export class JwksError extends Schema.TaggedError<JwksError>("effect-jwks/JwksError")("JwksError", {
  reason: Reason,
  /** Where the keys were to come from: a URL or a short name such as `static`. */
  source: Schema.String,
  description: Schema.optional(Schema.String),
  /** The HTTP status, for `HttpStatus`. */
  status: Schema.optional(Schema.Number),
  /**
   * For a 429 or 503 answer with a `Retry-After` header: the wait it asked for, in whole seconds (an HTTP date is
   * counted from the clock). The cache waits that long before it fetches again, up to a limit (see
   * `JwksCache.Options.retry`).
   */
  retryAfter: Schema.optional(Schema.NonNegativeInt),
  cause: Schema.optional(Schema.Defect)
}) {
  /**
   * @since 0.1.0
   */
  readonly [TypeId]: TypeId = TypeId

  /**
   * @since 0.1.0
   */
  override get message(): string {
    const status = this.status === undefined ? "" : ` ${this.status}`
    return this.description === undefined
      ? `${this.reason}${status} (${this.source})`
      : `${this.reason}${status}: ${this.description} (${this.source})`
  }
}

/**
 * @since 0.1.0
 * @category refinements
 * @example
 * ```ts
 * import * as JwksError from "effect-jwks/JwksError"
 *
 * declare const validate: (token: string) => Promise<unknown> // from TokenValidator.toPromise
 * const status = await validate("eyJ...").then(() => 200, (e) => JwksError.isJwksError(e) ? 503 : 401)
 * ```
 */
export const isJwksError = (u: unknown): u is JwksError => Predicate.hasProperty(u, TypeId)
