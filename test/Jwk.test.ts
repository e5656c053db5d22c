import { describe, expect, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as fc from "effect/FastCheck"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import { base64url, exportJWK, generateKeyPair, importJWK, type JWK, jwtVerify, SignJWT } from "jose"
import {
  constants,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type JsonWebKey,
  type KeyObject,
  sign,
  verify
} from "node:crypto"
import { vi } from "vitest"
import * as Jwk from "../src/Jwk.js"
import { JwksError } from "../src/JwksError.js"

// Key material, generated once for the whole file.

interface Pair {
  readonly public: JWK
  readonly private: JWK
}

const generate = async (alg: string): Promise<Pair> => {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true })
  return { public: await exportJWK(publicKey), private: await exportJWK(privateKey) }
}

const [rsa, ec256, ec384, ec521, ed25519] = await Promise.all([
  generate("RS256"),
  generate("ES256"),
  generate("ES384"),
  generate("ES512"),
  generate("EdDSA")
])

const rsa1024: JWK = generateKeyPairSync("rsa", { modulusLength: 1024 }).publicKey.export({ format: "jwk" })

/** The 2048-bit modulus with its top three bits cleared: a 2045-bit modulus still written in 342 characters. */
const rsa2045: JWK = (() => {
  const n = base64url.decode(rsa.public.n!)
  n[0] = 0x10 | (n[0]! & 0x0f)
  return { kty: "RSA", n: base64url.encode(n), e: rsa.public.e! }
})()

const key = (pair: Pair, extra: Record<string, unknown> = {}): Record<string, unknown> => ({ ...pair.public, ...extra })

// Helpers.

const importSet = (keys: ReadonlyArray<unknown>, options?: Jwk.ImportOptions) =>
  Jwk.importKeySet({ keys }, "test", options)

/** Runs an effect that must fail with a `JwksError`, and never die. */
const failureOf = <A>(effect: Effect.Effect<A, JwksError>) =>
  Effect.gen(function*() {
    const exit = yield* Effect.exit(effect)
    if (Exit.isSuccess(exit)) return expect.fail("expected a failure")
    expect(Cause.isDie(exit.cause)).toBe(false)
    const error = Cause.failureOption(exit.cause)
    if (Option.isNone(error)) return expect.fail("expected a JwksError")
    expect(error.value).toBeInstanceOf(JwksError)
    return error.value
  })

/** Runs an effect and collects what it logs, debug included. */
const withLogs = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.gen(function*() {
    const lines: Array<string> = []
    const logger = Logger.make(({ message }) => {
      lines.push((Array.isArray(message) ? message : [message]).map(String).join(" "))
    })
    const result = yield* effect.pipe(Effect.provide(Logger.add(logger)), Logger.withMinimumLogLevel(LogLevel.Debug))
    return [result, lines] as const
  })

const algorithmsOf = (key: Jwk.Key) => Array.from(key.algorithms).sort()

const sortedRsa = ["PS256", "PS384", "PS512", "RS256", "RS384", "RS512"]

describe("Jwk", () => {
  describe("algorithmsFor", () => {
    it("maps each key type and curve to its algorithms, and nothing else to any", () => {
      expect(Jwk.algorithmsFor("RSA", undefined)).toEqual(["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"])
      expect(Jwk.algorithmsFor("EC", "P-256")).toEqual(["ES256"])
      expect(Jwk.algorithmsFor("EC", "P-384")).toEqual(["ES384"])
      expect(Jwk.algorithmsFor("EC", "P-521")).toEqual(["ES512"])
      expect(Jwk.algorithmsFor("EC", "secp256k1")).toEqual([])
      expect(Jwk.algorithmsFor("EC", undefined)).toEqual([])
      expect(Jwk.algorithmsFor("OKP", "Ed25519")).toEqual(["EdDSA", "Ed25519"])
      expect(Jwk.algorithmsFor("OKP", "Ed448")).toEqual([])
      expect(Jwk.algorithmsFor("OKP", "X25519")).toEqual([])
      expect(Jwk.algorithmsFor("oct", undefined)).toEqual([])
    })
  })

  describe("importKeySet", () => {
    it.effect("imports RSA, EC and Ed25519 keys with the algorithms their type and alg allow", () =>
      Effect.gen(function*() {
        const set = yield* importSet([
          key(rsa, { kid: "rsa-rs256", alg: "RS256", use: "sig" }),
          key(rsa, { kid: "rsa-any" }),
          key(ec256, { kid: "p256" }),
          key(ec384, { kid: "p384", alg: "ES384" }),
          key(ec521, { kid: "p521", key_ops: ["verify"] }),
          key(ed25519, { kid: "ed" }),
          key(ed25519, { kid: "ed-eddsa", alg: "EdDSA" })
        ])
        expect(set.skipped).toBe(0)
        expect(set.keys.map((k) => [k.kid, k.kty, k.crv, algorithmsOf(k)])).toEqual([
          ["rsa-rs256", "RSA", undefined, ["RS256"]],
          ["rsa-any", "RSA", undefined, sortedRsa],
          ["p256", "EC", "P-256", ["ES256"]],
          ["p384", "EC", "P-384", ["ES384"]],
          ["p521", "EC", "P-521", ["ES512"]],
          ["ed", "OKP", "Ed25519", ["Ed25519", "EdDSA"]],
          ["ed-eddsa", "OKP", "Ed25519", ["EdDSA"]]
        ])
        expect(set.keys.map((k) => k.keyObject.asymmetricKeyType)).toEqual([
          "rsa",
          "rsa",
          "ec",
          "ec",
          "ec",
          "ed25519",
          "ed25519"
        ])
        expect(set.keys[4]!.keyObject.asymmetricKeyDetails).toMatchObject({ namedCurve: "secp521r1" })
        for (const k of set.keys) expect(k.keyObject.type).toBe("public")
        expect(Array.from(set.byKid.keys())).toEqual(set.keys.map((k) => k.kid))
      }))

    it.effect("imported keys verify tokens signed with the matching private keys", () =>
      Effect.gen(function*() {
        const set = yield* importSet([
          key(rsa, { kid: "rsa" }),
          key(ec256, { kid: "p256" }),
          key(ec521, { kid: "p521" }),
          key(ed25519, { kid: "ed" })
        ])
        const cases: ReadonlyArray<readonly [string, Jwk.Algorithm, Pair]> = [
          ["rsa", "RS256", rsa],
          ["rsa", "PS384", rsa],
          ["p256", "ES256", ec256],
          ["p521", "ES512", ec521],
          ["ed", "EdDSA", ed25519],
          ["ed", "Ed25519", ed25519]
        ]
        for (const [kid, alg, pair] of cases) {
          const verified = yield* Effect.promise(async () => {
            const signingKey = await importJWK(pair.private, alg)
            const token = await new SignJWT({ sub: kid }).setProtectedHeader({ alg, kid }).sign(signingKey)
            const key = Jwk.select(set, kid, alg)!
            const dot = token.lastIndexOf(".")
            const data = new TextEncoder().encode(token.slice(0, dot))
            const signature = Buffer.from(token.slice(dot + 1), "base64url")
            const tampered = Buffer.from(signature)
            tampered[0] = tampered[0]! ^ 1
            return {
              jose: (await jwtVerify(token, key.keyObject, { algorithms: [alg] })).payload.sub,
              ours: key.verify(alg, data, signature),
              tampered: key.verify(alg, data, tampered),
              otherAlg: key.verify(alg === "RS256" ? "RS384" : "RS256", data, signature)
            }
          })
          expect(verified).toEqual({ jose: kid, ours: true, tampered: false, otherAlg: false })
        }
      }))

    it.effect("a signature has its exact length: RSA the modulus', PSS too (RFC 8017); ECDSA r and s, not DER", () =>
      Effect.gen(function*() {
        const set = yield* importSet([key(rsa, { kid: "rsa" }), key(ec256, { kid: "ec" })])
        const rsaKey = Jwk.select(set, "rsa", "PS256")!
        const signingKey = createPrivateKey({ key: rsa.private as JsonWebKey, format: "jwk" })
        const data = Buffer.from("header.claims")
        const outcomes: Record<string, unknown> = {}
        for (const alg of ["PS256", "PS384", "PS512", "RS256"] as const) {
          const hash = `sha${alg.slice(2)}`
          const pss = { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }
          // A signature that starts with a zero byte (1 in 256): PSS signs with a random salt, so sign again until
          // one does; PKCS #1 v1.5 is deterministic, so vary the data.
          let input = data
          let signature = Buffer.alloc(0)
          for (let i = 0; i < 5000 && signature[0] !== 0; i++) {
            if (alg === "RS256") input = Buffer.concat([data, Buffer.from(String(i))])
            signature = sign(hash, input, alg === "RS256" ? signingKey : { key: signingKey, ...pss })
          }
          outcomes[alg] = {
            whole: rsaKey.verify(alg, input, signature),
            withoutItsZeroByte: rsaKey.verify(alg, input, signature.subarray(1)),
            withAnotherZeroByte: rsaKey.verify(alg, input, Buffer.concat([Buffer.alloc(1), signature]))
          }
        }
        const expected = { whole: true, withoutItsZeroByte: false, withAnotherZeroByte: false }
        expect(outcomes).toEqual({ PS256: expected, PS384: expected, PS512: expected, RS256: expected })
        const ecKey = createPrivateKey({ key: ec256.private as JsonWebKey, format: "jwk" })
        const ecdsa = (dsaEncoding: "der" | "ieee-p1363") => sign("sha256", data, { key: ecKey, dsaEncoding })
        expect({
          rs: Jwk.select(set, "ec", "ES256")!.verify("ES256", data, ecdsa("ieee-p1363")),
          der: Jwk.select(set, "ec", "ES256")!.verify("ES256", data, ecdsa("der"))
        }).toEqual({ rs: true, der: false })
      }))

    const good = key(ec256, { kid: "good" })

    const unusable: ReadonlyArray<{ readonly name: string; readonly jwk: unknown; readonly reason: RegExp }> = [
      { name: "a symmetric key", jwk: { kty: "oct", k: "c2VjcmV0", kid: "bad", alg: "HS256" }, reason: /symmetric/ },
      { name: "an encryption key", jwk: key(rsa, { kid: "bad", use: "enc" }), reason: /use is "enc"/ },
      {
        name: "key_ops without verify",
        jwk: key(ec256, { kid: "bad", key_ops: ["encrypt", "sign"] }),
        reason: /key_ops does not include "verify"/
      },
      { name: "an unknown kty", jwk: { kty: "XYZ", kid: "bad", x: "AAAA" }, reason: /unsupported key type XYZ/ },
      {
        name: "an EC key on an unknown curve",
        jwk: key(ec256, { kid: "bad", crv: "P-192" }),
        reason: /unsupported key type EC \(P-192\)/
      },
      {
        name: "an X25519 OKP key",
        jwk: key(ed25519, { kid: "bad", crv: "X25519" }),
        reason: /unsupported key type OKP \(X25519\)/
      },
      {
        name: "an alg that does not fit the kty",
        jwk: key(ec256, { kid: "bad", alg: "RS256" }),
        reason: /alg RS256 does not fit a EC key/
      },
      {
        name: "an RSA key with alg none",
        jwk: key(rsa, { kid: "bad", alg: "none" }),
        reason: /alg none does not fit a RSA key/
      },
      {
        name: "a 1024-bit RSA key",
        jwk: { ...rsa1024, kid: "bad" },
        reason: /RSA modulus shorter than 2048 bits/
      },
      {
        name: "a 2045-bit RSA key written in 2048-bit length",
        jwk: { ...rsa2045, kid: "bad" },
        reason: /RSA modulus shorter than 2048 bits/
      },
      { name: "an RSA key without e", jwk: { kty: "RSA", n: rsa.public.n, kid: "bad" }, reason: /without n or e/ },
      {
        name: "an EC key without y",
        jwk: { kty: "EC", crv: "P-256", x: ec256.public.x, kid: "bad" },
        reason: /EC key without its coordinates/
      },
      { name: "an n that is not base64url", jwk: key(rsa, { n: "not base64url!" }), reason: /#1: not a valid JWK/ },
      { name: "a numeric kty", jwk: { ...key(ec256), kty: 2 }, reason: /#1: not a valid JWK/ },
      { name: "key_ops that is not an array", jwk: key(ec256, { key_ops: "verify" }), reason: /not a valid JWK/ },
      { name: "null", jwk: null, reason: /#1: not a valid JWK/ },
      { name: "a string", jwk: "RSA", reason: /#1: not a valid JWK/ },
      {
        name: "EC material that is not a point of the curve",
        jwk: { kty: "EC", crv: "P-256", x: "A".repeat(43), y: "A".repeat(43), kid: "bad" },
        reason: /"bad": it could not be imported/
      },
      {
        name: "Ed25519 material of the wrong length",
        jwk: { kty: "OKP", crv: "Ed25519", x: "AAAA", kid: "bad" },
        reason: /"bad": Ed25519 key that is not a point/
      },
      { name: "an empty RSA exponent", jwk: key(rsa, { kid: "bad", e: "" }), reason: /RSA exponent/ },
      { name: "RSA exponent 1", jwk: key(rsa, { kid: "bad", e: "AQ" }), reason: /RSA exponent/ },
      { name: "an even RSA exponent", jwk: key(rsa, { kid: "bad", e: "AQAC" }), reason: /RSA exponent/ },
      { name: "a 3600-bit RSA exponent", jwk: key(rsa, { kid: "bad", e: "_".repeat(600) }), reason: /RSA exponent/ }
    ]

    it.effect.each(unusable)("skips $name, keeps the set and says why", ({ jwk, reason }) =>
      Effect.gen(function*() {
        const [set, logs] = yield* withLogs(importSet([good, jwk]))
        expect(set.keys.map((k) => k.kid)).toEqual(["good"])
        expect(set.skipped).toBe(1)
        expect(Array.from(set.byKid.keys())).toEqual(["good"])
        expect(logs).toHaveLength(1)
        expect(logs[0]).toMatch(reason)
      }))

    it.effect("skips every unusable key of one set and counts them", () =>
      Effect.gen(function*() {
        const set = yield* importSet([...unusable.map((u) => u.jwk), good])
        expect(set.keys).toHaveLength(1)
        expect(set.skipped).toBe(unusable.length)
      }))

    it.effect("fails with EmptyKeySet when no key is usable", () =>
      Effect.gen(function*() {
        const error = yield* failureOf(importSet(unusable.map((u) => u.jwk)))
        expect(error.reason).toBe("EmptyKeySet")
        expect(error.source).toBe("test")
        expect(error.description).toBe(
          `none of its ${unusable.length} keys is usable here (each one skipped is logged, module Jwk, most at Debug)`
        )
      }))

    it.effect("fails with EmptyKeySet on an empty set", () =>
      Effect.gen(function*() {
        const error = yield* failureOf(importSet([]))
        expect(error.reason).toBe("EmptyKeySet")
        expect(error.description).toBe("the set has no keys")
      }))

    it.effect("refuses a set of more than maxKeys keys as InvalidShape, before importing any", () =>
      Effect.gen(function*() {
        const tooMany = yield* failureOf(importSet(Array.from({ length: 101 }, () => good)))
        expect(tooMany.reason).toBe("InvalidShape")
        expect(tooMany.description).toBe("the set has 101 keys, more than the limit of 100")
        // 100 entries is within the default limit: these fail for another reason.
        expect((yield* failureOf(importSet(Array.from({ length: 100 }, () => null)))).reason).toBe("EmptyKeySet")
        const custom = yield* failureOf(importSet([good, good, good], { maxKeys: 2 }))
        expect(custom.reason).toBe("InvalidShape")
        const atLimit = yield* importSet([good, good], { maxKeys: 2 })
        expect(atLimit.keys).toHaveLength(2)
      }))

    it.effect("does not check an Ed25519 point again when the set it replaces already had it", () =>
      Effect.gen(function*() {
        const keys = Array.from({ length: 20 }, (_, i) => ({
          ...generateKeyPairSync("ed25519").publicKey.export({ format: "jwk" }),
          kid: `k${i}`
        }))
        const first = yield* importSet(keys)
        // The check decodes each key's x (its one base64url decode); a carried-over key needs none.
        const decodes = vi.spyOn(Buffer, "from")
        try {
          const again = yield* importSet(keys, { previous: first })
          expect(again.keys.every((key, i) => key === first.keys[i])).toBe(true)
          expect(decodes.mock.calls.filter((args) => (args as ReadonlyArray<unknown>)[1] === "base64url")).toHaveLength(
            0
          )
        } finally {
          decodes.mockRestore()
        }
      }))

    it.effect("dies on import limits that are not positive whole numbers, rather than lifting them", () =>
      Effect.gen(function*() {
        // NaN is what Number() gives for an unset variable; with it, every comparison is false: no floor, no cap.
        for (
          const options of [
            { minRsaBits: Number.NaN },
            { maxKeys: Number.NaN },
            { minRsaBits: "4096" },
            {
              maxKeys: 0
            },
            { algorithms: [] },
            { algorithms: ["none"] }
          ]
        ) {
          const exit = yield* Effect.exit(importSet([rsa1024], options as Jwk.ImportOptions))
          expect(Exit.isFailure(exit) && Cause.isDie(exit.cause)).toBe(true)
        }
      }))

    it.effect("skips a key published with its private part: whoever reads the set can sign with it", () =>
      Effect.gen(function*() {
        expect(rsa.private).toHaveProperty("d")
        expect(ec256.private).toHaveProperty("d")
        const published = [
          { ...rsa.private, kid: "rsa" },
          { ...ec256.private, kid: "ec" },
          { ...ed25519.private, kid: "ed" },
          key(ec384, { kid: "public" })
        ]
        const [set, logs] = yield* withLogs(importSet(published))
        expect({ kids: set.keys.map((k) => k.kid), skipped: set.skipped }).toEqual({ kids: ["public"], skipped: 3 })
        for (const member of ["d", "p", "q", "dp", "dq", "qi"]) expect(set.keys[0]!.jwk).not.toHaveProperty(member)
        const skipping = (kid: string, members: string) =>
          `Skipping key "${kid}": it is published with its private part (${members}), so whoever can read the set ` +
          "can sign with it"
        expect(logs).toEqual([skipping("rsa", "d, p, q, dp, dq, qi"), skipping("ec", "d"), skipping("ed", "d")])
        // A key the set already had, published later with its private part (leaked since): no longer served.
        const before = yield* importSet([key(rsa, { kid: "later" }), key(ec384, { kid: "public" })])
        const leaked = yield* importSet([{ ...rsa.private, kid: "later" }, key(ec384, { kid: "public" })], {
          previous: before
        })
        expect(Jwk.select(leaked, "later", "RS256")).toBeUndefined()
        // The primes without d are as good as d; a set of nothing else is no set.
        const { d: _d, ...primes } = rsa.private
        const error = yield* failureOf(importSet([{ ...primes, kid: "primes" }]))
        expect(error.reason).toBe("EmptyKeySet")
      }))

    it.effect("imports only the algorithms of the algorithms option", () =>
      Effect.gen(function*() {
        const set = yield* importSet(
          [key(rsa, { kid: "rsa" }), key(ec256, { kid: "p256" }), key(ec384, { kid: "p384" })],
          { algorithms: ["PS256", "ES256"] }
        )
        expect(set.keys.map((k) => [k.kid, algorithmsOf(k)])).toEqual([["rsa", ["PS256"]], ["p256", ["ES256"]]])
        expect(set.skipped).toBe(1)
        const [, logs] = yield* withLogs(
          Effect.either(importSet([key(rsa, { alg: "RS256" })], { algorithms: ["PS256"] }))
        )
        expect(logs[0]).toMatch(/alg RS256 is not allowed/)
        const error = yield* failureOf(importSet([key(ec384)], { algorithms: ["RS256"] }))
        expect(error.reason).toBe("EmptyKeySet")
      }))

    it.effect("carries over the keys of the previous set that are published again unchanged, and only those", () =>
      Effect.gen(function*() {
        const previous = yield* importSet([
          key(rsa, { kid: "a" }),
          key(ec256, { kid: "b" }),
          key(ed25519, { kid: "c" })
        ])
        const next = yield* importSet(
          [
            key(rsa, { kid: "a", use: "sig" }), // unchanged material, kid and algorithms
            key(ec256, { kid: "b2" }), // the same material under another kid
            key(ed25519, { kid: "c", alg: "Ed25519" }), // fewer algorithms than before
            key(ec384, { kid: "d" }) // new
          ],
          { previous }
        )
        const [a, b, c] = previous.keys
        expect(next.keys[0]).toBe(a)
        expect(next.keys.slice(1).some((k) => k === b || k === c)).toBe(false)
        expect(next.keys.map((k) => k.kid)).toEqual(["a", "b2", "c", "d"])
        expect(Jwk.select(next, "c", "EdDSA")).toBeUndefined()
        // A key carried over still verifies, and one that left the set is not served by it.
        expect(Jwk.select(next, "a", "RS256")).toBe(a)
        expect(Jwk.select(next, "b", "ES256")).toBeUndefined()
      }))

    it.effect("measures the RSA modulus exactly against minRsaBits, and accepts sound exponents", () =>
      Effect.gen(function*() {
        expect((yield* importSet([key(rsa)], { minRsaBits: 2048 })).keys).toHaveLength(1)
        expect((yield* failureOf(importSet([key(rsa)], { minRsaBits: 2049 }))).reason).toBe("EmptyKeySet")
        expect((yield* importSet([rsa2045], { minRsaBits: 2045 })).keys).toHaveLength(1)
        expect((yield* failureOf(importSet([rsa2045], { minRsaBits: 2046 }))).reason).toBe("EmptyKeySet")
        expect((yield* importSet([rsa1024], { minRsaBits: 1024 })).keys).toHaveLength(1)
        // Exponents 3 and 2^255 + 1 are fine; their text has padding bits to ignore.
        expect((yield* importSet([key(rsa, { e: "Aw" })])).keys).toHaveLength(1)
        const big = base64url.encode(new Uint8Array([0x80, ...new Uint8Array(30), 1]))
        expect((yield* importSet([key(rsa, { e: big })])).keys).toHaveLength(1)
        // A leading zero byte does not make a modulus longer.
        const padded = base64url.encode(new Uint8Array([0, ...base64url.decode(rsa1024.n!)]))
        expect((yield* failureOf(importSet([{ ...rsa1024, n: padded }], { minRsaBits: 1025 }))).reason).toBe(
          "EmptyKeySet"
        )
      }))

    it.effect("skips Ed25519 keys of small order, off the curve or not canonical, and imports real ones", () =>
      Effect.gen(function*() {
        const q = 2n ** 255n - 19n
        /** The 32-byte little-endian encoding of y, with the sign of x in the top bit. */
        const point = (y: bigint, negativeX = false) =>
          base64url.encode(
            Uint8Array.from({ length: 32 }, (_, i) =>
              Number((y >> BigInt(8 * i)) & 0xffn) | (i === 31 && negativeX ? 0x80 : 0))
          )
        const okp = (x: string) => ({ kty: "OKP", crv: "Ed25519", x, kid: "ed" })
        // The eight points of order 1, 2, 4 and 8 (the last four's y as published in the literature, as hex).
        const order8 = (hex: string) => BigInt(`0x${Buffer.from(hex, "hex").reverse().toString("hex")}`)
        const y8 = order8("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05")
        const small = [
          point(1n),
          point(q - 1n),
          point(0n),
          point(0n, true),
          point(y8),
          point(y8, true),
          point(q - y8),
          point(q - y8, true)
        ]
        // Each lets a signature made without any private key (R the identity, S zero) verify for some messages.
        const keyless = Buffer.concat([Buffer.from(base64url.decode(point(1n))), Buffer.alloc(32)])
        for (const x of small) {
          const publicKey = createPublicKey({ key: okp(x), format: "jwk" })
          const forged = Array.from({ length: 64 }, (_, i) => verify(null, Buffer.from(`m${i}`), publicKey, keyless))
          expect(forged).toContain(true)
        }
        // Not canonical: y >= p, and x = 0 written with the sign bit; not a point at all: y = 2.
        const rejected = [...small, point(q + 1n), point(1n, true), point(q - 1n, true), point(2n)]
        for (const x of rejected) {
          const [set, lines] = yield* withLogs(Effect.exit(importSet([okp(x)])))
          expect(Exit.isFailure(set)).toBe(true)
          expect(lines.join("\n")).toContain("not a point of the curve outside its small subgroup")
        }
        const real = Array.from(
          { length: 16 },
          () => generateKeyPairSync("ed25519").publicKey.export({ format: "jwk" })
        )
        expect((yield* importSet([...real, key(ed25519)])).keys).toHaveLength(17)
      }))

    it.effect.prop(
      "never dies on arbitrary JSON entries",
      [fc.array(fc.jsonValue({ maxDepth: 3 }), { maxLength: 6 })],
      ([entries]) =>
        Effect.gen(function*() {
          const exit = yield* Effect.exit(importSet(entries))
          if (Exit.isSuccess(exit)) {
            expect(exit.value.keys.length + exit.value.skipped).toBe(entries.length)
          } else {
            expect(Cause.isDie(exit.cause)).toBe(false)
            const error = Cause.failureOption(exit.cause)
            expect(Option.isSome(error) && error.value.reason === "EmptyKeySet").toBe(true)
          }
        })
    )

    const base64UrlText = fc.stringMatching(/^[A-Za-z0-9_-]{0,48}$/)
    const jwkLike = fc.record(
      {
        kty: fc.constantFrom("RSA", "EC", "OKP", "oct", "", 1),
        crv: fc.constantFrom("P-256", "P-384", "P-521", "Ed25519", "Ed448", "X25519", null),
        alg: fc.constantFrom(...Jwk.Algorithm.literals, "HS256", "none"),
        use: fc.constantFrom("sig", "enc", ""),
        key_ops: fc.array(fc.constantFrom("verify", "sign", "encrypt")),
        kid: fc.string({ maxLength: 8 }),
        n: fc.oneof(base64UrlText, fc.constant(rsa.public.n!), fc.string()),
        e: fc.oneof(base64UrlText, fc.constant("AQAB")),
        x: fc.oneof(base64UrlText, fc.constant(ec256.public.x!), fc.constant(ed25519.public.x!)),
        y: fc.oneof(base64UrlText, fc.constant(ec256.public.y!)),
        d: base64UrlText
      },
      { requiredKeys: [] }
    )

    it.effect.prop(
      "never dies on arbitrary key-like entries, and keeps only keys it could import",
      [fc.array(fc.oneof(jwkLike, fc.jsonValue({ maxDepth: 2 })), { maxLength: 6 })],
      ([entries]) =>
        Effect.gen(function*() {
          const exit = yield* Effect.exit(importSet(entries))
          if (Exit.isSuccess(exit)) {
            expect(exit.value.keys.length + exit.value.skipped).toBe(entries.length)
            for (const k of exit.value.keys) {
              expect(k.algorithms.size).toBeGreaterThan(0)
              expect(k.jwk).not.toHaveProperty("d")
              for (const alg of k.algorithms) expect(Jwk.algorithmsFor(k.kty, k.crv)).toContain(alg)
            }
          } else {
            expect(Cause.isDie(exit.cause)).toBe(false)
            expect(Option.map(Cause.failureOption(exit.cause), (e) => e.reason)).toEqual(Option.some("EmptyKeySet"))
          }
        }),
      { fastCheck: { numRuns: 200 } }
    )
  })

  describe("select", () => {
    const makeSet = importSet([
      key(rsa, { kid: "r1", alg: "RS256" }),
      key(ec256, { kid: "e1" }),
      key(ec384, { kid: "e384" }),
      key(ec256, { kid: "dup" }),
      key(rsa, { kid: "dup" }),
      key(ed25519, { kid: "skipped", crv: "X25519" }),
      key(ec521)
    ])

    it.effect("picks the key of the token's kid that may verify its alg", () =>
      Effect.gen(function*() {
        const set = yield* makeSet
        expect(Jwk.select(set, "r1", "RS256")?.kid).toBe("r1")
        expect(Jwk.select(set, "e1", "ES256")?.jwk.x).toBe(ec256.public.x)
        expect(Jwk.select(set, "e384", "ES384")?.crv).toBe("P-384")
      }))

    it.effect("gives nothing for a kid whose key does not support the alg", () =>
      Effect.gen(function*() {
        const set = yield* makeSet
        expect(Jwk.select(set, "r1", "PS256")).toBeUndefined()
        expect(Jwk.select(set, "r1", "ES256")).toBeUndefined()
        expect(Jwk.select(set, "e1", "ES384")).toBeUndefined()
      }))

    it.effect("gives nothing for an unknown kid, or the kid of a skipped key", () =>
      Effect.gen(function*() {
        const set = yield* makeSet
        expect(Jwk.select(set, "nope", "RS256")).toBeUndefined()
        expect(Jwk.select(set, "skipped", "EdDSA")).toBeUndefined()
        expect(Jwk.select(set, "", "ES512")).toBeUndefined()
      }))

    it.effect("picks the compatible key among keys that share a kid", () =>
      Effect.gen(function*() {
        const set = yield* makeSet
        expect(set.byKid.get("dup")).toHaveLength(2)
        expect(Jwk.select(set, "dup", "ES256")?.kty).toBe("EC")
        expect(Jwk.select(set, "dup", "PS512")?.kty).toBe("RSA")
        expect(Jwk.select(set, "dup", "ES384")).toBeUndefined()
      }))

    it.effect("keys that share a kid and an algorithm: a token signed by any of them verifies, with a warning", () =>
      Effect.gen(function*() {
        const other = generateKeyPairSync("ec", { namedCurve: "P-256" })
        const otherJwk = { ...other.publicKey.export({ format: "jwk" }), kid: "same" }
        const [set, logs] = yield* withLogs(
          importSet([key(ec256, { kid: "same" }), otherJwk, key(rsa, { kid: "same" })])
        )
        const data = Buffer.from("header.claims")
        const signed = (privateKey: KeyObject) => sign("sha256", data, { key: privateKey, dsaEncoding: "ieee-p1363" })
        const first = createPrivateKey({ key: ec256.private as JsonWebKey, format: "jwk" })
        const key256 = Jwk.select(set, "same", "ES256")!
        const forged = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey
        expect({
          first: key256.verify("ES256", data, signed(first)),
          second: key256.verify("ES256", data, signed(other.privateKey)),
          neither: key256.verify("ES256", data, signed(forged)),
          sameKeyEachTime: Jwk.select(set, "same", "ES256") === key256,
          // The RSA key of that kid is alone in its algorithms: picked as before.
          rsa: Jwk.select(set, "same", "RS256")?.kty
        }).toEqual({ first: true, second: true, neither: false, sameKeyEachTime: true, rsa: "RSA" })
        expect(logs.filter((line) => line.includes("kid \"same\""))).toHaveLength(1)
      }))

    it.effect("a shared kid's key is carried over by an import that changes nothing; one key listed twice is one", () =>
      Effect.gen(function*() {
        const other = generateKeyPairSync("ec", { namedCurve: "P-256" })
        // The first key listed twice, as some sets do.
        const shared = [
          key(ec256, { kid: "same" }),
          { ...other.publicKey.export({ format: "jwk" }), kid: "same" },
          key(ec256, { kid: "same" })
        ]
        const [before, firstLogs] = yield* withLogs(importSet(shared))
        // Carried over (a remembered token of that kid stays remembered), and not warned about again.
        const [after, laterLogs] = yield* withLogs(importSet(shared, { previous: before }))
        // The same public key twice under one kid: one key, checked once, no warning.
        const [twice, twiceLogs] = yield* withLogs(importSet([key(ec256, { kid: "dup" }), key(ec256, { kid: "dup" })]))
        // One object, listed twice: the next import carries it over as one, and reports no change.
        expect(twice.keys).toHaveLength(2)
        expect(twice.keys[0]).toBe(twice.keys[1])
        let checks = 0
        for (const listed of new Set(twice.keys)) {
          const verify = listed.verify
          ;(listed as { verify: Jwk.Key["verify"] }).verify = (alg, data, signature) => {
            checks++
            return verify(alg, data, signature)
          }
        }
        Jwk.select(twice, "dup", "ES256")!.verify("ES256", Buffer.from("data"), Buffer.alloc(64, 1))
        const warnings = (logs: ReadonlyArray<string>) => logs.filter((line) => line.includes("sharing kid")).length
        expect({
          carried: Jwk.select(after, "same", "ES256") === Jwk.select(before, "same", "ES256"),
          warnings: [warnings(firstLogs), warnings(laterLogs), warnings(twiceLogs)],
          checks
        }).toEqual({ carried: true, warnings: [1, 0, 0], checks: 1 })
      }))

    it.effect("a key's issuer: from its JWK, part of what makes it the same key; keys of one kid with two are not one", () =>
      Effect.gen(function*() {
        const template = "https://login.example/{tenantid}/v2.0"
        const first = yield* importSet([key(rsa, { kid: "k", issuer: template }), key(ec256, { kid: "e" })])
        expect(first.keys.map((k) => k.issuer)).toEqual([template, undefined])
        // Carried over while its label stays; relabelled, a new key (a remembered token's key is no longer served).
        const same = yield* importSet([key(rsa, { kid: "k", issuer: template })], { previous: first })
        expect(same.keys[0]).toBe(first.keys[0])
        const relabelled = yield* importSet([key(rsa, { kid: "k", issuer: "https://login.example/t/v2.0" })], {
          previous: first
        })
        expect(relabelled.keys[0]).not.toBe(first.keys[0])
        expect(relabelled.keys[0]!.issuer).toBe("https://login.example/t/v2.0")
        // An empty (or blank) label names no issuer, as Microsoft's validation reads one.
        const blank = yield* importSet([key(rsa, { kid: "k", issuer: "" }), key(ec256, { kid: "e", issuer: "  " })])
        expect(blank.keys.map((k) => k.issuer)).toEqual([undefined, undefined])
        // An issuer that is no string: the key is skipped, not trusted for any issuer.
        const [odd] = yield* withLogs(importSet([key(rsa, { kid: "k", issuer: 42 }), key(ec256, { kid: "e" })]))
        expect(odd.keys.map((k) => k.kid)).toEqual(["e"])
        // One kid, two keys that sign for different issuers: not combined into one that verifies with either (the
        // issuer checked would be the first's, whichever verified), but the first alone, with a warning.
        const [shared, logs] = yield* withLogs(
          importSet([key(rsa, { kid: "k", issuer: template }), key(rsa, { kid: "k", issuer: "https://other.example" })])
        )
        expect(Jwk.select(shared, "k", "RS256")).toBe(shared.keys[0])
        expect(logs.filter((line) => line.includes("sign for different issuers"))).toHaveLength(1)
        // Once: not again by the next import of the same set (every refresh).
        const [, again] = yield* withLogs(
          importSet(
            [key(rsa, { kid: "k", issuer: template }), key(rsa, { kid: "k", issuer: "https://other.example" })],
            {
              previous: shared
            }
          )
        )
        expect(again.filter((line) => line.includes("sign for different issuers"))).toHaveLength(0)
        // Without a kid: one material under two labels is two keys, not guessed between.
        expect(Jwk.select(shared, undefined, "RS256")).toBeUndefined()
      }))

    it.effect("a token of a kid shared by more than 4 keys is tried with the first 4 only, with a warning", () =>
      Effect.gen(function*() {
        const pairs = Array.from({ length: 6 }, () => generateKeyPairSync("ec", { namedCurve: "P-256" }))
        const [set, logs] = yield* withLogs(
          importSet(pairs.map(({ publicKey }) => ({ ...publicKey.export({ format: "jwk" }), kid: "crowd" })))
        )
        const data = Buffer.from("header.payload")
        const signedBy = (i: number) => sign("sha256", data, { key: pairs[i]!.privateKey, dsaEncoding: "ieee-p1363" })
        const key = Jwk.select(set, "crowd", "ES256")!
        // Each forged token of that kid costs one signature check per key tried: a hostile set of a hundred keys
        // under one kid would make every such token cost a hundred.
        expect([0, 3, 4, 5].map((i) => key.verify("ES256", data, signedBy(i)))).toEqual([true, true, false, false])
        expect(logs.filter((line) => line.includes("More than 4 keys share kid \"crowd\""))).toHaveLength(1)
        // Not also told that a token of that kid is tried with each.
        expect(logs.filter((line) => line.includes("tried with each"))).toHaveLength(0)
        const [, again] = yield* withLogs(
          importSet(pairs.map(({ publicKey }) => ({ ...publicKey.export({ format: "jwk" }), kid: "crowd" })), {
            previous: set
          })
        )
        expect(again.filter((line) => line.includes("More than 4 keys share kid"))).toHaveLength(0)
      }))

    it("signsFor: the key's issuer, its {tenantid} taking the token's tid", () => {
      const template = "https://login.example/{tenantid}/v2.0"
      expect(Jwk.signsFor(undefined, { iss: "https://any.example" })).toBe(true)
      // A label of only white space names no issuer (Microsoft's validation reads it so).
      expect(Jwk.signsFor("", { iss: "https://any.example" })).toBe(true)
      expect(Jwk.signsFor(" \t", { iss: "https://any.example" })).toBe(true)
      expect(Jwk.signsFor("https://a.example", { iss: "https://a.example" })).toBe(true)
      expect(Jwk.signsFor("https://a.example", { iss: "https://b.example" })).toBe(false)
      expect(Jwk.signsFor("https://a.example", {})).toBe(false)
      expect(Jwk.signsFor(template, { iss: "https://login.example/t1/v2.0", tid: "t1" })).toBe(true)
      expect(Jwk.signsFor(template, { iss: "https://login.example/t1/v2.0", tid: "t2" })).toBe(false)
      expect(Jwk.signsFor(template, { iss: "https://login.example/t1/v2.0" })).toBe(false)
      expect(Jwk.signsFor(template, { iss: "https://login.example//v2.0", tid: "" })).toBe(false)
      expect(Jwk.signsFor(template, { iss: "https://login.example/t1/v2.0", tid: ["t1"] })).toBe(false)
      // Entra ID signs a tenant's v1.0 tokens with the keys its v2.0 set labels: the same tenant, in the other format.
      const entra = "https://login.microsoftonline.com/{tenantid}/v2.0"
      expect(Jwk.signsFor(entra, { iss: "https://sts.windows.net/t1/", tid: "t1" })).toBe(true)
      expect(Jwk.signsFor(entra, { iss: "https://sts.windows.net/t2/", tid: "t1" })).toBe(false)
      expect(Jwk.signsFor("https://login.microsoftonline.com/t1/v2.0", { iss: "https://sts.windows.net/t1/" })).toBe(
        true
      )
      expect(Jwk.signsFor("https://login.microsoftonline.com/t1/v2.0", { iss: "https://sts.windows.net/t2/" })).toBe(
        false
      )
      expect(Jwk.signsFor(template, { iss: "https://sts.windows.net/t1/", tid: "t1" })).toBe(false)
      // Each cloud's keys its own cloud's v1.0 tokens only.
      expect(Jwk.signsFor(entra, { iss: "https://sts.chinacloudapi.cn/t1/", tid: "t1" })).toBe(false)
      const china = "https://login.partner.microsoftonline.cn/{tenantid}/v2.0"
      expect(Jwk.signsFor(china, { iss: "https://sts.chinacloudapi.cn/t1/", tid: "t1" })).toBe(true)
      expect(Jwk.signsFor(china, { iss: "https://sts.windows.net/t1/", tid: "t1" })).toBe(false)
      // The tid is put in as it is: no replacement patterns (`$&` would bring the placeholder back).
      expect(Jwk.signsFor(template, { iss: template, tid: "$&" })).toBe(false)
      expect(Jwk.signsFor(template, { iss: "https://login.example/$&/v2.0", tid: "$&" })).toBe(true)
    })

    it.effect("without a kid, picks the only compatible key and refuses to guess between several", () =>
      Effect.gen(function*() {
        const set = yield* makeSet
        // Exactly one key each: e384 for ES384, the kid-less P-521 key for ES512, the alg-less RSA key for PS256.
        expect(Jwk.select(set, undefined, "ES384")?.kid).toBe("e384")
        const p521 = Jwk.select(set, undefined, "ES512")
        expect(p521?.kid).toBeUndefined()
        expect(p521?.crv).toBe("P-521")
        expect(Jwk.select(set, undefined, "PS256")?.kid).toBe("dup")
        // e1 and dup, and r1 and dup, are one public key each under two kids: one key, not two to guess between.
        expect(Jwk.select(set, undefined, "ES256")?.kid).toBe("e1")
        expect(Jwk.select(set, undefined, "RS256")?.kid).toBe("r1")
        // None.
        expect(Jwk.select(set, undefined, "EdDSA")).toBeUndefined()
        // One kid-less key listed twice is one key, not two to guess between; two distinct ones are.
        const twice = yield* importSet([key(ec256), key(ec256)])
        expect(twice.keys).toHaveLength(2)
        expect(Jwk.select(twice, undefined, "ES256")).toBe(twice.keys[0])
        // Listed once with its alg and once without: still one key.
        const withAlg = yield* importSet([key(rsa, { alg: "RS256" }), key(rsa)])
        expect(withAlg.keys[0]).not.toBe(withAlg.keys[1])
        expect(Jwk.select(withAlg, undefined, "RS256")).toBe(withAlg.keys[0])
        expect(Jwk.select(withAlg, undefined, "PS256")).toBe(withAlg.keys[1])
        // Listed once with a kid and once without: one key too, for a token that names no kid.
        const withKid = yield* importSet([key(rsa, { kid: "r" }), key(rsa)])
        expect(Jwk.select(withKid, undefined, "RS256")).toBe(withKid.keys[0])
        const other = generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({ format: "jwk" })
        expect(Jwk.select(yield* importSet([key(ec256), other, key(ec256)]), undefined, "ES256")).toBeUndefined()
      }))
  })
})
