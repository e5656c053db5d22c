/**
 * Edge cases pinned after a mutation-testing review: `JwksSource`, unpinned by the suite
 * (each test fails on one mutation that the rest of the suite does not catch).
 */
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { generateKeyPairSync } from "node:crypto"
import * as JwksSource from "../src/JwksSource.js"

const jwk = {
  ...generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey.export({ format: "jwk" }),
  kid: "k1",
  alg: "RS256"
}

describe("JwksSource edge cases", () => {
  // Mutation: the app's RequestInit spread after `redirect: "manual"` instead of before. An app whose fetch
  // options follow redirects must still not have the key set taken from wherever a 3xx points.
  it.effect("redirects are not followed even when the app's RequestInit says follow", () =>
    Effect.gen(function*() {
      const inits: Array<RequestInit | undefined> = []
      const fakeFetch = (async (_input: string | URL | Request, init?: RequestInit) => {
        inits.push(init)
        return init?.redirect === "manual"
          ? new Response(null, { status: 302, headers: { location: "https://attacker.example.test/jwks.json" } })
          : Response.json({ keys: [jwk] })
      }) as typeof globalThis.fetch
      const error = yield* Effect.flip(
        Effect.flatMap(Effect.orDie(JwksSource.http("https://keys.example.test/jwks.json")), (source) => source.fetch)
          .pipe(
            Effect.provide(FetchHttpClient.layer),
            Effect.provideService(FetchHttpClient.Fetch, fakeFetch),
            Effect.provideService(FetchHttpClient.RequestInit, { redirect: "follow", credentials: "omit" })
          )
      )
      expect(error.reason).toBe("HttpStatus")
      expect(error.status).toBe(302)
      expect(inits[0]).toMatchObject({ redirect: "manual", credentials: "omit" })
    }))
})
