/**
 * An `HttpApi` guarded by bearer tokens, against the fake identity provider on loopback:
 *
 * - `GET /hello`: public;
 * - `GET /me`: any valid token, answers with the principal's id, name and groups;
 * - `GET /admin`: tokens of the `admin` group only (`HttpAuth.requireGroups("admin")`);
 * - `GET /cache-info`: the key cache's status (public here for the demo; protect it in a real app).
 *
 * `npx tsx examples/http-server.ts` serves on 127.0.0.1 and prints curl lines to try, with freshly signed tokens,
 * until Ctrl-C. With `--self-test` it makes those requests itself, prints the answers and exits.
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpServer from "@effect/platform/HttpServer"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import { createServer } from "node:http"
import * as HttpAuth from "../src/HttpAuth.js"
import * as JwksCache from "../src/JwksCache.js"
import * as JwksSource from "../src/JwksSource.js"
import * as FakeIdp from "../src/testing/FakeIdp.js"
import * as TokenValidator from "../src/TokenValidator.js"
import { FakeIdpServer } from "./support.js"

// -----------------------------------------------------------------------------
// The API
// -----------------------------------------------------------------------------

const Me = Schema.Struct({ id: Schema.String, name: Schema.NullOr(Schema.String), groups: Schema.Array(Schema.String) })

class Api extends HttpApi.make("example")
  .add(
    HttpApiGroup.make("public")
      .add(HttpApiEndpoint.get("hello", "/hello").addSuccess(Schema.String))
      .add(HttpApiEndpoint.get("cacheInfo", "/cache-info").addSuccess(HttpAuth.CacheInfo))
  )
  .add(
    HttpApiGroup.make("protected")
      .add(HttpApiEndpoint.get("me", "/me").addSuccess(Me))
      .add(HttpApiEndpoint.get("admin", "/admin").addSuccess(Schema.String))
      .middleware(HttpAuth.Authentication)
  )
{}

const PublicLive = HttpApiBuilder.group(Api, "public", (handlers) =>
  handlers
    .handle("hello", () => Effect.succeed("hello, whoever you are"))
    .handle("cacheInfo", () => HttpAuth.cacheInfo))

const ProtectedLive = HttpApiBuilder.group(Api, "protected", (handlers) =>
  handlers
    .handle("me", () =>
      Effect.map(HttpAuth.CurrentPrincipal, (principal) => ({
        id: principal.id,
        name: principal.name ?? null,
        groups: principal.groups
      })))
    .handle("admin", () => Effect.map(HttpAuth.requireGroups("admin"), (principal) => `hello admin ${principal.id}`)))

/** Authentication over a validator over a key cache over the fake IdP's JWKS URL (known once it listens). */
const AuthLive = Layer.unwrapEffect(
  Effect.map(FakeIdp.FakeIdp, (idp) =>
    HttpAuth.layerBearer({ realm: "example" }).pipe(
      Layer.provideMerge(TokenValidator.layer({ issuer: idp.issuer, audience: idp.audience })),
      Layer.provideMerge(JwksCache.layer()),
      Layer.provide(JwksSource.layerHttp(idp.jwksUri))
    ))
)

const ServerLive = HttpApiBuilder.serve().pipe(
  Layer.provide(HttpApiBuilder.api(Api)),
  Layer.provide([PublicLive, ProtectedLive]),
  Layer.provide(AuthLive),
  Layer.provideMerge(NodeHttpServer.layer(() => createServer(), { port: 0, host: "127.0.0.1" }))
)

/** The layers this example needs: the API's server, and the fake IdP's (with an HTTP client). */
export const ExampleLive = ServerLive.pipe(Layer.provideMerge(FakeIdpServer()))

// -----------------------------------------------------------------------------
// The requests to try
// -----------------------------------------------------------------------------

interface Try {
  readonly path: string
  readonly who: "nobody" | "alice" | "root" | "garbage"
  readonly expect: number
}

const tries: ReadonlyArray<Try> = [
  { path: "/hello", who: "nobody", expect: 200 },
  { path: "/me", who: "nobody", expect: 401 },
  { path: "/me", who: "garbage", expect: 401 },
  { path: "/me", who: "alice", expect: 200 },
  { path: "/admin", who: "alice", expect: 403 },
  { path: "/admin", who: "root", expect: 200 },
  { path: "/cache-info", who: "nobody", expect: 200 }
]

const setUp = Effect.gen(function*() {
  const idp = yield* FakeIdp.FakeIdp
  const base = yield* HttpServer.addressFormattedWith((address) => Effect.succeed(address))
  const tokens = {
    alice: yield* idp.sign({ sub: "alice", preferred_username: "alice", groups: ["staff"] }),
    root: yield* idp.sign({ sub: "root", preferred_username: "root", groups: ["staff", "admin"] }),
    garbage: "not-a-jwt"
  }
  yield* Console.log(`\n== HTTP server: an HttpApi on ${base}, keys from the fake IdP at ${idp.jwksUri}`)
  yield* Console.log(`ALICE=${tokens.alice}`)
  yield* Console.log(`ROOT=${tokens.root}`)
  for (const { path, who } of tries) {
    const header = who === "nobody"
      ? ""
      : ` -H "Authorization: Bearer ${who === "garbage" ? "not-a-jwt" : `$${who.toUpperCase()}`}"`
    yield* Console.log(`curl -i ${base}${path}${header}`)
  }
  return { base, tokens }
})

/** Makes each request of `tries` and prints the answer; fails if a status is not the expected one. */
export const program = Effect.gen(function*() {
  const { base, tokens } = yield* setUp
  const client = yield* HttpClient.HttpClient
  yield* Console.log("\n== Self-test")
  const wrong: Array<string> = []
  for (const { expect, path, who } of tries) {
    const response = yield* client.get(`${base}${path}`, {
      headers: who === "nobody" ? {} : { authorization: `Bearer ${tokens[who]}` }
    })
    const body = yield* response.text
    const challenge = response.headers["www-authenticate"]
    yield* Console.log(
      `GET ${path} as ${who}: ${response.status}` +
        (challenge === undefined ? "" : ` (WWW-Authenticate: ${challenge})`) +
        `\n  ${body.length > 160 ? `${body.slice(0, 160)}...` : body}`
    )
    if (response.status !== expect) wrong.push(`GET ${path} as ${who}: ${response.status}, expected ${expect}`)
  }
  if (wrong.length > 0) return yield* Effect.dieMessage(`unexpected answers:\n${wrong.join("\n")}`)
  yield* Console.log("all answers as expected")
})

/** Prints the curl lines and serves until interrupted. */
export const serve = Effect.zipRight(setUp, Effect.zipRight(Console.log("\n(Ctrl-C to stop)"), Effect.never))

if (import.meta.url === `file://${process.argv[1]}`) {
  NodeRuntime.runMain(
    (process.argv.includes("--self-test") ? program : serve).pipe(Effect.provide(ExampleLive))
  )
}
