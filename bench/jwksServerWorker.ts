/**
 * The loopback JWKS server of `setup.ts`, on a worker thread: a fixture built with `{ serverThread: "worker" }` runs
 * it here so that the server's own work (accepting, timers, writing the body) does not run on the event loop whose
 * latency a scenario measures, as a real identity provider's would not.
 *
 * Takes `{ body, delayMs }` as `workerData`; posts `{ origin }` once listening, then one `{ request }` per JWKS
 * request, its times in `performance.timeOrigin + performance.now()` milliseconds (the threads' `now()` differ);
 * closes on the message `"close"` and posts `"closed"`.
 */
import { performance } from "node:perf_hooks"
import { parentPort, workerData } from "node:worker_threads"
import { serveJwks } from "./setup.js"

const { body, delayMs } = workerData as { readonly body: string; readonly delayMs: number }
const port = parentPort!
const absolute = (at: number) => performance.timeOrigin + at

const server = await serveJwks(() => body, {
  delayMs,
  onRequest: (request) =>
    port.postMessage({
      request: { ...request, receivedAt: absolute(request.receivedAt), answeredAt: absolute(request.answeredAt) }
    })
})
port.on("message", async (message) => {
  if (message !== "close") return
  await server.close()
  port.postMessage("closed")
  port.close()
})
port.postMessage({ origin: server.origin })
