import { describe, expect, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/TestClock"
import { SignJWT } from "jose"
import { createHmac, generateKeyPairSync, randomBytes } from "node:crypto"
import * as Oidc from "../../src/providers/Oidc.js"
import * as SharedSecret from "../../src/providers/SharedSecret.js"
import * as FakeIdp from "../../src/testing/FakeIdp.js"
import * as TokenValidator from "../../src/TokenValidator.js"

const ISSUER = "https://auth.example.test"
const AUDIENCE = "orders-api"
const SECRET = "correct horse battery staple, 32+ bytes of it"
const SECRET_64 = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"

const refusal = <A, E extends { readonly _tag: string; readonly reason: string }, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.map(Effect.flip(effect), (error) => `${error._tag}:${error.reason}`)

const env = (vars: Record<string, string>) =>
  Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(vars)), { pathDelim: "_" }))

/** Signs an HMAC token on the Effect clock, as an app's own auth service would. */
const signHs = (
  claims: Record<string, unknown> = {},
  options: { readonly secret?: string | Uint8Array; readonly alg?: string } = {}
) =>
  Effect.gen(function*() {
    const now = Math.floor((yield* Clock.currentTimeMillis) / 1000)
    const secret = options.secret ?? SECRET
    const key = typeof secret === "string" ? new TextEncoder().encode(secret) : secret
    const payload = Object.fromEntries(
      Object.entries({ iss: ISSUER, aud: AUDIENCE, sub: "user-7", iat: now, exp: now + 900, ...claims }).filter(
        ([, value]) => value !== undefined
      )
    )
    return yield* Effect.promise(() =>
      new SignJWT(payload).setProtectedHeader({ alg: options.alg ?? "HS256", typ: "JWT" }).sign(key)
    )
  })

/** An OpenSSH public key's base64: its type, then a 32-byte key (and any further strings), each length-prefixed. */
const sshKey = (type: string, ...more: ReadonlyArray<string>): string => {
  const field = (bytes: Uint8Array) => Buffer.concat([Buffer.from([0, 0, 0, bytes.length]), bytes])
  return Buffer.concat([
    field(Buffer.from(type)),
    field(randomBytes(32)),
    ...more.map((text) => field(Buffer.from(text)))
  ]).toString("base64")
}

const make = (options: Partial<SharedSecret.Options> = {}) =>
  SharedSecret.make({ secret: Redacted.make(SECRET), issuer: ISSUER, audience: AUDIENCE, ...options })

describe("SharedSecret", () => {
  it.effect("validates an HS256 token and builds the principal", () =>
    Effect.gen(function*() {
      const validator = yield* make()
      const principal = yield* validator.validate(
        yield* signHs({ preferred_username: "bob", roles: ["ops"], scope: "orders:read" })
      )
      expect(principal.id).toBe("user-7")
      expect(principal.name).toBe("bob")
      expect(principal.scopes).toEqual(["orders:read"])
      expect(principal.tokenType).toBe("access")
      expect(principal.issuer).toBe(ISSUER)
      expect(principal.expiresAt).toEqual(new Date(900 * 1000))
      const byRoles = yield* make({ principal: { groups: "roles" } })
      expect((yield* byRoles.validate(yield* signHs({ roles: ["ops"] }))).groups).toEqual(["ops"])
    }))

  it.effect("takes the secret as bytes, and HS384 / HS512", () =>
    Effect.gen(function*() {
      const bytes = globalThis.crypto.getRandomValues(new Uint8Array(64))
      const validator = yield* make({ secret: bytes, algorithms: ["HS256", "HS384", "HS512"] })
      for (const alg of ["HS256", "HS384", "HS512"]) {
        expect((yield* validator.validate(yield* signHs({}, { secret: bytes, alg }))).id).toBe("user-7")
      }
      // The validator took a copy: the caller's buffer may change.
      const token = yield* signHs({}, { secret: new Uint8Array(bytes), alg: "HS512" })
      bytes.fill(0)
      expect((yield* validator.validate(token)).id).toBe("user-7")
    }))

  it.effect("refuses a token signed with another secret", () =>
    Effect.gen(function*() {
      const validator = yield* make()
      const forged = yield* signHs({}, { secret: "another secret, also long enough to pass" })
      expect(yield* refusal(validator.validate(forged))).toBe("TokenValidationError:InvalidSignature")
    }))

  it.effect("refuses an algorithm it does not allow, HMAC or not", () =>
    Effect.gen(function*() {
      const validator = yield* make()
      const hs512 = yield* signHs({}, { secret: SECRET_64, alg: "HS512" })
      expect(yield* refusal(validator.validate(hs512))).toBe("TokenValidationError:AlgorithmNotAllowed")
    }))

  it.effect("algorithm confusion: an RS256 token to an HS validator, an HS256 token to an RS validator", () =>
    Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      const hs = yield* make()
      const rsToken = yield* idp.sign({ iss: ISSUER, aud: AUDIENCE })
      expect(yield* refusal(hs.validate(rsToken))).toBe("TokenValidationError:AlgorithmNotAllowed")
      // The classic attack: HMAC keyed with the RSA public key's published bytes.
      const jwks = JSON.stringify(yield* idp.jwks)
      const hsToken = yield* signHs({ iss: idp.issuer, aud: idp.audience }, { secret: jwks })
      const rs = yield* Effect.scoped(
        Effect.flatMap(
          Oidc.make({ issuer: idp.issuer, audience: idp.audience, jwksUri: idp.jwksUri }),
          (validator) => refusal(validator.validate(hsToken))
        )
      )
      expect(rs).toBe("TokenValidationError:AlgorithmNotAllowed")
    }).pipe(Effect.provide(FakeIdp.layerTest())))

  it.effect("checks issuer, audience and expiry as the validator does", () =>
    Effect.gen(function*() {
      const validator = yield* make()
      expect(yield* refusal(validator.validate(yield* signHs({ iss: "https://evil.example" })))).toBe(
        "TokenValidationError:IssuerMismatch"
      )
      expect(yield* refusal(validator.validate(yield* signHs({ aud: "billing-api" })))).toBe(
        "TokenValidationError:AudienceMismatch"
      )
      const token = yield* signHs()
      yield* TestClock.adjust("16 minutes")
      expect(yield* refusal(validator.validate(token))).toBe("TokenValidationError:Expired")
    }))

  it.effect("refuses a short secret, a non-HMAC algorithm and a missing audience with a ConfigError", () =>
    Effect.gen(function*() {
      const path = (options: Partial<SharedSecret.Options>) =>
        Effect.map(Effect.flip(make(options)), (error) => error._op === "InvalidData" ? error.path : error._op)
      expect(yield* path({ secret: Redacted.make("x".repeat(31)) })).toEqual(["secret"])
      // Each algorithm's least length (RFC 7518, section 3.2): one byte short is refused for its length (random bytes,
      // which no other rule refuses), that length is taken.
      for (const [alg, minBytes] of [["HS256", 32], ["HS384", 48], ["HS512", 64]] as const) {
        const short = yield* Effect.flip(make({ secret: new Uint8Array(randomBytes(minBytes - 1)), algorithms: [alg] }))
        expect(short._op === "InvalidData" && short.message).toContain(
          `at least ${minBytes} bytes, got ${minBytes - 1}`
        )
        yield* make({ secret: new Uint8Array(randomBytes(minBytes)), algorithms: [alg] })
      }
      expect(yield* path({ secret: Redacted.make(SECRET), algorithms: ["HS256", "HS512"] })).toEqual(["secret"])
      expect(yield* path({ secret: new Uint8Array(0) })).toEqual(["secret"])
      expect(yield* path({ algorithms: ["RS256" as "HS256"] })).toEqual(["algorithms"])
      expect(yield* path({ algorithms: [] })).toEqual(["algorithms"])
      expect(yield* path({ algorithms: 5 } as unknown as Partial<SharedSecret.Options>)).toEqual(["algorithms"])
      expect(yield* path({ audience: undefined })).toEqual(["audience"])
      expect(yield* path({ issuer: "" })).toEqual(["issuer"])
      // The error never shows the secret.
      const error = yield* Effect.flip(make({ secret: Redacted.make("hunter2") }))
      expect(String(error)).not.toContain("hunter2")
      expect(error._op === "InvalidData" && error.message).toContain("at least 32 bytes, got 7")
    }))

  it.effect("refuses a secret that is a pattern of at most 4 bytes repeated (a buffer never filled) or white space, whatever its length", () =>
    Effect.gen(function*() {
      for (
        const secret of [
          new Uint8Array(32),
          new Uint8Array(64).fill(0x41),
          Redacted.make("ab".repeat(32)),
          Redacted.make("€".repeat(32)),
          Redacted.make("abcd".repeat(8)),
          // White space around it is not part of the pattern (a line ending in a file or a variable), even where the
          // pattern alone is shorter than the least secret; white space alone is no secret either.
          Redacted.make(`${"a".repeat(64)}\r\n`),
          Redacted.make(`${"a".repeat(31)}\n`),
          Redacted.make(" ".repeat(64)),
          Redacted.make(`\uFEFF${" ".repeat(40)}`),
          Redacted.make("\t\n".repeat(32)),
          // White space as JavaScript's trim sees it: a no-break space, a byte order mark anywhere around it, the
          // ideographic space.
          Redacted.make(`${"a".repeat(64)}\u00a0`),
          Redacted.make(` \uFEFF${"a".repeat(64)}\uFEFF`),
          Redacted.make("\u00a0\u3000".repeat(8)),
          // In quotes, as an env file read by a tool that keeps them hands it over.
          Redacted.make(`"${"a".repeat(40)}"`),
          Redacted.make(` '${"ab".repeat(20)}'\n`)
        ]
      ) {
        const error = yield* Effect.flip(make({ secret, algorithms: ["HS256"] }))
        expect(error._op === "InvalidData" && [error.path, error.message]).toEqual([
          ["secret"],
          "the secret is a pattern of at most 4 bytes repeated: anyone could guess it"
        ])
      }
      // A longer pattern is past what this check judges (no check of bytes can measure entropy).
      yield* make({ secret: Redacted.make("abcde".repeat(7)) })
    }))

  it.effect("a JSON secret is judged by the JWKs in it, a few levels down, and never dies however large", () =>
    Effect.gen(function*() {
      // JSON that holds no JWK is a secret: an array of words, an array of numbers.
      yield* make({ secret: Redacted.make(JSON.stringify(["correct", "horse", "battery", "staple", "and", "more"])) })
      yield* make({ secret: Redacted.make(JSON.stringify(Array.from({ length: 40 }, (_, i) => i))) })
      // A huge array (past what a spread into a call takes): a secret or a ConfigError, never a defect.
      const huge = JSON.stringify(Array.from({ length: 300_000 }, (_, i) => i % 251))
      const exit = yield* Effect.exit(make({ secret: Redacted.make(huge) }))
      expect(Exit.isSuccess(exit) || Cause.isFailType(exit.cause)).toBe(true)
    }))

  it.effect("refuses published key material as the secret: a public key (PEM, DER, SSH) or a JWK", () =>
    Effect.gen(function*() {
      // RFC 8725, section 2.1: an IdP's public key moved into JWT_SECRET would let anyone sign HS256 tokens with it.
      const { publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 })
      const ec = generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey
      const pem = publicKey.export({ type: "spki", format: "pem" }) as string
      const spkiBase64 = publicKey.export({ type: "spki", format: "der" }).toString("base64")
      // A PEM body without its armor: base64 lines, the last one padded.
      const ecPemBody = (ec.export({ type: "spki", format: "pem" }) as string).split("\n")
        .filter((line) => line.length > 0 && !line.startsWith("-----")).join("\n")
      const forged = yield* signHs({}, { secret: pem })
      const secrets: ReadonlyArray<Redacted.Redacted<string> | Uint8Array> = [
        Redacted.make(pem),
        Redacted.make(`\n${publicKey.export({ type: "pkcs1", format: "pem" })}`),
        Redacted.make(JSON.stringify(ec.export({ format: "jwk" }))),
        Redacted.make(JSON.stringify({ keys: [publicKey.export({ format: "jwk" })] })),
        // A set's keys copied alone, and a set under jwks, as client metadata holds it (RFC 7591).
        Redacted.make(JSON.stringify([publicKey.export({ format: "jwk" })], null, 2)),
        Redacted.make(JSON.stringify({ client_id: "c", jwks: { keys: [ec.export({ format: "jwk" })] } })),
        // Deeper: a Vault `kv get -format=json` answer, `terraform output -json`; and a JWK kept as a JSON string.
        Redacted.make(
          JSON.stringify({ request_id: "r", data: { data: { keys: [publicKey.export({ format: "jwk" })] } } })
        ),
        Redacted.make(JSON.stringify({ jwks: { type: "object", value: { keys: [ec.export({ format: "jwk" })] } } })),
        Redacted.make(JSON.stringify(JSON.stringify(ec.export({ format: "jwk" })))),
        Redacted.make(`ssh-ed25519 ${sshKey("ssh-ed25519")} user@host`),
        new Uint8Array(publicKey.export({ type: "spki", format: "der" })),
        new Uint8Array(publicKey.export({ type: "pkcs1", format: "der" })),
        // Keycloak shows a realm's public key as base64 DER without PEM armor; an x5c entry is a certificate so.
        Redacted.make(publicKey.export({ type: "spki", format: "der" }).toString("base64")),
        Redacted.make(`${ec.export({ type: "spki", format: "der" }).toString("base64url")}\n`),
        // A PEM body without its armor, wrapped at 64 characters (CRLF): as predictable as the PEM itself.
        Redacted.make(publicKey.export({ type: "spki", format: "der" }).toString("base64").replace(/.{64}/g, "$&\r\n")),
        // A JWK saved with a byte order mark; OpenSSH's security-key and certificate key types.
        Redacted.make(`\uFEFF${JSON.stringify(ec.export({ format: "jwk" }))}`),
        Redacted.make(`sk-ssh-ed25519@openssh.com ${sshKey("sk-ssh-ed25519@openssh.com", "ssh:")} user@host`),
        Redacted.make(`ssh-ed25519-cert-v01@openssh.com ${sshKey("ssh-ed25519-cert-v01@openssh.com")}`),
        // An authorized_keys line with options first, a tab between the fields; RFC 4716's file (`ssh-keygen -e`).
        Redacted.make(`restrict,from="10.0.0.0/8" ssh-ed25519\t${sshKey("ssh-ed25519")}`),
        Redacted.make(`# deploy keys\nssh-ed25519  \t${sshKey("ssh-ed25519")} ci@example\n`),
        Redacted.make(
          `---- BEGIN SSH2 PUBLIC KEY ----\n${sshKey("ssh-ed25519")}\n---- END SSH2 PUBLIC KEY ----\n`
        ),
        // The same in quotes, as an env file read by a tool that keeps them (`docker --env-file`) hands it over.
        Redacted.make(`"${publicKey.export({ type: "spki", format: "der" }).toString("base64")}"`),
        Redacted.make(` '${publicKey.export({ type: "spki", format: "der" }).toString("base64")}'\n`),
        Redacted.make(`'${JSON.stringify(ec.export({ format: "jwk" }))}'`),
        Redacted.make(`"ssh-ed25519 ${sshKey("ssh-ed25519")}"`),
        // Base64 DER inside JSON: Keycloak's realm endpoint answer (where that form comes from), a Vault answer.
        Redacted.make(JSON.stringify({ realm: "main", public_key: spkiBase64, "tokens-not-before": 0 })),
        Redacted.make(JSON.stringify({ request_id: "r", data: { data: { public_key: spkiBase64 } } })),
        // A PEM body kept on one line of an env file, its line breaks written as \n, bare or quoted.
        Redacted.make(spkiBase64.replace(/.{64}/g, "$&\\n")),
        Redacted.make(`"${spkiBase64.replace(/.{64}/g, "$&\\n")}"`),
        // Padded base64 (a P-256 key's ends in "==") with the last line's break after it: in JSON, or escaped.
        Redacted.make(JSON.stringify({ data: { public_key: `${ecPemBody}\n` } })),
        Redacted.make(`${ecPemBody.replace(/\n/g, "\\n")}\\n`),
        Redacted.make(`"${ecPemBody.replace(/\n/g, "\\n")}\\n"`),
        // A JWK set in a larger answer: `terraform output -json` with a thousand-entry output before it.
        Redacted.make(JSON.stringify({
          allowed_cidrs: { value: Array.from({ length: 1_000 }, (_, i) => `10.${i >> 8}.${i & 255}.0/24`) },
          jwks: { value: { keys: [publicKey.export({ format: "jwk" })] } }
        }))
      ]
      for (const secret of secrets) {
        const error = yield* Effect.flip(make({ secret }))
        expect(error._op === "InvalidData" && [error.path, error.message]).toEqual([
          ["secret"],
          expect.stringMatching(/^the secret is .+: key material that is published, so anyone could sign$/)
        ])
      }
      // A symmetric JWK is a secret, not published: its k is the secret to give.
      for (
        const jwk of [
          { kty: "oct", k: "c2VjcmV0" },
          { keys: [{ kty: "oct", k: "c2VjcmV0" }] },
          [{ kty: "oct", k: "c2VjcmV0" }],
          { jwks: { keys: [{ kty: "oct", k: "c2VjcmV0" }] } }
        ]
      ) {
        const oct = yield* Effect.flip(make({ secret: Redacted.make(JSON.stringify(jwk)) }))
        expect(oct._op === "InvalidData" && oct.message).toContain("a symmetric JWK: give its k")
      }
      // Base64 text that is not a key (openssl rand -base64 48) is a secret, as is a passphrase with "word AAAA" in it.
      yield* make({ secret: Redacted.make(randomBytes(48).toString("base64")) })
      yield* make({ secret: Redacted.make(`"${randomBytes(48).toString("base64")}"`) })
      yield* make({ secret: Redacted.make("correct horse AAAA battery staple, and 32 bytes of it") })
      // A secret that merely mentions such things, or is JSON of another shape, is a secret.
      const validator = yield* make({ secret: Redacted.make(`{"password":"${SECRET}"}`) })
      expect(yield* refusal(validator.validate(forged))).toBe("TokenValidationError:InvalidSignature")
    }))

  it.effect("leaves no copy of a byte secret in Node's shared Buffer pool (the one it keeps is zeroed)", () =>
    Effect.gen(function*() {
      // Made outside the pool (randomBytes(64) would be cut from it).
      const expected = new Uint8Array(64)
      crypto.getRandomValues(expected)
      const given = new Uint8Array(expected)
      yield* make({ secret: given })
      given.fill(0)
      // The slab small Buffers are cut from: any small Buffer's `.buffer` is all of it. Searched without copying.
      const slab = new Uint8Array(Buffer.allocUnsafe(8).buffer)
      expect(slab.byteLength).toBe(Buffer.poolSize)
      const found = slab.some((_, i) => expected.every((byte, j) => slab[i + j] === byte))
      expect(found).toBe(false)
    }))

  it.effect("refuses the shortest public keys in base64 DER as the secret: Ed25519 and X25519 (44 bytes, 60 characters)", () =>
    Effect.gen(function*() {
      for (const type of ["ed25519", "x25519"] as const) {
        const der = generateKeyPairSync(type as "ed25519").publicKey.export({ type: "spki", format: "der" })
        for (const text of [der.toString("base64"), der.toString("base64url")]) {
          const error = yield* Effect.flip(make({ secret: Redacted.make(text) }))
          expect(error._op === "InvalidData" && error.path, `${type} ${text}`).toEqual(["secret"])
          expect(error._op === "InvalidData" && error.message).toBe(
            "the secret is a DER public key or certificate in base64: key material that is published, so anyone could sign"
          )
        }
      }
    }))

  it.effect("keyResolver refuses an empty list of algorithms with a ConfigError", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(SharedSecret.keyResolver(Redacted.make(SECRET), []))
      expect(error._op === "InvalidData" && error.path).toEqual(["algorithms"])
    }))

  it.effect("a signature of the wrong length is refused, as a bad signature, not a crash", () =>
    Effect.gen(function*() {
      const resolver = yield* SharedSecret.keyResolver(Redacted.make(SECRET), ["HS256"])
      const found = yield* resolver.get(undefined, "HS256")
      expect(found._tag).toBe("Some")
      const key = found._tag === "Some" ? found.value : undefined
      const data = new TextEncoder().encode("header.payload")
      const signature = createHmac("sha256", SECRET).update(data).digest()
      expect(key?.verify("HS256", data, signature)).toBe(true)
      expect(key?.verify("HS256", data, signature.subarray(0, 16))).toBe(false)
      expect(key?.verify("HS256", data, Buffer.concat([signature, signature]))).toBe(false)
      // End to end: a token whose signature was cut short (to 24 bytes, canonical base64url).
      const validator = yield* make()
      const token = yield* signHs()
      expect(yield* refusal(validator.validate(token.slice(0, -11)))).toBe("TokenValidationError:InvalidSignature")
    }))

  describe("layerConfig", () => {
    it.effect("reads JWT_* from the environment", () =>
      Effect.gen(function*() {
        const live = SharedSecret.layerConfig().pipe(
          Layer.provide(env({
            JWT_SECRET: SECRET_64,
            JWT_ISSUER: ISSUER,
            JWT_AUDIENCE: `billing-api, ${AUDIENCE}`,
            JWT_ALGORITHMS: "HS256,HS512"
          }))
        )
        const hs512 = yield* signHs({}, { secret: SECRET_64, alg: "HS512" })
        const hs384 = yield* signHs({}, { secret: SECRET_64, alg: "HS384" })
        yield* Effect.gen(function*() {
          expect((yield* TokenValidator.validate(hs512)).id).toBe("user-7")
          expect(yield* refusal(TokenValidator.validate(hs384))).toBe("TokenValidationError:AlgorithmNotAllowed")
        }).pipe(Effect.provide(live))
      }))

    it.effect("an empty pair of quotes is a refused value; a quote on one side only is part of the value", () =>
      Effect.gen(function*() {
        const vars = { JWT_SECRET: SECRET, JWT_ISSUER: ISSUER, JWT_AUDIENCE: AUDIENCE }
        const build = (more: Record<string, string>) =>
          Effect.provide(
            TokenValidator.TokenValidator,
            SharedSecret.layerConfig().pipe(Layer.provide(env({ ...vars, ...more })))
          )
        // `JWT_AUDIENCE=""` read by a loader that keeps quotes: no audience at all, refused by name.
        for (const quotes of ["\"\"", "''"]) {
          const error = yield* Effect.flip(build({ JWT_AUDIENCE: quotes }))
          expect(error._op === "InvalidData" && error.path, quotes).toEqual(["JWT_AUDIENCE"])
        }
        // A secret that merely starts with a quote is a secret like any other.
        const secret = `"${SECRET}`
        const validator = yield* build({ JWT_SECRET: secret })
        expect((yield* validator.validate(yield* signHs({}, { secret }))).id).toBe("user-7")
      }))

    it.effect("fails with a ConfigError when a required variable is missing or bad", () =>
      Effect.gen(function*() {
        const build = (vars: Record<string, string>) =>
          Effect.flip(
            Effect.provide(TokenValidator.TokenValidator, SharedSecret.layerConfig().pipe(Layer.provide(env(vars))))
          )
        const all = { JWT_SECRET: SECRET, JWT_ISSUER: ISSUER, JWT_AUDIENCE: AUDIENCE }
        for (const name of Object.keys(all)) {
          const error = yield* build(Object.fromEntries(Object.entries(all).filter(([key]) => key !== name)))
          expect(ConfigError.isConfigError(error) && ConfigError.isMissingDataOnly(error)).toBe(true)
        }
        const badList = yield* build({ ...all, JWT_ALGORITHMS: "HS256,RS256" })
        expect(badList._op === "InvalidData" && badList.path).toEqual(["JWT_ALGORITHMS"])
        // A value the checks refuse is named by the variable to fix, not by the option in code.
        const short = yield* build({ ...all, JWT_SECRET: "too short" })
        expect(ConfigError.isConfigError(short) && short._op === "InvalidData" && short.path).toEqual(["JWT_SECRET"])
        const tooShortFor = yield* build({ ...all, JWT_SECRET: SECRET, JWT_ALGORITHMS: "HS256,HS512" })
        expect(tooShortFor._op === "InvalidData" && [tooShortFor.path, tooShortFor.message]).toEqual([
          ["JWT_SECRET"],
          `HS512 needs a secret of at least 64 bytes, got ${Buffer.byteLength(SECRET)}`
        ])
        // What an env file's loader may leave around it (a CRLF file's \r, the quotes docker --env-file keeps) would be
        // part of the key and refuse every token: refused at start, by name. So are quotes around a list's values.
        for (
          const vars of [{ JWT_SECRET: `${SECRET}\r` }, { JWT_SECRET: ` ${SECRET}` }, { JWT_SECRET: `"${SECRET}"` }, {
            JWT_AUDIENCE: `"${AUDIENCE}"`
          }]
        ) {
          const error = yield* build({ ...all, ...vars })
          expect(error._op === "InvalidData" && error.path, JSON.stringify(vars)).toEqual([Object.keys(vars)[0]])
        }
        const published = yield* build({
          ...all,
          JWT_SECRET: "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----"
        })
        expect(published._op === "InvalidData" && published.path).toEqual(["JWT_SECRET"])
        // Read from elsewhere (a name of the app's), the option keeps its name.
        const custom = yield* Effect.flip(
          Effect.provide(
            TokenValidator.TokenValidator,
            SharedSecret.layerConfig({
              secret: Config.redacted("APP_KEY"),
              issuer: Config.succeed(ISSUER),
              audience: Config.succeed(AUDIENCE)
            }).pipe(Layer.provide(env({ APP_KEY: "too short" })))
          )
        )
        expect(custom._op === "InvalidData" && custom.path).toEqual(["secret"])
      }))
  })
})
