import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientError from "@effect/platform/HttpClientError"
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Ref from "effect/Ref"
import * as TestClock from "effect/TestClock"
import * as Oidc from "../../src/providers/Oidc.js"
import * as FakeIdp from "../../src/testing/FakeIdp.js"
import { capturing } from "../support/logs.js"

const ISSUER = "https://login.example.test/realms/main"
const Idp = FakeIdp.layerTest({ issuer: ISSUER, audience: "orders-api" })

/** The fake IdP as an HttpClient; discovery answers after an async boundary, as a real request does. */
const clientOf = (idp: FakeIdp.FakeIdp["Type"]): HttpClient.HttpClient =>
  HttpClient.make((request, url) =>
    new URL(idp.issuer).origin !== url.origin
      ? Effect.fail(new HttpClientError.RequestError({ request, reason: "Transport", description: "unknown host" }))
      : Effect.map(
        Effect.zipLeft(idp.handle({ method: request.method, url }), Effect.yieldNow()),
        (reply) =>
          HttpClientResponse.fromWeb(
            request,
            new Response(reply.body, { status: reply.status, headers: reply.headers })
          )
      )
  )

describe("Oidc rediscovery", () => {
  it.scoped(
    "concurrent fetches of a failing discovery source ask discovery once per 5 minutes, wherever they yield",
    () =>
      Effect.gen(function*() {
        const idp = yield* FakeIdp.FakeIdp
        const extra: Array<string> = []
        // JwksSource used directly (the docs build one for a cache of the app's), 20 callers at once. Where a fiber
        // yields depends on how many operations it has run (2048 by default): the op budget is varied here, so that a
        // check and a claim of the rediscovery made in two steps would be split by a yield.
        for (let ops = 16; ops <= 48; ops++) {
          const discoveries = yield* Ref.make(0)
          const counting = HttpClient.make((request, url) =>
            Effect.zipRight(
              url.href === idp.discoveryUrl ? Ref.update(discoveries, (n) => n + 1) : Effect.void,
              clientOf(idp).execute(request)
            )
          )
          const source = yield* Oidc.discoverySource(ISSUER).pipe(
            Effect.provideService(HttpClient.HttpClient, counting)
          )
          yield* idp.setFault(FakeIdp.Fault.status(503))
          yield* Effect.either(source.fetch) // discovered; the key endpoint fails
          yield* TestClock.adjust("6 minutes")
          yield* Effect.all(Array.from({ length: 20 }, () => Effect.either(source.fetch)), { concurrency: "unbounded" })
            .pipe(
              Effect.withMaxOpsBeforeYield(ops),
              Effect.timeoutOption("1 second"),
              Effect.fork
            )
          yield* TestClock.adjust("2 seconds")
          yield* Effect.yieldNow()
          const count = yield* Ref.get(discoveries)
          if (count !== 2) extra.push(`op budget ${ops}: ${count} discoveries`)
        }
        expect(extra).toEqual([])
      }).pipe(Effect.provide(Idp)),
    20_000
  )

  it.scoped("a jwks_uri that moves while the old address still answers with the old keys is followed within the hour", () =>
    Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      // The document names `old` at first, a copy of the IdP's keys then. The IdP moves to its own jwks_uri and
      // rotates there; `old` keeps answering with the keys it had (a CDN copy, a legacy endpoint).
      const old = `${ISSUER}/certs-v1`
      const frozen = yield* idp.jwks
      let moved = false
      let discoveryDown = false
      const json = (request: HttpClientRequest.HttpClientRequest, body: unknown, status = 200) =>
        HttpClientResponse.fromWeb(
          request,
          new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } })
        )
      const client = HttpClient.make((request, url) =>
        url.href === old
          ? Effect.succeed(json(request, frozen))
          : url.href === idp.discoveryUrl
          ? Effect.succeed(
            discoveryDown
              ? json(request, { error: "down" }, 500)
              : json(request, { issuer: ISSUER, jwks_uri: moved ? idp.jwksUri : old })
          )
          : clientOf(idp).execute(request)
      )
      const source = yield* Oidc.discoverySource(ISSUER).pipe(Effect.provideService(HttpClient.HttpClient, client))
      const kids = Effect.map(source.fetch, (set) => set.keys.map((key) => (key as { readonly kid?: string }).kid))
      const first = yield* kids
      moved = true
      const rotated = yield* idp.rotate("replace")
      yield* TestClock.adjust("59 minutes")
      expect(yield* kids).toEqual(first)
      // An hour after the last discovery: asked again, though the old address answers.
      yield* TestClock.adjust("1 minute")
      expect(yield* kids).toEqual([rotated])
      // A routine discovery that fails changes nothing: the known jwks_uri keeps serving, and a warning says so.
      discoveryDown = true
      yield* TestClock.adjust("1 hour")
      const logs = capturing()
      expect(yield* logs.use(kids)).toEqual([rotated])
      expect(logs.entries.map(({ annotations, cause, level, message }) => ({
        level,
        message,
        annotations,
        status: cause?.includes("500")
      }))).toEqual([{
        level: "WARN",
        message: "OIDC rediscovery failed; the known jwks_uri stays in use",
        annotations: { module: "Oidc", discovery: idp.discoveryUrl, jwks_uri: idp.jwksUri },
        status: true
      }])
    }).pipe(Effect.provide(Idp)))

  it.scoped("a wall clock stepped back does not stop rediscovery for as long as the step", () =>
    Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      const source = yield* Oidc.discoverySource(ISSUER).pipe(
        Effect.provideService(HttpClient.HttpClient, clientOf(idp))
      )
      const start = 1_800_000_000_000
      yield* TestClock.setTime(start)
      yield* idp.setFault(FakeIdp.Fault.status(404))
      yield* Effect.flip(source.fetch) // discovered at `start`; the key endpoint answers 404 from now on
      // NTP steps the clock back an hour; then 10 minutes pass with every key fetch failing.
      yield* TestClock.setTime(start - 60 * 60_000)
      for (let i = 0; i < 10; i++) {
        yield* TestClock.adjust("1 minute")
        yield* Effect.either(source.fetch)
      }
      expect(yield* idp.discoveryCount).toBeGreaterThanOrEqual(2)
    }).pipe(Effect.provide(Idp)))
})
