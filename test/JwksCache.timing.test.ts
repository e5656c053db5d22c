/**
 * The key cache's timing at its edges: retry schedules that give no delay (or too little), a background wake-up a
 * fraction of a nanosecond early under TestClock, the status of a closed cache, and a lookup's early clock reading. Each test failed on the code
 * before its fix (a fetch loop, a spinning fiber, a status that said stale keys were served).
 */
import { describe, expect, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"
import * as CacheStrategy from "../src/CacheStrategy.js"
import * as JwksCache from "../src/JwksCache.js"
import { JwksError } from "../src/JwksError.js"
import * as JwksSource from "../src/JwksSource.js"
import * as FakeIdp from "../src/testing/FakeIdp.js"

const settle = Effect.repeatN(Effect.yieldNow(), 200)

describe("background loop under TestClock with the default jitter", () => {
  it.scoped("refreshes at its jittered due time instead of spinning on zero-length sleeps (seed 7)", () => {
    let waits = 0
    let cacheScope: Scope.CloseableScope | undefined
    const logger = Logger.make(({ message }) => {
      const first = Array.isArray(message) ? message[0] : message
      if (!String(first).startsWith("Background refresh will wait")) return
      waits++
      // A spinning fiber starves this test: stop it (closing the cache's scope) so that the test can fail.
      if (waits === 1000 && cacheScope !== undefined) Effect.runFork(Scope.close(cacheScope, Exit.void))
    })
    return Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      const source = yield* JwksSource.http(idp.jwksUri)
      const scope = yield* Scope.make()
      cacheScope = scope
      // Every option at its default: interval 20 minutes, threshold 0.8, jitter 0.05.
      yield* JwksCache.make(source).pipe(Scope.extend(scope))
      const macrotask = Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))
      for (let i = 0; i < 1000 && (yield* idp.fetchCount) < 1; i++) yield* macrotask
      for (let i = 0; i < 20; i++) yield* macrotask
      const waitsBefore = waits
      // The refresh is due between 15.2 and 16 minutes.
      const adjusting = yield* Effect.fork(TestClock.adjust("17 minutes"))
      for (let i = 0; i < 2000 && (yield* idp.fetchCount) < 2 && waits < 1000; i++) yield* macrotask
      const fetches = yield* idp.fetchCount
      const extraWaits = waits - waitsBefore
      yield* Fiber.interrupt(adjusting)
      yield* Scope.close(scope, Exit.void)
      expect(extraWaits, "\"Background refresh will wait\" lines while the clock was adjusted").toBeLessThan(10)
      expect(fetches, "the refresh due at ~15.2 minutes has run").toBe(2)
    }).pipe(
      Effect.provide(FakeIdp.layerTest()),
      Effect.withRandom(Random.make(7)),
      Logger.withMinimumLogLevel(LogLevel.Debug),
      Effect.provide(Logger.replace(Logger.defaultLogger, logger))
    )
  }, 30_000)
})

describe("a retry schedule whose first steps give no delay", () => {
  it.scoped(
    "reaches its spacing after its immediate steps instead of being replaced by the default for good",
    () =>
      Effect.gen(function*() {
        const idp = yield* FakeIdp.FakeIdp
        yield* idp.setFault(FakeIdp.Fault.status(503))
        // Two quick retries (stood in for by the default backoff: about 1 and 2 s), then one every 10 minutes.
        const retry = Schedule.recurs(2).pipe(Schedule.andThen(Schedule.spaced("10 minutes")))
        yield* JwksCache.make(yield* JwksSource.http(idp.jwksUri), { retry })
        yield* settle
        expect(yield* idp.fetchCount).toBe(1)
        for (let second = 1; second <= 9 * 60; second++) {
          yield* TestClock.adjust("1 second")
          yield* settle
        }
        // Initial load + two quick retries; the next is due at about minute 10. The defect gives the default backoff's
        // 1, 2, 4, 8, 16, 32, 64, 128, 256 s: ten fetches in nine minutes.
        expect(yield* idp.fetchCount).toBeLessThanOrEqual(4)
      }).pipe(Effect.provide(FakeIdp.layerTest())),
    60_000
  )
})

describe("a reason-dependent retry schedule and alternating failure reasons", () => {
  it.scoped(
    "keeps backing off: no more fetches in 10 minutes than either backoff alone would make",
    () =>
      Effect.gen(function*() {
        const idp = yield* FakeIdp.FakeIdp
        // The IdP alternates: a body that is not JSON, then a 503, and so on.
        for (let i = 0; i < 400; i++) {
          yield* idp.failNext(FakeIdp.Fault.invalidJson)
          yield* idp.failNext(FakeIdp.Fault.status(503))
        }
        // Back off exponentially on bad bodies; for any other reason it is done, and the default backoff stands in.
        const retry = Schedule.exponential("1 second").pipe(
          Schedule.whileInput((error: JwksError) => error.reason === "InvalidJson")
        )
        yield* JwksCache.make(yield* JwksSource.http(idp.jwksUri), { retry })
        yield* settle
        for (let second = 1; second <= 600; second++) {
          yield* TestClock.adjust("1 second")
          yield* settle
        }
        // Each backoff alone gives about 1, 2, 4, ... s: some 10 to 12 fetches in 10 minutes. Interleaved, twice that
        // at most. The defect: one fetch about every second, ~400.
        expect(yield* idp.fetchCount).toBeLessThanOrEqual(30)
      }).pipe(Effect.provide(FakeIdp.layerTest())),
    60_000
  )
})

describe("sub-millisecond delays", () => {
  it.scoped("a retry schedule of 1 microsecond: one request per millisecond is one fetch per millisecond", () =>
    Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      yield* idp.setFault(FakeIdp.Fault.status(503))
      const cache = yield* JwksCache.make(yield* JwksSource.http(idp.jwksUri), {
        retry: Schedule.spaced(Duration.millis(0.001)),
        backgroundRefresh: false
      })
      for (let ms = 0; ms < 100; ms++) {
        yield* Effect.either(cache.get("any", "RS256"))
        yield* TestClock.adjust(1)
      }
      // 100 ms of outage, 100 requests. A schedule giving "at once" gets the default backoff (next try at ~1 s): 1 fetch.
      expect(yield* idp.fetchCount).toBeLessThanOrEqual(3)
    }).pipe(Effect.provide(FakeIdp.layerTest())))

  it.scoped(
    "a strategy given in code with a 1-nanosecond interval is refused, or at least does not fetch in a loop",
    () =>
      Effect.gen(function*() {
        const idp = yield* FakeIdp.FakeIdp
        const cacheStrategy = CacheStrategy.time(Duration.nanos(BigInt(1)))
        const built = yield* Effect.either(JwksCache.make(yield* JwksSource.http(idp.jwksUri), { cacheStrategy }))
        if (built._tag === "Left") return // refused, as a zero interval is: fine
        yield* settle
        for (let i = 0; i < 10; i++) {
          yield* TestClock.adjust(Duration.nanos(BigInt(5)))
          yield* settle
        }
        // 50 nanoseconds of clock: the background fiber has refreshed every nanosecond or so.
        expect(yield* idp.fetchCount).toBeLessThanOrEqual(3)
      }).pipe(Effect.provide(FakeIdp.layerTest())),
    60_000
  )
})

describe("status of a closed cache", () => {
  it.scoped("does not report servingStale once the closed cache refuses its stale keys", () =>
    Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      const scope = yield* Scope.make()
      const cache = yield* JwksCache.make(yield* JwksSource.http(idp.jwksUri), {
        strategy: "time",
        interval: "10 minutes",
        backgroundRefresh: false
      }).pipe(Scope.extend(scope))
      const kid = yield* idp.currentKid
      yield* cache.get(kid, "RS256")
      yield* idp.setFault(FakeIdp.Fault.status(503))
      yield* TestClock.adjust("11 minutes")
      expect(Option.isSome(yield* cache.get(kid, "RS256"))).toBe(true)
      expect((yield* cache.status).servingStale).toBe(true)
      yield* Scope.close(scope, Exit.void)
      const error = yield* Effect.flip(cache.get(kid, "RS256"))
      expect(error).toBeInstanceOf(JwksError)
      expect(error.message).toContain("closed")
      // Nothing stale is served any more, yet the status says it is (until minute 70).
      expect((yield* cache.status).servingStale).toBe(false)
    }).pipe(Effect.provide(FakeIdp.layerTest())))
})

/** The delays, in seconds, that "JWKS fetch failed (...); next attempt in N seconds" warnings announced. */
const capture = () => {
  const delays: Array<number> = []
  const logger = Logger.make(({ message }) => {
    const first = String(Array.isArray(message) ? message[0] : message)
    const m = /next attempt in ([\d.]+) seconds/.exec(first)
    if (m) delays.push(Number(m[1]))
  })
  return { delays, layer: Logger.replace(Logger.defaultLogger, logger) }
}

describe("retry state across alternating reasons", () => {
  it.scoped("a reason-dependent schedule goes on from where it was after another reason's failure", () => {
    const { delays, layer } = capture()
    return Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      // Three bad bodies, one 503, then a bad body again.
      yield* idp.failNext(FakeIdp.Fault.invalidJson, 3)
      yield* idp.failNext(FakeIdp.Fault.status(503))
      yield* idp.failNext(FakeIdp.Fault.invalidJson, 3)
      // docs/jwks-cache.md "Backoff after failures": Schedule.whileInput is done for some reasons; the default stands
      // in for that attempt and "both keep their state ... so yours goes on from where it was".
      const retry = Schedule.exponential("1 second").pipe(
        Schedule.whileInput((error: JwksError) => error.reason === "InvalidJson")
      )
      const cache = yield* JwksCache.make(yield* JwksSource.http(idp.jwksUri), { retry, backgroundRefresh: false })
      for (let i = 0; i < 5; i++) {
        yield* Effect.either(cache.refresh)
        // Past any retry time so far.
        yield* TestClock.adjust("10 minutes")
      }
      expect(yield* idp.fetchCount).toBe(5)
      // Own schedule: 1, 2, 4 s; the 503 is the default's (~1 s); the 5th failure (a bad body again) should go on
      // from 4 s (8 s or more), not start over.
      expect(delays.slice(0, 3)).toEqual([1, 2, 4])
      expect(delays[4], `announced delays: ${delays.join(", ")}`).toBeGreaterThanOrEqual(8)
    }).pipe(Effect.provide(FakeIdp.layerTest()), Effect.provide(layer))
  })
})

describe("a lookup that read the clock before a long wait", () => {
  it.scoped("does not start another fetch inside the backoff of the failed fetch it waited for", () =>
    Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      // The default backoff: about a second after the first failure, much less than the fetch's 5-second timeout.
      const cache = yield* JwksCache.make(yield* JwksSource.http(idp.jwksUri), {
        strategy: "time",
        interval: "20 minutes",
        backgroundRefresh: false
      })
      expect(Option.isSome(yield* cache.get(yield* idp.currentKid, "RS256"))).toBe(true)
      // The set expires; the IdP hangs: a lookup of an unknown kid waits out the timeout, then is answered from the
      // stale set without the kid. Its refetch for the kid waits for the backoff: no third request.
      yield* TestClock.adjust("21 minutes")
      yield* idp.setFault(FakeIdp.Fault.hang)
      const lookup = yield* Effect.fork(cache.get("rotated", "RS256"))
      yield* settle
      yield* TestClock.adjust("5 seconds")
      yield* settle
      const answered = Option.isSome(yield* Fiber.poll(lookup))
      yield* Fiber.interrupt(lookup)
      expect({ answered, fetches: yield* idp.fetchCount }).toEqual({ answered: true, fetches: 2 })
    }).pipe(Effect.provide(FakeIdp.layerTest())))
})
