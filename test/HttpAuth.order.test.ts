/**
 * What runs in the request's fiber after the response's own error was rendered (an app middleware around the API or
 * around `HttpAuth.middleware`, a side task joined after the app answered) and encodes other errors: the response is
 * still judged by what it carries, a received error's answer a 500, this request's own refusal its own.
 */
import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpApp from "@effect/platform/HttpApp"
import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { describe, expect, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Schema from "effect/Schema"
import * as HttpAuth from "../src/HttpAuth.js"
import { missingToken, received, ValidatorStub } from "./support/receivedErrors.js"

/**
 * A BFF forwards the caller's credentials to a downstream service guarded by this library, concurrently with
 * answering: for a caller without a token the downstream refuses with the very answer this server gives. The
 * downstream outcome is journaled (encoded through `HttpAuth.Failure`) while the request is answered.
 */
const journalDownstream = (body: unknown) => Effect.orDie(Schema.encode(HttpAuth.Failure)(received(body)))

/**
 * `app` with `task` beside it in a fiber of its own, forked before `app` runs and doing its work once `app` has
 * answered, then joined: the side task's fiber refs are those from before the answer.
 */
const alongside = <E, R>(
  app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>,
  task: Effect.Effect<unknown>
) =>
  Effect.flatMap(Deferred.make<void>(), (answered) =>
    Effect.map(
      Effect.all([
        Effect.ensuring(app, Deferred.succeed(answered, undefined)),
        Effect.zipRight(Deferred.await(answered), task)
      ], {
        concurrency: "unbounded"
      }),
      ([response]) => response
    ))

const answer = async (handler: (request: Request) => Promise<Response>, token?: string) => {
  const headers: Record<string, string> = token === undefined ? {} : { authorization: `Bearer ${token}` }
  const response = await handler(new Request("http://localhost/me", { headers }))
  return { status: response.status, challenge: response.headers.get("www-authenticate") }
}

describe("HttpAuth: the order of encodings in a request", () => {
  it.effect("HttpAuth.middleware's own 401, then a side task joined after it journals the downstream's identical refusal: still 401", () =>
    Effect.gen(function*() {
      const app = HttpAuth.middleware()(HttpServerResponse.text("me"))
      // An app middleware around the authenticated routes: the downstream call runs alongside.
      const withDownstream = alongside(app, journalDownstream(missingToken))
      const web = HttpApp.toWebHandler(
        withDownstream.pipe(Effect.provide(Layer.merge(ValidatorStub, Logger.remove(Logger.defaultLogger))))
      )
      const result = yield* Effect.promise(() => answer(web))
      expect(result).toEqual({ status: 401, challenge: `Bearer realm="api"` })
    }))

  it.effect("HttpAuth.middleware's own 401, then an outer middleware journals the downstream's identical refusal: still 401", () =>
    Effect.gen(function*() {
      const app = HttpAuth.middleware()(HttpServerResponse.text("me"))
      const audited = Effect.tap(app, () => journalDownstream(missingToken))
      const web = HttpApp.toWebHandler(
        audited.pipe(Effect.provide(Layer.merge(ValidatorStub, Logger.remove(Logger.defaultLogger))))
      )
      const result = yield* Effect.promise(() => answer(web))
      expect(result).toEqual({ status: 401, challenge: `Bearer realm="api"` })
    }))

  class Api extends HttpApi.make("api").add(
    HttpApiGroup.make("g")
      .add(HttpApiEndpoint.get("me", "/me").addSuccess(Schema.String))
      .middleware(HttpAuth.Authentication)
  ) {}
  // The handler lets another service's refusal through (it must be a 500, never our 401 and challenge).
  const Live = HttpApiBuilder.group(
    Api,
    "g",
    (handlers) =>
      handlers.handle(
        "me",
        () => Effect.fail(received({ error: "invalid_token", error_description: "the token has expired" }))
      )
  ).pipe(
    Layer.provide(HttpAuth.layerBearer()),
    Layer.provide(ValidatorStub)
  )

  const serveLayerRouter = (
    global: (app: HttpApp.Default) => HttpApp.Default,
    use: (handler: (request: Request) => Promise<Response>) => Promise<void>
  ) =>
    Effect.promise(async () => {
      const web = HttpLayerRouter.toWebHandler(
        Layer.mergeAll(
          HttpLayerRouter.addHttpApi(Api).pipe(Layer.provide(Live)),
          // The platform types a global middleware by the errors it handles; this one passes every error on.
          HttpLayerRouter.middleware(global as never, { global: true }) as Layer.Layer<never>
        ).pipe(
          Layer.provide(HttpServer.layerContext),
          Layer.provide(Logger.remove(Logger.defaultLogger))
        )
      )
      try {
        await use(web.handler)
      } finally {
        await web.dispose()
      }
    })

  it.effect("HttpApi answering a received 401, then a global middleware journals another downstream refusal: 500, no challenge", () =>
    serveLayerRouter(
      (app) => Effect.tap(app, () => journalDownstream({ error: "insufficient_scope", error_description: "other" })),
      async (handler) => {
        expect(await answer(handler, "good")).toEqual({ status: 500, challenge: null })
      }
    ))

  it.effect("HttpApi answering a received 401, side task joined after it (concurrent global middleware): 500", () =>
    serveLayerRouter(
      (app) => alongside(app, journalDownstream({ error: "insufficient_scope", error_description: "other" })),
      async (handler) => {
        expect(await answer(handler, "good")).toEqual({ status: 500, challenge: null })
      }
    ))

  it.effect("control: the same HttpApi without the middleware's journaling answers the received 401 as 500", () =>
    serveLayerRouter((app) => app, async (handler) => {
      expect(await answer(handler, "good")).toEqual({ status: 500, challenge: null })
    }))

  it.effect("HttpApi's own 401 with the downstream's identical refusal journaled beside it, or before it in a child: 401", () =>
    Effect.gen(function*() {
      const withChallenge = { status: 401, challenge: `Bearer realm="api"` }
      const globals: ReadonlyArray<(app: HttpApp.Default) => HttpApp.Default> = [
        (app) => alongside(app, journalDownstream(missingToken)),
        // Journaled first, then the app in a fiber of its own (a middleware's fork, or its timeout).
        (app) => Effect.zipRight(journalDownstream(missingToken), Effect.flatMap(Effect.fork(app), Fiber.join)),
        (app) =>
          Effect.zipRight(
            journalDownstream(missingToken),
            Effect.flatten(Effect.timeout(app, "10 seconds"))
          ) as HttpApp.Default
      ]
      for (const global of globals) {
        yield* serveLayerRouter(global, async (handler) => {
          expect(await answer(handler)).toEqual(withChallenge)
        })
      }
    }))

  it.effect("HttpAuth.middleware's own 401, an outer middleware journals the identical refusal and adds a header: 401", () =>
    Effect.gen(function*() {
      const outer = HttpAuth.middleware()(HttpServerResponse.text("me")).pipe(
        Effect.tap(() => journalDownstream(missingToken)),
        Effect.map((response) => HttpServerResponse.setHeader(response, "x-request-id", "1"))
      )
      const web = HttpApp.toWebHandler(
        outer.pipe(Effect.provide(Layer.merge(ValidatorStub, Logger.remove(Logger.defaultLogger))))
      )
      expect(yield* Effect.promise(() => answer(web))).toEqual({ status: 401, challenge: `Bearer realm="api"` })
    }))
})
