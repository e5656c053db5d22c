/**
 * Edge cases pinned after a mutation-testing review: `JwksCache`, unpinned by the suite
 * (each test fails on one mutation that the rest of the suite does not catch).
 */
import { describe, expect, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"
import { generateKeyPairSync } from "node:crypto"
import * as CacheStrategy from "../src/CacheStrategy.js"
import * as JwksCache from "../src/JwksCache.js"
import { JwksError } from "../src/JwksError.js"
import * as JwksMetrics from "../src/JwksMetrics.js"
import * as JwksSource from "../src/JwksSource.js"
import * as FakeIdp from "../src/testing/FakeIdp.js"
import { capturing } from "./support/logs.js"

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

const settle = Effect.repeatN(Effect.yieldNow(), 200)
const ecKey = () => generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({ format: "jwk" })
const staleOptions = (maxStale: Duration.DurationInput): JwksCache.Options => ({
  strategy: "time",
  interval: "10 minutes",
  maxStale,
  backgroundRefresh: false,
  retry: Schedule.spaced("1 second")
})

describe("JwksCache edge cases, a second mutation review", () => {
  // a key withdrawn with none added is a key set change too
  it.scoped("a fetch that only removes a kid logs 'JWKS key set changed'", () => {
    const { entries: lines, use: apply } = capturing()
    const a = { ...ecKey(), kid: "a" }
    const b = { ...ecKey(), kid: "b" }
    let published: ReadonlyArray<object> = [a, b]
    const source = JwksSource.make("removal-only", Effect.sync(() => ({ keys: published })))
    return Effect.gen(function*() {
      const cache = yield* JwksCache.make(source, { backgroundRefresh: false, algorithms: ["ES256"] })
      yield* cache.refresh
      published = [a]
      yield* cache.refresh
      const changed = lines.filter((line) => line.message === "JWKS key set changed")
        .map(({ annotations }) => [annotations.added, annotations.removed])
      expect(changed).toEqual([["", "\"b\""]])
    }).pipe(apply)
  })

  // each outage's stale serving is announced once, the next outage's too
  it.scoped("'Serving stale JWKS' is logged once per outage, again for a second outage", () => {
    const { entries: lines, use: apply } = capturing()
    return Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      const cache = yield* JwksCache.make(yield* JwksSource.http(idp.jwksUri), staleOptions("1 hour"))
      const kid = yield* idp.currentKid
      yield* cache.get(kid, "RS256")
      yield* idp.setFault(FakeIdp.Fault.status(500))
      yield* TestClock.adjust("11 minutes")
      expect(Option.isSome(yield* cache.get(kid, "RS256"))).toBe(true) // stale
      yield* TestClock.adjust("2 seconds")
      expect(Option.isSome(yield* cache.get(kid, "RS256"))).toBe(true) // stale again: no second warning
      yield* idp.setFault(undefined)
      yield* TestClock.adjust("2 seconds")
      yield* cache.get(kid, "RS256") // recovered
      expect((yield* cache.status).fresh).toBe(true)
      yield* TestClock.adjust("11 minutes")
      expect((yield* cache.status).servingStale).toBe(false) // expired, nothing served stale yet
      yield* idp.setFault(FakeIdp.Fault.status(500))
      expect(Option.isSome(yield* cache.get(kid, "RS256"))).toBe(true) // stale, second outage
      const warnings = lines.filter((line) => line.message.startsWith("Serving stale JWKS until"))
      expect(warnings.map((line) => line.level)).toEqual(["WARN", "WARN"])
    }).pipe(Effect.provide(FakeIdp.layerTest()), apply)
  })

  // a cache takes the lowest free number, so no two open caches share a name
  it.effect("a cache opened after #2 closed is #2 again, not a second #3", () =>
    Effect.gen(function*() {
      const source = JwksSource.make("numbered", Effect.never)
      const open = (scope: Scope.CloseableScope) =>
        Scope.extend(JwksCache.make(source, { backgroundRefresh: false }), scope)
      const scopes = [yield* Scope.make(), yield* Scope.make(), yield* Scope.make()]
      const names = [] as Array<string>
      for (const scope of scopes) names.push((yield* open(scope)).source)
      expect(names).toEqual(["numbered", "numbered #2", "numbered #3"])
      yield* Scope.close(scopes[1]!, Exit.void)
      const fourth = yield* Scope.make()
      expect((yield* open(fourth)).source).toBe("numbered #2")
      for (const scope of [scopes[0]!, scopes[2]!, fourth]) yield* Scope.close(scope, Exit.void)
    }))

  // usesLeft never goes below zero
  it.scoped("usesLeft is 0, not negative, for a set used past its usages", () =>
    Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      const cache = yield* JwksCache.make(yield* JwksSource.http(idp.jwksUri), {
        strategy: "usage",
        usages: 2,
        backgroundRefresh: false
      })
      yield* cache.get(yield* idp.currentKid, "RS256")
      yield* cache.recordSuccess
      yield* cache.recordSuccess
      yield* cache.recordSuccess
      expect((yield* cache.status).usesLeft).toBe(0)
    }).pipe(Effect.provide(FakeIdp.layerTest())))

  // the next attempt's delay is given to a tenth of a second
  it.scoped("'next attempt in 1.5 seconds'", () => {
    const { entries: lines, use: apply } = capturing()
    return Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      const cache = yield* JwksCache.make(yield* JwksSource.http(idp.jwksUri), {
        backgroundRefresh: false,
        retry: Schedule.spaced("1500 millis")
      })
      yield* idp.failNext(FakeIdp.Fault.status(500))
      yield* Effect.flip(cache.get(yield* idp.currentKid, "RS256"))
      expect(lines.filter((line) => line.message.startsWith("JWKS fetch failed")).map((line) => line.message))
        .toEqual(["JWKS fetch failed (request); next attempt in 1.5 seconds"])
    }).pipe(Effect.provide(FakeIdp.layerTest()), apply)
  })

  // every fetch's latency goes to the fetch-duration histogram of its cache
  it.scoped("a 2-second fetch is recorded in effect_jwks_fetch_duration_ms", () =>
    Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      const source = JwksSource.make("timed-source", Effect.zipRight(Effect.sleep("2 seconds"), idp.jwks))
      const cache = yield* JwksCache.make(source, { backgroundRefresh: false })
      const fetching = yield* Effect.fork(cache.refresh)
      yield* settle
      yield* TestClock.adjust("2 seconds")
      yield* Fiber.join(fetching)
      const histogram = yield* Metric.value(Metric.tagged(JwksMetrics.fetchDuration, "source", "timed-source"))
      expect(histogram.count).toBe(1)
      expect(histogram.max).toBe(2000)
    }).pipe(Effect.provide(FakeIdp.layerTest())))

  const failingCache = (retry: Schedule.Schedule<unknown, any>) =>
    Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      const cache = yield* JwksCache.make(yield* JwksSource.http(idp.jwksUri), { backgroundRefresh: false, retry })
      return { idp, cache, kid: yield* idp.currentKid }
    })

  // a retry schedule of the app's that ends is started over, not replaced by the default one
  it.scoped("a 10-second retry schedule that ends after one recurrence still spaces every retry by 10 s", () =>
    Effect.gen(function*() {
      const retry = Schedule.spaced("10 seconds").pipe(Schedule.intersect(Schedule.recurs(1)))
      const { cache, idp, kid } = yield* failingCache(retry)
      yield* idp.setFault(FakeIdp.Fault.status(500))
      const attempt = Effect.zipRight(Effect.either(cache.get(kid, "RS256")), idp.fetchCount)
      let expected = 1
      expect(yield* attempt).toBe(expected)
      for (let i = 0; i < 4; i++) {
        yield* TestClock.adjust("2 seconds")
        expect(yield* attempt).toBe(expected) // held back
        yield* TestClock.adjust("8 seconds")
        expect(yield* attempt).toBe(++expected)
      }
    }).pipe(Effect.provide(FakeIdp.layerTest())))

  // a request that found the set expired takes a newer set that landed while it looked, without a second fetch
  it.scoped("a request whose freshness check outlived a refresh takes the new set, no extra fetch", () =>
    Effect.gen(function*() {
      let fetches = 0
      let slow = false
      const key = { ...ecKey(), kid: "k" }
      const source = JwksSource.make(
        "race",
        Effect.sync(() => {
          fetches++
          return { keys: [key] }
        })
      )
      // Fresh for a minute after its load; a step takes a second while `slow`.
      const schedule = Schedule.elapsed.pipe(
        Schedule.whileOutput((elapsed) => Duration.lessThan(elapsed, Duration.minutes(1))),
        Schedule.tapInput(() => slow ? Effect.sleep("1 second") : Effect.void)
      )
      const cache = yield* JwksCache.make(source, {
        cacheStrategy: CacheStrategy.fromSchedule(schedule),
        backgroundRefresh: false,
        algorithms: ["ES256"]
      })
      yield* cache.keys
      yield* TestClock.adjust("2 minutes")
      slow = true
      const looking = yield* Effect.fork(cache.keys) // finds the set expired, a second later
      yield* settle
      slow = false
      const renewed = yield* cache.refresh
      yield* TestClock.adjust("1 second")
      const got = yield* Fiber.join(looking)
      expect(got).toBe(renewed)
      expect(fetches).toBe(2)
    }))

  // a failed initial load (no keys at all: every validation fails) is an error, not a warning
  it.scoped("'Initial JWKS load failed' is logged at ERROR", () => {
    const { entries: lines, use: apply } = capturing()
    return Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      yield* idp.setFault(FakeIdp.Fault.status(500))
      yield* JwksCache.make(yield* JwksSource.http(idp.jwksUri), { retry: Schedule.spaced("1 minute") })
      yield* settle
      yield* TestClock.adjust("1 millis")
      yield* settle
      expect(lines.filter((line) => line.message === "Initial JWKS load failed").map((line) => line.level))
        .toEqual(["ERROR"])
    }).pipe(Effect.provide(FakeIdp.layerTest()), apply)
  })
})

describe("JwksCache edge cases, a third mutation review", () => {
  /** A source that fails with the reason in `state.next`, counting its fetches in `state.fetches`. */
  const failingWith = (name: string) => {
    const state = { next: "HttpStatus" as JwksError["reason"], fetches: 0 }
    const source = JwksSource.make(
      name,
      Effect.suspend(() => {
        state.fetches++
        return Effect.fail(new JwksError({ reason: state.next, source: name }))
      })
    )
    return { state, source }
  }

  // a schedule that throws for one reason keeps its place for the others, and says so in a warning
  it.scoped("a retry schedule that throws for one failure goes on from its state after it, with one warning", () => {
    const { entries: lines, use: apply } = capturing()
    return Effect.gen(function*() {
      const { source, state } = failingWith("throwing-once")
      const retry = Schedule.exponential("10 seconds").pipe(
        Schedule.whileInput((error: JwksError) => {
          if (error.reason === "Timeout") throw new Error("a bug in the schedule")
          return true
        })
      )
      const cache = yield* JwksCache.make(source, { backgroundRefresh: false, retry })
      const attempt = Effect.zipRight(Effect.either(cache.keys), Effect.sync(() => state.fetches))
      expect(yield* attempt).toBe(1) // 10 s
      yield* TestClock.adjust("10 seconds")
      state.next = "Timeout"
      expect(yield* attempt).toBe(2) // throws: the default backoff, about a second
      yield* TestClock.adjust("2 seconds")
      state.next = "HttpStatus"
      expect(yield* attempt).toBe(3) // the schedule's second step: 20 s, not 10 s from its start
      yield* TestClock.adjust("15 seconds")
      expect(yield* attempt).toBe(3)
      yield* TestClock.adjust("5 seconds")
      expect(yield* attempt).toBe(4)
      expect(
        lines.filter((line) => line.message.startsWith("The retry schedule failed")).map((line) => line.level)
      ).toEqual(["WARN"])
    }).pipe(apply)
  })

  // the default backoff standing in keeps growing across failures the own schedule answers in between
  it.scoped("the default backoff standing in goes on growing across the own schedule's failures in between", () =>
    Effect.gen(function*() {
      const { source, state } = failingWith("alternating")
      // Backs off on timeouts only: the default schedule stands in for the other failures.
      const retry = Schedule.spaced("1 minute").pipe(
        Schedule.whileInput((error: JwksError) => error.reason === "Timeout")
      )
      const cache = yield* JwksCache.make(source, { backgroundRefresh: false, retry })
      const attempt = Effect.zipRight(Effect.either(cache.keys), Effect.sync(() => state.fetches))
      expect(yield* attempt).toBe(1) // the default's first step: 0.8 to 1.2 s
      yield* TestClock.adjust("2 seconds")
      state.next = "Timeout"
      expect(yield* attempt).toBe(2) // 1 minute
      yield* TestClock.adjust("1 minute")
      state.next = "HttpStatus"
      expect(yield* attempt).toBe(3) // the default's second step: 1.6 to 2.4 s, not its first again
      yield* TestClock.adjust("1400 millis")
      expect(yield* attempt).toBe(3)
      yield* TestClock.adjust("1 second")
      expect(yield* attempt).toBe(4)
    }))
})
