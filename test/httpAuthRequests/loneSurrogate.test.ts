/**
 * A received error whose description holds a lone surrogate (another service's JSON body with "\ud800"): the noted
 * answer (JSON.stringify keeps the lone surrogate) differs from the answer read back from the response (UTF-8 encoding
 * turned it into U+FFFD), so the read-back does not recognise it as received and adds our challenge.
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
import { answerOf, received, ValidatorStub, webOf } from "./support.js"

class Api extends HttpApi.make("api").add(
  HttpApiGroup.make("g")
    .add(HttpApiEndpoint.get("surrogate", "/surrogate").addSuccess(Schema.String))
    .add(HttpApiEndpoint.get("surrogateLarge", "/surrogate-large").addSuccess(Schema.String))
    .add(HttpApiEndpoint.get("surrogateScope", "/surrogate-scope").addSuccess(Schema.String))
    .middleware(HttpAuth.Authentication)
) {}

// What an HttpApiClient decodes from the other service's body `{"error":"invalid_token","error_description":"bad \ud800"}`.
const fromWire = (text: string) => received(JSON.parse(text))

const Live = HttpApiBuilder.group(Api, "g", (handlers) =>
  handlers
    .handle("surrogate", () => Effect.fail(fromWire(`{"error":"invalid_token","error_description":"expired \\ud800"}`)))
    .handle("surrogateLarge", () =>
      Effect.fail(fromWire(`{"error":"invalid_token","error_description":"${"x".repeat(70_000)}\\ud800"}`)))
    .handle("surrogateScope", () =>
      Effect.fail(
        fromWire(`{"error":"insufficient_scope","error_description":"lacks a scope","scope":"orders\\udc00"}`)
      ))).pipe(
    Layer.provide(HttpAuth.layerBearer()),
    Layer.provide(ValidatorStub)
  )

const api = HttpApiBuilder.api(Api).pipe(Layer.provide(Live))

const get = (path: string) =>
  Effect.promise(async () => {
    const web = webOf(api)
    try {
      return await answerOf(
        await web.handler(new Request(`http://localhost${path}`, { headers: { authorization: "Bearer good" } }))
      )
    } finally {
      await web.dispose()
    }
  })

describe("HttpAuth: a received error with a lone surrogate", () => {
  it.effect("a received 401 whose description has a lone surrogate: 500, not our 401 with a challenge", () =>
    Effect.map(get("/surrogate"), (a) => {
      expect({ status: a.status, challenge: a.challenge }).toEqual({ status: 500, challenge: null })
    }))

  it.effect("the same, over 64 KiB: 500, not a 401 with the other service's body", () =>
    Effect.map(get("/surrogate-large"), (a) => {
      expect(a.status).toBe(500)
    }))

  it.effect("a received 403 whose scope has a lone surrogate: 500, not our 403 with a challenge", () =>
    Effect.map(get("/surrogate-scope"), (a) => {
      expect({ status: a.status, challenge: a.challenge }).toEqual({ status: 500, challenge: null })
    }))
})
