/**
 * Amazon Cognito: the configuration you would write for a user pool (`userPoolId`, `clientId`, `tokenUse`), run
 * against the fake identity provider posing as the pool. The fake signs tokens with the claims Cognito puts in them
 * (`token_use`, `client_id` or `aud`, `cognito:username`, `cognito:groups`, ...). Shows the principal of an access
 * token, of a machine (client credentials) access token and of an id token, and a refusal only Cognito has: an id
 * token presented where access tokens are expected.
 *
 * The pool's issuer is `<endpoint>/<userPoolId>`. Here `endpoint` points at the fake on 127.0.0.1 (as it would at a
 * local Cognito emulator); leave it out and it is `https://cognito-idp.<region>.amazonaws.com`.
 *
 * Run it alone with `npx tsx examples/cognito.ts`.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Cognito from "../src/providers/Cognito.js"
import type * as TokenValidator from "../src/TokenValidator.js"
import { HttpClientLive, QuietLogs, report, serveFakeIdp } from "./support.js"

const userPoolId = "eu-west-1_Example1"
/** The app client of your API (a machine client calls it too, with the client credentials grant). */
const clientId = "3n4example5client6id7abcde"
const machineClientId = "7m8example9machine0id1abcd"

/** Claims both kinds of token carry for a user of the pool. */
const user = {
  sub: "8f1e5a3c-7b2d-4e6f-9a0b-1c2d3e4f5a6b",
  "cognito:groups": ["staff", "admins"],
  origin_jti: "1d6a0c4e-5f7b-4a8c-9d0e-2f3a4b5c6d7e",
  event_id: "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
  auth_time: Math.floor(Date.now() / 1000) - 60,
  jti: "5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b"
}

/** An access token: the app client in `client_id`, no `aud`, the user's name in `username`. */
const accessToken = {
  ...user,
  token_use: "access",
  client_id: clientId,
  aud: undefined,
  scope: "openid email orders/read",
  username: "alice",
  version: 2
}

/** An id token: the app client in `aud`, the user's name in `cognito:username`. */
const idToken = {
  ...user,
  token_use: "id",
  aud: clientId,
  "cognito:username": "alice",
  email: "alice@example.com",
  email_verified: true
}

/** A client credentials access token: the client is its own subject, and has scopes but no user. */
const machineToken = {
  sub: machineClientId,
  token_use: "access",
  client_id: machineClientId,
  aud: undefined,
  scope: "orders/read",
  version: 2
}

export const program = Effect.gen(function*() {
  // The fake poses as the pool: its issuer is http://127.0.0.1:<port>/eu-west-1_Example1.
  const idp = yield* serveFakeIdp({ path: `/${userPoolId}` })
  const endpoint = new URL(idp.issuer).origin
  yield* Console.log(`\n== Cognito: user pool ${userPoolId}, served by the fake at ${idp.issuer}`)

  // An API accepts access tokens of its app clients.
  const api = yield* Cognito.make({ userPoolId, clientId: [clientId, machineClientId], tokenUse: "access", endpoint })
  // A web back end that signs users in reads their id tokens.
  const signIn = yield* Cognito.make({ userPoolId, clientId, tokenUse: "id", endpoint })

  const present = (claims: Record<string, unknown>, to: TokenValidator.Service) =>
    Effect.flatMap(idp.sign(claims), to.validate)
  yield* report("access token, to the API", present(accessToken, api))
  yield* report("machine token, to the API", present(machineToken, api))
  yield* report("id token, to the sign-in", present(idToken, signIn))
  yield* report("id token, to the API", present(idToken, api))
}).pipe(Effect.scoped)

/** The layers this example needs: an HTTP client (the fake is served by the program itself). */
export const ExampleLive = Layer.merge(HttpClientLive, QuietLogs)

if (import.meta.url === `file://${process.argv[1]}`) {
  NodeRuntime.runMain(program.pipe(Effect.provide(ExampleLive)))
}
