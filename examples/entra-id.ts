/**
 * Microsoft Entra ID (v2.0 tokens): the configuration you would write for a single-tenant API (`tenantId`,
 * `audience`) and for a multi-tenant one (`tenantId: "organizations"` with `allowedTenants`), each run against the
 * fake identity provider posing as Entra ID. The fake signs tokens with the claims Entra ID puts in them (`tid`,
 * `ver: "2.0"`, `oid`, `preferred_username`, `scp`, `roles`, `groups`, `azp`, and `idtyp: "app"` for app-only
 * tokens, an optional claim the app registration adds; without it, an app-only token is known by its `sub` being its
 * `oid`, with no `scp`). Shows the principal of an id token, a user's access token and an app-only token, and a
 * refusal only a multi-tenant Entra ID app has: a tenant that is not in `allowedTenants`.
 *
 * Issuers are `<authority>/<tenant id>/v2.0`. Here `authority` points at a fake on 127.0.0.1; leave it out and it
 * is `https://login.microsoftonline.com`. For the multi-tenant app the fake's discovery document names the issuer
 * template `<authority>/{tenantid}/v2.0` and is served at `<authority>/organizations/v2.0/...`, as Entra ID's is.
 *
 * Run it alone with `npx tsx examples/entra-id.ts`.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as EntraId from "../src/providers/EntraId.js"
import type * as TokenValidator from "../src/TokenValidator.js"
import { HttpClientLive, QuietLogs, report, serveFakeIdp } from "./support.js"

/** Your tenant, and two customers' tenants of a multi-tenant app (the third one is not a customer). */
const contoso = "3f2b1c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
const fabrikam = "9a8b7c6d-5e4f-4321-8fed-cba987654321"
const northwind = "1c2d3e4f-5a6b-4c7d-8e9f-a0b1c2d3e4f5"

/** The API's app registration's client id: the `aud` of its v2.0 access tokens (never its app ID URI, `api://...`). */
const clientId = "6e7f8a9b-1c2d-4e3f-8a4b-5c6d7e8f9a0b"
/** The single-page app that signs users in and calls the API, and a daemon that calls it as itself. */
const spaClientId = "0c1d2e3f-4a5b-4c6d-9e7f-8a9b0c1d2e3f"
const daemonClientId = "b1c2d3e4-f5a6-4b7c-8d9e-0f1a2b3c4d5e"

/** Claims of every v2.0 token of a tenant. */
const tokenOf = (authority: string, tid: string) => ({
  iss: `${authority}/${tid}/v2.0`,
  aud: clientId,
  tid,
  ver: "2.0",
  rh: "0.AR8AexampleRH",
  uti: "AbCdEf0123456789",
  aio: "E2ZgYExampleAio="
})

/** A user of the tenant (`sub` is pairwise, per user and app; `oid` is the user's object id). */
const alice = {
  sub: "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ",
  oid: "00000000-0000-0000-66f3-3332eca7ea81",
  name: "Alice Smith",
  preferred_username: "alice@contoso.example"
}

const idToken = (authority: string, tid: string) => ({
  ...tokenOf(authority, tid),
  ...alice,
  aud: spaClientId,
  nonce: "c3f1a9e2"
})

const userAccessToken = (authority: string, tid: string) => ({
  ...tokenOf(authority, tid),
  ...alice,
  azp: spaClientId,
  azpacr: "0",
  scp: "Orders.Read Orders.Write",
  roles: ["Orders.Approver"],
  groups: ["5b6c7d8e-9f0a-4b1c-8d2e-3f4a5b6c7d8e"]
})

const appToken = (authority: string, tid: string) => ({
  ...tokenOf(authority, tid),
  sub: "7d8e9f0a-1b2c-4d3e-8f4a-5b6c7d8e9f0a",
  oid: "7d8e9f0a-1b2c-4d3e-8f4a-5b6c7d8e9f0a",
  idtyp: "app",
  azp: daemonClientId,
  azpacr: "1",
  roles: ["Orders.Read.All"]
})

const singleTenant = Effect.gen(function*() {
  // The fake poses as your tenant: its issuer is http://127.0.0.1:<port>/<contoso>/v2.0.
  const idp = yield* serveFakeIdp({ path: `/${contoso}/v2.0` })
  const authority = new URL(idp.issuer).origin
  yield* Console.log(`\n== Entra ID, single tenant: ${idp.issuer}`)

  // The API and the single-page app, one validator each: their tokens are for different audiences.
  const api = yield* EntraId.make({ tenantId: contoso, audience: clientId, authority })
  const spa = yield* EntraId.make({ tenantId: contoso, audience: spaClientId, authority })

  const present = (claims: Record<string, unknown>, to: TokenValidator.Service) =>
    Effect.flatMap(idp.sign(claims), to.validate)
  yield* report("id token, to the single-page app", present(idToken(authority, contoso), spa))
  yield* report("user's access token, to the API", present(userAccessToken(authority, contoso), api))
  yield* report("app-only token, to the API", present(appToken(authority, contoso), api))
}).pipe(Effect.scoped)

const multiTenant = Effect.gen(function*() {
  // The fake poses as Entra ID's `organizations` endpoint, whose discovery document names the issuer template.
  const idp = yield* serveFakeIdp({ path: "/{tenantid}/v2.0", aliases: ["/organizations/v2.0"] })
  const authority = new URL(idp.issuer).origin
  yield* Console.log(`\n== Entra ID, multi-tenant: ${authority}/organizations/v2.0, for contoso and fabrikam`)

  // A SaaS API: work accounts of its customers' tenants only.
  const api = yield* EntraId.make({
    tenantId: "organizations",
    audience: clientId,
    allowedTenants: [contoso, fabrikam],
    authority
  })

  const present = (claims: Record<string, unknown>) => Effect.flatMap(idp.sign(claims), api.validate)
  yield* report("contoso's user, to the API", present(userAccessToken(authority, contoso)))
  yield* report("fabrikam's daemon, to the API", present(appToken(authority, fabrikam)))
  yield* report("northwind's user, to the API", present(userAccessToken(authority, northwind)))
}).pipe(Effect.scoped)

export const program = Effect.zipRight(singleTenant, multiTenant)

/** The layers this example needs: an HTTP client (the fakes are served by the program itself). */
export const ExampleLive = Layer.merge(HttpClientLive, QuietLogs)

if (import.meta.url === `file://${process.argv[1]}`) {
  NodeRuntime.runMain(program.pipe(Effect.provide(ExampleLive)))
}
