/**
 * Auth errors received from another service (decoded through `HttpAuth.Failure`, as an `HttpApiClient` does) that an
 * `HttpApi` handler lets through: never answered as this request's own, whatever their size or description, without
 * taking from the answers that are this request's (its own refusals, headers other handlers put on the response).
 */
import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as HttpApp from "@effect/platform/HttpApp"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Schema from "effect/Schema"
import * as HttpAuth from "../src/HttpAuth.js"
import { forbidden, received, ValidatorStub } from "./support/receivedErrors.js"

const Report = Schema.Struct({ outcomes: Schema.Array(HttpAuth.Failure) })

/** The app's own validation error, in OAuth's shape (common): not this module's. */
class AppBadRequest extends Schema.TaggedError<AppBadRequest>()("AppBadRequest", {
  error: Schema.Literal("invalid_request"),
  error_description: Schema.String
}, HttpApiSchema.annotations({ status: 400 })) {}
const distinct = 1000

class FrontApi extends HttpApi.make("front").add(
  HttpApiGroup.make("front")
    .add(HttpApiEndpoint.get("large", "/large").addSuccess(Schema.String))
    .add(HttpApiEndpoint.get("badRequest", "/bad-request").addSuccess(Schema.String))
    .add(HttpApiEndpoint.get("audited", "/audited").addSuccess(Schema.String))
    .add(HttpApiEndpoint.get("report", "/report").addSuccess(Report))
    .add(HttpApiEndpoint.get("reportThenRefused", "/report-then-refused").addSuccess(Report))
    .add(
      HttpApiEndpoint.get("reportThenBadRequest", "/report-then-bad-request").addSuccess(Report).addError(AppBadRequest)
    )
    .add(HttpApiEndpoint.get("overflowLarge", "/overflow-large").addSuccess(Schema.String))
    .add(HttpApiEndpoint.get("overflowBadRequest", "/overflow-bad-request").addSuccess(Schema.String))
    .middleware(HttpAuth.Authentication)
) {}

const FrontLive = HttpApiBuilder.group(FrontApi, "front", (handlers) =>
  handlers
    // The other service's description is its own text: over the 64 KiB of bodies read back for a challenge.
    .handle("large", () => Effect.fail(received({ error: "invalid_token", error_description: "x".repeat(70_000) })))
    // OAuth's usual 400, with a description this library never writes.
    .handle("badRequest", () =>
      Effect.fail(received({ error: "invalid_request", error_description: "the parameter 'q' is missing" })))
    // The other service's refusal recorded (encoded while the request is answered), then this request's own guard
    // refuses it with the very same answer.
    .handle("audited", () =>
      Effect.gen(function*() {
        yield* Effect.orDie(Schema.encode(HttpAuth.Failure)(received(forbidden)))
        return yield* Effect.as(HttpAuth.requireGroups("admin"), "never")
      }))
    // A report of many distinct refusals of other services, in a success body.
    .handle("report", () =>
      Effect.succeed({ outcomes: refusals() }))
    // The same report encoded (past the number of answers a request notes one by one), then this request's refusal.
    .handle("reportThenRefused", () =>
      Effect.gen(function*() {
        yield* Effect.orDie(Schema.encode(Report)({ outcomes: refusals() }))
        return yield* Effect.as(HttpAuth.requireGroups("admin"), { outcomes: [] })
      }))
    // Past the 4096 answers a request notes one by one: a received error let through is still a 500, whatever its
    // size or description.
    .handle("overflowLarge", () =>
      Effect.gen(function*() {
        yield* Effect.orDie(Schema.encode(Report)({ outcomes: refusals(4097) }))
        return yield* Effect.fail(received({ error: "invalid_token", error_description: "x".repeat(70_000) }))
      }))
    .handle("overflowBadRequest", () =>
      Effect.gen(function*() {
        yield* Effect.orDie(Schema.encode(Report)({ outcomes: refusals(4097) }))
        return yield* Effect.fail(
          received({ error: "invalid_request", error_description: "the parameter 'q' is missing" })
        )
      }))
    .handle("reportThenBadRequest", () =>
      Effect.gen(function*() {
        yield* Effect.orDie(Schema.encode(Report)({ outcomes: refusals() }))
        return yield* new AppBadRequest({ error: "invalid_request", error_description: "the parameter 'q' is missing" })
      }))).pipe(Layer.provide(HttpAuth.layerBearer()), Layer.provide(ValidatorStub))

const refusals = (count = distinct) =>
  Array.from({ length: count }, (_, i) => received({ error: "invalid_token", error_description: `resource ${i}` }))

const serve = <A>(
  layer: Layer.Layer<HttpApi.Api, never, never>,
  use: (get: (path: string) => Promise<Response>) => Promise<A>
) =>
  Effect.promise(async () => {
    const web = HttpApiBuilder.toWebHandler(
      layer.pipe(Layer.merge(HttpServer.layerContext), Layer.merge(Logger.remove(Logger.defaultLogger)))
    )
    try {
      return await use((path) =>
        web.handler(
          new Request(`http://localhost${path}`, {
            headers: { authorization: "Bearer good", origin: "https://app.example" }
          })
        )
      )
    } finally {
      await web.dispose()
    }
  })

const front = HttpApiBuilder.api(FrontApi).pipe(Layer.provide(FrontLive))

describe("HttpAuth: received errors in an HttpApi", () => {
  it.effect("a received 401 with a body over 64 KiB, or a 400 of any description: 500, past 4096 noted answers too", () =>
    serve(front, async (get) => {
      expect((await get("/large")).status).toBe(500)
      expect((await get("/bad-request")).status).toBe(500)
      expect((await get("/overflow-large")).status).toBe(500)
      expect((await get("/overflow-bad-request")).status).toBe(500)
    }))

  it.effect("this request's own refusal after an identical received one was encoded: 403 with its challenge", () =>
    serve(front, async (get) => {
      const response = await get("/audited")
      expect([response.status, response.headers.get("www-authenticate")]).toEqual([
        403,
        `Bearer realm="api", error="insufficient_scope"`
      ])
    }))

  it.effect("a report of 1,000 distinct received refusals: 200 with every one; this request's refusal after it: 403", () =>
    serve(front, async (get) => {
      const report = await get("/report")
      expect(report.status).toBe(200)
      expect(((await report.json()) as { outcomes: Array<unknown> }).outcomes).toHaveLength(distinct)
      const refused = await get("/report-then-refused")
      expect([refused.status, refused.headers.get("www-authenticate")]).toEqual([
        403,
        `Bearer realm="api", error="insufficient_scope"`
      ])
      // The app's own OAuth-shaped 400 after such a report: its own answer.
      expect((await get("/report-then-bad-request")).status).toBe(400)
    }))

  it.effect("HttpRouter: this request's own refusal after an identical received one was encoded: 403", () =>
    Effect.gen(function*() {
      const app = Effect.gen(function*() {
        yield* Effect.orDie(Schema.encode(HttpAuth.Failure)(received(forbidden)))
        yield* HttpAuth.requireGroups("admin")
        return HttpServerResponse.text("never")
      })
      const web = HttpApp.toWebHandler(
        HttpAuth.middleware()(app).pipe(Effect.provide(Layer.merge(ValidatorStub, Logger.remove(Logger.defaultLogger))))
      )
      const response = yield* Effect.promise(() =>
        web(new Request("http://localhost/", { headers: { authorization: "Bearer good" } }))
      )
      expect([response.status, response.headers.get("www-authenticate")]).toEqual([
        403,
        `Bearer realm="api", error="insufficient_scope"`
      ])
    }))

  it.effect("the 500 keeps the headers earlier handlers put on the response (CORS), as the platform's own 500 does", () =>
    Effect.gen(function*() {
      class Api extends HttpApi.make("cors").add(
        HttpApiGroup.make("g")
          .add(HttpApiEndpoint.get("received", "/received").addSuccess(Schema.String))
          .add(HttpApiEndpoint.get("defect", "/defect").addSuccess(Schema.String))
          .middleware(HttpAuth.Authentication)
      ) {}
      const Live = HttpApiBuilder.group(Api, "g", (handlers) =>
        handlers
          .handle("received", () => Effect.fail(received(forbidden)))
          .handle("defect", () => Effect.die("boom"))).pipe(
          Layer.provide(HttpAuth.layerBearer()),
          Layer.provide(ValidatorStub)
        )
      const layer = HttpApiBuilder.api(Api).pipe(
        Layer.provide(Live),
        Layer.provide(HttpApiBuilder.middlewareCors({ allowedOrigins: ["https://app.example"] }))
      )
      yield* serve(layer, async (get) => {
        for (const path of ["/defect", "/received"]) {
          const response = await get(path)
          expect([response.status, response.headers.get("access-control-allow-origin")]).toEqual([
            500,
            "https://app.example"
          ])
          expect(response.headers.get("www-authenticate")).toBe(null)
        }
      })
    }))
})
