import * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as JwksSource from "../src/JwksSource.js"

const jwksUrl = "https://keys.example.test/jwks.json"

const fetchWith = (client: HttpClient.HttpClient) =>
  Effect.flatMap(Effect.orDie(JwksSource.http(jwksUrl)), (source) => Effect.exit(source.fetch)).pipe(
    Effect.provideService(HttpClient.HttpClient, client)
  )

describe("JwksSource: a client that throws", () => {
  it.effect("a client object (JavaScript) whose execute throws: Unreachable, not a defect", () =>
    Effect.gen(function*() {
      const throwing = {
        execute: (_request: HttpClientRequest.HttpClientRequest) => {
          throw new TypeError("boom")
        }
      } as unknown as HttpClient.HttpClient
      const exit = yield* fetchWith(throwing)
      expect(Exit.isFailure(exit) && exit.cause._tag === "Fail" ? exit.cause.error.reason : exit.toString())
        .toBe("Unreachable")
    }))

  it.effect("a platform client whose request function throws: Unreachable, not a defect", () =>
    Effect.gen(function*() {
      const throwing = HttpClient.make(() => {
        throw new TypeError("boom")
      })
      const exit = yield* fetchWith(throwing)
      expect(Exit.isFailure(exit) && exit.cause._tag === "Fail" ? exit.cause.error.reason : exit.toString())
        .toBe("Unreachable")
    }))
})
