/**
 * The client API on a whole node (real actors, ffmpeg and the simulator),
 * authenticated with the bootstrap key: a plain `ws` JSON-RPC client and
 * the typed client each list cameras, add one, and receive its
 * `camera_status_update` notifications as its actor connects it.
 */
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Context, Deferred, Effect, Fiber, Layer, Stream } from "effect"
import { HttpServer } from "effect/http"
import { NetAddress } from "effect/net"
import { startTestSimulator } from "../protocols/rtsp/testing/TestSimulator.ts"
import { VmsClient } from "../rpc/Client.ts"
import * as Node from "../runtime/Node.ts"
import { jsonRpcClient } from "./support/RpcHarness.ts"
import { testConfig } from "./support/TestNode.ts"

const bootstrap = "bootstrap-token-for-tests-0123456789"

const node = Layer.unwrap(Effect.map(testConfig({ VMS_BOOTSTRAP_TOKEN: bootstrap }), (config) => Node.layer(config))).pipe(
  Layer.provideMerge(NodeServices.layer)
)

const wsBase = Effect.map(HttpServer.HttpServer, (server) => NetAddress.formatUrlUnsafe(server.address).replace(/^http/, "ws"))

describe("client API on a whole node", () => {
  it.live("JSON-RPC and typed clients list, add, and follow a real camera to online", () =>
    Effect.gen(function*() {
      const simulator = yield* startTestSimulator({ cameras: 2 })
      const base = yield* wsBase

      const ws = yield* jsonRpcClient(`${base}/ws`, { "x-api-key": bootstrap })
      const empty = yield* ws.call(1, "get_camera_list")
      assert.deepStrictEqual(empty.result.items, [])
      const subscribed = yield* ws.call(2, "subscribe", { events: ["camera_status_update"] })
      assert.isString(subscribed.result.subscription)

      const typedContext = yield* Layer.build(VmsClient.layer(`${base}/rpc`, { apiKey: bootstrap }))
      const vms = Context.get(typedContext, VmsClient)
      const ready = yield* Deferred.make<void>()
      const typedOnline = yield* vms.subscribe({ events: ["camera_status_update"] }).pipe(
        Stream.tap((item) => item._tag === "subscribed" ? Deferred.succeed(ready, undefined) : Effect.void),
        Stream.filter((item) => item._tag === "camera_status_update" && item.cameraId === "typed-cam" && item.status === "online"),
        Stream.runHead,
        Effect.forkChild
      )
      yield* Deferred.await(ready)

      const added = yield* ws.call(3, "add_camera", { id: "ws-cam", name: "WS", url: simulator.url(0) })
      assert.strictEqual(added.result.id, "ws-cam", JSON.stringify(added))
      const online = yield* ws.waitFor("ws-cam online", (message) =>
        message.method === "camera_status_update" && message.params.cameraId === "ws-cam" && message.params.status === "online")
      assert.strictEqual(online.params.subscription, subscribed.result.subscription)
      assert.isTrue(ws.received.some((message) =>
        message.method === "camera_status_update" && message.params.cameraId === "ws-cam" && message.params.status === "connecting"))

      const typedAdded = yield* vms.add_camera({
        id: "typed-cam",
        name: "Typed",
        url: simulator.url(1),
        agencyId: "default",
        enabled: true,
        recording: false,
        retentionDays: null,
        locationName: null,
        latitude: null,
        longitude: null
      })
      assert.strictEqual(typedAdded.id, "typed-cam")
      const typedUpdate = yield* Fiber.join(typedOnline).pipe(Effect.timeout("15 seconds"))
      assert.strictEqual(typedUpdate._tag, "Some")
      const listed = yield* vms.get_camera_list({})
      assert.deepStrictEqual(listed.items.map((camera) => camera.id), ["typed-cam", "ws-cam"])
      const status = yield* vms.get_camera_status({ cameraId: "ws-cam" })
      assert.strictEqual(status.status, "online")
      assert.isTrue(ws.received.some((message) =>
        message.method === "camera_status_update" && message.params.cameraId === "typed-cam"))
    }).pipe(Effect.scoped, Effect.provide(node)), 60_000)
})
