import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as HttpClient from "@effect/platform/HttpClient"
import { describe, expect, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"
import { createLocalJWKSet, createRemoteJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from "jose"
import { createServer } from "node:http"
import * as Oidc from "../src/providers/Oidc.js"
import * as FakeIdp from "../src/testing/FakeIdp.js"
import type { Service as Validator } from "../src/TokenValidator.js"

const getJwks = Effect.gen(function*() {
  const idp = yield* FakeIdp.FakeIdp
  return yield* HttpClient.get(idp.jwksUri)
})

const getJson = (url: string) => Effect.flatMap(HttpClient.get(url), (response) => response.json)

const verify = (token: string, options: { readonly at: number }) =>
  Effect.gen(function*() {
    const idp = yield* FakeIdp.FakeIdp
    const set = yield* idp.jwks
    return yield* Effect.promise(() =>
      jwtVerify(token, createLocalJWKSet({ keys: set.keys.map((key) => ({ ...key })) }), {
        issuer: idp.issuer,
        audience: idp.audience,
        currentDate: new Date(options.at)
      })
    )
  })

const verifyFailure = (token: string) =>
  Effect.gen(function*() {
    const idp = yield* FakeIdp.FakeIdp
    const set = yield* idp.jwks
    return yield* Effect.flip(
      Effect.tryPromise({
        try: () => jwtVerify(token, createLocalJWKSet({ keys: set.keys.map((key) => ({ ...key })) })),
        catch: (cause) => cause as Error
      })
    )
  })

describe("FakeIdp", () => {
  describe("HttpClient form", () => {
    it.effect("serves the JWKS with the current kid, content-type and content-length", () =>
      Effect.gen(function*() {
        const idp = yield* FakeIdp.FakeIdp
        const response = yield* getJwks
        const body = yield* response.text
        expect(response.status).toBe(200)
        expect(response.headers["content-type"]).toBe("application/json")
        expect(response.headers["content-length"]).toBe(String(Buffer.byteLength(body)))
        const set = JSON.parse(body) as { keys: Array<Record<string, unknown>> }
        const kid = yield* idp.currentKid
        expect(set.keys.map((key) => key.kid)).toEqual([kid])
        expect(kid).toMatch(/^[0-9a-f]{16}$/)
        expect(set.keys[0]).toMatchObject({ kty: "RSA", alg: "RS256", use: "sig" })
        expect(set.keys[0]).not.toHaveProperty("d")
        expect(set).toEqual(yield* idp.jwks)
      }).pipe(Effect.provide(FakeIdp.layerTest())))

    it.effect("serves the discovery document", () =>
      Effect.gen(function*() {
        const idp = yield* FakeIdp.FakeIdp
        expect(idp.issuer).toBe("https://login.example.test/realm")
        expect(idp.discoveryUrl).toBe("https://login.example.test/realm/.well-known/openid-configuration")
        const document = yield* getJson(idp.discoveryUrl)
        expect(document).toMatchObject({
          issuer: "https://login.example.test/realm",
          jwks_uri: "https://login.example.test/realm/.well-known/jwks.json",
          id_token_signing_alg_values_supported: ["ES256"]
        })
        expect(yield* idp.discoveryCount).toBe(1)
        expect(yield* idp.fetchCount).toBe(0)
      }).pipe(Effect.provide(FakeIdp.layerTest({ issuer: "https://login.example.test/realm", algorithm: "ES256" }))))

    it.effect("answers 404 on unknown paths and fails requests to other hosts with a transport error", () =>
      Effect.gen(function*() {
        const idp = yield* FakeIdp.FakeIdp
        const notFound = yield* HttpClient.get(`${idp.issuer}/nope`)
        expect(notFound.status).toBe(404)
        const error = yield* Effect.flip(HttpClient.get("https://elsewhere.example.test/.well-known/jwks.json"))
        expect(error._tag).toBe("RequestError")
        expect(error.reason).toBe("Transport")
      }).pipe(Effect.provide(FakeIdp.layerTest())))

    it.effect("answers 405 to methods other than GET and HEAD, on both endpoints, and counts the request", () =>
      Effect.gen(function*() {
        const idp = yield* FakeIdp.FakeIdp
        for (const url of [idp.jwksUri, idp.discoveryUrl]) {
          const posted = yield* idp.handle({ method: "POST", url: new URL(url) })
          expect([posted.status, posted.body]).toEqual([405, "method not allowed"])
          expect((yield* idp.handle({ method: "HEAD", url: new URL(url) })).status).toBe(200)
        }
        expect([yield* idp.fetchCount, yield* idp.discoveryCount]).toEqual([2, 2])
      }).pipe(Effect.provide(FakeIdp.layerTest())))

    it.effect("answers HEAD with the headers of GET and no body, and marks every answer no-store", () =>
      Effect.gen(function*() {
        const idp = yield* FakeIdp.FakeIdp
        const got = yield* getJwks
        const head = yield* HttpClient.head(idp.jwksUri)
        expect(head.status).toBe(200)
        expect(yield* head.text).toBe("")
        expect(head.headers["content-length"]).toBe(got.headers["content-length"])
        expect(got.headers["cache-control"]).toBe("no-store")
        expect((yield* HttpClient.get(idp.discoveryUrl)).headers["cache-control"]).toBe("no-store")
      }).pipe(Effect.provide(FakeIdp.layerTest())))

    it.effect("routes on the path alone: a query string still reaches the JWKS and discovery endpoints", () =>
      Effect.gen(function*() {
        const idp = yield* FakeIdp.FakeIdp
        const jwks = yield* HttpClient.get(`${idp.jwksUri}?v=2`)
        expect(jwks.status).toBe(200)
        expect(((yield* jwks.json) as { keys: Array<{ kid: string }> }).keys.map((key) => key.kid)).toEqual([
          yield* idp.currentKid
        ])
        expect((yield* HttpClient.get(`${idp.discoveryUrl}?x=1`)).status).toBe(200)
        expect([yield* idp.fetchCount, yield* idp.discoveryCount]).toEqual([1, 1])
      }).pipe(Effect.provide(FakeIdp.layerTest())))

    it.effect("refuses the issuer's host under another scheme with a transport error", () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(HttpClient.get("http://idp.example.test/.well-known/jwks.json"))
        expect([error._tag, error.reason]).toEqual(["RequestError", "Transport"])
        expect(String(error.description)).toContain("FakeIdp serves https://idp.example.test only")
      }).pipe(Effect.provide(FakeIdp.layerTest())))

    it.effect("content-length counts bytes, not characters, for an issuer outside ASCII", () =>
      Effect.gen(function*() {
        const idp = yield* FakeIdp.FakeIdp
        const reply = yield* idp.handle({ method: "GET", url: new URL(idp.discoveryUrl) })
        expect(reply.status).toBe(200)
        expect(JSON.parse(reply.body).issuer).toBe("https://idp.example.test/r\u00e9alm")
        expect(reply.headers["content-length"]).toBe(String(Buffer.byteLength(reply.body)))
      }).pipe(Effect.provide(FakeIdp.layerTest({ issuer: "https://idp.example.test/r\u00e9alm" }))))

    it.effect("the discovery document lists each algorithm once after an overlap rotation", () =>
      Effect.gen(function*() {
        const idp = yield* FakeIdp.FakeIdp
        yield* idp.rotate("overlap")
        yield* idp.rotate("overlap")
        const document = yield* getJson(idp.discoveryUrl)
        expect(document).toMatchObject({ id_token_signing_alg_values_supported: ["RS256"] })
      }).pipe(Effect.provide(FakeIdp.layerTest())))

    it.effect("an issuer with trailing slashes: endpoints under it without doubled slashes", () =>
      Effect.gen(function*() {
        const idp = yield* FakeIdp.FakeIdp
        expect(idp.jwksUri).toBe("https://a.test/realm/.well-known/jwks.json")
        expect(idp.discoveryUrl).toBe("https://a.test/realm/.well-known/openid-configuration")
        const document = yield* getJson(idp.discoveryUrl)
        expect(document).toMatchObject({
          issuer: "https://a.test/realm//",
          jwks_uri: "https://a.test/realm/.well-known/jwks.json",
          authorization_endpoint: "https://a.test/realm/authorize",
          token_endpoint: "https://a.test/realm/token"
        })
      }).pipe(Effect.provide(FakeIdp.layerTest({ issuer: "https://a.test/realm//" }))))
  })

  describe("sign", () => {
    it.effect("signs tokens that verify against the published JWKS, with iat/exp from the Clock", () =>
      Effect.gen(function*() {
        const idp = yield* FakeIdp.FakeIdp
        yield* TestClock.adjust("10 minutes")
        const token = yield* idp.sign()
        const { payload, protectedHeader } = yield* verify(token, { at: 600_000 })
        expect(protectedHeader).toEqual({ alg: "RS256", kid: yield* idp.currentKid })
        expect(payload).toEqual({
          iss: "https://idp.example.test",
          aud: "effect-jwks-test",
          sub: "user-1",
          iat: 600,
          exp: 600 + 3600
        })
        const short = yield* idp.sign({}, { expiresIn: "5 minutes" })
        const verified = yield* verify(short, { at: 600_000 })
        expect(verified.payload.exp).toBe(900)
        // A negative lifetime: a token that expired that long ago (Duration alone would read these as zero).
        for (const expiresIn of ["-30 seconds", -30_000, BigInt(-30e9), [-30, 0], [-31, 1e9]] as const) {
          const expired = yield* idp.sign({}, { expiresIn })
          expect(decodeJwt(expired).exp).toBe(600 - 30)
        }
        // An infinite lifetime, or an alg no key of the fake could sign, is a defect with a message, not jose's.
        const infinite = yield* Effect.exit(idp.sign({}, { expiresIn: Number.POSITIVE_INFINITY }))
        expect(Exit.isFailure(infinite) && Cause.pretty(infinite.cause)).toMatch(/expiresIn must be finite/)
        // NaN (`Number(process.env.TTL)` unset) too, where Duration would read it as zero: a token born expired.
        for (const expiresIn of [Number.NaN, [Number.NaN, 0], [-Infinity, 0]] as const) {
          const nan = yield* Effect.exit(idp.sign({}, { expiresIn }))
          expect(Exit.isFailure(nan) && Cause.pretty(nan.cause)).toMatch(/expiresIn must be finite/)
        }
        const otherAlg = yield* Effect.exit(idp.sign({}, { header: { alg: "RS512" } }))
        expect(Exit.isFailure(otherAlg) && Cause.pretty(otherAlg.cause)).toMatch(
          /header.alg RS512 is not the RS256 key/
        )
      }).pipe(Effect.provide(FakeIdp.layerTest())))

    it.effect("lets claims override and remove the defaults", () =>
      Effect.gen(function*() {
        const idp = yield* FakeIdp.FakeIdp
        const token = yield* idp.sign({ sub: "alice", scope: "read", aud: ["a", "effect-jwks-test"], iat: undefined })
        const { payload } = yield* verify(token, { at: 0 })
        expect(payload).toEqual({
          iss: "https://idp.example.test",
          aud: ["a", "effect-jwks-test"],
          sub: "alice",
          scope: "read",
          exp: 3600
        })
      }).pipe(Effect.provide(FakeIdp.layerTest())))

    it.effect("overrides or omits the kid and adds header fields", () =>
      Effect.gen(function*() {
        const idp = yield* FakeIdp.FakeIdp
        const noKid = yield* idp.sign({}, { kid: null })
        expect(decodeProtectedHeader(noKid)).toEqual({ alg: "RS256" })
        const otherKid = yield* idp.sign({}, { kid: "other" })
        expect(decodeProtectedHeader(otherKid).kid).toBe("other")
        const crit = yield* idp.sign({}, { header: { typ: "at+jwt", crit: ["x-ext"], "x-ext": 1 } })
        expect(decodeProtectedHeader(crit)).toMatchObject({ typ: "at+jwt", crit: ["x-ext"], "x-ext": 1 })
        const error = yield* verifyFailure(crit)
        expect(String(error)).toMatch(/x-ext/)
      }).pipe(Effect.provide(FakeIdp.layerTest())))

    it.effect("signs with unpublished keys for forgery tests", () =>
      Effect.gen(function*() {
        const idp = yield* FakeIdp.FakeIdp
        const currentKid = yield* idp.currentKid
        const forged = yield* idp.sign({}, { key: "unpublished", kid: currentKid })
        expect(decodeProtectedHeader(forged).kid).toBe(currentKid)
        expect(String(yield* verifyFailure(forged))).toMatch(/signature/)
        const unknown = yield* idp.sign({}, { key: "unpublished" })
        const unknownKid = decodeProtectedHeader(unknown).kid
        expect(unknownKid).toBeDefined()
        expect(yield* idp.publishedKids).not.toContain(unknownKid)
        const es256 = yield* idp.sign({}, { algorithm: "ES256" })
        expect(decodeProtectedHeader(es256).alg).toBe("ES256")
        expect(yield* idp.publishedKids).toEqual([currentKid])
        // The lazily generated key is reused.
        const again = yield* idp.sign({}, { algorithm: "ES256" })
        expect(decodeProtectedHeader(again).kid).toBe(decodeProtectedHeader(es256).kid)
      }).pipe(Effect.provide(FakeIdp.layerTest())))

    it.effect("an ES256 fake signs with its published ES256 key by default", () =>
      Effect.gen(function*() {
        const idp = yield* FakeIdp.FakeIdp
        const token = yield* idp.sign()
        expect(decodeProtectedHeader(token)).toEqual({ alg: "ES256", kid: yield* idp.currentKid })
        yield* verify(token, { at: 0 })
      }).pipe(Effect.provide(FakeIdp.layerTest({ algorithm: "ES256" }))))

    it.effect("keeps a claim set to null, and drops only those set to undefined", () =>
      Effect.gen(function*() {
        const idp = yield* FakeIdp.FakeIdp
        const payload = decodeJwt(yield* idp.sign({ nonce: null, sub: undefined }))
        expect(payload).toHaveProperty("nonce", null)
        expect(payload).not.toHaveProperty("sub")
      }).pipe(Effect.provide(FakeIdp.layerTest())))

    it.effect("iat is the Clock's whole second, and lifetimes are whole seconds toward zero in every form", () =>
      Effect.gen(function*() {
        const idp = yield* FakeIdp.FakeIdp
        yield* TestClock.adjust("1600 millis")
        expect(decodeJwt(yield* idp.sign()).iat).toBe(1)
        const cases = [
          ["1500 millis", 1],
          [1500, 1],
          ["-1500 millis", -1],
          [-1500, -1],
          [[-2, 5e8], -1]
        ] as const
        for (const [expiresIn, lifetime] of cases) {
          expect([expiresIn, decodeJwt(yield* idp.sign({}, { expiresIn })).exp]).toEqual([expiresIn, 1 + lifetime])
        }
      }).pipe(Effect.provide(FakeIdp.layerTest())))
  })

  describe("rotate", () => {
    it.effect("overlap keeps the old kids published, replace keeps only the new one", () =>
      Effect.gen(function*() {
        const idp = yield* FakeIdp.FakeIdp
        const first = yield* idp.currentKid
        const second = yield* idp.rotate("overlap")
        expect(second).not.toBe(first)
        expect(yield* idp.currentKid).toBe(second)
        expect(yield* idp.publishedKids).toEqual([first, second])
        const served = (yield* getJson(idp.jwksUri)) as { keys: Array<{ kid: string }> }
        expect(served.keys.map((key) => key.kid)).toEqual([first, second])
        const token = yield* idp.sign()
        expect(decodeProtectedHeader(token).kid).toBe(second)
        yield* verify(token, { at: 0 })
        const third = yield* idp.rotate("replace")
        expect(yield* idp.publishedKids).toEqual([third])
        expect(yield* idp.currentKid).toBe(third)
        // Another mode (JavaScript's, a config's typo) is a defect, not a replace that drops every key.
        const typo = yield* Effect.exit(idp.rotate("Overlap" as never))
        expect(Exit.isFailure(typo) && Cause.isDie(typo.cause) && Cause.pretty(typo.cause)).toMatch(/FakeIdp\.rotate/)
        expect(yield* idp.publishedKids).toEqual([third])
      }).pipe(Effect.provide(FakeIdp.layerTest())))
  })

  describe("faults", () => {
    it.effect("Status answers with that status and a text body", () =>
      Effect.gen(function*() {
        const idp = yield* FakeIdp.FakeIdp
        yield* idp.setFault(FakeIdp.Fault.status(503))
        const response = yield* getJwks
        expect(response.status).toBe(503)
        expect(yield* response.text).toMatch(/503/)
        yield* idp.setFault(undefined)
        expect((yield* getJwks).status).toBe(200)
      }).pipe(Effect.provide(FakeIdp.layerTest())))

    it.effect("InvalidJson, WrongShape and EmptySet answer 200 with a bad body", () =>
      Effect.gen(function*() {
        const idp = yield* FakeIdp.FakeIdp
        yield* idp.setFault(FakeIdp.Fault.invalidJson)
        const invalid = yield* getJwks
        expect(invalid.status).toBe(200)
        expect(invalid.headers["content-type"]).toBe("application/json")
        const error = yield* Effect.flip(invalid.json)
        expect(error._tag).toBe("ResponseError")
        yield* idp.setFault(FakeIdp.Fault.wrongShape)
        expect(yield* Effect.flatMap(getJwks, (response) => response.json)).toEqual({ keys: "nope" })
        yield* idp.setFault(FakeIdp.Fault.emptySet)
        expect(yield* Effect.flatMap(getJwks, (response) => response.json)).toEqual({ keys: [] })
      }).pipe(Effect.provide(FakeIdp.layerTest())))

    it.effect("Oversized answers a valid-looking key set larger than the given size", () =>
      Effect.gen(function*() {
        const idp = yield* FakeIdp.FakeIdp
        yield* idp.setFault(FakeIdp.Fault.oversized(1_000_000))
        const response = yield* getJwks
        const body = yield* response.text
        expect(Buffer.byteLength(body)).toBeGreaterThan(1_000_000)
        expect(response.headers["content-length"]).toBe(String(Buffer.byteLength(body)))
        const set = JSON.parse(body) as { keys: Array<{ kid: string }> }
        expect(set.keys.map((key) => key.kid)).toEqual([yield* idp.currentKid])
      }).pipe(Effect.provide(FakeIdp.layerTest())))

    it.effect("Latency answers only after the delay has passed on the clock", () =>
      Effect.gen(function*() {
        const idp = yield* FakeIdp.FakeIdp
        yield* idp.setFault(FakeIdp.Fault.latency("2 seconds"))
        const fiber = yield* Effect.fork(getJwks)
        yield* TestClock.adjust("1999 millis")
        expect(Option.isNone(yield* Fiber.poll(fiber))).toBe(true)
        yield* TestClock.adjust("1 millis")
        const response = yield* Fiber.join(fiber)
        expect(response.status).toBe(200)
        expect(yield* idp.fetchCount).toBe(1)
      }).pipe(Effect.provide(FakeIdp.layerTest())))

    it.effect("Hang never answers, so a client timeout fires", () =>
      Effect.gen(function*() {
        const idp = yield* FakeIdp.FakeIdp
        yield* idp.setFault(FakeIdp.Fault.hang)
        const fiber = yield* Effect.fork(getJwks)
        const timed = yield* Effect.fork(Effect.timeout(getJwks, "5 seconds"))
        yield* TestClock.adjust("1 hour")
        expect(Option.isNone(yield* Fiber.poll(fiber))).toBe(true)
        const error = yield* Effect.flip(Fiber.join(timed))
        expect(error._tag).toBe("TimeoutException")
        yield* Fiber.interrupt(fiber)
        expect(yield* idp.fetchCount).toBe(2)
      }).pipe(Effect.provide(FakeIdp.layerTest())))

    it.effect("failNext is one-shot, counts down, and takes priority over setFault", () =>
      Effect.gen(function*() {
        const idp = yield* FakeIdp.FakeIdp
        yield* idp.failNext(FakeIdp.Fault.status(500))
        expect((yield* getJwks).status).toBe(500)
        expect((yield* getJwks).status).toBe(200)
        yield* idp.setFault(FakeIdp.Fault.status(503))
        yield* idp.failNext(FakeIdp.Fault.status(429), 2)
        yield* idp.failNext(FakeIdp.Fault.emptySet)
        expect((yield* getJwks).status).toBe(429)
        expect((yield* getJwks).status).toBe(429)
        expect(yield* Effect.flatMap(getJwks, (response) => response.json)).toEqual({ keys: [] })
        expect((yield* getJwks).status).toBe(503)
        expect((yield* getJwks).status).toBe(503)
      }).pipe(Effect.provide(FakeIdp.layerTest())))

    it.effect("fetchCount counts every JWKS request, faulted or not, until reset", () =>
      Effect.gen(function*() {
        const idp = yield* FakeIdp.FakeIdp
        expect(yield* idp.fetchCount).toBe(0)
        yield* getJwks
        yield* idp.failNext(FakeIdp.Fault.status(500))
        yield* getJwks
        yield* idp.setFault(FakeIdp.Fault.invalidJson)
        yield* getJwks
        yield* getJson(idp.discoveryUrl)
        expect(yield* idp.fetchCount).toBe(3)
        expect(yield* idp.discoveryCount).toBe(1)
        yield* idp.resetCounts
        expect(yield* idp.fetchCount).toBe(0)
        expect(yield* idp.discoveryCount).toBe(0)
      }).pipe(Effect.provide(FakeIdp.layerTest())))

    it.effect("failNext keeps a count, not a copy per request: any whole number of times", () =>
      Effect.gen(function*() {
        const idp = yield* FakeIdp.FakeIdp
        yield* idp.failNext(FakeIdp.Fault.status(500), 2 ** 40)
        yield* idp.failNext(FakeIdp.Fault.status(502), 0)
        for (let i = 0; i < 3; i++) expect((yield* getJwks).status).toBe(500)
        yield* idp.setFault(FakeIdp.Fault.status(503))
        expect((yield* getJwks).status).toBe(500)
      }).pipe(Effect.provide(FakeIdp.layerTest())))

    it.effect("a fault no request could be answered with is a defect where it is set, and nothing is queued", () =>
      Effect.gen(function*() {
        const idp = yield* FakeIdp.FakeIdp
        const defect = (effect: Effect.Effect<void>) =>
          Effect.map(Effect.exit(effect), (exit) => {
            expect(Exit.isFailure(exit) && Cause.isDie(exit.cause)).toBe(true)
            return Exit.isFailure(exit) ? Cause.pretty(exit.cause) : ""
          })
        expect(yield* defect(idp.setFault(FakeIdp.Fault.status(503, { retryAfter: "1\r\nSet-Cookie: a=b" }))))
          .toMatch(/FakeIdp\.setFault: retryAfter/)
        expect(yield* defect(idp.failNext(FakeIdp.Fault.status(700)))).toMatch(/FakeIdp\.failNext: status .* 700/)
        // An informational status is no answer either (a Response cannot carry one).
        expect(yield* defect(idp.setFault(FakeIdp.Fault.status(150)))).toMatch(/FakeIdp\.setFault: status .* 150/)
        expect(yield* defect(idp.failNext(FakeIdp.Fault.status(503), Infinity))).toMatch(/times/)
        expect(yield* defect(idp.setFault(FakeIdp.Fault.oversized(Infinity)))).toMatch(/oversized/)
        expect(yield* defect(idp.setFault(FakeIdp.Fault.latency("soon" as never)))).toMatch(/latency/)
        // What would be served as no delay at all, or as no fault: a slow IdP, or an outage, that is not.
        for (const delay of [Number.NaN, -1000, "-2 seconds"] as const) {
          expect(yield* defect(idp.setFault(FakeIdp.Fault.latency(delay)))).toMatch(/latency/)
        }
        expect(yield* defect(idp.failNext(FakeIdp.Fault.status(503), -1))).toMatch(/times/)
        expect(yield* defect(idp.setFault({ _tag: "hang" } as never))).toMatch(
          /FakeIdp\.setFault: unknown fault "hang"/
        )
        // From JavaScript: a defect of the effect, not a throw as it is called.
        expect(yield* defect(idp.failNext(null as never))).toMatch(/FakeIdp\.failNext: expected a Fault/)
        expect((yield* getJwks).status).toBe(200)
        yield* idp.failNext(FakeIdp.Fault.status(429, { retryAfter: "Sun, 06 Nov 1994 08:49:37 GMT" }))
        const limited = yield* getJwks
        expect([limited.status, limited.headers["retry-after"]]).toEqual([429, "Sun, 06 Nov 1994 08:49:37 GMT"])
        expect(yield* idp.fetchCount).toBe(2)
      }).pipe(Effect.provide(FakeIdp.layerTest())))

    it.effect("more faults no request could be answered with: status 600, a DEL in retryAfter, padding past the cap, a fractional count", () =>
      Effect.gen(function*() {
        const idp = yield* FakeIdp.FakeIdp
        const defect = (effect: Effect.Effect<void>) =>
          Effect.map(
            Effect.exit(effect),
            (exit) => Exit.isFailure(exit) && Cause.isDie(exit.cause) && Cause.pretty(exit.cause)
          )
        expect(yield* defect(idp.setFault(FakeIdp.Fault.status(600)))).toMatch(/FakeIdp\.setFault: status .* 600/)
        expect(yield* defect(idp.setFault(FakeIdp.Fault.status(503, { retryAfter: "1\x7f" })))).toMatch(/retryAfter/)
        expect(yield* defect(idp.setFault(FakeIdp.Fault.oversized(2 ** 40)))).toMatch(/oversized bytes/)
        expect(yield* defect(idp.failNext(FakeIdp.Fault.status(503), 1.5))).toMatch(/times/)
        expect((yield* getJwks).status).toBe(200)
      }).pipe(Effect.provide(FakeIdp.layerTest())))

    it.effect("failNext with 0 times leaves the next request unfaulted", () =>
      Effect.gen(function*() {
        const idp = yield* FakeIdp.FakeIdp
        yield* idp.failNext(FakeIdp.Fault.status(500), 0)
        expect((yield* getJwks).status).toBe(200)
      }).pipe(Effect.provide(FakeIdp.layerTest())))

    it.effect("Status 204 answers with no body, and a negative Oversized pads nothing", () =>
      Effect.gen(function*() {
        const idp = yield* FakeIdp.FakeIdp
        yield* idp.failNext(FakeIdp.Fault.status(204))
        const empty = yield* getJwks
        expect([empty.status, yield* empty.text]).toEqual([204, ""])
        yield* idp.failNext(FakeIdp.Fault.oversized(-1))
        const padded = yield* getJwks
        expect(padded.status).toBe(200)
        expect(yield* padded.json).toEqual({ ...(yield* idp.jwks), padding: "" })
      }).pipe(Effect.provide(FakeIdp.layerTest())))
  })

  it.scoped("two layerTest fakes in one layer graph: each validator reaches its own fake, through its own client", () => {
    // An app of two issuers: for each, the fake and an Oidc validator over it, under the app's own tags.
    class Internal extends Context.Tag("test/Internal")<Internal, readonly [FakeIdp.FakeIdp["Type"], Validator]>() {}
    class Partner extends Context.Tag("test/Partner")<Partner, readonly [FakeIdp.FakeIdp["Type"], Validator]>() {}
    const side = <I>(tag: Context.Tag<I, readonly [FakeIdp.FakeIdp["Type"], Validator]>, issuer: string) =>
      Layer.effect(
        tag,
        Effect.all([FakeIdp.FakeIdp, Oidc.make({ issuer, audience: FakeIdp.defaults.audience })])
      ).pipe(Layer.provide(FakeIdp.layerTest({ issuer })))
    return Effect.gen(function*() {
      for (const [idp, validator] of [yield* Internal, yield* Partner]) {
        expect((yield* validator.validate(yield* idp.sign({ sub: idp.issuer }))).id).toBe(idp.issuer)
      }
    }).pipe(Effect.provide(Layer.mergeAll(
      side(Internal, "https://internal.example.test"),
      side(Partner, "https://partner.example.test")
    )))
  })

  it.scoped("a validator asking another origin than the fake's is told which one the fake serves", () =>
    Effect.gen(function*() {
      // An issuer with a typo: the fake's client refuses the discovery request, and says why.
      const validator = yield* Oidc.make({ issuer: "https://idp.example.tst", audience: FakeIdp.defaults.audience })
      const idp = yield* FakeIdp.FakeIdp
      const error = yield* Effect.flip(validator.validate(yield* idp.sign()))
      expect(error.message).toContain("FakeIdp serves https://idp.example.test only, not https://idp.example.tst")
    }).pipe(Effect.provide(FakeIdp.layerTest()), Logger.withMinimumLogLevel(LogLevel.None)))

  it.effect("an issuer that is not a URL, or an http(s) one with a query or fragment, is a defect naming FakeIdp", () =>
    Effect.gen(function*() {
      // With a query, the two endpoints would be one URL (the well-known paths land in the query).
      for (const issuer of ["login.example.test", "https://a.test/realm?tenant=1", "https://a.test/realm#x"]) {
        const exit = yield* Effect.exit(FakeIdp.make({ issuer }))
        expect(Exit.isFailure(exit) && Cause.isDie(exit.cause) && Cause.pretty(exit.cause)).toMatch(
          /FakeIdp: the issuer must/
        )
      }
      expect((yield* FakeIdp.make({ issuer: "https://a.test/realm/" })).jwksUri).toBe(
        "https://a.test/realm/.well-known/jwks.json"
      )
      // Another scheme signs as any issuer (a static validator's).
      const urn = yield* FakeIdp.make({ issuer: "urn:example:auth" })
      expect(decodeJwt(yield* urn.sign()).iss).toBe("urn:example:auth")
    }))

  it.effect("an http issuer with a query, or an empty one, is a defect too", () =>
    Effect.gen(function*() {
      for (const issuer of ["http://a.test/realm?tenant=1", "https://a.test/realm?", "https://a.test/realm#"]) {
        const exit = yield* Effect.exit(FakeIdp.make({ issuer }))
        expect([issuer, Exit.isFailure(exit) && Cause.pretty(exit.cause)]).toEqual([
          issuer,
          expect.stringMatching(/FakeIdp: the issuer must have no query or fragment/)
        ])
      }
    }))

  describe("server form", () => {
    it.live("serves the JWKS and discovery document over loopback HTTP", () =>
      Effect.gen(function*() {
        const idp = yield* FakeIdp.FakeIdp
        expect(idp.issuer).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
        const response = yield* HttpClient.get(idp.jwksUri)
        expect(response.status).toBe(200)
        expect(response.headers["content-type"]).toBe("application/json")
        const set = (yield* response.json) as { keys: Array<{ kid: string }> }
        expect(set.keys.map((key) => key.kid)).toEqual([yield* idp.currentKid])
        const document = yield* getJson(idp.discoveryUrl)
        expect(document).toMatchObject({ issuer: idp.issuer, jwks_uri: idp.jwksUri })
        const token = yield* idp.sign()
        const { payload } = yield* Effect.promise(() =>
          jwtVerify(token, createRemoteJWKSet(new URL(idp.jwksUri)), {
            issuer: idp.issuer,
            audience: "server-test"
          })
        )
        expect(payload.sub).toBe("user-1")
        yield* idp.failNext(FakeIdp.Fault.status(502))
        expect((yield* HttpClient.get(idp.jwksUri)).status).toBe(502)
        expect(yield* idp.fetchCount).toBe(3)
        expect(yield* idp.discoveryCount).toBe(1)
      }).pipe(
        Effect.provide(Layer.mergeAll(
          FakeIdp.layerServer({ audience: "server-test" }).pipe(
            Layer.provide(NodeHttpServer.layer(() => createServer(), { port: 0, host: "127.0.0.1" }))
          ),
          FetchHttpClient.layer
        ))
      ))

    it.live("a server listening on all interfaces gets the loopback issuer", () =>
      Effect.gen(function*() {
        const idp = yield* FakeIdp.FakeIdp
        expect(idp.issuer).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
        expect((yield* HttpClient.get(idp.jwksUri)).status).toBe(200)
      }).pipe(
        Effect.provide(Layer.mergeAll(
          FakeIdp.layerServer().pipe(
            Layer.provide(NodeHttpServer.layer(() => createServer(), { port: 0, host: "0.0.0.0" }))
          ),
          FetchHttpClient.layer
        ))
      ))

    it.live("closing the layer answers a request a fault still holds 503, so that the server can close", () =>
      Effect.gen(function*() {
        const scope = yield* Scope.make()
        const context = yield* Layer.buildWithScope(
          Layer.mergeAll(
            FakeIdp.layerServer().pipe(
              Layer.provide(NodeHttpServer.layer(() => createServer(), { port: 0, host: "127.0.0.1" }))
            ),
            FetchHttpClient.layer
          ),
          scope
        )
        const idp = Context.get(context, FakeIdp.FakeIdp)
        yield* idp.setFault(FakeIdp.Fault.hang)
        const held = yield* Effect.fork(
          Effect.provide(Effect.flatMap(HttpClient.get(idp.jwksUri), (response) => response.text), context)
        )
        while ((yield* idp.fetchCount) === 0) yield* Effect.yieldNow()
        // Without the answer, the scope would never close (the server waits for the open connection): bounded here
        // so that a regression fails instead of hanging the file.
        const closing = yield* Effect.fork(Scope.close(scope, Exit.void))
        const closed = yield* Effect.timeoutOption(Fiber.join(closing), "10 seconds")
        expect(Option.isSome(closed)).toBe(true)
        expect(yield* Fiber.join(held)).toBe("FakeIdp closed")
      }))
  })
})
