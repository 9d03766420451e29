/**
 * The client API on a real HTTP server and a real Postgres, for tests of
 * `/rpc`, `/ws`, REST and authentication: the RPC and REST routes and the
 * live routes (with no live streams) on the node's handlers, camera store,
 * recording index, event bus and auth services. The camera
 * actors are a stand-in (as in the REST tests): `reconcile` publishes a
 * `connecting` status for the camera, as a real actor does when it starts;
 * whole-node tests cover the real actors.
 */
import { NodeHttpServer } from "@effect/platform-node"
import { Context, DateTime, Effect, Layer } from "effect"
import { HttpRouter, HttpServer } from "effect/http"
import { NetAddress } from "effect/net"
import { SqlClient } from "effect/sql"
import { createServer } from "node:http"
import WebSocket from "ws"
import { CameraNotFound, CameraStatus } from "../../actors/CameraProtocol.ts"
import * as ClientApi from "../../rpc/ClientApi.ts"
import * as RestApi from "../../rpc/rest/RestApi.ts"
import * as LiveRoutes from "../../runtime/http/LiveRoutes.ts"
import { OwnerProxy } from "../../runtime/http/OwnerProxy.ts"
import { LiveRegistry } from "../../runtime/live/LiveRegistry.ts"
import { MediaToken } from "../../runtime/recording/MediaToken.ts"
import { CameraControl } from "../../runtime/cameras/CameraControl.ts"
import * as CameraStore from "../../runtime/cameras/CameraStore.ts"
import { DataDir } from "../../runtime/config/DataDir.ts"
import * as NodeConfig from "../../runtime/config/NodeConfig.ts"
import * as Migrations from "../../runtime/database/Migrations.ts"
import { CameraStatusChanged, EventBus } from "../../runtime/events/EventBus.ts"
import { Metrics } from "../../runtime/metrics/Metrics.ts"
import * as RecordingIndex from "../../runtime/recording/RecordingIndex.ts"
import { until } from "./Eventually.ts"
import * as TestDatabase from "./TestDatabase.ts"
import * as TestQuota from "./TestQuota.ts"
import { tempDir } from "./TestNode.ts"

export const statusOf = (cameraId: string, status: CameraStatus["status"]) =>
  new CameraStatus({
    cameraId,
    status,
    reason: null,
    fps: 0,
    bitrate: 0,
    nodeId: "test-node",
    updatedAt: DateTime.makeUnsafe(Date.now())
  })

const controlLayer = Layer.effect(
  CameraControl,
  Effect.gen(function*() {
    const bus = yield* EventBus
    const store = yield* CameraStore.CameraStore
    return CameraControl.of({
      reconcile: (cameraId) => bus.publish(new CameraStatusChanged({ status: statusOf(cameraId, "connecting") })),
      status: (cameraId) =>
        store.get(cameraId).pipe(
          Effect.orDie,
          Effect.flatMap((camera) =>
            camera._tag === "None" ? Effect.fail(new CameraNotFound({ cameraId })) : Effect.succeed(statusOf(cameraId, "offline"))
          )
        ),
      snapshot: (cameraId) => Effect.fail(new CameraNotFound({ cameraId }))
    })
  })
)

/** A REST caller on `base`: JSON bodies in, status, headers, text and parsed JSON (when any) out. */
export const restClient = (base: string) =>
(method: string, path: string, headers: Record<string, string> = {}, body?: unknown) =>
  Effect.promise(async () => {
    const response = await fetch(`${base}${path}`, {
      method,
      headers: body === undefined ? headers : { ...headers, "content-type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) })
    })
    const text = await response.text()
    return { status: response.status, headers: response.headers, text, json: text === "" ? undefined : JSON.parse(text) }
  })

export const harness = (env: Record<string, string> = {}) =>
  Effect.gen(function*() {
    const dataDir = yield* tempDir("rpc")
    const config = yield* NodeConfig.fromEnv({ VMS_DATA_DIR: dataDir, VMS_NODE_ID: "test-node", ...env })
    const database = Layer.effectDiscard(Migrations.run).pipe(Layer.provideMerge(TestDatabase.layer))
    const foundation = Layer.mergeAll(
      Layer.succeed(NodeConfig.NodeConfig, config),
      Layer.succeed(DataDir, { path: dataDir }),
      Metrics.layer,
      EventBus.layer
    )
    const services = Layer.mergeAll(controlLayer, LiveRegistry.layer, OwnerProxy.layerLocal).pipe(
      Layer.provideMerge(TestQuota.layer),
      Layer.provideMerge(MediaToken.layer),
      Layer.provideMerge(Layer.mergeAll(CameraStore.layer, RecordingIndex.layer)),
      Layer.provideMerge(ClientApi.authServices),
      Layer.provideMerge(foundation),
      Layer.provideMerge(database)
    )
    const routes = Layer.mergeAll(ClientApi.layer, RestApi.layer, LiveRoutes.layer)
    const server = HttpRouter.serve(routes, { disableLogger: true, disableListenLog: true }).pipe(
      Layer.provideMerge(services),
      Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" }))
    )
    const context = yield* Layer.build(server)
    const http = NetAddress.formatUrlUnsafe(Context.get(context, HttpServer.HttpServer).address)
    return {
      context,
      http,
      rest: restClient(http),
      ws: http.replace(/^http/, "ws"),
      sql: Context.get(context, SqlClient.SqlClient),
      bus: Context.get(context, EventBus)
    }
  })

/** A plain `ws` JSON-RPC 2.0 client: sends frames, collects every parsed reply. */
export const jsonRpcClient = (url: string, headers: Record<string, string> = {}) =>
  Effect.gen(function*() {
    const socket = yield* Effect.acquireRelease(
      Effect.callback<WebSocket, Error>((resume) => {
        const ws = new WebSocket(url, { headers })
        ws.once("open", () => resume(Effect.succeed(ws)))
        ws.once("error", (error) => resume(Effect.fail(error)))
      }),
      (ws) => Effect.sync(() => ws.terminate())
    )
    const received: Array<any> = []
    socket.on("message", (data) => received.push(JSON.parse(data.toString())))
    let seen = 0
    /** Sends a frame (a value is JSON-encoded; a string goes as is). */
    const send = (frame: unknown) => Effect.sync(() => socket.send(typeof frame === "string" ? frame : JSON.stringify(frame)))
    /** The next reply not yet taken, in arrival order. */
    const next = Effect.gen(function*() {
      yield* until("a JSON-RPC reply", () => received.length > seen, 5_000)
      return received[seen++]
    })
    /** The first reply (from the start) matching `predicate`. */
    const waitFor = (description: string, predicate: (message: any) => boolean) =>
      Effect.gen(function*() {
        yield* until(description, () => received.some(predicate), 5_000)
        return received.find(predicate)
      })
    const call = (id: number | string, method: string, params?: unknown) =>
      Effect.gen(function*() {
        yield* send({ jsonrpc: "2.0", id, method, ...(params === undefined ? {} : { params }) })
        return yield* waitFor(`reply to ${id}`, (message) => !Array.isArray(message) && message.id === id)
      })
    return { socket, send, next, waitFor, call, received }
  })
