/**
 * When a loaded key set stops being fresh. A strategy is a `Schedule`: it is stepped once when a key set is loaded
 * (which starts its clock) and once for every validation the set serves successfully, and the set is fresh while a
 * step taken now would continue. The built-in strategies also carry their limits, which the cache reads on the hot
 * path instead of stepping the schedule (the two agree; the test suite checks it).
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as HashSet from "effect/HashSet"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as ConfigInternal from "./internal/config.js"

/**
 * @since 0.1.0
 * @category models
 * @example
 * ```ts
 * import * as CacheStrategy from "effect-jwks/CacheStrategy"
 * import * as JwksCache from "effect-jwks/JwksCache"
 *
 * // A strategy object in place of the `strategy`, `interval` and `usages` settings.
 * const strategy: CacheStrategy.CacheStrategy = CacheStrategy.time("15 minutes")
 * const CacheLive = JwksCache.layer({ cacheStrategy: strategy })
 * ```
 */
export interface CacheStrategy {
  readonly _tag: "Time" | "Usage" | "Both" | "Custom"
  /** Stepped at load and once per successful validation; the set is fresh while it continues. */
  readonly schedule: Schedule.Schedule<unknown, unknown>
  /** The lifetime of a loaded set, when the strategy has one: background refresh is timed from it. */
  readonly interval: Duration.Duration | undefined
  /** How many successful validations one loaded set serves, when the strategy counts them. */
  readonly usages: number | undefined
}

/**
 * The name of a built-in strategy, as read from the environment.
 *
 * @since 0.1.0
 * @category models
 * @example
 * ```ts
 * import * as CacheStrategy from "effect-jwks/CacheStrategy"
 *
 * // A command-line flag, checked before it becomes a setting.
 * const kinds: ReadonlyArray<CacheStrategy.Kind> = ["time", "usage", "both"]
 * const kind = kinds.find((k) => k === process.argv[2]) ?? CacheStrategy.defaults.strategy
 * const strategy = CacheStrategy.fromSettings({ strategy: kind, interval: "10 minutes" })
 * ```
 */
export type Kind = "time" | "usage" | "both"

/**
 * The seed's defaults: refresh after 20 minutes or 1000 validations, whichever comes first.
 *
 * @since 0.1.0
 * @category defaults
 * @example
 * ```ts
 * import { Duration } from "effect"
 * import * as CacheStrategy from "effect-jwks/CacheStrategy"
 *
 * console.log(Duration.format(CacheStrategy.defaults.interval)) // "20m"
 * ```
 */
export const defaults = {
  strategy: "both" as Kind,
  interval: Duration.minutes(20),
  usages: 1000
} as const

/**
 * A set loaded at `t` is fresh until `t + interval` (exclusive), however many validations it serves:
 * `Schedule.upTo(Schedule.forever, interval)`.
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * ```ts
 * import * as CacheStrategy from "effect-jwks/CacheStrategy"
 *
 * const strategy = CacheStrategy.time("10 minutes")
 * ```
 */
export const time = (interval: Duration.DurationInput): CacheStrategy => {
  const decoded = Duration.decode(interval)
  return { _tag: "Time", schedule: timeSchedule(decoded), interval: decoded, usages: undefined }
}

/**
 * A set serves `usages` successful validations (tokens that fail verification do not count), however long that
 * takes. Exactly that many when validations are answered from memory; with a `check` hook that runs as an effect,
 * the validations already past their key lookup when the last use is counted are served too. The schedule is
 * `Schedule.recurs(usages + 1)`: one step for the load, one per validation.
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * ```ts
 * import * as CacheStrategy from "effect-jwks/CacheStrategy"
 *
 * const strategy = CacheStrategy.usage(5000)
 * ```
 */
export const usage = (usages: number): CacheStrategy => ({
  _tag: "Usage",
  schedule: usageSchedule(usages),
  interval: undefined,
  usages
})

/**
 * Fresh while both limits hold: the set is refreshed at whichever comes first. The default strategy.
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * ```ts
 * import * as CacheStrategy from "effect-jwks/CacheStrategy"
 *
 * const strategy = CacheStrategy.both({ interval: "20 minutes", usages: 1000 })
 * ```
 */
export const both = (
  options: { readonly interval: Duration.DurationInput; readonly usages: number }
): CacheStrategy => {
  const interval = Duration.decode(options.interval)
  return {
    _tag: "Both",
    schedule: Schedule.intersect(timeSchedule(interval), usageSchedule(options.usages)),
    interval,
    usages: options.usages
  }
}

/**
 * Any `Schedule` as a strategy. Pass `interval`, the longest life of a set, so that background refresh knows when to
 * run (at its threshold of `interval`); without it only expiry (found by a validation) triggers a refresh. Past
 * `interval` a set is not fresh, whatever the schedule says, and stale serving (`maxStale`) counts from then at the
 * latest. A schedule that throws (or fails, or ends in an interruption of its own) is not asked again for that set,
 * which then lives as under a schedule that always continues, until `interval` (without one, `defaults.interval` from
 * its load), with a warning; one that throws or fails at its load step fails that fetch instead (`Unreachable`, "the
 * fetch died"), and so every fetch while it does. One done at its load step (`Schedule.stop`, `Schedule.recurs(0)`)
 * is never fresh: every lookup fetches (one at a time).
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * ```ts
 * import { Schedule } from "effect"
 * import * as CacheStrategy from "effect-jwks/CacheStrategy"
 *
 * // What `CacheStrategy.both` does, as a schedule of your own: 5 minutes or 10 validations, whichever comes first
 * // (one step for the load, one per validation).
 * const strategy = CacheStrategy.fromSchedule(
 *   Schedule.intersect(Schedule.upTo(Schedule.forever, "5 minutes"), Schedule.recurs(11)),
 *   { interval: "5 minutes" }
 * )
 * ```
 */
export const fromSchedule = (
  schedule: Schedule.Schedule<unknown, unknown>,
  options?: { readonly interval?: Duration.DurationInput | undefined }
): CacheStrategy => ({
  _tag: "Custom",
  schedule,
  interval: options?.interval === undefined ? undefined : Duration.decode(options.interval),
  usages: undefined
})

const timeSchedule = (interval: Duration.Duration) => Schedule.upTo(Schedule.forever, interval)
const usageSchedule = (usages: number) => Schedule.recurs(usages + 1)

/**
 * The settings that pick a built-in strategy.
 *
 * @since 0.1.0
 * @category models
 * @example
 * ```ts
 * import * as CacheStrategy from "effect-jwks/CacheStrategy"
 *
 * // Refresh after every 500 successful validations, however long that takes.
 * const settings: CacheStrategy.Settings = { strategy: "usage", usages: 500 }
 * ```
 */
export interface Settings {
  readonly strategy?: Kind | undefined
  readonly interval?: Duration.DurationInput | undefined
  readonly usages?: number | undefined
}

/**
 * Checks the settings and builds their strategy: `interval` must be from 1 millisecond to 100 years, `usages` a whole
 * number of at least 1. A bad setting is a `ConfigError` naming it.
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * ```ts
 * import * as CacheStrategy from "effect-jwks/CacheStrategy"
 *
 * const strategy = CacheStrategy.fromSettings({ strategy: "time", interval: "5 minutes" })
 * // Either.right({ _tag: "Time", ... })
 * ```
 */
export const fromSettings = (settings: Settings): Either.Either<CacheStrategy, ConfigError.ConfigError> => {
  // From JavaScript or parsed JSON, anything may come: not an object is no settings.
  if (settings !== undefined && (typeof settings !== "object" || settings === null)) {
    return Either.left(ConfigError.InvalidData([], "expected the strategy's settings ({ strategy, interval, usages })"))
  }
  const kind = settings?.strategy ?? defaults.strategy
  if (kind !== "time" && kind !== "usage" && kind !== "both") {
    return Either.left(ConfigError.InvalidData(["strategy"], `expected "time", "usage" or "both", got ${kind}`))
  }
  // Refusing what the library's other durations refuse (a negative part of a [seconds, nanos] pair, say).
  const decoded = settings?.interval === undefined
    ? Option.some(defaults.interval)
    : ConfigInternal.decodeDuration(settings.interval)
  if (Option.isNone(decoded) || !isInterval(decoded.value)) return Either.left(badInterval([]))
  const interval = decoded.value
  const usages = settings?.usages ?? defaults.usages
  if (!isUsages(usages)) return Either.left(badUsages([], usages))
  switch (kind) {
    case "time":
      return Either.right(time(interval))
    case "usage":
      return Either.right(usage(usages))
    case "both":
      return Either.right(both({ interval: interval, usages }))
  }
}

// At least a millisecond: timers fire no sooner, so a shorter life would be refetched in a loop.
const isInterval = (interval: Duration.Duration): boolean =>
  Duration.isFinite(interval) && Duration.toMillis(interval) >= 1 &&
  Duration.toMillis(interval) <= ConfigInternal.maxDurationMillis
const isUsages = (usages: number): boolean => Number.isSafeInteger(usages) && usages >= 1
const badInterval = (path: ReadonlyArray<string>) =>
  ConfigError.InvalidData([...path, "interval"], "expected a duration from 1 millisecond to 100 years")
const badUsages = (path: ReadonlyArray<string>, usages: unknown) =>
  ConfigError.InvalidData([...path, "usages"], `expected a whole number of at least 1, got ${String(usages)}`)

/**
 * @internal
 * Checks the limits a strategy carries, as {@link fromSettings} checks settings: the constructors take any value, and
 * a zero interval would set the background fiber fetching in a loop, an infinite one break the status's dates, and
 * `usage(NaN)` be fresh forever on the fast path while its schedule says never.
 */
export const check = (
  strategy: CacheStrategy,
  path: ReadonlyArray<string> = []
): Either.Either<CacheStrategy, ConfigError.ConfigError> =>
  !isStrategy(strategy)
    ? Either.left(
      ConfigError.InvalidData(
        [...path],
        "expected a CacheStrategy (time, usage, both or fromSchedule; for \"time\" and the like, give `strategy`)"
      )
    )
    : strategy.interval !== undefined && !isInterval(strategy.interval)
    ? Either.left(badInterval(path))
    : strategy.usages !== undefined && !isUsages(strategy.usages)
    ? Either.left(badUsages(path, strategy.usages))
    : Either.right(strategy)

/**
 * Whether `value` is a strategy built by this module's constructors (or shaped as one): a known kind, a schedule, an
 * interval that is a `Duration` and usages that are a number, where given. A string (`"time"`: `strategy` meant) or
 * a plain object from JSON is none: taken as one, it would never expire.
 */
const isStrategy = (value: unknown): value is CacheStrategy => {
  if (typeof value !== "object" || value === null) return false
  const { _tag, interval, schedule, usages } = value as Record<string, unknown>
  return (_tag === "Time" || _tag === "Usage" || _tag === "Both" || _tag === "Custom") &&
    Schedule.isSchedule(schedule) &&
    (interval === undefined || Duration.isDuration(interval)) &&
    (usages === undefined || typeof usages === "number") &&
    (_tag === "Custom" || (_tag === "Usage" ? usages !== undefined : interval !== undefined)) &&
    (_tag !== "Both" || usages !== undefined)
}

/**
 * How the strategy's settings are read, each from its variable: here and in `JwksCache.config`.
 *
 * @internal
 */
export const readers = {
  strategy: Config.literal("time", "usage", "both")("STRATEGY"),
  interval: ConfigInternal.duration("INTERVAL"),
  usages: ConfigInternal.number("USAGES", true)
}

/**
 * Reads the strategy from configuration (by default the environment): `STRATEGY` (`time` | `usage` | `both`),
 * `INTERVAL` (a duration such as `20 minutes`) and `USAGES`, each optional. Nest it to add a prefix, as
 * `JwksCache.config` does with `JWKS_CACHE`.
 *
 * @since 0.1.0
 * @category config
 * @example
 * ```ts
 * import { Config, Effect } from "effect"
 * import * as CacheStrategy from "effect-jwks/CacheStrategy"
 *
 * // JWKS_CACHE_STRATEGY=time JWKS_CACHE_INTERVAL="5 minutes"
 * const strategy = Effect.runSync(Config.nested(CacheStrategy.config, "JWKS_CACHE"))
 * ```
 */
export const config: Config.Config<CacheStrategy> = Config.all({
  strategy: readers.strategy.pipe(Config.withDefault(defaults.strategy)),
  interval: readers.interval.pipe(Config.withDefault(defaults.interval)),
  usages: readers.usages.pipe(Config.withDefault(defaults.usages))
}).pipe(
  Config.mapOrFail((settings) =>
    Either.mapLeft(
      fromSettings(settings),
      ConfigInternal.renameInvalid({ strategy: ["STRATEGY"], interval: ["INTERVAL"], usages: ["USAGES"] })
    )
  )
)

/**
 * Whether a set loaded at `loadedAt` that has served `served` validations is still fresh at `now`, for the built-in
 * strategies (`undefined` for a custom one, which must be stepped).
 *
 * @internal
 */
export const isFreshFast = (
  strategy: CacheStrategy,
  loadedAt: number,
  served: number,
  now: number
): boolean | undefined => {
  if (strategy._tag === "Custom") return undefined
  if (strategy.interval !== undefined && now - loadedAt >= Duration.toMillis(strategy.interval)) return false
  if (strategy.usages !== undefined && served >= strategy.usages) return false
  return true
}

/**
 * A running strategy for one loaded set: its schedule state, stepped without sleeping.
 *
 * @since 0.1.0
 * @category models
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import type * as CacheStrategy from "effect-jwks/CacheStrategy"
 *
 * // A key store of your own, asking the strategy whether its loaded set may serve one more validation.
 * declare const tracker: CacheStrategy.Tracker
 * const serve = Effect.gen(function*() {
 *   if (!(yield* tracker.isFresh(Date.now()))) return "refetch first"
 *   yield* tracker.record(Date.now())
 *   return `served ${tracker.served()} validations`
 * })
 * ```
 */
export interface Tracker {
  /** Whether a step taken at `now` would continue: the set may serve one more validation. */
  readonly isFresh: (now: number) => Effect.Effect<boolean>
  /** Steps the schedule for a validation served at `now`. */
  readonly record: (now: number) => Effect.Effect<void>
  /** Successful validations recorded so far. */
  readonly served: () => number
  /**
   * `isFresh` and `record` without an effect, for the built-in strategies, which need no schedule stepping; `undefined`
   * for a custom strategy.
   */
  readonly unsafe?: { readonly isFresh: (now: number) => boolean; readonly record: () => void } | undefined
}

/**
 * Starts a strategy for a set loaded at `loadedAt`: steps its schedule once for the load. The built-in strategies
 * answer from their limits; a custom one is stepped (`schedule.step`, never its driver, which would sleep).
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import * as CacheStrategy from "effect-jwks/CacheStrategy"
 *
 * const program = Effect.gen(function*() {
 *   const tracker = yield* CacheStrategy.track(CacheStrategy.usage(2), Date.now())
 *   yield* tracker.record(Date.now())
 *   yield* tracker.record(Date.now())
 *   return yield* tracker.isFresh(Date.now()) // false: the set has served its 2 validations
 * })
 * ```
 */
export const track = (strategy: CacheStrategy, loadedAt: number): Effect.Effect<Tracker> => {
  let served = 0
  if (strategy._tag !== "Custom") {
    const unsafe = {
      isFresh: (now: number) => isFreshFast(strategy, loadedAt, served, now) === true,
      record: () => {
        served++
      }
    }
    return Effect.succeed<Tracker>({
      isFresh: (now) => Effect.sync(() => unsafe.isFresh(now)),
      record: () => Effect.sync(unsafe.record),
      served: () => served,
      unsafe
    })
  }
  // A custom strategy's interval is its longest life: past it the set is not fresh, whatever the schedule says (the
  // background refresh, the status's expiresAt and stale serving are all timed from it).
  const endsAt = strategy.interval === undefined
    ? Number.POSITIVE_INFINITY
    : loadedAt + Duration.toMillis(strategy.interval)
  // A broken schedule (see `stepper`) without an interval lives as the default one: a withdrawn key is not served for
  // good because of a bug in the app's schedule.
  const brokenEndsAt = strategy.interval === undefined ? loadedAt + Duration.toMillis(defaults.interval) : endsAt
  return stepper(strategy.schedule, loadedAt, brokenEndsAt).pipe(
    Effect.map((s): Tracker => ({
      isFresh: (now) => now >= endsAt ? Effect.succeed(false) : s.peek(now),
      record: (now) =>
        Effect.map(s.commit(now), () => {
          served++
        }),
      served: () => served
    }))
  )
}

/**
 * Steps a schedule by hand: once at `loadedAt`, then `peek` asks whether a step at `now` would continue and `commit`
 * takes it. Exported for the tests that check the fast path against the real schedule.
 *
 * @internal
 */
export const stepper = (
  schedule: Schedule.Schedule<unknown, unknown>,
  loadedAt: number,
  brokenEndsAt = Number.POSITIVE_INFINITY
) =>
  Effect.gen(function*() {
    // Whatever it ends in at the load's step (a throw, a failure from JavaScript) fails that fetch as "the fetch died".
    const [initial, , decision] = yield* Effect.orDie(schedule.step(loadedAt, undefined, schedule.initial))
    let state = initial
    let done = decision._tag === "Done"
    // One step at a time: a step is an effect, and two validations recorded at once would otherwise both step from
    // the same state, one of them lost (the set then serving more validations than the schedule allows).
    const lock = yield* Effect.makeSemaphore(1)
    // The schedule is the app's code, stepped on every lookup. One that throws (or fails: JavaScript has no types) is
    // not stepped again for this set, which then lives as under a schedule that always continues, until
    // `brokenEndsAt`: the strategy's `interval`, which times its background refresh, its status and its stale serving
    // as before, or without one the default interval (logged once). Neither every lookup dying, nor, were the set
    // taken as expired, every lookup fetching it anew (a forged token's too).
    let broken = false
    const breaks = (defect: unknown) =>
      Effect.suspend(() => {
        if (broken) return Effect.void
        broken = true
        return Effect.logWarning(
          "Cache strategy's schedule threw: it is not asked again for this key set",
          Cause.die(defect)
        )
      })
    /**
     * `self`, or `then` once the schedule has broken: it threw, failed or ended in an interruption of its own (it
     * awaited something interrupted). An interruption of the caller's passes through: one its fiber received while it
     * could be interrupted, that ended the step. The cause is read in any case (`self` alone is interruptible), so that
     * a step that threw as its caller went away breaks the schedule, and the caller still ends interrupted.
     */
    const brokenBy = <A>(then: Effect.Effect<A>) => (self: Effect.Effect<A, unknown>): Effect.Effect<A> =>
      Effect.checkInterruptible((interruptible) =>
        Effect.uninterruptibleMask((restore) =>
          Effect.catchAllCause(restore(self), (cause) =>
            Effect.flatMap(
              Effect.descriptor,
              (fiber) =>
                interruptible && Cause.isInterruptedOnly(cause) &&
                  HashSet.some(Cause.interruptors(cause), (id) => HashSet.has(fiber.interruptors, id))
                  ? Effect.interrupt
                  : Effect.zipRight(breaks(Cause.isEmpty(cause) ? "an empty cause" : Cause.squash(cause)), then)
            ))
        )
      )
    const peek = (now: number): Effect.Effect<boolean> =>
      Effect.suspend(() =>
        broken
          ? Effect.succeed(now < brokenEndsAt)
          : done
          ? Effect.succeed(false)
          : Effect.map(schedule.step(now, undefined, state), ([, , decision]) => decision._tag === "Continue")
      ).pipe(brokenBy(Effect.suspend(() => peek(now))))
    const commit = (now: number): Effect.Effect<void> =>
      lock.withPermits(1)(
        Effect.suspend(() =>
          done || broken
            ? Effect.void
            : Effect.map(schedule.step(now, undefined, state), ([next, , decision]) => {
              state = next
              done = decision._tag === "Done"
            })
        ).pipe(brokenBy(Effect.void))
      )
    return { peek, commit }
  })
