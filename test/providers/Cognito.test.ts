import { describe, expect, it } from "@effect/vitest"
import * as ConfigError from "effect/ConfigError"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Cognito from "../../src/providers/Cognito.js"
import * as FakeIdp from "../../src/testing/FakeIdp.js"
import * as TokenValidator from "../../src/TokenValidator.js"

const POOL = "eu-west-1_AbCdEf123"
const ISSUER = `https://cognito-idp.eu-west-1.amazonaws.com/${POOL}`
const CLIENT = "3n4b5urk1ft4fl3mg5e62d9ado"
const OTHER_CLIENT = "7e1ke1e8i9snmfq1bs43ab4ab9"
const Idp = FakeIdp.layerTest({ issuer: ISSUER, audience: CLIENT })
const onDemand = { backgroundRefresh: false } as const

/** What Cognito puts in an access token: no `aud`, the app client in `client_id`. */
const accessClaims = {
  aud: undefined,
  sub: "a1b2c3d4-0000-4000-8000-000000000001",
  token_use: "access",
  client_id: CLIENT,
  scope: "aws.cognito.signin.user.admin orders/read",
  username: "alice",
  "cognito:groups": ["admins", "staff"],
  auth_time: 0,
  origin_jti: "5f0e1d2c-0000-4000-8000-00000000000a",
  event_id: "6a7b8c9d-0000-4000-8000-00000000000b",
  jti: "0c1d2e3f-0000-4000-8000-00000000000c"
}

/** What Cognito puts in an id token: the app client in `aud`, no `client_id`. */
const idClaims = {
  aud: CLIENT,
  sub: "a1b2c3d4-0000-4000-8000-000000000001",
  token_use: "id",
  "cognito:username": "alice",
  "cognito:groups": ["admins"],
  email: "alice@example.test",
  email_verified: true,
  auth_time: 0,
  at_hash: "x4Qv0e1gYqYH7k1wC0mI0g",
  origin_jti: "5f0e1d2c-0000-4000-8000-00000000000a",
  event_id: "6a7b8c9d-0000-4000-8000-00000000000b",
  jti: "1d2e3f40-0000-4000-8000-00000000000d"
}

const refusal = <A, E extends { readonly _tag: string; readonly reason: string }, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.map(Effect.flip(effect), (error) => `${error._tag}:${error.reason}`)

const env = (vars: Record<string, string>) =>
  Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(vars)), { pathDelim: "_" }))

describe("Cognito", () => {
  it.scoped("validates an access token and builds the principal", () =>
    Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      const validator = yield* Cognito.make({ userPoolId: POOL, clientId: CLIENT, tokenUse: "access", cache: onDemand })
      const principal = yield* validator.validate(yield* idp.sign(accessClaims))
      expect(principal.id).toBe(accessClaims.sub)
      expect(principal.name).toBe("alice")
      expect(principal.groups).toEqual(["admins", "staff"])
      expect(principal.scopes).toEqual(["aws.cognito.signin.user.admin", "orders/read"])
      expect(principal.tokenType).toBe("access")
      expect(principal.clientId).toBe(CLIENT)
      expect(principal.isMachine).toBe(false)
      expect(principal.issuer).toBe(ISSUER)
      expect(validator.acceptsIssuer(ISSUER)).toBe(true)
      // The pool's key set, no discovery.
      expect(yield* idp.fetchCount).toBe(1)
      expect(yield* idp.discoveryCount).toBe(0)
    }).pipe(Effect.provide(Idp)))

  it.scoped("validates an id token and builds the principal", () =>
    Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      const validator = yield* Cognito.make({ userPoolId: POOL, clientId: CLIENT, tokenUse: "id", cache: onDemand })
      const principal = yield* validator.validate(yield* idp.sign(idClaims))
      expect(principal.name).toBe("alice")
      expect(principal.email).toBe("alice@example.test")
      expect(principal.groups).toEqual(["admins"])
      expect(principal.tokenType).toBe("id")
      expect(principal.isMachine).toBe(false)
    }).pipe(Effect.provide(Idp)))

  it.scoped("a client-credentials access token is a machine principal", () =>
    Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      const validator = yield* Cognito.make({ userPoolId: POOL, clientId: CLIENT, tokenUse: "access", cache: onDemand })
      const token = yield* idp.sign({
        aud: undefined,
        sub: CLIENT,
        token_use: "access",
        client_id: CLIENT,
        scope: "orders/read"
      })
      const principal = yield* validator.validate(token)
      expect(principal.isMachine).toBe(true)
      expect(principal.id).toBe(CLIENT)
      expect(principal.name).toBeUndefined()
    }).pipe(Effect.provide(Idp)))

  it.scoped("refuses the wrong token_use", () =>
    Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      const access = yield* Cognito.make({ userPoolId: POOL, clientId: CLIENT, tokenUse: "access", cache: onDemand })
      const id = yield* Cognito.make({ userPoolId: POOL, clientId: CLIENT, tokenUse: "id", cache: onDemand })
      const either = yield* Cognito.make({ userPoolId: POOL, clientId: CLIENT, tokenUse: null, cache: onDemand })
      const accessToken = yield* idp.sign(accessClaims)
      const idToken = yield* idp.sign(idClaims)
      expect(yield* refusal(access.validate(idToken))).toBe("TokenValidationError:TokenType")
      expect(yield* refusal(id.validate(accessToken))).toBe("TokenValidationError:TokenType")
      expect((yield* either.validate(accessToken)).tokenType).toBe("access")
      expect((yield* either.validate(idToken)).tokenType).toBe("id")
      // Not a Cognito token at all: no token_use.
      const bare = yield* idp.sign({ ...accessClaims, token_use: undefined })
      expect(yield* refusal(either.validate(bare))).toBe("TokenValidationError:TokenType")
      const refresh = yield* idp.sign({ ...accessClaims, token_use: "refresh" })
      expect(yield* refusal(either.validate(refresh))).toBe("TokenValidationError:TokenType")
    }).pipe(Effect.provide(Idp)))

  it.scoped("checks the app client on client_id for access tokens, never on aud", () =>
    Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      const validator = yield* Cognito.make({ userPoolId: POOL, clientId: CLIENT, tokenUse: "access", cache: onDemand })
      const wrongClient = yield* idp.sign({ ...accessClaims, client_id: OTHER_CLIENT })
      expect(yield* refusal(validator.validate(wrongClient))).toBe("TokenValidationError:AudienceMismatch")
      // A matching aud does not stand in for the client_id.
      const audOnly = yield* idp.sign({ ...accessClaims, client_id: OTHER_CLIENT, aud: CLIENT })
      expect(yield* refusal(validator.validate(audOnly))).toBe("TokenValidationError:AudienceMismatch")
      const noClient = yield* idp.sign({ ...accessClaims, client_id: undefined })
      expect(yield* refusal(validator.validate(noClient))).toBe("TokenValidationError:AudienceMismatch")
    }).pipe(Effect.provide(Idp)))

  it.scoped("an access token bound to a resource server (aud, RFC 8707) is accepted by that resource's API only", () =>
    Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      const orders = "https://orders.example.com"
      const boundTo = (aud: unknown) => idp.sign({ ...accessClaims, aud })
      // Without `resource`: a bound token may be meant for any API, so none is accepted; unbound ones as before.
      const plain = yield* Cognito.make({ userPoolId: POOL, clientId: CLIENT, tokenUse: "access", cache: onDemand })
      expect((yield* plain.validate(yield* idp.sign(accessClaims))).name).toBe("alice")
      expect(yield* refusal(plain.validate(yield* boundTo(orders)))).toBe("TokenValidationError:AudienceMismatch")
      const api = yield* Cognito.make({
        userPoolId: POOL,
        clientId: CLIENT,
        tokenUse: "access",
        resource: [orders],
        cache: onDemand
      })
      expect((yield* api.validate(yield* boundTo(orders))).name).toBe("alice")
      expect((yield* api.validate(yield* boundTo(["https://other.example.com", orders]))).name).toBe("alice")
      expect((yield* api.validate(yield* idp.sign(accessClaims))).name).toBe("alice")
      for (const aud of ["https://payments.example.com", []]) {
        expect(yield* refusal(api.validate(yield* boundTo(aud)))).toBe("TokenValidationError:AudienceMismatch")
      }
      // The app client is still checked on client_id.
      const otherClient = yield* idp.sign({ ...accessClaims, aud: orders, client_id: OTHER_CLIENT })
      expect(yield* refusal(api.validate(otherClient))).toBe("TokenValidationError:AudienceMismatch")
    }).pipe(Effect.provide(Idp)))

  it.scoped("checks the app client on aud for id tokens, never on client_id", () =>
    Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      const validator = yield* Cognito.make({ userPoolId: POOL, clientId: CLIENT, tokenUse: "id", cache: onDemand })
      const wrongClient = yield* idp.sign({ ...idClaims, aud: OTHER_CLIENT })
      expect(yield* refusal(validator.validate(wrongClient))).toBe("TokenValidationError:AudienceMismatch")
      // Without aud, a matching client_id does not stand in for it (the validator's fallback is not used).
      const clientIdOnly = yield* idp.sign({ ...idClaims, aud: undefined, client_id: CLIENT })
      expect(yield* refusal(validator.validate(clientIdOnly))).toBe("TokenValidationError:AudienceMismatch")
    }).pipe(Effect.provide(Idp)))

  it.scoped("takes several app clients, or none with clientId: null", () =>
    Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      const several = yield* Cognito.make({
        userPoolId: POOL,
        clientId: [OTHER_CLIENT, CLIENT],
        tokenUse: null,
        cache: onDemand
      })
      expect((yield* several.validate(yield* idp.sign(accessClaims))).name).toBe("alice")
      expect((yield* several.validate(yield* idp.sign({ ...idClaims, aud: OTHER_CLIENT }))).name).toBe("alice")
      expect(yield* refusal(several.validate(yield* idp.sign({ ...accessClaims, client_id: "intruder" })))).toBe(
        "TokenValidationError:AudienceMismatch"
      )
      const any = yield* Cognito.make({ userPoolId: POOL, clientId: null, tokenUse: "access", cache: onDemand })
      expect((yield* any.validate(yield* idp.sign({ ...accessClaims, client_id: "intruder" }))).clientId).toBe(
        "intruder"
      )
    }).pipe(Effect.provide(Idp)))

  it.scoped("refuses a token of another pool", () =>
    Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      const validator = yield* Cognito.make({ userPoolId: POOL, clientId: CLIENT, tokenUse: "access", cache: onDemand })
      const otherPool = yield* idp.sign({
        ...accessClaims,
        iss: "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_ZzZzZz999"
      })
      expect(yield* refusal(validator.validate(otherPool))).toBe("TokenValidationError:IssuerMismatch")
    }).pipe(Effect.provide(Idp)))

  it.scoped("runs the check option after its own checks", () =>
    Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      const validator = yield* Cognito.make({
        userPoolId: POOL,
        clientId: CLIENT,
        tokenUse: "access",
        cache: onDemand,
        check: (claims, header) =>
          header.alg === "RS256" && claims.username === "alice" ? Effect.void : Effect.fail("not alice")
      })
      expect((yield* validator.validate(yield* idp.sign(accessClaims))).name).toBe("alice")
      expect(yield* refusal(validator.validate(yield* idp.sign({ ...accessClaims, username: "bob" })))).toBe(
        "TokenValidationError:CustomCheck"
      )
      // The Cognito refusal comes first.
      expect(yield* refusal(validator.validate(yield* idp.sign({ ...idClaims, username: "bob" })))).toBe(
        "TokenValidationError:TokenType"
      )
    }).pipe(Effect.provide(Idp)))

  it.scoped("endpoint points the pool at a local emulator", () =>
    Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      const validator = yield* Cognito.make({
        userPoolId: POOL,
        endpoint: "http://localhost:9229/",
        clientId: CLIENT,
        tokenUse: "access",
        cache: onDemand
      })
      expect((yield* validator.validate(yield* idp.sign(accessClaims))).issuer).toBe(`http://localhost:9229/${POOL}`)
    }).pipe(Effect.provide(FakeIdp.layerTest({ issuer: `http://localhost:9229/${POOL}` }))))

  it("derives the issuer and key set URL from the pool id", () => {
    expect(Cognito.endpoints({ userPoolId: POOL })).toEqual(Either.right({
      region: "eu-west-1",
      issuer: ISSUER,
      jwksUri: `${ISSUER}/.well-known/jwks.json`
    }))
    expect(Either.isRight(Cognito.endpoints({ userPoolId: "us-gov-west-1_Abc123XYZ" }))).toBe(true)
    expect(Either.isRight(Cognito.endpoints({ userPoolId: "ap-southeast-2_Abc123XYZ", region: "ap-southeast-2" })))
      .toBe(true)
  })

  it.scoped("refuses bad options with a ConfigError", () =>
    Effect.gen(function*() {
      const path = (options: Cognito.Options) =>
        Effect.map(Effect.flip(Cognito.make(options)), (error) => error._op === "InvalidData" ? error.path : error._op)
      const base = { userPoolId: POOL, clientId: CLIENT, tokenUse: "access" } as const
      expect(yield* path({ ...base, userPoolId: "AbCdEf123" })).toEqual(["userPoolId"])
      expect(yield* path({ ...base, userPoolId: "eu-west-1_" })).toEqual(["userPoolId"])
      expect(yield* path({ ...base, userPoolId: "eu-west-1_Ab/../x" })).toEqual(["userPoolId"])
      expect(yield* path({ ...base, region: "us-east-1" })).toEqual(["region"])
      expect(yield* path({ ...base, clientId: [] })).toEqual(["clientId"])
      expect(yield* path({ ...base, clientId: "" })).toEqual(["clientId"])
      expect(yield* path({ ...base, tokenUse: "refresh" as unknown as "id" })).toEqual(["tokenUse"])
      expect(yield* path({ ...base, endpoint: "localhost:9229" })).toEqual(["endpoint"])
      expect(yield* path({ ...base, algorithms: [] })).toEqual(["algorithms"])
      expect(yield* path({ ...base, endpoint: 42 } as unknown as Cognito.Options)).toEqual(["endpoint"])
      // `new URL` drops a stray newline (an env file's), but the issuer made from the endpoint would keep it.
      expect(yield* path({ ...base, endpoint: "https://cognito.example.test\n" })).toEqual(["endpoint"])
      // C1 controls and invisible characters (percent-encoded by `new URL`); a query, a fragment or a user name, which
      // the pool's path appended to the endpoint would land after (the keys then fetched from the endpoint's root).
      for (
        const endpoint of [
          "http://localhost:4566/\u009b",
          "http://localhost:4566\u200b",
          "http://localhost:4566\u180b",
          "http://localhost:4566#emulator",
          "http://localhost:4566?profile=dev",
          "http://user:secret@localhost:4566",
          // An empty user name: `URL.username` is "" for it, so only the text shows it.
          "http://@localhost:4566",
          "http://:@localhost:4566"
        ]
      ) expect(yield* path({ ...base, endpoint })).toEqual(["endpoint"])
      // A path is the endpoint's own (a proxy's prefix): the pool's is appended to it.
      const prefixed = Cognito.endpoints({ userPoolId: POOL, endpoint: "http://localhost:4566/cognito/" })
      expect(Either.getOrThrow(prefixed).jwksUri).toBe(`http://localhost:4566/cognito/${POOL}/.well-known/jwks.json`)
      // A region of a type a RegExp would read anyway (a symbol throws, an object is turned into a string).
      for (const region of [Symbol("eu-west-1"), Object.create(null), { toString: () => "eu-west-1" }]) {
        expect(yield* path({ ...base, region } as unknown as Cognito.Options)).toEqual(["region"])
      }
      // Wrapped by Cognito's own check: a `check` of the wrong type would otherwise die on every token.
      expect(yield* path({ ...base, check: null } as unknown as Cognito.Options)).toEqual(["check"])
      expect(yield* path({ ...base, cache: null } as unknown as Cognito.Options)).toEqual(["cache"])
      // Read by Cognito itself: of the wrong type, refused as the validator refuses it, not replaced by the defaults;
      // a client id list is not shortened to its strings.
      for (const principal of [null, "roles"]) {
        expect(yield* path({ ...base, principal } as unknown as Cognito.Options)).toEqual(["principal"])
      }
      for (const principal of [{ groups: 42 }, { groups: null }, { username: null }]) {
        expect(yield* path({ ...base, principal } as unknown as Cognito.Options)).toEqual(["principal"])
      }
      expect(yield* path({ ...base, clientId: ["web", 42] } as unknown as Cognito.Options)).toEqual(["clientId"])
      // No algorithm a key set can verify: every token would be refused.
      expect(yield* path({ ...base, algorithms: ["HS256"] })).toEqual(["algorithms"])
      expect(yield* path({ ...base, http: { timeout: "five seconds" as "5 seconds" } })).toEqual(["http", "timeout"])
      expect(yield* path({ ...base, http: { maxBytes: -1 } })).toEqual(["http", "maxBytes"])
      // The cache's options are named where the app wrote them, under `cache`, as those of `http` are.
      expect(yield* path({ ...base, cache: { interval: "0 seconds" } })).toEqual(["cache", "interval"])
      for (const resource of ["", [], ["https://orders.example.com", 42]]) {
        expect(yield* path({ ...base, resource } as unknown as Cognito.Options)).toEqual(["resource"])
      }
    }).pipe(Effect.provide(Idp)))

  describe("option checks and refusal messages", () => {
    it("a region that is no AWS region is refused as such, not as another pool's region", () => {
      const refused = Cognito.endpoints({ userPoolId: POOL, region: "eu-west" })
      expect(Either.isLeft(refused) && refused.left._op === "InvalidData" && refused.left.message).toBe(
        "expected an AWS region such as eu-west-1"
      )
    })

    it("a user pool id whose part after the region is over 52 characters is refused", () => {
      expect(Either.isRight(Cognito.endpoints({ userPoolId: `eu-west-1_${"A".repeat(52)}` }))).toBe(true)
      const refused = Cognito.endpoints({ userPoolId: `eu-west-1_${"A".repeat(53)}` })
      expect(Either.isLeft(refused) && refused.left._op === "InvalidData" && refused.left.path).toEqual(["userPoolId"])
    })

    it.scoped("a clientId left out (not null) is refused, not read as any client", () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(
          Cognito.make({ userPoolId: POOL, tokenUse: "access" } as unknown as Cognito.Options)
        )
        expect(error._op === "InvalidData" && error.path).toEqual(["clientId"])
      }).pipe(Effect.provide(Idp)))

    it.scoped("a cache duration of up to a century is taken, a longer one refused under cache", () =>
      Effect.gen(function*() {
        const base = { userPoolId: POOL, clientId: CLIENT, tokenUse: "access" } as const
        // 5000 weeks is about 96 years; 5300 weeks about 102.
        yield* Cognito.make({ ...base, cache: { ...onDemand, maxStale: "5000 weeks" } })
        const error = yield* Effect.flip(Cognito.make({ ...base, cache: { ...onDemand, maxStale: "5300 weeks" } }))
        expect(error._op === "InvalidData" && error.path).toEqual(["cache", "maxStale"])
      }).pipe(Effect.provide(Idp)))

    it.scoped("a principal option that names one claim keeps Cognito's default for the other", () =>
      Effect.gen(function*() {
        const idp = yield* FakeIdp.FakeIdp
        const base = { userPoolId: POOL, clientId: CLIENT, tokenUse: "id", cache: onDemand } as const
        const token = yield* idp.sign({ ...idClaims, "custom:teams": ["blue"] })
        const byTeams = yield* Cognito.make({ ...base, principal: { groups: "custom:teams" } })
        const teams = yield* byTeams.validate(token)
        expect([teams.name, teams.groups]).toEqual(["alice", ["blue"]])
        const byEmail = yield* Cognito.make({ ...base, principal: { username: ["email"] } })
        const email = yield* byEmail.validate(token)
        expect([email.name, email.groups]).toEqual(["alice@example.test", ["admins"]])
      }).pipe(Effect.provide(Idp)))

    it.scoped("cache: null is refused as not the cache's options", () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(
          Cognito.make(
            { userPoolId: POOL, clientId: CLIENT, tokenUse: "id", cache: null } as unknown as Cognito.Options
          )
        )
        expect(error._op === "InvalidData" && [error.path, error.message]).toEqual([
          ["cache"],
          "expected the cache's options (JwksCache.Options)"
        ])
      }).pipe(Effect.provide(Idp)))

    it.scoped("a bound access token is refused with why: no resource configured, or another resource server", () =>
      Effect.gen(function*() {
        const idp = yield* FakeIdp.FakeIdp
        const bound = yield* idp.sign({ ...accessClaims, aud: "https://payments.example.com" })
        const plain = yield* Cognito.make({ userPoolId: POOL, clientId: CLIENT, tokenUse: "access", cache: onDemand })
        const api = yield* Cognito.make({
          userPoolId: POOL,
          clientId: CLIENT,
          tokenUse: "access",
          resource: "https://orders.example.com",
          cache: onDemand
        })
        expect((yield* Effect.flip(plain.validate(bound))).description).toBe(
          "the access token is bound to a resource server (aud), and no resource is configured"
        )
        expect((yield* Effect.flip(api.validate(bound))).description).toBe(
          "the access token is bound to another resource server"
        )
      }).pipe(Effect.provide(Idp)))
  })

  describe("layerConfig", () => {
    it.effect("reads COGNITO_* and JWKS_CACHE_* from the environment", () =>
      Effect.gen(function*() {
        const idp = yield* FakeIdp.FakeIdp
        const live = Cognito.layerConfig().pipe(
          Layer.provide(env({
            COGNITO_USER_POOL_ID: POOL,
            COGNITO_REGION: "eu-west-1",
            COGNITO_CLIENT_ID: `${OTHER_CLIENT},${CLIENT}`,
            COGNITO_TOKEN_USE: "access",
            COGNITO_RESOURCE: "https://orders.example.com, https://reports.example.com",
            JWKS_CACHE_BACKGROUND_REFRESH: "false"
          }))
        )
        const accessToken = yield* idp.sign(accessClaims)
        const idToken = yield* idp.sign(idClaims)
        yield* Effect.gen(function*() {
          expect((yield* TokenValidator.validate(accessToken)).name).toBe("alice")
          const bound = yield* idp.sign({ ...accessClaims, aud: "https://reports.example.com" })
          expect((yield* TokenValidator.validate(bound)).name).toBe("alice")
          expect(yield* refusal(TokenValidator.validate(idToken))).toBe("TokenValidationError:TokenType")
        }).pipe(Effect.provide(live))
        const anyUse = Cognito.layerConfig().pipe(
          Layer.provide(env({ COGNITO_USER_POOL_ID: POOL, COGNITO_CLIENT_ID: CLIENT, COGNITO_TOKEN_USE: "any" }))
        )
        expect((yield* TokenValidator.validate(idToken).pipe(Effect.provide(anyUse))).tokenType).toBe("id")
      }).pipe(Effect.provide(Idp)))

    it.effect("fails with a ConfigError when a required variable is missing or bad", () =>
      Effect.gen(function*() {
        const build = (vars: Record<string, string>) =>
          Effect.flip(
            Effect.provide(TokenValidator.TokenValidator, Cognito.layerConfig().pipe(Layer.provide(env(vars))))
          )
        const all = { COGNITO_USER_POOL_ID: POOL, COGNITO_CLIENT_ID: CLIENT, COGNITO_TOKEN_USE: "id" }
        for (const name of Object.keys(all)) {
          const error = yield* build(Object.fromEntries(Object.entries(all).filter(([key]) => key !== name)))
          expect(ConfigError.isConfigError(error) && ConfigError.isMissingDataOnly(error)).toBe(true)
        }
        expect(ConfigError.isConfigError(yield* build({ ...all, COGNITO_TOKEN_USE: "refresh" }))).toBe(true)
        // A value the provider's checks refuse is named by its variable (it was named as the option in code).
        for (
          const [vars, name] of [
            [{ COGNITO_USER_POOL_ID: "nope" }, "COGNITO_USER_POOL_ID"],
            [{ COGNITO_REGION: "us-east-1" }, "COGNITO_REGION"],
            [{ COGNITO_ENDPOINT: "ftp://localhost:4566" }, "COGNITO_ENDPOINT"]
          ] as const
        ) {
          const error = yield* build({ ...all, ...vars })
          expect(error._op === "InvalidData" && error.path, JSON.stringify(vars)).toEqual([name])
        }
        // Named once, as every variable is (Config adds the variable's name to the path).
        const noClient = yield* build({ ...all, COGNITO_CLIENT_ID: " , " })
        expect(noClient._op === "InvalidData" && noClient.path).toEqual(["COGNITO_CLIENT_ID"])
        // In the quotes an env file's loader kept, it would match no token's client: refused by name.
        const quoted = yield* build({ ...all, COGNITO_CLIENT_ID: `"${CLIENT}"` })
        expect(quoted._op === "InvalidData" && quoted.path).toEqual(["COGNITO_CLIENT_ID"])
      }).pipe(Effect.provide(Idp)))
  })
})
