import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import * as TestDatabase from "../../test/support/TestDatabase.ts"
import * as Migrations from "../database/Migrations.ts"
import { layer, RecordingIndex } from "./RecordingIndex.ts"

const database = Layer.effectDiscard(Migrations.run).pipe(Layer.provideMerge(TestDatabase.layer))
const services = layer.pipe(Layer.provideMerge(database))

const day = 86_400_000
const now = Date.UTC(2026, 5, 1)

const segment = (cameraId: string, startMs: number, bytes = 1_000) => ({
  cameraId,
  startMs,
  endMs: startMs + 60_000,
  durationMs: 60_000,
  bytes,
  objectKey: `${cameraId}/x/${startMs}.ts`,
  codec: "h264",
  width: 640,
  height: 360,
  nodeId: "n1"
})

describe("RecordingIndex", () => {
  it.live("inserting the same camera and start twice keeps one row", () =>
    Effect.gen(function*() {
      const index = yield* RecordingIndex
      assert.isTrue(yield* index.insert(segment("dock", now)))
      assert.isFalse(yield* index.insert(segment("dock", now)))
      assert.isTrue(yield* index.insert(segment("gate", now)))
      const rows = yield* index.list("dock", now - day, now + day, 10)
      assert.strictEqual(rows.length, 1)
      assert.deepInclude(rows[0]!, { cameraId: "dock", startMs: now, endMs: now + 60_000, bytes: 1_000, codec: "h264" })
    }).pipe(Effect.provide(services)))

  it.live("expired follows each camera's retention days, else the default; oldest and totalBytes span all cameras", () =>
    Effect.gen(function*() {
      const index = yield* RecordingIndex
      const sql = yield* SqlClient.SqlClient
      yield* sql`INSERT INTO cameras (id, agency_id, name, url, retention_days) VALUES ('short', 'default', 's', 'rtsp://h/a', 2)`
      yield* sql`INSERT INTO cameras (id, agency_id, name, url) VALUES ('long', 'default', 'l', 'rtsp://h/b')`
      for (const age of [5, 3, 1]) {
        yield* index.insert(segment("short", now - age * day, 10))
        yield* index.insert(segment("long", now - age * day + 1, 20))
      }
      const byCamera = yield* index.expired(now, undefined, 100)
      assert.deepStrictEqual(byCamera.map((s) => [s.cameraId, Math.round((now - s.startMs) / day)]), [["short", 5], ["short", 3]])
      const withDefault = yield* index.expired(now, 4, 100)
      assert.deepStrictEqual(withDefault.map((s) => [s.cameraId, Math.round((now - s.startMs) / day)]), [["short", 5], ["long", 5], ["short", 3]])
      assert.strictEqual(yield* index.totalBytes, 90)
      const oldest = yield* index.oldest(2)
      assert.deepStrictEqual(oldest.map((s) => s.cameraId), ["short", "long"])
      assert.isTrue(yield* index.remove(oldest[0]!.id))
      assert.isFalse(yield* index.remove(oldest[0]!.id))
      assert.strictEqual(yield* index.totalBytes, 80)
    }).pipe(Effect.provide(services)))
})
