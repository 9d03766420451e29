/**
 * The typed client (`Client.ts`) against `/rpc` on a real server and
 * Postgres: typed results and errors, and a `subscribe` stream.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Deferred, Effect, Fiber, Layer, Stream } from "effect"
import { VmsClient } from "./Client.ts"
import { harness } from "../test/support/RpcHarness.ts"

const bootstrap = "bootstrap-token-for-tests-0123456789"

describe("typed RPC client over /rpc", () => {
  it.live("lists cameras, adds one and receives its camera_status_update", () =>
    Effect.gen(function*() {
      const node = yield* harness({ VMS_BOOTSTRAP_TOKEN: bootstrap })
      const context = yield* Layer.build(VmsClient.layer(`${node.ws}/rpc`, { apiKey: bootstrap }))
      const vms = Context.get(context, VmsClient)

      const empty = yield* vms.get_camera_list({})
      assert.deepStrictEqual(empty.items, [])

      // The stream's first item confirms the subscription; then the camera is added.
      const subscribed = yield* Deferred.make<void>()
      const events = yield* vms.subscribe({ events: ["camera_status_update"] }).pipe(
        Stream.tap((item) => item._tag === "subscribed" ? Deferred.succeed(subscribed, undefined) : Effect.void),
        Stream.take(2),
        Stream.runCollect,
        Effect.forkChild
      )
      yield* Deferred.await(subscribed)
      const added = yield* vms.add_camera({
        id: "typed-1",
        name: "Typed",
        url: "rtsp://10.0.0.2/typed",
        agencyId: "default",
        enabled: true,
        recording: false,
        retentionDays: null,
        locationName: null,
        latitude: null,
        longitude: null
      })
      assert.strictEqual(added.id, "typed-1")
      const items = yield* Fiber.join(events)
      assert.strictEqual(items[0]?._tag, "subscribed")
      const update = items[1]
      assert.strictEqual(update?._tag, "camera_status_update")
      if (update?._tag === "camera_status_update") assert.strictEqual(update.cameraId, "typed-1")

      const missing = yield* Effect.flip(vms.get_camera_status({ cameraId: "nope" }))
      assert.strictEqual(missing._tag, "CameraNotFound")
      const duplicate = yield* Effect.flip(vms.add_camera({ ...added, url: "rtsp://10.0.0.2/typed" } as any))
      assert.strictEqual(duplicate._tag, "CameraAlreadyExists")
    }))

  it.live("a wrong key is a typed Unauthorized", () =>
    Effect.gen(function*() {
      const node = yield* harness({ VMS_BOOTSTRAP_TOKEN: bootstrap })
      const context = yield* Layer.build(VmsClient.layer(`${node.ws}/rpc`, { apiKey: "not-the-key" }))
      const vms = Context.get(context, VmsClient)
      const refused = yield* Effect.flip(vms.get_camera_list({}))
      assert.strictEqual(refused._tag, "Unauthorized")
    }))
})
