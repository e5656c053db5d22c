import { describe, expect, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as fc from "effect/FastCheck"
import * as Fiber from "effect/Fiber"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as TestClock from "effect/TestClock"
import * as CacheStrategy from "../src/CacheStrategy.js"

/** What the fast path and the stepped schedule say after `served` commits, at `now`. */
const compare = (strategy: CacheStrategy.CacheStrategy) =>
  Effect.gen(function*() {
    const loadedAt = 1_000
    const stepper = yield* CacheStrategy.stepper(strategy.schedule, loadedAt)
    let served = 0
    const at = (now: number) =>
      Effect.map(stepper.peek(now), (slow) => {
        const fast = CacheStrategy.isFreshFast(strategy, loadedAt, served, now)
        expect(fast).toBe(slow)
        return slow
      })
    const commit = (now: number) =>
      Effect.map(stepper.commit(now), () => {
        served++
      })
    return { loadedAt, at, commit }
  })

/** A schedule fine at the load's step that runs `step` at every later one (a bug of the app's, in these tests). */
const afterLoad = (step: () => Effect.Effect<boolean>) =>
  Schedule.checkEffect(Schedule.count, (_, n) => n < 1 ? Effect.succeed(true) : step())

const throws = () =>
  Effect.sync((): boolean => {
    throw new Error("a bug in the app's schedule")
  })

/** Tracks `schedule` as a custom strategy of a 1-hour interval, loaded at 0. */
const trackHour = (schedule: Schedule.Schedule<unknown, unknown>) =>
  CacheStrategy.track(CacheStrategy.fromSchedule(schedule, { interval: "1 hour" }), 0)

describe("CacheStrategy", () => {
  describe("constructors", () => {
    it("time has an interval and no usage limit", () => {
      const strategy = CacheStrategy.time("10 minutes")
      expect(strategy._tag).toBe("Time")
      expect(Duration.toMillis(strategy.interval!)).toBe(600_000)
      expect(strategy.usages).toBeUndefined()
    })

    it("usage has a usage limit and no interval", () => {
      const strategy = CacheStrategy.usage(5000)
      expect(strategy._tag).toBe("Usage")
      expect(strategy.usages).toBe(5000)
      expect(strategy.interval).toBeUndefined()
    })

    it("both has the two", () => {
      const strategy = CacheStrategy.both({ interval: Duration.seconds(90), usages: 7 })
      expect(strategy._tag).toBe("Both")
      expect(Duration.toMillis(strategy.interval!)).toBe(90_000)
      expect(strategy.usages).toBe(7)
    })

    it("fromSchedule keeps the schedule, and an interval only when given", () => {
      const schedule = Schedule.recurs(3)
      const plain = CacheStrategy.fromSchedule(schedule)
      expect(plain._tag).toBe("Custom")
      expect(plain.schedule).toBe(schedule)
      expect(plain.interval).toBeUndefined()
      expect(plain.usages).toBeUndefined()
      const timed = CacheStrategy.fromSchedule(schedule, { interval: "5 minutes" })
      expect(Duration.toMillis(timed.interval!)).toBe(300_000)
      expect(CacheStrategy.isFreshFast(timed, 0, 0, 0)).toBeUndefined()
    })

    it("defaults are both, 20 minutes, 1000 usages", () => {
      expect(CacheStrategy.defaults.strategy).toBe("both")
      expect(Duration.toMillis(CacheStrategy.defaults.interval)).toBe(1_200_000)
      expect(CacheStrategy.defaults.usages).toBe(1000)
    })
  })

  describe("the fast path agrees with the schedule", () => {
    it.effect("time expires exactly at the interval, however much it serves", () =>
      Effect.gen(function*() {
        const { at, commit, loadedAt } = yield* compare(CacheStrategy.time("100 millis"))
        expect(yield* at(loadedAt)).toBe(true)
        for (let i = 0; i < 50; i++) yield* commit(loadedAt + 10)
        expect(yield* at(loadedAt + 99)).toBe(true)
        expect(yield* at(loadedAt + 100)).toBe(false)
        expect(yield* at(loadedAt + 101)).toBe(false)
      }))

    it.effect("usage(n) serves exactly n, however long it takes", () =>
      Effect.gen(function*() {
        const { at, commit, loadedAt } = yield* compare(CacheStrategy.usage(3))
        const later = loadedAt + Duration.toMillis("365 days")
        expect(yield* at(later)).toBe(true)
        yield* commit(later)
        yield* commit(later)
        expect(yield* at(later)).toBe(true)
        yield* commit(later)
        expect(yield* at(later)).toBe(false)
        expect(yield* at(later + 1)).toBe(false)
      }))

    it.effect("usage(1) serves one validation", () =>
      Effect.gen(function*() {
        const { at, commit, loadedAt } = yield* compare(CacheStrategy.usage(1))
        expect(yield* at(loadedAt)).toBe(true)
        yield* commit(loadedAt)
        expect(yield* at(loadedAt)).toBe(false)
      }))

    it.effect("both goes stale at whichever limit comes first", () =>
      Effect.gen(function*() {
        const byUse = yield* compare(CacheStrategy.both({ interval: "1 second", usages: 2 }))
        yield* byUse.commit(byUse.loadedAt)
        expect(yield* byUse.at(byUse.loadedAt + 1)).toBe(true)
        yield* byUse.commit(byUse.loadedAt + 1)
        expect(yield* byUse.at(byUse.loadedAt + 2)).toBe(false)

        const byTime = yield* compare(CacheStrategy.both({ interval: "1 second", usages: 2 }))
        yield* byTime.commit(byTime.loadedAt)
        expect(yield* byTime.at(byTime.loadedAt + 999)).toBe(true)
        expect(yield* byTime.at(byTime.loadedAt + 1000)).toBe(false)
      }))

    it.effect("validations recorded at once each take their own step of a custom schedule", () =>
      Effect.gen(function*() {
        // Four steps, the first taken at load; its step yields to other fibers between reading its state and answering.
        const schedule = Schedule.recurs(3).pipe(Schedule.tapOutput(() => Effect.yieldNow()))
        const one = yield* CacheStrategy.stepper(schedule, 0)
        yield* one.commit(1)
        const two = yield* CacheStrategy.stepper(schedule, 0)
        yield* Effect.all([two.commit(1), two.commit(1)], { concurrency: "unbounded", discard: true })
        // After one validation the set serves one more; after two at once, none (not one more from a lost step).
        expect({ one: yield* one.peek(2), two: yield* two.peek(2) }).toEqual({ one: true, two: false })
      }))

    const strategyArbitrary = fc.oneof(
      fc.integer({ min: 1, max: 60 }).map((ms) => CacheStrategy.time(Duration.millis(ms))),
      fc.integer({ min: 1, max: 6 }).map((n) => CacheStrategy.usage(n)),
      fc.record({ ms: fc.integer({ min: 1, max: 60 }), n: fc.integer({ min: 1, max: 6 }) }).map(({ ms, n }) =>
        CacheStrategy.both({ interval: Duration.millis(ms), usages: n })
      )
    )
    const stepArbitrary = fc.record({ advance: fc.nat({ max: 15 }), commit: fc.boolean() })

    it.effect.prop(
      "on random sequences of time advances, commits and peeks",
      {
        strategy: strategyArbitrary,
        loadedAt: fc.nat({ max: 10_000_000 }),
        steps: fc.array(stepArbitrary, { maxLength: 40 })
      },
      ({ loadedAt, steps, strategy }) =>
        Effect.gen(function*() {
          const stepper = yield* CacheStrategy.stepper(strategy.schedule, loadedAt)
          let served = 0
          let now = loadedAt
          for (const step of steps) {
            now += step.advance
            const slow = yield* stepper.peek(now)
            expect(CacheStrategy.isFreshFast(strategy, loadedAt, served, now)).toBe(slow)
            if (step.commit) {
              yield* stepper.commit(now)
              served++
            }
          }
          const slow = yield* stepper.peek(now)
          expect(CacheStrategy.isFreshFast(strategy, loadedAt, served, now)).toBe(slow)
        }),
      { fastCheck: { numRuns: 300 } }
    )
  })

  describe("track", () => {
    it.effect("a custom schedule counts what it serves and goes stale when the schedule is done", () =>
      Effect.gen(function*() {
        // One step for the load, then two validations.
        const tracker = yield* CacheStrategy.track(CacheStrategy.fromSchedule(Schedule.recurs(3)), 0)
        expect(tracker.served()).toBe(0)
        expect(yield* tracker.isFresh(0)).toBe(true)
        yield* tracker.record(1)
        expect(tracker.served()).toBe(1)
        expect(yield* tracker.isFresh(2)).toBe(true)
        // Asking does not use it up.
        expect(yield* tracker.isFresh(2)).toBe(true)
        yield* tracker.record(2)
        expect(tracker.served()).toBe(2)
        expect(yield* tracker.isFresh(3)).toBe(false)
      }))

    it.effect("a custom strategy's interval ends its set's life at that very millisecond, as the built-in ones'", () =>
      Effect.gen(function*() {
        const custom = yield* CacheStrategy.track(
          CacheStrategy.fromSchedule(Schedule.forever, { interval: "10 minutes" }),
          1_000
        )
        const time = yield* CacheStrategy.track(CacheStrategy.time("10 minutes"), 1_000)
        for (const tracker of [custom, time]) {
          expect(yield* tracker.isFresh(600_999)).toBe(true)
          expect(yield* tracker.isFresh(601_000)).toBe(false)
        }
      }))

    it.effect("a custom time-bound schedule goes stale at its bound", () =>
      Effect.gen(function*() {
        const strategy = CacheStrategy.fromSchedule(Schedule.upTo(Schedule.forever, "1 second"))
        const tracker = yield* CacheStrategy.track(strategy, 5_000)
        yield* tracker.record(5_500)
        expect(yield* tracker.isFresh(5_999)).toBe(true)
        expect(yield* tracker.isFresh(6_000)).toBe(false)
        expect(tracker.served()).toBe(1)
      }))

    it.effect("a caller's own interruption passes through a broken schedule; a step it cut short still breaks it", () =>
      Effect.gen(function*() {
        // From the second step on: a second's work that cannot be cut short, then a throw.
        const tracker = yield* trackHour(
          afterLoad(() => Effect.uninterruptible(Effect.zipRight(Effect.sleep("1 second"), throws())))
        )
        // A caller that goes away while the step runs ends interrupted, never with the schedule's defect.
        const caller = yield* Effect.fork(tracker.isFresh(1))
        yield* TestClock.adjust("10 millis")
        const interrupting = yield* Effect.fork(Fiber.interrupt(caller))
        yield* TestClock.adjust("1 second")
        const exit = yield* Fiber.join(interrupting)
        expect(Exit.isFailure(exit) && Cause.isInterruptedOnly(exit.cause)).toBe(true)
        // The throw broke the schedule all the same: no more steps (none to wait for), fresh to its interval.
        expect(yield* tracker.isFresh(2_000)).toBe(true)
        // A lookup in a finalizer of an interrupted fiber (nobody can cut it short) gets its answer: `before` runs
        // first, by the fiber that interrupts the caller.
        const inFinalizer = (tracker: CacheStrategy.Tracker, before: Effect.Effect<unknown> = Effect.void) =>
          Effect.gen(function*() {
            let answer: Exit.Exit<boolean> | undefined
            const doomed = yield* Effect.fork(
              Effect.onInterrupt(
                Effect.never,
                () => Effect.map(Effect.exit(tracker.isFresh(1)), (e) => void (answer = e))
              )
            )
            yield* Effect.yieldNow()
            yield* before
            yield* Fiber.interrupt(doomed)
            return answer
          })
        expect(yield* inFinalizer(yield* trackHour(afterLoad(throws)))).toEqual(Exit.succeed(true))
        // The same where the step ends in an interruption by the very fiber that interrupted the caller (it joined a
        // fiber that one interrupted too): the finalizer could not be cut short, so the interruption was the step's.
        const shared = yield* Effect.fork(Effect.as(Effect.never, true))
        const joining = yield* trackHour(afterLoad(() => Fiber.join(shared)))
        expect(yield* inFinalizer(joining, Fiber.interrupt(shared))).toEqual(Exit.succeed(true))
      }).pipe(Logger.withMinimumLogLevel(LogLevel.None)))

    it.effect("a custom schedule that fails at the load's step fails it as one that throws does: a defect", () =>
      Effect.gen(function*() {
        const failing = Schedule.checkEffect(
          Schedule.count,
          (): Effect.Effect<boolean> => Effect.fail("a failure of the app's schedule") as never
        )
        const exit = yield* Effect.exit(CacheStrategy.track(CacheStrategy.fromSchedule(failing), 0))
        expect(Exit.isFailure(exit) && Cause.isDie(exit.cause)).toBe(true)
      }))

    it.effect("a custom schedule done at load is never fresh", () =>
      Effect.gen(function*() {
        const tracker = yield* CacheStrategy.track(CacheStrategy.fromSchedule(Schedule.stop), 0)
        expect(yield* tracker.isFresh(0)).toBe(false)
      }))

    it.effect("a custom schedule that throws or fails is not asked again: fresh to its interval, or the default's", () =>
      Effect.gen(function*() {
        // Fine at the load's step, then broken: a throw, a failure (from JavaScript: schedules' checks fail never), or
        // an interruption of its own (it awaits something interrupted), which is not the lookup's.
        const interrupted = yield* Deferred.make<boolean>()
        yield* Deferred.interrupt(interrupted)
        const broken = (how: "throws" | "fails" | "is interrupted") =>
          afterLoad(() =>
            how === "throws"
              ? throws()
              : how === "fails"
              ? (Effect.fail("a failure of the app's schedule") as never)
              : Deferred.await(interrupted)
          )
        for (const how of ["is interrupted", "fails", "throws"] as const) {
          const bounded = yield* trackHour(broken(how))
          yield* bounded.record(1_000)
          expect(yield* bounded.isFresh(59 * 60_000)).toBe(true)
          expect(yield* bounded.isFresh(60 * 60_000)).toBe(false)
          // Without an interval, not for good: as long as the default interval.
          const unbounded = yield* CacheStrategy.track(CacheStrategy.fromSchedule(broken(how)), 0)
          expect(yield* unbounded.isFresh(1_000)).toBe(true)
          expect(yield* unbounded.isFresh(Duration.toMillis(CacheStrategy.defaults.interval) - 1)).toBe(true)
          expect(yield* unbounded.isFresh(Duration.toMillis(CacheStrategy.defaults.interval))).toBe(false)
        }
      }).pipe(Logger.withMinimumLogLevel(LogLevel.None)))

    it.effect("a built-in strategy counts with its limits", () =>
      Effect.gen(function*() {
        const tracker = yield* CacheStrategy.track(CacheStrategy.both({ interval: "1 minute", usages: 2 }), 1_000)
        expect(yield* tracker.isFresh(1_000)).toBe(true)
        yield* tracker.record(1_000)
        expect(yield* tracker.isFresh(60_999)).toBe(true)
        expect(yield* tracker.isFresh(61_000)).toBe(false)
        yield* tracker.record(2_000)
        expect(tracker.served()).toBe(2)
        expect(yield* tracker.isFresh(2_000)).toBe(false)
      }))

    it.effect("each tracker counts on its own", () =>
      Effect.gen(function*() {
        const strategy = CacheStrategy.usage(1)
        const first = yield* CacheStrategy.track(strategy, 0)
        const second = yield* CacheStrategy.track(strategy, 0)
        yield* first.record(0)
        expect(yield* first.isFresh(0)).toBe(false)
        expect(yield* second.isFresh(0)).toBe(true)
        expect(second.served()).toBe(0)
      }))
  })

  describe("fromSettings", () => {
    it("defaults to both, 20 minutes, 1000 usages", () => {
      const strategy = Either.getOrThrow(CacheStrategy.fromSettings({}))
      expect(strategy._tag).toBe("Both")
      expect(Duration.toMillis(strategy.interval!)).toBe(1_200_000)
      expect(strategy.usages).toBe(1000)
    })

    it("builds the named strategy with only its limits", () => {
      const time = Either.getOrThrow(CacheStrategy.fromSettings({ strategy: "time", interval: "5 minutes" }))
      expect(time._tag).toBe("Time")
      expect(Duration.toMillis(time.interval!)).toBe(300_000)
      expect(time.usages).toBeUndefined()
      const usage = Either.getOrThrow(CacheStrategy.fromSettings({ strategy: "usage", usages: 10 }))
      expect(usage._tag).toBe("Usage")
      expect(usage.usages).toBe(10)
      expect(usage.interval).toBeUndefined()
      const both = Either.getOrThrow(CacheStrategy.fromSettings({ strategy: "both", interval: 1500, usages: 1 }))
      expect(Duration.toMillis(both.interval!)).toBe(1500)
      expect(both.usages).toBe(1)
    })

    it("takes an interval of exactly 100 years (the longest), and refuses a millisecond more", () => {
      const century = 100 * 365.25 * 24 * 60 * 60 * 1000
      const longest = Either.getOrThrow(CacheStrategy.fromSettings({ strategy: "time", interval: century }))
      expect(Duration.toMillis(longest.interval!)).toBe(century)
      expect(Either.getOrThrow(CacheStrategy.check(CacheStrategy.time(Duration.millis(century)))).interval).toEqual(
        Duration.millis(century)
      )
      const over = CacheStrategy.fromSettings({ strategy: "time", interval: century + 1 })
      expect(Either.isLeft(over) && over.left._op === "InvalidData" && over.left.path).toEqual(["interval"])
    })

    const invalid: ReadonlyArray<{ readonly name: string; readonly settings: unknown; readonly path: string }> = [
      { name: "interval 0", settings: { interval: 0 }, path: "interval" },
      { name: "interval \"0 seconds\"", settings: { interval: "0 seconds" }, path: "interval" },
      { name: "a negative interval", settings: { interval: -5 }, path: "interval" },
      { name: "a negative interval string", settings: { interval: "-5 seconds" }, path: "interval" },
      { name: "interval \"nonsense\"", settings: { interval: "nonsense" }, path: "interval" },
      { name: "interval Infinity", settings: { interval: Infinity }, path: "interval" },
      { name: "interval NaN", settings: { interval: NaN }, path: "interval" },
      { name: "an infinite Duration", settings: { interval: Duration.infinity }, path: "interval" },
      { name: "usages 0", settings: { usages: 0 }, path: "usages" },
      { name: "usages -1", settings: { usages: -1 }, path: "usages" },
      { name: "usages 1.5", settings: { usages: 1.5 }, path: "usages" },
      { name: "usages NaN", settings: { usages: NaN }, path: "usages" },
      { name: "usages Infinity", settings: { usages: Infinity }, path: "usages" },
      { name: "strategy \"x\"", settings: { strategy: "x" }, path: "strategy" },
      { name: "a bad interval for usage", settings: { strategy: "usage", interval: 0 }, path: "interval" }
    ]

    it("takes no settings (undefined, from JavaScript) as the defaults, and anything else but an object as none", () => {
      const none = Either.getOrThrow(CacheStrategy.fromSettings(undefined as unknown as CacheStrategy.Settings))
      expect(none).toMatchObject({ _tag: "Both", usages: CacheStrategy.defaults.usages })
      for (const settings of [null, "time", 5]) {
        const result = CacheStrategy.fromSettings(settings as unknown as CacheStrategy.Settings)
        expect(Either.isLeft(result) && ConfigError.isInvalidData(result.left)).toBe(true)
      }
    })

    it.each(invalid)("refuses $name with a ConfigError naming it", ({ path, settings }) => {
      const result = CacheStrategy.fromSettings(settings as CacheStrategy.Settings)
      if (Either.isRight(result)) return expect.fail(`expected a ConfigError, got ${result.right._tag}`)
      expect(ConfigError.isInvalidData(result.left)).toBe(true)
      expect(result.left).toMatchObject({ path: [path] })
    })
  })

  describe("config", () => {
    const read = (entries: ReadonlyArray<readonly [string, string]>) =>
      Effect.exit(
        Effect.withConfigProvider(
          Config.nested(CacheStrategy.config, "JWKS_CACHE"),
          ConfigProvider.fromMap(new Map(entries), { pathDelim: "_" })
        )
      )

    it.effect("reads nothing as the defaults", () =>
      Effect.gen(function*() {
        const strategy = yield* yield* read([])
        expect(strategy._tag).toBe("Both")
        expect(Duration.toMillis(strategy.interval!)).toBe(1_200_000)
        expect(strategy.usages).toBe(1000)
      }))

    it.effect("reads JWKS_CACHE_STRATEGY, _INTERVAL and _USAGES", () =>
      Effect.gen(function*() {
        const time = yield* yield* read([["JWKS_CACHE_STRATEGY", "time"], ["JWKS_CACHE_INTERVAL", "5 minutes"]])
        expect(time._tag).toBe("Time")
        expect(Duration.toMillis(time.interval!)).toBe(300_000)
        const usage = yield* yield* read([["JWKS_CACHE_STRATEGY", "usage"], ["JWKS_CACHE_USAGES", "25"]])
        expect(usage._tag).toBe("Usage")
        expect(usage.usages).toBe(25)
        const both = yield* yield* read([["JWKS_CACHE_INTERVAL", "30 seconds"], ["JWKS_CACHE_USAGES", "7"]])
        expect(both._tag).toBe("Both")
        expect(Duration.toMillis(both.interval!)).toBe(30_000)
        expect(both.usages).toBe(7)
      }))

    it.effect("a value out of range is a ConfigError at the variable that holds it", () =>
      Effect.gen(function*() {
        for (
          const [name, value, at] of [
            ["JWKS_CACHE_INTERVAL", "0 seconds", "JWKS_CACHE.INTERVAL"],
            ["JWKS_CACHE_USAGES", "0", "JWKS_CACHE.USAGES"]
          ] as const
        ) {
          const exit = yield* read([[name, value]])
          expect(Exit.isFailure(exit) && String(Cause.squash(exit.cause)), `${name}=${value}`).toContain(`at ${at}:`)
        }
      }))

    it.effect("ignores settings outside its prefix", () =>
      Effect.gen(function*() {
        const strategy = yield* yield* read([["STRATEGY", "usage"], ["OTHER_CACHE_USAGES", "3"]])
        expect(strategy._tag).toBe("Both")
        expect(strategy.usages).toBe(1000)
      }))

    it.effect.each(
      [
        ["JWKS_CACHE_STRATEGY", "x"],
        ["JWKS_CACHE_INTERVAL", "nonsense"],
        ["JWKS_CACHE_INTERVAL", "0 seconds"],
        ["JWKS_CACHE_INTERVAL", "-1 minutes"],
        ["JWKS_CACHE_USAGES", "0"],
        ["JWKS_CACHE_USAGES", "-1"],
        ["JWKS_CACHE_USAGES", "1.5"],
        ["JWKS_CACHE_USAGES", "many"]
      ] as const
    )("fails on %s=%s", ([key, value]) =>
      Effect.gen(function*() {
        const exit = yield* read([[key, value]])
        if (Exit.isSuccess(exit)) return expect.fail(`expected a ConfigError, got ${exit.value._tag}`)
        expect(Cause.isDie(exit.cause)).toBe(false)
        expect(Cause.failureOption(exit.cause).pipe(Option.map(ConfigError.isConfigError))).toEqual(Option.some(true))
      }))
  })
})
