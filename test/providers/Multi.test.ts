import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Supervisor from "effect/Supervisor"
import { SignJWT } from "jose"
import { vi } from "vitest"
import * as Jwk from "../../src/Jwk.js"
import * as JwksCache from "../../src/JwksCache.js"
import * as JwksSource from "../../src/JwksSource.js"
import * as Cognito from "../../src/providers/Cognito.js"
import * as EntraId from "../../src/providers/EntraId.js"
import * as Oidc from "../../src/providers/Oidc.js"
import * as SharedSecret from "../../src/providers/SharedSecret.js"
import * as Static from "../../src/providers/Static.js"
import * as FakeIdp from "../../src/testing/FakeIdp.js"
import * as TokenValidator from "../../src/TokenValidator.js"
import { recording } from "../support/tracing.js"

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
      // A validation as any: it has its span when a tracer is installed, ended, with its outcome.
      const { spans, tracer } = recording()
      yield* Effect.flip(TokenValidator.validate(stranger).pipe(Effect.withTracer(tracer)))
      expect(spans.map((span) => [span.name, span.attributes.get("outcome"), span.status._tag])).toEqual([
        ["TokenValidator.validate", "IssuerMismatch", "Ended"]
      ])
    }).pipe(Effect.provide(ValidatorLive.pipe(Layer.provideMerge(RoutingClient)))))

  it.effect("refuses as a validator alone would: too large before anything is decoded, no issuer, not a string", () =>
    Effect.gen(function*() {
      const { oidc } = yield* Idps
      const b64 = (text: string) => Buffer.from(text).toString("base64url")
      const header = b64(JSON.stringify({ alg: "RS256" }))
      // Over every validator's 16 KiB cap: refused before its claims are decoded to route it.
      const big = `${header}.${b64(JSON.stringify({ iss: OIDC_ISSUER, pad: "a".repeat(20_000) }))}.${b64("sig")}`
      expect(yield* refusal(TokenValidator.validate(big))).toBe("TokenValidationError:TooLarge")
      // The cap counts bytes: 6,000 three-byte characters are 18,000.
      expect(yield* refusal(TokenValidator.validate("€".repeat(6_000)))).toBe("TokenValidationError:TooLarge")
      // A signed token without iss: IssuerMismatch, as from the validator alone.
      const noIssuer = yield* oidc.sign({ iss: undefined })
      expect(yield* refusal(TokenValidator.validate(noIssuer))).toBe("TokenValidationError:IssuerMismatch")
      expect(yield* refusal(TokenValidator.validate(42 as unknown as string))).toBe("TokenValidationError:Malformed")
      expect(yield* oidc.fetchCount).toBe(0)
      // Claims of more than 1,000 objects and lists (parsed unverified to route: thousands would cost ten times a
      // signature check) are not parsed; 1,000 are routed, to be judged by the validator (which fetches keys). Members
      // and list items are not counted: a token listing 3,000 role names is routed.
      const lists = (count: number) => `{"iss":"${OIDC_ISSUER}","x":[${Array(count - 2).fill("[]").join(",")}]}`
      const sig = b64("sig")
      expect(yield* refusal(TokenValidator.validate(`${header}.${b64(lists(1001))}.${sig}`))).toBe(
        "TokenValidationError:Malformed"
      )
      expect(yield* refusal(TokenValidator.validate(`${header}.${b64(lists(1000))}.${sig}`))).toBe(
        "TokenValidationError:InvalidSignature"
      )
      const roles = `{"iss":"${OIDC_ISSUER}","roles":[${Array(3000).fill("\"r\"").join(",")}]}`
      expect(yield* refusal(TokenValidator.validate(`${header}.${b64(roles)}.${sig}`))).toBe(
        "TokenValidationError:InvalidSignature"
      )
    }).pipe(Effect.provide(ValidatorLive.pipe(Layer.provideMerge(RoutingClient)))))

  it.effect("the router's size cap is its largest validator's: a token within that one's own cap reaches it", () =>
    Effect.gen(function*() {
      const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url")
      const anyKey: TokenValidator.KeyResolver = {
        get: () => Effect.succeed(Option.some({ verify: () => true })),
        recordSuccess: Effect.void
      }
      const small = yield* TokenValidator.make(anyKey, { issuer: "https://a.test", audience: "x", maxTokenBytes: 200 })
      const large = yield* TokenValidator.make(anyKey, { issuer: "https://b.test", audience: "x", maxTokenBytes: 4000 })
      const claims = (iss: string) => ({ iss, aud: "x", sub: "bob", exp: 4_000_000_000, pad: "p".repeat(1000) })
      const tokenOf = (iss: string) => `${b64({ alg: "RS256" })}.${b64(claims(iss))}.${"A".repeat(342)}`
      for (const both of [TokenValidator.multi([small, large]), TokenValidator.multi([large, small])]) {
        expect((yield* both.validate(tokenOf("https://b.test"))).id).toBe("bob")
        // The chosen validator's own cap still holds.
        expect(yield* refusal(both.validate(tokenOf("https://a.test")))).toBe("TokenValidationError:TooLarge")
      }
    }))

  it.effect("through toPromise, a warm validator answers from memory without a fiber, whichever provider routes", () =>
    Effect.gen(function*() {
      const { cognito, entra, oidc } = yield* Idps
      const tokens = [
        yield* oidc.sign(),
        yield* cognito.sign(cognitoAccess),
        yield* entra.sign({ iss: `${ENTRA}/${TENANT}/v2.0`, tid: TENANT, ver: "2.0" })
      ]
      const validator = yield* TokenValidator.TokenValidator
      for (const token of tokens) yield* validator.validate(token) // every key set loaded
      let starts = 0
      class Counting extends Supervisor.AbstractSupervisor<void> {
        get value() {
          return Effect.void
        }
        override onStart() {
          starts++
        }
      }
      const validate = TokenValidator.toPromise(yield* Effect.supervised(Effect.runtime<never>(), new Counting()))(
        validator
      )
      for (const token of tokens) expect((yield* Effect.promise(() => validate(token))).issuer).toBeDefined()
      // The README's promise, for multi and for EntraId (whose issuer rule reads the token's tid) alike.
      expect(starts).toBe(0)
      const stranger = yield* oidc.sign({ iss: "https://login.example.test/realms/other" })
      const refused = yield* Effect.flip(Effect.tryPromise({ try: () => validate(stranger), catch: (error) => error }))
      expect(refused).toMatchObject({ _tag: "TokenValidationError", reason: "IssuerMismatch" })
      expect(starts).toBe(0)
    }).pipe(Effect.provide(ValidatorLive.pipe(Layer.provideMerge(RoutingClient)))))

  it.scoped("an issuer rule that reads the claims is routed by its accepts", () =>
    Effect.gen(function*() {
      const { oidc } = yield* Idps
      const cache = yield* JwksCache.make(yield* JwksSource.http(oidc.jwksUri), { backgroundRefresh: false })
      const byTenant = (accepts?: (iss: string) => boolean) =>
        TokenValidator.make(TokenValidator.fromCache(cache), {
          audience: AUDIENCE,
          issuer: {
            description: `${OIDC_ISSUER} for tenant t1`,
            matches: (iss, claims) => iss === OIDC_ISSUER && claims.tenant === "t1",
            ...(accepts === undefined ? {} : { accepts })
          }
        })
      const t1 = yield* oidc.sign({ tenant: "t1" })
      const t2 = yield* oidc.sign({ tenant: "t2" })
      const routed = TokenValidator.multi([yield* byTenant((iss) => iss === OIDC_ISSUER)])
      expect((yield* routed.validate(t1)).issuer).toBe(OIDC_ISSUER)
      // Routed to the rule, which then refuses the other tenant on its verified claims.
      expect(yield* refusal(routed.validate(t2))).toBe("TokenValidationError:IssuerMismatch")
      // Without accepts, routing can only ask matches(iss, {}), which this rule never satisfies.
      const unrouted = TokenValidator.multi([yield* byTenant()])
      expect(yield* refusal(unrouted.validate(t1))).toBe("TokenValidationError:IssuerMismatch")
      expect(unrouted.acceptsIssuer(OIDC_ISSUER)).toBe(false)
      expect(routed.acceptsIssuer(OIDC_ISSUER)).toBe(true)
    }).pipe(Effect.provide(RoutingClient)))

  it.effect("several validators accepting one issuer: the first that allows the token's alg is chosen", () =>
    Effect.gen(function*() {
      // One issuer moving from a shared secret (HS256) to a key set (RS256): a validator for each.
      const idp = yield* FakeIdp.FakeIdp
      const secret = "correct horse battery staple, 32+ bytes of it"
      const shared = yield* SharedSecret.make({
        secret: Redacted.make(secret),
        issuer: idp.issuer,
        audience: idp.audience
      })
      const published = yield* Static.make({ jwks: yield* idp.jwks, issuer: idp.issuer, audience: idp.audience })
      const rs = yield* idp.sign({ sub: "rs" })
      const hs = yield* Effect.promise(() =>
        new SignJWT({ sub: "hs" }).setProtectedHeader({ alg: "HS256" }).setIssuer(idp.issuer)
          .setAudience(idp.audience).setExpirationTime(3600).sign(new TextEncoder().encode(secret))
      )
      // A copy with a validate of the app's (a deny list) and a multi inside another route the same way.
      const denyListed: TokenValidator.Service = { ...shared, validate: (token) => shared.validate(token) }
      // An inner multi is judged by what its validators of the token's issuer allow, not by its others'.
      const otherIssuer = yield* SharedSecret.make({
        secret: Redacted.make(secret),
        issuer: "https://other.example",
        audience: idp.audience
      })
      for (
        const validators of [
          [shared, published],
          [published, shared],
          [denyListed, published],
          [TokenValidator.multi([shared]), published],
          [TokenValidator.multi([published, otherIssuer]), shared]
        ]
      ) {
        const validator = TokenValidator.multi(validators)
        expect((yield* validator.validate(rs)).id).toBe("rs")
        expect((yield* validator.validate(hs)).id).toBe("hs")
        // An alg neither allows goes to the first, which refuses it as it would alone.
        const other = `${Buffer.from(JSON.stringify({ alg: "ES256" })).toString("base64url")}.${rs.split(".")[1]}.AA`
        expect(yield* refusal(validator.validate(other))).toBe("TokenValidationError:AlgorithmNotAllowed")
        // A header a validator refuses unread (thousands of lists) is not parsed to route either.
        const header = Buffer.from(`{"alg":"RS256","x":[${Array(3_500).fill("[]").join(",")}]}`).toString("base64url")
        const junk = `${header}.${rs.split(".")[1]}.AA`
        const parse = vi.spyOn(JSON, "parse")
        try {
          expect(yield* refusal(validator.validate(junk))).toBe("TokenValidationError:Malformed")
          expect(parse.mock.calls.filter(([text]) => String(text).length > 1_000)).toEqual([])
        } finally {
          parse.mockRestore()
        }
      }
    }).pipe(Effect.provide(FakeIdp.layerTest())))

  it.scoped("make refuses algorithms its keys cannot verify (a key set's HS256, a secret's RS256), which multi would route", () =>
    Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      const cache = yield* JwksCache.make(JwksSource.fromKeySet(yield* idp.jwks), { backgroundRefresh: false })
      const secret = yield* SharedSecret.keyResolver(Redacted.make("correct horse battery staple, 32+ bytes of it"))
      const options = { issuer: idp.issuer, audience: idp.audience }
      const refused = (keys: TokenValidator.KeyResolver, algorithms: ReadonlyArray<TokenValidator.SigningAlgorithm>) =>
        Effect.flip(TokenValidator.make(keys, { ...options, algorithms })).pipe(
          Effect.map((error) => error._op === "InvalidData" ? [error.path, error.message] : error._op)
        )
      // Over a key set (the cache's, a static one, a copy of either with a get of the app's): HS256 is SharedSecret's.
      const cacheKeys = TokenValidator.fromCache(cache)
      for (
        const keys of [cacheKeys, Static.keyResolver(yield* Jwk.importKeySet(yield* idp.jwks, "static")), {
          ...cacheKeys,
          get: cacheKeys.get
        }]
      ) {
        const [path, message] = yield* refused(keys, ["RS256", "HS256"])
        expect(path).toEqual(["algorithms"])
        expect(message).toContain("got HS256 (HS* are SharedSecret's")
      }
      // Over a shared secret (HS256 only here): RS256, and HS512, which it was not imported for.
      expect((yield* refused(secret, ["HS256", "RS256"]))[0]).toEqual(["algorithms"])
      expect((yield* refused(secret, ["HS512"]))[1]).toContain("(HS256), got HS512")
      // A cache that imports keys of some algorithms only, and a fixed set, say what they verify: no more.
      const rsaOnly = yield* JwksCache.make(JwksSource.fromKeySet(yield* idp.jwks), {
        backgroundRefresh: false,
        algorithms: ["RS256"]
      })
      expect((yield* refused(TokenValidator.fromCache(rsaOnly), ["RS256", "ES256"]))[1]).toContain("(RS256), got ES256")
      const rsaSet = Static.keyResolver(yield* Jwk.importKeySet(yield* idp.jwks, "static", { algorithms: ["RS256"] }))
      expect((yield* refused(rsaSet, ["ES256"]))[1]).toContain("(RS256), got ES256")
      // What each can verify is allowed, and a resolver that does not say (the app's own) may allow anything.
      yield* TokenValidator.make(cacheKeys, { ...options, algorithms: ["RS256", "ES256", "EdDSA"] })
      yield* TokenValidator.make(secret, { ...options, algorithms: ["HS256"] })
      yield* TokenValidator.make({ get: cacheKeys.get, recordSuccess: Effect.void }, {
        ...options,
        algorithms: ["HS256"]
      })
    }).pipe(Effect.provide(FakeIdp.layerTest())))

  it.effect("multis nested and shared: each validator's issuer rule is asked a few times per token, not per path", () =>
    Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      let asked = 0
      const counted = yield* Static.make({
        jwks: yield* idp.jwks,
        audience: idp.audience,
        issuer: {
          description: idp.issuer,
          matches: (iss) => iss === idp.issuer,
          accepts: (iss) => (asked++, iss === idp.issuer)
        }
      })
      const secret = "correct horse battery staple, 32+ bytes of it"
      const shared = yield* SharedSecret.make({
        secret: Redacted.make(secret),
        issuer: idp.issuer,
        audience: idp.audience
      })
      // 16 levels, each the one below twice: 65,536 paths to the one key-set validator.
      let nested: TokenValidator.Service = counted
      for (let level = 0; level < 16; level++) nested = TokenValidator.multi([nested, nested])
      const validator = TokenValidator.multi([nested, shared])
      const hs = yield* Effect.promise(() =>
        new SignJWT({ sub: "hs" }).setProtectedHeader({ alg: "HS256" }).setIssuer(idp.issuer)
          .setAudience(idp.audience).setExpirationTime(3600).sign(new TextEncoder().encode(secret))
      )
      asked = 0
      expect((yield* validator.validate(hs)).id).toBe("hs")
      expect(asked).toBeLessThan(10)
      expect((yield* validator.validate(yield* idp.sign({ sub: "rs" }))).id).toBe("rs")
    }).pipe(Effect.provide(FakeIdp.layerTest())))

  it.effect("keyStatus: one entry per cache behind it, however many validators or paths lead to it", () =>
    Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      const cache = yield* JwksCache.make(JwksSource.fromKeySet(yield* idp.jwks), { backgroundRefresh: false })
      const a = yield* TokenValidator.make(TokenValidator.fromCache(cache), {
        issuer: "https://a.example",
        audience: "api"
      })
      const b = yield* TokenValidator.make(TokenValidator.fromCache(cache), {
        issuer: "https://b.example",
        audience: "api"
      })
      const other = yield* JwksCache.make(JwksSource.fromKeySet(yield* idp.jwks), { backgroundRefresh: false })
      const c = yield* TokenValidator.make(TokenValidator.fromCache(other), {
        issuer: "https://c.example",
        audience: "api"
      })
      // The same validator twice, two over one cache, a copy with the app's validate: one cache; another: two.
      const copy: TokenValidator.Service = { ...a, validate: (token) => a.validate(token) }
      expect(yield* TokenValidator.multi([a, a, b, copy]).keyStatus).toHaveLength(1)
      expect(yield* TokenValidator.multi([a, b, c]).keyStatus).toHaveLength(2)
      // A tree sharing one inner multi asks each validator once, not once per path.
      let asked = 0
      const counted: TokenValidator.Service = { ...c, keyStatus: Effect.suspend(() => (asked++, c.keyStatus)) }
      let nested: TokenValidator.Service = counted
      for (let level = 0; level < 12; level++) nested = TokenValidator.multi([nested, nested])
      expect(yield* TokenValidator.multi([nested, a]).keyStatus).toHaveLength(2)
      expect(asked).toBe(1)
    }).pipe(Effect.scoped, Effect.provide(FakeIdp.layerTest())))
})
