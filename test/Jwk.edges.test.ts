/**
 * Edge cases pinned after a mutation-testing review: key usability rules of `Jwk` that the suite left unpinned (each test fails on one
 * mutation of `src/Jwk.ts` that the rest of the suite does not catch).
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { constants, generateKeyPairSync, sign } from "node:crypto"
import * as Jwk from "../src/Jwk.js"

const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 })
const rsaJwk = rsa.publicKey.export({ format: "jwk" }) as Record<string, unknown>

const importSet = (keys: ReadonlyArray<unknown>) => Jwk.importKeySet({ keys }, "test")

/** The 32-byte little-endian encoding of an Ed25519 y coordinate (sign bit clear), in base64url. */
const edPoint = (y: bigint): string =>
  Buffer.from(Uint8Array.from({ length: 32 }, (_, i) => Number((y >> BigInt(8 * i)) & 0xffn))).toString("base64url")

describe("Jwk edge cases", () => {
  // Mutation: `if (jwk.use !== undefined && jwk.use !== "sig")` -> `if (jwk.use === "enc")`. A key whose `use` is
  // anything but "sig" is not a signature key.
  it.effect("a key whose use is neither absent nor exactly \"sig\" is skipped", () =>
    Effect.gen(function*() {
      for (const use of ["foo", "SIG", "sig "]) {
        const exit = yield* Effect.exit(importSet([{ ...rsaJwk, kid: "k", use }]))
        expect(Exit.isFailure(exit)).toBe(true)
      }
      expect((yield* importSet([{ ...rsaJwk, kid: "k", use: "sig" }])).keys).toHaveLength(1)
    }))

  // Mutation: drop `&& value < 2n ** 256n` from the RSA exponent check. The documented rule is an exponent "shorter
  // than 257 bits"; 2^256 + 1 is odd and fits the 64-character length cap, so only that comparison refuses it.
  it.effect("an RSA exponent of 2^256 + 1 is skipped; 2^255 + 1 is kept", () =>
    Effect.gen(function*() {
      const exponent = (bits: number) => {
        const bytes = Buffer.alloc(Math.ceil((bits + 1) / 8))
        bytes[0] = 1 << (bits % 8)
        bytes[bytes.length - 1]! |= 1
        return bytes.toString("base64url")
      }
      const big = yield* Effect.exit(importSet([{ ...rsaJwk, kid: "k", e: exponent(256) }]))
      expect(Exit.isFailure(big)).toBe(true)
      expect((yield* importSet([{ ...rsaJwk, kid: "k", e: exponent(255) }])).keys).toHaveLength(1)
    }))

  // Mutation: drop `if (y >= p25519) return false`. y = p + 3 spells the valid point y = 3 non-canonically (RFC
  // 8032, 5.1.3 requires y < p); the suite's only y >= p case, p + 1, is also of small order, so another rule
  // refused it.
  it.effect("an Ed25519 key whose y is written as p + 3 is skipped; y = 3 itself is kept", () =>
    Effect.gen(function*() {
      const p = 2n ** 255n - 19n
      const okp = (x: string) => ({ kty: "OKP", crv: "Ed25519", x, kid: "ed" })
      expect((yield* importSet([okp(edPoint(3n))])).keys).toHaveLength(1)
      const exit = yield* Effect.exit(importSet([okp(edPoint(p + 3n))]))
      expect(Exit.isFailure(exit)).toBe(true)
    }))

  // Mutation: `saltLength: RSA_PSS_SALTLEN_DIGEST` -> `RSA_PSS_SALTLEN_AUTO`. RFC 7518, 3.5: the salt is as long
  // as the hash; a PSS signature with another salt length is not a PS256 signature.
  it.effect("PS256 verifies a salt as long as the hash only", () =>
    Effect.gen(function*() {
      const set = yield* importSet([{ ...rsaJwk, kid: "k", alg: "PS256" }])
      const key = Jwk.select(set, "k", "PS256")!
      const data = Buffer.from("header.payload")
      const pss = (saltLength: number) =>
        sign("sha256", data, { key: rsa.privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength })
      expect(key.verify("PS256", data, pss(32))).toBe(true)
      expect(key.verify("PS256", data, pss(0))).toBe(false)
      expect(key.verify("PS256", data, pss(20))).toBe(false)
    }))
})

describe("Jwk: keys that can never verify, or are written in more than one way, and combined keys", () => {
  it.effect("an RSA key with an even modulus is skipped (no product of two odd primes is even)", () =>
    Effect.gen(function*() {
      const n = Buffer.from(rsaJwk.n as string, "base64url")
      n[n.length - 1]! &= 0xfe
      const exit = yield* Effect.exit(importSet([{ ...rsaJwk, kid: "even", n: n.toString("base64url") }]))
      expect(Exit.isFailure(exit)).toBe(true)
      expect((yield* importSet([{ ...rsaJwk, kid: "odd" }])).keys).toHaveLength(1)
    }))

  it.effect("an RSA exponent over 64 bits is skipped for a modulus over 3072 bits (OpenSSL never verifies with it)", () =>
    Effect.gen(function*() {
      // 2^64 + 1: odd, and fine for a 2048-bit modulus.
      const e = Buffer.from("010000000000000001", "hex").toString("base64url")
      const big = generateKeyPairSync("rsa", { modulusLength: 3080 }).publicKey.export({ format: "jwk" })
      const refused = yield* Effect.exit(importSet([{ ...big, kid: "big", e }]))
      expect(Exit.isFailure(refused)).toBe(true)
      expect((yield* importSet([{ ...big, kid: "big" }])).keys).toHaveLength(1)
      expect((yield* importSet([{ ...rsaJwk, kid: "small", e }])).keys).toHaveLength(1)
      // OpenSSL's rule is for moduli over 3072 bits: one of 3072 bits exactly takes the exponent.
      const edge = generateKeyPairSync("rsa", { modulusLength: 3072 }).publicKey.export({ format: "jwk" })
      expect((yield* importSet([{ ...edge, kid: "edge", e }])).keys).toHaveLength(1)
    }))

  it.effect("an RSA modulus over 16384 bits is skipped (OpenSSL verifies with none); one of 16384 bits is kept", () =>
    Effect.gen(function*() {
      // Odd, and of the length alone: the import never gets to verify with it.
      const modulus = (bits: number) => Buffer.alloc(bits / 8, 0xff).toString("base64url")
      const long = yield* Effect.exit(importSet([{ kty: "RSA", kid: "long", n: modulus(16392), e: "AQAB" }]))
      expect(Exit.isFailure(long) && long.cause._tag === "Fail" && long.cause.error.reason).toBe("EmptyKeySet")
      const limit = yield* Effect.exit(importSet([{ kty: "RSA", kid: "limit", n: modulus(16384), e: "AQAB" }]))
      expect(Exit.isSuccess(limit)).toBe(true)
    }))

  it.effect("EC keys written short (Keycloak's fewest bytes) or with a leading zero (Java's toByteArray) still verify", () =>
    Effect.gen(function*() {
      // Off the spec (RFC 7518: coordinates of the curve's full size), but published by real IdPs, and node:crypto
      // reads them: refused, every token of such a realm would be.
      for (const namedCurve of ["P-256", "P-521"]) {
        const pair = generateKeyPairSync("ec", { namedCurve })
        const jwk = pair.publicKey.export({ format: "jwk" })
        const bytes = (coordinate: string) => Buffer.from(coordinate, "base64url")
        const padded = (coordinate: string) => Buffer.concat([Buffer.alloc(1), bytes(coordinate)]).toString("base64url")
        const alg = namedCurve === "P-256" ? "ES256" : "ES512"
        const data = Buffer.from("signed")
        const signature = sign(namedCurve === "P-256" ? "sha256" : "sha512", data, {
          key: pair.privateKey,
          dsaEncoding: "ieee-p1363"
        })
        const spellings: Array<Record<string, string>> = [{ x: padded(jwk.x!) }, { y: padded(jwk.y!) }]
        // The fewest bytes: a coordinate without its leading zero bytes, when it has any (about half of P-521's).
        for (const member of ["x", "y"] as const) {
          const value = bytes(jwk[member]!)
          if (value[0] === 0) spellings.push({ [member]: value.subarray(1).toString("base64url") })
        }
        for (const spelled of spellings) {
          const set = yield* importSet([{ ...jwk, kid: "ec", ...spelled }])
          expect(Jwk.select(set, "ec", alg)!.verify(alg, data, signature), namedCurve).toBe(true)
        }
      }
    }))

  it.effect("the key select makes of keys sharing a kid verifies its own algorithm only, as Key.verify says", () =>
    Effect.gen(function*() {
      const other = generateKeyPairSync("rsa", { modulusLength: 2048 })
      const set = yield* importSet([
        { ...rsaJwk, kid: "k" }, // any RSA algorithm
        { ...other.publicKey.export({ format: "jwk" }), kid: "k", alg: "RS256" }
      ])
      const key = Jwk.select(set, "k", "RS256")!
      const data = Buffer.from("a webhook's body")
      const pss = { key: rsa.privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }
      expect(key.verify("PS256", data, sign("sha256", data, pss))).toBe(false)
      expect(key.verify("RS256", data, sign("sha256", data, rsa.privateKey))).toBe(true)
    }))

  it("an issuer label of a byte order mark alone names an issuer, as .NET's white space has it; spaces name none", () => {
    const claims = { iss: "https://login.microsoftonline.com/other/v2.0", tid: "other" }
    expect(Jwk.signsFor("\uFEFF", claims)).toBe(false)
    for (const blank of ["", " ", "\t\n", "\u00a0\u2003\u3000", "\u0085"]) {
      expect(Jwk.signsFor(blank, claims)).toBe(true)
    }
  })
})
