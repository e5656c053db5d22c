/** What one request notes of received errors does not reach another request on the same connection. */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpServer from "@effect/platform/HttpServer"
import { describe, expect, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Schema from "effect/Schema"
import { createServer } from "node:http"
import * as HttpAuth from "../src/HttpAuth.js"
import { expired, received, ValidatorStub } from "./support/receivedErrors.js"

class Api extends HttpApi.make("api").add(
  HttpApiGroup.make("g")
    .add(HttpApiEndpoint.get("report", "/report").addSuccess(Schema.Array(HttpAuth.Failure)))
    .add(HttpApiEndpoint.get("daemon", "/daemon").addSuccess(Schema.String))
    .add(HttpApiEndpoint.get("me", "/me").addSuccess(Schema.String))
    .middleware(HttpAuth.Authentication)
) {}

describe("HttpAuth: one request's notes stay in it (NodeHttpServer, keep-alive)", () => {
  it.live(
    "a report, or a daemon fiber encoding later, does not make the next request's own 401 a 500",
    () =>
      Effect.gen(function*() {
        const later = yield* Deferred.make<void>()
        const done = yield* Deferred.make<void>()
        const Live = HttpApiBuilder.group(Api, "g", (handlers) =>
          handlers
            .handle("report", () => Effect.succeed([received(expired)]))
            .handle("daemon", () =>
              Effect.as(
                Effect.forkDaemon(
                  Deferred.await(later).pipe(
                    Effect.zipRight(Effect.orDie(Schema.encode(HttpAuth.Failure)(received(expired)))),
                    Effect.zipRight(Deferred.succeed(done, undefined))
                  )
                ),
                "ok"
              ))
            .handle("me", () => Effect.succeed("me"))).pipe(
            Layer.provide(HttpAuth.layerBearer()),
            Layer.provide(ValidatorStub)
          )
        const server = HttpApiBuilder.serve().pipe(
          Layer.provide(HttpApiBuilder.api(Api).pipe(Layer.provide(Live))),
          Layer.provideMerge(NodeHttpServer.layer(() => createServer(), { port: 0, host: "127.0.0.1" })),
          Layer.provide(Logger.remove(Logger.defaultLogger))
        )
        yield* Effect.scoped(Effect.gen(function*() {
          const context = yield* Layer.build(server)
          const address = (yield* Effect.provide(HttpServer.HttpServer, context)).address as { port: number }
          const base = `http://127.0.0.1:${address.port}`
          const get = (path: string, token: string) =>
            Effect.promise(async () => {
              const r = await fetch(base + path, { headers: { authorization: `Bearer ${token}` } })
              await r.arrayBuffer()
              return [r.status, r.headers.get("www-authenticate")]
            })
          expect((yield* get("/report", "good"))[0]).toBe(200)
          expect((yield* get("/daemon", "good"))[0]).toBe(200)
          yield* Deferred.succeed(later, undefined)
          yield* Deferred.await(done)
          expect(yield* get("/me", "expired")).toEqual([
            401,
            `Bearer realm="api", error="invalid_token", error_description="the token has expired"`
          ])
        }))
      }),
    20_000
  )
})
