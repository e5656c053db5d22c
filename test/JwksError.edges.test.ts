/**
 * Edge cases pinned after a mutation-testing review: behaviour of `JwksError` that the suite left unpinned (each test
 * fails on one mutation of `src/JwksError.ts` that the rest of the suite does not catch).
 */
import { describe, expect, it } from "@effect/vitest"
import { isJwksError, JwksError } from "../src/JwksError.js"
import { TokenValidationError } from "../src/TokenValidationError.js"

describe("mutation review (internals)", () => {
  // Mutations: `TypeId = Symbol.for("effect-jwks/JwksError")` -> `Symbol("effect-jwks/JwksError")`; `isJwksError`'s
  // `hasProperty(u, TypeId)` -> `hasProperty(u, "reason")`. The brand is one symbol for every copy of the library in
  // the process (a JwksError of another copy is one), and a refused token, which has a reason too, is not one.
  it("isJwksError knows a JwksError of any copy of the library by its brand, and nothing else", () => {
    const brand = Symbol.for("effect-jwks/JwksError")
    const ofAnotherCopy = { [brand]: brand, _tag: "JwksError", reason: "Timeout", source: "s" }
    expect([isJwksError(new JwksError({ reason: "Timeout", source: "s" })), isJwksError(ofAnotherCopy)])
      .toEqual([true, true])
    const refused = new TokenValidationError({ reason: "Expired", description: "the token has expired" })
    expect([isJwksError(refused), isJwksError({ _tag: "JwksError", reason: "Timeout" }), isJwksError(null)])
      .toEqual([false, false, false])
  })

  // Mutation: `retryAfter: Schema.optional(Schema.NonNegativeInt)` -> `Schema.optional(Schema.Number)`. The wait a
  // `Retry-After` asked for is whole seconds, never negative: a JwksError saying otherwise is not made.
  it("a JwksError's retryAfter is whole seconds, never negative", () => {
    expect(new JwksError({ reason: "HttpStatus", source: "s", status: 503, retryAfter: 30 }).retryAfter).toBe(30)
    for (const retryAfter of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => new JwksError({ reason: "HttpStatus", source: "s", status: 503, retryAfter }), String(retryAfter))
        .toThrow()
    }
  })
})
