import { describe, expect, it, layer } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"
import { CompactSign, exportJWK, generateKeyPair } from "jose"
import * as JwksCache from "../src/JwksCache.js"
import type { JwksError } from "../src/JwksError.js"
import * as JwksSource from "../src/JwksSource.js"
import type { Principal } from "../src/Principal.js"
import * as FakeIdp from "../src/testing/FakeIdp.js"
import { isTokenValidationError, type TokenValidationError } from "../src/TokenValidationError.js"
import * as TokenValidator from "../src/TokenValidator.js"

const runs = { timeout: 120_000, fastCheck: { numRuns: 300 } }

const b64 = (value: string | Uint8Array): string => Buffer.from(value).toString("base64url")
const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

const localIssuer = "https://local.example.test"
const localAudience = "local-api"

/**
 * One warm validator over a FakeIdp, one real signed token, and a second validator over a key pair of our own (to
 * sign raw JSON that `FakeIdp` cannot produce, such as `1e400`). Built once for the whole file: key generation is
 * the slow part, and every property only reads.
 */
class Fixture extends Context.Tag("test/TokenValidator.property/Fixture")<Fixture, {
  readonly idp: FakeIdp.FakeIdp["Type"]
  readonly validator: TokenValidator.Service
  readonly token: string
  readonly kid: string
  readonly local: TokenValidator.Service
  readonly signRaw: (payload: string) => Effect.Effect<string>
}>() {}

const FixtureLive = Layer.scoped(
  Fixture,
  Effect.gen(function*() {
    const idp = yield* FakeIdp.FakeIdp
    const cache = yield* JwksCache.make(yield* JwksSource.http(idp.jwksUri), { backgroundRefresh: false })
    const validator = yield* TokenValidator.make(TokenValidator.fromCache(cache), {
      issuer: idp.issuer,
      audience: idp.audience
    })
    const token = yield* idp.sign({ sub: "alice", scope: "read write", groups: ["users"], email: "a@example.test" })
    yield* validator.validate(token) // warm: from here on no property may see a JwksError
    const { privateKey, publicKey } = yield* Effect.promise(() => generateKeyPair("RS256", { extractable: true }))
    const jwk = yield* Effect.promise(() => exportJWK(publicKey))
    const localCache = yield* JwksCache.make(
      JwksSource.fromKeySet({ keys: [{ ...jwk, kid: "local", alg: "RS256", use: "sig" }] }),
      { backgroundRefresh: false }
    )
    const local = yield* TokenValidator.make(TokenValidator.fromCache(localCache), {
      issuer: localIssuer,
      audience: localAudience
    })
    const signRaw = (payload: string) =>
      Effect.promise(() =>
        new CompactSign(new TextEncoder().encode(payload)).setProtectedHeader({ alg: "RS256", kid: "local" }).sign(
          privateKey
        )
      )
    return { idp, validator, token, kid: yield* idp.currentKid, local, signRaw }
  })
).pipe(Layer.provide(FakeIdp.layerTest()))

/** A refusal: a failure whose cause holds no defect and no interruption, and whose error is a TokenValidationError. */
const expectRefused = (exit: Exit.Exit<Principal, TokenValidationError | JwksError>, input: string) => {
  if (Exit.isSuccess(exit)) throw new Error(`accepted: ${JSON.stringify(input)}`)
  expect(Cause.isDie(exit.cause), Cause.pretty(exit.cause)).toBe(false)
  expect(Cause.isInterrupted(exit.cause)).toBe(false)
  const error = Cause.failureOption(exit.cause)
  expect(error._tag).toBe("Some")
  if (error._tag === "Some") expect(isTokenValidationError(error.value), String(error.value)).toBe(true)
}

// --- arbitraries ---------------------------------------------------------------------------------------------------

const base64UrlChar = fc.constantFrom(...alphabet)
const base64Urlish = fc.string({ unit: base64UrlChar, maxLength: 120 })

/** Anything a client might send: unicode, control characters, dots, base64url-ish segments, JSON segments. */
const arbitraryInput = fc.oneof(
  fc.string({ unit: "binary", maxLength: 200 }),
  fc.string({ unit: "grapheme", maxLength: 100 }),
  fc.string({ unit: fc.constantFrom(...alphabet, ".", "=", "+", "/", " "), maxLength: 300 }),
  fc.array(base64Urlish, { maxLength: 6 }).map((segments) => segments.join(".")),
  fc.tuple(fc.json(), fc.json(), base64Urlish).map(([header, claims, signature]) =>
    `${b64(header)}.${b64(claims)}.${signature}`
  ),
  fc.tuple(
    fc.record({
      alg: fc.oneof(fc.constantFrom("RS256", "none", "HS256", "ES256", "PS256", "RS512"), fc.string()),
      kid: fc.option(fc.string({ maxLength: 40 }), { nil: undefined }),
      typ: fc.option(fc.constantFrom("JWT", "at+jwt"), { nil: undefined }),
      crit: fc.option(fc.array(fc.string()), { nil: undefined })
    }, { requiredKeys: ["alg"] }),
    fc.jsonValue(),
    base64Urlish
  ).map(([header, claims, signature]) =>
    `${b64(JSON.stringify(header))}.${b64(JSON.stringify(claims) ?? "")}.${signature}`
  )
)

type Mutation =
  | { readonly _tag: "Replace"; readonly segment: number; readonly index: number; readonly char: string }
  | { readonly _tag: "Flip"; readonly segment: number; readonly index: number; readonly bits: number }
  | { readonly _tag: "Insert"; readonly index: number; readonly char: string }
  | { readonly _tag: "Delete"; readonly index: number; readonly count: number }
  | { readonly _tag: "Swap"; readonly order: ReadonlyArray<number> }
  | { readonly _tag: "Truncate"; readonly length: number }
  | { readonly _tag: "Header"; readonly changes: Record<string, unknown>; readonly drop: ReadonlyArray<string> }
  | { readonly _tag: "Claims"; readonly changes: Record<string, unknown>; readonly drop: ReadonlyArray<string> }
  | { readonly _tag: "Extra"; readonly segment: string }

const jsonish = fc.oneof(
  fc.string({ maxLength: 20 }),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.string({ maxLength: 8 }), { maxLength: 3 })
)

/** A position in a segment: anywhere, or one of the last few characters (where base64url has unused bits). */
const position = fc.oneof(fc.nat(), fc.integer({ min: -3, max: -1 }))
const at = (index: number, length: number) => ((index % length) + length) % length

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      _tag: fc.constant("Flip" as const),
      segment: fc.integer({ min: 0, max: 2 }),
      index: position,
      bits: fc.integer({ min: 1, max: 63 })
    })
  },
  fc.record({
    _tag: fc.constant("Replace" as const),
    segment: fc.integer({ min: 0, max: 2 }),
    index: position,
    char: base64UrlChar
  }),
  fc.record({
    _tag: fc.constant("Insert" as const),
    index: fc.nat(),
    char: fc.oneof(base64UrlChar, fc.constantFrom(".", "=", " ", "é"))
  }),
  fc.record({ _tag: fc.constant("Delete" as const), index: fc.nat(), count: fc.integer({ min: 1, max: 4 }) }),
  fc.record({
    _tag: fc.constant("Swap" as const),
    order: fc.constantFrom([0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0], [0, 0, 2], [0, 1, 1], [2, 2, 2])
  }),
  fc.record({ _tag: fc.constant("Truncate" as const), length: fc.nat() }),
  fc.record({
    _tag: fc.constant("Header" as const),
    changes: fc.record({
      alg: fc.constantFrom("RS256", "RS384", "RS512", "PS256", "ES256", "HS256", "none", "EdDSA"),
      kid: fc.oneof(fc.string({ maxLength: 20 }), fc.constant("same")),
      typ: fc.constantFrom("JWT", "at+jwt", "jwt")
    }, { requiredKeys: [] }),
    drop: fc.subarray(["kid", "alg"])
  }),
  fc.record({
    _tag: fc.constant("Claims" as const),
    changes: fc.record({
      sub: fc.string({ maxLength: 10 }),
      exp: fc.oneof(fc.integer({ min: 0, max: 1e10 }), jsonish),
      iss: jsonish,
      aud: jsonish,
      scope: fc.constantFrom("admin", "read write", ""),
      groups: fc.array(fc.constantFrom("admin", "users"))
    }, { requiredKeys: [] }),
    drop: fc.subarray(["exp", "iss", "aud", "sub", "iat"])
  }),
  fc.record({ _tag: fc.constant("Extra" as const), segment: base64Urlish })
)

const decodeJson = (segment: string): Record<string, unknown> =>
  JSON.parse(Buffer.from(segment, "base64url").toString("utf8")) as Record<string, unknown>

const reencode = (
  segment: string,
  changes: Record<string, unknown>,
  drop: ReadonlyArray<string>,
  kid: string
): string => {
  const value: Record<string, unknown> = { ...decodeJson(segment), ...changes }
  if (value.kid === "same") value.kid = kid
  for (const name of drop) delete value[name]
  const encoded = b64(JSON.stringify(value))
  // a re-encoding that comes out the same is no mutation: change it for sure
  return encoded === segment ? b64(JSON.stringify({ ...value, mutated: true })) : encoded
}

const mutate = (token: string, kid: string, m: Mutation): string => {
  const segments = token.split(".")
  switch (m._tag) {
    case "Flip": {
      // xor the character's 6-bit value: flipping only unused low bits keeps the decoded bytes
      const segment = segments[m.segment]!
      const index = at(m.index, segment.length)
      const char = alphabet[alphabet.indexOf(segment[index]!) ^ m.bits]!
      segments[m.segment] = segment.slice(0, index) + char + segment.slice(index + 1)
      return segments.join(".")
    }
    case "Replace": {
      const segment = segments[m.segment]!
      const index = at(m.index, segment.length)
      const char = segment[index] === m.char ? alphabet[(alphabet.indexOf(m.char) + 1) % 64]! : m.char
      segments[m.segment] = segment.slice(0, index) + char + segment.slice(index + 1)
      return segments.join(".")
    }
    case "Insert": {
      const index = m.index % (token.length + 1)
      return token.slice(0, index) + m.char + token.slice(index)
    }
    case "Delete": {
      const index = at(m.index, token.length)
      return token.slice(0, index) + token.slice(index + m.count)
    }
    case "Swap":
      return m.order.map((i) => segments[i]).join(".")
    case "Truncate":
      return token.slice(0, m.length % token.length)
    case "Header":
      return [reencode(segments[0]!, m.changes, m.drop, kid), segments[1], segments[2]].join(".")
    case "Claims":
      return [segments[0], reencode(segments[1]!, m.changes, m.drop, kid), segments[2]].join(".")
    case "Extra":
      return `${token}.${m.segment}`
  }
}

/** A claim value of any JSON type, or absent. */
const claimValue = (good: fc.Arbitrary<unknown>) =>
  fc.oneof(
    { weight: 3, arbitrary: good },
    { weight: 1, arbitrary: fc.constant(undefined) },
    { weight: 2, arbitrary: jsonish },
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
    { weight: 1, arbitrary: fc.dictionary(fc.string({ maxLength: 5 }), jsonish, { maxKeys: 3 }) }
  )

const time = fc.oneof(
  fc.integer({ min: -100, max: 10_000 }),
  fc.constantFrom(0, 1, 3600, 1e300, -1e300, Number.MAX_SAFE_INTEGER, Number.MAX_VALUE, -0, 0.5)
)

/** Raw JSON number texts, including ones that parse to a non-finite number. */
const rawNumber = fc.oneof(
  fc.constantFrom("1e400", "-1e400", "1e309", "1E999", "-0", "0", "3600", "3600.5", "1e3", "9007199254740993"),
  fc.integer({ min: -100, max: 100_000 }).map(String),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((n) => JSON.stringify(n))
)

const rawValue = (good: fc.Arbitrary<string>) =>
  fc.oneof(
    { weight: 3, arbitrary: good },
    { weight: 2, arbitrary: rawNumber },
    { weight: 2, arbitrary: fc.json({ maxDepth: 2 }) },
    { weight: 1, arbitrary: fc.constantFrom("[1e400]", "{\"exp\":1e400}", "\"1e400\"", "true", "null") }
  )

/** Raw claim members, possibly repeated, possibly behind a `__proto__` member. */
const rawClaims = fc.tuple(
  fc.array(
    fc.oneof(
      fc.tuple(fc.constant("exp"), rawValue(rawNumber)),
      fc.tuple(fc.constant("nbf"), rawValue(rawNumber)),
      fc.tuple(fc.constant("iat"), rawValue(rawNumber)),
      fc.tuple(fc.constant("iss"), rawValue(fc.constant(JSON.stringify(localIssuer)))),
      fc.tuple(
        fc.constant("aud"),
        rawValue(fc.constantFrom(JSON.stringify(localAudience), JSON.stringify(["x", localAudience])))
      ),
      fc.tuple(fc.constantFrom("sub", "client_id", "azp", "scope", "scp", "token_use", "typ"), fc.json({ maxDepth: 1 }))
    ),
    { maxLength: 10 }
  ),
  fc.option(rawValue(rawNumber).map((exp) => `{"exp":${exp}}`), { nil: undefined }),
  fc.constantFrom("all", "iss and aud", "none")
).map(([members, proto, defaults]) => {
  const all: Array<readonly [string, string]> = [
    ...(defaults === "none" ? [] : [
      ["iss", JSON.stringify(localIssuer)] as const,
      ["aud", JSON.stringify(localAudience)] as const
    ]),
    ...(defaults === "all" ? [["exp", "3600"] as const] : []),
    ...members
  ]
  if (proto !== undefined) all.push(["__proto__", proto])
  return `{${all.map(([name, value]) => `${JSON.stringify(name)}:${value}`).join(",")}}`
})

// --- properties ----------------------------------------------------------------------------------------------------

/**
 * What the claims of a payload must be, read from the schema: a JSON object (not an array) without an own
 * `__proto__` member whose registered claims fit `RegisteredClaims`. The validator checks this by hand, for speed.
 */
const isRegisteredClaimsText = (text: string): boolean => {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return false
  }
  return Predicate.isRecord(value) && !Object.hasOwn(value, "__proto__") &&
    Schema.is(TokenValidator.RegisteredClaims)(value)
}

describe("TokenValidator claims", () => {
  it.prop(
    "the hand-written claims check gives the schema's answer on every payload",
    [fc.oneof(
      rawClaims,
      fc.json({ maxDepth: 3 }),
      fc.dictionary(
        fc.constantFrom("iss", "sub", "aud", "exp", "nbf", "iat", "client_id", "azp", "token_use", "other"),
        fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.array(fc.string(), { maxLength: 3 }))
      ).map((claims) => JSON.stringify(claims))
    )],
    ([text]) => {
      const token = `${b64(JSON.stringify({ alg: "RS256" }))}.${b64(text)}.c2ln`
      expect(Option.isSome(TokenValidator.peekClaims(token)), text).toBe(isRegisteredClaimsText(text))
    },
    { fastCheck: { numRuns: 2000 } }
  )
})

describe("TokenValidator properties", () => {
  layer(FixtureLive, { timeout: "60 seconds" })((it) => {
    it.effect("the fixture's token is valid", () =>
      Effect.gen(function*() {
        const { token, validator } = yield* Fixture
        expect((yield* validator.validate(token)).id).toBe("alice")
      }))

    it.effect.prop(
      "arbitrary strings are refused as TokenValidationError, never a defect",
      [arbitraryInput],
      ([input]) =>
        Effect.gen(function*() {
          const { validator } = yield* Fixture
          expectRefused(yield* Effect.exit(validator.validate(input)), input)
        }),
      runs
    )

    it.effect.prop("a mutated valid token is never accepted", [mutation], ([m]) =>
      Effect.gen(function*() {
        const { kid, token, validator } = yield* Fixture
        const mutated = mutate(token, kid, m)
        if (mutated === token) return // the only no-op: deleting nothing at the end
        expectRefused(yield* Effect.exit(validator.validate(mutated)), mutated)
      }), runs)

    it.effect.prop(
      "random claim objects signed by the IdP: never a defect, accepted only when every registered claim fits",
      [fc.record({
        iss: claimValue(fc.constant(FakeIdp.defaults.issuer)),
        aud: claimValue(fc.constantFrom(FakeIdp.defaults.audience, [FakeIdp.defaults.audience, "x"])),
        sub: claimValue(fc.string({ maxLength: 10 })),
        exp: claimValue(time),
        nbf: claimValue(time),
        iat: claimValue(time),
        client_id: claimValue(fc.string({ maxLength: 10 })),
        azp: claimValue(fc.string({ maxLength: 10 })),
        token_use: claimValue(fc.constantFrom("id", "access", "refresh")),
        typ: claimValue(fc.constantFrom("Bearer", "Refresh", "ID")),
        scope: claimValue(fc.string({ maxLength: 10 })),
        scp: claimValue(fc.array(fc.string({ maxLength: 5 }))),
        groups: claimValue(fc.array(fc.string({ maxLength: 5 })))
      })],
      ([claims]) =>
        Effect.gen(function*() {
          const { idp, validator } = yield* Fixture
          const token = yield* idp.sign(claims)
          const exit = yield* Effect.exit(validator.validate(token))
          if (Exit.isFailure(exit)) return expectRefused(exit, token)
          const signed = JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString("utf8"))
          expect(typeof signed.exp === "number" && Number.isFinite(signed.exp) && signed.exp > 0).toBe(true)
          expect(signed.iss).toBe(idp.issuer)
          expect(signed.nbf === undefined || (typeof signed.nbf === "number" && signed.nbf <= 0)).toBe(true)
          expect(signed.iat === undefined || (typeof signed.iat === "number" && signed.iat <= 0)).toBe(true)
          expect(exit.value.tokenType).not.toBe("refresh")
          expect(exit.value.claims).toEqual(signed)
        }),
      runs
    )

    it.effect.prop(
      "raw claim JSON (1e400, repeated members, __proto__): never a defect, a non-finite exp never accepted",
      [rawClaims],
      ([payload]) =>
        Effect.gen(function*() {
          const { local, signRaw } = yield* Fixture
          const token = yield* signRaw(payload)
          const exit = yield* Effect.exit(local.validate(token))
          if (Exit.isFailure(exit)) return expectRefused(exit, payload)
          const parsed = JSON.parse(payload) as Record<string, unknown>
          expect(Object.hasOwn(parsed, "__proto__"), payload).toBe(false)
          expect(Object.hasOwn(parsed, "exp"), payload).toBe(true)
          const exp = parsed.exp
          expect(typeof exp === "number" && Number.isFinite(exp) && exp > 0, payload).toBe(true)
          expect(exit.value.claims.exp).toBe(exp)
        }),
      runs
    )
  })
})
