/**
 * What every example shares: the fake identity provider as a real HTTP server on 127.0.0.1, an HTTP client, and a
 * logger that shows debug lines. Nothing here leaves loopback.
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import { createServer } from "node:http"
import * as FakeIdp from "../src/testing/FakeIdp.js"

/** The fake IdP served on a free loopback port, plus an HTTP client to reach it. */
export const FakeIdpServer = (options?: Omit<FakeIdp.Options, "issuer">) =>
  Layer.merge(
    FakeIdp.layerServer(options).pipe(
      Layer.provide(NodeHttpServer.layer(() => createServer(), { port: 0, host: "127.0.0.1" }))
    ),
    NodeHttpClient.layerUndici
  )

/** Log lines with their level and annotations, down to debug. */
export const DebugLogs = Layer.merge(
  Logger.minimumLogLevel(LogLevel.Debug),
  Logger.replace(Logger.defaultLogger, Logger.logfmtLogger)
)
