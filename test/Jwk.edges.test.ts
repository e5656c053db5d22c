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
