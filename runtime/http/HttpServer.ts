/**
 * The node's single HTTP port on `VMS_HTTP_HOST:VMS_HTTP_PORT`. It starts
 * first with the operator routes, so `/health/ready` can say what is still
 * starting; the router stays open, and the layers of the API and live routes
 * add theirs (`HttpRouter.add`) once the services behind them are up.
 * Logs the address it listens on.
 */
import { NodeHttpServer } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { HttpRouter, HttpServer } from "effect/http"
import { NetAddress } from "effect/net"
import { createServer, type Server } from "node:http"
import { NodeConfig } from "../config/NodeConfig.ts"
import { CorkedWebSocket } from "../net/CorkedWebSocket.ts"
import * as OpsRoutes from "./OpsRoutes.ts"

const listenLog = Layer.effectDiscard(
  Effect.gen(function*() {
    const server = yield* HttpServer.HttpServer
    yield* Effect.logInfo("HTTP server listening").pipe(
      Effect.annotateLogs({ url: NetAddress.formatUrlUnsafe(server.address) })
    )
  })
)

/** How long requests still in flight when the node stops get to finish before their connections are cut. */
const stopGraceMs = 5_000

/**
 * Stopping: Node's `server.close()` waits for every connection to end, and
 * serves a keep-alive connection for as long as its client keeps a request in
 * flight, so one HLS player polling a playlist, or a monitor polling
 * `/metrics`, held a stopping node up for ever (the handover bench found it:
 * 4 of 52 stopped nodes SIGKILLed after 20 s). From now on each answer ends its
 * connection (`Connection: close`), idle connections close at once, and
 * those still open after `stopGraceMs` are cut.
 */
const endConnections = (server: Server) => {
  server.prependListener("request", (_request, response) => {
    if (!response.headersSent) response.setHeader("connection", "close")
  })
  server.closeIdleConnections()
  const cut = setTimeout(() => server.closeAllConnections(), stopGraceMs).unref()
  server.once("close", () => clearTimeout(cut))
}

const serveRouter = Layer.unwrap(
  Effect.map(HttpRouter.HttpRouter, (router) => HttpServer.serve(router.asHttpEffect()))
)

/**
 * Serves the router; provides it (and the server) to the route layers
 * composed on top. Stopping, it first closes the WebSocket connections
 * (event subscribers, RPC clients), then stops serving.
 */
export const layer = Layer.unwrap(
  Effect.gen(function*() {
    const config = yield* NodeConfig
    let server: Server | undefined
    const create = () => (server = createServer())
    // Built after (so closed before) the serving that waits for every connection to end.
    const closeWebSockets = Layer.effectDiscard(Effect.addFinalizer(() =>
      Effect.promise(async () => {
        if (server === undefined) return
        await CorkedWebSocket.closeAll(server, 1_000)
        endConnections(server)
      })
    ))
    return Layer.mergeAll(closeWebSockets.pipe(Layer.provideMerge(serveRouter)), OpsRoutes.layer, listenLog).pipe(
      Layer.provideMerge(HttpRouter.layer),
      Layer.provideMerge(NodeHttpServer.layer(create, {
        port: config.httpPort,
        host: config.httpHost,
        // WebSocket answers produced in one turn leave in one TCP write.
        websocket: { WebSocket: CorkedWebSocket }
      }))
    )
  })
)
