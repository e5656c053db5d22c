/**
 * Edge cases pinned after a mutation-testing review: `HttpAuth` behaviour unpinned by the suite (each test fails on one mutation of
 * `src/HttpAuth.ts` that the rest of the suite does not catch).
 */
import * as HttpApp from "@effect/platform/HttpApp"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as HttpAuth from "../src/HttpAuth.js"
import { Principal } from "../src/Principal.js"
import { TokenValidationError } from "../src/TokenValidationError.js"
import * as TokenValidator from "../src/TokenValidator.js"

const alice = new Principal({
  id: "alice",
  name: "Alice",
  email: undefined,
  groups: ["staff"],
  scopes: ["orders:read"],
  tokenType: "access",
  clientId: undefined,
  isMachine: false,
  issuer: "https://idp.example",
  expiresAt: new Date(Date.now() + 3600_000),
  claims: {}
})

/** "good" is alice; anything else is refused. */
const ValidatorStub = Layer.succeed(TokenValidator.TokenValidator, {
  acceptsIssuer: () => true,
  keyStatus: Effect.succeed([]),
  validate: (token) =>
    token === "good"
      ? Effect.succeed(alice)
      : Effect.fail(new TokenValidationError({ reason: "Malformed", description: "bad" }))
})

const handlerOf = <E>(app: HttpApp.Default<E, HttpAuth.CurrentPrincipal>) =>
  HttpApp.toWebHandler(HttpAuth.middleware()(app).pipe(Effect.provide(ValidatorStub)))

const call = (handler: (request: Request) => Promise<Response>, authorization?: string) =>
  Effect.promise(() =>
    handler(
      new Request("http://localhost/", { headers: authorization === undefined ? {} : { authorization } })
    )
  )

describe("HttpAuth edge cases", () => {
  // Mutation: `groups.every(...)` -> `groups.some(...)` in requireGroups. Every group named is required.
  it.effect("requireGroups with several groups refuses a principal that has only one of them", () =>
    Effect.gen(function*() {
      const forbidden = yield* Effect.exit(
        Effect.provideService(HttpAuth.requireGroups("staff", "admin"), HttpAuth.CurrentPrincipal, alice)
      )
      expect(forbidden._tag).toBe("Failure")
      const allowed = yield* Effect.provideService(HttpAuth.requireGroups("staff"), HttpAuth.CurrentPrincipal, alice)
      expect(allowed.id).toBe("alice")
      // Through the middleware too: 403.
      const guarded = handlerOf(
        Effect.zipRight(HttpAuth.requireGroups("staff", "admin"), HttpServerResponse.text("ok"))
      )
      expect((yield* call(guarded, "Bearer good")).status).toBe(403)
    }))

  // Mutation: `separator !== 0x20 && separator !== 0x09` -> `separator !== 0x20`. The scheme may be followed by a
  // tab as well as a space (the parser trims both as optional white space).
  it.effect("a tab right after the scheme separates it from the token", () =>
    Effect.gen(function*() {
      const handler = handlerOf(
        Effect.flatMap(HttpAuth.CurrentPrincipal, (principal) => HttpServerResponse.text(principal.id))
      )
      expect((yield* call(handler, "Bearer\tgood")).status).toBe(200)
      expect((yield* call(handler, "Bearer good")).status).toBe(200)
      expect((yield* call(handler, "Bearergood")).status).toBe(401)
    }))

  // Mutation: drop `statusOf(error) === response.status` in carriedError. A response of the app's own whose body
  // looks like one of this module's errors gets that error's headers only if its status is that error's.
  it.effect("challengeHeaders adds nothing to a response whose status is not its body's error's", () =>
    Effect.gen(function*() {
      const app = Effect.zipRight(
        HttpAuth.challengeHeaders,
        Effect.succeed(HttpServerResponse.unsafeJson(
          { error: "temporarily_unavailable", error_description: "not really" },
          { status: 401 }
        ))
      )
      const response = yield* Effect.promise(() => HttpApp.toWebHandler(app)(new Request("http://localhost/")))
      expect(response.status).toBe(401)
      expect(response.headers.get("retry-after")).toBeNull()
      expect(response.headers.get("www-authenticate")).toBeNull()
      // Control: the same body with its own status gets its headers.
      const matching = Effect.zipRight(
        HttpAuth.challengeHeaders,
        Effect.succeed(HttpServerResponse.unsafeJson(
          { error: "temporarily_unavailable", error_description: "down" },
          { status: 503 }
        ))
      )
      const control = yield* Effect.promise(() => HttpApp.toWebHandler(matching)(new Request("http://localhost/")))
      expect(control.headers.get("retry-after")).toBe("30")
    }))
})
