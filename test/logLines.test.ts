/**
 * What others choose (a token's kid, read before its signature; a key set's kids; a discovery document) reaches log
 * lines, span attributes and error messages escaped: nobody can end one of our lines and write one of their own.
 * And the lines that report a failure carry it as their cause.
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import { describe, expect, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Metric from "effect/Metric"
import * as Ref from "effect/Ref"
import * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"
import * as JwksCache from "../src/JwksCache.js"
import * as JwksSource from "../src/JwksSource.js"
import * as Oidc from "../src/providers/Oidc.js"
import * as FakeIdp from "../src/testing/FakeIdp.js"
import * as TokenValidator from "../src/TokenValidator.js"
import { capturing, lineBreaking } from "./support/logs.js"
import { recording } from "./support/tracing.js"

/** A line of someone else's, as a reader splitting on line breaks would take it. */
const injected = "k1\ntimestamp=2030-01-01T00:00:00.000Z level=ERROR message=\"keys leaked\""

const validatorOf = (idp: FakeIdp.FakeIdp["Type"], options?: JwksCache.Options) =>
  Effect.gen(function*() {
    const cache = yield* JwksCache.make(yield* JwksSource.http(idp.jwksUri), { backgroundRefresh: false, ...options })
    const validator = yield* TokenValidator.make(TokenValidator.fromCache(cache), {
      issuer: idp.issuer,
      audience: idp.audience
    })
    return { cache, validator }
  })

const withIdp = (issuer: string) => Effect.provide(FakeIdp.layerTest({ issuer }))

describe("log lines of text that others chose", () => {
  it.scoped("a token's kid with a line break is escaped in the 'Unknown kid' lines", () => {
    const logs = capturing()
    return Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      const { validator } = yield* validatorOf(idp)
      yield* validator.validate(yield* idp.sign({}))
      // Twice: the first refetches (Info), the second is throttled (Debug).
      for (let i = 0; i < 2; i++) {
        const refused = yield* Effect.flip(validator.validate(yield* idp.sign({}, { kid: injected })))
        expect(refused._tag).toBe("TokenValidationError")
      }
      const lines = logs.entries.filter((entry) => entry.message.startsWith("Unknown kid"))
      expect(lines.map((entry) => entry.level)).toEqual(["INFO", "DEBUG"])
      for (const entry of lines) {
        expect(entry.annotations.kid).toBe(
          "k1\\u000atimestamp=2030-01-01T00:00:00.000Z level=ERROR message=\\u0022keys ... (71 characters)"
        )
        expect(entry.line).not.toMatch(lineBreaking)
      }
    }).pipe(withIdp("https://log-kid.example.test"), logs.use)
  })

  it.scoped("a token's kid is shown the same in its span as in the log line, and two kids are never shown alike", () => {
    const logs = capturing()
    const traces = recording()
    return Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      const { validator } = yield* validatorOf(idp, { unknownKidThrottle: 0 })
      yield* validator.validate(yield* idp.sign({}))
      // A line break, and text that spells its escape; a right-to-left override, which reorders what one reads; a
      // zero-width space and a tag character, which hide.
      const kids = [
        "a\nb",
        "a\\u000ab",
        "admin\u202egnp.exe",
        "adm\u200bin",
        "admin\u{E0041}",
        // A variation selector and a filler, which show as nothing; a double quote, which would end a quoted kid.
        "adm\uFE0Fin",
        "adm\u3164in",
        "k1\" and \"k2"
      ]
      for (const kid of kids) {
        yield* Effect.flip(validator.validate(yield* idp.sign({}, { kid })).pipe(Effect.withTracer(traces.tracer)))
      }
      const logged = logs.entries.filter((entry) => entry.message === "Unknown kid: refetching JWKS")
        .map((entry) => entry.annotations.kid)
      expect(logged).toEqual([
        "a\\u000ab",
        "a\\u005cu000ab",
        "admin\\u202egnp.exe",
        "adm\\u200bin",
        "admin\\udb40\\udc41",
        "adm\\ufe0fin",
        "adm\\u3164in",
        "k1\\u0022 and \\u0022k2"
      ])
      expect(traces.named("TokenValidator.validate").map((span) => span.attributes.get("jwt.kid"))).toEqual(logged)
    }).pipe(withIdp("https://log-kid-span.example.test"), logs.use)
  })

  it.scoped("a token without a kid has no kid in its span or its log line: unlike kid \"\" and kid \"undefined\"", () => {
    const logs = capturing()
    const traces = recording()
    return Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      const cache = yield* JwksCache.make(yield* JwksSource.http(idp.jwksUri), {
        backgroundRefresh: false,
        unknownKidThrottle: 0
      })
      const validator = yield* TokenValidator.make(TokenValidator.fromCache(cache), {
        issuer: idp.issuer,
        audience: idp.audience,
        algorithms: ["RS256", "ES256"]
      })
      yield* validator.validate(yield* idp.sign({}))
      // ES256: the set has no such key, so each one refetches ("Unknown kid: refetching JWKS").
      for (const kid of [null, "", "undefined"]) {
        yield* Effect.flip(
          validator.validate(yield* idp.sign({}, { kid, algorithm: "ES256" })).pipe(Effect.withTracer(traces.tracer))
        )
      }
      const spans = traces.named("TokenValidator.validate").map((span) => span.attributes.get("jwt.kid"))
      const lines = logs.entries.filter((entry) => entry.message === "Unknown kid: refetching JWKS")
      expect(spans).toEqual([undefined, "", "undefined"])
      expect(lines.map((entry) => entry.annotations.kid)).toEqual([undefined, "", "undefined"])
      expect(lines.map((entry) => /kid=(\S*)/.exec(entry.line)?.[1])).toEqual([undefined, "", "undefined"])
    }).pipe(withIdp("https://log-no-kid.example.test"), logs.use)
  })

  it.scoped("an alg or a typ, read before the signature or not, is escaped in the refusal's message", () =>
    Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      const { validator } = yield* validatorOf(idp)
      const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url")
      for (const alg of ["RS256\u2028x", "RS256\u0085x"]) {
        const error = yield* Effect.flip(validator.validate(`${part({ alg })}.${part({})}.${part("signature")}`))
        expect(error._tag === "TokenValidationError" && error.reason).toBe("AlgorithmNotAllowed")
        expect(error.message).toMatch(/^AlgorithmNotAllowed: alg "RS256\\u(2028|0085)x" is not allowed$/)
      }
      const typed = yield* idp.sign({}, { header: { typ: "a\u2029b+jwt" } })
      expect((yield* Effect.flip(validator.validate(typed))).message).toBe(
        "TokenType: a token of type \"a\\u2029b+jwt\" is not a bearer token"
      )
    }).pipe(withIdp("https://log-alg.example.test")))

  it.scoped("a kid cut for a log line is not cut inside a character", () => {
    const logs = capturing()
    return Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      const { validator } = yield* validatorOf(idp)
      yield* validator.validate(yield* idp.sign({}))
      // The 64th UTF-16 unit is the first half of the emoji.
      yield* Effect.flip(validator.validate(yield* idp.sign({}, { kid: `${"a".repeat(63)}\u{1F600}${"b".repeat(9)}` })))
      const entry = logs.entries.find((entry) => entry.message === "Unknown kid: refetching JWKS")
      expect(entry?.annotations.kid).toBe(`${"a".repeat(63)}... (74 characters)`)
    }).pipe(withIdp("https://log-kid-cut.example.test"), logs.use)
  })

  it.scoped("a kid of exactly 64 characters is shown whole, with no length said", () => {
    const logs = capturing()
    return Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      const { validator } = yield* validatorOf(idp)
      yield* validator.validate(yield* idp.sign({}))
      const kid = `${"a".repeat(63)}z`
      yield* Effect.flip(validator.validate(yield* idp.sign({}, { kid })))
      const entry = logs.entries.find((entry) => entry.message === "Unknown kid: refetching JWKS")
      expect(entry?.annotations.kid).toBe(kid)
    }).pipe(withIdp("https://log-kid-64.example.test"), logs.use)
  })

  it.scoped("a key set's kids are escaped in 'JWKS key set changed' and in the lines of skipped keys", () => {
    const logs = capturing()
    return Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      const [good] = (yield* idp.jwks).keys
      const published = yield* Ref.make<ReadonlyArray<unknown>>([good])
      const cache = yield* JwksCache.make(
        JwksSource.make("https://log-set.example.test/jwks", Effect.map(Ref.get(published), (keys) => ({ keys }))),
        { backgroundRefresh: false }
      )
      yield* cache.refresh
      yield* Ref.set(published, [
        good,
        { ...good, kid: injected },
        // One kid, which a list joined by commas would show as two.
        { ...good, kid: "a, b" },
        // Skipped (a symmetric key), and one that cannot be imported (not a point of its curve).
        { kty: "oct", k: "AAAA", kid: `${injected}-oct` },
        { kty: "EC", crv: "P-256", x: "AAAA", y: "AAAA", kid: `${injected}-ec` }
      ])
      yield* cache.refresh
      const changed = logs.entries.find((entry) => entry.message === "JWKS key set changed")
      expect(changed?.annotations.added).toBe(
        "\"k1\\u000atimestamp=2030-01-01T00:00:00.000Z level=ERROR message=\\u0022keys ... (71 characters)\", \"a, b\""
      )
      const skipped = logs.entries.filter((entry) => entry.message.startsWith("Skipping key"))
      expect(skipped.map((entry) => entry.level)).toEqual(["DEBUG", "WARN"])
      for (const entry of [changed!, ...skipped]) {
        expect(entry.message).not.toMatch(lineBreaking)
        // (A line with a cause spans lines in the default logger: the cause's stack.)
        if (entry.cause === undefined) expect(entry.line).not.toMatch(lineBreaking)
      }
      expect(skipped.map((entry) => entry.message)).toEqual([
        expect.stringMatching(/^Skipping key "k1\\u000atimestamp=.*\.\.\. \(75 characters\)": symmetric keys/),
        expect.stringMatching(
          /^Skipping key "k1\\u000atimestamp=.*\.\.\. \(74 characters\)": it could not be imported$/
        )
      ])
      // The key that could not be imported is reported with its error as the cause.
      expect(skipped[1]!.cause).toContain("UnknownException")
    }).pipe(withIdp("https://log-set.example.test"), logs.use)
  })

  describe("a discovery document", () => {
    const issuer = "https://log-discovery.example.test"
    const answering = (document: Record<string, unknown>) =>
      HttpClient.make((request, url) =>
        Effect.succeed(HttpClientResponse.fromWeb(
          request,
          url.pathname.endsWith("/openid-configuration")
            ? Response.json(document)
            : new Response("unavailable", { status: 503 })
        ))
      )

    it.scoped("its jwks_uri with a line break (which the URL parser drops) is escaped in logs, spans and errors", () => {
      const logs = capturing()
      const traces = recording()
      return Effect.gen(function*() {
        const source = yield* Oidc.discoverySource(issuer).pipe(
          Effect.provideService(
            HttpClient.HttpClient,
            answering({ issuer, jwks_uri: `${issuer}/jwks\nlevel=ERROR message=forged` })
          )
        )
        const error = yield* Effect.flip(source.fetch)
        const shown = `${issuer}/jwks\\u000alevel=ERROR message=forged`
        const discovered = logs.entries.find((entry) => entry.message === "OIDC discovery completed")
        expect(discovered?.annotations.jwks_uri).toBe(shown)
        expect(traces.named("JwksSource.fetch")[0]?.attributes.get("jwks.url")).toBe(shown)
        expect(error.reason).toBe("HttpStatus")
        expect(error.message).not.toMatch(lineBreaking)
      }).pipe(Effect.withTracer(traces.tracer), logs.use)
    })

    it.scoped("an issuer with a line break is escaped in the IssuerMismatch message, as logged and as in status", () => {
      const logs = capturing()
      return Effect.gen(function*() {
        const source = yield* Oidc.discoverySource(issuer).pipe(
          Effect.provideService(
            HttpClient.HttpClient,
            answering({ issuer: "https://other.example\nlevel=ERROR message=forged", jwks_uri: `${issuer}/jwks` })
          )
        )
        const cache = yield* JwksCache.make(source, { backgroundRefresh: false })
        const error = yield* Effect.flip(cache.refresh)
        expect(error.reason).toBe("IssuerMismatch")
        expect(error.message).toContain("https://other.example\\u000alevel=ERROR")
        expect((yield* cache.status).lastRefresh?.error).toBe(error.message)
        const failed = logs.entries.filter((entry) => entry.message.startsWith("JWKS fetch failed"))
        expect(failed.map((entry) => entry.cause)).toEqual([expect.stringContaining(error.message)])
      }).pipe(logs.use)
    })
  })
})

describe("log lines of failures", () => {
  it.scoped("'Initial JWKS load failed', 'JWKS fetch failed' and 'Background JWKS refresh failed' carry the error as their cause", () => {
    const logs = capturing()
    return Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      yield* idp.setFault(FakeIdp.Fault.status(500))
      yield* JwksCache.make(yield* JwksSource.http(idp.jwksUri), { interval: "1 minute" })
      yield* TestClock.adjust("1 second")
      yield* idp.setFault(undefined)
      yield* TestClock.adjust("10 seconds")
      yield* idp.setFault(FakeIdp.Fault.status(500))
      yield* TestClock.adjust("1 minute")
      for (const message of ["Initial JWKS load failed", "JWKS fetch failed", "Background JWKS refresh failed"]) {
        const entries = logs.entries.filter((entry) => entry.message.startsWith(message))
        expect(entries.length, message).toBeGreaterThan(0)
        for (const entry of entries) {
          // The error as the cause (an OpenTelemetry log record's exception), not as a second message.
          expect(entry.message).not.toContain("HttpStatus")
          expect(entry.cause, message).toContain("HttpStatus 500")
        }
      }
    }).pipe(withIdp("https://log-cause.example.test"), logs.use)
  })

  it.scoped("'Serving stale JWKS' and 'Stale JWKS spent' carry the error as their cause", () => {
    const logs = capturing()
    return Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      const { validator } = yield* validatorOf(idp, { strategy: "time", interval: "1 minute", maxStale: "1 minute" })
      const token = yield* idp.sign({}, { expiresIn: "1 hour" })
      yield* validator.validate(token)
      yield* idp.setFault(FakeIdp.Fault.status(500))
      yield* TestClock.adjust("90 seconds")
      yield* validator.validate(token)
      yield* TestClock.adjust("10 minutes")
      expect((yield* Effect.flip(validator.validate(token)))._tag).toBe("JwksError")
      for (const message of ["Serving stale JWKS", "Stale JWKS spent"]) {
        const entry = logs.entries.find((entry) => entry.message.startsWith(message))
        expect(entry?.cause, message).toContain("HttpStatus")
      }
    }).pipe(withIdp("https://log-stale.example.test"), logs.use)
  })
})

describe("spans and metrics of text that others chose", () => {
  it.effect("a fetch cut short as the cache closes ends its span with the outcome its metric has", () => {
    const traces = recording()
    return Effect.gen(function*() {
      const scope = yield* Scope.make()
      const fetching = yield* Deferred.make<void>()
      const hanging = Effect.zipRight(Deferred.succeed(fetching, void 0), Effect.never)
      const cache = yield* Scope.extend(
        JwksCache.make(JwksSource.make("https://span-cut.example.test/jwks", hanging), { backgroundRefresh: false }),
        scope
      )
      const waiting = yield* Effect.fork(cache.refresh)
      yield* Deferred.await(fetching)
      yield* Scope.close(scope, Exit.void)
      expect(Exit.isFailure(yield* Fiber.await(waiting))).toBe(true)
      const [span] = traces.named("JwksCache.refresh")
      expect(span?.status._tag).toBe("Ended")
      expect(span?.attributes.get("outcome")).toBe("interrupted")
    }).pipe(Effect.withTracer(traces.tracer), capturing().use)
  })

  it.scoped("forged kids, issuers, types and algorithms add no metric series", () => {
    const series = Effect.map(
      Metric.snapshot,
      (pairs) =>
        pairs.filter((pair) => pair.metricKey.name.startsWith("effect_jwks_")).map((pair) =>
          `${pair.metricKey.name}${JSON.stringify(pair.metricKey.tags)}`
        )
    )
    return Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      const { validator } = yield* validatorOf(idp, { unknownKidThrottle: 0 })
      yield* validator.validate(yield* idp.sign({}))
      const forgeries = (i: number) =>
        Effect.gen(function*() {
          yield* Effect.flip(validator.validate(yield* idp.sign({}, { kid: `forged-${i}` })))
          yield* Effect.flip(validator.validate(yield* idp.sign({ iss: `https://forged-${i}.example` })))
          yield* Effect.flip(validator.validate(yield* idp.sign({}, { header: { typ: `forged-${i}+jwt` } })))
          const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url")
          yield* Effect.flip(validator.validate(`${part({ alg: `RS${i}` })}.${part({ i })}.${part("signature")}`))
        })
      yield* forgeries(0)
      const before = new Set(yield* series)
      for (let i = 1; i <= 20; i++) yield* forgeries(i)
      expect((yield* series).filter((name) => !before.has(name))).toEqual([])
    }).pipe(withIdp("https://metrics-forged.example.test"), capturing().use)
  })
})
