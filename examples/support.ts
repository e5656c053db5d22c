/**
 * What every example shares: the fake identity provider as a real HTTP server on 127.0.0.1 (at the bare origin, or
 * posing as an issuer with a path), an HTTP client, a one-line report of a validation, and log settings. Nothing here
 * leaves loopback.
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import type * as HttpServer from "@effect/platform/HttpServer"
import type * as HttpServerError from "@effect/platform/HttpServerError"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import type * as Scope from "effect/Scope"
import { createServer } from "node:http"
import type { JwksError } from "../src/JwksError.js"
import type * as Principal from "../src/Principal.js"
import * as FakeIdp from "../src/testing/FakeIdp.js"
import type { TokenValidationError } from "../src/TokenValidationError.js"

/** The fake IdP served on a free loopback port, plus an HTTP client to reach it. */
export const FakeIdpServer = (options?: Omit<FakeIdp.Options, "issuer">) =>
  Layer.merge(
    FakeIdp.layerServer(options).pipe(
      Layer.provide(NodeHttpServer.layer(() => createServer(), { port: 0, host: "127.0.0.1" }))
    ),
    NodeHttpClient.layerUndici
  )

/** Options of {@link serveFakeIdp}. */
export interface PosingOptions extends Omit<FakeIdp.Options, "issuer"> {
  /** The issuer's path on the loopback origin, such as `/eu-west-1_Example1` or `/<tenant>/v2.0`. */
  readonly path: string
  /** Other paths answered as the issuer's path, such as Entra ID's `/organizations/v2.0` for `/{tenantid}/v2.0`. */
  readonly aliases?: ReadonlyArray<string>
}

/**
 * A fresh fake IdP posing as an issuer with a path, `http://127.0.0.1:<port><path>`, served on its own free loopback
 * port until the scope closes. `FakeIdp.layerServer` takes no issuer (its issuer is the bare origin), so this serves
 * the fake's shared handler on a Node server itself, as `layerServer` does. Needs an HTTP client to be reached.
 */
export const serveFakeIdp = (
  options: PosingOptions
): Effect.Effect<FakeIdp.FakeIdp["Type"], HttpServerError.ServeError, Scope.Scope> =>
  Effect.gen(function*() {
    const { aliases = [], path, ...fakeOptions } = options
    const server = yield* NodeHttpServer.make(() => createServer(), { port: 0, host: "127.0.0.1" })
    const origin = `http://127.0.0.1:${(server.address as HttpServer.TcpAddress).port}`
    const idp = yield* FakeIdp.make({ ...fakeOptions, issuer: `${origin}${path}` })
    const issuerPath = new URL(idp.issuer).pathname
    const route = (url: URL): URL => {
      const alias = aliases.find((alias) => url.pathname.startsWith(`${alias}/`))
      return alias === undefined ? url : new URL(`${issuerPath}${url.pathname.slice(alias.length)}`, origin)
    }
    yield* server.serve(
      Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
        Effect.map(
          idp.handle({ method: request.method, url: route(new URL(request.url, origin)) }),
          (answer) => HttpServerResponse.text(answer.body, { status: answer.status, headers: answer.headers })
        ))
    )
    return idp
  })

/** An HTTP client, for examples that serve their fakes with {@link serveFakeIdp}. */
export const HttpClientLive = NodeHttpClient.layerUndici

/** A validation's outcome on one line: the principal, or the refusal's reason and description. */
export const report = (
  label: string,
  validation: Effect.Effect<Principal.Principal, TokenValidationError | JwksError>
): Effect.Effect<void> =>
  validation.pipe(
    Effect.map(describePrincipal),
    Effect.catchTags({
      TokenValidationError: (error) => Effect.succeed(`refused, ${error.message}`),
      JwksError: (error) => Effect.succeed(`no keys, ${error.message}`)
    }),
    Effect.flatMap((line) => Console.log(`${label}\n  ${line}`))
  )

/** A principal on one line: who, what kind of token, and what it may do (app roles too, where the IdP has them). */
export const describePrincipal = (principal: Principal.Principal): string =>
  [
    `${principal.isMachine ? "machine" : "user"} ${principal.name ?? principal.id}`,
    `(${principal.tokenType} token, sub ${principal.id})`,
    principal.groups.length > 0 ? `groups [${principal.groups.join(", ")}]` : undefined,
    principal.scopes.length > 0 ? `scopes [${principal.scopes.join(", ")}]` : undefined,
    Array.isArray(principal.claims.roles) ? `roles [${principal.claims.roles.join(", ")}]` : undefined,
    principal.clientId !== undefined ? `client ${principal.clientId}` : undefined
  ].filter((part) => part !== undefined).join(" ")

/** Log lines with their level and annotations, down to debug. */
export const DebugLogs = Layer.merge(
  Logger.minimumLogLevel(LogLevel.Debug),
  Logger.replace(Logger.defaultLogger, Logger.logfmtLogger)
)

/** Warnings and errors only: for examples whose output is about something else than the cache's events. */
export const QuietLogs = Logger.minimumLogLevel(LogLevel.Warning)
