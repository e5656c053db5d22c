/**
 * What is noted of a request's answers stays with that request: a rendering of this module's at boot (a startup smoke
 * test of the app with a synthetic request) or in a layer's construction is part of no request, and of none after.
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerRespondable from "@effect/platform/HttpServerRespondable"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Schema from "effect/Schema"
import { createServer } from "node:http"
import * as HttpAuth from "../../src/HttpAuth.js"
import { expired, received, serveApi, ValidatorStub } from "./support.js"

class Api extends HttpApi.make("api").add(
  HttpApiGroup.make("g")
    .add(HttpApiEndpoint.get("me", "/me").addSuccess(Schema.String))
    .add(HttpApiEndpoint.get("downstream", "/downstream").addSuccess(Schema.String))
    .add(HttpApiEndpoint.get("preview", "/preview").addSuccess(Schema.Array(HttpAuth.Failure)))
    .add(HttpApiEndpoint.get("audit", "/audit").addSuccess(Schema.Array(HttpAuth.Failure)))
    .middleware(HttpAuth.Authentication)
) {}

const Live = HttpApiBuilder.group(Api, "g", (handlers) =>
  handlers
    .handle("me", () => Effect.succeed("me"))
    // Lets another service's 401 through: must be a 500.
    .handle("downstream", () => Effect.fail(received(expired)))
    // The app's own errors, constructed per resource, reported in a success body (own answers of this request).
    .handle("preview", () =>
      Effect.succeed(
        Array.from({ length: 4097 }, (_, i) => new HttpAuth.Forbidden({ error_description: `no access to order ${i}` }))
      ))
    // Other services' refusals reported in a success body (received answers of this request).
    .handle("audit", () => Effect.succeed([received(expired)]))).pipe(
    Layer.provide(HttpAuth.layerBearer()),
    Layer.provide(ValidatorStub)
  )

/** A startup smoke test: the app's 401 rendered once at boot (any rendering of ours in a layer does the same). */
const smokeTest = Layer.effectDiscard(
  Effect.asVoid(
    HttpServerRespondable.toResponse(
      new HttpAuth.Unauthorized({ error: "unauthorized", error_description: "boot check" })
    )
  )
)

/** Another: HttpAuth.middleware run against a synthetic request at boot. */
const smokeTestMiddleware = Layer.effectDiscard(
  HttpAuth.middleware()(HttpServerResponse.text("ok")).pipe(
    Effect.provideService(
      HttpServerRequest.HttpServerRequest,
      HttpServerRequest.fromWeb(new Request("http://localhost/"))
    ),
    Effect.provide(ValidatorStub),
    Effect.asVoid
  )
)

const api = HttpApiBuilder.api(Api).pipe(Layer.provide(Live))

describe("HttpAuth: a rendering at boot is part of no request", () => {
  it.effect("control: without the smoke test, request B's received 401 is a 500 after request A's own 401", () =>
    serveApi(api, async (get) => {
      expect((await get("/me", "expired")).status).toBe(401)
      expect(await get("/downstream", "good")).toEqual({ status: 500, challenge: null })
    }))

  it.effect("after a rendering at boot: request A's own 401 does not make request B's received 401 ours: 500", () =>
    serveApi(Layer.merge(api, smokeTest), async (get) => {
      expect((await get("/me", "expired")).status).toBe(401)
      expect(await get("/downstream", "good")).toEqual({ status: 500, challenge: null })
    }))

  it.effect("after an HttpAuth.middleware smoke test at boot: the same", () =>
    serveApi(Layer.merge(api, smokeTestMiddleware), async (get) => {
      expect((await get("/me", "expired")).status).toBe(401)
      expect(await get("/downstream", "good")).toEqual({ status: 500, challenge: null })
    }))

  it.effect("one request's 4097 own answers and another's received report leave a third request's own 401 a 401", () =>
    serveApi(Layer.merge(api, smokeTest), async (get) => {
      expect((await get("/preview", "good")).status).toBe(200)
      expect((await get("/audit", "good")).status).toBe(200)
      // This request's own refusal: expected 401 with its challenge.
      expect(await get("/me", "expired")).toEqual({
        status: 401,
        challenge: `Bearer realm="api", error="invalid_token", error_description="the token has expired"`
      })
    }))

  it.live(
    "NodeHttpServer (HttpApiBuilder.serve) with the rendering at boot in its layers: the same",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const server = HttpApiBuilder.serve().pipe(
          Layer.provide(api),
          Layer.provide(smokeTest),
          Layer.provideMerge(NodeHttpServer.layer(() => createServer(), { port: 0, host: "127.0.0.1" })),
          Layer.provide(Logger.remove(Logger.defaultLogger))
        )
        const context = yield* Layer.build(server)
        const address = (yield* Effect.provide(HttpServer.HttpServer, context)).address as { port: number }
        const get = (path: string, token: string) =>
          Effect.promise(async () => {
            const r = await fetch(`http://127.0.0.1:${address.port}${path}`, {
              headers: { authorization: `Bearer ${token}` }
            })
            await r.arrayBuffer()
            return { status: r.status, challenge: r.headers.get("www-authenticate") }
          })
        expect((yield* get("/me", "expired")).status).toBe(401)
        expect(yield* get("/downstream", "good")).toEqual({ status: 500, challenge: null })
      })),
    20_000
  )
})
