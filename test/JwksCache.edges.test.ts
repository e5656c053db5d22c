/**
 * Edge cases pinned after a mutation-testing review: `JwksCache`, unpinned by the suite
 * (each test fails on one mutation that the rest of the suite does not catch).
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as TestClock from "effect/TestClock"
import { generateKeyPairSync } from "node:crypto"
import * as JwksCache from "../src/JwksCache.js"
import { JwksError } from "../src/JwksError.js"
import * as JwksSource from "../src/JwksSource.js"

const jwk = {
  ...generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey.export({ format: "jwk" }),
  kid: "k1",
  alg: "RS256"
}

describe("JwksCache edge cases", () => {
  // Mutation: `if (seen !== undefined && seen.expiredAt === undefined)` -> `if (seen !== undefined)`. With a
  // strategy that has no interval, every request would mark the set expired "now" again, and the stale window
  // (maxStale past expiry) would never end while requests keep coming.
  it.scoped("usage strategy: stale keys are served for maxStale past the set's expiry, not from each request", () =>
    Effect.gen(function*() {
      let down = false
      const source = JwksSource.make(
        "test",
        Effect.suspend(() =>
          down
            ? Effect.fail(new JwksError({ reason: "Unreachable", source: "test" }))
            : Effect.succeed({ keys: [jwk] })
        )
      )
      const cache = yield* JwksCache.make(source, {
        strategy: "usage",
        usages: 1,
        backgroundRefresh: false,
        maxStale: "1 hour"
      })
      expect(Option.isSome(yield* cache.get("k1", "RS256"))).toBe(true)
      yield* cache.recordSuccess // the set's one use: it is no longer fresh
      down = true
      // Found expired at 0: stale serving runs until 1 hour.
      expect(Option.isSome(yield* cache.get("k1", "RS256"))).toBe(true)
      for (const minutes of [20, 20, 19]) {
        yield* TestClock.adjust(`${minutes} minutes`)
        expect(Option.isSome(yield* cache.get("k1", "RS256"))).toBe(true)
      }
      expect((yield* cache.status).servingStale).toBe(true)
      yield* TestClock.adjust("2 minutes") // 61 minutes after the set was found expired
      const error = yield* Effect.flip(cache.get("k1", "RS256"))
      expect(error.reason).toBe("Stale")
    }))
})
