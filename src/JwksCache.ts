/**
 * The key cache: the current key set of one source, kept fresh by its strategy and a background fiber, shared by
 * every validation.
 *
 * - **Fast path**: a fresh set answers from memory; nothing waits (`unsafeGet` answers without even an effect).
 * - **Stable keys**: a refresh that publishes a key unchanged keeps the very same `Jwk.Key` (see `Jwk.importKeySet`).
 * - **Single flight**: callers that need a refresh share one fetch, however many they are.
 * - **Background refresh**: a fiber in the layer's scope refreshes at `backgroundRefreshThreshold` of the set's
 *   lifetime (16 minutes of 20 by default), and again after every refresh, success or failure. While nobody waits for
 *   it, it gives the event loop back between its steps (before the fetch, before the request, after the answer, after
 *   its body, after decoding, after the key import): a validation that arrives meanwhile waits for one step at most.
 * - **Unknown `kid`**: a token signed by a key the set lacks triggers one refetch (a rotation), throttled to one per
 *   `unknownKidThrottle` so that forged kids cannot storm the identity provider.
 * - **Backoff**: after a failed fetch nobody fetches again before the `retry` schedule allows it.
 * - **Stale-if-error**: when fresh keys cannot be had, the last good set serves up to `maxStale` past its expiry.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as FiberRef from "effect/FiberRef"
import { globalValue } from "effect/GlobalValue"
import * as HashSet from "effect/HashSet"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as MutableRef from "effect/MutableRef"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Random from "effect/Random"
import * as Schedule from "effect/Schedule"
import * as ScheduleDecision from "effect/ScheduleDecision"
import * as ScheduleInterval from "effect/ScheduleInterval"
import * as ScheduleIntervals from "effect/ScheduleIntervals"
import * as Scope from "effect/Scope"
import * as Tracer from "effect/Tracer"
import * as CacheStrategy from "./CacheStrategy.js"
import * as ConfigInternal from "./internal/config.js"
import * as MemoryAnswers from "./internal/memoryAnswers.js"
import * as Pace from "./internal/pace.js"
import { shownKid } from "./internal/printable.js"
import * as Jwk from "./Jwk.js"
import { JwksError } from "./JwksError.js"
import * as JwksMetrics from "./JwksMetrics.js"
import { JwksSource, type Service as Source } from "./JwksSource.js"

/**
 * @since 0.1.0
 * @category models
 * @example
 * ```ts
 * import { Schedule } from "effect"
 * import * as JwksCache from "effect-jwks/JwksCache"
 *
 * const options: JwksCache.Options = {
 *   strategy: "time",
 *   interval: "10 minutes",
 *   maxStale: "4 hours",
 *   retry: Schedule.spaced("30 seconds"),
 *   algorithms: ["RS256"]
 * }
 * ```
 */
export interface Options extends CacheStrategy.Settings {
  /** A strategy object overrides `strategy`, `interval` and `usages`. */
  readonly cacheStrategy?: CacheStrategy.CacheStrategy | undefined
  /** Refresh ahead of expiry in a background fiber. Default `true`. */
  readonly backgroundRefresh?: boolean | undefined
  /** The fraction of the lifetime (interval and usages) at which the background refresh runs. Default 0.8. */
  readonly backgroundRefreshThreshold?: number | undefined
  /**
   * The background refresh runs up to this fraction earlier, at random, so a fleet does not refresh in step. Default
   * 0.05.
   */
  readonly backgroundRefreshJitter?: number | undefined
  /** How long past its expiry the last good set may serve while no fresh one can be had. Default 1 hour. */
  readonly maxStale?: Duration.DurationInput | undefined
  /** At most one refetch for unknown key ids per this window. Default 30 seconds. */
  readonly unknownKidThrottle?: Duration.DurationInput | undefined
  /**
   * When to try again after a failed fetch. Default: exponential from 1 second, doubling, capped at 5 minutes, then
   * jittered by ±20%, so 4 to 6 minutes at most. A schedule of yours that ends is started over; where it gives no
   * delay even so (done from its start for this error, or "at once"), or its step throws, fails or ends in an
   * interruption of its own (logged as a warning), the default one stands in for that attempt. A 429 or 503 answer's
   * `Retry-After` is waited for too, up to 5 minutes but no longer than the keys held can still serve (fresh, then
   * stale within `maxStale`), 30 seconds at least: the next attempt is the later of the two.
   */
  readonly retry?: Schedule.Schedule<unknown, JwksError> | undefined
  /**
   * Import keys for these algorithms only. Default: all of `Jwk.Algorithm`. A validator over the cache
   * (`TokenValidator.fromCache`) may allow no other: `TokenValidator.make` refuses one that does with a `ConfigError`.
   */
  readonly algorithms?: ReadonlyArray<Jwk.Algorithm> | undefined
}

/**
 * The seed's defaults, and ours for what the seed did not have.
 *
 * @since 0.1.0
 * @category defaults
 * @example
 * ```ts
 * import { Duration } from "effect"
 * import * as JwksCache from "effect-jwks/JwksCache"
 *
 * console.log(Duration.toMinutes(JwksCache.defaults.maxStale)) // 60
 * ```
 */
export const defaults = {
  ...CacheStrategy.defaults,
  backgroundRefresh: true,
  backgroundRefreshThreshold: 0.8,
  backgroundRefreshJitter: 0.05,
  maxStale: Duration.hours(1),
  unknownKidThrottle: Duration.seconds(30),
  retry: Schedule.exponential("1 second", 2).pipe(
    Schedule.union(Schedule.spaced("5 minutes")),
    Schedule.jittered
  ) as Schedule.Schedule<unknown, JwksError>
} as const

/**
 * The pauses before the background fiber starts again after dying (see `keptRunning`): 1 second, doubling to 1 minute
 * while it keeps dying, and 1 second again for a death 5 minutes or more after the last one. (Built on its own state:
 * `Schedule.resetAfter` counts from a run's first step, so a fiber that kept dying would get a burst of quick restarts
 * at each reset.)
 */
const backgroundRestarts = Schedule.makeWithState(
  { lastAt: Number.NEGATIVE_INFINITY, deaths: 0 },
  (now, _: unknown, { deaths, lastAt }) => {
    const inRow = now - lastAt < 5 * 60_000 ? deaths : 0
    const pause = Math.min(1000 * 2 ** inRow, 60_000)
    return Effect.succeed(
      [
        { lastAt: now, deaths: inRow + 1 },
        pause,
        ScheduleDecision.continueWith(ScheduleInterval.after(now + pause))
      ] as const
    )
  }
)

/**
 * The longest wait an identity provider's `Retry-After` gets: about the default schedule's own longest delay, but no
 * longer than the keys held can still answer requests (fresh, then stale within `maxStale`), and of that never less
 * than the `Retry-After` that `HttpAuth` gives its own clients by default: a cache with nothing to serve refuses
 * every request meanwhile.
 */
const maxRetryAfter = { most: Duration.toMillis(Duration.minutes(5)), least: Duration.toMillis(Duration.seconds(30)) }

/**
 * What the cache is doing, for a status endpoint.
 *
 * @since 0.1.0
 * @category models
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import * as JwksCache from "effect-jwks/JwksCache"
 *
 * const warnIfStale = Effect.gen(function*() {
 *   const status = yield* Effect.flatMap(JwksCache.JwksCache, (cache) => cache.status)
 *   if (status.servingStale) yield* Effect.logWarning(`serving expired keys of ${status.source}`)
 * })
 * ```
 */
export interface Status {
  readonly source: string
  readonly strategy: CacheStrategy.CacheStrategy["_tag"]
  readonly interval: Duration.Duration | undefined
  readonly usages: number | undefined
  readonly backgroundRefresh: boolean
  readonly backgroundRefreshThreshold: number
  readonly keyIds: ReadonlyArray<string>
  readonly loadedAt: Date | undefined
  /** When the set expires by time, if the strategy has an interval. */
  readonly expiresAt: Date | undefined
  /** Validations the set may still serve, if the strategy counts them. */
  readonly usesLeft: number | undefined
  readonly fresh: boolean
  /** Whether an expired set is being served because no fresh one could be had. */
  readonly servingStale: boolean
  /**
   * When the keys held stop being served, fresh or stale: their expiry (by time, or when a lookup found them spent by
   * use) plus `maxStale` (without it once the cache is closed). Past it, every lookup fails with a `JwksError` until a
   * fetch succeeds: the time to alert on. `undefined` with no set, or while a set that expires by use alone has not.
   */
  readonly staleUntil: Date | undefined
  readonly lastRefresh:
    | { readonly at: Date; readonly outcome: "success" | "failure"; readonly error?: string }
    | undefined
  readonly fetches: number
}

/**
 * @since 0.1.0
 * @category models
 * @example
 * ```ts
 * import { Effect, Option } from "effect"
 * import type * as JwksCache from "effect-jwks/JwksCache"
 *
 * // A cache that never serves a revoked key, whatever the IdP still publishes. Judged by the key found, not by the
 * // token's kid: a token without one gets the set's only key of its alg, which may be the revoked one.
 * const revoked: ReadonlySet<string> = new Set(["key-2019"])
 * const withoutRevoked = (cache: JwksCache.Service): JwksCache.Service => ({
 *   ...cache,
 *   get: (kid, alg) =>
 *     Effect.map(cache.get(kid, alg), Option.filter((key) => key.kid === undefined || !revoked.has(key.kid)))
 * })
 * ```
 */
export interface Service {
  /**
   * The cache's name in metrics (the `source` tag), log lines, spans and its status: its source's (a URL, or
   * `static`), and for a second cache open over a source of that name at the same time, the name and ` #2` (` #3`,
   * ...: the lowest number free when it opened, the plain name counting as 1). Errors (`JwksError.source`) name the
   * source itself.
   */
  readonly source: string
  readonly strategy: CacheStrategy.CacheStrategy
  /**
   * The key for a token's `kid` and `alg`, from a fresh set (refreshing first if the set expired). A `kid` the set
   * lacks triggers one throttled refetch, which the caller waits for. `None` when no key matches, also when that
   * refetch fails or a failed fetch's backoff holds it back (the keys held answer: no `JwksError`, but for a closed
   * cache).
   */
  readonly get: (kid: string | undefined, alg: Jwk.Algorithm) => Effect.Effect<Option.Option<Jwk.Key>, JwksError>
  /** The current set, refreshing first if it expired. */
  readonly keys: Effect.Effect<Jwk.KeySet, JwksError>
  /** Records one successful verification against the current set (the usage strategy counts these). */
  readonly recordSuccess: Effect.Effect<void>
  /**
   * `get` for the case that needs no waiting, answered at once from memory: the key when the current set is fresh
   * at `now` (clock millis) and has one for `kid` and `alg`, else `undefined`, and then `get` decides (it may
   * refresh or refetch). A custom strategy always answers `undefined`: its schedule is stepped as an effect.
   * `TokenValidator.fromCache` reads it only while `get` and `recordSuccess` are the cache's own: a copy of a cache
   * with a `get` of yours (`{ ...cache, get }`), or one put in place, is asked through that `get`.
   */
  readonly unsafeGet: (kid: string | undefined, alg: Jwk.Algorithm, now: number) => Jwk.Key | undefined
  /**
   * `recordSuccess` at once; `false` when it could not be done so (a custom strategy), and then `recordSuccess`
   * must run.
   */
  readonly unsafeRecordSuccess: () => boolean
  /**
   * Fetches now, unless a failure's backoff forbids it: the set it gives was asked of the source after this call
   * began, so a key the IdP has withdrawn is gone from it. A fetch already under way (begun before the IdP's change,
   * perhaps) is waited for first, then one more is made, or joined if another caller has begun it since.
   */
  readonly refresh: Effect.Effect<Jwk.KeySet, JwksError>
  readonly status: Effect.Effect<Status>
  /** The algorithms its imports keep keys for (its `algorithms` option), when limited; `undefined`: every one. */
  readonly algorithms?: ReadonlyArray<Jwk.Algorithm> | undefined
}

/**
 * @since 0.1.0
 * @category tags
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import * as JwksCache from "effect-jwks/JwksCache"
 *
 * // An admin task: fetch the keys now, after the IdP announced a rotation.
 * const refreshNow = Effect.flatMap(JwksCache.JwksCache, (cache) => cache.refresh).pipe(
 *   Effect.tap((set) => Effect.logInfo(`${set.keys.length} keys loaded`))
 * )
 * ```
 */
export class JwksCache extends Context.Tag("effect-jwks/JwksCache")<JwksCache, Service>() {}

/**
 * The options with their defaults, checked.
 *
 * @since 0.1.0
 * @category models
 * @example
 * ```ts
 * import { Either } from "effect"
 * import * as JwksCache from "effect-jwks/JwksCache"
 *
 * // The options as the cache runs them: defaults filled in, durations in milliseconds.
 * const resolved: JwksCache.Resolved = Either.getOrThrow(JwksCache.resolve({ interval: "10 minutes" }))
 * console.log(resolved.strategy._tag, resolved.maxStale) // "Both" 3600000
 * ```
 */
export interface Resolved {
  readonly strategy: CacheStrategy.CacheStrategy
  readonly backgroundRefresh: boolean
  readonly backgroundRefreshThreshold: number
  readonly backgroundRefreshJitter: number
  readonly maxStale: number
  readonly unknownKidThrottle: number
  readonly retry: Schedule.Schedule<unknown, JwksError>
  readonly algorithms: ReadonlyArray<Jwk.Algorithm> | undefined
}

const nonNegativeMillis = (
  name: string,
  input: Duration.DurationInput | undefined,
  fallback: Duration.Duration
): Either.Either<number, ConfigError.ConfigError> => {
  // Duration.decode reads a negative or NaN input as zero, which would hide the mistake: refused. At most a century:
  // a time further out is no `Date` (the stale-serving warning prints one).
  const decoded = input === undefined ? Option.some(fallback) : ConfigInternal.decodeDuration(input)
  return Option.isSome(decoded) && Duration.isFinite(decoded.value) &&
      Duration.toMillis(decoded.value) <= ConfigInternal.maxDurationMillis
    ? Either.right(Duration.toMillis(decoded.value))
    : Either.left(ConfigError.InvalidData([name], "expected a duration from zero to 100 years"))
}

const fraction = (
  name: string,
  value: number,
  check: (n: number) => boolean,
  expected: string
): Either.Either<number, ConfigError.ConfigError> =>
  typeof value === "number" && check(value)
    ? Either.right(value)
    : Either.left(ConfigError.InvalidData([name], `expected ${expected}, got ${value}`))

/**
 * Checks the options: `backgroundRefreshThreshold` in (0, 1], `backgroundRefreshJitter` in [0, 0.5], durations
 * from zero to 100 years, `backgroundRefresh` (when given) a boolean, `algorithms` (when given) a non-empty list of
 * `Jwk.Algorithm`s, plus the strategy's own checks. A bad option is a `ConfigError` naming it.
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * ```ts
 * import { Either } from "effect"
 * import * as JwksCache from "effect-jwks/JwksCache"
 *
 * const resolved = JwksCache.resolve({ backgroundRefreshThreshold: 1.5 })
 * if (Either.isLeft(resolved)) console.error(resolved.left.toString()) // names backgroundRefreshThreshold
 * ```
 */
export const resolve = (options: Options = {}): Either.Either<Resolved, ConfigError.ConfigError> =>
  Either.gen(function*() {
    // `null` from parsed JSON gets no default: named here rather than crash below.
    if (typeof options !== "object" || options === null) {
      return yield* Either.left(ConfigError.InvalidData([], "expected the cache's options as an object"))
    }
    const strategy = options.cacheStrategy === undefined
      ? yield* CacheStrategy.fromSettings(options)
      : yield* CacheStrategy.check(options.cacheStrategy, ["cacheStrategy"])
    // `"false"` from JSON or an environment read by hand is a string, and truthy: refused, not taken as on.
    if (options.backgroundRefresh !== undefined && typeof options.backgroundRefresh !== "boolean") {
      return yield* Either.left(ConfigError.InvalidData(["backgroundRefresh"], "expected true or false"))
    }
    return {
      strategy,
      backgroundRefresh: options.backgroundRefresh ?? defaults.backgroundRefresh,
      backgroundRefreshThreshold: yield* fraction(
        "backgroundRefreshThreshold",
        options.backgroundRefreshThreshold ?? defaults.backgroundRefreshThreshold,
        (n) => n > 0 && n <= 1,
        "a number in (0, 1]"
      ),
      backgroundRefreshJitter: yield* fraction(
        "backgroundRefreshJitter",
        options.backgroundRefreshJitter ?? defaults.backgroundRefreshJitter,
        (n) => n >= 0 && n <= 0.5,
        "a number in [0, 0.5]"
      ),
      maxStale: yield* nonNegativeMillis("maxStale", options.maxStale, defaults.maxStale),
      unknownKidThrottle: yield* nonNegativeMillis(
        "unknownKidThrottle",
        options.unknownKidThrottle,
        defaults.unknownKidThrottle
      ),
      retry: options.retry ?? defaults.retry,
      algorithms: (yield* Jwk.checkImportOptions({ algorithms: options.algorithms }))?.algorithms
    }
  })

/** One loaded key set and the running state of its strategy. */
interface Loaded {
  readonly set: Jwk.KeySet
  readonly loadedAt: number
  readonly tracker: CacheStrategy.Tracker
  /** When the background fiber refreshes it by time (jitter drawn once per set). */
  readonly refreshAt: number
  /** When it was first found expired; stale serving is measured from here. */
  readonly expiredAt: number | undefined
  /** Whether crossing the usage threshold has woken the background fiber yet (once per set). */
  readonly usageWake: { sent: boolean }
}

interface Failure {
  readonly error: JwksError
  readonly retryAt: number
  readonly retry: RetryState
}

/** Where the `retry` schedule is, and the default one when it had to stand in (see `nextRetry`). */
interface RetryState {
  readonly own: unknown
  readonly fallback: unknown
}

/** A fetch under way: its waiters' answer, and its pacing (on for a background refresh until someone joins it). */
interface Inflight {
  readonly deferred: Deferred.Deferred<Loaded, JwksError>
  readonly pace: Pace.Pace
}

interface State {
  readonly current: Loaded | undefined
  readonly inflight: Inflight | undefined
  readonly failure: Failure | undefined
  readonly lastKidRefetchAt: number
  readonly lastRefresh: Status["lastRefresh"]
  readonly servingStale: boolean
  /** Set when a request found the stale window spent, until a fetch succeeds: the refusals are logged once. */
  readonly staleSpent: boolean
  readonly fetches: number
  /** Set when the cache's scope closes: no fetch starts after. */
  readonly closed: boolean
}

const initialState: State = {
  current: undefined,
  inflight: undefined,
  failure: undefined,
  lastKidRefetchAt: Number.NEGATIVE_INFINITY,
  lastRefresh: undefined,
  servingStale: false,
  staleSpent: false,
  fetches: 0,
  closed: false
}

type Trigger = "request" | "unknown kid" | "background" | "manual"

/**
 * Builds a cache over `source`. The background fiber and every fetch live in the current scope: closing it stops
 * them, and no fetch starts after.
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import * as JwksCache from "effect-jwks/JwksCache"
 * import * as JwksSource from "effect-jwks/JwksSource"
 *
 * const program = Effect.gen(function*() {
 *   const source = yield* JwksSource.http("https://idp.example/.well-known/jwks.json")
 *   const cache = yield* JwksCache.make(source, { strategy: "time", interval: "10 minutes" })
 *   const key = yield* cache.get("key-1", "RS256")
 * })
 * ```
 */
export const make = (
  source: Source,
  options?: Options
): Effect.Effect<Service, ConfigError.ConfigError, Scope.Scope> =>
  Effect.gen(function*() {
    const settings = yield* resolve(options)
    return yield* makeResolved(source, settings)
  })

/**
 * The numbers taken by the caches open in this process, by their source's name: caches over one source (two `Oidc`
 * layers of one issuer, two `fromKeySet` sets) are told apart in metrics and logs by a number after the first.
 */
const openCaches = globalValue(Symbol.for("effect-jwks/JwksCache/openCaches"), () => new Map<string, Set<number>>())

/** The name of a cache opened over a source named `source`, for as long as the current scope is open. */
const cacheName = (source: string): Effect.Effect<string, never, Scope.Scope> =>
  Effect.map(
    Effect.acquireRelease(
      Effect.sync(() => {
        const taken = openCaches.get(source) ?? new Set<number>()
        openCaches.set(source, taken)
        let number = 1
        while (taken.has(number)) number++
        taken.add(number)
        return number
      }),
      (number) =>
        Effect.sync(() => {
          const taken = openCaches.get(source)
          taken?.delete(number)
          if (taken?.size === 0) openCaches.delete(source)
        })
    ),
    (number) => number === 1 ? source : `${source} #${number}`
  )

const makeResolved = (source: Source, settings: Resolved): Effect.Effect<Service, never, Scope.Scope> =>
  Effect.flatMap(cacheName(source.name), (name) => makeNamed(source, name, settings))

const makeNamed = (source: Source, name: string, settings: Resolved): Effect.Effect<Service, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { strategy } = settings
    const scope = yield* Effect.scope
    // A `MutableRef` rather than a `Ref`, so that `unsafeGet` reads the current set without an effect. Every change
    // is still one synchronous step (a `Ref` is a `MutableRef` behind `Effect.sync`).
    const state = MutableRef.make(initialState)
    const getState = Effect.sync(() => MutableRef.get(state))
    const updateState = (f: (s: State) => State) => Effect.sync(() => MutableRef.getAndUpdate(state, f))
    const modifyState = <B>(f: (s: State) => readonly [B, State]) =>
      Effect.sync(() => {
        const [result, next] = f(MutableRef.get(state))
        MutableRef.set(state, next)
        return result
      })
    const annotate = Effect.annotateLogs({ module: "JwksCache", source: name })
    const metrics = JwksMetrics.forSource(name)
    /** A custom strategy's steps, which run in the caller's fiber, log as the cache (a schedule that throws). */
    const withCacheLogs = (tracker: CacheStrategy.Tracker): CacheStrategy.Tracker =>
      tracker.unsafe !== undefined ? tracker : {
        ...tracker,
        isFresh: (now) => annotate(tracker.isFresh(now)),
        record: (now) => annotate(tracker.record(now))
      }
    const closedError = new JwksError({
      reason: "Unreachable",
      source: source.name,
      description: "the cache is closed"
    })
    /**
     * Whether `error` is this cache's `closedError`. Failed inside a span (a server's request), an error reaches its
     * waiter wrapped in a proxy that carries the span: only the error under it is the same object.
     */
    const isClosedError = (error: JwksError) => Cause.originalError(error) === closedError
    // Runs after the scope has interrupted the fetch and background fibers: whoever still waits on a fetch is
    // answered, and no fetch starts after.
    yield* Effect.addFinalizer(() =>
      Effect.flatMap(
        updateState((s) => ({ ...s, closed: true, inflight: undefined })),
        (s) => s.inflight === undefined ? Effect.void : Deferred.fail(s.inflight.deferred, closedError)
      ).pipe(Effect.zipRight(Effect.logInfo("JWKS cache closed")), annotate)
    )
    // The fetches' own scope: it closes after the background fiber (forked below, so interrupted first) and before
    // the finalizer above. A fetch cut short by the closing answers its waiters, and the background fiber is no
    // longer one of them: it would log the answer as a failed refresh and start the next.
    const fetchScope = yield* Scope.fork(scope, ExecutionStrategy.sequential)
    /** Wakes the background fiber: a new set was loaded, a fetch failed, or the usage threshold was crossed. */
    const wake = yield* Queue.sliding<void>(1)
    const intervalMillis = strategy.interval === undefined ? undefined : Duration.toMillis(strategy.interval)
    const usageThreshold = strategy.usages === undefined
      ? undefined
      : Math.max(1, floorTimes(strategy.usages, settings.backgroundRefreshThreshold))

    const load = Effect.gen(function*() {
      // The steps of a paced fetch (a background refresh nobody has joined): see `pace.ts`.
      yield* Pace.step
      const jwks = yield* source.fetch
      yield* Pace.step
      const previous = (yield* getState).current?.set
      // Its log lines name the cache (` #2` too), its errors the source, as the cache's own do.
      const set = yield* Jwk.importKeySet(jwks, name, { algorithms: settings.algorithms, previous }).pipe(
        Effect.mapError((error) =>
          name === source.name ? error : new JwksError({
            reason: error.reason,
            source: source.name,
            description: error.description,
            status: error.status,
            retryAfter: error.retryAfter,
            cause: error.cause
          })
        )
      )
      yield* Pace.step
      const loadedAt = yield* Clock.currentTimeMillis
      const tracker = withCacheLogs(yield* CacheStrategy.track(strategy, loadedAt))
      const jitter = settings.backgroundRefreshJitter === 0 ? 0 : yield* Random.next
      // At least a millisecond on, as the shortest interval: at today's epoch (about 1.7e12 ms) a smaller step is lost
      // in rounding, and a refresh due at its own load would be fetched again at once, in a loop (a tiny threshold).
      const refreshAt = intervalMillis === undefined
        ? Number.POSITIVE_INFINITY
        : loadedAt + Math.max(
          1,
          intervalMillis * settings.backgroundRefreshThreshold * (1 - settings.backgroundRefreshJitter * jitter)
        )
      yield* Effect.logDebug("JWKS loaded").pipe(
        Effect.annotateLogs({ keys: set.keys.length, skipped: set.skipped })
      )
      if (previous !== undefined) {
        // By key, not by kid: an unchanged key is carried over as the same object, so new material under a kid it
        // had, and keys without a kid, show as changes too.
        const before = new Set(previous.keys)
        const after = new Set(set.keys)
        const added = [...after].filter((key) => !before.has(key)).map((key) => key.kid)
        const removed = [...before].filter((key) => !after.has(key)).map((key) => key.kid)
        if (added.length > 0 || removed.length > 0) {
          yield* Effect.logInfo("JWKS key set changed").pipe(
            Effect.annotateLogs({ added: kidList(added), removed: kidList(removed) })
          )
        }
      }
      return { set, loadedAt, tracker, refreshAt, expiredAt: undefined, usageWake: { sent: false } } satisfies Loaded
    })

    /**
     * Until when `current` can answer requests: until it expires, then stale within `maxStale`. Its expiry is when a
     * request found it expired; else, for a set that expires by time only, the end of its interval; else (a set that
     * may be spent by use, which is not asked here: a custom strategy's schedule is the app's code) now, or the end
     * of its interval if that is past, as stale serving counts it. Nothing held: now.
     */
    const servableUntil = (current: Loaded | undefined, now: number): number => {
      if (current === undefined) return now
      const intervalEnd = intervalMillis === undefined ? now : current.loadedAt + intervalMillis
      const expiry = current.expiredAt ?? (strategy._tag === "Time" ? intervalEnd : Math.min(now, intervalEnd))
      return expiry + settings.maxStale
    }

    /**
     * The error of a fetch that failed: its JwksError, or `Unreachable` for one that died or was interrupted, or that
     * failed with something else (a source of the app's, in JavaScript, whose type promised a JwksError).
     */
    const failed = (cause: Cause.Cause<JwksError>): JwksError => {
      const failure: unknown = Option.getOrUndefined(Cause.failureOption(cause))
      return failure instanceof JwksError ? failure : new JwksError({
        reason: "Unreachable",
        source: source.name,
        description: failure === undefined
          ? "the fetch died"
          : "the fetch failed with something other than a JwksError",
        cause: failure ?? Cause.squash(cause)
      })
    }

    /** Whether this fiber has been interrupted: for a fetch, only the cache's scope does that, as it closes. */
    const beingInterrupted = Effect.map(Effect.descriptor, (fiber) => HashSet.size(fiber.interruptors) > 0)

    /**
     * Runs one fetch and records its outcome; every waiter gets it through the deferred. Only the fetch itself can
     * be interrupted (by the scope closing, or its timeout): once the state says no fetch is in flight, its waiters
     * must be answered, so the bookkeeping runs to its end.
     */
    const runFetch = (deferred: Deferred.Deferred<Loaded, JwksError>, trigger: Trigger) =>
      Effect.uninterruptibleMask((restore) =>
        Effect.gen(function*() {
          const started = yield* Clock.currentTimeMillis
          const loaded = yield* Effect.exit(restore(load))
          // The scope is closing (whatever the source did as it stopped): answered below, as the cache being closed.
          if (Exit.isFailure(loaded) && (yield* beingInterrupted)) return yield* Effect.interrupt
          // A fetch that died reaches its waiters as a JwksError (`Unreachable`): a defect would skip stale-if-error
          // and end the background fiber, which expect only JwksErrors.
          const exit = Exit.isSuccess(loaded) ? loaded : Exit.fail(failed(loaded.cause))
          const now = yield* Clock.currentTimeMillis
          yield* Metric.update(metrics.fetchDuration, now - started)
          yield* Effect.annotateCurrentSpan("outcome", exit._tag === "Success" ? "success" : "failure")
          if (exit._tag === "Success") {
            yield* Metric.increment(metrics.fetchSucceeded)
            yield* Metric.set(metrics.keySetAge, 0)
            yield* updateState((s) => ({
              ...s,
              current: exit.value,
              inflight: undefined,
              failure: undefined,
              servingStale: false,
              staleSpent: false,
              lastRefresh: { at: new Date(now), outcome: "success" as const }
            }))
          } else {
            const error = failed(exit.cause)
            yield* Metric.increment(metrics.fetchFailed(error.reason))
            const { current, failure: previous } = yield* getState
            const retryAt = yield* nextRetry(previous, error, now, servableUntil(current, now))
            yield* updateState((s) => ({
              ...s,
              inflight: undefined,
              failure: { error, retryAt: retryAt.at, retry: retryAt.state },
              lastRefresh: { at: new Date(now), outcome: "failure" as const, error: error.message }
            }))
            // With no keys at all, every validation fails: an error, where a failure beside good keys is a warning.
            yield* ((yield* getState).current === undefined ? Effect.logError : Effect.logWarning)(
              `JWKS fetch failed (${trigger}); next attempt in ${seconds(retryAt.at - now)}`,
              Cause.fail(error)
            )
          }
          yield* Queue.offer(wake, void 0)
          yield* Deferred.done(deferred, exit)
        })
      ).pipe(
        // Not once its waiters have their answer: a fetch interrupted after that (the scope closing as its last step
        // ends) was counted, and answered, by its outcome.
        Effect.onExit((exit) =>
          Effect.flatMap(
            Deferred.isDone(deferred),
            (answered) =>
              !answered && Exit.isFailure(exit) && Cause.isInterrupted(exit.cause)
                ? Effect.zipRight(
                  Effect.zipRight(
                    Metric.increment(metrics.fetchInterrupted),
                    Effect.annotateCurrentSpan("outcome", "interrupted")
                  ),
                  Effect.logInfo(`JWKS fetch (${trigger}) cut short: the cache is closing`)
                )
                : Effect.void
          )
        ),
        // A background fetch (the initial load too) is a trace of its own: its fiber was started under whatever span
        // the app built its layers in (a start-up span), long ended by the next refresh.
        Effect.withSpan("JwksCache.refresh", {
          attributes: { "jwks.source": name, trigger },
          root: trigger === "background"
        }),
        annotate,
        // Outermost: interrupted (the scope closing), or died anywhere above (a logger or a tracer that throws, say),
        // the waiters still get an answer and the next caller may fetch. (`Deferred.fail` of a done deferred does
        // nothing.)
        Effect.onExit((exit) =>
          Exit.isSuccess(exit) ? Effect.void : Effect.zipRight(
            updateState((s) => s.inflight?.deferred === deferred ? { ...s, inflight: undefined } : s),
            Deferred.fail(deferred, Cause.isInterrupted(exit.cause) ? closedError : failed(exit.cause))
          )
        )
      )

    /**
     * The next attempt by `retry`, from `state`, and the schedule's state after the step. `at` is `undefined` when it
     * gives no delay: it ended even from its start, or it says "now" (or within the millisecond: timers fire no
     * sooner).
     */
    const stepRetry = (retry: Schedule.Schedule<unknown, JwksError>, state: unknown, error: JwksError, now: number) =>
      Effect.gen(function*() {
        let [next, , decision] = yield* retry.step(now, error, state ?? retry.initial)
        if (decision._tag === "Done") {
          ;[next, , decision] = yield* retry.step(now, error, retry.initial)
        }
        // Done even from its start: not this schedule's error (`whileInput`, say). Its place is kept for the next.
        if (decision._tag === "Done") return { at: undefined, state }
        const at = ScheduleIntervals.start(decision.intervals)
        return { at: at >= now + 1 ? at : undefined, state: next }
      })

    /**
     * When to fetch again after `error`, by the `retry` schedule. Where it gives no delay (it ended even from its
     * start, as a schedule that depends on the error's reason may; it says "at once", as `Schedule.recurs` does; or it
     * throws), the default schedule stands in for that attempt. Both keep their state from one failure to the next
     * (until a success), so neither an alternation of reasons nor a run of immediate steps resets a backoff: without
     * a delay, every caller and the background fiber would fetch again at once, in a loop.
     */
    const nextRetry = (previous: Failure | undefined, error: JwksError, now: number, servableUntil: number) =>
      Effect.gen(function*() {
        // A schedule that throws, fails (JavaScript has no types) or ends its step in an interruption of its own stands
        // aside for this attempt, as documented. (The step runs in the fetch's uninterruptible bookkeeping: no
        // interruption from outside, a closing cache's, reaches it.)
        const own = yield* stepRetry(settings.retry, previous?.retry.own, error, now).pipe(
          Effect.catchAllCause((cause) =>
            Effect.as(
              Effect.logWarning("The retry schedule failed; backing off by the default schedule", cause),
              { at: undefined, state: previous?.retry.own }
            )
          )
        )
        // A 429 or 503 that asked for a wait (`Retry-After`) gets it, up to `maxRetryAfter`: never sooner than the
        // schedule's own time, so that an answer asking for none cannot hasten a retry. (A source of the app's may
        // build its error as it likes: only a number of seconds counts.)
        const limit = Math.min(maxRetryAfter.most, Math.max(maxRetryAfter.least, servableUntil - now))
        const wait = error.retryAfter
        const asked = (at: number) =>
          typeof wait === "number" && wait >= 0 ? Math.max(at, now + Math.min(wait * 1000, limit)) : at
        if (own.at !== undefined) {
          return { at: asked(own.at), state: { own: own.state, fallback: previous?.retry.fallback } }
        }
        const fallback = yield* stepRetry(defaults.retry, previous?.retry.fallback, error, now)
        // The default schedule never ends and its least delay is about 0.8 s; the second is a guard all the same.
        return { at: asked(fallback.at ?? now + 1000), state: { own: own.state, fallback: fallback.state } }
      })

    /**
     * Whether a caller that wants fresh keys starts a fetch (`mine`), joins the one under way, or fails at once:
     * the cache is closed, or a failure's backoff forbids fetching yet.
     */
    const plan = (
      s: State,
      now: number,
      mine: Inflight
    ): [Either.Either<Inflight, JwksError>, State] => {
      if (s.closed) return [Either.left(closedError), s]
      if (s.inflight !== undefined) return [Either.right(s.inflight), s]
      if (s.failure !== undefined && now < s.failure.retryAt) return [Either.left(s.failure.error), s]
      return [Either.right(mine), { ...s, inflight: mine, fetches: s.fetches + 1 }]
    }

    /**
     * The cache's metrics are the cache's (tagged with its source), not those of the request that happened to start a
     * fetch or meet a stale set: the caller's `Effect.tagMetrics` labels are left off, so that a read by source sees
     * every event.
     */
    const ownMetrics = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
      Effect.locally(effect, FiberRef.currentMetricLabels, [])

    /**
     * The fetch to wait for, as planned: this caller's own, started now, or the one under way. Runs right after the
     * plan, in the same uninterruptible region: a caller interrupted between the two would leave `inflight` pointing
     * at a fetch that never runs, and every later caller waiting on it. The fetch itself is interruptible (its
     * timeout interrupts it).
     */
    const started = (
      planned: Either.Either<Inflight, JwksError>,
      mine: Inflight,
      trigger: Trigger
    ): Effect.Effect<Deferred.Deferred<Loaded, JwksError>, JwksError> => {
      if (planned._tag === "Left") return Effect.fail(planned.left)
      return planned.right === mine
        ? Effect.as(
          Effect.forkIn(
            Effect.interruptible(ownMetrics(Pace.within(mine.pace, runFetch(mine.deferred, trigger)))),
            fetchScope
          ),
          mine.deferred
        )
        // Joining a fetch under way: it has a waiter now, so it runs its steps left in one go.
        : Effect.as(Pace.stop(planned.right.pace), planned.right.deferred)
    }

    /**
     * Fetches now, or joins the fetch under way, unless the cache is closed or backing off. A request passes the set it
     * found not fresh (`seen.set`, none when the cache was cold): if another fetch has brought a newer one since, that
     * one goes to `seen.onNewer` instead, decided in the same step as the plan, so that no request starts a second
     * fetch for it.
     */
    const refreshWith = (
      trigger: Trigger,
      seen?: {
        readonly set: Jwk.KeySet | undefined
        readonly onNewer: (newer: Loaded) => Effect.Effect<Loaded, JwksError>
      },
      paced = false
    ): Effect.Effect<Loaded, JwksError> =>
      Effect.uninterruptibleMask((restore) =>
        Effect.flatMap(
          Effect.map(
            Deferred.make<Loaded, JwksError>(),
            (deferred): Inflight => ({ deferred, pace: Pace.make(paced) })
          ),
          (mine) =>
            Effect.flatMap(Clock.currentTimeMillis, (now) =>
              Effect.flatMap(
                modifyState((s): [Loaded | Either.Either<Inflight, JwksError>, State] =>
                  seen !== undefined && s.current !== undefined && s.current.set !== seen.set
                    ? [s.current, s]
                    : plan(s, now, mine)
                ),
                (planned) =>
                  Either.isEither(planned)
                    ? Effect.flatMap(started(planned, mine, trigger), (fetch) => restore(Deferred.await(fetch)))
                    : restore(seen!.onNewer(planned))
              ))
        )
      )

    /**
     * The set to serve when `seen`, the current one as this request found it, is not fresh: a new one, else the last
     * good one within `maxStale`.
     */
    const renew = (now: number, seen: Loaded | undefined): Effect.Effect<Loaded, JwksError> =>
      Effect.gen(function*() {
        if (seen !== undefined && seen.expiredAt === undefined) {
          // A strategy with an interval (a custom one's is its longest life) has expired at load + interval at the
          // latest, even if no request came to find it out. Marked only while it is still the current set: a newer
          // one may have landed since this request looked.
          const expiredAt = intervalMillis === undefined ? now : Math.min(now, seen.loadedAt + intervalMillis)
          const expired = { ...seen, expiredAt }
          yield* updateState((st) => st.current === seen ? { ...st, current: expired } : st)
        }
        // A newer set is judged as any: served if fresh (by the clock now: this request may have waited), else renewed,
        // stale keys included; that answer is final.
        let newer = false
        const onNewer = (loaded: Loaded) => {
          newer = true
          return Effect.flatMap(Clock.currentTimeMillis, (later) => freshOrRenew(loaded, later))
        }
        const result = yield* Effect.either(refreshWith("request", { set: seen?.set, onNewer }))
        if (result._tag === "Right" || newer) return yield* result
        const { closed, current } = yield* getState
        // Stale keys stand in for an identity provider that cannot answer, not for a cache whose scope has closed. A
        // fetch cut short by the closing answers its waiters with `closedError` before the state says closed (its
        // fiber's finalizer runs before the cache's).
        if (current === undefined || closed || isClosedError(result.left)) return yield* result.left
        const staleUntil = (current.expiredAt ?? now) + settings.maxStale
        // Judged at the answer, not at the request: it may have waited for the fetch (up to its timeout).
        if ((yield* Clock.currentTimeMillis) >= staleUntil) {
          const wasSpent = (yield* updateState((st) => ({ ...st, servingStale: false, staleSpent: true }))).staleSpent
          if (!wasSpent) {
            yield* Effect.logError(
              `Stale JWKS spent at ${new Date(staleUntil).toISOString()}: tokens are refused until a fetch succeeds`,
              Cause.fail(result.left)
            )
          }
          return yield* new JwksError({
            reason: "Stale",
            source: source.name,
            description: `the last good keys expired more than ${
              seconds(settings.maxStale)
            } ago: ${result.left.message}`,
            cause: result.left
          })
        }
        yield* ownMetrics(Metric.increment(metrics.staleServes))
        const wasStale = (yield* updateState((st) => ({ ...st, servingStale: true }))).servingStale
        if (!wasStale) {
          yield* Effect.logWarning(
            `Serving stale JWKS until ${new Date(staleUntil).toISOString()}`,
            Cause.fail(result.left)
          )
        }
        return current
      }).pipe(annotate)

    /** The current set if it is fresh, else `renew`. */
    const freshOrRenew = (current: Loaded | undefined, now: number): Effect.Effect<Loaded, JwksError> =>
      current === undefined
        ? renew(now, undefined)
        : Effect.flatMap(current.tracker.isFresh(now), (fresh) => fresh ? Effect.succeed(current) : renew(now, current))

    /**
     * A kid the set lacks: one refetch per throttle window, which the caller waits for. A fetch already under way is
     * joined whatever the throttle says, and a key that another caller's refetch has just brought is taken as is.
     */
    const refetchForKid = (
      kid: string | undefined,
      alg: Jwk.Algorithm,
      joinedMayRetry = true
    ): Effect.Effect<Option.Option<Jwk.Key>, JwksError> =>
      Effect.uninterruptibleMask((restore) =>
        Effect.flatMap(Effect.zip(Deferred.make<Loaded, JwksError>(), Clock.currentTimeMillis), ([deferred, now]) => {
          // The clock read now, not where the lookup began: a retry after a long joined fetch dates the throttle
          // window from its own fetch, so that no two refetches land within one window.
          const mine: Inflight = { deferred, pace: Pace.make(false) }
          return Effect.flatMap(
            modifyState(
              (s): [Jwk.Key | "throttled" | Either.Either<Inflight, JwksError>, State] => {
                const present = s.current === undefined ? undefined : Jwk.select(s.current.set, kid, alg)
                if (present !== undefined) return [present, s]
                // A closed cache answers as closed, within the throttle window too: never "no such key".
                if (s.closed) return [Either.left(closedError), s]
                if (s.inflight === undefined && now - s.lastKidRefetchAt < settings.unknownKidThrottle) {
                  return ["throttled", s]
                }
                const [planned, next] = plan(s, now, mine)
                return [planned, next.inflight === mine ? { ...next, lastKidRefetchAt: now } : next]
              }
            ),
            (decided): Effect.Effect<Option.Option<Jwk.Key>, JwksError> => {
              /** No key and no refetch: logged and counted as throttled. */
              const withoutRefetch = (message: string) =>
                annotate(Effect.logDebug(message).pipe(Effect.annotateLogs(kidAnnotation(kid)))).pipe(
                  Effect.zipRight(ownMetrics(Metric.increment(metrics.unknownKidThrottled))),
                  Effect.as(Option.none())
                )
              if (decided === "throttled") return withoutRefetch("Unknown kid: refetch throttled")
              if (!Either.isEither(decided)) return Effect.succeed(Option.some(decided))
              // Held back by a failure's backoff: answered without a refetch, as a throttled lookup is.
              if (Either.isLeft(decided) && !isClosedError(decided.left)) {
                return withoutRefetch("Unknown kid: refetch held back by the failure backoff")
              }
              // Logged and counted only where this call starts the fetch, not where it joins one.
              const starts = Either.isRight(decided) && decided.right === mine
              const announce = starts
                ? annotate(Effect.logInfo("Unknown kid: refetching JWKS").pipe(Effect.annotateLogs(kidAnnotation(kid))))
                  .pipe(
                    Effect.zipRight(ownMetrics(Metric.increment(metrics.unknownKidRefetches)))
                  )
                : Effect.void
              /** The key, once the fetch waited for is done. */
              const keyFrom = (
                loaded: Either.Either<Loaded, JwksError>
              ): Effect.Effect<Option.Option<Jwk.Key>, JwksError> => {
                // A failed refetch leaves the kid unknown (the keys held answer for the set); a closed cache answers
                // nothing, as to any lookup.
                if (loaded._tag === "Left") return isClosedError(loaded.left) ? loaded.left : Effect.succeedNone
                const key = Jwk.select(loaded.right.set, kid, alg)
                if (key !== undefined) return Effect.succeed(Option.some(key))
                // A joined fetch may have begun before the key was published: one fetch of this call's own, if
                // the throttle allows it.
                return starts || !joinedMayRetry ? Effect.succeedNone : refetchForKid(kid, alg, false)
              }
              // Announced with the start, before the wait, so that a caller interrupted while waiting counts too.
              const start = Effect.either(Effect.zipLeft(started(decided, mine, "unknown kid"), announce))
              return Effect.flatMap(start, (fetch) =>
                restore(Effect.flatMap(
                  Either.isLeft(fetch)
                    ? Effect.succeed(Either.left(fetch.left))
                    : Effect.either(Deferred.await(fetch.right)),
                  keyFrom
                )))
            }
          )
        })
      )

    const get = (kid: string | undefined, alg: Jwk.Algorithm): Effect.Effect<Option.Option<Jwk.Key>, JwksError> =>
      Effect.flatMap(
        Clock.currentTimeMillis,
        (now) =>
          Effect.flatMap(getState, ({ current }) =>
            Effect.flatMap(freshOrRenew(current, now), (loaded) => {
              const key = Jwk.select(loaded.set, kid, alg)
              if (key !== undefined) return Effect.succeed(Option.some(key))
              // A set that arrived during this very call is as new as it gets: no second fetch for it.
              return loaded.set !== current?.set ? Effect.succeedNone : refetchForKid(kid, alg)
            }))
      )

    /** Wakes the background fiber once per set, when the usage threshold is crossed. */
    const afterRecord = (current: Loaded) => {
      if (usageThreshold === undefined || current.usageWake.sent || current.tracker.served() < usageThreshold) return
      current.usageWake.sent = true
      if (settings.backgroundRefresh) wake.unsafeOffer(void 0)
    }

    const recordSuccess = Effect.flatMap(
      Clock.currentTimeMillis,
      (now) =>
        Effect.flatMap(getState, ({ current }) =>
          current === undefined
            ? Effect.void
            : Effect.map(current.tracker.record(now), () => afterRecord(current)))
    )

    const unsafeGet = (kid: string | undefined, alg: Jwk.Algorithm, now: number): Jwk.Key | undefined => {
      const { current } = MutableRef.get(state)
      return current?.tracker.unsafe?.isFresh(now) === true ? Jwk.select(current.set, kid, alg) : undefined
    }

    const unsafeRecordSuccess = (): boolean => {
      const { current } = MutableRef.get(state)
      if (current === undefined) return true
      if (current.tracker.unsafe === undefined) return false
      current.tracker.unsafe.record()
      afterRecord(current)
      return true
    }

    const status = Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const s = yield* getState
      const current = s.current
      const fresh = current === undefined ? false : yield* current.tracker.isFresh(now)
      if (current !== undefined) yield* ownMetrics(Metric.set(metrics.keySetAge, (now - current.loadedAt) / 1000))
      // As `renew` dates it: the time a lookup found the set expired, else its end by time.
      const expiredAt = current?.expiredAt ??
        (current === undefined || intervalMillis === undefined ? undefined : current.loadedAt + intervalMillis)
      return {
        source: name,
        strategy: strategy._tag,
        interval: strategy.interval,
        usages: strategy.usages,
        backgroundRefresh: settings.backgroundRefresh,
        backgroundRefreshThreshold: settings.backgroundRefreshThreshold,
        keyIds: current === undefined ? [] : current.set.keys.flatMap((key) => key.kid === undefined ? [] : [key.kid]),
        loadedAt: current === undefined ? undefined : new Date(current.loadedAt),
        expiresAt: current === undefined || intervalMillis === undefined
          ? undefined
          : new Date(current.loadedAt + intervalMillis),
        usesLeft: current === undefined || strategy.usages === undefined
          ? undefined
          : Math.max(0, strategy.usages - current.tracker.served()),
        fresh,
        // Until its stale window runs out, not until the next request finds that out.
        servingStale: s.servingStale && !fresh && !s.closed && current !== undefined &&
          now < (current.expiredAt ?? now) + settings.maxStale,
        // A closed cache serves no stale keys.
        staleUntil: expiredAt === undefined ? undefined : new Date(expiredAt + (s.closed ? 0 : settings.maxStale)),
        lastRefresh: s.lastRefresh,
        fetches: s.fetches
      } satisfies Status
    })

    /** When the background fiber should refresh next, in clock millis. */
    const dueAt = (s: State): number => {
      if (s.failure !== undefined) return s.failure.retryAt
      if (s.current === undefined) return Number.NEGATIVE_INFINITY
      if (usageThreshold !== undefined && s.current.tracker.served() >= usageThreshold) {
        return Number.NEGATIVE_INFINITY
      }
      return s.current.refreshAt
    }

    const backgroundLoop = Effect.gen(function*() {
      yield* Effect.logDebug("Background JWKS refresh task scheduled")
      while (true) {
        const now = yield* Clock.currentTimeMillis
        const s = yield* getState
        if (s.current !== undefined) yield* Metric.set(metrics.keySetAge, (now - s.current.loadedAt) / 1000)
        const due = dueAt(s)
        if (due > now) {
          const woken = Queue.take(wake)
          if (due !== Number.POSITIVE_INFINITY) {
            yield* Effect.logDebug(`Background refresh will wait ${seconds(due - now)}`)
          }
          // Timers keep at most 2^31 - 1 ms (Effect's clock takes a longer sleep for "never"): a longer wait (a
          // 40-day interval's refresh) is slept in pieces, each ending in a fresh look at the state.
          yield* due === Number.POSITIVE_INFINITY
            ? woken
            // Whole milliseconds, rounded up: a wake-up a fraction early would find nothing due and sleep zero again.
            : Effect.race(
              Effect.sleep(Duration.millis(Math.min(Math.ceil(due - now), ConfigInternal.maxTimerMillis))),
              woken
            )
          continue
        }
        const initial = (yield* getState).current === undefined
        yield* Effect.logInfo(initial ? "Performing initial JWKS load" : "Performing background JWKS refresh")
        // Nobody waits for a refresh ahead of expiry: it gives the event loop back between its steps (see `pace.ts`),
        // so that no validation waits behind it either, until a caller joins it. The initial load is not paced:
        // requests may be waiting for it.
        const result = yield* Effect.either(refreshWith("background", undefined, !initial))
        yield* Metric.increment(result._tag === "Right" ? metrics.backgroundSucceeded : metrics.backgroundFailed)
        if (result._tag === "Right") {
          yield* Effect.logInfo(initial ? "Initial JWKS load completed" : "Background JWKS refresh completed")
        } else {
          yield* initial
            ? Effect.logError("Initial JWKS load failed", Cause.fail(result.left))
            : Effect.logWarning("Background JWKS refresh failed", Cause.fail(result.left))
        }
        // Take a wake-up left by this very refresh, so the next wait starts clean.
        yield* Queue.poll(wake)
      }
    })

    /**
     * The loop fails never (a failed refresh is logged and waited out), but code of the app's runs in it: a logger or
     * a tracer that throws would end it, and with it every refresh ahead of expiry. It starts again instead, after a
     * pause that grows from 1 second to 1 minute, so that a throw on every turn is no busy loop.
     */
    const keptRunning = backgroundLoop.pipe(
      Effect.catchAllDefect(Effect.fail),
      Effect.tapError((defect) =>
        Effect.catchAllDefect(
          Effect.logError("The background JWKS refresh task died; it starts again", Cause.die(defect)),
          () => Effect.void
        )
      ),
      Effect.retry(backgroundRestarts)
    )

    if (settings.backgroundRefresh) {
      // Under no span: its lines would otherwise stay, for the process's life, in the span the app built its layers
      // in (a start-up span, long ended), and so would its fetches (see `runFetch`).
      yield* Effect.forkScoped(
        Effect.mapInputContext(
          ownMetrics(keptRunning),
          (context: Context.Context<never>) => Context.omit(Tracer.ParentSpan)(context)
        )
      )
    }

    /**
     * The end of the fetch under way, if any, whatever its outcome: `refresh` must not answer with a set asked for
     * before it was called (an operator withdrawing a key would see it kept). Waited for as a joiner does (its pace
     * stopped).
     */
    const underWayDone = Effect.flatMap(
      getState,
      ({ inflight }) =>
        inflight === undefined
          ? Effect.void
          : Effect.zipRight(Pace.stop(inflight.pace), Effect.exit(Deferred.await(inflight.deferred)))
    )

    MemoryAnswers.registerOwner(unsafeGet, { get, recordSuccess })
    return {
      source: name,
      strategy,
      get,
      keys: Effect.flatMap(
        Clock.currentTimeMillis,
        (now) => Effect.flatMap(getState, (s) => Effect.map(freshOrRenew(s.current, now), (loaded) => loaded.set))
      ),
      recordSuccess,
      unsafeGet,
      unsafeRecordSuccess,
      refresh: Effect.map(Effect.zipRight(underWayDone, refreshWith("manual")), (loaded) => loaded.set),
      status,
      algorithms: settings.algorithms
    } satisfies Service
  }).pipe(Effect.annotateLogs({ module: "JwksCache", source: name }))

/**
 * Key ids for a log line: at most 10, each quoted and shown as {@link shownKid} shows one (so that no kid reads as two,
 * nor as a key without one), and how many more.
 */
const kidList = (kids: ReadonlyArray<string | undefined>): string => {
  const shown = kids.slice(0, 10).map((kid) => kid === undefined ? "(no kid)" : `"${shownKid(kid)}"`).join(", ")
  return kids.length > 10 ? `${shown} and ${kids.length - 10} more` : shown
}

/**
 * `floor(count × fraction)`, with `fraction` as written in decimal (`String` gives the shortest spelling that reads
 * back as it), exactly: in binary floating point 100 × 0.29 is 28.999999999999996.
 */
const floorTimes = (count: number, fraction: number): number => {
  const [mantissa = "0", exponent = "0"] = String(fraction).split("e")
  const [whole = "0", decimals = ""] = mantissa.split(".")
  const scale = decimals.length - Number(exponent)
  const product = BigInt(count) * BigInt(whole + decimals)
  return Number(scale >= 0 ? product / BigInt(10) ** BigInt(scale) : product * BigInt(10) ** BigInt(-scale))
}

/**
 * A token's kid as a log annotation, as {@link shownKid} shows it; none for a token without one (`kid=undefined` would
 * read as that very kid).
 */
const kidAnnotation = (kid: string | undefined): { readonly kid?: string } =>
  kid === undefined ? {} : { kid: shownKid(kid) }

const seconds = (millis: number): string => `${Math.round(millis / 100) / 10} seconds`

/**
 * A cache over the `JwksSource` in context.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * ```ts
 * import { FetchHttpClient } from "@effect/platform"
 * import { Layer } from "effect"
 * import * as JwksCache from "effect-jwks/JwksCache"
 * import * as JwksSource from "effect-jwks/JwksSource"
 *
 * const CacheLive = JwksCache.layer({ strategy: "both", interval: "20 minutes", usages: 1000 }).pipe(
 *   Layer.provide(JwksSource.layerHttp("https://idp.example/.well-known/jwks.json")),
 *   Layer.provide(FetchHttpClient.layer)
 * )
 * ```
 */
export const layer = (options?: Options): Layer.Layer<JwksCache, ConfigError.ConfigError, JwksSource> =>
  Layer.scoped(JwksCache, Effect.flatMap(JwksSource, (source) => make(source, options)))

/** The variable each option of `config` is read from, for its errors. */
const variables = {
  strategy: ["JWKS_CACHE", "STRATEGY"],
  interval: ["JWKS_CACHE", "INTERVAL"],
  usages: ["JWKS_CACHE", "USAGES"],
  backgroundRefresh: ["JWKS_CACHE", "BACKGROUND_REFRESH"],
  backgroundRefreshThreshold: ["JWKS_CACHE", "BACKGROUND_REFRESH_THRESHOLD"],
  maxStale: ["JWKS_CACHE", "MAX_STALE"],
  unknownKidThrottle: ["JWKS_CACHE", "UNKNOWN_KID_THROTTLE"]
}

/** How each variable of {@link variables} is read. */
const readers: { readonly [Name in keyof typeof variables]: Config.Config<Options[Name]> } = {
  ...CacheStrategy.readers,
  backgroundRefresh: Config.boolean("BACKGROUND_REFRESH"),
  backgroundRefreshThreshold: ConfigInternal.number("BACKGROUND_REFRESH_THRESHOLD"),
  maxStale: ConfigInternal.duration("MAX_STALE"),
  unknownKidThrottle: ConfigInternal.duration("UNKNOWN_KID_THROTTLE")
}

/** The variables, each optional, but those in `skip` (set in code), unchecked: an absent one is `undefined`. */
const readVariables = (skip: ReadonlySet<string>): Config.Config<Options> =>
  Config.nested(
    Config.all(
      Object.fromEntries(
        Object.entries(readers).map(([name, reader]) => [
          name,
          skip.has(name) ? Config.succeed(Option.none()) : Config.option(reader as Config.Config<unknown>)
        ])
      )
    ),
    "JWKS_CACHE"
  ).pipe(
    Config.map((read) =>
      Object.fromEntries(Object.entries(read).map(([name, value]) => [name, Option.getOrUndefined(value)])) as Options
    )
  )

/**
 * The cache options from configuration (by default the environment), each optional: `STRATEGY`, `INTERVAL`,
 * `USAGES`, `BACKGROUND_REFRESH`, `BACKGROUND_REFRESH_THRESHOLD`, `MAX_STALE`, `UNKNOWN_KID_THROTTLE`, under the
 * `JWKS_CACHE_` prefix (`JWKS_CACHE_INTERVAL="10 minutes"`).
 *
 * @since 0.1.0
 * @category config
 * @example
 * ```ts
 * import { ConfigProvider, Effect } from "effect"
 * import * as JwksCache from "effect-jwks/JwksCache"
 *
 * const provider = ConfigProvider.fromJson({ JWKS_CACHE: { STRATEGY: "usage", USAGES: 5000 } })
 * const options = Effect.runSync(Effect.withConfigProvider(JwksCache.config, provider))
 * // { strategy: "usage", usages: 5000, interval: undefined, ... }
 * ```
 */
export const config: Config.Config<Options> = Config.mapOrFail(
  readVariables(new Set()),
  (options) =>
    Either.mapBoth(resolve(options), { onLeft: ConfigInternal.renameInvalid(variables), onRight: () => options })
)

/**
 * A cache whose options come from configuration (see {@link config}); `overrides` win over what is read: a variable
 * whose option the code sets is not read at all, nor one that the code's strategy leaves unused (with `cacheStrategy`,
 * neither `STRATEGY`, `INTERVAL` nor `USAGES`; with `strategy: "time"`, `USAGES`; with `"usage"`, `INTERVAL`), so a
 * value there that would be refused fails nothing. Every other variable that is set is read and checked.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * ```ts
 * import * as JwksCache from "effect-jwks/JwksCache"
 *
 * // JWKS_CACHE_STRATEGY=time JWKS_CACHE_INTERVAL="5 minutes"
 * const CacheLive = JwksCache.layerConfig()
 * ```
 */
export const layerConfig = (overrides?: Options): Layer.Layer<JwksCache, ConfigError.ConfigError, JwksSource> =>
  Layer.scoped(
    JwksCache,
    Effect.gen(function*() {
      const given = dropUndefined(overrides ?? {})
      // A variable whose option the code sets is not read, nor one the code's strategy leaves unused (`cacheStrategy`
      // sets the strategy, interval and usages; a `time` strategy counts no usages, a `usage` one has no interval), so
      // one that is set but unusable fails nothing; the others are checked with the code's options.
      const set = new Set(Object.keys(given))
      const moot = given.cacheStrategy !== undefined
        ? ["strategy", "interval", "usages"]
        : given.strategy === "time"
        ? ["usages"]
        : given.strategy === "usage"
        ? ["interval"]
        : []
      for (const name of moot) set.add(name)
      const options = { ...(yield* readVariables(set)), ...given }
      const names = Object.fromEntries(Object.entries(variables).filter(([name]) => !set.has(name)))
      const checked = resolve(options)
      if (Either.isLeft(checked)) return yield* Effect.fail(ConfigInternal.renameInvalid(names)(checked.left))
      return yield* make(yield* JwksSource, options)
    })
  )

const dropUndefined = <A extends object>(options: A): Partial<A> =>
  Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)) as Partial<A>
