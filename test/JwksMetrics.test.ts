import { describe, expect, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as DefaultServices from "effect/DefaultServices"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Metric from "effect/Metric"
import * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"
import * as Tracer from "effect/Tracer"
import { vi } from "vitest"
import * as JwksCache from "../src/JwksCache.js"
import * as JwksMetrics from "../src/JwksMetrics.js"
import * as JwksSource from "../src/JwksSource.js"
import * as FakeIdp from "../src/testing/FakeIdp.js"
import * as TokenValidator from "../src/TokenValidator.js"
import { capturing } from "./support/logs.js"

/** Metrics are global: each test uses its own issuer (so its own `source` tag) and compares before and after. */
const setup = (issuer: string, cache?: JwksCache.Options, options?: Partial<TokenValidator.Options>) =>
  Effect.gen(function*() {
    const idp = yield* FakeIdp.FakeIdp
    const source = yield* JwksSource.http(idp.jwksUri)
    const keys = yield* JwksCache.make(source, cache)
    const validator = yield* TokenValidator.make(TokenValidator.fromCache(keys), {
      issuer: idp.issuer,
      audience: idp.audience,
      ...options
    })
    return { idp, keys, validator }
  }).pipe(Effect.provide(FakeIdp.layerTest({ issuer })))

const count = (metric: Metric.Metric.Counter<number>, tags: Record<string, string>) =>
  Effect.map(
    Metric.value(Object.entries(tags).reduce((m, [key, value]) => Metric.tagged(m, key, value), metric)),
    (state) => state.count
  )

/** `count` validations on `route` at once, each waiting 1 second (TestClock's) for the keys of a slow IdP of its own. */
const slowValidations = (issuer: string, count: number, route: string) =>
  Effect.gen(function*() {
    const slow = yield* setup(issuer, { backgroundRefresh: false })
    yield* slow.idp.setFault(FakeIdp.Fault.latency("1 second"))
    const token = yield* slow.idp.sign({}, { expiresIn: "1 day" })
    const waiting = yield* Effect.forEach(
      Array.from({ length: count }),
      () => Effect.fork(slow.validator.validate(token).pipe(Effect.tagMetrics("route", route))),
      { concurrency: "unbounded" }
    )
    yield* TestClock.adjust("1 second")
    yield* Effect.forEach(waiting, Fiber.join)
  })

describe("JwksMetrics", () => {
  it.scoped("the snapshot counts a known sequence of validations by outcome and reason", () =>
    Effect.gen(function*() {
      const { idp, validator } = yield* setup("https://metrics-1.example.test", { backgroundRefresh: false })
      const before = yield* JwksMetrics.snapshot
      const good = yield* idp.sign({})
      for (let i = 0; i < 7; i++) yield* validator.validate(good)
      yield* Effect.flip(validator.validate("not-a-token"))
      yield* Effect.flip(validator.validate(yield* idp.sign({}, { expiresIn: "-1 minute" })))
      yield* Effect.flip(validator.validate(yield* idp.sign({}, { expiresIn: "-1 minute" })))
      yield* Effect.flip(validator.validate(yield* idp.sign({ aud: "someone-else" })))
      const cold = yield* setup("https://metrics-1b.example.test", { backgroundRefresh: false })
      yield* cold.idp.setFault(FakeIdp.Fault.status(500))
      const unavailable = yield* Effect.flip(cold.validator.validate(yield* cold.idp.sign({})))
      expect(unavailable._tag).toBe("JwksError")

      const after = yield* JwksMetrics.snapshot
      expect(after.tokensValidated - before.tokensValidated).toBe(7)
      expect(after.tokensFailed - before.tokensFailed).toBe(5)
      expect(after.total - before.total).toBe(12)
      const delta = (reason: JwksMetrics.FailureReason) =>
        (after.errorsByType[reason] ?? 0) - (before.errorsByType[reason] ?? 0)
      expect(delta("Malformed")).toBe(1)
      expect(delta("Expired")).toBe(2)
      expect(delta("AudienceMismatch")).toBe(1)
      expect(delta("KeysUnavailable")).toBe(1)
      expect(delta("InvalidSignature")).toBe(0)
      expect(after.successRate).toBeGreaterThan(0)
      expect(after.successRate).toBeLessThan(1)
      const latency = yield* Metric.value(JwksMetrics.validationDuration)
      expect(latency.count).toBeGreaterThanOrEqual(12)
    }).pipe(Logger.withMinimumLogLevel(LogLevel.None)))

  it.scoped("a validation that got no answer is counted, with its latency: interrupted by its caller, or a defect", () =>
    Effect.gen(function*() {
      const tagged = Effect.tagMetrics("tenant", "unanswered")
      const before = yield* JwksMetrics.snapshot
      // The caller gives up after 1 second while the identity provider hangs (a request timeout, say).
      const hanging = yield* setup("https://metrics-hang.example.test", { backgroundRefresh: false })
      yield* hanging.idp.setFault(FakeIdp.Fault.hang)
      const token = yield* hanging.idp.sign({})
      const timed = yield* Effect.fork(tagged(Effect.timeout(hanging.validator.validate(token), "1 second")))
      yield* TestClock.adjust("1 second")
      yield* Effect.exit(Fiber.join(timed))
      // A check hook with a bug.
      const buggy = yield* setup("https://metrics-bug.example.test", { backgroundRefresh: false }, {
        check: () => {
          throw new Error("a bug in the check hook")
        }
      })
      yield* Effect.exit(tagged(buggy.validator.validate(yield* buggy.idp.sign({}))))

      const after = yield* JwksMetrics.snapshot
      expect({
        interrupted: yield* count(JwksMetrics.validations, { outcome: "interrupted", tenant: "unanswered" }),
        defect: yield* count(JwksMetrics.validations, { outcome: "defect", tenant: "unanswered" }),
        snapshot: {
          interrupted: after.unanswered.interrupted - before.unanswered.interrupted,
          defect: after.unanswered.defect - before.unanswered.defect,
          answered: after.total - before.total
        }
      }).toEqual({ interrupted: 1, defect: 1, snapshot: { interrupted: 1, defect: 1, answered: 0 } })
      const latency = yield* Metric.value(Metric.tagged(JwksMetrics.validationDuration, "tenant", "unanswered"))
      expect(latency.count).toBe(2)
      expect(latency.max).toBeGreaterThanOrEqual(1000)
    }).pipe(Logger.withMinimumLogLevel(LogLevel.None)))

  it.scoped("an issuer rule that throws is counted as a defect, alone, behind multi and through toPromise", () =>
    Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      const keys = yield* JwksCache.make(yield* JwksSource.http(idp.jwksUri), { backgroundRefresh: false })
      // A rule with a bug, asked by multi's routing too (it has no `accepts`).
      const issuer: TokenValidator.IssuerRule = {
        description: "buggy",
        matches: () => {
          throw new Error("a bug in the issuer rule")
        }
      }
      const validator = yield* TokenValidator.make(TokenValidator.fromCache(keys), { issuer, audience: idp.audience })
      const multi = TokenValidator.multi([validator])
      const token = yield* idp.sign({})
      const defects = (tenant: string) => count(JwksMetrics.validations, { outcome: "defect", tenant })
      yield* Effect.exit(validator.validate(token).pipe(Effect.tagMetrics("tenant", "rule-alone")))
      yield* Effect.exit(multi.validate(token).pipe(Effect.tagMetrics("tenant", "rule-multi")))
      const runtime = yield* Effect.runtime<never>().pipe(Effect.tagMetrics("tenant", "rule-promise"))
      const viaPromise = yield* Effect.promise(() =>
        TokenValidator.toPromise(runtime)(multi)(token).then(() => "resolved", () => "rejected")
      )
      const latency = yield* Metric.value(Metric.tagged(JwksMetrics.validationDuration, "tenant", "rule-multi"))
      expect({
        viaPromise,
        alone: yield* defects("rule-alone"),
        multi: yield* defects("rule-multi"),
        promise: yield* defects("rule-promise"),
        multiLatencies: latency.count
      }).toEqual({ viaPromise: "rejected", alone: 1, multi: 1, promise: 1, multiLatencies: 1 })
    }).pipe(
      Effect.provide(FakeIdp.layerTest({ issuer: "https://metrics-rule.example.test" })),
      Logger.withMinimumLogLevel(LogLevel.None)
    ))

  it.scoped("a validation whose span throws (a tracer of the app's with a bug) is still counted, once", () =>
    Effect.gen(function*() {
      const { idp, validator } = yield* setup("https://metrics-throwing-span.example.test", {
        backgroundRefresh: false
      })
      const builtIn = Context.get(DefaultServices.liveServices, Tracer.Tracer)
      // Its spans refuse the attribute the validation sets last, `outcome`.
      const throwing = Tracer.make({
        span: (...args) => {
          const span = builtIn.span(...args)
          return Object.assign(Object.create(span), {
            attribute: (key: string, value: unknown) => {
              if (key === "outcome") throw new Error("a bug in the tracer")
              span.attribute(key, value)
            }
          }) as Tracer.Span
        },
        context: builtIn.context
      })
      const token = yield* idp.sign({})
      yield* validator.validate(token) // the keys loaded, untraced
      const exit = yield* Effect.exit(
        validator.validate(token).pipe(Effect.withTracer(throwing), Effect.tagMetrics("tenant", "throwing-span"))
      )
      expect(exit._tag).toBe("Failure")
      const counts = yield* Effect.all(
        ["success", "defect"].map((outcome) => count(JwksMetrics.validations, { outcome, tenant: "throwing-span" }))
      )
      expect(counts).toEqual([1, 0])
    }).pipe(Logger.withMinimumLogLevel(LogLevel.None)))

  it.scoped("validations carry the caller's metric tags (Effect.tagMetrics), on every path", () =>
    Effect.gen(function*() {
      const { idp, validator } = yield* setup("https://metrics-3.example.test", { backgroundRefresh: false })
      const tags = { outcome: "success", tenant: "metrics-3" }
      const good = yield* idp.sign({})
      yield* validator.validate(good).pipe(Effect.tagMetrics("tenant", "metrics-3")) // cold: waits for the fetch
      yield* validator.validate(good).pipe(Effect.tagMetrics("tenant", "metrics-3")) // remembered, from memory
      yield* validator.validate(yield* idp.sign({ sub: "b" })).pipe(Effect.tagMetrics("tenant", "metrics-3"))
      yield* validator.validate(good) // untagged
      expect(yield* count(JwksMetrics.validations, tags)).toBe(3)
      const expired = yield* idp.sign({}, { expiresIn: "-1 minute" })
      yield* Effect.flip(validator.validate(expired).pipe(Effect.tagMetrics("tenant", "metrics-3")))
      expect(
        yield* count(JwksMetrics.validations, { outcome: "failure", reason: "Expired", tenant: "metrics-3" })
      ).toBe(1)
      const latency = yield* Metric.value(Metric.tagged(JwksMetrics.validationDuration, "tenant", "metrics-3"))
      expect(latency.count).toBe(4)
    }))

  it.scoped("a multi-issuer validator counts the refusals its router decides", () =>
    Effect.gen(function*() {
      const { idp, validator } = yield* setup("https://metrics-multi.example.test", { backgroundRefresh: false })
      const multi = TokenValidator.multi([validator])
      const failures = (reason: string) => count(JwksMetrics.validations, { outcome: "failure", reason })
      const foreign = yield* idp.sign({ iss: "https://attacker.example.test" })
      expect((yield* Effect.flip(multi.validate(foreign))).reason).toBe("IssuerMismatch")
      expect((yield* Effect.flip(multi.validate("garbage"))).reason).toBe("Malformed")
      const viaPromise = TokenValidator.toPromise(yield* Effect.runtime<never>())(multi)
      yield* Effect.promise(() => viaPromise(foreign).catch(() => undefined))
      expect(yield* failures("IssuerMismatch")).toBe(2)
      expect(yield* failures("Malformed")).toBe(1)
      // A routed token is counted once, by the validator it was routed to.
      yield* multi.validate(yield* idp.sign({}))
      expect(yield* count(JwksMetrics.validations, { outcome: "success" })).toBe(1)
    }).pipe(Effect.tagMetrics("test", "multi-router"), Logger.withMinimumLogLevel(LogLevel.None)))

  it.scoped("the snapshot adds up every tag set: validations under Effect.tagMetrics are in it", () =>
    Effect.gen(function*() {
      const { idp, validator } = yield* setup("https://metrics-tagged.example.test", { backgroundRefresh: false })
      const before = yield* JwksMetrics.snapshot
      yield* validator.validate(yield* idp.sign({})).pipe(Effect.tagMetrics("route", "/orders"))
      yield* Effect.flip(validator.validate("not-a-token")).pipe(Effect.tagMetrics("route", "/orders"))
      const after = yield* JwksMetrics.snapshot
      expect(after.total - before.total).toBe(2)
      expect(after.tokensValidated - before.tokensValidated).toBe(1)
      expect((after.errorsByType.Malformed ?? 0) - (before.errorsByType.Malformed ?? 0)).toBe(1)
    }).pipe(Logger.withMinimumLogLevel(LogLevel.None)))

  it.scoped("the snapshot's quantiles are the busiest series's with validations in their window, not an idle one's", () =>
    Effect.gen(function*() {
      // The summaries' 5-minute window is read on Date.now(): only Date is faked, the latencies are TestClock's.
      vi.useFakeTimers({ toFake: ["Date"] })
      vi.setSystemTime(new Date("2031-01-01T08:00:00Z"))
      const { idp, validator } = yield* setup("https://metrics-window.example.test", { backgroundRefresh: false })
      const token = yield* idp.sign({}, { expiresIn: "1 day" })
      // Busy an hour ago (50 quick validations on one route), idle since.
      for (let i = 0; i < 50; i++) yield* validator.validate(token).pipe(Effect.tagMetrics("route", "/earlier"))
      vi.setSystemTime(new Date("2031-01-01T09:00:00Z"))
      // Now: 10 validations on another route, each waiting a second for a slow IdP's keys.
      yield* slowValidations("https://metrics-window-now.example.test", 10, "/now")
      const after = yield* JwksMetrics.snapshot
      expect([after.p50Ms, after.p99Ms]).toEqual([1000, 1000])
    }).pipe(
      Effect.ensuring(Effect.sync(() => vi.useRealTimers())),
      Logger.withMinimumLogLevel(LogLevel.None)
    ))

  it.scoped("the snapshot's average adds up the latencies of every series, each validation counted", () =>
    Effect.gen(function*() {
      const before = yield* JwksMetrics.snapshot
      // Three validations on a route of this test's own, each waiting a second for a slow IdP's keys.
      yield* slowValidations("https://metrics-average.example.test", 3, "/average")
      const after = yield* JwksMetrics.snapshot
      const validations = (s: JwksMetrics.Snapshot) => s.total + s.unanswered.interrupted + s.unanswered.defect
      expect(validations(after) - validations(before)).toBe(3)
      const milliseconds = (s: JwksMetrics.Snapshot) => s.averageMs * validations(s)
      expect(milliseconds(after) - milliseconds(before)).toBeCloseTo(3000, 3)
    }).pipe(Logger.withMinimumLogLevel(LogLevel.None)))

  it.scoped("cache events are the cache's: filed under its source, whichever tagged request set them off", () =>
    Effect.gen(function*() {
      const { idp, validator } = yield* setup("https://metrics-own.example.test", {
        backgroundRefresh: false,
        strategy: "time",
        interval: "20 minutes",
        maxStale: "1 hour"
      })
      const source = idp.jwksUri
      const onRoute = Effect.tagMetrics("route", "/own-events")
      yield* validator.validate(yield* idp.sign({})).pipe(onRoute) // the cold fetch
      yield* Effect.flip(validator.validate(yield* idp.sign({}, { kid: "forged", key: "unpublished" }))).pipe(onRoute)
      yield* Effect.flip(validator.validate(yield* idp.sign({}, { kid: "forged-2", key: "unpublished" }))).pipe(onRoute)
      yield* idp.setFault(FakeIdp.Fault.status(503))
      yield* TestClock.adjust("21 minutes")
      yield* validator.validate(yield* idp.sign({})).pipe(onRoute) // served stale
      expect(yield* count(JwksMetrics.fetches, { source, outcome: "success" })).toBe(2)
      expect(yield* count(JwksMetrics.fetches, { source, outcome: "failure", reason: "HttpStatus" })).toBe(1)
      expect(yield* count(JwksMetrics.unknownKidRefetches, { source })).toBe(1)
      expect(yield* count(JwksMetrics.unknownKidThrottled, { source })).toBe(1)
      expect(yield* count(JwksMetrics.staleServes, { source })).toBe(1)
      // The validations themselves keep the route.
      expect(yield* count(JwksMetrics.validations, { outcome: "success", route: "/own-events" })).toBe(2)
    }).pipe(Logger.withMinimumLogLevel(LogLevel.None)))

  it.scoped("caches open over one source at once are told apart: the second's metrics and status say #2", () =>
    Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      const source = yield* JwksSource.http(idp.jwksUri)
      const url = idp.jwksUri
      const options = { backgroundRefresh: false, strategy: "time", interval: "20 minutes" } as const
      const first = yield* JwksCache.make(source, options)
      yield* first.refresh
      yield* TestClock.adjust("10 minutes")
      // A second cache over the same URL (two Oidc layers of one issuer, for two audiences), loaded now.
      const secondScope = yield* Scope.make()
      const second = yield* Scope.extend(JwksCache.make(source, options), secondScope)
      yield* second.refresh
      expect([first.source, second.source]).toEqual([url, `${url} #2`])
      expect((yield* second.status).source).toBe(`${url} #2`)
      // Each keeps its own series: the first's age is not overwritten by the second's load.
      yield* first.status
      const age = (tag: string) =>
        Effect.map(Metric.value(Metric.tagged(JwksMetrics.keySetAge, "source", tag)), (state) => state.value)
      expect([yield* age(url), yield* age(`${url} #2`)]).toEqual([600, 0])
      expect(yield* count(JwksMetrics.fetches, { source: url, outcome: "success" })).toBe(1)
      expect(yield* count(JwksMetrics.fetches, { source: `${url} #2`, outcome: "success" })).toBe(1)
      // A number is the cache's while it is open: closed, the next cache over the source takes it.
      yield* Scope.close(secondScope, Exit.void)
      // Errors name the source itself (here the closed cache's own).
      const closed = yield* Effect.flip(second.get("any", "RS256"))
      expect([closed.reason, closed.source]).toEqual(["Unreachable", url])
      expect((yield* JwksCache.make(source, options)).source).toBe(`${url} #2`)
      expect((yield* JwksCache.make(source, options)).source).toBe(`${url} #3`)
    }).pipe(Effect.provide(FakeIdp.layerTest({ issuer: "https://metrics-twins.example.test" }))))

  it.scoped("a second cache's import log lines say #2 too, and its import errors name the source", () => {
    const { entries, use } = capturing()
    return use(
      Effect.gen(function*() {
        const idp = yield* FakeIdp.FakeIdp
        const good = (yield* idp.jwks).keys[0]!
        const symmetric = { kty: "oct", kid: "hmac", k: "c2VjcmV0" }
        const withSkipped = JwksSource.fromKeySet({ keys: [good, symmetric] })
        const options = { backgroundRefresh: false } as const
        yield* (yield* JwksCache.make(withSkipped, options)).refresh
        yield* (yield* JwksCache.make(withSkipped, options)).refresh
        const skipped = entries.filter((entry) => entry.message.startsWith("Skipping key"))
        expect(skipped.map((entry) => entry.annotations.source)).toEqual(["static", "static #2"])
        // A set with no usable key: the second cache's error names the source, as its other errors do.
        const empty = { ...JwksSource.fromKeySet({ keys: [symmetric] }), name: "partner-keys" }
        const first = yield* JwksCache.make(empty, options)
        const second = yield* JwksCache.make(empty, options)
        expect(second.source).toBe("partner-keys #2")
        for (const cache of [first, second]) {
          const error = yield* Effect.flip(cache.refresh)
          expect([error.reason, error.source]).toEqual(["EmptyKeySet", "partner-keys"])
        }
      }).pipe(Effect.provide(FakeIdp.layerTest({ issuer: "https://metrics-twins-import.example.test" })))
    )
  })

  it.scoped("the cache counts fetches, unknown-kid refetches and throttles, background refreshes and stale serves", () =>
    Effect.gen(function*() {
      const { idp, keys, validator } = yield* setup("https://metrics-2.example.test", {
        strategy: "time",
        interval: "20 minutes",
        backgroundRefreshJitter: 0,
        retry: undefined
      })
      const source = idp.jwksUri
      const good = yield* idp.sign({})
      yield* validator.validate(good)
      expect(yield* count(JwksMetrics.fetches, { source, outcome: "success" })).toBe(1)

      // Two forged kids: the first refetches, the second is throttled.
      for (const kid of ["forged-1", "forged-2"]) {
        yield* Effect.flip(validator.validate(yield* idp.sign({}, { kid, key: "unpublished" })))
      }
      expect(yield* count(JwksMetrics.unknownKidRefetches, { source })).toBe(1)
      expect(yield* count(JwksMetrics.unknownKidThrottled, { source })).toBe(1)
      expect(yield* count(JwksMetrics.fetches, { source, outcome: "success" })).toBe(2)

      // The background refresh at 16 minutes fails; past expiry the set is served stale.
      yield* idp.setFault(FakeIdp.Fault.status(503))
      yield* TestClock.adjust("16 minutes")
      for (
        let i = 0;
        i < 100 && (yield* count(JwksMetrics.backgroundRefreshes, { source, outcome: "failure" })) < 1;
        i++
      ) {
        yield* Effect.yieldNow()
      }
      expect(yield* count(JwksMetrics.backgroundRefreshes, { source, outcome: "failure" })).toBe(1)
      expect(yield* count(JwksMetrics.fetches, { source, outcome: "failure", reason: "HttpStatus" })).toBe(1)
      yield* TestClock.adjust("5 minutes")
      yield* validator.validate(yield* idp.sign({}))
      expect(yield* count(JwksMetrics.staleServes, { source })).toBeGreaterThanOrEqual(1)
      const status = yield* keys.status
      expect(status.servingStale).toBe(true)
      const age = yield* Metric.value(Metric.tagged(JwksMetrics.keySetAge, "source", source))
      expect(age.value).toBeGreaterThanOrEqual(20 * 60)
    }).pipe(Logger.withMinimumLogLevel(LogLevel.None)))

  it.scoped("key_set_age is back to 0 when a lookup reloads an expired set, with no background fiber", () =>
    Effect.gen(function*() {
      const { idp, keys } = yield* setup("https://metrics-age.example.test", {
        strategy: "time",
        interval: "20 minutes",
        backgroundRefresh: false
      })
      const kid = yield* idp.currentKid
      const age = Effect.map(
        Metric.value(Metric.tagged(JwksMetrics.keySetAge, "source", idp.jwksUri)),
        (gauge) => gauge.value
      )
      yield* keys.get(kid, "RS256")
      yield* TestClock.adjust("21 minutes")
      yield* keys.status // the status brings the gauge up to date
      expect(yield* age).toBe(21 * 60)
      yield* keys.get(kid, "RS256") // expired: reloaded
      expect(yield* age).toBe(0)
    }))

  it.scoped("an unknown kid held back by a failed fetch's backoff is counted as throttled, with a line of its own", () =>
    Effect.gen(function*() {
      const { idp, keys, validator } = yield* setup("https://metrics-backoff.example.test", {
        strategy: "time",
        backgroundRefresh: false,
        unknownKidThrottle: 0,
        retry: undefined
      })
      const source = idp.jwksUri
      yield* validator.validate(yield* idp.sign({}))
      yield* idp.setFault(FakeIdp.Fault.status(503))
      yield* Effect.flip(keys.refresh) // fails: the next fetch waits about a second
      const fetched = yield* idp.fetchCount
      const logs = capturing()
      const error = yield* logs.use(
        Effect.flip(validator.validate(yield* idp.sign({}, { kid: "new", key: "unpublished" })))
      )
      expect(error._tag === "TokenValidationError" && error.reason).toBe("NoMatchingKey")
      expect(yield* idp.fetchCount).toBe(fetched)
      expect(yield* count(JwksMetrics.unknownKidRefetches, { source })).toBe(0)
      expect(yield* count(JwksMetrics.unknownKidThrottled, { source })).toBe(1)
      expect(logs.entries.map(({ annotations, level, message }) => [level, message, annotations.kid])).toEqual([
        ["DEBUG", "Unknown kid: refetch held back by the failure backoff", "new"]
      ])
      // Once the backoff allows it, the kid refetches.
      yield* TestClock.adjust("2 minutes")
      yield* idp.setFault(undefined)
      yield* Effect.flip(validator.validate(yield* idp.sign({}, { kid: "newer", key: "unpublished" })))
      expect(yield* count(JwksMetrics.unknownKidRefetches, { source })).toBe(1)
    }).pipe(Logger.withMinimumLogLevel(LogLevel.None)))
})
