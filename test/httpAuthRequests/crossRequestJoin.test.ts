/**
 * A fiber forked by one request and joined by another (a single-flight cache of downstream calls): the first
 * request's own answers must not count as the second request's own (fiber refs would carry them over on the join).
 */
import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as HttpAuth from "../../src/HttpAuth.js"
import { forbidden, received, serveApi, ValidatorStub } from "./support.js"

class Api extends HttpApi.make("api").add(
  HttpApiGroup.make("g")
    .add(HttpApiEndpoint.get("lead", "/lead").addSuccess(Schema.String))
    .add(HttpApiEndpoint.get("follow", "/follow").addSuccess(Schema.String))
    .add(HttpApiEndpoint.get("alone", "/alone").addSuccess(Schema.String))
    .middleware(HttpAuth.Authentication)
) {}

const makeLayer = () => {
  // A single-flight cache of downstream calls (the downstream result itself is irrelevant here).
  const inflight = new Map<string, Fiber.RuntimeFiber<string>>()
  const singleFlight = (key: string) =>
    Effect.suspend(() => {
      const known = inflight.get(key)
      if (known !== undefined) return Fiber.join(known)
      return Effect.flatMap(Effect.forkDaemon(Effect.succeed(`downstream ${key}`)), (fiber) => {
        inflight.set(key, fiber)
        return Effect.succeed("started")
      })
    })
  const Live = HttpApiBuilder.group(Api, "g", (handlers) =>
    handlers
      // Request A: starts a prefetch, then its own guard refuses it (its own 403).
      .handle("lead", () => Effect.zipRight(singleFlight("k"), Effect.as(HttpAuth.requireGroups("admin"), "never")))
      // Request B: joins the same in-flight call, then lets another service's 403 through: must be a 500.
      .handle("follow", () => Effect.zipRight(singleFlight("k"), Effect.fail(received(forbidden))))
      // Control: the same received 403 without the join.
      .handle("alone", () => Effect.fail(received(forbidden)))).pipe(
      Layer.provide(HttpAuth.layerBearer()),
      Layer.provide(ValidatorStub)
    )
  return HttpApiBuilder.api(Api).pipe(Layer.provide(Live))
}

describe("HttpAuth: a fiber another request joins brings no answers of its own request", () => {
  it.effect("control: a received 403 let through is a 500", () =>
    serveApi(makeLayer(), async (get) => {
      expect(await get("/alone", "good")).toEqual({ status: 500, challenge: null })
    }))

  it.effect("request B joins a fiber request A forked: A's own 403 does not make B's received 403 ours: 500", () =>
    serveApi(makeLayer(), async (get) => {
      expect((await get("/lead", "good")).status).toBe(403)
      // Expected: 500 (the 403 is another service's refusal of this server's call).
      expect(await get("/follow", "good")).toEqual({ status: 500, challenge: null })
    }))
})
