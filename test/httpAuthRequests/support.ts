import type * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpServer from "@effect/platform/HttpServer"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"

export { expired, forbidden, missingToken, received, ValidatorStub } from "../support/receivedErrors.js"

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

/** A response's status, challenge and body. */
export type Answer = { status: number; challenge: string | null; body: string }

export const answerOf = async (response: Response): Promise<Answer> => ({
  status: response.status,
  challenge: response.headers.get("www-authenticate"),
  body: await response.text()
})

export const Quiet = Logger.remove(Logger.defaultLogger)

export const webOf = (layer: Layer.Layer<HttpApi.Api, never, never>) =>
  HttpApiBuilder.toWebHandler(layer.pipe(Layer.merge(HttpServer.layerContext), Layer.merge(Quiet)))
