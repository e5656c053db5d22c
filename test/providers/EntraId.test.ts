import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import { describe, expect, it } from "@effect/vitest"
import * as ConfigError from "effect/ConfigError"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import { type CryptoKey, exportJWK, generateKeyPair, SignJWT } from "jose"
import * as EntraId from "../../src/providers/EntraId.js"
import * as FakeIdp from "../../src/testing/FakeIdp.js"
import * as TokenValidator from "../../src/TokenValidator.js"

const AUTHORITY = "https://login.microsoftonline.com"
const TENANT = "0b6f1a4e-2c3d-4e5f-8a9b-1c2d3e4f5a6b"
const OTHER_TENANT = "c7d8e9f0-1a2b-4c3d-9e8f-7a6b5c4d3e2f"
const THIRD_TENANT = "11111111-2222-4333-8444-555555555555"
const API_CLIENT_ID = "5e6f7a8b-0000-4000-8000-00000000a11d"
/** A v2.0 access token's `aud`: the API's client id (an app ID URI is a v1.0 token's). */
const AUDIENCE = API_CLIENT_ID
const WEB_CLIENT_ID = "9a8b7c6d-0000-4000-8000-0000000c11e7"
const issuerOf = (tid: string) => `${AUTHORITY}/${tid}/v2.0`
const onDemand = { backgroundRefresh: false } as const

/** A delegated (user) v2.0 access token as Entra ID issues it. */
const userClaims = (tid: string) => ({
  iss: issuerOf(tid),
  aud: AUDIENCE,
  tid,
  ver: "2.0",
  oid: "4c5d6e7f-0000-4000-8000-000000000042",
  sub: "Qm9iJ3Mgc3ViamVjdCBpZGVudGlmaWVy",
  preferred_username: "alice@contoso.example",
  name: "Alice Example",
  azp: WEB_CLIENT_ID,
  azpacr: "0",
  scp: "Orders.Read Orders.Write",
  groups: ["a0a0a0a0-0000-4000-8000-000000000001"],
  roles: ["Orders.Admin"],
  uti: "AbCdEfGh",
  rh: "0.AAAA"
})

/** An app-only (client credentials) v2.0 access token. */
const appClaims = (tid: string) => ({
  iss: issuerOf(tid),
  aud: API_CLIENT_ID,
  tid,
  ver: "2.0",
  idtyp: "app",
  oid: "8f8f8f8f-0000-4000-8000-000000000099",
  sub: "8f8f8f8f-0000-4000-8000-000000000099",
  azp: WEB_CLIENT_ID,
  azpacr: "1",
  roles: ["Orders.ReadAll"]
})

const refusal = <A, E extends { readonly _tag: string; readonly reason: string }, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.map(Effect.flip(effect), (error) => `${error._tag}:${error.reason}`)

const env = (vars: Record<string, string>) =>
  Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(vars)), { pathDelim: "_" }))

/**
 * The fake poses as the multi-tenant endpoints: its issuer is the `{tenantid}` template, and the discovery URLs of
 * `common`, `organizations` and `consumers` all lead to its discovery document.
 */
const TemplateIdp = Layer.effect(
  HttpClient.HttpClient,
  Effect.map(FakeIdp.FakeIdp, (idp) =>
    HttpClient.make((request, url) => {
      const path = /^\/(common|organizations|consumers)\/v2\.0\/\.well-known\/openid-configuration$/.test(url.pathname)
        ? new URL(idp.discoveryUrl)
        : url
      return path.origin !== new URL(AUTHORITY).origin
        ? Effect.fail(new HttpClientError.RequestError({ request, reason: "Transport", description: "unknown host" }))
        : Effect.map(idp.handle({ method: request.method, url: path }), (reply) =>
          HttpClientResponse.fromWeb(
            request,
            new Response(reply.body, { status: reply.status, headers: reply.headers })
          ))
    }))
).pipe(Layer.provideMerge(FakeIdp.layer({ issuer: issuerOf("{tenantid}"), audience: AUDIENCE })))

describe("EntraId", () => {
  describe("single tenant", () => {
    const Idp = FakeIdp.layerTest({ issuer: issuerOf(TENANT), audience: AUDIENCE })

    it.scoped("validates a user token and builds the principal", () =>
      Effect.gen(function*() {
        const idp = yield* FakeIdp.FakeIdp
        const validator = yield* EntraId.make({ tenantId: TENANT, audience: AUDIENCE, cache: onDemand })
        const principal = yield* validator.validate(yield* idp.sign(userClaims(TENANT)))
        expect(principal.id).toBe("Qm9iJ3Mgc3ViamVjdCBpZGVudGlmaWVy")
        expect(principal.name).toBe("alice@contoso.example")
        expect(principal.groups).toEqual(["a0a0a0a0-0000-4000-8000-000000000001"])
        expect(principal.scopes).toEqual(["Orders.Read", "Orders.Write"])
        expect(principal.tokenType).toBe("access")
        expect(principal.clientId).toBe(WEB_CLIENT_ID)
        expect(principal.isMachine).toBe(false)
        expect(principal.issuer).toBe(issuerOf(TENANT))
        expect(yield* idp.discoveryCount).toBe(1)
        expect(validator.acceptsIssuer(issuerOf(TENANT))).toBe(true)
        expect(validator.acceptsIssuer(issuerOf(OTHER_TENANT))).toBe(false)
        // name falls back on `name` without preferred_username
        const noUpn = yield* idp.sign({ ...userClaims(TENANT), preferred_username: undefined })
        expect((yield* validator.validate(noUpn)).name).toBe("Alice Example")
      }).pipe(Effect.provide(Idp)))

    it.scoped("an app-only token is a machine principal; roles as groups on request", () =>
      Effect.gen(function*() {
        const idp = yield* FakeIdp.FakeIdp
        const byGroups = yield* EntraId.make({ tenantId: TENANT, audience: AUDIENCE, cache: onDemand })
        const token = yield* idp.sign(appClaims(TENANT))
        const principal = yield* byGroups.validate(token)
        expect(principal.isMachine).toBe(true)
        expect(principal.clientId).toBe(WEB_CLIENT_ID)
        expect(principal.groups).toEqual([])
        const byRoles = yield* EntraId.make({
          tenantId: TENANT,
          audience: API_CLIENT_ID,
          principal: { groups: "roles" },
          cache: onDemand
        })
        expect((yield* byRoles.validate(token)).groups).toEqual(["Orders.ReadAll"])
        // Without the optional idtyp claim (what Entra issues unless the app registration adds it): an access token
        // all the same, and a machine's.
        const accessOnly = yield* EntraId.make({
          tenantId: TENANT,
          audience: API_CLIENT_ID,
          tokenTypes: ["access"],
          cache: onDemand
        })
        const plain = yield* accessOnly.validate(yield* idp.sign({ ...appClaims(TENANT), idtyp: undefined }))
        expect({ tokenType: plain.tokenType, isMachine: plain.isMachine }).toEqual({
          tokenType: "access",
          isMachine: true
        })
      }).pipe(Effect.provide(Idp)))

    it.scoped("an id token of the API's own registration passes by default, and not with tokenTypes: [access]", () =>
      Effect.gen(function*() {
        const idp = yield* FakeIdp.FakeIdp
        // The API's registration also signs users in: its id tokens carry the API's client id as aud.
        const { azp: _azp, azpacr: _azpacr, groups: _groups, roles: _roles, scp: _scp, ...user } = userClaims(TENANT)
        const idToken = yield* idp.sign({ ...user, aud: API_CLIENT_ID, nonce: "c3f1a9e2" })
        const lenient = yield* EntraId.make({ tenantId: TENANT, audience: API_CLIENT_ID, cache: onDemand })
        expect((yield* lenient.validate(idToken)).tokenType).toBe("id")
        const strict = yield* EntraId.make({
          tenantId: TENANT,
          audience: API_CLIENT_ID,
          tokenTypes: ["access"],
          cache: onDemand
        })
        expect(yield* refusal(strict.validate(idToken))).toBe("TokenValidationError:TokenType")
        expect((yield* strict.validate(yield* idp.sign(userClaims(TENANT)))).tokenType).toBe("access")
      }).pipe(Effect.provide(Idp)))

    it.scoped("refuses another tenant, a tid that does not match, v1 tokens and other audiences", () =>
      Effect.gen(function*() {
        const idp = yield* FakeIdp.FakeIdp
        const validator = yield* EntraId.make({ tenantId: TENANT.toUpperCase(), audience: AUDIENCE, cache: onDemand })
        const sign = (claims: Record<string, unknown>) => idp.sign({ ...userClaims(TENANT), ...claims })
        const check = (claims: Record<string, unknown>) =>
          Effect.flatMap(sign(claims), (t) => refusal(validator.validate(t)))
        expect((yield* validator.validate(yield* sign({}))).id).toBe("Qm9iJ3Mgc3ViamVjdCBpZGVudGlmaWVy")
        expect(yield* check(userClaims(OTHER_TENANT))).toBe("TokenValidationError:IssuerMismatch")
        expect(yield* check({ tid: OTHER_TENANT })).toBe("TokenValidationError:IssuerMismatch")
        expect(yield* check({ tid: undefined })).toBe("TokenValidationError:IssuerMismatch")
        expect(yield* check({ iss: `https://sts.windows.net/${TENANT}/`, ver: "1.0" })).toBe(
          "TokenValidationError:IssuerMismatch"
        )
        expect(yield* check({ aud: "api://billing" })).toBe("TokenValidationError:AudienceMismatch")
      }).pipe(Effect.provide(Idp)))

    it.scoped("authority points at another cloud (or a fake)", () =>
      Effect.gen(function*() {
        const idp = yield* FakeIdp.FakeIdp
        const validator = yield* EntraId.make({
          tenantId: TENANT,
          audience: AUDIENCE,
          authority: "https://login.microsoftonline.us/",
          cache: onDemand
        })
        const token = yield* idp.sign({ ...userClaims(TENANT), iss: idp.issuer })
        expect((yield* validator.validate(token)).issuer).toBe(`https://login.microsoftonline.us/${TENANT}/v2.0`)
      }).pipe(
        Effect.provide(FakeIdp.layerTest({ issuer: `https://login.microsoftonline.us/${TENANT}/v2.0` }))
      ))
  })

  describe("multi-tenant", () => {
    it.scoped("common accepts any tenant whose iss matches its tid", () =>
      Effect.gen(function*() {
        const idp = yield* FakeIdp.FakeIdp
        const validator = yield* EntraId.make({ tenantId: "common", audience: AUDIENCE, cache: onDemand })
        for (const tid of [TENANT, OTHER_TENANT, EntraId.consumersTenantId]) {
          const principal = yield* validator.validate(yield* idp.sign(userClaims(tid)))
          expect(principal.issuer).toBe(issuerOf(tid))
        }
        expect(yield* idp.discoveryCount).toBe(1)
        expect(validator.acceptsIssuer(issuerOf(THIRD_TENANT))).toBe(true)
        expect(validator.acceptsIssuer(issuerOf("contoso.example"))).toBe(false)
        expect(validator.acceptsIssuer(issuerOf("{tenantid}"))).toBe(false)
        expect(validator.acceptsIssuer(`https://sts.windows.net/${TENANT}/`)).toBe(false)
      }).pipe(Effect.provide(TemplateIdp)))

    it.scoped("refuses a tid outside allowedTenants, an iss of another tenant than tid, a tid that is no GUID", () =>
      Effect.gen(function*() {
        const idp = yield* FakeIdp.FakeIdp
        const validator = yield* EntraId.make({
          tenantId: "organizations",
          audience: AUDIENCE,
          allowedTenants: [TENANT, OTHER_TENANT.toUpperCase()],
          cache: onDemand
        })
        const check = (claims: Record<string, unknown>) =>
          Effect.flatMap(idp.sign(claims), (token) => refusal(validator.validate(token)))
        expect((yield* validator.validate(yield* idp.sign(userClaims(TENANT)))).id).toBeDefined()
        expect((yield* validator.validate(yield* idp.sign(userClaims(OTHER_TENANT)))).id).toBeDefined()
        expect(yield* check(userClaims(THIRD_TENANT))).toBe("TokenValidationError:IssuerMismatch")
        // iss names an allowed tenant, tid another one (and the other way round)
        expect(yield* check({ ...userClaims(TENANT), tid: THIRD_TENANT })).toBe("TokenValidationError:IssuerMismatch")
        expect(yield* check({ ...userClaims(THIRD_TENANT), tid: TENANT })).toBe("TokenValidationError:IssuerMismatch")
        expect(yield* check({ ...userClaims(TENANT), tid: undefined })).toBe("TokenValidationError:IssuerMismatch")
        expect(yield* check({ ...userClaims(TENANT), iss: issuerOf("contoso"), tid: "contoso" })).toBe(
          "TokenValidationError:IssuerMismatch"
        )
        // the template itself is no issuer
        expect(yield* check({ ...userClaims(TENANT), iss: issuerOf("{tenantid}") })).toBe(
          "TokenValidationError:IssuerMismatch"
        )
        expect(validator.acceptsIssuer(issuerOf(OTHER_TENANT))).toBe(true)
        expect(validator.acceptsIssuer(issuerOf(THIRD_TENANT))).toBe(false)
      }).pipe(Effect.provide(TemplateIdp)))

    it.scoped("acceptsIssuer takes the tenant's v2.0 issuer only, not another path after the tenant", () =>
      Effect.gen(function*() {
        const validator = yield* EntraId.make({ tenantId: "common", audience: AUDIENCE, cache: onDemand })
        expect(validator.acceptsIssuer(issuerOf(TENANT))).toBe(true)
        for (
          const iss of [`${AUTHORITY}/${TENANT}/v3.0`, `${AUTHORITY}/${TENANT}/oauth2`, `${AUTHORITY}/${TENANT}/v1.0`]
        ) {
          expect(validator.acceptsIssuer(iss), iss).toBe(false)
        }
      }).pipe(Effect.provide(TemplateIdp)))

    it.scoped("an IssuerMismatch says whether any tenant or only an allowed tenant was expected", () =>
      Effect.gen(function*() {
        const idp = yield* FakeIdp.FakeIdp
        const anyTenant = yield* EntraId.make({ tenantId: "common", audience: AUDIENCE, cache: onDemand })
        const someTenants = yield* EntraId.make({
          tenantId: "common",
          audience: AUDIENCE,
          allowedTenants: [TENANT],
          cache: onDemand
        })
        // iss of one tenant, tid of another: refused by both.
        const mismatched = yield* idp.sign({ ...userClaims(TENANT), tid: OTHER_TENANT })
        expect((yield* Effect.flip(anyTenant.validate(mismatched))).description).toBe(
          `the token's issuer is not ${issuerOf("{tenantid}")} for a tenant`
        )
        expect((yield* Effect.flip(someTenants.validate(mismatched))).description).toBe(
          `the token's issuer is not ${issuerOf("{tenantid}")} for an allowed tenant`
        )
      }).pipe(Effect.provide(TemplateIdp)))

    it.scoped("organizations refuses personal Microsoft accounts", () =>
      Effect.gen(function*() {
        const idp = yield* FakeIdp.FakeIdp
        const organizations = yield* EntraId.make({ tenantId: "organizations", audience: AUDIENCE, cache: onDemand })
        const personal = yield* idp.sign(userClaims(EntraId.consumersTenantId))
        const work = yield* idp.sign(userClaims(TENANT))
        expect(yield* refusal(organizations.validate(personal))).toBe("TokenValidationError:IssuerMismatch")
        expect((yield* organizations.validate(work)).issuer).toBe(issuerOf(TENANT))
      }).pipe(Effect.provide(TemplateIdp)))

    it.scoped("consumers is the personal accounts tenant", () =>
      Effect.gen(function*() {
        const idp = yield* FakeIdp.FakeIdp
        const consumers = yield* EntraId.make({ tenantId: "consumers", audience: AUDIENCE, cache: onDemand })
        const personal = yield* idp.sign(userClaims(EntraId.consumersTenantId))
        expect((yield* consumers.validate(personal)).issuer).toBe(issuerOf(EntraId.consumersTenantId))
        expect(yield* refusal(consumers.validate(yield* idp.sign(userClaims(TENANT))))).toBe(
          "TokenValidationError:IssuerMismatch"
        )
      }).pipe(
        Effect.provide(
          Layer.effect(
            HttpClient.HttpClient,
            Effect.map(FakeIdp.FakeIdp, (idp) =>
              HttpClient.make((request, url) =>
                Effect.map(
                  idp.handle({
                    method: request.method,
                    url: url.pathname.startsWith("/consumers/") ? new URL(idp.discoveryUrl) : url
                  }),
                  (reply) =>
                    HttpClientResponse.fromWeb(
                      request,
                      new Response(reply.body, { status: reply.status, headers: reply.headers })
                    )
                )
              ))
          ).pipe(Layer.provideMerge(FakeIdp.layer({ issuer: issuerOf(EntraId.consumersTenantId) })))
        )
      ))

    it.scoped("fails with IssuerMismatch when the common discovery document is not the template", () =>
      Effect.gen(function*() {
        const idp = yield* FakeIdp.FakeIdp
        const validator = yield* EntraId.make({ tenantId: "common", audience: AUDIENCE, cache: onDemand })
        expect(yield* refusal(validator.validate(yield* idp.sign(userClaims(TENANT))))).toBe("JwksError:IssuerMismatch")
      }).pipe(Effect.provide(FakeIdp.layerTest({ issuer: issuerOf("common") }))))
  })

  it.scoped("refuses bad options with a ConfigError", () =>
    Effect.gen(function*() {
      const path = (options: EntraId.Options) =>
        Effect.map(Effect.flip(EntraId.make(options)), (error) => error._op === "InvalidData" ? error.path : error._op)
      expect(yield* path({ tenantId: "contoso.onmicrosoft.com", audience: AUDIENCE })).toEqual(["tenantId"])
      expect(yield* path({ tenantId: TENANT, audience: AUDIENCE, allowedTenants: [TENANT] })).toEqual([
        "allowedTenants"
      ])
      expect(yield* path({ tenantId: "common", audience: AUDIENCE, allowedTenants: [] })).toEqual(["allowedTenants"])
      expect(yield* path({ tenantId: "common", audience: AUDIENCE, allowedTenants: ["contoso"] })).toEqual([
        "allowedTenants"
      ])
      expect(yield* path({ tenantId: TENANT, audience: [] })).toEqual(["audience"])
      expect(yield* path({ tenantId: TENANT, audience: AUDIENCE, authority: "login.example" })).toEqual(["authority"])
      expect(yield* path({ tenantId: TENANT, audience: AUDIENCE, cache: { maxStale: "-5 minutes" } })).toEqual([
        "cache",
        "maxStale"
      ])
      // organizations refuses personal accounts: an allow-list naming their tenant contradicts it.
      expect(
        yield* path({
          tenantId: "organizations",
          audience: AUDIENCE,
          allowedTenants: [TENANT, EntraId.consumersTenantId]
        })
      ).toEqual(["allowedTenants"])
      // Values of the wrong type (from JavaScript, or parsed JSON) are refused, not crashed on.
      const untyped = (options: Record<string, unknown>) => path({ audience: AUDIENCE, ...options } as EntraId.Options)
      expect(yield* untyped({ tenantId: "common", allowedTenants: [42] })).toEqual(["allowedTenants"])
      expect(yield* untyped({ tenantId: "common", allowedTenants: [undefined] })).toEqual(["allowedTenants"])
      expect(yield* untyped({ tenantId: "common", allowedTenants: TENANT })).toEqual(["allowedTenants"])
      expect(yield* untyped({ tenantId: "common", allowedTenants: null })).toEqual(["allowedTenants"])
      expect(yield* untyped({ tenantId: TENANT, authority: 42 })).toEqual(["authority"])
      expect(yield* untyped({ tenantId: TENANT, authority: "https://login.example.test\n" })).toEqual(["authority"])
      // C1 controls and invisible characters; a query, a fragment, a user name; a path: MSAL's authority names the
      // tenant, which given here would be in the discovery URL twice (every validation then a 503).
      for (
        const authority of [
          "https://login.microsoftonline.com/\u0085",
          "https://login.microsoftonline.com\u200b",
          "https://login.microsoftonline.com\ufe0f",
          "https://login.microsoftonline.com?x=1",
          "https://login.microsoftonline.com#x",
          "https://user@login.microsoftonline.com",
          "https://@login.microsoftonline.com",
          `https://login.microsoftonline.com/${TENANT}`,
          "https://login.microsoftonline.com/organizations/v2.0"
        ]
      ) expect(yield* untyped({ tenantId: TENANT, authority })).toEqual(["authority"])
      expect(Either.isLeft(EntraId.tenancy({ tenantId: "common", authority: "https://login.example.test\n" }))).toBe(
        true
      )
      expect(yield* untyped({ tenantId: TENANT, cache: null })).toEqual(["cache"])
      // Read by EntraId itself: refused as the validator refuses it, not replaced by the defaults (groups, not roles).
      expect(yield* untyped({ tenantId: TENANT, principal: null })).toEqual(["principal"])
      expect(yield* untyped({ tenantId: TENANT, principal: "roles" })).toEqual(["principal"])
      expect(yield* untyped({ tenantId: TENANT, principal: { groups: null } })).toEqual(["principal"])
      expect(yield* untyped({ tenantId: TENANT, algorithms: ["HS256", "HS512"] })).toEqual(["algorithms"])
      expect(yield* path({ tenantId: TENANT, audience: AUDIENCE, http: { maxBytes: Number.NaN } })).toEqual([
        "http",
        "maxBytes"
      ])
    }).pipe(Effect.provide(FakeIdp.layerTest())))

  describe("the issuer each key signs for", () => {
    // Entra's shared key set labels each key with its issuer: most with the {tenantid} template, the personal
    // accounts tenant's with that tenant's own issuer. A work tenant's token signed with a personal accounts key
    // (Storm-0558, 2023) must be refused, whatever tenants the app accepts.
    const JWKS_URI = `${AUTHORITY}/common/discovery/v2.0/keys`
    const keys = Effect.promise(async () => {
      const work = await generateKeyPair("RS256", { extractable: true })
      const personal = await generateKeyPair("RS256", { extractable: true })
      const jwks = {
        keys: [
          { ...(await exportJWK(work.publicKey)), kid: "work", use: "sig", issuer: issuerOf("{tenantid}") },
          {
            ...(await exportJWK(personal.publicKey)),
            kid: "msa",
            use: "sig",
            issuer: issuerOf(EntraId.consumersTenantId)
          }
        ]
      }
      return { work: work.privateKey, personal: personal.privateKey, jwks }
    })
    const serving = (jwks: unknown) =>
      Layer.succeed(
        HttpClient.HttpClient,
        HttpClient.make((request, url) => {
          const body = url.pathname.endsWith("/v2.0/.well-known/openid-configuration")
            ? { issuer: issuerOf("{tenantid}"), jwks_uri: JWKS_URI }
            : url.href === JWKS_URI
            ? jwks
            : undefined
          return body === undefined
            ? Effect.fail(new HttpClientError.RequestError({ request, reason: "Transport", description: "unknown" }))
            : Effect.succeed(HttpClientResponse.fromWeb(request, Response.json(body)))
        })
      )
    const sign = (key: CryptoKey, kid: string, tid: string) =>
      Effect.promise(() =>
        new SignJWT({ ...userClaims(tid), exp: 3600 }).setProtectedHeader({ alg: "RS256", kid }).sign(key)
      )

    it.scoped("a work tenant's token signed with the personal accounts tenant's key is refused", () =>
      Effect.gen(function*() {
        const { jwks, personal, work } = yield* keys
        const reasons: Record<string, ReadonlyArray<string>> = {}
        for (
          const options of [
            { tenantId: "organizations" },
            { tenantId: "common", allowedTenants: [TENANT] },
            { tenantId: "common" }
          ]
        ) {
          const validator = yield* EntraId.make({ ...options, audience: AUDIENCE, cache: onDemand }).pipe(
            Effect.provide(serving(jwks))
          )
          const outcome = (token: string) =>
            Effect.match(validator.validate(token), { onFailure: (e) => e.reason, onSuccess: () => "accepted" })
          reasons[`${options.tenantId}${options.allowedTenants === undefined ? "" : " (allowed)"}`] = [
            yield* outcome(yield* sign(work, "work", TENANT)),
            yield* outcome(yield* sign(personal, "msa", TENANT)),
            yield* outcome(yield* sign(personal, "msa", EntraId.consumersTenantId))
          ]
        }
        expect(reasons).toEqual({
          organizations: ["accepted", "IssuerMismatch", "IssuerMismatch"],
          "common (allowed)": ["accepted", "IssuerMismatch", "IssuerMismatch"],
          // Personal accounts are common's: their key signs their tokens.
          common: ["accepted", "IssuerMismatch", "accepted"]
        })
      }))
  })

  describe("layerConfig", () => {
    it.effect("reads ENTRA_* from the environment", () =>
      Effect.gen(function*() {
        const idp = yield* FakeIdp.FakeIdp
        const live = EntraId.layerConfig().pipe(
          Layer.provide(env({
            ENTRA_TENANT_ID: "common",
            ENTRA_AUDIENCE: `${API_CLIENT_ID},${AUDIENCE}`,
            ENTRA_ALLOWED_TENANTS: `${TENANT}, ${OTHER_TENANT}`,
            JWKS_CACHE_BACKGROUND_REFRESH: "false"
          }))
        )
        const allowed = yield* idp.sign(userClaims(OTHER_TENANT))
        const other = yield* idp.sign(userClaims(THIRD_TENANT))
        yield* Effect.gen(function*() {
          expect((yield* TokenValidator.validate(allowed)).issuer).toBe(issuerOf(OTHER_TENANT))
          expect(yield* refusal(TokenValidator.validate(other))).toBe("TokenValidationError:IssuerMismatch")
        }).pipe(Effect.provide(live))
      }).pipe(Effect.provide(TemplateIdp)))

    it.effect("fails with a ConfigError when a required variable is missing or bad", () =>
      Effect.gen(function*() {
        const build = (vars: Record<string, string>) =>
          Effect.flip(
            Effect.provide(TokenValidator.TokenValidator, EntraId.layerConfig().pipe(Layer.provide(env(vars))))
          )
        const noTenant = yield* build({ ENTRA_AUDIENCE: AUDIENCE })
        expect(ConfigError.isConfigError(noTenant) && ConfigError.isMissingDataOnly(noTenant)).toBe(true)
        const noAudience = yield* build({ ENTRA_TENANT_ID: TENANT })
        expect(ConfigError.isConfigError(noAudience) && ConfigError.isMissingDataOnly(noAudience)).toBe(true)
        const badTenants = yield* build({
          ENTRA_TENANT_ID: "common",
          ENTRA_AUDIENCE: AUDIENCE,
          ENTRA_ALLOWED_TENANTS: "x"
        })
        // Named by the variable to fix (it was named as the option in code).
        expect(badTenants._op === "InvalidData" && badTenants.path).toEqual(["ENTRA_ALLOWED_TENANTS"])
        const badTenant = yield* build({ ENTRA_TENANT_ID: "my-tenant", ENTRA_AUDIENCE: AUDIENCE })
        expect(badTenant._op === "InvalidData" && badTenant.path).toEqual(["ENTRA_TENANT_ID"])
        const badAuthority = yield* build({
          ENTRA_TENANT_ID: TENANT,
          ENTRA_AUDIENCE: AUDIENCE,
          ENTRA_AUTHORITY: "login.example"
        })
        expect(badAuthority._op === "InvalidData" && badAuthority.path).toEqual(["ENTRA_AUTHORITY"])
      }).pipe(Effect.provide(FakeIdp.layerTest())))
  })
})
