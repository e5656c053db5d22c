import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import { afterEach, describe, expect, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as ConfigError from "effect/ConfigError"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberRef from "effect/FiberRef"
import * as FiberRefs from "effect/FiberRefs"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"
import * as Tracer from "effect/Tracer"
import { generateKeyPairSync } from "node:crypto"
import { vi } from "vitest"
import * as CacheStrategy from "../src/CacheStrategy.js"
import type * as Jwk from "../src/Jwk.js"
import * as JwksCache from "../src/JwksCache.js"
import { JwksError } from "../src/JwksError.js"
import * as JwksMetrics from "../src/JwksMetrics.js"
import * as JwksSource from "../src/JwksSource.js"
import * as FakeIdp from "../src/testing/FakeIdp.js"
import { recording } from "./support/tracing.js"

// Helpers ----------------------------------------------------------------------------------------------------------

type Env = FakeIdp.FakeIdp | HttpClient.HttpClient | Scope.Scope

/** Runs a test against a fresh fake identity provider, reached through its in-memory `HttpClient`. */
const withIdp = <A, E>(self: Effect.Effect<A, E, Env>): Effect.Effect<A, E, Scope.Scope> =>
  Effect.provide(self, FakeIdp.layerTest())

/** A cache over the fake IdP's JWKS URL, built in the test's scope. */
const makeCache = (options?: JwksCache.Options) =>
  Effect.gen(function*() {
    const idp = yield* FakeIdp.FakeIdp
    const source = yield* JwksSource.http(idp.jwksUri)
    const cache = yield* JwksCache.make(source, options)
    const kid = yield* idp.currentKid
    return { idp, cache, kid } as const
  })

/** Lets forked fibers run as far as they can without the clock moving. Used before asserting that nothing happened. */
const settle = Effect.repeatN(Effect.yieldNow(), 200)

/**
 * Yields until `check` holds (the cache's work includes a real, if short, asynchronous key import). The clock never
 * moves while waiting; the bound only turns a broken behaviour into a failure instead of a hang.
 */
const waitFor = <E, R>(label: string, check: Effect.Effect<boolean, E, R>): Effect.Effect<void, E, R> =>
  Effect.gen(function*() {
    for (let i = 0; i < 1_000_000; i++) {
      if (yield* check) return
      yield* Effect.yieldNow()
    }
    return yield* Effect.dieMessage(`timed out waiting for ${label}`)
  })

const waitForFetches = (idp: FakeIdp.FakeIdp["Type"], count: number) =>
  waitFor(`${count} JWKS fetches`, Effect.map(idp.fetchCount, (n) => n >= count))

/** Waits until some fiber sleeps until exactly `at`: the background fiber has scheduled its next refresh then. */
const waitForSleepUntil = (at: number) =>
  waitFor(`a sleep until ${at}`, Effect.map(TestClock.sleeps(), Chunk.some((instant) => instant === at)))

/** A logger that keeps every line (Debug and up): its level, first message part and annotations. */
const captureLogs = () => {
  const lines: Array<
    { readonly level: string; readonly message: string; readonly annotations: Record<string, unknown> }
  > = []
  const logger = Logger.make(({ annotations, logLevel, message }) => {
    const first = Array.isArray(message) ? message[0] : message
    lines.push({ level: logLevel.label, message: String(first), annotations: Object.fromEntries(annotations) })
  })
  const apply = <A, E, R>(self: Effect.Effect<A, E, R>) =>
    self.pipe(Logger.withMinimumLogLevel(LogLevel.Debug), Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
  /** The lines of the cache itself, as `LEVEL message`. */
  const cacheLines = () =>
    lines.filter((line) => line.annotations.module === "JwksCache").map((line) => `${line.level} ${line.message}`)
  return { lines, apply, cacheLines }
}

const minutes = (n: number) => Duration.toMillis(Duration.minutes(n))
const seconds = (n: number) => Duration.toMillis(Duration.seconds(n))

const isSome = <A>(option: Option.Option<A>) => Option.isSome(option)

/** Serves `times` validations from the set: each a get that finds the RS256 key, then its success recorded. */
const serve = (cache: JwksCache.Service, kid: string, times: number) =>
  Effect.gen(function*() {
    for (let i = 0; i < times; i++) {
      expect(isSome(yield* cache.get(kid, "RS256"))).toBe(true)
      yield* cache.recordSuccess
    }
  })

const expectJwksError = (error: unknown, reason: JwksError["reason"]) => {
  expect(error).toBeInstanceOf(JwksError)
  expect((error as JwksError).reason).toBe(reason)
}

// Strategies -------------------------------------------------------------------------------------------------------

describe("JwksCache strategies (background refresh off)", () => {
  it.scoped("time: a set serves until exactly `interval` after its load, then a get refetches", () =>
    withIdp(Effect.gen(function*() {
      const { cache, idp, kid } = yield* makeCache({
        strategy: "time",
        interval: "10 minutes",
        backgroundRefresh: false
      })
      expect(isSome(yield* cache.get(kid, "RS256"))).toBe(true)
      expect(yield* idp.fetchCount).toBe(1)

      yield* TestClock.adjust(minutes(10) - 1)
      expect(isSome(yield* cache.get(kid, "RS256"))).toBe(true)
      expect(yield* idp.fetchCount).toBe(1)

      yield* TestClock.adjust(1)
      expect(isSome(yield* cache.get(kid, "RS256"))).toBe(true)
      expect(yield* idp.fetchCount).toBe(2)
      expect((yield* cache.status).loadedAt?.getTime()).toBe(minutes(10))
    })))

  it.scoped("usage: a set serves exactly `usages` recorded successes; failed lookups do not count", () =>
    withIdp(Effect.gen(function*() {
      const { cache, idp, kid } = yield* makeCache({ strategy: "usage", usages: 5, backgroundRefresh: false })
      // The first junk kid loads the set; a set that arrived during the call is not refetched for its kid.
      expect(yield* cache.get("junk-0", "RS256")).toEqual(Option.none())
      expect(yield* idp.fetchCount).toBe(1)
      for (let i = 1; i <= 5; i++) {
        // Junk tokens: the lookup fails, so the validator never records a success.
        expect(yield* cache.get(`junk-${i}`, "RS256")).toEqual(Option.none())
        expect(yield* cache.get(kid, "ES256")).toEqual(Option.none())
        expect(isSome(yield* cache.get(kid, "RS256"))).toBe(true)
        yield* cache.recordSuccess
      }
      expect(yield* idp.fetchCount).toBe(2)
      expect((yield* cache.status).usesLeft).toBe(0)

      expect(isSome(yield* cache.get(kid, "RS256"))).toBe(true)
      expect(yield* idp.fetchCount).toBe(3)
      expect((yield* cache.status).usesLeft).toBe(5)
    })))

  it.scoped("both: time wins when the interval ends before the usages run out", () =>
    withIdp(Effect.gen(function*() {
      const { cache, idp, kid } = yield* makeCache({
        strategy: "both",
        interval: "1 minute",
        usages: 100,
        backgroundRefresh: false
      })
      yield* serve(cache, kid, 3)
      yield* TestClock.adjust(minutes(1) - 1)
      expect(isSome(yield* cache.get(kid, "RS256"))).toBe(true)
      expect(yield* idp.fetchCount).toBe(1)
      expect((yield* cache.status).usesLeft).toBe(97)

      yield* TestClock.adjust(1)
      expect(isSome(yield* cache.get(kid, "RS256"))).toBe(true)
      expect(yield* idp.fetchCount).toBe(2)
      expect((yield* cache.status).usesLeft).toBe(100)
    })))

  it.scoped("both: usage wins when the usages run out before the interval ends", () =>
    withIdp(Effect.gen(function*() {
      const { cache, idp, kid } = yield* makeCache({
        strategy: "both",
        interval: "20 minutes",
        usages: 3,
        backgroundRefresh: false
      })
      yield* serve(cache, kid, 3)
      expect(yield* idp.fetchCount).toBe(1)
      yield* TestClock.adjust("1 minute")
      expect(isSome(yield* cache.get(kid, "RS256"))).toBe(true)
      expect(yield* idp.fetchCount).toBe(2)
      expect((yield* cache.status).loadedAt?.getTime()).toBe(minutes(1))
    })))

  it.scoped("a custom schedule is honoured: 5 minutes or 10 validations, whichever lasts longer", () =>
    withIdp(Effect.gen(function*() {
      const strategy = CacheStrategy.fromSchedule(
        Schedule.union(Schedule.upTo(Schedule.forever, "5 minutes"), Schedule.recurs(11))
      )
      const { cache, idp, kid } = yield* makeCache({ cacheStrategy: strategy, backgroundRefresh: false })
      // Ten validations do not end the set while its 5 minutes run.
      yield* serve(cache, kid, 10)
      yield* TestClock.adjust(minutes(5) - 1)
      expect(isSome(yield* cache.get(kid, "RS256"))).toBe(true)
      expect(yield* idp.fetchCount).toBe(1)
      // Both limits reached: the next get refetches.
      yield* TestClock.adjust(1)
      expect(isSome(yield* cache.get(kid, "RS256"))).toBe(true)
      expect(yield* idp.fetchCount).toBe(2)

      // The 5 minutes alone do not end the second set either: it still has validations left.
      yield* TestClock.adjust("1 hour")
      yield* serve(cache, kid, 10)
      expect(yield* idp.fetchCount).toBe(2)
      expect(isSome(yield* cache.get(kid, "RS256"))).toBe(true)
      expect(yield* idp.fetchCount).toBe(3)
    })))
})

// Answers from memory ----------------------------------------------------------------------------------------------

describe("JwksCache answers from memory (unsafeGet, unsafeRecordSuccess)", () => {
  it.scoped("unsafeGet gives the key of a fresh set, and nothing for a cold, expired or used-up set or an unknown kid", () =>
    withIdp(Effect.gen(function*() {
      const { cache, idp, kid } = yield* makeCache({
        strategy: "both",
        interval: "10 minutes",
        usages: 2,
        backgroundRefresh: false
      })
      const at = (millis: number) => cache.unsafeGet(kid, "RS256", millis)
      expect(at(0)).toBeUndefined() // nothing loaded yet, and no fetch started by asking
      expect(yield* idp.fetchCount).toBe(0)
      const key = Option.getOrThrow(yield* cache.get(kid, "RS256"))
      expect(at(0)).toBe(key)
      expect(at(minutes(10) - 1)).toBe(key)
      expect(at(minutes(10))).toBeUndefined()
      expect(cache.unsafeGet("forged", "RS256", 0)).toBeUndefined()
      expect(cache.unsafeGet(kid, "ES256", 0)).toBeUndefined()
      expect(cache.unsafeRecordSuccess()).toBe(true)
      expect(at(0)).toBe(key)
      expect(cache.unsafeRecordSuccess()).toBe(true)
      expect(at(0)).toBeUndefined() // its two usages are recorded
      expect((yield* cache.status).usesLeft).toBe(0)
      expect(yield* idp.fetchCount).toBe(1)
    })))

  it.scoped("a custom strategy answers only through effects: its schedule must be stepped", () =>
    withIdp(Effect.gen(function*() {
      const strategy = CacheStrategy.fromSchedule(Schedule.recurs(5))
      const { cache, kid } = yield* makeCache({ cacheStrategy: strategy, backgroundRefresh: false })
      expect(isSome(yield* cache.get(kid, "RS256"))).toBe(true)
      expect(cache.unsafeGet(kid, "RS256", 0)).toBeUndefined()
      expect(cache.unsafeRecordSuccess()).toBe(false)
    })))

  it.scoped("unsafeRecordSuccess wakes the background fiber at 80% of the usages, as recordSuccess does", () =>
    withIdp(Effect.gen(function*() {
      const { cache, idp } = yield* makeCache({ strategy: "usage", usages: 10 })
      yield* waitForFetches(idp, 1)
      yield* waitFor("the first set", Effect.map(cache.status, (status) => status.fresh))
      for (let i = 0; i < 7; i++) cache.unsafeRecordSuccess()
      yield* settle
      expect(yield* idp.fetchCount).toBe(1)
      cache.unsafeRecordSuccess()
      yield* waitForFetches(idp, 2)
      yield* waitFor("the second set", Effect.map(cache.status, (status) => status.usesLeft === 10))
    })))
})

// Background refresh -----------------------------------------------------------------------------------------------

describe("JwksCache background refresh", () => {
  it.scoped("a background fetch is a trace of its own, and its log lines are in no span, whatever the cache was built in", () =>
    withIdp(Effect.gen(function*() {
      const { named, tracer } = recording()
      const spanOfLine = new Map<string, boolean>()
      const logger = Logger.make(({ context, message }) => {
        const span = Context.getOption(FiberRefs.getOrDefault(context, FiberRef.currentContext), Tracer.ParentSpan)
        spanOfLine.set(String(Array.isArray(message) ? message[0] : message), Option.isSome(span))
      })
      const { cache, kid } = yield* Effect.withSpan(
        makeCache({ strategy: "time", interval: "10 minutes", backgroundRefreshJitter: 0 }),
        "app.startup"
      ).pipe(Effect.withTracer(tracer), Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
      yield* cache.get(kid, "RS256") // the first load, for this request (and outside the tracer)
      yield* TestClock.adjust("9 minutes") // past the refresh ahead of expiry, at 8
      yield* waitFor("the refresh ahead of expiry", Effect.map(cache.status, (status) => status.fetches === 2))
      yield* Effect.withSpan(cache.refresh, "operator").pipe(Effect.withTracer(tracer))
      const refreshes = named("JwksCache.refresh")
      const parents = refreshes.map((span) => [span.attributes.get("trigger"), Option.isSome(span.parent)])
      expect(parents).toEqual([["background", false], ["manual", true]])
      expect(spanOfLine.get("Background JWKS refresh completed")).toBe(false)
    })))

  it.scoped("refreshes at 16 of 20 minutes, not before, cycle after cycle; gets never fetch", () =>
    withIdp(Effect.gen(function*() {
      const { cache, idp, kid } = yield* makeCache({ backgroundRefreshJitter: 0 })
      // The fiber loads the set at once, then waits for 16 minutes.
      yield* waitForSleepUntil(minutes(16))
      expect(yield* idp.fetchCount).toBe(1)

      yield* TestClock.adjust(minutes(16) - seconds(1))
      yield* settle
      expect(isSome(yield* cache.get(kid, "RS256"))).toBe(true)
      expect(yield* idp.fetchCount).toBe(1)

      yield* TestClock.adjust("1 second")
      yield* waitForSleepUntil(minutes(32))
      expect(yield* idp.fetchCount).toBe(2)
      expect((yield* cache.status).loadedAt?.getTime()).toBe(minutes(16))

      // Minute by minute up to 50 minutes, with a get each minute: the count only rises at 32 and 48 minutes.
      for (let minute = 17; minute <= 50; minute++) {
        yield* TestClock.adjust("1 minute")
        if (minute % 16 === 0) yield* waitForSleepUntil(minutes(minute + 16))
        else yield* settle
        expect(isSome(yield* cache.get(kid, "RS256"))).toBe(true)
        expect(yield* idp.fetchCount).toBe(1 + Math.floor(minute / 16))
      }
      expect(yield* idp.fetchCount).toBe(4)
    })))

  it.scoped("a threshold so small that its delay rounds away at today's epoch refreshes a millisecond on, not in a loop", () =>
    withIdp(Effect.gen(function*() {
      // TestClock starts at 0, where any fraction of a millisecond still shows: the wall clock's today does not.
      const today = Date.parse("2026-06-01T12:00:00Z")
      yield* TestClock.setTime(today)
      const { idp } = yield* makeCache({ backgroundRefreshThreshold: 1e-10, backgroundRefreshJitter: 0 })
      yield* waitForSleepUntil(today + 1)
      yield* settle
      expect(yield* idp.fetchCount).toBe(1)
      yield* TestClock.adjust("1 millis")
      yield* waitForSleepUntil(today + 2)
      expect(yield* idp.fetchCount).toBe(2)
    })))

  it.scoped("with jitter 0.05 the refresh happens within (15.2, 16] minutes, at a time that varies", () =>
    withIdp(Effect.gen(function*() {
      const offsets: Array<number> = []
      for (const seed of [1, 2, 3, 4, 5]) {
        const offset = yield* Effect.scoped(Effect.gen(function*() {
          const idp = yield* FakeIdp.FakeIdp
          yield* idp.resetCounts
          const start = yield* TestClock.currentTimeMillis
          const source = yield* JwksSource.http(idp.jwksUri)
          yield* JwksCache.make(source, { backgroundRefreshJitter: 0.05 })
          // Once loaded, the fiber sleeps until its refresh: the one sleep past the fetch's 5 second timeout.
          const later = (instants: Chunk.Chunk<number>) => Chunk.findFirst(instants, (at) => at > start + seconds(5))
          yield* waitFor("the refresh to be scheduled", Effect.map(TestClock.sleeps(), (s) => Option.isSome(later(s))))
          const due = Option.getOrThrow(later(yield* TestClock.sleeps()))
          expect(yield* idp.fetchCount).toBe(1)
          // 15.2 minutes: never yet. Just before the drawn time: not yet. At it: the refresh.
          yield* TestClock.adjust(seconds(912))
          yield* settle
          expect(yield* idp.fetchCount).toBe(1)
          yield* TestClock.adjust(due - 1 - (yield* TestClock.currentTimeMillis))
          yield* settle
          expect(yield* idp.fetchCount).toBe(1)
          yield* TestClock.adjust(1)
          yield* waitForFetches(idp, 2)
          return due - start
        })).pipe(Effect.withRandom(Random.make(seed)))
        expect(offset).toBeGreaterThan(seconds(912))
        expect(offset).toBeLessThanOrEqual(seconds(960))
        offsets.push(offset)
        yield* TestClock.adjust("1 hour")
      }
      // The jitter is drawn per set: five seeds give five different times.
      expect(new Set(offsets).size).toBe(5)
    })))

  it.scoped("reschedules after a failed refresh: retries with backoff while the set keeps serving", () =>
    withIdp(Effect.gen(function*() {
      const { cache, idp, kid } = yield* makeCache({
        backgroundRefreshJitter: 0,
        retry: Schedule.exponential("1 second")
      })
      yield* waitForSleepUntil(minutes(16))
      yield* idp.failNext(FakeIdp.Fault.status(500), 2)

      // 16:00 fails; the next attempt is 1 second later.
      yield* TestClock.adjust("16 minutes")
      yield* waitForSleepUntil(minutes(16) + seconds(1))
      expect(yield* idp.fetchCount).toBe(2)
      expect((yield* cache.status).lastRefresh?.outcome).toBe("failure")
      expect(isSome(yield* cache.get(kid, "RS256"))).toBe(true)
      yield* TestClock.adjust(seconds(1) - 1)
      yield* settle
      expect(isSome(yield* cache.get(kid, "RS256"))).toBe(true)
      expect(yield* idp.fetchCount).toBe(2)

      // 16:01 fails again; the next attempt is 2 seconds later.
      yield* TestClock.adjust(1)
      yield* waitForSleepUntil(minutes(16) + seconds(3))
      expect(yield* idp.fetchCount).toBe(3)
      expect(isSome(yield* cache.get(kid, "RS256"))).toBe(true)
      expect(yield* idp.fetchCount).toBe(3)

      // 16:03 succeeds, and the next cycle is 16 minutes after it.
      yield* TestClock.adjust("2 seconds")
      yield* waitForSleepUntil(minutes(32) + seconds(3))
      expect(yield* idp.fetchCount).toBe(4)
      const status = yield* cache.status
      expect(status.lastRefresh?.outcome).toBe("success")
      expect(status.loadedAt?.getTime()).toBe(minutes(16) + seconds(3))
      expect(status.servingStale).toBe(false)

      yield* TestClock.adjust(minutes(16) - 1)
      yield* settle
      expect(yield* idp.fetchCount).toBe(4)
      yield* TestClock.adjust(1)
      yield* waitForFetches(idp, 5)
      expect(yield* idp.fetchCount).toBe(5)
    })))

  it.scoped("refreshes in the background once 80% of the usages are recorded", () =>
    withIdp(Effect.gen(function*() {
      const { cache, idp, kid } = yield* makeCache({ strategy: "usage", usages: 10 })
      yield* waitForFetches(idp, 1)
      yield* serve(cache, kid, 7)
      yield* settle
      expect(yield* idp.fetchCount).toBe(1)
      expect((yield* cache.status).usesLeft).toBe(3)

      expect(isSome(yield* cache.get(kid, "RS256"))).toBe(true)
      yield* cache.recordSuccess
      yield* waitFor("a new set", Effect.map(cache.status, (s) => s.usesLeft === 10))
      yield* settle
      expect(yield* idp.fetchCount).toBe(2)
    })))

  it.scoped("wakes at floor(usages × threshold) as written in decimal: the 29th of 100 at 0.29, not the 28th", () =>
    withIdp(Effect.gen(function*() {
      // 100 × 0.29 is 28.999999999999996 in binary floating point.
      const { cache, idp, kid } = yield* makeCache({ strategy: "usage", usages: 100, backgroundRefreshThreshold: 0.29 })
      yield* waitForFetches(idp, 1)
      yield* serve(cache, kid, 28)
      yield* settle
      expect(yield* idp.fetchCount).toBe(1)
      yield* cache.recordSuccess
      yield* waitForFetches(idp, 2)
      // Twelve nines and more: still below the last use (1000 × 0.99999999999999 is 999.99999999999).
      const nines = yield* makeCache({ strategy: "usage", usages: 1000, backgroundRefreshThreshold: 0.99999999999999 })
      expect(isSome(yield* nines.cache.get(nines.kid, "RS256"))).toBe(true)
      for (let i = 0; i < 998; i++) yield* nines.cache.recordSuccess
      yield* settle
      expect(yield* idp.fetchCount).toBe(3)
      yield* nines.cache.recordSuccess
      yield* waitForFetches(idp, 4)
    })))

  it.scoped("closing the scope interrupts the background fiber", () =>
    withIdp(Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      yield* Effect.scoped(Effect.gen(function*() {
        const source = yield* JwksSource.http(idp.jwksUri)
        yield* JwksCache.make(source, { backgroundRefreshJitter: 0 })
        yield* waitForSleepUntil(minutes(16))
      }))
      expect(yield* idp.fetchCount).toBe(1)
      yield* TestClock.adjust("2 hours")
      yield* settle
      expect(yield* idp.fetchCount).toBe(1)
    })))
  it.scoped("closing the scope answers callers waiting on a fetch, and no fetch starts after", () =>
    withIdp(Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      yield* idp.setFault(FakeIdp.Fault.hang)
      const scope = yield* Scope.make()
      const source = yield* JwksSource.http(idp.jwksUri)
      const cache = yield* JwksCache.make(source, { backgroundRefresh: false }).pipe(Scope.extend(scope))
      const waiting = yield* Effect.fork(cache.get("any", "RS256"))
      yield* waitFor("the hanging fetch", Effect.map(idp.fetchCount, (n) => n === 1))
      yield* Scope.close(scope, Exit.void)
      const answered = yield* Fiber.join(waiting).pipe(Effect.flip)
      expectJwksError(answered, "Unreachable")
      expect(answered.message).toContain("closed")

      yield* idp.setFault(undefined)
      expectJwksError(yield* Effect.flip(cache.get("any", "RS256")), "Unreachable")
      yield* settle
      expect(yield* idp.fetchCount).toBe(1)
    })))
})

// Single flight, unknown kids, backoff -----------------------------------------------------------------------------

describe("JwksCache background refresh, paced", () => {
  /**
   * A cache over the fake IdP whose fiber clock records each zero sleep (a turn of the event loop on the live clock,
   * at once under TestClock) as "yield", and whose HTTP client records "request" and "response". While `gate` is set
   * the IdP's answer waits for it. `onYield` may replace a zero sleep.
   */
  const recorded = (
    options: JwksCache.Options,
    onYield?: (events: ReadonlyArray<string>) => Effect.Effect<void>,
    http?: JwksSource.HttpOptions
  ) =>
    Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      const events: Array<string> = []
      const clock = yield* Effect.clock
      const recording: Clock.Clock = {
        [Clock.ClockTypeId]: Clock.ClockTypeId,
        unsafeCurrentTimeMillis: () => clock.unsafeCurrentTimeMillis(),
        unsafeCurrentTimeNanos: () => clock.unsafeCurrentTimeNanos(),
        currentTimeMillis: clock.currentTimeMillis,
        currentTimeNanos: clock.currentTimeNanos,
        sleep: (duration) => {
          if (Duration.toMillis(duration) !== 0) return clock.sleep(duration)
          events.push("yield")
          return onYield?.(events) ?? clock.sleep(duration)
        }
      }
      const gate: { current: Deferred.Deferred<void> | undefined } = { current: undefined }
      const client = HttpClient.transform(yield* HttpClient.HttpClient, (response) =>
        Effect.zipRight(
          Effect.sync(() => events.push("request")),
          Effect.zipRight(
            Effect.suspend(() => gate.current === undefined ? Effect.void : Deferred.await(gate.current)),
            Effect.tap(response, () => Effect.sync(() => events.push("response")))
          )
        ))
      const source = yield* Effect.provideService(JwksSource.http(idp.jwksUri, http), HttpClient.HttpClient, client)
      const cache = yield* JwksCache.make(source, options).pipe(Effect.withClock(recording))
      /** Runs `effect` on the recording clock, as the cache's own fibers do. */
      const recorded = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.withClock(effect, recording)
      return { cache, events, gate, idp, recorded }
    })

  it.scoped("a refresh ahead of expiry gives the event loop back between its steps; the initial load does not", () =>
    withIdp(Effect.gen(function*() {
      const { cache, events } = yield* recorded({
        strategy: "time",
        interval: "10 minutes",
        backgroundRefreshJitter: 0
      })
      yield* waitForSleepUntil(minutes(8))
      // The initial load: requests may be waiting for it.
      expect(events).toEqual(["request", "response"])
      events.length = 0
      yield* TestClock.adjust(minutes(8))
      yield* waitForSleepUntil(minutes(16))
      // Before the fetch, before the request, after the answer, after its body, after its decoding, after the import.
      expect(events).toEqual(["yield", "yield", "request", "response", "yield", "yield", "yield", "yield"])
      expect((yield* cache.status).loadedAt?.getTime()).toBe(minutes(8))
    })))

  /**
   * The ways a caller joins a refresh under way, each after the refresh has sent its request: what is done first (on
   * the test's fiber), then the call that joins.
   */
  const joins: ReadonlyArray<
    readonly [
      string,
      (cache: JwksCache.Service, idp: FakeIdp.FakeIdp["Type"]) => Effect.Effect<Effect.Effect<unknown, unknown>>
    ]
  > = [
    [
      "a token whose kid the set lacks",
      (cache, idp) =>
        Effect.map(
          idp.rotate("overlap"),
          (kid) =>
            Effect.flatMap(cache.get(kid, "RS256"), (key) =>
              isSome(key) ? Effect.void : Effect.dieMessage("the new key was not found"))
        )
    ],
    ["a request that finds the set expired", (cache, idp) =>
      Effect.zipRight(
        TestClock.adjust(minutes(2)),
        Effect.map(idp.currentKid, (kid) => cache.get(kid, "RS256"))
      )],
    ["refresh", (cache) => Effect.succeed(cache.refresh)]
  ]

  for (const [name, join] of joins) {
    it.scoped(`a caller that joins a paced refresh stops its pacing: ${name}`, () =>
      withIdp(Effect.gen(function*() {
        const { cache, events, gate, idp, recorded: onClock } = yield* recorded(
          { strategy: "time", interval: "10 minutes", backgroundRefreshJitter: 0 },
          undefined,
          { timeout: "1 hour" }
        )
        yield* waitForSleepUntil(minutes(8))
        events.length = 0
        gate.current = yield* Deferred.make<void>()
        yield* TestClock.adjust(minutes(8))
        yield* waitFor("the refresh's request", Effect.sync(() => events.includes("request")))
        const waiting = yield* Effect.fork(onClock(yield* join(cache, idp)))
        yield* settle
        expect(Option.isNone(yield* Fiber.poll(waiting))).toBe(true)
        expect(events).toEqual(["yield", "yield", "request"])
        yield* Deferred.succeed(gate.current, void 0)
        yield* Fiber.join(waiting)
        // `refresh` then fetches once more, unpaced: the refresh it waited for was asked for before it was called.
        const own = name === "refresh" ? ["request", "response"] : []
        expect(events).toEqual(["yield", "yield", "request", "response", ...own])
      })))
  }

  it.scoped("a caller that joins a paced refresh during a step does not wait for the step to end", () =>
    withIdp(Effect.gen(function*() {
      // The step after the answer stands for a long turn of the event loop: it ends only when told.
      const turn = yield* Deferred.make<void>()
      yield* Effect.addFinalizer(() => Deferred.succeed(turn, void 0))
      const { cache, events, recorded: onClock } = yield* recorded(
        { strategy: "time", interval: "10 minutes", backgroundRefreshJitter: 0 },
        (events) => events.at(-2) === "response" ? Deferred.await(turn) : Effect.void
      )
      yield* waitForSleepUntil(minutes(8))
      events.length = 0
      yield* TestClock.adjust(minutes(8))
      yield* waitFor("the step after the answer", Effect.sync(() => events.length === 5))
      expect(events).toEqual(["yield", "yield", "request", "response", "yield"])
      const joined = yield* Effect.fork(onClock(cache.refresh))
      yield* settle
      expect(Option.isSome(yield* Fiber.poll(joined))).toBe(true)
      // The refresh under way ended without its step, then `refresh` made its own fetch (unpaced).
      expect(events).toEqual(["yield", "yield", "request", "response", "yield", "request", "response"])
    })))

  it.scoped("fetches that callers wait for are not paced: an expired set, an unknown kid, refresh", () =>
    withIdp(Effect.gen(function*() {
      const { cache, events, idp, recorded: onClock } = yield* recorded({
        strategy: "time",
        interval: "10 minutes",
        backgroundRefresh: false
      })
      const kid = yield* idp.currentKid
      expect(isSome(yield* onClock(cache.get(kid, "RS256")))).toBe(true)
      yield* TestClock.adjust(minutes(10))
      expect(isSome(yield* onClock(cache.get(kid, "RS256")))).toBe(true)
      expect(Option.isNone(yield* onClock(cache.get("unknown", "RS256")))).toBe(true)
      yield* onClock(cache.refresh)
      expect(events).toEqual([
        "request",
        "response",
        "request",
        "response",
        "request",
        "response",
        "request",
        "response"
      ])
    })))

  it.scoped("a paced refresh cut short between the answer and its body ends the request", () =>
    withIdp(Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      const signals: Array<AbortSignal> = []
      const client = HttpClient.make((request, url, signal) => {
        signals.push(signal)
        return Effect.map(
          idp.handle({ method: request.method, url }),
          (answer) => HttpClientResponse.fromWeb(request, new Response(answer.body, answer))
        )
      })
      // The step right after the answer never ends: the closing scope finds the refresh there.
      const scope = yield* Scope.make()
      const { events } = yield* recorded(
        { strategy: "time", interval: "10 minutes", backgroundRefreshJitter: 0 },
        (events) => events.at(-2) === "response" ? Effect.never : Effect.void
      ).pipe(Effect.provideService(HttpClient.HttpClient, client), Scope.extend(scope))
      yield* waitForSleepUntil(minutes(8))
      events.length = 0
      yield* TestClock.adjust(minutes(8))
      yield* waitFor("the step after the answer", Effect.sync(() => events.at(-1) === "yield" && signals.length === 2))
      expect(signals[1]!.aborted).toBe(false)
      yield* Scope.close(scope, Exit.void)
      expect(signals[1]!.aborted).toBe(true)
    })))
})

describe("JwksCache background refresh on the live clock", () => {
  // TestClock sleeps any length; the live clock's timers keep at most 2^31 - 1 ms (about 24.8 days), and Effect takes
  // a longer sleep for "never". Vitest's fake timers drive the live clock here: no real time passes.
  const day = 24 * 60 * 60 * 1000
  afterEach(() => {
    vi.useRealTimers()
  })

  it("a 40-day interval still refreshes at its threshold, 32 days in", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "setInterval", "clearInterval", "Date"] })
    const scope = Effect.runSync(Scope.make())
    const idp = await Effect.runPromise(
      Effect.gen(function*() {
        const idp = yield* FakeIdp.FakeIdp
        const source = yield* JwksSource.http(idp.jwksUri)
        yield* JwksCache.make(source, { strategy: "time", interval: "40 days", backgroundRefreshJitter: 0 })
        return idp
      }).pipe(Effect.provide(FakeIdp.layerTest()), Scope.extend(scope))
    )
    const fetches = () => Effect.runPromise(idp.fetchCount)
    try {
      for (let i = 0; i < 200 && (await fetches()) < 1; i++) await vi.advanceTimersByTimeAsync(1)
      expect(await fetches()).toBe(1)
      await vi.advanceTimersByTimeAsync(31 * day)
      expect(await fetches()).toBe(1)
      for (let d = 0; d < 2; d++) await vi.advanceTimersByTimeAsync(day)
      for (let i = 0; i < 200 && (await fetches()) < 2; i++) await vi.advanceTimersByTimeAsync(1)
      expect(await fetches()).toBe(2)
    } finally {
      await Effect.runPromise(Scope.close(scope, Exit.void))
    }
  })
})

describe("JwksCache fetches", () => {
  it.scoped("1000 concurrent cold gets share one fetch", () =>
    withIdp(Effect.gen(function*() {
      const { cache, idp, kid } = yield* makeCache({ backgroundRefresh: false })
      const keys = yield* Effect.all(Array.from({ length: 1000 }, () => cache.get(kid, "RS256")), {
        concurrency: "unbounded"
      })
      expect(keys.every(isSome)).toBe(true)
      expect(yield* idp.fetchCount).toBe(1)
      expect((yield* cache.status).fetches).toBe(1)
    })))

  it.scoped("1000 concurrent cold gets share the background fiber's slow fetch", () =>
    withIdp(Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      yield* idp.setFault(FakeIdp.Fault.latency("1 second"))
      const { cache, kid } = yield* makeCache()
      const fiber = yield* Effect.fork(
        Effect.all(Array.from({ length: 1000 }, () => cache.get(kid, "RS256")), { concurrency: "unbounded" })
      )
      yield* waitForSleepUntil(seconds(1))
      yield* settle
      expect(yield* idp.fetchCount).toBe(1)
      yield* TestClock.adjust("1 second")
      const keys = yield* Fiber.join(fiber)
      expect(keys.every(isSome)).toBe(true)
      expect(yield* idp.fetchCount).toBe(1)
    })))

  /**
   * A cache (background refresh off) over the fake IdP whose answers, while `slow.on`, are made at once but delivered
   * a second later on the clock: the set in flight predates what happens meanwhile.
   */
  const lateAnswers = Effect.gen(function*() {
    const idp = yield* FakeIdp.FakeIdp
    const slow = { on: false }
    const client = HttpClient.transform(
      yield* HttpClient.HttpClient,
      (response) => slow.on ? Effect.tap(response, () => Effect.sleep("1 second")) : response
    )
    const source = yield* Effect.provideService(JwksSource.http(idp.jwksUri), HttpClient.HttpClient, client)
    const cache = yield* JwksCache.make(source, { backgroundRefresh: false })
    return { cache, idp, slow }
  })

  it.scoped("a new kid that joins a fetch begun before its key was published gets one fetch of its own", () =>
    withIdp(Effect.gen(function*() {
      const { cache, idp, slow } = yield* lateAnswers
      expect(isSome(yield* cache.get(yield* idp.currentKid, "RS256"))).toBe(true)

      slow.on = true
      const inFlight = yield* Effect.fork(cache.refresh)
      yield* waitFor("the refresh to reach the IdP", Effect.map(idp.fetchCount, (n) => n === 2))
      const kid = yield* idp.rotate("overlap")
      slow.on = false
      const lookup = yield* Effect.fork(cache.get(kid, "RS256"))
      yield* settle
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(inFlight)
      expect(isSome(yield* Fiber.join(lookup))).toBe(true)
      expect(yield* idp.fetchCount).toBe(3)
    })))

  it.scoped("inside the throttle window, a new kid joins a fetch under way and gets the key it brings", () =>
    withIdp(Effect.gen(function*() {
      const { cache, idp, slow } = yield* lateAnswers
      expect(isSome(yield* cache.get(yield* idp.currentKid, "RS256"))).toBe(true)
      expect(yield* cache.get("forged", "RS256")).toEqual(Option.none()) // a refetch: the window starts
      const kid = yield* idp.rotate("overlap")
      slow.on = true
      const inFlight = yield* Effect.fork(cache.refresh)
      yield* waitFor("the refresh to reach the IdP", Effect.map(idp.fetchCount, (n) => n === 3))
      const lookup = yield* Effect.fork(cache.get(kid, "RS256"))
      yield* settle
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(inFlight)
      expect(Option.map(yield* Fiber.join(lookup), (key) => key.kid)).toEqual(Option.some(kid))
      expect(yield* idp.fetchCount).toBe(3)
    })))

  it.scoped("refresh gives a set asked for after it was called: a key withdrawn meanwhile is gone", () =>
    withIdp(Effect.gen(function*() {
      const { cache, idp, slow } = yield* lateAnswers
      const old = yield* idp.currentKid
      expect(isSome(yield* cache.get(old, "RS256"))).toBe(true)

      // A fetch under way (a request's, the background fiber's) when the IdP withdraws the key and the operator
      // forces a refresh.
      slow.on = true
      const inFlight = yield* Effect.fork(cache.refresh)
      yield* waitFor("the fetch to reach the IdP", Effect.map(idp.fetchCount, (n) => n === 2))
      const kid = yield* idp.rotate("replace")
      const forced = yield* Effect.fork(cache.refresh)
      yield* settle
      yield* TestClock.adjust("1 second")
      expect((yield* Fiber.join(inFlight)).keys.map((key) => key.kid)).toEqual([old])
      yield* settle
      yield* TestClock.adjust("1 second")
      expect((yield* Fiber.join(forced)).keys.map((key) => key.kid)).toEqual([kid])
      expect(yield* idp.fetchCount).toBe(3)
    })))

  it.scoped("a kid from a rotation triggers one refetch that the get waits for", () =>
    withIdp(Effect.gen(function*() {
      const { cache, idp, kid } = yield* makeCache({ backgroundRefresh: false })
      expect(isSome(yield* cache.get(kid, "RS256"))).toBe(true)
      const rotated = yield* idp.rotate("replace")
      const key = yield* cache.get(rotated, "RS256")
      expect(Option.map(key, (k) => k.kid)).toEqual(Option.some(rotated))
      expect(yield* idp.fetchCount).toBe(2)
      // The old key went with the rotation, and its lookup is throttled.
      expect(yield* cache.get(kid, "RS256")).toEqual(Option.none())
      expect(yield* idp.fetchCount).toBe(2)
      expect((yield* cache.status).keyIds).toEqual([rotated])
    })))

  it.scoped("a forged kid that joined a slow fetch dates its own refetch's window from that refetch, not its arrival", () =>
    Effect.gen(function*() {
      const jwks = yield* Effect.flatMap(FakeIdp.make(), (idp) => idp.jwks)
      let fetches = 0
      // The second fetch answers 29 seconds late: within the source's 30-second timeout and the throttle's window.
      const source = JwksSource.make(
        "slow",
        Effect.suspend(() => (++fetches === 2 ? Effect.as(Effect.sleep("29 seconds"), jwks) : Effect.succeed(jwks)))
      )
      const cache = yield* JwksCache.make(source as JwksSource.Service, { backgroundRefresh: false })
      yield* cache.keys
      yield* TestClock.adjust("1 minute")
      const refreshing = yield* Effect.fork(cache.refresh)
      yield* waitFor("the slow fetch", Effect.sync(() => fetches === 2))
      const forged = yield* Effect.fork(cache.get("forged-1", "RS256"))
      yield* settle
      yield* TestClock.adjust("29 seconds")
      yield* Fiber.join(refreshing)
      // The joined set lacked it: one refetch of its own, at 29 seconds.
      expect(Option.isNone(yield* Fiber.join(forged))).toBe(true)
      expect(fetches).toBe(3)
      // A second later, another forged kid: within that refetch's window, throttled.
      yield* TestClock.adjust("1 second")
      expect(Option.isNone(yield* cache.get("forged-2", "RS256"))).toBe(true)
      expect(fetches).toBe(3)
    }))

  it.scoped("100 forged kids within 30 seconds cause one refetch; the next window allows one more", () =>
    withIdp(Effect.gen(function*() {
      const { cache, idp, kid } = yield* makeCache({ backgroundRefresh: false })
      expect(isSome(yield* cache.get(kid, "RS256"))).toBe(true)
      expect(yield* idp.fetchCount).toBe(1)
      for (let i = 0; i < 100; i++) {
        expect(yield* cache.get(`forged-${i}`, "RS256")).toEqual(Option.none())
        yield* TestClock.adjust(290)
      }
      expect(yield* idp.fetchCount).toBe(2)
      // 29.999 seconds after the refetch: still throttled.
      yield* TestClock.adjust(seconds(30) - 1 - 100 * 290)
      expect(yield* cache.get("forged-late", "RS256")).toEqual(Option.none())
      expect(yield* idp.fetchCount).toBe(2)
      yield* TestClock.adjust(1)
      expect(yield* cache.get("forged-next-window", "RS256")).toEqual(Option.none())
      expect(yield* idp.fetchCount).toBe(3)
      expect(isSome(yield* cache.get(kid, "RS256"))).toBe(true)
      expect(yield* idp.fetchCount).toBe(3)
    })))

  it.scoped("100 concurrent forged kids cause one refetch", () =>
    withIdp(Effect.gen(function*() {
      const { cache, idp, kid } = yield* makeCache({ backgroundRefresh: false })
      expect(isSome(yield* cache.get(kid, "RS256"))).toBe(true)
      const keys = yield* Effect.all(
        Array.from({ length: 100 }, (_, i) => cache.get(`forged-${i}`, "RS256")),
        { concurrency: "unbounded" }
      )
      expect(keys.every(Option.isNone)).toBe(true)
      expect(yield* idp.fetchCount).toBe(2)
    })))

  it.scoped("a down IdP is retried with exponential backoff, not by every request", () =>
    withIdp(Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      yield* idp.setFault(FakeIdp.Fault.status(500))
      const { cache, kid } = yield* makeCache({
        backgroundRefresh: false,
        retry: Schedule.exponential("1 second")
      })
      const tryGet = Effect.flip(cache.get(kid, "RS256"))

      // The first second: a burst and a steady stream of requests, one fetch.
      const burst = yield* Effect.all(Array.from({ length: 100 }, () => tryGet), { concurrency: "unbounded" })
      for (const error of burst) expectJwksError(error, "HttpStatus")
      for (let i = 0; i < 9; i++) {
        yield* TestClock.adjust(100)
        expectJwksError(yield* tryGet, "HttpStatus")
      }
      expect(yield* idp.fetchCount).toBe(1)

      // A request every 100 ms for 16 seconds: fetches at 1, 3, 7 and 15 seconds.
      const fetchedAt: Array<number> = [0]
      for (let t = seconds(1); t <= seconds(16); t += 100) {
        yield* TestClock.adjust(t - (yield* TestClock.currentTimeMillis))
        const before = yield* idp.fetchCount
        expectJwksError(yield* tryGet, "HttpStatus")
        if ((yield* idp.fetchCount) > before) fetchedAt.push(t)
      }
      expect(fetchedAt).toEqual([0, seconds(1), seconds(3), seconds(7), seconds(15)])

      // The IdP is back, but the backoff holds until 15 + 16 seconds.
      yield* idp.setFault(undefined)
      yield* TestClock.adjust(seconds(31) - 1 - (yield* TestClock.currentTimeMillis))
      expectJwksError(yield* tryGet, "HttpStatus")
      expect(yield* idp.fetchCount).toBe(5)
      yield* TestClock.adjust(1)
      expect(isSome(yield* cache.get(kid, "RS256"))).toBe(true)
      expect(yield* idp.fetchCount).toBe(6)
    })))
  /** A refused answer, its Retry-After, when the next fetch may go (ms after the failure), and the error's field. */
  const retryAfters: ReadonlyArray<readonly [string, number, string | undefined, number, number | undefined]> = [
    ["a 429 that asks for 60 seconds", 429, "60", seconds(60), 60],
    ["a 503 that asks for 90 seconds as an HTTP date", 503, "Thu, 01 Jan 1970 00:11:30 GMT", seconds(90), 90],
    ["a 503 that asks for 90 seconds as an asctime date", 503, "Thu Jan  1 00:11:30 1970", seconds(90), 90],
    ["a 503 that asks for 90 seconds as an RFC 850 date", 503, "Thursday, 01-Jan-70 00:11:30 GMT", seconds(90), 90],
    ["a 429 that asks for years: 5 minutes", 429, "999999999999", minutes(5), 2 ** 31 - 1],
    ["a 429 that asks for no wait: the schedule's 1 second", 429, "0", seconds(1), 0],
    ["a 503 with two Retry-After headers, joined: the schedule's", 503, "60, 120", seconds(1), undefined],
    ["a 503 whose Retry-After does not read: the schedule's", 503, "soon", seconds(1), undefined],
    ["a 503 whose date is past: the schedule's", 503, "Thu, 01 Jan 1970 00:00:00 GMT", seconds(1), undefined],
    [
      "a 503 whose date is the refusal's own: the schedule's",
      503,
      "Thu, 01 Jan 1970 00:10:00 GMT",
      seconds(1),
      undefined
    ],
    ["a 503 whose date is no HTTP date: the schedule's", 503, "1971 GMT", seconds(1), undefined],
    ["a 500 with a Retry-After: not asked for, the schedule's", 500, "60", seconds(1), undefined]
  ]

  for (const [name, status, retryAfter, next, field] of retryAfters) {
    it.scoped(`the identity provider's Retry-After holds the next fetch back: ${name}`, () =>
      withIdp(Effect.gen(function*() {
        const idp = yield* FakeIdp.FakeIdp
        const { cache, kid } = yield* makeCache({
          strategy: "time",
          interval: "10 minutes",
          backgroundRefresh: false,
          retry: Schedule.exponential("1 second")
        })
        expect(isSome(yield* cache.get(kid, "RS256"))).toBe(true)
        // Ten minutes on, the set expired: the refresh is refused (the stale set would still serve requests).
        yield* TestClock.adjust(minutes(10))
        yield* idp.setFault(FakeIdp.Fault.status(status, { retryAfter }))
        const error = yield* Effect.flip(cache.refresh)
        expectJwksError(error, "HttpStatus")
        expect([error.status, error.retryAfter]).toEqual([status, field])
        yield* idp.setFault(undefined)
        yield* TestClock.adjust(next - 1)
        expectJwksError(yield* Effect.flip(cache.refresh), "HttpStatus")
        expect(yield* idp.fetchCount).toBe(2)
        yield* TestClock.adjust(1)
        yield* cache.refresh
        expect(yield* idp.fetchCount).toBe(3)
      })))
  }

  it.scoped("a Retry-After also holds back the default schedule, itself or standing in for one that gives no delay", () =>
    withIdp(Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      for (const retry of [undefined, Schedule.recurs(0)]) {
        const { cache, kid } = yield* makeCache({
          strategy: "time",
          interval: "10 minutes",
          backgroundRefresh: false,
          retry
        })
        expect(isSome(yield* cache.get(kid, "RS256"))).toBe(true)
        const before = yield* idp.fetchCount
        yield* idp.setFault(FakeIdp.Fault.status(503, { retryAfter: "60" }))
        expectJwksError(yield* Effect.flip(cache.refresh), "HttpStatus")
        yield* idp.setFault(undefined)
        yield* TestClock.adjust(seconds(60) - 1)
        expectJwksError(yield* Effect.flip(cache.refresh), "HttpStatus")
        yield* TestClock.adjust(1)
        yield* cache.refresh
        expect((yield* idp.fetchCount) - before).toBe(2)
      }
    })))

  /** Keys held, and how long the IdP's 503 `Retry-After: 300` holds the next fetch back. */
  const servable: ReadonlyArray<readonly [string, JwksCache.Options, number, number]> = [
    ["none: 30 seconds", {}, 0, seconds(30)],
    ["a set past its stale window: 30 seconds", { maxStale: "1 minute" }, minutes(12), seconds(30)],
    ["a set expired, maxStale 0: 30 seconds", { maxStale: 0 }, minutes(10), seconds(30)],
    ["a set stale for 1 more minute: 1 minute", { maxStale: "1 minute" }, minutes(10), minutes(1)],
    ["a set fresh for 2 more minutes, maxStale 0: 2 minutes", { maxStale: 0 }, minutes(8), minutes(2)],
    ["a set that serves long enough: 5 minutes", {}, minutes(10), minutes(5)]
  ]

  for (const [name, options, failAt, held] of servable) {
    it.scoped(`a Retry-After holds the next fetch back no longer than the keys held can serve: ${name}`, () =>
      withIdp(Effect.gen(function*() {
        const idp = yield* FakeIdp.FakeIdp
        const { cache, kid } = yield* makeCache({
          strategy: "time",
          interval: "10 minutes",
          backgroundRefresh: false,
          retry: Schedule.exponential("1 second"),
          ...options
        })
        if (failAt > 0) expect(isSome(yield* cache.get(kid, "RS256"))).toBe(true)
        yield* TestClock.adjust(failAt)
        const before = yield* idp.fetchCount
        yield* idp.setFault(FakeIdp.Fault.status(503, { retryAfter: "300" }))
        expectJwksError(yield* Effect.flip(cache.refresh), "HttpStatus")
        yield* idp.setFault(undefined)
        yield* TestClock.adjust(held - 1)
        expectJwksError(yield* Effect.flip(cache.refresh), "HttpStatus")
        yield* TestClock.adjust(1)
        yield* cache.refresh
        expect((yield* idp.fetchCount) - before).toBe(2)
      })))
  }

  /** Strategies whose set has served all 3 of its validations: with maxStale 0 it answers nothing. */
  const spentBy: ReadonlyArray<readonly [string, JwksCache.Options]> = [
    ["usage", { strategy: "usage", usages: 3 }],
    ["both", { strategy: "both", interval: "20 minutes", usages: 3 }],
    ["custom", { cacheStrategy: CacheStrategy.fromSchedule(Schedule.recurs(4), { interval: "20 minutes" }) }]
  ]

  for (const [name, options] of spentBy) {
    it.scoped(`a Retry-After holds a set spent by use, not yet found so by a request, 30 seconds at most: ${name}`, () =>
      withIdp(Effect.gen(function*() {
        const idp = yield* FakeIdp.FakeIdp
        const { cache, kid } = yield* makeCache({
          ...options,
          maxStale: 0,
          backgroundRefresh: false,
          retry: Schedule.exponential("1 second")
        })
        yield* serve(cache, kid, 3)
        yield* idp.setFault(FakeIdp.Fault.status(503, { retryAfter: "300" }))
        expectJwksError(yield* Effect.flip(cache.refresh), "HttpStatus")
        yield* idp.setFault(undefined)
        yield* TestClock.adjust(seconds(30) - 1)
        expectJwksError(yield* Effect.flip(cache.get(kid, "RS256")), "Stale")
        yield* TestClock.adjust(1)
        expect(isSome(yield* cache.get(kid, "RS256"))).toBe(true)
        expect(yield* idp.fetchCount).toBe(3)
      })))
  }

  it.scoped("a Retry-After holds a set found spent by a request 30 seconds at most; a fresh usage-only set too", () =>
    withIdp(Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      const spent = yield* makeCache({
        strategy: "both",
        interval: "20 minutes",
        usages: 3,
        maxStale: 0,
        backgroundRefresh: false,
        retry: Schedule.exponential("1 second")
      })
      yield* serve(spent.cache, spent.kid, 3)
      yield* TestClock.adjust(minutes(1))
      yield* idp.setFault(FakeIdp.Fault.status(503, { retryAfter: "300" }))
      expectJwksError(yield* Effect.flip(spent.cache.get(spent.kid, "RS256")), "Stale")
      yield* idp.setFault(undefined)
      yield* TestClock.adjust(seconds(30) - 1)
      expectJwksError(yield* Effect.flip(spent.cache.get(spent.kid, "RS256")), "Stale")
      yield* TestClock.adjust(1)
      expect(isSome(yield* spent.cache.get(spent.kid, "RS256"))).toBe(true)

      // Usage only, fresh: it may run out at any time, so it counts as expiring now.
      const fresh = yield* makeCache({
        strategy: "usage",
        usages: 100,
        maxStale: 0,
        backgroundRefresh: false,
        retry: Schedule.exponential("1 second")
      })
      expect(isSome(yield* fresh.cache.get(fresh.kid, "RS256"))).toBe(true)
      const before = yield* idp.fetchCount
      yield* idp.setFault(FakeIdp.Fault.status(503, { retryAfter: "300" }))
      expectJwksError(yield* Effect.flip(fresh.cache.refresh), "HttpStatus")
      yield* idp.setFault(undefined)
      yield* TestClock.adjust(seconds(30) - 1)
      expectJwksError(yield* Effect.flip(fresh.cache.refresh), "HttpStatus")
      yield* TestClock.adjust(1)
      yield* fresh.cache.refresh
      expect((yield* idp.fetchCount) - before).toBe(2)
    })))

  it.scoped("a failed fetch's bookkeeping never steps a custom strategy's schedule: a broken one cannot undo the backoff", () =>
    withIdp(Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      let broken = false
      const schedule = Schedule.check(Schedule.forever, () => {
        if (broken) throw new Error("a bug in the strategy's schedule")
        return true
      })
      const { cache } = yield* makeCache({
        cacheStrategy: CacheStrategy.fromSchedule(schedule, { interval: "10 minutes" }),
        backgroundRefresh: false
      })
      yield* cache.refresh
      broken = true
      for (const retryAfter of [undefined, "60"]) {
        yield* idp.setFault(FakeIdp.Fault.status(503, { retryAfter }))
        const before = yield* idp.fetchCount
        expectJwksError(yield* Effect.flip(cache.refresh), "HttpStatus")
        expectJwksError(yield* Effect.flip(cache.refresh), "HttpStatus")
        expect((yield* idp.fetchCount) - before).toBe(1)
        yield* TestClock.adjust(minutes(1))
      }
    })))

  it.scoped("a custom strategy's schedule that throws at a lookup is not asked again: the set lives to its interval", () =>
    withIdp(Effect.gen(function*() {
      const { apply, cacheLines } = captureLogs()
      // A bug that shows from the second step of each set on (the load's is the first); its check yields, so that
      // concurrent lookups all step it at once.
      const schedule = Schedule.checkEffect(Schedule.count, (_, n) =>
        Effect.zipRight(
          Effect.yieldNow(),
          Effect.sync(() => {
            if (n >= 1) throw new Error("a bug in the strategy's schedule")
            return true
          })
        ))
      const { cache, idp, kid } = yield* makeCache({
        cacheStrategy: CacheStrategy.fromSchedule(schedule, { interval: "30 minutes" }),
        backgroundRefresh: false
      })
      // Lookups and validations (forged tokens' lookups too), ten at once: keys, no defect, no fetch each, one warning.
      for (let round = 0; round < 2; round++) {
        const keys = yield* apply(
          Effect.all(Array.from({ length: 10 }, () => Effect.zipLeft(cache.get(kid, "RS256"), cache.recordSuccess)), {
            concurrency: "unbounded"
          })
        )
        expect(keys.every(isSome)).toBe(true)
      }
      expect(yield* idp.fetchCount).toBe(1)
      const status = yield* cache.status
      expect([status.fresh, status.expiresAt?.getTime()]).toEqual([true, minutes(30)])
      const warnings = () => cacheLines().filter((line) => line.includes("schedule threw"))
      expect(warnings()).toEqual(["WARN Cache strategy's schedule threw: it is not asked again for this key set"])
      // At its interval, the set is fetched anew, once.
      yield* TestClock.adjust(minutes(30) - 1)
      expect(isSome(yield* apply(cache.get(kid, "RS256")))).toBe(true)
      expect(yield* idp.fetchCount).toBe(1)
      yield* TestClock.adjust(1)
      for (let i = 0; i < 5; i++) expect(isSome(yield* apply(cache.get(kid, "RS256")))).toBe(true)
      expect(yield* idp.fetchCount).toBe(2)
      expect(warnings()).toHaveLength(2)
    })))

  it.effect("a source's error with a wait that is not a number of seconds keeps the backoff", () =>
    Effect.gen(function*() {
      let fetches = 0
      // Built without its checks, as JavaScript may: the schema refuses NaN.
      const error = new JwksError({ reason: "HttpStatus", source: "custom", status: 429, retryAfter: Number.NaN }, true)
      const source = JwksSource.make("custom", Effect.suspend(() => (fetches++, Effect.fail(error))))
      const cache = yield* JwksCache.make(source, { backgroundRefresh: false })
      yield* Effect.flip(cache.get("any", "RS256"))
      for (let i = 0; i < 5; i++) yield* Effect.flip(cache.get("any", "RS256"))
      expect(fetches).toBe(1)
      expect(() => new JwksError({ reason: "HttpStatus", source: "custom", retryAfter: Number.NaN })).toThrow()
    }).pipe(Effect.scoped, Logger.withMinimumLogLevel(LogLevel.None)))
})

// Interrupted callers and dying fetches ----------------------------------------------------------------------------

/** `n` trivial operations: the work a request fiber does before it asks for a key (parsing, routing, middleware). */
const work = (n: number) => Effect.forEach(Array.from({ length: n }), () => Effect.void, { discard: true })

/**
 * How much work to do before the lookup, for each point near the fiber's first scheduler yield: Effect yields a
 * fiber every `currentMaxOpsBeforeYield` operations, and a caller interrupted at that yield, had it fallen between
 * planning a fetch and starting it, would leave every later caller waiting on a fetch that never runs.
 */
const nearTheFirstYield = (span: number) =>
  Effect.map(
    FiberRef.get(FiberRef.currentMaxOpsBeforeYield),
    (maxOps) => Array.from({ length: span }, (_, i) => maxOps - span + i)
  )

/** A source of the fake IdP's keys whose fetches die when `dies(call)` (a custom source with a bug, say). */
const dyingSource = (idp: FakeIdp.FakeIdp["Type"], dies: (call: number) => boolean) => {
  let calls = 0
  const source = JwksSource.make(
    "dying",
    Effect.suspend(() => dies(++calls) ? Effect.dieMessage("a bug in the source") : idp.jwks)
  )
  return { source, calls: () => calls }
}

describe("JwksCache under interruption and defects", () => {
  it.effect("a fetch that answered its waiters, its scope closed as it ends, is counted once: not also as cut short", () =>
    Effect.gen(function*() {
      const jwks = yield* Effect.flatMap(FakeIdp.make(), (idp) => idp.jwks)
      const twice: Array<string> = []
      // Where the scope's close meets the fetch depends on where its fiber yields: tried at each of many.
      for (let maxOps = 10; maxOps <= 80; maxOps++) {
        const name = `closed-as-it-ends-${maxOps}`
        const { apply, cacheLines } = captureLogs()
        const scope = yield* Scope.make()
        const cache = yield* apply(
          Scope.extend(
            JwksCache.make(JwksSource.make(name, Effect.succeed(jwks)) as JwksSource.Service, {
              backgroundRefresh: false
            }),
            scope
          )
        )
        const caller = yield* Effect.fork(apply(Effect.withMaxOpsBeforeYield(cache.refresh, maxOps)))
        yield* waitFor("the set loaded", Effect.sync(() => cacheLines().includes("DEBUG JWKS loaded")))
        yield* Scope.close(scope, Exit.void)
        const answered = Exit.isSuccess(yield* Fiber.await(caller))
        const counts = yield* Effect.all(
          ["success", "interrupted"].map((outcome) =>
            Effect.map(
              Metric.value(JwksMetrics.fetches.pipe(Metric.tagged("source", name), Metric.tagged("outcome", outcome))),
              (state) => state.count
            )
          )
        )
        const cutShort = cacheLines().some((line) => line.includes("cut short"))
        if (counts[0]! + counts[1]! !== 1 || (answered && (counts[1] !== 0 || cutShort))) {
          twice.push(`${maxOps}: ${JSON.stringify({ answered, counts, cutShort })}`)
        }
      }
      expect(twice).toEqual([])
    }))

  it.scoped("a tracer that throws as a fetch opens its span leaves no fetch in flight: the next lookup fetches", () =>
    withIdp(Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      const kid = yield* idp.currentKid
      const jwks = yield* idp.jwks
      const base = yield* Effect.tracer
      let throws = 1
      // An exporter's bug, once: the fetch's fiber dies before its own bookkeeping starts.
      const flaky = Tracer.make({
        span: (name, ...rest) => {
          if (name === "JwksCache.refresh" && throws-- > 0) throw new Error("exporter bug")
          return base.span(name, ...rest)
        },
        context: (f, fiber) => base.context(f, fiber)
      })
      let fetches = 0
      const source = JwksSource.make("flaky tracer", Effect.sync(() => (fetches++, jwks)))
      const cache = yield* JwksCache.make(source, { backgroundRefresh: false })
      const first = yield* Effect.exit(cache.get(kid, "RS256").pipe(Effect.withTracer(flaky)))
      expect(Exit.isFailure(first) && Cause.squash(first.cause)).toMatchObject({ reason: "Unreachable" })
      expect(Option.isSome(yield* cache.get(kid, "RS256").pipe(Effect.withTracer(flaky)))).toBe(true)
      expect({ fetches, started: (yield* cache.status).fetches }).toEqual({ fetches: 1, started: 2 })
    })))

  it.scoped("a log line of the background fiber that throws does not end background refreshing", () =>
    withIdp(Effect.gen(function*() {
      const jwks = yield* (yield* FakeIdp.FakeIdp).jwks
      let throws = 1
      const logger = Logger.make(({ message }) => {
        if (String(message).includes("Performing background JWKS refresh") && throws-- > 0) {
          throw new Error("log sink hiccup")
        }
      })
      let fetches = 0
      const source = JwksSource.make("throwing logger", Effect.sync(() => (fetches++, jwks)))
      yield* JwksCache.make(source, { strategy: "time", interval: "10 minutes", backgroundRefreshJitter: 0 }).pipe(
        Effect.provide(Logger.replace(Logger.defaultLogger, logger))
      )
      yield* settle
      expect(fetches).toBe(1)
      // Due at 8 minutes: its log line throws, the fiber starts again a second later and refreshes.
      yield* TestClock.adjust("8 minutes")
      yield* settle
      expect(fetches).toBe(1)
      yield* TestClock.adjust("1 second")
      yield* settle
      expect(fetches).toBe(2)
      // And on schedule after that: 8 minutes after the last load.
      yield* TestClock.adjust("8 minutes")
      yield* settle
      expect(fetches).toBe(3)
      // Another throw, long after the last, is a new one: 1 second again, not the 2 a second death in a row waits.
      yield* TestClock.adjust("48 minutes")
      yield* settle
      const before = fetches
      throws = 1
      yield* TestClock.adjust("8 minutes")
      yield* settle
      expect(fetches).toBe(before)
      yield* TestClock.adjust("1 second")
      yield* settle
      expect(fetches).toBe(before + 1)
    })))

  it.scoped("a background fiber that keeps dying starts again 1, 2, 4 ... seconds later, then every minute", () =>
    withIdp(Effect.gen(function*() {
      let starts = 0
      // A log sink that throws on the first line of every run: the fiber dies at once, each time.
      const logger = Logger.make(({ message }) => {
        if (String(message).includes("Performing initial JWKS load")) {
          starts++
          throw new Error("log sink broken")
        }
      })
      const source = JwksSource.make("never reached", Effect.succeed({ keys: [] }))
      yield* JwksCache.make(source, { strategy: "time", interval: "10 minutes" }).pipe(
        Effect.provide(Logger.replace(Logger.defaultLogger, logger))
      )
      yield* settle
      const at: Array<number> = []
      for (let second = 1; second <= 420; second++) {
        const before = starts
        yield* TestClock.adjust("1 second")
        yield* settle
        if (starts > before) at.push(second)
      }
      expect(at).toEqual([1, 3, 7, 15, 31, 63, 123, 183, 243, 303, 363])
      // And once a minute for as long as it keeps dying: never a burst of quick restarts again (an hour and more).
      const perMinute: Array<number> = []
      for (let minute = 0; minute < 70; minute++) {
        const before = starts
        yield* TestClock.adjust("1 minute")
        yield* settle
        perMinute.push(starts - before)
      }
      expect(perMinute.filter((count) => count !== 1)).toEqual([])
    })))

  it.scoped("a cold get interrupted at any point never leaves the next caller waiting forever", () =>
    withIdp(Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      const kid = yield* idp.currentKid
      const source = yield* JwksSource.http(idp.jwksUri)
      const stuck: Array<number> = []
      for (const before of yield* nearTheFirstYield(80)) {
        const cache = yield* JwksCache.make(source, { backgroundRefresh: false })
        const request = yield* Effect.fork(Effect.zipRight(work(before), cache.get(kid, "RS256")))
        yield* Effect.yieldNow()
        yield* Fiber.interrupt(request) // the client went away
        const next = yield* Effect.fork(cache.get(kid, "RS256"))
        yield* settle
        yield* TestClock.adjust("10 seconds") // past the HTTP timeout of any fetch left hanging
        yield* settle
        const answer = next.unsafePoll()
        if (answer === null || !Exit.isSuccess(answer)) stuck.push(before)
      }
      expect(stuck).toEqual([])
    })))

  it.scoped("unknown-kid lookups interrupted at any point never wedge the cache", () =>
    withIdp(Effect.gen(function*() {
      const { cache, idp, kid } = yield* makeCache()
      expect(isSome(yield* cache.get(kid, "RS256"))).toBe(true)
      const refetches = Metric.tagged(JwksMetrics.unknownKidRefetches, "source", idp.jwksUri)
      const countedBefore = (yield* Metric.value(refetches)).count
      const fetchedBefore = yield* idp.fetchCount
      for (const before of yield* nearTheFirstYield(150)) {
        yield* TestClock.adjust("31 seconds") // a new unknown-kid throttle window
        const request = yield* Effect.fork(Effect.zipRight(work(before), cache.get(`forged-${before}`, "RS256")))
        yield* Effect.yieldNow()
        yield* Fiber.interrupt(request)
      }
      yield* settle
      const fetched = yield* idp.fetchCount
      // Every refetch that started is counted, interrupted caller or not.
      expect(fetched).toBeGreaterThan(fetchedBefore)
      expect((yield* Metric.value(refetches)).count - countedBefore).toBe(fetched - fetchedBefore)
      const refresh = yield* Effect.fork(cache.refresh)
      yield* settle
      yield* TestClock.adjust("10 seconds")
      yield* settle
      const answer = refresh.unsafePoll()
      expect(answer !== null && Exit.isSuccess(answer)).toBe(true)
      expect(yield* idp.fetchCount).toBe(fetched + 1)
    })))

  it.scoped("a source of the app's that hangs once is cut by its timeout: the cache goes on, nothing waits for good", () =>
    withIdp(Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      let calls = 0
      // The second fetch (the background refresh at about 16 minutes) never answers; every other one at once.
      const source = JwksSource.make("secret-store", Effect.suspend(() => ++calls === 2 ? Effect.never : idp.jwks))
      const cache = yield* JwksCache.make(source, {
        strategy: "time",
        interval: "20 minutes",
        backgroundRefreshJitter: 0
      })
      const kid = yield* idp.currentKid
      expect(isSome(yield* cache.get(kid, "RS256"))).toBe(true)
      yield* TestClock.adjust("16 minutes")
      yield* TestClock.adjust(seconds(30) - 1)
      expect(calls).toBe(2)
      // Cut after 30 seconds: a failed refresh, retried by the backoff (about a second), which succeeds.
      yield* TestClock.adjust(1)
      expect((yield* cache.status).lastRefresh?.outcome).toBe("failure")
      yield* TestClock.adjust("2 seconds")
      expect(calls).toBe(3)
      const status = yield* cache.status
      expect([status.fresh, status.lastRefresh?.outcome]).toEqual([true, "success"])
      yield* TestClock.adjust("1 hour")
      expect(isSome(yield* cache.get(kid, "RS256"))).toBe(true)
    })))

  it.scoped("a fetch that dies: waiters get Unreachable, or the stale set within maxStale, never the defect", () =>
    withIdp(Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      const kid = yield* idp.currentKid
      const { source } = dyingSource(idp, (call) => call > 1)
      const cache = yield* JwksCache.make(source, {
        strategy: "time",
        interval: "20 minutes",
        backgroundRefresh: false
      })
      expect(isSome(yield* cache.get(kid, "RS256"))).toBe(true)
      expectJwksError(yield* Effect.flip(cache.refresh), "Unreachable")
      yield* TestClock.adjust("25 minutes") // expired, within the hour of maxStale
      expect(isSome(yield* cache.get(kid, "RS256"))).toBe(true)
      const status = yield* cache.status
      expect(status.servingStale).toBe(true)
      expect(status.lastRefresh?.error).toContain("the fetch died")
    })))

  it.scoped("a source that fails with something other than a JwksError (JavaScript): Unreachable, never a defect", () =>
    Effect.gen(function*() {
      // The type promises a JwksError; a source written in JavaScript can fail with anything.
      const source = JwksSource.make("untyped", Effect.fail(new Error("socket hang up") as unknown as JwksError))
      const cache = yield* JwksCache.make(source, { backgroundRefresh: false })
      // Twice: the second answer is the failure the cache kept (it was rethrown as is: a TypeError, a defect).
      expectJwksError(yield* Effect.flip(cache.get("k1", "RS256")), "Unreachable")
      expectJwksError(yield* Effect.flip(cache.get("k1", "RS256")), "Unreachable")
      expect((yield* cache.status).lastRefresh?.error).toContain("something other than a JwksError")
    }))

  it.scoped("a retry schedule that throws or fails: the fetch's own error, then the default backoff, never a loop", () =>
    withIdp(Effect.gen(function*() {
      const throwing = Schedule.recurWhile((_: JwksError): boolean => {
        throw new Error("a bug in the schedule")
      })
      // Steps that fail, as a schedule written in JavaScript may (its type says it cannot), with an error, with an
      // empty cause, or with an interruption of its own (the cache is open all along).
      const endingIn = (step: Effect.Effect<never>) =>
        Schedule.makeWithState<undefined, JwksError, unknown>(undefined, () => step as never)
      const failing = [
        endingIn(Effect.fail("a failing schedule") as never),
        endingIn(Effect.failCause(Cause.empty)),
        endingIn(Effect.interrupt)
      ]
      for (const retry of [throwing, ...failing]) {
        yield* Effect.scoped(Effect.gen(function*() {
          const { cache, idp, kid } = yield* makeCache({ backgroundRefresh: false, retry })
          const before = yield* idp.fetchCount
          yield* idp.failNext(FakeIdp.Fault.status(503), 1)
          expectJwksError(yield* Effect.flip(cache.get(kid, "RS256")), "HttpStatus")
          // Backing off by the default schedule (about a second), not fetching again at once.
          expectJwksError(yield* Effect.flip(cache.get(kid, "RS256")), "HttpStatus")
          expect((yield* idp.fetchCount) - before).toBe(1)
          yield* TestClock.adjust("2 seconds")
          expect(isSome(yield* cache.get(kid, "RS256"))).toBe(true)
          expect((yield* idp.fetchCount) - before).toBe(2)
        }))
      }
    })))

  it.scoped("a retry schedule that throws does not set the background fiber fetching in a loop", () =>
    withIdp(Effect.gen(function*() {
      const retry = Schedule.recurWhile((_: JwksError): boolean => {
        throw new Error("a bug in the schedule")
      })
      const idp = yield* FakeIdp.FakeIdp
      yield* idp.setFault(FakeIdp.Fault.status(503))
      yield* JwksCache.make(yield* JwksSource.http(idp.jwksUri), { retry })
      yield* settle // the clock does not move: one fetch, then the backoff
      expect(yield* idp.fetchCount).toBe(1)
    })))

  it.scoped("a retry schedule that gives no delay is stood in for by the default backoff, which keeps growing", () =>
    withIdp(Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      yield* idp.setFault(FakeIdp.Fault.status(503))
      const schedules = [
        // Back off on timeouts only (the retry input is the error): done at once for a 503.
        Schedule.exponential("1 second").pipe(Schedule.whileInput((error: JwksError) => error.reason === "Timeout")),
        // "Retry five times": no delay at all.
        Schedule.recurs(5)
      ]
      for (const retry of schedules) {
        yield* Effect.scoped(Effect.gen(function*() {
          const before = yield* idp.fetchCount
          const cache = yield* JwksCache.make(yield* JwksSource.http(idp.jwksUri), { retry })
          yield* settle // the clock does not move: one fetch, then a backoff
          expect((yield* idp.fetchCount) - before).toBe(1)
          // The default backoff (about 1, 2, 4, 8, 16 s, jittered): five more fetches take well over 20 s, not 5.
          const retriesAt: Array<number> = []
          for (let second = 1; second <= 40; second++) {
            yield* TestClock.adjust("1 second")
            yield* settle
            if ((yield* idp.fetchCount) - before > retriesAt.length + 1) retriesAt.push(second)
          }
          expect(retriesAt.length).toBeGreaterThanOrEqual(3)
          expect(retriesAt.length).toBeLessThanOrEqual(6)
          const gaps = retriesAt.slice(1).map((at, i) => at - retriesAt[i]!)
          expect(gaps.at(-1)!).toBeGreaterThan(gaps[0]!)
          expect((yield* cache.status).lastRefresh?.outcome).toBe("failure")
        }))
      }
    })))

  it.scoped("a caller that waits uninterruptibly still gets the fetch's timeout", () =>
    withIdp(Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      yield* idp.setFault(FakeIdp.Fault.hang)
      const { cache, kid } = yield* makeCache({ backgroundRefresh: false })
      const waiting = yield* Effect.fork(Effect.uninterruptible(Effect.flip(cache.get(kid, "RS256"))))
      yield* settle
      yield* TestClock.adjust("6 seconds")
      expectJwksError(yield* Fiber.join(waiting), "Timeout")
    })))

  it.scoped("closing the scope at any point of a fetch's bookkeeping answers its waiters", () =>
    withIdp(Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      const kid = yield* idp.currentKid
      yield* idp.setFault(FakeIdp.Fault.status(503))
      const source = yield* JwksSource.http(idp.jwksUri)
      const stuck: Array<number> = []
      // The fetch fiber inherits the caller's yield interval: each value puts its yields elsewhere in the bookkeeping.
      for (let maxOps = 10; maxOps < 60; maxOps++) {
        let failureLogged = false
        const logger = Logger.make(({ message }) => {
          if (String(message).includes("JWKS fetch failed")) failureLogged = true
        })
        const scope = yield* Scope.make()
        const cache = yield* JwksCache.make(source, { backgroundRefresh: false }).pipe(Scope.extend(scope))
        const waiting = yield* Effect.fork(
          cache.get(kid, "RS256").pipe(
            Effect.locally(FiberRef.currentMaxOpsBeforeYield, maxOps),
            Effect.provide(Logger.add(logger))
          )
        )
        yield* waitFor("the failure's log line", Effect.sync(() => failureLogged))
        yield* Scope.close(scope, Exit.void)
        yield* settle
        yield* TestClock.adjust("10 seconds")
        yield* settle
        if (waiting.unsafePoll() === null) stuck.push(maxOps)
      }
      expect(stuck).toEqual([])
    })))

  it.scoped("a request paused as a fetch lands takes the new set: no second fetch, and the new set not marked expired", () =>
    withIdp(Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      const kid = yield* idp.currentKid
      const jwks = yield* idp.jwks
      const wrong: Array<string> = []
      for (const before of yield* nearTheFirstYield(120)) {
        // Call 1 loads; call 2 waits for the gate; any later call fails, so that a redundant fetch would show.
        const gate = yield* Deferred.make<void>()
        let calls = 0
        const source = JwksSource.make(
          "gated",
          Effect.suspend(() => {
            calls++
            return calls === 1
              ? Effect.succeed(jwks)
              : calls === 2
              ? Effect.as(Deferred.await(gate), jwks)
              : Effect.fail(new JwksError({ reason: "HttpStatus", status: 503, source: "gated" }))
          })
        )
        const cache = yield* JwksCache.make(source, {
          strategy: "time",
          interval: "10 minutes",
          maxStale: "30 minutes",
          backgroundRefresh: false
        })
        yield* cache.get(kid, "RS256")
        yield* TestClock.adjust("10 minutes")
        const first = yield* Effect.fork(cache.get(kid, "RS256"))
        yield* settle
        // A request whose scheduler yield falls somewhere in its lookup, as the refresh it should join lands.
        const paused = yield* Effect.fork(Effect.zipRight(work(before), cache.get(kid, "RS256")))
        yield* Deferred.succeed(gate, void 0)
        yield* settle
        yield* Fiber.join(first)
        const answer = yield* Effect.either(Fiber.join(paused))
        const status = yield* cache.status
        if (calls !== 2 || Either.isLeft(answer) || status.servingStale || !status.fresh) {
          wrong.push(`${before}: ${calls} fetches, stale ${status.servingStale}, fresh ${status.fresh}`)
        }
      }
      expect(wrong).toEqual([])
    })))

  it.scoped("a newer set a paused request takes is judged by the clock of its return: refetched, or Stale, not served", () =>
    withIdp(Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      const kid = yield* idp.currentKid
      const jwks = yield* idp.jwks
      const answers: Array<string> = []
      for (const idpDown of [false, true]) {
        let calls = 0
        const source = JwksSource.make(
          "counted",
          Effect.suspend(() =>
            ++calls > 2 && idpDown
              ? Effect.fail(new JwksError({ reason: "HttpStatus", status: 503, source: "counted" }))
              : Effect.succeed(jwks)
          )
        )
        // A custom strategy (the load and 2 validations, 10 minutes at most) whose next step waits for `gate` once.
        let gate: Deferred.Deferred<void> | undefined
        const schedule = Schedule.recurs(2).pipe(Schedule.tapOutput(() =>
          Effect.suspend(() => {
            const waitFor = gate
            gate = undefined
            return waitFor === undefined ? Effect.void : Deferred.await(waitFor)
          })
        ))
        const cache = yield* JwksCache.make(source, {
          cacheStrategy: CacheStrategy.fromSchedule(schedule, { interval: "10 minutes" }),
          maxStale: "30 minutes",
          backgroundRefresh: false
        })
        yield* cache.get(kid, "RS256")
        yield* cache.recordSuccess
        const released = yield* Deferred.make<void>()
        gate = released
        // A request whose freshness step waits; meanwhile a second set loads, and an hour goes by: that set expired
        // 50 minutes ago, past its 30 minutes of stale serving.
        const request = yield* Effect.fork(Effect.either(cache.get(kid, "RS256")))
        yield* settle
        yield* cache.refresh
        yield* TestClock.adjust("1 hour")
        yield* Deferred.succeed(released, void 0)
        const answer = yield* Fiber.join(request)
        answers.push(
          `${idpDown ? "down" : "up"}: ${Either.isLeft(answer) ? answer.left.reason : "key"} after ${calls} fetches`
        )
      }
      expect(answers).toEqual(["up: key after 3 fetches", "down: Stale after 3 fetches"])
    })))

  it.scoped("closing the scope during a fetch answers that the cache is closed, even if the source dies as it stops", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const source = JwksSource.make("buggy", Effect.never.pipe(Effect.onInterrupt(() => Effect.dieMessage("oops"))))
      const cache = yield* JwksCache.make(source, { backgroundRefresh: false }).pipe(Scope.extend(scope))
      const waiting = yield* Effect.fork(cache.get("any", "RS256"))
      yield* settle
      yield* Scope.close(scope, Exit.void)
      const error = yield* Effect.flip(Fiber.join(waiting))
      expectJwksError(error, "Unreachable")
      expect(error.message).toContain("the cache is closed")
    }))

  it.scoped("closing the scope during the initial load: no failed load logged or counted, no second load begun", () => {
    const { apply, cacheLines } = captureLogs()
    return Effect.gen(function*() {
      const scope = yield* Scope.make()
      let fetches = 0
      const source = JwksSource.make("closing-during-initial-load", Effect.suspend(() => (fetches++, Effect.never)))
      yield* JwksCache.make(source, {}).pipe(Scope.extend(scope), apply)
      yield* waitFor("the initial load", Effect.sync(() => fetches === 1))
      yield* Scope.close(scope, Exit.void)
      yield* settle
      expect(cacheLines()).toEqual([
        "DEBUG Background JWKS refresh task scheduled",
        "INFO Performing initial JWKS load",
        "INFO JWKS fetch (background) cut short: the cache is closing",
        "INFO JWKS cache closed"
      ])
      const failed = JwksMetrics.backgroundRefreshes.pipe(
        Metric.tagged("source", source.name),
        Metric.tagged("outcome", "failure")
      )
      expect((yield* Metric.value(failed)).count).toBe(0)
      expect(fetches).toBe(1)
    })
  })

  it.scoped("a background refresh that dies is retried; background refreshing goes on", () =>
    withIdp(Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      const { calls, source } = dyingSource(idp, (call) => call === 2)
      yield* JwksCache.make(source, { strategy: "time", interval: "20 minutes", backgroundRefreshJitter: 0 })
      yield* waitFor("the initial load", Effect.sync(() => calls() === 1))
      yield* TestClock.adjust("16 minutes") // the first background refresh dies
      yield* waitFor("the refresh that dies", Effect.sync(() => calls() === 2))
      yield* TestClock.adjust("1 minute") // well past the first retry's backoff
      yield* waitFor("the retry", Effect.sync(() => calls() === 3))
    })))
})

// Stale-if-error and hostile responses -----------------------------------------------------------------------------

describe("JwksCache failures", () => {
  it.scoped("serves the last good set for up to maxStale (1 hour) past its expiry while the IdP is down", () =>
    withIdp(Effect.gen(function*() {
      const { cache, idp, kid } = yield* makeCache({
        strategy: "time",
        interval: "20 minutes",
        backgroundRefresh: false
      })
      expect(isSome(yield* cache.get(kid, "RS256"))).toBe(true)
      yield* idp.setFault(FakeIdp.Fault.status(500))

      yield* TestClock.adjust("25 minutes")
      expect(isSome(yield* cache.get(kid, "RS256"))).toBe(true)
      expect(yield* idp.fetchCount).toBe(2)
      const status = yield* cache.status
      expect(status.servingStale).toBe(true)
      expect(status.fresh).toBe(false)

      yield* TestClock.adjust(minutes(20 + 60) - 1 - minutes(25))
      expect(isSome(yield* cache.get(kid, "RS256"))).toBe(true)
      yield* TestClock.adjust(1)
      const error = yield* Effect.flip(cache.get(kid, "RS256"))
      expectJwksError(error, "Stale")

      // The IdP recovers: fresh keys again, no longer stale.
      yield* idp.setFault(undefined)
      yield* TestClock.adjust("1 minute")
      expect(isSome(yield* cache.get(kid, "RS256"))).toBe(true)
      expect((yield* cache.status).servingStale).toBe(false)
      expect((yield* cache.status).fresh).toBe(true)
    })))

  it.scoped("a lookup that waited for a failing fetch is judged against maxStale when answered, not when it came", () =>
    withIdp(Effect.gen(function*() {
      const { cache, idp, kid } = yield* makeCache({
        strategy: "time",
        interval: "20 minutes",
        maxStale: "5 minutes",
        backgroundRefresh: false
      })
      expect(isSome(yield* cache.get(kid, "RS256"))).toBe(true)
      // The IdP hangs; the set expires at 20 minutes and may serve stale until 25. A lookup 1 ms before that waits
      // out the fetch's 5-second timeout: its answer comes past the window.
      yield* idp.setFault(FakeIdp.Fault.hang)
      yield* TestClock.adjust(minutes(25) - 1)
      const lookup = yield* Effect.fork(Effect.either(cache.get(kid, "RS256")))
      yield* waitFor("the hanging refresh", Effect.map(idp.fetchCount, (n) => n === 2))
      yield* TestClock.adjust("5 seconds")
      const answer = yield* Fiber.join(lookup)
      expect(Either.isLeft(answer) ? answer.left.reason : "served stale past maxStale").toBe("Stale")
      // One just inside the window, answered inside it, is served.
      const { cache: other, kid: otherKid } = yield* makeCache({
        strategy: "time",
        interval: "20 minutes",
        maxStale: "5 minutes",
        backgroundRefresh: false
      })
      yield* idp.setFault(undefined)
      expect(isSome(yield* other.get(otherKid, "RS256"))).toBe(true)
      yield* idp.setFault(FakeIdp.Fault.hang)
      yield* TestClock.adjust(minutes(25) - seconds(6))
      const inside = yield* Effect.fork(Effect.either(other.get(otherKid, "RS256")))
      yield* waitFor("the second hanging refresh", Effect.map(idp.fetchCount, (n) => n === 4))
      yield* TestClock.adjust("5 seconds")
      expect(Either.isRight(yield* Fiber.join(inside))).toBe(true)
    })))

  it.scoped("a custom maxStale is honoured", () =>
    withIdp(Effect.gen(function*() {
      const { cache, idp, kid } = yield* makeCache({
        strategy: "time",
        interval: "20 minutes",
        backgroundRefresh: false,
        maxStale: "5 minutes"
      })
      expect(isSome(yield* cache.get(kid, "RS256"))).toBe(true)
      yield* idp.setFault(FakeIdp.Fault.status(500))
      yield* TestClock.adjust(minutes(25) - 1)
      expect(isSome(yield* cache.get(kid, "RS256"))).toBe(true)
      expect((yield* cache.status).servingStale).toBe(true)
      yield* TestClock.adjust(1)
      expectJwksError(yield* Effect.flip(cache.get(kid, "RS256")), "Stale")
    })))

  const hostile: ReadonlyArray<readonly [string, FakeIdp.Fault, JwksError["reason"]]> = [
    ["status 500", FakeIdp.Fault.status(500), "HttpStatus"],
    ["a hang", FakeIdp.Fault.hang, "Timeout"],
    ["invalid JSON", FakeIdp.Fault.invalidJson, "InvalidJson"],
    ["a wrong shape", FakeIdp.Fault.wrongShape, "InvalidShape"],
    ["an empty set", FakeIdp.Fault.emptySet, "EmptyKeySet"],
    ["an oversized body", FakeIdp.Fault.oversized(600_000), "TooLarge"]
  ]
  for (const [name, fault, reason] of hostile) {
    it.scoped(`${name} fails the refresh with ${reason} and keeps the last good set`, () =>
      withIdp(Effect.gen(function*() {
        const { cache, idp, kid } = yield* makeCache({ backgroundRefresh: false })
        expect(isSome(yield* cache.get(kid, "RS256"))).toBe(true)
        yield* TestClock.adjust("1 minute")
        yield* idp.failNext(fault)
        const fiber = yield* Effect.fork(Effect.flip(cache.refresh))
        if (fault._tag === "Hang") {
          // The source's 5 second timeout, on the TestClock.
          yield* waitForSleepUntil(minutes(1) + seconds(5))
          yield* TestClock.adjust(seconds(5) - 1)
          yield* settle
          expect(fiber.unsafePoll()).toBeNull()
          yield* TestClock.adjust(1)
        }
        expectJwksError(yield* Fiber.join(fiber), reason)
        expect(yield* idp.fetchCount).toBe(2)
        expect((yield* cache.status).lastRefresh?.outcome).toBe("failure")
        expect(isSome(yield* cache.get(kid, "RS256"))).toBe(true)
        expect(yield* idp.fetchCount).toBe(2)
        expect((yield* cache.status).keyIds).toEqual([kid])
      })))
  }
})

// Settings ---------------------------------------------------------------------------------------------------------

describe("JwksCache stale serving and closing", () => {
  it.scoped("a custom strategy's interval is its longest life: not fresh past it, and stale serving counts from it", () =>
    withIdp(Effect.gen(function*() {
      // A schedule that would never end: the interval alone limits the set's life.
      const strategy = CacheStrategy.fromSchedule(Schedule.forever, { interval: "10 minutes" })
      const { cache, idp, kid } = yield* makeCache({ cacheStrategy: strategy, backgroundRefresh: false })
      yield* cache.get(kid, "RS256")
      expect((yield* cache.status).expiresAt?.getTime()).toBe(minutes(10))
      yield* TestClock.adjust("11 minutes")
      expect((yield* cache.status).fresh).toBe(false)
      // With the IdP down, the old keys serve for maxStale (1 hour) from minute 10.
      yield* idp.setFault(FakeIdp.Fault.status(503))
      expect(Option.isSome(yield* cache.get(kid, "RS256"))).toBe(true)
      expect((yield* cache.status).servingStale).toBe(true)
      yield* TestClock.adjust("59 minutes")
      // The status says the window is over before any request finds it out; then the request gets Stale.
      expect((yield* cache.status).servingStale).toBe(false)
      expectJwksError(yield* Effect.flip(cache.get(kid, "RS256")), "Stale")
    })))

  it.scoped("a quiet service's custom set is not served stale for longer than its interval and maxStale", () =>
    withIdp(Effect.gen(function*() {
      const strategy = CacheStrategy.fromSchedule(Schedule.forever, { interval: "10 minutes" })
      const { cache, idp, kid } = yield* makeCache({ cacheStrategy: strategy, backgroundRefresh: false })
      yield* cache.get(kid, "RS256")
      // No request for three hours, then one during an outage: the keys are 3 hours old, past 10 minutes + 1 hour.
      yield* TestClock.adjust("3 hours")
      yield* idp.setFault(FakeIdp.Fault.status(503))
      expectJwksError(yield* Effect.flip(cache.get(kid, "RS256")), "Stale")
    })))

  // A lookup inside a span (a server request's) gets its failure wrapped in a proxy that carries the span: the cache
  // must still know its own closed error.
  it.scoped("closing the scope while an expired set's refresh is under way: its waiters fail as closed, not stale", () =>
    withIdp(Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      const scope = yield* Scope.make()
      const source = yield* JwksSource.http(idp.jwksUri)
      const cache = yield* JwksCache.make(source, { strategy: "time", interval: "1 minute", backgroundRefresh: false })
        .pipe(Scope.extend(scope))
      const kid = yield* idp.currentKid
      yield* cache.get(kid, "RS256")
      yield* TestClock.adjust("2 minutes")
      yield* idp.setFault(FakeIdp.Fault.hang)
      const waiting = yield* Effect.fork(Effect.either(cache.get(kid, "RS256")))
      const inSpan = yield* Effect.fork(Effect.either(Effect.withSpan(cache.get(kid, "RS256"), "GET /orders")))
      yield* waitFor("the hanging refresh", Effect.map(idp.fetchCount, (n) => n === 2))
      yield* settle
      yield* Scope.close(scope, Exit.void)
      for (const answer of [yield* Fiber.join(waiting), yield* Fiber.join(inSpan)]) {
        expect(Either.isLeft(answer) ? answer.left.message : "served the expired set").toContain("the cache is closed")
      }
      expect((yield* cache.status).servingStale).toBe(false)
    })))

  it.scoped("an unknown kid's lookup, as the cache closes or after, fails as closed (503), not as no such key (401)", () =>
    withIdp(Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      const scope = yield* Scope.make()
      const source = yield* JwksSource.http(idp.jwksUri)
      const cache = yield* JwksCache.make(source, { backgroundRefresh: false }).pipe(Scope.extend(scope))
      const kid = yield* idp.currentKid
      yield* cache.get(kid, "RS256")
      yield* idp.setFault(FakeIdp.Fault.hang)
      const waiting = yield* Effect.fork(Effect.either(cache.get("rotated", "RS256")))
      yield* waitFor("the hanging refetch", Effect.map(idp.fetchCount, (n) => n === 2))
      yield* Scope.close(scope, Exit.void)
      const shown = (answer: Either.Either<Option.Option<unknown>, JwksError>) =>
        Either.isLeft(answer) ? answer.left.message : `Option.${answer.right._tag}`
      expect(shown(yield* Fiber.join(waiting))).toContain("the cache is closed")
      // Within the throttle window of that refetch, and past it (where the lookup would refetch if it could), from a
      // request's span too.
      const another = cache.get("another", "RS256")
      expect(shown(yield* Effect.either(another))).toContain("the cache is closed")
      yield* TestClock.adjust("1 minute")
      expect(shown(yield* Effect.either(another))).toContain("the cache is closed")
      expect(shown(yield* Effect.either(Effect.withSpan(another, "GET /orders")))).toContain("the cache is closed")
      // A known kid of the fresh set is still answered from memory.
      expect(Option.isSome(yield* cache.get(kid, "RS256"))).toBe(true)
    })))

  it.scoped("a fetch cut short by the scope closing is counted in fetches_total, as interrupted", () =>
    withIdp(Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      yield* idp.setFault(FakeIdp.Fault.hang)
      // Metrics are global and the fake IdP's URL is every test's: counted before and after.
      const interrupted = Metric.tagged(
        Metric.tagged(JwksMetrics.fetches, "source", idp.jwksUri),
        "outcome",
        "interrupted"
      )
      const before = (yield* Metric.value(interrupted)).count
      const scope = yield* Scope.make()
      const source = yield* JwksSource.http(idp.jwksUri)
      const cache = yield* JwksCache.make(source, { backgroundRefresh: false }).pipe(Scope.extend(scope))
      const waiting = yield* Effect.fork(Effect.either(cache.get("any", "RS256")))
      yield* waitFor("the hanging fetch", Effect.map(idp.fetchCount, (n) => n === 1))
      yield* Scope.close(scope, Exit.void)
      yield* Fiber.join(waiting)
      expect({ status: (yield* cache.status).fetches, interrupted: (yield* Metric.value(interrupted)).count - before })
        .toEqual({ status: 1, interrupted: 1 })
    })))

  it.scoped("a closed cache answers from a fresh set, then fails as closed: no stale serving, no fetch", () =>
    withIdp(Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      const scope = yield* Scope.make()
      const source = yield* JwksSource.http(idp.jwksUri)
      const cache = yield* JwksCache.make(source, { strategy: "time", interval: "10 minutes" }).pipe(
        Scope.extend(scope)
      )
      const kid = yield* idp.currentKid
      yield* cache.get(kid, "RS256")
      yield* Scope.close(scope, Exit.void)
      yield* TestClock.adjust("5 minutes")
      expect(Option.isSome(yield* cache.get(kid, "RS256"))).toBe(true)
      yield* TestClock.adjust("25 minutes")
      const error = yield* Effect.flip(cache.get(kid, "RS256"))
      expectJwksError(error, "Unreachable")
      expect(error.message).toContain("closed")
      expect((yield* cache.status).servingStale).toBe(false)
      expect(yield* idp.fetchCount).toBe(1)
    })))
})

describe("JwksCache settings", () => {
  it.effect("options of the wrong type (from JSON) are refused by name, never taken as something else", () =>
    Effect.gen(function*() {
      const path = (options: Record<string, unknown>) =>
        Either.match(JwksCache.resolve(options as JwksCache.Options), {
          onLeft: (error) => error._op === "InvalidData" ? error.path : [error._op],
          onRight: () => "accepted"
        })
      // A string where `strategy` was meant, or a plain object, would never expire: the first set trusted for good.
      expect(path({ cacheStrategy: "time" })).toEqual(["cacheStrategy"])
      expect(path({ cacheStrategy: {} })).toEqual(["cacheStrategy"])
      expect(path({ cacheStrategy: { _tag: "Time", interval: 300_000, schedule: Schedule.forever } })).toEqual([
        "cacheStrategy"
      ])
      // A "both" without its usages (a time strategy relabelled) would run as time alone while it says both.
      expect(path({ cacheStrategy: { ...CacheStrategy.time("5 minutes"), _tag: "Both" } })).toEqual(["cacheStrategy"])
      expect(path({ cacheStrategy: { ...CacheStrategy.usage(100), _tag: "Time" } })).toEqual(["cacheStrategy"])
      expect(path({ cacheStrategy: CacheStrategy.time("5 minutes") })).toBe("accepted")
      expect(path({ cacheStrategy: CacheStrategy.fromSchedule(Schedule.recurs(3)) })).toBe("accepted")
      // "false" is a string, and truthy.
      expect(path({ backgroundRefresh: "false" })).toEqual(["backgroundRefresh"])
      expect(path({ backgroundRefresh: false })).toBe("accepted")
      // A negative part of a [seconds, nanos] pair, refused as for maxStale.
      expect(path({ interval: [-1, 2e9] })).toEqual(["interval"])
      expect(Either.isLeft(CacheStrategy.fromSettings(null as unknown as CacheStrategy.Settings))).toBe(true)
    }))

  const invalid: ReadonlyArray<readonly [string, JwksCache.Options, string]> = [
    ["threshold 0", { backgroundRefreshThreshold: 0 }, "backgroundRefreshThreshold"],
    ["threshold 1.5", { backgroundRefreshThreshold: 1.5 }, "backgroundRefreshThreshold"],
    ["threshold -1", { backgroundRefreshThreshold: -1 }, "backgroundRefreshThreshold"],
    ["threshold NaN", { backgroundRefreshThreshold: Number.NaN }, "backgroundRefreshThreshold"],
    ["jitter 0.9", { backgroundRefreshJitter: 0.9 }, "backgroundRefreshJitter"],
    ["usages 0", { usages: 0 }, "usages"],
    ["usages 1.5", { usages: 1.5 }, "usages"],
    ["interval 0", { interval: 0 }, "interval"],
    ["interval -5 minutes", { interval: "-5 minutes" }, "interval"],
    ["interval -1000 (ms)", { interval: -1000 }, "interval"],
    ["interval Infinity", { interval: Number.POSITIVE_INFINITY }, "interval"],
    ["maxStale -1000 (ms)", { maxStale: -1000 }, "maxStale"],
    ["maxStale -5 minutes", { maxStale: "-5 minutes" }, "maxStale"],
    ["maxStale Infinity", { maxStale: Duration.infinity }, "maxStale"],
    // "For as long as it takes": no Date holds the end of that window (the stale warning printing it died).
    ["maxStale MAX_SAFE_INTEGER (ms)", { maxStale: Number.MAX_SAFE_INTEGER }, "maxStale"],
    ["unknownKidThrottle 101 years", { unknownKidThrottle: Duration.days(365 * 101) }, "unknownKidThrottle"],
    ["unknownKidThrottle -1 second", { unknownKidThrottle: "-1 second" }, "unknownKidThrottle"],
    ["strategy sometimes", { strategy: "sometimes" as CacheStrategy.Kind }, "strategy"],
    // Else every fetch would fail with EmptyKeySet, a 503 blamed on the identity provider.
    ["algorithms []", { algorithms: [] }, "algorithms"],
    ["algorithms RS265", { algorithms: ["RS265" as Jwk.Algorithm] }, "algorithms"],
    ["algorithms HS256 (never from a key set)", { algorithms: ["HS256" as Jwk.Algorithm] }, "algorithms"]
  ]
  for (const [name, options, path] of invalid) {
    it.scoped(`rejects ${name} with a ConfigError naming ${path}`, () =>
      Effect.gen(function*() {
        const result = yield* Effect.either(JwksCache.make(JwksSource.fromKeySet({ keys: [] }), options))
        expect(Either.isLeft(result)).toBe(true)
        const error = Either.flip(result).pipe(Either.getOrUndefined)
        expect(ConfigError.isConfigError(error)).toBe(true)
        expect(ConfigError.isConfigError(error) && ConfigError.isInvalidData(error) && error.path).toEqual([path])
      }))
  }

  it.effect("a strategy given in code is checked as settings are", () =>
    Effect.sync(() => {
      const cases: ReadonlyArray<readonly [CacheStrategy.CacheStrategy, string]> = [
        // A zero interval set the background fiber fetching in a loop; an infinite one gave an Invalid Date that
        // HttpAuth.toCacheInfo threw on; usage(NaN) was fresh forever on the fast path and never by its schedule.
        [CacheStrategy.time(0), "interval"],
        [CacheStrategy.time(Duration.infinity), "interval"],
        [CacheStrategy.time(Duration.days(365 * 101)), "interval"],
        [CacheStrategy.usage(0), "usages"],
        [CacheStrategy.usage(Number.NaN), "usages"],
        [CacheStrategy.both({ interval: "-5 minutes", usages: 10 }), "interval"],
        [CacheStrategy.fromSchedule(Schedule.forever, { interval: 0 }), "interval"]
      ]
      for (const [cacheStrategy, name] of cases) {
        const resolved = JwksCache.resolve({ cacheStrategy })
        const error = Either.isLeft(resolved) ? resolved.left : undefined
        expect(error?._op === "InvalidData" && error.path, `${cacheStrategy._tag} ${name}`).toEqual([
          "cacheStrategy",
          name
        ])
      }
      for (
        const cacheStrategy of [
          CacheStrategy.time("40 days"),
          CacheStrategy.usage(1),
          CacheStrategy.fromSchedule(Schedule.forever)
        ]
      ) expect(Either.isRight(JwksCache.resolve({ cacheStrategy }))).toBe(true)
      // Options that are null (parsed JSON) get no default: refused, not crashed on.
      const nothing = JwksCache.resolve(null as unknown as JwksCache.Options)
      expect(Either.isLeft(nothing) && nothing.left._op).toBe("InvalidData")
    }))

  it.scoped("accepts the edges of the ranges", () =>
    Effect.gen(function*() {
      const source = JwksSource.fromKeySet({ keys: [] })
      for (
        const options of [
          { backgroundRefreshThreshold: 1 },
          { backgroundRefreshThreshold: 0.01 },
          { backgroundRefreshJitter: 0 },
          { backgroundRefreshJitter: 0.5 },
          { usages: 1 },
          { maxStale: 0 },
          { interval: 1 }
        ] satisfies ReadonlyArray<JwksCache.Options>
      ) {
        yield* JwksCache.make(source, { ...options, backgroundRefresh: false })
      }
    }))

  // `ConfigProvider.fromEnv` splits names on "_"; a map provider standing in for the environment must do the same.
  const env = (entries: ReadonlyArray<readonly [string, string]>) =>
    ConfigProvider.fromMap(new Map(entries), { pathDelim: "_" })

  it.scoped("reads its options from JWKS_CACHE_* configuration", () =>
    withIdp(Effect.gen(function*() {
      const provider = env([["JWKS_CACHE_STRATEGY", "time"], ["JWKS_CACHE_INTERVAL", "5 minutes"]])
      const options = yield* Effect.withConfigProvider(JwksCache.config, provider)
      expect(options.strategy).toBe("time")
      expect(options.interval === undefined ? undefined : Duration.toMillis(Duration.decode(options.interval))).toBe(
        minutes(5)
      )
      expect(options.usages).toBeUndefined()

      const idp = yield* FakeIdp.FakeIdp
      const status = yield* Effect.gen(function*() {
        const cache = yield* JwksCache.JwksCache
        expect(isSome(yield* cache.get(yield* idp.currentKid, "RS256"))).toBe(true)
        return yield* cache.status
      }).pipe(
        Effect.provide(
          JwksCache.layerConfig({ backgroundRefresh: false }).pipe(Layer.provide(JwksSource.layerHttp(idp.jwksUri)))
        ),
        Effect.withConfigProvider(provider)
      )
      expect(status.strategy).toBe("Time")
      expect(status.interval === undefined ? undefined : Duration.toMillis(status.interval)).toBe(minutes(5))
      expect(status.usesLeft).toBeUndefined()
      expect(status.backgroundRefresh).toBe(false)
      expect(status.expiresAt?.getTime()).toBe(minutes(5))
    })))

  it.effect("an empty or blank numeric variable is refused as empty, not read as 0; a number's other spellings as before", () =>
    Effect.gen(function*() {
      const read = (name: string, value: string) =>
        Effect.either(Effect.withConfigProvider(JwksCache.config, env([[name, value]])))
      for (const [name, kind] of [["USAGES", "a whole number"], ["BACKGROUND_REFRESH_THRESHOLD", "a number"]]) {
        for (const value of ["", "  "]) {
          const refused = yield* read(`JWKS_CACHE_${name}`, value)
          expect(Either.isLeft(refused) && String(refused.left)).toBe(
            `(Invalid data at JWKS_CACHE.${name}: "expected ${kind}, got an empty value (unset it for the default)")`
          )
        }
        const junk = yield* read(`JWKS_CACHE_${name}`, "5 apples")
        expect(Either.isLeft(junk) && String(junk.left)).toContain(`expected ${kind}, got "5 apples"`)
      }
      const fraction = yield* read("JWKS_CACHE_USAGES", "1.5")
      expect(Either.isLeft(fraction) && String(fraction.left)).toContain(`expected a whole number, got "1.5"`)
      expect(yield* Effect.withConfigProvider(JwksCache.config, env([["JWKS_CACHE_USAGES", " 500 "]])))
        .toMatchObject({ usages: 500 })
      expect(
        yield* Effect.withConfigProvider(JwksCache.config, env([["JWKS_CACHE_BACKGROUND_REFRESH_THRESHOLD", "0.5"]]))
      )
        .toMatchObject({ backgroundRefreshThreshold: 0.5 })
    }))

  it.scoped("a bad configuration value fails with a ConfigError", () =>
    withIdp(Effect.gen(function*() {
      const provider = env([["JWKS_CACHE_BACKGROUND_REFRESH_THRESHOLD", "2"]])
      const error = yield* Effect.flip(Effect.withConfigProvider(JwksCache.config, provider))
      expect(ConfigError.isConfigError(error)).toBe(true)
      expect(String(error)).toContain("JWKS_CACHE.BACKGROUND_REFRESH_THRESHOLD")

      const idp = yield* FakeIdp.FakeIdp
      const exit = yield* Effect.exit(
        Effect.void.pipe(
          Effect.provide(JwksCache.layerConfig().pipe(Layer.provide(JwksSource.layerHttp(idp.jwksUri)))),
          Effect.withConfigProvider(provider)
        )
      )
      expect(Exit.isFailure(exit)).toBe(true)
      expect(yield* idp.fetchCount).toBe(0)
    })))

  it.scoped("layerConfig: a variable whose option the code sets is not read; the others are checked with the code's", () =>
    withIdp(Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      const build = (overrides: JwksCache.Options, variables: ReadonlyArray<readonly [string, string]>) =>
        Effect.gen(function*() {
          const cache = yield* JwksCache.JwksCache
          return yield* cache.status
        }).pipe(
          Effect.provide(
            JwksCache.layerConfig({ backgroundRefresh: false, ...overrides }).pipe(
              Layer.provide(JwksSource.layerHttp(idp.jwksUri))
            )
          ),
          Effect.withConfigProvider(env(variables)),
          Effect.either
        )
      const usages = yield* build({ usages: 5000 }, [["JWKS_CACHE_USAGES", "0"], ["JWKS_CACHE_STRATEGY", "usage"]])
      expect(Either.getOrThrow(usages).usages).toBe(5000)
      const unreadable = yield* build({ usages: 5000 }, [["JWKS_CACHE_USAGES", "many"]])
      expect(Either.isRight(unreadable)).toBe(true)
      // `cacheStrategy` sets the strategy, interval and usages: none of their variables is read.
      // A strategy set in code makes the other's variable moot: a time strategy counts no usages.
      const time = yield* build({ strategy: "time", interval: "5 minutes" }, [["JWKS_CACHE_USAGES", "0"]])
      expect(Either.getOrThrow(time).usages).toBeUndefined()
      const usage = yield* build({ strategy: "usage" }, [["JWKS_CACHE_INTERVAL", "-1 minute"]])
      expect(Either.getOrThrow(usage).interval).toBeUndefined()
      const strategy = yield* build({ cacheStrategy: CacheStrategy.time("5 minutes") }, [
        ["JWKS_CACHE_INTERVAL", "0 seconds"],
        ["JWKS_CACHE_STRATEGY", "sometimes"]
      ])
      expect(Either.getOrThrow(strategy).strategy).toBe("Time")
      // A variable the code does not set is still checked, and named.
      const refused = yield* build({ usages: 5000 }, [["JWKS_CACHE_BACKGROUND_REFRESH_THRESHOLD", "2"]])
      expect(Either.isLeft(refused) && String(refused.left)).toContain("JWKS_CACHE.BACKGROUND_REFRESH_THRESHOLD")
      // Checked together: usages from the code, and a strategy from the environment that counts none.
      const together = yield* build({ usages: 10 }, [["JWKS_CACHE_STRATEGY", "time"], [
        "JWKS_CACHE_INTERVAL",
        "1 minute"
      ]])
      expect(Either.getOrThrow(together).usages).toBeUndefined()
    })))

  it.effect("a negative duration from the environment is a ConfigError, never read as zero", () =>
    Effect.gen(function*() {
      // Effect's Config.duration reads "-30 seconds" as zero: a throttle of zero is no throttle at all.
      for (
        const [name, value] of [
          ["JWKS_CACHE_UNKNOWN_KID_THROTTLE", "-30 seconds"],
          ["JWKS_CACHE_MAX_STALE", " -1 hour"],
          ["JWKS_CACHE_INTERVAL", "-5 minutes"],
          ["JWKS_CACHE_MAX_STALE", "soon"]
        ] as const
      ) {
        const error = yield* Effect.flip(Effect.withConfigProvider(JwksCache.config, env([[name, value]])))
        expect(ConfigError.isConfigError(error), `${name}=${value}`).toBe(true)
        expect(String(error)).toContain(name.slice("JWKS_CACHE_".length))
      }
      const read = yield* Effect.withConfigProvider(
        JwksCache.config,
        env([["JWKS_CACHE_UNKNOWN_KID_THROTTLE", "0 seconds"], ["JWKS_CACHE_MAX_STALE", "2 hours"]])
      )
      expect(Duration.toMillis(read.unknownKidThrottle!)).toBe(0)
      expect(Duration.toMillis(read.maxStale!)).toBe(minutes(120))
    }))
})

// Observability ----------------------------------------------------------------------------------------------------

describe("JwksCache observability", () => {
  it.scoped("logs one background cycle with the seed's wording and levels, and warns when it fails", () => {
    const entries: Array<{ readonly level: string; readonly message: string }> = []
    const logger = Logger.make(({ logLevel, message }) => {
      const first = Array.isArray(message) ? message[0] : message
      entries.push({ level: logLevel.label, message: String(first) })
    })
    const index = (level: string, message: string) =>
      entries.findIndex((entry) => entry.level === level && entry.message === message)
    return withIdp(Effect.gen(function*() {
      const { idp } = yield* makeCache({ backgroundRefreshJitter: 0 })
      yield* waitForSleepUntil(minutes(16))
      const scheduled = index("DEBUG", "Background JWKS refresh task scheduled")
      const initial = index("INFO", "Performing initial JWKS load")
      const firstWait = entries.findIndex((entry) => entry.message === "Background refresh will wait 960 seconds")
      expect(scheduled).toBeGreaterThanOrEqual(0)
      expect(initial).toBeGreaterThan(scheduled)
      expect(index("INFO", "Initial JWKS load completed")).toBeGreaterThan(initial)
      expect(firstWait).toBeGreaterThan(initial)
      expect(index("INFO", "Performing background JWKS refresh")).toBe(-1)

      yield* TestClock.adjust("16 minutes")
      yield* waitForSleepUntil(minutes(32))
      const performing = index("INFO", "Performing background JWKS refresh")
      const loaded = entries.findIndex((entry, i) =>
        i > performing && entry.level === "DEBUG" && entry.message === "JWKS loaded"
      )
      const completed = index("INFO", "Background JWKS refresh completed")
      const wait = entries.findIndex((entry, i) =>
        i > completed && entry.level === "DEBUG" && entry.message.startsWith("Background refresh will wait")
      )
      expect(performing).toBeGreaterThan(firstWait)
      expect(loaded).toBeGreaterThan(performing)
      expect(completed).toBeGreaterThan(loaded)
      expect(wait).toBeGreaterThan(completed)
      expect(entries[wait]!.message).toBe("Background refresh will wait 960 seconds")
      // One wait per cycle: the wake-up each fetch leaves behind is taken with it, not woken on (a second look).
      expect(entries.filter((entry) => entry.message.startsWith("Background refresh will wait"))).toHaveLength(2)
      expect(index("WARN", "Background JWKS refresh failed")).toBe(-1)

      yield* idp.failNext(FakeIdp.Fault.status(500))
      yield* TestClock.adjust("16 minutes")
      yield* waitFor("the failure warning", Effect.sync(() => index("WARN", "Background JWKS refresh failed") >= 0))
      expect(index("INFO", "Background JWKS refresh completed")).toBe(completed)
    })).pipe(
      Logger.withMinimumLogLevel(LogLevel.Debug),
      Effect.provide(Logger.replace(Logger.defaultLogger, logger))
    )
  })

  it.scoped("a fetch that changes the kids logs those added and removed; one that changes nothing does not", () => {
    const { apply, lines } = captureLogs()
    return withIdp(Effect.gen(function*() {
      const { cache, idp, kid } = yield* makeCache({ backgroundRefresh: false })
      yield* cache.refresh
      yield* cache.refresh
      expect(lines.filter((line) => line.message === "JWKS key set changed")).toEqual([])
      const rotated = yield* idp.rotate("replace")
      yield* cache.refresh
      const changed = lines.filter((line) => line.message === "JWKS key set changed")
      expect(
        changed.map(({ annotations, level }) => ({ level, added: annotations.added, removed: annotations.removed }))
      )
        .toEqual([{ level: "INFO", added: `"${rotated}"`, removed: `"${kid}"` }])
    })).pipe(apply)
  })

  it.scoped("new key material under a kid the set had, and keys without a kid, are key set changes too", () => {
    const { apply, lines } = captureLogs()
    const ecKey = () => generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({ format: "jwk" })
    let published: ReadonlyArray<object> = []
    const source = JwksSource.make("changing-material", Effect.sync(() => ({ keys: published })))
    return Effect.gen(function*() {
      const cache = yield* JwksCache.make(source, { backgroundRefresh: false, algorithms: ["ES256"] })
      const changes = () =>
        lines.filter((line) => line.message === "JWKS key set changed").map(({ annotations }) => [
          annotations.added,
          annotations.removed
        ])
      // The same key listed twice (once with use: "sig"): no change, however often it is fetched.
      const twice = { ...ecKey(), kid: "twice" }
      published = [twice, { ...twice, use: "sig" }]
      yield* cache.refresh
      yield* cache.refresh
      yield* cache.refresh
      expect(changes()).toEqual([])
      published = [{ ...ecKey(), kid: "same" }, ecKey()]
      yield* cache.refresh
      published = [{ ...ecKey(), kid: "same" }, published[1]!]
      yield* cache.refresh
      published = [published[0]!, ecKey()]
      yield* cache.refresh
      expect(changes()).toEqual([["\"same\", (no kid)", "\"twice\""], ["\"same\"", "\"same\""], [
        "(no kid)",
        "(no kid)"
      ]])
    }).pipe(apply)
  })

  it.scoped("a kid from a token is cut to 64 characters in the cache's log lines", () => {
    const { apply, lines } = captureLogs()
    return withIdp(Effect.gen(function*() {
      const { cache } = yield* makeCache({ backgroundRefresh: false })
      yield* cache.refresh
      const kid = "k".repeat(10_000)
      yield* cache.get(kid, "RS256")
      yield* cache.get(kid, "RS256") // throttled
      const logged = lines.filter((line) => line.message.startsWith("Unknown kid")).map((line) => line.annotations.kid)
      expect(logged).toEqual(Array(2).fill(`${"k".repeat(64)}... (10000 characters)`))
    })).pipe(apply)
  })

  it.scoped("a failed fetch is an error while the cache has no keys, a warning beside good ones", () => {
    const { apply, lines } = captureLogs()
    const failures = () =>
      lines.filter((line) => line.message.startsWith("JWKS fetch failed")).map((line) => line.level)
    return withIdp(Effect.gen(function*() {
      const { cache, idp } = yield* makeCache({ backgroundRefresh: false })
      yield* idp.failNext(FakeIdp.Fault.status(503))
      yield* Effect.flip(cache.refresh)
      expect(failures()).toEqual(["ERROR"])
      yield* TestClock.adjust("1 minute")
      yield* cache.refresh
      yield* idp.failNext(FakeIdp.Fault.status(503))
      yield* Effect.flip(cache.refresh)
      expect(failures()).toEqual(["ERROR", "WARN"])
    })).pipe(apply)
  })

  it.scoped("the stale window running out is logged once, as an error; a success ends that", () => {
    const { apply, lines } = captureLogs()
    const spent = () => lines.filter((line) => line.message.startsWith("Stale JWKS spent")).map((line) => line.level)
    return withIdp(Effect.gen(function*() {
      const { cache, idp, kid } = yield* makeCache({
        strategy: "time",
        interval: "20 minutes",
        backgroundRefresh: false,
        maxStale: "10 minutes"
      })
      yield* cache.get(kid, "RS256")
      yield* idp.setFault(FakeIdp.Fault.status(503))
      yield* TestClock.adjust("21 minutes")
      expect(isSome(yield* cache.get(kid, "RS256"))).toBe(true) // stale
      expect(spent()).toEqual([])
      yield* TestClock.adjust("10 minutes")
      for (let i = 0; i < 3; i++) {
        expectJwksError(yield* Effect.flip(cache.keys), "Stale")
        yield* TestClock.adjust("10 minutes") // past any backoff: each request fetches
      }
      expect(spent()).toEqual(["ERROR"])
      expect(lines.find((line) => line.message.startsWith("Stale JWKS spent"))!.message).toBe(
        `Stale JWKS spent at ${new Date(minutes(30)).toISOString()}: tokens are refused until a fetch succeeds`
      )
      yield* idp.setFault(undefined)
      yield* cache.refresh
      yield* idp.setFault(FakeIdp.Fault.status(503))
      yield* TestClock.adjust("21 minutes")
      expect(isSome(yield* cache.get(kid, "RS256"))).toBe(true) // stale again
      yield* TestClock.adjust("10 minutes")
      yield* Effect.flip(cache.keys)
      expect(spent()).toEqual(["ERROR", "ERROR"])
    })).pipe(apply)
  })

  it.scoped("a status read under the caller's metric tags sets the age gauge of the source's own series", () =>
    withIdp(Effect.gen(function*() {
      const { cache, idp } = yield* makeCache({ backgroundRefresh: false, strategy: "time" })
      yield* cache.refresh
      yield* TestClock.adjust("10 minutes")
      yield* cache.status.pipe(Effect.tagMetrics("route", "/cache-info"))
      const age = Metric.tagged(JwksMetrics.keySetAge, "source", idp.jwksUri)
      expect((yield* Metric.value(age)).value).toBe(600)
      expect((yield* Metric.value(Metric.tagged(age, "route", "/cache-info"))).value).toBe(0)
    })))

  it.scoped("status reports the key ids, load time, expiry, uses left and freshness", () =>
    withIdp(Effect.gen(function*() {
      const { cache, idp, kid } = yield* makeCache({
        strategy: "both",
        interval: "20 minutes",
        usages: 10,
        backgroundRefresh: false
      })
      const cold = yield* cache.status
      expect(cold).toMatchObject({
        source: idp.jwksUri,
        strategy: "Both",
        keyIds: [],
        loadedAt: undefined,
        expiresAt: undefined,
        usesLeft: undefined,
        fresh: false,
        servingStale: false,
        lastRefresh: undefined,
        fetches: 0
      })

      yield* TestClock.adjust("1 minute")
      const rotated = yield* idp.rotate("overlap")
      yield* serve(cache, kid, 3)
      const warm = yield* cache.status
      expect(warm.keyIds).toEqual([kid, rotated])
      expect(warm.loadedAt?.getTime()).toBe(minutes(1))
      expect(warm.expiresAt?.getTime()).toBe(minutes(21))
      expect(warm.usesLeft).toBe(7)
      expect(warm.fresh).toBe(true)
      expect(warm.fetches).toBe(1)
      expect(warm.lastRefresh).toEqual({ at: new Date(minutes(1)), outcome: "success" })

      yield* TestClock.adjust("20 minutes")
      const expired = yield* cache.status
      expect(expired.fresh).toBe(false)
      expect(expired.servingStale).toBe(false)
    })))

  it.scoped("status.staleUntil: the expiry plus maxStale, from a usage expiry a lookup found; past it lookups fail", () =>
    withIdp(Effect.gen(function*() {
      const { cache, idp, kid } = yield* makeCache({
        strategy: "both",
        interval: "20 minutes",
        usages: 3,
        maxStale: "10 minutes",
        backgroundRefresh: false
      })
      expect((yield* cache.status).staleUntil).toBeUndefined() // no set yet
      yield* TestClock.adjust("1 minute")
      yield* serve(cache, kid, 3) // loaded at minute 1, and spent by use there
      expect((yield* cache.status).staleUntil?.getTime()).toBe(minutes(21 + 10)) // its end by time, as yet
      yield* idp.setFault(FakeIdp.Fault.status(503))
      yield* TestClock.adjust("1 minute")
      expect(isSome(yield* cache.get(kid, "RS256"))).toBe(true) // found spent at minute 2: served stale
      const stale = yield* cache.status
      expect([stale.servingStale, stale.staleUntil?.getTime()]).toEqual([true, minutes(2 + 10)])
      yield* TestClock.adjust("10 minutes")
      expectJwksError(yield* Effect.flip(cache.get(kid, "RS256")), "Stale")
      const spent = yield* cache.status
      expect([spent.fresh, spent.servingStale, spent.staleUntil?.getTime()]).toEqual([false, false, minutes(12)])
    })))

  it.effect("status.staleUntil: none for a set that expires by use alone; a closed cache's is its expiry", () =>
    Effect.gen(function*() {
      const usage = yield* makeCache({ strategy: "usage", usages: 5, backgroundRefresh: false })
      yield* serve(usage.cache, usage.kid, 1)
      expect((yield* usage.cache.status).staleUntil).toBeUndefined()
      const scope = yield* Scope.make()
      const timed = yield* makeCache({ strategy: "time", interval: "20 minutes", backgroundRefresh: false }).pipe(
        Scope.extend(scope)
      )
      yield* serve(timed.cache, timed.kid, 1)
      expect((yield* timed.cache.status).staleUntil?.getTime()).toBe(minutes(20 + 60))
      yield* Scope.close(scope, Exit.void)
      expect((yield* timed.cache.status).staleUntil?.getTime()).toBe(minutes(20))
    }).pipe(Effect.provide(FakeIdp.layerTest()), Effect.scoped))
})
