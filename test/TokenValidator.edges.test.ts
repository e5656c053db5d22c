/**
 * Edge cases pinned after mutation-testing reviews: behaviour of `TokenValidator` that the suite left unpinned (each
 * test fails on one mutation of `src/TokenValidator.ts` that the rest of the suite does not catch; in the block
 * "mutation review (internals)", of `src/internal/memoryAnswers.ts`).
 */
import { describe, expect, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as TestClock from "effect/TestClock"
import { generateKeyPairSync, type KeyObject, sign } from "node:crypto"
import * as JwksCache from "../src/JwksCache.js"
import * as JwksSource from "../src/JwksSource.js"
import { TokenValidationError } from "../src/TokenValidationError.js"
import * as TokenValidator from "../src/TokenValidator.js"
import { recording } from "./support/tracing.js"

const ISSUER = "https://review.example.test"
const AUDIENCE = "review-api"

const b64 = (value: string | Uint8Array): string => Buffer.from(value).toString("base64url")

interface Pair {
  readonly privateKey: KeyObject
  readonly jwk: Record<string, unknown>
}

const rsaPair = (modulusLength: number, kid = "k1"): Pair => {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength })
  return { privateKey, jwk: { ...publicKey.export({ format: "jwk" }), kid, alg: "RS256", use: "sig" } }
}

const rsa2048 = rsaPair(2048)

/** A compact RS256 JWS with exactly this header and these claims (no library in between to refuse odd headers). */
const signRaw = (pair: Pair, claims: Record<string, unknown>, header: Record<string, unknown> = {}): string => {
  const input = `${b64(JSON.stringify({ alg: "RS256", kid: pair.jwk.kid, ...header }))}.${b64(JSON.stringify(claims))}`
  return `${input}.${b64(sign("sha256", Buffer.from(input), pair.privateKey))}`
}

/** Claims valid at the TestClock's start (time 0). */
const claims = (extra: Record<string, unknown> = {}) => ({
  iss: ISSUER,
  aud: AUDIENCE,
  sub: "alice",
  exp: 3600,
  ...extra
})

const validatorOver = (jwks: ReadonlyArray<Record<string, unknown>>, options: Partial<TokenValidator.Options> = {}) =>
  Effect.gen(function*() {
    const cache = yield* JwksCache.make(JwksSource.fromKeySet({ keys: jwks }), { backgroundRefresh: false })
    return yield* TokenValidator.make(TokenValidator.fromCache(cache), {
      issuer: ISSUER,
      audience: AUDIENCE,
      ...options
    })
  })

const reasonOf = <A, R>(effect: Effect.Effect<A, unknown, R>) =>
  Effect.map(
    Effect.flip(effect),
    (error) => error instanceof TokenValidationError ? error.reason : `not a TokenValidationError: ${String(error)}`
  )

const descriptionOf = <A, R>(effect: Effect.Effect<A, unknown, R>) =>
  Effect.map(
    Effect.flip(effect),
    (error) => error instanceof TokenValidationError ? error.description : String(error)
  )

/** A validator not built by `make` (an app's own): accepts `ISSUER` and refuses every token with `name` as description. */
const plain = (name: string): TokenValidator.Service => ({
  validate: () => Effect.fail(new TokenValidationError({ reason: "CustomCheck", description: name })),
  acceptsIssuer: (iss) => iss === ISSUER,
  keyStatus: Effect.succeed([])
})

describe("TokenValidator edge cases", () => {
  // Mutation: the canonical-base64url mask for a 4n+3 segment, `0b11` -> `0b1`. A 4096-bit RSA signature is 512
  // bytes, 683 characters: its last character has two unused bits, and setting either must not give the token a
  // second spelling that verifies.
  it.scoped("a 4096-bit RSA signature with either unused low bit set is Malformed", () =>
    Effect.gen(function*() {
      const rsa4096 = rsaPair(4096, "big")
      const validator = yield* validatorOver([rsa4096.jwk])
      const token = signRaw(rsa4096, claims())
      const signature = token.slice(token.lastIndexOf(".") + 1)
      expect(signature.length % 4).toBe(3)
      expect((yield* validator.validate(token)).id).toBe("alice")
      const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
      const last = alphabet.indexOf(token[token.length - 1]!)
      expect(last & 0b11).toBe(0)
      for (const unused of [0b01, 0b10, 0b11]) {
        const respelled = token.slice(0, -1) + alphabet[last | unused]
        expect(Buffer.from(respelled.slice(token.lastIndexOf(".") + 1), "base64url")).toEqual(
          Buffer.from(signature, "base64url")
        )
        expect(yield* reasonOf(validator.validate(respelled))).toBe("Malformed")
      }
    }), 60_000)

  // Mutation: `options.allowAnyAudience === true && strings(options.audience).length === 0` -> drop the second
  // operand. allowAnyAudience only skips the check "when no audience is given".
  it.scoped("allowAnyAudience does not switch off an audience that is given", () =>
    Effect.gen(function*() {
      const validator = yield* validatorOver([rsa2048.jwk], { audience: AUDIENCE, allowAnyAudience: true })
      expect((yield* validator.validate(signRaw(rsa2048, claims()))).id).toBe("alice")
      expect(yield* reasonOf(validator.validate(signRaw(rsa2048, claims({ aud: "someone-else" })))))
        .toBe("AudienceMismatch")
    }))

  // Mutation: `if (key !== seen.key)` -> `if (key === undefined)`. A remembered token must be verified again when
  // the key the cache serves for its kid is another one (the IdP replaced a key under the same kid).
  it.scoped("a remembered token is checked again when its kid now names another key", () =>
    Effect.gen(function*() {
      const replacement = rsaPair(2048, "k1")
      let published: ReadonlyArray<Record<string, unknown>> = [rsa2048.jwk]
      const cache = yield* JwksCache.make(
        JwksSource.make("test", Effect.sync(() => ({ keys: published }))),
        { backgroundRefresh: false }
      )
      const validator = yield* TokenValidator.make(TokenValidator.fromCache(cache), {
        issuer: ISSUER,
        audience: AUDIENCE
      })
      const token = signRaw(rsa2048, claims())
      expect((yield* validator.validate(token)).id).toBe("alice")
      published = [replacement.jwk]
      yield* cache.refresh
      expect(yield* reasonOf(validator.validate(token))).toBe("InvalidSignature")
      expect((yield* validator.validate(signRaw(replacement, claims()))).id).toBe("alice")
    }))

  // Mutation: drop `if (token.endsWith(".")) return fail("Malformed", ...)`. A token with no signature is refused
  // by its shape, before any key is looked up ("nothing reaches a key or the network before the cheap checks pass").
  it.effect("a token with an empty signature is Malformed, and no key is looked up", () =>
    Effect.gen(function*() {
      let lookups = 0
      const resolver: TokenValidator.KeyResolver = {
        get: () =>
          Effect.sync(() => {
            lookups++
            return Option.some<TokenValidator.VerificationKey>({ verify: () => false })
          }),
        recordSuccess: Effect.void
      }
      const validator = yield* TokenValidator.make(resolver, { issuer: ISSUER, audience: AUDIENCE })
      const token = signRaw(rsa2048, claims())
      const unsigned = token.slice(0, token.lastIndexOf(".") + 1)
      expect(yield* reasonOf(validator.validate(unsigned))).toBe("Malformed")
      expect(lookups).toBe(0)
    }))

  // Mutation: `Math.max(...caps)` -> `Math.min(...caps)` in `multi`. The router's cap is the largest of its
  // validators': a token within its own validator's larger cap is routed, not refused as TooLarge.
  it.scoped("multi routes a token within the largest cap of its validators", () =>
    Effect.gen(function*() {
      const cache = yield* JwksCache.make(JwksSource.fromKeySet({ keys: [rsa2048.jwk] }), { backgroundRefresh: false })
      const keys = TokenValidator.fromCache(cache)
      const large = yield* TokenValidator.make(keys, { issuer: ISSUER, audience: AUDIENCE, maxTokenBytes: 64 * 1024 })
      const small = yield* TokenValidator.make(keys, { issuer: "https://other.example.test", audience: AUDIENCE })
      const router = TokenValidator.multi([small, large])
      const token = signRaw(rsa2048, claims({ padding: "x".repeat(20_000) }))
      expect(token.length).toBeGreaterThan(TokenValidator.defaults.maxTokenBytes)
      expect((yield* router.validate(token)).id).toBe("alice")
      expect(yield* reasonOf(small.validate(token))).toBe("TooLarge")
    }))
})

describe("TokenValidator edge cases, a second review: claims, Principal, options", () => {
  // Mutation: `isEventsClaim`'s `catch { return false }` -> `return true`. An app's own `events` string that only
  // starts like a JSON object is no security event.
  it.scoped("an events string that is not JSON does not make a security event", () =>
    Effect.gen(function*() {
      const validator = yield* validatorOver([rsa2048.jwk])
      const principal = yield* validator.validate(signRaw(rsa2048, claims({ events: "{signup", scope: "read" })))
      expect(principal.tokenType).toBe("access")
    }))

  // Mutation: `holdsDisclosures`'s `Array.isArray(members._sd)` -> `members._sd !== undefined`. Only a list of
  // digests in a nested `_sd` makes an SD-JWT: an app's own `_sd` member of another type does not.
  it.scoped("a nested _sd that is not a list is an ordinary claim", () =>
    Effect.gen(function*() {
      const validator = yield* validatorOver([rsa2048.jwk])
      const token = signRaw(rsa2048, claims({ address: { _sd: "not a list" }, scope: "read" }))
      expect((yield* validator.validate(token)).tokenType).toBe("access")
    }))

  // Mutations in `classify`: `lowerCase(claims.tokenName)` -> `claims.tokenName` (a marker of a refresh token counts
  // in any case), and the header `typ` of `id_token+jwt` dropped (an id token typed so, whatever its other claims).
  it("classify: a tokenName of Refresh_Token is a refresh token; a typ of id_token+jwt an id token", () => {
    expect(TokenValidator.classify({ tokenName: "Refresh_Token", scope: "openid" }, { alg: "RS256" })).toBe("refresh")
    expect(TokenValidator.classify({ scope: "openid" }, { alg: "RS256", typ: "application/ID_TOKEN+JWT" })).toBe("id")
  })

  // Mutation: `namesOf`'s `spaced ? value.split(" ") : [value]` -> `value.split(" ")`. Only scopes are spaced: a
  // groups claim that is one string is one group, spaces and all (an AD group name, say).
  it.scoped("a groups string with spaces is one group", () =>
    Effect.gen(function*() {
      const validator = yield* validatorOver([rsa2048.jwk])
      const principal = yield* validator.validate(signRaw(rsa2048, claims({ groups: "Domain Admins" })))
      expect(principal.groups).toEqual(["Domain Admins"])
    }))

  // Mutation: `firstString`'s `value.toLowerCase() !== except` -> `value !== except`. A username that holds the
  // unverified address is not the principal's name, whatever the case of either.
  it.scoped("a username holding the unverified email in other case is not the name", () =>
    Effect.gen(function*() {
      const validator = yield* validatorOver([rsa2048.jwk])
      const unverified = {
        email: "victim@example.com",
        email_verified: false,
        preferred_username: "Victim@Example.COM"
      }
      const principal = yield* validator.validate(signRaw(rsa2048, claims(unverified)))
      expect([principal.name, principal.email]).toEqual([undefined, undefined])
    }))

  // Mutation: `issuerMatcher`'s `list.join(", ")` -> `list[0]`. A refusal names every issuer of a list.
  it.scoped("an IssuerMismatch names each issuer of a list", () =>
    Effect.gen(function*() {
      const other = "https://other.example.test"
      const validator = yield* validatorOver([rsa2048.jwk], { issuer: [ISSUER, other] })
      const error = yield* Effect.flip(validator.validate(signRaw(rsa2048, claims({ iss: "https://elsewhere.test" }))))
      expect(error).toMatchObject({
        reason: "IssuerMismatch",
        description: `the token's issuer is not ${ISSUER}, ${other}`
      })
    }))

  // Mutations in `checkOptions`, `isRule` and `isListOf`: an empty issuer list, a rule without its description, an
  // infinite leeway (every expired token let in), a token type of no known name, a list with one bad item (`every`
  // -> `some`) and an empty username claim name each passed unseen.
  it("checkOptions refuses an empty issuer list, a rule without description, an infinite leeway, unknown token types", () => {
    const pathOf = (options: Record<string, unknown>) => {
      const checked = TokenValidator.checkOptions(
        { issuer: ISSUER, audience: AUDIENCE, ...options } as TokenValidator.Options
      )
      return Either.isLeft(checked) && checked.left._op === "InvalidData" ? checked.left.path : undefined
    }
    const matches = () => true
    const cases: ReadonlyArray<readonly [Record<string, unknown>, string]> = [
      [{ issuer: [] }, "issuer"],
      [{ issuer: { matches } }, "issuer"],
      [{ leeway: Duration.infinity }, "leeway"],
      [{ tokenTypes: ["ID"] }, "tokenTypes"],
      [{ requiredClaims: ["email", 42] }, "requiredClaims"],
      [{ principal: { username: ["email", ""] } }, "principal"]
    ]
    for (const [options, path] of cases) expect(pathOf(options), String(Object.keys(options))).toEqual([path])
    expect(pathOf({ issuer: { matches, description: "any" }, leeway: "1 minute", tokenTypes: ["id"] })).toBeUndefined()
  })

  // Mutation: `allows`'s `?? true` -> `?? false`. Among validators of one issuer, `multi` routes a token by its alg;
  // a validator not built by `make` (an app's own) may allow any alg, so it takes one the other refuses.
  it.scoped("multi routes an alg the first validator refuses to an app's own validator of that issuer", () =>
    Effect.gen(function*() {
      const rsOnly = yield* validatorOver([rsa2048.jwk])
      const router = TokenValidator.multi([rsOnly, plain("the app's own")])
      expect(yield* descriptionOf(router.validate(signRaw(rsa2048, claims(), { alg: "ES256" })))).toBe("the app's own")
      expect((yield* router.validate(signRaw(rsa2048, claims()))).id).toBe("alice")
    }))

  // Mutations in `verifiable` and `allowsOnly`: keys that say what they verify, but not in a list, verify nothing;
  // and the default algorithms (RS256) are checked against them as given ones are.
  it.effect("make refuses algorithms a resolver cannot verify, the default ones too", () =>
    Effect.gen(function*() {
      const resolver = (algorithms: unknown): TokenValidator.KeyResolver => ({
        get: () => Effect.succeed(Option.none()),
        recordSuccess: Effect.void,
        algorithms: algorithms as ReadonlyArray<TokenValidator.SigningAlgorithm>
      })
      const options = { issuer: ISSUER, audience: AUDIENCE }
      for (const algorithms of ["RS256", ["ES256"]]) {
        const error = yield* Effect.flip(TokenValidator.make(resolver(algorithms), options))
        expect(error._op === "InvalidData" && error.path, JSON.stringify(algorithms)).toEqual(["algorithms"])
      }
      yield* TokenValidator.make(resolver(["RS256", "ES256"]), options)
    }))

  // Mutation: `typeof claims.oid === "string"` dropped from the Entra ID app rule of `isMachine`. An access token
  // with neither sub nor oid nor a client names no machine (`undefined === undefined` must not make one).
  it.scoped("an access token without sub, oid or client is not a machine's", () =>
    Effect.gen(function*() {
      const validator = yield* validatorOver([rsa2048.jwk])
      const principal = yield* validator.validate(signRaw(rsa2048, claims({ sub: undefined, scope: "read" })))
      expect([principal.id, principal.tokenType, principal.isMachine]).toEqual(["", "access", false])
    }))

  // Mutation: `typeof claims.email === "string"` -> `claims.email !== undefined`. An email claim that is no string
  // is no address: neither the principal's email nor its name.
  it.scoped("an email claim that is not a string is not the principal's email", () =>
    Effect.gen(function*() {
      const validator = yield* validatorOver([rsa2048.jwk])
      const principal = yield* validator.validate(signRaw(rsa2048, claims({ email: ["alice@example.test"] })))
      expect([principal.email, principal.name]).toEqual([undefined, undefined])
    }))
})

describe("TokenValidator edge cases, a second review: the validation path, toPromise, multi", () => {
  // Mutations: `reuse(seen.principal)` -> `seen.principal` in `acceptRemembered`, at once and after a check that runs
  // as an effect. A remembered token's caller gets a copy: what one handler does to its Principal, no later use sees.
  it.scoped("a remembered token's Principal is the caller's own: changing it leaves the next use's intact", () =>
    Effect.gen(function*() {
      for (const options of [{}, { check: () => Effect.suspend(() => Effect.void) }]) {
        const validator = yield* validatorOver([rsa2048.jwk], options)
        const token = signRaw(rsa2048, claims())
        yield* validator.validate(token)
        const remembered = yield* validator.validate(token)
        ;(remembered as { id: string }).id = "mallory"
        remembered.expiresAt.setTime(0)
        const again = yield* validator.validate(token)
        expect(again.id).toBe("alice")
        expect(again.expiresAt.getTime()).toBe(3_600_000)
      }
    }))

  // Mutations: `maxTokenBytesOf.get(validator) ?? 64 * 1024` -> `?? defaults.maxTokenBytes`, and the router's
  // `Jws.isLongerThan(token, maxTokenBytes)` -> `maxTokenBytes + 1`, in `multi`. A validator not built by `make` has no
  // known cap: the router lets through up to 64 KiB for it, and refuses one byte more as TooLarge.
  it.effect("multi caps tokens for a validator not built by make at 64 KiB exactly", () =>
    Effect.gen(function*() {
      const router = TokenValidator.multi([plain("own")])
      const signed = `${b64(JSON.stringify({ alg: "RS256" }))}.${b64(JSON.stringify(claims({ padding: "x" })))}`
      const ofLength = (length: number) => `${signed}.${"A".repeat(length - signed.length - 1)}`
      expect(ofLength(20_000).length).toBeGreaterThan(TokenValidator.defaults.maxTokenBytes)
      expect(yield* descriptionOf(router.validate(ofLength(20_000)))).toBe("own")
      expect(yield* descriptionOf(router.validate(ofLength(64 * 1024)))).toBe("own")
      expect(yield* reasonOf(router.validate(ofLength(64 * 1024 + 1)))).toBe("TooLarge")
    }))

  // Mutation: `if (alg === undefined) return accepting[0]!` -> the last of them, in `multi`. A token whose header
  // cannot be read goes to the first validator that accepts its issuer.
  it.effect("multi sends a token with an unreadable header to the first validator of its issuer", () =>
    Effect.gen(function*() {
      const token = `${b64("not json")}.${b64(JSON.stringify(claims()))}.AA`
      expect(yield* descriptionOf(TokenValidator.multi([plain("first"), plain("second")]).validate(token)))
        .toBe("first")
    }))

  // Mutation: drop `maxTokenBytesOf.set(service, maxTokenBytes)` in `multi`. A multi inside another is known by its
  // own cap (its validators' largest), not taken for a validator of unknown cap (64 KiB).
  it.scoped("a multi inside another keeps its largest validator's cap", () =>
    Effect.gen(function*() {
      const large = yield* validatorOver([rsa2048.jwk], { maxTokenBytes: 128 * 1024 })
      const token = signRaw(rsa2048, claims({ padding: "x".repeat(80_000) }))
      expect((yield* TokenValidator.multi([TokenValidator.multi([large])]).validate(token)).id).toBe("alice")
    }))

  // Mutation: `if (seen.header.kid !== undefined) span?.attribute("jwt.kid", ...)` -> always, as "" when absent, in
  // `verifyRemembered`. A token without a kid has no `jwt.kid` in its span, remembered or not.
  it.scoped("a token without a kid has no jwt.kid in its span, remembered too", () =>
    Effect.gen(function*() {
      const validator = yield* validatorOver([rsa2048.jwk])
      const token = signRaw(rsa2048, claims(), { kid: undefined })
      const { named, tracer } = recording()
      yield* validator.validate(token).pipe(Effect.withTracer(tracer))
      yield* validator.validate(token).pipe(Effect.withTracer(tracer))
      expect(
        named("TokenValidator.validate").map((span) => [
          span.attributes.get("jwt.remembered"),
          span.attributes.has("jwt.kid")
        ])
      ).toEqual([[undefined, false], [true, false]])
    }))

  // Mutation: drop `if (typeof token !== "string") return fail("Malformed", ...)` in `verify`. A token that is no
  // string (from JavaScript) is refused as Malformed, not a defect.
  it.scoped("a token that is no string is Malformed, not a defect", () =>
    Effect.gen(function*() {
      const validator = yield* validatorOver([rsa2048.jwk])
      for (const token of [undefined, null, 42]) {
        expect(yield* reasonOf(validator.validate(token as unknown as string))).toBe("Malformed")
      }
    }))

  // Mutation: `headers.size >= headerCacheSize` -> `>`. At most 64 headers are kept decoded: the 65th distinct one
  // forgets the 64 before it.
  it.scoped("the 65th distinct header forgets the 64 kept before it", () =>
    Effect.gen(function*() {
      const seen: Array<TokenValidator.Header> = []
      const validator = yield* validatorOver([rsa2048.jwk], {
        tokenCache: 0,
        check: (_, header) => Effect.sync(() => void seen.push(header))
      })
      const tokens = Array.from({ length: 65 }, (_, n) => signRaw(rsa2048, claims(), { n }))
      for (const token of [...tokens, tokens[63]!, tokens[64]!]) yield* validator.validate(token)
      expect({ forgotten: seen[65] !== seen[63], kept: seen[66] === seen[64] }).toEqual({ forgotten: true, kept: true })
    }))

  // Mutations: drop `if (claims.iss === undefined) return refusal("IssuerMismatch", ...)`; the MissingClaim
  // description without the claim's name. A token without iss never reaches an issuer rule of the app's (one that
  // reads it as a string would throw), and a missing required claim is named.
  it.scoped("a token without iss is refused before the issuer rule; a missing required claim is named", () =>
    Effect.gen(function*() {
      const validator = yield* validatorOver([rsa2048.jwk], {
        issuer: { description: "an https issuer", matches: (iss) => iss.startsWith("https://") },
        requiredClaims: ["tenant"]
      })
      expect(yield* descriptionOf(validator.validate(signRaw(rsa2048, claims({ iss: undefined })))))
        .toBe("the token has no issuer")
      expect(yield* descriptionOf(validator.validate(signRaw(rsa2048, claims())))).toBe("the token has no tenant claim")
    }))

  // Mutation: `Option.getOrUndefined(Cause.failureOption(exit.cause))` -> `undefined` in `measured`. A check that
  // answers with an Exit whose cause holds its failure and more (a defect of a finalizer) is counted by the failure.
  it.scoped("a refusal whose cause holds more than the failure is recorded by its reason, not as a defect", () =>
    Effect.gen(function*() {
      const validator = yield* validatorOver([rsa2048.jwk], {
        check: () => Exit.failCause(Cause.sequential(Cause.fail("denied"), Cause.die("finalizer")))
      })
      const { named, tracer } = recording()
      yield* Effect.exit(validator.validate(signRaw(rsa2048, claims())).pipe(Effect.withTracer(tracer)))
      expect(named("TokenValidator.validate")[0]!.attributes.get("outcome")).toBe("CustomCheck")
    }))

  // Mutation: `layerMulti` builds `multi` over its validators in reverse. Its validators keep their order: of two
  // that accept an issuer, the first is chosen.
  it.effect("layerMulti keeps its validators' order: the first of an issuer is chosen", () =>
    Effect.gen(function*() {
      const validator = yield* TokenValidator.TokenValidator
      expect(yield* descriptionOf(validator.validate(signRaw(rsa2048, claims())))).toBe("first")
    }).pipe(
      Effect.provide(TokenValidator.layerMulti([Effect.succeed(plain("first")), Effect.succeed(plain("second"))]))
    ))

  // Mutation: `(key, at) => acceptRemembered(token, seen, key, at, span)` -> with `now`, the time before the lookup,
  // in `verifyRemembered`. A remembered token whose key lookup waited is checked at the time the key came: one that
  // expired meanwhile is Expired.
  it.effect("a remembered token that expires while its key lookup waits is Expired", () =>
    Effect.gen(function*() {
      let slow = false
      const key: TokenValidator.VerificationKey = { verify: () => true }
      const resolver: TokenValidator.KeyResolver = {
        get: () => Effect.as(slow ? Effect.sleep("3 seconds") : Effect.void, Option.some(key)),
        recordSuccess: Effect.void
      }
      const validator = yield* TokenValidator.make(resolver, { issuer: ISSUER, audience: AUDIENCE, leeway: 0 })
      const token = signRaw(rsa2048, claims({ exp: 2 }))
      expect((yield* validator.validate(token)).id).toBe("alice")
      slow = true
      const fiber = yield* Effect.fork(reasonOf(validator.validate(token)))
      yield* TestClock.adjust("3 seconds")
      expect(yield* Fiber.join(fiber)).toBe("Expired")
    }))

  // Mutation: drop `if (text === undefined) return fail("Malformed", "the claims are not UTF-8")` in `verifyWith`.
  it.scoped("signed claims that are not UTF-8 are Malformed, and said so", () =>
    Effect.gen(function*() {
      const validator = yield* validatorOver([rsa2048.jwk])
      const input = `${b64(JSON.stringify({ alg: "RS256", kid: "k1" }))}.${b64(Buffer.from([0x7b, 0xff, 0x7d]))}`
      const token = `${input}.${b64(sign("sha256", Buffer.from(input), rsa2048.privateKey))}`
      expect(yield* descriptionOf(validator.validate(token))).toBe("the claims are not UTF-8")
    }))
})

describe("mutation review (internals)", () => {
  // Mutations in `internal/memoryAnswers.ts`: `answersFor`'s `own === undefined ? () => true` -> `() => false`;
  // `register`'s answer from memory -> `undefined`; its `recordSuccess` -> `false`. A cache of the app's own (an
  // `unsafeGet` this library did not build) is answered from memory through that `unsafeGet` and
  // `unsafeRecordSuccess` while its set is fresh: `get` and `recordSuccess` are not asked.
  it.scoped("a cache of the app's own answers from memory while fresh: its get and recordSuccess are not asked", () =>
    Effect.gen(function*() {
      const cache = yield* JwksCache.make(JwksSource.fromKeySet({ keys: [rsa2048.jwk] }), { backgroundRefresh: false })
      yield* cache.keys // the set is fresh and in memory
      const asked = { get: 0, recordSuccess: 0, unsafeGet: 0, unsafeRecordSuccess: 0 }
      const own: JwksCache.Service = {
        ...cache,
        get: (kid, alg) => Effect.suspend(() => (asked.get++, cache.get(kid, alg))),
        recordSuccess: Effect.suspend(() => (asked.recordSuccess++, cache.recordSuccess)),
        unsafeGet: (kid, alg, now) => (asked.unsafeGet++, cache.unsafeGet(kid, alg, now)),
        unsafeRecordSuccess: () => (asked.unsafeRecordSuccess++, cache.unsafeRecordSuccess())
      }
      const validator = yield* TokenValidator.make(TokenValidator.fromCache(own), {
        issuer: ISSUER,
        audience: AUDIENCE
      })
      expect((yield* validator.validate(signRaw(rsa2048, claims()))).id).toBe("alice")
      expect(asked).toEqual({ get: 0, recordSuccess: 0, unsafeGet: 1, unsafeRecordSuccess: 1 })
    }))
})
