/**
 * The retention singleton on a whole in-process node (filesystem store,
 * Postgres): with a byte budget and a 1 s sweep interval, the oldest
 * segments go first, rows before objects, and playback of what was deleted
 * answers 404 while the rest still plays.
 */
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { NodeConfig } from "../runtime/config/NodeConfig.ts"
import * as Node from "../runtime/Node.ts"
import { RecordingIndex } from "../runtime/recording/RecordingIndex.ts"
import { segmentKey, SegmentStore } from "../runtime/recording/SegmentStore.ts"
import { eventually } from "./support/Eventually.ts"
import { request } from "./support/NodeHttp.ts"
import { rowsOf } from "./support/Recordings.ts"
import { testConfig } from "./support/TestNode.ts"

const node = Layer.unwrap(
  Effect.map(
    testConfig({ VMS_RECORDING_MAX_BYTES: "2500", VMS_RECORDING_RETENTION_INTERVAL_SECONDS: "1" }),
    (config) => Node.layer(config)
  )
).pipe(Layer.provideMerge(NodeServices.layer))

const minute = 60_000
const iso = (ms: number) => new Date(ms).toISOString()

describe("retention on a node", () => {
  it.live("the byte budget deletes the oldest segments first; their playback is 404, the rest still plays", () =>
    Effect.gen(function*() {
      const config = yield* NodeConfig
      const index = yield* RecordingIndex
      const store = yield* SegmentStore
      const source = path.join(config.dataDir, "segment.ts")
      fs.writeFileSync(source, Buffer.alloc(1_000, 0x47))
      const t0 = Date.now() - 10 * minute
      const starts = [0, 1, 2, 3].map((i) => t0 + i * minute)
      for (const startMs of starts) {
        const key = segmentKey("attic", startMs)
        yield* store.put(key, source, 1_000)
        yield* index.insert({ cameraId: "attic", startMs, endMs: startMs + minute, durationMs: minute, bytes: 1_000, objectKey: key, codec: "h264", width: 1, height: 1, nodeId: "test-node" })
      }
      const left = yield* eventually("two segments left", Effect.map(rowsOf("attic"), (rows) => rows.length === 2 ? rows : undefined), 10_000, 100)
      assert.deepStrictEqual(left.map((r) => r.startMs), starts.slice(2))
      // Rows go before objects, so the files of the deleted rows may outlive
      // them by a moment: wait for the files, then check which are left.
      const onDisk = () => starts.map((startMs) => fs.existsSync(path.join(config.dataDir, "recordings", segmentKey("attic", startMs))))
      yield* eventually("the deleted segments' files are gone", Effect.sync(() => onDisk().filter(Boolean).length === 2 ? true : undefined), 10_000, 50)
      assert.deepStrictEqual(onDisk(), [false, false, true, true])
      const deleted = yield* request("GET", `/playback/attic/index.m3u8?from=${iso(starts[0]!)}&to=${iso(starts[2]!)}`)
      assert.strictEqual(deleted.status, 404)
      const kept = yield* request("GET", `/playback/attic/index.m3u8?from=${iso(starts[0]!)}&to=${iso(starts[3]! + minute)}`)
      assert.strictEqual(kept.status, 200)
      assert.strictEqual(kept.text.match(/#EXTINF/g)?.length, 2)
      // The sweep counts what it deleted when its round ends.
      yield* eventually(
        "the budget deletions are counted",
        Effect.map(request("GET", "/metrics"), (metrics) => /vms_recording_retention_deleted_segments_total\{reason="budget"\} 2\b/.test(metrics.text) ? true : undefined),
        10_000,
        100
      )
    }).pipe(Effect.scoped, Effect.provide(node)))
})
