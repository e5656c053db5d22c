import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as JwksSource from "../src/JwksSource.js"
import { recording } from "./support/tracing.js"

const jwksUrl = "https://keys.example.test/jwks.json"
const keySet = { keys: [{ kty: "EC", crv: "P-256", x: "x", y: "y", kid: "k1" }] }

/** The gateway in front of the IdP: keys only for a request carrying its API key (header or query). */
const gateway = () => {
  const seen: Array<string> = []
  const base = HttpClient.make((request, url) =>
    Effect.sync(() => {
      seen.push(`${url.href} key=${request.headers["x-api-key"] ?? url.searchParams.get("subscription-key")}`)
      const authorized = request.headers["x-api-key"] === "k" || url.searchParams.get("subscription-key") === "k"
      return HttpClientResponse.fromWeb(
        request,
        authorized ? Response.json(keySet) : new Response("no key", { status: 401 })
      )
    })
  )
  return { base, seen }
}

const fetchWith = (client: HttpClient.HttpClient) =>
  Effect.flatMap(Effect.orDie(JwksSource.http(jwksUrl)), (source) => Effect.either(source.fetch)).pipe(
    Effect.provideService(HttpClient.HttpClient, client)
  )

describe("JwksSource: JWKS fetch through an app's own HttpClient object", () => {
  it.effect("a client object whose execute adds the gateway's key header is used: its execute is not bypassed", () =>
    Effect.gen(function*() {
      const { base, seen } = gateway()
      const withKey = (request: HttpClientRequest.HttpClientRequest) =>
        base.execute(HttpClientRequest.setHeader(request, "x-api-key", "k"))
      // Two common ways to wrap a client: a spread copy, and an object inheriting from it. Both keep the base
      // client's `preprocess`/`postprocess`: its own `execute` is what must be called.
      const spread: HttpClient.HttpClient = { ...base, execute: withKey }
      const inherited = Object.assign(Object.create(base), { execute: withKey }) as HttpClient.HttpClient
      // What the app's own code gets from these clients: the keys.
      expect(yield* Effect.flatMap(spread.execute(HttpClientRequest.get(jwksUrl)), (r) => r.json)).toEqual(keySet)
      seen.length = 0
      const results = [yield* fetchWith(spread), yield* fetchWith(inherited)]
      expect(seen).toEqual([`${jwksUrl} key=k`, `${jwksUrl} key=k`])
      expect(results.map(Either.isRight)).toEqual([true, true])
    }))

  it.effect("a client object (not HttpClient.make's) that adds the gateway's key to the query is not refused", () =>
    Effect.gen(function*() {
      const { base } = gateway()
      // A client that is not made by HttpClient.make: what it adds to the query is not seen, and not refused.
      const custom = {
        execute: (request: HttpClientRequest.HttpClientRequest) =>
          base.execute(HttpClientRequest.appendUrlParam(request, "subscription-key", "k"))
      } as unknown as HttpClient.HttpClient
      const result = yield* fetchWith(custom)
      expect(Either.isRight(result) ? "keys" : [result.left.reason, result.left.description]).toBe("keys")
    }))

  it.effect("a client object of the app's own over a platform client makes no span of the whole URL when it holds a key", () =>
    Effect.gen(function*() {
      const { base, seen } = gateway()
      // Not HttpClient.make's: its own execute hands the request, as given, to a platform client within.
      const custom = {
        execute: (request: HttpClientRequest.HttpClientRequest) => base.execute(request)
      } as unknown as HttpClient.HttpClient
      const { spans, tracer } = recording()
      const source = yield* JwksSource.http(`${jwksUrl}?subscription-key=k`).pipe(
        Effect.provideService(HttpClient.HttpClient, custom)
      )
      const result = yield* Effect.either(source.fetch.pipe(Effect.withTracer(tracer)))
      expect(Either.isRight(result)).toBe(true)
      expect(seen).toEqual([`${jwksUrl}?subscription-key=k key=k`])
      // Ours only: the platform's `http.client` span, which records the whole URL, is not made.
      expect(spans.map((span) => span.name)).toEqual(["JwksSource.fetch"])
    }))
})
