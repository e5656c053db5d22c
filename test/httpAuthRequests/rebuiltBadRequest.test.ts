/**
 * A `BadRequest` the app encodes gets its headers (`WWW-Authenticate`, `Cache-Control`) also behind a middleware that
 * hands the app a rebuilt request (`HttpServerRequest.fromWeb`): its answer is noted under the request the app saw,
 * which the response's handler reads too, as an `Unauthorized` in the same setup gets them.
 */
import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import type * as HttpApp from "@effect/platform/HttpApp"
import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Schema from "effect/Schema"
import * as HttpAuth from "../../src/HttpAuth.js"

class Api extends HttpApi.make("api").add(
  HttpApiGroup.make("session")
    .add(HttpApiEndpoint.post("bad", "/bad").addSuccess(Schema.String).addError(HttpAuth.BadRequest))
    .add(HttpApiEndpoint.post("expired", "/expired").addSuccess(Schema.String).addError(HttpAuth.Unauthorized))
) {}

const Live = HttpApiBuilder.group(Api, "session", (handlers) =>
  handlers
    .handle("bad", () => Effect.fail(new HttpAuth.BadRequest({ error_description: "the cursor is stale" })))
    .handle("expired", () =>
      Effect.fail(new HttpAuth.Unauthorized({ error: "invalid_token", error_description: "expired" }))))

const rebuild = (app: HttpApp.Default): HttpApp.Default =>
  Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
    Effect.provideService(
      app,
      HttpServerRequest.HttpServerRequest,
      HttpServerRequest.fromWeb(
        new Request(`http://localhost${request.url}`, { method: request.method, headers: request.headers })
      )
    ))

const serve = (global: (app: HttpApp.Default) => HttpApp.Default, path: string) =>
  Effect.promise(async () => {
    const web = HttpLayerRouter.toWebHandler(
      Layer.mergeAll(
        HttpLayerRouter.addHttpApi(Api).pipe(Layer.provide(Live)),
        HttpLayerRouter.middleware(global as never, { global: true }) as Layer.Layer<never>
      ).pipe(Layer.provide(HttpServer.layerContext), Layer.provide(Logger.remove(Logger.defaultLogger))),
      { disableLogger: true }
    )
    try {
      const r = await web.handler(new Request(`http://localhost${path}`, { method: "POST" }))
      await r.arrayBuffer()
      return [r.status, r.headers.get("www-authenticate"), r.headers.get("cache-control")]
    } finally {
      await web.dispose()
    }
  })

const badAnswer = [
  400,
  `Bearer realm="api", error="invalid_request", error_description="the cursor is stale"`,
  "no-store"
]

describe("HttpAuth: a BadRequest the app encodes, behind a middleware that rebuilds the request", () => {
  it.effect("control: request passed on: the BadRequest gets its headers", () =>
    Effect.map(serve((app) => app, "/bad"), (a) => expect(a).toEqual(badAnswer)))

  it.effect("control: rebuilt request: an Unauthorized of the same endpoint kind gets its headers", () =>
    Effect.map(
      serve(rebuild, "/expired"),
      (a) =>
        expect(a).toEqual([401, `Bearer realm="api", error="invalid_token", error_description="expired"`, "no-store"])
    ))

  it.effect("rebuilt request: the BadRequest the app encoded gets its headers too", () =>
    Effect.map(serve(rebuild, "/bad"), (a) => expect(a).toEqual(badAnswer)))
})
