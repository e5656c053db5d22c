import { describe, expect, it } from "@effect/vitest"
import * as ConfigError from "effect/ConfigError"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Static from "../../src/providers/Static.js"
import * as FakeIdp from "../../src/testing/FakeIdp.js"
import * as TokenValidator from "../../src/TokenValidator.js"

const ISSUER = "https://auth.example.test"
const AUDIENCE = "orders-api"
const Idp = FakeIdp.layerTest({ issuer: ISSUER, audience: AUDIENCE, algorithm: "ES256" })

const refusal = <A, E extends { readonly _tag: string; readonly reason: string }, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.map(Effect.flip(effect), (error) => `${error._tag}:${error.reason}`)

const env = (vars: Record<string, string>) =>
  Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(vars)), { pathDelim: "_" }))

describe("Static", () => {
  it.effect("validates a token against a fixed key set, without any HTTP", () =>
    Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      const validator = yield* Static.make({
        jwks: yield* idp.jwks,
        issuer: ISSUER,
        audience: AUDIENCE,
        algorithms: ["ES256"]
      })
      const principal = yield* validator.validate(yield* idp.sign({ name: "Carol", groups: ["ops"] }))
      expect(principal.name).toBe("Carol")
      expect(principal.groups).toEqual(["ops"])
      expect(yield* idp.fetchCount).toBe(0)
    }).pipe(Effect.provide(Idp)))

  it.effect("refuses a key outside the set at once, and never looks for it", () =>
    Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      const validator = yield* Static.make({
        jwks: yield* idp.jwks,
        issuer: ISSUER,
        audience: AUDIENCE,
        algorithms: ["ES256"]
      })
      yield* idp.rotate("replace")
      expect(yield* refusal(validator.validate(yield* idp.sign()))).toBe("TokenValidationError:NoMatchingKey")
      const impostor = yield* idp.sign({}, { key: "unpublished", kid: (yield* idp.publishedKids)[0]! })
      expect(yield* refusal(validator.validate(impostor))).toBe("TokenValidationError:NoMatchingKey")
      expect(yield* idp.fetchCount).toBe(0)
    }).pipe(Effect.provide(Idp)))

  it.effect("refuses a set with no usable key with a ConfigError", () =>
    Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      const path = (options: Static.Options) =>
        Effect.map(Effect.flip(Static.make(options)), (error) => error._op === "InvalidData" ? error.path : error._op)
      const base = { issuer: ISSUER, audience: AUDIENCE }
      expect(yield* path({ ...base, jwks: { keys: [] } })).toEqual(["jwks"])
      expect(yield* path({ ...base, jwks: { keys: [{ kty: "oct", k: "c2VjcmV0", kid: "hmac" }] } })).toEqual(["jwks"])
      // An EC set for a validator that allows RS256 only (the default).
      expect(yield* path({ ...base, jwks: yield* idp.jwks })).toEqual(["jwks"])
      expect(yield* path({ ...base, jwks: yield* idp.jwks, algorithms: ["ES256"], audience: undefined })).toEqual([
        "audience"
      ])
      // Not a set at all (one JWK where the set belongs, as a JSON file makes easy; keys: null) is refused, not crashed on.
      const notASet = (jwks: unknown) => path({ ...base, algorithms: ["ES256"], jwks: jwks as Static.Options["jwks"] })
      expect(yield* notASet((yield* idp.jwks).keys[0])).toEqual(["jwks"])
      expect(yield* notASet({ keys: null })).toEqual(["jwks"])
      expect(yield* notASet(null)).toEqual(["jwks"])
      // Import limits that are not positive whole numbers (NaN from an unset variable would lift the RSA floor).
      const withLimits = (limits: unknown) =>
        path({
          ...base,
          algorithms: ["ES256"],
          jwks: jwks as Static.Options["jwks"],
          limits: limits as Static.Options["limits"]
        })
      const jwks = yield* idp.jwks
      expect(yield* withLimits({ minRsaBits: Number.NaN })).toEqual(["limits", "minRsaBits"])
      expect(yield* withLimits({ maxKeys: -1 })).toEqual(["limits", "maxKeys"])
      // Algorithms no key set can verify, or not a list: named, never a defect of the key import.
      for (const algorithms of [["HS256"], ["ES256", "HS256"], [], ["none"], ["RS257"], "RS256"]) {
        const options = { ...base, jwks, algorithms: algorithms as Static.Options["algorithms"] }
        expect(yield* path(options), JSON.stringify(algorithms)).toEqual(["algorithms"])
      }
      // An issuer that is not a URL, a list of them or a rule (null from parsed JSON): refused, not crashed on.
      for (const issuer of [null, 42, [null], {}, { description: "x", matches: () => true, accepts: null }]) {
        const options = { ...base, algorithms: ["ES256"] as const, jwks: yield* idp.jwks }
        expect(yield* path({ ...options, issuer: issuer as Static.Options["issuer"] })).toEqual(["issuer"])
      }
    }).pipe(Effect.provide(Idp)))

  it.effect("a refused key set's ConfigError says why in the import's words, without the error's reason and source", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Static.make({ issuer: ISSUER, audience: AUDIENCE, jwks: { keys: [] } }))
      expect(error._op === "InvalidData" && error.path).toEqual(["jwks"])
      expect(error._op === "InvalidData" && error.message).toBe("the set has no keys")
    }))

  describe("layerConfig", () => {
    it.effect("reads JWT_JWKS, JWT_ISSUER, JWT_AUDIENCE and JWT_ALGORITHMS", () =>
      Effect.gen(function*() {
        const idp = yield* FakeIdp.FakeIdp
        const live = Static.layerConfig().pipe(
          Layer.provide(env({
            JWT_JWKS: JSON.stringify(yield* idp.jwks),
            JWT_ISSUER: ISSUER,
            JWT_AUDIENCE: AUDIENCE,
            JWT_ALGORITHMS: "ES256"
          }))
        )
        const token = yield* idp.sign()
        expect((yield* TokenValidator.validate(token).pipe(Effect.provide(live))).id).toBe("user-1")
      }).pipe(Effect.provide(Idp)))

    it.effect("reads one JWT_ISSUER as that issuer, several as a list", () =>
      Effect.gen(function*() {
        const read = (issuer: string) =>
          Effect.provide(
            Static.config,
            env({ JWT_JWKS: JSON.stringify({ keys: [] }), JWT_ISSUER: issuer, JWT_AUDIENCE: AUDIENCE })
          )
        expect((yield* read(ISSUER)).issuer).toBe(ISSUER)
        expect((yield* read(`${ISSUER}, https://other.example.test`)).issuer).toEqual([
          ISSUER,
          "https://other.example.test"
        ])
      }))

    it.effect("fails with a ConfigError when a required variable is missing or bad", () =>
      Effect.gen(function*() {
        const idp = yield* FakeIdp.FakeIdp
        const build = (vars: Record<string, string>) =>
          Effect.flip(
            Effect.provide(TokenValidator.TokenValidator, Static.layerConfig().pipe(Layer.provide(env(vars))))
          )
        const all = { JWT_JWKS: JSON.stringify(yield* idp.jwks), JWT_ISSUER: ISSUER, JWT_AUDIENCE: AUDIENCE }
        const missing = yield* build({ JWT_ISSUER: ISSUER, JWT_AUDIENCE: AUDIENCE })
        expect(ConfigError.isConfigError(missing) && ConfigError.isMissingDataOnly(missing)).toBe(true)
        expect(ConfigError.isConfigError(yield* build({ ...all, JWT_JWKS: "{\"keys\": [" }))).toBe(true)
        expect(ConfigError.isConfigError(yield* build({ ...all, JWT_ALGORITHMS: "HS256" }))).toBe(true)
        // One value of a list not allowed: named too (ES256 fits the set, so the list is what is wrong).
        const badList = yield* build({ ...all, JWT_ALGORITHMS: "ES256,HS256" })
        expect(badList._op === "InvalidData" && badList.path).toEqual(["JWT_ALGORITHMS"])
        // RS256 by default, and the set holds EC keys only.
        expect(ConfigError.isConfigError(yield* build(all))).toBe(true)
        // Named once, as every variable is (Config adds the variable's name to the path).
        const notASet = yield* build({ ...all, JWT_JWKS: "{\"kty\":\"EC\"}" })
        expect(notASet._op === "InvalidData" && notASet.path).toEqual(["JWT_JWKS"])
      }).pipe(Effect.provide(Idp)))
  })
})
