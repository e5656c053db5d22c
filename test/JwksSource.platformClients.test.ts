/**
 * Platform clients that follow a redirect themselves, to the same path with another query: only a comparison of the
 * whole URL, made for the platform's clients, sees it. The stock clients, wrapped as apps wrap them, and a client of
 * @effect/platform's CommonJS build (an app that `require`s the platform, while this ESM-only library `import`s it).
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as Http from "node:http"
import { createRequire } from "node:module"
import type { AddressInfo } from "node:net"
import * as JwksSource from "../src/JwksSource.js"

const keySet = { keys: [{ kty: "EC", crv: "P-256", x: "x", y: "y", kid: "k1" }] }

/** /jwks.json answers 302 to /jwks.json?tenant=evil, which serves keys. */
const withServer = <A>(use: (url: string) => Promise<A>) =>
  Effect.promise(async () => {
    const server = Http.createServer((req, res) => {
      if (req.url === "/jwks.json") {
        res.writeHead(302, { location: "/jwks.json?tenant=evil" }).end()
      } else {
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(keySet))
      }
    })
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
    try {
      return await use(`http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`)
    } finally {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    }
  })

const outcome = (url: string, client: HttpClient.HttpClient, layer?: Layer.Layer<never>) =>
  Effect.runPromise(
    Effect.flatMap(Effect.orDie(JwksSource.http(url)), (source) => Effect.either(source.fetch)).pipe(
      Effect.provideService(HttpClient.HttpClient, client),
      Effect.map((either) => either._tag === "Right" ? "keys used" : `${either.left.reason}`),
      (effect) => layer === undefined ? effect : Effect.provide(effect, layer)
    ) as Effect.Effect<string>
  )

/** Runs `use` with the client of `layer`, kept alive (its dispatcher or agent) until `use` is done. */
const withClient = <A>(layer: Layer.Layer<HttpClient.HttpClient>, use: (client: HttpClient.HttpClient) => Promise<A>) =>
  Effect.runPromise(
    Effect.flatMap(HttpClient.HttpClient, (client) => Effect.promise(() => use(client))).pipe(Effect.provide(layer))
  )

describe("JwksSource: platform clients that follow a redirect to the same path, another query", () => {
  it.effect("ESM platform clients, wrapped: all refused", () =>
    withServer(async (url) => {
      const fetchClient = await withClient(FetchHttpClient.layer, async (c) => c)
      const wrapped = fetchClient.pipe(
        HttpClient.mapRequest(HttpClientRequest.setHeader("x-app", "1")),
        HttpClient.tap(() => Effect.void),
        HttpClient.withTracerPropagation(false),
        HttpClient.followRedirects(),
        HttpClient.filterStatusOk,
        HttpClient.retry(Schedule.recurs(1))
      )
      const results = {
        fetch: await outcome(url, HttpClient.followRedirects(fetchClient)),
        node: await withClient(NodeHttpClient.layer, (c) => outcome(url, HttpClient.followRedirects(c))),
        wrapped: await outcome(url, wrapped)
      }
      expect(results).toEqual({ fetch: "HttpStatus", node: "HttpStatus", wrapped: "HttpStatus" })
    }))

  it.effect("undici client with followRedirects: refused", () =>
    withServer(async (url) => {
      const undici = await withClient(NodeHttpClient.layerUndici, (c) => outcome(url, HttpClient.followRedirects(c)))
      expect(undici).toBe("HttpStatus")
    }))

  it.effect("a FetchHttpClient of @effect/platform's CommonJS build (dual package), following redirects: refused", () =>
    withServer(async (url) => {
      const require = createRequire(import.meta.url)
      const CjsHttpClient = require("@effect/platform/HttpClient") as typeof HttpClient
      const CjsFetch = require("@effect/platform/FetchHttpClient") as typeof FetchHttpClient
      const cjsClient = await withClient(
        CjsFetch.layer as unknown as Layer.Layer<HttpClient.HttpClient>,
        async (c) => c
      )
      expect(Object.getPrototypeOf(cjsClient)).not.toBe(Object.getPrototypeOf(HttpClient.make(() => Effect.never)))
      const result = await outcome(url, CjsHttpClient.followRedirects(cjsClient))
      expect(result).toBe("HttpStatus")
    }))
})
