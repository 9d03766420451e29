/**
 * The cameras REST API on a real HTTP server and a real Postgres, driven
 * with fetch. `CameraControl` is a recording stand-in here; the
 * actor-backed one is covered by the whole-node tests.
 */
import { NodeHttpServer } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Context, DateTime, Effect, Layer } from "effect"
import { HttpRouter, HttpServer } from "effect/http"
import { NetAddress } from "effect/net"
import { SqlClient } from "effect/sql"
import { createServer } from "node:http"
import { CameraStatus } from "../../actors/CameraProtocol.ts"
import {
  CameraControl,
  CameraNotFound,
  CameraUnavailable,
  Snapshot,
  SnapshotUnavailable
} from "../../runtime/cameras/CameraControl.ts"
import * as CameraStore from "../../runtime/cameras/CameraStore.ts"
import * as Migrations from "../../runtime/database/Migrations.ts"
import * as RecordingIndex from "../../runtime/recording/RecordingIndex.ts"
import * as TestQuota from "../../test/support/TestQuota.ts"
import * as TestAuth from "../../test/support/TestAuth.ts"
import * as TestDatabase from "../../test/support/TestDatabase.ts"
import * as RestApi from "./RestApi.ts"

const password = "s3cret-pw"
const rtsp = (path: string) => `rtsp://admin:${password}@10.1.2.3:554/${path}`

/** What the stand-in actors were told and will answer. */
interface ControlState {
  readonly reconciled: Array<string>
  readonly statuses: Map<string, CameraStatus | "unreachable" | "bug">
  readonly snapshots: Map<string, Snapshot | "offline" | "unreachable">
}

const unreachable = (cameraId: string) =>
  new CameraUnavailable({ cameraId, message: `camera '${cameraId}' did not answer in time` })

const controlLayer = (state: ControlState) =>
  Layer.succeed(CameraControl, {
    reconcile: (cameraId) => Effect.sync(() => void state.reconciled.push(cameraId)),
    status: (cameraId) => {
      const status = state.statuses.get(cameraId)
      if (status === undefined) return Effect.fail(new CameraNotFound({ cameraId }))
      if (status === "unreachable") return Effect.fail(unreachable(cameraId))
      if (status === "bug") return Effect.die(new Error(`status failed for ${rtsp(cameraId)}`))
      return Effect.succeed(status)
    },
    snapshot: (cameraId) => {
      const snapshot = state.snapshots.get(cameraId)
      if (snapshot === undefined) return Effect.fail(new CameraNotFound({ cameraId }))
      if (snapshot === "unreachable") return Effect.fail(unreachable(cameraId))
      if (snapshot === "offline") {
        return Effect.fail(new SnapshotUnavailable({ cameraId, message: `camera '${cameraId}' is offline` }))
      }
      return Effect.succeed(snapshot)
    }
  })

interface Reply {
  readonly status: number
  readonly headers: Headers
  readonly text: string
  readonly json: any
}

/** A node-like HTTP server with only the REST routes, on a fresh migrated database. */
const harness = Effect.gen(function*() {
  const state: ControlState = { reconciled: [], statuses: new Map(), snapshots: new Map() }
  const database = Layer.effectDiscard(Migrations.run).pipe(Layer.provideMerge(TestDatabase.layer))
  const routes = RestApi.layer.pipe(
    Layer.provide(TestQuota.layer),
    Layer.provideMerge(Layer.mergeAll(CameraStore.layer, RecordingIndex.layer, controlLayer(state), TestAuth.layer())),
    Layer.provide(database)
  )
  const server = HttpRouter.serve(routes, { disableLogger: true, disableListenLog: true }).pipe(
    Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" })),
    Layer.provideMerge(database)
  )
  const context = yield* Layer.build(server)
  const base = `${NetAddress.formatUrlUnsafe(Context.get(context, HttpServer.HttpServer).address)}/api/v1`
  const sql = Context.get(context, SqlClient.SqlClient)
  const replies: Array<string> = []

  const call = (method: string, path: string, body?: unknown) =>
    Effect.promise(async (): Promise<Reply> => {
      const init: RequestInit = { method }
      if (body !== undefined) {
        init.body = typeof body === "string" ? body : JSON.stringify(body)
        init.headers = { "content-type": "application/json" }
      }
      const response = await fetch(`${base}${path}`, init)
      const text = await response.text()
      replies.push(text)
      const json = response.headers.get("content-type")?.includes("json") && text !== "" ? JSON.parse(text) : undefined
      return { status: response.status, headers: response.headers, text, json }
    })

  /** Every row as stored, to prove a rejected request changed nothing. */
  const rows = sql`SELECT * FROM cameras ORDER BY id`.pipe(Effect.map((rows) => JSON.stringify(rows)), Effect.orDie)

  /** A response that is bytes, not JSON. */
  const fetchBytes = (path: string) =>
    Effect.promise(async () => {
      const response = await fetch(`${base}${path}`)
      return { status: response.status, headers: response.headers, body: new Uint8Array(await response.arrayBuffer()) }
    })

  return { state, call, fetchBytes, rows, replies }
})

const assertError = (reply: Reply, status: number, code: string, mentions: string) => {
  assert.strictEqual(reply.status, status, reply.text)
  assert.strictEqual(reply.json?.error?.code, code, reply.text)
  assert.include(reply.json.error.message, mentions)
  assert.isString(reply.json.error.requestId)
  assert.strictEqual(reply.headers.get("x-request-id"), reply.json.error.requestId)
}

const assertNoPassword = (replies: ReadonlyArray<string>) => {
  for (const text of replies) assert.notInclude(text, password)
}

describe("cameras REST API", () => {
  it.live("create, get, list in pages, update, delete; actors told of each change", () =>
    Effect.gen(function*() {
      const { call, replies, state } = yield* harness

      const created = yield* call("POST", "/cameras", { id: "gate-a", name: " Gate A ", url: rtsp("a"), latitude: 52.5 })
      assert.strictEqual(created.status, 201, created.text)
      assert.strictEqual(created.json.url, "rtsp://***:***@10.1.2.3:554/a")
      assert.deepInclude(created.json, {
        id: "gate-a",
        name: "Gate A",
        agencyId: "default",
        enabled: true,
        recording: false,
        retentionDays: null,
        locationName: null,
        latitude: 52.5,
        longitude: null
      })
      assert.match(created.json.createdAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
      assert.isString(created.headers.get("x-request-id"))

      const generated = yield* call("POST", "/cameras", { name: "No id", url: "rtsps://cam.example/live" })
      assert.strictEqual(generated.status, 201, generated.text)
      assert.match(generated.json.id, /^[0-9a-f-]{36}$/)
      for (const id of ["gate-b", "gate-c", "gate-d"]) {
        assert.strictEqual((yield* call("POST", "/cameras", { id, name: id, url: rtsp(id) })).status, 201)
      }
      assert.deepStrictEqual(state.reconciled, ["gate-a", generated.json.id, "gate-b", "gate-c", "gate-d"])

      const fetched = yield* call("GET", "/cameras/gate-a")
      assert.strictEqual(fetched.status, 200)
      assert.deepStrictEqual(fetched.json, created.json)

      // Five cameras, two per page: three pages, then no cursor.
      const ids: Array<string> = []
      let cursor: string | undefined
      let pages = 0
      do {
        const page = yield* call("GET", `/cameras?limit=2${cursor === undefined ? "" : `&cursor=${cursor}`}`)
        assert.strictEqual(page.status, 200, page.text)
        ids.push(...page.json.items.map((camera: { id: string }) => camera.id))
        cursor = page.json.nextCursor
        pages++
      } while (cursor !== undefined)
      assert.strictEqual(pages, 3)
      assert.deepStrictEqual(ids, [...ids].sort())
      assert.sameMembers(ids, ["gate-a", "gate-b", "gate-c", "gate-d", generated.json.id])
      const all = yield* call("GET", "/cameras")
      assert.strictEqual(all.json.items.length, 5)
      assert.notProperty(all.json, "nextCursor")
      assert.deepStrictEqual((yield* call("GET", "/cameras?agencyId=police")).json, { items: [] })

      state.reconciled.length = 0
      const patched = yield* call("PATCH", "/cameras/gate-a", {
        url: `rtsps://operator:${password}@10.9.9.9:322/main?password=${password}`,
        latitude: null,
        recording: true
      })
      assert.strictEqual(patched.status, 200, patched.text)
      assert.strictEqual(patched.json.url, "rtsps://***:***@10.9.9.9:322/main?password=***")
      assert.isNull(patched.json.latitude)
      assert.isTrue(patched.json.recording)
      assert.strictEqual(patched.json.name, "Gate A")
      assert.isTrue(Date.parse(patched.json.updatedAt) >= Date.parse(created.json.updatedAt))
      const put = yield* call("PUT", "/cameras/gate-b", { name: "Gate B", enabled: false })
      assert.strictEqual(put.status, 200, put.text)
      assert.deepInclude(put.json, { name: "Gate B", enabled: false, url: "rtsp://***:***@10.1.2.3:554/gate-b" })
      assert.deepStrictEqual(state.reconciled, ["gate-a", "gate-b"])

      const removed = yield* call("DELETE", "/cameras/gate-a")
      assert.strictEqual(removed.status, 204)
      assert.strictEqual(removed.text, "")
      assertError(yield* call("GET", "/cameras/gate-a"), 404, "CameraNotFound", "gate-a")
      assertError(yield* call("DELETE", "/cameras/gate-a"), 404, "CameraNotFound", "gate-a")
      assert.deepStrictEqual(state.reconciled, ["gate-a", "gate-b", "gate-a"])

      assertNoPassword(replies)
    }))

  it.live("status and snapshot come from the camera's actor", () =>
    Effect.gen(function*() {
      const { call, fetchBytes, replies, state } = yield* harness
      yield* call("POST", "/cameras", { id: "gate-a", name: "Gate A", url: rtsp("a") })
      const updatedAt = DateTime.makeUnsafe("2026-03-01T12:00:00Z")
      state.statuses.set(
        "gate-a",
        new CameraStatus({
          cameraId: "gate-a",
          status: "error",
          reason: `${rtsp("a")}: 401 Unauthorized`,
          fps: 0,
          bitrate: 0,
          nodeId: "node-1",
          updatedAt
        })
      )
      const status = yield* call("GET", "/cameras/gate-a/status")
      assert.strictEqual(status.status, 200, status.text)
      assert.deepInclude(status.json, {
        cameraId: "gate-a",
        status: "error",
        fps: 0,
        bitrate: 0,
        nodeId: "node-1",
        updatedAt: "2026-03-01T12:00:00.000Z"
      })
      assert.strictEqual(status.json.reason, "rtsp://***:***@10.1.2.3:554/a: 401 Unauthorized")
      assertError(yield* call("GET", "/cameras/nope/status"), 404, "CameraNotFound", "nope")
      state.statuses.set("gate-a", "unreachable")
      assertError(yield* call("GET", "/cameras/gate-a/status"), 503, "CameraUnavailable", "did not answer")
      state.statuses.set("gate-a", "bug")
      assertError(yield* call("GET", "/cameras/gate-a/status"), 500, "InternalError", "internal error (request ")
      state.snapshots.set("gate-a", "unreachable")
      assertError(yield* call("GET", "/cameras/gate-a/snapshot"), 503, "CameraUnavailable", "did not answer")

      const jpeg = new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3, 0xff, 0xd9])
      state.snapshots.set("gate-a", new Snapshot({ cameraId: "gate-a", jpeg, width: 640, height: 360, takenAt: updatedAt }))
      const response = yield* fetchBytes("/cameras/gate-a/snapshot")
      assert.strictEqual(response.status, 200)
      assert.strictEqual(response.headers.get("content-type"), "image/jpeg")
      assert.strictEqual(response.headers.get("cache-control"), "no-store")
      assert.deepStrictEqual(response.body, jpeg)

      state.snapshots.set("gate-a", "offline")
      assertError(yield* call("GET", "/cameras/gate-a/snapshot"), 503, "SnapshotUnavailable", "offline")
      assertError(yield* call("GET", "/cameras/nope/snapshot"), 404, "CameraNotFound", "nope")
      assertNoPassword(replies)
    }))

  it.live("bad input answers 4xx naming the problem and changes nothing", () =>
    Effect.gen(function*() {
      const { call, replies, rows, state } = yield* harness
      yield* call("POST", "/cameras", { id: "gate-a", name: "Gate A", url: rtsp("a") })
      state.reconciled.length = 0
      const before = yield* rows
      const valid = { name: "Gate B", url: rtsp("b") }
      const oversize = { ...valid, locationName: "x".repeat(70 * 1024) }

      const cases: Array<readonly [string, string, unknown, number, string, string]> = [
        ["POST", "/cameras", { ...valid, url: `http://admin:${password}@cam/live` }, 400, "InvalidRequest", "url: must be an rtsp:// or rtsps:// URL"],
        ["POST", "/cameras", { url: rtsp("b") }, 400, "InvalidRequest", "name: is required"],
        ["POST", "/cameras", { ...valid, name: "   " }, 400, "InvalidRequest", "name: must not be empty"],
        ["POST", "/cameras", { ...valid, name: "Gate\u0000B" }, 400, "InvalidRequest", "name: must not contain control characters"],
        ["POST", "/cameras", { ...valid, enabled: "yes" }, 400, "InvalidRequest", "enabled: Expected boolean"],
        ["POST", "/cameras", { ...valid, latitude: "north" }, 400, "InvalidRequest", "latitude:"],
        ["POST", "/cameras", { ...valid, colour: "red" }, 400, "InvalidRequest", "colour: is not a known field"],
        ["POST", "/cameras", { ...valid, id: "Gate B!" }, 400, "InvalidRequest", "id: must be 1 to 64 characters"],
        ["POST", "/cameras", { ...valid, id: "gate-a" }, 409, "CameraAlreadyExists", "gate-a"],
        ["POST", "/cameras", { ...valid, agencyId: "police" }, 422, "AgencyNotFound", "agencyId: agency 'police'"],
        ["POST", "/cameras", oversize, 413, "PayloadTooLarge", "body: must be at most 65536 bytes"],
        ["POST", "/cameras", `{"name": "Gate B", "url": "${rtsp("b")}"`, 400, "InvalidRequest", "body: is not valid JSON"],
        ["POST", "/cameras", "[1, 2]", 400, "InvalidRequest", "body: must be a JSON object"],
        ["PATCH", "/cameras/nope", { name: "x" }, 404, "CameraNotFound", "'nope'"],
        ["PATCH", "/cameras/gate-a", {}, 400, "InvalidRequest", "body: must change at least one field"],
        ["PATCH", "/cameras/gate-a", { id: "gate-z" }, 400, "InvalidRequest", "id: is not a known field"],
        ["PATCH", "/cameras/gate-a", { retentionDays: 0 }, 400, "InvalidRequest", "retentionDays:"],
        ["PATCH", "/cameras/gate-a", { agencyId: "police" }, 422, "AgencyNotFound", "agencyId"],
        ["PATCH", "/cameras/gate-a", { url: `ftp://admin:${password}@cam` }, 400, "InvalidRequest", "url:"],
        ["PATCH", "/cameras/gate-a", oversize, 413, "PayloadTooLarge", "body:"],
        ["PATCH", "/cameras/gate-a", "{not json", 400, "InvalidRequest", "body: is not valid JSON"],
        ["PUT", "/cameras/gate-a", { enabled: 1 }, 400, "InvalidRequest", "enabled:"],
        ["DELETE", "/cameras/nope", undefined, 404, "CameraNotFound", "'nope'"],
        ["GET", "/cameras/nope", undefined, 404, "CameraNotFound", "'nope'"],
        ["GET", "/cameras?limit=0", undefined, 400, "InvalidRequest", "limit: must be an integer from 1 to 500"],
        ["GET", "/cameras?limit=501", undefined, 400, "InvalidRequest", "limit: must be an integer from 1 to 500"],
        ["GET", "/cameras?limit=many", undefined, 400, "InvalidRequest", "limit:"],
        ["GET", "/cameras?limit=1.5", undefined, 400, "InvalidRequest", "limit: must be an integer from 1 to 500"],
        ["GET", "/cameras?cursor=%00", undefined, 400, "InvalidRequest", "cursor: must not contain control characters"],
        ["GET", "/cameras/gate%00a", undefined, 400, "InvalidRequest", "id: must not contain control characters"]
      ]
      for (const [method, path, body, status, code, mentions] of cases) {
        const reply = yield* call(method, path, body)
        assertError(reply, status, code, mentions)
      }
      assert.strictEqual(yield* rows, before)
      assert.deepStrictEqual(state.reconciled, [])
      assertNoPassword(replies)

      // The server is still serving.
      assert.strictEqual((yield* call("GET", "/cameras/gate-a")).status, 200)
    }))

  it.live("serves its OpenAPI document", () =>
    Effect.gen(function*() {
      const { call } = yield* harness
      const document = yield* call("GET", "/openapi.json")
      assert.strictEqual(document.status, 200)
      assert.property(document.json.paths, "/api/v1/cameras/{id}")
    }))
})
