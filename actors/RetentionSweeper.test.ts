/**
 * Retention on a real Postgres and the filesystem store: age per camera
 * (or the default), then the global byte budget, oldest first; rows go
 * before objects, and playback of a deleted range is 404 while the kept
 * range still plays.
 */
import { NodeHttpServer, NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import { HttpRouter, HttpServer } from "effect/http"
import { NetAddress } from "effect/net"
import { SqlClient } from "effect/sql"
import * as fs from "node:fs"
import { createServer } from "node:http"
import * as path from "node:path"
import { tempDir } from "../test/support/TestNode.ts"
import * as TestDatabase from "../test/support/TestDatabase.ts"
import { DataDir } from "../runtime/config/DataDir.ts"
import * as NodeConfig from "../runtime/config/NodeConfig.ts"
import * as Migrations from "../runtime/database/Migrations.ts"
import * as PlaybackRoutes from "../runtime/http/PlaybackRoutes.ts"
import * as CameraStore from "../runtime/cameras/CameraStore.ts"
import * as TestQuota from "../test/support/TestQuota.ts"
import { Metrics } from "../runtime/metrics/Metrics.ts"
import { RecordingMetrics } from "../runtime/metrics/RecordingMetrics.ts"
import * as FilesystemSegmentStore from "../runtime/recording/FilesystemSegmentStore.ts"
import { MediaToken } from "../runtime/recording/MediaToken.ts"
import * as RecordingIndex from "../runtime/recording/RecordingIndex.ts"
import { segmentKey, SegmentStore } from "../runtime/recording/SegmentStore.ts"
import { sweepOnce } from "./RetentionSweeper.ts"

const day = 86_400_000
const minute = 60_000

const harness = Effect.gen(function*() {
  const dataDir = yield* tempDir("retention")
  const config = yield* NodeConfig.fromEnv({
    VMS_DATA_DIR: dataDir,
    VMS_RECORDING_MAX_BYTES: "3000",
    VMS_JWT_SECRET: "a-secret-of-at-least-thirty-two-characters"
  })
  const database = Layer.effectDiscard(Migrations.run).pipe(Layer.provideMerge(TestDatabase.layer))
  const services = Layer.mergeAll(
    RecordingIndex.layer,
    FilesystemSegmentStore.layer,
    RecordingMetrics.layer,
    MediaToken.layer
  ).pipe(
    Layer.provideMerge(Layer.mergeAll(
      Layer.succeed(NodeConfig.NodeConfig, config),
      Layer.succeed(DataDir, { path: dataDir }),
      Metrics.layer,
      NodeServices.layer
    )),
    Layer.provideMerge(database)
  )
  const routes = PlaybackRoutes.layer.pipe(Layer.provide(TestQuota.layer), Layer.provide(CameraStore.layer))
  const server = HttpRouter.serve(routes, { disableLogger: true, disableListenLog: true }).pipe(
    Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" })),
    Layer.provideMerge(services)
  )
  const context = yield* Layer.build(server)
  const base = NetAddress.formatUrlUnsafe(Context.get(context, HttpServer.HttpServer).address)
  return { context, dataDir, base }
})

describe("RetentionSweeper", () => {
  it.live("deletes by camera age, then oldest first down to the byte budget; playback of a deleted range is 404", () =>
    Effect.gen(function*() {
      const { context, dataDir, base } = yield* harness
      const sql = Context.get(context, SqlClient.SqlClient)
      const index = Context.get(context, RecordingIndex.RecordingIndex)
      const store = Context.get(context, SegmentStore)
      yield* sql`INSERT INTO cameras (id, agency_id, name, url, retention_days) VALUES ('short', 'default', 's', 'rtsp://h/a', 1)`
      yield* sql`INSERT INTO cameras (id, agency_id, name, url) VALUES ('long', 'default', 'l', 'rtsp://h/b')`
      const now = Date.now()
      const source = path.join(dataDir, "source.ts")
      fs.writeFileSync(source, Buffer.alloc(1_000, 0x47))
      // short: 3 days and 1 hour old; long: 5 days, 4 days, 1 hour, 30 minutes old. 1,000 bytes each.
      const plan: ReadonlyArray<readonly [string, number]> = [
        ["short", now - 3 * day], ["short", now - 60 * minute],
        ["long", now - 5 * day], ["long", now - 4 * day], ["long", now - 60 * minute + 1], ["long", now - 30 * minute]
      ]
      for (const [cameraId, startMs] of plan) {
        const key = segmentKey(cameraId, startMs)
        yield* store.put(key, source, 1_000)
        yield* index.insert({ cameraId, startMs, endMs: startMs + minute, durationMs: minute, bytes: 1_000, objectKey: key, codec: "h264", width: 1, height: 1, nodeId: "n" })
      }
      const playlist = (cameraId: string, startMs: number) =>
        Effect.promise(() =>
          fetch(`${base}/playback/${cameraId}/index.m3u8?from=${new Date(startMs).toISOString()}&to=${new Date(startMs + minute).toISOString()}`)
            .then((r) => r.status)
        )
      assert.strictEqual(yield* playlist("long", now - 5 * day), 200)

      const swept = yield* sweepOnce.pipe(Effect.provideContext(context))
      // Age: short's 3-day-old segment. Budget (3,000 of 5,000 left): long's 5- and 4-day-old ones.
      assert.deepStrictEqual(swept, { byAge: 1, byBudget: 2 })
      const left = yield* sql<{ camera_id: string; start_ms: number }>`
        SELECT camera_id, (extract(epoch FROM start_time) * 1000)::float8 AS start_ms FROM recordings ORDER BY start_time`
      assert.deepStrictEqual(left.map((r) => [r.camera_id, r.start_ms]), [
        ["short", now - 60 * minute], ["long", now - 60 * minute + 1], ["long", now - 30 * minute]
      ])
      for (const [cameraId, startMs] of plan) {
        const kept = left.some((r) => r.camera_id === cameraId && r.start_ms === startMs)
        assert.strictEqual(fs.existsSync(path.join(dataDir, "recordings", segmentKey(cameraId, startMs))), kept, `${cameraId} ${startMs}`)
      }
      assert.strictEqual(yield* playlist("long", now - 5 * day), 404)
      assert.strictEqual(yield* playlist("short", now - 3 * day), 404)
      assert.strictEqual(yield* playlist("long", now - 30 * minute), 200)
      assert.deepStrictEqual(yield* sweepOnce.pipe(Effect.provideContext(context)), { byAge: 0, byBudget: 0 })
    }).pipe(Effect.scoped))
})
