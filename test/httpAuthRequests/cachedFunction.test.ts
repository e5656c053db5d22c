/**
 * Effect.cachedFunction (and Effect.memoize) apply the fiber-ref changes of the first run to every later caller: a
 * memoized downstream lookup that journals the downstream's refusal must carry nothing of one request to the others.
 */
import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as HttpAuth from "../../src/HttpAuth.js"
import { forbidden, received, serveApi, ValidatorStub } from "./support.js"

class Api extends HttpApi.make("api")
  .add(HttpApiGroup.make("public").add(HttpApiEndpoint.get("status", "/status").addSuccess(Schema.String)))
  .add(
    HttpApiGroup.make("g")
      .add(HttpApiEndpoint.get("admin", "/admin").addSuccess(Schema.String))
      .add(HttpApiEndpoint.get("orders", "/orders").addSuccess(Schema.String))
      .middleware(HttpAuth.Authentication)
  )
{}

const makeApi = Effect.map(
  // The downstream's answer journaled (say, to a store) as JSON through the library's schema.
  Effect.cachedFunction((_key: string) =>
    Effect.as(
      Effect.orDie(Schema.encode(HttpAuth.Failure)(received({ error: "unauthorized", error_description: "x" }))),
      "cfg"
    )
  ),
  (config) => {
    const Public = HttpApiBuilder.group(Api, "public", (h) => h.handle("status", () => config("k")))
    const G = HttpApiBuilder.group(Api, "g", (h) =>
      h
        .handle("admin", () => Effect.zipRight(config("k"), Effect.as(HttpAuth.requireGroups("admin"), "never")))
        .handle("orders", () => Effect.zipRight(config("k"), Effect.fail(received(forbidden))))).pipe(
        Layer.provide(HttpAuth.layerBearer()),
        Layer.provide(ValidatorStub)
      )
    return HttpApiBuilder.api(Api).pipe(Layer.provide(Layer.merge(Public, G)))
  }
)

describe("HttpAuth: a memoized effect carries no request's answers to its callers", () => {
  it.effect("a public first call, then request A's own 403, then request B's received 403: 500", () =>
    Effect.flatMap(makeApi, (api) =>
      serveApi(api, async (get) => {
        expect((await get("/status")).status).toBe(200)
        expect((await get("/admin", "good")).status).toBe(403)
        expect(await get("/orders", "good")).toEqual({ status: 500, challenge: null })
      })))

  it.effect("control: the same without request A's refusal: 500", () =>
    Effect.flatMap(makeApi, (api) =>
      serveApi(api, async (get) => {
        expect((await get("/status")).status).toBe(200)
        expect(await get("/orders", "good")).toEqual({ status: 500, challenge: null })
      })))
})
