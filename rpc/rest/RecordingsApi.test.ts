/**
 * The recordings REST API on a real HTTP server and a real Postgres, with
 * index rows written through `RecordingIndex`: segment pages, timelines
 * with gaps, recording on/off, and 4xx answers naming the field.
 * `CameraControl` is a recording stand-in (the actors are covered by the
 * whole-node tests).
 */
import { NodeHttpServer } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import { HttpRouter, HttpServer } from "effect/http"
import { NetAddress } from "effect/net"
import { SqlClient } from "effect/sql"
import { createServer } from "node:http"
import { CameraControl, CameraNotFound } from "../../runtime/cameras/CameraControl.ts"
import * as CameraStore from "../../runtime/cameras/CameraStore.ts"
import * as Migrations from "../../runtime/database/Migrations.ts"
import * as RecordingIndex from "../../runtime/recording/RecordingIndex.ts"
import * as TestQuota from "../../test/support/TestQuota.ts"
import * as TestAuth from "../../test/support/TestAuth.ts"
import * as TestDatabase from "../../test/support/TestDatabase.ts"
import * as RestApi from "./RestApi.ts"

const t0 = Date.UTC(2026, 0, 1, 12, 0, 0)
const iso = (ms: number) => new Date(ms).toISOString()

const harness = Effect.gen(function*() {
  const reconciled: Array<string> = []
  const control = Layer.succeed(CameraControl, {
    reconcile: (cameraId) => Effect.sync(() => void reconciled.push(cameraId)),
    status: (cameraId) => Effect.fail(new CameraNotFound({ cameraId })),
    snapshot: (cameraId) => Effect.fail(new CameraNotFound({ cameraId }))
  })
  const database = Layer.effectDiscard(Migrations.run).pipe(Layer.provideMerge(TestDatabase.layer))
  const services = Layer.mergeAll(CameraStore.layer, RecordingIndex.layer, control, TestAuth.layer()).pipe(
    Layer.provideMerge(database)
  )
  const server = HttpRouter.serve(RestApi.layer.pipe(Layer.provide(TestQuota.layer)), { disableLogger: true, disableListenLog: true }).pipe(
    Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" })),
    Layer.provideMerge(services)
  )
  const context = yield* Layer.build(server)
  const base = `${NetAddress.formatUrlUnsafe(Context.get(context, HttpServer.HttpServer).address)}/api/v1`
  const sql = Context.get(context, SqlClient.SqlClient)
  const index = Context.get(context, RecordingIndex.RecordingIndex)
  const call = (method: string, path: string, body?: unknown) =>
    Effect.promise(async () => {
      const response = await fetch(`${base}${path}`, {
        method,
        ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { "content-type": "application/json" } })
      })
      const text = await response.text()
      return { status: response.status, text, json: text === "" ? undefined : JSON.parse(text) }
    })
  const segment = (cameraId: string, startMs: number, durationMs: number) =>
    index.insert({
      cameraId,
      startMs,
      endMs: startMs + durationMs,
      durationMs,
      bytes: 1_000_000,
      objectKey: `${cameraId}/2026/01/01/${startMs}.ts`,
      codec: "h264",
      width: 1280,
      height: 720,
      nodeId: "node-a"
    }).pipe(Effect.orDie)
  yield* sql`INSERT INTO cameras (id, agency_id, name, url) VALUES ('dock', 'default', 'Dock', 'rtsp://10.0.0.1/a')`.pipe(Effect.orDie)
  // 12:00–12:03 continuous, a 5 s gap, 12:03:05–12:04, then nothing until 12:10–12:11.
  for (const [start, duration] of [[0, 60_000], [60_000, 60_000], [120_000, 60_000], [185_000, 55_000], [600_000, 60_000]] as const) {
    yield* segment("dock", t0 + start, duration)
  }
  return { call, reconciled, segment, sql }
})

describe("recordings REST API", () => {
  it.live("lists segments overlapping a range in pages, oldest first", () =>
    Effect.gen(function*() {
      const { call } = yield* harness
      const first = yield* call("GET", `/recordings?cameraId=dock&from=${iso(t0 + 30_000)}&to=${iso(t0 + 900_000)}&limit=3`)
      assert.strictEqual(first.status, 200, first.text)
      assert.deepStrictEqual(first.json.items.map((r: any) => r.start), [iso(t0), iso(t0 + 60_000), iso(t0 + 120_000)])
      assert.deepStrictEqual(Object.keys(first.json.items[0]).sort(), ["bytes", "cameraId", "codec", "durationMs", "end", "height", "id", "nodeId", "start", "width"])
      assert.isString(first.json.nextCursor)
      const second = yield* call("GET", `/recordings?cameraId=dock&from=${iso(t0 + 30_000)}&to=${iso(t0 + 900_000)}&limit=3&cursor=${first.json.nextCursor}`)
      assert.deepStrictEqual(second.json.items.map((r: any) => r.start), [iso(t0 + 185_000), iso(t0 + 600_000)])
      assert.isUndefined(second.json.nextCursor)
      const none = yield* call("GET", `/recordings?cameraId=gate&from=${iso(t0)}&to=${iso(t0 + 60_000)}`)
      assert.deepStrictEqual(none.json, { items: [] })
    }))

  it.live("the timeline merges abutting segments and reports every gap in the range", () =>
    Effect.gen(function*() {
      const { call } = yield* harness
      const timeline = yield* call("GET", `/cameras/dock/timeline?from=${iso(t0 - 60_000)}&to=${iso(t0 + 630_000)}`)
      assert.strictEqual(timeline.status, 200, timeline.text)
      assert.deepStrictEqual(timeline.json, {
        cameraId: "dock",
        from: iso(t0 - 60_000),
        to: iso(t0 + 630_000),
        recorded: [
          { start: iso(t0), end: iso(t0 + 180_000) },
          { start: iso(t0 + 185_000), end: iso(t0 + 240_000) },
          { start: iso(t0 + 600_000), end: iso(t0 + 630_000) }
        ],
        gaps: [
          { start: iso(t0 - 60_000), end: iso(t0) },
          { start: iso(t0 + 180_000), end: iso(t0 + 185_000) },
          { start: iso(t0 + 240_000), end: iso(t0 + 600_000) }
        ]
      })
      const unknown = yield* call("GET", `/cameras/nope/timeline?from=${iso(t0)}&to=${iso(t0 + 1)}`)
      assert.strictEqual(unknown.status, 404)
      assert.strictEqual(unknown.json.error.code, "CameraNotFound")
    }))

  it.live("bad ranges and ids answer 400 naming the field", () =>
    Effect.gen(function*() {
      const { call } = yield* harness
      const cases: ReadonlyArray<readonly [string, string]> = [
        [`/recordings?cameraId=dock&to=${iso(t0)}`, "from"],
        [`/recordings?cameraId=dock&from=yesterday&to=${iso(t0)}`, "from"],
        [`/recordings?cameraId=dock&from=2026-01-01T12:00:00&to=${iso(t0)}`, "from"],
        [`/recordings?cameraId=dock&from=${iso(t0)}&to=${iso(t0)}`, "to"],
        [`/recordings?cameraId=dock&from=${iso(t0)}&to=${iso(t0 + 40 * 86_400_000)}`, "to"],
        [`/recordings?cameraId=../x&from=${iso(t0)}&to=${iso(t0 + 1000)}`, "cameraId"],
        [`/recordings?cameraId=dock&from=${iso(t0)}&to=${iso(t0 + 1000)}&limit=0`, "limit"],
        [`/recordings?cameraId=dock&from=${iso(t0)}&to=${iso(t0 + 1000)}&cursor=abc`, "cursor"],
        [`/cameras/dock/timeline?from=${iso(t0 + 1000)}&to=${iso(t0)}`, "to"]
      ]
      for (const [path, field] of cases) {
        const response = yield* call("GET", path)
        assert.strictEqual(response.status, 400, path)
        assert.strictEqual(response.json.error.code, "InvalidRequest", path)
        assert.match(response.json.error.message, new RegExp(`^${field}: `), path)
      }
    }))

  it.live("POST /cameras/{id}/recording switches recording and tells the camera's actors", () =>
    Effect.gen(function*() {
      const { call, reconciled } = yield* harness
      const on = yield* call("POST", "/cameras/dock/recording", { enabled: true })
      assert.strictEqual(on.status, 200, on.text)
      assert.isTrue(on.json.recording)
      assert.deepStrictEqual(reconciled, ["dock"])
      const off = yield* call("POST", "/cameras/dock/recording", { enabled: false })
      assert.isFalse(off.json.recording)
      const bad = yield* call("POST", "/cameras/dock/recording", { enabled: "yes" })
      assert.strictEqual(bad.status, 400)
      assert.match(bad.json.error.message, /^enabled: /)
      const missing = yield* call("POST", "/cameras/nope/recording", { enabled: true })
      assert.strictEqual(missing.status, 404)
      assert.deepStrictEqual(reconciled, ["dock", "dock"])
    }))
})
