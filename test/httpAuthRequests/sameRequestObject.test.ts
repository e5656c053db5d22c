/**
 * Two requests with one `source`: a web handler given the same `Request` object twice (a retry or a fallback chain
 * passing the request it got on). The record is never reset, so the first request's own 401 makes the second
 * request's received 401 "own": it goes out as our 401 with our challenge.
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
import { answerOf, expired, received, ValidatorStub, webOf } from "./support.js"

class Api extends HttpApi.make("api").add(
  HttpApiGroup.make("g")
    .add(HttpApiEndpoint.get("flip", "/flip").addSuccess(Schema.String))
    .middleware(HttpAuth.Authentication)
) {}

let calls = 0
const Live = HttpApiBuilder.group(Api, "g", (handlers) =>
  handlers.handle("flip", () =>
    Effect.suspend(() =>
      // First answer: the app's own 401 (a session it revoked, say). Second: another service's 401 let through.
      calls++ === 0
        ? Effect.fail(
          new HttpAuth.Unauthorized({ error: "invalid_token", error_description: expired.error_description })
        )
        : Effect.fail(received(expired))
    ))).pipe(
    Layer.provide(HttpAuth.layerBearer()),
    Layer.provide(ValidatorStub)
  )

const api = HttpApiBuilder.api(Api).pipe(Layer.provide(Live))

describe("HttpAuth: two requests sharing a source", () => {
  it.effect("control: two Request objects: own 401, then the received 401 is a 500", () =>
    Effect.promise(async () => {
      calls = 0
      const web = webOf(api)
      try {
        const init = { headers: { authorization: "Bearer good" } }
        expect((await answerOf(await web.handler(new Request("http://localhost/flip", init)))).status).toBe(401)
        const second = await answerOf(await web.handler(new Request("http://localhost/flip", init)))
        expect({ status: second.status, challenge: second.challenge }).toEqual({ status: 500, challenge: null })
      } finally {
        await web.dispose()
      }
    }))

  it.effect("the same Request object twice: the second request's received 401 is still a 500", () =>
    Effect.promise(async () => {
      calls = 0
      const web = webOf(api)
      try {
        const request = new Request("http://localhost/flip", { headers: { authorization: "Bearer good" } })
        expect((await answerOf(await web.handler(request))).status).toBe(401)
        const second = await answerOf(await web.handler(request))
        expect({ status: second.status, challenge: second.challenge }).toEqual({ status: 500, challenge: null })
      } finally {
        await web.dispose()
      }
    }))
})
