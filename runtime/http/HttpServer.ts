/**
 * The node's single HTTP port: every route layer is served here on
 * `VMS_HTTP_HOST:VMS_HTTP_PORT`. Logs the address it listens on.
 */
import { NodeHttpServer } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { HttpRouter, HttpServer } from "effect/http"
import { NetAddress } from "effect/net"
import { createServer } from "node:http"
import { NodeConfig } from "../config/NodeConfig.ts"
import * as OpsRoutes from "./OpsRoutes.ts"

const routes = Layer.mergeAll(OpsRoutes.layer)

const listenLog = Layer.effectDiscard(
  Effect.gen(function*() {
    const server = yield* HttpServer.HttpServer
    yield* Effect.logInfo("HTTP server listening").pipe(
      Effect.annotateLogs({ url: NetAddress.formatUrlUnsafe(server.address) })
    )
  })
)

export const layer = Layer.unwrap(
  Effect.gen(function*() {
    const config = yield* NodeConfig
    return HttpRouter.serve(routes, { disableLogger: true, disableListenLog: true }).pipe(
      Layer.provideMerge(listenLog),
      Layer.provideMerge(NodeHttpServer.layer(createServer, { port: config.httpPort, host: config.httpHost }))
    )
  })
)
