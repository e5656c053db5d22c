/**
 * Edge cases pinned after a mutation-testing review: provider rules unpinned by the suite (each test fails on one mutation of
 * `src/providers/*` that the rest of the suite does not catch).
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { createHmac } from "node:crypto"
import * as Cognito from "../../src/providers/Cognito.js"
import * as EntraId from "../../src/providers/EntraId.js"
import * as Oidc from "../../src/providers/Oidc.js"
import * as SharedSecret from "../../src/providers/SharedSecret.js"
import * as FakeIdp from "../../src/testing/FakeIdp.js"
import { TokenValidationError } from "../../src/TokenValidationError.js"
import * as TokenValidator from "../../src/TokenValidator.js"

const AUTHORITY = "https://login.microsoftonline.com"
const TENANT_A = "0b6f1a4e-2c3d-4e5f-8a9b-1c2d3e4f5a6b"
const TENANT_B = "c7d8e9f0-1a2b-4c3d-9e8f-7a6b5c4d3e2f"
const entraIssuer = (tid: string) => `${AUTHORITY}/${tid}/v2.0`

const rule = (options: Parameters<typeof EntraId.tenancy>[0]) => {
  const tenancy = EntraId.tenancy(options)
  if (Either.isLeft(tenancy)) throw new Error(tenancy.left.message)
  return tenancy.right
}

describe("EntraId edge cases", () => {
  // Mutation: `iss === issuerOf(claims.tid)` -> `acceptsIssuer(iss)` in the issuer rule. For a multi-tenant
  // validator the token's iss must be its own tenant's, not just any accepted tenant's.
  it("common: a token whose iss names another tenant than its tid is refused", () => {
    for (
      const options of [{ tenantId: "common" }, { tenantId: "organizations", allowedTenants: [TENANT_A, TENANT_B] }]
    ) {
      const { issuer } = rule(options)
      expect(issuer.matches(entraIssuer(TENANT_A), { tid: TENANT_A })).toBe(true)
      expect(issuer.matches(entraIssuer(TENANT_B), { tid: TENANT_A })).toBe(false)
    }
  })

  // Mutation: `const lower = tid.toLowerCase()` -> `const lower = tid`. The personal-accounts tenant is refused by
  // `organizations` however its GUID is spelled (GUIDs are matched without case everywhere else).
  it("organizations refuses the consumers tenant written in upper case", () => {
    const upper = EntraId.consumersTenantId.toUpperCase()
    const { acceptsIssuer, issuer } = rule({ tenantId: "organizations" })
    expect(acceptsIssuer(entraIssuer(upper))).toBe(false)
    expect(issuer.matches(entraIssuer(upper), { tid: upper })).toBe(false)
    // And a single tenant given in lower case accepts its own GUID in upper case.
    const single = rule({ tenantId: TENANT_A })
    expect(single.issuer.matches(entraIssuer(TENANT_A.toUpperCase()), { tid: TENANT_A.toUpperCase() })).toBe(true)
  })

  // Mutation: `tenant.toLowerCase() === consumersTenantId` -> `tenant === consumersTenantId` in the option check.
  it("organizations with the consumers tenant in allowedTenants is a ConfigError, in any case", () => {
    for (const consumers of [EntraId.consumersTenantId, EntraId.consumersTenantId.toUpperCase()]) {
      const tenancy = EntraId.tenancy({ tenantId: "organizations", allowedTenants: [TENANT_A, consumers] })
      expect(Either.isLeft(tenancy)).toBe(true)
    }
  })
})

const POOL = "eu-west-1_AbCdEf123"
const COGNITO_ISSUER = `https://cognito-idp.eu-west-1.amazonaws.com/${POOL}`
const CLIENT = "3n4b5urk1ft4fl3mg5e62d9ado"

describe("Cognito edge cases", () => {
  // Mutation: `if (use !== "id" && use !== "access")` -> `if (use === undefined)`. With tokenUse null (either),
  // a token_use that is neither id nor access is still refused.
  it.scoped("tokenUse null: a token_use other than id or access is refused as TokenType", () =>
    Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      const validator = yield* Cognito.make({
        userPoolId: POOL,
        clientId: CLIENT,
        tokenUse: null,
        cache: { backgroundRefresh: false }
      })
      const claims = { aud: undefined, sub: "alice", client_id: CLIENT, scope: "orders/read" }
      expect((yield* validator.validate(yield* idp.sign({ ...claims, token_use: "access" }))).id).toBe("alice")
      for (const token_use of ["custom", "Access", ""]) {
        const error = yield* Effect.flip(validator.validate(yield* idp.sign({ ...claims, token_use })))
        expect(error instanceof TokenValidationError && error.reason).toBe("TokenType")
      }
    }).pipe(Effect.provide(FakeIdp.layerTest({ issuer: COGNITO_ISSUER, audience: CLIENT }))))
})

describe("Oidc edge cases", () => {
  // Mutation: `document.issuer === issuer` -> `document.issuer.startsWith(issuer)`. The discovery document's
  // issuer must be the configured one exactly (OpenID Connect Discovery 1.0, section 4.3).
  it.effect("a discovery document naming an issuer that merely starts with ours is IssuerMismatch", () =>
    Effect.gen(function*() {
      const issuer = "https://login.example.test/realms/main"
      const client = HttpClient.make((request, url) =>
        Effect.succeed(HttpClientResponse.fromWeb(
          request,
          url.pathname.endsWith("/openid-configuration")
            ? Response.json({ issuer: `${issuer}-evil`, jwks_uri: "https://login.example.test/evil/keys" })
            : Response.json({ keys: [] })
        ))
      )
      const source = yield* Oidc.discoverySource(issuer).pipe(Effect.provideService(HttpClient.HttpClient, client))
      const error = yield* Effect.flip(source.fetch)
      expect(error.reason).toBe("IssuerMismatch")
    }))
})

describe("SharedSecret edge cases", () => {
  // Mutation: drop `if (!algorithms.has(alg)) return false` in the secret's verify. A resolver built for HS256
  // with a 32-byte secret must not verify HS512 (which needs 64 bytes), whatever algorithms the validator allows.
  it.effect("a key resolver verifies only the algorithms it was built for", () =>
    Effect.gen(function*() {
      const secret = "0123456789abcdef0123456789abcdef" // 32 bytes: enough for HS256 only
      const resolver = yield* SharedSecret.keyResolver(Redacted.make(secret), ["HS256"])
      const key = Option.getOrThrow(yield* resolver.get(undefined, "HS512"))
      const data = Buffer.from("header.payload")
      const mac = (hash: string) => createHmac(hash, secret).update(data).digest()
      expect(key.verify("HS256", data, mac("sha256"))).toBe(true)
      expect(key.verify("HS512", data, mac("sha512"))).toBe(false)
      // End to end: `make` refuses a validator that allows HS512 over this resolver; over a copy of it that does not
      // say what it verifies, such a validator still refuses an HS512 token.
      const options = {
        issuer: "https://issuer.example.test",
        audience: "api",
        algorithms: ["HS256", "HS512"]
      } as const
      const refused = yield* Effect.flip(TokenValidator.make(resolver, options))
      expect(refused._op === "InvalidData" && refused.path).toEqual(["algorithms"])
      const validator = yield* TokenValidator.make({ ...resolver, algorithms: undefined }, options)
      const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url")
      const input = `${b64({ alg: "HS512" })}.${b64({ iss: "https://issuer.example.test", aud: "api", exp: 3600 })}`
      const token = `${input}.${createHmac("sha512", secret).update(input).digest("base64url")}`
      const error = yield* Effect.flip(validator.validate(token))
      expect(error instanceof TokenValidationError && error.reason).toBe("InvalidSignature")
    }))
})

describe("mutation review (internals)", () => {
  // Mutation in `internal/provider.ts`'s `jwksValidator`: `(typeof cache !== "object" || cache === null)` ->
  // `(cache === null)`. Cache options that are no object (a string or a number from a config file) are refused by
  // the provider as not the cache's options, and no cache starts.
  it.scoped("cache options that are not an object are refused as not the cache's options", () =>
    Effect.gen(function*() {
      for (const cache of ["fast", 60, true]) {
        const options = { userPoolId: POOL, clientId: CLIENT, tokenUse: "id", cache } as unknown as Cognito.Options
        const error = yield* Effect.flip(Cognito.make(options))
        expect(error._op === "InvalidData" && [error.path, error.message]).toEqual([
          ["cache"],
          "expected the cache's options (JwksCache.Options)"
        ])
      }
      expect(yield* (yield* FakeIdp.FakeIdp).fetchCount).toBe(0)
    }).pipe(Effect.provide(FakeIdp.layerTest({ issuer: COGNITO_ISSUER, audience: CLIENT }))))
})
