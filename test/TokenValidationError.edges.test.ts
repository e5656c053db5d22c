/**
 * Edge cases pinned after a mutation-testing review: behaviour of `TokenValidationError` that the suite left unpinned
 * (each test fails on one mutation of `src/TokenValidationError.ts` that the rest of the suite does not catch).
 */
import { describe, expect, it } from "@effect/vitest"
import { isTokenValidationError } from "../src/TokenValidationError.js"

describe("mutation review (internals)", () => {
  // Mutation in `TokenValidationError.ts`: `TypeId = Symbol.for("effect-jwks/TokenValidationError")` ->
  // `Symbol(...)`. The brand is one symbol for every copy of the library in the process: a refusal of another copy
  // is known by it, an object with a reason alone is not.
  it("isTokenValidationError knows a refusal of any copy of the library by its brand", () => {
    const brand = Symbol.for("effect-jwks/TokenValidationError")
    const ofAnotherCopy = { [brand]: brand, _tag: "TokenValidationError", reason: "Expired", description: "d" }
    expect([isTokenValidationError(ofAnotherCopy), isTokenValidationError({ reason: "Expired", description: "d" })])
      .toEqual([true, false])
  })
})
