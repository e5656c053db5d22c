/**
 * The error of the token side: the token is not acceptable. An HTTP integration answers it with 401
 * (`error="invalid_token"`). Its message says why, never what the token was.
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
 * import * as TokenValidationError from "effect-jwks/TokenValidationError"
 *
 * // The brand `isTokenValidationError` checks: one symbol (`Symbol.for`) for every copy of this library.
 * declare const failure: unknown
 * const refused = Predicate.hasProperty(failure, TokenValidationError.TypeId)
 * ```
 */
export const TypeId: unique symbol = Symbol.for("effect-jwks/TokenValidationError")

/**
 * @since 0.1.0
 * @category type ids
 */
export type TypeId = typeof TypeId

/**
 * Why a token was refused, one reason per check:
 *
 * - `Malformed`: not a compact JWS in canonical base64url, no signature, undecodable header or claims (a registered
 *   claim of the wrong type, such as a non-numeric or non-finite `exp`, included), a `crit` header, or `b64: false`.
 * - `TooLarge`: longer than the validator's size cap (checked before anything else).
 * - `AlgorithmNotAllowed`: `alg` outside the allow-list (`none` is never allowed).
 * - `NoMatchingKey`: no key of the set fits the token's `kid` and `alg`, even after a refetch (none is made within the
 *   cache's `unknownKidThrottle` or a failed fetch's backoff, nor over a fixed set; a refetch that fails leaves the
 *   keys held to answer).
 * - `InvalidSignature`: the signature does not verify.
 * - `Expired` / `NotYetValid`: `exp` passed, or `nbf` / `iat` in the future (with the leeway).
 * - `IssuerMismatch` / `AudienceMismatch`: `iss` or `aud` not the expected ones.
 * - `TokenType`: the wrong kind of token: a refresh token, an id token where access was required (`tokenTypes`), or a
 *   JWT that is not a bearer credential (a logout token, a security event, an SD-JWT, a proof-of-possession bound one).
 * - `MissingClaim`: a required claim (`exp` is always required) is absent.
 * - `CustomCheck`: the validator's own check hook refused it.
 *
 * @since 0.1.0
 * @category models
 * @example
 * ```ts
 * import type * as TokenValidationError from "effect-jwks/TokenValidationError"
 *
 * const hint = (reason: TokenValidationError.Reason): string => {
 *   switch (reason) {
 *     case "Expired":
 *       return "sign in again"
 *     case "IssuerMismatch":
 *     case "AudienceMismatch":
 *       return "this token is meant for another service"
 *     default:
 *       return "invalid token"
 *   }
 * }
 * ```
 */
export const Reason = Schema.Literal(
  "Malformed",
  "TooLarge",
  "AlgorithmNotAllowed",
  "NoMatchingKey",
  "InvalidSignature",
  "Expired",
  "NotYetValid",
  "IssuerMismatch",
  "AudienceMismatch",
  "TokenType",
  "MissingClaim",
  "CustomCheck"
)

/**
 * @since 0.1.0
 * @category models
 */
export type Reason = typeof Reason.Type

/**
 * The token was refused.
 *
 * @since 0.1.0
 * @category errors
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import * as TokenValidator from "effect-jwks/TokenValidator"
 *
 * const program = TokenValidator.validate("not-a-token").pipe(
 *   Effect.catchTag("TokenValidationError", (e) => Effect.log(e.reason, e.message)) // "Malformed" ...
 * )
 * ```
 */
export class TokenValidationError
  extends Schema.TaggedError<TokenValidationError>("effect-jwks/TokenValidationError")("TokenValidationError", {
    reason: Reason,
    description: Schema.String,
    cause: Schema.optional(Schema.Defect)
  })
{
  /**
   * @since 0.1.0
   */
  readonly [TypeId]: TypeId = TypeId

  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `${this.reason}: ${this.description}`
  }
}

/**
 * @since 0.1.0
 * @category refinements
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import * as TokenValidationError from "effect-jwks/TokenValidationError"
 * import * as TokenValidator from "effect-jwks/TokenValidator"
 *
 * const anonymousIfRefused = TokenValidator.validate("eyJ...").pipe(
 *   Effect.map((principal) => principal.id),
 *   Effect.catchIf(TokenValidationError.isTokenValidationError, () => Effect.succeed("anonymous"))
 * )
 * ```
 */
export const isTokenValidationError = (u: unknown): u is TokenValidationError => Predicate.hasProperty(u, TypeId)
