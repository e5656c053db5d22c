/**
 * Bearer authentication for `@effect/platform` servers, answering as RFC 6750 says:
 *
 * - no credentials (no `Authorization` header, or another scheme): 401 with `WWW-Authenticate: Bearer realm="api"`;
 * - a refused token (`TokenValidationError`): 401 with `error="invalid_token"` and a short `error_description` derived
 *   from the reason (never from the token);
 * - no keys to decide with (`JwksError`): 503 with `Retry-After`;
 * - a token without a required group or scope (`requireGroups`, `requireScopes`): 403 with
 *   `error="insufficient_scope"` (and `scope="..."` for scopes);
 * - more than one credential (several `Authorization` headers): 400 with `error="invalid_request"`, no token validated.
 *
 * Two integrations share that behaviour. For `HttpApi`, the {@link Authentication} middleware (bearer security,
 * implemented by {@link layerBearer}) provides {@link CurrentPrincipal} to the handlers of every group or endpoint it
 * guards. For `HttpRouter` apps, {@link middleware} wraps routes (`HttpRouter.use`) or a whole app. Handlers read the
 * principal from {@link CurrentPrincipal}, and {@link cacheInfo} answers a `/cache-info` status endpoint.
 *
 * `HttpApi` encodes errors into a response from their schema alone (status and body), so {@link layerBearer} (and a
 * guard that refuses, and the errors' schemas when they encode one for a request: an endpoint outside
 * {@link Authentication} that declares them) installs, for the request, a pre-response handler that reads the error
 * back from the response's status and body and adds the headers it lacks: whichever fiber failed (one the request's
 * fiber joins), however the server is wired, and nothing on a response of the app's own (after a refusal the handler
 * recovered from, say); see {@link challengeHeaders}. The errors are also `HttpServerRespondable`, so a plain router
 * renders them the same way. An error received from another service (decoded by an `HttpApiClient`) is never answered
 * as the request's own: see {@link Failure}.
 *
 * @since 0.1.0
 */
import * as HttpApiMiddleware from "@effect/platform/HttpApiMiddleware"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as HttpApiSecurity from "@effect/platform/HttpApiSecurity"
import * as HttpApp from "@effect/platform/HttpApp"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerRespondable from "@effect/platform/HttpServerRespondable"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"
import { globalValue } from "effect/GlobalValue"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as AST from "effect/SchemaAST"
import * as ConfigInternal from "./internal/config.js"
import * as JwksCache from "./JwksCache.js"
import type { Principal } from "./Principal.js"
import type * as TokenValidationError from "./TokenValidationError.js"
import * as TokenValidator from "./TokenValidator.js"

// -----------------------------------------------------------------------------
// The principal
// -----------------------------------------------------------------------------

/**
 * The `Principal` of the request's bearer token, provided to handlers by {@link Authentication} and
 * {@link middleware}.
 *
 * @since 0.1.0
 * @category tags
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import * as HttpAuth from "effect-jwks/HttpAuth"
 *
 * const me = Effect.map(HttpAuth.CurrentPrincipal, (principal) => ({ id: principal.id, groups: principal.groups }))
 * ```
 */
export class CurrentPrincipal extends Context.Tag("effect-jwks/CurrentPrincipal")<CurrentPrincipal, Principal>() {}

// -----------------------------------------------------------------------------
// Options
// -----------------------------------------------------------------------------

/**
 * @since 0.1.0
 * @category models
 * @example
 * ```ts
 * import * as HttpAuth from "effect-jwks/HttpAuth"
 *
 * const options: HttpAuth.Options = { realm: "orders", retryAfter: "10 seconds" }
 * const authenticate = HttpAuth.middleware(options)
 * ```
 */
export interface Options {
  /** The `realm` of every `WWW-Authenticate` challenge. Default `"api"`, also for a value that is not a string. */
  readonly realm?: string | undefined
  /**
   * The `Retry-After` of a 503 (keys unavailable), rounded up to whole seconds, at most 2^31 - 1. Default 30 seconds,
   * also for a value that is not a finite duration.
   */
  readonly retryAfter?: Duration.DurationInput | undefined
}

/**
 * @since 0.1.0
 * @category defaults
 * @example
 * ```ts
 * import * as HttpAuth from "effect-jwks/HttpAuth"
 *
 * console.log(HttpAuth.defaults.realm) // "api": WWW-Authenticate: Bearer realm="api"
 * ```
 */
export const defaults = {
  realm: "api",
  retryAfter: Duration.seconds(30)
} as const

interface Settings {
  readonly realm: string
  readonly retryAfterSeconds: number
}

/**
 * Junk from untyped config falls back to the defaults rather than break every refusal: a NaN retry (Effect reads it
 * as zero: "retry at once", in an outage) or a realm that is not a string (a 500 for each 401).
 */
const resolve = (options: Options | undefined): Settings => {
  const retryAfter = ConfigInternal.decodeDuration(options?.retryAfter ?? defaults.retryAfter)
  const seconds = retryAfter._tag === "Some" && Duration.isFinite(retryAfter.value)
    ? Math.min(ConfigInternal.maxRetryAfterSeconds, Math.max(0, Math.ceil(Duration.toMillis(retryAfter.value) / 1000)))
    : Duration.toSeconds(defaults.retryAfter)
  const realm = typeof options?.realm === "string" ? options.realm : defaults.realm
  return { realm, retryAfterSeconds: seconds }
}

/**
 * The settings of the authentication that let the current request in, for the guards and the respondable errors.
 * Set per request fiber by the middleware; the defaults otherwise.
 */
const currentSettings = globalValue(
  Symbol.for("effect-jwks/HttpAuth/currentSettings"),
  () => FiberRef.unsafeMake<Settings>(resolve(undefined))
)

/**
 * Marks the errors read from another service's answer: decoded through {@link Failure}, as an `HttpApiClient` of an
 * API guarded by {@link Authentication} reads them. Such an error says the other service refused this server's call,
 * not that this request's token is bad, so none of them is ever answered as this request's (see {@link Failure}).
 * A mark on the error itself, not a set of errors: Effect fails with a proxy of the error when a span is current
 * (as it is in a server's request), and the proxy reads the error's properties.
 */
const receivedMark = Symbol("effect-jwks/HttpAuth/received")

const markReceived = (error: AuthError): void => {
  Object.defineProperty(error, receivedMark, { value: true })
}

const isReceived = (error: AuthError): boolean =>
  (error as { readonly [receivedMark]?: boolean })[receivedMark] === true

/**
 * The answers (status and body) of this module's errors encoded (by its schemas) or rendered (by
 * {@link middleware}, or an error's own rendering) while a request is answered: those of received errors, and those
 * of the request's own. A response carrying a received one's answer, and no answer of the request's own, is answered
 * 500 (see {@link challengeHeaders}): whatever the order, whichever fiber of the request encoded it.
 *
 * Kept by request (by the request's `source`, the same for the request a router hands a mounted app), not by fiber:
 * fiber refs travel between requests (a fiber one request started and another joins, a memoized effect, a runtime
 * built after a render at boot). Nothing is noted outside a request. Past `maxAnswerChars` characters of a kind (a
 * stream reporting other services' refusals for hours, or long ones), that kind's overflow stands for all of them:
 * for received answers, any answer of this module's is then a 500; for the request's own, none counts as its own.
 */
interface Answers {
  readonly received: Noted
  readonly own: Noted
}

/** The answers of one kind, their length so far, and whether they outgrew the cap. */
interface Noted {
  readonly answers: Set<string>
  chars: number
  overflow: boolean
}

const maxAnswerChars = 1024 * 1024

const answersByRequest = new WeakMap<object, Answers>()

const requestKey = (request: HttpServerRequest.HttpServerRequest): object =>
  typeof request.source === "object" && request.source !== null ? request.source : request

const noted = (): Noted => ({ answers: new Set(), chars: 0, overflow: false })

const answersOf = (request: HttpServerRequest.HttpServerRequest): Answers => {
  const key = requestKey(request)
  const known = answersByRequest.get(key)
  if (known !== undefined) return known
  const made: Answers = { received: noted(), own: noted() }
  answersByRequest.set(key, made)
  return made
}

const answerOf = (error: AuthError): string => JSON.stringify([statusOf(error), body(error)])

/** Notes `error`'s answer for the request being answered, if any: received, or the request's own. */
const recordAnswer = (error: AuthError): Effect.Effect<void> =>
  Effect.map(Effect.serviceOption(HttpServerRequest.HttpServerRequest), (request) => {
    if (Option.isNone(request)) return
    const kind = isReceived(error) ? answersOf(request.value).received : answersOf(request.value).own
    const answer = answerOf(error)
    if (kind.overflow || kind.answers.has(answer)) return
    kind.chars += answer.length
    if (kind.chars > maxAnswerChars) kind.overflow = true
    else kind.answers.add(answer)
  })

/** Whether `answer` was noted among those of a received error (any, past the cap). */
const hasReceived = (answers: Answers | undefined, answer: string): boolean =>
  answers !== undefined && (answers.received.overflow || answers.received.answers.has(answer))

/** Whether `answer` was noted among the request's own (none counts past the cap). */
const hasOwn = (answers: Answers | undefined, answer: string): boolean =>
  answers !== undefined && !answers.own.overflow && answers.own.answers.has(answer)

const hasAnyReceived = (answers: Answers | undefined): boolean =>
  answers !== undefined && (answers.received.answers.size > 0 || answers.received.overflow)

/**
 * Encodes `error`. Encoded while an HTTP server answers a request (an `HttpServerRequest` in context), it is noted
 * for that request, with the handler that reads the response back (see {@link challengeHeaders}). A received one: if
 * the response turns out to carry it (how `HttpApi` renders a handler's failure), the answer is a 500. Encoded into
 * anything else (a success body, an error of the app's own, an RPC answer, a workflow's journal) it is left as it is.
 * An error of this request's own is noted as such: a response carrying an answer of the request's own is never taken
 * for a received error's, and gets its headers (`WWW-Authenticate`, ...) even from an endpoint no guard of this module
 * runs for (an `HttpApi` endpoint that declares the class and fails with it).
 */
const encodeNoting = <I>(error: AuthError, encoded: () => I): Effect.Effect<I, ParseResult.ParseIssue> =>
  Effect.as(
    Effect.flatMap(
      Effect.serviceOption(HttpServerRequest.HttpServerRequest),
      (request) => Option.isNone(request) ? Effect.void : Effect.zipRight(recordAnswer(error), challengeHeaders)
    ),
    encoded()
  )

const guardedAsts = new WeakMap<object, AST.Transformation>()

/**
 * An error class's own schema (`{ _tag, error, error_description }` on the wire, with its status), guarded as
 * {@link Failure} is: what it decodes is marked received, and a received error encoded for a request is noted for it.
 * Else an API that declares the class (`addError(HttpAuth.Unauthorized)`), or a service whose answers a client reads
 * through it, would pass another service's refusal on as this request's.
 */
const guardedAst = (self: object, base: AST.Transformation): AST.Transformation => {
  const known = guardedAsts.get(self)
  if (known !== undefined) return known
  const guarded = Schema.transformOrFail(
    Schema.make<AuthError>(base),
    Schema.make<AuthError>(AST.typeAST(base)),
    {
      strict: true,
      decode: (error) => {
        markReceived(error)
        return ParseResult.succeed(error)
      },
      encode: (error) => encodeNoting(error, () => error)
    }
  ).annotations({ ...base.annotations, identifier: (self as { readonly identifier: string }).identifier })
    .ast as AST.Transformation
  guardedAsts.set(self, guarded)
  return guarded
}

// -----------------------------------------------------------------------------
// Errors
// -----------------------------------------------------------------------------

/**
 * 401: no bearer token (`error: "unauthorized"`, and the challenge names the realm only), or a refused token
 * (`error: "invalid_token"`). The HTTP body is `{ error, error_description }` (with `_tag` from an `HttpApi` endpoint
 * that declares the class itself, `addError(HttpAuth.Unauthorized)`).
 *
 * @since 0.1.0
 * @category errors
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import type * as HttpAuth from "effect-jwks/HttpAuth"
 *
 * // A call through an `HttpApiClient` of an API guarded by `Authentication`.
 * declare const getMe: Effect.Effect<string, HttpAuth.AuthError>
 * const me = getMe.pipe(Effect.catchTag("Unauthorized", (e) => Effect.succeed(`please sign in again (${e.error})`)))
 * ```
 */
export class Unauthorized extends Schema.TaggedError<Unauthorized>("effect-jwks/HttpAuth/Unauthorized")(
  "Unauthorized",
  {
    error: Schema.Literal("unauthorized", "invalid_token"),
    error_description: Schema.String
  },
  HttpApiSchema.annotations({ status: 401 })
) {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `${this.error}: ${this.error_description}`
  }

  /**
   * The class as a schema, guarded as {@link Failure} is.
   *
   * @since 0.1.0
   */
  static override get ast(): AST.Transformation {
    return guardedAst(this, super.ast)
  }

  /**
   * @since 0.1.0
   */
  [HttpServerRespondable.symbol]() {
    return respond(this)
  }
}

/**
 * 403: the token is good but lacks a required group or scope (`error: "insufficient_scope"`). `scope` lists the
 * required scopes, when scopes were required. The HTTP body is `{ error, error_description }` (plus `scope`; and
 * `_tag` from an endpoint that declares the class itself).
 *
 * @since 0.1.0
 * @category errors
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import * as HttpAuth from "effect-jwks/HttpAuth"
 *
 * // Admins get the full view, everyone else a reduced one instead of a 403.
 * const view = HttpAuth.requireGroups("admin").pipe(
 *   Effect.as("full view"),
 *   Effect.catchTag("Forbidden", () => Effect.succeed("reduced view"))
 * )
 * ```
 */
export class Forbidden extends Schema.TaggedError<Forbidden>("effect-jwks/HttpAuth/Forbidden")(
  "Forbidden",
  {
    error: Schema.Literal("insufficient_scope").pipe(
      Schema.propertySignature,
      Schema.withConstructorDefault(() => "insufficient_scope" as const)
    ),
    error_description: Schema.String,
    scope: Schema.optional(Schema.String)
  },
  HttpApiSchema.annotations({ status: 403 })
) {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `${this.error}: ${this.error_description}`
  }

  /**
   * The class as a schema, guarded as {@link Failure} is.
   *
   * @since 0.1.0
   */
  static override get ast(): AST.Transformation {
    return guardedAst(this, super.ast)
  }

  /**
   * @since 0.1.0
   */
  [HttpServerRespondable.symbol]() {
    return respond(this)
  }
}

/**
 * 503: no signing keys could be had to decide on the token (a `JwksError`); the answer carries `Retry-After`. The
 * HTTP body is `{ error: "temporarily_unavailable", error_description }` (and `_tag` from an endpoint that declares
 * the class itself), without the cause (which names the IdP).
 *
 * @since 0.1.0
 * @category errors
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import type * as HttpAuth from "effect-jwks/HttpAuth"
 *
 * // A call through an `HttpApiClient`: the server could not check the token yet, so show the last known data.
 * declare const getOrders: Effect.Effect<ReadonlyArray<string>, HttpAuth.AuthError>
 * declare const cachedOrders: ReadonlyArray<string>
 * const orders = getOrders.pipe(Effect.catchTag("ServiceUnavailable", () => Effect.succeed(cachedOrders)))
 * ```
 */
export class ServiceUnavailable
  extends Schema.TaggedError<ServiceUnavailable>("effect-jwks/HttpAuth/ServiceUnavailable")(
    "ServiceUnavailable",
    {
      error: Schema.Literal("temporarily_unavailable").pipe(
        Schema.propertySignature,
        Schema.withConstructorDefault(() => "temporarily_unavailable" as const)
      ),
      error_description: Schema.String
    },
    HttpApiSchema.annotations({ status: 503 })
  )
{
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `${this.error}: ${this.error_description}`
  }

  /**
   * The class as a schema, guarded as {@link Failure} is.
   *
   * @since 0.1.0
   */
  static override get ast(): AST.Transformation {
    return guardedAst(this, super.ast)
  }

  /**
   * @since 0.1.0
   */
  [HttpServerRespondable.symbol]() {
    return respond(this)
  }
}

/**
 * 400: the request carries more than one credential (several `Authorization` headers, which Node would otherwise
 * reduce to the first and fetch-style servers join), so which one counts is ambiguous (RFC 6750, section 3.1:
 * `error: "invalid_request"`). The HTTP body is `{ error, error_description }` (and `_tag` from an endpoint that
 * declares the class itself); no token is validated.
 *
 * @since 0.1.0
 * @category errors
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import type * as HttpAuth from "effect-jwks/HttpAuth"
 *
 * // A call through an `HttpApiClient`: a proxy between added a second Authorization header.
 * declare const getMe: Effect.Effect<string, HttpAuth.AuthError>
 * const me = getMe.pipe(
 *   Effect.catchTag("BadRequest", (e) => Effect.die(`misconfigured proxy: ${e.error_description}`))
 * )
 * ```
 */
export class BadRequest extends Schema.TaggedError<BadRequest>("effect-jwks/HttpAuth/BadRequest")(
  "BadRequest",
  {
    error: Schema.Literal("invalid_request").pipe(
      Schema.propertySignature,
      Schema.withConstructorDefault(() => "invalid_request" as const)
    ),
    error_description: Schema.String
  },
  HttpApiSchema.annotations({ status: 400 })
) {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `${this.error}: ${this.error_description}`
  }

  /**
   * The class as a schema, guarded as {@link Failure} is.
   *
   * @since 0.1.0
   */
  static override get ast(): AST.Transformation {
    return guardedAst(this, super.ast)
  }

  /**
   * @since 0.1.0
   */
  [HttpServerRespondable.symbol]() {
    return respond(this)
  }
}

/**
 * @since 0.1.0
 * @category errors
 * @example
 * ```ts
 * import type * as HttpAuth from "effect-jwks/HttpAuth"
 *
 * // What to tell the user when a service guarded by `Authentication` refused our call.
 * const advice: Record<HttpAuth.AuthError["_tag"], string> = {
 *   Unauthorized: "please sign in again",
 *   Forbidden: "you lack a permission for this",
 *   ServiceUnavailable: "please try again later",
 *   BadRequest: "our request was malformed"
 * }
 * const explain = (error: HttpAuth.AuthError): string => advice[error._tag]
 * ```
 */
export type AuthError = Unauthorized | Forbidden | ServiceUnavailable | BadRequest

/**
 * @since 0.1.0
 * @category refinements
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import * as HttpAuth from "effect-jwks/HttpAuth"
 *
 * declare const handler: Effect.Effect<string, HttpAuth.Forbidden | Error>
 * const logged = Effect.tapError(handler, (e) =>
 *   HttpAuth.isAuthError(e) ? Effect.logInfo(`refused: ${e.error}`) : Effect.logError("handler failed", e))
 * ```
 */
export const isAuthError = (u: unknown): u is AuthError =>
  u instanceof Unauthorized || u instanceof Forbidden || u instanceof ServiceUnavailable || u instanceof BadRequest

/**
 * The same error on the wire: `{ error, error_description }` without `_tag`, with its status. A decoded one is
 * marked received, and a received one encoded for a request is noted for it (see `encodeNoting`).
 */
const wire = <Self extends AuthError, F extends Schema.Struct.Fields>(
  self: Schema.Schema<Self, any, never> & { new(props: any): Self },
  fields: F,
  status: number,
  identifier: string,
  description: string
) =>
  Schema.transformOrFail(Schema.Struct(fields), Schema.typeSchema(self), {
    strict: false,
    decode: (body) => {
      const error = new self(body)
      markReceived(error)
      return ParseResult.succeed(error)
    },
    encode: (error) => encodeNoting(error, () => body(error))
  }).annotations(HttpApiSchema.annotations({ status, identifier, description }))

/**
 * The failure schema of {@link Authentication}: the four errors as their RFC 6750 bodies (no `_tag`), with their
 * statuses. Every group or endpoint guarded by the middleware can fail with them, so handlers can use the guards
 * without `addError`.
 *
 * An error decoded through it (by an `HttpApiClient` calling another service guarded by `Authentication`), or through
 * the error classes' own schemas, is marked as received: it tells of that service refusing this server's call, not of
 * this request's token. If a handler lets one through, the answer is a 500 (as for any error the app did not handle;
 * logged as a warning), never a 401 or 403 with this server's challenge, which would tell the caller that its own
 * token is bad. (In an `HttpApi`, which renders the error from its schema, the response is read back, as long as the
 * request's fiber joins the one that ran the handler (see {@link challengeHeaders}): one carrying
 * the status and body of a received error this request encoded becomes the 500, unless an error of this request's own
 * with that very answer was encoded or rendered in it too.) Anywhere else a received error
 * encodes as any other: in a success body, inside an error of the app's own, in an RPC answer or a workflow's
 * journal. To pass such a refusal on as this request's deliberately, construct a new error from it.
 *
 * @since 0.1.0
 * @category schemas
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import * as HttpAuth from "effect-jwks/HttpAuth"
 *
 * const error = Schema.decodeUnknownSync(HttpAuth.Failure)({ error: "invalid_token", error_description: "expired" })
 * error._tag // "Unauthorized"
 * ```
 */
export const Failure: Schema.Schema<
  AuthError,
  | { readonly error: "unauthorized" | "invalid_token"; readonly error_description: string }
  | { readonly error: "insufficient_scope"; readonly error_description: string; readonly scope?: string }
  | { readonly error: "temporarily_unavailable"; readonly error_description: string }
  | { readonly error: "invalid_request"; readonly error_description: string }
> = Schema.Union(
  wire(
    Unauthorized,
    { error: Schema.Literal("unauthorized", "invalid_token"), error_description: Schema.String },
    401,
    "BearerUnauthorized",
    "No bearer token, or a token that was refused"
  ),
  wire(
    Forbidden,
    {
      error: Schema.Literal("insufficient_scope"),
      error_description: Schema.String,
      scope: Schema.optionalWith(Schema.String, { exact: true })
    },
    403,
    "BearerForbidden",
    "The token lacks a required group or scope"
  ),
  wire(
    ServiceUnavailable,
    { error: Schema.Literal("temporarily_unavailable"), error_description: Schema.String },
    503,
    "BearerUnavailable",
    "The signing keys could not be had; retry later"
  ),
  wire(
    BadRequest,
    { error: Schema.Literal("invalid_request"), error_description: Schema.String },
    400,
    "BearerBadRequest",
    "More than one credential: which one counts is ambiguous"
  )
)

// -----------------------------------------------------------------------------
// Rendering (RFC 6750)
// -----------------------------------------------------------------------------

/** RFC 6750 §3: the characters allowed in `realm`, `error_description` and `scope` values (no `"` and no `\`). */
const quoteSafe = (text: string): string => text.replace(/[^\x20\x21\x23-\x5B\x5D-\x7E]/g, "")

/** A scope token (RFC 6749 §3.3): printable ASCII but `"` and `\`, no spaces. */
const isScopeToken = (scope: string): boolean => /^[\x21\x23-\x5B\x5D-\x7E]+$/.test(scope)

/**
 * A 403's `scope` as its challenge names it: the scope tokens of it only (a name with a quote in it is left out, never
 * changed into another name), none when none is left.
 */
const challengeScope = (scope: string | undefined): string | undefined => {
  const names = scope?.split(/[ \t]+/).filter(isScopeToken) ?? []
  return names.length === 0 ? undefined : names.join(" ")
}

const challenge = (realm: string, params: ReadonlyArray<readonly [string, string | undefined]>): string =>
  [
    `Bearer realm="${quoteSafe(realm)}"`,
    ...params.flatMap(([name, value]) => value === undefined ? [] : [`${name}="${quoteSafe(value)}"`])
  ].join(", ")

const statusOf = (error: AuthError): number =>
  error._tag === "Unauthorized" ? 401 : error._tag === "Forbidden" ? 403 : error._tag === "BadRequest" ? 400 : 503

const body = (error: AuthError): Record<string, string> =>
  error._tag === "Forbidden" && error.scope !== undefined
    ? { error: error.error, error_description: error.error_description, scope: error.scope }
    : { error: error.error, error_description: error.error_description }

const headersOf = (error: AuthError, settings: Settings): Record<string, string> => {
  switch (error._tag) {
    case "Unauthorized":
      return {
        "www-authenticate": error.error === "invalid_token"
          ? challenge(settings.realm, [["error", error.error], ["error_description", error.error_description]])
          : challenge(settings.realm, []),
        "cache-control": "no-store"
      }
    case "Forbidden":
      return {
        "www-authenticate": challenge(settings.realm, [["error", error.error], ["scope", challengeScope(error.scope)]]),
        "cache-control": "no-store"
      }
    case "ServiceUnavailable":
      return { "retry-after": String(settings.retryAfterSeconds), "cache-control": "no-store" }
    case "BadRequest":
      return {
        "www-authenticate": challenge(settings.realm, [
          ["error", error.error],
          ["error_description", error.error_description]
        ]),
        "cache-control": "no-store"
      }
  }
}

const toResponse = (error: AuthError, settings: Settings): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.unsafeJson(body(error), { status: statusOf(error), headers: headersOf(error, settings) })

const respond = (error: AuthError): Effect.Effect<HttpServerResponse.HttpServerResponse> =>
  isReceived(error)
    ? answeredAs500(error)
    : Effect.zipRight(
      recordAnswer(error),
      Effect.map(FiberRef.get(currentSettings), (settings) => toResponse(error, settings))
    )

/**
 * The answer to a received error: what the platform answers for a failure that is not the request's to show, an empty
 * 500. Read back from a response, it keeps the headers earlier handlers put on it (CORS, say), not those of the body
 * or the challenge.
 */
const answeredAs500 = (
  error: AuthError,
  headers: Readonly<Record<string, string>> = {}
): Effect.Effect<HttpServerResponse.HttpServerResponse> =>
  Effect.as(
    Effect.logWarning(
      "An auth error received from another service reached the response: answered 500, not as this request's"
    ).pipe(Effect.annotateLogs({ module: "HttpAuth", error: error.error })),
    HttpServerResponse.empty({
      status: 500,
      headers: Object.fromEntries(Object.entries(headers).filter(([name]) => !answerHeaders.has(name)))
    })
  )

/** The headers of an error's answer: its body's, and those this module adds. */
const answerHeaders = new Set([
  "content-type",
  "content-length",
  "content-encoding",
  "www-authenticate",
  "retry-after",
  "cache-control"
])

const decodeFailure = Schema.decodeUnknownOption(Failure)
/** Bodies of this module's errors are small; the app's own larger bodies are not parsed. */
const maxErrorBodyBytes = 64 * 1024
const utf8 = new TextDecoder()

/**
 * The error of ours a response carries, read back from its status and JSON body: how `HttpApi` renders one (status and
 * body only, from the error's schema). Anything else (another error, a body of the app's own) is `undefined`.
 */
const carriedError = (
  response: HttpServerResponse.HttpServerResponse,
  answers: Answers | undefined
): AuthError | undefined => {
  const error = readError(response, maxErrorBodyBytes)
  // A 400 only as this library answers one, or as a `BadRequest` this request encoded (noted under the request the
  // server made: not one a middleware rebuilt, whose answers may be another request's, see `challengeHeaders`): an
  // app's own `invalid_request` (OAuth's error shape) is common.
  return error?._tag === "BadRequest" && error.error_description !== severalCredentials.error_description &&
      !hasOwn(answers, answerOf(error))
    ? undefined
    : error
}

/** An error of this module's shape that the response carries, of a body up to `maxBytes`: its status and body. */
const readError = (response: HttpServerResponse.HttpServerResponse, maxBytes: number): AuthError | undefined => {
  if (response.status !== 400 && response.status !== 401 && response.status !== 403 && response.status !== 503) {
    return undefined
  }
  const body = response.body
  if (body._tag !== "Uint8Array" || body.body.length > maxBytes) return undefined
  let json: unknown
  try {
    json = JSON.parse(utf8.decode(body.body))
  } catch {
    return undefined
  }
  // Only a body of this module's shape: its members, and its own tag if any. An error of the app's own whose body holds
  // these members and more (its own `_tag`, a refusal received from another service that it carries) is the app's.
  if (!isErrorBody(json)) return undefined
  const error = Option.getOrUndefined(decodeFailure(json))
  return error !== undefined && statusOf(error) === response.status ? error : undefined
}

const ownTags: ReadonlySet<unknown> = new Set(["Unauthorized", "Forbidden", "ServiceUnavailable", "BadRequest"])
const bodyMembers: ReadonlySet<string> = new Set(["_tag", "error", "error_description", "scope"])

const isErrorBody = (json: unknown): boolean =>
  typeof json === "object" && json !== null && !Array.isArray(json) &&
  Object.keys(json).every((key) => bodyMembers.has(key)) &&
  (!Object.hasOwn(json, "_tag") || ownTags.has((json as { readonly _tag?: unknown })._tag))

/**
 * The handler chains known to hold the challenge handler, with the settings it was installed for. One handler per
 * request and settings, not one per refusal: each is one more link of the platform's chain, run nested, and an app
 * that recovers from thousands of refusals in one request (a list filtered by a guard) would overflow the stack when
 * the response goes out. Kept by chain, not by fiber: a chain is never changed, only replaced, so one known to hold
 * the handler always does, whether a fiber joined since brought another (installed again) or a scoped chain was left
 * (known again).
 */
const challengeChains = new WeakMap<object, Settings>()

/**
 * Installs, for the current request, a pre-response handler that adds the headers (`WWW-Authenticate`,
 * `Retry-After`, `Cache-Control: no-store`) of the error of this module that the response turns out to carry
 * (read back from its status and JSON body), whichever fiber failed with it (as long as the request's fiber joins
 * it: the platform keeps these handlers per fiber, so an app run in a fiber that is only awaited loses them) and
 * however the server is wired (`HttpApiBuilder`, `HttpLayerRouter`). Judged from the response itself, so a refusal the
 * handler recovered from adds nothing to a later response of the app's own; and a header the response already has is
 * kept, so an app can write its own challenge (with RFC 9728's `resource_metadata`, say). Only a body of this module's
 * members counts (`error`, `error_description`, `scope`, and one of its errors' `_tag`): an error of the app's own with
 * more (its own `_tag`, a refusal it received and carries) is answered as the app wrote it. A 400 counts only with this
 * library's own {@link BadRequest} body, or a `BadRequest` this request encoded (not behind a middleware that hands the
 * app a rebuilt request, whose noted answers may be another request's): `invalid_request` is OAuth's shape for any bad
 * request, and an app's own must not get a bearer challenge.
 *
 * {@link layerBearer} installs it for every request, and a refusing guard for its own request fiber. An app that
 * implements {@link Authentication} itself runs it in its implementation, so that a guard refused in a child fiber
 * (`Effect.all` with concurrency, a timeout) still gets its challenge. Outside a request (no `HttpServerRequest`: a
 * guard refused at start-up) it installs nothing.
 *
 * @since 0.1.0
 * @category middleware
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import * as HttpAuth from "effect-jwks/HttpAuth"
 * import type { Principal } from "effect-jwks/Principal"
 *
 * declare const fromSession: Effect.Effect<Principal, HttpAuth.Unauthorized>
 * const SessionAuthentication = Layer.succeed(
 *   HttpAuth.Authentication,
 *   HttpAuth.Authentication.of({ bearer: () => Effect.zipRight(HttpAuth.challengeHeaders, fromSession) })
 * )
 * ```
 */
export const challengeHeaders: Effect.Effect<void> = Effect.flatMap(
  Effect.all([
    FiberRef.get(currentSettings),
    FiberRef.get(HttpApp.currentPreResponseHandlers),
    Effect.serviceOption(HttpServerRequest.HttpServerRequest)
  ]),
  ([settings, chain, installedFor]) => {
    // Outside any request (a guard refused at boot, in a layer or a self-check), there is no response to mend: a
    // handler installed there would stay in the runtime's chain, ahead of every request's own, with these settings.
    if (Option.isNone(installedFor) || challengeChains.get(chain) === settings) return Effect.void
    const appKey = requestKey(installedFor.value)
    return Effect.zipRight(
      HttpApp.appendPreResponseHandler((request, response) =>
        Effect.suspend(() => {
          // The answers noted for the request the server made, and for the one the app saw if a middleware handed it
          // another (rebuilt, not `modify`d): received answers from either, the request's own only from the first
          // (this handler may have come with a fiber of another request). Judged once: a request object answered
          // twice starts afresh.
          const key = requestKey(request)
          const answers = answersByRequest.get(key)
          const appAnswers = appKey === key ? undefined : answersByRequest.get(appKey)
          answersByRequest.delete(key)
          // The rendering of a received error (see `answersByRequest`), whatever its size and description: not this
          // request's.
          if (hasAnyReceived(answers) || hasAnyReceived(appAnswers)) {
            const read = readError(response, Infinity)
            const answer = read === undefined ? undefined : answerOf(read)
            if (
              read !== undefined && answer !== undefined &&
              (hasReceived(answers, answer) || hasReceived(appAnswers, answer)) && !hasOwn(answers, answer)
            ) {
              return answeredAs500(read, response.headers)
            }
          }
          const error = carriedError(response, answers)
          if (error === undefined) return Effect.succeed(response)
          const missing = Object.entries(headersOf(error, settings)).filter(([name]) =>
            response.headers[name] === undefined
          )
          return Effect.succeed(
            missing.length === 0 ? response : HttpServerResponse.setHeaders(response, Object.fromEntries(missing))
          )
        })
      ),
      Effect.flatMap(
        FiberRef.get(HttpApp.currentPreResponseHandlers),
        (withOurs) => Effect.sync(() => challengeChains.set(withOurs, settings))
      )
    )
  }
)

/** A guard's refusal, with the challenge for its request fiber (see {@link challengeHeaders}). */
const refuse = <E extends AuthError>(error: E): Effect.Effect<never, E> =>
  Effect.zipRight(challengeHeaders, Effect.fail(error))

// -----------------------------------------------------------------------------
// Authentication
// -----------------------------------------------------------------------------

const descriptions: Record<TokenValidationError.Reason, string> = {
  Malformed: "the token is malformed",
  TooLarge: "the token is too large",
  AlgorithmNotAllowed: "the token's signing algorithm is not allowed",
  NoMatchingKey: "the token was signed by an unknown key",
  InvalidSignature: "the token's signature is invalid",
  Expired: "the token has expired",
  NotYetValid: "the token is not valid yet",
  IssuerMismatch: "the token's issuer is not accepted",
  AudienceMismatch: "the token is not meant for this audience",
  TokenType: "this type of token is not accepted",
  MissingClaim: "the token lacks a required claim",
  CustomCheck: "the token was refused"
}

const missingToken = new Unauthorized({ error: "unauthorized", error_description: "a bearer token is required" })

const keysUnavailable = new ServiceUnavailable({ error_description: "the signing keys are unavailable; retry later" })

/**
 * The token of an `Authorization: Bearer <token>` header; the scheme is case-insensitive (RFC 7235). No regular
 * expression: the header is attacker-controlled.
 */
const bearerToken = (authorization: string | undefined): string | undefined => {
  if (authorization === undefined) return undefined
  const value = trimOws(authorization)
  if (value.length < 8 || value.slice(0, 6).toLowerCase() !== "bearer") return undefined
  const separator = value.charCodeAt(6)
  if (separator !== 0x20 && separator !== 0x09) return undefined
  const token = trimOws(value.slice(7))
  return token.length === 0 ? undefined : token
}

/**
 * Without HTTP's optional white space (space and tab) at either end; not `String.prototype.trim`, which also drops
 * Unicode spaces such as U+00A0 (a 0xA0 byte, which Node accepts in a header value) and would pass a padded credential
 * as a well-formed one.
 */
const trimOws = (value: string): string => {
  let start = 0
  let end = value.length
  while (start < end && (value.charCodeAt(start) === 0x20 || value.charCodeAt(start) === 0x09)) start++
  while (end > start && (value.charCodeAt(end - 1) === 0x20 || value.charCodeAt(end - 1) === 0x09)) end--
  return value.slice(start, end)
}

/**
 * Whether the request (with its bearer `token`, if any) has more than one `Authorization` field. Node keeps the first
 * in `headers` (the rest are only in its `rawHeaders`, read when the platform's request has them); fetch-style servers
 * join them with `, `, and a comma is in no bearer token: either way, one request with two credentials. (A comma in
 * another scheme's credentials, a Digest one's, is that scheme's business: such a request has no bearer token.)
 */
const hasSeveralCredentials = (request: HttpServerRequest.HttpServerRequest, token: string | undefined): boolean => {
  const authorization = request.headers.authorization
  if (token?.includes(",") === true) return true
  // Another scheme's credentials joined with a bearer one (`Basic ..., Bearer ...`).
  if (authorization !== undefined && /,[ \t]*bearer[ \t]/i.test(authorization)) return true
  const raw = (request.source as { readonly rawHeaders?: unknown } | undefined)?.rawHeaders
  if (!Array.isArray(raw)) return false
  let count = 0
  for (let i = 0; i < raw.length; i += 2) {
    if (typeof raw[i] === "string" && raw[i].toLowerCase() === "authorization" && ++count > 1) return true
  }
  return false
}

const severalCredentials = new BadRequest({ error_description: "the request has more than one credential" })

const authenticate = (
  validator: TokenValidator.Service,
  request: HttpServerRequest.HttpServerRequest
): Effect.Effect<Principal, Unauthorized | ServiceUnavailable | BadRequest> => {
  const token = bearerToken(request.headers.authorization)
  if (hasSeveralCredentials(request, token)) return Effect.fail(severalCredentials)
  if (token === undefined) return Effect.fail(missingToken)
  return validator.validate(token).pipe(
    Effect.catchTags({
      TokenValidationError: (error) =>
        Effect.zipRight(
          Effect.logDebug("Bearer token refused").pipe(Effect.annotateLogs({ reason: error.reason })),
          Effect.fail(new Unauthorized({ error: "invalid_token", error_description: descriptions[error.reason] }))
        ),
      JwksError: (error) =>
        Effect.zipRight(
          // Debug, not warning: the cache already logs each failed fetch (an error while it holds no keys), and this
          // runs once per request.
          Effect.logDebug("Bearer token not checked: signing keys unavailable").pipe(
            Effect.annotateLogs({ reason: error.reason })
          ),
          Effect.fail(keysUnavailable)
        )
    }),
    Effect.annotateLogs({ module: "HttpAuth" })
  )
}

/**
 * The bearer-token middleware of an `HttpApi`: add it to a group or endpoint (`.middleware(HttpAuth.Authentication)`)
 * and its handlers can read {@link CurrentPrincipal}. Its failures ({@link Failure}) are the RFC 6750 answers:
 * 401, 403 (from the guards), 503, and 400 for a request with more than one credential. Implemented by
 * {@link layerBearer}.
 *
 * @since 0.1.0
 * @category middleware
 * @example
 * ```ts
 * import { HttpApi, HttpApiEndpoint, HttpApiGroup } from "@effect/platform"
 * import { Schema } from "effect"
 * import * as HttpAuth from "effect-jwks/HttpAuth"
 *
 * class Api extends HttpApi.make("api").add(
 *   HttpApiGroup.make("me").add(HttpApiEndpoint.get("me", "/me").addSuccess(Schema.String))
 *     .middleware(HttpAuth.Authentication)
 * ) {}
 * ```
 */
export class Authentication extends HttpApiMiddleware.Tag<Authentication>()("effect-jwks/HttpAuth/Authentication", {
  failure: Failure,
  provides: CurrentPrincipal,
  security: { bearer: HttpApiSecurity.bearer }
}) {}

/**
 * The implementation of {@link Authentication}, validating with the `TokenValidator` in context.
 *
 * The header is read from the request itself rather than from the decoded security value, because the platform's
 * bearer decoding does not check the scheme: `Basic ...` must get the realm-only challenge, not `invalid_token`.
 * For each request it also installs the handler that puts the challenge headers on a response carrying one of this
 * module's errors (see the module's description).
 *
 * @since 0.1.0
 * @category layers
 * @example
 * ```ts
 * import { HttpApi, HttpApiBuilder, HttpApiEndpoint, HttpApiGroup } from "@effect/platform"
 * import { Effect, Layer, Schema } from "effect"
 * import * as HttpAuth from "effect-jwks/HttpAuth"
 *
 * class Api extends HttpApi.make("api").add(
 *   HttpApiGroup.make("me").add(HttpApiEndpoint.get("me", "/me").addSuccess(Schema.String))
 *     .middleware(HttpAuth.Authentication)
 * ) {}
 * const MeLive = HttpApiBuilder.group(Api, "me", (handlers) =>
 *   handlers.handle("me", () => Effect.map(HttpAuth.CurrentPrincipal, (principal) => principal.id))
 * ).pipe(Layer.provide(HttpAuth.layerBearer({ realm: "my-api" })))
 * ```
 */
export const layerBearer = (options?: Options): Layer.Layer<Authentication, never, TokenValidator.TokenValidator> => {
  const settings = resolve(options)
  return Layer.effect(
    Authentication,
    Effect.map(TokenValidator.TokenValidator, (validator) =>
      Authentication.of({
        bearer: (_credential) =>
          Effect.zipRight(
            Effect.zipRight(FiberRef.set(currentSettings, settings), challengeHeaders),
            Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => authenticate(validator, request))
          )
      }))
  )
}

/**
 * Bearer authentication for `HttpRouter` apps: validates `Authorization: Bearer <token>` with the `TokenValidator` in
 * context, runs the wrapped app with {@link CurrentPrincipal}, and answers 400 / 401 / 403 / 503 itself (403 when a
 * guard in the app fails). Apply it to the protected routes with `HttpRouter.use`, to one handler with `pipe`, or to a
 * whole app as the middleware of `HttpServer.serve`. An error of this module that the app got from another service
 * (decoded through {@link Failure} by an `HttpApiClient`) is not this request's: it is left to the platform, a 500 (see
 * {@link Failure}).
 *
 * @since 0.1.0
 * @category middleware
 * @example
 * ```ts
 * import { HttpRouter, HttpServerResponse } from "@effect/platform"
 * import { Effect } from "effect"
 * import * as HttpAuth from "effect-jwks/HttpAuth"
 *
 * const Protected = HttpRouter.empty.pipe(
 *   HttpRouter.get("/me", Effect.flatMap(HttpAuth.CurrentPrincipal, (p) => HttpServerResponse.json({ id: p.id }))),
 *   HttpRouter.use(HttpAuth.middleware({ realm: "my-api" }))
 * )
 * ```
 */
export const middleware = (options?: Options) => {
  const settings = resolve(options)
  return <E, R>(
    app: HttpApp.Default<E, R>
  ): HttpApp.Default<
    Exclude<E, AuthError>,
    Exclude<R, CurrentPrincipal> | TokenValidator.TokenValidator | HttpServerRequest.HttpServerRequest
  > =>
    Effect.flatMap(
      Effect.zip(TokenValidator.TokenValidator, HttpServerRequest.HttpServerRequest),
      ([validator, request]) => authenticate(validator, request)
    ).pipe(
      Effect.flatMap((principal) => Effect.provideService(app, CurrentPrincipal, principal)),
      Effect.catchAll((error) =>
        !isAuthError(error)
          ? Effect.fail(error)
          // Not this request's: left to the platform, which answers it 500 (through the error's `respond`).
          : isReceived(error)
          ? Effect.die(error)
          : Effect.as(recordAnswer(error), toResponse(error, settings))
      ),
      Effect.locally(currentSettings, settings)
    ) as HttpApp.Default<
      Exclude<E, AuthError>,
      Exclude<R, CurrentPrincipal> | TokenValidator.TokenValidator | HttpServerRequest.HttpServerRequest
    >
}

// -----------------------------------------------------------------------------
// Guards
// -----------------------------------------------------------------------------

/**
 * The current principal if it is in every one of `groups`; else a {@link Forbidden} (403,
 * `error="insufficient_scope"`). Use it in a handler, or wrap a route with {@link guard}. No groups at all refuses
 * everyone: a list read from configuration that turns out empty must not open the route.
 *
 * @since 0.1.0
 * @category guards
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import * as HttpAuth from "effect-jwks/HttpAuth"
 *
 * const admin = Effect.gen(function*() {
 *   const principal = yield* HttpAuth.requireGroups("admin")
 *   return `hello admin ${principal.id}`
 * })
 * ```
 */
export const requireGroups = (
  ...groups: ReadonlyArray<string>
): Effect.Effect<Principal, Forbidden, CurrentPrincipal> =>
  Effect.flatMap(
    CurrentPrincipal,
    (principal) =>
      groups.length > 0 && groups.every((group) => principal.groups.includes(group))
        ? Effect.succeed(principal)
        : refuse(new Forbidden({ error_description: "the token lacks a required group" }))
  )

/**
 * The current principal if its token grants every one of `scopes` (a space-separated string names each of its
 * scopes); else a {@link Forbidden} (403, `error="insufficient_scope", scope="<scopes>"`, leaving out a name with a
 * character no scope token may hold, such as `"`). No scopes at all refuses everyone, as with {@link requireGroups}.
 *
 * @since 0.1.0
 * @category guards
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import * as HttpAuth from "effect-jwks/HttpAuth"
 *
 * const write = Effect.zipRight(HttpAuth.requireScopes("orders:write"), Effect.succeed("written"))
 * ```
 */
export const requireScopes = (
  ...scopes: ReadonlyArray<string>
): Effect.Effect<Principal, Forbidden, CurrentPrincipal> =>
  Effect.flatMap(CurrentPrincipal, (principal) => {
    // A scope string as OAuth writes one ("orders:read orders:write") names each of its scopes.
    const required = scopes.flatMap((scope) => scope.split(/[ \t]+/)).filter((scope) => scope.length > 0)
    if (required.length > 0 && required.every((scope) => principal.scopes.includes(scope))) {
      return Effect.succeed(principal)
    }
    // Listed as required; a name no scope token can be (a quote in it) is left out, never changed into another.
    const scope = required.filter(isScopeToken).join(" ")
    return refuse(
      new Forbidden({ error_description: "the token lacks a required scope", ...(scope === "" ? {} : { scope }) })
    )
  })

/**
 * Runs `check` (a guard such as `requireGroups("admin")`) before `self`: a route middleware for `HttpRouter.use`, or a
 * combinator for a handler. Inside {@link middleware}, place it first so that authentication wraps it.
 *
 * @since 0.1.0
 * @category guards
 * @example
 * ```ts
 * import { HttpRouter, HttpServerResponse } from "@effect/platform"
 * import * as HttpAuth from "effect-jwks/HttpAuth"
 *
 * const Admin = HttpRouter.empty.pipe(
 *   HttpRouter.get("/admin", HttpServerResponse.text("welcome")),
 *   HttpRouter.use(HttpAuth.guard(HttpAuth.requireGroups("admin"))),
 *   HttpRouter.use(HttpAuth.middleware())
 * )
 * ```
 */
export const guard = <X, E2, R2>(check: Effect.Effect<X, E2, R2>) =>
<A, E, R>(
  self: Effect.Effect<A, E, R>
): Effect.Effect<A, E | E2, R | R2> => Effect.zipRight(check, self)

// -----------------------------------------------------------------------------
// Cache status
// -----------------------------------------------------------------------------

/**
 * The JSON of a `/cache-info` endpoint: `JwksCache.Status` with dates as ISO strings, durations in seconds and absent
 * values as `null` (except `lastRefresh.error`, which is left out after a success).
 *
 * @since 0.1.0
 * @category schemas
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import * as HttpAuth from "effect-jwks/HttpAuth"
 *
 * // An operator's script reading a service's `/cache-info` endpoint.
 * const response = await fetch("https://orders.internal.example/cache-info")
 * const info: HttpAuth.CacheInfo = Schema.decodeUnknownSync(HttpAuth.CacheInfo)(await response.json())
 * if (info.staleUntil !== null && Date.parse(info.staleUntil) <= Date.now()) {
 *   console.error(`${info.source}: no keys served since ${info.staleUntil}; every token is refused`)
 * } else if (info.servingStale) {
 *   console.warn(`${info.source}: serving keys that expired at ${info.expiresAt}, until ${info.staleUntil}`)
 * }
 * ```
 */
export const CacheInfo = Schema.Struct({
  source: Schema.String,
  strategy: Schema.Literal("time", "usage", "both", "custom"),
  settings: Schema.Struct({
    intervalSeconds: Schema.NullOr(Schema.Number),
    usages: Schema.NullOr(Schema.Number),
    backgroundRefresh: Schema.Boolean,
    backgroundRefreshThreshold: Schema.Number
  }),
  keyIds: Schema.Array(Schema.String),
  loadedAt: Schema.NullOr(Schema.String),
  expiresAt: Schema.NullOr(Schema.String),
  usesLeft: Schema.NullOr(Schema.Number),
  fresh: Schema.Boolean,
  servingStale: Schema.Boolean,
  staleUntil: Schema.NullOr(Schema.String),
  lastRefresh: Schema.NullOr(Schema.Struct({
    at: Schema.String,
    outcome: Schema.Literal("success", "failure"),
    error: Schema.optional(Schema.String)
  })),
  fetches: Schema.Number
}).annotations({ identifier: "CacheInfo" })

/**
 * @since 0.1.0
 * @category models
 */
export type CacheInfo = typeof CacheInfo.Type

/**
 * A cache status as {@link CacheInfo}: a plain, serializable object.
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import * as HttpAuth from "effect-jwks/HttpAuth"
 * import * as JwksCache from "effect-jwks/JwksCache"
 *
 * const logStatus = Effect.gen(function*() {
 *   const cache = yield* JwksCache.JwksCache
 *   yield* Effect.logInfo(JSON.stringify(HttpAuth.toCacheInfo(yield* cache.status)))
 * })
 * ```
 */
export const toCacheInfo = (status: JwksCache.Status): CacheInfo => ({
  source: status.source,
  strategy: status.strategy === "Time"
    ? "time"
    : status.strategy === "Usage"
    ? "usage"
    : status.strategy === "Both"
    ? "both"
    : "custom",
  settings: {
    intervalSeconds: status.interval === undefined ? null : Duration.toSeconds(status.interval),
    usages: status.usages ?? null,
    backgroundRefresh: status.backgroundRefresh,
    backgroundRefreshThreshold: status.backgroundRefreshThreshold
  },
  keyIds: status.keyIds,
  loadedAt: status.loadedAt?.toISOString() ?? null,
  expiresAt: status.expiresAt?.toISOString() ?? null,
  usesLeft: status.usesLeft ?? null,
  fresh: status.fresh,
  servingStale: status.servingStale,
  staleUntil: status.staleUntil?.toISOString() ?? null,
  lastRefresh: status.lastRefresh === undefined
    ? null
    : status.lastRefresh.error === undefined
    ? { at: status.lastRefresh.at.toISOString(), outcome: status.lastRefresh.outcome }
    : { at: status.lastRefresh.at.toISOString(), outcome: status.lastRefresh.outcome, error: status.lastRefresh.error },
  fetches: status.fetches
})

/**
 * A handler for a `/cache-info` endpoint: the `JwksCache` status as JSON ({@link CacheInfo}), `Cache-Control:
 * no-store`. Serve it where only operators can reach it: it names the key source.
 *
 * @since 0.1.0
 * @category handlers
 * @example
 * ```ts
 * import { HttpRouter } from "@effect/platform"
 * import * as HttpAuth from "effect-jwks/HttpAuth"
 *
 * const Ops = HttpRouter.empty.pipe(HttpRouter.get("/cache-info", HttpAuth.cacheInfo))
 * ```
 */
export const cacheInfo: Effect.Effect<HttpServerResponse.HttpServerResponse, never, JwksCache.JwksCache> = Effect
  .flatMap(
    JwksCache.JwksCache,
    (cache) =>
      Effect.map(
        cache.status,
        (status) => HttpServerResponse.unsafeJson(toCacheInfo(status), { headers: { "cache-control": "no-store" } })
      )
  )

/**
 * A handler for a status endpoint over the `TokenValidator` in context: `{ "caches": [CacheInfo, ...] }`, one entry
 * per key cache behind it (providers build their caches inside; a multi-issuer validator has several; a shared secret
 * none). `Cache-Control: no-store`; serve it where only operators can reach it.
 *
 * @since 0.1.0
 * @category handlers
 * @example
 * ```ts
 * import { HttpRouter } from "@effect/platform"
 * import * as HttpAuth from "effect-jwks/HttpAuth"
 *
 * const Ops = HttpRouter.empty.pipe(HttpRouter.get("/cache-info", HttpAuth.validatorCacheInfo))
 * ```
 */
export const validatorCacheInfo: Effect.Effect<
  HttpServerResponse.HttpServerResponse,
  never,
  TokenValidator.TokenValidator
> = Effect
  .flatMap(
    TokenValidator.TokenValidator,
    (validator) =>
      Effect.map(
        validator.keyStatus,
        (statuses) =>
          HttpServerResponse.unsafeJson({ caches: statuses.map(toCacheInfo) }, {
            headers: { "cache-control": "no-store" }
          })
      )
  )
