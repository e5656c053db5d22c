import type * as HttpClient from "@effect/platform/HttpClient"
import { describe, expect, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as ConfigError from "effect/ConfigError"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Equal from "effect/Equal"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Hash from "effect/Hash"
import * as HashSet from "effect/HashSet"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Micro from "effect/Micro"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as Supervisor from "effect/Supervisor"
import * as TestClock from "effect/TestClock"
import { CompactSign, type CryptoKey, exportJWK, exportSPKI, generateKeyPair, importJWK, type JWK, SignJWT } from "jose"
import * as Jwk from "../src/Jwk.js"
import * as JwksCache from "../src/JwksCache.js"
import { isJwksError } from "../src/JwksError.js"
import * as JwksMetrics from "../src/JwksMetrics.js"
import * as JwksSource from "../src/JwksSource.js"
import { Principal } from "../src/Principal.js"
import * as Static from "../src/providers/Static.js"
import * as FakeIdp from "../src/testing/FakeIdp.js"
import { isTokenValidationError, TokenValidationError } from "../src/TokenValidationError.js"
import * as TokenValidator from "../src/TokenValidator.js"
import { recording } from "./support/tracing.js"

type Reason = TokenValidationError["reason"]

// --- token surgery -------------------------------------------------------------------------------------------------

const b64 = (value: string | Uint8Array): string => Buffer.from(value).toString("base64url")
const json64 = (value: unknown): string => b64(JSON.stringify(value))
const segmentsOf = (token: string): [string, string, string] => {
  const [header, payload, signature] = token.split(".")
  return [header!, payload!, signature!]
}
const decodeJson = (segment: string): Record<string, unknown> =>
  JSON.parse(Buffer.from(segment, "base64url").toString("utf8")) as Record<string, unknown>

const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

/**
 * The same bytes in another base64url spelling: `unused` goes into the low bits of the last character that decoders
 * ignore (there are some when the length is 4n + 2 or 4n + 3).
 */
const respell = (segment: string, unused: number): string => {
  const mask = segment.length % 4 === 2 ? 0b1111 : segment.length % 4 === 3 ? 0b11 : 0
  const last = alphabet.indexOf(segment[segment.length - 1]!)
  return segment.slice(0, -1) + alphabet[(last & ~mask) | (unused & mask)]
}

/** The token with its header re-encoded after `change`, payload and signature kept. */
const withHeader = (token: string, change: (header: Record<string, unknown>) => Record<string, unknown>): string => {
  const [header, payload, signature] = segmentsOf(token)
  return `${json64(change(decodeJson(header)))}.${payload}.${signature}`
}

/** The token with its claims re-encoded after `change`, header and signature kept. */
const withClaims = (token: string, change: (claims: Record<string, unknown>) => Record<string, unknown>): string => {
  const [header, payload, signature] = segmentsOf(token)
  return `${header}.${json64(change(decodeJson(payload)))}.${signature}`
}

// --- fixtures ------------------------------------------------------------------------------------------------------

/** A validator over a fresh FakeIdp's JWKS URL. Background refresh is off unless asked for, so fetches are exact. */
const setup = (options: Partial<TokenValidator.Options> = {}, cacheOptions: JwksCache.Options = {}) =>
  Effect.gen(function*() {
    const idp = yield* FakeIdp.FakeIdp
    const source = yield* JwksSource.http(idp.jwksUri)
    const cache = yield* JwksCache.make(source, { backgroundRefresh: false, ...cacheOptions })
    const validator = yield* TokenValidator.make(TokenValidator.fromCache(cache), {
      issuer: idp.issuer,
      audience: idp.audience,
      ...options
    })
    return { idp, cache, validator }
  })

/** A key pair of our own, published through a static source, to sign payloads that `FakeIdp` cannot (raw bytes). */
const localIssuer = "https://local.example.test"
const localAudience = "local-api"
const localSetup = (options: Partial<TokenValidator.Options> = {}) =>
  Effect.gen(function*() {
    const { privateKey, publicKey } = yield* Effect.promise(() => generateKeyPair("RS256", { extractable: true }))
    const jwk = yield* Effect.promise(() => exportJWK(publicKey))
    const cache = yield* JwksCache.make(
      JwksSource.fromKeySet({ keys: [{ ...jwk, kid: "local", alg: "RS256", use: "sig" }] }),
      { backgroundRefresh: false }
    )
    const validator = yield* TokenValidator.make(TokenValidator.fromCache(cache), {
      issuer: localIssuer,
      audience: localAudience,
      ...options
    })
    const signRaw = (payload: string | Uint8Array, header: Record<string, unknown> = {}) =>
      Effect.promise(() =>
        new CompactSign(typeof payload === "string" ? new TextEncoder().encode(payload) : payload)
          .setProtectedHeader({ alg: "RS256", kid: "local", ...header })
          .sign(privateKey)
      )
    return { validator, signRaw, privateKey: privateKey as CryptoKey }
  })

/** User code that throws. */
const assertNever = (): never => {
  throw new Error("never")
}

const test = <A, E>(
  name: string,
  body: () => Effect.Effect<A, E, FakeIdp.FakeIdp | HttpClient.HttpClient | Scope.Scope>
) => it.scoped(name, () => Effect.asVoid(body()).pipe(Effect.provide(FakeIdp.layerTest())))

// --- assertions ----------------------------------------------------------------------------------------------------

/** Neither the token nor any long piece of it (its signature above all) shows in what an error prints. */
const expectNoLeak = (error: Error, token: string) => {
  const printed = [error.message, String(error), Cause.pretty(Cause.fail(error))]
  const secrets = [token, ...token.split(".")].filter((secret) => secret.length >= 16)
  for (const text of printed) {
    for (const secret of secrets) {
      expect(text.includes(secret), `error text leaks ${secret.slice(0, 24)}...`).toBe(false)
    }
  }
}

/** Validates, expects a `TokenValidationError` of `reason` (never a success, a defect or a `JwksError`). */
const refused = (validator: TokenValidator.Service, token: string, reason: Reason) =>
  Effect.gen(function*() {
    const error = yield* Effect.flip(validator.validate(token))
    expect(isTokenValidationError(error), `expected a TokenValidationError, got ${String(error)}`).toBe(true)
    const tokenError = error as TokenValidationError
    expect(tokenError.reason, tokenError.message).toBe(reason)
    expect(tokenError.message.startsWith(`${reason}: `)).toBe(true)
    expectNoLeak(tokenError, token)
    return tokenError
  })

const fetches = Effect.flatMap(FakeIdp.FakeIdp, (idp) => idp.fetchCount)

// --- tests ---------------------------------------------------------------------------------------------------------

describe("TokenValidator", () => {
  describe("Principal", () => {
    test("two validations of one token give Equal Principals, remembered or not; another token's differs", () =>
      Effect.gen(function*() {
        const { idp, validator } = yield* setup({ tokenCache: 0 })
        const remembering = (yield* setup()).validator
        const claims = { sub: "alice", groups: ["dev"], scope: "read", realm_access: { roles: ["user"] } }
        const token = yield* idp.sign(claims)
        const [a, b] = [yield* validator.validate(token), yield* validator.validate(token)]
        const [c, d] = [yield* remembering.validate(token), yield* remembering.validate(token)]
        expect(a.groups === b.groups).toBe(false) // each checked anew: lists of their own
        for (const other of [b, c, d]) expect(Equal.equals(a, other)).toBe(true)
        expect(HashSet.size(HashSet.make(a, b, c, d))).toBe(1)
        const bob = yield* validator.validate(yield* idp.sign({ ...claims, sub: "bob" }))
        const otherGroups = yield* validator.validate(yield* idp.sign({ ...claims, groups: ["admin"] }))
        const otherRoles = yield* validator.validate(yield* idp.sign({ ...claims, realm_access: { roles: ["admin"] } }))
        for (const other of [bob, otherGroups, otherRoles]) expect(Equal.equals(a, other)).toBe(false)
        // An app's own Principals whose claims hold a cycle compare too.
        const cyclic = (sub: string) => {
          const claims: Record<string, unknown> = { sub }
          claims.self = claims
          return new Principal({ ...a, claims })
        }
        expect(Equal.equals(cyclic("alice"), cyclic("alice"))).toBe(true)
        expect(Equal.equals(cyclic("alice"), cyclic("bob"))).toBe(false)
        // Values of the app's own in them by their equality, plain lists inside compared by content.
        const holding = (x: unknown) => new Principal({ ...a, claims: { sub: "alice", x } })
        expect(Equal.equals(holding(Data.struct({ tags: ["a"] })), holding(Data.struct({ tags: ["a"] })))).toBe(true)
        expect(Equal.equals(holding(Option.some({ n: 1 })), holding(Option.some({ n: 2 })))).toBe(false)
        expect(Equal.equals(holding(HashSet.make("a", "b")), holding(HashSet.make("b", "a")))).toBe(true)
        // A value with an equality of its own is taken at its word (a Redacted keeps its value out of sight), a plain
        // object with one too.
        expect(Equal.equals(holding(Redacted.make("a")), holding(Redacted.make("b")))).toBe(false)
        const byId = (id: number) => ({ v: 1, [Equal.symbol]: (that: { id?: number }) => that.id === id, id })
        expect(Equal.equals(holding(byId(1)), holding(byId(2)))).toBe(false)
        // Data values nested deep are walked in the loop too; NaN is itself; a frozen Principal hashes.
        const dataNested = () => {
          let deep: unknown = [1]
          for (let level = 0; level < 20_000; level++) deep = Data.struct({ deep })
          return holding(deep)
        }
        expect(Equal.equals(dataNested(), dataNested())).toBe(true)
        expect(Equal.equals(holding(Number.NaN), holding(Number.NaN))).toBe(true)
        expect(Equal.equals(Object.freeze(holding("x")), Object.freeze(holding("x")))).toBe(true)
        const nested = () => {
          let deep: unknown = {}
          for (let level = 0; level < 20_000; level++) deep = { deep }
          return holding(Data.struct({ deep }))
        }
        expect(Equal.equals(nested(), nested())).toBe(true)
        // A list or an object with more in it differs: `groups` of ["dev"] and of ["dev", "admin"] are two users' rights.
        expect(Equal.equals(holding(["dev"]), holding(["dev", "admin"]))).toBe(false)
        expect(Equal.equals(holding(["dev", "admin"]), holding(["dev"]))).toBe(false)
        expect(Equal.equals(holding({ a: 1 }), holding({ a: 1, b: 2 }))).toBe(false)
        expect(Equal.equals(holding({ a: 1, b: 2 }), holding({ a: 1 }))).toBe(false)
        // A plain object's own equality never makes it equal to an instance of a class, whatever it answers.
        class ById {
          readonly id = 1;
          [Equal.symbol](that: { id?: number }) {
            return that.id === 1
          }
          [Hash.symbol]() {
            return 1
          }
        }
        const plainById = { id: 1, [Equal.symbol]: (that: { id?: number }) => that.id === 1, [Hash.symbol]: () => 1 }
        expect(Equal.equals(holding(plainById), holding(new ById()))).toBe(false)
        // Only enumerable keys count, both ways.
        const hidden = Object.defineProperty({ b: 2 }, "a", { value: 1, enumerable: false })
        expect([Equal.equals(holding({ a: 1 }), holding(hidden)), Equal.equals(holding(hidden), holding({ a: 1 }))])
          .toEqual([false, false])
      }))

    test("a good token becomes a Principal with every field", () =>
      Effect.gen(function*() {
        const { idp, validator } = yield* setup()
        const token = yield* idp.sign({
          sub: "alice",
          preferred_username: "alice.p",
          username: "alice.u",
          name: "Alice",
          email: "alice@example.test",
          groups: ["admin", "dev"],
          scope: "read  write",
          client_id: "web-app"
        })
        const principal = yield* validator.validate(token)
        expect(principal).toBeInstanceOf(Principal)
        expect(principal.id).toBe("alice")
        expect(principal.name).toBe("alice.p")
        expect(principal.email).toBe("alice@example.test")
        expect(principal.groups).toEqual(["admin", "dev"])
        expect(principal.scopes).toEqual(["read", "write"])
        expect(principal.tokenType).toBe("access")
        expect(principal.clientId).toBe("web-app")
        expect(principal.isMachine).toBe(false)
        expect(principal.issuer).toBe(idp.issuer)
        expect(principal.expiresAt).toEqual(new Date(3600 * 1000))
        expect(principal.hasGroup("admin")).toBe(true)
        expect(principal.hasScope("write")).toBe(true)
        expect(principal.hasScope("delete")).toBe(false)
        expect(principal.claims).toEqual({
          iss: idp.issuer,
          aud: idp.audience,
          sub: "alice",
          iat: 0,
          exp: 3600,
          preferred_username: "alice.p",
          username: "alice.u",
          name: "Alice",
          email: "alice@example.test",
          groups: ["admin", "dev"],
          scope: "read  write",
          client_id: "web-app"
        })
        expect(yield* fetches).toBe(1)
      }))

    test("name falls back from preferred_username to username, name, then email", () =>
      Effect.gen(function*() {
        const { idp, validator } = yield* setup()
        const nameOf = (claims: Record<string, unknown>) =>
          Effect.map(Effect.flatMap(idp.sign(claims), validator.validate), (principal) => principal.name)
        expect(yield* nameOf({ preferred_username: "", username: "u", name: "N", email: "e@x" })).toBe("u")
        expect(yield* nameOf({ name: "N", email: "e@x" })).toBe("N")
        expect(yield* nameOf({ username: 42, email: "e@x" })).toBe("e@x")
        expect(yield* nameOf({})).toBeUndefined()
      }))

    test("an email the token says is not verified is neither the principal's email nor its name", () =>
      Effect.gen(function*() {
        const { idp, validator } = yield* setup()
        const of = (claims: Record<string, unknown>) =>
          Effect.map(Effect.flatMap(idp.sign(claims), validator.validate), (p) => [p.email, p.name, p.claims.email])
        expect(yield* of({ email: "e@x", email_verified: false })).toEqual([undefined, undefined, "e@x"])
        expect(yield* of({ email: "e@x", email_verified: "False" })).toEqual([undefined, undefined, "e@x"])
        expect(yield* of({ email: "e@x", email_verified: false, name: "N" })).toEqual([undefined, "N", "e@x"])
        // Verified, or not said either way (many IdPs leave the flag out): shown.
        expect(yield* of({ email: "e@x", email_verified: true })).toEqual(["e@x", "e@x", "e@x"])
        expect(yield* of({ email: "e@x" })).toEqual(["e@x", "e@x", "e@x"])
        // Nor by a username claim the app names `email` (as the PrincipalClaims example does, first).
        const emailFirst = yield* setup({ principal: { username: ["email", "preferred_username"] } })
        const named = (claims: Record<string, unknown>) =>
          Effect.map(Effect.flatMap(idp.sign(claims), emailFirst.validator.validate), (p) => p.name)
        expect(yield* named({ email: "e@x", email_verified: false, preferred_username: "u" })).toBe("u")
        expect(yield* named({ email: "e@x", email_verified: false })).toBeUndefined()
        expect(yield* named({ email: "e@x", email_verified: true, preferred_username: "u" })).toBe("e@x")
        // Nor by a username claim that holds the unverified address (Keycloak's "email as username", self sign-up).
        const asUsername = {
          email: "Victim@Example.com",
          email_verified: false,
          preferred_username: "victim@example.com"
        }
        expect(yield* of(asUsername)).toEqual([undefined, undefined, "Victim@Example.com"])
        expect(yield* of({ ...asUsername, name: "Mallory" })).toEqual([undefined, "Mallory", "Victim@Example.com"])
        expect((yield* of({ ...asUsername, email_verified: true }))[1]).toBe("victim@example.com")
      }))

    test("the username and groups claims can be configured", () =>
      Effect.gen(function*() {
        const { idp, validator } = yield* setup({ principal: { username: ["upn"], groups: "roles" } })
        const principal = yield* Effect.flatMap(
          idp.sign({ upn: "alice@corp", preferred_username: "ignored", roles: "Reader", groups: ["ignored"] }),
          validator.validate
        )
        expect(principal.name).toBe("alice@corp")
        expect(principal.groups).toEqual(["Reader"])
      }))

    test("scopes come from a scope string or array, an scp string or an scp array; empty names are none", () =>
      Effect.gen(function*() {
        const { idp, validator } = yield* setup()
        const scopesOf = (claims: Record<string, unknown>) =>
          Effect.map(Effect.flatMap(idp.sign(claims), validator.validate), (principal) => principal.scopes)
        expect(yield* scopesOf({ scope: "openid profile" })).toEqual(["openid", "profile"])
        expect(yield* scopesOf({ scp: "User.Read Mail.Send" })).toEqual(["User.Read", "Mail.Send"])
        expect(yield* scopesOf({ scp: ["a", "b", 3] })).toEqual(["a", "b"])
        expect(yield* scopesOf({ scope: "from-scope", scp: ["from-scp"] })).toEqual(["from-scope"])
        expect(yield* scopesOf({})).toEqual([])
        // As Duende IdentityServer and Spring Authorization Server write it.
        expect(yield* scopesOf({ scope: ["openid", "orders.read", 3, ""] })).toEqual(["openid", "orders.read"])
        expect(yield* scopesOf({ scope: 7, scp: "a b" })).toEqual(["a", "b"])
        expect(yield* scopesOf({ scp: ["", "a"] })).toEqual(["a"])
        // An empty name is none the principal has: a guard given "" (configuration left unset) matches nobody.
        const principal = yield* validator.validate(yield* idp.sign({ groups: ["", "staff"], scope: " read  " }))
        expect([principal.groups, principal.scopes, principal.hasGroup(""), principal.hasScope("")]).toEqual([
          ["staff"],
          ["read"],
          false,
          false
        ])
        expect((yield* validator.validate(yield* idp.sign({ groups: "" }))).groups).toEqual([])
      }))

    test("the client id is client_id, else azp, else appid; the id falls back to it without sub", () =>
      Effect.gen(function*() {
        const { idp, validator } = yield* setup()
        const principalOf = (claims: Record<string, unknown>) => Effect.flatMap(idp.sign(claims), validator.validate)
        expect((yield* principalOf({ client_id: "a", azp: "b", appid: "c" })).clientId).toBe("a")
        expect((yield* principalOf({ azp: "b", appid: "c" })).clientId).toBe("b")
        expect((yield* principalOf({ appid: "c" })).clientId).toBe("c")
        expect((yield* principalOf({})).clientId).toBeUndefined()
        const machine = yield* principalOf({ sub: undefined, client_id: "svc" })
        expect(machine.id).toBe("svc")
      }))

    test("machine-to-machine tokens are recognised", () =>
      Effect.gen(function*() {
        const { idp, validator } = yield* setup()
        const isMachine = (claims: Record<string, unknown>) =>
          Effect.map(Effect.flatMap(idp.sign(claims), validator.validate), (principal) => principal.isMachine)
        // client credentials: an access token without a user
        expect(yield* isMachine({ sub: undefined, client_id: "svc", scope: "jobs:run" })).toBe(true)
        expect(yield* isMachine({ sub: "svc", client_id: "svc" })).toBe(true)
        // Entra ID app-only tokens; without the optional idtyp, no scp and the service principal's oid as sub
        expect(yield* isMachine({ sub: "object-id", appid: "svc", idtyp: "app" })).toBe(true)
        const entraApp = { sub: "sp-oid", oid: "sp-oid", azp: "svc", azpacr: "1", roles: ["Orders.ReadAll"] }
        expect(yield* isMachine(entraApp)).toBe(true)
        // Okta: the client in cid
        expect(yield* isMachine({ sub: "0oa1", cid: "0oa1", scp: ["orders.read"] })).toBe(true)
        // Auth0
        expect(yield* isMachine({ sub: "svc@clients", azp: "svc", gty: "client-credentials" })).toBe(true)
        // users
        expect(yield* isMachine({ sub: "alice", client_id: "web-app", scope: "read" })).toBe(false)
        expect(yield* isMachine({ sub: "alice" })).toBe(false)
        expect(yield* isMachine({ ...entraApp, sub: "pairwise-sub", scp: "Orders.Read" })).toBe(false)
        expect(yield* isMachine({ ...entraApp, scp: "Orders.Read" })).toBe(false)
        expect(yield* isMachine({ sub: "00u1", uid: "00u1", cid: "0oa1", scp: ["orders.read"] })).toBe(false)
        // A user name is the user's: one that looks like a Keycloak service account's does not make a machine.
        const keycloak = { sub: "2c9d-uuid", azp: "web", typ: "Bearer", scope: "openid profile orders:read" }
        expect(yield* isMachine({ ...keycloak, preferred_username: "service-account-web" })).toBe(false)
        // an id token whose sub happens to be its azp is still not an access token
        expect(yield* isMachine({ sub: "svc", azp: "svc", nonce: "n" })).toBe(false)
        // a token of no known kind whose subject is its client: a Google service account's identity token
        const google = { sub: "113774264463038321964", azp: "113774264463038321964", email_verified: true }
        expect(yield* isMachine(google)).toBe(true)
        expect(yield* isMachine({ ...google, azp: "1234.apps.googleusercontent.com" })).toBe(false)
      }))

    test("the token type is reported", () =>
      Effect.gen(function*() {
        const { idp, validator } = yield* setup()
        const typeOf = (claims: Record<string, unknown>, header?: Record<string, unknown>) =>
          Effect.map(
            Effect.flatMap(idp.sign(claims, header === undefined ? {} : { header }), validator.validate),
            (principal) => principal.tokenType
          )
        expect(yield* typeOf({ token_use: "id" })).toBe("id")
        expect(yield* typeOf({ nonce: "n" })).toBe("id")
        expect(yield* typeOf({ token_use: "access" })).toBe("access")
        expect(yield* typeOf({}, { typ: "at+jwt" })).toBe("access")
        expect(yield* typeOf({})).toBe("unknown")
      }))
  })

  describe("one test per reason", () => {
    test("Malformed: not three segments", () =>
      Effect.gen(function*() {
        const { idp, validator } = yield* setup()
        const token = yield* idp.sign({})
        const [header, payload, signature] = segmentsOf(token)
        for (
          const bad of [
            "",
            "abc",
            `${header}.${payload}`,
            `${header}.${payload}.${signature}.${signature}`,
            `${header}..${payload}.${signature}`,
            `.${payload}.${signature}`,
            ` ${token}`,
            `${token}\n`,
            `Bearer ${token}`
          ]
        ) {
          yield* refused(validator, bad, "Malformed")
        }
        // nothing malformed reaches the key set
        expect(yield* fetches).toBe(0)
      }))

    test("Malformed: a header that is not base64url of UTF-8 JSON", () =>
      Effect.gen(function*() {
        const { idp, validator } = yield* setup()
        const [, payload, signature] = segmentsOf(yield* idp.sign({}))
        for (
          const header of [
            "e30=", // padding is not base64url
            "eyJhbGciOiJSUzI1NiJ9a", // an impossible length (4n + 1)
            respell(b64("{\"alg\":\"RS256\"} "), 1), // non-zero unused bits: not canonical
            b64(new Uint8Array([0xff, 0xfe, 0xfd])), // not UTF-8
            b64("{\"alg\":\"RS256\""), // truncated JSON
            b64("alg=RS256")
          ]
        ) {
          yield* refused(validator, `${header}.${payload}.${signature}`, "Malformed")
        }
        expect(yield* fetches).toBe(0)
      }))

    test("Malformed: a header that is JSON but not an object with a string alg", () =>
      Effect.gen(function*() {
        const { idp, validator } = yield* setup()
        const [, payload, signature] = segmentsOf(yield* idp.sign({}))
        for (const header of [[], ["RS256"], "RS256", 42, null, true, {}, { alg: 256 }, { alg: "RS256", kid: 7 }]) {
          yield* refused(validator, `${json64(header)}.${payload}.${signature}`, "Malformed")
        }
        expect(yield* fetches).toBe(0)
      }))

    test("Malformed: a header with a __proto__ member", () =>
      Effect.gen(function*() {
        const { idp, validator } = yield* setup()
        const token = yield* idp.sign({})
        const [header, payload, signature] = segmentsOf(token)
        const poisoned = Buffer.from(header, "base64url").toString("utf8").replace(/}$/, ",\"__proto__\":{\"typ\":1}}")
        yield* refused(validator, `${b64(poisoned)}.${payload}.${signature}`, "Malformed")
        expect(TokenValidator.peekHeader(`${b64(poisoned)}.${payload}.${signature}`)._tag).toBe("None")
      }))

    test("Malformed: claims that are not JSON, not UTF-8, or not an object", () =>
      Effect.gen(function*() {
        const { signRaw, validator } = yield* localSetup()
        for (
          const payload of [
            "not json",
            "{\"iss\":",
            new Uint8Array([0x7b, 0xff, 0x7d]),
            "null",
            "42",
            "\"claims\"",
            ""
          ]
        ) {
          yield* refused(validator, yield* signRaw(payload), "Malformed")
        }
      }))

    test("Malformed: a registered claim of the wrong type, never accepted", () =>
      Effect.gen(function*() {
        const { idp, validator } = yield* setup()
        for (
          const claims of [
            { exp: "3600" },
            { exp: null },
            { exp: [3600] },
            { iss: { url: idp.issuer } },
            { aud: 42 },
            { aud: [idp.audience, 42] },
            { sub: 7 },
            { nbf: "0" },
            { iat: false },
            { client_id: ["a"] },
            { token_use: 1 }
          ]
        ) {
          yield* refused(validator, yield* idp.sign(claims), "Malformed")
        }
      }))

    test("Malformed: a non-finite exp in the raw JSON", () =>
      Effect.gen(function*() {
        const { signRaw, validator } = yield* localSetup()
        for (const exp of ["1e400", "-1e400"]) {
          const payload = `{"iss":"${localIssuer}","aud":"${localAudience}","sub":"s","exp":${exp}}`
          yield* refused(validator, yield* signRaw(payload), "Malformed")
        }
        const fine = yield* signRaw(`{"iss":"${localIssuer}","aud":"${localAudience}","sub":"s","exp":1e4}`)
        expect((yield* validator.validate(fine)).id).toBe("s")
      }))

    test("Malformed: signed claims with a __proto__ member cannot smuggle an untyped exp", () =>
      Effect.gen(function*() {
        const { idp, validator } = yield* setup()
        const token = yield* idp.sign({ exp: undefined, ...JSON.parse("{\"__proto__\":{\"exp\":\"never\"}}") })
        expect(Buffer.from(segmentsOf(token)[1], "base64url").toString("utf8")).toContain("\"__proto__\"")
        yield* refused(validator, token, "Malformed")
        expect(TokenValidator.peekClaims(token)._tag).toBe("None")
      }))

    test("Malformed: a crit header, even one the signer understood", () =>
      Effect.gen(function*() {
        const { idp, validator } = yield* setup()
        const token = yield* idp.sign({}, { header: { crit: ["urn:example:ext"], "urn:example:ext": true } })
        yield* refused(validator, token, "Malformed")
        yield* refused(validator, withHeader(yield* idp.sign({}), (h) => ({ ...h, crit: [] })), "Malformed")
        expect(yield* fetches).toBe(0)
      }))

    test("Malformed: an unencoded payload (b64: false)", () =>
      Effect.gen(function*() {
        const { idp, validator } = yield* setup()
        const token = yield* idp.sign({})
        yield* refused(validator, withHeader(token, (h) => ({ ...h, b64: false })), "Malformed")
        yield* refused(validator, withHeader(token, (h) => ({ ...h, b64: "false" })), "Malformed")
        expect(yield* fetches).toBe(0)
        // b64: true is the default spelled out; only the signature (over the changed header) is then wrong
        yield* refused(validator, withHeader(token, (h) => ({ ...h, b64: true })), "InvalidSignature")
      }))

    test("Malformed: an empty signature, refused before any key is looked up", () =>
      Effect.gen(function*() {
        const { idp, validator } = yield* setup()
        const [header, payload] = segmentsOf(yield* idp.sign({}))
        const error = yield* refused(validator, `${header}.${payload}.`, "Malformed")
        expect(error.message).toContain("no signature")
        expect(yield* fetches).toBe(0)
      }))

    test("Malformed: a signature in a non-canonical base64url spelling", () =>
      Effect.gen(function*() {
        const { idp, validator } = yield* setup()
        const token = yield* idp.sign({})
        yield* validator.validate(token)
        const [header, payload, signature] = segmentsOf(token)
        // an RS256 signature is 256 bytes: 342 characters, the last of which carries 2 bits and 4 unused ones
        expect(signature.length % 4).toBe(2)
        for (let unused = 1; unused < 16; unused++) {
          const respelled = respell(signature, unused)
          expect(respelled).not.toBe(signature)
          expect(Buffer.from(respelled, "base64url")).toEqual(Buffer.from(signature, "base64url"))
          yield* refused(validator, `${header}.${payload}.${respelled}`, "Malformed")
        }
        // the same for the header and the payload, padded to a length with unused bits
        const spaced = (segment: string) =>
          ["", " ", "  "].map((pad) => b64(Buffer.from(segment, "base64url").toString("utf8") + pad))
            .find((respaced) => respaced.length % 4 !== 0)!
        const spacedHeader = spaced(header)
        const spacedPayload = spaced(payload)
        expect(respell(spacedHeader, 0)).toBe(spacedHeader)
        yield* refused(validator, `${respell(spacedHeader, 1)}.${payload}.${signature}`, "Malformed")
        yield* refused(validator, `${header}.${respell(spacedPayload, 1)}.${signature}`, "Malformed")
        expect(yield* fetches).toBe(1)
      }))

    test("TooLarge: a token over 16 KiB, before any other check", () =>
      Effect.gen(function*() {
        const { idp, validator } = yield* setup()
        const token = yield* idp.sign({ padding: "x".repeat(16 * 1024) })
        expect(token.length).toBeGreaterThan(16 * 1024)
        yield* refused(validator, token, "TooLarge")
        yield* refused(validator, "!".repeat(16 * 1024 + 1), "TooLarge")
        // The cap is in bytes: 6,000 three-byte characters are 18,000 (and 5,000 are 15,000: refused otherwise).
        yield* refused(validator, "€".repeat(6_000), "TooLarge")
        yield* refused(validator, "€".repeat(5_000), "Malformed")
        expect(yield* fetches).toBe(0)
      }))

    test("TooLarge: a custom maxTokenBytes, inclusive", () =>
      Effect.gen(function*() {
        const { idp, validator } = yield* setup({ maxTokenBytes: 1024 })
        const token = yield* idp.sign({ padding: "x".repeat(600) })
        const small = yield* setup({ maxTokenBytes: token.length - 1 })
        yield* refused(small.validator, token, "TooLarge")
        const exact = yield* setup({ maxTokenBytes: token.length })
        expect((yield* exact.validator.validate(token)).id).toBe("user-1")
        yield* refused(validator, yield* idp.sign({ padding: "x".repeat(1024) }), "TooLarge")
      }))

    test("AlgorithmNotAllowed: an unsigned alg none token, with or without a signature", () =>
      Effect.gen(function*() {
        const { idp, validator } = yield* setup()
        const kid = yield* idp.currentKid
        const real = yield* idp.sign({ sub: "admin" })
        const [, payload, signature] = segmentsOf(real)
        const claims = json64({ iss: idp.issuer, aud: idp.audience, sub: "admin", exp: 3600 })
        for (const alg of ["none", "None", "NONE", "nOnE"]) {
          const header = json64({ alg, typ: "JWT" })
          yield* refused(validator, `${header}.${claims}.`, "AlgorithmNotAllowed")
          yield* refused(validator, `${header}.${payload}.`, "AlgorithmNotAllowed")
          yield* refused(validator, `${header}.${payload}.${signature}`, "AlgorithmNotAllowed")
          yield* refused(validator, `${json64({ alg, kid })}.${claims}.${signature}`, "AlgorithmNotAllowed")
        }
        expect(yield* fetches).toBe(0)
      }))

    test("AlgorithmNotAllowed: an algorithm outside the allow-list", () =>
      Effect.gen(function*() {
        const { idp, validator } = yield* setup()
        const token = yield* idp.sign({})
        for (
          const alg of ["RS384", "RS512", "PS256", "ES256", "HS256", "EdDSA", "rs256", "RS256 ", "", "x".repeat(500)]
        ) {
          const error = yield* refused(validator, withHeader(token, (h) => ({ ...h, alg })), "AlgorithmNotAllowed")
          expect(error.message.length).toBeLessThan(80)
        }
        expect(yield* fetches).toBe(0)
      }))

    test("AlgorithmNotAllowed: none cannot be allowed, make() refuses it", () =>
      Effect.gen(function*() {
        const idp = yield* FakeIdp.FakeIdp
        const cache = yield* JwksCache.make(yield* JwksSource.http(idp.jwksUri), { backgroundRefresh: false })
        const keys = TokenValidator.fromCache(cache)
        const make = (options: Partial<TokenValidator.Options>) =>
          Effect.flip(TokenValidator.make(keys, { issuer: idp.issuer, audience: idp.audience, ...options }))
        const none = "none" as TokenValidator.SigningAlgorithm
        for (const algorithms of [[none], ["RS256", none], ["RS256", "None" as TokenValidator.SigningAlgorithm], []]) {
          const error = yield* make({ algorithms: algorithms as Array<TokenValidator.SigningAlgorithm> })
          expect(ConfigError.isConfigError(error)).toBe(true)
          expect(error._op === "InvalidData" && error.path).toEqual(["algorithms"])
        }
        expect(ConfigError.isConfigError(yield* make({ issuer: "" }))).toBe(true)
        expect(ConfigError.isConfigError(yield* make({ audience: undefined }))).toBe(true)
        expect(ConfigError.isConfigError(yield* make({ maxTokenBytes: 0 }))).toBe(true)
      }))

    test("NoMatchingKey: an unknown kid, after one refetch", () =>
      Effect.gen(function*() {
        const { idp, validator } = yield* setup()
        yield* validator.validate(yield* idp.sign({}))
        expect(yield* fetches).toBe(1)
        yield* refused(validator, yield* idp.sign({}, { kid: "no-such-kid" }), "NoMatchingKey")
        expect(yield* fetches).toBe(2)
        // throttled: forged kids do not storm the IdP
        for (let i = 0; i < 20; i++) {
          yield* refused(validator, yield* idp.sign({}, { kid: `forged-${i}` }), "NoMatchingKey")
        }
        expect(yield* fetches).toBe(2)
      }))

    test("NoMatchingKey: a token without kid when two compatible keys are published", () =>
      Effect.gen(function*() {
        const { idp, validator } = yield* setup()
        yield* idp.rotate("overlap")
        expect((yield* idp.publishedKids).length).toBe(2)
        yield* refused(validator, yield* idp.sign({}, { kid: null }), "NoMatchingKey")
        // with its kid the same token is fine
        expect((yield* validator.validate(yield* idp.sign({}))).id).toBe("user-1")
      }))

    test("a token without kid is accepted when exactly one key fits", () =>
      Effect.gen(function*() {
        const { idp, validator } = yield* setup()
        const token = yield* idp.sign({ sub: "no-kid" }, { kid: null })
        expect(decodeJson(segmentsOf(token)[0])).not.toHaveProperty("kid")
        expect((yield* validator.validate(token)).id).toBe("no-kid")
      }))

    test("InvalidSignature: a tampered payload", () =>
      Effect.gen(function*() {
        const { idp, validator } = yield* setup()
        const token = yield* idp.sign({ sub: "alice", groups: ["users"] })
        yield* validator.validate(token)
        yield* refused(validator, withClaims(token, (c) => ({ ...c, groups: ["admin"] })), "InvalidSignature")
        yield* refused(validator, withClaims(token, (c) => ({ ...c, sub: "bob" })), "InvalidSignature")
        yield* refused(validator, withClaims(token, (c) => ({ ...c, exp: c.exp as number + 3600 })), "InvalidSignature")
      }))

    test("InvalidSignature: an unpublished key wearing a published kid", () =>
      Effect.gen(function*() {
        const { idp, validator } = yield* setup()
        const kid = yield* idp.currentKid
        const forged = yield* idp.sign({ sub: "mallory" }, { key: "unpublished", kid })
        expect(decodeJson(segmentsOf(forged)[0]).kid).toBe(kid)
        yield* refused(validator, forged, "InvalidSignature")
        // and a signature swapped in from another token
        const [header, payload] = segmentsOf(yield* idp.sign({ sub: "a" }))
        const [, , signature] = segmentsOf(yield* idp.sign({ sub: "b" }))
        yield* refused(validator, `${header}.${payload}.${signature}`, "InvalidSignature")
      }))

    test("Expired", () =>
      Effect.gen(function*() {
        const { idp, validator } = yield* setup()
        const token = yield* idp.sign({}, { expiresIn: "5 minutes" })
        yield* TestClock.adjust("10 minutes")
        yield* refused(validator, token, "Expired")
        yield* refused(validator, yield* idp.sign({ exp: 0 }), "Expired")
      }))

    test("NotYetValid: nbf in the future", () =>
      Effect.gen(function*() {
        const { idp, validator } = yield* setup()
        yield* refused(validator, yield* idp.sign({ nbf: 60 }), "NotYetValid")
      }))

    test("NotYetValid: iat in the future", () =>
      Effect.gen(function*() {
        const { idp, validator } = yield* setup()
        yield* refused(validator, yield* idp.sign({ iat: 60 }), "NotYetValid")
      }))

    test("IssuerMismatch: another issuer", () =>
      Effect.gen(function*() {
        const { idp, validator } = yield* setup()
        for (const iss of ["https://evil.example", `${idp.issuer}/`, idp.issuer.toUpperCase(), ""]) {
          yield* refused(validator, yield* idp.sign({ iss }), "IssuerMismatch")
        }
      }))

    test("IssuerMismatch: no issuer", () =>
      Effect.gen(function*() {
        const { idp, validator } = yield* setup()
        yield* refused(validator, yield* idp.sign({ iss: undefined }), "IssuerMismatch")
      }))

    test("issuer lists and rules", () =>
      Effect.gen(function*() {
        const idp = yield* FakeIdp.FakeIdp
        const list = yield* setup({ issuer: ["https://other.example", idp.issuer] })
        expect((yield* list.validator.validate(yield* idp.sign({}))).issuer).toBe(idp.issuer)
        expect(list.validator.acceptsIssuer(idp.issuer)).toBe(true)
        expect(list.validator.acceptsIssuer("https://third.example")).toBe(false)
        const rule = yield* setup({
          issuer: { description: "tenants", matches: (iss) => iss.startsWith("https://tenant-") }
        })
        yield* refused(rule.validator, yield* idp.sign({}), "IssuerMismatch")
        expect((yield* rule.validator.validate(yield* idp.sign({ iss: "https://tenant-7.example" }))).issuer).toBe(
          "https://tenant-7.example"
        )
      }))

    test("IssuerMismatch: a key that names the issuer it signs for verifies no other's tokens", () =>
      Effect.gen(function*() {
        const pair = yield* Effect.promise(() => generateKeyPair("RS256", { extractable: true }))
        const jwk = { ...(yield* Effect.promise(() => exportJWK(pair.publicKey))), kid: "k1", alg: "RS256" }
        let label: string | undefined = "https://a.example"
        const source = JwksSource.make("labelled", Effect.sync(() => ({ keys: [{ ...jwk, issuer: label }] })))
        const cache = yield* JwksCache.make(source, {
          strategy: "time",
          interval: "1 minute",
          backgroundRefresh: false
        })
        // Both issuers are the validator's: only the key's label tells them apart.
        const validator = yield* TokenValidator.make(TokenValidator.fromCache(cache), {
          issuer: ["https://a.example", "https://b.example"],
          audience: "api"
        })
        const sign = (iss: string) =>
          Effect.promise(() =>
            new SignJWT({}).setProtectedHeader({ alg: "RS256", kid: "k1" }).setIssuer(iss).setAudience("api")
              .setExpirationTime(3600).sign(pair.privateKey)
          )
        const ofA = yield* sign("https://a.example")
        expect((yield* validator.validate(ofA)).issuer).toBe("https://a.example")
        yield* refused(validator, yield* sign("https://b.example"), "IssuerMismatch")
        // Relabelled at the next refresh: a new key, so the token remembered under the old one is checked again.
        label = "https://b.example"
        yield* TestClock.adjust("2 minutes")
        yield* refused(validator, ofA, "IssuerMismatch")
        expect((yield* validator.validate(yield* sign("https://b.example"))).issuer).toBe("https://b.example")
        // A label with `{tenantid}` takes the token's tid; without one, nothing.
        label = "https://{tenantid}.example"
        yield* TestClock.adjust("2 minutes")
        const tenant = (tid: unknown, iss: string) =>
          Effect.promise(() =>
            new SignJWT({ tid }).setProtectedHeader({ alg: "RS256", kid: "k1" }).setIssuer(iss).setAudience("api")
              .setExpirationTime(3600).sign(pair.privateKey)
          )
        expect((yield* validator.validate(yield* tenant("a", "https://a.example"))).issuer).toBe("https://a.example")
        yield* refused(validator, yield* tenant("a", "https://b.example"), "IssuerMismatch")
        yield* refused(validator, yield* tenant(undefined, "https://a.example"), "IssuerMismatch")
      }))

    test("AudienceMismatch: another audience", () =>
      Effect.gen(function*() {
        const { idp, validator } = yield* setup()
        yield* refused(validator, yield* idp.sign({ aud: "another-api" }), "AudienceMismatch")
      }))

    test("AudienceMismatch: an aud array without ours", () =>
      Effect.gen(function*() {
        const { idp, validator } = yield* setup()
        yield* refused(validator, yield* idp.sign({ aud: ["a", "b"] }), "AudienceMismatch")
        yield* refused(validator, yield* idp.sign({ aud: [] }), "AudienceMismatch")
        expect((yield* validator.validate(yield* idp.sign({ aud: ["a", idp.audience] }))).id).toBe("user-1")
      }))

    test("AudienceMismatch: no aud, client_id and azp fall back, and an aud present wins over them", () =>
      Effect.gen(function*() {
        const { idp, validator } = yield* setup()
        const viaClientId = yield* validator.validate(yield* idp.sign({ aud: undefined, client_id: idp.audience }))
        expect(viaClientId.clientId).toBe(idp.audience)
        const viaAzp = yield* validator.validate(yield* idp.sign({ aud: undefined, azp: idp.audience }))
        expect(viaAzp.clientId).toBe(idp.audience)
        yield* refused(validator, yield* idp.sign({ aud: undefined }), "AudienceMismatch")
        yield* refused(validator, yield* idp.sign({ aud: undefined, client_id: "other" }), "AudienceMismatch")
        yield* refused(validator, yield* idp.sign({ aud: "other", client_id: idp.audience }), "AudienceMismatch")
      }))

    test("allowAnyAudience skips the check", () =>
      Effect.gen(function*() {
        const { idp, validator } = yield* setup({ audience: undefined, allowAnyAudience: true })
        expect((yield* validator.validate(yield* idp.sign({ aud: "whatever" }))).id).toBe("user-1")
        expect((yield* validator.validate(yield* idp.sign({ aud: undefined }))).id).toBe("user-1")
      }))

    test("TokenType: refresh tokens, by token_use or by a Keycloak typ claim", () =>
      Effect.gen(function*() {
        const { idp, validator } = yield* setup()
        yield* refused(validator, yield* idp.sign({ token_use: "refresh" }), "TokenType")
        yield* refused(validator, yield* idp.sign({ typ: "Refresh" }), "TokenType")
        yield* refused(validator, yield* idp.sign({ typ: "Offline", scope: "offline_access" }), "TokenType")
        const open = yield* setup({ tokenTypes: ["id", "access", "unknown"] })
        yield* refused(open.validator, yield* idp.sign({ typ: "Refresh" }), "TokenType")
        // A refresh marker decides whatever another marker says.
        yield* refused(validator, yield* idp.sign({ typ: "Refresh" }, { header: { typ: "at+jwt" } }), "TokenType")
        yield* refused(validator, yield* idp.sign({ typ: "Offline", token_use: "access" }), "TokenType")
        yield* refused(validator, yield* idp.sign({ token_use: "refresh" }, { header: { typ: "at+jwt" } }), "TokenType")
      }))

    test("TokenType: an id token where only access tokens are accepted", () =>
      Effect.gen(function*() {
        const { idp, validator } = yield* setup({ tokenTypes: ["access"] })
        yield* refused(validator, yield* idp.sign({ nonce: "n" }), "TokenType")
        yield* refused(validator, yield* idp.sign({ token_use: "id" }), "TokenType")
        yield* refused(validator, yield* idp.sign({}), "TokenType")
        expect((yield* validator.validate(yield* idp.sign({ scope: "read" }))).tokenType).toBe("access")
      }))

    test("TokenType: a typ that names another kind of JWT is refused whatever its claims; acceptTyp lets one in", () =>
      Effect.gen(function*() {
        const { idp, validator } = yield* setup()
        // A back-channel logout token, a security event token, a DPoP proof: explicitly typed, never bearer tokens.
        const logout = { sid: "s-1", events: { "http://schemas.openid.net/event/backchannel-logout": {} } }
        for (const typ of ["logout+jwt", "application/secevent+jwt", "DPoP+JWT"]) {
          yield* refused(validator, yield* idp.sign(logout, { header: { typ } }), "TokenType")
        }
        // An SD-JWT verifiable credential's signed part, sent without its disclosures: a credential, not a bearer token.
        // Untyped too (RFC 9901 makes the typ optional): known by its _sd_alg, or its list of digests in _sd.
        for (const claims of [{ _sd_alg: "sha-256" }, { _sd: ["digest"] }]) {
          yield* refused(validator, yield* idp.sign({ ...claims, scope: "read" }), "TokenType")
        }
        // Its digests only below the top level (`_sd_alg` is optional too): in a nested object's `_sd`, or as a
        // `{"...": digest}` item of a list, however deep.
        for (
          const claims of [
            { address: { _sd: ["digest"], country: "DE" } },
            { nationalities: [{ "...": "digest" }, "FR"] },
            { a: [{ b: [[{ c: { _sd: [] } }]] }] }
          ]
        ) {
          yield* refused(validator, yield* idp.sign({ ...claims, scope: "read" }), "TokenType")
        }
        // Lists of objects and members named like them, of an ordinary token, are no such thing.
        const ordinary = { address: { sd: [] }, roles: [{ name: "..." }], "...": 1, _sd: "not a list", scope: "read" }
        expect((yield* validator.validate(yield* idp.sign(ordinary))).scopes).toEqual(["read"])
        for (const typ of ["dc+sd-jwt", "vc+sd-jwt", "application/vc+sd-jwt"]) {
          yield* refused(
            validator,
            yield* idp.sign({ vct: "https://credentials.example/id" }, { header: { typ } }),
            "TokenType"
          )
        }
        // A media type's parameters, or white space around it, do not make it another (with no claims that tell).
        for (const typ of ["dpop+jwt;v=1", "application/token-introspection+jwt; charset=utf-8", "dpop+jwt "]) {
          yield* refused(validator, yield* idp.sign({ scope: "read" }, { header: { typ } }), "TokenType")
        }
        // Claims that look like an access token do not override the explicit type.
        const access = yield* setup({ tokenTypes: ["access"] })
        yield* refused(
          access.validator,
          yield* idp.sign({ ...logout, scope: "openid" }, { header: { typ: "logout+jwt" } }),
          "TokenType"
        )
        // An id token typed explicitly (Connect2id) is an id token, not another kind.
        const id = yield* validator.validate(yield* idp.sign({ nonce: "n" }, { header: { typ: "id_token+jwt" } }))
        expect(id.tokenType).toBe("id")
        // JWT, at+jwt and no typ at all are what bearer tokens carry.
        for (const typ of ["JWT", "at+jwt", "application/at+jwt", "at+jwt; charset=utf-8", undefined]) {
          expect((yield* validator.validate(yield* idp.sign({ scope: "read" }, { header: { typ } }))).id).toBe("user-1")
        }
        const loosened = yield* setup({ acceptTyp: ["application/vnd.idp-at+jwt"] })
        const own = yield* idp.sign({ scope: "read" }, { header: { typ: "VND.IDP-AT+JWT" } })
        expect((yield* loosened.validator.validate(own)).id).toBe("user-1")
        yield* refused(validator, own, "TokenType")
      }))

    test("TokenType: a security event or logout token typed just JWT, or not at all, is refused; acceptTyp lets one in", () =>
      Effect.gen(function*() {
        const { idp, validator } = yield* setup()
        const logout = { sid: "s-1", events: { "http://schemas.openid.net/event/backchannel-logout": {} } }
        const event = { events: { "https://schemas.openid.net/secevent/risc/event-type/account-disabled": {} } }
        for (const typ of ["JWT", undefined]) {
          yield* refused(validator, yield* idp.sign(logout, { header: { typ } }), "TokenType")
          yield* refused(validator, yield* idp.sign({ ...event, scope: "read" }, { header: { typ } }), "TokenType")
          // Keycloak's logout token names itself in a typ claim.
          yield* refused(validator, yield* idp.sign({ typ: "Logout", sid: "s-1" }, { header: { typ } }), "TokenType")
        }
        // Sign in with Apple's server-to-server notifications write the events object as a JSON string.
        const apple = JSON.stringify({ type: "consent-revoked", sub: "user-1", event_time: 1 })
        yield* refused(validator, yield* idp.sign({ events: apple }), "TokenType")
        yield* refused(validator, yield* idp.sign({ events: ` \n${apple}` }), "TokenType")
        // An app's own claim of that name that is not an object is not RFC 8417's.
        for (const events of [["signup"], "signup", "[1]"]) {
          expect((yield* validator.validate(yield* idp.sign({ events, scope: "read" }))).id).toBe("user-1")
        }
        // A remembered token is judged by the same rules: the first use is refused, so is the second.
        const remembered = yield* idp.sign(logout)
        yield* refused(validator, remembered, "TokenType")
        yield* refused(validator, remembered, "TokenType")
        // An endpoint that takes logout tokens says so by their type.
        const endpoint = yield* setup({ acceptTyp: ["logout+jwt"] })
        const typed = yield* endpoint.validator.validate(yield* idp.sign(logout, { header: { typ: "logout+jwt" } }))
        expect(typed.claims.sid).toBe("s-1")
        yield* refused(endpoint.validator, yield* idp.sign(logout, { header: { typ: "JWT" } }), "TokenType")
        // Keycloak before 25 typed its logout tokens `JWT` (Duende IdentityServer 6, `at+jwt`): listed, they come in.
        for (const typ of ["JWT", "at+jwt"]) {
          const older = yield* setup({ acceptTyp: [typ] })
          expect((yield* older.validator.validate(yield* idp.sign(logout, { header: { typ } }))).claims.sid).toBe("s-1")
        }
      }))

    test("TokenType: a token bound to its holder's key (cnf) is refused; allowBoundTokens lets it in", () =>
      Effect.gen(function*() {
        const { idp, validator } = yield* setup()
        const bound = [
          { cnf: { jkt: "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I" } }, // DPoP (RFC 9449)
          { cnf: { "x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2" } } // a client certificate (RFC 8705)
        ]
        for (const claims of bound) {
          const token = yield* idp.sign({ ...claims, scope: "read" })
          yield* refused(validator, token, "TokenType")
          yield* refused(validator, token, "TokenType") // remembered or not
        }
        const loosened = yield* setup({ allowBoundTokens: true })
        const principal = yield* loosened.validator.validate(yield* idp.sign({ ...bound[0]!, scope: "read" }))
        expect(principal.claims.cnf).toEqual(bound[0]!.cnf)
        const checked = TokenValidator.checkOptions({
          issuer: idp.issuer,
          audience: idp.audience,
          allowBoundTokens: "yes" as unknown as boolean
        })
        expect(Either.isLeft(checked) && checked.left._op === "InvalidData" && checked.left.path).toEqual([
          "allowBoundTokens"
        ])
      }))

    test("make refuses options of the wrong type or value with a ConfigError naming them", () =>
      Effect.sync(() => {
        const base: TokenValidator.Options = { issuer: "https://idp.example", audience: "api" }
        const pathOf = (options: Record<string, unknown>) => {
          const checked = TokenValidator.checkOptions({ ...base, ...options } as TokenValidator.Options)
          return Either.isLeft(checked) && checked.left._op === "InvalidData" ? checked.left.path : undefined
        }
        const cases: ReadonlyArray<readonly [Record<string, unknown>, string]> = [
          // An empty audience (an unset variable) would accept tokens whose aud, client_id or azp is empty.
          [{ audience: "" }, "audience"],
          [{ audience: ["api", ""] }, "audience"],
          [{ audience: ["api", 42] }, "audience"],
          // The same for an issuer in a list: tokens with an empty `iss` would match it.
          [{ issuer: ["https://idp.example", ""] }, "issuer"],
          // Duration reads NaN and negative values as zero: a mistake in the leeway would pass unseen.
          [{ leeway: Number.NaN }, "leeway"],
          [{ leeway: -5000 }, "leeway"],
          [{ leeway: "-30 seconds" }, "leeway"],
          [{ leeway: [-1, 0] }, "leeway"],
          [{ algorithms: "RS256" }, "algorithms"],
          // Read on every token: each of these died (or read a string letter by letter) on every validation.
          [{ tokenTypes: null }, "tokenTypes"],
          [{ tokenTypes: [] }, "tokenTypes"],
          [{ tokenTypes: ["refresh"] }, "tokenTypes"],
          [{ requiredClaims: 42 }, "requiredClaims"],
          [{ requiredClaims: "email" }, "requiredClaims"],
          [{ check: null }, "check"],
          [{ acceptTyp: "logout+jwt" }, "acceptTyp"],
          [{ principal: null }, "principal"],
          [{ principal: { username: "email" } }, "principal"],
          [{ principal: { groups: ["roles"] } }, "principal"]
        ]
        for (const [options, path] of cases) expect(pathOf(options), JSON.stringify(options)).toEqual([path])
        for (
          const options of [{}, { leeway: 0 }, { leeway: "30 seconds" }, { audience: [], allowAnyAudience: true }, {
            tokenTypes: ["access"],
            requiredClaims: ["email"],
            principal: { username: ["email"], groups: "roles" }
          }]
        ) expect(pathOf(options), JSON.stringify(options)).toBeUndefined()
      }))

    test("allowAnyAudience with an empty audience list skips the audience check", () =>
      Effect.gen(function*() {
        const { idp, validator } = yield* setup({ audience: [], allowAnyAudience: true })
        expect((yield* validator.validate(yield* idp.sign({ aud: "someone-else" }))).id).toBe("user-1")
      }))

    test("allowAnyAudience with an audience named still checks it: the option loosens only a missing audience", () =>
      Effect.gen(function*() {
        const { idp, validator } = yield* setup({ allowAnyAudience: true })
        expect((yield* validator.validate(yield* idp.sign({}))).id).toBe("user-1")
        yield* refused(validator, yield* idp.sign({ aud: "someone-else" }), "AudienceMismatch")
      }))

    test("MissingClaim: no exp", () =>
      Effect.gen(function*() {
        const { idp, validator } = yield* setup()
        yield* refused(validator, yield* idp.sign({ exp: undefined }), "MissingClaim")
      }))

    test("MissingClaim: a required claim is missing", () =>
      Effect.gen(function*() {
        const { idp, validator } = yield* setup({ requiredClaims: ["tenant", "sub"] })
        yield* refused(validator, yield* idp.sign({}), "MissingClaim")
        yield* refused(validator, yield* idp.sign({ tenant: "t1", sub: undefined }), "MissingClaim")
        expect((yield* validator.validate(yield* idp.sign({ tenant: "t1" }))).claims.tenant).toBe("t1")
        // an inherited property is not a claim
        const inherited = yield* setup({ requiredClaims: ["toString"] })
        yield* refused(inherited.validator, yield* idp.sign({}), "MissingClaim")
      }))

    test("CustomCheck: the hook's description is the error's", () =>
      Effect.gen(function*() {
        const { idp, validator } = yield* setup({
          check: (claims, header) =>
            claims.tenant === "t1" && header.kid !== undefined ? Effect.void : Effect.fail("tenant t1 only")
        })
        const error = yield* refused(validator, yield* idp.sign({ tenant: "t2" }), "CustomCheck")
        expect(error.description).toBe("tenant t1 only")
        expect((yield* validator.validate(yield* idp.sign({ tenant: "t1" }))).id).toBe("user-1")
      }))

    test("CustomCheck: a hook answering with Micro (whose results look like Exits) is run, not taken as decided", () =>
      Effect.gen(function*() {
        const { idp, validator } = yield* setup({
          check: (claims) => claims.tenant === "t1" ? Micro.void : Micro.fail("tenant t1 only")
        })
        const error = yield* refused(validator, yield* idp.sign({ tenant: "t2" }), "CustomCheck")
        expect(error.description).toBe("tenant t1 only")
        expect((yield* validator.validate(yield* idp.sign({ tenant: "t1" }))).id).toBe("user-1")
      }))
  })

  describe("time", () => {
    test("exactly at exp the token has expired; one second before it has not", () =>
      Effect.gen(function*() {
        const { idp, validator } = yield* setup()
        const token = yield* idp.sign({}, { expiresIn: "1 hour" })
        yield* TestClock.adjust("3599 seconds")
        expect((yield* validator.validate(token)).id).toBe("user-1")
        yield* TestClock.adjust("999 millis")
        expect((yield* validator.validate(token)).id).toBe("user-1")
        yield* TestClock.adjust("1 millis")
        yield* refused(validator, token, "Expired")
      }))

    test("the time checks read the clock after a key lookup that waited: a token that expired meanwhile is Expired", () =>
      Effect.gen(function*() {
        const idp = yield* FakeIdp.FakeIdp
        yield* idp.setFault(FakeIdp.Fault.latency("3 seconds"))
        const { validator } = yield* setup()
        const fiber = yield* Effect.fork(
          Effect.flip(validator.validate(yield* idp.sign({}, { expiresIn: "2 seconds" })))
        )
        yield* TestClock.adjust("3 seconds")
        const error = yield* Fiber.join(fiber)
        expect(isTokenValidationError(error) && error.reason).toBe("Expired")
      }))

    test("a leeway of 5 seconds: exp + 4s is fine, exp + 5s has expired", () =>
      Effect.gen(function*() {
        const { idp, validator } = yield* setup({ leeway: "5 seconds" })
        const token = yield* idp.sign({}, { expiresIn: "1 hour" })
        yield* TestClock.adjust("3604 seconds")
        expect((yield* validator.validate(token)).id).toBe("user-1")
        yield* TestClock.adjust("1 second")
        yield* refused(validator, token, "Expired")
      }))

    test("nbf exactly now is valid; nbf and iat within the leeway are too", () =>
      Effect.gen(function*() {
        const { idp, validator } = yield* setup()
        yield* TestClock.adjust("100 seconds")
        expect((yield* validator.validate(yield* idp.sign({ nbf: 100 }))).id).toBe("user-1")
        expect((yield* validator.validate(yield* idp.sign({ iat: 100 }))).id).toBe("user-1")
        yield* refused(validator, yield* idp.sign({ nbf: 101 }), "NotYetValid")
        const lenient = yield* setup({ leeway: "30 seconds" })
        expect((yield* lenient.validator.validate(yield* idp.sign({ nbf: 130, iat: 130 }))).id).toBe("user-1")
        yield* refused(lenient.validator, yield* idp.sign({ nbf: 131 }), "NotYetValid")
        yield* refused(lenient.validator, yield* idp.sign({ iat: 131 }), "NotYetValid")
      }))
  })

  describe("algorithm confusion", () => {
    const hmacToken = (secret: Uint8Array, kid: string, issuer: string, audience: string) =>
      Effect.promise(() =>
        new SignJWT({ iss: issuer, aud: audience, sub: "mallory", exp: 3600 })
          .setProtectedHeader({ alg: "HS256", kid })
          .sign(secret)
      )

    test("an HS256 token keyed with the RSA public key is refused", () =>
      Effect.gen(function*() {
        const { cache, idp, validator } = yield* setup()
        // `make` refuses HS256 over a key set; over a resolver that does not say what it verifies (an app's own over
        // the cache), a validator may allow it, and the key set still verifies no HS256 token.
        const issuer = { issuer: idp.issuer, audience: idp.audience, algorithms: ["RS256", "HS256"] } as const
        const refusedConfig = yield* Effect.flip(TokenValidator.make(TokenValidator.fromCache(cache), issuer))
        expect(refusedConfig._op === "InvalidData" && refusedConfig.path).toEqual(["algorithms"])
        const unsaid = Object.assign(TokenValidator.fromCache(cache), { algorithms: undefined })
        const hsAllowed = { validator: yield* TokenValidator.make(unsaid, issuer) }
        const kid = yield* idp.currentKid
        const jwk = (yield* idp.jwks).keys[0]! as JWK
        const publicKey = yield* Effect.promise(() => importJWK(jwk, "RS256", { extractable: true }))
        const pem = yield* Effect.promise(() => exportSPKI(publicKey as CryptoKey))
        const secrets = [
          Buffer.from(jwk.n!, "base64url"),
          new TextEncoder().encode(pem),
          new TextEncoder().encode(JSON.stringify(jwk))
        ]
        for (const secret of secrets) {
          const token = yield* hmacToken(secret, kid, idp.issuer, idp.audience)
          yield* refused(validator, token, "AlgorithmNotAllowed")
          yield* refused(hsAllowed.validator, token, "NoMatchingKey")
        }
        // key sets hold no symmetric keys: HS tokens never even reach the cache
        expect(yield* fetches).toBe(0)
      }))

    test("a real token with its alg swapped to PS256 or RS512 is refused", () =>
      Effect.gen(function*() {
        const { idp, validator } = yield* setup()
        const allRsa = yield* setup({ algorithms: ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"] })
        const token = yield* idp.sign({})
        for (const alg of ["PS256", "RS512", "PS512"]) {
          const swapped = withHeader(token, (h) => ({ ...h, alg }))
          yield* refused(validator, swapped, "AlgorithmNotAllowed")
          // the published key says alg RS256: it is no key for another algorithm
          yield* refused(allRsa.validator, swapped, "NoMatchingKey")
        }
        // a published key without alg may verify any RSA algorithm, but the signature does not fit the swapped one
        const { alg: _, ...withoutAlg } = (yield* idp.jwks).keys[0]!
        const cache = yield* JwksCache.make(JwksSource.fromKeySet({ keys: [withoutAlg] }), { backgroundRefresh: false })
        const open = yield* TokenValidator.make(TokenValidator.fromCache(cache), {
          issuer: idp.issuer,
          audience: idp.audience,
          algorithms: ["RS256", "PS256", "RS512"]
        })
        expect((yield* open.validate(token)).id).toBe("user-1")
        for (const alg of ["PS256", "RS512"]) {
          yield* refused(open, withHeader(token, (h) => ({ ...h, alg })), "InvalidSignature")
        }
      }))

    test("an ES256 token against an RS256-only validator", () =>
      Effect.gen(function*() {
        const { idp, validator } = yield* setup()
        const token = yield* idp.sign({}, { algorithm: "ES256" })
        expect(decodeJson(segmentsOf(token)[0]).alg).toBe("ES256")
        yield* refused(validator, token, "AlgorithmNotAllowed")
        expect(yield* fetches).toBe(0)
      }))
  })

  describe("key cache", () => {
    test("usage strategy: 3 verified tokens, then the 4th refetches; bad signatures do not count", () =>
      Effect.gen(function*() {
        const { cache, idp, validator } = yield* setup({}, { strategy: "usage", usages: 3, backgroundRefresh: false })
        const kid = yield* idp.currentKid
        const good = yield* idp.sign({})
        const forged = yield* idp.sign({}, { key: "unpublished", kid })
        const tampered = withClaims(good, (c) => ({ ...c, sub: "root" }))
        const junk = () =>
          Effect.gen(function*() {
            for (let i = 0; i < 7; i++) {
              yield* refused(validator, forged, "InvalidSignature")
              yield* refused(validator, tampered, "InvalidSignature")
            }
          })
        yield* junk()
        expect(yield* fetches).toBe(1)
        yield* validator.validate(good)
        yield* junk()
        yield* validator.validate(good)
        yield* junk()
        yield* validator.validate(good)
        expect(yield* fetches).toBe(1)
        expect((yield* cache.status).usesLeft).toBe(0)
        yield* validator.validate(good)
        expect(yield* fetches).toBe(2)
        expect((yield* cache.status).usesLeft).toBe(2)
      }))

    test("usage strategy: validly signed tokens that fail a claim check do not count either", () =>
      Effect.gen(function*() {
        const { cache, idp, validator } = yield* setup({}, { strategy: "usage", usages: 2, backgroundRefresh: false })
        const expired = yield* idp.sign({}, { expiresIn: "-1 minute" })
        const foreign = yield* idp.sign({ aud: "someone-else" })
        for (let i = 0; i < 10; i++) {
          yield* refused(validator, expired, "Expired")
          yield* refused(validator, foreign, "AudienceMismatch")
        }
        expect((yield* cache.status).usesLeft).toBe(2)
        expect(yield* fetches).toBe(1)
      }))

    test("an exp beyond any date is refused, not taken as never-expiring", () =>
      Effect.gen(function*() {
        const { idp, validator } = yield* setup()
        yield* refused(validator, yield* idp.sign({ exp: 1e300 }), "Malformed")
      }))

    test("an exp of the last second of 9999 is a date; one second later is beyond any date", () =>
      Effect.gen(function*() {
        const { idp, validator } = yield* setup()
        const principal = yield* validator.validate(yield* idp.sign({ exp: 253402300799 }))
        expect(principal.expiresAt.toISOString()).toBe("9999-12-31T23:59:59.000Z")
        yield* refused(validator, yield* idp.sign({ exp: 253402300800 }), "Malformed")
      }))

    test("rotation mid-traffic: tokens of published keys keep validating, a new kid refetches once", () =>
      Effect.gen(function*() {
        const { idp, validator } = yield* setup({}, { backgroundRefresh: true })
        const tokens = new Map<string, string>()
        const signCurrent = Effect.gen(function*() {
          const kid = yield* idp.currentKid
          tokens.set(kid, yield* idp.sign({ sub: kid }, { expiresIn: "2 hours" }))
          return kid
        })
        const first = yield* signCurrent
        let second = ""
        let third = ""
        for (let i = 0; i < 30; i++) {
          if (i === 10) {
            yield* idp.rotate("overlap")
            second = yield* signCurrent
            // a burst of the new kid at once, mixed with the old one: one refetch between them
            const burst = Array.from({ length: 40 }, (_, n) => tokens.get(n % 2 === 0 ? second : first)!)
            const principals = yield* Effect.forEach(burst, validator.validate, { concurrency: "unbounded" })
            expect(principals.map((principal) => principal.id)).toEqual(
              burst.map((_, n) => n % 2 === 0 ? second : first)
            )
            expect(yield* fetches).toBe(2)
          }
          if (i === 20) {
            yield* TestClock.adjust("31 seconds")
            yield* idp.rotate("replace")
            third = yield* signCurrent
          }
          for (const kid of yield* idp.publishedKids) {
            expect((yield* validator.validate(tokens.get(kid)!)).id).toBe(kid)
          }
          yield* TestClock.adjust("1 second")
        }
        expect(new Set([first, second, third]).size).toBe(3)
        expect(yield* fetches).toBe(3)
        // the replaced keys are gone from the refetched set; asking again is throttled
        yield* refused(validator, tokens.get(first)!, "NoMatchingKey")
        yield* refused(validator, tokens.get(second)!, "NoMatchingKey")
        expect(yield* fetches).toBe(3)
      }))

    test("an IdP that is down with a cold cache is a JwksError, not a TokenValidationError", () =>
      Effect.gen(function*() {
        const { idp, validator } = yield* setup()
        const token = yield* idp.sign({})
        for (const fault of [FakeIdp.Fault.status(503), FakeIdp.Fault.invalidJson, FakeIdp.Fault.emptySet]) {
          yield* idp.setFault(fault)
          yield* TestClock.adjust("10 minutes") // past any backoff of the previous failure
          const error = yield* Effect.flip(validator.validate(token))
          expect(isJwksError(error), String(error)).toBe(true)
          expect(isTokenValidationError(error)).toBe(false)
          expect(error._tag).toBe("JwksError")
        }
        yield* idp.setFault(undefined)
        yield* TestClock.adjust("10 minutes")
        const fresh = yield* idp.sign({})
        expect((yield* validator.validate(fresh)).id).toBe("user-1")
      }))
  })

  describe("headers", () => {
    test("JSON nested 100,000 deep, in signed claims: judged by the rules, never a defect; in a header: refused unread", () =>
      Effect.gen(function*() {
        const { signRaw, validator } = yield* localSetup({ maxTokenBytes: 1024 * 1024 })
        const depth = 100_000
        const nested = `${"[".repeat(depth)}${"]".repeat(depth)}`
        const exp = Math.floor(Date.now() / 1000) + 600
        const claims = `{"iss":"${localIssuer}","aud":"${localAudience}","sub":"deep","exp":${exp},"x":${nested}}`
        // Signed: accepted, and frozen all the way down like any claims.
        const principal = yield* validator.validate(yield* signRaw(claims))
        let innermost: unknown = principal.claims.x
        for (let level = 1; level < depth; level++) innermost = (innermost as ReadonlyArray<unknown>)[0]
        expect(innermost).toEqual([])
        expect(Object.isFrozen(innermost)).toBe(true)
        // Compared by content with a Principal of the same claims, parsed anew: no recursion to overflow the stack.
        const twin = new Principal({ ...principal, claims: JSON.parse(claims) })
        expect(Equal.equals(principal, twin)).toBe(true)
        expect(HashSet.size(HashSet.make(principal, twin))).toBe(1)
        // The same nesting in a header nobody signed: refused before it is parsed (see the next test).
        const [, payload, signature] = segmentsOf(yield* signRaw("{}"))
        const header = b64(`{"alg":"RS256","kid":"local","x":${nested}}`)
        yield* refused(validator, `${header}.${payload}.${signature}`, "Malformed")
      }))

    test("a header counting more than 64 (objects, lists, each : and ,), nested or side by side, is Malformed", () =>
      Effect.gen(function*() {
        const { signRaw, validator } = yield* localSetup()
        const exp = Math.floor(Date.now() / 1000) + 600
        const claims = `{"iss":"${localIssuer}","aud":"${localAudience}","sub":"s","exp":${exp}}`
        // An object of m members counts 2m (itself, m colons, m - 1 commas): alg, kid and 30 more are 64.
        const members = (count: number) => Object.fromEntries(Array.from({ length: count }, (_, i) => [`k${i}`, 0]))
        expect((yield* validator.validate(yield* signRaw(claims, members(30)))).id).toBe("s")
        yield* refused(validator, yield* signRaw(claims, members(31)), "Malformed")
        // A header as real ones come, an embedded jwk and a certificate chain, is read; brackets, colons and commas in
        // strings are text, an escaped quote too.
        const real = {
          typ: "dpop+jwt",
          jwk: { kty: "EC", crv: "P-256", x: "x", y: "y" },
          x5c: ["MIIB", "MIIC", "MIID"],
          text: `\"[{:,`.repeat(100)
        }
        yield* refused(validator, yield* signRaw(claims, real), "TokenType")
        for (
          const many of [
            { x: JSON.parse(`${"[".repeat(70)}${"]".repeat(70)}`) },
            { x: Array.from({ length: 70 }, () => 0) },
            { x: Array.from({ length: 40 }, () => []) }
          ]
        ) {
          yield* refused(validator, yield* signRaw(claims, many), "Malformed")
        }
      }))

    it.scoped("every token gets its own header, past the number of headers kept decoded; the check sees it frozen", () =>
      Effect.gen(function*() {
        const seen: Array<TokenValidator.Header> = []
        const { signRaw, validator } = yield* localSetup({
          check: (_, header) => Effect.sync(() => void seen.push(header))
        })
        const payload = `{"iss":"${localIssuer}","aud":"${localAudience}","sub":"s","exp":1e10}`
        const tokens = []
        for (let i = 0; i < 100; i++) tokens.push(yield* signRaw(payload, { n: i }))
        for (const token of [...tokens, tokens[0]!, tokens[99]!]) yield* validator.validate(token)
        expect(seen.map((header) => header.n)).toEqual([...Array.from({ length: 100 }, (_, i) => i), 0, 99])
        expect(Object.isFrozen(seen[0])).toBe(true)
      }))
    it.scoped("the decoded headers kept are bounded: past 64 distinct ones, the first is decoded anew", () =>
      Effect.gen(function*() {
        const seen: Array<TokenValidator.Header> = []
        const { signRaw, validator } = yield* localSetup({
          tokenCache: 0,
          check: (_, header) => Effect.sync(() => void seen.push(header))
        })
        const payload = `{"iss":"${localIssuer}","aud":"${localAudience}","sub":"s","exp":1e10}`
        const tokens = []
        for (let i = 0; i < 100; i++) tokens.push(yield* signRaw(payload, { n: i }))
        for (const token of [...tokens, tokens[99]!, tokens[0]!]) yield* validator.validate(token)
        // The 100th header is still kept (the same object again); the first was forgotten with the rest at 64.
        expect({ lastKept: seen[100] === seen[99], firstForgotten: seen[101] !== seen[0] })
          .toEqual({ lastKept: true, firstForgotten: true })
      }))
  })

  describe("what user code and callers can do", () => {
    test("an issuer rule or check that throws is a defect: never an answer, and the span still ends", () =>
      Effect.gen(function*() {
        const { idp, validator: strict } = yield* setup({
          issuer: { description: "throws", matches: () => Predicate.isString(assertNever()) }
        })
        const token = yield* idp.sign({})
        const exit = yield* Effect.exit(strict.validate(token))
        expect(Exit.isFailure(exit) && Cause.isDie(exit.cause)).toBe(true)
        const runtime = yield* Effect.runtime<never>()
        const rejected = yield* Effect.promise(() =>
          TokenValidator.toPromise(runtime)(strict)(token).then(() => "resolved", (e) => String(e))
        )
        expect(rejected).toMatch(/never/)
        const { validator: checked } = yield* setup({ check: () => Effect.succeed(assertNever()) })
        const { named, tracer } = recording()
        yield* Effect.exit(checked.validate(token).pipe(Effect.withTracer(tracer)))
        const span = named("TokenValidator.validate")[0]!
        expect(span.status._tag).toBe("Ended")
      }))

    test("a resolver built from fromCache with its own get is asked through that get, fresh set or not", () =>
      Effect.gen(function*() {
        const { cache, idp } = yield* setup()
        const base = TokenValidator.fromCache(cache)
        const revoked = yield* idp.currentKid
        const validator = yield* TokenValidator.make(
          { ...base, get: (kid, alg) => kid === revoked ? Effect.succeedNone : base.get(kid, alg) },
          { issuer: idp.issuer, audience: idp.audience }
        )
        yield* cache.refresh // the set is fresh and in memory
        yield* refused(validator, yield* idp.sign({}), "NoMatchingKey")
      }))

    test("the revoked-key wrapper of JwksCache.Service's docs refuses the key's tokens, with or without their kid", () =>
      Effect.gen(function*() {
        const { cache, idp } = yield* setup()
        // The docs' example, but for the kid.
        const revoked: ReadonlySet<string> = new Set([yield* idp.currentKid])
        const withoutRevoked = (cache: JwksCache.Service): JwksCache.Service => ({
          ...cache,
          get: (kid, alg) =>
            Effect.map(cache.get(kid, alg), Option.filter((key) => key.kid === undefined || !revoked.has(key.kid)))
        })
        const issuer = { issuer: idp.issuer, audience: idp.audience }
        const validator = yield* TokenValidator.make(TokenValidator.fromCache(withoutRevoked(cache)), issuer)
        yield* refused(validator, yield* idp.sign({}), "NoMatchingKey")
        // Whoever holds the revoked private key leaves the kid out: the set's only RS256 key would be chosen for it.
        yield* refused(validator, yield* idp.sign({}, { kid: null }), "NoMatchingKey")
        // A key not revoked still verifies.
        yield* idp.rotate("overlap")
        expect((yield* validator.validate(yield* idp.sign({ sub: "next" }))).id).toBe("next")
      }))

    test("a get, recordSuccess or validate of the app's, on a copy or put in place on ours, is what runs", () =>
      Effect.gen(function*() {
        const { cache, idp, validator } = yield* setup()
        const set = yield* Jwk.importKeySet(yield* idp.jwks, "static")
        const token = yield* idp.sign({ jti: "denied" })
        yield* validator.validate(token) // the set is fresh and in memory
        const refuseAll = { get: () => Effect.succeedNone }
        const issuer = { issuer: idp.issuer, audience: idp.audience }
        // Key policies: put in place on a resolver of ours (after the validator was built, too), on the cache, or on
        // a copy of the cache; each is asked while the set answers from memory.
        const inPlace = TokenValidator.fromCache(cache)
        const later = yield* TokenValidator.make(inPlace, issuer)
        Object.assign(inPlace, refuseAll)
        const staticResolver = Object.assign(Static.keyResolver(set), refuseAll)
        const cacheCopy = TokenValidator.fromCache({ ...cache, ...refuseAll })
        for (const resolver of [inPlace, staticResolver, cacheCopy]) {
          yield* refused(yield* TokenValidator.make(resolver, issuer), token, "NoMatchingKey")
        }
        yield* refused(later, token, "NoMatchingKey")
        // A recordSuccess of the app's on the cache itself counts the successes (and the get put there is asked).
        let recorded = 0
        let asked = 0
        const counted = { ...cache }
        const watched = yield* TokenValidator.make(TokenValidator.fromCache(counted), issuer)
        Object.assign(counted, {
          get: (kid: string | undefined, alg: Jwk.Algorithm) =>
            Effect.zipRight(Effect.sync(() => asked++), cache.get(kid, alg)),
          recordSuccess: Effect.sync(() => recorded++)
        })
        yield* watched.validate(token)
        expect({ asked, recorded }).toEqual({ asked: 1, recorded: 1 })
        // A validate of the app's (a deny list, a test's spy), put in place or on a copy, is what toPromise and multi
        // run.
        const denied = () =>
          Effect.fail(new TokenValidationError({ reason: "CustomCheck", description: "jti is on the deny list" }))
        const runtime = yield* Effect.runtime<never>()
        const viaPromise = (service: TokenValidator.Service) =>
          Effect.promise(() =>
            TokenValidator.toPromise(runtime)(service)(token).then(
              () => "accepted",
              (error: TokenValidationError) => error.reason
            )
          )
        const own = yield* TokenValidator.make(TokenValidator.fromCache(cache), issuer)
        const routed = TokenValidator.multi([own])
        const before = TokenValidator.toPromise(runtime)(routed)
        Object.assign(own, { validate: denied })
        expect(yield* viaPromise(own)).toBe("CustomCheck")
        expect(yield* viaPromise(routed)).toBe("CustomCheck")
        expect(yield* Effect.promise(() => before(token).then(() => "accepted", (error) => error.reason))).toBe(
          "CustomCheck"
        )
        expect(yield* viaPromise({ ...validator, validate: denied })).toBe("CustomCheck")
        expect(yield* viaPromise(validator)).toBe("accepted")
      }))

    test("claims and headers are frozen: a caller cannot stretch a remembered token's life", () =>
      Effect.gen(function*() {
        const { idp, validator } = yield* setup()
        const token = yield* idp.sign({ roles: { admin: false } }, { expiresIn: "1 minute" })
        const principal = yield* validator.validate(token)
        const claims = principal.claims as Record<string, unknown>
        expect(() => {
          claims.exp = 9_999_999_999
        }).toThrow(TypeError)
        expect(() => {
          ;(claims.roles as Record<string, unknown>).admin = true
        }).toThrow(TypeError)
        yield* TestClock.adjust("1 minute")
        yield* refused(validator, token, "Expired")
      }))
  })

  describe("spans", () => {
    test("a validation is one span under the caller's, with issuer, alg, kid and outcome, never the token", () =>
      Effect.gen(function*() {
        const { idp, validator } = yield* setup()
        const { named, spans, tracer } = recording()
        const token = yield* idp.sign({})
        yield* validator.validate(token).pipe(Effect.withSpan("request"), Effect.withTracer(tracer))
        const expired = yield* idp.sign({}, { expiresIn: "1 second" })
        yield* TestClock.adjust("1 second")
        yield* Effect.flip(validator.validate(expired).pipe(Effect.withTracer(tracer)))
        const [ok, refusedSpan] = named("TokenValidator.validate")
        expect(ok!.parent).toEqual(expect.objectContaining({ _tag: "Some", value: named("request")[0] }))
        expect(Object.fromEntries(ok!.attributes)).toEqual({
          "jwt.issuer": idp.issuer,
          "jwt.alg": "RS256",
          "jwt.kid": yield* idp.currentKid,
          outcome: "success"
        })
        expect(ok!.status._tag).toBe("Ended")
        expect(refusedSpan!.attributes.get("outcome")).toBe("Expired")
        const values = spans.flatMap((span) => [...span.attributes.values()].map(String))
        expect(values.some((value) => value.includes(token.split(".")[1]!))).toBe(false)
      }))

    test("a validation that waits for a fetch holds the fetch's span; a remembered token says so", () =>
      Effect.gen(function*() {
        const { idp, validator } = yield* setup()
        const { named, tracer } = recording()
        const token = yield* idp.sign({})
        yield* validator.validate(token).pipe(Effect.withTracer(tracer))
        yield* validator.validate(token).pipe(Effect.withTracer(tracer))
        const [cold, remembered] = named("TokenValidator.validate")
        const refresh = named("JwksCache.refresh")
        expect(refresh).toHaveLength(1)
        expect(refresh[0]!.parent).toEqual(expect.objectContaining({ _tag: "Some", value: cold }))
        expect(cold!.attributes.get("jwt.remembered")).toBeUndefined()
        expect(remembered!.attributes.get("jwt.remembered")).toBe(true)
        expect(remembered!.attributes.get("outcome")).toBe("success")
        // It names its alg and kid as a checked token's does.
        const kid = yield* idp.currentKid
        for (const span of [cold!, remembered!]) {
          expect([span.attributes.get("jwt.alg"), span.attributes.get("jwt.kid")]).toEqual(["RS256", kid])
        }
      }))

    test("a remembered token verified again (its key republished changed) is not called remembered", () =>
      Effect.gen(function*() {
        const { privateKey, publicKey } = yield* Effect.promise(() => generateKeyPair("RS256", { extractable: true }))
        const jwk = yield* Effect.promise(() => exportJWK(publicKey))
        // Published without an alg, then with one: the same material, a key of other algorithms, so a new key.
        let published: Array<Record<string, unknown>> = [{ ...jwk, kid: "k" }]
        const cache = yield* JwksCache.make(JwksSource.make("changing", Effect.sync(() => ({ keys: published }))), {
          backgroundRefresh: false
        })
        const validator = yield* TokenValidator.make(TokenValidator.fromCache(cache), {
          issuer: localIssuer,
          audience: localAudience
        })
        const token = yield* Effect.promise(() =>
          new SignJWT({ iss: localIssuer, aud: localAudience, exp: 3600 }).setProtectedHeader({
            alg: "RS256",
            kid: "k"
          })
            .sign(privateKey)
        )
        const { named, tracer } = recording()
        yield* validator.validate(token)
        yield* validator.validate(token).pipe(Effect.withTracer(tracer))
        published = [{ ...jwk, kid: "k", alg: "RS256" }]
        yield* cache.refresh
        yield* validator.validate(token).pipe(Effect.withTracer(tracer))
        const [remembered, again] = named("TokenValidator.validate")
        expect([remembered!.attributes.get("jwt.remembered"), again!.attributes.get("jwt.remembered")]).toEqual([
          true,
          false
        ])
        expect(again!.attributes.get("outcome")).toBe("success")
      }))

    test("no span with Effect's built-in tracer, which exports none, nor with tracing turned off", () =>
      Effect.gen(function*() {
        const spanNames: Array<string> = []
        const { idp, validator } = yield* setup({
          check: () =>
            Effect.map(
              Effect.orElseSucceed(Effect.map(Effect.currentSpan, (span) => span.name), () => "none"),
              (name) => {
                spanNames.push(name)
              }
            )
        })
        yield* validator.validate(yield* idp.sign({})).pipe(Effect.withSpan("request"))
        const { spans, tracer } = recording()
        yield* validator.validate(yield* idp.sign({})).pipe(
          Effect.withSpan("request"),
          Effect.withTracerEnabled(false),
          Effect.withTracer(tracer)
        )
        yield* validator.validate(yield* idp.sign({})).pipe(Effect.withSpan("request"), Effect.withTracer(tracer))
        expect(spanNames).toEqual(["request", "request", "TokenValidator.validate"])
        expect(spans.map((span) => span.name)).toEqual(["request", "TokenValidator.validate"])
      }))
  })

  describe("toPromise", () => {
    /** Settles a promise into an Either, inside the test's fiber. */
    const settled = <A>(promise: () => Promise<A>) =>
      Effect.promise(() => promise().then((value) => Either.right(value), (error: unknown) => Either.left(error)))

    class CountingSupervisor extends Supervisor.AbstractSupervisor<void> {
      starts = 0
      get value() {
        return Effect.void
      }
      override onStart() {
        this.starts++
      }
    }

    test("resolves a good token, rejects a bad one with the error itself, and reads the runtime's Clock", () =>
      Effect.gen(function*() {
        const { idp, validator } = yield* setup()
        const validate = TokenValidator.toPromise(yield* Effect.runtime<never>())(validator)
        const token = yield* idp.sign({ sub: "promised" }, { expiresIn: "1 minute" })
        expect(Either.getOrThrow(yield* settled(() => validate(token))).id).toBe("promised") // cold: keys fetched
        expect(Either.getOrThrow(yield* settled(() => validate(token))).id).toBe("promised") // from memory
        const malformed = Either.flip(yield* settled(() => validate("nope")))
        expect(Either.getOrThrow(malformed)).toBeInstanceOf(TokenValidationError)
        // Any other Service (here one built by multi) runs on the runtime, with the same answers.
        const routed = TokenValidator.toPromise(yield* Effect.runtime<never>())(TokenValidator.multi([validator]))
        expect(Either.getOrThrow(yield* settled(() => routed(token))).id).toBe("promised")
        expect(Either.getOrThrow(Either.flip(yield* settled(() => routed("a.b.c"))))).toBeInstanceOf(
          TokenValidationError
        )
        yield* TestClock.adjust("1 minute") // the runtime's clock is the test's
        const expired = Either.getOrThrow(Either.flip(yield* settled(() => validate(token))))
        expect((expired as TokenValidationError).reason).toBe("Expired")
      }))

    // Under a tracer the check runs in the validation's span, where Effect wraps a failure in a proxy of it.
    test("rejects with the very error a check failed with, a tracer installed or not", () =>
      Effect.gen(function*() {
        const denied = new TokenValidationError({ reason: "CustomCheck", description: "denied by policy" })
        const { idp, validator } = yield* setup({ check: () => Effect.fail(denied) })
        const token = yield* idp.sign({})
        const runtimes = [
          yield* Effect.runtime<never>(),
          yield* Effect.withTracer(Effect.runtime<never>(), recording().tracer)
        ]
        for (const runtime of runtimes) {
          const rejected = Either.flip(yield* settled(() => TokenValidator.toPromise(runtime)(validator)(token)))
          expect(Either.getOrThrow(rejected) === denied).toBe(true)
        }
      }))

    test("a validation from memory starts no fiber; one that waits for keys runs on the runtime", () =>
      Effect.gen(function*() {
        const { idp, validator } = yield* setup()
        const supervisor = new CountingSupervisor()
        const validate = TokenValidator.toPromise(yield* Effect.supervised(Effect.runtime<never>(), supervisor))(
          validator
        )
        const token = yield* idp.sign({})
        yield* settled(() => validate(token))
        const cold = supervisor.starts
        expect(cold).toBeGreaterThan(0)
        for (let i = 0; i < 5; i++) yield* settled(() => validate(token))
        yield* settled(() => validate(withClaims(token, (claims) => ({ ...claims, sub: "forged" }))))
        expect(supervisor.starts).toBe(cold)
      }))

    test("toPromise(multi(...)) rejects when an issuer rule throws on the unverified iss; it never throws", () =>
      Effect.gen(function*() {
        const { cache, idp } = yield* setup()
        const throwing = yield* TokenValidator.make(TokenValidator.fromCache(cache), {
          audience: idp.audience,
          // Without accepts, routing asks matches(iss, {}): this rule reads a claim it assumes is there.
          issuer: { description: "by tenant", matches: (_iss, claims) => (claims.tenant as string).length > 0 }
        })
        const validate = TokenValidator.toPromise(yield* Effect.runtime<never>())(TokenValidator.multi([throwing]))
        const token = yield* idp.sign({ tenant: "t1" })
        let promise: Promise<unknown> | undefined
        expect(() => (promise = validate(token))).not.toThrow()
        expect(yield* Effect.promise(() => promise!.then(() => "resolved", () => "rejected"))).toBe("rejected")
      }))

    test("a validate of the app's that throws as it is called (on a copy, or put in place behind multi) rejects", () =>
      Effect.gen(function*() {
        const { idp, validator } = yield* setup()
        const runtime = yield* Effect.runtime<never>()
        // A deny list by jti with a bug: a token without one makes it throw before any effect is built.
        const denying = (inner: TokenValidator.Service["validate"]): TokenValidator.Service["validate"] => (token) => {
          const jti: string = JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString()).jti
          return jti.startsWith("revoked-") ? Effect.die("revoked") : inner(token)
        }
        const copy: TokenValidator.Service = { ...validator, validate: denying(validator.validate) }
        const inPlace = yield* setup()
        ;(inPlace.validator as { validate: TokenValidator.Service["validate"] }).validate = denying(
          inPlace.validator.validate
        )
        const token = yield* idp.sign({})
        for (const service of [copy, TokenValidator.multi([copy]), TokenValidator.multi([inPlace.validator])]) {
          const validate = TokenValidator.toPromise(runtime)(service)
          let promise: Promise<unknown> | undefined
          expect(() => (promise = validate(token))).not.toThrow()
          expect(yield* Effect.promise(() => promise!.then(() => "resolved", () => "rejected"))).toBe("rejected")
        }
      }))

    test("a check that answers at once keeps a validation from memory fiber-free; one that must run gets a fiber", () =>
      Effect.gen(function*() {
        const supervisor = new CountingSupervisor()
        const runtime = yield* Effect.supervised(Effect.runtime<never>(), supervisor)
        const decided = yield* setup({
          check: (claims) => claims.sub === "mallory" ? Exit.fail("no mallory") : Exit.void
        })
        const validate = TokenValidator.toPromise(runtime)(decided.validator)
        const alice = yield* decided.idp.sign({ sub: "alice" })
        const mallory = yield* decided.idp.sign({ sub: "mallory" })
        yield* settled(() => validate(alice)) // cold: keys fetched on the runtime
        const cold = supervisor.starts
        expect(Either.getOrThrow(yield* settled(() => validate(alice))).id).toBe("alice")
        const refused = Either.getOrThrow(Either.flip(yield* settled(() => validate(mallory))))
        expect(refused).toMatchObject({ reason: "CustomCheck", description: "no mallory" })
        expect(supervisor.starts).toBe(cold)
        // The same check as an effect that must run gives the same answers, each on a fiber of the runtime.
        const effectful = yield* setup({
          check: (claims) => Effect.suspend(() => claims.sub === "mallory" ? Effect.fail("no mallory") : Effect.void)
        })
        const viaFiber = TokenValidator.toPromise(runtime)(effectful.validator)
        yield* settled(() => viaFiber(alice))
        const before = supervisor.starts
        expect(Either.getOrThrow(yield* settled(() => viaFiber(alice))).id).toBe("alice")
        expect(Either.getOrThrow(Either.flip(yield* settled(() => viaFiber(mallory))))).toMatchObject({
          reason: "CustomCheck"
        })
        expect(supervisor.starts).toBe(before + 2)
      }))

    test("the runtime's metric tags are kept, and with a tracer every validation gets its span", () =>
      Effect.gen(function*() {
        const { idp, validator } = yield* setup()
        const tagged = Metric.tagged(Metric.tagged(JwksMetrics.validations, "outcome", "success"), "tenant", "promise")
        const before = (yield* Metric.value(tagged)).count
        const validate = TokenValidator.toPromise(
          yield* Effect.runtime<never>().pipe(Effect.tagMetrics("tenant", "promise"))
        )(validator)
        const token = yield* idp.sign({})
        for (let i = 0; i < 3; i++) yield* settled(() => validate(token))
        expect((yield* Metric.value(tagged)).count - before).toBe(3)
        const { named, tracer } = recording()
        const traced = TokenValidator.toPromise(yield* Effect.runtime<never>().pipe(Effect.withTracer(tracer)))(
          validator
        )
        yield* settled(() => traced(token))
        expect(named("TokenValidator.validate")).toHaveLength(1)
      }))
  })

  describe("accessors and utilities", () => {
    test("TokenValidator.validate uses the service in context", () =>
      Effect.gen(function*() {
        const { idp, validator } = yield* setup()
        const layer = Layer.succeed(TokenValidator.TokenValidator, validator)
        const principal = yield* TokenValidator.validate(yield* idp.sign({ sub: "ctx" })).pipe(Effect.provide(layer))
        expect(principal.id).toBe("ctx")
        const error = yield* Effect.flip(TokenValidator.validate("nope").pipe(Effect.provide(layer)))
        expect(error).toBeInstanceOf(TokenValidationError)
        expect((error as TokenValidationError).reason).toBe("Malformed")
      }))

    it("peekClaims of a token with more than three parts: none, though its second part reads as claims", () => {
      const claims = JSON.stringify({ iss: "https://a.example" }) // 27 bytes: its base64url needs no padding
      const header = b64(JSON.stringify({ alg: "RS256" }))
      expect(Option.isSome(TokenValidator.peekClaims(`${header}.${b64(claims)}.AAAA`))).toBe(true)
      expect(Option.isNone(TokenValidator.peekClaims(`${header}.${b64(claims)}.${b64("   ")}.AAAA`))).toBe(true)
    })

    it("peekClaims of claims with many members and list items (a long roles list): read, only containers are capped", () => {
      const header = b64(JSON.stringify({ alg: "RS256" }))
      const roles = Array.from({ length: 1500 }, (_, i) => `role-${i}`)
      const claims = TokenValidator.peekClaims(
        `${header}.${b64(JSON.stringify({ iss: "https://a.example", roles }))}.AAAA`
      )
      expect(Option.map(claims, (read) => (read.roles as ReadonlyArray<string>).length)).toEqual(Option.some(1500))
    })

    it("peekHeader and peekClaims of something that is no string (a header left out, from JavaScript): none", () => {
      for (const token of [undefined, null, 42, { split: () => [] }]) {
        expect(Option.isNone(TokenValidator.peekHeader(token as unknown as string))).toBe(true)
        expect(Option.isNone(TokenValidator.peekClaims(token as unknown as string))).toBe(true)
      }
    })

    it("classify", () => {
      const rs: TokenValidator.Header = { alg: "RS256" }
      const cases: Array<[Record<string, unknown>, TokenValidator.Header, string]> = [
        [{ token_use: "id" }, rs, "id"],
        [{ token_use: "access" }, rs, "access"],
        [{ token_use: "refresh" }, rs, "refresh"],
        [{ token_use: "Refresh", scope: "read" }, rs, "refresh"],
        [{}, { alg: "RS256", typ: " AT+JWT ;v=1" }, "access"],
        [{ token_use: "access", nonce: "n" }, { alg: "RS256", typ: "JWT" }, "access"],
        [{ token_use: "id" }, { alg: "RS256", typ: "at+jwt" }, "id"],
        [{ token_use: "other" }, rs, "unknown"],
        [{}, { alg: "RS256", typ: "at+jwt" }, "access"],
        [{}, { alg: "RS256", typ: "AT+JWT" }, "access"],
        [{}, { alg: "RS256", typ: "application/at+jwt" }, "access"],
        [{ typ: "Refresh" }, { alg: "RS256", typ: "at+jwt" }, "refresh"],
        [{ typ: "Offline", token_use: "access" }, rs, "refresh"],
        [{ typ: "Refresh" }, rs, "refresh"],
        [{ typ: "Offline" }, rs, "refresh"],
        [{ typ: "ID" }, rs, "id"],
        [{ typ: "Bearer" }, rs, "access"],
        [{ typ: 1, scope: "a" }, rs, "access"],
        [{ nonce: "n" }, rs, "id"],
        [{ at_hash: "h" }, rs, "id"],
        [{ nonce: "n", scope: "openid" }, rs, "id"],
        [{ scope: "read" }, rs, "access"],
        [{ scp: ["read"] }, rs, "access"],
        [{ client_id: "c" }, rs, "access"],
        [{ idtyp: "app", appid: "c" }, rs, "access"],
        [{ azpacr: "1", azp: "c", roles: ["r"] }, rs, "access"],
        [{ appidacr: "1", appid: "c" }, rs, "access"],
        [{ sub: "svc@clients", azp: "svc", gty: "client-credentials" }, rs, "access"],
        [{}, { alg: "RS256", typ: "JWT" }, "unknown"],
        [{ azp: "c" }, rs, "unknown"],
        // An app's own auth service: Django REST framework Simple JWT's token_type, Flask-JWT-Extended's type.
        [{ token_type: "refresh", jti: "j", user_id: 1 }, rs, "refresh"],
        [{ token_type: "access", jti: "j", user_id: 1 }, rs, "access"],
        [{ type: "refresh", fresh: false }, rs, "refresh"],
        [{ type: "access", fresh: false }, rs, "access"],
        [{ type: "Refresh", token_use: "access" }, rs, "refresh"],
        [{ token_type: "refresh", scope: "read" }, { alg: "RS256", typ: "at+jwt" }, "refresh"],
        [{ token_type: 1, type: ["refresh"] }, rs, "unknown"],
        // ForgeRock / PingAM client-based tokens name themselves.
        [{ tokenName: "refresh_token", token_type: "Bearer", scope: "openid" }, rs, "refresh"],
        [{ tokenName: "access_token", token_type: "Bearer", scope: "openid" }, rs, "access"],
        // Casdoor's: its refresh token is signed as its access token is, but for the marker and a longer exp.
        [{ tokenType: "refresh-token", scope: "read", nonce: "n", type: "normal-user" }, rs, "refresh"],
        [{ tokenType: "access-token", type: "normal-user" }, rs, "access"]
      ]
      for (const [claims, header, expected] of cases) {
        expect(TokenValidator.classify(claims, header), JSON.stringify([claims, header])).toBe(expected)
      }
    })

    test("multi routes by issuer", () =>
      Effect.gen(function*() {
        const { idp, validator } = yield* setup()
        const multi = TokenValidator.multi([validator])
        expect((yield* multi.validate(yield* idp.sign({}))).id).toBe("user-1")
        yield* refused(multi, yield* idp.sign({ iss: "https://unknown.example" }), "IssuerMismatch")
        yield* refused(multi, "a.b.c", "Malformed")
      }))
  })
})
