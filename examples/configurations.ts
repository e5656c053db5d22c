/**
 * Seven key cache configurations, one for each common situation, as named `JwksCache.Options` values: import the
 * one that fits (or copy it), pass it as a provider's `cache` option or to `JwksCache.layer`. The program builds a
 * cache with each against the fake identity provider on loopback and prints its status.
 *
 * Run it alone with `npx tsx examples/configurations.ts`.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Console from "effect/Console"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as JwksCache from "../src/JwksCache.js"
import * as JwksSource from "../src/JwksSource.js"
import * as FakeIdp from "../src/testing/FakeIdp.js"
import { FakeIdpServer, QuietLogs } from "./support.js"

/** Time-based, fetched on demand: the IdP rotates keys on a schedule you know, and traffic comes and goes. */
export const timeBased: JwksCache.Options = { strategy: "time", interval: "10 minutes", backgroundRefresh: false }

/** Usage-based, fetched on demand: a worker that validates in bursts and idles between them (no fetch while idle). */
export const usageBased: JwksCache.Options = { strategy: "usage", usages: 500, backgroundRefresh: false }

/** Combined, fetched on demand: age and use both bounded, whichever limit comes first. */
export const combined: JwksCache.Options = {
  strategy: "both",
  interval: "15 minutes",
  usages: 2000,
  backgroundRefresh: false
}

/** Background refresh (the defaults): a fiber refreshes at 80% of the lifetime, so no request waits for the IdP. */
export const backgroundRefresh: JwksCache.Options = {
  strategy: "both",
  interval: "20 minutes",
  usages: 1000,
  backgroundRefresh: true,
  backgroundRefreshThreshold: 0.8
}

/**
 * High traffic, a fleet of replicas: thousands of validations a second would spend a usage limit in moments, so time
 * alone; early, widely jittered refreshes; a long ride through IdP outages; unknown kids refetched once a minute.
 */
export const highTraffic: JwksCache.Options = {
  strategy: "time",
  interval: "1 hour",
  backgroundRefresh: true,
  backgroundRefreshThreshold: 0.5,
  backgroundRefreshJitter: 0.2,
  maxStale: "4 hours",
  unknownKidThrottle: "1 minute"
}

/**
 * Low traffic, high security: a revoked key stops working within minutes, nothing polls an idle IdP, and no stale
 * key is served when the IdP cannot be reached (fail closed: `JwksError`, 503).
 */
export const lowTrafficHighSecurity: JwksCache.Options = {
  strategy: "both",
  interval: "5 minutes",
  usages: 100,
  backgroundRefresh: false,
  maxStale: 0
}

/** Development, against a local IdP you restart and re-key: new keys at once, failures retried every second. */
export const development: JwksCache.Options = {
  strategy: "time",
  interval: "30 seconds",
  backgroundRefresh: false,
  unknownKidThrottle: 0,
  retry: Schedule.spaced("1 second")
}

/** All seven, by name. */
export const configurations = {
  timeBased,
  usageBased,
  combined,
  backgroundRefresh,
  highTraffic,
  lowTrafficHighSecurity,
  development
} as const satisfies Record<string, JwksCache.Options>

const statusLine = (status: JwksCache.Status): string =>
  [
    `strategy ${status.strategy.toLowerCase().padEnd(5)}`,
    `interval ${(status.interval === undefined ? "-" : Duration.format(status.interval)).padEnd(4)}`,
    `usages ${String(status.usages ?? "-").padEnd(5)}`,
    `background ${status.backgroundRefresh ? `at ${status.backgroundRefreshThreshold * 100}%` : "off"}`.padEnd(17),
    `${status.keyIds.length} key(s), ${status.fresh ? "fresh" : "not fresh"}`
  ].join("  ")

export const program = Effect.gen(function*() {
  const idp = yield* FakeIdp.FakeIdp
  yield* Console.log(`\n== Cache configurations, each loading ${idp.jwksUri}`)
  const source = yield* JwksSource.http(idp.jwksUri)
  for (const [name, options] of Object.entries(configurations)) {
    const status = yield* Effect.scoped(
      Effect.gen(function*() {
        const cache = yield* JwksCache.make(source, options)
        yield* cache.keys
        return yield* cache.status
      })
    )
    yield* Console.log(`${name.padEnd(22)} ${statusLine(status)}`)
  }
})

/** The layers this example needs: the fake IdP on loopback and an HTTP client. */
export const ExampleLive = Layer.merge(FakeIdpServer(), QuietLogs)

if (import.meta.url === `file://${process.argv[1]}`) {
  NodeRuntime.runMain(program.pipe(Effect.provide(ExampleLive)))
}
