/**
 * Every metric this library records, as Effect `Metric`s (export them with `@effect/opentelemetry` or read them with
 * `Metric.value`), plus a {@link snapshot} of the figures most dashboards start with.
 *
 * Names are prefixed `effect_jwks_`. Key-cache metrics carry a `source` tag: the source's name, for an HTTP source its
 * URL without user info or fragment, a query shown as `?redacted-` and 8 hex digits (Azure AD B2C's `?p=<policy>`), for
 * a discovered one the discovery URL so shown; `static` for `JwksSource.fromKeySet`; a second cache open over a source
 * of the same name at the same time adds ` #2` (its gauge would otherwise overwrite the first's).
 * `JwksCache.Service.source` is the value to filter by. Metrics live in Effect's global registry: counts add up across
 * every validator of the process.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"
import type * as MetricLabel from "effect/MetricLabel"
import * as MetricState from "effect/MetricState"
import * as Option from "effect/Option"
import type { Reason as JwksReason } from "./JwksError.js"
import { Reason, type Reason as TokenReason } from "./TokenValidationError.js"

const validationsName = "effect_jwks_validations_total"
const validationDurationName = "effect_jwks_validation_duration_ms"

/**
 * Validations, tagged `outcome` (`success` | `failure`) and, on failures, `reason`: a `TokenValidationError` reason,
 * or `KeysUnavailable` for a `JwksError`. A validation that got no answer is counted too: `interrupted` (its caller
 * went away first, say a request timeout while the identity provider hangs) or `defect` (code of yours it ran, an
 * issuer rule or the `check` hook, threw).
 *
 * @since 0.1.0
 * @category metrics
 * @example
 * ```ts
 * import { Effect, Metric } from "effect"
 * import * as JwksMetrics from "effect-jwks/JwksMetrics"
 *
 * const expired = JwksMetrics.validations.pipe(Metric.tagged("outcome", "failure"), Metric.tagged("reason", "Expired"))
 * const expiredCount = Effect.map(Metric.value(expired), (counter) => counter.count)
 * ```
 */
export const validations = Metric.counter(validationsName, {
  description: "Token validations, by outcome and reason",
  incremental: true
})

/**
 * Validation latency in milliseconds: p50, p95 and p99 over the last 5 minutes (at most 10,000 samples).
 *
 * @since 0.1.0
 * @category metrics
 * @example
 * ```ts
 * import { Effect, Metric } from "effect"
 * import * as JwksMetrics from "effect-jwks/JwksMetrics"
 * import * as TokenValidator from "effect-jwks/TokenValidator"
 *
 * // Validations in a fiber tagged with Effect.tagMetrics are recorded in that tag's series: a per-route latency.
 * // (snapshot adds up the counts of every series.)
 * const validate = TokenValidator.validate("eyJ...").pipe(Effect.tagMetrics("route", "/orders"))
 * const latency = Metric.tagged(JwksMetrics.validationDuration, "route", "/orders")
 * const slowest = Effect.map(Metric.value(latency), (summary) => summary.max)
 * ```
 */
export const validationDuration = Metric.summary({
  name: validationDurationName,
  description: "Token validation latency in milliseconds",
  maxAge: "5 minutes",
  maxSize: 10_000,
  error: 0.01,
  quantiles: [0.5, 0.95, 0.99]
})

/**
 * JWKS fetches, tagged `source`, `outcome` (`success`, `failure`, or `interrupted`: cut short as the cache closed)
 * and, on failures, the `JwksError` `reason`.
 *
 * @since 0.1.0
 * @category metrics
 * @example
 * ```ts
 * import { Effect, Metric } from "effect"
 * import * as JwksMetrics from "effect-jwks/JwksMetrics"
 *
 * const timeouts = JwksMetrics.fetches.pipe(
 *   Metric.tagged("source", "https://idp.example/.well-known/jwks.json"),
 *   Metric.tagged("outcome", "failure"),
 *   Metric.tagged("reason", "Timeout")
 * )
 * const timeoutCount = Effect.map(Metric.value(timeouts), (counter) => counter.count)
 * ```
 */
export const fetches = Metric.counter("effect_jwks_fetches_total", {
  description: "JWKS fetches, by outcome",
  incremental: true
})

/**
 * JWKS fetch latency in milliseconds (the fetch and the key import), tagged `source`. A background refresh's includes
 * the turns it gives the event loop between its steps (a millisecond or so each, more on a busy thread).
 *
 * @since 0.1.0
 * @category metrics
 * @example
 * ```ts
 * import { Effect, Metric } from "effect"
 * import * as JwksMetrics from "effect-jwks/JwksMetrics"
 *
 * const latency = Metric.tagged(JwksMetrics.fetchDuration, "source", "https://idp.example/.well-known/jwks.json")
 * const slowestFetch = Effect.map(Metric.value(latency), (histogram) => histogram.max)
 * ```
 */
export const fetchDuration = Metric.histogram(
  "effect_jwks_fetch_duration_ms",
  MetricBoundaries.exponential({ start: 5, factor: 2, count: 12 }),
  "JWKS fetch latency in milliseconds"
)

/**
 * Age in seconds of the key set being served, tagged `source`; set at each load, each background wake-up and each
 * status read.
 *
 * @since 0.1.0
 * @category metrics
 * @example
 * ```ts
 * import { Effect, Metric } from "effect"
 * import * as JwksMetrics from "effect-jwks/JwksMetrics"
 *
 * const age = Metric.tagged(JwksMetrics.keySetAge, "source", "https://idp.example/.well-known/jwks.json")
 * const olderThanAnHour = Effect.map(Metric.value(age), (gauge) => gauge.value > 3600)
 * ```
 */
export const keySetAge = Metric.gauge("effect_jwks_key_set_age_seconds", {
  description: "Age of the key set being served, in seconds"
})

/**
 * Validations served from an expired key set because no fresh one could be had (stale-if-error), tagged `source`.
 *
 * @since 0.1.0
 * @category metrics
 * @example
 * ```ts
 * import { Effect, Metric } from "effect"
 * import * as JwksMetrics from "effect-jwks/JwksMetrics"
 *
 * const stale = Metric.tagged(JwksMetrics.staleServes, "source", "https://idp.example/.well-known/jwks.json")
 * const health = Effect.map(Metric.value(stale), (counter) => counter.count > 0 ? "degraded" : "ok")
 * ```
 */
export const staleServes = Metric.counter("effect_jwks_stale_serves_total", {
  description: "Key lookups served from an expired key set while the provider was unreachable",
  incremental: true
})

/**
 * Refetches triggered by a token whose `kid` the set lacked, tagged `source`.
 *
 * @since 0.1.0
 * @category metrics
 * @example
 * ```ts
 * import { Effect, Metric } from "effect"
 * import * as JwksMetrics from "effect-jwks/JwksMetrics"
 *
 * // Roughly the key rotations seen: each new kid triggers one refetch.
 * const source = "https://idp.example/.well-known/jwks.json"
 * const refetches = Metric.tagged(JwksMetrics.unknownKidRefetches, "source", source)
 * const rotations = Effect.map(Metric.value(refetches), (counter) => counter.count)
 * ```
 */
export const unknownKidRefetches = Metric.counter("effect_jwks_unknown_kid_refetches_total", {
  description: "JWKS refetches triggered by an unknown kid",
  incremental: true
})

/**
 * Unknown-`kid` lookups refused without a refetch because of the throttle, or of a failed fetch's backoff, tagged
 * `source`.
 *
 * @since 0.1.0
 * @category metrics
 * @example
 * ```ts
 * import { Effect, Metric, Schedule } from "effect"
 * import * as JwksMetrics from "effect-jwks/JwksMetrics"
 *
 * const source = "https://idp.example/.well-known/jwks.json"
 * const throttled = Metric.tagged(JwksMetrics.unknownKidThrottled, "source", source)
 * const watch = Metric.value(throttled).pipe(
 *   Effect.tap((c) => c.count > 0 ? Effect.logWarning(`${c.count} unknown kids throttled`) : Effect.void),
 *   Effect.repeat(Schedule.spaced("1 minute"))
 * )
 * ```
 */
export const unknownKidThrottled = Metric.counter("effect_jwks_unknown_kid_throttled_total", {
  description: "Unknown-kid lookups answered without a refetch (throttled, or backing off after a failure)",
  incremental: true
})

/**
 * Refreshes run by the background fiber, tagged `source` and `outcome`.
 *
 * @since 0.1.0
 * @category metrics
 * @example
 * ```ts
 * import { Effect, Metric } from "effect"
 * import * as JwksMetrics from "effect-jwks/JwksMetrics"
 *
 * const failed = JwksMetrics.backgroundRefreshes.pipe(
 *   Metric.tagged("source", "https://idp.example/.well-known/jwks.json"),
 *   Metric.tagged("outcome", "failure")
 * )
 * const failedRefreshes = Effect.map(Metric.value(failed), (counter) => counter.count)
 * ```
 */
export const backgroundRefreshes = Metric.counter("effect_jwks_background_refreshes_total", {
  description: "Background JWKS refreshes, by outcome",
  incremental: true
})

/**
 * The reason a failed validation is counted under.
 *
 * @since 0.1.0
 * @category models
 * @example
 * ```ts
 * import type * as JwksMetrics from "effect-jwks/JwksMetrics"
 *
 * const status = (reason: JwksMetrics.FailureReason): 401 | 503 => {
 *   switch (reason) {
 *     case "KeysUnavailable":
 *       return 503
 *     default:
 *       return 401
 *   }
 * }
 * ```
 */
export type FailureReason = TokenReason | "KeysUnavailable"

const successCounter = Metric.tagged(validations, "outcome", "success")
const failureCounters = Object.fromEntries(
  [...Reason.literals, "KeysUnavailable" as const].map((reason) => [
    reason,
    Metric.tagged(Metric.tagged(validations, "outcome", "failure"), "reason", reason)
  ])
) as Record<FailureReason, Metric.Metric.Counter<number>>

const unansweredCounters = {
  interrupted: Metric.tagged(validations, "outcome", "interrupted"),
  defect: Metric.tagged(validations, "outcome", "defect")
}

/**
 * Records one validation, its outcome and its latency, at once: what `Metric.increment` and `Metric.update` do, with
 * the fiber's metric labels (`Effect.tagMetrics`) passed in, but without building an effect on the validation path.
 * `failure` is the reason of a refusal, or why no answer came (`interrupted`, `defect`); `undefined` for a success.
 *
 * @internal
 */
export const unsafeRecordValidation = (
  failure: FailureReason | "interrupted" | "defect" | undefined,
  millis: number,
  labels: ReadonlyArray<MetricLabel.MetricLabel>
): void => {
  ;(failure === undefined
    ? successCounter
    : failure === "interrupted" || failure === "defect"
    ? unansweredCounters[failure]
    : failureCounters[failure]).unsafeUpdate(1, labels)
  validationDuration.unsafeUpdate(millis, labels)
}

/**
 * The key-cache metrics of one source, tagged once.
 *
 * @internal
 */
export const forSource = (source: string) => {
  const tag = <M extends Metric.Metric<any, any, any>>(metric: M): M => Metric.tagged(metric, "source", source) as M
  const fetched = tag(fetches)
  return {
    fetchSucceeded: Metric.tagged(fetched, "outcome", "success"),
    fetchInterrupted: Metric.tagged(fetched, "outcome", "interrupted"),
    fetchFailed: (reason: JwksReason) => Metric.tagged(Metric.tagged(fetched, "outcome", "failure"), "reason", reason),
    fetchDuration: tag(fetchDuration),
    keySetAge: tag(keySetAge),
    staleServes: tag(staleServes),
    unknownKidRefetches: tag(unknownKidRefetches),
    unknownKidThrottled: tag(unknownKidThrottled),
    backgroundSucceeded: Metric.tagged(tag(backgroundRefreshes), "outcome", "success"),
    backgroundFailed: Metric.tagged(tag(backgroundRefreshes), "outcome", "failure")
  }
}

/**
 * The figures most dashboards start with, computed from the metrics above.
 *
 * @since 0.1.0
 * @category models
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import * as JwksMetrics from "effect-jwks/JwksMetrics"
 *
 * // An alert rule over the figures: most tokens refused or left unanswered (callers that gave up waiting for a
 * // hanging IdP count there, not in `total`), or validation slow.
 * const alerting = (s: JwksMetrics.Snapshot): boolean => {
 *   const all = s.total + s.unanswered.interrupted + s.unanswered.defect
 *   return all > 100 && (s.tokensValidated / all < 0.5 || s.p99Ms > 50)
 * }
 * const check = Effect.map(JwksMetrics.snapshot, alerting)
 * ```
 */
export interface Snapshot {
  readonly tokensValidated: number
  readonly tokensFailed: number
  /** Validations answered: validated and failed. */
  readonly total: number
  /** Validations that got no answer: interrupted (the caller went away first) or ended by a defect. */
  readonly unanswered: { readonly interrupted: number; readonly defect: number }
  /** Validated over total, 0 to 1; 1 when nothing was validated yet. Unanswered validations are not in it. */
  readonly successRate: number
  /** Over every validation, whatever the caller's metric tags. */
  readonly averageMs: number
  /**
   * Quantiles over the last 5 minutes of the series with the most validations (ever) among those with any in that
   * window: quantiles do not add up across the series of the caller's `Effect.tagMetrics` tags (read a tagged series
   * with `Metric.value`); a series busy earlier with a validation or two lately still outranks a newer, busier one.
   * 0 when no series has a validation in the window.
   */
  readonly p50Ms: number
  readonly p95Ms: number
  readonly p99Ms: number
  /** Failures by reason, only the reasons that occurred. */
  readonly errorsByType: Readonly<Partial<Record<FailureReason, number>>>
  /** Seconds since this module was loaded. */
  readonly uptimeSeconds: number
}

const startedAt = Date.now()

/**
 * Reads the validation metrics into a {@link Snapshot}.
 *
 * @since 0.1.0
 * @category accessors
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import * as JwksMetrics from "effect-jwks/JwksMetrics"
 *
 * const report = Effect.map(JwksMetrics.snapshot, (s) =>
 *   `${s.tokensValidated}/${s.total} ok, p99 ${s.p99Ms.toFixed(2)} ms, errors ${JSON.stringify(s.errorsByType)}`
 * )
 * ```
 */
export const snapshot: Effect.Effect<Snapshot> = Effect.map(Metric.snapshot, (pairs) => {
  // Every series of the two metrics, whatever other tags it carries (`Effect.tagMetrics` gives each tag set its own).
  let validated = 0
  let failed = 0
  const unanswered = { interrupted: 0, defect: 0 }
  const errorsByType: Partial<Record<FailureReason, number>> = {}
  const latencies: Array<MetricState.MetricState.Summary> = []
  for (const { metricKey, metricState } of pairs) {
    const tag = (key: string) => metricKey.tags.find((label) => label.key === key)?.value
    if (metricKey.name === validationsName && MetricState.isCounterState(metricState)) {
      const count = Number(metricState.count)
      const outcome = tag("outcome")
      if (outcome === "success") validated += count
      else if (outcome === "interrupted" || outcome === "defect") unanswered[outcome] += count
      else if (outcome === "failure") {
        const reason = tag("reason") as FailureReason
        errorsByType[reason] = (errorsByType[reason] ?? 0) + count
        failed += count
      }
    } else if (metricKey.name === validationDurationName && MetricState.isSummaryState(metricState)) {
      latencies.push(metricState)
    }
  }
  for (const reason of Object.keys(errorsByType) as Array<FailureReason>) {
    if (errorsByType[reason] === 0) delete errorsByType[reason]
  }
  // Quantiles cannot be merged across series: those of the series with the most validations (the untagged one
  // unless the app tags every validation), among those with any in the quantiles' window (a series busy this morning
  // and idle now would read as 0). The average covers them all.
  const busiest = latencies.reduce<MetricState.MetricState.Summary | undefined>(
    (most, state) =>
      state.quantiles.some(([, value]) => Option.isSome(value)) && (most === undefined || state.count > most.count)
        ? state
        : most,
    undefined
  )
  const quantile = (q: number) =>
    Option.getOrElse(busiest?.quantiles.find(([at]) => at === q)?.[1] ?? Option.none(), () => 0)
  const count = latencies.reduce((sum, state) => sum + state.count, 0)
  const total = validated + failed
  return {
    tokensValidated: validated,
    tokensFailed: failed,
    total,
    unanswered,
    successRate: total === 0 ? 1 : validated / total,
    averageMs: count === 0 ? 0 : latencies.reduce((sum, state) => sum + state.sum, 0) / count,
    p50Ms: quantile(0.5),
    p95Ms: quantile(0.95),
    p99Ms: quantile(0.99),
    errorsByType,
    uptimeSeconds: (Date.now() - startedAt) / 1000
  }
})
