/**
 * Interoperability with a certified OpenID Provider: `oidc-provider` runs on 127.0.0.1 inside the test and issues
 * RFC 9068 JWT access tokens (`typ: at+jwt`) through the client credentials grant. They must validate through the
 * Oidc provider with discovery, and a key rotation at the provider must be picked up from the first new token.
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import { exportJWK, generateKeyPair } from "jose"
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import Provider from "oidc-provider"
import * as Oidc from "../../src/providers/Oidc.js"

const audience = "urn:effect-jwks:api"
const client = { client_id: "reporting-service", client_secret: "a-long-enough-client-secret-for-the-test" }

const signingKey = async (kid: string) => {
  const { privateKey } = await generateKeyPair("RS256", { extractable: true })
  return { ...(await exportJWK(privateKey)), kid, alg: "RS256", use: "sig" }
}

const makeProvider = (issuer: string, keys: ReadonlyArray<Record<string, unknown>>) =>
  new Provider(issuer, {
    clients: [{
      ...client,
      grant_types: ["client_credentials"],
      redirect_uris: [],
      response_types: [],
      token_endpoint_auth_method: "client_secret_post"
    }],
    jwks: { keys: keys as Array<never> },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => audience,
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({
          scope: "reports:read",
          audience,
          accessTokenFormat: "jwt",
          jwt: { sign: { alg: "RS256" } }
        })
      }
    }
  })

/** The provider behind a loopback server whose handler can be swapped (a restart with new keys, same issuer). */
const startProvider = async () => {
  let handler: (req: IncomingMessage, res: ServerResponse) => void = () => {}
  const server = createServer((req, res) => handler(req, res))
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  let jwksRequests = 0
  const use = (keys: ReadonlyArray<Record<string, unknown>>) => {
    const callback = makeProvider(issuer, keys).callback()
    handler = (req, res) => {
      if (req.url?.startsWith("/jwks")) jwksRequests++
      callback(req, res)
    }
  }
  const token = async (): Promise<string> => {
    const response = await fetch(`${issuer}/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "client_credentials",
        scope: "reports:read",
        resource: audience,
        ...client
      })
    })
    const body = await response.json() as { access_token?: string; error?: string }
    if (body.access_token === undefined) throw new Error(`token request failed: ${JSON.stringify(body)}`)
    return body.access_token
  }
  const close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections()
      server.close(() => resolve())
    })
  return { issuer, use, token, close, jwksRequests: () => jwksRequests }
}

describe("interop: oidc-provider", () => {
  it.live(
    "validates its RFC 9068 access tokens through discovery, and picks up a key rotation",
    () =>
      Effect.gen(function*() {
        const op = yield* Effect.acquireRelease(Effect.promise(startProvider), (op) => Effect.promise(op.close))
        op.use([yield* Effect.promise(() => signingKey("key-1"))])

        const validator = yield* Oidc.make({ issuer: op.issuer, audience })
        const first = yield* Effect.promise(op.token)
        const header = JSON.parse(Buffer.from(first.split(".")[0]!, "base64url").toString()) as Record<string, unknown>
        expect(header).toMatchObject({ typ: "at+jwt", alg: "RS256", kid: "key-1" })

        const principal = yield* validator.validate(first)
        expect(principal.issuer).toBe(op.issuer)
        expect(principal.clientId).toBe(client.client_id)
        expect(principal.scopes).toEqual(["reports:read"])
        expect(principal.tokenType).toBe("access")
        expect(principal.isMachine).toBe(true)
        expect(op.jwksRequests()).toBe(1)

        // The provider restarts with a new signing key only (replace): its new tokens carry kid key-2.
        op.use([yield* Effect.promise(() => signingKey("key-2"))])
        const rotated = yield* Effect.promise(op.token)
        const again = yield* validator.validate(rotated)
        expect(again.clientId).toBe(client.client_id)
        expect(op.jwksRequests()).toBe(2)

        // The old key is gone from the provider's set, so its token no longer has a matching key.
        const old = yield* Effect.flip(validator.validate(first))
        expect(old._tag).toBe("TokenValidationError")
        expect(old._tag === "TokenValidationError" && old.reason).toBe("NoMatchingKey")

        // A token for another audience is refused, even though the provider signed it.
        const strict = yield* Oidc.make({ issuer: op.issuer, audience: "urn:someone-else" })
        const refused = yield* Effect.flip(strict.validate(rotated))
        expect(refused._tag === "TokenValidationError" && refused.reason).toBe("AudienceMismatch")
      }).pipe(
        Effect.scoped,
        Effect.provide(NodeHttpClient.layerUndici),
        Logger.withMinimumLogLevel(LogLevel.Error)
      ),
    20_000
  )
})
