/**
 * What every verifier shares: one RS256 and one ES256 key pair, a loopback JWKS server that publishes both public
 * keys, a pool of signed tokens per algorithm, and a few bad tokens that every verifier must refuse.
 *
 * The server answers `GET /<label>/.well-known/jwks.json` for any label and counts requests per label, so each
 * verifier gets its own URL and the report can say how often each one went to the network. It listens on
 * 127.0.0.1 only. The scenario scripts also use its request log (with times) and its optional answer delay, and
 * sign tokens with an unpublished key (`signForged`).
 */
import { exportJWK, generateKeyPair, type JWK, SignJWT } from "jose"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { performance } from "node:perf_hooks"
import { Worker } from "node:worker_threads"

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
  /**
   * A token with good claims signed by a key of `alg` that is never published (the same one as the "forged
   * signature" bad token's), with `kid` in its header.
   */
  readonly signForged: (alg: Alg, kid: string, claims?: Record<string, unknown>) => Promise<string>
  /** JWKS requests served so far, per label. */
  readonly fetches: () => Readonly<Record<string, number>>
  /** Every JWKS request served so far, with its times. */
  readonly requests: () => ReadonlyArray<JwksRequest>
  readonly close: () => Promise<void>
}

const jwksPath = /^\/([A-Za-z0-9_-]+)\/\.well-known\/jwks\.json$/

/** One JWKS request as the server saw it, in `performance.now()` milliseconds of this process. */
export interface JwksRequest {
  readonly label: string
  readonly receivedAt: number
  readonly answeredAt: number
}

export interface JwksServer {
  /** `http://127.0.0.1:<port>` */
  readonly origin: string
  /** JWKS requests answered so far, per label. */
  readonly counts: Map<string, number>
  /** Every JWKS request answered so far, in order of arrival. */
  readonly requests: ReadonlyArray<JwksRequest>
  /** Stops the server and drops its open connections. */
  readonly close: () => Promise<void>
}

/**
 * A loopback JWKS server: `GET /<label>/.well-known/jwks.json` answers `body()` after `delayMs` (default 0), for any
 * label, and counts requests per label. It listens on 127.0.0.1 only.
 */
export const serveJwks = (
  body: () => string,
  options: { readonly delayMs?: number; readonly onRequest?: (request: JwksRequest) => void } = {}
): Promise<JwksServer> =>
  new Promise<JwksServer>((resolve, reject) => {
    const delayMs = options.delayMs ?? 0
    const counts = new Map<string, number>()
    const requests: Array<JwksRequest> = []
    const server = createServer((request, response) => {
      const receivedAt = performance.now()
      const match = jwksPath.exec(request.url ?? "")
      if (request.method !== "GET" || match === null) {
        response.writeHead(404, { "content-type": "text/plain" }).end("not found")
        return
      }
      const label = match[1]!
      const answer = () => {
        counts.set(label, (counts.get(label) ?? 0) + 1)
        const request = { label, receivedAt, answeredAt: performance.now() }
        requests.push(request)
        options.onRequest?.(request)
        const text = body()
        response.writeHead(200, {
          "content-type": "application/json",
          "content-length": Buffer.byteLength(text),
          "cache-control": "no-store",
          // A fresh connection per fetch: no client can pick a kept-alive socket that the server is closing.
          "connection": "close"
        }).end(text)
      }
      if (delayMs > 0) setTimeout(answer, delayMs)
      else answer()
    })
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo
      resolve({
        origin: `http://127.0.0.1:${port}`,
        counts,
        requests,
        close: () =>
          new Promise<void>((done, fail) => {
            server.close((error) => (error === undefined ? done() : fail(error)))
            server.closeAllConnections()
          })
      })
    })
  })

/**
 * {@link serveJwks} on a worker thread (`jwksServerWorker.ts`): the same server, answering from another event loop.
 * Its request log arrives by message, times converted to this thread's `performance.now()`.
 */
export const serveJwksOnWorker = (body: string, options: { readonly delayMs?: number } = {}): Promise<JwksServer> =>
  new Promise<JwksServer>((resolve, reject) => {
    // tsx's loader serves the main thread only: the worker loads the .ts module through tsx's API.
    const module = JSON.stringify(new URL("./jwksServerWorker.ts", import.meta.url).href)
    const worker = new Worker(`import("tsx/esm/api").then((tsx) => tsx.tsImport(${module}, ${module}))`, {
      eval: true,
      workerData: { body, delayMs: options.delayMs ?? 0 }
    })
    const counts = new Map<string, number>()
    const requests: Array<JwksRequest> = []
    const local = (at: number) => at - performance.timeOrigin
    let closed: (() => void) | undefined
    worker.once("error", reject)
    worker.on("message", (message: "closed" | { origin: string } | { request: JwksRequest }) => {
      if (message === "closed") {
        closed?.()
      } else if ("origin" in message) {
        resolve({
          origin: message.origin,
          counts,
          requests,
          close: () =>
            new Promise<void>((done) => {
              closed = () => void worker.terminate().then(() => done())
              worker.postMessage("close")
            })
        })
      } else {
        const { label, receivedAt, answeredAt } = message.request
        counts.set(label, (counts.get(label) ?? 0) + 1)
        requests.push({ label, receivedAt: local(receivedAt), answeredAt: local(answeredAt) })
      }
    })
  })

const publicKey = async (alg: Alg, kid: string) => {
  const pair = await generateKeyPair(alg, { extractable: true })
  return { privateKey: pair.privateKey, jwk: { ...(await exportJWK(pair.publicKey)), kid, alg, use: "sig" } }
}

/** Options of {@link makeFixture}. */
export interface FixtureOptions {
  /** The server answers every JWKS request after this delay. Default 0. */
  readonly jwksDelayMs?: number
  /**
   * Where the server runs: on this thread's event loop (default), or on a worker thread, so that a scenario measuring
   * latency on this thread sees only the client's side of a fetch, as with a remote identity provider.
   */
  readonly serverThread?: "main" | "worker"
}

/**
 * Generates the keys, starts the server and signs `poolSize` tokens per algorithm. `close` stops the server and
 * drops its open connections.
 */
export const makeFixture = async (poolSize: number, options: FixtureOptions = {}): Promise<Fixture> => {
  const rs = await publicKey("RS256", "bench-rs256")
  const es = await publicKey("ES256", "bench-es256")
  const jwks = { keys: [rs.jwk, es.jwk] }
  const body = JSON.stringify(jwks)
  const serverOptions = options.jwksDelayMs === undefined ? {} : { delayMs: options.jwksDelayMs }
  const server = options.serverThread === "worker"
    ? await serveJwksOnWorker(body, serverOptions)
    : await serveJwks(() => body, serverOptions)
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

  const keyPairs = { RS256: rs, ES256: es }
  const unpublished = { RS256: await generateKeyPair("RS256"), ES256: await generateKeyPair("ES256") }

  const tokensFor = async (alg: Alg): Promise<Tokens> => {
    const key = keyPairs[alg]
    const kid = key.jwk.kid
    const pool = await Promise.all(
      Array.from({ length: poolSize }, (_, i) => sign(alg, kid, key.privateKey, { sub: `user-${i}` }))
    )
    return {
      pool,
      bad: {
        "wrong issuer": await sign(alg, kid, key.privateKey, { sub: "mallory", iss: "https://elsewhere.example" }),
        "wrong audience": await sign(alg, kid, key.privateKey, { sub: "mallory", aud: "another-api" }),
        "expired": await sign(alg, kid, key.privateKey, { sub: "mallory", iat: iat - 7200, exp: iat - 3600 }),
        "forged signature": await sign(alg, kid, unpublished[alg].privateKey, { sub: "mallory" })
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
    tokens: { RS256: await tokensFor("RS256"), ES256: await tokensFor("ES256") },
    signForged: (alg, kid, claims = {}) => sign(alg, kid, unpublished[alg].privateKey, { sub: "mallory", ...claims }),
    jwksUrl: (label) => `${server.origin}/${label}/.well-known/jwks.json`,
    baseUrl: (label) => `${server.origin}/${label}/`,
    fetches: () => Object.fromEntries(server.counts),
    requests: () => server.requests,
    close: server.close
  }
}
