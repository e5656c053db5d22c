/** Held-up check: over one HTTP/2 connection, streams are separate requests (separate sources). */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpServer from "@effect/platform/HttpServer"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as http2 from "node:http2"
import * as HttpAuth from "../../src/HttpAuth.js"
import { expired, Quiet, received, ValidatorStub } from "./support.js"

class Api extends HttpApi.make("api").add(
  HttpApiGroup.make("g")
    .add(HttpApiEndpoint.get("me", "/me").addSuccess(Schema.String))
    .add(HttpApiEndpoint.get("downstream", "/downstream").addSuccess(Schema.String))
    .middleware(HttpAuth.Authentication)
) {}
const Live = HttpApiBuilder.group(
  Api,
  "g",
  (h) => h.handle("me", () => Effect.succeed("me")).handle("downstream", () => Effect.fail(received(expired)))
).pipe(
  Layer.provide(HttpAuth.layerBearer()),
  Layer.provide(ValidatorStub)
)

describe("HttpAuth: HTTP/2", () => {
  it.live(
    "own 401 and a received 401 on concurrent streams of one connection",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const server = HttpApiBuilder.serve().pipe(
          Layer.provide(HttpApiBuilder.api(Api).pipe(Layer.provide(Live))),
          Layer.provideMerge(NodeHttpServer.layer(() => http2.createServer() as never, { port: 0, host: "127.0.0.1" })),
          Layer.provide(Quiet)
        )
        const context = yield* Layer.build(server)
        const { port } = (yield* Effect.provide(HttpServer.HttpServer, context)).address as { port: number }
        const results = yield* Effect.promise(async () => {
          const session = http2.connect(`http://127.0.0.1:${port}`)
          const one = (path: string, token: string) =>
            new Promise<{ status: number; challenge: unknown }>((resolve, reject) => {
              const s = session.request({ ":path": path, authorization: `Bearer ${token}` })
              let headers: http2.IncomingHttpHeaders = {}
              s.on("response", (h) => (headers = h))
              s.on("data", () => {})
              s.on(
                "end",
                () => resolve({ status: Number(headers[":status"]), challenge: headers["www-authenticate"] ?? null })
              )
              s.on("error", reject)
            })
          try {
            return await Promise.all([one("/me", "expired"), one("/downstream", "good"), one("/me", "expired")])
          } finally {
            session.close()
          }
        })
        expect(results[0].status).toBe(401)
        expect(results[1]).toEqual({ status: 500, challenge: null })
        expect(results[2].status).toBe(401)
      })),
    20_000
  )
})
