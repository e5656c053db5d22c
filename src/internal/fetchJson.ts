/**
 * @internal
 * GET a small JSON document from an identity provider, defensively: a timeout over the whole exchange, a cap on the
 * body (enforced as it streams in when its length is not declared), and a distinct `JwksError` reason for each way it
 * can go wrong.
 */
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as Headers from "@effect/platform/Headers"
import * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"
import { identity } from "effect/Function"
import * as Hash from "effect/Hash"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { JwksError } from "../JwksError.js"
import { maxRetryAfterSeconds } from "./config.js"
import * as Pace from "./pace.js"
import { printable } from "./printable.js"

/** @internal */
export interface FetchOptions {
  readonly timeout: Duration.Duration
  readonly maxBytes: number
}

const decodeJson = Schema.decodeUnknown(Schema.parseJson())
const utf8 = new TextDecoder("utf-8", { fatal: true })

/**
 * The request options `@effect/platform-node`'s undici client reads from the context (its `UndiciRequestOptions`), by
 * key, so that this library does not depend on the Node platform.
 */
const UndiciOptions = Context.GenericTag<{ readonly _: unique symbol }, Readonly<Record<string, unknown>>>(
  "@effect/platform-node/NodeHttpClient/undiciOptions"
)

/**
 * `fetch` follows redirects unless told otherwise, which would take the keys from wherever a 3xx points. Ask the
 * fetch client (when it is the one provided) to hand the redirect back instead, and undici's (whose dispatcher may
 * have a redirect interceptor) to make none, keeping the app's other options. A client wrapped with
 * `HttpClient.followRedirects` follows anyway: its answer is refused (see `fetchJson`).
 */
const withoutRedirects = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.flatMap(
    Effect.zip(Effect.serviceOption(FetchHttpClient.RequestInit), Effect.serviceOption(UndiciOptions)),
    ([init, undici]) =>
      effect.pipe(
        Effect.provideService(FetchHttpClient.RequestInit, { ...Option.getOrUndefined(init), redirect: "manual" }),
        Effect.provideService(UndiciOptions, { ...Option.getOrUndefined(undici), maxRedirections: 0 })
      )
  )

/**
 * The platform's clients (`HttpClient.make`) run a request through these; a client's own `mapRequest` is in the first.
 */
interface Stages {
  readonly preprocess: (
    request: HttpClientRequest.HttpClientRequest
  ) => Effect.Effect<HttpClientRequest.HttpClientRequest, unknown>
  readonly postprocess: (
    request: Effect.Effect<HttpClientRequest.HttpClientRequest, unknown>
  ) => Effect.Effect<HttpClientResponse.HttpClientResponse, HttpClientError.HttpClientError>
}

/**
 * Whether `client` is one of the platform's (`HttpClient.make`'s, from either of its builds: its type id is a
 * registered symbol), which run a request through its stages; an object of the app's own, even a copy of one or one
 * inheriting from one, has an `execute` of its own that must be the one called.
 */
const isPlatformClient = (client: HttpClient.HttpClient): boolean => {
  const prototype: unknown = Object.getPrototypeOf(client)
  const { postprocess, preprocess } = client as Partial<Stages>
  return typeof prototype === "object" && prototype !== null && Object.hasOwn(prototype, HttpClient.TypeId) &&
    typeof preprocess === "function" && typeof postprocess === "function"
}

/**
 * `client.execute(request)`, noting the request as a platform client prepared it (its `mapRequest`s applied: a
 * gateway key added to the URL, say), to judge the answer's URL against: all of it for a platform client; for a client
 * object of the app's own, which may add to the query unseen, its origin and path.
 */
const executing = (client: HttpClient.HttpClient, request: HttpClientRequest.HttpClientRequest) => {
  // A client that throws (a bug of the app's, or JavaScript) fails the fetch, as any failure the type does not show
  // (see `fetchJson`'s last `catchAll`).
  const guarded = (
    execute: () => Effect.Effect<HttpClientResponse.HttpClientResponse, HttpClientError.HttpClientError>
  ): Effect.Effect<HttpClientResponse.HttpClientResponse, HttpClientError.HttpClientError> =>
    Effect.catchAllDefect(Effect.suspend(execute), (defect) => Effect.fail(defect as HttpClientError.HttpClientError))
  if (!isPlatformClient(client)) {
    return { execute: guarded(() => client.execute(request)), asked: () => request, whole: false }
  }
  let prepared = request
  const { postprocess, preprocess } = client as unknown as Stages
  // The platform's own `http.client` span records the whole URL: none for a request whose URL, as the client prepared
  // it, carries what is redacted (a gateway key its `mapRequest` adds). Tracing is switched off for that request once
  // it is ready: a tracer-disabled rule would not do, as a `withTracerDisabledWhen` of the app's client may be set
  // after it (under `followRedirects` or `transform`) and answer for the URL. The spans the app's client makes itself
  // for that request go too; `locallyWith` puts the switch back after.
  const execute = guarded(() =>
    Effect.locallyWith(
      postprocess(Effect.tap(preprocess(request), (ready) => {
        prepared = ready
        return redacts(ready) ? FiberRef.set(FiberRef.currentTracerEnabled, false) : Effect.void
      })),
      FiberRef.currentTracerEnabled,
      identity
    )
  )
  return { execute, asked: () => prepared, whole: true }
}

/** Whether a request's whole URL carries what `displayUrl` redacts. */
const redacts = (request: HttpClientRequest.HttpClientRequest): boolean => {
  const url = urlOf(request, true)
  return displayUrl(url) !== url
}

const urlOf = (request: HttpClientRequest.HttpClientRequest, whole: boolean): string =>
  Option.match(HttpClientRequest.toUrl(request), {
    onNone: () => request.url,
    onSome: (url) => whole ? url.href : `${url.origin}${url.pathname}`
  })

/**
 * Whether `fetch` followed a redirect for this response: its web `Response` (the platform's response holds it as
 * `source`, inside the wrapper that aborts the request on interruption, as `original`) says so.
 */
const fetchRedirected = (response: HttpClientResponse.HttpClientResponse): boolean => {
  let current: unknown = response
  for (let depth = 0; depth < 4 && typeof current === "object" && current !== null; depth++) {
    const { original, source } = current as { readonly original?: unknown; readonly source?: unknown }
    if (typeof source === "object" && source !== null && (source as { redirected?: unknown }).redirected === true) {
      return true
    }
    current = original
  }
  return false
}

/**
 * Whether the answer is for another URL than the one asked: the app's client followed a redirect itself (wrapped in
 * `HttpClient.followRedirects`, or a `fetch` of its own that does not pass on `redirect: "manual"` and returns the
 * `Response` it got; one that builds a new `Response` hides the redirect, so such a `fetch` must pass `redirect` on).
 */
const followedRedirect = (
  response: HttpClientResponse.HttpClientResponse,
  asked: HttpClientRequest.HttpClientRequest,
  whole: boolean
): boolean => urlOf(response.request, whole) !== urlOf(asked, whole) || fetchRedirected(response)

/**
 * Ends a response whose body is not read: the platform aborts a request when its body stream is interrupted, where
 * an unread body keeps its connection open (a hostile server's for as long as it likes) until the response is
 * garbage-collected.
 */
const discard = (response: HttpClientResponse.HttpClientResponse): Effect.Effect<void> =>
  Effect.ignore(Stream.runDrain(Stream.interruptWhen(response.stream, Effect.void)))

/** Joins the body's chunks without Node's `Buffer`, so that the library runs wherever `HttpClient` does. */
const concat = (chunks: ReadonlyArray<Uint8Array>, size: number): Uint8Array => {
  const out = new Uint8Array(size)
  let offset = 0
  for (const chunk of chunks) {
    out.set(chunk, offset)
    offset += chunk.length
  }
  return out
}

/**
 * The three forms of an HTTP date (RFC 9110, section 5.6.7): IMF-fixdate, RFC 850's, and asctime's, which is in GMT.
 */
const imfFixdate = /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/
const rfc850Date = /^[A-Z][a-z]{5,8}, \d{2}-[A-Z][a-z]{2}-\d{2} \d{2}:\d{2}:\d{2} GMT$/
const asctime = /^[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2} \d{4}$/

/**
 * The wait a 429 or 503 answer asks for in its `Retry-After` (RFC 9110, section 10.2.3), in whole seconds: a number
 * of seconds, or an HTTP date (any of its three forms, RFC 9110 section 5.6.7) counted from `now`. Another status, a
 * value that does not read as either (two headers joined by a comma), or a date already past asks for nothing.
 */
const retryAfterOf = (response: HttpClientResponse.HttpClientResponse, now: number): number | undefined => {
  if (response.status !== 429 && response.status !== 503) return undefined
  // A client of the app's, in JavaScript, may hand back anything as a header.
  const header: unknown = response.headers["retry-after"]
  if (typeof header !== "string") return undefined
  const value = header.trim()
  if (/^\d+$/.test(value)) return Math.min(Number(value), maxRetryAfterSeconds)
  const date = imfFixdate.test(value) || rfc850Date.test(value)
    ? value
    : asctime.test(value)
    ? `${value} GMT`
    : undefined
  if (date === undefined) return undefined
  const wait = Math.ceil((Date.parse(date) - now) / 1000)
  return Number.isFinite(wait) && wait > 0 ? Math.min(wait, maxRetryAfterSeconds) : undefined
}

/** What a fetch's error may carry besides its reason and description. */
interface FailExtra {
  readonly status?: number
  readonly retryAfter?: number
  readonly cause?: unknown
}

/** A refused status's error, with the wait it asked for. */
const statusError = (
  fail: (reason: JwksError["reason"], description?: string, extra?: FailExtra) => JwksError,
  response: HttpClientResponse.HttpClientResponse
): Effect.Effect<JwksError> =>
  Effect.map(Clock.currentTimeMillis, (now) => {
    const retryAfter = retryAfterOf(response, now)
    return fail("HttpStatus", "expected 200", {
      status: response.status,
      ...(retryAfter === undefined ? {} : { retryAfter })
    })
  })

/** Where the shape went wrong, by path only: never the value, which may be hostile and huge. */
const shapeIssue = (error: ParseResult.ParseError): string => {
  const path: Array<string> = []
  let issue: ParseResult.ParseIssue | undefined = error.issue
  for (let depth = 0; issue !== undefined && depth < 16; depth++) {
    if (issue._tag === "Pointer") path.push(String(issue.path).slice(0, 32))
    const next: unknown = "issue" in issue ? issue.issue : "issues" in issue ? issue.issues : undefined
    issue = (Array.isArray(next) ? next[0] : next) as ParseResult.ParseIssue | undefined
  }
  return path.length === 0 ? "the JSON does not have the expected shape" : `unexpected value at ${path.join(".")}`
}

/** A key of this process's own for hashing what may hold a password: a guess cannot be checked against the name. */
const processKey = Array.from(crypto.getRandomValues(new Uint8Array(16)), (byte) => byte.toString(16)).join("")

const hashOf = (text: string): string => (Hash.string(text) >>> 0).toString(16).padStart(8, "0")

/** A query as a name shows it: `?redacted-` and a short hash (none for an empty query). */
const shownQuery = (query: string): string => query === "" || query === "?" ? "" : `?redacted-${hashOf(query)}`

/**
 * @internal
 * A URL as logs, metric labels, span attributes and errors show it: without user info, query or fragment, where a
 * gateway's API key or a password would sit (metrics backends are often read without authentication). A query is
 * shown as `?redacted-` and a short hash of it (Effect's `Hash.string`, 31 bits: not a secret's digest, only enough
 * that two URLs differing in their query, Azure AD B2C's `?p=<policy>` say, keep two names, the same in every run).
 *
 * An `@` the parser does not read as user info is usually a path's (Firebase's JWKS URL ends in
 * `securetoken@system.gserviceaccount.com`) or a query's, but it may end a password holding a `/`, `?` or `#`, which
 * the parser reads as the authority's end. The URL is shown as parsed when it has an authority, then a path, and no
 * `:` up to its last `@` (a password follows a `:`). Otherwise (`https://reader:8080/pw@host`, `https://host?x@y`, a
 * URL that does not parse or is not http(s)) nothing after the scheme is shown but `redacted-` and a hash keyed for
 * this process, so that two such URLs keep two names and no guess of a password can be checked against one. (A user
 * name alone holding a `/`, `https://to/ken@host`, cannot be told from a path, and is shown.) Tabs, line breaks and
 * other controls, which the parser drops, are shown escaped (`\u000a`): a discovered `jwks_uri` is a document's word.
 */
export const displayUrl = (url: string): string => printable(shownUrl(url))

/**
 * {@link displayUrl}, before its line breaks and other controls are escaped (the parser drops tabs and line breaks).
 */
const shownUrl = (url: string): string => {
  let parsed: URL | undefined
  try {
    parsed = new URL(url)
  } catch {
    parsed = undefined
  }
  const at = url.indexOf("@")
  if (parsed !== undefined && (parsed.protocol === "https:" || parsed.protocol === "http:")) {
    const last = url.lastIndexOf("@")
    // The parser's user info, when no other `@` follows (a password holding `@` and `/` is read only in part).
    const userInfoOnly = (parsed.username !== "" || parsed.password !== "") && last === at
    const authority = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/([^/\\?#]+)([/\\])/.exec(url)
    // An `@` in a path or query: an authority, then a path, and no `:` up to the last `@` (where a password would be).
    const atInPath = authority !== null &&
      !url.slice(authority[0].length - authority[1]!.length - 1, last).includes(":")
    const clean = at === -1 || userInfoOnly || atInPath
    if (clean) {
      if (at === -1 && parsed.search === "" && parsed.hash === "") return url
      return `${parsed.origin}${parsed.pathname}${shownQuery(parsed.search)}`
    }
  }
  // A relative path has no authority: its query and fragment go, as an absolute URL's do. (The parser drops tabs and
  // line breaks and reads `\` as `/`: `/\user:pw@host` is a URL with user info, resolved against a browser's page.)
  const bare = url.replace(/[\t\n\r]/g, "")
  const relativePath = bare.startsWith("/") && bare[1] !== "/" && bare[1] !== "\\"
  // Any `@` counts here, written `%40` or full-width too: a URL that does not parse is shown as text otherwise.
  const anyAt = at !== -1 || url.normalize("NFKC").replace(/%40/gi, "@").includes("@")
  if (relativePath || !anyAt) {
    const cut = url.search(/[?#]/)
    return cut === -1
      ? url
      : `${url.slice(0, cut)}${shownQuery(url[cut] === "?" ? url.slice(cut).split("#", 1)[0]! : "")}`
  }
  const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.exec(url)?.[0] ?? (url.startsWith("//") ? "//" : "")
  return `${scheme}redacted-${hashOf(processKey + url.slice(scheme.length))}`
}

/**
 * The error of a transport failure, for a URL shown redacted: its name and code at each level, without messages,
 * which may quote the URL (`fetch` refusing one with credentials does).
 */
const redactedCause = (cause: unknown, depth = 0): unknown => {
  if (!(cause instanceof Error) || depth > 3) return undefined
  const code = (cause as { readonly code?: unknown }).code
  return new Error(
    `${cause.name}${typeof code === "string" ? ` ${code}` : ""} (message withheld: it may show the URL)`,
    {
      cause: redactedCause(cause.cause, depth + 1)
    }
  )
}

/** @internal */
export const fetchJson = <A, I>(
  client: HttpClient.HttpClient,
  url: string,
  schema: Schema.Schema<A, I>,
  options: FetchOptions
): Effect.Effect<A, JwksError> => {
  const source = displayUrl(url)
  const redacted = source !== url
  const fail = (reason: JwksError["reason"], description?: string, extra?: FailExtra) =>
    new JwksError({ reason, source, ...(description === undefined ? {} : { description }), ...extra })
  const decodeShape = Schema.decodeUnknown(schema)
  // Each run of the fetch its own: one source's fetch may run twice at once (two caches over it).
  return Effect.suspend(() => {
    /** The request as the client prepared it, once it has (for what a failure may show). */
    let askedOf: (() => HttpClientRequest.HttpClientRequest) | undefined
    /**
     * Whether a failure's account may show a secret: the URL as configured holds one, or as the client prepared it (a
     * gateway key its `mapRequest` adds).
     */
    const secretShown = (): boolean => redacted || (askedOf !== undefined && redacts(askedOf()))
    return Effect.gen(function*() {
      // The steps of a paced fetch (a background refresh): see `pace.ts`.
      yield* Pace.step
      const { asked, execute, whole } = executing(client, HttpClientRequest.get(url, { acceptJson: true }))
      askedOf = asked
      // The platform's own `http.client` span records the whole URL: none for a request whose URL carries what is
      // redacted (see `executing`; a client object of the app's own is asked not to make one). It records the answer's
      // headers too: a redirect's `Location` (a signed CDN link, say) is redacted there.
      const response = yield* withoutRedirects(
        execute.pipe(
          Effect.locallyWith(
            HttpClient.currentTracerDisabledWhen,
            (own) => (request) => own(request) || redacts(request)
          ),
          Effect.locallyWith(Headers.currentRedactedNames, (names) => [...names, "location"])
        )
      )
      // The platform ends a request interrupted while it is sent or its body read, not in between: here, the answer.
      yield* Effect.onInterrupt(Pace.step, () => discard(response))
      if (followedRedirect(response, asked(), whole)) {
        // Refused as the 3xx it followed would have been.
        yield* discard(response)
        return yield* fail("HttpStatus", "the answer is for another URL: redirects are not followed")
      }
      if (response.status !== 200) {
        yield* discard(response)
        return yield* Effect.flip(statusError(fail, response))
      }
      const declared = Number(response.headers["content-length"])
      if (Number.isFinite(declared) && declared > options.maxBytes) {
        yield* discard(response)
        return yield* fail("TooLarge", `content-length ${declared} exceeds the limit of ${options.maxBytes} bytes`)
      }
      // Built only when needed: a JwksError checks its fields as it is constructed, ~0.1 ms of a refresh's event-loop
      // time.
      const tooLarge = () => fail("TooLarge", `body exceeds the limit of ${options.maxBytes} bytes`)
      const encoding = response.headers["content-encoding"]
      // An uncompressed body of a declared length within the cap is read whole: HTTP framing bounds it. Any other body
      // is read as a stream, and refused as soon as it passes the cap. The whole read is preferred because the
      // platform aborts a request once its body stream ends, which cost twice the CPU of a whole read (a refresh
      // measured ~1.6 ms more in bench/) on the event loop that validates tokens.
      // The header is read twice on purpose: any number above the cap refuses the body (even "1e9", as above), but
      // only a plain decimal is trusted as a declared length to read whole (`Number` reads "" as 0).
      const length = response.headers["content-length"]
      const bytes =
        length !== undefined && /^\d{1,9}$/.test(length) && (encoding === undefined || encoding === "identity")
          ? yield* Effect.flatMap(response.arrayBuffer, (buffer) =>
            // A client that does not hold a body to its declared length (not HTTP/1.1 over fetch or node:http) still
            // meets the cap here.
            buffer.byteLength > options.maxBytes ? Effect.fail(tooLarge()) : Effect.succeed(new Uint8Array(buffer)))
          : yield* Effect.map(
            response.stream.pipe(
              Stream.runFoldEffect({ size: 0, chunks: [] as Array<Uint8Array> }, (acc, chunk) => {
                acc.size += chunk.length
                if (acc.size > options.maxBytes) return Effect.fail(tooLarge())
                acc.chunks.push(chunk)
                return Effect.succeed(acc)
              })
            ),
            (body) => concat(body.chunks, body.size)
          )
      yield* Pace.step
      const text = yield* Effect.try({
        try: () => utf8.decode(bytes),
        catch: (cause) => fail("InvalidJson", "body is not UTF-8", { cause })
      })
      const json = yield* Effect.mapError(decodeJson(text), () => fail("InvalidJson", "body is not JSON"))
      // Not the parse error's message: it prints the offending value, and a hostile, deeply nested body would
      // overflow the stack while being printed (found by `npm run fuzz`). Only the path of the first issue is kept.
      return yield* Effect.mapError(decodeShape(json), (error) => fail("InvalidShape", shapeIssue(error)))
    }).pipe(
      Effect.catchTags({
        // The client's own account of it too (a test's fake saying which origin it serves), unless the URL holds a
        // secret that the account may repeat: the URL as configured, or as the client prepared it (a gateway key its
        // `mapRequest` adds), as the failed request shows it.
        RequestError: (error) => {
          const hidden = secretShown() || redacts(error.request)
          return Effect.fail(
            fail(
              "Unreachable",
              hidden || typeof error.description !== "string" || error.description === ""
                ? error.reason
                : `${error.reason}: ${printable(error.description, 200)}`,
              { cause: hidden ? redactedCause(error.cause) : error.cause }
            )
          )
        },
        ResponseError: (error) =>
          error.reason === "StatusCode"
            // An app's client that refuses statuses itself (`HttpClient.filterStatusOk`): the status, as any other
            // refused answer, its body ended.
            ? Effect.zipRight(discard(error.response), Effect.flip(statusError(fail, error.response)))
            : Effect.fail(fail("Unreachable", `${error.reason} while reading the body`))
      }),
      // What the type does not show: an app's client built with combinators of its own (a `TimeoutException` of its own
      // timeout), or written in JavaScript, can fail with anything. Callers get a JwksError, as for any failed fetch.
      Effect.catchAll((error: unknown) =>
        Effect.fail(
          error instanceof JwksError
            ? error
            : fail("Unreachable", "the HTTP client failed", { cause: secretShown() ? redactedCause(error) : error })
        )
      ),
      Effect.timeoutFail({
        duration: options.timeout,
        onTimeout: () => fail("Timeout", `no complete answer within ${Duration.format(options.timeout)}`)
      })
    )
  })
}
