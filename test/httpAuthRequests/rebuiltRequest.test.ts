/**
 * An app middleware that hands the app a request with another `source` (a body rewritten, say: `modify` cannot change
 * the body, so it builds a new request with `HttpServerRequest.fromWeb`): the answers are noted under the new source,
 * the pre-response handler looks them up with the request the server made, and a received 401 goes out as our 401
 * with our challenge.
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
import * as Schema from "effect/Schema"
import * as HttpAuth from "../../src/HttpAuth.js"
import { answerOf, expired, Quiet, received, ValidatorStub } from "./support.js"

class Api extends HttpApi.make("api").add(
  HttpApiGroup.make("g")
    .add(HttpApiEndpoint.get("downstream", "/downstream").addSuccess(Schema.String))
    .middleware(HttpAuth.Authentication)
) {}

const Live = HttpApiBuilder.group(
  Api,
  "g",
  (handlers) => handlers.handle("downstream", () => Effect.fail(received(expired)))
).pipe(
  Layer.provide(HttpAuth.layerBearer()),
  Layer.provide(ValidatorStub)
)

/** A global middleware that gives the app a rebuilt request (a decompressed or re-encoded body, say). */
const rebuild = (app: HttpApp.Default): HttpApp.Default =>
  Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
    Effect.provideService(
      app,
      HttpServerRequest.HttpServerRequest,
      HttpServerRequest.fromWeb(
        new Request(`http://localhost${request.url}`, { method: request.method, headers: request.headers })
      )
    ))

/** Journals a downstream refusal (encoded with the request in context), as an audit middleware would. */
const journal = (body: unknown) => Effect.asVoid(Effect.orDie(Schema.encode(HttpAuth.Failure)(received(body))))

const serve = (global: (app: HttpApp.Default) => HttpApp.Default, token = "good") =>
  Effect.promise(async () => {
    const web = HttpLayerRouter.toWebHandler(
      Layer.mergeAll(
        HttpLayerRouter.addHttpApi(Api).pipe(Layer.provide(Live)),
        HttpLayerRouter.middleware(global as never, { global: true }) as Layer.Layer<never>
      ).pipe(Layer.provide(HttpServer.layerContext), Layer.provide(Quiet)),
      { disableLogger: true }
    )
    try {
      return await answerOf(
        await web.handler(new Request("http://localhost/downstream", { headers: { authorization: `Bearer ${token}` } }))
      )
    } finally {
      await web.dispose()
    }
  })

describe("HttpAuth: a request with another source", () => {
  it.effect("control: a global middleware that passes the request on: 500", () =>
    Effect.map(serve((app) => app), (a) => {
      expect({ status: a.status, challenge: a.challenge }).toEqual({ status: 500, challenge: null })
    }))

  it.effect("a global middleware that hands the app a rebuilt request: the received 401 is a 500, no challenge", () =>
    Effect.map(serve(rebuild), (a) => {
      expect({ status: a.status, challenge: a.challenge }).toEqual({ status: 500, challenge: null })
    }))

  it.effect("control: journal a downstream 401 then pass the request on: the caller's expired token is our 401", () =>
    Effect.map(serve((app) => Effect.zipRight(journal(expired), app), "expired"), (a) => {
      expect(a.status).toBe(401)
    }))

  it.effect("journal a downstream 401, then a rebuilt request: the caller's expired token is refused still, as a 500", () =>
    // Documented: the request's own answers count only under the request the server made (a handler may come with a
    // fiber of another request), so a middleware that rebuilds the request (not `modify`) loses them: refused all the
    // same, as a 500.
    Effect.map(serve((app) => Effect.zipRight(journal(expired), rebuild(app)), "expired"), (a) => {
      expect({ status: a.status, challenge: a.challenge }).toEqual({ status: 500, challenge: null })
    }))
})

// A `BadRequest` the app encodes: its headers (`WWW-Authenticate`, `Cache-Control`) come from its answer noted for the
// request, so behind a middleware that hands the app a rebuilt request it goes out without them (documented, as for the
// 500 above: the answers noted under a rebuilt request may be another request's, one whose fiber this one joined).
class OwnApi extends HttpApi.make("own").add(
  HttpApiGroup.make("session")
    .add(HttpApiEndpoint.post("bad", "/bad").addSuccess(Schema.String).addError(HttpAuth.BadRequest))
    .add(HttpApiEndpoint.post("expired", "/expired").addSuccess(Schema.String).addError(HttpAuth.Unauthorized))
) {}

const OwnLive = HttpApiBuilder.group(OwnApi, "session", (handlers) =>
  handlers
    .handle("bad", () => Effect.fail(new HttpAuth.BadRequest({ error_description: "the cursor is stale" })))
    .handle("expired", () =>
      Effect.fail(new HttpAuth.Unauthorized({ error: "invalid_token", error_description: "expired" }))))

const serveOwn = (global: (app: HttpApp.Default) => HttpApp.Default, path: string) =>
  Effect.promise(async () => {
    const web = HttpLayerRouter.toWebHandler(
      Layer.mergeAll(
        HttpLayerRouter.addHttpApi(OwnApi).pipe(Layer.provide(OwnLive)),
        HttpLayerRouter.middleware(global as never, { global: true }) as Layer.Layer<never>
      ).pipe(Layer.provide(HttpServer.layerContext), Layer.provide(Quiet)),
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
    Effect.map(serveOwn((app) => app, "/bad"), (a) => expect(a).toEqual(badAnswer)))

  it.effect("control: rebuilt request: an Unauthorized of the same endpoint kind gets its headers", () =>
    Effect.map(
      serveOwn(rebuild, "/expired"),
      (a) =>
        expect(a).toEqual([401, `Bearer realm="api", error="invalid_token", error_description="expired"`, "no-store"])
    ))

  it.effect("rebuilt request: the BadRequest the app encoded goes out without this module's headers", () =>
    Effect.map(serveOwn(rebuild, "/bad"), (a) => expect(a).toEqual([400, null, null])))
})
