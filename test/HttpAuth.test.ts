import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpApiClient from "@effect/platform/HttpApiClient"
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiError from "@effect/platform/HttpApiError"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as HttpApp from "@effect/platform/HttpApp"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerRespondable from "@effect/platform/HttpServerRespondable"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { describe, expect, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Schema from "effect/Schema"
import { createServer, request as nodeRequest } from "node:http"
import { afterAll } from "vitest"
import * as HttpAuth from "../src/HttpAuth.js"
import * as JwksCache from "../src/JwksCache.js"
import { JwksError } from "../src/JwksError.js"
import * as JwksMetrics from "../src/JwksMetrics.js"
import * as JwksSource from "../src/JwksSource.js"
import { Principal } from "../src/Principal.js"
import * as FakeIdp from "../src/testing/FakeIdp.js"
import { TokenValidationError } from "../src/TokenValidationError.js"
import * as TokenValidator from "../src/TokenValidator.js"
import { alice as alicePrincipal } from "./support/principals.js"

// -----------------------------------------------------------------------------
// The validator: keys from the fake IdP through its in-memory HttpClient, given to the key source only, so that the
// HttpClient of the tests is a real one that talks to the server under test.
// -----------------------------------------------------------------------------

const ValidatorLive = (cache?: JwksCache.Options, idpDown = false) =>
  TokenValidator.layer({ issuer: FakeIdp.defaults.issuer, audience: FakeIdp.defaults.audience }).pipe(
    Layer.provideMerge(JwksCache.layer(cache)),
    Layer.provide(JwksSource.layerHttp(`${FakeIdp.defaults.issuer}/.well-known/jwks.json`)),
    Layer.provide(FakeIdp.layerHttpClient),
    // The cache starts loading as soon as it is built: an IdP that is down from the start must be down before that.
    Layer.provide(
      idpDown
        ? Layer.effectDiscard(Effect.flatMap(FakeIdp.FakeIdp, (idp) => idp.setFault(FakeIdp.Fault.status(500))))
        : Layer.empty
    ),
    Layer.provideMerge(FakeIdp.layer())
  )

const principalJson = (principal: { id: string; name: string | undefined; groups: ReadonlyArray<string> }) => ({
  id: principal.id,
  name: principal.name ?? null,
  groups: principal.groups
})

// -----------------------------------------------------------------------------
// The same routes twice: as an HttpApi, and as a plain HttpRouter app.
// -----------------------------------------------------------------------------

const Me = Schema.Struct({ id: Schema.String, name: Schema.NullOr(Schema.String), groups: Schema.Array(Schema.String) })

class Api extends HttpApi.make("test")
  .add(
    HttpApiGroup.make("public").add(HttpApiEndpoint.get("cacheInfo", "/cache-info").addSuccess(HttpAuth.CacheInfo))
  )
  .add(
    HttpApiGroup.make("private")
      .add(HttpApiEndpoint.get("me", "/me").addSuccess(Me))
      .add(HttpApiEndpoint.get("admin", "/admin").addSuccess(Schema.String))
      .add(HttpApiEndpoint.get("write", "/write").addSuccess(Schema.String))
      .add(HttpApiEndpoint.get("parallel", "/parallel").addSuccess(Schema.String))
      .add(HttpApiEndpoint.get("owner", "/owner").addSuccess(Schema.String).addError(HttpApiError.Forbidden))
      .middleware(HttpAuth.Authentication)
  )
{}

const PublicLive = HttpApiBuilder.group(
  Api,
  "public",
  (handlers) => handlers.handle("cacheInfo", () => HttpAuth.cacheInfo)
)

const PrivateLive = HttpApiBuilder.group(Api, "private", (handlers) =>
  handlers
    .handle("me", () => Effect.map(HttpAuth.CurrentPrincipal, principalJson))
    .handle("admin", () => Effect.map(HttpAuth.requireGroups("admin"), (principal) => `welcome ${principal.id}`))
    .handle("write", () => Effect.as(HttpAuth.requireScopes("orders:read", "orders:write"), "written"))
    .handle("parallel", () => Effect.as(inParallel, "written"))
    .handle("owner", () =>
      Effect.flatMap(adminView, (view) => view === "full" ? Effect.succeed(view) : new HttpApiError.Forbidden())))

/** A guard refused in a child fiber, beside other work. */
const inParallel = Effect.all([HttpAuth.requireScopes("orders:write"), Effect.void], { concurrency: "unbounded" })

/** A guard refusal the handler recovers from (a reduced view), as the `Forbidden` docs suggest. */
const adminView = HttpAuth.requireGroups("admin").pipe(
  Effect.as("full"),
  Effect.catchTag("Forbidden", () => Effect.succeed("reduced"))
)

const HttpApiServer = (options?: HttpAuth.Options) =>
  HttpApiBuilder.serve().pipe(
    Layer.provide(HttpApiBuilder.api(Api)),
    Layer.provide(PublicLive),
    Layer.provide(PrivateLive.pipe(Layer.provide(HttpAuth.layerBearer(options))))
  )

const RouterServer = (options?: HttpAuth.Options) => {
  const Public = HttpRouter.empty.pipe(HttpRouter.get("/cache-info", HttpAuth.cacheInfo))
  const Protected = HttpRouter.empty.pipe(
    HttpRouter.get("/me", Effect.flatMap(HttpAuth.CurrentPrincipal, (p) => HttpServerResponse.json(principalJson(p)))),
    // a guard as a route middleware
    HttpRouter.get(
      "/admin",
      Effect.flatMap(HttpAuth.CurrentPrincipal, (p) => HttpServerResponse.json(`welcome ${p.id}`)).pipe(
        HttpAuth.guard(HttpAuth.requireGroups("admin"))
      )
    ),
    // a guard inside the handler
    HttpRouter.get(
      "/write",
      Effect.zipRight(HttpAuth.requireScopes("orders:read", "orders:write"), HttpServerResponse.json("written"))
    ),
    HttpRouter.get("/parallel", Effect.zipRight(inParallel, HttpServerResponse.json("written"))),
    // the app's own 403 (not the caller's token: the resource), after a recovered guard refusal
    HttpRouter.get(
      "/owner",
      Effect.flatMap(adminView, (view) => HttpServerResponse.json(view, { status: view === "full" ? 200 : 403 }))
    ),
    HttpRouter.use(HttpAuth.middleware(options))
  )
  return HttpServer.serve(HttpRouter.concat(Public, Protected))
}

const TestLive = (
  server: Layer.Layer<never, never, any>,
  cache?: JwksCache.Options,
  idpDown?: boolean
): Layer.Layer<HttpClient.HttpClient | FakeIdp.FakeIdp | JwksCache.JwksCache | HttpServer.HttpServer> =>
  Layer.mergeAll(server, HttpServer.layerTestClient.pipe(Layer.provide(FetchHttpClient.layer))).pipe(
    Layer.provideMerge(NodeHttpServer.layer(() => createServer(), { port: 0, host: "127.0.0.1" })),
    Layer.provideMerge(ValidatorLive(cache, idpDown)),
    // the cache's warnings about the IdP being down are expected here
    Layer.provide(Logger.minimumLogLevel(LogLevel.Error))
  ) as any

// -----------------------------------------------------------------------------
// Helpers
// -----------------------------------------------------------------------------

const request = (path: string, authorization?: string) =>
  Effect.gen(function*() {
    const response = yield* HttpClient.get(path, {
      headers: authorization === undefined ? {} : { authorization }
    })
    const text = yield* response.text
    return {
      status: response.status,
      headers: response.headers,
      body: text.length > 0 ? JSON.parse(text) as unknown : undefined
    }
  })

const sign = (claims?: Record<string, unknown>, options?: FakeIdp.SignOptions) =>
  Effect.flatMap(FakeIdp.FakeIdp, (idp) => idp.sign(claims, options))

const alice = { sub: "alice", preferred_username: "Alice", groups: ["staff"], scope: "orders:read" }

const nowSeconds = () => Math.floor(Date.now() / 1000)

// -----------------------------------------------------------------------------
// The cases, once per integration
// -----------------------------------------------------------------------------

const suites = [
  { name: "HttpApi middleware", server: HttpApiServer, realm: "api", retryAfter: "30" },
  { name: "HttpRouter middleware", server: RouterServer, realm: "orders", retryAfter: "5" }
] as const

describe.each(suites)("HttpAuth: $name", ({ realm, retryAfter, server }) => {
  const options: HttpAuth.Options | undefined = realm === "api"
    ? undefined
    : { realm, retryAfter: `${retryAfter} seconds` }
  const Live = (cache?: JwksCache.Options, idpDown?: boolean) => TestLive(server(options), cache, idpDown)
  const invalidToken = (description: string) =>
    `Bearer realm="${realm}", error="invalid_token", error_description="${description}"`

  it.live("no token: 401 with the realm only", () =>
    Effect.gen(function*() {
      const response = yield* request("/me")
      expect(response.status).toBe(401)
      expect(response.headers["www-authenticate"]).toBe(`Bearer realm="${realm}"`)
      expect(response.headers["content-type"]).toBe("application/json")
      expect(response.body).toEqual({ error: "unauthorized", error_description: "a bearer token is required" })
    }).pipe(Effect.provide(Live())))

  it.live("another scheme, or an empty bearer: 401 with the realm only", () =>
    Effect.gen(function*() {
      for (const authorization of ["Basic YWxpY2U6c2VjcmV0", "Bearer ", "Token abc.def.ghi"]) {
        const response = yield* request("/me", authorization)
        expect(response.status).toBe(401)
        expect(response.headers["www-authenticate"]).toBe(`Bearer realm="${realm}"`)
      }
    }).pipe(Effect.provide(Live())))

  it.live("two Authorization headers: 400 invalid_request, neither token validated (Node keeps only the first)", () =>
    Effect.gen(function*() {
      const server = yield* HttpServer.HttpServer
      const port = (server.address as HttpServer.TcpAddress).port
      const good = yield* sign(alice)
      const send = (authorization: ReadonlyArray<string>) =>
        Effect.async<{ status: number | undefined; challenge: string | undefined }>((resume) => {
          const request = nodeRequest({ host: "127.0.0.1", port, path: "/me" }, (response) => {
            response.resume()
            response.on("end", () =>
              resume(Effect.succeed({
                status: response.statusCode,
                challenge: response.headers["www-authenticate"]
              })))
          })
          // Two header lines, as a client or a proxy that adds its own may send.
          request.setHeader("authorization", [...authorization])
          request.end()
        })
      expect(yield* send([`Bearer ${good}`, "Bearer someone-else's"])).toEqual({
        status: 400,
        challenge:
          `Bearer realm="${realm}", error="invalid_request", error_description="the request has more than one credential"`
      })
      expect((yield* send([`Bearer ${good}`])).status).toBe(200)
    }).pipe(Effect.provide(Live())))

  it.live("malformed token: 401 invalid_token", () =>
    Effect.gen(function*() {
      const response = yield* request("/me", "Bearer not-a-jwt")
      expect(response.status).toBe(401)
      expect(response.headers["www-authenticate"]).toBe(invalidToken("the token is malformed"))
      expect(response.body).toEqual({ error: "invalid_token", error_description: "the token is malformed" })
    }).pipe(Effect.provide(Live())))

  it.live("bad signature: 401 invalid_token", () =>
    Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      const forged = yield* idp.sign(alice, { key: "unpublished", kid: yield* idp.currentKid })
      const response = yield* request("/me", `Bearer ${forged}`)
      expect(response.status).toBe(401)
      expect(response.headers["www-authenticate"]).toBe(invalidToken("the token's signature is invalid"))
    }).pipe(Effect.provide(Live())))

  it.live("expired token: 401 invalid_token, and the description never echoes the token", () =>
    Effect.gen(function*() {
      const token = yield* sign({ ...alice, iat: nowSeconds() - 600, exp: nowSeconds() - 60 })
      const response = yield* request("/me", `bearer ${token}`)
      expect(response.status).toBe(401)
      expect(response.headers["www-authenticate"]).toBe(invalidToken("the token has expired"))
      expect(JSON.stringify(response.body)).not.toContain(token.slice(0, 20))
    }).pipe(Effect.provide(Live())))

  it.live("good token: 200, and the handler sees the principal", () =>
    Effect.gen(function*() {
      const token = yield* sign(alice)
      const response = yield* request("/me", `Bearer ${token}`)
      expect(response.status).toBe(200)
      expect(response.headers["www-authenticate"]).toBeUndefined()
      expect(response.body).toEqual({ id: "alice", name: "Alice", groups: ["staff"] })
    }).pipe(Effect.provide(Live())))

  it.live("metrics after a known sequence of requests: 3 good, 1 malformed, 1 expired, 1 without a token", () =>
    Effect.gen(function*() {
      const before = yield* JwksMetrics.snapshot
      const good = yield* sign(alice)
      const expired = yield* sign({ ...alice, iat: nowSeconds() - 600, exp: nowSeconds() - 60 })
      const statuses: Array<number> = []
      for (const authorization of [`Bearer ${good}`, `Bearer ${good}`, "Bearer not-a-jwt", `Bearer ${expired}`]) {
        statuses.push((yield* request("/me", authorization)).status)
      }
      statuses.push((yield* request("/me")).status, (yield* request("/me", `Bearer ${good}`)).status)
      expect(statuses).toEqual([200, 200, 401, 401, 401, 200])
      const after = yield* JwksMetrics.snapshot
      const delta = (reason: JwksMetrics.FailureReason) =>
        (after.errorsByType[reason] ?? 0) - (before.errorsByType[reason] ?? 0)
      // The request without a token never reaches the validator, so it is not a validation.
      expect(after.tokensValidated - before.tokensValidated).toBe(3)
      expect(after.tokensFailed - before.tokensFailed).toBe(2)
      expect(delta("Malformed")).toBe(1)
      expect(delta("Expired")).toBe(1)
    }).pipe(Effect.provide(Live())))

  it.live("requireGroups: 403 insufficient_scope without the group, 200 with it", () =>
    Effect.gen(function*() {
      const denied = yield* request("/admin", `Bearer ${yield* sign(alice)}`)
      expect(denied.status).toBe(403)
      expect(denied.headers["www-authenticate"]).toBe(`Bearer realm="${realm}", error="insufficient_scope"`)
      expect(denied.body).toEqual({
        error: "insufficient_scope",
        error_description: "the token lacks a required group"
      })

      const admin = yield* request("/admin", `Bearer ${yield* sign({ ...alice, groups: ["staff", "admin"] })}`)
      expect(admin.status).toBe(200)
      expect(admin.headers["www-authenticate"]).toBeUndefined()
      expect(admin.body).toBe("welcome alice")
    }).pipe(Effect.provide(Live())))

  it.live("requireScopes: 403 with scope=, 200 with every scope", () =>
    Effect.gen(function*() {
      const denied = yield* request("/write", `Bearer ${yield* sign(alice)}`)
      expect(denied.status).toBe(403)
      expect(denied.headers["www-authenticate"]).toBe(
        `Bearer realm="${realm}", error="insufficient_scope", scope="orders:read orders:write"`
      )
      expect(denied.body).toEqual({
        error: "insufficient_scope",
        error_description: "the token lacks a required scope",
        scope: "orders:read orders:write"
      })

      const granted = yield* request("/write", `Bearer ${yield* sign({ ...alice, scope: "orders:read orders:write" })}`)
      expect(granted.status).toBe(200)
      expect(granted.body).toBe("written")
    }).pipe(Effect.provide(Live())))

  it.live("a guard refused in a child fiber still answers with the challenge", () =>
    Effect.gen(function*() {
      const denied = yield* request("/parallel", `Bearer ${yield* sign(alice)}`)
      expect(denied.status).toBe(403)
      expect(denied.headers["www-authenticate"]).toBe(
        `Bearer realm="${realm}", error="insufficient_scope", scope="orders:write"`
      )
      expect(denied.headers["cache-control"]).toBe("no-store")
    }).pipe(Effect.provide(Live())))

  it.live("a guard refusal the handler recovered from puts no challenge on the app's own 403", () =>
    Effect.gen(function*() {
      const reduced = yield* request("/owner", `Bearer ${yield* sign(alice)}`)
      expect(reduced.status).toBe(403)
      expect(reduced.headers["www-authenticate"]).toBeUndefined()
      const full = yield* request("/owner", `Bearer ${yield* sign({ ...alice, groups: ["admin"] })}`)
      expect([full.status, full.body]).toEqual([200, "full"])
    }).pipe(Effect.provide(Live())))

  it.live("a credential padded with anything but spaces and tabs is not a bearer token: 401", () =>
    Effect.gen(function*() {
      const token = yield* sign(alice)
      expect((yield* request("/me", `Bearer \t${token}  `)).status).toBe(200)
      // U+00A0 travels as the byte 0xA0, which Node accepts in a header value; String.prototype.trim would drop it.
      for (const padded of [`Bearer ${token}\u00a0`, `Bearer \u00a0${token}`, `Bearer\u00a0${token}`]) {
        const refused = yield* request("/me", padded)
        expect(refused.status).toBe(401)
      }
    }).pipe(Effect.provide(Live())))

  it.live("IdP down, cold cache: 503 with Retry-After", () =>
    Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      const response = yield* request("/me", `Bearer ${yield* sign(alice)}`)
      expect(response.status).toBe(503)
      expect(response.headers["retry-after"]).toBe(retryAfter)
      expect(response.headers["www-authenticate"]).toBeUndefined()
      expect(response.body).toEqual({
        error: "temporarily_unavailable",
        error_description: "the signing keys are unavailable; retry later"
      })
      expect(yield* idp.fetchCount).toBeGreaterThanOrEqual(1)
    }).pipe(Effect.provide(Live(undefined, true))))

  it.live("IdP down, warm keys: 200", () =>
    Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      const token = yield* sign(alice)
      expect((yield* request("/me", `Bearer ${token}`)).status).toBe(200)
      yield* idp.setFault(FakeIdp.Fault.status(500))
      const response = yield* request("/me", `Bearer ${token}`)
      expect(response.status).toBe(200)
      expect(response.body).toEqual({ id: "alice", name: "Alice", groups: ["staff"] })
    }).pipe(Effect.provide(Live())))

  it.live("IdP down, expired warm keys: 200 from the stale set", () =>
    Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      const token = yield* sign(alice)
      // One validation per loaded set: the second request needs a refresh, which fails, so the stale set serves.
      expect((yield* request("/me", `Bearer ${token}`)).status).toBe(200)
      yield* idp.setFault(FakeIdp.Fault.status(500))
      const response = yield* request("/me", `Bearer ${token}`)
      expect(response.status).toBe(200)
      expect(yield* idp.fetchCount).toBeGreaterThanOrEqual(2)
    }).pipe(Effect.provide(Live({ strategy: "usage", usages: 1, backgroundRefresh: false }))))

  // Without the background fiber, which would load the keys at start-up, so that the cache is seen cold first.
  it.live("cache-info: the key ids and the cache's state as JSON", () =>
    Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      const cold = yield* request("/cache-info")
      expect(cold.status).toBe(200)
      expect(cold.body).toMatchObject({ keyIds: [], loadedAt: null, lastRefresh: null, fetches: 0 })

      expect((yield* request("/me", `Bearer ${yield* sign(alice)}`)).status).toBe(200)
      const warm = yield* request("/cache-info")
      expect(warm.status).toBe(200)
      expect(warm.headers["cache-control"]).toBe("no-store")
      const info = warm.body as HttpAuth.CacheInfo
      expect(info).toMatchObject({
        source: idp.jwksUri,
        strategy: "both",
        settings: { intervalSeconds: 1200, usages: 1000, backgroundRefresh: false, backgroundRefreshThreshold: 0.8 },
        keyIds: [yield* idp.currentKid],
        usesLeft: 999,
        fresh: true,
        servingStale: false,
        lastRefresh: { outcome: "success" },
        fetches: 1
      })
      expect(Date.parse(info.expiresAt!) - Date.parse(info.loadedAt!)).toBe(20 * 60 * 1000)
      expect(Date.parse(info.staleUntil!) - Date.parse(info.expiresAt!)).toBe(60 * 60 * 1000) // maxStale
      const status = yield* Effect.flatMap(JwksCache.JwksCache, (cache) => cache.status)
      expect(info).toEqual(JSON.parse(JSON.stringify(HttpAuth.toCacheInfo(status))))
    }).pipe(Effect.provide(Live({ backgroundRefresh: false }))))
})

describe("HttpAuth", () => {
  it.live("quote-unsafe realms are cleaned and scopes left out, never echoed raw nor changed into other scopes", () =>
    Effect.gen(function*() {
      const app = HttpAuth.middleware({ realm: "my \"realm\"\\\n" })(
        Effect.zipRight(HttpAuth.requireScopes("a\"b", "c d"), HttpServerResponse.text("ok"))
      )
      const Live = TestLive(HttpServer.serve(HttpRouter.empty.pipe(HttpRouter.get("/x", app))))
      const result = yield* Effect.gen(function*() {
        const missing = yield* request("/x")
        const denied = yield* request("/x", `Bearer ${yield* sign(alice)}`)
        return { missing, denied }
      }).pipe(Effect.provide(Live))
      expect(result.missing.headers["www-authenticate"]).toBe(`Bearer realm="my realm"`)
      expect(result.denied.headers["www-authenticate"]).toBe(
        `Bearer realm="my realm", error="insufficient_scope", scope="c d"`
      )
    }))

  // Errors of an app's own in OAuth's error shape: one with a status of its own, one carrying a refusal it received.
  class Overloaded extends Schema.TaggedError<Overloaded>()("Overloaded", {
    error: Schema.Literal("temporarily_unavailable"),
    error_description: Schema.String
  }, HttpApiSchema.annotations({ status: 503 })) {}
  class UpstreamRefused extends Schema.TaggedError<UpstreamRefused>()("UpstreamRefused", {
    error: Schema.Literal("invalid_token"),
    error_description: Schema.String,
    upstream: HttpAuth.Failure
  }, HttpApiSchema.annotations({ status: 401 })) {}

  it.effect("an HttpApi endpoint no guard runs for, failing with this module's errors, answers with their headers", () =>
    Effect.promise(async () => {
      // A session exchange outside Authentication that declares the classes and fails with them.
      class Unguarded extends HttpApi.make("unguarded").add(
        HttpApiGroup.make("session")
          .add(HttpApiEndpoint.post("expired", "/expired").addSuccess(Schema.String).addError(HttpAuth.Unauthorized))
          .add(HttpApiEndpoint.post("down", "/down").addSuccess(Schema.String).addError(HttpAuth.ServiceUnavailable))
          .add(HttpApiEndpoint.post("scope", "/scope").addSuccess(Schema.String).addError(HttpAuth.Forbidden))
          .add(HttpApiEndpoint.post("ok", "/ok").addSuccess(Schema.String).addError(HttpAuth.Unauthorized))
          .add(HttpApiEndpoint.post("bad", "/bad").addSuccess(Schema.String).addError(HttpAuth.BadRequest))
          .add(HttpApiEndpoint.post("quoted", "/quoted").addSuccess(Schema.String).addError(HttpAuth.Forbidden))
          .add(HttpApiEndpoint.post("busy", "/busy").addSuccess(Schema.String).addError(Overloaded))
          .add(HttpApiEndpoint.post("proxy", "/proxy").addSuccess(Schema.String).addError(UpstreamRefused))
      ) {}
      const Live = HttpApiBuilder.api(Unguarded).pipe(
        Layer.provide(HttpApiBuilder.group(Unguarded, "session", (handlers) =>
          handlers
            .handle("expired", () =>
              Effect.fail(new HttpAuth.Unauthorized({ error: "invalid_token", error_description: "expired" })))
            .handle("down", () =>
              Effect.fail(new HttpAuth.ServiceUnavailable({ error_description: "later" })))
            .handle("scope", () =>
              Effect.fail(new HttpAuth.Forbidden({ error_description: "no", scope: "orders:write" })))
            // A refusal recovered from adds nothing to the answer of the app's own.
            .handle("ok", () =>
              Effect.as(
                Effect.either(
                  Schema.encode(HttpAuth.Unauthorized)(
                    new HttpAuth.Unauthorized({ error: "invalid_token", error_description: "x" })
                  )
                ),
                "fine"
              ))
            // The app's own 400 of this module's class, with a description of its own.
            .handle("bad", () =>
              Effect.fail(new HttpAuth.BadRequest({ error_description: "the cursor is stale" })))
            // A scope name with a quote in it is left out of the challenge, never changed into another name.
            .handle("quoted", () =>
              Effect.fail(new HttpAuth.Forbidden({ error_description: "no", scope: "orders:write\tadmin admin\"x" })))
            // Errors of the app's own in OAuth's shape, after one of this module's was encoded for the request (a
            // journal entry): answered as the app wrote them, without this module's headers.
            .handle("busy", () =>
              Effect.zipRight(
                Effect.either(
                  Schema.encode(HttpAuth.ServiceUnavailable)(
                    new HttpAuth.ServiceUnavailable({ error_description: "x" })
                  )
                ),
                Effect.fail(new Overloaded({ error: "temporarily_unavailable", error_description: "queue full" }))
              ))
            .handle("proxy", () =>
              Effect.fail(
                new UpstreamRefused({
                  error: "invalid_token",
                  error_description: "the orders service refused our call",
                  upstream: Schema.decodeUnknownSync(HttpAuth.Failure)({
                    error: "invalid_token",
                    error_description: "the orders service refused our call"
                  })
                })
              ))))
      )
      const web = HttpApiBuilder.toWebHandler(
        Live.pipe(Layer.merge(HttpServer.layerContext), Layer.merge(Logger.remove(Logger.defaultLogger)))
      )
      const answer = async (path: string) => {
        const response = await web.handler(new Request(`http://localhost${path}`, { method: "POST" }))
        return [
          response.status,
          response.headers.get("www-authenticate"),
          response.headers.get("retry-after"),
          response.headers.get("cache-control")
        ]
      }
      try {
        expect(await answer("/expired")).toEqual([
          401,
          `Bearer realm="api", error="invalid_token", error_description="expired"`,
          null,
          "no-store"
        ])
        expect(await answer("/down")).toEqual([503, null, "30", "no-store"])
        expect(await answer("/scope")).toEqual([
          403,
          `Bearer realm="api", error="insufficient_scope", scope="orders:write"`,
          null,
          "no-store"
        ])
        expect(await answer("/ok")).toEqual([200, null, null, null])
        expect(await answer("/bad")).toEqual([
          400,
          `Bearer realm="api", error="invalid_request", error_description="the cursor is stale"`,
          null,
          "no-store"
        ])
        expect((await answer("/quoted"))[1]).toBe(
          `Bearer realm="api", error="insufficient_scope", scope="orders:write admin"`
        )
        expect(await answer("/busy")).toEqual([503, null, null, null])
        expect(await answer("/proxy")).toEqual([401, null, null, null])
      } finally {
        await web.dispose()
      }
    }))

  it("the failure schema encodes the RFC 6750 bodies with their statuses", () => {
    const encode = Schema.encodeSync(HttpAuth.Failure)
    expect(encode(new HttpAuth.Forbidden({ error_description: "x", scope: "a" }))).toEqual({
      error: "insufficient_scope",
      error_description: "x",
      scope: "a"
    })
    expect(encode(new HttpAuth.ServiceUnavailable({ error_description: "y" }))).toEqual({
      error: "temporarily_unavailable",
      error_description: "y"
    })
    const decoded = Schema.decodeUnknownSync(HttpAuth.Failure)({ error: "invalid_token", error_description: "z" })
    expect(decoded).toBeInstanceOf(HttpAuth.Unauthorized)
  })

  describe("in process, with a stub validator", () => {
    // A validator stub: "good" is alice (group staff), anything else is refused.
    it.effect("requireScopes takes a space-separated scope string as the scopes it names", () =>
      Effect.gen(function*() {
        const writer = new Principal({ ...alicePrincipal, scopes: ["orders:read", "orders:write"] })
        const granted = yield* HttpAuth.requireScopes("orders:read  orders:write").pipe(
          Effect.provideService(HttpAuth.CurrentPrincipal, writer)
        )
        expect(granted.id).toBe("alice")
        const refused = yield* Effect.flip(
          HttpAuth.requireScopes("orders:read orders:write").pipe(
            Effect.provideService(HttpAuth.CurrentPrincipal, alicePrincipal)
          )
        )
        expect(refused.scope).toBe("orders:read orders:write")
      }))

    const ValidatorStub = Layer.succeed(TokenValidator.TokenValidator, {
      acceptsIssuer: () => true,
      keyStatus: Effect.succeed([]),
      validate: (token) =>
        token === "good"
          ? Effect.succeed(alicePrincipal)
          : token === "down"
          ? Effect.fail(new JwksError({ reason: "Unreachable", source: "https://idp.example/jwks" }))
          : Effect.fail(new TokenValidationError({ reason: "Malformed", description: "bad" }))
    })
    class GuardApi extends HttpApi.make("guards").add(
      HttpApiGroup.make("private")
        .add(HttpApiEndpoint.get("me", "/me").addSuccess(Schema.String))
        .add(HttpApiEndpoint.get("admin", "/admin").addSuccess(Schema.String))
        .add(HttpApiEndpoint.get("parallel", "/parallel").addSuccess(Schema.String))
        .add(HttpApiEndpoint.get("maintenance", "/maintenance").addSuccess(Schema.String))
        .add(HttpApiEndpoint.get("revoked", "/revoked").addSuccess(Schema.String))
        .add(HttpApiEndpoint.get("many", "/many").addSuccess(Schema.String))
        .add(HttpApiEndpoint.get("joined", "/joined").addSuccess(Schema.String))
        .add(HttpApiEndpoint.get("search", "/search").addSuccess(Schema.String))
        .add(
          HttpApiEndpoint.get("find", "/find").setUrlParams(Schema.Struct({ n: Schema.NumberFromString })).addSuccess(
            Schema.String
          )
        )
        .middleware(HttpAuth.Authentication)
    ) {}
    /** Enough long scopes that the guard's 403 body passes a few KiB. */
    const manyScopes = Array.from({ length: 100 }, (_, i) => `https://api.example.com/orders/scope-number-${i}.write`)
    const metadata = `resource_metadata="https://api.example.com/.well-known/oauth-protected-resource"`
    const GuardLive = (authentication: Layer.Layer<HttpAuth.Authentication, never, TokenValidator.TokenValidator>) =>
      HttpApiBuilder.group(GuardApi, "private", (handlers) =>
        handlers
          .handle("me", () => Effect.map(HttpAuth.CurrentPrincipal, (principal) => principal.id))
          .handle("admin", () => Effect.map(HttpAuth.requireGroups("admin"), (principal) => principal.id))
          .handle("parallel", () => Effect.as(inParallel, "written"))
          // Responses of the app's own, in the shape of this module's errors, with headers of their own.
          // The app's own 400 in OAuth's error shape (RFC 6749, section 5.2): the caller's token is fine.
          .handle("search", () =>
            Effect.succeed(HttpServerResponse.unsafeJson(
              { error: "invalid_request", error_description: "'from' is after 'to'" },
              { status: 400 }
            )))
          .handle("find", ({ urlParams }) => Effect.succeed(String(urlParams.n)))
          .handle("maintenance", () =>
            Effect.succeed(HttpServerResponse.unsafeJson(
              { error: "temporarily_unavailable", error_description: "down for maintenance until 18:00" },
              { status: 503, headers: { "retry-after": "3600" } }
            )))
          .handle("revoked", () =>
            Effect.succeed(HttpServerResponse.unsafeJson(
              { error: "invalid_token", error_description: "the token was revoked" },
              { status: 401, headers: { "www-authenticate": `Bearer ${metadata}, error="invalid_token"` } }
            )))
          .handle("many", () => Effect.as(HttpAuth.requireScopes(...manyScopes), "ok"))
          // A refusal recovered from, then a fiber of the app's joined (one that added a response handler of its own,
          // as `HttpApiBuilder.securitySetCookie` does), then the refusal that is the answer.
          .handle("joined", () =>
            Effect.gen(function*() {
              const fiber = yield* Effect.fork(
                HttpApp.appendPreResponseHandler((_request, response) =>
                  Effect.succeed(HttpServerResponse.setHeader(response, "x-app", "kept"))
                )
              )
              yield* Effect.yieldNow()
              yield* Effect.either(HttpAuth.requireGroups("admin"))
              yield* Fiber.join(fiber)
              return yield* Effect.as(HttpAuth.requireGroups("admin"), "never")
            }))).pipe(
          Layer.provide(authentication),
          Layer.provide(ValidatorStub)
        )
    const answer = async (handler: (request: Request) => Promise<Response>, path: string, token?: string) => {
      const headers: Record<string, string> = token === undefined ? {} : { authorization: `Bearer ${token}` }
      const response = await handler(new Request(`http://localhost${path}`, { headers }))
      return { status: response.status, challenge: response.headers.get("www-authenticate") }
    }
    const serveWith = (
      toWebHandler: () => {
        readonly handler: (request: Request) => Promise<Response>
        readonly dispose: () => Promise<void>
      },
      use: (handler: (request: Request) => Promise<Response>) => Promise<void>
    ) =>
      Effect.promise(async () => {
        const web = toWebHandler()
        try {
          await use(web.handler)
        } finally {
          await web.dispose()
        }
      })

    it.effect("HttpLayerRouter.addHttpApi: 401, 403 and a guard in a child fiber carry their challenge", () =>
      serveWith(
        () =>
          HttpLayerRouter.toWebHandler(
            HttpLayerRouter.addHttpApi(GuardApi).pipe(
              Layer.provide(GuardLive(HttpAuth.layerBearer({ realm: "orders" }))),
              Layer.provide(HttpServer.layerContext)
            )
          ),
        async (handler) => {
          expect(await answer(handler, "/me")).toEqual({ status: 401, challenge: `Bearer realm="orders"` })
          const refused = await answer(handler, "/me", "nope")
          expect(refused.status).toBe(401)
          expect(refused.challenge).toMatch(/^Bearer realm="orders", error="invalid_token"/)
          expect(await answer(handler, "/admin", "good")).toEqual({
            status: 403,
            challenge: `Bearer realm="orders", error="insufficient_scope"`
          })
          expect(await answer(handler, "/parallel", "good")).toEqual({
            status: 403,
            challenge: `Bearer realm="orders", error="insufficient_scope", scope="orders:write"`
          })
        }
      ))

    /** The middleware over `app`, with the stub validator. */
    const stubbed = <E>(app: HttpApp.Default<E, HttpAuth.CurrentPrincipal>) =>
      HttpApp.toWebHandler(HttpAuth.middleware()(app).pipe(Effect.provide(ValidatorStub)))
    const call = (handler: (request: Request) => Promise<Response>, authorization?: string) =>
      Effect.promise(() =>
        handler(new Request("http://localhost/", { headers: authorization === undefined ? {} : { authorization } }))
      )

    it.effect(
      "a request that recovers from 20,000 guard refusals is answered, and a last one still gets its challenge",
      () =>
        Effect.gen(function*() {
          // The `Forbidden` pattern (a reduced view for non-admins) applied to each item of a list: each refusal used to
          // append one more pre-response handler, and the chain overflowed the stack as the response went out (no answer).
          const visible = Effect.filter(Array.from({ length: 20_000 }, (_, i) => i), () =>
            HttpAuth.requireGroups("admin").pipe(
              Effect.as(true),
              Effect.catchTag("Forbidden", () =>
                Effect.succeed(false))
            ))
          const listed = yield* call(
            stubbed(Effect.flatMap(visible, (items) =>
              HttpServerResponse.json({ visible: items.length }))),
            "Bearer good"
          )
          expect([listed.status, yield* Effect.promise(() => listed.text())]).toEqual([200, `{"visible":0}`])
          const refused = yield* call(
            stubbed(
              Effect.zipRight(visible, Effect.zipRight(HttpAuth.requireGroups("admin"), HttpServerResponse.empty()))
            ),
            "Bearer good"
          )
          expect(refused.status).toBe(403)
          expect(refused.headers.get("www-authenticate")).toContain(`error="insufficient_scope"`)
        }),
      20_000
    )

    it.effect(
      "refusals recovered inside and outside a scoped response handler, 10,000 times: answered, one challenge",
      () =>
        Effect.gen(function*() {
          // A sub-step with a response handler of its own (the chain is restored after it): a chain remembered per fiber
          // was the scoped one, and each refusal outside it appended the challenge handler again.
          const recovered = Effect.either(HttpAuth.requireGroups("admin"))
          const scoped = HttpApp.withPreResponseHandler(recovered, (_request, response) => Effect.succeed(response))
          const steps = Effect.forEach(Array.from({ length: 10_000 }), () => Effect.zipRight(scoped, recovered), {
            discard: true
          })
          const listed = yield* call(stubbed(Effect.zipRight(steps, HttpServerResponse.text("ok"))), "Bearer good")
          expect(listed.status).toBe(200)
          const refused = yield* call(
            stubbed(
              Effect.zipRight(steps, Effect.zipRight(HttpAuth.requireGroups("admin"), HttpServerResponse.empty()))
            ),
            "Bearer good"
          )
          expect([refused.status, refused.headers.get("www-authenticate")]).toEqual([
            403,
            `Bearer realm="api", error="insufficient_scope"`
          ])
        }),
      20_000
    )

    it.effect("a fetch-style server joins two Authorization headers: 400 invalid_request; a Digest header's commas are its own", () =>
      Effect.gen(function*() {
        const twice = new Headers([["authorization", "Bearer good"], ["authorization", "Bearer evil"]])
        const bodyOf = { error: "invalid_request", error_description: "the request has more than one credential" }
        const router = stubbed(HttpServerResponse.text("ok"))
        const api = HttpApiBuilder.toWebHandler(
          HttpApiBuilder.api(GuardApi).pipe(
            Layer.provide(GuardLive(HttpAuth.layerBearer())),
            Layer.merge(HttpServer.layerContext)
          )
        )
        for (const handler of [router, (request: Request) => api.handler(request)]) {
          const response = yield* Effect.promise(() => handler(new Request("http://localhost/me", { headers: twice })))
          expect([response.status, yield* Effect.promise(() => response.json())]).toEqual([400, bodyOf])
          expect(response.headers.get("www-authenticate")).toBe(
            `Bearer realm="api", error="invalid_request", error_description="${bodyOf.error_description}"`
          )
        }
        // Another scheme's credentials joined with a bearer one are two credentials too.
        const basicAndBearer = new Headers([["authorization", "Basic YWxpY2U6cHc="], ["authorization", "Bearer good"]])
        const mixed = yield* Effect.promise(() => router(new Request("http://localhost/", { headers: basicAndBearer })))
        expect(mixed.status).toBe(400)
        // In the other order too: the token read would be "good, Basic ...", a refusal of the wrong kind (401).
        const bearerAndBasic = new Headers([["authorization", "Bearer good"], ["authorization", "Basic YWxpY2U6cHc="]])
        const after = yield* Effect.promise(() => router(new Request("http://localhost/", { headers: bearerAndBasic })))
        expect(after.status).toBe(400)
        // The app's own 400 in the same shape gets no challenge: only the one raised by the authentication does.
        const own = yield* Effect.promise(() =>
          api.handler(new Request("http://localhost/search", { headers: { authorization: "Bearer good" } }))
        )
        expect([own.status, own.headers.get("www-authenticate"), own.headers.get("cache-control")]).toEqual([
          400,
          null,
          null
        ])
        yield* Effect.promise(() => api.dispose())
        // Another scheme is not a bearer credential, commas and all: the realm-only challenge, as for no token.
        const digest = yield* call(router, `Digest username="alice", realm="api", nonce="abc", response="def"`)
        expect([digest.status, digest.headers.get("www-authenticate")]).toEqual([401, `Bearer realm="api"`])
      }))

    it.effect("a 400 gets the invalid_request challenge only as this library answers it, never over the app's own", () =>
      Effect.gen(function*() {
        const twice = () => new Headers([["authorization", "Basic YWxpY2U6cHc="], ["authorization", "Bearer good"]])
        // An Authentication of the app's own over layerBearer's: a guest when the bearer one refuses (a session, say).
        const bearerOrGuest = Layer.effect(
          HttpAuth.Authentication,
          Effect.map(HttpAuth.Authentication, (bearer) =>
            HttpAuth.Authentication.of({
              bearer: (credential) => Effect.catchAll(bearer.bearer(credential), () => Effect.succeed(alicePrincipal))
            }))
        ).pipe(Layer.provide(HttpAuth.layerBearer()))
        const metadata =
          `Bearer realm="api", resource_metadata="https://api.example.com/.well-known/oauth-protected-resource"`
        // The app writes its own challenge on 400 and 401 (as the RFC 9728 test above does on 401).
        const withMetadata = HttpApiBuilder.middleware((app) =>
          Effect.zipRight(
            HttpApp.appendPreResponseHandler((_request, response) =>
              Effect.succeed(
                response.status === 400 || response.status === 401
                  ? HttpServerResponse.setHeader(response, "www-authenticate", metadata)
                  : response
              )
            ),
            app
          )
        )
        const web = (authentication: typeof bearerOrGuest, extra: Layer.Layer<never> = Layer.empty) =>
          HttpApiBuilder.toWebHandler(
            HttpApiBuilder.api(GuardApi).pipe(
              Layer.provide(GuardLive(authentication)),
              Layer.provide(extra),
              Layer.merge(HttpServer.layerContext)
            )
          )
        // The refusal recovered from, then the platform's own 400 (a bad query parameter): no challenge on it.
        yield* serveWith(() => web(bearerOrGuest), async (handler) => {
          const decodeError = await handler(new Request("http://localhost/find?n=abc", { headers: twice() }))
          expect([
            decodeError.status,
            decodeError.headers.get("www-authenticate"),
            decodeError.headers.get("cache-control")
          ]).toEqual([400, null, null])
        })
        // A challenge the app wrote itself is kept, on the 400 as on the 401.
        yield* serveWith(() => web(HttpAuth.layerBearer(), withMetadata), async (handler) => {
          const refused = await handler(new Request("http://localhost/me", { headers: twice() }))
          expect([refused.status, refused.headers.get("www-authenticate")]).toEqual([400, metadata])
        })
      }))

    // Mutation: `groups.every(...)` -> `groups.some(...)` in requireGroups. Every group named is required.
    it.effect("requireGroups with several groups refuses a principal that has only one of them", () =>
      Effect.gen(function*() {
        const forbidden = yield* Effect.exit(
          Effect.provideService(HttpAuth.requireGroups("staff", "admin"), HttpAuth.CurrentPrincipal, alicePrincipal)
        )
        expect(forbidden._tag).toBe("Failure")
        const allowed = yield* Effect.provideService(
          HttpAuth.requireGroups("staff"),
          HttpAuth.CurrentPrincipal,
          alicePrincipal
        )
        expect(allowed.id).toBe("alice")
        // Through the middleware too: 403.
        const guarded = stubbed(
          Effect.zipRight(HttpAuth.requireGroups("staff", "admin"), HttpServerResponse.text("ok"))
        )
        expect((yield* call(guarded, "Bearer good")).status).toBe(403)
      }))

    // Mutation: `separator !== 0x20 && separator !== 0x09` -> `separator !== 0x20`. The scheme may be followed by a
    // tab as well as a space (the parser trims both as optional white space).
    it.effect("a tab right after the scheme separates it from the token", () =>
      Effect.gen(function*() {
        const handler = stubbed(
          Effect.flatMap(HttpAuth.CurrentPrincipal, (principal) => HttpServerResponse.text(principal.id))
        )
        expect((yield* call(handler, "Bearer\tgood")).status).toBe(200)
        expect((yield* call(handler, "Bearer good")).status).toBe(200)
        expect((yield* call(handler, "Bearergood")).status).toBe(401)
      }))

    // Mutation: drop `statusOf(error) === response.status` in carriedError. A response of the app's own whose body
    // looks like one of this module's errors gets that error's headers only if its status is that error's.
    it.effect("challengeHeaders adds nothing to a response whose status is not its body's error's", () =>
      Effect.gen(function*() {
        const app = Effect.zipRight(
          HttpAuth.challengeHeaders,
          Effect.succeed(HttpServerResponse.unsafeJson(
            { error: "temporarily_unavailable", error_description: "not really" },
            { status: 401 }
          ))
        )
        const response = yield* Effect.promise(() => HttpApp.toWebHandler(app)(new Request("http://localhost/")))
        expect(response.status).toBe(401)
        expect(response.headers.get("retry-after")).toBeNull()
        expect(response.headers.get("www-authenticate")).toBeNull()
        // Control: the same body with its own status gets its headers.
        const matching = Effect.zipRight(
          HttpAuth.challengeHeaders,
          Effect.succeed(HttpServerResponse.unsafeJson(
            { error: "temporarily_unavailable", error_description: "down" },
            { status: 503 }
          ))
        )
        const control = yield* Effect.promise(() => HttpApp.toWebHandler(matching)(new Request("http://localhost/")))
        expect(control.headers.get("retry-after")).toBe("30")
      }))

    it.effect("options of the wrong type from untyped config fall back to the defaults", () =>
      Effect.gen(function*() {
        // `Number(process.env.RETRY)` of an unset variable, a realm read from JSON as a number.
        const junk = { retryAfter: Number.NaN, realm: 42 } as unknown as HttpAuth.Options
        const handler = HttpApp.toWebHandler(
          HttpAuth.middleware(junk)(HttpServerResponse.text("ok")).pipe(Effect.provide(ValidatorStub))
        )
        const unavailable = yield* call(handler, "Bearer down")
        expect([unavailable.status, unavailable.headers.get("retry-after")]).toEqual([503, "30"])
        // A wait of part of a second is rounded up: Retry-After counts whole seconds, and 0 would mean "at once".
        for (const [retryAfter, header] of [["1500 millis", "2"], ["500 millis", "1"]] as const) {
          const fractional = HttpApp.toWebHandler(
            HttpAuth.middleware({ retryAfter })(HttpServerResponse.text("ok")).pipe(Effect.provide(ValidatorStub))
          )
          const answer = yield* call(fractional, "Bearer down")
          expect([answer.status, answer.headers.get("retry-after")]).toEqual([503, header])
        }
        const refused = yield* call(handler, "Bearer bad")
        expect([refused.status, refused.headers.get("www-authenticate")]).toEqual([
          401,
          `Bearer realm="api", error="invalid_token", error_description="the token is malformed"`
        ])
      }))

    it.effect("guards given no groups or scopes refuse everyone; a huge Retry-After stays a whole number", () =>
      Effect.gen(function*() {
        // As a list read from configuration would be, once empty.
        const noGroups: ReadonlyArray<string> = []
        const app = (guard: Effect.Effect<unknown, HttpAuth.Forbidden, HttpAuth.CurrentPrincipal>) =>
          HttpApp.toWebHandler(
            HttpAuth.middleware({ retryAfter: Duration.days(1e20) })(
              Effect.zipRight(guard, HttpServerResponse.text("ok"))
            ).pipe(Effect.provide(ValidatorStub))
          )
        yield* serveWith(
          () => ({ handler: app(HttpAuth.requireGroups(...noGroups)), dispose: async () => {} }),
          async (handler) => {
            expect(await answer(handler, "/", "good")).toEqual({
              status: 403,
              challenge: `Bearer realm="api", error="insufficient_scope"`
            })
          }
        )
        yield* serveWith(
          () => ({ handler: app(HttpAuth.requireScopes(...noGroups)), dispose: async () => {} }),
          async (handler) => {
            // No scope="" in the challenge: there is no scope to name.
            expect(await answer(handler, "/", "good")).toEqual({
              status: 403,
              challenge: `Bearer realm="api", error="insufficient_scope"`
            })
            const unavailable = await handler(
              new Request("http://localhost/", { headers: { authorization: "Bearer down" } })
            )
            expect([unavailable.status, unavailable.headers.get("retry-after")]).toEqual([503, String(2 ** 31 - 1)])
          }
        )
        yield* serveWith(
          () => ({ handler: app(HttpAuth.requireGroups("staff")), dispose: async () => {} }),
          async (handler) => {
            expect((await answer(handler, "/", "good")).status).toBe(200)
          }
        )
      }))

    it.effect("a guard under an Authentication of the app's own keeps its challenge; in a child fiber with challengeHeaders", () =>
      Effect.gen(function*() {
        const own = (bearer: Effect.Effect<Principal>) =>
          HttpApiBuilder.toWebHandler(
            HttpApiBuilder.api(GuardApi).pipe(
              Layer.provide(
                GuardLive(Layer.succeed(HttpAuth.Authentication, HttpAuth.Authentication.of({ bearer: () => bearer })))
              ),
              Layer.merge(HttpServer.layerContext)
            )
          )
        yield* serveWith(() => own(Effect.succeed(alicePrincipal)), async (handler) => {
          expect(await answer(handler, "/admin", "whatever")).toEqual({
            status: 403,
            challenge: `Bearer realm="api", error="insufficient_scope"`
          })
          expect(await answer(handler, "/me", "whatever")).toEqual({ status: 200, challenge: null })
          // The joined fiber brought a handler chain without the challenge's: it is installed again.
          const joined = await handler(new Request("http://localhost/joined"))
          expect([joined.status, joined.headers.get("www-authenticate"), joined.headers.get("x-app")]).toEqual([
            403,
            `Bearer realm="api", error="insufficient_scope"`,
            "kept"
          ])
        })
        // A child fiber's handler dies with it: the app's Authentication installs one for the request.
        yield* serveWith(
          () => own(Effect.zipRight(HttpAuth.challengeHeaders, Effect.succeed(alicePrincipal))),
          async (handler) => {
            expect(await answer(handler, "/parallel", "whatever")).toEqual({
              status: 403,
              challenge: `Bearer realm="api", error="insufficient_scope", scope="orders:write"`
            })
          }
        )
      }))

    it.effect("a guard refused outside any request (a start-up self-check) leaves every request its own settings", () =>
      Effect.gen(function*() {
        // The app checks its permission rule as its layers are built: a principal without the group is refused.
        const selfCheck = Layer.effectDiscard(
          HttpAuth.requireGroups("admin").pipe(
            Effect.provideService(HttpAuth.CurrentPrincipal, alicePrincipal),
            Effect.flip
          )
        )
        const Live = GuardLive(HttpAuth.layerBearer({ realm: "orders", retryAfter: "5 seconds" }))
        yield* serveWith(
          () =>
            HttpApiBuilder.toWebHandler(
              HttpApiBuilder.api(GuardApi).pipe(
                Layer.provide(Live),
                Layer.merge(selfCheck),
                Layer.merge(HttpServer.layerContext)
              )
            ),
          async (handler) => {
            expect(await answer(handler, "/me")).toEqual({ status: 401, challenge: `Bearer realm="orders"` })
            expect(await answer(handler, "/admin", "good")).toEqual({
              status: 403,
              challenge: `Bearer realm="orders", error="insufficient_scope"`
            })
            const down = await handler(
              new Request("http://localhost/me", { headers: { authorization: "Bearer down" } })
            )
            expect([down.status, down.headers.get("retry-after")]).toEqual([503, "5"])
          }
        )
      }))

    it.effect("a response of the app's own keeps the headers it has, whatever its body; an app's handler can extend the challenge", () =>
      Effect.gen(function*() {
        const Live = GuardLive(HttpAuth.layerBearer({ realm: "orders", retryAfter: "5 seconds" }))
        yield* serveWith(
          () =>
            HttpApiBuilder.toWebHandler(
              HttpApiBuilder.api(GuardApi).pipe(Layer.provide(Live), Layer.merge(HttpServer.layerContext))
            ),
          async (handler) => {
            const maintenance = await handler(
              new Request("http://localhost/maintenance", { headers: { authorization: "Bearer good" } })
            )
            expect([maintenance.status, maintenance.headers.get("retry-after")]).toEqual([503, "3600"])
            expect(await answer(handler, "/revoked", "good")).toEqual({
              status: 401,
              challenge: `Bearer ${metadata}, error="invalid_token"`
            })
            // A guard naming many scopes: its 403 body is several KiB, and still carries the challenge.
            const many = await handler(
              new Request("http://localhost/many", { headers: { authorization: "Bearer good" } })
            )
            expect(many.status).toBe(403)
            expect(many.headers.get("www-authenticate")).toMatch(
              /^Bearer realm="orders", error="insufficient_scope", scope="/
            )
            expect(many.headers.get("cache-control")).toBe("no-store")
          }
        )
        // With HttpApi, a challenge of the app's own is written by a pre-response handler: it is kept.
        const withMetadata = HttpApp.appendPreResponseHandler((_request, response) =>
          Effect.succeed(
            response.status === 401
              ? HttpServerResponse.setHeader(response, "www-authenticate", `Bearer realm="orders", ${metadata}`)
              : response
          )
        )
        yield* serveWith(
          () =>
            HttpApiBuilder.toWebHandler(
              HttpApiBuilder.api(GuardApi).pipe(
                Layer.provide(Live),
                Layer.provide(HttpApiBuilder.middleware((app) => Effect.zipRight(withMetadata, app))),
                Layer.merge(HttpServer.layerContext)
              )
            ),
          async (handler) => {
            expect(await answer(handler, "/me")).toEqual({
              status: 401,
              challenge: `Bearer realm="orders", ${metadata}`
            })
          }
        )
      }))

    describe("an auth error from another guarded service (an HttpApiClient's) is not this request's", () => {
      // The other service: GuardApi behind the same middleware, reached through an HttpApiClient whose fetch is its
      // web handler.
      const orders = HttpApiBuilder.toWebHandler(
        HttpApiBuilder.api(GuardApi).pipe(
          Layer.provide(GuardLive(HttpAuth.layerBearer({ realm: "orders" }))),
          Layer.merge(HttpServer.layerContext)
        )
      )
      const callOrders = (path: "me" | "admin", token?: string) =>
        HttpApiClient.make(GuardApi, {
          baseUrl: "http://orders.internal",
          transformClient: token === undefined
            ? undefined
            : HttpClient.mapRequest(HttpClientRequest.bearerToken(token))
        }).pipe(
          Effect.flatMap((client) => client.private[path]()),
          // The transport's and the decoder's errors are not the point here.
          Effect.catchAll((error) => HttpAuth.isAuthError(error) ? Effect.fail(error) : Effect.die(error)),
          Effect.provide(FetchHttpClient.layer),
          Effect.provideService(FetchHttpClient.Fetch, (input, init) => orders.handler(new Request(input, init)))
        )
      // Another, whose API also declares the 401 class (a body with `_tag`): a client decodes its refusal through
      // the class's own schema.
      class DeclaringApi extends HttpApi.make("declaring").add(
        HttpApiGroup.make("private").add(HttpApiEndpoint.get("me", "/me").addSuccess(Schema.String)).middleware(
          HttpAuth.Authentication
        )
      ).addError(HttpAuth.Unauthorized) {}
      const declaring = HttpApiBuilder.toWebHandler(
        HttpApiBuilder.api(DeclaringApi).pipe(
          Layer.provide(
            HttpApiBuilder.group(
              DeclaringApi,
              "private",
              (handlers) => handlers.handle("me", () => Effect.succeed("me"))
            )
              .pipe(Layer.provide(HttpAuth.layerBearer({ realm: "declaring" })), Layer.provide(ValidatorStub))
          ),
          Layer.merge(HttpServer.layerContext)
        )
      )
      const callDeclaring = HttpApiClient.make(DeclaringApi, { baseUrl: "http://declaring.internal" }).pipe(
        Effect.flatMap((client) => client.private.me()),
        Effect.catchAll((error) => HttpAuth.isAuthError(error) ? Effect.fail(error) : Effect.die(error)),
        Effect.provide(FetchHttpClient.layer),
        Effect.provideService(FetchHttpClient.Fetch, (input, init) => declaring.handler(new Request(input, init)))
      )
      afterAll(() => Promise.all([orders.dispose(), declaring.dispose()]))
      const warnings: Array<string> = []
      const WarningsLive = Logger.replace(
        Logger.defaultLogger,
        Logger.make(({ logLevel, message }) => {
          if (logLevel._tag === "Warning") warnings.push(String(message))
        })
      )
      // The front also declares the classes (they carry their statuses), which another schema of the API's errors
      // must not use to encode a received error either.
      class FrontApi extends HttpApi.make("front").add(
        HttpApiGroup.make("front")
          .add(HttpApiEndpoint.get("anonymous", "/anonymous").addSuccess(Schema.String))
          .add(HttpApiEndpoint.get("admin", "/admin").addSuccess(Schema.String))
          .add(HttpApiEndpoint.get("declared", "/declared").addSuccess(Schema.String).addError(HttpAuth.Unauthorized))
          .add(HttpApiEndpoint.get("viaClass", "/via-class").addSuccess(Schema.String))
          .add(HttpApiEndpoint.get("passedOn", "/passed-on").addSuccess(Schema.String))
          .middleware(HttpAuth.Authentication)
      ).addError(HttpAuth.Forbidden) {}
      const FrontLive = HttpApiBuilder.group(FrontApi, "front", (handlers) =>
        handlers
          // Calls without a token of its own: the orders service answers 401.
          .handle("anonymous", () => callOrders("me"))
          // Calls with a token that lacks the orders service's admin group: 403.
          .handle("admin", () => callOrders("admin", "good"))
          .handle("declared", () => callOrders("me"))
          .handle("viaClass", () => callDeclaring)
          // Passes the refusal on deliberately, as a new error of its own.
          .handle("passedOn", () =>
            Effect.catchAll(callOrders("me"), (error) =>
              Effect.fail(
                new HttpAuth.Unauthorized({ error: "invalid_token", error_description: `orders: ${error.error}` })
              )))).pipe(Layer.provide(HttpAuth.layerBearer({ realm: "front" })), Layer.provide(ValidatorStub))

      it.effect("HttpApi: 500 without a challenge, and a warning; passed on as a new error, the app's own answer", () =>
        Effect.gen(function*() {
          warnings.length = 0
          const front = HttpApiBuilder.toWebHandler(
            HttpApiBuilder.api(FrontApi).pipe(
              Layer.provide(FrontLive),
              Layer.merge(HttpServer.layerContext),
              Layer.merge(WarningsLive)
            )
          )
          yield* serveWith(() => front, async (handler) => {
            // The caller's token is good: it is not told otherwise.
            expect(await answer(handler, "/anonymous", "good")).toEqual({ status: 500, challenge: null })
            expect(await answer(handler, "/admin", "good")).toEqual({ status: 500, challenge: null })
            expect(await answer(handler, "/declared", "good")).toEqual({ status: 500, challenge: null })
            expect(await answer(handler, "/via-class", "good")).toEqual({ status: 500, challenge: null })
            expect(await answer(handler, "/passed-on", "good")).toEqual({
              status: 401,
              challenge: `Bearer realm="front", error="invalid_token", error_description="orders: unauthorized"`
            })
            // The front's own refusals are unchanged.
            expect(await answer(handler, "/anonymous")).toEqual({ status: 401, challenge: `Bearer realm="front"` })
          })
          expect(warnings).toEqual(
            Array.from(
              { length: 4 },
              () =>
                "An auth error received from another service reached the response: answered 500, not as this request's"
            )
          )
        }))

      it.effect("HttpRouter: 500 without a challenge through the middleware, and without it", () =>
        Effect.gen(function*() {
          const app = Effect.zipRight(callOrders("admin", "good"), HttpServerResponse.text("ok"))
          const guarded = yield* call(stubbed(app), "Bearer good")
          expect([guarded.status, guarded.headers.get("www-authenticate")]).toEqual([500, null])
          const plain = yield* call(HttpApp.toWebHandler(app), "Bearer good")
          expect([plain.status, plain.headers.get("www-authenticate")]).toEqual([500, null])
          const viaClass = yield* call(
            stubbed(Effect.zipRight(callDeclaring, HttpServerResponse.text("ok"))),
            "Bearer good"
          )
          expect([viaClass.status, viaClass.headers.get("www-authenticate")]).toEqual([500, null])
          // The middleware's own refusal, for contrast.
          const refused = yield* call(stubbed(app))
          expect([refused.status, refused.headers.get("www-authenticate")]).toEqual([401, `Bearer realm="api"`])
        }))

      it.effect("a received error reported in a success body or inside an error of the app's own: as the app answers", () =>
        Effect.gen(function*() {
          // An aggregator reporting each service's outcome, and an error of the app's own (502) carrying the refusal:
          // the received error is encoded while the request is answered, and is not the answer.
          class UpstreamRefused extends Schema.TaggedError<UpstreamRefused>()("UpstreamRefused", {
            upstream: HttpAuth.Failure
          }) {}
          const Report = Schema.Struct({ outcome: Schema.Either({ right: Schema.String, left: HttpAuth.Failure }) })
          class ReportApi extends HttpApi.make("report").add(
            HttpApiGroup.make("report")
              .add(HttpApiEndpoint.get("status", "/status").addSuccess(Report))
              .add(
                HttpApiEndpoint.get("wrapped", "/wrapped").addSuccess(Schema.String).addError(UpstreamRefused, {
                  status: 502
                })
              )
              .middleware(HttpAuth.Authentication)
          ) {}
          const ReportLive = HttpApiBuilder.group(ReportApi, "report", (handlers) =>
            handlers
              .handle("status", () => Effect.map(Effect.either(callOrders("me")), (outcome) => ({ outcome })))
              .handle("wrapped", () =>
                Effect.catchAll(callOrders("me"), (upstream) => Effect.fail(new UpstreamRefused({ upstream }))))).pipe(
              Layer.provide(HttpAuth.layerBearer()),
              Layer.provide(ValidatorStub)
            )
          yield* serveWith(
            () =>
              HttpApiBuilder.toWebHandler(
                HttpApiBuilder.api(ReportApi).pipe(Layer.provide(ReportLive), Layer.merge(HttpServer.layerContext))
              ),
            async (handler) => {
              const headers = { authorization: "Bearer good" }
              const status = await handler(new Request("http://localhost/status", { headers }))
              expect([status.status, await status.json()]).toEqual([200, {
                outcome: {
                  _tag: "Left",
                  left: { error: "unauthorized", error_description: "a bearer token is required" }
                }
              }])
              const wrapped = await handler(new Request("http://localhost/wrapped", { headers }))
              expect([wrapped.status, wrapped.headers.get("www-authenticate")]).toEqual([502, null])
            }
          )
        }))

      it.effect("the schemas mark what they decode; a received error encodes as any other, answering a request too", () =>
        Effect.gen(function*() {
          const body = { error: "invalid_token", error_description: "z" } as const
          const received = Schema.decodeUnknownSync(HttpAuth.Failure)(body)
          const viaClass = Schema.decodeUnknownSync(HttpAuth.Unauthorized)({ _tag: "Unauthorized", ...body })
          const own = new HttpAuth.Unauthorized(body)
          // Marked: answered 500 by its own rendering; the one constructed here is this request's 401.
          expect((yield* HttpServerRespondable.toResponse(received)).status).toBe(500)
          expect((yield* HttpServerRespondable.toResponse(viaClass)).status).toBe(500)
          expect((yield* HttpServerRespondable.toResponse(own)).status).toBe(401)
          // Encoded as any error, outside a request (a queue) and while one is answered (an RPC answer, a journal).
          const answering = Effect.provideService(
            HttpServerRequest.HttpServerRequest,
            HttpServerRequest.fromWeb(new Request("http://localhost/"))
          )
          for (const error of [received, viaClass, own] as Array<HttpAuth.Unauthorized>) {
            expect(Schema.encodeSync(HttpAuth.Failure)(error)).toEqual(body)
            expect(yield* answering(Schema.encode(HttpAuth.Failure)(error))).toEqual(body)
            expect(yield* answering(Schema.encode(HttpAuth.Unauthorized)(error))).toEqual({
              _tag: "Unauthorized",
              ...body
            })
          }
        }).pipe(Effect.provide(Logger.remove(Logger.defaultLogger))))
    })
  })
})
