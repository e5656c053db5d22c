/**
 * JSON Web Keys (RFC 7517): the schemas of a key and a key set, which keys this library can verify with, their
 * import (at most once per refresh, never per request) and the choice of a key for a token.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import { constants, createPublicKey, type JsonWebKey, type KeyObject, verify as verifySignature } from "node:crypto"
import { printable, shownKid } from "./internal/printable.js"
import { JwksError } from "./JwksError.js"

/**
 * The signature algorithms that keys from a key set can verify. `HS*` are absent on purpose: a symmetric key is
 * never taken from a key set (see `SharedSecret`), and `none` is never an algorithm.
 *
 * @since 0.1.0
 * @category models
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import * as Jwk from "effect-jwks/Jwk"
 *
 * Schema.is(Jwk.Algorithm)("ES256") // true
 * Schema.is(Jwk.Algorithm)("HS256") // false: never from a key set
 * ```
 */
export const Algorithm = Schema.Literal(
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
  "ES256",
  "ES384",
  "ES512",
  "EdDSA",
  "Ed25519"
)

/**
 * @since 0.1.0
 * @category models
 */
export type Algorithm = typeof Algorithm.Type

/**
 * Whether a value is an algorithm a key set can verify (not `HS*`, which are `SharedSecret`'s, nor `none`).
 *
 * @since 0.1.0
 * @category guards
 * @example
 * ```ts
 * import * as Jwk from "effect-jwks/Jwk"
 *
 * Jwk.isAlgorithm("ES256") // true
 * Jwk.isAlgorithm("HS256") // false
 * ```
 */
export const isAlgorithm: (u: unknown) => u is Algorithm = Schema.is(Algorithm)

/**
 * The algorithms a key of each type (and curve) may verify. No algorithm outside this table is ever used.
 *
 * @since 0.1.0
 * @category models
 * @example
 * ```ts
 * import * as Jwk from "effect-jwks/Jwk"
 *
 * Jwk.algorithmsFor("EC", "P-256") // ["ES256"]
 * Jwk.algorithmsFor("OKP", "Ed25519") // ["EdDSA", "Ed25519"]
 * Jwk.algorithmsFor("oct", undefined) // []: a symmetric key verifies nothing here
 * ```
 */
export const algorithmsFor = (kty: string, crv: string | undefined): ReadonlyArray<Algorithm> => {
  switch (kty) {
    case "RSA":
      return rsaAlgorithms
    case "EC":
      return crv === "P-256" ? ["ES256"] : crv === "P-384" ? ["ES384"] : crv === "P-521" ? ["ES512"] : []
    case "OKP":
      return crv === "Ed25519" ? ["EdDSA", "Ed25519"] : []
    default:
      return []
  }
}

const rsaAlgorithms: ReadonlyArray<Algorithm> = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"]

const Base64Url = Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9_-]*$/), Schema.maxLength(8192))

/**
 * One JSON Web Key as published in a key set. Only the public members this library reads are kept; private members
 * (`d`, `p`, `q`, `dp`, `dq`, `qi`, `oth`) are dropped on decoding and never imported (`importKeySet` skips a key
 * published with any of them: whoever reads the set can sign with it).
 *
 * @since 0.1.0
 * @category schemas
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import * as Jwk from "effect-jwks/Jwk"
 *
 * declare const published: unknown // one member of a key set's `keys`
 * const jwk = Schema.decodeUnknownSync(Jwk.Jwk)(published)
 * const algorithms = Jwk.algorithmsFor(jwk.kty, jwk.crv) // what it may verify, e.g. ["ES256"] for a P-256 key
 * ```
 */
export class Jwk extends Schema.Class<Jwk>("effect-jwks/Jwk")({
  kty: Schema.String.pipe(Schema.maxLength(16)),
  kid: Schema.optional(Schema.String.pipe(Schema.maxLength(1024))),
  use: Schema.optional(Schema.String),
  key_ops: Schema.optional(Schema.Array(Schema.String).pipe(Schema.maxItems(16))),
  alg: Schema.optional(Schema.String.pipe(Schema.maxLength(32))),
  crv: Schema.optional(Schema.String.pipe(Schema.maxLength(32))),
  n: Schema.optional(Base64Url),
  e: Schema.optional(Base64Url),
  x: Schema.optional(Base64Url),
  y: Schema.optional(Base64Url),
  /**
   * The issuer the key signs for, where the set says (Microsoft Entra ID labels the keys of its shared sets so;
   * `{tenantid}` in it stands for a token's `tid`): the key verifies only that issuer's tokens (see {@link signsFor}).
   */
  issuer: Schema.optional(Schema.String.pipe(Schema.maxLength(1024)))
}) {}

/**
 * A JSON Web Key Set as it arrives. Its keys are kept undecoded here so that one key this library cannot read is
 * skipped on its own instead of failing the whole set (see {@link importKeySet}).
 *
 * @since 0.1.0
 * @category schemas
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import * as Jwk from "effect-jwks/Jwk"
 * import { readFileSync } from "node:fs"
 *
 * const jwks = Schema.decodeUnknownSync(Schema.parseJson(Jwk.JsonWebKeySet))(readFileSync("jwks.json", "utf8"))
 * ```
 */
export const JsonWebKeySet = Schema.Struct({
  keys: Schema.Array(Schema.Unknown)
})

/**
 * @since 0.1.0
 * @category models
 */
export type JsonWebKeySet = typeof JsonWebKeySet.Type

/**
 * A verification key, imported once when its set was loaded: a `node:crypto` `KeyObject`, which verifies
 * synchronously and several times faster than WebCrypto on Node (see the README's performance section, measured with
 * `npm run bench`).
 *
 * @since 0.1.0
 * @category models
 * @example
 * ```ts
 * import { Effect, Option } from "effect"
 * import type * as Jwk from "effect-jwks/Jwk"
 * import * as JwksCache from "effect-jwks/JwksCache"
 *
 * // A signature of your own (a signed webhook, say) checked with a key of the IdP's set.
 * declare const data: Uint8Array
 * declare const signature: Uint8Array
 * const verifies = (key: Jwk.Key) => key.verify("ES256", data, signature)
 * const ok = Effect.flatMap(JwksCache.JwksCache, (cache) => cache.get("key-1", "ES256")).pipe(
 *   Effect.map(Option.exists(verifies))
 * )
 * ```
 */
export interface Key {
  readonly kid: string | undefined
  readonly kty: string
  readonly crv: string | undefined
  /** The algorithms this key may verify. */
  readonly algorithms: ReadonlySet<Algorithm>
  /** The imported public key. */
  readonly keyObject: KeyObject
  /**
   * Whether `signature` is a valid JWS signature (RFC 7518 encoding) of `data` under `alg`; false for any other alg.
   */
  readonly verify: (alg: string, data: Uint8Array, signature: Uint8Array) => boolean
  /** The public JWK it came from. */
  readonly jwk: Jwk
  /**
   * The issuer it signs for, when its set names one (the JWK's `issuer`): tokens of any other issuer are refused,
   * however their signature verifies (an Entra ID tenant's v1.0 tokens count as its v2.0 issuer's: see
   * {@link signsFor}).
   */
  readonly issuer: string | undefined
}

/**
 * The usable keys of one loaded key set.
 *
 * @since 0.1.0
 * @category models
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import type * as Jwk from "effect-jwks/Jwk"
 * import * as JwksCache from "effect-jwks/JwksCache"
 *
 * const report = Effect.gen(function*() {
 *   const set: Jwk.KeySet = yield* (yield* JwksCache.JwksCache).keys
 *   yield* Effect.logInfo(`${set.keys.length} usable keys, ${set.skipped} skipped`, set.keys.map((key) => key.kid))
 * })
 * ```
 */
export interface KeySet {
  readonly keys: ReadonlyArray<Key>
  /** How many keys of the published set were skipped as unusable. */
  readonly skipped: number
  /** @internal */
  readonly byKid: ReadonlyMap<string, ReadonlyArray<Key>>
  /** @internal Per kid shared by keys that may verify the same algorithm: one key per algorithm that tries each. */
  readonly sharedKids?: ReadonlyMap<string, ReadonlyMap<Algorithm, Key>>
  /** @internal Kids warned of (keys naming different issuers, or too many keys): the next import warns of new ones. */
  readonly warnedKids?: ReadonlySet<string>
}

/**
 * Limits and rules applied when a key set is imported.
 *
 * @since 0.1.0
 * @category models
 * @example
 * ```ts
 * import * as Jwk from "effect-jwks/Jwk"
 *
 * const options: Jwk.ImportOptions = { algorithms: ["RS256", "PS256"], maxKeys: 20, minRsaBits: 3072 }
 * ```
 */
export interface ImportOptions {
  /** Import only keys for these algorithms. Default: every algorithm of {@link Algorithm}. */
  readonly algorithms?: ReadonlyArray<Algorithm> | undefined
  /** A set with more keys than this is refused as hostile. Default 100. */
  readonly maxKeys?: number | undefined
  /**
   * RSA keys with a shorter modulus are skipped (RFC 8725 asks for 2048). Default 2048; a lower value is an explicit
   * loosening, for a legacy set.
   */
  readonly minRsaBits?: number | undefined
  /**
   * The set this one replaces: a key published again unchanged (the same `kid`, type, public material, `issuer` and
   * usable algorithms) is carried over as the very same `Key`, not imported again (its `jwk` stays the one first
   * published). A refresh that changes nothing then changes no key, and whatever was remembered about a key
   * (verified tokens) stays valid.
   */
  readonly previous?: KeySet | undefined
}

/**
 * @since 0.1.0
 * @category defaults
 * @example
 * ```ts
 * import * as Jwk from "effect-jwks/Jwk"
 *
 * console.log(Jwk.importDefaults.minRsaBits) // 2048: shorter RSA keys are skipped
 * ```
 */
export const importDefaults = {
  maxKeys: 100,
  minRsaBits: 2048
} as const

/**
 * @internal
 * Checks import options: `algorithms` a non-empty list of {@link Algorithm}s, `maxKeys` and `minRsaBits` positive
 * whole numbers. Anything else is a `ConfigError` at `path`: `NaN` (an unset variable read with `Number`) would lift
 * the limit it stands for, since every comparison with it is false.
 */
export const checkImportOptions = (
  options: ImportOptions | undefined,
  path: ReadonlyArray<string> = []
): Either.Either<ImportOptions | undefined, ConfigError.ConfigError> => {
  const bad = (name: string, message: string) => Either.left(ConfigError.InvalidData([...path, name], message))
  const algorithms = options?.algorithms
  if (algorithms !== undefined) {
    if (!Array.isArray(algorithms) || algorithms.length === 0) {
      return bad("algorithms", "expected a list of at least one algorithm")
    }
    const unknown = algorithms.find((alg) => !isAlgorithm(alg))
    if (unknown !== undefined) {
      return bad("algorithms", `expected some of ${Algorithm.literals.join(", ")}, got ${String(unknown)}`)
    }
  }
  for (const name of ["maxKeys", "minRsaBits"] as const) {
    const value = options?.[name]
    if (value !== undefined && !(Number.isSafeInteger(value) && value > 0)) {
      return bad(name, `expected a positive whole number, got ${String(value)}`)
    }
  }
  return Either.right(options)
}

const decodeJwk = Schema.decodeUnknownEither(Jwk)

const base64UrlAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

/**
 * The exact bit length of a base64url-encoded big-endian unsigned integer (an RSA modulus), without decoding it:
 * the whole bytes the text encodes, less the leading zero bits. The input is known to match `Base64Url`.
 */
const modulusBits = (n: string): number => {
  const bytes = Math.floor((n.length * 6) / 8)
  let zeros = 0
  for (const char of n) {
    const value = base64UrlAlphabet.indexOf(char)
    if (value !== 0) {
      zeros += Math.clz32(value) - 26
      break
    }
    zeros += 6
  }
  return Math.max(0, bytes * 8 - zeros)
}

/**
 * Whether a base64url-encoded public exponent is odd, at least 3 and shorter than 257 bits, or than 65 bits for a
 * modulus over 3072 bits (OpenSSL verifies with no longer one there: such a key would never verify). WebCrypto imports
 * any exponent, even an empty one, `1` (which any signer can forge) or one thousands of bits long (slow to verify with).
 */
const isRsaExponent = (e: string, bits: number): boolean => {
  if (e.length > 64) return false
  let value = 0n
  for (const char of e) value = value * 64n + BigInt(base64UrlAlphabet.indexOf(char))
  value >>= BigInt((e.length * 6) % 8)
  return value >= 3n && value % 2n === 1n && value < 2n ** (bits > 3072 ? 64n : 256n)
}

/** The longest modulus OpenSSL verifies with (`OPENSSL_RSA_MAX_MODULUS_BITS`): a longer one never verifies. */
const maxRsaBits = 16384

/** Whether a base64url-encoded modulus is odd, as every product of two odd primes is (OpenSSL verifies with no other). */
const isOddModulus = (n: string): boolean => {
  const bytes = Buffer.from(n, "base64url")
  return bytes.length > 0 && (bytes[bytes.length - 1]! & 1) === 1
}

/** The prime of Curve25519's field, and the constant d of its Edwards form (RFC 8032, section 5.1). */
const p25519 = 2n ** 255n - 19n
const modPow = (base: bigint, exponent: bigint): bigint => {
  let result = 1n
  for (let b = base % p25519, e = exponent; e > 0n; e >>= 1n, b = (b * b) % p25519) {
    if ((e & 1n) === 1n) result = (result * b) % p25519
  }
  return result
}
const d25519 = ((p25519 - 121665n) * modPow(121666n, p25519 - 2n)) % p25519

/**
 * Whether a base64url-encoded Ed25519 public key is a point of the curve, in its one canonical encoding (RFC 8032,
 * section 5.1.3), outside the subgroup of order 8. `node:crypto` imports any 32 bytes and decodes them only when
 * verifying; a small-order point (the identity, say) is worse than a bad one: a signature made without any private
 * key verifies under it for every message (or one in two, or four), as with an RSA exponent of 1.
 */
const isEd25519PublicKey = (x: string): boolean => {
  const bytes = Buffer.from(x, "base64url")
  if (bytes.length !== 32) return false
  let y = 0n
  for (let i = 31; i >= 0; i--) y = (y << 8n) | BigInt(bytes[i]!)
  const sign = y >> 255n
  y &= (1n << 255n) - 1n
  if (y >= p25519) return false
  // x^2 = (y^2 - 1) / (d y^2 + 1): there is a point when u/v, so u*v, is a square mod p (zero included).
  const yy = (y * y) % p25519
  const u = (yy - 1n + p25519) % p25519
  const v = (d25519 * yy + 1n) % p25519
  const uv = (u * v) % p25519
  if (uv !== 0n && modPow(uv, (p25519 - 1n) / 2n) !== 1n) return false
  // x = 0 has one encoding, with the sign bit clear.
  if (u === 0n && sign === 1n) return false
  // 8P by three doublings of y alone, with y = Y/Z: 2P has y' = (y^2 + x^2) / (2 + x^2 - y^2) on this curve (a = -1),
  // and x^2 follows from y as above. P has small order when 8P is the identity, the one point with y = 1.
  let Y = y
  let Z = 1n
  for (let i = 0; i < 3; i++) {
    const A = (Y * Y) % p25519
    const B = (Z * Z) % p25519
    const U = (A - B + p25519) % p25519
    const V = (d25519 * A + B) % p25519
    const AV = (A * V) % p25519
    const UB = (U * B) % p25519
    Y = (AV + UB) % p25519
    Z = (((2n * B * V + UB - AV) % p25519) + p25519) % p25519
  }
  return Y !== Z
}

/** A member of a published JWK (the IdP's word, or a hostile server's) as a log line shows it. */
const shown = (value: string | undefined): string => value === undefined ? "(none)" : printable(value, 32)

/**
 * Why a published key was skipped, or the algorithms it may verify.
 */
const usableAlgorithms = (
  jwk: Jwk,
  allowed: ReadonlySet<Algorithm>,
  minRsaBits: number,
  checkedPoints: ReadonlySet<string>
): ReadonlyArray<Algorithm> | string => {
  if (jwk.kty === "oct") return "symmetric keys are never taken from a key set"
  if (jwk.use !== undefined && jwk.use !== "sig") return `use is "${shown(jwk.use)}", not "sig"`
  if (jwk.key_ops !== undefined && !jwk.key_ops.includes("verify")) return "key_ops does not include \"verify\""
  const forType = algorithmsFor(jwk.kty, jwk.crv)
  if (forType.length === 0) {
    return `unsupported key type ${shown(jwk.kty)}${jwk.crv === undefined ? "" : ` (${shown(jwk.crv)})`}`
  }
  if (jwk.kty === "RSA") {
    if (jwk.n === undefined || jwk.e === undefined) return "RSA key without n or e"
    const bits = modulusBits(jwk.n)
    if (bits < minRsaBits) return `RSA modulus shorter than ${minRsaBits} bits`
    if (bits > maxRsaBits) return `RSA modulus longer than ${maxRsaBits} bits`
    if (!isOddModulus(jwk.n)) return "RSA modulus is even"
    if (!isRsaExponent(jwk.e, bits)) {
      return `RSA exponent is not an odd number from 3 to 2^${bits > 3072 ? 64 : 256} (for a ${bits}-bit modulus)`
    }
  } else if (jwk.x === undefined || (jwk.kty === "EC" && jwk.y === undefined)) {
    return `${shown(jwk.kty)} key without its coordinates`
  } else if (jwk.kty === "OKP" && !checkedPoints.has(jwk.x) && !isEd25519PublicKey(jwk.x)) {
    return "Ed25519 key that is not a point of the curve outside its small subgroup"
  }
  const candidates = jwk.alg === undefined ? forType : forType.filter((alg) => alg === jwk.alg)
  if (candidates.length === 0) return `alg ${shown(jwk.alg)} does not fit a ${shown(jwk.kty)} key`
  const usable = candidates.filter((alg) => allowed.has(alg))
  return usable.length === 0 ? `alg ${candidates.join("/")} is not allowed` : usable
}

const pss = { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }
const ieeeP1363 = { dsaEncoding: "ieee-p1363" }

const publicJwk = (jwk: Jwk): JsonWebKey => {
  const out: JsonWebKey = { kty: jwk.kty }
  if (jwk.crv !== undefined) out.crv = jwk.crv
  if (jwk.n !== undefined) out.n = jwk.n
  if (jwk.e !== undefined) out.e = jwk.e
  if (jwk.x !== undefined) out.x = jwk.x
  if (jwk.y !== undefined) out.y = jwk.y
  return out
}

/** How each algorithm's signature is checked with `node:crypto` (RFC 7518, section 3). */
const verification: Record<
  Algorithm,
  { readonly hash: string | null; readonly length?: number; readonly options: object }
> = {
  RS256: { hash: "sha256", options: {} },
  RS384: { hash: "sha384", options: {} },
  RS512: { hash: "sha512", options: {} },
  PS256: { hash: "sha256", options: pss },
  PS384: { hash: "sha384", options: pss },
  PS512: { hash: "sha512", options: pss },
  ES256: { hash: "sha256", length: 64, options: ieeeP1363 },
  ES384: { hash: "sha384", length: 96, options: ieeeP1363 },
  ES512: { hash: "sha512", length: 132, options: ieeeP1363 },
  EdDSA: { hash: null, options: {} },
  Ed25519: { hash: null, options: {} }
}

/** How many keys of one kid that may verify one algorithm a token of that kid is tried with, at most. */
const maxSharingKid = 4

/** The keys each made by {@link anyOf}: whether the next import can carry it over. */
const membersOf = new WeakMap<Key, ReadonlyArray<Key>>()

/** Keys that share a kid, as one key for `alg` that verifies with any of them (tried in the set's order). */
const anyOf = (keys: ReadonlyArray<Key>, alg: Algorithm): Key => {
  const key: Key = {
    ...keys[0]!,
    algorithms: new Set([alg]),
    verify: (tokenAlg, data, signature) =>
      tokenAlg === alg && keys.some((member) => member.verify(tokenAlg, data, signature))
  }
  membersOf.set(key, keys)
  return key
}

/**
 * What makes two published keys the same key: identity, public material, the issuer it signs for and what it may
 * verify.
 */
const sameKeyAs = (jwk: Jwk, algorithms: Iterable<Algorithm>): string =>
  JSON.stringify([jwk.kid, jwk.kty, jwk.crv, jwk.n, jwk.e, jwk.x, jwk.y, jwk.issuer, [...algorithms]])

/**
 * A key's public material and the issuer it signs for (not its kid or algorithms): what tells one key from another
 * where a token names no kid. Worked out once per key.
 */
const materialOf = (key: Key): string => {
  let material = materials.get(key)
  if (material === undefined) {
    const { crv, e, kty, n, x, y } = key.jwk
    material = JSON.stringify([kty, crv, n, e, x, y, key.issuer])
    materials.set(key, material)
  }
  return material
}

const materials = new WeakMap<Key, string>()

/** Keys of one kid, the same public key published twice counted once (the first). */
const distinctKeys = (keys: ReadonlyArray<Key>): ReadonlyArray<Key> => {
  const seen = new Set<string>()
  return keys.filter((key) => {
    const material = sameKeyAs(key.jwk, [])
    if (seen.has(material)) return false
    seen.add(material)
    return true
  })
}

const importKey = (jwk: Jwk, algorithms: ReadonlyArray<Algorithm>) =>
  Effect.try(() => {
    const keyObject = createPublicKey({ key: publicJwk(jwk), format: "jwk" })
    // An RSA signature is exactly as long as the modulus (RFC 8017, 8.1.2 and 8.2.2, step 1). OpenSSL checks that for
    // PKCS #1 v1.5 but not for PSS, where a signature starting with a zero byte (1 in 256) would verify again without
    // it: a second spelling of the token that anyone can make.
    const modulusBits = keyObject.asymmetricKeyDetails?.modulusLength
    const rsaLength = modulusBits === undefined ? undefined : Math.ceil(modulusBits / 8)
    // One verify input per algorithm, made now, so that verifying allocates nothing of its own.
    const inputs = new Map(algorithms.map((alg) => {
      const { hash, length, options } = verification[alg]
      return [alg, { hash, length: length ?? rsaLength, input: { key: keyObject, ...options } }] as const
    }))
    const verify = (alg: string, data: Uint8Array, signature: Uint8Array): boolean => {
      const known = inputs.get(alg as Algorithm)
      if (known === undefined) return false
      if (known.length !== undefined && signature.length !== known.length) return false
      try {
        return verifySignature(known.hash, data, known.input, signature)
      } catch {
        return false
      }
    }
    return { keyObject, verify, algorithms: new Set(algorithms) }
  })

/** The private members of an RSA, EC or OKP JWK (RFC 7518, sections 6.2.2 and 6.3.2; RFC 8037). */
const privateMembers = ["d", "p", "q", "dp", "dq", "qi", "oth"] as const

/** The private members `raw` (a published JWK) carries. */
const privateMembersOf = (raw: unknown): ReadonlyArray<string> =>
  typeof raw === "object" && raw !== null ? privateMembers.filter((member) => member in raw) : []

/**
 * Decodes and imports each key of a published set. A key that is malformed, of a type or algorithm this library does
 * not verify with, meant for encryption, too weak, or published with its private part is skipped and logged (at Debug,
 * which the default minimum log level hides; at Warning when it is no JWK or does not import, at Error when its private
 * part is published); the set fails only when no usable key is left (`EmptyKeySet`) or when it has more keys than
 * `maxKeys` (`InvalidShape`). Options out of range (a `maxKeys` of `NaN`, say) are a defect.
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import * as Jwk from "effect-jwks/Jwk"
 *
 * const jwk = {
 *   kty: "EC",
 *   crv: "P-256",
 *   x: "v-mezdnIzNMxOsi7ooRlhHppo0iGyz6ThQmwMKJPuHA",
 *   y: "p4lSznITaYO5k5BQOGGSrRY7NWZq5Yc6vw201SUM5Ak",
 *   kid: "k1"
 * }
 * const program = Effect.gen(function*() {
 *   const set = yield* Jwk.importKeySet({ keys: [jwk] }, "static")
 *   console.log(set.keys.map((key) => key.kid)) // ["k1"]
 * })
 * ```
 */
export const importKeySet = (
  jwks: JsonWebKeySet,
  source: string,
  options?: ImportOptions
): Effect.Effect<KeySet, JwksError> =>
  Effect.gen(function*() {
    const checked = checkImportOptions(options)
    // A caller's mistake, not the key set's: the options of the library's own callers are checked as configuration.
    if (Either.isLeft(checked)) return yield* Effect.dieMessage(`Jwk.importKeySet: ${checked.left.message}`)
    const maxKeys = options?.maxKeys ?? importDefaults.maxKeys
    if (jwks.keys.length > maxKeys) {
      return yield* new JwksError({
        reason: "InvalidShape",
        source,
        description: `the set has ${jwks.keys.length} keys, more than the limit of ${maxKeys}`
      })
    }
    const allowed = new Set(options?.algorithms ?? Algorithm.literals)
    const minRsaBits = options?.minRsaBits ?? importDefaults.minRsaBits
    // The first of a key listed twice, as `distinctKeys` keeps, so that a combined key of a shared kid carries over;
    // the keys of this import join them as they are made.
    const previous = new Map<string, Key>()
    for (const key of options?.previous?.keys ?? []) {
      const same = sameKeyAs(key.jwk, key.algorithms)
      if (!previous.has(same)) previous.set(same, key)
    }
    // Ed25519 points already checked for the set this one replaces: the check costs ~0.2 ms a key.
    const checkedPoints = new Set(
      options?.previous?.keys.flatMap((key) => key.kty === "OKP" && key.jwk.x !== undefined ? [key.jwk.x] : [])
    )
    const keys: Array<Key> = []
    let skipped = 0
    for (const [index, raw] of jwks.keys.entries()) {
      const decoded = decodeJwk(raw)
      if (decoded._tag === "Left") {
        skipped++
        yield* Effect.logWarning(`Skipping key #${index}: not a valid JWK`)
        continue
      }
      const jwk = decoded.right
      // The set is the IdP's word, or a hostile server's: its text reaches a log line escaped and cut.
      const label = jwk.kid === undefined ? `#${index}` : `"${shownKid(jwk.kid)}"`
      // A private key in a set that others read is no longer private: whoever read it can sign any token with it.
      const exposed = privateMembersOf(raw)
      if (exposed.length > 0) {
        skipped++
        yield* Effect.logError(
          `Skipping key ${label}: it is published with its private part (${exposed.join(", ")}), so whoever can ` +
            "read the set can sign with it"
        )
        continue
      }
      const algorithms = usableAlgorithms(jwk, allowed, minRsaBits, checkedPoints)
      if (typeof algorithms === "string") {
        skipped++
        yield* Effect.logDebug(`Skipping key ${label}: ${algorithms}`)
        continue
      }
      const same = sameKeyAs(jwk, algorithms)
      const unchanged = previous.get(same)
      if (unchanged !== undefined) {
        keys.push(unchanged)
        continue
      }
      const imported = yield* Effect.either(importKey(jwk, algorithms))
      if (imported._tag === "Left") {
        skipped++
        yield* Effect.logWarning(`Skipping key ${label}: it could not be imported`, Cause.fail(imported.left))
        continue
      }
      const key: Key = { kid: jwk.kid, kty: jwk.kty, crv: jwk.crv, ...imported.right, jwk, issuer: labelOf(jwk) }
      keys.push(key)
      // A key listed again further down is this one, as it will be in the next import (no change to report then).
      previous.set(same, key)
    }
    if (keys.length === 0) {
      return yield* new JwksError({
        reason: "EmptyKeySet",
        source,
        description: jwks.keys.length === 0
          ? "the set has no keys"
          : `none of its ${jwks.keys.length} keys is usable here (each one skipped is logged, module Jwk, ` +
            "most at Debug)"
      })
    }
    const byKid = new Map<string, Array<Key>>()
    for (const key of keys) {
      if (key.kid === undefined) continue
      const same = byKid.get(key.kid)
      if (same === undefined) byKid.set(key.kid, [key])
      else same.push(key)
    }
    const sharedKids = new Map<string, Map<Algorithm, Key>>()
    const newlyShared = new Map<string, Array<Algorithm>>()
    const apart = new Set<string>()
    const crowded = new Set<string>()
    for (const [kid, same] of byKid) {
      if (same.length < 2) continue
      for (const alg of new Set(same.flatMap((key) => [...key.algorithms]))) {
        const distinct = distinctKeys(same.filter((key) => key.algorithms.has(alg)))
        if (distinct.length < 2) continue
        // Each one tried costs a signature check for every forged token of that kid: a few at most.
        if (distinct.length > maxSharingKid) crowded.add(kid)
        const fitting = distinct.slice(0, maxSharingKid)
        // Keys that sign for different issuers are not one key: a token of that kid is checked with the first alone.
        if (fitting.some((key) => key.issuer !== fitting[0]!.issuer)) {
          apart.add(kid)
          continue
        }
        // Carried over while its keys are: a remembered token of that kid stays remembered across a refresh.
        const carried = options?.previous?.sharedKids?.get(kid)?.get(alg)
        const members = carried === undefined ? undefined : membersOf.get(carried)
        const unchanged = members !== undefined && members.length === fitting.length &&
          members.every((key, i) => key === fitting[i])
        let byAlg = sharedKids.get(kid)
        if (byAlg === undefined) sharedKids.set(kid, byAlg = new Map())
        byAlg.set(alg, unchanged ? carried! : anyOf(fitting, alg))
        if (!unchanged) newlyShared.set(kid, [...(newlyShared.get(kid) ?? []), alg])
      }
    }
    // Warned of once, not again by every refresh of an unchanged set.
    const warned = options?.previous?.warnedKids
    for (const kid of apart) {
      if (warned?.has(`apart ${kid}`)) continue
      const shown = shownKid(kid)
      yield* Effect.logWarning(
        `Keys sharing kid "${shown}" sign for different issuers: a token of that kid is checked with the first of ` +
          "them only"
      )
    }
    for (const kid of crowded) {
      if (warned?.has(`crowded ${kid}`)) continue
      const shown = shownKid(kid)
      yield* Effect.logWarning(
        `More than ${maxSharingKid} keys share kid "${shown}": a token of that kid is tried with the first ` +
          `${maxSharingKid}`
      )
    }
    for (const [kid, algorithms] of newlyShared) {
      // Its own warning says which are tried.
      if (crowded.has(kid)) continue
      yield* Effect.logWarning(
        `Keys sharing kid "${shownKid(kid)}" may verify the same algorithms (${algorithms.join(", ")}): ` +
          "a token of that kid is tried with each"
      )
    }
    const warnedKids = new Set([
      ...[...apart].map((kid) => `apart ${kid}`),
      ...[...crowded].map((kid) => `crowded ${kid}`)
    ])
    return { keys, skipped, byKid, sharedKids, warnedKids }
  }).pipe(Effect.annotateLogs({ module: "Jwk", source }))

/**
 * Picks the key for a token's `kid` and `alg`. A token with a `kid` gets the key of that id that may verify its
 * algorithm; a token without one gets a key only when exactly one public key of the set (listed once or more, under any
 * kids, with one `issuer`) may verify its algorithm. Kids should differ within a set (RFC 7517, section 4.5), but when
 * several keys of one kid may verify the algorithm, the key given verifies with any of them (the first four; its other
 * fields are the first one's), as a token signed by any of them is the identity provider's. Keys of one kid that name
 * different issuers are not combined: the first is given.
 *
 * @since 0.1.0
 * @category combinators
 * @example
 * ```ts
 * import * as Jwk from "effect-jwks/Jwk"
 *
 * declare const set: Jwk.KeySet
 * const key = Jwk.select(set, "k1", "RS256") // Jwk.Key | undefined
 * ```
 */
export const select = (set: KeySet, kid: string | undefined, alg: Algorithm): Key | undefined => {
  if (kid !== undefined) {
    const candidates = set.byKid.get(kid)
    if (candidates === undefined) return undefined
    if (candidates.length > 1) {
      const shared = set.sharedKids?.get(kid)?.get(alg)
      if (shared !== undefined) return shared
    }
    for (const key of candidates) {
      if (key.algorithms.has(alg)) return key
    }
    return undefined
  }
  let found: Key | undefined
  for (const key of set.keys) {
    if (!key.algorithms.has(alg) || key === found) continue
    // Two keys could verify it: not guessed. One public key listed twice is one key (the import shares the object
    // of two identical entries; two that differ in `alg`, say, are compared by their material).
    if (found !== undefined) {
      if (materialOf(found) === materialOf(key)) continue
      return undefined
    }
    found = key
  }
  return found
}

/**
 * Whether a key that signs for `issuer` (a {@link Key}'s `issuer`, from its JWK) may verify a token with these claims:
 * any token when the key names no issuer (a label of only white space names none, as Microsoft's validation reads
 * it); else only one whose `iss` is that issuer, with `{tenantid}` in it standing for the token's `tid` claim
 * (Microsoft Entra ID's shared key sets label their keys so: a key of the personal accounts tenant must not sign a
 * work tenant's tokens). A key labelled with an Entra ID tenant's v2.0 issuer also signs that tenant's v1.0 tokens of
 * the same cloud (`https://sts.windows.net/<tenant>/` for login.microsoftonline.com and .us,
 * `https://sts.chinacloudapi.cn/<tenant>/` for the China cloud's hosts), and no other cloud's.
 *
 * @since 0.1.0
 * @category utils
 * @example
 * ```ts
 * import * as Jwk from "effect-jwks/Jwk"
 *
 * const template = "https://login.microsoftonline.com/{tenantid}/v2.0"
 * const tid = "6f1c0b4e-0000-4000-8000-000000000001"
 * Jwk.signsFor(template, { iss: `https://login.microsoftonline.com/${tid}/v2.0`, tid }) // true
 * Jwk.signsFor(template, { iss: "https://login.microsoftonline.com/other/v2.0", tid }) // false
 * Jwk.signsFor(undefined, { iss: "https://idp.example" }) // true: the key names no issuer
 * ```
 */
export const signsFor = (
  issuer: string | undefined,
  claims: { readonly iss?: unknown; readonly tid?: unknown }
): boolean => {
  if (issuer === undefined || isBlank(issuer)) return true
  let expected = issuer
  if (issuer.includes(tenantPlaceholder)) {
    const tid = claims.tid
    if (typeof tid !== "string" || tid.length === 0) return false
    expected = issuer.split(tenantPlaceholder).join(tid)
  }
  if (claims.iss === expected) return true
  // Entra ID signs a tenant's v1.0 tokens (`https://sts.windows.net/<tenant>/`) with the keys its v2.0 set labels with
  // that tenant's v2.0 issuer: the same tenant, in the other format.
  const v2 = entraV2Issuer.exec(expected)
  return v2 !== null && claims.iss === `${entraV1Issuers[v2[1]!]}${v2[2]}/`
}

/**
 * A label of only white space (or none at all) names no issuer, as Microsoft's own validation reads one: white space as
 * .NET's `char.IsWhiteSpace` has it (JavaScript's `trim` also drops a byte order mark, which names an issuer there).
 */
const isBlank = (issuer: string): boolean =>
  /^[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$/.test(issuer)

/** The issuer a JWK's `issuer` label names, if any. */
const labelOf = (jwk: Jwk): string | undefined =>
  jwk.issuer === undefined || isBlank(jwk.issuer) ? undefined : jwk.issuer

const tenantPlaceholder = "{tenantid}"
const entraV2Issuer =
  /^https:\/\/(login\.microsoftonline\.com|login\.microsoftonline\.us|login\.partner\.microsoftonline\.cn|login\.chinacloudapi\.cn)\/([^/]+)\/v2\.0$/
/** Where each Entra ID cloud's v1.0 tokens say they come from, by its v2.0 issuers' host: a key signs for its own. */
const entraV1Issuers: Readonly<Record<string, string>> = {
  "login.microsoftonline.com": "https://sts.windows.net/",
  "login.microsoftonline.us": "https://sts.windows.net/",
  "login.partner.microsoftonline.cn": "https://sts.chinacloudapi.cn/",
  "login.chinacloudapi.cn": "https://sts.chinacloudapi.cn/"
}
