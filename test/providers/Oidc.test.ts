import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import { describe, expect, it } from "@effect/vitest"
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Ref from "effect/Ref"
import * as Schema from "effect/Schema"
import * as TestClock from "effect/TestClock"
import { SignJWT } from "jose"
import * as Oidc from "../../src/providers/Oidc.js"
import * as FakeIdp from "../../src/testing/FakeIdp.js"
import * as TokenValidator from "../../src/TokenValidator.js"

const ISSUER = "https://login.example.test/realms/main"
const AUDIENCE = "orders-api"
const Idp = FakeIdp.layerTest({ issuer: ISSUER, audience: AUDIENCE })
/** No background fiber: every fetch in these tests is one a validation asked for. */
const onDemand = { backgroundRefresh: false } as const

const refusal = <A, E extends { readonly _tag: string; readonly reason: string }, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.map(Effect.flip(effect), (error) => `${error._tag}:${error.reason}`)

const env = (vars: Record<string, string>) =>
  Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(vars)), { pathDelim: "_" }))

const respond = (request: Parameters<Parameters<typeof HttpClient.make>[0]>[0], reply: FakeIdp.Reply) =>
  HttpClientResponse.fromWeb(request, new Response(reply.body, { status: reply.status, headers: reply.headers }))

const json = (body: unknown): FakeIdp.Reply => ({
  status: 200,
  headers: { "content-type": "application/json" },
  body: JSON.stringify(body)
})

/**
 * An HttpClient over the fake IdP whose discovery answers can be replaced: `override` gets each discovery request
 * after the IdP has counted it, and may answer in its place.
 */
const clientWith = (
  idp: FakeIdp.FakeIdp["Type"],
  override: (reply: FakeIdp.Reply) => Effect.Effect<FakeIdp.Reply>
): HttpClient.HttpClient =>
  HttpClient.make((request, url) =>
    new URL(idp.issuer).origin !== url.origin
      ? Effect.fail(new HttpClientError.RequestError({ request, reason: "Transport", description: "unknown host" }))
      : Effect.map(
        Effect.flatMap(
          idp.handle({ method: request.method, url }),
          (reply) => url.href === idp.discoveryUrl ? override(reply) : Effect.succeed(reply)
        ),
        (reply) => respond(request, reply)
      )
  )

/** A client over the fake IdP whose discovery answers 429 (retry in 2 minutes) once `limited` is set. */
const rateLimiting = (idp: FakeIdp.FakeIdp["Type"]) =>
  Effect.map(Ref.make(false), (limited) => ({
    limited,
    client: clientWith(idp, (reply) =>
      Effect.map(Ref.get(limited), (isLimited) =>
        isLimited
          ? { status: 429, headers: { "content-type": "text/plain", "retry-after": "120" }, body: "slow down" }
          : reply))
  }))

describe("Oidc", () => {
  it.scoped("validates a token through discovery and builds the principal", () =>
    Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      const validator = yield* Oidc.make({ issuer: ISSUER, audience: AUDIENCE, cache: onDemand })
      const token = yield* idp.sign({
        sub: "user-42",
        preferred_username: "alice",
        email: "alice@example.test",
        groups: ["admins", "staff"],
        scope: "orders:read orders:write",
        azp: "web-app"
      })
      const principal = yield* validator.validate(token)
      expect(principal.id).toBe("user-42")
      expect(principal.name).toBe("alice")
      expect(principal.email).toBe("alice@example.test")
      expect(principal.groups).toEqual(["admins", "staff"])
      expect(principal.scopes).toEqual(["orders:read", "orders:write"])
      expect(principal.tokenType).toBe("access")
      expect(principal.clientId).toBe("web-app")
      expect(principal.isMachine).toBe(false)
      expect(principal.issuer).toBe(ISSUER)
      expect(principal.expiresAt).toEqual(new Date(3600 * 1000))
      expect(validator.acceptsIssuer(ISSUER)).toBe(true)
      expect(validator.acceptsIssuer(`${ISSUER}/`)).toBe(false)
      expect(yield* idp.discoveryCount).toBe(1)
      expect(yield* idp.fetchCount).toBe(1)
    }).pipe(Effect.provide(Idp)))

  it.scoped("refuses a token for another audience or from another issuer", () =>
    Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      const validator = yield* Oidc.make({ issuer: ISSUER, audience: [AUDIENCE, "other-api"], cache: onDemand })
      expect((yield* validator.validate(yield* idp.sign({ aud: "other-api" }))).id).toBe("user-1")
      expect(yield* refusal(validator.validate(yield* idp.sign({ aud: "billing-api" })))).toBe(
        "TokenValidationError:AudienceMismatch"
      )
      expect(yield* refusal(validator.validate(yield* idp.sign({ iss: "https://login.example.test/realms/other" }))))
        .toBe("TokenValidationError:IssuerMismatch")
      const anyAudience = yield* Oidc.make({ issuer: ISSUER, allowAnyAudience: true, cache: onDemand })
      expect((yield* anyAudience.validate(yield* idp.sign({ aud: "billing-api" }))).id).toBe("user-1")
    }).pipe(Effect.provide(Idp)))

  it.scoped("skips discovery when jwksUri is given", () =>
    Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      const validator = yield* Oidc.make({ issuer: ISSUER, audience: AUDIENCE, jwksUri: idp.jwksUri, cache: onDemand })
      expect((yield* validator.validate(yield* idp.sign())).id).toBe("user-1")
      expect(yield* idp.discoveryCount).toBe(0)
      expect(yield* idp.fetchCount).toBe(1)
    }).pipe(Effect.provide(Idp)))

  it.scoped("boots while the identity provider is down and answers JwksError until it is back", () =>
    Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      const down = yield* Ref.make(true)
      const client = HttpClient.make((request, url) =>
        Effect.flatMap(Ref.get(down), (isDown) =>
          isDown
            ? Effect.fail(new HttpClientError.RequestError({ request, reason: "Transport", description: "refused" }))
            : Effect.map(idp.handle({ method: request.method, url }), (reply) => respond(request, reply)))
      )
      const validator = yield* Oidc.make({ issuer: ISSUER, audience: AUDIENCE }).pipe(
        Effect.provideService(HttpClient.HttpClient, client)
      )
      const token = yield* idp.sign()
      expect(yield* refusal(validator.validate(token))).toBe("JwksError:Unreachable")
      yield* Ref.set(down, false)
      yield* TestClock.adjust("10 minutes")
      expect((yield* validator.validate(token)).id).toBe("user-1")
    }).pipe(Effect.provide(Idp)))

  it.scoped("fails with IssuerMismatch when the discovery document names another issuer", () =>
    Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      // A trailing slash is another issuer: the default discovery URL is the IdP's, its document says no slash.
      const validator = yield* Oidc.make({ issuer: `${ISSUER}/`, audience: AUDIENCE, cache: onDemand })
      const error = yield* Effect.flip(validator.validate(yield* idp.sign({ iss: `${ISSUER}/` })))
      expect(error._tag).toBe("JwksError")
      expect(error.reason).toBe("IssuerMismatch")
      expect(error.message).toContain(idp.discoveryUrl)
      expect(yield* idp.discoveryCount).toBe(1)
      expect(yield* idp.fetchCount).toBe(0)
    }).pipe(Effect.provide(Idp)))

  it.scoped("discovers once across several key refreshes, rotation included", () =>
    Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      const validator = yield* Oidc.make({
        issuer: ISSUER,
        audience: AUDIENCE,
        cache: { ...onDemand, strategy: "time", interval: "1 minute" }
      })
      for (let round = 0; round < 3; round++) {
        expect((yield* validator.validate(yield* idp.sign())).id).toBe("user-1")
        yield* TestClock.adjust("2 minutes")
      }
      yield* idp.rotate("replace")
      expect((yield* validator.validate(yield* idp.sign())).id).toBe("user-1")
      expect(yield* idp.fetchCount).toBe(4)
      expect(yield* idp.discoveryCount).toBe(1)
    }).pipe(Effect.provide(Idp)))

  it.scoped("tries a failed discovery again at the next key fetch", () =>
    Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      const failures = yield* Ref.make(1)
      const client = clientWith(idp, (reply) =>
        Ref.modify(failures, (n) =>
          n > 0
            ? [{ status: 503, headers: { "content-type": "text/plain" }, body: "down" }, n - 1]
            : [reply, n]))
      const validator = yield* Oidc.make({ issuer: ISSUER, audience: AUDIENCE, cache: onDemand }).pipe(
        Effect.provideService(HttpClient.HttpClient, client)
      )
      const token = yield* idp.sign()
      const error = yield* Effect.flip(validator.validate(token))
      expect(error._tag === "JwksError" && error.reason === "HttpStatus" && error.status === 503).toBe(true)
      expect(error._tag === "JwksError" && error.source).toBe(idp.discoveryUrl)
      expect(yield* idp.fetchCount).toBe(0)
      yield* TestClock.adjust("10 seconds")
      expect((yield* validator.validate(token)).id).toBe("user-1")
      expect(yield* idp.discoveryCount).toBe(2)
      expect(yield* idp.fetchCount).toBe(1)
    }).pipe(Effect.provide(Idp)))

  it.scoped("discovers again after a key fetch from the discovered jwks_uri fails: a fixed document is followed", () =>
    Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      // At first the document names a jwks_uri that answers 404; the IdP then fixes it.
      const broken = yield* Ref.make(true)
      const client = clientWith(idp, (reply) =>
        Effect.map(
          Ref.get(broken),
          (isBroken) => isBroken ? json({ issuer: ISSUER, jwks_uri: `${ISSUER}/protocol/openid-connect/certz` }) : reply
        ))
      const validator = yield* Oidc.make({ issuer: ISSUER, audience: AUDIENCE, cache: onDemand }).pipe(
        Effect.provideService(HttpClient.HttpClient, client)
      )
      const token = yield* idp.sign()
      expect(yield* refusal(validator.validate(token))).toBe("JwksError:HttpStatus")
      yield* Ref.set(broken, false)
      // Within 5 minutes of the last discovery, the known jwks_uri is asked again (past the cache's backoff).
      yield* TestClock.adjust("10 seconds")
      expect(yield* refusal(validator.validate(token))).toBe("JwksError:HttpStatus")
      expect(yield* idp.discoveryCount).toBe(1)
      yield* TestClock.adjust("5 minutes")
      expect((yield* validator.validate(token)).id).toBe("user-1")
      expect(yield* idp.discoveryCount).toBe(2)
      // Kept while it answers.
      yield* TestClock.adjust("30 minutes")
      expect((yield* validator.validate(yield* idp.sign())).id).toBe("user-1")
      expect(yield* idp.discoveryCount).toBe(2)
    }).pipe(Effect.provide(Idp)))

  it.scoped("an empty key set at the discovered jwks_uri sends discovery again: keys moved elsewhere are followed", () =>
    Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      // The document names an old jwks_uri that now serves an empty set; the IdP then points it at the real one.
      const old = `${ISSUER}/protocol/openid-connect/old-certs`
      const moved = yield* Ref.make(false)
      const client = HttpClient.make((request, url) =>
        url.href === old
          ? Effect.succeed(respond(request, json({ keys: [] })))
          : Effect.map(
            Effect.flatMap(
              idp.handle({ method: request.method, url }),
              (reply) =>
                url.href === idp.discoveryUrl
                  ? Effect.map(Ref.get(moved), (isMoved) => isMoved ? reply : json({ issuer: ISSUER, jwks_uri: old }))
                  : Effect.succeed(reply)
            ),
            (reply) => respond(request, reply)
          )
      )
      const validator = yield* Oidc.make({ issuer: ISSUER, audience: AUDIENCE, cache: onDemand }).pipe(
        Effect.provideService(HttpClient.HttpClient, client)
      )
      const token = yield* idp.sign()
      expect(yield* refusal(validator.validate(token))).toBe("JwksError:EmptyKeySet")
      yield* Ref.set(moved, true)
      yield* TestClock.adjust("5 minutes")
      expect((yield* validator.validate(token)).id).toBe("user-1")
      expect(yield* idp.discoveryCount).toBe(2)
    }).pipe(Effect.provide(Idp)))

  it.scoped("while the key endpoint fails, discovery at most once per 5 minutes, and the known jwks_uri if it fails", () =>
    Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      const discoveryDown = yield* Ref.make(false)
      const client = clientWith(idp, (reply) =>
        Effect.map(
          Ref.get(discoveryDown),
          (down) => down ? { status: 503, headers: { "content-type": "text/plain" }, body: "busy" } : reply
        ))
      const validator = yield* Oidc.make({ issuer: ISSUER, audience: AUDIENCE, cache: onDemand }).pipe(
        Effect.provideService(HttpClient.HttpClient, client)
      )
      const token = yield* idp.sign()
      // The key endpoint is down for a while: each retry of the cache's backoff asks it, not discovery each time.
      yield* idp.setFault(FakeIdp.Fault.status(503))
      for (let i = 0; i < 6; i++) {
        expect(yield* refusal(validator.validate(token))).toBe("JwksError:HttpStatus")
        yield* TestClock.adjust("1 minute")
      }
      expect(yield* idp.discoveryCount).toBe(2) // the first, and one 5 minutes on
      expect(yield* idp.fetchCount).toBe(6)
      // Now discovery is down and the key endpoint back: the known jwks_uri answers.
      yield* Ref.set(discoveryDown, true)
      yield* idp.setFault(undefined)
      yield* TestClock.adjust("5 minutes")
      expect((yield* validator.validate(token)).id).toBe("user-1")
      expect(yield* idp.discoveryCount).toBe(3)
    }).pipe(Effect.provide(Idp)))

  it.scoped("a rediscovery refused with a Retry-After fails that fetch, and the cache waits as asked", () =>
    Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      const { client, limited } = yield* rateLimiting(idp)
      const validator = yield* Oidc.make({ issuer: ISSUER, audience: AUDIENCE, cache: onDemand }).pipe(
        Effect.provideService(HttpClient.HttpClient, client)
      )
      const token = yield* idp.sign()
      yield* idp.setFault(FakeIdp.Fault.status(503))
      expect(yield* refusal(validator.validate(token))).toBe("JwksError:HttpStatus")
      expect([yield* idp.discoveryCount, yield* idp.fetchCount]).toEqual([1, 1])
      // Five minutes on, discovery is due again and answers 429: no request to the failing jwks_uri follows it.
      yield* Ref.set(limited, true)
      yield* idp.setFault(undefined)
      yield* TestClock.adjust("5 minutes")
      const error = yield* Effect.flip(validator.validate(token))
      expect(error).toMatchObject({ _tag: "JwksError", reason: "HttpStatus", retryAfter: 120 })
      expect([yield* idp.discoveryCount, yield* idp.fetchCount]).toEqual([2, 1])
      // The next fetch waits as asked, here 30 seconds, all a cache with no keys to serve holds back (JwksCache's
      // limit); then the known jwks_uri, now answering, serves.
      yield* TestClock.adjust("29 seconds")
      expect(yield* refusal(validator.validate(token))).toBe("JwksError:HttpStatus")
      expect([yield* idp.discoveryCount, yield* idp.fetchCount]).toEqual([2, 1])
      yield* TestClock.adjust("1 second")
      expect((yield* validator.validate(token)).id).toBe("user-1")
      expect([yield* idp.discoveryCount, yield* idp.fetchCount]).toEqual([2, 2])
    }).pipe(Effect.provide(Idp)))

  it.scoped("refuses a discovered jwks_uri over plain http to a remote host", () =>
    Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      const client = clientWith(idp, () =>
        Effect.succeed(json({ issuer: ISSUER, jwks_uri: "http://login.example.test/realms/main/keys" })))
      const validator = yield* Oidc.make({ issuer: ISSUER, audience: AUDIENCE, cache: onDemand }).pipe(
        Effect.provideService(HttpClient.HttpClient, client)
      )
      expect(yield* refusal(validator.validate(yield* idp.sign()))).toBe("JwksError:InvalidShape")
      expect(yield* idp.fetchCount).toBe(0)
    }).pipe(Effect.provide(Idp)))

  it.scoped("takes an http jwks_uri on the origin of a discovery document fetched over http, and only there", () => {
    // A development setup: the IdP at http://keycloak:8080 (a Docker Compose service name, not a loopback host).
    const plain = "http://keycloak:8080/realms/main"
    return Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      expect(idp.jwksUri.startsWith("http://keycloak:8080/")).toBe(true)
      const validator = yield* Oidc.make({ issuer: plain, audience: AUDIENCE, cache: onDemand })
      expect((yield* validator.validate(yield* idp.sign({}))).id).toBe("user-1")
      expect(yield* idp.fetchCount).toBe(1)
      // The same document naming an http jwks_uri of another origin (another host, another port): refused unfetched.
      for (const elsewhere of ["http://keys.example.test/realms/main/keys", "http://keycloak:8081/realms/main/keys"]) {
        const client = clientWith(idp, () => Effect.succeed(json({ issuer: plain, jwks_uri: elsewhere })))
        const moved = yield* Oidc.make({ issuer: plain, audience: AUDIENCE, cache: onDemand }).pipe(
          Effect.provideService(HttpClient.HttpClient, client)
        )
        const error = yield* Effect.flip(moved.validate(yield* idp.sign({})))
        expect([error._tag, error.reason, error.description]).toEqual([
          "JwksError",
          "InvalidShape",
          "unexpected value at jwks_uri"
        ])
      }
      expect(yield* idp.fetchCount).toBe(1)
    }).pipe(Effect.provide(FakeIdp.layerTest({ issuer: plain, audience: AUDIENCE })))
  })

  it("DiscoveryDocument accepts https, and http on loopback hosts only", () => {
    const decode = Schema.decodeUnknownEither(Oidc.DiscoveryDocument)
    const accepts = (jwks_uri: string) => Either.isRight(decode({ issuer: ISSUER, jwks_uri, extra: [1, 2] }))
    expect(accepts("https://idp.example/keys")).toBe(true)
    expect(accepts("http://127.0.0.1:8080/keys")).toBe(true)
    expect(accepts("http://localhost:8080/keys")).toBe(true)
    expect(accepts("http://[::1]:8080/keys")).toBe(true)
    expect(accepts("http://idp.example/keys")).toBe(false)
    expect(accepts("http://127.0.0.1.evil.example/keys")).toBe(false)
    expect(accepts("ftp://idp.example/keys")).toBe(false)
    expect(accepts("/keys")).toBe(false)
    expect(Either.isRight(decode({ issuer: ISSUER }))).toBe(false)
    expect(Either.isRight(decode({ jwks_uri: "https://idp.example/keys" }))).toBe(false)
    expect(Oidc.discoveryUrlOf("https://idp.example/realm/")).toBe(
      "https://idp.example/realm/.well-known/openid-configuration"
    )
  })

  it.scoped("discoverySource is a key source of its own", () =>
    Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      const source = yield* Oidc.discoverySource(ISSUER)
      expect(source.name).toBe(idp.discoveryUrl)
      const set = yield* source.fetch
      expect(set.keys.length).toBe(1)
      yield* source.fetch
      expect(yield* idp.discoveryCount).toBe(1)
      expect(yield* idp.fetchCount).toBe(2)
      // A discovery URL with a key in its query is named without it (metric labels, logs, errors).
      const keyed = yield* Oidc.discoverySource(ISSUER, { discoveryUrl: `${idp.discoveryUrl}?code=s3cr3t` })
      expect(keyed.name).toMatch(new RegExp(`^${idp.discoveryUrl.replaceAll(".", "\\.")}\\?redacted-[0-9a-f]{8}$`))
      const typo = yield* Effect.flip(
        Oidc.make({ issuer: ISSUER, audience: "a", jwksUri: "htps://u:s3cr3t@x/k?key=s3cr3t" })
      )
      expect(typo.message).not.toContain("s3cr3t")
      expect((yield* keyed.fetch).keys.length).toBe(1)
    }).pipe(Effect.provide(Idp)))

  it.scoped("while its key fetches fail, discoverySource asks discovery again after 5 minutes, not before", () =>
    Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      const source = yield* Oidc.discoverySource(ISSUER)
      expect((yield* source.fetch).keys.length).toBe(1)
      yield* idp.setFault(FakeIdp.Fault.status(503))
      yield* Effect.flip(source.fetch)
      expect(yield* idp.discoveryCount).toBe(1)
      yield* TestClock.adjust("4 minutes")
      yield* TestClock.adjust("59 seconds")
      yield* Effect.flip(source.fetch)
      expect(yield* idp.discoveryCount).toBe(1)
      yield* TestClock.adjust("1 second")
      yield* Effect.flip(source.fetch)
      expect(yield* idp.discoveryCount).toBe(2)
    }).pipe(Effect.provide(Idp)))

  it.scoped("a routine hourly rediscovery refused with a Retry-After leaves the known jwks_uri serving", () =>
    Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      const { client, limited } = yield* rateLimiting(idp)
      const source = yield* Oidc.discoverySource(ISSUER).pipe(Effect.provideService(HttpClient.HttpClient, client))
      expect((yield* source.fetch).keys.length).toBe(1)
      // The key endpoint answers; an hour on, discovery is due anyway and is rate limited: the keys still come.
      yield* Ref.set(limited, true)
      yield* TestClock.adjust("1 hour")
      expect((yield* source.fetch).keys.length).toBe(1)
      expect([yield* idp.discoveryCount, yield* idp.fetchCount]).toEqual([2, 2])
    }).pipe(Effect.provide(Idp)))

  it.scoped("refuses an HS256 token, and HS256 among its algorithms: a key set never verifies HMAC", () =>
    Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      const secret = new TextEncoder().encode("x".repeat(32))
      const hmac = yield* Effect.promise(() =>
        new SignJWT({ iss: ISSUER, aud: AUDIENCE, sub: "mallory", exp: 3600 }).setProtectedHeader({ alg: "HS256" })
          .sign(secret)
      )
      const strict = yield* Oidc.make({ issuer: ISSUER, audience: AUDIENCE, cache: onDemand })
      expect(yield* refusal(strict.validate(hmac))).toBe("TokenValidationError:AlgorithmNotAllowed")
      // Named beside a key-set algorithm (a migration from a shared secret), it would make `multi` route the secret's
      // tokens here, to refuse every one: refused at start instead.
      const loose = yield* Effect.flip(Oidc.make({
        issuer: ISSUER,
        audience: AUDIENCE,
        algorithms: ["RS256", "HS256"],
        cache: onDemand
      }))
      expect(loose._op === "InvalidData" && [loose.path, loose.message]).toEqual([
        ["algorithms"],
        "expected algorithms a key set can verify, got HS256 (HS* are SharedSecret's: give it a validator of its own, under TokenValidator.multi)"
      ])
      expect((yield* strict.validate(yield* idp.sign())).id).toBe("user-1")
      // An algorithm the cache keeps no keys for (its own `algorithms`): refused before the cache starts (no fetch).
      const before = yield* idp.fetchCount
      const unkept = yield* Effect.flip(Oidc.make({
        issuer: ISSUER,
        audience: AUDIENCE,
        algorithms: ["RS256", "ES256"],
        cache: { ...onDemand, algorithms: ["RS256"] }
      }))
      expect(unkept._op === "InvalidData" && [unkept.path, unkept.message]).toEqual([
        ["algorithms"],
        "expected algorithms the cache keeps keys for (RS256), got ES256"
      ])
      expect(yield* idp.fetchCount).toBe(before)
    }).pipe(Effect.provide(Idp)))

  it.scoped("refuses bad options with a ConfigError", () =>
    Effect.gen(function*() {
      const bad = (options: Oidc.Options) => Effect.flip(Oidc.make(options))
      const noAudience = yield* bad({ issuer: ISSUER })
      expect(ConfigError.isConfigError(noAudience)).toBe(true)
      const both = yield* bad({
        issuer: ISSUER,
        audience: AUDIENCE,
        jwksUri: "https://a/keys",
        discoveryUrl: "https://a/d"
      })
      expect(both._op === "InvalidData" && both.path).toEqual(["jwksUri"])
      const notUrl = yield* bad({ issuer: "not a url", audience: AUDIENCE })
      expect(notUrl._op === "InvalidData" && notUrl.path).toEqual(["issuer"])
      const ftp = yield* bad({ issuer: ISSUER, audience: AUDIENCE, jwksUri: "ftp://idp.example/keys" })
      expect(ftp._op === "InvalidData" && ftp.path).toEqual(["jwksUri"])
      // Values of the wrong type (parsed JSON's null) are refused, not crashed on.
      const untyped = (options: Record<string, unknown>) =>
        Effect.map(
          bad({ issuer: ISSUER, audience: AUDIENCE, ...options } as Oidc.Options),
          (error) => error._op === "InvalidData" ? error.path : error._op
        )
      expect(yield* untyped({ jwksUri: null })).toEqual(["jwksUri"])
      expect(yield* untyped({ discoveryUrl: null })).toEqual(["discoveryUrl"])
      expect(yield* untyped({ cache: null })).toEqual(["cache"])
      expect(yield* untyped({ algorithms: ["HS256"] })).toEqual(["algorithms"])
      const badCache = yield* bad({ issuer: ISSUER, audience: AUDIENCE, cache: { backgroundRefreshThreshold: 2 } })
      expect(ConfigError.isConfigError(badCache)).toBe(true)
      // `new URL` would accept these, but the issuer is compared exactly: every token would then be refused.
      // So would these: C1 controls (U+0085 NEL) and invisible format characters (a zero-width space, a BOM), which
      // `new URL` percent-encodes.
      for (
        const issuer of [
          `${ISSUER}\n`,
          ` ${ISSUER}`,
          `${ISSUER}\t`,
          `${ISSUER}\u0085`,
          `${ISSUER}\u200b`,
          `\ufeff${ISSUER}`,
          `${ISSUER}\u034f`,
          `${ISSUER}\u{e0100}`
        ]
      ) {
        const spaced = yield* bad({ issuer, audience: AUDIENCE })
        expect(spaced._op === "InvalidData" && spaced.path).toEqual(["issuer"])
        const source = yield* Effect.flip(Oidc.discoverySource(issuer))
        expect(source._op === "InvalidData" && source.path).toEqual(["issuer"])
      }
      // An issuer written without its scheme parses (`keycloak:` as the scheme), but discovery could never be fetched
      // from it; with a jwksUri or discoveryUrl it is only compared with tokens' iss.
      for (const issuer of ["keycloak:8080/realms/main", "idp.example.com:8443/realms/main"]) {
        const schemeless = yield* bad({ issuer, audience: AUDIENCE })
        expect(schemeless._op === "InvalidData" && [schemeless.path, schemeless.message]).toEqual([
          ["issuer"],
          expect.stringContaining(`expected an http(s) URL to discover from, got ${issuer}`)
        ])
        const source = yield* Effect.flip(Oidc.discoverySource(issuer))
        expect(source._op === "InvalidData" && source.path).toEqual(["issuer"])
        yield* Oidc.make({ issuer, audience: AUDIENCE, jwksUri: `${ISSUER}/keys`, cache: onDemand })
        yield* Oidc.discoverySource(issuer, { discoveryUrl: `${ISSUER}/.well-known/openid-configuration` })
      }
      // An issuer has no query or fragment (OIDC Discovery, section 2): the well-known path appended to one would land
      // inside it, and discovery would ask the issuer's own page. With a jwksUri it is only compared with tokens' iss.
      for (
        const issuer of [
          `${ISSUER}#main`,
          `${ISSUER}?realm=main`,
          `${ISSUER}?`,
          "https://user:pw@idp.example/realms/x",
          "https://@idp.example/realms/x"
        ]
      ) {
        const extra = yield* bad({ issuer, audience: AUDIENCE })
        expect(extra._op === "InvalidData" && [extra.path, extra.message]).toEqual([
          ["issuer"],
          expect.stringContaining("an issuer to discover from has no ")
        ])
        const source = yield* Effect.flip(Oidc.discoverySource(issuer))
        expect(source._op === "InvalidData" && source.path).toEqual(["issuer"])
        yield* Oidc.make({ issuer, audience: AUDIENCE, jwksUri: `${ISSUER}/keys`, cache: onDemand })
      }
      const badDiscovery = yield* Effect.flip(Oidc.discoverySource(ISSUER, { discoveryUrl: "keycloak:8080/realms/x" }))
      expect(badDiscovery._op === "InvalidData" && badDiscovery.path).toEqual(["discoveryUrl"])
      // Limits that would die (an unreadable duration) or silently vanish (NaN, Infinity) are refused.
      const http = (options: Oidc.Options["http"], jwksUri?: string) =>
        Effect.map(
          bad({ issuer: ISSUER, audience: AUDIENCE, http: options, ...(jwksUri === undefined ? {} : { jwksUri }) }),
          (error) => error._op === "InvalidData" ? error.path : error._op
        )
      expect(yield* http({ timeout: "five seconds" as "5 seconds" })).toEqual(["http", "timeout"])
      expect(yield* http({ timeout: "five seconds" as "5 seconds" }, `${ISSUER}/keys`)).toEqual(["http", "timeout"])
      expect(yield* http({ timeout: Number.POSITIVE_INFINITY })).toEqual(["http", "timeout"])
      expect(yield* http({ timeout: 0 })).toEqual(["http", "timeout"])
      expect(yield* http({ maxBytes: Number.NaN })).toEqual(["http", "maxBytes"])
      expect(yield* http({ maxBytes: -1 })).toEqual(["http", "maxBytes"])
      expect(yield* http({ maxBytes: 1.5 })).toEqual(["http", "maxBytes"])
      // The cache's options under `cache`, where the app wrote them.
      const cache = yield* bad({ issuer: ISSUER, audience: AUDIENCE, cache: { backgroundRefreshThreshold: 2 } })
      expect(cache._op === "InvalidData" && cache.path).toEqual(["cache", "backgroundRefreshThreshold"])
      // No cache was started for a refused configuration: nothing reaches the IdP.
      yield* TestClock.adjust("1 hour")
      const idp = yield* FakeIdp.FakeIdp
      expect(yield* idp.discoveryCount).toBe(0)
      expect(yield* idp.fetchCount).toBe(0)
    }).pipe(Effect.provide(Idp)))

  describe("layerConfig", () => {
    it.effect("reads OIDC_* and JWKS_CACHE_* from the environment", () =>
      Effect.gen(function*() {
        const idp = yield* FakeIdp.FakeIdp
        const token = yield* idp.sign({ aud: "other-api" })
        const live = Oidc.layerConfig().pipe(
          Layer.provide(env({
            OIDC_ISSUER: ISSUER,
            OIDC_AUDIENCE: `${AUDIENCE}, other-api`,
            JWKS_CACHE_BACKGROUND_REFRESH: "false",
            JWKS_CACHE_STRATEGY: "time",
            JWKS_CACHE_INTERVAL: "1 minute"
          }))
        )
        yield* Effect.gen(function*() {
          expect((yield* TokenValidator.validate(token)).id).toBe("user-1")
          yield* TestClock.adjust("2 minutes")
          expect((yield* TokenValidator.validate(token)).id).toBe("user-1")
        }).pipe(Effect.provide(live))
        expect(yield* idp.discoveryCount).toBe(1)
        expect(yield* idp.fetchCount).toBe(2)
      }).pipe(Effect.provide(Idp)))

    it.effect("reads OIDC_JWKS_URI and skips discovery", () =>
      Effect.gen(function*() {
        const idp = yield* FakeIdp.FakeIdp
        const live = Oidc.layerConfig().pipe(
          Layer.provide(env({ OIDC_ISSUER: ISSUER, OIDC_AUDIENCE: AUDIENCE, OIDC_JWKS_URI: idp.jwksUri }))
        )
        expect((yield* TokenValidator.validate(yield* idp.sign()).pipe(Effect.provide(live))).id).toBe("user-1")
        expect(yield* idp.discoveryCount).toBe(0)
      }).pipe(Effect.provide(Idp)))

    it.effect("fails with a ConfigError when a required variable is missing or a setting is bad", () =>
      Effect.gen(function*() {
        const build = (vars: Record<string, string>) =>
          Effect.flip(Effect.provide(TokenValidator.TokenValidator, Oidc.layerConfig().pipe(Layer.provide(env(vars)))))
        const noIssuer = yield* build({ OIDC_AUDIENCE: AUDIENCE })
        expect(ConfigError.isConfigError(noIssuer) && ConfigError.isMissingDataOnly(noIssuer)).toBe(true)
        const noAudience = yield* build({ OIDC_ISSUER: ISSUER })
        expect(ConfigError.isConfigError(noAudience) && ConfigError.isMissingDataOnly(noAudience)).toBe(true)
        // Each error names the variable to fix, as it is written (not twice, not the option's name in code).
        const emptyAudience = yield* build({ OIDC_ISSUER: ISSUER, OIDC_AUDIENCE: " , " })
        expect(ConfigError.isConfigError(emptyAudience)).toBe(true)
        expect(String(emptyAudience)).toContain("at OIDC_AUDIENCE:")
        const badCache = yield* build({ OIDC_ISSUER: ISSUER, OIDC_AUDIENCE: AUDIENCE, JWKS_CACHE_STRATEGY: "never" })
        expect(ConfigError.isConfigError(badCache)).toBe(true)
        for (const [name, value] of [["JWKS_CACHE_INTERVAL", "soon"], ["JWKS_CACHE_INTERVAL", "0 seconds"]] as const) {
          const error = yield* build({ OIDC_ISSUER: ISSUER, OIDC_AUDIENCE: AUDIENCE, [name]: value })
          expect(String(error), `${name}=${value}`).toContain("at JWKS_CACHE.INTERVAL:")
        }
        const outOfRange = yield* build({
          OIDC_ISSUER: ISSUER,
          OIDC_AUDIENCE: AUDIENCE,
          JWKS_CACHE_BACKGROUND_REFRESH_THRESHOLD: "2"
        })
        expect(String(outOfRange)).toContain("at JWKS_CACHE.BACKGROUND_REFRESH_THRESHOLD:")
        // A value the provider's checks refuse, named by its variable too (it was named `issuer`, as in code).
        const good: Record<string, string> = { OIDC_ISSUER: ISSUER, OIDC_AUDIENCE: AUDIENCE }
        for (
          const [vars, name] of [
            [{ OIDC_ISSUER: "idp.example" }, "OIDC_ISSUER"],
            [{ OIDC_ISSUER: `${ISSUER} ` }, "OIDC_ISSUER"],
            [{ OIDC_JWKS_URI: "file:///etc/jwks.json" }, "OIDC_JWKS_URI"],
            [{ OIDC_DISCOVERY_URL: "not a url" }, "OIDC_DISCOVERY_URL"]
          ] as const
        ) {
          const error = yield* build({ ...good, ...vars })
          expect(error._op === "InvalidData" && error.path, JSON.stringify(vars)).toEqual([name])
        }
        // Each value is checked alone as it is read: what the code adds may make the whole good (a jwksUri for an
        // issuer that is no http(s) URL to discover from), and `make` checks the whole.
        const completed = yield* Effect.exit(
          Effect.provide(
            TokenValidator.TokenValidator,
            Oidc.layerConfig(
              Config.map(Oidc.config, (options): Oidc.Options => ({ ...options, jwksUri: "https://idp.example/jwks" }))
            ).pipe(Layer.provide(env({ OIDC_ISSUER: "urn:example:idp", OIDC_AUDIENCE: AUDIENCE })))
          )
        )
        expect(Exit.isSuccess(completed)).toBe(true)
      }).pipe(Effect.provide(Idp)))
  })
})
