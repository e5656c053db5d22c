/**
 * A slice of `npm run fuzz` (see `fuzz/harness.ts`): 200 generated inputs per category, from fixed seeds, through
 * `TokenValidator.validate` (two warm validators), `Jwk.importKeySet` and `JwksSource.http`. No defect, no accepted
 * token that the specification-based oracle refuses, no valid token refused, no key imported that should not be.
 */
import { describe, expect, layer } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import { categories, categoryNames, emptyTally, type Fixture, makeFixture } from "../fuzz/harness.js"

const perCategory = 200
const seed = 20_251_129

class FuzzFixture extends Context.Tag("test/fuzz/FuzzFixture")<FuzzFixture, Fixture>() {}

const FixtureLive = Layer.scoped(FuzzFixture, makeFixture).pipe(Layer.provide(Logger.minimumLogLevel(LogLevel.None)))

describe("fuzz (a slice of npm run fuzz)", () => {
  // the real clock: the material is dated with Date.now()
  layer(FixtureLive, { timeout: "60 seconds", excludeTestServices: true })((it) => {
    categoryNames.forEach((name, index) => {
      it.effect(`${name}: no defect, nothing bad accepted`, () =>
        Effect.gen(function*() {
          const fixture = yield* FuzzFixture
          const category = categories(fixture.material).find((c) => c.name === name)!
          const tally = emptyTally()
          yield* category.run(fixture, perCategory, seed + index, tally)
          const context = `${name}, seed ${seed + index}`
          expect(tally.inputs, context).toBe(perCategory)
          expect(tally.violations, context).toEqual([])
          expect(tally.falseRejections, context).toEqual([])
          // the control group: every valid token is accepted by the validator it is meant for
          if (name === "valid") expect(tally.accepted, context).toBe(perCategory)
          // documented in SECURITY.md: ECDSA's second signature (r, n - s) verifies, so a token has two spellings
          if (name === "ecdsa malleated") expect(tally.accepted, context).toBe(perCategory)
        }).pipe(Logger.withMinimumLogLevel(LogLevel.None)), { timeout: 30_000 })
    })
  })
})
