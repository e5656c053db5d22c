/**
 * A fake OpenID identity provider for tests. It generates key pairs with `jose`, signs tokens on the Effect `Clock`,
 * publishes its JSON Web Key Set and a discovery document, rotates keys, and misbehaves on request (status codes,
 * hangs, latency, malformed or oversized bodies).
 *
 * It comes in two forms that share one request handler:
 *
 * - `layerTest` / `layerHttpClient`: an `HttpClient` that answers from memory, no sockets, so `TestClock` drives
 *   latency, hangs and token lifetimes.
 * - `layerServer`: a real HTTP server on whatever `HttpServer` the caller provides (for example
 *   `NodeHttpServer.layer(() => createServer(), { port: 0, host: "127.0.0.1" })`).
 *
 * @since 0.1.0
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerError from "@effect/platform/HttpServerError"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as SynchronizedRef from "effect/SynchronizedRef"
import type { CryptoKey, JWTHeaderParameters } from "jose"
import { exportJWK, generateKeyPair, SignJWT } from "jose"
import { decodeDuration } from "../internal/config.js"

/**
 * The signature algorithms the fake can generate keys for.
 *
 * @since 0.1.0
 * @category models
 * @example
 * ```ts
 * import * as FakeIdp from "effect-jwks/testing/FakeIdp"
 * import * as Effect from "effect/Effect"
 *
 * // The same test against an RSA and an EC key set.
 * const algorithms: ReadonlyArray<FakeIdp.Algorithm> = ["RS256", "ES256"]
 * const tokens = Effect.forEach(algorithms, (algorithm) =>
 *   Effect.flatMap(FakeIdp.FakeIdp, (idp) => idp.sign({ sub: "alice" })).pipe(
 *     Effect.provide(FakeIdp.layerTest({ algorithm }))
 *   ))
 * ```
 */
export type Algorithm = "RS256" | "ES256"

/**
 * A way for the JWKS endpoint to misbehave. Faults apply to the JWKS endpoint only; the discovery document is always
 * served normally.
 *
 * - `Status`: that status (200 to 599) with a short text body, and a `Retry-After` header if `retryAfter` is given.
 * - `Hang`: never answer (`Effect.never`), so the client's timeout has to fire. (`layerServer` answers a request still
 *   held by a fault 503 as it closes, so that the server can.)
 * - `InvalidJson`: 200 with a truncated, unparseable body (still labelled `application/json`).
 * - `WrongShape`: 200 with JSON that is not a key set: `{"keys":"nope"}`.
 * - `EmptySet`: 200 with `{"keys":[]}`.
 * - `Oversized`: 200 with the real key set padded to more than `bytes` bytes (with a correct `content-length`).
 * - `Latency`: `Effect.sleep(delay)`, then the normal answer.
 *
 * @since 0.1.0
 * @category models
 */
export type Fault =
  | { readonly _tag: "Status"; readonly status: number; readonly retryAfter?: string | undefined }
  | { readonly _tag: "Hang" }
  | { readonly _tag: "InvalidJson" }
  | { readonly _tag: "WrongShape" }
  | { readonly _tag: "EmptySet" }
  | { readonly _tag: "Oversized"; readonly bytes: number }
  | { readonly _tag: "Latency"; readonly delay: Duration.DurationInput }

/**
 * Constructors for `Fault`.
 *
 * @example
 * ```ts
 * import * as FakeIdp from "effect-jwks/testing/FakeIdp"
 * import * as Effect from "effect/Effect"
 *
 * const program = Effect.gen(function*() {
 *   const idp = yield* FakeIdp.FakeIdp
 *   yield* idp.failNext(FakeIdp.Fault.status(503), 2)
 *   yield* idp.setFault(FakeIdp.Fault.latency("2 seconds"))
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const Fault: {
  /** An answer with `status`, and a `Retry-After` header when `retryAfter` is given (seconds, or an HTTP date). */
  readonly status: (status: number, options?: { readonly retryAfter?: string | undefined }) => Fault
  readonly hang: Fault
  readonly invalidJson: Fault
  readonly wrongShape: Fault
  readonly emptySet: Fault
  readonly oversized: (bytes: number) => Fault
  readonly latency: (delay: Duration.DurationInput) => Fault
} = {
  status: (status, options) => ({ _tag: "Status", status, retryAfter: options?.retryAfter }),
  hang: { _tag: "Hang" },
  invalidJson: { _tag: "InvalidJson" },
  wrongShape: { _tag: "WrongShape" },
  emptySet: { _tag: "EmptySet" },
  oversized: (bytes) => ({ _tag: "Oversized", bytes }),
  latency: (delay) => ({ _tag: "Latency", delay })
}

/**
 * Options of `make` and the layers.
 *
 * @since 0.1.0
 * @category models
 * @example
 * ```ts
 * import * as FakeIdp from "effect-jwks/testing/FakeIdp"
 *
 * const options: FakeIdp.Options = { issuer: "https://login.example.test", audience: "my-api", algorithm: "ES256" }
 * const TestLive = FakeIdp.layerTest(options)
 * ```
 */
export interface Options {
  /**
   * The `iss` of signed tokens and the base of the endpoints: a URL, without query or fragment if http(s) (else a
   * defect). Default `defaults.issuer`; ignored by `layerServer`.
   */
  readonly issuer?: string
  /** The default `aud` of signed tokens. Default `defaults.audience`. */
  readonly audience?: string
  /** The algorithm of generated (published) keys. Default `"RS256"`. */
  readonly algorithm?: Algorithm
}

/**
 * Options of `sign`.
 *
 * @since 0.1.0
 * @category models
 * @example
 * ```ts
 * import * as FakeIdp from "effect-jwks/testing/FakeIdp"
 * import * as Effect from "effect/Effect"
 *
 * // A forgery: signed by a key that is not published, under the kid of one that is.
 * const forged = Effect.gen(function*() {
 *   const idp = yield* FakeIdp.FakeIdp
 *   const options: FakeIdp.SignOptions = { key: "unpublished", kid: yield* idp.currentKid }
 *   return yield* idp.sign({ sub: "mallory" }, options)
 * })
 * ```
 */
export interface SignOptions {
  /** Overrides the header `kid`; `null` leaves `kid` out. Default: the signing key's own kid. */
  readonly kid?: string | null
  /**
   * Sign with a key of this algorithm: the current key if it has it, else the newest published key that has it,
   * else a key generated on first use and never published.
   */
  readonly algorithm?: Algorithm
  /**
   * Extra or overriding protected header fields (`typ`, `crit` and its extension fields, ...). Not `alg`: it is the
   * signing key's (choose the key with `algorithm`); a different `alg` is a defect, since no key could sign it.
   */
  readonly header?: Record<string, unknown>
  /**
   * Lifetime of the token: `exp = iat + expiresIn`, in whole seconds, with `iat` from the Effect `Clock` (an `iat`
   * among the claims replaces the claim, not the time `exp` counts from). A negative lifetime (`"-30 seconds"`,
   * `-30_000`, `[-30, 0]`) gives a token that expired that long ago; one that is not finite (`NaN`, `Infinity`) is a
   * defect. Default `"1 hour"`.
   */
  readonly expiresIn?: Duration.DurationInput
  /**
   * `"unpublished"`: sign with a key that is never in the key set (it has its own kid, which is not published
   * either; pass `kid` to impersonate a published one). Default `"current"`.
   */
  readonly key?: "current" | "unpublished"
}

/**
 * A request as the shared handler sees it.
 *
 * @since 0.1.0
 * @category models
 * @example
 * ```ts
 * import * as FakeIdp from "effect-jwks/testing/FakeIdp"
 * import * as Effect from "effect/Effect"
 *
 * // The discovery document, asked of the fake directly, without an HTTP client.
 * const discovery = Effect.gen(function*() {
 *   const idp = yield* FakeIdp.FakeIdp
 *   const request: FakeIdp.Request = { method: "GET", url: new URL(idp.discoveryUrl) }
 *   return JSON.parse((yield* idp.handle(request)).body)
 * })
 * ```
 */
export interface Request {
  readonly method: string
  readonly url: URL
}

/**
 * An answer of the shared handler, before either form turns it into an HTTP response. `headers` includes
 * `content-type` and `content-length`.
 *
 * @since 0.1.0
 * @category models
 * @example
 * ```ts
 * import * as FakeIdp from "effect-jwks/testing/FakeIdp"
 * import * as Effect from "effect/Effect"
 *
 * const throttled = Effect.gen(function*() {
 *   const idp = yield* FakeIdp.FakeIdp
 *   yield* idp.setFault(FakeIdp.Fault.status(429, { retryAfter: "120" }))
 *   const reply: FakeIdp.Reply = yield* idp.handle({ method: "GET", url: new URL(idp.jwksUri) })
 *   return [reply.status, reply.headers["retry-after"]] // [429, "120"]
 * })
 * ```
 */
export interface Reply {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
}

/**
 * The fake identity provider.
 *
 * @example
 * ```ts
 * import * as FakeIdp from "effect-jwks/testing/FakeIdp"
 * import * as Effect from "effect/Effect"
 *
 * const program = Effect.gen(function*() {
 *   const idp = yield* FakeIdp.FakeIdp
 *   const token = yield* idp.sign({ sub: "alice", scope: "read" }, { expiresIn: "5 minutes" })
 *   yield* idp.rotate("overlap")
 * }).pipe(Effect.provide(FakeIdp.layerTest()))
 * ```
 *
 * @since 0.1.0
 * @category tags
 */
export class FakeIdp extends Context.Tag("effect-jwks/testing/FakeIdp")<FakeIdp, {
  /** The issuer: the `iss` of signed tokens and the base of both endpoints. */
  readonly issuer: string
  /** The default `aud` of signed tokens. */
  readonly audience: string
  /** `${issuer}/.well-known/jwks.json` (an issuer's trailing slash not doubled) */
  readonly jwksUri: string
  /** `${issuer}/.well-known/openid-configuration` (likewise), serving `{ issuer, jwks_uri, ... }`. */
  readonly discoveryUrl: string
  /**
   * Signs a token. Default claims are `iss`, `aud`, `sub: "user-1"`, `iat` and `exp`; the given claims override them
   * and a claim set to `undefined` is left out.
   */
  readonly sign: (claims?: Record<string, unknown>, options?: SignOptions) => Effect.Effect<string>
  /**
   * Makes a new key current and returns its kid. `"overlap"` keeps the old keys published, `"replace"` drops them;
   * any other mode is a defect.
   */
  readonly rotate: (mode: "overlap" | "replace") => Effect.Effect<string>
  /** The kid of the key that `sign` uses by default. */
  readonly currentKid: Effect.Effect<string>
  /** The kids in the key set, oldest first. */
  readonly publishedKids: Effect.Effect<ReadonlyArray<string>>
  /** The key set as served (without faults). */
  readonly jwks: Effect.Effect<{ readonly keys: ReadonlyArray<Record<string, unknown>> }>
  /**
   * Sets a fault for every JWKS request until it is cleared with `undefined`. A fault no request could be answered
   * with (a status outside 200 to 599, a `retryAfter` with a line break or non-ASCII, a latency that is negative or
   * NaN, an oversized padding that is not a whole number up to 100,000,000, one not built with `Fault`) is a defect
   * here.
   */
  readonly setFault: (fault: Fault | undefined) => Effect.Effect<void>
  /**
   * Queues a fault for the next `times` (default 1; 0 queues nothing; a negative or fractional count is a defect)
   * JWKS requests; queued faults come before `setFault`'s. Faults are checked as by `setFault`.
   */
  readonly failNext: (fault: Fault, times?: number) => Effect.Effect<void>
  /** How many requests reached the JWKS endpoint, whatever they were answered with. */
  readonly fetchCount: Effect.Effect<number>
  /** How many requests reached the discovery endpoint. */
  readonly discoveryCount: Effect.Effect<number>
  /** Sets both counts to zero. */
  readonly resetCounts: Effect.Effect<void>
  /** The handler shared by the client and server forms. Unknown paths get 404, methods other than GET/HEAD 405. */
  readonly handle: (request: Request) => Effect.Effect<Reply>
}>() {}

/**
 * Defaults of `Options` and `SignOptions`.
 *
 * @since 0.1.0
 * @category models
 * @example
 * ```ts
 * import * as FakeIdp from "effect-jwks/testing/FakeIdp"
 *
 * console.log(FakeIdp.defaults.subject) // "user-1": the sub of a token signed without one
 * ```
 */
export const defaults: {
  readonly issuer: string
  readonly audience: string
  readonly algorithm: Algorithm
  readonly subject: string
  readonly expiresIn: Duration.DurationInput
} = {
  issuer: "https://idp.example.test",
  audience: "effect-jwks-test",
  algorithm: "RS256",
  subject: "user-1",
  expiresIn: "1 hour"
}

interface SigningKey {
  readonly kid: string
  readonly algorithm: Algorithm
  readonly privateKey: CryptoKey
  readonly jwk: Record<string, unknown>
}

interface KeyState {
  readonly current: SigningKey
  readonly published: ReadonlyArray<SigningKey>
  readonly spare: Partial<Record<Algorithm, SigningKey>>
}

const randomKid = (): string =>
  Array.from(globalThis.crypto.getRandomValues(new Uint8Array(8)), (byte) => byte.toString(16).padStart(2, "0"))
    .join("")

const generateKey = (algorithm: Algorithm): Effect.Effect<SigningKey> =>
  Effect.promise(async () => {
    const { privateKey, publicKey } = await generateKeyPair(algorithm, { extractable: true })
    const kid = randomKid()
    const jwk = Object.freeze({ ...(await exportJWK(publicKey)), kid, alg: algorithm, use: "sig" })
    return { kid, algorithm, privateKey, jwk }
  })

const withoutUndefined = (record: Record<string, unknown>): Record<string, unknown> =>
  Object.fromEntries(Object.entries(record).filter(([, value]) => value !== undefined))

const encoder = new TextEncoder()

const reply = (status: number, contentType: string, body: string): Reply => ({
  status,
  headers: {
    "content-type": contentType,
    "content-length": String(encoder.encode(body).byteLength),
    "cache-control": "no-store"
  },
  body
})

const json = (body: unknown): Reply => reply(200, "application/json", JSON.stringify(body))

const text = (status: number, body: string): Reply => reply(status, "text/plain; charset=utf-8", body)

const endpointOf = (url: URL): string => url.origin + url.pathname

/**
 * Makes a fake identity provider with one freshly generated, published key pair.
 *
 * @example
 * ```ts
 * import * as FakeIdp from "effect-jwks/testing/FakeIdp"
 * import * as Effect from "effect/Effect"
 *
 * const program = Effect.gen(function*() {
 *   const idp = yield* FakeIdp.make({ audience: "my-api", algorithm: "ES256" })
 *   const token = yield* idp.sign({ sub: "alice" })
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<FakeIdp["Type"]> =>
  Effect.gen(function*() {
    const issuer = options.issuer ?? defaults.issuer
    yield* checkIssuer(issuer)
    const audience = options.audience ?? defaults.audience
    const algorithm = options.algorithm ?? defaults.algorithm
    const base = issuer.replace(/\/+$/, "")
    const jwksUri = `${base}/.well-known/jwks.json`
    const discoveryUrl = `${base}/.well-known/openid-configuration`
    const jwksEndpoint = endpointOf(new URL(jwksUri))
    const discoveryEndpoint = endpointOf(new URL(discoveryUrl))

    const first = yield* generateKey(algorithm)
    const keys = yield* SynchronizedRef.make<KeyState>({ current: first, published: [first], spare: {} })
    const persistentFault = yield* Ref.make<Fault | undefined>(undefined)
    /** Queued faults, each with the number of requests it has left (one entry however many). */
    const pendingFaults = yield* Ref.make<ReadonlyArray<{ readonly fault: Fault; readonly times: number }>>([])
    const fetches = yield* Ref.make(0)
    const discoveries = yield* Ref.make(0)

    const spareKey = (algorithm: Algorithm): Effect.Effect<SigningKey> =>
      SynchronizedRef.modifyEffect(keys, (state) => {
        const existing = state.spare[algorithm]
        return existing !== undefined
          ? Effect.succeed([existing, state] as const)
          : Effect.map(
            generateKey(algorithm),
            (key) => [key, { ...state, spare: { ...state.spare, [algorithm]: key } }] as const
          )
      })

    const signingKey = (options: SignOptions): Effect.Effect<SigningKey> =>
      Effect.flatMap(SynchronizedRef.get(keys), (state) => {
        const wanted = options.algorithm ?? state.current.algorithm
        if (options.key === "unpublished") return spareKey(wanted)
        if (state.current.algorithm === wanted) return Effect.succeed(state.current)
        const published = state.published.filter((key) => key.algorithm === wanted)
        return published.length > 0 ? Effect.succeed(published[published.length - 1]!) : spareKey(wanted)
      })

    /** Whole seconds, keeping the sign that `Duration` would drop (it reads "-30 seconds" and -30_000 as zero). */
    const lifetimeSeconds = (input: Duration.DurationInput): number => {
      if (typeof input === "string" && input.trimStart().startsWith("-")) {
        return -Math.floor(Duration.toSeconds(Duration.decode(input.trimStart().slice(1) as Duration.DurationInput)))
      }
      // NaN (`Number(process.env.TTL)` unset) would decode as zero: a token already expired, without a word.
      if (typeof input === "number" && Number.isNaN(input)) return Number.NaN
      if (typeof input === "number" && input < 0) return -Math.floor(-input / 1000)
      if (typeof input === "bigint" && input < 0n) return -Math.floor(Number(-input) / 1e9)
      if (Array.isArray(input)) {
        // `[seconds, nanos]`, as `process.hrtime` gives.
        const seconds = Number(input[0]) + Number(input[1]) / 1e9
        if (!Number.isFinite(seconds)) return Number.NaN
        if (seconds < 0) return -Math.floor(-seconds)
      }
      return Math.floor(Duration.toSeconds(Duration.decode(input)))
    }

    const sign = Effect.fn("FakeIdp.sign")(
      function*(claims: Record<string, unknown> = {}, options: SignOptions = {}) {
        const key = yield* signingKey(options)
        const iat = Math.floor((yield* Clock.currentTimeMillis) / 1000)
        const lifetime = lifetimeSeconds(options.expiresIn ?? defaults.expiresIn)
        if (!Number.isFinite(lifetime)) {
          return yield* Effect.dieMessage("FakeIdp.sign: expiresIn must be finite")
        }
        const exp = iat + lifetime
        const payload = withoutUndefined({ iss: issuer, aud: audience, sub: defaults.subject, iat, exp, ...claims })
        const header = withoutUndefined({
          alg: key.algorithm,
          kid: options.kid === null ? undefined : options.kid ?? key.kid,
          ...options.header
        })
        if (header.alg !== key.algorithm) {
          return yield* Effect.dieMessage(
            `FakeIdp.sign: header.alg ${
              String(header.alg)
            } is not the ${key.algorithm} key's; choose the key with options.algorithm`
          )
        }
        // jose refuses to sign a `crit` it does not "understand": declare every listed extension as understood.
        const crit = Array.isArray(header.crit)
          ? Object.fromEntries(
            header.crit.filter((name): name is string => typeof name === "string").map((name) => [name, true])
          )
          : undefined
        return yield* Effect.promise(() =>
          new SignJWT(payload).setProtectedHeader(header as JWTHeaderParameters).sign(
            key.privateKey,
            crit === undefined ? undefined : { crit }
          )
        )
      }
    )

    const rotate = Effect.fn("FakeIdp.rotate")(function*(mode: "overlap" | "replace") {
      // A mode of JavaScript's or a config's other than these two would drop every old key, as `replace` does.
      if (mode !== "overlap" && mode !== "replace") {
        return yield* Effect.dieMessage(`FakeIdp.rotate: mode must be "overlap" or "replace", got ${String(mode)}`)
      }
      const key = yield* generateKey(algorithm)
      yield* SynchronizedRef.update(keys, (state) => ({
        ...state,
        current: key,
        published: mode === "overlap" ? [...state.published, key] : [key]
      }))
      return key.kid
    })

    const jwks = Effect.map(SynchronizedRef.get(keys), (state) => ({ keys: state.published.map((key) => key.jwk) }))

    const nextFault: Effect.Effect<Fault | undefined> = Effect.flatMap(
      Ref.modify(pendingFaults, (queue) => {
        const [first, ...rest] = queue
        if (first === undefined) return [undefined, queue]
        return [first.fault, first.times > 1 ? [{ fault: first.fault, times: first.times - 1 }, ...rest] : rest]
      }),
      (fault) => fault !== undefined ? Effect.succeed(fault) : Ref.get(persistentFault)
    )

    const serveJwks: Effect.Effect<Reply> = Effect.flatMap(nextFault, (fault): Effect.Effect<Reply> => {
      if (fault === undefined) return Effect.map(jwks, json)
      switch (fault._tag) {
        case "Status": {
          const answer = text(fault.status, `FakeIdp fault: status ${fault.status}`)
          return Effect.succeed(
            fault.retryAfter === undefined
              ? answer
              : { ...answer, headers: { ...answer.headers, "retry-after": fault.retryAfter } }
          )
        }
        case "Hang":
          return Effect.never
        case "InvalidJson":
          return Effect.succeed(reply(200, "application/json", "{\"keys\": [{\"kty\": \"RSA\", \"kid\""))
        case "WrongShape":
          return Effect.succeed(json({ keys: "nope" }))
        case "EmptySet":
          return Effect.succeed(json({ keys: [] }))
        case "Oversized":
          return Effect.map(jwks, (set) => json({ ...set, padding: "x".repeat(Math.max(0, fault.bytes)) }))
        case "Latency":
          return Effect.zipRight(Effect.sleep(fault.delay), Effect.map(jwks, json))
      }
    })

    const discoveryDocument = Effect.map(SynchronizedRef.get(keys), (state) =>
      json({
        issuer,
        jwks_uri: jwksUri,
        authorization_endpoint: `${base}/authorize`,
        token_endpoint: `${base}/token`,
        response_types_supported: ["code"],
        subject_types_supported: ["public"],
        id_token_signing_alg_values_supported: Array.from(new Set(state.published.map((key) => key.algorithm)))
      }))

    const handle = (request: Request): Effect.Effect<Reply> => {
      const endpoint = endpointOf(request.url)
      const allowed = request.method === "GET" || request.method === "HEAD"
      if (endpoint === jwksEndpoint) {
        return Effect.zipRight(
          Ref.update(fetches, (n) => n + 1),
          allowed ? serveJwks : Effect.succeed(text(405, "method not allowed"))
        )
      }
      if (endpoint === discoveryEndpoint) {
        return Effect.zipRight(
          Ref.update(discoveries, (n) => n + 1),
          allowed ? discoveryDocument : Effect.succeed(text(405, "method not allowed"))
        )
      }
      return Effect.succeed(text(404, "not found"))
    }

    return FakeIdp.of({
      issuer,
      audience,
      jwksUri,
      discoveryUrl,
      sign,
      rotate,
      currentKid: Effect.map(SynchronizedRef.get(keys), (state) => state.current.kid),
      publishedKids: Effect.map(SynchronizedRef.get(keys), (state) => state.published.map((key) => key.kid)),
      jwks,
      setFault: (fault) =>
        fault === undefined
          ? Ref.set(persistentFault, undefined)
          : Effect.zipRight(checkFault("setFault", fault), Ref.set(persistentFault, fault)),
      failNext: (fault, times = 1) =>
        Effect.zipRight(
          checkFault("failNext", fault),
          !Number.isSafeInteger(times) || times < 0
            ? Effect.dieMessage(`FakeIdp.failNext: times must be a whole number of zero or more, got ${times}`)
            : times > 0
            ? Ref.update(pendingFaults, (queue) => [...queue, { fault, times }])
            : Effect.void
        ),
      fetchCount: Ref.get(fetches),
      discoveryCount: Ref.get(discoveries),
      resetCounts: Effect.zipRight(Ref.set(fetches, 0), Ref.set(discoveries, 0)),
      handle
    })
  })

/**
 * The issuer, or a defect naming what is wrong with it: not a URL (the endpoints are found under it), or an http(s) one
 * with a query or fragment, which OpenID Connect does not allow and under which both endpoints would be one. Other
 * schemes (`urn:`, `spiffe:`) sign tokens as any issuer; their endpoints are not served.
 */
const checkIssuer = (issuer: string): Effect.Effect<void> => {
  const url = typeof issuer === "string" && URL.canParse(issuer) ? new URL(issuer) : undefined
  if (url === undefined) {
    return Effect.dieMessage(`FakeIdp: the issuer must be a URL, got ${JSON.stringify(String(issuer))}`)
  }
  const isHttp = url.protocol === "http:" || url.protocol === "https:"
  return isHttp && (url.search !== "" || url.hash !== "" || issuer.includes("?") || issuer.includes("#"))
    ? Effect.dieMessage(`FakeIdp: the issuer must have no query or fragment, got ${JSON.stringify(issuer)}`)
    : Effect.void
}

/**
 * A fault the endpoint can serve, or a defect naming what is wrong with it where the test set it, rather than where a
 * request meets it: a status the platform cannot send, a `Retry-After` that is not a header value (a line break would
 * add a header of its own), a padding no string can hold, a delay that is not a duration.
 */
const checkFault = (method: string, fault: Fault): Effect.Effect<void> => {
  const wrong = (what: string) => Effect.dieMessage(`FakeIdp.${method}: ${what}`)
  // `null` from JavaScript or parsed config: a defect of the effect too, not a TypeError as it is called.
  if (typeof fault !== "object" || fault === null) return wrong(`expected a Fault, got ${String(fault)}`)
  switch (fault._tag) {
    case "Status":
      if (!Number.isInteger(fault.status) || fault.status < 200 || fault.status > 599) {
        return wrong(`status must be a whole number from 200 to 599, got ${fault.status}`)
      }
      return fault.retryAfter === undefined ||
          (typeof fault.retryAfter === "string" && headerValue.test(fault.retryAfter))
        ? Effect.void
        : wrong("retryAfter must be printable ASCII on one line (seconds, or an HTTP date)")
    case "Oversized":
      return Number.isSafeInteger(fault.bytes) && fault.bytes <= maxPadding
        ? Effect.void
        : wrong(`oversized bytes must be a whole number up to ${maxPadding}, got ${fault.bytes}`)
    case "Latency":
      // Refused as the library's options refuse them: NaN (an unset variable) and negative delays would decode as no
      // delay at all, a slow IdP that is not.
      return Option.isSome(decodeDuration(fault.delay))
        ? Effect.void
        : wrong(`latency delay must be a Duration of zero or more, got ${String(fault.delay)}`)
    case "Hang":
    case "InvalidJson":
    case "WrongShape":
    case "EmptySet":
      return Effect.void
    default:
      return wrong(
        `unknown fault ${JSON.stringify(String((fault as { readonly _tag?: unknown })._tag))}: build one with Fault`
      )
  }
}

/** A header value the platform sends as given: visible ASCII and spaces, no line break. */
const headerValue = /^[\x20-\x7e]*$/

/** The largest `Fault.oversized` padding: far past any size cap, still a string V8 can build. */
const maxPadding = 100_000_000

/**
 * A `FakeIdp` with a fresh key pair, on its own; pair it with `layerHttpClient` or use `layerTest`.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * ```ts
 * import * as Static from "effect-jwks/providers/Static"
 * import * as FakeIdp from "effect-jwks/testing/FakeIdp"
 * import * as Effect from "effect/Effect"
 *
 * // No HTTP at all: a static validator over the fake's published keys.
 * const program = Effect.gen(function*() {
 *   const idp = yield* FakeIdp.FakeIdp
 *   const validator = yield* Static.make({ jwks: yield* idp.jwks, issuer: idp.issuer, audience: idp.audience })
 *   return yield* validator.validate(yield* idp.sign({ sub: "alice" }))
 * }).pipe(Effect.provide(FakeIdp.layer()))
 * ```
 */
export const layer = (options: Options = {}): Layer.Layer<FakeIdp> => Layer.effect(FakeIdp, make(options))

const nullBodyStatuses = new Set([101, 103, 204, 205, 304])

/**
 * An `HttpClient` that answers requests to the issuer's origin from the `FakeIdp`, without sockets. A request to any
 * other origin fails with a `RequestError` of reason `"Transport"` that says which origin the fake serves (the
 * `JwksError` of a validator whose issuer has a typo tells it), so a test never reaches the network. It is one layer
 * value, built once per layer graph: a graph of two fakes (an app of two issuers) gives each its own with
 * `Layer.fresh(FakeIdp.layerHttpClient)`, as `layerTest` does.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * ```ts
 * import * as Oidc from "effect-jwks/providers/Oidc"
 * import * as FakeIdp from "effect-jwks/testing/FakeIdp"
 * import * as Layer from "effect/Layer"
 *
 * // A validator that discovers the fake's keys, and the fake itself for the test to sign tokens with. The client
 * // goes to the validator alone: a test of a server has a client of its own (NodeHttpServer.layerTest's).
 * const TestLive = Oidc.layer({ issuer: FakeIdp.defaults.issuer, audience: FakeIdp.defaults.audience }).pipe(
 *   Layer.provide(FakeIdp.layerHttpClient),
 *   Layer.provideMerge(FakeIdp.layer())
 * )
 * ```
 */
export const layerHttpClient: Layer.Layer<HttpClient.HttpClient, never, FakeIdp> = Layer.effect(
  HttpClient.HttpClient,
  Effect.map(FakeIdp, (idp) => {
    const origin = new URL(idp.issuer).origin
    return HttpClient.make((request, url) =>
      url.origin !== origin
        ? Effect.fail(
          new HttpClientError.RequestError({
            request,
            reason: "Transport",
            description: `FakeIdp serves ${origin} only, not ${url.origin}`
          })
        )
        : Effect.map(idp.handle({ method: request.method, url }), (answer) =>
          HttpClientResponse.fromWeb(
            request,
            new Response(
              nullBodyStatuses.has(answer.status) || request.method === "HEAD" ? null : answer.body,
              { status: answer.status, headers: answer.headers }
            )
          ))
    )
  })
)

/**
 * A fresh `FakeIdp` together with an `HttpClient` that talks to it: the usual layer of a unit test.
 *
 * @example
 * ```ts
 * import * as FakeIdp from "effect-jwks/testing/FakeIdp"
 * import * as HttpClient from "@effect/platform/HttpClient"
 * import * as Effect from "effect/Effect"
 *
 * const program = Effect.gen(function*() {
 *   const idp = yield* FakeIdp.FakeIdp
 *   const response = yield* HttpClient.get(idp.jwksUri)
 * }).pipe(Effect.provide(FakeIdp.layerTest({ issuer: "https://login.example.test" })))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerTest = (options: Options = {}): Layer.Layer<FakeIdp | HttpClient.HttpClient> =>
  // Fresh: one layer value is built once per graph, and two fakes in one (an app of two issuers) would share the
  // first's client.
  Layer.provideMerge(Layer.fresh(layerHttpClient), layer(options))

const issuerOf = (address: HttpServer.Address): Effect.Effect<string, HttpServerError.ServeError> => {
  if (address._tag === "UnixAddress") {
    return Effect.fail(
      new HttpServerError.ServeError({
        cause: new Error(`FakeIdp.layerServer needs a TCP server, not a Unix socket (${address.path})`)
      })
    )
  }
  const hostname = address.hostname === "" || address.hostname === "0.0.0.0" || address.hostname === "::"
    ? "127.0.0.1"
    : address.hostname.includes(":")
    ? `[${address.hostname}]`
    : address.hostname
  return Effect.succeed(`http://${hostname}:${address.port}`)
}

/**
 * Serves a fresh `FakeIdp` on the provided `HttpServer` for the lifetime of the layer. The issuer is
 * `http://<host>:<port>` from the server's address (`127.0.0.1` when it listens on all interfaces). The server layer
 * comes from the app or test, so this module needs no platform package. Give it a server of its own: on the app's
 * (one `HttpServer` layer provided to both), the app's routes and the IdP's answer requests on one port, and the
 * app's 404 can be what a key fetch gets.
 *
 * The issuer is known only once the server listens, so a validator of the fake's tokens is built from the `FakeIdp`
 * service, with `Layer.unwrapEffect` (as below), and fetches its keys with a real `HttpClient`.
 *
 * @example
 * ```ts
 * import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
 * import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
 * import * as Oidc from "effect-jwks/providers/Oidc"
 * import * as FakeIdp from "effect-jwks/testing/FakeIdp"
 * import * as Effect from "effect/Effect"
 * import * as Layer from "effect/Layer"
 * import { createServer } from "node:http"
 *
 * const IdpLive = FakeIdp.layerServer({ audience: "my-api" }).pipe(
 *   Layer.provide(NodeHttpServer.layer(() => createServer(), { port: 0, host: "127.0.0.1" }))
 * )
 *
 * // A validator of the fake's tokens, discovering its keys over loopback.
 * const ValidatorLive = Layer.unwrapEffect(
 *   Effect.map(FakeIdp.FakeIdp, (idp) => Oidc.layer({ issuer: idp.issuer, audience: idp.audience }))
 * ).pipe(Layer.provide(NodeHttpClient.layerUndici))
 *
 * // The validator, and the fake itself to sign tokens with.
 * const TestLive = Layer.provideMerge(ValidatorLive, IdpLive)
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerServer = (
  options: Omit<Options, "issuer"> = {}
): Layer.Layer<FakeIdp, HttpServerError.ServeError, HttpServer.HttpServer> =>
  Layer.scoped(
    FakeIdp,
    Effect.gen(function*() {
      const server = yield* HttpServer.HttpServer
      const issuer = yield* issuerOf(server.address)
      const idp = yield* make({ ...options, issuer })
      // A request held by a fault (`Hang`, a long `Latency`) would hold the layer open: the platform does not end
      // request fibers as `serve`'s scope closes, and the server waits for their connections. As the layer closes,
      // they are answered 503.
      const closing = yield* Deferred.make<void>()
      yield* Effect.addFinalizer(() => Deferred.succeed(closing, undefined))
      const closed: Effect.Effect<Reply> = Effect.as(Deferred.await(closing), {
        status: 503,
        // The connection too, or the server would wait for the client to let go of it.
        headers: { "content-type": "text/plain", connection: "close" },
        body: "FakeIdp closed"
      })
      yield* server.serve(
        Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
          Effect.map(
            // Interruptible: request fibers inherit the flags of this layer's build, which is not.
            Effect.interruptible(
              Effect.raceFirst(idp.handle({ method: request.method, url: new URL(request.url, issuer) }), closed)
            ),
            (answer) => HttpServerResponse.text(answer.body, { status: answer.status, headers: answer.headers })
          ))
      )
      return idp
    })
  )
