/**
 * What every verifier shares: one RS256 and one ES256 key pair, a loopback JWKS server that publishes both public
 * keys, a pool of signed tokens per algorithm, and a few bad tokens that every verifier must refuse.
 *
 * The server answers `GET /<label>/.well-known/jwks.json` for any label and counts requests per label, so each
 * verifier gets its own URL and the report can say how often each one went to the network. It listens on
 * 127.0.0.1 only.
 */
import { exportJWK, generateKeyPair, type JWK, SignJWT } from "jose"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"

export type Alg = "RS256" | "ES256"

export const algorithms: ReadonlyArray<Alg> = ["RS256", "ES256"]

export interface Key {
  readonly alg: Alg
  readonly kid: string
  /** The public JWK as published (with `kid`, `alg`, `use`). */
  readonly jwk: JWK
}

export interface Tokens {
  /** Good tokens: same iss, aud, iat and exp, a different `sub` each. */
  readonly pool: ReadonlyArray<string>
  /** Tokens every verifier must refuse, by what is wrong with them. */
  readonly bad: Readonly<Record<"wrong issuer" | "wrong audience" | "expired" | "forged signature", string>>
}

export interface Fixture {
  readonly issuer: string
  readonly audience: string
  readonly keys: Readonly<Record<Alg, Key>>
  readonly jwks: { readonly keys: ReadonlyArray<JWK> }
  readonly tokens: Readonly<Record<Alg, Tokens>>
  /** `http://127.0.0.1:<port>/<label>/.well-known/jwks.json` */
  readonly jwksUrl: (label: string) => string
  /** `http://127.0.0.1:<port>/<label>/`, the "domain" of get-jwks. */
  readonly baseUrl: (label: string) => string
  /** JWKS requests served so far, per label. */
  readonly fetches: () => Readonly<Record<string, number>>
  readonly close: () => Promise<void>
}

const jwksPath = /^\/([A-Za-z0-9_-]+)\/\.well-known\/jwks\.json$/

const listen = (body: () => string) =>
  new Promise<{ readonly origin: string; readonly counts: Map<string, number>; readonly close: () => Promise<void> }>(
    (resolve, reject) => {
      const counts = new Map<string, number>()
      const server = createServer((request, response) => {
        const match = jwksPath.exec(request.url ?? "")
        if (request.method !== "GET" || match === null) {
          response.writeHead(404, { "content-type": "text/plain" }).end("not found")
          return
        }
        counts.set(match[1]!, (counts.get(match[1]!) ?? 0) + 1)
        const text = body()
        response.writeHead(200, {
          "content-type": "application/json",
          "content-length": Buffer.byteLength(text),
          "cache-control": "no-store",
          // A fresh connection per fetch: no client can pick a kept-alive socket that the server is closing.
          "connection": "close"
        }).end(text)
      })
      server.once("error", reject)
      server.listen(0, "127.0.0.1", () => {
        const { port } = server.address() as AddressInfo
        resolve({
          origin: `http://127.0.0.1:${port}`,
          counts,
          close: () =>
            new Promise<void>((done, fail) => {
              server.close((error) => (error === undefined ? done() : fail(error)))
              server.closeAllConnections()
            })
        })
      })
    }
  )

const publicKey = async (alg: Alg, kid: string) => {
  const pair = await generateKeyPair(alg, { extractable: true })
  return { privateKey: pair.privateKey, jwk: { ...(await exportJWK(pair.publicKey)), kid, alg, use: "sig" } }
}

/**
 * Generates the keys, starts the server and signs `poolSize` tokens per algorithm. `close` stops the server and
 * drops its open connections.
 */
export const makeFixture = async (poolSize: number): Promise<Fixture> => {
  const rs = await publicKey("RS256", "bench-rs256")
  const es = await publicKey("ES256", "bench-es256")
  const jwks = { keys: [rs.jwk, es.jwk] }
  const body = JSON.stringify(jwks)
  const server = await listen(() => body)
  const issuer = server.origin
  const audience = "effect-jwks-bench"
  const iat = Math.floor(Date.now() / 1000)
  const exp = iat + 60 * 60

  const sign = (
    alg: Alg,
    kid: string,
    privateKey: Parameters<SignJWT["sign"]>[0],
    claims: Record<string, unknown>
  ) =>
    new SignJWT({ iss: issuer, aud: audience, iat, exp, ...claims }).setProtectedHeader({ alg, kid }).sign(privateKey)

  const tokensFor = async (alg: Alg, key: typeof rs): Promise<Tokens> => {
    const kid = key.jwk.kid
    const forger = await generateKeyPair(alg)
    const pool = await Promise.all(
      Array.from({ length: poolSize }, (_, i) => sign(alg, kid, key.privateKey, { sub: `user-${i}` }))
    )
    return {
      pool,
      bad: {
        "wrong issuer": await sign(alg, kid, key.privateKey, { sub: "mallory", iss: "https://elsewhere.example" }),
        "wrong audience": await sign(alg, kid, key.privateKey, { sub: "mallory", aud: "another-api" }),
        "expired": await sign(alg, kid, key.privateKey, { sub: "mallory", iat: iat - 7200, exp: iat - 3600 }),
        "forged signature": await sign(alg, kid, forger.privateKey, { sub: "mallory" })
      }
    }
  }

  return {
    issuer,
    audience,
    keys: {
      RS256: { alg: "RS256", kid: rs.jwk.kid, jwk: rs.jwk },
      ES256: { alg: "ES256", kid: es.jwk.kid, jwk: es.jwk }
    },
    jwks,
    tokens: { RS256: await tokensFor("RS256", rs), ES256: await tokensFor("ES256", es) },
    jwksUrl: (label) => `${server.origin}/${label}/.well-known/jwks.json`,
    baseUrl: (label) => `${server.origin}/${label}/`,
    fetches: () => Object.fromEntries(server.counts),
    close: server.close
  }
}
