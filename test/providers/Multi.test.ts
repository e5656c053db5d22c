import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Cognito from "../../src/providers/Cognito.js"
import * as EntraId from "../../src/providers/EntraId.js"
import * as Oidc from "../../src/providers/Oidc.js"
import * as FakeIdp from "../../src/testing/FakeIdp.js"
import * as TokenValidator from "../../src/TokenValidator.js"

const OIDC_ISSUER = "https://login.example.test/realms/main"
const POOL = "eu-west-1_AbCdEf123"
const COGNITO_ISSUER = `https://cognito-idp.eu-west-1.amazonaws.com/${POOL}`
const CLIENT = "3n4b5urk1ft4fl3mg5e62d9ado"
const ENTRA = "https://login.microsoftonline.com"
const TENANT = "0b6f1a4e-2c3d-4e5f-8a9b-1c2d3e4f5a6b"
const AUDIENCE = "orders-api"

class Idps extends Effect.Tag("test/Idps")<Idps, {
  readonly oidc: FakeIdp.FakeIdp["Type"]
  readonly cognito: FakeIdp.FakeIdp["Type"]
  readonly entra: FakeIdp.FakeIdp["Type"]
}>() {}

/** Three fake IdPs, and one HttpClient that routes each request to the IdP of its origin. */
const IdpsLive = Layer.effect(
  Idps,
  Effect.all({
    oidc: FakeIdp.make({ issuer: OIDC_ISSUER, audience: AUDIENCE }),
    cognito: FakeIdp.make({ issuer: COGNITO_ISSUER }),
    // Entra's multi-tenant endpoints: the fake's issuer is the {tenantid} template.
    entra: FakeIdp.make({ issuer: `${ENTRA}/{tenantid}/v2.0`, audience: AUDIENCE })
  })
)

const RoutingClient = Layer.effect(
  HttpClient.HttpClient,
  Effect.map(Idps, (idps) =>
    HttpClient.make((request, url) => {
      const idp = [idps.oidc, idps.cognito, idps.entra].find((idp) => new URL(idp.issuer).origin === url.origin)
      if (idp === undefined) {
        return Effect.fail(
          new HttpClientError.RequestError({ request, reason: "Transport", description: "unknown host" })
        )
      }
      const target = idp === idps.entra && url.pathname === "/common/v2.0/.well-known/openid-configuration"
        ? new URL(idp.discoveryUrl)
        : url
      return Effect.map(idp.handle({ method: request.method, url: target }), (reply) =>
        HttpClientResponse.fromWeb(request, new Response(reply.body, { status: reply.status, headers: reply.headers })))
    }))
).pipe(Layer.provideMerge(IdpsLive))

const refusal = <A, E extends { readonly _tag: string; readonly reason: string }, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.map(Effect.flip(effect), (error) => `${error._tag}:${error.reason}`)

const ValidatorLive = TokenValidator.layerMulti([
  Oidc.make({ issuer: OIDC_ISSUER, audience: AUDIENCE, cache: { backgroundRefresh: false } }),
  Cognito.make({ userPoolId: POOL, clientId: CLIENT, tokenUse: "access", cache: { backgroundRefresh: false } }),
  EntraId.make({ tenantId: "common", audience: AUDIENCE, cache: { backgroundRefresh: false } })
])

const cognitoAccess = { aud: undefined, token_use: "access", client_id: CLIENT, username: "carol" }

describe("multi-issuer", () => {
  it.effect("routes each token to its issuer's validator and keys", () =>
    Effect.gen(function*() {
      const { cognito, entra, oidc } = yield* Idps
      const fromOidc = yield* TokenValidator.validate(yield* oidc.sign({ preferred_username: "alice" }))
      expect(fromOidc.issuer).toBe(OIDC_ISSUER)
      expect(fromOidc.name).toBe("alice")
      const fromCognito = yield* TokenValidator.validate(yield* cognito.sign(cognitoAccess))
      expect(fromCognito.issuer).toBe(COGNITO_ISSUER)
      expect(fromCognito.name).toBe("carol")
      // Entra's issuer rule needs the token's tid: routing goes by the provider's own acceptsIssuer.
      const fromEntra = yield* TokenValidator.validate(
        yield* entra.sign({ iss: `${ENTRA}/${TENANT}/v2.0`, tid: TENANT, ver: "2.0", preferred_username: "dave" })
      )
      expect(fromEntra.issuer).toBe(`${ENTRA}/${TENANT}/v2.0`)
      expect(fromEntra.name).toBe("dave")
      expect(yield* oidc.discoveryCount).toBe(1)
      expect(yield* cognito.discoveryCount).toBe(0)
      expect(yield* entra.discoveryCount).toBe(1)
    }).pipe(Effect.provide(ValidatorLive.pipe(Layer.provideMerge(RoutingClient)))))

  it.effect("never accepts a token with one issuer signed by another issuer's key", () =>
    Effect.gen(function*() {
      const { cognito, oidc } = yield* Idps
      const ownKid = yield* oidc.sign({ ...cognitoAccess, iss: COGNITO_ISSUER })
      const outcome = yield* refusal(TokenValidator.validate(ownKid))
      expect(["TokenValidationError:NoMatchingKey", "TokenValidationError:InvalidSignature"]).toContain(outcome)
      // Even with the kid of a Cognito key: the signature does not verify.
      const borrowedKid = yield* oidc.sign({ ...cognitoAccess, iss: COGNITO_ISSUER }, {
        kid: yield* cognito.currentKid
      })
      expect(yield* refusal(TokenValidator.validate(borrowedKid))).toBe("TokenValidationError:InvalidSignature")
      // And the other way round.
      const intoOidc = yield* cognito.sign({ iss: OIDC_ISSUER, aud: AUDIENCE }, { kid: yield* oidc.currentKid })
      expect(yield* refusal(TokenValidator.validate(intoOidc))).toBe("TokenValidationError:InvalidSignature")
    }).pipe(Effect.provide(ValidatorLive.pipe(Layer.provideMerge(RoutingClient)))))

  it.effect("refuses an issuer no validator accepts", () =>
    Effect.gen(function*() {
      const { oidc } = yield* Idps
      const stranger = yield* oidc.sign({ iss: "https://login.example.test/realms/other" })
      expect(yield* refusal(TokenValidator.validate(stranger))).toBe("TokenValidationError:IssuerMismatch")
      const templated = yield* oidc.sign({ iss: `${ENTRA}/{tenantid}/v2.0`, tid: TENANT })
      expect(yield* refusal(TokenValidator.validate(templated))).toBe("TokenValidationError:IssuerMismatch")
      expect(yield* oidc.fetchCount).toBe(0)
    }).pipe(Effect.provide(ValidatorLive.pipe(Layer.provideMerge(RoutingClient)))))
})
