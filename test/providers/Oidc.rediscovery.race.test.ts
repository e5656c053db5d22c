/**
 * The rediscovery claim is one Ref.modify, and the time it compares is read before it. A caller that read the clock,
 * then was descheduled while another read a later time and claimed, sees `now < askedAt`: not a clock stepped back.
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import { describe, expect, it } from "@effect/vitest"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Ref from "effect/Ref"
import * as Oidc from "../../src/providers/Oidc.js"
import * as FakeIdp from "../../src/testing/FakeIdp.js"

const ISSUER = "https://login.example.test/realms/main"
const Idp = FakeIdp.layerTest({ issuer: ISSUER, audience: "orders-api" })

describe("Oidc rediscovery claim vs. the clock read before it", () => {
  it.live(
    "two concurrent callers 1 ms apart, the earlier one descheduled after reading the clock: one rediscovery",
    () =>
      Effect.gen(function*() {
        const idp = yield* FakeIdp.FakeIdp
        const real = Clock.make()
        let now = 1_800_000_000_000
        let clockGate: Deferred.Deferred<void> | undefined
        const clock: Clock.Clock = {
          [Clock.ClockTypeId]: Clock.ClockTypeId,
          unsafeCurrentTimeMillis: () => now,
          unsafeCurrentTimeNanos: () => BigInt(now) * 1_000_000n,
          currentTimeMillis: Effect.suspend(() => {
            const t = now
            const gate = clockGate
            clockGate = undefined
            // The fiber read the time, then is descheduled before it uses it (any yield of a busy event loop).
            return gate === undefined ? Effect.succeed(t) : Effect.as(Deferred.await(gate), t)
          }),
          currentTimeNanos: Effect.sync(() => BigInt(now) * 1_000_000n),
          sleep: real.sleep
        }
        const discoveries = yield* Ref.make(0)
        let discoveryGate: Deferred.Deferred<void> | undefined
        const client = HttpClient.make((request, url) =>
          new URL(idp.issuer).origin !== url.origin
            ? Effect.fail(
              new HttpClientError.RequestError({ request, reason: "Transport", description: "unknown host" })
            )
            : Effect.gen(function*() {
              if (url.href === idp.discoveryUrl) {
                yield* Ref.update(discoveries, (n) => n + 1)
                // A rediscovery in flight (the IdP is slow while its key endpoint fails).
                if (discoveryGate !== undefined) yield* Deferred.await(discoveryGate)
              }
              const reply = yield* idp.handle({ method: request.method, url })
              return HttpClientResponse.fromWeb(
                request,
                new Response(reply.body, { status: reply.status, headers: reply.headers })
              )
            })
        )
        yield* Effect.gen(function*() {
          const source = yield* Oidc.discoverySource(ISSUER).pipe(Effect.provideService(HttpClient.HttpClient, client))
          yield* idp.setFault(FakeIdp.Fault.status(503))
          yield* Effect.either(source.fetch) // discovered; the key endpoint fails from now on
          expect(yield* Ref.get(discoveries)).toBe(1)
          now += 6 * 60_000
          discoveryGate = yield* Deferred.make<void>()
          // Caller A reads the time, then is descheduled.
          clockGate = yield* Deferred.make<void>()
          const gateA = clockGate
          const a = yield* Effect.fork(Effect.either(source.fetch))
          while (clockGate !== undefined) yield* Effect.yieldNow()
          // 1 ms later caller B reads the time, claims, and rediscovers (in flight).
          now += 1
          const b = yield* Effect.fork(Effect.either(source.fetch))
          while ((yield* Ref.get(discoveries)) < 2) yield* Effect.yieldNow()
          // A resumes: its time is 1 ms before B's claim.
          yield* Deferred.succeed(gateA, void 0)
          // Until A is done (it takes the known source) or has asked discovery too (then it waits at the gate).
          for (let i = 0; i < 10_000 && a.unsafePoll() === null && (yield* Ref.get(discoveries)) === 2; i++) {
            yield* Effect.yieldNow()
          }
          const count = yield* Ref.get(discoveries)
          yield* Deferred.succeed(discoveryGate, void 0)
          yield* Fiber.join(a)
          yield* Fiber.join(b)
          // One rediscovery per 5 minutes: 1 discovery + 1 rediscovery.
          expect(count).toBe(2)
        }).pipe(Effect.withClock(clock))
      }).pipe(Effect.provide(Idp), Effect.scoped),
    15_000
  )
})
