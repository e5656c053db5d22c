/**
 * The snapshot of a process that has validated nothing yet. A file of its own: metrics are global, and vitest gives
 * each test file its own module state, so nothing else has counted here.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as JwksMetrics from "../src/JwksMetrics.js"

describe("JwksMetrics before any validation", () => {
  it.effect("the snapshot reads all well: a success rate of 1, no errors, even with series read by the app", () =>
    Effect.gen(function*() {
      // An app's dashboard that reads a reason's series before any failure registers it, at 0.
      const expired = Metric.tagged(Metric.tagged(JwksMetrics.validations, "outcome", "failure"), "reason", "Expired")
      expect((yield* Metric.value(expired)).count).toBe(0)
      const snapshot = yield* JwksMetrics.snapshot
      expect([snapshot.total, snapshot.successRate, snapshot.errorsByType]).toEqual([0, 1, {}])
    }))
})
