/**
 * `npm start`: the examples one after another, each against the fake identity provider on loopback.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Effect from "effect/Effect"
import * as HttpServerExample from "./http-server.js"
import * as JwksCacheExample from "./jwks-cache.js"

NodeRuntime.runMain(
  Effect.gen(function*() {
    yield* JwksCacheExample.program.pipe(Effect.provide(JwksCacheExample.ExampleLive))
    yield* HttpServerExample.program.pipe(Effect.provide(HttpServerExample.ExampleLive))
  })
)
