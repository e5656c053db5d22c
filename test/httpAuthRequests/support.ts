import type * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpServer from "@effect/platform/HttpServer"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Schema from "effect/Schema"
import * as HttpAuth from "../../src/HttpAuth.js"
import { Principal } from "../../src/Principal.js"
import * as TokenValidator from "../../src/TokenValidator.js"

export const received = (body: unknown) => Schema.decodeUnknownSync(HttpAuth.Failure)(body)
export const expired = { error: "invalid_token", error_description: "the token has expired" }
export const forbidden = { error: "insufficient_scope", error_description: "the token lacks a required group" }
export const missingToken = { error: "unauthorized", error_description: "a bearer token is required" }

export const ValidatorStub = Layer.succeed(TokenValidator.TokenValidator, {
  acceptsIssuer: () => true,
  keyStatus: Effect.succeed([]),
  validate: (token: string) =>
    token === "good"
      ? Effect.succeed(
        new Principal({
          id: "alice",
          name: undefined,
          email: undefined,
          groups: [],
          scopes: [],
          tokenType: "access",
          clientId: undefined,
          isMachine: false,
          issuer: "https://idp.example",
          expiresAt: new Date(Date.now() + 3600_000),
          claims: {}
        })
      )
      : Effect.fail({ _tag: "TokenValidationError", reason: "Expired" } as never)
} as unknown as TokenValidator.Service)

export type Get = (path: string, token?: string) => Promise<{ status: number; challenge: string | null }>

export const serveApi = (
  layer: Layer.Layer<HttpApi.Api, never, never>,
  use: (get: Get) => Promise<void>
) =>
  Effect.promise(async () => {
    const web = HttpApiBuilder.toWebHandler(
      layer.pipe(Layer.merge(HttpServer.layerContext), Layer.merge(Logger.remove(Logger.defaultLogger)))
    )
    try {
      await use(async (path, token) => {
        const headers: Record<string, string> = token === undefined ? {} : { authorization: `Bearer ${token}` }
        const r = await web.handler(new Request(`http://localhost${path}`, { headers }))
        await r.arrayBuffer()
        return { status: r.status, challenge: r.headers.get("www-authenticate") }
      })
    } finally {
      await web.dispose()
    }
  })
