/**
 * Input generators for the fuzzers (`fuzz/run.ts`, and a smaller slice in `test/fuzz.test.ts`).
 *
 * Everything here is synchronous and depends only on a `Material` (keys, sample tokens, the clock), so fast-check can
 * generate, shrink and replay inputs from a seed. Signing uses `node:crypto` directly for the same reason.
 */
import { FastCheck as fc } from "effect"
import {
  constants,
  createHmac,
  generateKeyPairSync,
  type JsonWebKey,
  type KeyObject,
  sign as cryptoSign
} from "node:crypto"

// --- material ------------------------------------------------------------------------------------------------------

/** A key we hold the private half of. `published` keys are in a key set a validator trusts; the others are not. */
export interface Signer {
  readonly kid: string
  /** The algorithms this key can produce signatures for. */
  readonly algorithms: ReadonlyArray<string>
  readonly privateKey: KeyObject
  readonly publicKey: KeyObject
  /** The public JWK as published (with `kid`, and `alg` when the key is tied to one). */
  readonly jwk: JsonWebKey & { readonly kid: string; readonly alg?: string }
}

/** What the generators draw from. */
export interface Material {
  /** Seconds since the epoch when the material was made. */
  readonly now: number
  readonly issuer: string
  readonly audience: string
  /** The algorithms the validator of the published keys allows. */
  readonly algorithms: ReadonlyArray<string>
  /** Keys in the trusted key set. */
  readonly published: ReadonlyArray<Signer>
  /** Keys of the same types that nobody publishes. */
  readonly strangers: ReadonlyArray<Signer>
  /** Valid tokens from other sources (the fake IdP), to be mutated. */
  readonly samples: ReadonlyArray<string>
  /** Tokens from the fake IdP signed with a key it never published, under its published kid. */
  readonly forgeries: ReadonlyArray<string>
}

const rsaAlgorithms = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"]

const makeSigner = (
  kid: string,
  type: "rsa" | "ec" | "ed",
  alg: string | undefined
): Signer => {
  const { privateKey, publicKey } = type === "rsa"
    ? generateKeyPairSync("rsa", { modulusLength: 2048 })
    : type === "ec"
    ? generateKeyPairSync("ec", { namedCurve: "P-256" })
    : generateKeyPairSync("ed25519")
  const algorithms = alg !== undefined ? [alg] : type === "rsa" ? rsaAlgorithms : type === "ec" ? ["ES256"] : ["EdDSA"]
  const jwk = { ...publicKey.export({ format: "jwk" }), kid, ...(alg === undefined ? {} : { alg }), use: "sig" }
  return { kid, algorithms, privateKey, publicKey, jwk }
}

/** Fresh keys: published RSA (any RSA alg), RSA (PS256 only), P-256 and Ed25519, and strangers of each type. */
export const makeKeys = (): { readonly published: Array<Signer>; readonly strangers: Array<Signer> } => ({
  published: [
    makeSigner("rsa-1", "rsa", undefined),
    makeSigner("rsa-pss", "rsa", "PS256"),
    makeSigner("ec-1", "ec", "ES256"),
    makeSigner("ed-1", "ed", "EdDSA")
  ],
  strangers: [
    makeSigner("stranger-rsa", "rsa", undefined),
    makeSigner("stranger-ec", "ec", "ES256"),
    makeSigner("stranger-ed", "ed", "EdDSA")
  ]
})

// --- encoding and signing ------------------------------------------------------------------------------------------

export const b64u = (value: string | Uint8Array): string => Buffer.from(value).toString("base64url")

const hashOf = (alg: string): string | null =>
  alg.endsWith("256") ? "sha256" : alg.endsWith("384") ? "sha384" : alg.endsWith("512") ? "sha512" : null

/** A signature of `data` under `alg` with `key`, whatever the pairing (a mismatched one makes a junk signature). */
export const signWith = (key: KeyObject, alg: string, data: string): Uint8Array => {
  const bytes = Buffer.from(data)
  try {
    if (alg.startsWith("PS")) {
      return cryptoSign(hashOf(alg), bytes, {
        key,
        padding: constants.RSA_PKCS1_PSS_PADDING,
        saltLength: constants.RSA_PSS_SALTLEN_DIGEST
      })
    }
    if (alg.startsWith("ES")) return cryptoSign(hashOf(alg), bytes, { key, dsaEncoding: "ieee-p1363" })
    if (alg === "EdDSA" || alg === "Ed25519") return cryptoSign(null, bytes, key)
    return cryptoSign(hashOf(alg) ?? "sha256", bytes, key)
  } catch {
    return cryptoSign(null, bytes, key) // Ed25519 refuses a digest; RSA/EC refuse none: sign the way the key can
  }
}

/** A compact JWS over raw header and payload text (not necessarily JSON), signed by `signer` under `alg`. */
export const compact = (header: string, payload: string, signature: (data: string) => Uint8Array): string => {
  const data = `${b64u(header)}.${b64u(payload)}`
  return `${data}.${b64u(signature(data))}`
}

export const signedBy = (signer: Signer, alg: string = signer.algorithms[0]!) => (data: string) =>
  signWith(signer.privateKey, alg, data)

export const hmacWith = (secret: Uint8Array | string, alg = "HS256") => (data: string) =>
  new Uint8Array(createHmac(hashOf(alg) ?? "sha256", secret).update(data).digest())

/** The claims of a token every validator of the material accepts. */
export const goodClaims = (m: Material, extra: Record<string, unknown> = {}) => ({
  iss: m.issuer,
  aud: m.audience,
  sub: "fuzz-user",
  iat: m.now - 60,
  exp: m.now + 3600,
  ...extra
})

export const goodToken = (m: Material, signer: Signer, alg = signer.algorithms[0]!) =>
  compact(
    JSON.stringify({ alg, kid: signer.kid, typ: "JWT" }),
    JSON.stringify(goodClaims(m)),
    signedBy(signer, alg)
  )

// --- building blocks -----------------------------------------------------------------------------------------------

const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
const base64UrlChar = fc.constantFrom(...alphabet)
const base64Urlish = (maxLength: number) => fc.string({ unit: base64UrlChar, maxLength })

/** Odd characters for ids: unicode of every kind, lone surrogates, controls, homoglyphs of published kids. */
const oddString = fc.oneof(
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.string({ unit: "grapheme", maxLength: 20 }),
  fc.constantFrom(
    "",
    " ",
    "\u0000",
    "\ud800",
    "\udfff",
    "\u202erev",
    "ec\u20111",
    "еc-1", // Cyrillic е
    "rsa-1 ",
    " rsa-1",
    "RSA-1",
    "rsa-1\u0000",
    "../../etc/passwd",
    "__proto__",
    "constructor",
    "toString",
    "%00",
    "💥".repeat(50),
    "k".repeat(5000)
  )
)

const scalar = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.constant(undefined)
)

/** Any JSON-ish value, including the wrong type for every claim. */
const anyValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: scalar },
  { weight: 1, arbitrary: fc.array(scalar, { maxLength: 4 }) },
  { weight: 1, arbitrary: fc.dictionary(fc.string({ maxLength: 6 }), scalar, { maxKeys: 4 }) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) }
)

/** Raw JSON number texts, some beyond what a double holds. */
export const hugeNumber = fc.constantFrom(
  "1e400",
  "-1e400",
  "1e308",
  "1.7976931348623157e308",
  "-1e308",
  "9007199254740993",
  "123456789012345678901234567890",
  "253402300799",
  "253402300800",
  "1e-400",
  "-0",
  "0.0000000001",
  "1E+400",
  "4e9",
  "99999999999999999999999999999999999999999999999999999999999999999999999999999999"
)

/** Nested arrays or objects, `depth` deep, around `inner`. */
export const nested = (depth: number, kind: "array" | "object", inner = "1"): string =>
  kind === "array" ? "[".repeat(depth) + inner + "]".repeat(depth) : "{\"a\":".repeat(depth) + inner + "}".repeat(depth)

const depth = fc.constantFrom(10, 100, 1000, 3000, 5000, 10_000)

const pickSigner = (m: Material) => fc.constantFrom(...m.published)

const jsonMember = (name: string, rawValue: string) => `${JSON.stringify(name)}:${rawValue}`

const rawObject = (members: ReadonlyArray<readonly [string, string]>) =>
  `{${members.map(([name, value]) => jsonMember(name, value)).join(",")}}`

/** The members of good claims, as raw JSON text. */
const goodMembers = (m: Material): Array<readonly [string, string]> =>
  Object.entries(goodClaims(m)).map(([name, value]) => [name, JSON.stringify(value)] as const)

// --- token categories ----------------------------------------------------------------------------------------------

/** A named generator of token strings. */
export interface TokenCategory {
  readonly name: string
  readonly arbitrary: fc.Arbitrary<string>
}

/** Random bytes and text: nothing like a token, or just barely. */
const randomBytes = (): fc.Arbitrary<string> =>
  fc.oneof(
    fc.uint8Array({ maxLength: 400 }).map((bytes) => Buffer.from(bytes).toString("latin1")),
    fc.uint8Array({ maxLength: 400 }).map((bytes) => Buffer.from(bytes).toString("utf8")),
    fc.string({ unit: "binary", maxLength: 300 }),
    fc.string({ unit: "grapheme", maxLength: 200 }),
    fc.array(base64Urlish(200), { minLength: 1, maxLength: 6 }).map((parts) => parts.join(".")),
    fc.tuple(
      base64Urlish(60),
      base64Urlish(200),
      base64Urlish(400),
      fc.constantFrom("", "=", "==", "+", "/", " ", "\n")
    )
      .map(([a, b, c, junk]) => `${a}.${b}.${c}${junk}`),
    fc.tuple(fc.jsonValue(), fc.jsonValue(), fc.uint8Array({ maxLength: 300 })).map(([header, claims, signature]) =>
      `${b64u(JSON.stringify(header) ?? "")}.${b64u(JSON.stringify(claims) ?? "")}.${b64u(signature)}`
    )
  )

/** A valid token cut short, with a segment cut, dropped, doubled or re-encoded from its cut text. */
const truncated = (m: Material): fc.Arbitrary<string> =>
  fc.tuple(fc.constantFrom(...validTokens(m)), fc.nat(), fc.integer({ min: 0, max: 2 }), fc.nat(5)).map(
    ([token, at, segment, how]) => {
      const parts = token.split(".")
      const part = parts[segment]!
      switch (how) {
        case 0:
          return token.slice(0, at % token.length)
        case 1:
          parts[segment] = part.slice(0, at % Math.max(1, part.length))
          return parts.join(".")
        case 2: {
          // decode, cut the text, re-encode
          const text = Buffer.from(part, "base64url").toString("latin1")
          parts[segment] = b64u(Buffer.from(text.slice(0, at % Math.max(1, text.length)), "latin1"))
          return parts.join(".")
        }
        case 3:
          return parts.filter((_, i) => i !== segment).join(".")
        case 4:
          return [...parts.slice(0, segment + 1), ...parts.slice(segment)].join(".")
        default:
          return `${token}${token.slice(0, at % token.length)}`
      }
    }
  )

/** Header or claims decoded, changed as JSON (values, members, spelling, escapes), re-encoded; signature kept. */
const reencoded = (m: Material): fc.Arbitrary<string> =>
  fc.tuple(
    fc.constantFrom(...validTokens(m)),
    fc.integer({ min: 0, max: 1 }),
    fc.oneof(
      fc.record({ _tag: fc.constant("set" as const), name: fc.string({ maxLength: 8 }), value: anyValue }),
      fc.record({
        _tag: fc.constant("set" as const),
        name: fc.constantFrom("alg", "kid", "typ", "iss", "aud", "exp", "nbf", "iat", "sub", "token_use"),
        value: anyValue
      }),
      fc.record({
        _tag: fc.constant("drop" as const),
        name: fc.constantFrom("alg", "kid", "typ", "iss", "aud", "exp", "nbf", "iat", "sub")
      }),
      fc.record({ _tag: fc.constant("spacing" as const), indent: fc.integer({ min: 0, max: 4 }) }),
      fc.record({ _tag: fc.constant("escape" as const), at: fc.nat() }),
      fc.record({ _tag: fc.constant("bom" as const) })
    )
  ).map(([token, segment, change]) => {
    const parts = token.split(".")
    const text = Buffer.from(parts[segment]!, "base64url").toString("utf8")
    const value = JSON.parse(text) as Record<string, unknown>
    let out: string
    switch (change._tag) {
      case "set":
        out = JSON.stringify({ ...value, [change.name]: change.value })
        break
      case "drop": {
        const { [change.name]: _dropped, ...rest } = value
        out = JSON.stringify(rest)
        break
      }
      case "spacing":
        out = JSON.stringify(value, null, change.indent) + (change.indent === 0 ? " " : "")
        break
      case "escape": {
        // the same JSON value, spelled with a \u escape: different bytes under the same signature
        const index = change.at % text.length
        const char = text[index]!
        out = /[A-Za-z0-9]/.test(char)
          ? text.slice(0, index) + `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}` + text.slice(index + 1)
          : `${text} `
        break
      }
      case "bom":
        out = `\ufeff${text}`
    }
    parts[segment] = b64u(out)
    return parts.join(".")
  })

/** Claims with raw huge, tiny or negative numbers, validly signed by a published key. */
const hugeNumbers = (m: Material): fc.Arbitrary<string> =>
  fc.tuple(
    pickSigner(m),
    fc.subarray(["exp", "nbf", "iat", "other"], { minLength: 1 }),
    fc.array(hugeNumber, { minLength: 4, maxLength: 4 }),
    fc.boolean()
  ).map(([signer, names, numbers, inHeader]) => {
    const members = goodMembers(m).filter(([name]) => !names.includes(name))
    names.forEach((name, i) => members.push([name, numbers[i]!]))
    const header = inHeader
      ? rawObject([["alg", JSON.stringify(signer.algorithms[0])], ["kid", JSON.stringify(signer.kid)], [
        "x",
        numbers[0]!
      ]])
      : JSON.stringify({ alg: signer.algorithms[0], kid: signer.kid })
    return compact(header, rawObject(members), signedBy(signer))
  })

/** Nesting 10 to 10,000 deep in the header, the claims, a claim or the kid; validly signed or not. */
const deepNesting = (m: Material): fc.Arbitrary<string> =>
  fc.tuple(
    pickSigner(m),
    depth,
    fc.constantFrom("array" as const, "object" as const),
    fc.constantFrom("claims", "claim", "header", "kid", "aud"),
    fc.boolean()
  ).map(([signer, n, kind, where, signed]) => {
    const value = nested(n, kind)
    const header = where === "header"
      ? value
      : where === "kid"
      ? rawObject([["alg", JSON.stringify(signer.algorithms[0])], ["kid", value]])
      : JSON.stringify({ alg: signer.algorithms[0], kid: signer.kid })
    const claims = where === "claims"
      ? value
      : rawObject([
        ...goodMembers(m).filter(([name]) => !(where === "aud" && name === "aud")),
        [where === "aud" ? "aud" : "deep", value]
      ])
    return compact(header, claims, signed ? signedBy(signer) : () => new Uint8Array(256))
  })

/** Repeated members (`alg`, `exp`, `iss`, `kid`, `crit`, `__proto__`) in the header or the claims, validly signed. */
const duplicateKeys = (m: Material): fc.Arbitrary<string> =>
  fc.tuple(
    pickSigner(m),
    fc.array(
      fc.oneof(
        fc.tuple(fc.constant("header"), fc.constant("alg"), fc.constantFrom("\"none\"", "\"HS256\"", "\"RS256\"")),
        fc.tuple(fc.constant("header"), fc.constant("kid"), fc.constantFrom("\"rsa-1\"", "\"ec-1\"", "\"nope\"")),
        fc.tuple(fc.constant("header"), fc.constant("crit"), fc.constantFrom("[\"b64\"]", "[]")),
        fc.tuple(fc.constant("header"), fc.constant("b64"), fc.constantFrom("false", "true")),
        fc.tuple(fc.constant("claims"), fc.constant("exp"), fc.constantFrom("1", "\"never\"", "1e400", "null")),
        fc.tuple(fc.constant("claims"), fc.constant("iss"), fc.constantFrom("\"https://evil.example\"", "1")),
        fc.tuple(fc.constant("claims"), fc.constant("aud"), fc.constantFrom("\"other\"", "[]", "[1]")),
        fc.tuple(fc.constant("claims"), fc.constant("token_use"), fc.constant("\"refresh\"")),
        fc.tuple(
          fc.constantFrom("header", "claims"),
          fc.constant("__proto__"),
          fc.constantFrom("{\"exp\":1e400}", "{}")
        )
      ),
      { minLength: 1, maxLength: 4 }
    ),
    fc.boolean()
  ).map(([signer, extras, before]) => {
    const headerMembers: Array<readonly [string, string]> = [
      ["alg", JSON.stringify(signer.algorithms[0])],
      ["kid", JSON.stringify(signer.kid)]
    ]
    const claimMembers = goodMembers(m)
    for (const [where, name, value] of extras) {
      const list = where === "header" ? headerMembers : claimMembers
      if (before) list.unshift([name, value])
      else list.push([name, value])
    }
    return compact(rawObject(headerMembers), rawObject(claimMembers), signedBy(signer))
  })

/** Every registered claim with a value of any type, validly signed. */
const wrongTypes = (m: Material): fc.Arbitrary<string> =>
  fc.tuple(
    pickSigner(m),
    fc.record({
      iss: fc.oneof(fc.constant(m.issuer), anyValue),
      aud: fc.oneof(fc.constant(m.audience), fc.constant([m.audience, 1]), fc.constant([m.audience]), anyValue),
      sub: fc.oneof(fc.constant("x"), anyValue),
      exp: fc.oneof(fc.constant(m.now + 3600), fc.constant(`${m.now + 3600}`), anyValue),
      nbf: fc.oneof(fc.constant(m.now - 10), fc.constant(undefined), anyValue),
      iat: fc.oneof(fc.constant(m.now - 10), fc.constant(undefined), anyValue),
      client_id: fc.oneof(fc.constant(undefined), fc.constant(m.audience), anyValue),
      azp: fc.oneof(fc.constant(undefined), fc.constant(m.audience), anyValue),
      token_use: fc.oneof(fc.constant(undefined), fc.constantFrom("id", "access", "refresh"), anyValue),
      typ: fc.oneof(fc.constant(undefined), fc.constantFrom("Bearer", "Refresh", "offline", "ID"), anyValue),
      scope: fc.oneof(fc.constant(undefined), anyValue),
      groups: fc.oneof(fc.constant(undefined), anyValue)
    }, { requiredKeys: [] }),
    fc.record({
      typ: fc.oneof(fc.constantFrom("JWT", "at+jwt"), anyValue),
      kid: fc.oneof(fc.constant("keep"), anyValue)
    }, {
      requiredKeys: []
    })
  ).map(([signer, claims, headerExtra]) => {
    const header: Record<string, unknown> = { alg: signer.algorithms[0], kid: signer.kid, ...headerExtra }
    if (header.kid === "keep") header.kid = signer.kid
    return compact(JSON.stringify(header), JSON.stringify(claims), signedBy(signer))
  })

/** Odd kids (unicode, surrogates, controls, homoglyphs, 5000 characters) on tokens signed by a published key. */
const unicodeKid = (m: Material): fc.Arbitrary<string> =>
  fc.tuple(pickSigner(m), oddString, fc.boolean()).map(([signer, kid, stranger]) => {
    const key = stranger ? m.strangers.find((s) => s.algorithms.includes(signer.algorithms[0]!)) ?? signer : signer
    return compact(
      JSON.stringify({ alg: signer.algorithms[0], kid }),
      JSON.stringify(goodClaims(m)),
      signedBy(key, signer.algorithms[0])
    )
  })

const swapAlgs = [
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
  "Ed25519",
  "HS256",
  "HS384",
  "HS512",
  "none",
  "None",
  "rs256",
  "RS256 ",
  "",
  "ES256K",
  "RSA-OAEP"
]

/** The public key of a published signer, as an attacker might feed it to HMAC. */
const publicKeySecrets = (signer: Signer): ReadonlyArray<Uint8Array | string> => [
  signer.publicKey.export({ type: "spki", format: "pem" }) as string,
  new Uint8Array(signer.publicKey.export({ type: "spki", format: "der" })),
  JSON.stringify(signer.jwk),
  Buffer.from(String(signer.jwk.n ?? signer.jwk.x), "base64url"),
  String(signer.jwk.n ?? signer.jwk.x)
]

/** The header's alg swapped: old signature kept, re-signed by the same key under the new alg, or HMAC with the public key. */
const algSwap = (m: Material): fc.Arbitrary<string> =>
  fc.tuple(pickSigner(m), fc.constantFrom(...swapAlgs), fc.nat(4), fc.nat(4), fc.boolean()).map(
    ([signer, alg, how, secret, dropKid]) => {
      const header = JSON.stringify(dropKid ? { alg } : { alg, kid: signer.kid })
      const claims = JSON.stringify(goodClaims(m))
      switch (how) {
        case 0: {
          // original signature, new header
          const original = goodToken(m, signer).split(".")
          return `${b64u(header)}.${original[1]}.${original[2]}`
        }
        case 1:
          return compact(header, claims, signedBy(signer, alg))
        case 2:
          return compact(
            header,
            claims,
            hmacWith(publicKeySecrets(signer)[secret]!, alg.startsWith("HS") ? alg : "HS256")
          )
        case 3:
          return `${b64u(header)}.${b64u(claims)}.`
        default: {
          // a FakeIdp token with its header's alg swapped
          const sample = m.samples[secret % m.samples.length]!.split(".")
          const original = JSON.parse(Buffer.from(sample[0]!, "base64url").toString("utf8")) as Record<string, unknown>
          return `${b64u(JSON.stringify({ ...original, alg }))}.${sample[1]}.${sample[2]}`
        }
      }
    }
  )

/** RFC 7797 unencoded payloads: `b64` of every value, with and without `crit`, payload raw or encoded. */
const b64False = (m: Material): fc.Arbitrary<string> =>
  fc.tuple(
    pickSigner(m),
    fc.constantFrom<unknown>(false, "false", 0, null, true, "true", [], {}),
    fc.constantFrom<unknown>(undefined, ["b64"], ["b64", "x"], "b64"),
    fc.boolean()
  ).map(([signer, b64, crit, rawPayload]) => {
    const alg = signer.algorithms[0]!
    const header = b64u(JSON.stringify({ alg, kid: signer.kid, b64, ...(crit === undefined ? {} : { crit }) }))
    const claims = JSON.stringify(goodClaims(m))
    // with b64 false the signing input is the header and the payload bytes as they are
    const payload = rawPayload ? claims : b64u(claims)
    const signature = b64u(signWith(signer.privateKey, alg, `${header}.${payload}`))
    return `${header}.${payload}.${signature}`
  })

/** `crit` of every shape, with or without the extension it names, validly signed. */
const crit = (m: Material): fc.Arbitrary<string> =>
  fc.tuple(
    pickSigner(m),
    fc.constantFrom<unknown>(["exp"], [], ["x"], ["x", "y"], "x", null, [1], {}, [""], ["alg"]),
    fc.boolean()
  ).map(([signer, value, withExtension]) =>
    compact(
      JSON.stringify({ alg: signer.algorithms[0], kid: signer.kid, crit: value, ...(withExtension ? { x: 1 } : {}) }),
      JSON.stringify(goodClaims(m)),
      signedBy(signer)
    )
  )

/** Good claims signed by a key nobody published, under a published kid, another kid or none. */
const otherKeys = (m: Material): fc.Arbitrary<string> =>
  fc.oneof(
    fc.constantFrom(...m.forgeries),
    fc.tuple(fc.constantFrom(...m.strangers), pickSigner(m), fc.nat(2)).map(([stranger, victim, how]) => {
      const alg = stranger.algorithms[0]!
      const header = how === 0
        ? { alg, kid: victim.kid }
        : how === 1
        ? { alg }
        : { alg, kid: stranger.kid }
      return compact(JSON.stringify(header), JSON.stringify(goodClaims(m)), signedBy(stranger))
    }),
    // keys named by the token itself (jwk, jku, x5u, x5c): the stranger's own key, offered in the header
    fc.tuple(
      fc.constantFrom(...m.strangers),
      pickSigner(m),
      fc.subarray(["jwk", "jku", "x5u", "x5c"], { minLength: 1 })
    )
      .map(([stranger, victim, members]) => {
        const offered: Record<string, unknown> = {
          jwk: stranger.jwk,
          jku: "https://evil.example/jwks.json",
          x5u: "https://evil.example/cert.pem",
          x5c: [(stranger.publicKey.export({ type: "spki", format: "der" }) as Buffer).toString("base64")]
        }
        const header = {
          alg: stranger.algorithms[0],
          kid: victim.kid,
          ...Object.fromEntries(members.map((name) => [name, offered[name]]))
        }
        return compact(JSON.stringify(header), JSON.stringify(goodClaims(m)), signedBy(stranger))
      }),
    // a published key's token with the kid of another published key
    fc.tuple(pickSigner(m), pickSigner(m)).map(([signer, other]) =>
      compact(
        JSON.stringify({ alg: signer.algorithms[0], kid: other.kid }),
        JSON.stringify(goodClaims(m)),
        signedBy(signer)
      )
    )
  )

/** ECDSA's second valid signature (r, n - s): a different token string for the same signed claims. */
const p256Order = BigInt("0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551")
export const malleate = (token: string): string => {
  const [header, payload, signature] = token.split(".")
  const bytes = Buffer.from(signature!, "base64url")
  const s = BigInt(`0x${bytes.subarray(32).toString("hex")}`)
  const flipped = Buffer.from((p256Order - s).toString(16).padStart(64, "0"), "hex")
  return `${header}.${payload}.${b64u(Buffer.concat([bytes.subarray(0, 32), flipped]))}`
}

const ecdsaMalleated = (m: Material): fc.Arbitrary<string> =>
  fc.tuple(fc.constantFrom(...m.published.filter((s) => s.algorithms.includes("ES256"))), fc.nat(1000)).map((
    [signer, n]
  ) =>
    malleate(
      compact(JSON.stringify({ alg: "ES256", kid: signer.kid }), JSON.stringify(goodClaims(m, { n })), signedBy(signer))
    )
  )

/** Tokens around the 16 KiB cap, validly signed. */
const sizeEdge = (m: Material): fc.Arbitrary<string> =>
  fc.tuple(
    pickSigner(m),
    fc.integer({ min: -40, max: 40 }),
    fc.constantFrom(16 * 1024, 16 * 1024, 16 * 1024, 64 * 1024)
  ).map(
    ([signer, delta, target]) => {
      const base = goodToken(m, signer)
      // each padding character adds 4/3 of a character to the token
      const padding = Math.max(0, Math.floor(((target - base.length + delta) * 3) / 4) - 12)
      return compact(
        JSON.stringify({ alg: signer.algorithms[0], kid: signer.kid }),
        JSON.stringify(goodClaims(m, { pad: "p".repeat(padding) })),
        signedBy(signer)
      )
    }
  )

/** Valid tokens with varied optional claims: the control group, which must be accepted. */
const valid = (m: Material): fc.Arbitrary<string> =>
  fc.constantFrom(...m.published.filter((signer) => signer.algorithms.some((alg) => m.algorithms.includes(alg))))
    .chain((signer) =>
      fc.tuple(
        fc.constantFrom(...signer.algorithms.filter((alg) => m.algorithms.includes(alg))),
        fc.record({
          sub: fc.string({ maxLength: 20 }),
          scope: fc.string({ maxLength: 20 }),
          groups: fc.array(fc.string({ maxLength: 8 }), { maxLength: 3 }),
          nonce: fc.string({ maxLength: 8 }),
          name: fc.string({ unit: "grapheme", maxLength: 10 })
        }, { requiredKeys: [] }),
        fc.integer({ min: 1, max: 10 ** 6 })
      ).map(([alg, extra, lifetime]) =>
        compact(
          JSON.stringify({ alg, kid: signer.kid, typ: "JWT" }),
          JSON.stringify(goodClaims(m, { ...extra, exp: m.now + 60 + lifetime })),
          signedBy(signer, alg)
        )
      )
    )

const validTokens = (m: Material): ReadonlyArray<string> => [
  ...m.samples,
  ...m.published.map((signer) => goodToken(m, signer))
]

/** Every token category: its name and its generator. */
export const tokenGenerators = {
  "random bytes": () => randomBytes(),
  "truncated": truncated,
  "re-encoded": reencoded,
  "huge numbers": hugeNumbers,
  "deep nesting": deepNesting,
  "duplicate keys": duplicateKeys,
  "wrong types": wrongTypes,
  "unicode kid": unicodeKid,
  "alg swap": algSwap,
  "b64 false": b64False,
  "crit": crit,
  "other keys": otherKeys,
  "ecdsa malleated": ecdsaMalleated,
  "size edge": sizeEdge,
  "valid": valid
} satisfies Record<string, (m: Material) => fc.Arbitrary<string>>

export const tokenCategories = (m: Material): ReadonlyArray<TokenCategory> =>
  Object.entries(tokenGenerators).map(([name, make]) => ({ name, arbitrary: make(m) }))

// --- key set categories --------------------------------------------------------------------------------------------

const realMember = (m: Material, name: "n" | "e" | "x" | "y" | "crv") =>
  m.published.concat(m.strangers).map((signer) => signer.jwk[name]).filter((v): v is string => typeof v === "string")

/** A member value for a JWK: real values, cut ones, random base64url, wrong types. */
const memberValue = (m: Material, name: "n" | "e" | "x" | "y") =>
  fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...realMember(m, name)) },
    {
      weight: 2,
      arbitrary: fc.tuple(fc.constantFrom(...realMember(m, name)), fc.nat()).map(([v, at]) => v.slice(0, at % v.length))
    },
    { weight: 2, arbitrary: base64Urlish(700) },
    {
      weight: 1,
      arbitrary: fc.constantFrom("AQAB", "AQ", "Aw", "AAEAAQ", "AQAC", "", "_w", "A".repeat(8193), "AQAB==", "+/+/")
    },
    { weight: 1, arbitrary: anyValue }
  )

const jwkish = (m: Material): fc.Arbitrary<unknown> =>
  fc.oneof(
    { weight: 1, arbitrary: anyValue },
    { weight: 2, arbitrary: fc.constantFrom(...m.published.concat(m.strangers).map((s) => s.jwk as unknown)) },
    {
      weight: 6,
      arbitrary: fc.record({
        kty: fc.oneof(fc.constantFrom("RSA", "EC", "OKP", "oct", "rsa", "", "RSA "), anyValue),
        crv: fc.oneof(fc.constantFrom("P-256", "P-384", "P-521", "Ed25519", "X25519", "Ed448", "secp256k1"), anyValue),
        kid: fc.oneof(fc.constantFrom("rsa-1", "ec-1", "dup", "dup"), oddString, anyValue),
        alg: fc.oneof(fc.constantFrom(...swapAlgs), anyValue),
        use: fc.oneof(fc.constantFrom("sig", "enc", "SIG", ""), anyValue),
        key_ops: fc.oneof(
          fc.constantFrom(["verify"], ["sign"], ["encrypt"], [], ["verify", "verify"]),
          fc.array(fc.string({ maxLength: 8 }), { maxLength: 20 }),
          anyValue
        ),
        n: memberValue(m, "n"),
        e: memberValue(m, "e"),
        x: memberValue(m, "x"),
        y: memberValue(m, "y"),
        d: base64Urlish(40),
        k: base64Urlish(40),
        x5c: fc.array(base64Urlish(40), { maxLength: 2 }),
        x5u: fc.constant("https://evil.example/cert"),
        jku: fc.constant("https://evil.example/jwks")
      }, { requiredKeys: [] })
    }
  )

/** A value where a key set should be: mostly `{ keys: [...] }`, with junk around and inside. */
export const keySetCategory = (m: Material): fc.Arbitrary<unknown> =>
  fc.oneof(
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 4 }) },
    { weight: 1, arbitrary: fc.record({ keys: anyValue }) },
    { weight: 6, arbitrary: fc.array(jwkish(m), { maxLength: 12 }).map((keys) => ({ keys })) },
    {
      weight: 1,
      arbitrary: fc.tuple(jwkish(m), fc.integer({ min: 99, max: 102 })).map(([key, count]) => ({
        keys: Array.from({ length: count }, () => key)
      }))
    },
    {
      weight: 1,
      arbitrary: fc.tuple(fc.array(jwkish(m), { maxLength: 4 }), fc.constantFrom(...m.published)).map((
        [keys, good]
      ) => ({ keys: [...keys, good.jwk], extra: { nested: [1, 2, { deep: true }] } }))
    },
    {
      weight: 1,
      arbitrary: fc.tuple(depth, fc.constantFrom("array" as const, "object" as const)).map(([n, kind]) => ({
        keys: [JSON.parse(nested(n, kind))]
      }))
    }
  )

/** An HTTP answer where a key set should be: status, body (text or bytes) and a content-length that may lie. */
export interface Body {
  readonly status: number
  readonly body: string | Uint8Array
  readonly contentLength: string | undefined
}

const validJwksText = (m: Material) => JSON.stringify({ keys: m.published.map((signer) => signer.jwk) })

export const bodyCategory = (m: Material): fc.Arbitrary<Body> =>
  fc.tuple(
    fc.oneof(
      { weight: 6, arbitrary: fc.constant(200) },
      { weight: 1, arbitrary: fc.constantFrom(201, 204, 206, 301, 302, 304, 401, 404, 429, 500, 503) }
    ),
    fc.oneof(
      { weight: 2, arbitrary: fc.constant<string | Uint8Array>(validJwksText(m)) },
      { weight: 2, arbitrary: keySetCategory(m).map((value): string | Uint8Array => stringify(value)) },
      { weight: 2, arbitrary: fc.uint8Array({ maxLength: 600 }) },
      { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 300 }) },
      {
        weight: 2,
        arbitrary: fc.tuple(depth, fc.constantFrom("array" as const, "object" as const), fc.nat(2)).map((
          [n, kind, where]
        ): string =>
          where === 0 ? nested(n, kind) : where === 1 ? `{"keys":${nested(n, kind)}}` : `{"keys":[${nested(n, kind)}]}`
        )
      },
      {
        weight: 1,
        arbitrary: fc.constantFrom<string | Uint8Array>(
          `\ufeff${validJwksText(m)}`,
          Buffer.from(validJwksText(m), "utf16le"),
          new Uint8Array([0xff, 0xfe, 0x7b, 0x7d]),
          new Uint8Array([0x7b, 0x22, 0x6b, 0xc3, 0x28, 0x22, 0x3a, 0x5b, 0x5d, 0x7d]), // invalid UTF-8 in a key
          `{"keys":[],"keys":${validJwksText(m).slice(8, -1)}}`,
          `{"__proto__":{"keys":[]},"keys":[]}`,
          `{"keys":[${hugeNumberList()}]}`,
          `{"keys": ${JSON.stringify("x".repeat(300_000))}}`,
          validJwksText(m).padEnd(512 * 1024, " "),
          validJwksText(m).padEnd(512 * 1024 + 1, " "),
          `{"keys":[],"pad":"${"x".repeat(600_000)}"}`,
          "",
          "null",
          "[]",
          "{}",
          "{\"keys\":null}",
          "{\"keys\":{}}",
          "{\"keys\":\"[]\"}",
          "{\"keys\":[]}"
        )
      }
    ),
    fc.oneof(
      { weight: 4, arbitrary: fc.constant<"correct" | string | undefined>("correct") },
      { weight: 2, arbitrary: fc.constant(undefined) },
      { weight: 1, arbitrary: fc.constantFrom("0", "10", "-1", "abc", "1e9", "99999999999999999999", " 12 ", "") }
    )
  ).map(([status, body, length]) => ({
    status,
    body,
    contentLength: length === "correct" ? String(Buffer.byteLength(body)) : length
  }))

/** `JSON.stringify`, or a stand-in for a value too deep for it (it recurses, and overflows the stack). */
const stringify = (value: unknown): string => {
  try {
    return JSON.stringify(value) ?? ""
  } catch {
    return `{"keys":[${nested(10_000, "array")}]}`
  }
}

const hugeNumberList = () => ["1e400", "-1e400", "9007199254740993", "1e-400"].join(",")
