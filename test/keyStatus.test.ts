import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as HttpAuth from "../src/HttpAuth.js"
import * as Oidc from "../src/providers/Oidc.js"
import * as SharedSecret from "../src/providers/SharedSecret.js"
import * as FakeIdp from "../src/testing/FakeIdp.js"
import * as TokenValidator from "../src/TokenValidator.js"

describe("the key status of a validator", () => {
  it.scoped("a provider's validator reports its cache; a shared secret none; multi all of them", () =>
    Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      const oidc = yield* Oidc.make({ issuer: idp.issuer, audience: idp.audience, jwksUri: idp.jwksUri })
      yield* oidc.validate(yield* idp.sign({}))
      const [status] = yield* oidc.keyStatus
      expect(status?.keyIds).toEqual([yield* idp.currentKid])
      expect(status?.source).toBe(idp.jwksUri)

      const secret = yield* SharedSecret.make({
        secret: Redacted.make("a-shared-secret-of-at-least-thirty-two-bytes"),
        issuer: "https://auth.example",
        audience: "api"
      })
      expect(yield* secret.keyStatus).toEqual([])
      expect((yield* TokenValidator.multi([oidc, secret]).keyStatus).map((s) => s.source)).toEqual([idp.jwksUri])

      const response = yield* HttpAuth.validatorCacheInfo.pipe(
        Effect.provide(Layer.succeed(TokenValidator.TokenValidator, oidc))
      )
      expect(response.status).toBe(200)
      expect(response.headers["cache-control"]).toBe("no-store")
      const body = JSON.parse(new TextDecoder().decode((response.body as { body: Uint8Array }).body))
      expect(body.caches[0].keyIds).toEqual([yield* idp.currentKid])
    }).pipe(Effect.provide(FakeIdp.layerTest())))
})
