/**
 * Edge cases of `HttpAuth` pinned after a mutation-testing review: each test fails on one change to `src/HttpAuth.ts`
 * that the rest of the suite let pass (a guard that ran its handler before refusing, settings that did not reach the
 * wrapped app, caps and shape checks of the read-back path, headers of status answers, log annotations).
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as Headers from "@effect/platform/Headers"
import * as HttpApp from "@effect/platform/HttpApp"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { describe, expect, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Schema from "effect/Schema"
import { createServer, request as nodeRequest } from "node:http"
import * as HttpAuth from "../src/HttpAuth.js"
import type * as JwksCache from "../src/JwksCache.js"
import { JwksError } from "../src/JwksError.js"
import type { Principal } from "../src/Principal.js"
import { TokenValidationError } from "../src/TokenValidationError.js"
import * as TokenValidator from "../src/TokenValidator.js"
import { alice } from "./support/principals.js"

const validatorOf = (validate: (token: string) => Effect.Effect<Principal, TokenValidationError | JwksError>) =>
  Layer.succeed(TokenValidator.TokenValidator, {
    acceptsIssuer: () => true,
    keyStatus: Effect.succeed([]),
    validate
  } as unknown as TokenValidator.Service)
/** Lets every token in, as alice. */
const Good = validatorOf(() => Effect.succeed(alice))
/** The keys are unavailable: every token is answered 503. */
const Down = validatorOf(() =>
  Effect.fail(new JwksError({ reason: "Unreachable", source: "https://idp.example/jwks" }))
)

/** A cache's status, as `JwksCache.status` gives it, for what `toCacheInfo` and `/cache-info` make of one. */
const status: JwksCache.Status = {
  source: "https://idp.example/jwks",
  strategy: "Time",
  interval: Duration.minutes(20),
  usages: undefined,
  backgroundRefresh: true,
  backgroundRefreshThreshold: 0.8,
  keyIds: ["k1"],
  loadedAt: new Date(0),
  expiresAt: new Date(1_200_000),
  usesLeft: undefined,
  fresh: false,
  servingStale: true,
  staleUntil: new Date(4_800_000),
  lastRefresh: { at: new Date(2_000_000), outcome: "failure", error: "Unreachable" },
  fetches: 3
}

describe("HttpAuth edge cases", () => {
  it.effect("an infinite retryAfter falls back to the default 30 seconds", () =>
    Effect.gen(function*() {
      for (const retryAfter of [Duration.infinity, "Infinity"] as const) {
        const handler = HttpApp.toWebHandler(
          HttpAuth.middleware({ retryAfter: retryAfter as Duration.DurationInput })(HttpServerResponse.text("ok")).pipe(
            Effect.provide(Down)
          )
        )
        const response = yield* Effect.promise(() =>
          handler(new Request("http://localhost/", { headers: { authorization: "Bearer x" } }))
        )
        expect([response.status, response.headers.get("retry-after")]).toEqual([503, "30"])
      }
    }))

  it.effect("past the cap of own answers, none counts as the request's own: a received answer is a 500", () =>
    Effect.gen(function*() {
      const encode = Schema.encode(HttpAuth.Failure)
      const app = Effect.gen(function*() {
        // The request's own refusal, noted before the cap ...
        yield* encode(new HttpAuth.Unauthorized({ error: "invalid_token", error_description: "e" }))
        // Over 1 MiB of distinct answers of the request's own (a list reporting refusals, say).
        for (let i = 0; i < 1100; i++) {
          yield* encode(new HttpAuth.Forbidden({ error_description: `${"x".repeat(1000)}${i}` }))
        }
        // A received refusal encoded in the request (noted as received) ...
        const received = Schema.decodeUnknownSync(HttpAuth.Failure)({ error: "invalid_token", error_description: "e" })
        yield* encode(received)
        // ... and the request's own refusal with the very same answer.
        return yield* new HttpAuth.Unauthorized({ error: "invalid_token", error_description: "e" })
      }).pipe(Effect.zipRight(HttpServerResponse.text("ok")))
      const handler = HttpApp.toWebHandler(HttpAuth.middleware()(app).pipe(Effect.provide(Good)))
      const response = yield* Effect.promise(() =>
        handler(new Request("http://localhost/", { headers: { authorization: "Bearer good" } }))
      )
      expect([response.status, response.headers.get("www-authenticate")]).toEqual([500, null])
    }))

  it.effect("past the cap of received answers, any answer of this module's shape is a 500", () =>
    Effect.gen(function*() {
      const encode = Schema.encode(HttpAuth.Failure)
      const decode = Schema.decodeUnknownSync(HttpAuth.Failure)
      const app = Effect.gen(function*() {
        // Over 1 MiB of distinct received refusals encoded while answering (a report in a success body, say).
        for (let i = 0; i < 1100; i++) {
          yield* encode(decode({ error: "invalid_token", error_description: `${"x".repeat(1000)}${i}` }))
        }
        // A body of this module's shape, written by hand: not noted as the request's own.
        return HttpServerResponse.unsafeJson({ error: "invalid_token", error_description: "late" }, { status: 401 })
      })
      const handler = HttpApp.toWebHandler(HttpAuth.middleware()(app).pipe(Effect.provide(Good)))
      const response = yield* Effect.promise(() =>
        handler(new Request("http://localhost/", { headers: { authorization: "Bearer good" } }))
      )
      expect([response.status, response.headers.get("www-authenticate")]).toEqual([500, null])
    }))

  it.effect("an own error rendered by the platform counts as the request's own, beside a received one", () =>
    Effect.gen(function*() {
      const app = Effect.gen(function*() {
        const received = Schema.decodeUnknownSync(HttpAuth.Failure)({ error: "invalid_token", error_description: "e" })
        // Reported somewhere while answering (a success body, a log record encoded with the schema).
        yield* Schema.encode(HttpAuth.Failure)(received)
        return yield* new HttpAuth.Unauthorized({ error: "invalid_token", error_description: "e" })
      }).pipe(Effect.zipRight(HttpServerResponse.text("ok")))
      const handler = HttpApp.toWebHandler(app)
      const response = yield* Effect.promise(() => handler(new Request("http://localhost/")))
      expect([response.status, response.headers.get("www-authenticate")]).toEqual([
        401,
        `Bearer realm="api", error="invalid_token", error_description="e"`
      ])
    }))

  it.effect("the 500 warning for a received error names the module and the error", () =>
    Effect.gen(function*() {
      const seen: Array<{ level: string; message: unknown; annotations: Record<string, unknown> }> = []
      const runtime = yield* Effect.runtime<never>().pipe(
        Effect.provide(Logger.replace(
          Logger.defaultLogger,
          Logger.make(({ annotations, logLevel, message }) => {
            seen.push({ level: logLevel._tag, message, annotations: Object.fromEntries(annotations) })
          })
        ))
      )
      const app = Effect.zipRight(
        Effect.fail(
          Schema.decodeUnknownSync(HttpAuth.Failure)({ error: "insufficient_scope", error_description: "d" })
        ),
        HttpServerResponse.text("ok")
      )
      const handler = HttpApp.toWebHandlerRuntime(runtime)(app)
      const response = yield* Effect.promise(() => handler(new Request("http://localhost/")))
      expect(response.status).toBe(500)
      const warning = seen.find((entry) => entry.level === "Warning")
      expect(warning?.annotations).toMatchObject({ module: "HttpAuth", error: "insufficient_scope" })
    }))

  it.effect("a received 503 read back from a response is a 500 without its Retry-After", () =>
    Effect.gen(function*() {
      const app = Effect.gen(function*() {
        const received = Schema.decodeUnknownSync(HttpAuth.Failure)({
          error: "temporarily_unavailable",
          error_description: "the signing keys are unavailable; retry later"
        })
        const body = yield* Schema.encode(HttpAuth.Failure)(received)
        return HttpServerResponse.unsafeJson(body, {
          status: 503,
          headers: { "retry-after": "30", "access-control-allow-origin": "*" }
        })
      })
      const handler = HttpApp.toWebHandler(app)
      const response = yield* Effect.promise(() => handler(new Request("http://localhost/")))
      expect([
        response.status,
        response.headers.get("retry-after"),
        response.headers.get("access-control-allow-origin")
      ]).toEqual([500, null, "*"])
    }))

  const answer = (body: unknown) =>
    Effect.gen(function*() {
      const handler = HttpApp.toWebHandler(
        Effect.zipRight(HttpAuth.challengeHeaders, HttpServerResponse.unsafeJson(body, { status: 401 }))
      )
      const response = yield* Effect.promise(() => handler(new Request("http://localhost/")))
      return [response.status, response.headers.get("www-authenticate")]
    })

  it.effect("an app's own body over 64 KiB is not read back as this module's error", () =>
    Effect.gen(function*() {
      // Control: the same shape, small, gets its challenge.
      expect(yield* answer({ error: "invalid_token", error_description: "small" })).toEqual([
        401,
        `Bearer realm="api", error="invalid_token", error_description="small"`
      ])
      expect(yield* answer({ error: "invalid_token", error_description: "x".repeat(70 * 1024) })).toEqual([401, null])
    }))

  it.effect("an app's own body with members beyond this module's gets no challenge", () =>
    Effect.gen(function*() {
      expect(yield* answer({ error: "invalid_token", error_description: "small", upstream: "orders" })).toEqual([
        401,
        null
      ])
    }))

  const OneGoodToken = Layer.succeed(TokenValidator.TokenValidator, {
    acceptsIssuer: () => true,
    keyStatus: Effect.succeed([]),
    validate: (token: string) =>
      token === "good"
        ? Effect.succeed(alice)
        : Effect.fail(new TokenValidationError({ reason: "Malformed", description: "bad" }))
  } as unknown as TokenValidator.Service)

  const Live = HttpServer.serve(
    HttpRouter.empty.pipe(HttpRouter.get("/", HttpAuth.middleware()(HttpServerResponse.text("ok"))))
  ).pipe(
    Layer.provide(OneGoodToken),
    Layer.provideMerge(NodeHttpServer.layer(() => createServer(), { port: 0, host: "127.0.0.1" }))
  )

  it.live("two `Authorization:` lines with the usual capitalization: 400 invalid_request", () =>
    Effect.gen(function*() {
      const server = yield* HttpServer.HttpServer
      const port = (server.address as HttpServer.TcpAddress).port
      const send = (name: string) =>
        Effect.async<number | undefined>((resume) => {
          const request = nodeRequest({ host: "127.0.0.1", port, path: "/" }, (response) => {
            response.resume()
            response.on("end", () => resume(Effect.succeed(response.statusCode)))
          })
          request.setHeader(name, ["Bearer good", "Bearer someone-else's"])
          request.end()
        })
      expect(yield* send("authorization")).toBe(400)
      expect(yield* send("Authorization")).toBe(400)
    }).pipe(Effect.provide(Live)))

  // The token names the reason the stub refuses it with; "down" is a JwksError.
  const RefusingByToken = Layer.succeed(TokenValidator.TokenValidator, {
    acceptsIssuer: () => true,
    keyStatus: Effect.succeed([]),
    validate: (token: string) =>
      token === "down"
        ? Effect.fail(new JwksError({ reason: "Unreachable", source: "https://idp.example/jwks" }))
        : Effect.fail(new TokenValidationError({ reason: token as TokenValidationError["reason"], description: "x" }))
  } as unknown as TokenValidator.Service)

  const call = (handler: (request: Request) => Promise<Response>, token: string) =>
    Effect.promise(() => handler(new Request("http://localhost/", { headers: { authorization: `Bearer ${token}` } })))

  it.effect("every refusal reason has its own description", () =>
    Effect.gen(function*() {
      const handler = HttpApp.toWebHandler(
        HttpAuth.middleware()(HttpServerResponse.text("ok")).pipe(Effect.provide(RefusingByToken))
      )
      const expected: Record<string, string> = {
        Malformed: "the token is malformed",
        TooLarge: "the token is too large",
        AlgorithmNotAllowed: "the token's signing algorithm is not allowed",
        NoMatchingKey: "the token was signed by an unknown key",
        InvalidSignature: "the token's signature is invalid",
        Expired: "the token has expired",
        NotYetValid: "the token is not valid yet",
        IssuerMismatch: "the token's issuer is not accepted",
        AudienceMismatch: "the token is not meant for this audience",
        TokenType: "this type of token is not accepted",
        MissingClaim: "the token lacks a required claim",
        CustomCheck: "the token was refused"
      }
      for (const [reason, description] of Object.entries(expected)) {
        const response = yield* call(handler, reason)
        expect([response.status, yield* Effect.promise(() => response.json())]).toEqual([
          401,
          { error: "invalid_token", error_description: description }
        ])
      }
    }))

  it.effect("the debug lines of a refusal name the module and the reason", () =>
    Effect.gen(function*() {
      const seen: Array<{ message: unknown; annotations: Record<string, unknown> }> = []
      const runtime = yield* Effect.runtime<never>().pipe(
        Effect.provide(Layer.merge(
          Logger.replace(
            Logger.defaultLogger,
            Logger.make(({ annotations, message }) => {
              seen.push({ message, annotations: Object.fromEntries(annotations) })
            })
          ),
          Logger.minimumLogLevel(LogLevel.Debug)
        ))
      )
      const handler = HttpApp.toWebHandlerRuntime(runtime)(
        HttpAuth.middleware()(HttpServerResponse.text("ok")).pipe(Effect.provide(RefusingByToken))
      )
      expect((yield* call(handler, "Expired")).status).toBe(401)
      expect((yield* call(handler, "down")).status).toBe(503)
      const annotationsOf = (text: string) =>
        seen.find((entry) => JSON.stringify(entry.message).includes(text))?.annotations
      expect(annotationsOf("Bearer token refused")).toMatchObject({ module: "HttpAuth", reason: "Expired" })
      expect(annotationsOf("signing keys unavailable")).toMatchObject({ module: "HttpAuth", reason: "Unreachable" })
    }))

  it.effect("an error encoded inside middleware(options) is answered with the middleware's realm and Retry-After", () =>
    Effect.gen(function*() {
      const encodedAs = (error: HttpAuth.AuthError, status: number) =>
        HttpApp.toWebHandler(
          HttpAuth.middleware({ realm: "orders", retryAfter: "5 seconds" })(
            Effect.map(
              Schema.encode(HttpAuth.Failure)(error),
              (body) => HttpServerResponse.unsafeJson(body, { status })
            )
          ).pipe(Effect.provide(Good))
        )
      const send = (handler: (request: Request) => Promise<Response>) =>
        Effect.promise(() => handler(new Request("http://localhost/", { headers: { authorization: "Bearer good" } })))
      const unauthorized = yield* send(
        encodedAs(new HttpAuth.Unauthorized({ error: "unauthorized", error_description: "d" }), 401)
      )
      expect([unauthorized.status, unauthorized.headers.get("www-authenticate")]).toEqual([
        401,
        `Bearer realm="orders"`
      ])
      const unavailable = yield* send(encodedAs(new HttpAuth.ServiceUnavailable({ error_description: "d" }), 503))
      expect([unavailable.status, unavailable.headers.get("retry-after")]).toEqual([503, "5"])
    }))

  it.effect("a scope string padded with spaces names only its scopes", () =>
    Effect.gen(function*() {
      const granted = yield* HttpAuth.requireScopes(" orders:read ").pipe(
        Effect.provideService(HttpAuth.CurrentPrincipal, alice)
      )
      expect(granted.id).toBe("alice")
    }))

  it.effect("the Forbidden's scope leaves out a name with a quote in it", () =>
    Effect.gen(function*() {
      const refused = yield* Effect.flip(
        HttpAuth.requireScopes("a\"b", "c d").pipe(Effect.provideService(HttpAuth.CurrentPrincipal, alice))
      )
      expect(refused.scope).toBe("c d")
    }))

  it.effect("a refused guard never runs the handler it guards", () =>
    Effect.gen(function*() {
      let deleted = 0
      const handler = Effect.sync(() => ++deleted)
      const refused = yield* Effect.flip(
        handler.pipe(
          HttpAuth.guard(HttpAuth.requireGroups("admin")),
          Effect.provideService(HttpAuth.CurrentPrincipal, alice)
        )
      )
      expect(refused._tag).toBe("Forbidden")
      expect(deleted).toBe(0)
    }))

  it.effect("toCacheInfo keeps null uses left, the stale deadline as ISO text (null without one) and a failed refresh's error", () =>
    Effect.sync(() => {
      const info = HttpAuth.toCacheInfo(status)
      expect(info.usesLeft).toBeNull()
      expect([info.staleUntil, HttpAuth.toCacheInfo({ ...status, staleUntil: undefined }).staleUntil])
        .toEqual([new Date(4_800_000).toISOString(), null])
      expect(info.lastRefresh).toEqual({
        at: new Date(2_000_000).toISOString(),
        outcome: "failure",
        error: "Unreachable"
      })
    }))

  it.effect("validatorCacheInfo answers with Cache-Control: no-store", () =>
    Effect.gen(function*() {
      const Validator = Layer.succeed(TokenValidator.TokenValidator, {
        acceptsIssuer: () => true,
        keyStatus: Effect.succeed([status]),
        validate: () => Effect.die("unused")
      } as unknown as TokenValidator.Service)
      const handler = HttpApp.toWebHandler(HttpAuth.validatorCacheInfo.pipe(Effect.provide(Validator)))
      const response = yield* Effect.promise(() => handler(new Request("http://localhost/cache-info")))
      expect([response.status, response.headers.get("cache-control")]).toEqual([200, "no-store"])
    }))

  it.effect("the library's own 400 body read back from a response gets its challenge", () =>
    Effect.gen(function*() {
      const handler = HttpApp.toWebHandler(
        Effect.zipRight(
          HttpAuth.challengeHeaders,
          HttpServerResponse.unsafeJson({
            error: "invalid_request",
            error_description: "the request has more than one credential"
          }, { status: 400 })
        )
      )
      const response = yield* Effect.promise(() => handler(new Request("http://localhost/")))
      expect([response.status, response.headers.get("www-authenticate"), response.headers.get("cache-control")])
        .toEqual([
          400,
          `Bearer realm="api", error="invalid_request", error_description="the request has more than one credential"`,
          "no-store"
        ])
    }))

  it.effect("a bearer credential joined after another scheme's, a tab before or after its scheme, is two credentials: 400", () =>
    Effect.gen(function*() {
      const handler = HttpApp.toWebHandler(
        HttpAuth.middleware()(HttpServerResponse.text("ok")).pipe(Effect.provide(Good))
      )
      for (
        const authorization of [
          "Basic YWxpY2U6cHc=,\tBearer good",
          "Basic YWxpY2U6cHc=,  Bearer good",
          "Basic YWxpY2U6cHc=, Bearer\tgood"
        ]
      ) {
        const response = yield* Effect.promise(() =>
          handler(new Request("http://localhost/", { headers: { authorization } }))
        )
        expect(response.status).toBe(400)
      }
    }))
})

describe("HttpAuth edge cases, a second mutation review", () => {
  const decode = Schema.decodeUnknownSync(HttpAuth.Failure)
  const encode = (error: HttpAuth.AuthError) => Effect.orDie(Schema.encode(HttpAuth.Failure)(error))
  const get = <E>(app: HttpApp.Default<E>, authorization?: string) =>
    Effect.promise(() =>
      HttpApp.toWebHandler(app)(
        new Request("http://localhost/", { headers: authorization === undefined ? {} : { authorization } })
      )
    )

  it.effect("a zero retryAfter is answered Retry-After: 0", () =>
    Effect.gen(function*() {
      const response = yield* get(
        HttpAuth.middleware({ retryAfter: "0 seconds" })(HttpServerResponse.text("ok")).pipe(Effect.provide(Down)),
        "Bearer x"
      )
      expect([response.status, response.headers.get("retry-after")]).toEqual([503, "0"])
    }))

  it.effect("a BadRequest the app encodes behind a middleware that modifies the request (same source) gets its headers", () =>
    Effect.gen(function*() {
      const app = Effect.map(
        encode(new HttpAuth.BadRequest({ error_description: "the cursor is stale" })),
        (body) => HttpServerResponse.unsafeJson(body, { status: 400 })
      )
      const modified = Effect.flatMap(
        HttpServerRequest.HttpServerRequest,
        (request) => Effect.provideService(app, HttpServerRequest.HttpServerRequest, request.modify({ url: "/other" }))
      )
      const response = yield* get(modified)
      expect([response.status, response.headers.get("www-authenticate"), response.headers.get("cache-control")])
        .toEqual([
          400,
          `Bearer realm="api", error="invalid_request", error_description="the cursor is stale"`,
          "no-store"
        ])
    }))

  it.effect("one received answer noted over and over counts once toward the cap: a later own-shaped 401 keeps its challenge", () =>
    Effect.gen(function*() {
      const received = decode({ error: "invalid_token", error_description: "x".repeat(1000) })
      const app = Effect.gen(function*() {
        for (let i = 0; i < 1100; i++) yield* encode(received)
        return HttpServerResponse.unsafeJson({ error: "invalid_token", error_description: "late" }, { status: 401 })
      })
      const response = yield* get(app)
      expect([response.status, response.headers.get("www-authenticate")]).toEqual([
        401,
        `Bearer realm="api", error="invalid_token", error_description="late"`
      ])
    }))

  it.effect("a single received answer over the cap makes any answer of this module's shape a 500", () =>
    Effect.gen(function*() {
      const app = Effect.zipRight(
        encode(decode({ error: "invalid_token", error_description: "x".repeat(1100 * 1024) })),
        HttpServerResponse.unsafeJson({ error: "invalid_token", error_description: "late" }, { status: 401 })
      )
      const response = yield* get(app)
      expect([response.status, response.headers.get("www-authenticate")]).toEqual([500, null])
    }))

  it.effect("a challenge's error_description drops quotes, backslashes and non-ASCII", () =>
    Effect.gen(function*() {
      const response = yield* get(
        Effect.fail(new HttpAuth.Unauthorized({ error: "invalid_token", error_description: `a "quoted"\\ café` }))
      )
      expect([response.status, response.headers.get("www-authenticate")]).toEqual([
        401,
        `Bearer realm="api", error="invalid_token", error_description="a quoted caf"`
      ])
    }))

  it.effect("a 403's challenge names the scope tokens split by spaces and tabs: no empty one, none with a backslash", () =>
    Effect.gen(function*() {
      const response = yield* get(
        Effect.fail(new HttpAuth.Forbidden({ error_description: "d", scope: " orders:read\torders:write a\\b" }))
      )
      expect(response.headers.get("www-authenticate")).toBe(
        `Bearer realm="api", error="insufficient_scope", scope="orders:read orders:write"`
      )
    }))

  it.effect("a received 401 read back is a 500 without its challenge, Cache-Control and Content-Encoding; other headers stay", () =>
    Effect.gen(function*() {
      const app = Effect.map(
        encode(decode({ error: "invalid_token", error_description: "expired" })),
        (body) =>
          HttpServerResponse.unsafeJson(body, {
            status: 401,
            headers: {
              "www-authenticate": `Bearer realm="api"`,
              "cache-control": "no-store",
              "content-encoding": "gzip",
              "access-control-allow-origin": "*"
            }
          })
      )
      const response = yield* get(app)
      expect([
        response.status,
        response.headers.get("www-authenticate"),
        response.headers.get("cache-control"),
        response.headers.get("content-encoding"),
        response.headers.get("access-control-allow-origin")
      ]).toEqual([500, null, null, null, "*"])
    }))

  it.effect("requireScopes given only names no scope token can be refuses with no scope member at all", () =>
    Effect.gen(function*() {
      const refused = yield* Effect.flip(
        HttpAuth.requireScopes(`a"b`).pipe(Effect.provideService(HttpAuth.CurrentPrincipal, alice))
      )
      expect([refused._tag, "scope" in refused]).toEqual(["Forbidden", false])
    }))

  it.effect("a received error let through middleware is a defect: an outer catchAll never sees it as a failure", () =>
    Effect.gen(function*() {
      const app = Effect.zipRight(
        Effect.fail(decode({ error: "invalid_token", error_description: "expired" })),
        HttpServerResponse.text("ok")
      )
      const caught = HttpAuth.middleware()(app).pipe(
        Effect.catchAll(() => HttpServerResponse.text("caught", { status: 418 })),
        Effect.provide(Good)
      )
      const response = yield* get(caught, "Bearer good")
      expect([response.status, response.headers.get("www-authenticate")]).toEqual([500, null])
    }))

  it.effect("a token followed by a tab (a request rebuilt with raw header values) is trimmed", () =>
    Effect.gen(function*() {
      const OnlyGood = validatorOf((token) =>
        token === "good"
          ? Effect.succeed(alice)
          : Effect.fail(new TokenValidationError({ reason: "Malformed", description: "bad" }))
      )
      const app = Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
        Effect.provideService(
          HttpAuth.middleware()(HttpServerResponse.text("ok")),
          HttpServerRequest.HttpServerRequest,
          request.modify({ headers: Headers.fromInput({ authorization: "Bearer good\t" }) })
        )).pipe(Effect.provide(OnlyGood))
      expect((yield* get(app)).status).toBe(200)
    }))

  const cacheStatus = (strategy: JwksCache.Status["strategy"], source: string): JwksCache.Status => ({
    ...status,
    strategy,
    source
  })

  it.effect("each cache strategy is reported under its own name", () =>
    Effect.sync(() => {
      const named = (["Time", "Usage", "Both", "Custom"] as const).map((strategy) =>
        HttpAuth.toCacheInfo(cacheStatus(strategy, "https://idp.example/jwks")).strategy
      )
      expect(named).toEqual(["time", "usage", "both", "custom"])
    }))

  it.effect("validatorCacheInfo lists every cache behind the validator", () =>
    Effect.gen(function*() {
      const Validator = Layer.succeed(TokenValidator.TokenValidator, {
        acceptsIssuer: () => true,
        keyStatus: Effect.succeed([
          cacheStatus("Time", "https://a.example/jwks"),
          cacheStatus("Usage", "https://b.example/jwks")
        ]),
        validate: () => Effect.die("unused")
      } as unknown as TokenValidator.Service)
      const response = yield* get(HttpAuth.validatorCacheInfo.pipe(Effect.provide(Validator)))
      const json = (yield* Effect.promise(() => response.json())) as { caches: Array<HttpAuth.CacheInfo> }
      expect(json.caches.map((cache) => cache.source)).toEqual(["https://a.example/jwks", "https://b.example/jwks"])
    }))
})
