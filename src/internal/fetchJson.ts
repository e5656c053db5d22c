/**
 * @internal
 * GET a small JSON document from an identity provider, defensively: a timeout over the whole exchange, a cap on the
 * body (enforced as it streams in when its length is not declared), and a distinct `JwksError` reason for each way it
 * can go wrong.
 */
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Hash from "effect/Hash"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { JwksError } from "../JwksError.js"

/** @internal */
export interface FetchOptions {
  readonly timeout: Duration.Duration
  readonly maxBytes: number
}

const decodeJson = Schema.decodeUnknown(Schema.parseJson())
const utf8 = new TextDecoder("utf-8", { fatal: true })

/**
 * `fetch` follows redirects unless told otherwise, which would take the keys from wherever a 3xx points. Ask the
 * fetch client (when it is the one provided) to hand the redirect back instead, keeping the app's other options.
 * Other clients do not follow redirects unless wrapped with `HttpClient.followRedirects`.
 */
const withoutRedirects = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.flatMap(
    Effect.serviceOption(FetchHttpClient.RequestInit),
    (init) =>
      Effect.provideService(effect, FetchHttpClient.RequestInit, {
        ...Option.getOrUndefined(init),
        redirect: "manual"
      })
  )

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

/**
 * @internal
 * A URL as logs, metric labels, span attributes and errors show it: without user info, query or fragment, where a
 * gateway's API key or a password would sit (metrics backends are often read without authentication). A query is
 * shown as `?redacted-` and a short hash of it (Effect's `Hash.string`, 31 bits: not a secret's digest, only enough
 * that two URLs differing in their query, Azure AD B2C's `?p=<policy>` say, keep two names).
 *
 * An `@` makes a URL ambiguous: the parser ends the authority at the first `/`, `?` or `#`, so a password holding one
 * (base64 does) is read as a host, a port, a path or a query, and no text rule tells `https://host/a?q=x@y` from such
 * a password. So a URL with an `@` is shown as the parser reads it only when the parser found the user info itself and
 * no other `@` follows. Otherwise everything up to the last `@` is replaced by `redacted-` and a hash of it: nothing of
 * it shown, and two such URLs still told apart (`https://idp.example/users/@me/jwks` shows as `https://redacted-…@me/jwks`).
 */
export const displayUrl = (url: string): string => {
  let parsed: URL | undefined
  try {
    parsed = new URL(url)
  } catch {
    parsed = undefined
  }
  const hashOf = (text: string) => (Hash.string(text) >>> 0).toString(16).padStart(8, "0")
  const withQuery = (base: string, query: string) =>
    query === "" || query === "?" ? base : `${base}?redacted-${hashOf(query)}`
  const isHttp = parsed !== undefined && (parsed.protocol === "https:" || parsed.protocol === "http:")
  const at = url.indexOf("@")
  if (parsed !== undefined && isHttp) {
    const clean = at === -1 ||
      ((parsed.username !== "" || parsed.password !== "") && url.indexOf("@", at + 1) === -1)
    if (clean) {
      if (at === -1 && parsed.search === "" && parsed.hash === "") return url
      return withQuery(`${parsed.origin}${parsed.pathname}`, parsed.search)
    }
  }
  // A relative path has no authority: only its query and fragment go.
  if (url.startsWith("/") && !url.startsWith("//")) {
    const cut = url.search(/[?#]/)
    return cut === -1 ? url : withQuery(url.slice(0, cut), url[cut] === "?" ? url.slice(cut).split("#", 1)[0]! : "")
  }
  const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.exec(url)?.[0] ?? (url.startsWith("//") ? "//" : "")
  const afterScheme = url.slice(scheme.length)
  const last = afterScheme.lastIndexOf("@")
  const hidden = last === -1 ? "" : `redacted-${hashOf(afterScheme.slice(0, last))}@`
  const rest = afterScheme.slice(last + 1)
  const cut = rest.search(/[?#]/)
  if (cut === -1) return `${scheme}${hidden}${rest}`
  return withQuery(
    `${scheme}${hidden}${rest.slice(0, cut)}`,
    rest[cut] === "?" ? rest.slice(cut).split("#", 1)[0]! : ""
  )
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
  const fail = (reason: JwksError["reason"], description?: string, extra?: { status?: number; cause?: unknown }) =>
    new JwksError({ reason, source, ...(description === undefined ? {} : { description }), ...extra })
  const decodeShape = Schema.decodeUnknown(schema)
  return Effect.gen(function*() {
    const request = client.execute(HttpClientRequest.get(url, { acceptJson: true }))
    // The platform's own `http.client` span records the whole URL: none for a URL that carries what is redacted.
    const response = yield* withoutRedirects(
      redacted ? Effect.locally(request, HttpClient.currentTracerDisabledWhen, () => true) : request
    )
    if (response.status !== 200) {
      return yield* fail("HttpStatus", "expected 200", { status: response.status })
    }
    const declared = Number(response.headers["content-length"])
    if (Number.isFinite(declared) && declared > options.maxBytes) {
      return yield* fail("TooLarge", `content-length ${declared} exceeds the limit of ${options.maxBytes} bytes`)
    }
    // Built only when needed: a JwksError checks its fields as it is constructed, ~0.1 ms of a refresh's event-loop time.
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
      RequestError: (error) =>
        Effect.fail(fail("Unreachable", error.reason, { cause: redacted ? redactedCause(error.cause) : error.cause })),
      ResponseError: (error) => Effect.fail(fail("Unreachable", `${error.reason} while reading the body`))
    }),
    Effect.timeoutFail({
      duration: options.timeout,
      onTimeout: () => fail("Timeout", `no complete answer within ${Duration.format(options.timeout)}`)
    })
  )
}
