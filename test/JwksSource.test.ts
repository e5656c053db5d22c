import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import { describe, expect, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import type * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Logger from "effect/Logger"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as TestClock from "effect/TestClock"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import * as Jwk from "../src/Jwk.js"
import * as JwksCache from "../src/JwksCache.js"
import { JwksError } from "../src/JwksError.js"
import * as JwksSource from "../src/JwksSource.js"
import * as FakeIdp from "../src/testing/FakeIdp.js"
import { recording } from "./support/tracing.js"

const IdpLive = FakeIdp.layerTest({ algorithm: "ES256" })

/** The source for the fake's JWKS endpoint, with the fake's `HttpClient`. */
const idpSource = (options?: JwksSource.HttpOptions) =>
  Effect.flatMap(FakeIdp.FakeIdp, (idp) => JwksSource.http(idp.jwksUri, options))

/** Runs an effect that must fail with a `JwksError`, and never die. */
const failureOf = <A>(effect: Effect.Effect<A, JwksError>) =>
  Effect.gen(function*() {
    const exit = yield* Effect.exit(effect)
    if (Exit.isSuccess(exit)) return expect.fail("expected a failure")
    expect(Cause.isDie(exit.cause)).toBe(false)
    const error = Cause.failureOption(exit.cause)
    if (Option.isNone(error)) return expect.fail("expected a JwksError")
    expect(error.value).toBeInstanceOf(JwksError)
    return error.value
  })

/** The failure of the fake's source with the given fault. */
const faultFailure = (fault: FakeIdp.Fault, options?: JwksSource.HttpOptions) =>
  Effect.gen(function*() {
    const idp = yield* FakeIdp.FakeIdp
    yield* idp.setFault(fault)
    const source = yield* idpSource(options)
    const error = yield* failureOf(source.fetch)
    expect(error.source).toBe(idp.jwksUri)
    return error
  })

const jwksUrl = "https://keys.example.test/jwks.json"

/** An `HttpClient` that answers every request with `respond`, counting requests. */
const clientOf = (respond: (request: HttpClientRequest.HttpClientRequest, url: URL) => Response) => {
  const requests: Array<string> = []
  const client = HttpClient.make((request, url) =>
    Effect.sync(() => {
      requests.push(`${request.method} ${url.href}`)
      return HttpClientResponse.fromWeb(request, respond(request, url))
    })
  )
  return { client, requests }
}

const fetchWith = (client: HttpClient.HttpClient, options?: JwksSource.HttpOptions) =>
  Effect.flatMap(
    Effect.orDie(JwksSource.http(jwksUrl, options)),
    (source) => source.fetch
  ).pipe(Effect.provideService(HttpClient.HttpClient, client))

const encoder = new TextEncoder()

/** A streamed body without `content-length`: `chunks` chunks of `chunkSize` bytes, counting the chunks pulled. */
const streamedBody = (chunks: number, chunkSize: number) => {
  const state = { pulled: 0 }
  const chunk = encoder.encode(" ".repeat(chunkSize))
  const body = () =>
    new ReadableStream<Uint8Array>({
      pull(controller) {
        if (state.pulled === chunks) return controller.close()
        state.pulled++
        controller.enqueue(chunk)
      }
    })
  return { body, state }
}

describe("JwksSource", () => {
  describe("http", () => {
    it.scoped("names its URL without user info or query: a key in them stays out of names, errors, metrics, logs", () =>
      Effect.gen(function*() {
        // An API gateway in front of the IdP that takes its key in the query string.
        const secret = "s3cr3t-subscription-key"
        const url = `https://reader:${secret}@keys.example.test/tenant/jwks.json?subscription-key=${secret}#${secret}`
        const { client, requests } = clientOf(() => new Response("unavailable", { status: 503 }))
        const source = yield* Effect.provideService(JwksSource.http(url), HttpClient.HttpClient, client)
        expect(source.name).toMatch(/^https:\/\/keys\.example\.test\/tenant\/jwks\.json\?redacted-[0-9a-f]{8}$/)
        const lines: Array<string> = []
        const logger = Logger.make(({ annotations, message }) => {
          lines.push(`${JSON.stringify(message)} ${JSON.stringify(Object.fromEntries(annotations))}`)
        })
        const { spans, tracer } = recording()
        const cache = yield* JwksCache.make(source, { backgroundRefresh: false }).pipe(
          Effect.provide(Logger.replace(Logger.defaultLogger, logger))
        )
        const error = yield* Effect.flip(
          cache.refresh.pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)), Effect.withTracer(tracer))
        )
        // The request itself goes to the whole URL.
        expect(requests).toHaveLength(1)
        expect(requests[0]).toContain(`subscription-key=${secret}`)
        expect(error.source).toBe(source.name)
        const labels = (yield* Metric.snapshot).flatMap(({ metricKey }) =>
          metricKey.name.startsWith("effect_jwks_") ? metricKey.tags.map((tag) => tag.value) : []
        )
        expect(labels).toContain(source.name)
        expect(lines.length).toBeGreaterThan(0)
        // Spans: ours, named redacted; the platform's own client span (which records the whole URL) is not made.
        expect(spans.map((span) => span.name)).toEqual(["JwksCache.refresh", "JwksSource.fetch"])
        const spanText = spans.flatMap((span) => [...span.attributes.values()].map(String))
        expect(
          [...labels, ...lines, ...spanText, error.message, String(error)].filter((text) => text.includes(secret))
        ).toEqual([])
      }))

    it.scoped("a key the app's client adds to the query keeps the platform's client span away, as one given does", () =>
      Effect.gen(function*() {
        const secret = "s3cr3t-gateway-key"
        const { client, requests } = clientOf(() => new Response("unavailable", { status: 503 }))
        const keyed = client.pipe(HttpClient.mapRequest(HttpClientRequest.setUrlParam("api_key", secret)))
        // A rule of the app's for its own spans (none for health checks) answers for this URL otherwise.
        const healthless = HttpClient.withTracerDisabledWhen((request) => request.url.endsWith("/health"))
        const { spans, tracer } = recording()
        // Its rule set again under a wrapper that runs the prepared request on the client within (followRedirects).
        const redirecting = healthless(keyed).pipe(HttpClient.followRedirects())
        const cases = [[client, jwksUrl], [keyed, jwksUrl], [healthless(keyed), jwksUrl], [
          healthless(client),
          `${jwksUrl}?api_key=${secret}`
        ], [redirecting, jwksUrl]] as const
        for (const [app, url] of cases) {
          const source = yield* Effect.provideService(JwksSource.http(url), HttpClient.HttpClient, app)
          yield* Effect.flip(source.fetch.pipe(Effect.withTracer(tracer)))
        }
        expect(requests[1]).toContain(`api_key=${secret}`)
        // A span of the platform's for the plain URL; none for the keyed ones.
        const fetchSpans = ["JwksSource.fetch", "JwksSource.fetch", "JwksSource.fetch", "JwksSource.fetch"]
        expect(spans.map((span) => span.name)).toEqual(["JwksSource.fetch", "http.client GET", ...fetchSpans])
        const spanText = spans.flatMap((span) => [...span.attributes.values()].map(String))
        expect(spanText.filter((text) => text.includes(secret))).toEqual([])
      }))

    it.scoped("a redirect's Location is redacted in the platform's client span (a signed link's query)", () =>
      Effect.gen(function*() {
        const secret = "s3cr3t-signature"
        const { client } = clientOf(() =>
          new Response(null, { status: 302, headers: { location: `https://cdn.example.test/jwks.json?sig=${secret}` } })
        )
        const { spans, tracer } = recording()
        const source = yield* Effect.provideService(JwksSource.http(jwksUrl), HttpClient.HttpClient, client)
        const error = yield* Effect.flip(source.fetch.pipe(Effect.withTracer(tracer)))
        expect(error.reason).toBe("HttpStatus")
        expect(spans.map((span) => span.name)).toContain("http.client GET")
        const spanText = spans.flatMap((span) => [...span.attributes.values()].map(String))
        expect(spanText.filter((text) => text.includes(secret))).toEqual([])
      }))

    it.effect("a URL named redacted: queries that differ keep two names; a relative one is cut as text; causes quote no URL", () =>
      Effect.gen(function*() {
        const secret = "s3cr3t"
        const name = (url: string) =>
          Effect.map(
            Effect.provideService(JwksSource.http(url), HttpClient.HttpClient, clientOf(() => new Response("")).client),
            (source) => source.name
          )
        // Azure AD B2C publishes each policy's keys at one path, told apart by ?p=.
        const signIn = yield* name(`${jwksUrl}?p=B2C_1_signin`)
        const signUp = yield* name(`${jwksUrl}?p=B2C_1_signup`)
        expect(signIn).not.toBe(signUp)
        expect([signIn, signUp].every((shown) => shown.startsWith(`${jwksUrl}?redacted-`))).toBe(true)
        expect(yield* name(jwksUrl)).toBe(jwksUrl)
        // User info the parser would misread: a password with `/`, `?` or `#` (the host's end to it, and what precedes
        // it a host and a port), a scheme left out (read as `user:`), a protocol-relative URL; an `@` after a query
        // begins. Nothing shown after the scheme but a hash keyed for this process; two such URLs keep two names.
        const ambiguous = [
          `https://reader:ab/${secret}@keys.example.test/jwks.json`,
          `https://reader:ab?${secret}@keys.example.test/jwks.json?k=1`,
          `https://reader:ab#${secret}@keys.example.test/jwks.json`,
          `https://reader:8080#${secret}@keys.example.test/jwks.json`,
          `https://reader:8080/${secret}@keys.example.test/jwks.json`,
          `https://reader8080?${secret}@keys.example.test/jwks.json`,
          `https://keys.example.test?x=a@${secret}`,
          `reader:${secret}@keys.example.test/jwks.json`,
          `//reader:${secret}@keys.example.test/jwks.json`,
          // A password holding `@` and `/` (the parser reads only its start as one), a user name holding `/` or `\`
          // before `:password`, slashes the parser skips after the scheme.
          `https://svc:p@ss/word-${secret}@keys.example.test/jwks.json`,
          `https://alice@example.com:2024/${secret}@keys.example.test/jwks.json`,
          `https://ab/cd:${secret}@keys.example.test/jwks.json`,
          `https://CORP\\svc-jwks:${secret}@keys.example.test/jwks.json`,
          `https:///reader:12/${secret}@keys.example.test/jwks.json`,
          // `//` spelled `/\` or with a tab between (the parser reads both as `//`), and an `@` written `%40` or full
          // width in a URL that does not parse.
          `/\\reader:${secret}@keys.example.test/jwks.json`,
          `/\t/reader:${secret}@keys.example.test/jwks.json`,
          `https://reader:${secret}%40keys.example.test/jwks.json`,
          `https://reader:${secret}\uFF20keys.example.test/jwks.json`
        ]
        const shown = new Set<string>()
        for (const url of ambiguous) {
          const named = yield* name(url)
          expect(named, url).toMatch(/^(https:)?(\/\/)?redacted-[0-9a-f]{8}$/)
          shown.add(named)
        }
        expect(shown.size).toBe(ambiguous.length)
        // Plain user info, found by the parser: dropped, the rest shown as parsed.
        expect(yield* name(`https://reader:${secret}@keys.example.test/jwks.json`)).toBe(jwksUrl)
        // An `@` in a path (Firebase's JWKS URL) or in a query after a path: shown as parsed, the query hashed whole.
        const firebase = "https://www.googleapis.com/service_accounts/v1/jwk/securetoken@system.gserviceaccount.com"
        expect(yield* name(firebase)).toBe(firebase)
        const hinted = yield* name(`${jwksUrl}?login_hint=a@b.example&subscription-key=${secret}`)
        expect(hinted).toMatch(/^https:\/\/keys\.example\.test\/jwks\.json\?redacted-[0-9a-f]{8}$/)
        // For an HttpClient that prepends the gateway's base URL.
        expect(yield* name(`/tenant/jwks.json?key=${secret}#${secret}`)).toMatch(
          /^\/tenant\/jwks\.json\?redacted-[0-9a-f]{8}$/
        )
        // A transport error's message may quote the URL (fetch refusing one with credentials does): withheld.
        const url = `https://reader:${secret}@keys.example.test/jwks.json`
        const failing = HttpClient.make((request) =>
          Effect.fail(
            new HttpClientError.RequestError({
              request,
              reason: "Transport",
              cause: new TypeError(`Request cannot be constructed from a URL that includes credentials: ${url}`)
            })
          )
        )
        const error = yield* Effect.flip(
          Effect.flatMap(Effect.orDie(JwksSource.http(url)), (source) => source.fetch).pipe(
            Effect.provideService(HttpClient.HttpClient, failing)
          )
        )
        expect(error.reason).toBe("Unreachable")
        expect(Cause.pretty(Cause.fail(error), { renderErrorCause: true })).not.toContain(secret)
        expect(String(error.cause)).toContain("TypeError")
        // The chain below keeps each level's name and code, what tells one outage from another (undici's
        // `fetch failed` over the socket's ECONNREFUSED).
        const refusing = HttpClient.make((request) =>
          Effect.fail(
            new HttpClientError.RequestError({
              request,
              reason: "Transport",
              cause: new TypeError(`fetch failed: ${url}`, {
                cause: Object.assign(new Error(`connect ECONNREFUSED ${url}`), { code: "ECONNREFUSED" })
              })
            })
          )
        )
        const refused = yield* Effect.flip(
          Effect.flatMap(Effect.orDie(JwksSource.http(url)), (source) => source.fetch).pipe(
            Effect.provideService(HttpClient.HttpClient, refusing)
          )
        )
        expect(Cause.pretty(Cause.fail(refused), { renderErrorCause: true })).not.toContain(secret)
        expect(((refused.cause as Error).cause as Error).message).toBe(
          "Error ECONNREFUSED (message withheld: it may show the URL)"
        )
      }))

    it.effect("a URL's fragment, or a bare ? ending one given as a path, is not part of its name", () =>
      Effect.gen(function*() {
        const name = (url: string) =>
          Effect.map(
            Effect.provideService(JwksSource.http(url), HttpClient.HttpClient, clientOf(() => new Response("")).client),
            (source) => source.name
          )
        expect(yield* name(`${jwksUrl}#s3cr3t`)).toBe(jwksUrl)
        expect(yield* name("/tenant/jwks.json?")).toBe("/tenant/jwks.json")
        expect(yield* name("/tenant/jwks.json?#s3cr3t")).toBe("/tenant/jwks.json")
        expect(yield* name("/tenant/jwks.json#s3cr3t")).toBe("/tenant/jwks.json")
      }))

    it.effect("fetches the published key set, and again on each fetch", () =>
      Effect.gen(function*() {
        const idp = yield* FakeIdp.FakeIdp
        const source = yield* idpSource()
        expect(source.name).toBe(idp.jwksUri)
        const set = yield* source.fetch
        expect(set).toEqual(yield* idp.jwks)
        expect(yield* idp.fetchCount).toBe(1)
        const imported = yield* Jwk.importKeySet(set, source.name)
        expect(imported.keys.map((key) => key.kid)).toEqual([yield* idp.currentKid])
        // The source keeps nothing: each fetch asks again and sees a rotation.
        const kid = yield* idp.rotate("replace")
        expect((yield* source.fetch).keys).toMatchObject([{ kid }])
        expect(yield* idp.fetchCount).toBe(2)
      }).pipe(Effect.provide(IdpLive)))

    it.effect("sends Accept: application/json and a GET", () =>
      Effect.gen(function*() {
        let seen: HttpClientRequest.HttpClientRequest | undefined
        const { client } = clientOf((request) => {
          seen = request
          return Response.json({ keys: [] })
        })
        expect(yield* fetchWith(client)).toEqual({ keys: [] })
        expect(seen?.method).toBe("GET")
        expect(seen?.headers["accept"]).toBe("application/json")
      }))

    it.effect.each([500, 503, 404, 401, 204])(
      "status %s is HttpStatus with the status",
      (status) =>
        Effect.gen(function*() {
          const error = yield* faultFailure(FakeIdp.Fault.status(status))
          expect(error.reason).toBe("HttpStatus")
          expect(error.status).toBe(status)
          expect(error.message).toBe(
            `HttpStatus ${status}: expected 200 (${FakeIdp.defaults.issuer}/.well-known/jwks.json)`
          )
        }).pipe(Effect.provide(IdpLive))
    )

    it.effect("a hanging endpoint is a Timeout after 5 seconds, not before", () =>
      Effect.gen(function*() {
        const idp = yield* FakeIdp.FakeIdp
        yield* idp.setFault(FakeIdp.Fault.hang)
        const source = yield* idpSource()
        const fiber = yield* Effect.fork(failureOf(source.fetch))
        yield* TestClock.adjust("4999 millis")
        expect(yield* Fiber.poll(fiber)).toEqual(Option.none())
        yield* TestClock.adjust("1 millis")
        const error = yield* Fiber.join(fiber)
        expect(error.reason).toBe("Timeout")
        expect(error.description).toBe("no complete answer within 5s")
      }).pipe(Effect.provide(IdpLive)))

    it.effect("a custom timeout applies", () =>
      Effect.gen(function*() {
        const idp = yield* FakeIdp.FakeIdp
        yield* idp.setFault(FakeIdp.Fault.hang)
        const source = yield* idpSource({ timeout: "1 second" })
        const fiber = yield* Effect.fork(failureOf(source.fetch))
        yield* TestClock.adjust("999 millis")
        expect(yield* Fiber.poll(fiber)).toEqual(Option.none())
        yield* TestClock.adjust("1 millis")
        const error = yield* Fiber.join(fiber)
        expect(error.reason).toBe("Timeout")
        expect(error.description).toBe("no complete answer within 1s")
      }).pipe(Effect.provide(IdpLive)))

    it.effect("latency below the timeout succeeds once it has passed; above it is a Timeout", () =>
      Effect.gen(function*() {
        const idp = yield* FakeIdp.FakeIdp
        const source = yield* idpSource()
        yield* idp.failNext(FakeIdp.Fault.latency("4 seconds"))
        const slow = yield* Effect.fork(source.fetch)
        yield* TestClock.adjust("3 seconds")
        expect(yield* Fiber.poll(slow)).toEqual(Option.none())
        yield* TestClock.adjust("1 second")
        expect(yield* Fiber.join(slow)).toEqual(yield* idp.jwks)

        yield* idp.failNext(FakeIdp.Fault.latency("6 seconds"))
        const tooSlow = yield* Effect.fork(failureOf(source.fetch))
        yield* TestClock.adjust("6 seconds")
        expect((yield* Fiber.join(tooSlow)).reason).toBe("Timeout")
      }).pipe(Effect.provide(IdpLive)))

    it.effect("a truncated body is InvalidJson", () =>
      Effect.gen(function*() {
        const error = yield* faultFailure(FakeIdp.Fault.invalidJson)
        expect(error.reason).toBe("InvalidJson")
        expect(error.description).toBe("body is not JSON")
      }).pipe(Effect.provide(IdpLive)))

    it.effect("JSON that is not a key set is InvalidShape", () =>
      Effect.gen(function*() {
        const error = yield* faultFailure(FakeIdp.Fault.wrongShape)
        expect(error.reason).toBe("InvalidShape")
        expect(error.description).toContain("keys")
        for (const body of [[], null, 42, "keys", { keys: {} }, { nokeys: [] }]) {
          const { client } = clientOf(() => Response.json(body))
          expect((yield* failureOf(fetchWith(client))).reason).toBe("InvalidShape")
        }
      }).pipe(Effect.provide(IdpLive)))

    it.effect("an empty set is fetched as it is (importing it is what fails)", () =>
      Effect.gen(function*() {
        const idp = yield* FakeIdp.FakeIdp
        yield* idp.setFault(FakeIdp.Fault.emptySet)
        const source = yield* idpSource()
        const set = yield* source.fetch
        expect(set).toEqual({ keys: [] })
        expect((yield* failureOf(Jwk.importKeySet(set, source.name))).reason).toBe("EmptyKeySet")
      }).pipe(Effect.provide(IdpLive)))

    it.effect("an oversized body is TooLarge under the default cap, and fine under a larger one", () =>
      Effect.gen(function*() {
        const error = yield* faultFailure(FakeIdp.Fault.oversized(600_000))
        expect(error.reason).toBe("TooLarge")
        expect(error.description).toMatch(/^content-length \d+ exceeds the limit of 524288 bytes$/)
        const larger = yield* idpSource({ maxBytes: 1_000_000 })
        const set = yield* larger.fetch
        expect(set.keys).toHaveLength(1)
      }).pipe(Effect.provide(IdpLive)))

    it.effect("limits that are not a finite timeout above zero and a positive whole maxBytes are a ConfigError", () =>
      Effect.gen(function*() {
        const path = (options: JwksSource.HttpOptions) =>
          Effect.map(
            Effect.flip(JwksSource.http(jwksUrl, options)),
            (error) => error._op === "InvalidData" ? error.path : error._op
          )
        // An unreadable duration used to die; NaN and Infinity silently lifted the limit they stand for.
        expect(yield* path({ timeout: "five seconds" as "5 seconds" })).toEqual(["timeout"])
        expect(yield* path({ timeout: Number.POSITIVE_INFINITY })).toEqual(["timeout"])
        expect(yield* path({ timeout: -1 })).toEqual(["timeout"])
        // Timers keep at most 2^31 - 1 ms (Effect's clock treats longer as never), and at least a millisecond.
        expect(yield* path({ timeout: "25 days" })).toEqual(["timeout"])
        expect(yield* path({ timeout: Duration.millis(2 ** 31) })).toEqual(["timeout"])
        expect(yield* path({ timeout: [0, 1] })).toEqual(["timeout"])
        expect((yield* JwksSource.http(jwksUrl, { timeout: "24 days" })).name).toBe(jwksUrl)
        expect(yield* path({ maxBytes: Number.NaN })).toEqual(["maxBytes"])
        expect(yield* path({ maxBytes: Number.POSITIVE_INFINITY })).toEqual(["maxBytes"])
        expect(yield* path({ maxBytes: 0 })).toEqual(["maxBytes"])
        expect((yield* JwksSource.http(jwksUrl, { timeout: 1, maxBytes: 1 })).name).toBe(jwksUrl)
        // A negative part of a [seconds, nanos] pair, as the other durations refuse it; options that are not an object
        // (`http: "3 seconds"` meant as the timeout), which would fall back to the defaults unseen.
        expect(yield* path({ timeout: [-1, 2e9] })).toEqual(["timeout"])
        for (const options of ["3 seconds", 5000, null]) {
          expect(yield* path(options as unknown as JwksSource.HttpOptions)).toEqual([])
        }
      }).pipe(Effect.provideService(HttpClient.HttpClient, HttpClient.make(() => Effect.die("no request expected")))))

    it.effect("a maxBytes that is not a whole number, or past the safe integers, is a ConfigError at maxBytes", () =>
      Effect.gen(function*() {
        const path = (options: JwksSource.HttpOptions) =>
          Effect.map(
            Effect.flip(JwksSource.http(jwksUrl, options)),
            (error) => error._op === "InvalidData" ? error.path : error._op
          )
        expect(yield* path({ maxBytes: 1024.5 })).toEqual(["maxBytes"])
        expect(yield* path({ maxBytes: 2 ** 53 })).toEqual(["maxBytes"])
        expect((yield* JwksSource.http(jwksUrl, { maxBytes: 2 ** 53 - 1 })).name).toBe(jwksUrl)
      }).pipe(Effect.provideService(HttpClient.HttpClient, HttpClient.make(() => Effect.die("no request expected")))))

    it.effect("a custom maxBytes caps an ordinary key set", () =>
      Effect.gen(function*() {
        const idp = yield* FakeIdp.FakeIdp
        const size = encoder.encode(JSON.stringify(yield* idp.jwks)).byteLength
        const exact = yield* idpSource({ maxBytes: size })
        expect((yield* exact.fetch).keys).toHaveLength(1)
        const below = yield* idpSource({ maxBytes: size - 1 })
        const error = yield* failureOf(below.fetch)
        expect(error.reason).toBe("TooLarge")
        expect(error.description).toBe(`content-length ${size} exceeds the limit of ${size - 1} bytes`)
      }).pipe(Effect.provide(IdpLive)))

    it.effect("a streamed body without content-length is cut off at the cap, without reading it all", () =>
      Effect.gen(function*() {
        const { body, state } = streamedBody(200, 16 * 1024)
        let contentLength: string | null = "unset"
        const { client } = clientOf(() => {
          const response = new Response(body(), { status: 200, headers: { "content-type": "application/json" } })
          contentLength = response.headers.get("content-length")
          return response
        })
        const error = yield* failureOf(fetchWith(client, { maxBytes: 64 * 1024 }))
        expect(contentLength).toBeNull()
        expect(error.reason).toBe("TooLarge")
        expect(error.description).toBe("body exceeds the limit of 65536 bytes")
        // 5 chunks pass the cap; a stream may read a little ahead, but nowhere near the 200 on offer.
        expect(state.pulled).toBeGreaterThanOrEqual(5)
        expect(state.pulled).toBeLessThan(10)
      }))

    it.effect("a body of a declared length is read whole, leaving the request open for reuse; others are streamed", () =>
      Effect.gen(function*() {
        const json = JSON.stringify({ keys: [] })
        const signals: Array<AbortSignal> = []
        const client = (headers: Record<string, string>) =>
          HttpClient.make((request, _url, signal) =>
            Effect.sync(() => {
              signals.push(signal)
              return HttpClientResponse.fromWeb(request, new Response(json, { status: 200, headers }))
            })
          )
        const length = String(json.length)
        yield* fetchWith(client({ "content-length": length }))
        yield* fetchWith(client({ "content-length": length, "content-encoding": "identity" }))
        // The platform aborts a request once its body stream has been read: that is the streamed path.
        yield* fetchWith(client({}))
        yield* Effect.either(fetchWith(client({ "content-length": length, "content-encoding": "gzip" })))
        // Only a plain decimal length counts as declared.
        yield* Effect.either(fetchWith(client({ "content-length": "" })))
        yield* Effect.either(fetchWith(client({ "content-length": "1e3" })))
        expect(signals.map((signal) => signal.aborted)).toEqual([false, false, true, true, true, true])
      }))

    it.effect("a content-length of Infinity declares no length: the body is streamed under the cap, not refused", () =>
      Effect.gen(function*() {
        const { client } = clientOf(() =>
          new Response(JSON.stringify({ keys: [] }), { status: 200, headers: { "content-length": "Infinity" } })
        )
        expect(yield* fetchWith(client, { maxBytes: 1000 })).toEqual({ keys: [] })
      }))

    it.effect("a content-length of ten digits or more (leading zeros) is not trusted as declared: the body is streamed", () =>
      Effect.gen(function*() {
        const json = JSON.stringify({ keys: [] })
        const signals: Array<AbortSignal> = []
        const client = (length: string) =>
          HttpClient.make((request, _url, signal) =>
            Effect.sync(() => {
              signals.push(signal)
              return HttpClientResponse.fromWeb(
                request,
                new Response(json, { status: 200, headers: { "content-length": length } })
              )
            })
          )
        expect(yield* fetchWith(client(String(json.length).padStart(9, "0")))).toEqual({ keys: [] })
        expect(yield* fetchWith(client(String(json.length).padStart(10, "0")))).toEqual({ keys: [] })
        // Nine digits are read whole (the request left open); ten are streamed (the platform aborts it once read).
        expect(signals.map((signal) => signal.aborted)).toEqual([false, true])
      }))

    it.effect("a content-length that understates the body does not lift the cap", () =>
      Effect.gen(function*() {
        const { client } = clientOf(() =>
          new Response(`{"keys":[],"pad":"${"x".repeat(5000)}"}`, { status: 200, headers: { "content-length": "10" } })
        )
        const error = yield* failureOf(fetchWith(client, { maxBytes: 1000 }))
        expect(error.reason).toBe("TooLarge")
      }))

    it.effect("a streamed body of exactly maxBytes is read; one byte more is TooLarge", () =>
      Effect.gen(function*() {
        const json = (size: number) => {
          const text = `{"keys":[]}`
          return encoder.encode(text + " ".repeat(size - text.length))
        }
        const streamOf = (bytes: Uint8Array) =>
          new ReadableStream<Uint8Array>({
            start(controller) {
              controller.enqueue(bytes.subarray(0, 100))
              controller.enqueue(bytes.subarray(100))
              controller.close()
            }
          })
        const exact = clientOf(() => new Response(streamOf(json(300)), { status: 200 }))
        expect(yield* fetchWith(exact.client, { maxBytes: 300 })).toEqual({ keys: [] })
        const over = clientOf(() => new Response(streamOf(json(301)), { status: 200 }))
        expect((yield* failureOf(fetchWith(over.client, { maxBytes: 300 }))).reason).toBe("TooLarge")
      }))

    it.effect("a body that is not UTF-8 is InvalidJson", () =>
      Effect.gen(function*() {
        const latin1 = new Uint8Array([...encoder.encode(`{"keys":[],"name":"`), 0xe9, ...encoder.encode(`"}`)])
        const { client } = clientOf(() => new Response(latin1, { status: 200 }))
        const error = yield* failureOf(fetchWith(client))
        expect(error.reason).toBe("InvalidJson")
        expect(error.description).toBe("body is not UTF-8")
        // The same document in UTF-8 (with a byte order mark) is fine.
        const utf8 = new Uint8Array([0xef, 0xbb, 0xbf, ...encoder.encode(`{"keys":[],"name":"\u00e9"}`)])
        const good = clientOf(() => new Response(utf8, { status: 200 }))
        expect(yield* fetchWith(good.client)).toEqual({ keys: [] })
      }))

    it.effect("a host that cannot be reached is Unreachable", () =>
      Effect.gen(function*() {
        const source = yield* JwksSource.http("https://elsewhere.example.test/jwks.json")
        const error = yield* failureOf(source.fetch)
        expect(error.reason).toBe("Unreachable")
        expect(error.source).toBe("https://elsewhere.example.test/jwks.json")
        // With the client's own account of it (the fake's), except for a URL that holds a secret the account may repeat.
        expect(error.description).toBe(
          "Transport: FakeIdp serves https://idp.example.test only, not https://elsewhere.example.test"
        )
        const keyed = yield* failureOf(
          (yield* JwksSource.http("https://elsewhere.example.test/jwks.json?key=s3")).fetch
        )
        expect(keyed.description).toBe("Transport")
        // Judged by the URL as configured too: a client of the app's whose error carries a request of its own making
        // (without the key) while its account repeats the URL it was given.
        const rebuilding = HttpClient.make((_request, url) =>
          Effect.fail(
            new HttpClientError.RequestError({
              request: HttpClientRequest.get(`${url.origin}${url.pathname}`),
              reason: "Transport",
              description: `could not reach ${url.href}`
            })
          )
        )
        const rebuilt = yield* failureOf(
          (yield* JwksSource.http("https://keys.example.test/jwks.json?key=s3").pipe(
            Effect.provideService(HttpClient.HttpClient, rebuilding)
          )).fetch
        )
        expect(rebuilt.description).toBe("Transport")
        // Nor for a URL the app's client keys itself (`mapRequest`), when its account names the URL it prepared.
        const naming = HttpClient.make((request) =>
          Effect.fail(
            new HttpClientError.RequestError({
              request,
              reason: "Transport",
              description: `could not reach ${Option.getOrThrow(HttpClientRequest.toUrl(request)).href}`,
              cause: new Error(`connect ECONNREFUSED ${Option.getOrThrow(HttpClientRequest.toUrl(request)).href}`)
            })
          )
        )
        for (
          const client of [
            naming.pipe(HttpClient.mapRequest(HttpClientRequest.setUrlParam("api_key", "s3cret-gateway-key"))),
            naming.pipe(HttpClient.mapRequestEffect((request) =>
              Effect.succeed(HttpClientRequest.setUrlParam(request, "api_key", "s3cret-gateway-key"))
            ))
          ]
        ) {
          const gated = yield* JwksSource.http("https://keys.example.test/jwks.json").pipe(
            Effect.provideService(HttpClient.HttpClient, client)
          )
          const error = yield* failureOf(gated.fetch)
          expect(error.description).toBe("Transport")
          expect((error.cause as Error).message).toBe("Error (message withheld: it may show the URL)")
        }
        // Nor when the client fails with something else (a throw of its own) that names that URL.
        const throwing = HttpClient.make((request) =>
          Effect.die(new Error(`could not reach ${Option.getOrThrow(HttpClientRequest.toUrl(request)).href}`))
        ).pipe(HttpClient.mapRequest(HttpClientRequest.setUrlParam("api_key", "s3cret-gateway-key")))
        const thrown = yield* failureOf(
          (yield* JwksSource.http("https://keys.example.test/jwks.json").pipe(
            Effect.provideService(HttpClient.HttpClient, throwing)
          )).fetch
        )
        expect([thrown.description, (thrown.cause as Error).message]).toEqual([
          "the HTTP client failed",
          "Error (message withheld: it may show the URL)"
        ])
      }).pipe(Effect.provide(IdpLive)))

    it.effect("a key the app's client adds stays withheld from a failure when two fetches of one source overlap", () =>
      Effect.gen(function*() {
        // The app's client fails with an error quoting the URL it was given (a circuit breaker), after a gateway key
        // is added to it by a `mapRequestEffect` (read from a vault: the second time slowly).
        let calls = 0
        const quoting = HttpClient.make((_request, url) =>
          Effect.zipRight(Effect.sleep("50 millis"), Effect.die(new Error(`circuit open for ${url.href}`)))
        )
        const keyed = quoting.pipe(HttpClient.mapRequestEffect((request) =>
          Effect.as(
            calls++ === 0 ? Effect.void : Effect.sleep("300 millis"),
            HttpClientRequest.setUrlParam(request, "api_key", "s3cret-gateway-key")
          )
        ))
        const source = yield* JwksSource.http("https://keys.example.test/jwks.json").pipe(
          Effect.provideService(HttpClient.HttpClient, keyed)
        )
        // The first fetch fails while the second's request is not yet prepared: judged by its own request.
        const first = yield* Effect.fork(Effect.flip(source.fetch))
        yield* TestClock.adjust("10 millis")
        const second = yield* Effect.fork(Effect.exit(source.fetch))
        yield* TestClock.adjust("100 millis")
        const error = yield* Fiber.join(first)
        yield* Fiber.interrupt(second)
        expect([error.reason, (error.cause as Error).message]).toEqual([
          "Unreachable",
          "Error (message withheld: it may show the URL)"
        ])
      }))

    it.effect("a transport failure's account: none shown when it is empty, cut at 200 characters when long", () =>
      Effect.gen(function*() {
        const failingWith = (description: string) =>
          HttpClient.make((request) =>
            Effect.fail(new HttpClientError.RequestError({ request, reason: "Transport", description }))
          )
        const empty = yield* failureOf(fetchWith(failingWith("")))
        expect([empty.reason, empty.description]).toEqual(["Unreachable", "Transport"])
        const long = yield* failureOf(fetchWith(failingWith("x".repeat(300))))
        expect([long.reason, long.description]).toEqual([
          "Unreachable",
          `Transport: ${"x".repeat(200)}... (300 characters)`
        ])
      }))

    it.effect("a key in the URL as configured is withheld from a failure, even when the app's client drops it before sending", () =>
      Effect.gen(function*() {
        const secret = "s3cr3t-key"
        // The app's client moves the key out of the query (into a header, say) and fails with an account naming it.
        const failing = HttpClient.make((request) =>
          Effect.fail(
            new HttpClientError.RequestError({
              request,
              reason: "Transport",
              description: `refused the key ${secret}`,
              cause: new Error(`refused the key ${secret}`)
            })
          )
        ).pipe(
          HttpClient.mapRequest((request) =>
            HttpClientRequest.setUrlParams(HttpClientRequest.setUrl(request, jwksUrl), [])
          )
        )
        const source = yield* JwksSource.http(`${jwksUrl}?key=${secret}`).pipe(
          Effect.provideService(HttpClient.HttpClient, failing)
        )
        const error = yield* failureOf(source.fetch)
        expect([error.reason, error.description]).toEqual(["Unreachable", "Transport"])
        expect(Cause.pretty(Cause.fail(error), { renderErrorCause: true })).not.toContain(secret)
      }))

    it.effect("a body that breaks off is Unreachable, saying how: the platform's reason (Decode) while reading it", () =>
      Effect.gen(function*() {
        const { client } = clientOf(() =>
          new Response(
            new ReadableStream({
              start(controller) {
                controller.enqueue(encoder.encode(`{"keys":[`))
                controller.error(new Error("connection reset"))
              }
            }),
            { status: 200 }
          )
        )
        const error = yield* failureOf(fetchWith(client))
        expect([error.reason, error.description]).toEqual(["Unreachable", "Decode while reading the body"])
      }))

    it.effect("a redirect is not followed: it is HttpStatus 302", () =>
      Effect.gen(function*() {
        const { client, requests } = clientOf((_, url) =>
          url.href === jwksUrl
            ? new Response(null, { status: 302, headers: { location: "https://attacker.example.test/jwks.json" } })
            : Response.json({ keys: [] })
        )
        const error = yield* failureOf(fetchWith(client))
        expect(error.reason).toBe("HttpStatus")
        expect(error.status).toBe(302)
        expect(requests).toEqual([`GET ${jwksUrl}`])
      }))

    it.effect("with the fetch client, asks fetch not to follow redirects, whatever the app's RequestInit says", () =>
      Effect.gen(function*() {
        const inits: Array<RequestInit | undefined> = []
        const fakeFetch = (async (_input: string | URL | Request, init?: RequestInit) => {
          inits.push(init)
          // What fetch does: follow, unless told "manual".
          return init?.redirect === "manual"
            ? new Response(null, { status: 302, headers: { location: "https://attacker.example.test/jwks.json" } })
            : Response.json({ keys: [] })
        }) as typeof globalThis.fetch
        const error = yield* failureOf(
          Effect.flatMap(Effect.orDie(JwksSource.http(jwksUrl)), (source) => source.fetch).pipe(
            Effect.provide(FetchHttpClient.layer),
            Effect.provideService(FetchHttpClient.Fetch, fakeFetch),
            // The app's own options are kept, but not its `redirect: "follow"`.
            Effect.provideService(FetchHttpClient.RequestInit, {
              credentials: "omit",
              keepalive: true,
              redirect: "follow"
            })
          )
        )
        expect(error.reason).toBe("HttpStatus")
        expect(error.status).toBe(302)
        expect(inits).toHaveLength(1)
        expect(inits[0]).toMatchObject({ redirect: "manual", credentials: "omit", keepalive: true, method: "GET" })
      }))

    it.effect("a client that follows redirects itself (HttpClient.followRedirects): HttpStatus, the keys there unused", () =>
      Effect.gen(function*() {
        const attacker = "https://attacker.example.test/jwks.json"
        const { client, requests } = clientOf((_, url) =>
          url.href === jwksUrl
            ? new Response(null, { status: 302, headers: { location: attacker } })
            : Response.json({ keys: [{ kty: "EC", crv: "P-256", x: "x", y: "y", kid: "attacker" }] })
        )
        const error = yield* failureOf(fetchWith(HttpClient.followRedirects(client)))
        expect([error.reason, error.description]).toEqual([
          "HttpStatus",
          "the answer is for another URL: redirects are not followed"
        ])
        // The app's client asked there; the answer is not used.
        expect(requests).toEqual([`GET ${jwksUrl}`, `GET ${attacker}`])
      }))

    it.effect("a client that follows a redirect to the same path with another query: HttpStatus too", () =>
      Effect.gen(function*() {
        const { client, requests } = clientOf((_, url) =>
          url.search === ""
            ? new Response(null, { status: 302, headers: { location: "/jwks.json?tenant=attacker" } })
            : Response.json({ keys: [{ kty: "EC", crv: "P-256", x: "x", y: "y", kid: "attacker" }] })
        )
        expect((yield* failureOf(fetchWith(HttpClient.followRedirects(client)))).reason).toBe("HttpStatus")
        expect(requests).toEqual([`GET ${jwksUrl}`, `GET ${jwksUrl}?tenant=attacker`])
      }))

    it.effect("a client that prepares the URL itself (a gateway key in the query) is answered for it, query or not", () =>
      Effect.gen(function*() {
        const idp = yield* FakeIdp.FakeIdp
        const base = yield* HttpClient.HttpClient
        const clients = [
          HttpClient.mapRequest(base, HttpClientRequest.appendUrlParam("subscription-key", "k")),
          HttpClient.mapRequest(base, (request) => {
            const url = new URL(request.url)
            url.searchParams.set("subscription-key", "k")
            return HttpClientRequest.setUrl(request, url)
          })
        ]
        // Azure AD B2C's key set URL names its policy in the query.
        for (const url of [idp.jwksUri, `${idp.jwksUri}?p=b2c_1_signin`]) {
          for (const client of clients) {
            const set = yield* Effect.flatMap(Effect.orDie(JwksSource.http(url)), (source) => source.fetch).pipe(
              Effect.provideService(HttpClient.HttpClient, client)
            )
            expect(set.keys).toHaveLength(1)
          }
        }
      }).pipe(Effect.provide(IdpLive)))

    it.effect("with the undici client, asks its dispatcher to make no redirect, keeping the app's options", () =>
      Effect.gen(function*() {
        // A dispatcher may carry undici's redirect interceptor, which follows unless the request says 0.
        const seen: Array<Record<string, unknown>> = []
        const dispatcher = {
          request: (options: Record<string, unknown>) => {
            seen.push(options)
            return Promise.reject(new Error("no network here"))
          }
        } as unknown as Context.Tag.Service<typeof NodeHttpClient.Dispatcher>
        const error = yield* failureOf(
          Effect.flatMap(Effect.orDie(JwksSource.http(jwksUrl)), (source) => source.fetch).pipe(
            Effect.provide(NodeHttpClient.layerUndiciWithoutDispatcher),
            Effect.provideService(NodeHttpClient.Dispatcher, dispatcher),
            // An app's own options (undici 7 refuses a nonzero `maxRedirections` here, so none of that).
            Effect.provideService(
              NodeHttpClient.UndiciRequestOptions,
              { blocking: false } as unknown as Context.Tag.Service<NodeHttpClient.UndiciRequestOptions>
            )
          )
        )
        expect(error.reason).toBe("Unreachable")
        expect(seen).toHaveLength(1)
        expect(seen[0]).toMatchObject({ maxRedirections: 0, blocking: false, method: "GET" })
      }))

    it.effect("a client that refuses statuses itself (filterStatusOk): HttpStatus with the status and its Retry-After, the body ended", () =>
      Effect.gen(function*() {
        const signals: Array<AbortSignal> = []
        const base = HttpClient.make((request, _url, signal) =>
          Effect.sync(() => {
            signals.push(signal)
            return HttpClientResponse.fromWeb(
              request,
              new Response("down for maintenance", { status: 503, headers: { "retry-after": "120" } })
            )
          })
        )
        for (const client of [base, HttpClient.filterStatusOk(base)]) {
          const error = yield* failureOf(fetchWith(client))
          expect([error.reason, error.status, error.retryAfter]).toEqual(["HttpStatus", 503, 120])
        }
        // The request aborted, its connection not left to the garbage collector.
        expect(signals.map((signal) => signal.aborted)).toEqual([true, true])
      }))

    it.effect("a client of the app's whose Retry-After is not a string: HttpStatus without a wait, never a defect", () =>
      Effect.gen(function*() {
        const client = HttpClient.make((request) => {
          const web = HttpClientResponse.fromWeb(request, new Response("slow down", { status: 429 }))
          // As a JavaScript client may hand it back: a number where a string belongs.
          return Effect.succeed(Object.create(web, { headers: { value: { "retry-after": 120 } } }))
        })
        const error = yield* failureOf(fetchWith(client))
        expect([error.reason, error.status, error.retryAfter]).toEqual(["HttpStatus", 429, undefined])
      }))

    it.effect("an empty Retry-After asks for no wait: HttpStatus without one, not a wait of 0", () =>
      Effect.gen(function*() {
        const { client } = clientOf(() => new Response("down", { status: 503, headers: { "retry-after": "" } }))
        const error = yield* failureOf(fetchWith(client))
        expect([error.reason, error.status, error.retryAfter]).toEqual(["HttpStatus", 503, undefined])
      }))

    it.effect("a Retry-After of seconds with white space around it, from a client of the app's, is read", () =>
      Effect.gen(function*() {
        const client = HttpClient.make((request) => {
          const web = HttpClientResponse.fromWeb(request, new Response("slow down", { status: 429 }))
          // A web Response trims its header values; a JavaScript client may hand back one untrimmed.
          return Effect.succeed(Object.create(web, { headers: { value: { "retry-after": " 120 " } } }))
        })
        const error = yield* failureOf(fetchWith(client))
        expect([error.reason, error.status, error.retryAfter]).toEqual(["HttpStatus", 429, 120])
      }))

    it.effect("a Retry-After date counts whole seconds up: 59.5 seconds away is a wait of 60", () =>
      Effect.gen(function*() {
        const { client } = clientOf(() =>
          new Response("down", { status: 503, headers: { "retry-after": "Thu, 01 Jan 1970 00:01:00 GMT" } })
        )
        yield* TestClock.adjust("500 millis")
        const error = yield* failureOf(fetchWith(client))
        expect([error.reason, error.status, error.retryAfter]).toEqual(["HttpStatus", 503, 60])
      }))

    it.effect("a Retry-After as an RFC 850 date on a Wednesday (the longest day name) is read", () =>
      Effect.gen(function*() {
        const { client } = clientOf(() =>
          new Response("down", { status: 503, headers: { "retry-after": "Wednesday, 07-Jan-70 00:00:00 GMT" } })
        )
        const error = yield* failureOf(fetchWith(client))
        expect([error.reason, error.status, error.retryAfter]).toEqual(["HttpStatus", 503, 6 * 24 * 60 * 60])
      }))

    it.effect("a client failing with something other than an HttpClientError (its own timeout): Unreachable", () =>
      Effect.gen(function*() {
        // What an app's client built with combinators of its own (here `Effect.timeout`) fails with.
        const client = HttpClient.make(() => Effect.fail(new Cause.TimeoutException() as never))
        const error = yield* failureOf(fetchWith(client))
        expect([error.reason, error.description]).toEqual(["Unreachable", "the HTTP client failed"])
        expect(error.cause).toBeInstanceOf(Cause.TimeoutException)
      }))

    it.effect("no failure is ever a defect", () =>
      Effect.gen(function*() {
        const faults: ReadonlyArray<readonly [FakeIdp.Fault, JwksError["reason"]]> = [
          [FakeIdp.Fault.status(500), "HttpStatus"],
          [FakeIdp.Fault.status(404), "HttpStatus"],
          [FakeIdp.Fault.invalidJson, "InvalidJson"],
          [FakeIdp.Fault.wrongShape, "InvalidShape"],
          [FakeIdp.Fault.oversized(600_000), "TooLarge"],
          [FakeIdp.Fault.hang, "Timeout"],
          [FakeIdp.Fault.latency("1 minute"), "Timeout"]
        ]
        const idp = yield* FakeIdp.FakeIdp
        const source = yield* idpSource()
        for (const [fault, reason] of faults) {
          yield* idp.failNext(fault)
          const fiber = yield* Effect.fork(Effect.exit(source.fetch))
          yield* TestClock.adjust("5 seconds")
          const exit = yield* Fiber.join(fiber)
          expect(Exit.isFailure(exit) && !Cause.isDie(exit.cause)).toBe(true)
          if (Exit.isFailure(exit)) {
            expect(Cause.failureOption(exit.cause).pipe(Option.map((e) => e.reason))).toEqual(Option.some(reason))
          }
        }
        const invalidUrl = yield* Effect.exit(
          Effect.flatMap(Effect.orDie(JwksSource.http("not a url")), (source) => source.fetch)
        )
        expect(Exit.isFailure(invalidUrl) && !Cause.isDie(invalidUrl.cause)).toBe(true)
        expect(Exit.isFailure(invalidUrl) && Cause.failureOption(invalidUrl.cause).pipe(Option.map((e) => e.reason)))
          .toEqual(Option.some("Unreachable"))
        // After all that, the source still works.
        expect((yield* source.fetch).keys).toHaveLength(1)
      }).pipe(Effect.provide(IdpLive)))

    it.effect("layerHttp provides the same source as a service", () =>
      Effect.gen(function*() {
        const idp = yield* FakeIdp.FakeIdp
        const set = yield* Effect.flatMap(JwksSource.JwksSource, (source) => source.fetch).pipe(
          Effect.provide(JwksSource.layerHttp(new URL(idp.jwksUri)))
        )
        expect(set).toEqual(yield* idp.jwks)
      }).pipe(Effect.provide(IdpLive)))
  })

  describe("http over loopback", () => {
    /** A server answering `status` and `headers`, then 1 KiB every 20 ms for as long as the client stays. */
    const endless = (status: number, headers: Record<string, string>) =>
      Effect.acquireRelease(
        Effect.promise(async () => {
          const sockets: Array<{ closed: boolean }> = []
          const server = createServer((_request, response) => {
            response.writeHead(status, headers)
            const timer = setInterval(() => response.write(Buffer.alloc(1024, 0x20)), 20)
            response.on("close", () => clearInterval(timer))
          })
          server.on("connection", (socket) => {
            const entry = { closed: false }
            sockets.push(entry)
            socket.on("close", () => (entry.closed = true))
          })
          await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
          return { server, sockets, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json` }
        }),
        ({ server }) => Effect.promise(() => new Promise<void>((resolve) => server.close(() => resolve())))
      )
    /** Real time: a socket is closed by its peer, not by a clock. Up to 3 seconds. */
    const closedSoon = (sockets: ReadonlyArray<{ readonly closed: boolean }>) =>
      Effect.gen(function*() {
        for (let i = 0; i < 150 && !sockets.every((socket) => socket.closed); i++) yield* Effect.sleep("20 millis")
        return sockets.length > 0 && sockets.every((socket) => socket.closed)
      })
    const clients = [
      ["FetchHttpClient", FetchHttpClient.layer],
      ["NodeHttpClient (node:http)", NodeHttpClient.layer],
      ["NodeHttpClient (undici)", NodeHttpClient.layerUndici]
    ] as const

    it.scopedLive("a fetch of the app's own that follows the redirect anyway (drops redirect: manual): HttpStatus", () =>
      Effect.gen(function*() {
        const { server, url } = yield* Effect.acquireRelease(
          Effect.promise(async () => {
            const server = createServer((request, response) => {
              if (request.url === "/jwks.json") return response.writeHead(302, { location: "/elsewhere.json" }).end()
              response.writeHead(200, { "content-type": "application/json" })
              response.end(JSON.stringify({ keys: [{ kty: "EC", crv: "P-256", x: "x", y: "y", kid: "attacker" }] }))
            })
            await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
            return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json` }
          }),
          ({ server }) => Effect.promise(() => new Promise<void>((resolve) => server.close(() => resolve())))
        )
        // A wrapper (instrumentation, say) that passes the method, headers and signal on, but not `redirect`.
        const wrapper = ((input: string | URL | Request, init?: RequestInit) =>
          globalThis.fetch(input, {
            ...(init?.method === undefined ? {} : { method: init.method }),
            ...(init?.headers === undefined ? {} : { headers: init.headers }),
            signal: init?.signal ?? null
          })) as typeof globalThis.fetch
        const error = yield* Effect.flatMap(Effect.orDie(JwksSource.http(url)), (source) => failureOf(source.fetch))
          .pipe(
            Effect.provide(FetchHttpClient.layer),
            Effect.provideService(FetchHttpClient.Fetch, wrapper)
          )
        expect(error.reason).toBe("HttpStatus")
        server.closeAllConnections()
      }))

    for (const [name, client] of clients) {
      it.scopedLive(`${name}: a refusal before the body is read closes the connection (a 503, a length over the cap)`, () =>
        Effect.gen(function*() {
          // Left unread, a body keeps its connection open until the response is garbage-collected: a hostile server
          // would keep one per failed fetch.
          const cases = [
            [503, { "content-type": "text/plain" }, "HttpStatus"],
            [200, { "content-type": "application/json", "content-length": String(2 ** 30) }, "TooLarge"]
          ] as const
          for (const [status, headers, reason] of cases) {
            const { sockets, url } = yield* endless(status, headers)
            const source = yield* Effect.orDie(JwksSource.http(url, { timeout: "3 seconds" }))
            expect((yield* failureOf(source.fetch)).reason).toBe(reason)
            expect(yield* closedSoon(sockets)).toBe(true)
          }
        }).pipe(Effect.provide(client)))
    }
  })

  describe("static", () => {
    const jwks = { keys: [{ kty: "EC", crv: "P-256", x: "x", y: "y", kid: "k1" }] }

    it.effect("fromKeySet serves the given set every time", () =>
      Effect.gen(function*() {
        const source = JwksSource.fromKeySet(jwks)
        expect(source.name).toBe("static")
        expect(yield* source.fetch).toBe(jwks)
        expect(yield* source.fetch).toBe(jwks)
      }))

    it.effect("layerStatic provides it as the JwksSource", () =>
      Effect.gen(function*() {
        const source = yield* JwksSource.JwksSource
        expect(source.name).toBe("static")
        expect(yield* source.fetch).toEqual(jwks)
      }).pipe(Effect.provide(JwksSource.layerStatic(jwks))))

    it.effect("make wraps any effect", () =>
      Effect.gen(function*() {
        const failing = JwksSource.make("vault", Effect.fail(new JwksError({ reason: "Unreachable", source: "vault" })))
        expect(failing.name).toBe("vault")
        expect((yield* failureOf(failing.fetch)).message).toBe("Unreachable (vault)")
      }))

    it.effect("make cuts a fetch that outlasts its timeout (30 seconds unless given): Timeout, not a hang", () =>
      Effect.gen(function*() {
        const answer = { keys: [] }
        const slow = (delay: Duration.DurationInput) => Effect.as(Effect.sleep(delay), answer)
        const timedOut = (source: JwksSource.Service, after: Duration.DurationInput) =>
          Effect.gen(function*() {
            const fiber = yield* Effect.fork(Effect.either(source.fetch))
            yield* TestClock.adjust(Duration.subtract(Duration.decode(after), Duration.millis(1)))
            expect(Option.isNone(yield* Fiber.poll(fiber))).toBe(true)
            yield* TestClock.adjust("1 millis")
            const result = yield* Fiber.join(fiber)
            return result._tag === "Left" ? `${result.left.reason}: ${result.left.description}` : "answered"
          })
        expect(yield* timedOut(JwksSource.make("store", Effect.never), "30 seconds")).toBe(
          "Timeout: no answer within 30s"
        )
        expect(yield* timedOut(JwksSource.make("store", Effect.never, { timeout: "2 seconds" }), "2 seconds")).toBe(
          "Timeout: no answer within 2s"
        )
        // An answer in time is the answer; a source that bounds itself may turn the timeout off.
        expect(yield* timedOut(JwksSource.make("store", slow("10 seconds")), "10 seconds")).toBe("answered")
        const unbounded = JwksSource.make("store", slow("1 hour"), { timeout: Duration.infinity })
        expect(yield* timedOut(unbounded, "1 hour")).toBe("answered")
        for (const timeout of [0, 0.5, "soon", Number.NaN, "30 days", 2 ** 31, [-1, 2e9]] as const) {
          expect(() => JwksSource.make("store", Effect.never, { timeout: timeout as Duration.DurationInput })).toThrow(
            /JwksSource.make: timeout must be a duration from 1 ms/
          )
        }
        JwksSource.make("store", Effect.never, { timeout: 2 ** 31 - 1 })
      }))
  })

  describe("JwksError.message", () => {
    it("renders reason, status, description and source", () => {
      expect(new JwksError({ reason: "Timeout", source: "https://idp/jwks" }).message).toBe(
        "Timeout (https://idp/jwks)"
      )
      expect(new JwksError({ reason: "HttpStatus", source: "s", status: 503 }).message).toBe("HttpStatus 503 (s)")
      expect(new JwksError({ reason: "HttpStatus", source: "s", status: 404, description: "expected 200" }).message)
        .toBe("HttpStatus 404: expected 200 (s)")
      expect(new JwksError({ reason: "TooLarge", source: "static", description: "too big" }).message).toBe(
        "TooLarge: too big (static)"
      )
      const error = new JwksError({ reason: "EmptyKeySet", source: "s" })
      expect(error._tag).toBe("JwksError")
      expect(error).toBeInstanceOf(Error)
    })
  })
})
