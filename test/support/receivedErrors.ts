/** Shared by the tests of auth errors received from other services (`HttpAuth`'s received-error handling). */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as HttpAuth from "../../src/HttpAuth.js"
import { Principal } from "../../src/Principal.js"
import { TokenValidationError } from "../../src/TokenValidationError.js"
import * as TokenValidator from "../../src/TokenValidator.js"
import { alice } from "./principals.js"

/** What an `HttpApiClient` of another guarded service hands the app: an error decoded through `HttpAuth.Failure`. */
export const received = (body: unknown) => Schema.decodeUnknownSync(HttpAuth.Failure)(body)

/** Answers this library gives, and so another service running it too. */
export const expired = { error: "invalid_token", error_description: "the token has expired" }
export const forbidden = { error: "insufficient_scope", error_description: "the token lacks a required group" }
export const missingToken = { error: "unauthorized", error_description: "a bearer token is required" }

/** A validator that accepts the token "good" (alice, in no group) and refuses any other as expired. */
export const ValidatorStub = Layer.succeed(TokenValidator.TokenValidator, {
  acceptsIssuer: () => true,
  keyStatus: Effect.succeed([]),
  validate: (token) =>
    token === "good"
      ? Effect.succeed(new Principal({ ...alice, name: undefined, groups: [], scopes: [] }))
      : Effect.fail(new TokenValidationError({ reason: "Expired", description: "the token has expired" }))
})
