/**
 * Quick start: validate tokens from an OpenID Connect provider. The provider here is the fake identity provider on
 * 127.0.0.1, found through its discovery document (`<issuer>/.well-known/openid-configuration`), as any OIDC
 * provider (Keycloak, Auth0, Okta, Dex, ...) would be. A good token gives a `Principal`; a bad one a typed error,
 * handled by its tag.
 *
 * Run it alone with `npx tsx examples/quickstart.ts`.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Clock from "effect/Clock"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import type { JwksError } from "../src/JwksError.js"
import * as Oidc from "../src/providers/Oidc.js"
import * as FakeIdp from "../src/testing/FakeIdp.js"
import type { TokenValidationError } from "../src/TokenValidationError.js"
import * as TokenValidator from "../src/TokenValidator.js"
import { FakeIdpServer } from "./support.js"

/** Validates a token, and turns each failure into the answer an API would give. */
const check = (label: string, token: string) =>
  TokenValidator.validate(token).pipe(
    Effect.map((principal) => `200, hello ${principal.name ?? principal.id}`),
    Effect.catchTags({
      TokenValidationError: (error) => Effect.succeed(`401, ${error.reason}: ${error.description}`),
      JwksError: (error) => Effect.succeed(`503, ${error.message}`)
    }),
    Effect.flatMap((answer) => Console.log(`${label.padEnd(18)} ${answer}`))
  )

/** The token with its claims changed and its signature kept: what an attacker would try. */
const withClaims = (token: string, claims: Record<string, unknown>): string => {
  const [header, payload, signature] = token.split(".")
  const original = JSON.parse(Buffer.from(payload!, "base64url").toString("utf8")) as Record<string, unknown>
  return [header, Buffer.from(JSON.stringify({ ...original, ...claims })).toString("base64url"), signature].join(".")
}

export const program = Effect.gen(function*() {
  const idp = yield* FakeIdp.FakeIdp
  yield* Console.log(`\n== Quick start: an OIDC provider at ${idp.issuer}`)

  // Your configuration: the issuer and the audience of your API. Keys come from the issuer's discovery document,
  // are cached, and are refreshed in the background (20 minutes or 1000 validations, at 80%).
  const ValidatorLive = Oidc.layer({ issuer: idp.issuer, audience: "my-api" })

  // Tokens as the provider would issue them, and three it would not.
  const now = Math.floor((yield* Clock.currentTimeMillis) / 1000)
  const good = yield* idp.sign({ sub: "alice", preferred_username: "alice", groups: ["staff"], scope: "orders:read" })
  const expired = yield* idp.sign({ sub: "alice", iat: now - 3600, exp: now - 60 })
  const otherApi = yield* idp.sign({ sub: "alice", aud: "another-api" })
  const tampered = withClaims(good, { groups: ["staff", "admin"] })

  yield* Effect.gen(function*() {
    const principal = yield* TokenValidator.validate(good)
    yield* Console.log("A good token gives its Principal:", principal)
    yield* check("good token", good)
    yield* check("expired", expired)
    yield* check("wrong audience", otherApi)
    yield* check("tampered", tampered)

    // Outside Effect (an Express or Fastify handler), the same validator is a function that returns a promise,
    // rejected with the TokenValidationError or JwksError itself.
    const validate = TokenValidator.toPromise(yield* Effect.runtime<never>())(yield* TokenValidator.TokenValidator)
    const answers = yield* Effect.promise(() =>
      Promise.all([good, expired].map((token) =>
        validate(token).then(
          (principal) => `200, hello ${principal.id}`,
          (error: TokenValidationError | JwksError) =>
            `${error._tag === "TokenValidationError" ? 401 : 503}, ${error.reason}`
        )
      ))
    )
    yield* Console.log(`${"with toPromise".padEnd(18)} ${answers.join("; ")}`)
  }).pipe(Effect.provide(ValidatorLive))
})

/** The layers this example needs: the fake IdP on loopback (its tokens for `my-api`) and an HTTP client. */
export const ExampleLive = FakeIdpServer({ audience: "my-api" })

if (import.meta.url === `file://${process.argv[1]}`) {
  NodeRuntime.runMain(program.pipe(Effect.provide(ExampleLive)))
}
