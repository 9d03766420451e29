/**
 * The status view on a whole node (real camera actors, event bus, Postgres):
 * a camera it has not seen is read from its actor, later changes arrive from
 * the bus without asking the actor again, a read past half an entry's life
 * renews it in the background, entries past `freshMs` are read
 * again, removed cameras are not found; and through JSON-RPC a user of
 * another agency gets `CameraNotFound` for a camera the view holds.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, DateTime, Effect, Layer } from "effect"
import { HttpServer } from "effect/http"
import { NetAddress } from "effect/net"
import { SqlClient } from "effect/sql"
import * as Node from "../Node.ts"
import { eventually } from "../../test/support/Eventually.ts"
import { jsonRpcClient } from "../../test/support/RpcHarness.ts"
import { testConfig } from "../../test/support/TestNode.ts"
import { CameraControl } from "./CameraControl.ts"
import { CameraStatusView } from "./CameraStatusView.ts"

const bootstrap = "bootstrap-token-for-tests-0123456789"

/** A whole node, and a status view on its bus and actors that counts the reads reaching the actors. */
const setup = (freshMs: number) =>
  Effect.gen(function*() {
    const config = yield* testConfig({ VMS_BOOTSTRAP_TOKEN: bootstrap })
    const node = yield* Layer.build(Node.layer(config))
    const control = Context.get(node, CameraControl)
    let actorReads = 0
    const counted = Layer.succeed(CameraControl, {
      ...control,
      status: (cameraId: string) => Effect.andThen(Effect.sync(() => actorReads++), control.status(cameraId))
    })
    const view = Context.get(
      yield* Layer.build(CameraStatusView.layerWith({ freshMs, maxEntries: 100 }).pipe(Layer.provide(counted), Layer.provide(Layer.succeedContext(node)))),
      CameraStatusView
    )
    const http = NetAddress.formatUrlUnsafe(Context.get(node, HttpServer.HttpServer).address)
    const sql = Context.get(node, SqlClient.SqlClient)
    const rest = (method: string, path: string, body?: unknown, apiKey = bootstrap) =>
      Effect.promise(async () => {
        const response = await fetch(`${http}${path}`, {
          method,
          headers: { "x-api-key": apiKey, ...(body === undefined ? {} : { "content-type": "application/json" }) },
          ...(body === undefined ? {} : { body: JSON.stringify(body) })
        })
        const text = await response.text()
        return { status: response.status, text, json: text === "" ? undefined : JSON.parse(text) }
      })
    return { view, control, rest, sql, ws: http.replace(/^http/, "ws"), actorReads: () => actorReads }
  })

describe("CameraStatusView", () => {
  it.live("reads a camera it has not seen from its actor, then follows the bus", () =>
    Effect.gen(function*() {
      const { view, rest, actorReads } = yield* setup(60_000)
      const created = yield* rest("POST", "/api/v1/cameras", { id: "gate-v", name: "Gate V", url: "rtsp://127.0.0.1:9/v", enabled: false })
      assert.strictEqual(created.status, 201, created.text)

      yield* eventually("disabled", Effect.map(view.status("gate-v"), (s) => s.status === "disabled" ? s : undefined))
      view.forget("gate-v")
      const before = actorReads()
      const first = yield* view.status("gate-v")
      const reads = actorReads()
      assert.strictEqual(reads, before + 1)
      assert.strictEqual(first.status, "disabled")
      assert.strictEqual(first.nodeId, "test-node")

      // Enabled: the actor starts connecting (nothing listens on port 9) and publishes each change.
      const enabled = yield* rest("PATCH", "/api/v1/cameras/gate-v", { enabled: true })
      assert.strictEqual(enabled.status, 200, enabled.text)
      const moved = yield* eventually("not disabled", Effect.map(view.status("gate-v"), (s) => s.status !== "disabled" ? s : undefined))
      assert.include(["connecting", "offline", "error"], moved.status)
      assert.isAbove(DateTime.toEpochMillis(moved.updatedAt), DateTime.toEpochMillis(first.updatedAt))
      const disabled = yield* rest("PATCH", "/api/v1/cameras/gate-v", { enabled: false })
      assert.strictEqual(disabled.status, 200, disabled.text)
      yield* eventually("disabled again", Effect.map(view.status("gate-v"), (s) => s.status === "disabled" ? s : undefined))
      // Every change came from the bus: the actor was not asked again.
      assert.strictEqual(actorReads(), reads)
    }).pipe(Effect.scoped), 30_000)

  it.live("answers what the actor answers once an entry is older than freshMs; unknown cameras fail as the actor does", () =>
    Effect.gen(function*() {
      const { view, control, rest, actorReads } = yield* setup(100)
      const created = yield* rest("POST", "/api/v1/cameras", { id: "gate-w", name: "Gate W", url: "rtsp://127.0.0.1:9/w", enabled: false })
      assert.strictEqual(created.status, 201, created.text)
      yield* eventually("disabled", Effect.map(view.status("gate-w"), (s) => s.status === "disabled" ? s : undefined))
      const before = actorReads()
      yield* Effect.sleep("150 millis")
      const again = yield* view.status("gate-w")
      assert.strictEqual(actorReads(), before + 1)
      assert.deepStrictEqual(again, yield* control.status("gate-w"))

      // Concurrent reads of a stale entry share one actor call.
      yield* Effect.sleep("150 millis")
      const many = yield* Effect.all(Array.from({ length: 20 }, () => view.status("gate-w")), { concurrency: "unbounded" })
      assert.strictEqual(actorReads(), before + 2)
      assert.isTrue(many.every((status) => status.status === "disabled"))

      const missing = yield* Effect.flip(view.status("no-such-camera"))
      assert.strictEqual(missing._tag, "CameraNotFound")

      const removed = yield* rest("DELETE", "/api/v1/cameras/gate-w")
      assert.strictEqual(removed.status, 204, removed.text)
      view.forget("gate-w")
      const gone = yield* eventually(
        "removed camera not found",
        Effect.map(Effect.flip(view.status("gate-w")), (error) => error._tag === "CameraNotFound" ? error : undefined).pipe(
          Effect.catch(() => Effect.succeed(undefined))
        )
      )
      assert.strictEqual(gone._tag, "CameraNotFound")
    }).pipe(Effect.scoped), 30_000)

  it.live("a read past half an entry's life renews it in the background, so steady readers never wait", () =>
    Effect.gen(function*() {
      const { view, rest, actorReads } = yield* setup(400)
      const created = yield* rest("POST", "/api/v1/cameras", { id: "gate-r", name: "Gate R", url: "rtsp://127.0.0.1:9/r", enabled: false })
      assert.strictEqual(created.status, 201, created.text)
      yield* eventually("disabled", Effect.map(view.status("gate-r"), (s) => s.status === "disabled" ? s : undefined))
      view.forget("gate-r")
      yield* view.status("gate-r")
      const before = actorReads()
      yield* Effect.sleep("250 millis")
      assert.strictEqual((yield* view.status("gate-r")).status, "disabled")
      yield* eventually("renewed", Effect.sync(() => actorReads() === before + 1 ? true : undefined))
      // Past the first entry's life: the renewed one answers, the actor is not asked.
      yield* Effect.sleep("200 millis")
      const reads = actorReads()
      yield* view.status("gate-r")
      assert.strictEqual(actorReads(), reads)
    }).pipe(Effect.scoped), 30_000)

  it.live("a user of another agency gets CameraNotFound for a camera the view holds", () =>
    Effect.gen(function*() {
      const { rest, ws, sql } = yield* setup(60_000)
      yield* sql`INSERT INTO agencies (id, name) VALUES ('b', 'Agency B')`
      for (const [id, agencyId] of [["cam-a", "default"], ["cam-b", "b"]]) {
        const created = yield* rest("POST", "/api/v1/cameras", { id, name: id, url: `rtsp://127.0.0.1:9/${id}`, agencyId, enabled: false })
        assert.strictEqual(created.status, 201, created.text)
      }
      const admin = yield* jsonRpcClient(`${ws}/ws`, { "x-api-key": bootstrap })
      const seen = yield* admin.call(1, "get_camera_status", { cameraId: "cam-b" })
      assert.strictEqual(seen.result?.status, "disabled", JSON.stringify(seen))

      const token = yield* rest("POST", "/api/v1/tokens", { name: "a-viewer", role: "viewer", agencyId: "default" })
      assert.strictEqual(token.status, 201, token.text)
      const viewer = yield* jsonRpcClient(`${ws}/ws`, { "x-api-key": token.json.token })
      const own = yield* viewer.call(1, "get_camera_status", { cameraId: "cam-a" })
      assert.strictEqual(own.result?.status, "disabled", JSON.stringify(own))
      const foreign = yield* viewer.call(2, "get_camera_status", { cameraId: "cam-b" })
      assert.strictEqual(foreign.error?.data?._tag, "CameraNotFound", JSON.stringify(foreign))
      assert.notInclude(JSON.stringify(foreign), "disabled")
    }).pipe(Effect.scoped), 30_000)
})
