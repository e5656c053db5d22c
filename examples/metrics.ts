/**
 * Observability: run traffic of good and bad tokens through a validator, print the metrics snapshot (the figures a
 * dashboard starts with) and the cache's own counters, then trace two validations with `@effect/opentelemetry` and
 * print their spans (the console exporter of OpenTelemetry; point it at your collector instead). Spans carry the
 * issuer, alg, kid and outcome, never the token.
 *
 * Run it alone with `npx tsx examples/metrics.ts`.
 */
import * as NodeSdk from "@effect/opentelemetry/NodeSdk"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { ConsoleSpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as JwksMetrics from "../src/JwksMetrics.js"
import * as Oidc from "../src/providers/Oidc.js"
import * as FakeIdp from "../src/testing/FakeIdp.js"
import { FakeIdpServer } from "./support.js"

const Tracing = NodeSdk.layer(() => ({
  resource: { serviceName: "effect-jwks-example" },
  spanProcessor: new SimpleSpanProcessor(new ConsoleSpanExporter())
}))

export const program = Effect.gen(function*() {
  const idp = yield* FakeIdp.FakeIdp
  yield* Console.log(`\n== Metrics: traffic against ${idp.issuer}`)
  const validator = yield* Oidc.make({ issuer: idp.issuer, audience: idp.audience })

  // 300 validations: mostly good tokens (a pool of 20, so the verified-token cache sees repeats), some bad ones.
  const good = yield* Effect.all(Array.from({ length: 20 }, (_, i) => idp.sign({ sub: `user-${i}` })))
  const expired = yield* idp.sign({}, { expiresIn: "-1 minute" })
  const foreign = yield* idp.sign({ aud: "another-api" })
  const forged = yield* idp.sign({}, { key: "unpublished", kid: yield* idp.currentKid })
  for (let i = 0; i < 300; i++) {
    const token = i % 10 === 7 ? expired : i % 10 === 8 ? foreign : i % 20 === 9 ? forged : good[i % good.length]!
    yield* Effect.ignore(validator.validate(token))
  }
  yield* Effect.ignore(validator.validate("garbage"))

  const s = yield* JwksMetrics.snapshot
  yield* Console.log(
    [
      `tokens validated  ${s.tokensValidated}`,
      `tokens failed     ${s.tokensFailed}`,
      `success rate      ${(s.successRate * 100).toFixed(1)} %`,
      `average           ${s.averageMs.toFixed(3)} ms`,
      `p50 / p95 / p99   ${s.p50Ms.toFixed(3)} / ${s.p95Ms.toFixed(3)} / ${s.p99Ms.toFixed(3)} ms`,
      `errors by type    ${JSON.stringify(s.errorsByType)}`,
      `uptime            ${s.uptimeSeconds.toFixed(1)} s`
    ].join("\n")
  )
  for (const status of yield* validator.keyStatus) {
    yield* Console.log(`JWKS fetches      ${status.fetches} (${status.source}), keys [${status.keyIds.join(", ")}]`)
  }

  yield* Console.log(`\n== Tracing two validations (OpenTelemetry console exporter)`)
  yield* Effect.gen(function*() {
    yield* Effect.ignore(validator.validate(good[0]!))
    yield* Effect.ignore(validator.validate(expired))
  }).pipe(Effect.provide(Tracing))
}).pipe(Effect.scoped)

export const ExampleLive = FakeIdpServer()

if (import.meta.url === `file://${process.argv[1]}`) {
  NodeRuntime.runMain(program.pipe(Effect.provide(ExampleLive)))
}
