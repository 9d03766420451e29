/**
 * `/ws` as a plain WebSocket client in any language sees it: JSON-RPC 2.0
 * frames through `ws`, on a real server and Postgres (camera actors are the
 * harness's stand-in). Covers the specification's corners: notifications,
 * batches, parse and envelope errors, and the connection staying usable.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { harness, jsonRpcClient } from "../test/support/RpcHarness.ts"

const bootstrap = "bootstrap-token-for-tests-0123456789"
const camera = (id: string) => ({ id, name: `Camera ${id}`, url: `rtsp://user:secret@10.0.0.1:554/${id}` })

describe("JSON-RPC 2.0 over /ws", () => {
  it.live("lists cameras, adds one and receives its camera_status_update", () =>
    Effect.gen(function*() {
      const node = yield* harness({ VMS_BOOTSTRAP_TOKEN: bootstrap })
      const client = yield* jsonRpcClient(`${node.ws}/ws`, { "x-api-key": bootstrap })

      const empty = yield* client.call(1, "get_camera_list")
      assert.deepStrictEqual(empty, { jsonrpc: "2.0", id: 1, result: { items: [] } })

      const subscribed = yield* client.call("s", "subscribe", { events: ["camera_status_update"] })
      assert.strictEqual(subscribed.result.events[0], "camera_status_update")
      assert.isString(subscribed.result.subscription)

      const added = yield* client.call(2, "add_camera", camera("gate-1"))
      assert.strictEqual(added.result.id, "gate-1")
      assert.strictEqual(added.result.url, "rtsp://***:***@10.0.0.1:554/gate-1")

      const update = yield* client.waitFor("a camera_status_update", (message) => message.method === "camera_status_update")
      assert.strictEqual(update.jsonrpc, "2.0")
      assert.notProperty(update, "id")
      assert.deepInclude(update.params, { subscription: subscribed.result.subscription, cameraId: "gate-1", status: "connecting" })
      assert.isString(update.params.updatedAt)

      const listed = yield* client.call(3, "get_camera_list", {})
      assert.deepStrictEqual(listed.result.items.map((item: any) => item.id), ["gate-1"])
      // The status the camera's last event announced (the node's status view follows the bus).
      const status = yield* client.call(4, "get_camera_status", { cameraId: "gate-1" })
      assert.strictEqual(status.result.status, "connecting")
      const audit = yield* node.sql<{ action: string; targetId: string; details: any }>`
        SELECT action, target_id AS "targetId", details FROM audit_log`.pipe(Effect.orDie)
      assert.deepStrictEqual(audit.map((row) => [row.action, row.targetId, row.details.via]), [["camera.create", "gate-1", "rpc"]])
    }))

  it.live("subscription ids are per connection, and each notification names its own", () =>
    Effect.gen(function*() {
      const node = yield* harness({ VMS_BOOTSTRAP_TOKEN: bootstrap })
      const first = yield* jsonRpcClient(`${node.ws}/ws`, { "x-api-key": bootstrap })
      const second = yield* jsonRpcClient(`${node.ws}/ws`, { "x-api-key": bootstrap })
      const a = yield* first.call(1, "subscribe", { events: ["camera_status_update"] })
      const b = yield* first.call(2, "subscribe", { events: ["camera_status_update"], cameraIds: [] })
      const c = yield* second.call(1, "subscribe", { events: ["camera_status_update"] })
      assert.deepStrictEqual([a.result.subscription, b.result.subscription, c.result.subscription], ["1", "2", "1"])
      yield* first.call(3, "add_camera", camera("gate-2"))
      const toFirst = yield* first.waitFor("an update", (message) => message.method === "camera_status_update")
      const toSecond = yield* second.waitFor("an update", (message) => message.method === "camera_status_update")
      assert.deepInclude(toFirst.params, { subscription: "1", cameraId: "gate-2" })
      assert.deepInclude(toSecond.params, { subscription: "1", cameraId: "gate-2" })
      // The second subscription of the first connection is for no camera: nothing arrives under "2".
      yield* Effect.sleep("200 millis")
      assert.isFalse(first.received.some((message: any) => message.params?.subscription === "2"))
    }))

  it.live("answers malformed frames with the standard codes and stays usable", () =>
    Effect.gen(function*() {
      const node = yield* harness({ VMS_BOOTSTRAP_TOKEN: bootstrap })
      const client = yield* jsonRpcClient(`${node.ws}/ws`, { "x-api-key": bootstrap })

      yield* client.send("{ not json")
      const parse = yield* client.next
      assert.deepStrictEqual({ id: parse.id, code: parse.error.code }, { id: null, code: -32700 })

      yield* client.send({ jsonrpc: "1.0", id: 7, method: "get_camera_list" })
      const version = yield* client.next
      assert.deepStrictEqual({ id: version.id, code: version.error.code }, { id: 7, code: -32600 })

      yield* client.send({ jsonrpc: "2.0", id: 8, method: 42 })
      const method = yield* client.next
      assert.deepStrictEqual({ id: method.id, code: method.error.code }, { id: 8, code: -32600 })

      yield* client.send({ jsonrpc: "2.0", id: { nested: true }, method: "get_camera_list" })
      const badId = yield* client.next
      assert.deepStrictEqual({ id: badId.id, code: badId.error.code }, { id: null, code: -32600 })

      yield* client.send({ jsonrpc: "2.0", id: 9, method: "no_such_method" })
      const unknown = yield* client.next
      assert.deepStrictEqual({ id: unknown.id, code: unknown.error.code }, { id: 9, code: -32601 })

      yield* client.send({ jsonrpc: "2.0", id: 10, method: "add_camera", params: { name: "x", url: "http://nope" } })
      const params = yield* client.next
      assert.strictEqual(params.error.code, -32602)
      assert.include(params.error.message, "url")
      assert.deepInclude(params.error.data.issues, { field: "url", message: "must be an rtsp:// or rtsps:// URL with a host" })

      yield* client.send({ jsonrpc: "2.0", id: 11, method: "get_camera_status", params: ["gate-1"] })
      const positional = yield* client.next
      assert.strictEqual(positional.error.code, -32602)

      yield* client.send({ jsonrpc: "2.0", id: 12, method: "get_camera_status", params: { cameraId: "nope" } })
      const domain = yield* client.next
      assert.strictEqual(domain.error.code, -32004)
      assert.deepStrictEqual(domain.error.data, { _tag: "CameraNotFound", cameraId: "nope" })

      yield* client.send({ jsonrpc: "2.0", id: 13, method: "list_recordings", params: { cameraId: "nope", from: "2026-01-02T00:00:00Z", to: "2026-01-01T00:00:00Z" } })
      const notVisible = yield* client.next
      assert.strictEqual(notVisible.error.data._tag, "CameraNotFound")

      const still = yield* client.call(14, "get_camera_list")
      assert.deepStrictEqual(still.result, { items: [] })
      assert.strictEqual(client.received.length, 10)
    }))

  it.live("batches: one array answer, notifications unanswered, empty batch and bad members per the spec", () =>
    Effect.gen(function*() {
      const node = yield* harness({ VMS_BOOTSTRAP_TOKEN: bootstrap })
      const client = yield* jsonRpcClient(`${node.ws}/ws`, { "x-api-key": bootstrap })

      yield* client.send([
        { jsonrpc: "2.0", id: 1, method: "add_camera", params: camera("b-1") },
        { jsonrpc: "2.0", method: "add_camera", params: camera("b-2") },
        { jsonrpc: "2.0", id: 2, method: "nope" },
        1,
        { jsonrpc: "2.0", id: 3, method: "get_camera_status", params: { cameraId: "missing" } }
      ])
      const batch = yield* client.next
      assert.isArray(batch)
      const byId = new Map(batch.map((reply: any) => [reply.id, reply]))
      assert.strictEqual(batch.length, 4)
      assert.strictEqual((byId.get(1) as any).result.id, "b-1")
      assert.strictEqual((byId.get(2) as any).error.code, -32601)
      assert.strictEqual((byId.get(null) as any).error.code, -32600)
      assert.strictEqual((byId.get(3) as any).error.code, -32004)

      // A notification ran (b-2 exists) but got no answer; a batch of notifications gets none at all.
      yield* client.send([{ jsonrpc: "2.0", method: "get_camera_list" }, { jsonrpc: "2.0", method: "nope" }])
      const listed = yield* client.call(4, "get_camera_list")
      assert.deepStrictEqual(listed.result.items.map((item: any) => item.id), ["b-1", "b-2"])

      yield* client.send([])
      const empty = yield* client.waitFor("the empty batch's error", (message) => !Array.isArray(message) && message.id === null)
      assert.strictEqual(empty.error.code, -32600)

      // Ids are the client's: the same id twice in one batch gets two answers.
      yield* client.send([
        { jsonrpc: "2.0", id: 5, method: "get_camera_list", params: { limit: 1 } },
        { jsonrpc: "2.0", id: 5, method: "get_camera_list", params: { limit: 2 } }
      ])
      const twice = yield* client.waitFor("the duplicate-id batch", (message) => Array.isArray(message) && message[0]?.id === 5)
      assert.deepStrictEqual(twice.map((reply: any) => reply.result.items.length).sort(), [1, 2])
      assert.strictEqual(client.received.length, 4, JSON.stringify(client.received))
    }))

  it.live("authentication: none is Unauthorized; a first-message authenticate call works", () =>
    Effect.gen(function*() {
      const node = yield* harness({ VMS_BOOTSTRAP_TOKEN: bootstrap })
      const client = yield* jsonRpcClient(`${node.ws}/ws`)
      const refused = yield* client.call(1, "get_camera_list")
      assert.strictEqual(refused.error.code, -32001)
      assert.strictEqual(refused.error.data._tag, "Unauthorized")

      const wrong = yield* client.call(2, "authenticate", { apiKey: "wrong-key" })
      assert.strictEqual(wrong.error.code, -32001)
      const ok = yield* client.call(3, "authenticate", { apiKey: bootstrap })
      assert.deepStrictEqual(ok.result, { role: "admin", agencyId: "default" })
      const listed = yield* client.call(4, "get_camera_list")
      assert.deepStrictEqual(listed.result, { items: [] })
    }))
})
