/**
 * Crash recovery of the spool on a whole in-process node: what a killed
 * process left (a segment still open, one stored and indexed but not yet
 * deleted, one stored but not indexed, an empty file) is stored and indexed
 * exactly once at start, and the spool is emptied. The spool is laid out
 * by hand with a real MPEG-TS made by ffmpeg, so every crash point is
 * covered deterministically; test/recording-crash.test.ts kills a real node.
 */
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { PgClient } from "@effect/sql-pg"
import { Effect, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Migrations from "../runtime/database/Migrations.ts"
import * as Node from "../runtime/Node.ts"
import { requireBinary } from "./support/Binaries.ts"
import { eventually } from "./support/Eventually.ts"
import { rowsOf } from "./support/Recordings.ts"
import { testDatabaseUrl } from "./support/TestDatabase.ts"
import { tempDir, testConfig } from "./support/TestNode.ts"

const segmentKey = (cameraId: string, startMs: number) => {
  const day = new Date(startMs).toISOString().slice(0, 10).split("-")
  return `${cameraId}/${day[0]}/${day[1]}/${day[2]}/${startMs}.ts`
}

/** A 3 s H.264 MPEG-TS, 320x240, 1 s GOPs. */
const makeSegment = (file: string) => {
  const result = spawnSync(requireBinary("ffmpeg"), [
    "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=10:duration=3",
    "-c:v", "libx264", "-preset", "ultrafast", "-g", "10", "-f", "mpegts", "-y", file
  ])
  if (result.status !== 0) throw new Error(String(result.stderr))
}

describe("spool recovery at start", () => {
  it.live("every segment a killed process left is stored and indexed exactly once; an empty one is dropped", () =>
    Effect.gen(function*() {
      const dataDir = yield* tempDir("recovery")
      const databaseUrl = yield* testDatabaseUrl
      const spool = path.join(dataDir, "spool", "yard")
      fs.mkdirSync(spool, { recursive: true })
      const t0 = Date.UTC(2026, 0, 1, 12, 0, 0)
      const media = (startMs: number) => path.join(spool, `${startMs}.ts`)
      const sidecar = (startMs: number, closed: boolean) =>
        fs.writeFileSync(path.join(spool, `${startMs}.json`), JSON.stringify({
          cameraId: "yard", startMs, codec: "h264", width: 320, height: 240,
          ...(closed ? { endMs: startMs + 3_000, durationMs: 3_000 } : {})
        }))
      const segmentBytes = () => fs.statSync(media(open)).size
      // open: still being written when the process died (no end in its sidecar).
      const open = t0 + 9_000
      makeSegment(media(open))
      sidecar(open, false)
      // indexed: stored and indexed, killed before the spool files were deleted.
      const indexed = t0
      fs.copyFileSync(media(open), media(indexed))
      sidecar(indexed, true)
      // stored: in the store, killed before its row was committed.
      const stored = t0 + 3_000
      fs.copyFileSync(media(open), media(stored))
      sidecar(stored, true)
      for (const startMs of [indexed, stored]) {
        const object = path.join(dataDir, "recordings", segmentKey("yard", startMs))
        fs.mkdirSync(path.dirname(object), { recursive: true })
        fs.copyFileSync(media(open), object)
      }
      // empty: opened, killed before the first chunk was appended.
      const empty = t0 + 12_000
      fs.writeFileSync(media(empty), "")
      sidecar(empty, false)

      // The row the dead process committed, before this node starts.
      yield* Effect.gen(function*() {
        yield* Migrations.run
        const sql = yield* SqlClient.SqlClient
        yield* sql`
          INSERT INTO recordings (camera_id, start_time, end_time, duration_ms, bytes, object_key, node_id)
          VALUES ('yard', ${new Date(indexed)}, ${new Date(indexed + 3_000)}, 3000, ${segmentBytes()},
            ${segmentKey("yard", indexed)}, 'dead-node')`
      }).pipe(Effect.provide(PgClient.layer({ url: Redacted.make(databaseUrl), maxConnections: 1 })))

      const config = yield* testConfig({ VMS_DATA_DIR: dataDir, VMS_DATABASE_URL: databaseUrl })
      yield* Effect.gen(function*() {
        yield* eventually("spool emptied", Effect.sync(() => fs.readdirSync(spool).length === 0 ? true : undefined), 20_000, 100)
        const rows = yield* rowsOf("yard")
        assert.deepStrictEqual(rows.map((r) => [r.startMs - t0, r.nodeId]), [[0, "dead-node"], [3_000, "test-node"], [9_000, "test-node"]])
        const recovered = rows[2]!
        assert.approximately(recovered.durationMs, 3_000, 150)
        assert.deepStrictEqual([recovered.codec, recovered.width, recovered.height], ["h264", 320, 240])
        for (const row of rows) {
          assert.strictEqual(fs.statSync(path.join(dataDir, "recordings", row.objectKey)).size, row.bytes, row.objectKey)
        }
        assert.isFalse(fs.existsSync(path.join(dataDir, "recordings", segmentKey("yard", empty))))
      }).pipe(Effect.provide(Node.layer(config)), Effect.provide(NodeServices.layer))
    }).pipe(Effect.scoped))
})
