/**
 * The fuzzers' targets and oracles, shared by `fuzz/run.ts` and `test/fuzz.test.ts`.
 *
 * Targets: `TokenValidator.validate` on two warm validators (one over the fake IdP, RS256; one over a key set of
 * RSA, RSA-PSS, P-256 and Ed25519 keys served by a fake HTTP client, allowing RS256, RS384, PS256, ES256, EdDSA,
 * Ed25519 and HS256), `Jwk.importKeySet` after `JsonWebKeySet` decoding, and `JwksSource.http` over a fake
 * HttpClient answering the generated body.
 *
 * The oracles are written from the specifications (RFC 7515, 7518, 7519, 8725 and this library's documented
 * limits), not from the code under test: an accepted token must be one that a careful reader of those documents
 * would accept, checked with `node:crypto` against the published keys. Any defect (a die, an interruption or a
 * thrown exception) is a violation too.
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import { FastCheck as fc } from "effect"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import { constants, createPublicKey, type KeyObject, verify as cryptoVerify } from "node:crypto"
import * as Jwk from "../src/Jwk.js"
import * as JwksCache from "../src/JwksCache.js"
import * as JwksSource from "../src/JwksSource.js"
import * as FakeIdp from "../src/testing/FakeIdp.js"
import * as TokenValidator from "../src/TokenValidator.js"
import {
  type Body,
  bodyCategory,
  goodToken,
  keySetCategory,
  makeKeys,
  type Material,
  tokenCategories,
  tokenGenerators
} from "./generators.js"

// --- the fixture ---------------------------------------------------------------------------------------------------

/** A validator and what an oracle needs to judge it. */
export interface Spec {
  readonly name: string
  readonly validator: TokenValidator.Service
  readonly issuer: string
  readonly audience: string
  readonly algorithms: ReadonlySet<string>
  readonly keys: ReadonlyArray<{ readonly jwk: Record<string, unknown>; readonly key: KeyObject }>
  readonly maxTokenBytes: number
}

export interface Fixture {
  readonly material: Material
  readonly specs: ReadonlyArray<Spec>
}

const multiIssuer = "https://fuzz.example.test"
const multiAudience = "fuzz-api"
const multiJwksUrl = `${multiIssuer}/.well-known/jwks.json`
const multiAlgorithms = ["RS256", "RS384", "PS256", "ES256", "EdDSA", "Ed25519", "HS256"] as const

const publicKeyOf = (jwk: Record<string, unknown>): KeyObject => createPublicKey({ key: jwk as never, format: "jwk" })

/** An HttpClient answering every request with one fixed key set. */
const serving = (body: string) =>
  HttpClient.make((request) =>
    Effect.succeed(
      HttpClientResponse.fromWeb(
        request,
        new Response(body, { status: 200, headers: { "content-type": "application/json" } })
      )
    )
  )

/**
 * Two warm validators and the material to fuzz them with. Built in a scope: the fake IdP, the caches and their
 * fibers live until it closes. Call it under the real clock (the material is dated with `Date.now()`).
 */
export const makeFixture: Effect.Effect<Fixture, never, Scope.Scope> = Effect.gen(function*() {
  const context = yield* Layer.build(FakeIdp.layerTest())
  const idp = Context.get(context, FakeIdp.FakeIdp)
  const idpClient = Context.get(context, HttpClient.HttpClient)
  const cacheOptions: JwksCache.Options = { strategy: "time", interval: Duration.days(1), backgroundRefresh: false }

  const idpSource = yield* Effect.orDie(
    Effect.provideService(JwksSource.http(idp.jwksUri), HttpClient.HttpClient, idpClient)
  )
  const idpCache = yield* Effect.orDie(JwksCache.make(idpSource, cacheOptions))
  const idpValidator = yield* Effect.orDie(
    TokenValidator.make(TokenValidator.fromCache(idpCache), { issuer: idp.issuer, audience: idp.audience })
  )

  const { published, strangers } = makeKeys()
  const multiJwks = JSON.stringify({ keys: published.map((signer) => signer.jwk) })
  const multiSource = yield* Effect.orDie(Effect.provideService(
    JwksSource.http(multiJwksUrl),
    HttpClient.HttpClient,
    serving(multiJwks)
  ))
  const multiCache = yield* Effect.orDie(JwksCache.make(multiSource, cacheOptions))
  // HS256 allowed over the key set, through a resolver that does not say what it verifies (`make` refuses it over
  // `fromCache`'s own): the key set must still verify no HMAC token.
  const unsaid = Object.assign(TokenValidator.fromCache(multiCache), { algorithms: undefined })
  const multiValidator = yield* Effect.orDie(TokenValidator.make(unsaid, {
    issuer: multiIssuer,
    audience: multiAudience,
    algorithms: multiAlgorithms
  }))

  const kid = yield* idp.currentKid
  const samples = [
    yield* idp.sign({ sub: "alice", scope: "read write", groups: ["users"] }),
    yield* idp.sign({ sub: "bob", nonce: "n-1" }, { expiresIn: "2 hours" }),
    yield* idp.sign({ client_id: idp.audience, aud: undefined, sub: "machine" }),
    yield* idp.sign({ sub: "carol" }, { kid: null })
  ]
  const forgeries = [
    yield* idp.sign({ sub: "mallory" }, { key: "unpublished", kid }),
    yield* idp.sign({ sub: "mallory" }, { key: "unpublished" }),
    yield* idp.sign({ sub: "mallory" }, { key: "unpublished", kid, algorithm: "ES256" })
  ]
  const material: Material = {
    now: Math.floor(Date.now() / 1000),
    issuer: multiIssuer,
    audience: multiAudience,
    algorithms: multiAlgorithms,
    published,
    strangers,
    samples,
    forgeries
  }
  // warm both caches, and check the samples pass (else every oracle below would be vacuous)
  for (const token of samples) yield* Effect.orDie(idpValidator.validate(token))
  for (const signer of published) yield* Effect.orDie(multiValidator.validate(goodToken(material, signer)))

  const idpJwks = (yield* idp.jwks).keys
  const specs: ReadonlyArray<Spec> = [
    {
      name: "fake IdP (RS256)",
      validator: idpValidator,
      issuer: idp.issuer,
      audience: idp.audience,
      algorithms: new Set(["RS256"]),
      keys: idpJwks.map((jwk) => ({ jwk, key: publicKeyOf(jwk) })),
      maxTokenBytes: 16 * 1024
    },
    {
      name: "multi-key set",
      validator: multiValidator,
      issuer: multiIssuer,
      audience: multiAudience,
      algorithms: new Set(multiAlgorithms),
      keys: published.map((signer) => ({ jwk: signer.jwk as Record<string, unknown>, key: signer.publicKey })),
      maxTokenBytes: 16 * 1024
    }
  ]
  return { material, specs }
})

// --- token oracle --------------------------------------------------------------------------------------------------

const utf8 = new TextDecoder("utf-8", { fatal: true })
const maxNumericDate = 253402300799

const parseObject = (segment: string): Record<string, unknown> | string => {
  let text: string
  try {
    text = utf8.decode(Buffer.from(segment, "base64url"))
  } catch {
    return "is not UTF-8"
  }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return "is not JSON"
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return "is not a JSON object"
  if (Object.hasOwn(value, "__proto__")) return "has a __proto__ member"
  return value as Record<string, unknown>
}

const familyOf = (jwk: Record<string, unknown>): ReadonlyArray<string> =>
  jwk.kty === "RSA"
    ? ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"]
    : jwk.kty === "EC"
    ? jwk.crv === "P-256" ? ["ES256"] : jwk.crv === "P-384" ? ["ES384"] : jwk.crv === "P-521" ? ["ES512"] : []
    : jwk.kty === "OKP" && jwk.crv === "Ed25519"
    ? ["EdDSA", "Ed25519"]
    : []

/** Whether a published key may verify `alg`: its type allows it, its own `alg` (if any) is it, and it is for signing. */
const keyAllows = (jwk: Record<string, unknown>, alg: string): boolean =>
  familyOf(jwk).includes(alg) && (jwk.alg === undefined || jwk.alg === alg) &&
  (jwk.use === undefined || jwk.use === "sig") &&
  (jwk.key_ops === undefined || (Array.isArray(jwk.key_ops) && jwk.key_ops.includes("verify")))

const hashOf = (alg: string) => alg.endsWith("256") ? "sha256" : alg.endsWith("384") ? "sha384" : "sha512"
const ecLength: Record<string, number> = { ES256: 64, ES384: 96, ES512: 132 }

/** RFC 7518 section 3: each algorithm's signature check, from node:crypto primitives. */
const verifies = (key: KeyObject, alg: string, data: Buffer, signature: Buffer): boolean => {
  try {
    // RFC 8017, 8.1.2 and 8.2.2, step 1: an RSA signature is exactly as long as the modulus (OpenSSL does not check
    // this for PSS).
    const modulusBits = key.asymmetricKeyDetails?.modulusLength
    if (modulusBits !== undefined && signature.length !== Math.ceil(modulusBits / 8)) return false
    if (alg.startsWith("RS")) return cryptoVerify(hashOf(alg), data, key, signature)
    if (alg.startsWith("PS")) {
      return cryptoVerify(hashOf(alg), data, {
        key,
        padding: constants.RSA_PKCS1_PSS_PADDING,
        saltLength: constants.RSA_PSS_SALTLEN_DIGEST
      }, signature)
    }
    if (alg.startsWith("ES")) {
      return signature.length === ecLength[alg] &&
        cryptoVerify(hashOf(alg), data, { key, dsaEncoding: "ieee-p1363" }, signature)
    }
    if (alg === "EdDSA" || alg === "Ed25519") return cryptoVerify(null, data, key, signature)
    return false
  } catch {
    return false
  }
}

const optionalString = (claims: Record<string, unknown>, name: string) =>
  !Object.hasOwn(claims, name) || typeof claims[name] === "string"

const optionalDate = (claims: Record<string, unknown>, name: string, now: number) =>
  !Object.hasOwn(claims, name) ||
  (typeof claims[name] === "number" && Number.isFinite(claims[name]) && (claims[name] as number) <= now)

/**
 * Why `input` must be refused by the validator of `spec` at `now` (seconds), or `undefined` when it is a good token.
 */
export const whyRefuse = (spec: Spec, input: string, now: number): string | undefined => {
  if (input.length > spec.maxTokenBytes) return "it is longer than the cap"
  const parts = input.split(".")
  if (parts.length !== 3 || !parts.every((part) => /^[A-Za-z0-9_-]+$/.test(part))) {
    return "it is not three non-empty base64url segments"
  }
  if (!parts.every((part) => Buffer.from(part, "base64url").toString("base64url") === part)) {
    return "a segment is not canonical base64url"
  }
  const header = parseObject(parts[0]!)
  if (typeof header === "string") return `its header ${header}`
  const alg = header.alg
  if (typeof alg !== "string" || !spec.algorithms.has(alg) || alg.startsWith("HS") || alg === "none") {
    return `alg ${JSON.stringify(alg)} is not allowed (or has no key set key)`
  }
  if (Object.hasOwn(header, "crit")) return "it has crit"
  if (Object.hasOwn(header, "b64") && header.b64 !== true) return "b64 is not true"
  if (Object.hasOwn(header, "kid") && typeof header.kid !== "string") return "kid is not a string"
  if (Object.hasOwn(header, "typ") && typeof header.typ !== "string") return "typ is not a string"
  const fitting = spec.keys.filter((key) =>
    (header.kid === undefined || key.jwk.kid === header.kid) && keyAllows(key.jwk, alg)
  )
  // without a kid, a key is chosen only when exactly one fits the alg
  if (header.kid === undefined && fitting.length !== 1) return "it has no kid and the alg fits several keys (or none)"
  const data = Buffer.from(`${parts[0]}.${parts[1]}`)
  const signature = Buffer.from(parts[2]!, "base64url")
  if (!fitting.some((key) => verifies(key.key, alg, data, signature))) {
    return "no published key for its kid and alg verifies its signature"
  }
  const claims = parseObject(parts[1]!)
  if (typeof claims === "string") return `its claims ${claims}`
  const exp = claims.exp
  if (typeof exp !== "number" || !Number.isFinite(exp)) return "exp is not a finite number"
  if (exp <= now) return "it has expired"
  if (exp > maxNumericDate) return "exp is beyond year 9999"
  if (!optionalDate(claims, "nbf", now)) return "nbf is not a past number"
  if (!optionalDate(claims, "iat", now)) return "iat is not a past number"
  if (claims.iss !== spec.issuer) return "iss is not the issuer"
  for (const name of ["sub", "client_id", "azp", "token_use"]) {
    if (!optionalString(claims, name)) return `${name} is not a string`
  }
  const aud = claims.aud
  if (
    Object.hasOwn(claims, "aud") &&
    !(typeof aud === "string" || (Array.isArray(aud) && aud.every((a) => typeof a === "string")))
  ) {
    return "aud is neither a string nor strings"
  }
  const audiences = aud !== undefined
    ? [aud].flat()
    : claims.client_id !== undefined
    ? [claims.client_id]
    : claims.azp !== undefined
    ? [claims.azp]
    : []
  if (!audiences.includes(spec.audience)) return "it is not for this audience"
  // Refresh tokens are never bearer credentials, and a marker of one decides whatever another says (documented at
  // `TokenValidator.classify`): a `token_use`, `token_type` or `type` of refresh, a `tokenName` of refresh_token, a
  // `tokenType` of refresh-token, or a `typ` claim of Refresh or Offline, in any case.
  for (const marker of [claims.token_use, claims.token_type, claims.type]) {
    if (typeof marker === "string" && marker.toLowerCase() === "refresh") return "it is a refresh token"
  }
  if (typeof claims.tokenName === "string" && claims.tokenName.toLowerCase() === "refresh_token") {
    return "it is a refresh token"
  }
  if (typeof claims.tokenType === "string" && claims.tokenType.toLowerCase() === "refresh-token") {
    return "it is a refresh token"
  }
  if (typeof claims.typ === "string" && ["refresh", "offline"].includes(claims.typ.toLowerCase())) {
    return "it is a refresh token"
  }
  return undefined
}

// --- key set oracles -----------------------------------------------------------------------------------------------

const bigOf = (text: string): bigint => {
  const hex = Buffer.from(text, "base64url").toString("hex")
  return hex.length === 0 ? 0n : BigInt(`0x${hex}`)
}

const bitLength = (value: bigint): number => value === 0n ? 0 : value.toString(2).length

/** Why `key` (imported from `raw`) should not have been imported, or `undefined`. */
const whyNotImport = (key: Jwk.Key, raw: ReadonlyArray<unknown>): string | undefined => {
  const jwk = key.jwk as unknown as Record<string, unknown>
  const source = raw.find((entry) =>
    typeof entry === "object" && entry !== null &&
    ["kty", "kid", "crv", "n", "e", "x", "y", "alg", "use"].every((name) =>
      (entry as Record<string, unknown>)[name] === jwk[name]
    )
  ) as Record<string, unknown> | undefined
  if (source === undefined) return "it matches no published entry"
  if (Object.hasOwn(source, "kty") && source.kty === "oct") return "it is symmetric"
  if (source.use !== undefined && source.use !== "sig") return `use is ${JSON.stringify(source.use)}`
  if (source.key_ops !== undefined && !(Array.isArray(source.key_ops) && source.key_ops.includes("verify"))) {
    return "key_ops lacks verify"
  }
  const family = familyOf(source)
  if (family.length === 0) {
    return `kty ${JSON.stringify(source.kty)} / crv ${JSON.stringify(source.crv)} is not supported`
  }
  const algorithms = Array.from(
    (key as unknown as { algorithms?: Iterable<string> }).algorithms ??
      (key as unknown as { imported: Map<string, unknown> }).imported.keys()
  )
  if (algorithms.length === 0) return "it may verify no algorithm"
  for (const alg of algorithms) {
    if (!family.includes(alg)) return `alg ${alg} does not fit kty ${String(source.kty)}`
    if (source.alg !== undefined && source.alg !== alg) return `alg ${alg} is not its alg ${String(source.alg)}`
  }
  if (source.kty === "RSA") {
    if (typeof source.n !== "string" || typeof source.e !== "string") return "n or e is missing"
    if (bitLength(bigOf(source.n)) < 2048) return `modulus of ${bitLength(bigOf(source.n))} bits`
    const e = bigOf(source.e)
    if (e < 3n || e % 2n === 0n || e >= 2n ** 256n) return `exponent ${e}`
  }
  const keyObject = (key as unknown as { keyObject?: KeyObject }).keyObject
  if (keyObject !== undefined) {
    if (keyObject.type !== "public") return `the imported key is ${keyObject.type}`
    const exported = keyObject.export({ format: "jwk" }) as Record<string, string>
    for (const name of ["n", "e", "x", "y"] as const) {
      if (exported[name] !== undefined && bigOf(exported[name]) !== bigOf(String(source[name]))) {
        return `the imported ${name} is not the published one`
      }
    }
  }
  return undefined
}

const decodeSet = Schema.decodeUnknownEither(Jwk.JsonWebKeySet)

// --- running -------------------------------------------------------------------------------------------------------

export interface Tally {
  /** Inputs generated and run. */
  inputs: number
  accepted: number
  /** Anything the oracles object to: defects, bad acceptances, wrong failures (the first 20 of `violationCount`). */
  readonly violations: Array<string>
  violationCount: number
  /** Valid tokens (by the oracle) that a validator refused: not a security problem, but a disagreement to look at. */
  readonly falseRejections: Array<string>
  /** The longest `JwksError` description seen (an error message grows with hostile input). */
  longestDescription: number
}

export const emptyTally = (): Tally => ({
  inputs: 0,
  accepted: 0,
  violations: [],
  violationCount: 0,
  falseRejections: [],
  longestDescription: 0
})

const excerpt = (input: unknown): string => {
  const text = typeof input === "string" ? input : (JSON.stringify(input) ?? String(input))
  return text.length > 160 ? `${text.slice(0, 120)}... (${text.length} chars)` : text
}

const note = (list: Array<string>, message: string, tally?: Tally) => {
  if (tally !== undefined && list === tally.violations) tally.violationCount++
  if (list.length < 20) list.push(message)
}

/** The failure of an exit, if it is one typed error and nothing else (no defect, no interruption). */
const typedFailure = (
  cause: Cause.Cause<unknown>
): { readonly ok: true; readonly error: unknown } | { readonly ok: false } =>
  Cause.isDie(cause) || Cause.isInterrupted(cause)
    ? { ok: false }
    : Cause.failureOption(cause).pipe((option) =>
      option._tag === "Some" ? { ok: true, error: option.value } : { ok: false }
    )

/** Any thrown exception (in building the effect, too) becomes a defect of the effect. */
const guarded = <A, E>(run: () => Effect.Effect<A, E>): Effect.Effect<Exit.Exit<A, E>> =>
  Effect.exit(Effect.suspend(run))

export const runToken = (fixture: Fixture, input: string, tally: Tally, category: string) =>
  Effect.gen(function*() {
    tally.inputs++
    for (const spec of fixture.specs) {
      const exit = yield* guarded(() => spec.validator.validate(input))
      const now = Date.now() / 1000
      const why = whyRefuse(spec, input, now)
      if (Exit.isSuccess(exit)) {
        tally.accepted++
        if (why !== undefined) {
          note(tally.violations, `[${category}] ${spec.name} accepted although ${why}: ${excerpt(input)}`, tally)
        }
        continue
      }
      const failure = typedFailure(exit.cause)
      if (!failure.ok) {
        note(
          tally.violations,
          `[${category}] ${spec.name} defect: ${Cause.pretty(exit.cause).slice(0, 300)} on ${excerpt(input)}`,
          tally
        )
        continue
      }
      const error = failure.error as { _tag?: string; reason?: string }
      if (error._tag !== "TokenValidationError") {
        note(
          tally.violations,
          `[${category}] ${spec.name} failed with ${error._tag} ${error.reason} on a warm cache`,
          tally
        )
      } else if (why === undefined) {
        note(
          tally.falseRejections,
          `[${category}] ${spec.name} refused (${error.reason}) a valid token: ${excerpt(input)}`
        )
      }
    }
  })

export const runKeySet = (value: unknown, tally: Tally, category: string) =>
  Effect.gen(function*() {
    tally.inputs++
    const decoded = decodeSet(value)
    if (decoded._tag === "Left") return
    const raw = decoded.right.keys
    const exit = yield* guarded(() => Jwk.importKeySet(decoded.right, "fuzz"))
    if (Exit.isFailure(exit)) {
      const failure = typedFailure(exit.cause)
      if (!failure.ok) {
        return note(
          tally.violations,
          `[${category}] importKeySet defect: ${Cause.pretty(exit.cause).slice(0, 300)}`,
          tally
        )
      }
      const error = failure.error as { _tag?: string; reason?: string }
      if (error._tag !== "JwksError" || !["InvalidShape", "EmptyKeySet"].includes(error.reason ?? "")) {
        note(tally.violations, `[${category}] importKeySet failed with ${error._tag} ${error.reason}`, tally)
      }
      return
    }
    tally.accepted++
    const set = exit.value
    if (raw.length > 100) note(tally.violations, `[${category}] a set of ${raw.length} keys was imported`, tally)
    if (set.keys.length + set.skipped !== raw.length) {
      note(
        tally.violations,
        `[${category}] ${set.keys.length} imported + ${set.skipped} skipped != ${raw.length}`,
        tally
      )
    }
    for (const key of set.keys) {
      const why = whyNotImport(key, raw)
      if (why !== undefined) {
        note(tally.violations, `[${category}] imported a key although ${why}: ${excerpt(key.jwk)}`, tally)
      }
    }
    for (const alg of ["RS256", "PS256", "ES256", "EdDSA"] as const) {
      for (
        const kid of [
          undefined,
          ...set.keys.map((key) => key.kid)
        ]
      ) {
        const picked = Jwk.select(set, kid, alg)
        if (picked !== undefined && (picked.kid !== kid && kid !== undefined)) {
          note(tally.violations, `[${category}] select(${kid}, ${alg}) picked kid ${picked.kid}`, tally)
        }
        if (picked !== undefined && !familyOf(picked.jwk as unknown as Record<string, unknown>).includes(alg)) {
          note(tally.violations, `[${category}] select(${kid}, ${alg}) picked a ${picked.kty} key`, tally)
        }
      }
    }
  })

const maxBytes = 512 * 1024
const maxDescription = 1024

export const runBody = (body: Body, tally: Tally, category: string) =>
  Effect.gen(function*() {
    tally.inputs++
    const client = HttpClient.make((request) =>
      Effect.sync(() =>
        HttpClientResponse.fromWeb(
          request,
          new Response([101, 103, 204, 205, 304].includes(body.status) ? null : body.body, {
            status: body.status,
            headers: body.contentLength === undefined ? {} : { "content-length": body.contentLength }
          })
        )
      )
    )
    const exit = yield* guarded(() =>
      Effect.flatMap(
        Effect.provideService(JwksSource.http(multiJwksUrl), HttpClient.HttpClient, client),
        (source) => source.fetch
      )
    )
    const bytes = typeof body.body === "string" ? Buffer.from(body.body) : Buffer.from(body.body)
    const label = `status ${body.status}, ${bytes.length} bytes, content-length ${body.contentLength}: ${
      excerpt(bytes.subarray(0, 200).toString("latin1"))
    }`
    if (Exit.isSuccess(exit)) {
      tally.accepted++
      let json: unknown
      try {
        const text = utf8.decode(bytes)
        json = JSON.parse(text.startsWith("\ufeff") ? text.slice(1) : text)
      } catch {
        json = undefined
      }
      const declared = Number(body.contentLength)
      const fine = body.status === 200 && bytes.length <= maxBytes &&
        !(Number.isFinite(declared) && declared > maxBytes) &&
        typeof json === "object" && json !== null && Array.isArray((json as { keys?: unknown }).keys)
      if (!fine) note(tally.violations, `[${category}] JwksSource.http accepted ${label}`, tally)
      else yield* runKeySet(exit.value, { ...emptyTally(), violations: tally.violations }, category)
      return
    }
    const failure = typedFailure(exit.cause)
    if (!failure.ok) {
      return note(
        tally.violations,
        `[${category}] JwksSource.http defect: ${Cause.pretty(exit.cause).slice(0, 300)} on ${label}`,
        tally
      )
    }
    const error = failure.error as { _tag?: string; reason?: string; description?: string }
    tally.longestDescription = Math.max(tally.longestDescription, error.description?.length ?? 0)
    // a hostile body must not turn into a huge error (logged, and shown by the status endpoint)
    if ((error.description?.length ?? 0) > maxDescription) {
      note(tally.violations, `[${category}] a JwksError description of ${error.description?.length} characters`, tally)
    }
    const reasons = ["HttpStatus", "TooLarge", "InvalidJson", "InvalidShape", "Timeout", "Unreachable"]
    if (error._tag !== "JwksError" || !reasons.includes(error.reason ?? "")) {
      note(
        tally.violations,
        `[${category}] JwksSource.http failed with ${error._tag} ${error.reason} on ${label}`,
        tally
      )
    } else if (body.status !== 200 && error.reason !== "HttpStatus") {
      note(tally.violations, `[${category}] status ${body.status} failed as ${error.reason}, not HttpStatus`, tally)
    } else if (body.status === 200 && bytes.length > maxBytes && error.reason !== "TooLarge") {
      note(
        tally.violations,
        `[${category}] a body of ${bytes.length} bytes failed as ${error.reason}, not TooLarge`,
        tally
      )
    }
  })

// --- categories ----------------------------------------------------------------------------------------------------

export interface Category {
  readonly name: string
  readonly target: "validate" | "importKeySet" | "JwksSource.http"
  /** Runs `count` generated inputs from `seed` into `tally`. */
  readonly run: (fixture: Fixture, count: number, seed: number, tally: Tally) => Effect.Effect<void>
}

const sampled = <A>(
  arbitrary: fc.Arbitrary<A>,
  count: number,
  seed: number,
  each: (value: A) => Effect.Effect<void>
): Effect.Effect<void> =>
  Effect.gen(function*() {
    // generate in chunks, so that a big run does not hold every input at once
    for (let done = 0, chunk = 0; done < count; chunk++) {
      const size = Math.min(1000, count - done)
      for (const value of fc.sample(arbitrary, { numRuns: size, seed: seed + chunk * 7919 })) yield* each(value)
      done += size
    }
  })

/** The names of every category, in order. */
export const categoryNames: ReadonlyArray<string> = [...Object.keys(tokenGenerators), "key sets", "HTTP bodies"]

/** Every category, tokens first, then key sets, then HTTP bodies. */
export const categories = (material: Material): ReadonlyArray<Category> => [
  ...tokenCategories(material).map((category): Category => ({
    name: category.name,
    target: "validate",
    run: (fixture, count, seed, tally) =>
      sampled(category.arbitrary, count, seed, (input) => runToken(fixture, input, tally, category.name))
  })),
  {
    name: "key sets",
    target: "importKeySet",
    run: (fixture, count, seed, tally) =>
      sampled(keySetCategory(fixture.material), count, seed, (value) => runKeySet(value, tally, "key sets"))
  },
  {
    name: "HTTP bodies",
    target: "JwksSource.http",
    run: (fixture, count, seed, tally) =>
      sampled(bodyCategory(fixture.material), count, seed, (body) => runBody(body, tally, "HTTP bodies"))
  }
]
