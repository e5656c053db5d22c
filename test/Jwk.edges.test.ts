/**
 * Edge cases pinned after a mutation-testing review: key usability rules of `Jwk` that the suite left unpinned (each test fails on one
 * mutation of `src/Jwk.ts` that the rest of the suite does not catch).
 */
import { describe, expect, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
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

/** Runs an effect and collects what it logs (debug included), each line as its level and message. */
const logsOf = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.gen(function*() {
    const lines: Array<{ readonly level: string; readonly message: string }> = []
    const logger = Logger.make(({ logLevel, message }) => {
      lines.push({
        level: logLevel.label,
        message: (Array.isArray(message) ? message : [message]).map(String).join(" ")
      })
    })
    const result = yield* effect.pipe(Effect.provide(Logger.add(logger)), Logger.withMinimumLogLevel(LogLevel.Debug))
    return [result, lines] as const
  })

/** The message of the defect an effect dies with, if it dies. */
const dieMessage = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.map(Effect.exit(effect), (exit) => {
    if (Exit.isSuccess(exit)) return undefined
    const defect = Cause.dieOption(exit.cause)
    return Option.isSome(defect) ? String((defect.value as Error).message) : undefined
  })

const skipReasons = (lines: ReadonlyArray<{ readonly message: string }>) =>
  lines.map((line) => line.message).filter((message) => message.startsWith("Skipping key"))

describe("Jwk: a third mutation review (import rules, refusal reasons, shared kids)", () => {
  const ec = generateKeyPairSync("ec", { namedCurve: "P-256" })
  const ecJwk = ec.publicKey.export({ format: "jwk" }) as Record<string, unknown>

  it.effect("an algorithms option that is not a list dies saying so, not with a TypeError", () =>
    Effect.gen(function*() {
      const options = { algorithms: new Set(["RS256"]) } as unknown as Jwk.ImportOptions
      const message = yield* dieMessage(Jwk.importKeySet({ keys: [rsaJwk] }, "test", options))
      expect(message).toBe("Jwk.importKeySet: expected a list of at least one algorithm")
    }))

  it.effect("import limits that are fractions die: minRsaBits 2048.5 and maxKeys 1.5 are no whole numbers", () =>
    Effect.gen(function*() {
      const rsaBits = yield* dieMessage(Jwk.importKeySet({ keys: [rsaJwk] }, "test", { minRsaBits: 2048.5 }))
      expect(rsaBits).toBe("Jwk.importKeySet: expected a positive whole number, got 2048.5")
      const keys = yield* dieMessage(Jwk.importKeySet({ keys: [rsaJwk] }, "test", { maxKeys: 1.5 }))
      expect(keys).toBe("Jwk.importKeySet: expected a positive whole number, got 1.5")
    }))

  it.effect("an RSA exponent written in 64 characters (leading zeros) is kept; in 65 it is skipped", () =>
    Effect.gen(function*() {
      const e64 = "A".repeat(60) + "AQAB"
      expect((yield* importSet([{ ...rsaJwk, kid: "k", e: e64 }])).keys).toHaveLength(1)
      const [exit, lines] = yield* logsOf(Effect.exit(importSet([{ ...rsaJwk, kid: "k", e: "A" + e64 }])))
      expect(Exit.isFailure(exit)).toBe(true)
      expect(skipReasons(lines)).toEqual([
        "Skipping key \"k\": RSA exponent is not an odd number from 3 to 2^256 (for a 2048-bit modulus)"
      ])
    }))

  it.effect("the refusal of a bad exponent for a modulus of exactly 3072 bits names the 2^256 limit", () =>
    Effect.gen(function*() {
      const edge = generateKeyPairSync("rsa", { modulusLength: 3072 }).publicKey.export({ format: "jwk" })
      const [, lines] = yield* logsOf(Effect.exit(importSet([{ ...edge, kid: "edge", e: "AQAC" }])))
      expect(skipReasons(lines)).toEqual([
        "Skipping key \"edge\": RSA exponent is not an odd number from 3 to 2^256 (for a 3072-bit modulus)"
      ])
    }))

  it.effect("an Ed25519 x of 33 bytes is refused as not a point, whatever its first 32 bytes", () =>
    Effect.gen(function*() {
      const real = generateKeyPairSync("ed25519").publicKey.export({ format: "jwk" })
      const x = Buffer.concat([Buffer.from(real.x!, "base64url"), Buffer.alloc(1)]).toString("base64url")
      const [, lines] = yield* logsOf(Effect.exit(importSet([{ kty: "OKP", crv: "Ed25519", x, kid: "ed" }])))
      expect(skipReasons(lines)).toEqual([
        "Skipping key \"ed\": Ed25519 key that is not a point of the curve outside its small subgroup"
      ])
    }))

  it.effect("key_ops must include \"verify\": an empty list is skipped, verify listed second is kept", () =>
    Effect.gen(function*() {
      const [set, lines] = yield* logsOf(importSet([
        { ...ecJwk, kid: "none", key_ops: [] },
        { ...ecJwk, kid: "second", key_ops: ["sign", "verify"] }
      ]))
      expect(set.keys.map((k) => k.kid)).toEqual(["second"])
      expect(skipReasons(lines)).toEqual(["Skipping key \"none\": key_ops does not include \"verify\""])
    }))

  it.effect("a key too short for minRsaBits is refused naming the limit given, not the default", () =>
    Effect.gen(function*() {
      const [, lines] = yield* logsOf(Effect.exit(Jwk.importKeySet({ keys: [{ ...rsaJwk, kid: "k" }] }, "test", {
        minRsaBits: 3072
      })))
      expect(skipReasons(lines)).toEqual(["Skipping key \"k\": RSA modulus shorter than 3072 bits"])
    }))

  it.effect("an OKP or EC key without x is skipped as without its coordinates (no defect, no import attempt)", () =>
    Effect.gen(function*() {
      const [set, lines] = yield* logsOf(importSet([
        { kty: "OKP", crv: "Ed25519", kid: "okp" },
        { kty: "EC", crv: "P-256", y: ecJwk.y, kid: "ec" },
        { ...ecJwk, kid: "good" }
      ]))
      expect(set.keys.map((k) => k.kid)).toEqual(["good"])
      expect(skipReasons(lines)).toEqual([
        "Skipping key \"okp\": OKP key without its coordinates",
        "Skipping key \"ec\": EC key without its coordinates"
      ])
    }))

  it.effect("an alg that only begins an algorithm's name (RS, Ed) fits no key", () =>
    Effect.gen(function*() {
      const ed = generateKeyPairSync("ed25519").publicKey.export({ format: "jwk" })
      const [exit, lines] = yield* logsOf(Effect.exit(importSet([
        { ...rsaJwk, kid: "rsa", alg: "RS" },
        { ...ed, kid: "ed", alg: "Ed" }
      ])))
      expect(Exit.isFailure(exit)).toBe(true)
      expect(skipReasons(lines)).toEqual([
        "Skipping key \"rsa\": alg RS does not fit a RSA key",
        "Skipping key \"ed\": alg Ed does not fit a OKP key"
      ])
    }))

  it.effect("an RSA modulus of 2050 bits (not whole bytes) verifies signatures of its full 257-byte length", () =>
    Effect.gen(function*() {
      const pair = generateKeyPairSync("rsa", { modulusLength: 2050 })
      const set = yield* importSet([{ ...pair.publicKey.export({ format: "jwk" }), kid: "odd" }])
      const data = Buffer.from("header.payload")
      const pkcs1 = sign("sha256", data, pair.privateKey)
      const pss = sign("sha256", data, {
        key: pair.privateKey,
        padding: constants.RSA_PKCS1_PSS_PADDING,
        saltLength: constants.RSA_PSS_SALTLEN_DIGEST
      })
      expect(pkcs1.length).toBe(257)
      expect(Jwk.select(set, "odd", "RS256")!.verify("RS256", data, pkcs1)).toBe(true)
      expect(Jwk.select(set, "odd", "PS256")!.verify("PS256", data, pss)).toBe(true)
    }))

  it.effect("Key.verify is false, never true, for data node:crypto cannot read", () =>
    Effect.gen(function*() {
      const pair = generateKeyPairSync("ed25519")
      const set = yield* importSet([{ ...pair.publicKey.export({ format: "jwk" }), kid: "ed" }])
      const key = Jwk.select(set, "ed", "EdDSA")!
      const signature = sign(null, Buffer.from("data"), pair.privateKey)
      expect(key.verify("EdDSA", Buffer.from("data"), signature)).toBe(true)
      expect(key.verify("EdDSA", 42 as unknown as Uint8Array, signature)).toBe(false)
    }))

  it.effect("an RSA key published with oth (a multi-prime private member) is skipped as exposed", () =>
    Effect.gen(function*() {
      const oth = [{ r: "AQAB", d: "AQAB", t: "AQAB" }]
      const [set, lines] = yield* logsOf(importSet([{ ...rsaJwk, kid: "multi", oth }, { ...ecJwk, kid: "good" }]))
      expect(set.keys.map((k) => k.kid)).toEqual(["good"])
      expect(lines.filter((line) => line.message.includes("private part (oth)"))).toHaveLength(1)
    }))

  it.effect("an Ed25519 key is checked even when an EC key of the set it replaces had the same x", () =>
    Effect.gen(function*() {
      // The identity of Ed25519 (y = 1, of small order: refused) has the 32 bytes of a valid P-256 x coordinate.
      const x = edPoint(1n)
      const p = 2n ** 256n - 2n ** 224n + 2n ** 192n + 2n ** 96n - 1n
      const b = 0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604bn
      const pow = (base: bigint, exponent: bigint) => {
        let result = 1n
        for (let a = base % p, e = exponent; e > 0n; e >>= 1n, a = (a * a) % p) if (e & 1n) result = (result * a) % p
        return result
      }
      const xValue = BigInt(`0x${Buffer.from(x, "base64url").toString("hex")}`)
      const y = pow((((xValue ** 3n - 3n * xValue + b) % p) + p) % p, (p + 1n) / 4n)
      const ecKey = {
        kty: "EC",
        crv: "P-256",
        x,
        y: Buffer.from(y.toString(16).padStart(64, "0"), "hex").toString("base64url"),
        kid: "ec"
      }
      const previous = yield* importSet([ecKey])
      expect(previous.keys).toHaveLength(1)
      const next = yield* importSet([ecKey, { kty: "OKP", crv: "Ed25519", x, kid: "ed" }])
      expect(next.keys.map((k) => k.kid)).toEqual(["ec"])
      const again = yield* Jwk.importKeySet({ keys: [ecKey, { kty: "OKP", crv: "Ed25519", x, kid: "ed" }] }, "test", {
        previous
      })
      expect(again.keys.map((k) => k.kid)).toEqual(["ec"])
      expect(Jwk.select(again, "ed", "EdDSA")).toBeUndefined()
    }))

  it.effect("a kid-less key skipped after decoding is named by its index in the set", () =>
    Effect.gen(function*() {
      const [, lines] = yield* logsOf(importSet([{ ...ecJwk, kid: "good" }, { ...rsaJwk, use: "enc" }]))
      expect(skipReasons(lines)).toEqual(["Skipping key #1: use is \"enc\", not \"sig\""])
    }))

  it.effect("a key published with its private part is logged at Error level", () =>
    Effect.gen(function*() {
      const [, lines] = yield* logsOf(importSet([{ ...ecJwk, kid: "good" }, { ...ecJwk, kid: "leaked", d: "AQAB" }]))
      expect(lines.filter((line) => line.message.includes("private part")).map((line) => line.level)).toEqual([
        "ERROR"
      ])
    }))

  const ecPairs = Array.from({ length: 4 }, () => generateKeyPairSync("ec", { namedCurve: "P-256" }))
  const ecPublic = (i: number) => ({ ...ecPairs[i]!.publicKey.export({ format: "jwk" }), kid: "shared" })
  const data = Buffer.from("header.payload")
  const signedBy = (i: number) => sign("sha256", data, { key: ecPairs[i]!.privateKey, dsaEncoding: "ieee-p1363" })

  it.effect("exactly 4 keys sharing a kid are all tried, with the 'tried with each' warning, not the crowded one", () =>
    Effect.gen(function*() {
      const [set, lines] = yield* logsOf(importSet([0, 1, 2, 3].map(ecPublic)))
      const key = Jwk.select(set, "shared", "ES256")!
      expect([0, 1, 2, 3].map((i) => key.verify("ES256", data, signedBy(i)))).toEqual([true, true, true, true])
      const messages = lines.map((line) => line.message)
      expect(messages.filter((m) => m.includes("More than 4 keys"))).toHaveLength(0)
      expect(messages.filter((m) => m.includes("tried with each"))).toHaveLength(1)
    }))

  it.effect("a shared kid's combined key follows its members when a refresh adds or swaps one", () =>
    Effect.gen(function*() {
      const first = yield* importSet([ecPublic(0), ecPublic(1)])
      // A third key joins the kid: a token it signed verifies.
      const grown = yield* Jwk.importKeySet({ keys: [ecPublic(0), ecPublic(1), ecPublic(2)] }, "test", {
        previous: first
      })
      expect(Jwk.select(grown, "shared", "ES256")!.verify("ES256", data, signedBy(2))).toBe(true)
      // The second key is replaced by another: the withdrawn one no longer verifies, its successor does.
      const swapped = yield* Jwk.importKeySet({ keys: [ecPublic(0), ecPublic(3)] }, "test", { previous: first })
      const key = Jwk.select(swapped, "shared", "ES256")!
      expect([0, 1, 3].map((i) => key.verify("ES256", data, signedBy(i)))).toEqual([true, false, true])
    }))

  it.effect("the key of a shared kid has the first key's fields (jwk, keyObject), as select documents", () =>
    Effect.gen(function*() {
      const set = yield* importSet([ecPublic(0), ecPublic(1)])
      const key = Jwk.select(set, "shared", "ES256")!
      expect(key.jwk.x).toBe(ecPublic(0).x)
      expect(key.keyObject).toBe(set.keys[0]!.keyObject)
    }))

  it.effect("one public key listed under one kid with and without alg is one key: no combining, no warning", () =>
    Effect.gen(function*() {
      const [set, lines] = yield* logsOf(importSet([{ ...rsaJwk, kid: "k", alg: "RS256" }, { ...rsaJwk, kid: "k" }]))
      expect(Jwk.select(set, "k", "RS256")).toBe(set.keys[0])
      expect(lines.filter((line) => line.message.includes("sharing kid"))).toHaveLength(0)
    }))

  it("signsFor: the v2.0 issuer of each Entra ID cloud signs its own v1.0 tokens; a tenant has no slash", () => {
    expect(Jwk.signsFor("https://login.microsoftonline.us/t1/v2.0", { iss: "https://sts.windows.net/t1/" })).toBe(true)
    expect(Jwk.signsFor("https://login.chinacloudapi.cn/t1/v2.0", { iss: "https://sts.chinacloudapi.cn/t1/" })).toBe(
      true
    )
    expect(Jwk.signsFor("https://login.microsoftonline.com/a/b/v2.0", { iss: "https://sts.windows.net/a/b/" })).toBe(
      false
    )
  })

  it.effect("without a kid, one public key labelled blank and unlabelled is one key (a blank label names no issuer)", () =>
    Effect.gen(function*() {
      const set = yield* importSet([{ ...rsaJwk, issuer: " " }, rsaJwk])
      expect(set.keys[0]).not.toBe(set.keys[1])
      expect(Jwk.select(set, undefined, "RS256")).toBe(set.keys[0])
    }))
})
