/**
 * `npm start`: the examples one after another, each against the fake identity provider on loopback: the key cache at
 * work, the quick start, Cognito, Entra ID, the cache configurations, the HTTP server's self-test, then the metrics
 * and spans (last: the metrics are the process's, so its snapshot then counts every example's validations).
 *
 * Run it with `npx tsx examples/main.ts`; run one example alone with `npx tsx examples/<name>.ts`.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import type * as Layer from "effect/Layer"
import * as CognitoExample from "./cognito.js"
import * as ConfigurationsExample from "./configurations.js"
import * as EntraIdExample from "./entra-id.js"
import * as HttpServerExample from "./http-server.js"
import * as JwksCacheExample from "./jwks-cache.js"
import * as MetricsExample from "./metrics.js"
import * as QuickstartExample from "./quickstart.js"

/**
 * Runs an example with its layers in a fiber of its own, awaited rather than joined: what its layers set for the
 * fiber (such as a log level) stays with it, so each example prints as it does when run alone.
 */
const run = <A, E, R, E2>(example: {
  readonly program: Effect.Effect<A, E, R>
  readonly ExampleLive: Layer.Layer<R, E2>
}): Effect.Effect<A, E | E2> =>
  Effect.fork(Effect.provide(example.program, example.ExampleLive)).pipe(
    Effect.flatMap(Fiber.await),
    Effect.flatten
  )

NodeRuntime.runMain(
  Effect.gen(function*() {
    yield* run(JwksCacheExample)
    yield* run(QuickstartExample)
    yield* run(CognitoExample)
    yield* run(EntraIdExample)
    yield* run(ConfigurationsExample)
    yield* run(HttpServerExample)
    yield* run(MetricsExample)
  })
)
